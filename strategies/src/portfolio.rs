//! Portfolio accounting: FIFO lots, positions, cash, equity, realised and unrealised PnL.
//!
//! The accounting is that of a margin account, the convention of backtesting.py and most
//! futures brokers: the *balance* is the starting cash plus realised PnL minus commissions, the
//! *equity* is the balance plus the unrealised PnL of open lots, and the *cash* is the balance
//! minus the cost of the open lots (so `equity == cash + Σ quantity × mark price` holds exactly
//! in real numbers). Fills reduce opposite lots first-in first-out; each fully or partly closed
//! lot becomes a [`ClosedTrade`].
//!
//! Every runtime (backtest, paper, live) applies its fills through [`Portfolio::apply_fill`], so
//! a strategy sees the same numbers in all three.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::{Fill, InstrumentId, Timestamp};

/// An open lot: quantity bought (positive) or sold short (negative) by one fill.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lot {
    /// Signed quantity still open.
    pub quantity: f64,
    /// Entry price.
    pub price: f64,
    /// Entry time.
    pub ts: Timestamp,
    /// Entry commission attributable to the quantity still open.
    pub commission: f64,
}

/// A lot (or part of one) that has been closed: one row of a trade list.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClosedTrade {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Entry time.
    pub entry_time: Timestamp,
    /// Exit time.
    pub exit_time: Timestamp,
    /// Signed size: positive for a long trade, negative for a short one.
    pub size: f64,
    /// Entry price.
    pub entry_price: f64,
    /// Exit price.
    pub exit_price: f64,
    /// Net profit in the quote currency: `size × (exit − entry) − commission`.
    pub pnl: f64,
    /// Net return as a fraction of the entry value:
    /// `sign(size) × (exit / entry − 1) − commission / (|size| × entry)`.
    pub return_frac: f64,
    /// Entry plus exit commission.
    pub commission: f64,
}

/// The open position in one instrument.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Position {
    /// Net signed quantity.
    quantity: f64,
    /// `Σ lot.quantity × lot.price` over open lots.
    cost: f64,
    /// The latest mark price (NaN until the first price arrives).
    last_price: f64,
    /// Open lots, oldest first.
    lots: VecDeque<Lot>,
}

impl Position {
    fn new() -> Self {
        Self { quantity: 0.0, cost: 0.0, last_price: f64::NAN, lots: VecDeque::new() }
    }

    /// Net signed quantity (0 when flat).
    #[inline]
    pub fn quantity(&self) -> f64 {
        self.quantity
    }

    /// Whether there is no open quantity.
    pub fn is_flat(&self) -> bool {
        self.lots.is_empty()
    }

    /// The latest mark price.
    pub fn last_price(&self) -> f64 {
        self.last_price
    }

    /// Quantity-weighted average entry price (NaN when flat).
    pub fn avg_price(&self) -> f64 {
        if self.quantity == 0.0 { f64::NAN } else { self.cost / self.quantity }
    }

    /// Open lots, oldest first.
    pub fn lots(&self) -> impl ExactSizeIterator<Item = &Lot> {
        self.lots.iter()
    }

    /// Mark-to-market value: `quantity × last price` (0 when flat).
    pub fn market_value(&self) -> f64 {
        if self.lots.is_empty() { 0.0 } else { self.quantity * self.last_price }
    }

    /// Unrealised PnL at the last mark: `quantity × last price − cost` (0 when flat).
    #[inline]
    pub fn unrealised_pnl(&self) -> f64 {
        if self.lots.is_empty() { 0.0 } else { self.last_price * self.quantity - self.cost }
    }

    fn recompute(&mut self) {
        self.quantity = self.lots.iter().map(|l| l.quantity).sum();
        self.cost = self.lots.iter().map(|l| l.quantity * l.price).sum();
    }
}

/// Cash, positions and the running totals of one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Portfolio {
    initial_cash: f64,
    balance: f64,
    realised_pnl: f64,
    commissions: f64,
    positions: Vec<Position>,
}

