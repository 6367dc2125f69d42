//! The crate's error type.

use std::path::PathBuf;

/// Errors from devices, model files and inference.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The device cannot be used.
    #[error("device {spec:?}: {reason}")]
    Device {
        /// What was asked for.
        spec: String,
        /// Why it cannot be had.
        reason: String,
    },
    /// A model file is missing or malformed.
    #[error("{path}: {reason}")]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
