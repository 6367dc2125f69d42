//! Training and out-of-sample evaluation.
//!
//! The bars are split by time into train / validation / test (70 / 15 / 15 by default). A
//! sample at bar `t` uses features of bars `t - window + 1 ..= t` and its target looks
//! `horizon` bars ahead, so a sample belongs to a split only when its whole target lies inside
//! it: no training target reaches into validation, no validation target into test.
//! Normalisation is fitted on training rows only. AdamW, seeded initialisation and shuffling,
//! early stopping on validation loss (the best epoch's weights are kept).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use kairos_strategies::Bar;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Arch, FORMAT, Forecaster, ForecasterConfig, Net, TargetScale};
use crate::features::{self, COUNT, Dataset, Normalizer, Target, TargetKind};
use crate::{Error, Result};

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// The network.
    pub arch: Arch,
    /// What to predict.
    pub target: Target,
    /// Most passes over the training split.
    pub epochs: usize,
    /// Stop after this many epochs without a better validation loss.
    pub patience: usize,
    /// Samples per optimiser step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Seed for initialisation and shuffling.
    pub seed: u64,
    /// Fractions of the bars for training and validation; the rest is the test split.
    pub train_fraction: f64,
    /// See `train_fraction`.
    pub validation_fraction: f64,
}

impl TrainOptions {
    /// Defaults for `arch` and `target`: 30 epochs, patience 5, batch 256, lr 1e-3, weight
    /// decay 1e-2, seed 42, 70/15/15 split.
    pub fn new(arch: Arch, target: Target) -> Self {
        Self {
            arch,
            target,
            epochs: 30,
            patience: 5,
            batch_size: 256,
            learning_rate: 1e-3,
            weight_decay: 1e-2,
            seed: 42,
            train_fraction: 0.70,
            validation_fraction: 0.15,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| Err(Error::Setting { name, reason: reason.into() });
        self.arch.validate()?;
        if self.target.horizon == 0 || self.target.horizon > 10_000 {
            return bad("horizon", "must be in 1..=10000 bars");
        }
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", "must be a positive number");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", "must be zero or positive");
        }
        let (a, b) = (self.train_fraction, self.validation_fraction);
        if !(a > 0.0 && b > 0.0 && a + b < 1.0) {
            return bad("split", "train and validation fractions must be positive and sum below 1");
        }
        Ok(())
    }
}

/// Where the splits fall.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// First bar's timestamp (ns).
    pub start_ts: i64,
    /// Last bar's timestamp (ns); a sample's target lies within `start_ts..=end_ts`.
    pub end_ts: i64,
    /// Samples in it.
    pub samples: usize,
}

/// Out-of-sample quality of a forecaster beside a naive baseline.
///
/// The baseline predicts a constant learnt from the training split: the mean return
/// (regression) or the rate of positive returns (classification).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Samples scored.
    pub samples: usize,
    /// Mean squared error of the prediction against the realised return (regression), or the
    /// Brier score of the probability against the realised sign (classification).
    pub mse: f64,
    /// The same for the baseline.
    pub baseline_mse: f64,
    /// Share of samples whose realised direction the prediction got right (zero returns
    /// skipped).
    pub accuracy: f64,
    /// The same for the baseline (the majority direction in training).
    pub baseline_accuracy: f64,
    /// Information coefficient: Pearson correlation of prediction and realised return.
    pub ic: f64,
    /// Spearman rank correlation of prediction and realised return.
    pub rank_ic: f64,
}

impl EvalReport {
    /// Whether the model's error is no worse than the baseline's.
    pub fn beats_baseline(&self) -> bool {
        self.mse <= self.baseline_mse
    }
}

/// How a forecaster was trained, saved in its `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Where the bars came from.
    pub data: String,
    /// Bars read.
    pub bars: usize,
    /// The settings.
    pub options: TrainOptions,
    /// Training split.
    pub train: Split,
    /// Validation split (early stopping).
    pub validation: Split,
    /// Test split, scored once after training.
    pub test: Split,
    /// Epochs run.
    pub epochs_run: usize,
    /// The epoch whose weights were kept (1-based).
    pub best_epoch: usize,
    /// Training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss per epoch.
    pub validation_loss: Vec<f64>,
    /// Validation metrics of the kept weights.
    pub validation_metrics: EvalReport,
    /// Test metrics of the kept weights (out of sample).
    pub test_metrics: EvalReport,
    /// The baseline constant: mean training return, or rate of positive training returns.
    pub baseline: f64,
}