impl Portfolio {
    /// A flat portfolio holding `cash`, with room for `instruments` instruments.
    pub fn new(cash: f64, instruments: usize) -> Self {
        Self {
            initial_cash: cash,
            balance: cash,
            realised_pnl: 0.0,
            commissions: 0.0,
            positions: (0..instruments).map(|_| Position::new()).collect(),
        }
    }

    /// Starting cash.
    pub fn initial_cash(&self) -> f64 {
        self.initial_cash
    }

    /// Starting cash + realised PnL − commissions.
    pub fn balance(&self) -> f64 {
        self.balance
    }

    /// Cash on hand: the balance minus what the open lots cost (short lots add their proceeds).
    pub fn cash(&self) -> f64 {
        self.balance - self.positions.iter().map(|p| p.cost).sum::<f64>()
    }

    /// Balance plus unrealised PnL at the latest marks.
    #[inline]
    pub fn equity(&self) -> f64 {
        // Single-instrument runs are the common case and this runs on every bar.
        if let [p] = self.positions.as_slice() {
            return self.balance + p.unrealised_pnl();
        }
        let mut e = self.balance;
        for p in &self.positions {
            e += p.unrealised_pnl();
        }
        e
    }

    /// Gross realised PnL of closed lots (before commissions).
    pub fn realised_pnl(&self) -> f64 {
        self.realised_pnl
    }

    /// Unrealised PnL of open lots at the latest marks.
    pub fn unrealised_pnl(&self) -> f64 {
        self.positions.iter().map(Position::unrealised_pnl).sum()
    }

    /// Commissions paid so far.
    pub fn commissions(&self) -> f64 {
        self.commissions
    }

    /// The position in `instrument`.
    ///
    /// # Panics
    /// If `instrument` is not one of the portfolio's instruments: ids come from the run's own
    /// instrument table, so this is a programming error, not bad input.
    #[inline]
    pub fn position(&self, instrument: InstrumentId) -> &Position {
        &self.positions[instrument.index()]
    }

    /// All positions, indexed by instrument.
    pub fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// Absolute value of all open positions at their marks (the margin they use at 1x).
    pub fn gross_exposure(&self) -> f64 {
        if let [p] = self.positions.as_slice() {
            return p.market_value().abs();
        }
        self.positions.iter().map(|p| p.market_value().abs()).sum()
    }

    /// Sets the mark price of `instrument`.
    #[inline]
    pub fn mark(&mut self, instrument: InstrumentId, price: f64) {
        self.positions[instrument.index()].last_price = price;
    }

    /// Books a fill: reduces opposite lots FIFO at the fill price, opens a lot with what is
    /// left, charges the commission, and appends a [`ClosedTrade`] for every lot (or part of a
    /// lot) it closed to `closed`.
    ///
    /// The fill's commission is split across the closed parts and the newly opened part in
    /// proportion to their quantities.
    pub fn apply_fill(&mut self, fill: &Fill, closed: &mut Vec<ClosedTrade>) {
        let pos = &mut self.positions[fill.instrument.index()];
        let sign = fill.side.sign();
        let total = fill.quantity;
        let share = |part: f64| {
            if part == total { fill.commission } else { fill.commission * (part / total) }
        };
        let mut remaining = total;
        while remaining > 0.0 {
            let Some(lot) = pos.lots.front_mut() else { break };
            if lot.quantity * sign > 0.0 {
                break;
            }
            let entry = *lot;
            let lot_abs = entry.quantity.abs();
            let take = remaining.min(lot_abs);
            let (size, entry_commission) = if take >= lot_abs {
                pos.lots.pop_front();
                (entry.quantity, entry.commission)
            } else {
                let part = entry.commission * (take / lot_abs);
                lot.quantity += sign * take;
                lot.commission -= part;
                (-sign * take, part)
            };
            remaining -= take;
            let exit_commission = share(take);
            let gross = size * (fill.price - entry.price);
            // One addition, as backtesting.py books it, so balances match it to the last bit.
            self.balance += gross - exit_commission;
            self.realised_pnl += gross;
            let commission = exit_commission + entry_commission;
            closed.push(ClosedTrade {
                instrument: fill.instrument,
                entry_time: entry.ts,
                exit_time: fill.ts,
                size,
                entry_price: entry.price,
                exit_price: fill.price,
                pnl: gross - commission,
                return_frac: size.signum() * (fill.price / entry.price - 1.0)
                    - commission / (size.abs() * entry.price),
                commission,
            });
        }
        if remaining > 0.0 {
            let open_commission = share(remaining);
            self.balance -= open_commission;
            pos.lots.push_back(Lot {
                quantity: sign * remaining,
                price: fill.price,
                ts: fill.ts,
                commission: open_commission,
            });
        }
        self.commissions += fill.commission;
        pos.recompute();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OrderId, Side};

