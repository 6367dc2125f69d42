//! Integration tests of kairos-chain, in one test binary. One binary per file would link the
//! whole dependency tree once per file: minutes of linking and gigabytes of disk in CI.
//! `cargo test -p kairos-chain --test integration MODULE::` runs one file's tests.

mod common;

mod anvil_faults;
mod anvil_feed;
mod anvil_swap;
mod anvil_v3;
mod guardrails;
mod interop;
