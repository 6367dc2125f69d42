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

/// How long an order works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TimeInForce {
    /// Until filled or cancelled (the default).
    #[default]
    Gtc,
    /// Immediate or cancel: whatever does not fill on arrival is cancelled.
    Ioc,
    /// Until the given time, then it expires.
    Gtd(Timestamp),
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
    /// How long it works.
    #[serde(default)]
    pub tif: TimeInForce,
}

impl OrderRequest {
    /// A market order.
    pub fn market(instrument: InstrumentId, side: Side, size: OrderSize) -> Self {
        Self { instrument, side, size, kind: OrderKind::Market, tif: TimeInForce::Gtc }
    }

    /// A limit order.
    pub fn limit(instrument: InstrumentId, side: Side, size: OrderSize, price: f64) -> Self {
        Self { instrument, side, size, kind: OrderKind::Limit { price }, tif: TimeInForce::Gtc }
    }

    /// A stop order.
    pub fn stop(instrument: InstrumentId, side: Side, size: OrderSize, price: f64) -> Self {
        Self { instrument, side, size, kind: OrderKind::Stop { price }, tif: TimeInForce::Gtc }
    }

    /// The same order with another time in force.
    pub fn with_tif(mut self, tif: TimeInForce) -> Self {
        self.tif = tif;
        self
    }

    /// The limit or stop price, if any.
    pub fn price(&self) -> Option<f64> {
        match self.kind {
            OrderKind::Market => None,
            OrderKind::Limit { price } | OrderKind::Stop { price } => Some(price),
        }
    }
}

/// Where an order is in its life, as the strategy knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Sent; the venue has not answered yet.
    Submitted,
    /// The venue took it and it is working.
    Accepted,
    /// Part of it traded; the rest is working.
    PartiallyFilled,
    /// All of it traded.
    Filled,
    /// Cancelled (by the strategy, or the rest of an immediate-or-cancel order).
    Cancelled,
    /// The venue or a rule refused it.
    Rejected,
    /// Its time in force ran out.
    Expired,
}

impl OrderStatus {
    /// Whether the order can no longer trade.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Filled | Self::Cancelled | Self::Rejected | Self::Expired)
    }
}

/// A working order as the strategy sees it: what it asked for and what it has heard back.
/// The venue keeps its own book of orders; this view changes only through [`OrderEvent`]s.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Its id.
    pub id: OrderId,
    /// When the strategy submitted it.
    pub submitted: Timestamp,
    /// What was asked for (with any accepted modification applied).
    pub request: OrderRequest,
    /// Its status.
    pub status: OrderStatus,
    /// Quantity traded so far.
    pub filled: f64,
}

impl Order {
    /// A just-submitted order.
    pub fn new(id: OrderId, submitted: Timestamp, request: OrderRequest) -> Self {
        Self { id, submitted, request, status: OrderStatus::Submitted, filled: 0.0 }
    }

    /// Applies an accepted modification: the new limit or stop price (a market order has
    /// none), the new total quantity.
    pub fn apply_modification(&mut self, change: &Modification) {
        if let Some(p) = change.price {
            match &mut self.request.kind {
                OrderKind::Limit { price } | OrderKind::Stop { price } => *price = p,
                OrderKind::Market => {}
            }
        }
        if let Some(q) = change.quantity {
            self.request.size = OrderSize::Units(q);
        }
    }
}

/// The rule an order, cancel or modification broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectRule {
    /// The size rounds to zero lots (too little equity, or nothing to close).
    ZeroSize,
    /// The account cannot pay for the new exposure.
    InsufficientFunds,
    /// The order's instrument cannot be traded now: its book is not synchronised or its feed
    /// is stale.
    TradingHalted,
    /// There is nothing on the other side of the book to trade against.
    NoLiquidity,
    /// A cancel or modification named an order that is not working (filled, cancelled, or
    /// unknown).
    NotWorking,
    /// The modification is not allowed (a market order's price, a size below what filled).
    BadModification,
    /// A pre-trade risk rule (the risk engine between strategies and venues).
    Risk(RiskRule),
    /// The venue refused it for a reason of its own.
    Venue,
}

impl RejectRule {
    /// The rule's name, as logs and reports print it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ZeroSize => "zero_size",
            Self::InsufficientFunds => "insufficient_funds",
            Self::TradingHalted => "trading_halted",
            Self::NoLiquidity => "no_liquidity",
            Self::NotWorking => "not_working",
            Self::BadModification => "bad_modification",
            Self::Risk(r) => r.name(),
            Self::Venue => "venue",
        }
    }
}

