//! # kairos-feeds
//!
//! Market data for Kairos agents: exchange messages parsed into exact decimals, local order
//! books kept in sync with them, and recorded feeds read back through the same code.
//!
//! - [`binance`]: Binance spot and USD-M combined streams and depth snapshots, and the local
//!   book kept by Binance's procedure;
//! - [`binance_live`]: the live Binance feed (websocket, REST snapshots, resynchronisation);
//! - [`coinbase`]: Coinbase Advanced Trade `level2`, `market_trades` and `heartbeats`, and
//!   books kept by the connection's sequence numbers;
//! - [`ws`]: a websocket connection that stays up (backoff with jitter, dead-peer and
//!   stale-feed timers, planned renewals);
//! - [`coinbase_live`]: the live Coinbase feed (sequence checked, resubscribed after a gap);
//! - [`testkit`]: a misbehaving Binance on 127.0.0.1 (drops, gaps, frozen data, garbage,
//!   shutdown notices) serving a recording, for tests of feeds, engines and strategies;
//! - [`recording`]: recorded feeds (`<receive ns> <raw JSON>` a line, gzipped), and the book
//!   checked against the exchange's own best bid and ask.
//!
//! A crate of its own, depending only on the SDK, so that the parsers and books build, test
//! and benchmark in seconds, without the agent's polars, Candle and alloy.

pub mod binance;
pub mod binance_live;
pub mod coinbase;
pub mod coinbase_live;
mod error;
pub mod normalise;
pub mod record;
pub mod recording;
pub mod testkit;
pub mod ws;

pub use error::{Error, Result};
