//! Integration tests of kairos-feeds, in one test binary (one per file would link the tree once
//! per file). `cargo test -p kairos-feeds --test integration MODULE::` runs one file's tests.

mod binance_live;
mod coinbase_live;
mod ws;