    fn fill(side: Side, quantity: f64, price: f64, commission: f64, t: i64) -> Fill {
        Fill {
            order: OrderId(t as u64),
            instrument: InstrumentId(0),
            ts: Timestamp(t),
            side,
            quantity,
            price,
            commission,
        }
    }

    #[test]
    fn round_trip_books_pnl_and_commission() {
        let mut p = Portfolio::new(1000.0, 1);
        let mut closed = Vec::new();
        p.apply_fill(&fill(Side::Buy, 10.0, 50.0, 1.0, 1), &mut closed);
        p.mark(InstrumentId(0), 55.0);
        assert_eq!(p.cash(), 1000.0 - 500.0 - 1.0);
        assert_eq!(p.equity(), 999.0 + 50.0);
        p.apply_fill(&fill(Side::Sell, 10.0, 60.0, 1.2, 2), &mut closed);
        assert!(p.position(InstrumentId(0)).is_flat());
        assert_eq!(closed.len(), 1);
        let t = closed[0];
        assert_eq!(t.size, 10.0);
        assert_eq!(t.commission, 2.2);
        assert!((t.pnl - (100.0 - 2.2)).abs() < 1e-12);
        assert!((p.equity() - (1000.0 + 100.0 - 2.2)).abs() < 1e-9);
        assert_eq!(p.commissions(), 2.2);
    }

    #[test]
    fn reversal_closes_fifo_then_opens_rest() {
        let mut p = Portfolio::new(1000.0, 1);
        let mut closed = Vec::new();
        p.apply_fill(&fill(Side::Buy, 3.0, 10.0, 0.0, 1), &mut closed);
        p.apply_fill(&fill(Side::Buy, 2.0, 12.0, 0.0, 2), &mut closed);
        p.apply_fill(&fill(Side::Sell, 9.0, 11.0, 0.9, 3), &mut closed);
        assert_eq!(closed.len(), 2);
        assert_eq!((closed[0].size, closed[0].entry_price), (3.0, 10.0));
        assert_eq!((closed[1].size, closed[1].entry_price), (2.0, 12.0));
        assert!((closed[0].commission - 0.3).abs() < 1e-12);
        let pos = p.position(InstrumentId(0));
        assert_eq!(pos.quantity(), -4.0);
        assert_eq!(pos.lots().len(), 1);
        assert!((pos.lots().next().map(|l| l.commission).unwrap_or(0.0) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn partial_close_keeps_rest_of_lot() {
        let mut p = Portfolio::new(1000.0, 1);
        let mut closed = Vec::new();
        p.apply_fill(&fill(Side::Sell, 4.0, 10.0, 0.4, 1), &mut closed);
        p.apply_fill(&fill(Side::Buy, 1.0, 8.0, 0.0, 2), &mut closed);
        assert_eq!(closed[0].size, -1.0);
        assert!((closed[0].pnl - (2.0 - 0.1)).abs() < 1e-12);
        assert_eq!(p.position(InstrumentId(0)).quantity(), -3.0);
    }
}
