//! The simulated venue: when and at what price a backtest's orders fill.
//!
//! - Market orders fill at the open of the first bar after the one they were submitted on
//!   ([`FillAt::NextOpen`], the default), or at the close of the bar they were submitted on
//!   ([`FillAt::Close`]).
//! - A limit order fills once a bar trades through its price: at the limit, or at the open when
//!   the bar gapped through it (a better price). A stop order becomes a market order once a bar
//!   trades at or through its trigger: at the trigger, or at the open when the bar gapped past.
//! - Slippage moves every fill price against the order by `slippage_bps`, but never outside
//!   the bar's low..high: no fill is booked at a price that did not trade.
//! - Commission: `fixed_fee + commission × quantity × price` per fill.
//! - Sizing: [`OrderSize::EquityFraction`] buys as many whole lots as the fraction of the
//!   equity available (equity minus the value of open positions) pays for, commission
//!   included, exactly as backtesting.py sizes its orders (`1.0` is taken as `1 − ε`, which is
//!   its "all in"). An order whose new exposure the account cannot pay for is rejected (after
//!   any part of it that closes an opposite position has filled), as backtesting.py does.
//!
//! An order fills only on bars that open at or after the moment it was submitted (a bar's
//! close, for orders placed in `on_bar`), so with several instruments a signal on one cannot
//! trade another at a price from before the signal.

use kairos_engine::{Execution, Reports};
use kairos_strategies::{
    Bar, Command, Context, Fill, Order, OrderEvent, OrderKind, OrderSize, OrderStatus, OrderUpdate,
    RejectRule, Rejection, Side,
};
use serde::{Deserialize, Serialize};

/// When market orders fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FillAt {
    /// At the next bar's open (no lookahead; the default).
    #[default]
    NextOpen,
    /// At the close of the bar the signal was computed on.
    Close,
}

impl std::str::FromStr for FillAt {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "next-open" | "next_open" => Ok(FillAt::NextOpen),
            "close" => Ok(FillAt::Close),
            _ => Err(crate::Error::Config {
                key: "fill",
                reason: format!("`{s}` is not next-open or close"),
            }),
        }
    }
}

/// Costs and fill timing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VenueConfig {
    /// Commission as a fraction of traded value (0.0002 = 2 bps).
    pub commission: f64,
    /// Fixed fee per fill, in the quote currency.
    pub fixed_fee: f64,
    /// Slippage against each fill, in basis points.
    pub slippage_bps: f64,
    /// When market orders fill.
    pub fill: FillAt,
}

impl Default for VenueConfig {
    fn default() -> Self {
        Self { commission: 0.0, fixed_fee: 0.0, slippage_bps: 0.0, fill: FillAt::NextOpen }
    }
}

pub use kairos_engine::Phase;

/// The simulated venue: the bar backtest's [`Execution`] client. It keeps its own book of
/// working orders (the strategy's view is in the context and changes only through the events
/// it reports).
#[derive(Debug, Clone, Default)]
pub struct SimulatedVenue {
    matcher: Matcher,
    working: Vec<Order>,
}

/// The venue's pricing and sizing, apart from its book of orders (so matching can walk the
/// book while it books fills).
#[derive(Debug, Clone, Default)]
struct Matcher {
    cfg: VenueConfig,
    /// `slippage_bps / 10_000`, divided once (a fill multiplies it by the side's sign, which
    /// is exact, so the price is the same as dividing each time).
    slip: f64,
    rejected: u64,
}

impl SimulatedVenue {
    /// A venue with these costs.
    pub fn new(cfg: VenueConfig) -> Self {
        let slip = cfg.slippage_bps / 10_000.0;
        Self { matcher: Matcher { cfg, slip, rejected: 0 }, working: Vec::new() }
    }
}

impl Matcher {
    /// The price an order trades at on this bar, if it trades.
    fn trigger_price(&self, order: &Order, bar: &Bar, phase: Phase) -> Option<f64> {
        let buy = order.request.side == Side::Buy;
        match (order.request.kind, phase) {
            (OrderKind::Market, Phase::Open) => Some(bar.open),
            (OrderKind::Market, Phase::Close) => Some(bar.close),
            (_, Phase::Close) => None,
            (OrderKind::Limit { price }, Phase::Open) => {
                if buy && bar.low <= price {
                    Some(bar.open.min(price))
                } else if !buy && bar.high >= price {
                    Some(bar.open.max(price))
                } else {
                    None
                }
            }
            (OrderKind::Stop { price }, Phase::Open) => {
                if buy && bar.high >= price {
                    Some(bar.open.max(price))
                } else if !buy && bar.low <= price {
                    Some(bar.open.min(price))
                } else {
                    None
                }
            }
        }
    }

