//! # kairos-engine
//!
//! The one event loop every mode runs: a bar backtest, a replay of a recorded feed, paper
//! trading on live feeds and (later) live trading are the same [`Engine`] with a different
//! [`Clock`], different event sources and a different [`Execution`] client.
//!
//! The engine is synchronous and free of any async runtime. Drivers feed it events in time
//! order: the bar backtest loops over its bars ([`Engine::bar`]); a replay over a recording's
//! messages ([`Engine::market`], [`Engine::book`], [`Engine::data`]); the live runtime takes
//! events from its feeds' channels and calls the same methods, and [`Engine::advance`] when a
//! timer comes due on the [`Clock`]. Everything between an event and the strategy (timers,
//! execution reports, the strategy's view of its orders, trading halts) is here, so a fix to
//! order handling reaches every mode at once.
//!
//! Execution clients: the bar venue lives in `kairos-backtests` (it fills against bars, as
//! backtesting.py does); [`paper::PaperVenue`] fills against a live or recorded L2 book with a
//! queue-position model, latency and fees. [`risk::Risk`] wraps any of them with the
//! pre-trade rules, the PnL breakers and the kill switch.

mod clock;
mod engine;
mod execution;
mod models;
pub mod paper;
pub mod risk;

pub use clock::{Clock, HistoricalClock, LiveClock};
pub use engine::Engine;
pub use execution::{Execution, Phase, Report, Reports};
pub use models::{Answering, Models, answer_event};
