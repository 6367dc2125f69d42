//! Integration tests of kairos-models, in one test binary. One binary per file would link the
//! whole dependency tree once per file: minutes of linking and gigabytes of disk in CI.
//! `cargo test -p kairos-models --test integration MODULE::` runs one file's tests.

mod common;

mod cuda_parity;
mod forecaster;
mod gemma;
mod minilm;
mod ml_strategy;
mod sentiment;
mod synthetic;
