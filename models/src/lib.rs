//! # kairos-models
//!
//! Models for Kairos agents, with Candle, on CPU and on NVIDIA GPUs (the `cuda` feature):
//!
//! - [`device`]: `cpu` / `cuda` / `cuda:N` to a candle device, in one place;
//! - [`hub`]: model folders by path, or `hf:OWNER/NAME` from the Hugging Face Hub when online;
//! - [`embed`]: sentence embeddings with all-MiniLM-L6-v2 (BERT), mean-pooled and normalised;
//! - [`features`] and [`forecast`]: bar features (polars for training, a streaming twin for
//!   trading) and MLP/GRU forecasters trained with candle-nn;
//! - [`llm`]: Gemma-3-270M (GGUF, Q4_K_M) for text generation and JSON trading decisions;
//! - [`sentiment`]: bullish/bearish scores for headlines from prototype sentences;
//! - [`strategies`]: `ml_forecast` and `news_sentiment`, registered beside the rule strategies;
//! - [`openai`]: the OpenAI-compatible wire format of the inference worker and router;
//! - [`cache`]: one copy of each model per process, shared across strategies and threads;
//! - [`synthetic`]: the same models with made-up weights (GPU timing and parity runs where
//!   the real weights cannot be fetched).

pub mod asks;
mod bert;
pub mod cache;
pub mod device;
pub mod embed;
mod error;
pub mod features;
pub mod forecast;
pub mod hub;
pub mod llm;
pub mod metrics;
pub mod openai;
pub mod router;
pub mod sentiment;
pub mod strategies;
pub mod synthetic;

pub use candle_core::Device;
pub use device::{device, dtype};
pub use error::{Error, Result};

/// Whether this build was compiled with the `cuda` feature.
pub const CUDA_ENABLED: bool = cfg!(feature = "cuda");
