//! Integration tests of kairos-backtests, in one test binary. One binary per file would link the
//! whole dependency tree once per file: minutes of linking and gigabytes of disk in CI.
//! `cargo test -p kairos-backtests --test integration MODULE::` runs one file's tests.

mod common;

mod builtin_strategies;
mod checks;
mod data_loading;
mod montecarlo;
mod parity_backtesting_py;
mod properties;
mod sweep;
mod walk_forward;
