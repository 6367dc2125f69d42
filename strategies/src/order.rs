//! Orders, order requests and fills.

use serde::{Deserialize, Serialize};

use crate::{InstrumentId, Side, Timestamp};

/// A run-unique order identifier, assigned in submission order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub u64);

/// How much to trade.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum OrderSize {
    /// A quantity in the instrument's units (rounded down to whole lots by the venue).
    Units(f64),
    /// A fraction of the equity available when the order fills, in (0, 1]: the venue buys as
    /// many whole lots as that amount pays for, commission included. `1.0` means all in.
    EquityFraction(f64),
    /// Whatever the position is when the order fills, so the order flattens it. An order of
    /// this size never opens or flips a position.
    ClosePosition,
}

/// Order type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum OrderKind {
    /// Fill at the next available price (the next bar's open, or the signal bar's close).
    Market,
    /// Fill at `price` or better once the market trades through it.
    Limit {
        /// Limit price.
        price: f64,
    },
    /// Becomes a market order once the market trades at or through `price`.
    Stop {
        /// Trigger price.
        price: f64,
    },
}

/// What a strategy asks for; the [`Context`](crate::Context) turns it into an [`Order`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Buy or sell.
    pub side: Side,
    /// How much.
    pub size: OrderSize,
    /// Market, limit or stop.
    pub kind: OrderKind,
}

impl OrderRequest {
    /// A market order.
    pub fn market(instrument: InstrumentId, side: Side, size: OrderSize) -> Self {
        Self { instrument, side, size, kind: OrderKind::Market }
    }

    /// A limit order.
    pub fn limit(instrument: InstrumentId, side: Side, size: OrderSize, price: f64) -> Self {
        Self { instrument, side, size, kind: OrderKind::Limit { price } }
    }

    /// A stop order.
    pub fn stop(instrument: InstrumentId, side: Side, size: OrderSize, price: f64) -> Self {
        Self { instrument, side, size, kind: OrderKind::Stop { price } }
    }
}

/// A working order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Its id.
    pub id: OrderId,
    /// When the strategy submitted it.
    pub submitted: Timestamp,
    /// What was asked for.
    pub request: OrderRequest,
}

/// An execution: part or all of an order traded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    /// The order that traded.
    pub order: OrderId,
    /// The instrument.
    pub instrument: InstrumentId,
    /// When it traded (the label of the bar it traded in, in a backtest).
    pub ts: Timestamp,
    /// Buy or sell.
    pub side: Side,
    /// Quantity traded, always positive.
    pub quantity: f64,
    /// Price per unit, slippage included.
    pub price: f64,
    /// Fees paid for this fill, in the quote currency.
    pub commission: f64,
}

impl Fill {
    /// The signed quantity: positive for buys.
    pub fn signed_quantity(&self) -> f64 {
        self.side.sign() * self.quantity
    }
}
