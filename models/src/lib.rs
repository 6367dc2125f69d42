//! # kairos-models
//!
//! Models for Kairos agents, with Candle, on CPU and on NVIDIA GPUs (the `cuda` feature):
//!
//! - [`device`]: `cpu` / `cuda` / `cuda:N` to a candle device, in one place;
//! - [`embed`]: sentence embeddings with all-MiniLM-L6-v2 (BERT), mean-pooled and normalised.
//!
//! Forecasters, the small LLM and the ML strategies build on these.

pub mod device;
pub mod embed;
mod error;
pub mod features;
pub mod forecast;

pub use device::device;
pub use error::{Error, Result};

/// Whether this build was compiled with the `cuda` feature.
pub const CUDA_ENABLED: bool = cfg!(feature = "cuda");