/// The risk engine's rules, each refusing with its own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskRule {
    /// The order's value is above the maximum order notional.
    MaxOrderNotional,
    /// The position in the instrument, with its working orders and this one, would go past
    /// its maximum.
    MaxPosition,
    /// The value of every position, with this order, would go past the maximum in total.
    MaxTotalNotional,
    /// The price is too far from the last trade or the mid (a fat finger), or there is no
    /// price yet to check it against.
    PriceBand,
    /// Too many orders in the last second or minute.
    OrderRate,
    /// The trading state is REDUCING: only orders that shrink a position pass.
    Reducing,
    /// The trading state is HALTED (a breaker or the kill switch): no new orders.
    Halted,
    /// A size or price that is not a positive finite number.
    InvalidOrder,
}

impl RiskRule {
    /// The rule's name, as logs, reports and metrics print it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::MaxOrderNotional => "max_order_notional",
            Self::MaxPosition => "max_position",
            Self::MaxTotalNotional => "max_total_notional",
            Self::PriceBand => "price_band",
            Self::OrderRate => "order_rate",
            Self::Reducing => "reducing",
            Self::Halted => "halted",
            Self::InvalidOrder => "invalid_order",
        }
    }

    /// Every rule, in the order the risk engine checks them.
    pub const ALL: [RiskRule; 8] = [
        Self::InvalidOrder,
        Self::Halted,
        Self::Reducing,
        Self::OrderRate,
        Self::PriceBand,
        Self::MaxOrderNotional,
        Self::MaxPosition,
        Self::MaxTotalNotional,
    ];
}

/// Why something was refused: the rule and a sentence naming the numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The rule.
    pub rule: RejectRule,
    /// What was wrong, for people (static text where no numbers are needed, so a refusal in
    /// a backtest's hot loop allocates nothing).
    pub reason: std::borrow::Cow<'static, str>,
}

impl Rejection {
    /// A rejection.
    pub fn new(rule: RejectRule, reason: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self { rule, reason: reason.into() }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.rule.name())
    }
}

/// A change to an order's price or size, asked with
/// [`Context::modify`](crate::Context::modify).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Modification {
    /// A new limit or stop price.
    pub price: Option<f64>,
    /// A new total quantity in units (what already filled counts towards it).
    pub quantity: Option<f64>,
}

/// What happened to an order, as the venue reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderUpdate {
    /// The venue took the order.
    Accepted,
    /// The venue or a rule refused the order; it never worked.
    Rejected(Rejection),
    /// Part of it traded (the fill itself goes to `on_fill` first).
    PartiallyFilled,
    /// All of it traded.
    Filled,
    /// It was cancelled.
    Cancelled,
    /// A cancel request was refused; the order's state is unchanged.
    CancelRejected(Rejection),
    /// A modification took effect.
    Modified(Modification),
    /// A modification was refused; the order's state is unchanged.
    ModifyRejected(Rejection),
    /// Its time in force ran out.
    Expired,
}

/// One order lifecycle event, delivered to
/// [`Strategy::on_order`](crate::Strategy::on_order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// The order.
    pub order: OrderId,
    /// Its instrument.
    pub instrument: InstrumentId,
    /// When the venue decided it.
    pub ts: Timestamp,
    /// What happened.
    pub update: OrderUpdate,
}

impl OrderEvent {
    /// The order's status after this event, when the event changes it.
    pub fn status(&self) -> Option<OrderStatus> {
        Some(match self.update {
            OrderUpdate::Accepted | OrderUpdate::Modified(_) => OrderStatus::Accepted,
            OrderUpdate::Rejected(_) => OrderStatus::Rejected,
            OrderUpdate::PartiallyFilled => OrderStatus::PartiallyFilled,
            OrderUpdate::Filled => OrderStatus::Filled,
            OrderUpdate::Cancelled => OrderStatus::Cancelled,
            OrderUpdate::Expired => OrderStatus::Expired,
            OrderUpdate::CancelRejected(_) | OrderUpdate::ModifyRejected(_) => return None,
        })
    }
}

/// What a strategy asks its venue to do; the runtime takes these from the
/// [`Context`](crate::Context) after each hook, in the order they were made.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Place a new order.
    Submit(Order),
    /// Cancel a working order.
    Cancel {
        /// The order.
        order: OrderId,
        /// Its instrument.
        instrument: InstrumentId,
    },
    /// Change a working order.
    Modify {
        /// The order.
        order: OrderId,
        /// Its instrument.
        instrument: InstrumentId,
        /// The change.
        change: Modification,
    },
}

impl Command {
    /// The instrument the command is about.
    pub fn instrument(&self) -> InstrumentId {
        match self {
            Command::Submit(o) => o.request.instrument,
            Command::Cancel { instrument, .. } | Command::Modify { instrument, .. } => *instrument,
        }
    }
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
