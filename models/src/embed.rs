//! Sentence embeddings with all-MiniLM-L6-v2 (a 6-layer BERT) on candle: the model's own
//! tokenizer, attention-masked mean pooling over the last hidden states, L2 normalisation, as
//! sentence-transformers computes them. Inputs are batched; padding does not change an
//! embedding. Weights in `f32`, `f16` or `bf16`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::bert::Encoder;
use crate::{Error, Result};

/// sentence-transformers' `max_seq_length` for this model: longer inputs are truncated.
pub const MAX_TOKENS: usize = 256;

/// A BERT sentence encoder without its tokenizer: token ids in, unit-length mean-pooled
/// embeddings out. [`TextEncoder`] adds the tokenizer; this is the part that runs on the device
/// (fixed-shape benchmarks, inputs tokenised elsewhere, [`synthetic`](crate::synthetic)
/// weights).
pub struct Bert {
    model: Encoder,
}

impl std::fmt::Debug for Bert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bert")
            .field("dim", &self.dim())
            .field("dtype", &self.dtype())
            .field("device", self.device())
            .finish()
    }
}

/// Weights may be held as `f32`, `f16` or `bf16`; pooling and normalisation run in `f32`.
fn check_dtype(dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 => Ok(()),
        other => Err(Error::Setting {
            name: "dtype",
            reason: format!("{other:?} is not a float type for BERT weights (f32, f16, bf16)"),
        }),
    }
}

impl Bert {
    /// Loads `config.json` and `model.safetensors` from `dir` onto `device`, converting the
    /// weights to `dtype`.
    pub fn load(dir: impl AsRef<Path>, device: &Device, dtype: DType) -> Result<Self> {
        check_dtype(dtype)?;
        let dir = dir.as_ref();
        let config = read_config(dir)?;
        let weights = file(dir, "model.safetensors")?;
        // Read into memory rather than memory-mapped: mapping is `unsafe` (the file must not
        // change while mapped), and 90 MB read once keeps this crate free of `unsafe`.
        let tensors = candle_core::safetensors::load(&weights, device)
            .map_err(|e| Error::ModelFile { path: weights.clone(), reason: e.to_string() })?;
        let vb = VarBuilder::from_tensors(tensors, dtype, device);
        let model = Encoder::load(vb, &config)
            .map_err(|e| Error::ModelFile { path: weights, reason: e.to_string() })?;
        Ok(Self { model })
    }

    /// A model of `config`'s shapes with made-up weights from `seed`, the same on every device
    /// (see [`synthetic`](crate::synthetic)).
    pub fn synthetic(config: &Config, seed: u64, device: &Device, dtype: DType) -> Result<Self> {
        check_dtype(dtype)?;
        let vb = crate::synthetic::var_builder(seed, dtype, device);
        Ok(Self { model: Encoder::load(vb, config)? })
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        self.model.device()
    }

    /// The weights' dtype.
    pub fn dtype(&self) -> DType {
        self.model.dtype()
    }

    /// The embedding size (384 for MiniLM-L6).
    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    /// Unit-length `f32` embeddings `(batch, dim)` for token ids, token types and attention
    /// mask, each `(batch, tokens)` `u32` on this model's device.
    pub fn forward(&self, ids: &Tensor, types: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let hidden = self.model.forward(ids, types, mask)?.to_dtype(DType::F32)?; // (b, t, h)
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (b, t, 1)
        let summed = hidden.broadcast_mul(&m)?.sum(1)?; // (b, h)
        let counts = m.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (b, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norm)?)
    }
}

fn read_config(dir: &Path) -> Result<Config> {
    let path = file(dir, "config.json")?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::ModelFile { path: path.clone(), reason: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| Error::ModelFile { path, reason: e.to_string() })
}

/// A loaded text encoder: the model's own tokenizer in front of a [`Bert`].
pub struct TextEncoder {
    bert: Bert,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder").field("bert", &self.bert).finish()
    }
}

fn file(dir: &Path, name: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    // Not `is_file`: a pipe or a device that streams the file is fine too.
    if p.exists() && !p.is_dir() {
        Ok(p)
    } else {
        Err(Error::ModelFile {
            path: p,
            reason: "missing: a model folder holds config.json, tokenizer.json and \
                     model.safetensors (scripts/models/fetch.sh makes one)"
                .into(),
        })
    }
}

impl TextEncoder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir` onto `device`,
    /// with `f32` weights.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        Self::load_as(dir, device, DType::F32)
    }

    /// [`load`](Self::load) with the weights in `dtype` (`f16` or `bf16` halve the memory and,
    /// on a GPU, run on its tensor cores).
    pub fn load_as(dir: impl AsRef<Path>, device: &Device, dtype: DType) -> Result<Self> {
        let dir = dir.as_ref();
        let bert = Bert::load(dir, device, dtype)?;
        let tok_path = file(dir, "tokenizer.json")?;
        let mut tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| Error::ModelFile { path: tok_path.clone(), reason: e.to_string() })?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Self { bert, tokenizer })
    }

    /// The model behind the tokenizer.
    pub fn bert(&self) -> &Bert {
        &self.bert
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        self.bert.device()
    }

    /// The embedding size (384 for MiniLM-L6).
    pub fn dim(&self) -> usize {
        self.bert.dim()
    }

    /// How many tokens each text is, after truncation to [`MAX_TOKENS`] (with the special
    /// tokens): what a batch of them costs and what a usage block reports.
    pub fn token_counts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<usize>> {
        texts
            .iter()
            .map(|t| {
                self.tokenizer
                    .encode(t.as_ref(), true)
                    .map(|e| e.get_ids().len())
                    .map_err(|e| Error::Tokenizer(e.to_string()))
            })
            .collect()
    }

    /// Unit-length embeddings of `texts`, one per input, in order.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let enc = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let (b, t) = (enc.len(), enc[0].get_ids().len());
        let mut ids = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        let mut types = Vec::with_capacity(b * t);
        for e in &enc {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
            types.extend_from_slice(e.get_type_ids());
        }
        let device = self.device();
        let ids = Tensor::from_vec(ids, (b, t), device)?;
        let types = Tensor::from_vec(types, (b, t), device)?;
        let mask = Tensor::from_vec(mask, (b, t), device)?;
        Ok(self.bert.forward(&ids, &types, &mask)?.to_vec2::<f32>()?)
    }

    /// [`Bert::forward`]: the model without the tokenizer.
    pub fn forward(&self, ids: &Tensor, types: &Tensor, mask: &Tensor) -> Result<Tensor> {
        self.bert.forward(ids, types, mask)
    }
}

/// Cosine similarity of two embeddings (their dot product when both are unit length).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}
