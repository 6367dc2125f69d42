//! Market data events: bars, trades, top-of-book quotes and order-book deltas.

use serde::{Deserialize, Serialize};

use crate::{Fixed, InstrumentId, Timestamp};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buy: increases the position.
    Buy,
    /// Sell: decreases the position (or opens a short).
    Sell,
}

impl Side {
    /// +1 for buys, -1 for sells.
    pub const fn sign(self) -> f64 {
        match self {
            Side::Buy => 1.0,
            Side::Sell => -1.0,
        }
    }

    /// The other side.
    pub const fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// An OHLCV bar.
///
/// `ts` is the bar's label as the data source gives it (the open time for exchange candles).
/// A strategy receives a bar only once it has closed: its `high`, `low` and `close` are final.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// The instrument.
    pub instrument: InstrumentId,
    /// The bar's label (open time).
    pub ts: Timestamp,
    /// First price.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last price.
    pub close: f64,
    /// Traded quantity.
    pub volume: f64,
}

impl Bar {
    /// `(high + low + close) / 3`, the typical price used by VWAP and CCI.
    pub fn typical_price(&self) -> f64 {
        (self.high + self.low + self.close) / 3.0
    }

    /// Whether `price` lies within the bar's low..=high.
    pub fn contains(&self, price: f64) -> bool {
        self.low <= price && price <= self.high
    }
}

/// One trade printed on the venue.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Exchange time.
    pub ts: Timestamp,
    /// Price.
    pub price: f64,
    /// Quantity.
    pub size: f64,
    /// The aggressor's side.
    pub aggressor: Side,
}

/// Best bid and offer (level 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Exchange time.
    pub ts: Timestamp,
    /// Best bid price.
    pub bid: f64,
    /// Quantity at the best bid.
    pub bid_size: f64,
    /// Best ask price.
    pub ask: f64,
    /// Quantity at the best ask.
    pub ask_size: f64,
}

impl Quote {
    /// `(bid + ask) / 2`.
    pub fn mid(&self) -> f64 {
        (self.bid + self.ask) / 2.0
    }
}

/// Which side of the book a level belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BookSide {
    /// Resting buy orders.
    Bid,
    /// Resting sell orders.
    Ask,
}

/// A change to one price level of an L2 order book: the new total size at `price`
/// (zero removes the level).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BookDelta {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Exchange time.
    pub ts: Timestamp,
    /// Bid or ask.
    pub side: BookSide,
    /// The level's price.
    pub price: f64,
    /// The new size at that level; 0 removes it.
    pub size: f64,
    /// Venue sequence number, for gap detection.
    pub sequence: u64,
}

/// A change to an L2 book as a feed message brings it: new total sizes at some levels of each
/// side (size zero removes the level), or the whole book when `snapshot` is set. The runtime
/// applies it to [`Context::book`](crate::Context::book) before
/// [`Strategy::on_book`](crate::Strategy::on_book) sees it; prices and sizes are the venue's
/// exact decimals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BookUpdate<'a> {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Exchange time.
    pub ts: Timestamp,
    /// The venue's sequence number after this update (Binance's `u`, Coinbase's sequence).
    pub sequence: u64,
    /// Changed bid levels `(price, new size)`.
    pub bids: &'a [(Fixed, Fixed)],
    /// Changed ask levels.
    pub asks: &'a [(Fixed, Fixed)],
    /// The levels are the whole book (a snapshot), not changes.
    pub snapshot: bool,
}

/// Any market event, as the runtimes put them on one time-ordered stream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum MarketEvent {
    /// A closed bar.
    Bar(Bar),
    /// A trade print.
    Trade(Trade),
    /// A top-of-book quote.
    Quote(Quote),
    /// An order-book change.
    Book(BookDelta),
}

impl MarketEvent {
    /// The event's timestamp.
    pub fn ts(&self) -> Timestamp {
        match self {
            MarketEvent::Bar(b) => b.ts,
            MarketEvent::Trade(t) => t.ts,
            MarketEvent::Quote(q) => q.ts,
            MarketEvent::Book(d) => d.ts,
        }
    }

    /// The instrument the event is about.
    pub fn instrument(&self) -> InstrumentId {
        match self {
            MarketEvent::Bar(b) => b.instrument,
            MarketEvent::Trade(t) => t.instrument,
            MarketEvent::Quote(q) => q.instrument,
            MarketEvent::Book(d) => d.instrument,
        }
    }
}
