//! # kairos-models
//!
//! Models for Kairos agents: Candle inference on CPU and CUDA (behind the `cuda` feature),
//! training, the inference router for remote workers, and ML strategies. This crate is the
//! start of that work: it fixes the crate's place in the workspace (it depends on
//! `kairos-strategies` only) and the `cuda` feature every crate above forwards.

/// Whether this build was compiled with the `cuda` feature.
pub const CUDA_ENABLED: bool = cfg!(feature = "cuda");