    fn commission(&self, qty: f64, price: f64) -> f64 {
        self.cfg.fixed_fee + qty * price * self.cfg.commission
    }

    /// Sizes, prices and books a triggered order, reporting what happened.
    fn fill(&mut self, ctx: &mut Context, order: &Order, bar: &Bar, price: f64, out: &mut Reports) {
        let req = &order.request;
        let sign = req.side.sign();
        let slip = 1.0 + sign * self.slip;
        let price = (price * slip).clamp(bar.low, bar.high);
        let lot = ctx.instrument(req.instrument).lot_size;
        let pf = ctx.portfolio();
        let position = pf.position(req.instrument).quantity();
        let equity = pf.equity();
        let margin_available = (equity - pf.gross_exposure()).max(0.0);
        // What this order can close of an opposite position.
        let opposite = if position * sign < 0.0 { position.abs() } else { 0.0 };
        let (qty, price_with_costs) = match req.size {
            OrderSize::ClosePosition => (opposite, price),
            OrderSize::Units(q) => {
                let q = ((q - order.filled) / lot).floor() * lot;
                (q, price + self.commission(q, price) / q)
            }
            OrderSize::EquityFraction(f) => {
                let f = if f >= 1.0 { 1.0 - f64::EPSILON } else { f };
                let budget = margin_available * f;
                // A unit costs at least 90% of the price (the commission is above -10%, the
                // fixed fee not negative): a budget short of one lot at that, with room for
                // rounding, sizes to no lot, as the exact sizing below would, without its two
                // divisions (all-in orders of an account that cannot pay one lot are common).
                if budget < 0.9 * price * lot * (1.0 - 1e-9) {
                    (0.0, price)
                } else {
                    let per_unit = price + self.commission(f, price) / f;
                    let lots = py_floor_div(budget, per_unit * lot);
                    (lots * lot, per_unit)
                }
            }
        };
        if qty.is_nan() || qty <= 0.0 {
            let why = "size rounds to zero lots (too little equity, or nothing to close)";
            self.reject(ctx, order, bar, RejectRule::ZeroSize, why, out);
            return;
        }
        // New exposure beyond what closes the opposite position must be affordable once that
        // position is closed; otherwise only the closing part fills.
        let opening = (qty - opposite).max(0.0);
        let closing = qty - opening;
        let mut qty = qty;
        let mut refused = false;
        if opening > 0.0 {
            let freed = closing * price - self.commission(closing, price);
            let margin_after = (margin_available + freed).max(0.0);
            if opening * price_with_costs > margin_after {
                if closing == 0.0 {
                    tracing::debug!(
                        order = order.id.0,
                        opening,
                        price,
                        needed = opening * price_with_costs,
                        available = margin_after,
                        "not enough equity"
                    );
                    let why = "not enough equity for the new exposure";
                    self.reject(ctx, order, bar, RejectRule::InsufficientFunds, why, out);
                    return;
                }
                qty = closing;
                refused = true;
            }
        }
        let fill = Fill {
            order: order.id,
            instrument: req.instrument,
            ts: bar.ts,
            side: req.side,
            quantity: qty,
            price,
            commission: self.commission(qty, price),
        };
        out.fill(ctx, fill);
        if refused {
            let event = OrderEvent {
                order: order.id,
                instrument: req.instrument,
                ts: bar.ts,
                update: OrderUpdate::PartiallyFilled,
            };
            out.order(ctx, event);
            let why =
                "not enough equity for the new exposure beyond the part that closed the position";
            self.reject(ctx, order, bar, RejectRule::InsufficientFunds, why, out);
        } else {
            let done = || OrderUpdate::Filled;
            out.finished(ctx, order.id, req.instrument, bar.ts, OrderStatus::Filled, done);
        }
    }