/// Progress reports from [`train`].
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// Training starts.
    Start {
        /// Most epochs.
        epochs: usize,
        /// Optimiser steps per epoch.
        batches: usize,
    },
    /// One optimiser step done.
    Batch {
        /// Epoch (1-based).
        epoch: usize,
    },
    /// An epoch ended.
    Epoch {
        /// Epoch (1-based).
        epoch: usize,
        /// Mean training loss.
        train_loss: f64,
        /// Validation loss.
        validation_loss: f64,
        /// Whether it is the best so far.
        best: bool,
    },
}

/// Standardised rows and targets ready for batching.
struct Prepared {
    rows: Vec<[f32; COUNT]>,
    /// Whether rows `t - window + 1 ..= t` are all valid.
    window_ok: Vec<bool>,
    future: Vec<f64>,
    ts: Vec<i64>,
    window: usize,
}

impl Prepared {
    fn new(ds: &Dataset, norm: &Normalizer, window: usize) -> Self {
        let mut rows = vec![[0.0f32; COUNT]; ds.rows.len()];
        let mut window_ok = vec![false; ds.rows.len()];
        let mut run = 0usize;
        for (i, r) in ds.rows.iter().enumerate() {
            if ds.valid[i] {
                norm.apply(r, &mut rows[i]);
                run += 1;
            } else {
                run = 0;
            }
            window_ok[i] = run >= window;
        }
        Self { rows, window_ok, future: ds.future_return.clone(), ts: ds.ts.clone(), window }
    }

    /// `[batch, window, features]` for samples ending at `idx`.
    fn batch(&self, idx: &[usize], device: &Device) -> Result<Tensor> {
        let w = self.window;
        let mut data = Vec::with_capacity(idx.len() * w * COUNT);
        for &t in idx {
            for r in &self.rows[t + 1 - w..=t] {
                data.extend_from_slice(r);
            }
        }
        Ok(Tensor::from_vec(data, (idx.len(), w, COUNT), device)?)
    }
}

fn samples(p: &Prepared, horizon: usize, from: usize, to: usize) -> Vec<usize> {
    // Sample t uses bars ..=t and its target bar t + horizon must be < to.
    (from..to.saturating_sub(horizon))
        .filter(|&t| p.window_ok[t] && p.future[t].is_finite())
        .collect()
}

fn split_info(p: &Prepared, idx: &[usize], from: usize, to: usize) -> Split {
    let last = to.saturating_sub(1).max(from).min(p.ts.len().saturating_sub(1));
    Split { start_ts: p.ts[from.min(last)], end_ts: p.ts[last], samples: idx.len() }
}

fn scaled_targets(target: Target, scale: TargetScale, future: &[f64], idx: &[usize]) -> Vec<f32> {
    idx.iter()
        .map(|&t| match target.kind {
            TargetKind::Return => ((future[t] - scale.mean) / scale.std) as f32,
            TargetKind::Sign => f32::from(future[t] > 0.0),
        })
        .collect()
}

fn loss(kind: TargetKind, out: &Tensor, y: &Tensor) -> Result<Tensor> {
    Ok(match kind {
        TargetKind::Return => candle_nn::loss::mse(out, y)?,
        TargetKind::Sign => candle_nn::loss::binary_cross_entropy_with_logit(out, y)?,
    })
}

/// Deterministic initialisation: PyTorch's default bounds (uniform in ±1/sqrt(fan_in) for
/// weights, zero biases), drawn from a seeded generator in tensor-name order.
fn seeded_init(varmap: &VarMap, seed: u64) -> Result<()> {
    let vars = varmap.data().lock().map_err(|_| Error::Data("variable map poisoned".into()))?;
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &vars[name];
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = if dims.len() == 2 {
            let bound = 1.0 / (dims[1] as f32).sqrt();
            (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * bound).collect()
        } else {
            vec![0.0; n]
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

fn snapshot(vars: &[(String, Var)]) -> Result<HashMap<String, Tensor>> {
    vars.iter().map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?))).collect()
}

