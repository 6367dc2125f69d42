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
//! An order fills only on bars strictly later than the moment it was submitted, so with several
//! instruments a signal on one cannot trade another at a price from the same instant's open.

use kairos_strategies::{Bar, ClosedTrade, Context, Fill, Order, OrderKind, OrderSize, Side};
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

/// Which moment of a bar is being processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the strategy sees the bar: every kind of order against the whole bar.
    Open,
    /// After the strategy saw the bar: market orders at its close ([`FillAt::Close`] only).
    Close,
}

/// The simulated venue.
#[derive(Debug, Clone, Default)]
pub struct SimulatedVenue {
    cfg: VenueConfig,
    rejected: u64,
}

impl SimulatedVenue {
    /// A venue with these costs.
    pub fn new(cfg: VenueConfig) -> Self {
        Self { cfg, rejected: 0 }
    }

    /// Orders the venue refused or dropped (unaffordable, nothing to close).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Processes the working orders of `bar.instrument` against `bar` in submission order,
    /// booking fills into the context's portfolio and appending them to `fills` and the
    /// closed lots to `closed`. The caller marks the instrument at the bar's open (for
    /// [`Phase::Open`]) or close (for [`Phase::Close`]) first.
    pub fn process(
        &mut self,
        ctx: &mut Context,
        bar: &Bar,
        phase: Phase,
        fills: &mut Vec<Fill>,
        closed: &mut Vec<ClosedTrade>,
    ) {
        let mut orders = ctx.take_orders();
        orders.retain(|order| {
            let eligible = order.request.instrument == bar.instrument
                && match phase {
                    Phase::Open => order.submitted < bar.ts,
                    Phase::Close => {
                        matches!(order.request.kind, OrderKind::Market) && order.submitted <= bar.ts
                    }
                };
            let Some(price) = (if eligible { self.trigger_price(order, bar, phase) } else { None })
            else {
                return true;
            };
            if let Some(fill) = self.fill(ctx, order, bar, price) {
                ctx.portfolio_mut().apply_fill(&fill, closed);
                fills.push(fill);
            }
            false
        });
        ctx.restore_orders(orders);
    }

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

    /// Sizes and prices a triggered order; `None` when it is rejected.
    fn fill(&mut self, ctx: &Context, order: &Order, bar: &Bar, price: f64) -> Option<Fill> {
        let req = &order.request;
        let sign = req.side.sign();
        let slip = 1.0 + sign * self.cfg.slippage_bps / 10_000.0;
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
                let q = (q / lot).floor() * lot;
                (q, price + self.commission(q, price) / q)
            }
            OrderSize::EquityFraction(f) => {
                let f = if f >= 1.0 { 1.0 - f64::EPSILON } else { f };
                let per_unit = price + self.commission(f, price) / f;
                let lots = py_floor_div(margin_available * f, per_unit * lot);
                (lots * lot, per_unit)
            }
        };
        if qty.is_nan() || qty <= 0.0 {
            self.reject(order, "size rounds to zero lots (too little equity, or nothing to close)");
            return None;
        }
        // New exposure beyond what closes the opposite position must be affordable once that
        // position is closed; otherwise only the closing part fills.
        let opening = (qty - opposite).max(0.0);
        let closing = qty - opening;
        let mut qty = qty;
        if opening > 0.0 {
            let freed = closing * price - self.commission(closing, price);
            let margin_after = (margin_available + freed).max(0.0);
            if opening * price_with_costs > margin_after {
                self.reject(order, "not enough equity for the new exposure");
                if closing == 0.0 {
                    return None;
                }
                qty = closing;
            }
        }
        Some(Fill {
            order: order.id,
            instrument: req.instrument,
            ts: bar.ts,
            side: req.side,
            quantity: qty,
            price,
            commission: self.commission(qty, price),
        })
    }

    fn reject(&mut self, order: &Order, why: &str) {
        self.rejected += 1;
        tracing::debug!(order = order.id.0, submitted = %order.submitted, "order rejected: {why}");
    }
}

/// Python's float floor division `a // b`, bit for bit (CPython's `float_floor_div`), so order
/// sizes match backtesting.py's even when `a / b` lands within a rounding error of a whole
/// number.
pub fn py_floor_div(a: f64, b: f64) -> f64 {
    // Fast path: CPython's result can differ from `floor(a / b)` only when the quotient lies
    // within a few ulps of a whole number, so far from one the plain floor is the same value.
    let q = a / b;
    let f = q.floor();
    if q.is_finite() && q - f > 1e-6 && f + 1.0 - q > 1e-6 {
        return f;
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

    #[test]
    fn fast_path_agrees_with_the_exact_algorithm() {
        let exact = super::py_floor_div_exact;
        let mut x = 0.123_456_789_f64;
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
