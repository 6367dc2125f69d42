//! # kairos-strategies
//!
//! The SDK a quant writes strategy plugins against. It holds the market and order types, the
//! [`Strategy`] trait with its [`Context`], portfolio accounting, streaming indicators, the
//! strategy [`Registry`] and the built-in rule strategies.
//!
//! The crate is deliberately light (no async runtime, no ML, no Ethereum): a strategy compiled
//! against it runs unchanged in a backtest, on paper and live, because every runtime drives it
//! through the same synchronous hooks.
//!
//! ```
//! use kairos_strategies::prelude::*;
//!
//! /// Buys once and holds.
//! #[derive(Default)]
//! struct BuyAndHold { done: bool }
//!
//! impl Strategy for BuyAndHold {
//!     fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
//!         if !self.done {
//!             ctx.buy(bar.instrument, OrderSize::EquityFraction(1.0));
//!             self.done = true;
//!         }
//!     }
//! }
//! ```

pub mod book;
pub mod builtin;
mod context;
mod error;
mod event;
pub mod indicators;
mod instrument;
mod market;
mod model;
mod order;
mod portfolio;
mod registry;
pub mod shared;
mod strategy;
mod time;

pub use book::{Fixed, OrderBook};
pub use context::Context;
pub use error::{Error, Result};
pub use event::{Data, Timer, TimerId, TradingStatus};
pub use instrument::{Instrument, InstrumentId};
pub use market::{Bar, BookDelta, BookSide, BookUpdate, MarketEvent, Quote, Side, Trade};
pub use model::{
    AskId, ChatMessage, ModelAnswer, ModelAsk, ModelFailure, ModelInput, ModelOutput, ModelReply,
    Role,
};
pub use order::{
    Command, Fill, Modification, Order, OrderEvent, OrderId, OrderKind, OrderRequest, OrderSize,
    OrderStatus, OrderUpdate, RejectRule, Rejection, RiskRule, TimeInForce,
};
pub use portfolio::{ClosedTrade, Lot, Portfolio, Position};
pub use registry::{ParamKind, ParamSpec, ParamValue, Params, Registry, StrategyInfo};
pub use shared::SharedSeries;
pub use strategy::Strategy;
pub use time::Timestamp;

/// Everything a strategy author usually needs, in one import.
pub mod prelude {
    pub use crate::indicators::{
        Atr, Bollinger, Cross, Ema, Indicator, Macd, Rsi, Sma, StdDev, Vwap, Wma,
    };
    pub use crate::{
        Bar, BookDelta, BookSide, BookUpdate, Context, Data, Fill, Fixed, Instrument, InstrumentId,
        MarketEvent, ModelAnswer, ModelInput, Modification, OrderBook, OrderEvent, OrderId,
        OrderKind, OrderRequest, OrderSize, OrderStatus, OrderUpdate, Params, Quote, RejectRule,
        Side, Strategy, TimeInForce, Timer, Timestamp, Trade,
    };
}