    fn reject(
        &mut self,
        ctx: &mut Context,
        order: &Order,
        bar: &Bar,
        rule: RejectRule,
        why: &'static str,
        out: &mut Reports,
    ) {
        self.rejected += 1;
        if tracing::enabled!(tracing::Level::DEBUG) {
            log_reject(order, why);
        }
        let update = || OrderUpdate::Rejected(Rejection::new(rule, why));
        let status = OrderStatus::Rejected;
        out.finished(ctx, order.id, order.request.instrument, bar.ts, status, update);
    }
}

impl Execution for SimulatedVenue {
    #[inline(always)]
    fn command(&mut self, ctx: &mut Context, command: &Command, out: &mut Reports) {
        let now = ctx.now();
        let event = |order, instrument, update| OrderEvent { order, instrument, ts: now, update };
        match *command {
            Command::Submit(order) => {
                self.working.push(Order { status: OrderStatus::Accepted, ..order });
                out.accepted(ctx, order.id, order.request.instrument, now);
            }
            Command::Cancel { order, instrument } => {
                let update = match self.working.iter().position(|o| o.id == order) {
                    Some(i) => {
                        self.working.remove(i);
                        OrderUpdate::Cancelled
                    }
                    None => OrderUpdate::CancelRejected(Rejection::new(
                        RejectRule::NotWorking,
                        format!("order {} is not working (filled, cancelled or unknown)", order.0),
                    )),
                };
                out.order(ctx, event(order, instrument, update));
            }
            Command::Modify { order, instrument, change } => {
                let update = match self.working.iter_mut().find(|o| o.id == order) {
                    None => OrderUpdate::ModifyRejected(Rejection::new(
                        RejectRule::NotWorking,
                        format!("order {} is not working (filled, cancelled or unknown)", order.0),
                    )),
                    Some(o) => match modify(o, &change) {
                        Ok(()) => OrderUpdate::Modified(change),
                        Err(r) => OrderUpdate::ModifyRejected(r),
                    },
                };
                out.order(ctx, event(order, instrument, update));
            }
        }
    }

    #[inline]
    fn has_working(&self) -> bool {
        !self.working.is_empty()
    }

    fn working(&self) -> usize {
        self.working.len()
    }

    fn rejected(&self) -> u64 {
        self.matcher.rejected
    }

    #[inline]
    fn fills_at_close(&self) -> bool {
        self.matcher.cfg.fill == FillAt::Close
    }

    /// Processes the working orders of `bar.instrument` against `bar` in submission order.
    /// The engine marks the instrument at the bar's open (for [`Phase::Open`]) or close (for
    /// [`Phase::Close`]) first. An order fills only on a bar that opened at or after the
    /// moment it was placed.
    #[inline(never)]
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar, phase: Phase, out: &mut Reports) {
        let Self { matcher, working } = self;
        // In-place compaction (what `retain` does, without its guard: the book is nearly
        // always one order, and this runs on every bar with an order working).
        let mut kept = 0;
        for i in 0..working.len() {
            let order = &working[i];
            let eligible = order.request.instrument == bar.instrument
                && match phase {
                    Phase::Open => order.submitted <= bar.ts,
                    Phase::Close => matches!(order.request.kind, OrderKind::Market),
                };
            match if eligible { matcher.trigger_price(order, bar, phase) } else { None } {
                Some(price) => matcher.fill(ctx, order, bar, price, out),
                None => {
                    if kept != i {
                        working[kept] = working[i];
                    }
                    kept += 1;
                }
            }
        }
        working.truncate(kept);
    }
}

/// The debug line for a refused order, out of the hot path (its formatting needs a large
/// stack frame).
#[cold]
#[inline(never)]
fn log_reject(order: &Order, why: &str) {
    tracing::debug!(order = order.id.0, submitted = %order.submitted, "order rejected: {why}");
}

fn modify(o: &mut Order, change: &kairos_strategies::Modification) -> Result<(), Rejection> {
    let bad = |why: String| Err(Rejection::new(RejectRule::BadModification, why));
    if let Some(p) = change.price {
        match &mut o.request.kind {
            OrderKind::Limit { price } | OrderKind::Stop { price } => *price = p,
            OrderKind::Market => return bad(format!("order {} is a market order", o.id.0)),
        }
    }
    if let Some(q) = change.quantity {
        if q <= o.filled {
            return bad(format!("quantity {q} is not above the {} already filled", o.filled));
        }
        o.request.size = OrderSize::Units(q);
    }
    Ok(())
}

