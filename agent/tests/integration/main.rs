//! Integration tests of kairos-agent, in one test binary. One binary per file would link the
//! whole dependency tree once per file: minutes of linking and gigabytes of disk in CI.
//! `cargo test -p kairos-agent --test integration MODULE::` runs one file's tests.

#[path = "../../../chain/tests/integration/common/mod.rs"]
mod common;

mod binance_rest;
mod chain_venue;
mod check_cli;
mod cli;
mod deploy;
mod journal;
mod live;
mod ml_cli;
mod onchain;
mod paper;
mod paper_faults;
mod paper_models;
mod replay;
mod report_browser;
mod router;
mod run;
mod sweep_cli;
mod top;
mod wallet;
mod worker;
