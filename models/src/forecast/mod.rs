//! Bar forecasters: an MLP and a GRU sequence model over the [`features`](crate::features),
//! predicting the next-N-bar log return or its sign.
//!
//! A trained model is a folder with `model.safetensors` (candle/PyTorch tensor names) and
//! `config.json` ([`ForecasterConfig`]: architecture, target, feature normalisation, how it was
//! trained and its out-of-sample metrics). [`Forecaster::load`] reads it back on any device.
//!
//! Two inference paths:
//! - [`Forecaster::predict_batch`] runs the candle model (CPU or CUDA), for evaluation and
//!   batched scoring;
//! - [`Forecaster::predict_window`] is a batch-1 CPU path in plain Rust over the same weights,
//!   for a decision per bar inside a strategy, where candle's per-operation overhead would
//!   dominate. A test checks the two agree.

mod fast;
mod net;
mod train;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use kairos_strategies::Bar;
use serde::{Deserialize, Serialize};

pub use net::{Arch, Net};
pub use train::{EvalReport, Progress, Split, TrainOptions, TrainReport, evaluate, train};

use crate::features::{self, FeatureState, Normalizer, Target, TargetKind};
use crate::{Error, Result};

/// The `format` written in every forecaster's `config.json`.
pub const FORMAT: &str = "kairos-forecaster/1";

/// File names inside a model folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// See [`WEIGHTS_FILE`].
pub const CONFIG_FILE: &str = "config.json";

/// Mean and deviation used to scale a regression target (identity for classification).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TargetScale {
    /// Mean of the training targets.
    pub mean: f64,
    /// Their standard deviation.
    pub std: f64,
}

/// Everything about a trained forecaster except its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecasterConfig {
    /// Always [`FORMAT`].
    pub format: String,
    /// The network.
    pub arch: Arch,
    /// What it predicts.
    pub target: Target,
    /// The feature definitions' version ([`features::VERSION`]).
    pub feature_version: u32,
    /// Feature standardisation, fitted on the training split only.
    pub normalizer: Normalizer,
    /// Target scaling (regression).
    pub target_scale: TargetScale,
    /// Shrinkage toward the baseline in `0..=1`, fitted on the validation split: the network's
    /// deviation from the baseline is multiplied by it. 1 keeps the network's output as is; 0
    /// makes the model the baseline.
    #[serde(default = "one")]
    pub shrink: f64,
    /// How the model was trained: data, splits, settings, epochs.
    pub training: TrainReport,
}

impl ForecasterConfig {
    fn check(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| Error::ModelFile { path: path.to_path_buf(), reason };
        if self.format != FORMAT {
            return Err(bad(format!("format `{}` is not `{FORMAT}`", self.format)));
        }
        if self.feature_version != features::VERSION {
            return Err(bad(format!(
                "trained on feature version {}, this build computes version {}: retrain it",
                self.feature_version,
                features::VERSION
            )));
        }
        self.normalizer.check().map_err(|e| bad(e.to_string()))?;
        self.arch.validate().map_err(|e| bad(e.to_string()))?;
        if !(self.target_scale.std > 0.0 && self.target_scale.std.is_finite()) {
            return Err(bad("target_scale.std must be positive".into()));
        }
        Ok(())
    }
}

fn one() -> f64 {
    1.0
}

/// A loaded forecaster.
pub struct Forecaster {
    config: ForecasterConfig,
    net: Net,
    fast: fast::FastNet,
    device: Device,
    dir: Option<PathBuf>,
    /// The trainable variables, for a model fresh from [`train`].
    varmap: Option<candle_nn::VarMap>,
}

impl std::fmt::Debug for Forecaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forecaster")
            .field("arch", &self.config.arch)
            .field("target", &self.config.target)
            .field("device", &self.device)
            .field("dir", &self.dir)
            .finish()
    }
}

fn read_config(dir: &Path) -> Result<ForecasterConfig> {
    let path = dir.join(CONFIG_FILE);
    let text =
        std::fs::read_to_string(&path).map_err(|cause| Error::Io { path: path.clone(), cause })?;
    let config: ForecasterConfig = serde_json::from_str(&text)
        .map_err(|e| Error::ModelFile { path: path.clone(), reason: e.to_string() })?;
    config.check(&path)?;
    Ok(config)
}

