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
    /// Input data is unusable (too short, non-finite prices, a model trained on other features).
    #[error("{0}")]
    Data(String),
    /// A forecaster or generation setting is invalid.
    #[error("invalid setting {name}: {reason}")]
    Setting {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