/// Python's float floor division `a // b`, bit for bit (CPython's `float_floor_div`), so order
/// sizes match backtesting.py's even when `a / b` lands within a rounding error of a whole
/// number.
pub fn py_floor_div(a: f64, b: f64) -> f64 {
    // Fast path: CPython's result can differ from `floor(a / b)` only when the quotient lies
    // within a few ulps of a whole number, so far from one the plain floor is the same value.
    let q = a / b;
    // `floor` without the libm call (baseline x86-64 has no rounding instruction): truncate
    // through an integer, which is exact below 2^52, and step down for negatives.
    if q.abs() < 4.0e15 {
        let t = q as i64 as f64;
        let f = if t > q { t - 1.0 } else { t };
        if q - f > 1e-6 && f + 1.0 - q > 1e-6 {
            return f;
        }
    }
    py_floor_div_exact(a, b)
}

/// CPython's `float_floor_div` algorithm, step for step.
fn py_floor_div_exact(a: f64, b: f64) -> f64 {
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div != 0.0 {
        let floor = div.floor();
        if div - floor > 0.5 { floor + 1.0 } else { floor }
    } else {
        0.0f64.copysign(a / b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_div_like_python() {
        assert_eq!(py_floor_div(7.0, 2.0), 3.0);
        assert_eq!(py_floor_div(-7.0, 2.0), -4.0);
        assert_eq!(py_floor_div(1.0, 0.1), 9.0); // Python: 1.0 // 0.1 == 9.0
        assert_eq!(py_floor_div(0.0, 3.0), 0.0);
    }

    proptest::proptest! {
        /// The slippage factor from the fraction divided once is the one dividing on each
        /// fill gave, bit for bit, on both sides.
        #[test]
        fn slippage_divided_once_is_the_same(bps in 0.0f64..10_000.0) {
            for sign in [1.0f64, -1.0] {
                proptest::prop_assert_eq!(
                    (1.0 + sign * (bps / 10_000.0)).to_bits(),
                    (1.0 + sign * bps / 10_000.0).to_bits()
                );
            }
        }

        /// Where the all-in sizing skips its arithmetic (a budget short of one lot at 90% of
        /// the price), the arithmetic finds no lot, whatever the commission and fee in range.
        #[test]
        fn short_budgets_size_to_no_lot(
            budget_frac in 0.0f64..1.0,
            price in 1e-6f64..1e7,
            lot_exp in -8i32..3,
            commission in -0.0999f64..0.0999,
            fixed_fee in 0.0f64..100.0,
            f in 1e-6f64..1.0,
        ) {
            let lot = 10f64.powi(lot_exp);
            let bound = 0.9 * price * lot * (1.0 - 1e-9);
            let budget = bound * budget_frac;
            let m = Matcher {
                cfg: VenueConfig { commission, fixed_fee, ..VenueConfig::default() },
                slip: 0.0,
                rejected: 0,
            };
            let per_unit = price + m.commission(f, price) / f;
            proptest::prop_assert_eq!(py_floor_div(budget, per_unit * lot), 0.0);
        }
    }

    #[test]
    fn fast_path_agrees_with_the_exact_algorithm() {
        let exact = super::py_floor_div_exact;
        let mut x = 0.123_456_789_f64;
        for v in [-0.5, 2.5, -2.5, 1e15 + 0.5, -1e15 - 0.5, 0.3, -0.3, 4.1e15, f64::NAN] {
            assert_eq!(py_floor_div(v, 1.0).to_bits(), exact(v, 1.0).to_bits(), "{v} // 1");
        }
        for i in 0..100_000 {
            x = (x * 3.987_654_3 + 0.1).fract();
            let a = 1e5 * (1.0 + x) + i as f64;
            let b = 1.0 + x * 5e4;
            assert_eq!(py_floor_div(a, b).to_bits(), exact(a, b).to_bits(), "{a} // {b}");
            // Quotients on and next to whole numbers take the exact path.
            let c = (a / b).floor() * b;
            for v in [c, f64::from_bits(c.to_bits() + 1), f64::from_bits(c.to_bits() - 1)] {
                assert_eq!(py_floor_div(v, b).to_bits(), exact(v, b).to_bits(), "{v} // {b}");
            }
        }
    }
}
