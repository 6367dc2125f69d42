//! Sentence embeddings with all-MiniLM-L6-v2 (a 6-layer BERT) through candle-transformers:
//! the model's own tokenizer, attention-masked mean pooling over the last hidden states, L2
//! normalisation, as sentence-transformers computes them. Inputs are batched; padding does not
//! change an embedding.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::{Error, Result};

/// sentence-transformers' `max_seq_length` for this model: longer inputs are truncated.
pub const MAX_TOKENS: usize = 256;

/// A loaded text encoder.
pub struct TextEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder").field("dim", &self.dim).field("device", &self.device).finish()
    }
}

fn file(dir: &Path, name: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    if p.is_file() {
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
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir` onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config_path = file(dir, "config.json")?;
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| Error::ModelFile { path: config_path.clone(), reason: e.to_string() })?;
        let config: Config = serde_json::from_str(&text)
            .map_err(|e| Error::ModelFile { path: config_path.clone(), reason: e.to_string() })?;
        let dim = config.hidden_size;
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
        let weights = file(dir, "model.safetensors")?;
        // Read into memory rather than memory-mapped: mapping is `unsafe` (the file must not
        // change while mapped), and 90 MB read once keeps this crate free of `unsafe`.
        let tensors = candle_core::safetensors::load(&weights, device)
            .map_err(|e| Error::ModelFile { path: weights.clone(), reason: e.to_string() })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let model = BertModel::load(vb, &config)
            .map_err(|e| Error::ModelFile { path: weights, reason: e.to_string() })?;
        Ok(Self { model, tokenizer, device: device.clone(), dim })
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The embedding size (384 for MiniLM-L6).
    pub fn dim(&self) -> usize {
        self.dim
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
        let ids = Tensor::from_vec(ids, (b, t), &self.device)?;
        let types = Tensor::from_vec(types, (b, t), &self.device)?;
        let mask = Tensor::from_vec(mask, (b, t), &self.device)?;
        let unit = self.forward(&ids, &types, &mask)?;
        Ok(unit.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }

    /// Unit-length embeddings `(batch, dim)` for token ids, token types and attention mask,
    /// each `(batch, tokens)` `u32` on this encoder's device: the model without the tokenizer
    /// (fixed-shape benchmarks, inputs tokenised elsewhere).
    pub fn forward(&self, ids: &Tensor, types: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let hidden = self.model.forward(ids, types, Some(mask))?; // (b, t, h)
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (b, t, 1)
        let summed = hidden.broadcast_mul(&m)?.sum(1)?; // (b, h)
        let counts = m.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (b, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norm)?)
    }
}

/// Cosine similarity of two embeddings (their dot product when both are unit length).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}
