//! # kairos-backtests
//!
//! Historical data and the event-driven backtest engine.
//!
//! - [`data`]: OHLCV loading with polars (CSV, gzipped CSV, Parquet, Arrow IPC/feather, JSON
//!   arrays), timestamp detection, validation with row-level errors, resampling, and a seeded
//!   market simulator.
//! - [`engine`]: one time-ordered stream of bars across instruments, a historical clock and a
//!   simulated venue ([`venue`]) driving any [`Strategy`](kairos_strategies::Strategy).
//! - [`stats`] and [`report`]: the summary statistics (backtesting.py's definitions) and the
//!   files a run writes.
//! - [`checks`]: bias checks, lookahead (runs on data cut at several times must agree with
//!   the full run up to each cut) and determinism (repeated runs agree bit for bit).
//! - [`montecarlo`]: trade-order and trade bootstrap resampling and a block bootstrap of
//!   returns, giving bands for final equity and maximum drawdown.
//! - [`sweep`]: parameter sweeps over the same engine, in parallel, with shared indicator
//!   series, random search, shards and their merge.
//!
//! ```no_run
//! use kairos_backtests::{data, engine::{Backtest, BacktestConfig}};
//! use kairos_strategies::Registry;
//!
//! let series = data::load("EURUSD.csv")?;
//! let mut strategy = Registry::with_builtins().build("sma_cross", &[("fast", "10"), ("slow", "20")])?;
//! let result = Backtest::new(BacktestConfig::default()).run(&[series], &mut strategy)?;
//! println!("{:.2}%", result.summary().return_pct);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod checks;
pub mod data;
pub mod engine;
mod error;
mod mem;
pub mod montecarlo;
pub mod report;
pub mod stats;
pub mod sweep;
pub mod time_index;
pub mod venue;

pub use error::{Error, Result};
