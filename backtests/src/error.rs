//! The error type of the backtesting crate.

use std::path::PathBuf;

/// Errors from loading data, configuring or running a backtest, and writing reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    // The OS error is in the message and not also a `source`: printed as a chain, it would
    // appear twice (`No such file or directory (os error 2): No such file ...`).
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// A file is not in a format Kairos reads, or its layout is wrong (missing columns, no rows).
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// One row of a file is invalid.
    #[error("{path}: row {row}{at}: {problem}", at = .time.as_ref().map(|t| format!(" ({t})")).unwrap_or_default())]
    BadRow {
        /// The file.
        path: PathBuf,
        /// 1-based data row (the header is not counted).
        row: usize,
        /// The row's timestamp, when it could be read.
        time: Option<String>,
        /// What is wrong with it.
        problem: String,
    },
    /// A data source specification (`sim:SEED[:BARS]`, a resample rule) that does not parse.
    #[error("{0}")]
    Spec(String),
    /// A backtest setting out of range.
    #[error("invalid backtest setting `{key}`: {reason}")]
    Config {
        /// The setting.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// A sweep setting that does not parse or cannot be run (`--grid`, `--where`, ...).
    #[error("sweep `{key}`: {reason}")]
    Sweep {
        /// The setting.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// A chart of a report could not be drawn.
    #[error("report chart `{chart}`: {reason}")]
    Chart {
        /// The chart.
        chart: String,
        /// Why.
        reason: String,
    },
    /// From the strategy SDK (unknown strategy, bad parameters).
    #[error(transparent)]
    Strategy(#[from] kairos_strategies::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
