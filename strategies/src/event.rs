//! Timers and custom data events: how anything that is not market data reaches a strategy.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::Timestamp;

/// A timer's handle, unique within a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(pub u64);

/// A timer a strategy set with [`Context::schedule`](crate::Context::schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    /// Its handle.
    pub id: TimerId,
    /// When it fires.
    pub at: Timestamp,
    /// The strategy's own label for it (which job to do).
    pub tag: u64,
}

/// An instrument became tradable or stopped being so: its book lost or regained
/// synchronisation, its feed went stale or came back, or an operator halted it. While an
/// instrument is not tradable every order for it is rejected with
/// [`RejectRule::TradingHalted`](crate::RejectRule::TradingHalted) and its resting orders do
/// not match; [`Context::tradable`](crate::Context::tradable) says the same at any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradingStatus<'a> {
    /// The instrument.
    pub instrument: crate::InstrumentId,
    /// When it changed (the engine's time: the last event's).
    pub ts: Timestamp,
    /// Whether orders for it can be sent now.
    pub tradable: bool,
    /// Why (`"a gap in the diff stream; waiting for a snapshot"`, `"book synchronised"`).
    pub reason: &'a str,
}

/// A typed event from outside the market feeds: a news item, a model's answer, an on-chain
/// event. The runtime puts it on the same time-ordered stream as market data; the strategy
/// reads the payload with [`Data::get`].
///
/// ```
/// use kairos_strategies::{Data, Timestamp};
///
/// struct Headline { text: String }
///
/// let ev = Data::new(Timestamp(0), "news", Headline { text: "ETF approved".into() });
/// assert_eq!(ev.get::<Headline>().unwrap().text, "ETF approved");
/// assert!(ev.get::<u32>().is_none());
/// ```
#[derive(Clone)]
pub struct Data {
    /// When it happened (or was received).
    pub ts: Timestamp,
    /// Which source produced it (`news`, `forecast`, `uniswap:0x...`).
    pub source: Arc<str>,
    payload: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
}

impl Data {
    /// An event carrying `payload`.
    pub fn new<T: Any + Send + Sync>(
        ts: Timestamp,
        source: impl Into<Arc<str>>,
        payload: T,
    ) -> Self {
        Self {
            ts,
            source: source.into(),
            payload: Arc::new(payload),
            type_name: std::any::type_name::<T>(),
        }
    }

    /// The payload, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.payload.downcast_ref()
    }

    /// Whether the payload is a `T`.
    pub fn is<T: Any>(&self) -> bool {
        self.payload.is::<T>()
    }

    /// The payload's Rust type name (for logs).
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Data")
            .field("ts", &self.ts)
            .field("source", &self.source)
            .field("type", &self.type_name)
            .finish()
    }
}