/// Trains a forecaster on `bars` (one instrument, oldest first) on `device`.
///
/// `data` names the source for the report. Progress goes to `progress`.
pub fn train(
    bars: &[Bar],
    data: &str,
    opts: &TrainOptions,
    device: &Device,
    mut progress: impl FnMut(Progress),
) -> Result<(Forecaster, TrainReport)> {
    opts.validate()?;
    let ds = features::frame(bars, opts.target.horizon)?;
    let n = bars.len();
    let train_end = (n as f64 * opts.train_fraction) as usize;
    let val_end = (n as f64 * (opts.train_fraction + opts.validation_fraction)) as usize;

    let norm = Normalizer::fit(
        (0..train_end.saturating_sub(opts.target.horizon))
            .filter(|&i| ds.valid[i])
            .map(|i| &ds.rows[i]),
    )
    .map_err(|_| {
        Error::Data(format!(
            "{n} bars are too few: the training split needs rows after the {}-bar warm-up",
            features::WARMUP
        ))
    })?;
    let window = opts.arch.seq_len();
    let p = Prepared::new(&ds, &norm, window);
    let train_idx = samples(&p, opts.target.horizon, 0, train_end);
    let val_idx = samples(&p, opts.target.horizon, train_end, val_end);
    let test_idx = samples(&p, opts.target.horizon, val_end, n);
    let min = opts.batch_size.min(64);
    if train_idx.len() < min || val_idx.is_empty() || test_idx.is_empty() {
        return Err(Error::Data(format!(
            "{n} bars give {} training, {} validation and {} test samples: too few (window {window}, \
             horizon {}, warm-up {})",
            train_idx.len(),
            val_idx.len(),
            test_idx.len(),
            opts.target.horizon,
            features::WARMUP
        )));
    }

    let train_returns: Vec<f64> = train_idx.iter().map(|&t| p.future[t]).collect();
    let mean = train_returns.iter().sum::<f64>() / train_returns.len() as f64;
    let var = train_returns.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>()
        / (train_returns.len() - 1).max(1) as f64;
    let scale = match opts.target.kind {
        TargetKind::Return => TargetScale { mean, std: var.sqrt().max(1e-12) },
        TargetKind::Sign => TargetScale { mean: 0.0, std: 1.0 },
    };
    let baseline = match opts.target.kind {
        TargetKind::Return => mean,
        TargetKind::Sign => {
            train_returns.iter().filter(|&&r| r > 0.0).count() as f64 / train_returns.len() as f64
        }
    };

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let net = Net::load(vb.clone(), &opts.arch)?;
    seeded_init(&varmap, opts.seed)?;
    let mut named: Vec<(String, Var)> = {
        let vars = varmap.data().lock().map_err(|_| Error::Data("variable map poisoned".into()))?;
        vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut opt = AdamW::new(
        named.iter().map(|(_, v)| v.clone()).collect(),
        ParamsAdamW {
            lr: opts.learning_rate,
            weight_decay: opts.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;

    let val_x = p.batch(&val_idx, device)?;
    let val_y = Tensor::from_vec(
        scaled_targets(opts.target, scale, &p.future, &val_idx),
        val_idx.len(),
        device,
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5eed_5eed);
    let mut order = train_idx.clone();
    let batches = order.len().div_ceil(opts.batch_size);
    progress(Progress::Start { epochs: opts.epochs, batches });

    let (mut best_loss, mut best_epoch, mut best) = (f64::INFINITY, 0, snapshot(&named)?);
    let (mut train_losses, mut val_losses) = (Vec::new(), Vec::new());
    for epoch in 1..=opts.epochs {
        // Fisher-Yates with the seeded generator.
        for i in (1..order.len()).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        let mut total = 0.0;
        for chunk in order.chunks(opts.batch_size) {
            let x = p.batch(chunk, device)?;
            let y = Tensor::from_vec(
                scaled_targets(opts.target, scale, &p.future, chunk),
                chunk.len(),
                device,
            )?;
            let l = loss(opts.target.kind, &net.forward(&x)?, &y)?;
            opt.backward_step(&l)?;
            total += l.to_dtype(DType::F64)?.to_scalar::<f64>()? * chunk.len() as f64;
            progress(Progress::Batch { epoch });
        }
        let train_loss = total / order.len() as f64;
        let val_loss = loss(opts.target.kind, &net.forward(&val_x)?, &val_y)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        if !train_loss.is_finite() || !val_loss.is_finite() {
            return Err(Error::Data(format!(
                "training diverged at epoch {epoch} (loss {train_loss}, validation {val_loss}): \
                 lower the learning rate"
            )));
        }
        train_losses.push(train_loss);
        val_losses.push(val_loss);
        let improved = val_loss < best_loss;
        if improved {
            best_loss = val_loss;
            best_epoch = epoch;
            best = snapshot(&named)?;
        }
        progress(Progress::Epoch { epoch, train_loss, validation_loss: val_loss, best: improved });
        if epoch - best_epoch >= opts.patience {
            break;
        }
    }
    for (name, var) in &named {
        var.set(&best[name])?;
    }

    let train_split = split_info(&p, &train_idx, 0, train_end);
    let val_split = split_info(&p, &val_idx, train_end, val_end);
    let test_split = split_info(&p, &test_idx, val_end, n);
    let placeholder = EvalReport {
        samples: 0,
        mse: f64::NAN,
        baseline_mse: f64::NAN,
        accuracy: f64::NAN,
        baseline_accuracy: f64::NAN,
        ic: f64::NAN,
        rank_ic: f64::NAN,
    };
    let report = TrainReport {
        data: data.to_string(),
        bars: n,
        options: opts.clone(),
        train: train_split,
        validation: val_split,
        test: test_split,
        epochs_run: train_losses.len(),
        best_epoch,
        train_loss: train_losses,
        validation_loss: val_losses,
        validation_metrics: placeholder,
        test_metrics: placeholder,
        baseline,
    };
    let config = ForecasterConfig {
        format: FORMAT.to_string(),
        arch: opts.arch.clone(),
        target: opts.target,
        feature_version: features::VERSION,
        normalizer: norm,
        target_scale: scale,
        shrink: 1.0,
        training: report,
    };
    let mut model = Forecaster::from_vb(config, vb, device, None)?;
    model.varmap = Some(varmap);
    model.config.shrink = fit_shrink(&model, &p, &val_idx)?;
    let validation_metrics = score(&model, &p, &val_idx)?;
    let test_metrics = score(&model, &p, &test_idx)?;
    model.config.training.validation_metrics = validation_metrics;
    model.config.training.test_metrics = test_metrics;
    let report = model.config.training.clone();
    Ok((model, report))
}

/// The shrinkage toward the baseline (0, 0.01, ..., 1) with the lowest validation loss: a
/// weak signal learnt with a training-period amplitude is scaled down to what held out of
/// sample. Only validation data is used, so the test split stays untouched.
fn fit_shrink(model: &Forecaster, p: &Prepared, idx: &[usize]) -> Result<f64> {
    let mut raw = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(4096) {
        raw.extend(model.forward_raw(&p.batch(chunk, model.device())?)?);
    }
    let cfg = &model.config;
    let kind = cfg.target.kind;
    let base = super::logit(cfg.training.baseline);
    let loss_at = |b: f64| -> f64 {
        raw.iter()
            .zip(idx)
            .map(|(&r, &t)| {
                let y = p.future[t];
                match kind {
                    TargetKind::Return => {
                        let pred = b * r as f64 * cfg.target_scale.std + cfg.target_scale.mean;
                        (pred - y) * (pred - y)
                    }
                    TargetKind::Sign => {
                        let z = base + b * (r as f64 - base);
                        let up = y > 0.0;
                        // Log loss, computed stably from the logit.
                        let s = if up { -z } else { z };
                        s.max(0.0) + (-s.abs()).exp().ln_1p()
                    }
                }
            })
            .sum()
    };
    let mut best = (f64::INFINITY, 1.0);
    for k in 0..=100 {
        let b = k as f64 / 100.0;
        let l = loss_at(b);
        if l < best.0 {
            best = (l, b);
        }
    }
    Ok(best.1)
}

fn score(model: &Forecaster, p: &Prepared, idx: &[usize]) -> Result<EvalReport> {
    let mut preds = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(4096) {
        preds.extend(model.predict_batch(&p.batch(chunk, model.device())?)?);
    }
    let realised: Vec<f64> = idx.iter().map(|&t| p.future[t]).collect();
    Ok(metrics(model.config.target.kind, model.config.training.baseline, &preds, &realised))
}

fn metrics(kind: TargetKind, baseline: f64, preds: &[f64], realised: &[f64]) -> EvalReport {
    let n = preds.len().max(1) as f64;
    let (mut mse, mut base_mse) = (0.0, 0.0);
    let (mut hits, mut base_hits, mut moved) = (0usize, 0usize, 0usize);
    // The direction a prediction calls: the sign of the return, or p > 0.5.
    let call = |x: f64| match kind {
        TargetKind::Return => x > 0.0,
        TargetKind::Sign => x > 0.5,
    };
    for (&p, &r) in preds.iter().zip(realised) {
        let truth = match kind {
            TargetKind::Return => r,
            TargetKind::Sign => f64::from(u8::from(r > 0.0)),
        };
        mse += (p - truth) * (p - truth);
        base_mse += (baseline - truth) * (baseline - truth);
        if r != 0.0 {
            moved += 1;
            hits += usize::from(call(p) == (r > 0.0));
            base_hits += usize::from(call(baseline) == (r > 0.0));
        }
    }
    let moved_n = moved.max(1) as f64;
    EvalReport {
        samples: preds.len(),
        mse: mse / n,
        baseline_mse: base_mse / n,
        accuracy: hits as f64 / moved_n,
        baseline_accuracy: base_hits as f64 / moved_n,
        ic: pearson(preds, realised),
        rank_ic: pearson(&ranks(preds), &ranks(realised)),
    }
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    if a.len() < 2 {
        return f64::NAN;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 { 0.0 } else { sab / (saa * sbb).sqrt() }
}

/// Average ranks (ties share their mean rank).
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Scores a forecaster on `bars` strictly after its validation split: only samples whose
/// first feature bar is later than the last bar the model was trained or early-stopped on.
pub fn evaluate(model: &Forecaster, bars: &[Bar]) -> Result<EvalReport> {
    let cfg = model.config();
    let ds = features::frame(bars, cfg.target.horizon)?;
    let p = Prepared::new(&ds, &cfg.normalizer, model.window());
    let after = cfg.training.validation.end_ts;
    // As the test split: the decision bar postdates every bar whose return the model was
    // trained or early-stopped on (features look back at earlier bars, as they would live).
    let idx: Vec<usize> = (0..bars.len())
        .filter(|&t| ds.ts[t] > after && p.window_ok[t] && p.future[t].is_finite())
        .collect();
    if idx.is_empty() {
        return Err(Error::Data(format!(
            "no bars after the model's validation split (which ends at ts {after}) with a full \
             {}-bar lookback and a {}-bar target: evaluate on later data",
            model.window() - 1 + features::WARMUP,
            cfg.target.horizon
        )));
    }
    score(model, &p, &idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![2.5, 0.0, 2.5, 1.0]);
    }

    #[test]
    fn metrics_of_a_perfect_and_a_constant_forecast() {
        let r = [0.01, -0.02, 0.03, -0.01];
        let m = metrics(TargetKind::Return, 0.0, &r, &r);
        assert_eq!(m.mse, 0.0);
        assert_eq!(m.accuracy, 1.0);
        assert!((m.ic - 1.0).abs() < 1e-12);
        assert!(m.baseline_mse > 0.0 && m.beats_baseline());
        let c = metrics(TargetKind::Sign, 0.5, &[0.9, 0.1, 0.9, 0.1], &r);
        assert!((c.mse - 0.01).abs() < 1e-12 && c.accuracy == 1.0);
    }
}