impl Forecaster {
    /// Loads `DIR/config.json` and `DIR/model.safetensors` onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = read_config(dir)?;
        let weights = dir.join(WEIGHTS_FILE);
        if !weights.is_file() {
            return Err(Error::ModelFile { path: weights, reason: "not found".into() });
        }
        // SAFETY-free: candle's mmap loader is an unsafe fn; read the file instead.
        let tensors = candle_core::safetensors::load(&weights, device)
            .map_err(|e| Error::ModelFile { path: weights.clone(), reason: e.to_string() })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Self::from_vb(config, vb, device, Some(dir.to_path_buf()))
            .map_err(|e| Error::ModelFile { path: weights, reason: e.to_string() })
    }

    fn from_vb(
        config: ForecasterConfig,
        vb: VarBuilder<'_>,
        device: &Device,
        dir: Option<PathBuf>,
    ) -> Result<Self> {
        let net = Net::load(vb.clone(), &config.arch)?;
        let fast = fast::FastNet::load(&vb, &config.arch)?;
        Ok(Self { config, net, fast, device: device.clone(), dir, varmap: None })
    }

    /// Writes `DIR/model.safetensors` and `DIR/config.json` (creating `DIR`) for a model
    /// fresh from [`train`].
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let Some(varmap) = &self.varmap else {
            return Err(Error::Data(format!(
                "this forecaster was loaded from {:?}; copy that folder instead",
                self.dir
            )));
        };
        std::fs::create_dir_all(dir)
            .map_err(|cause| Error::Io { path: dir.to_path_buf(), cause })?;
        let weights = dir.join(WEIGHTS_FILE);
        varmap
            .save(&weights)
            .map_err(|e| Error::ModelFile { path: weights.clone(), reason: e.to_string() })?;
        let path = dir.join(CONFIG_FILE);
        let json = serde_json::to_string_pretty(&self.config)
            .map_err(|e| Error::ModelFile { path: path.clone(), reason: e.to_string() })?;
        std::fs::write(&path, json + "\n").map_err(|cause| Error::Io { path, cause })?;
        Ok(())
    }

    /// The model's configuration.
    pub fn config(&self) -> &ForecasterConfig {
        &self.config
    }

    /// The device the candle model lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Rows of features each prediction looks at (1 for the MLP).
    pub fn window(&self) -> usize {
        self.config.arch.seq_len()
    }

    /// Turns the network's raw output into a prediction: the expected log return (regression)
    /// or the probability that it is positive (classification).
    #[inline]
    pub fn to_prediction(&self, raw: f32) -> f64 {
        let c = &self.config;
        match c.target.kind {
            // The scaled target is zero at the baseline (the training mean).
            TargetKind::Return => c.shrink * raw as f64 * c.target_scale.std + c.target_scale.mean,
            TargetKind::Sign => {
                let base = logit(c.training.baseline);
                let z = base + c.shrink * (raw as f64 - base);
                1.0 / (1.0 + (-z).exp())
            }
        }
    }

    /// Predicts from the last [`window`](Self::window) standardised feature rows, oldest
    /// first, on the CPU fast path.
    #[inline]
    pub fn predict_window(&self, rows: &[[f32; features::COUNT]]) -> f64 {
        debug_assert_eq!(rows.len(), self.window());
        self.to_prediction(self.fast.forward(rows))
    }

    /// The candle model's raw outputs for a `[batch, window, features]` tensor of
    /// standardised rows.
    pub fn forward_raw(&self, x: &Tensor) -> Result<Vec<f32>> {
        Ok(self.net.forward(x)?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
    }

    /// Predictions for `batch` windows of standardised rows, flattened (`batch * window *
    /// features` values, each window oldest row first), run as one tensor on the model's
    /// device.
    pub fn predict_windows(&self, rows: Vec<f32>, batch: usize) -> Result<Vec<f64>> {
        let shape = (batch, self.window(), features::COUNT);
        if rows.len() != batch * self.window() * features::COUNT {
            return Err(Error::Data(format!(
                "{} values do not make {batch} windows of {} rows of {} features",
                rows.len(),
                self.window(),
                features::COUNT
            )));
        }
        self.predict_batch(&Tensor::from_vec(rows, shape, &self.device)?)
    }

    /// Predictions for a `[batch, window, features]` tensor of standardised rows.
    pub fn predict_batch(&self, x: &Tensor) -> Result<Vec<f64>> {
        Ok(self.forward_raw(x)?.into_iter().map(|r| self.to_prediction(r)).collect())
    }
}

/// `ln(p / (1 - p))`, finite for `p` in (0, 1).
pub(crate) fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

/// Bar-by-bar predictions for one instrument: features, standardisation and the model's
/// window, fed only with bars that have closed.
#[derive(Debug, Clone)]
pub struct ForecastStream {
    model: Arc<Forecaster>,
    features: FeatureState,
    window: Vec<[f32; features::COUNT]>,
    filled: usize,
}

impl ForecastStream {
    /// A stream for one instrument.
    pub fn new(model: Arc<Forecaster>) -> Self {
        let w = model.window();
        Self {
            model,
            features: FeatureState::new(),
            window: vec![[0.0; features::COUNT]; w],
            filled: 0,
        }
    }

    /// Adds a closed bar; returns the prediction made at it, once the features and the
    /// model's window are full of consecutive valid rows.
    pub fn update(&mut self, bar: &Bar) -> Option<f64> {
        self.push(bar).then(|| self.model.predict_window(&self.window))
    }

    /// Adds a closed bar without predicting; true once the window is full (then
    /// [`window_rows`](Self::window_rows) is what the model reads). For callers that batch
    /// predictions of many streams ([`Forecaster::predict_batch`]).
    pub fn push(&mut self, bar: &Bar) -> bool {
        let Some(row) = self.features.update(bar) else {
            // A gap in valid rows restarts the window, as in training.
            self.filled = 0;
            return false;
        };
        let w = self.window.len();
        self.window.rotate_left(1);
        self.model.config.normalizer.apply(&row, &mut self.window[w - 1]);
        self.filled = (self.filled + 1).min(w);
        self.filled == w
    }

    /// The standardised feature rows the next prediction reads, oldest first, once full.
    pub fn window_rows(&self) -> Option<&[[f32; features::COUNT]]> {
        (self.filled == self.window.len()).then_some(self.window.as_slice())
    }

    /// The model.
    pub fn model(&self) -> &Arc<Forecaster> {
        &self.model
    }
}
