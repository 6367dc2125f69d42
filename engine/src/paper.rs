//! The paper venue: fills a strategy's orders against a live or recorded L2 book, as an
//! exchange would, without sending anything anywhere.
//!
//! - **Latency.** A request reaches the venue `entry_latency` after the strategy sent it, and
//!   every answer (acknowledgement, fill, cancel) reaches the strategy `response_latency`
//!   after the venue produced it. Orders are matched against the book as it stands when they
//!   arrive, not when they were sent.
//! - **Market orders** walk the opposite side of the book level by level, each level one fill
//!   at its price, until filled; what the book cannot fill is cancelled (an empty side
//!   rejects the order with [`RejectRule::NoLiquidity`]).
//! - **Limit orders** first take whatever they cross, like a market order bounded by their
//!   price; the rest rests (or is cancelled, for immediate-or-cancel). A resting order joins
//!   the back of its price level's queue: the volume ahead of it is the level's size when it
//!   arrived. It fills only once that volume has traded, with the risk-averse model of
//!   hftbacktest: a trade at the order's price first consumes the queue ahead, and only what
//!   exceeds it fills the order; a level that shrinks without trades shrinks the queue ahead
//!   to at most its new size (cancels are assumed to come from ahead); a trade through the
//!   order's price fills it. No fill is ever larger than the traded volume that caused it. A
//!   book that moves through a resting order (the other side now at or beyond its price)
//!   fills it at its price, up to the size on the other side.
//! - **Stop orders** trigger on a trade at or through their price and then execute as market
//!   orders.
//! - **Fees:** `maker_fee` of the notional on resting fills, `taker_fee` on fills that took
//!   liquidity (negative fees are rebates).
//! - Prices and sizes are rounded to the instrument's tick and lot size (buys down, sells up)
//!   and matched as exact decimals.
//!
//! - **Our own fills take liquidity.** What a taker fill (or a resting order the book moved
//!   through) took from a level is gone from that level, for every later order, until the
//!   feed next reports the level (its new size is the exchange's word) or sends a snapshot;
//!   so two orders never both fill against the same displayed size.
//!
//! What it does not model: the rest of the market's reaction to our orders (a paper order is
//! never seen by the exchange, so the feed never shows it), and margin (the risk engine checks
//! exposure).
//! While an instrument is halted (its book unsynchronised or its feed stale) new orders are
//! rejected and resting ones do not match.

use std::collections::VecDeque;

use kairos_strategies::{
    BookSide, BookUpdate, Command, Context, Fill, Fixed, InstrumentId, Modification, Order,
    OrderEvent, OrderId, OrderKind, OrderSize, OrderUpdate, RejectRule, Rejection, Side,
    TimeInForce, Timestamp, Trade,
};
use serde::{Deserialize, Serialize};

use crate::{Execution, Reports};

/// Fees and latencies of the paper venue.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaperConfig {
    /// Fee on fills of resting orders, as a fraction of notional (0.0001 = 1 bp; negative is
    /// a rebate).
    pub maker_fee: f64,
    /// Fee on fills that take liquidity.
    pub taker_fee: f64,
    /// Nanoseconds from the strategy sending a request to the venue acting on it.
    pub entry_latency_ns: i64,
    /// Nanoseconds from the venue answering to the strategy hearing it.
    pub response_latency_ns: i64,
}

impl Default for PaperConfig {
    fn default() -> Self {
        // Binance spot's base tier, and a round trip typical of a well-placed server.
        Self {
            maker_fee: 0.001,
            taker_fee: 0.001,
            entry_latency_ns: 1_000_000,
            response_latency_ns: 1_000_000,
        }
    }
}

impl PaperConfig {
    /// Checks every setting, naming the first one out of range.
    pub fn validate(&self) -> Result<(), String> {
        for (key, fee) in [("maker_fee", self.maker_fee), ("taker_fee", self.taker_fee)] {
            if !(fee.is_finite() && (-0.01..0.1).contains(&fee)) {
                return Err(format!(
                    "{key} = {fee} is outside [-0.01, 0.1) (it is a fraction: 0.001 = 0.1%)"
                ));
            }
        }
        for (key, ns) in [
            ("entry_latency_ns", self.entry_latency_ns),
            ("response_latency_ns", self.response_latency_ns),
        ] {
            if !(0..=60_000_000_000).contains(&ns) {
                return Err(format!("{key} = {ns} is outside 0 to 60 s"));
            }
        }
        Ok(())
    }
}

/// Counts of what the paper venue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PaperStats {
    /// Fills of resting orders.
    pub maker_fills: u64,
    /// Fills that took liquidity.
    pub taker_fills: u64,
    /// Orders refused.
    pub rejected: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Resting {
    Limit(Fixed),
    Stop(f64),
}

#[derive(Debug, Clone)]
struct Working {
    id: OrderId,
    instrument: InstrumentId,
    side: Side,
    kind: Resting,
    remaining: Fixed,
    filled: Fixed,
    /// Volume at this price that must trade before this order.
    queue_ahead: Fixed,
    expires: Option<Timestamp>,
}

#[derive(Debug, Clone)]
enum Outgoing {
    Fill(Fill),
    Order(OrderEvent),
}

/// The paper venue (see the module comment).
#[derive(Debug, Clone, Default)]
pub struct PaperVenue {
    cfg: PaperConfig,
    inbound: VecDeque<(Timestamp, Command)>,
    outbound: VecDeque<(Timestamp, Outgoing)>,
    working: Vec<Working>,
    positions: Vec<f64>,
    stats: PaperStats,
    taken: Taken,
}

/// Liquidity our own fills took from levels of the book the feed shows, per level, until the
/// feed next reports the level. Nearly always empty or a few levels: searched linearly.
#[derive(Debug, Clone, Default)]
struct Taken(Vec<(InstrumentId, BookSide, Fixed, Fixed)>);

impl Taken {
    /// What is left of a level of displayed `size` at `price`.
    fn left(&self, instrument: InstrumentId, side: BookSide, price: Fixed, size: Fixed) -> Fixed {
        let taken = self
            .0
            .iter()
            .find(|t| t.0 == instrument && t.1 == side && t.2 == price)
            .map_or(Fixed::ZERO, |t| t.3);
        size.saturating_sub(taken)
    }

    fn take(&mut self, instrument: InstrumentId, side: BookSide, price: Fixed, qty: Fixed) {
        match self.0.iter_mut().find(|t| t.0 == instrument && t.1 == side && t.2 == price) {
            Some(t) => t.3 = t.3.checked_add(qty).unwrap_or(t.3),
            None => self.0.push((instrument, side, price, qty)),
        }
    }

    /// Takes up to `want` from `levels` (`(price, displayed size)`, best first) of `side`,
    /// less what we took of each before; returns what it took at each price.
    fn consume(
        &mut self,
        instrument: InstrumentId,
        side: BookSide,
        levels: impl Iterator<Item = (Fixed, Fixed)>,
        want: Fixed,
    ) -> Vec<(Fixed, Fixed)> {
        let mut took = Vec::new();
        let mut left = want;
        for (price, size) in levels {
            if left.is_zero() {
                break;
            }
            let q = left.min(self.left(instrument, side, price, size));
            if q.is_zero() {
                continue;
            }
            self.take(instrument, side, price, q);
            took.push((price, q));
            left = left.saturating_sub(q);
        }
        took
    }

    /// The feed reported these levels (or the whole book): their sizes are the exchange's
    /// again.
    fn reported(&mut self, update: &BookUpdate<'_>) {
        if self.0.is_empty() {
            return;
        }
        let named = |side: BookSide, price: Fixed| {
            let levels = match side {
                BookSide::Bid => update.bids,
                BookSide::Ask => update.asks,
            };
            levels.iter().any(|l| l.0 == price)
        };
        self.0.retain(|t| t.0 != update.instrument || !(update.snapshot || named(t.1, t.2)));
    }
}

impl PaperVenue {
    /// A paper venue with these fees and latencies.
    pub fn new(cfg: PaperConfig) -> Self {
        Self { cfg, ..Self::default() }
    }

    /// What it did so far.
    pub fn stats(&self) -> PaperStats {
        self.stats
    }

    /// The venue's own position in `instrument` (fills count here when they happen, in the
    /// strategy's portfolio when their report arrives).
    pub fn position(&self, instrument: InstrumentId) -> f64 {
        self.positions.get(instrument.index()).copied().unwrap_or(0.0)
    }

    fn send(&mut self, ctx: &mut Context, at: Timestamp, what: Outgoing, out: &mut Reports) {
        if self.cfg.response_latency_ns == 0 {
            deliver(ctx, what, out);
        } else {
            let when = Timestamp(at.0.saturating_add(self.cfg.response_latency_ns));
            self.outbound.push_back((when, what));
        }
    }

    fn event(
        &mut self,
        ctx: &mut Context,
        at: Timestamp,
        order: OrderId,
        instrument: InstrumentId,
        update: OrderUpdate,
        out: &mut Reports,
    ) {
        self.send(ctx, at, Outgoing::Order(OrderEvent { order, instrument, ts: at, update }), out);
    }

    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        ctx: &mut Context,
        at: Timestamp,
        id: OrderId,
        instrument: InstrumentId,
        side: Side,
        qty: Fixed,
        price: Fixed,
        maker: bool,
        out: &mut Reports,
    ) {
        let (q, p) = (qty.to_f64(), price.to_f64());
        let fee = if maker { self.cfg.maker_fee } else { self.cfg.taker_fee };
        if maker {
            self.stats.maker_fills += 1;
        } else {
            self.stats.taker_fills += 1;
        }
        let i = instrument.index();
        if self.positions.len() <= i {
            self.positions.resize(i + 1, 0.0);
        }
        self.positions[i] += side.sign() * q;
        let fill = Fill {
            order: id,
            instrument,
            ts: at,
            side,
            quantity: q,
            price: p,
            commission: q * p * fee,
        };
        self.send(ctx, at, Outgoing::Fill(fill), out);
    }

    fn reject(
        &mut self,
        ctx: &mut Context,
        at: Timestamp,
        order: &Order,
        rule: RejectRule,
        reason: String,
        out: &mut Reports,
    ) {
        self.stats.rejected += 1;
        let update = OrderUpdate::Rejected(Rejection::new(rule, reason));
        self.event(ctx, at, order.id, order.request.instrument, update, out);
    }

    /// The order's size in lots, as the venue takes it.
    fn size(&self, ctx: &Context, order: &Order, price: Option<Fixed>) -> Option<Fixed> {
        let r = &order.request;
        let inst = ctx.instrument(r.instrument);
        match r.size {
            OrderSize::Units(q) => inst.venue_quantity(q),
            OrderSize::ClosePosition => {
                let pos = self.position(r.instrument);
                (pos * r.side.sign() < 0.0).then(|| inst.venue_quantity(pos.abs())).flatten()
            }
            OrderSize::EquityFraction(f) => {
                let book = ctx.book(r.instrument);
                let touch = match r.side {
                    Side::Buy => book.best_ask(),
                    Side::Sell => book.best_bid(),
                };
                let p = price.or(touch.map(|t| t.0))?.to_f64();
                inst.venue_quantity(f * ctx.equity().max(0.0) / p)
            }
        }
    }

    /// Takes liquidity for `qty` on the side opposite `side`, at prices no worse than
    /// `limit`; returns what filled.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        ctx: &mut Context,
        at: Timestamp,
        id: OrderId,
        instrument: InstrumentId,
        side: Side,
        qty: Fixed,
        limit: Option<Fixed>,
        out: &mut Reports,
    ) -> Fixed {
        let book = ctx.book(instrument);
        let levels: Box<dyn Iterator<Item = (Fixed, Fixed)>> = match side {
            Side::Buy => Box::new(book.asks()),
            Side::Sell => Box::new(book.bids()),
        };
        let within = levels.take_while(|&(price, _)| match (side, limit) {
            (_, None) => true,
            (Side::Buy, Some(l)) => price <= l,
            (Side::Sell, Some(l)) => price >= l,
        });
        let fills = self.taken.consume(instrument, book_side(side.opposite()), within, qty);
        let mut filled = Fixed::ZERO;
        for (p, q) in fills {
            filled = filled.checked_add(q).unwrap_or(filled);
            self.fill(ctx, at, id, instrument, side, q, p, false, out);
        }
        filled
    }

    fn arrive(&mut self, ctx: &mut Context, at: Timestamp, command: Command, out: &mut Reports) {
        match command {
            Command::Submit(order) => self.submit(ctx, at, order, out),
            Command::Cancel { order, instrument } => {
                let update = match self.working.iter().position(|w| w.id == order) {
                    Some(i) => {
                        self.working.remove(i);
                        OrderUpdate::Cancelled
                    }
                    None => OrderUpdate::CancelRejected(not_working(order)),
                };
                self.event(ctx, at, order, instrument, update, out);
            }
            Command::Modify { order, instrument, change } => {
                let update = match self.modify(ctx, order, &change) {
                    Ok(()) => OrderUpdate::Modified(change),
                    Err(r) => OrderUpdate::ModifyRejected(r),
                };
                self.event(ctx, at, order, instrument, update, out);
                // A new price may cross the book.
                if let Some(i) = self.working.iter().position(|w| w.id == order) {
                    self.cross_resting(ctx, at, instrument, Some(i), out);
                }
            }
        }
    }

    fn modify(
        &mut self,
        ctx: &Context,
        id: OrderId,
        change: &Modification,
    ) -> Result<(), Rejection> {
        let Some(w) = self.working.iter_mut().find(|w| w.id == id) else {
            return Err(not_working(id));
        };
        let inst = ctx.instrument(w.instrument);
        let bad = |why: String| Err(Rejection::new(RejectRule::BadModification, why));
        let mut lose_queue = false;
        let mut kind = w.kind;
        if let Some(p) = change.price {
            kind = match w.kind {
                Resting::Limit(old) => {
                    let Some(new) = inst.venue_price(p, w.side) else {
                        return bad(format!("price {p} rounds to zero ticks"));
                    };
                    lose_queue |= new != old;
                    Resting::Limit(new)
                }
                Resting::Stop(_) => Resting::Stop(p),
            };
        }
        let mut remaining = w.remaining;
        if let Some(q) = change.quantity {
            let Some(total) = inst.venue_quantity(q) else {
                return bad(format!("quantity {q} rounds to zero lots"));
            };
            if total <= w.filled {
                return bad(format!(
                    "quantity {total} is not above the {} already filled",
                    w.filled
                ));
            }
            let new = total.saturating_sub(w.filled);
            lose_queue |= new > w.remaining;
            remaining = new;
        }
        w.kind = kind;
        w.remaining = remaining;
        if lose_queue && let Resting::Limit(p) = w.kind {
            let side = book_side(w.side);
            w.queue_ahead = ctx.book(w.instrument).level(side, p);
        }
        Ok(())
    }

    fn submit(&mut self, ctx: &mut Context, at: Timestamp, order: Order, out: &mut Reports) {
        let r = order.request;
        let inst_id = r.instrument;
        if let Some(why) = ctx.halt_reason(inst_id) {
            let reason = format!("{} cannot be traded now: {why}", ctx.instrument(inst_id).symbol);
            return self.reject(ctx, at, &order, RejectRule::TradingHalted, reason, out);
        }
        let limit = match r.kind {
            OrderKind::Limit { price } => {
                match ctx.instrument(inst_id).venue_price(price, r.side) {
                    Some(p) => Some(p),
                    None => {
                        let reason = format!("price {price} rounds to zero ticks");
                        return self.reject(ctx, at, &order, RejectRule::Venue, reason, out);
                    }
                }
            }
            _ => None,
        };
        let Some(qty) = self.size(ctx, &order, limit) else {
            let reason = match r.size {
                OrderSize::ClosePosition => "there is no position to close".to_string(),
                _ => {
                    format!("the size rounds to zero lots of {}", ctx.instrument(inst_id).lot_size)
                }
            };
            return self.reject(ctx, at, &order, RejectRule::ZeroSize, reason, out);
        };
        match r.kind {
            OrderKind::Market => {
                let book = ctx.book(inst_id);
                let empty = match r.side {
                    Side::Buy => book.best_ask().is_none(),
                    Side::Sell => book.best_bid().is_none(),
                };
                if empty {
                    let reason = format!("the {} side of the book is empty", other_side(r.side));
                    return self.reject(ctx, at, &order, RejectRule::NoLiquidity, reason, out);
                }
                self.event(ctx, at, order.id, inst_id, OrderUpdate::Accepted, out);
                let filled = self.take(ctx, at, order.id, inst_id, r.side, qty, None, out);
                self.finish_taker(ctx, at, &order, qty, filled, true, out);
            }
            OrderKind::Limit { .. } => {
                let price = limit.unwrap_or(Fixed::ZERO);
                self.event(ctx, at, order.id, inst_id, OrderUpdate::Accepted, out);
                let filled = self.take(ctx, at, order.id, inst_id, r.side, qty, Some(price), out);
                let rest = r.tif != TimeInForce::Ioc;
                if !self.finish_taker(ctx, at, &order, qty, filled, !rest, out) {
                    return;
                }
                let queue_ahead = ctx.book(inst_id).level(book_side(r.side), price);
                self.working.push(Working {
                    id: order.id,
                    instrument: inst_id,
                    side: r.side,
                    kind: Resting::Limit(price),
                    remaining: qty.saturating_sub(filled),
                    filled,
                    queue_ahead,
                    expires: expiry(r.tif),
                });
            }
            OrderKind::Stop { price } => {
                self.event(ctx, at, order.id, inst_id, OrderUpdate::Accepted, out);
                self.working.push(Working {
                    id: order.id,
                    instrument: inst_id,
                    side: r.side,
                    kind: Resting::Stop(price),
                    remaining: qty,
                    filled: Fixed::ZERO,
                    queue_ahead: Fixed::ZERO,
                    expires: expiry(r.tif),
                });
            }
        }
    }

    /// Reports the outcome of taking `filled` of `qty`; returns whether the rest works on.
    #[allow(clippy::too_many_arguments)]
    fn finish_taker(
        &mut self,
        ctx: &mut Context,
        at: Timestamp,
        order: &Order,
        qty: Fixed,
        filled: Fixed,
        cancel_rest: bool,
        out: &mut Reports,
    ) -> bool {
        let inst = order.request.instrument;
        if filled == qty {
            self.event(ctx, at, order.id, inst, OrderUpdate::Filled, out);
            return false;
        }
        if !filled.is_zero() {
            self.event(ctx, at, order.id, inst, OrderUpdate::PartiallyFilled, out);
        }
        if cancel_rest {
            self.event(ctx, at, order.id, inst, OrderUpdate::Cancelled, out);
            return false;
        }
        true
    }

    /// Fills resting limit orders of `instrument` that the book now crosses (only order `only`
    /// when given).
    fn cross_resting(
        &mut self,
        ctx: &mut Context,
        at: Timestamp,
        instrument: InstrumentId,
        only: Option<usize>,
        out: &mut Reports,
    ) {
        let mut i = 0;
        while i < self.working.len() {
            if only.is_some_and(|k| k != i) {
                i += 1;
                continue;
            }
            let w = &self.working[i];
            let Resting::Limit(price) = w.kind else {
                i += 1;
                continue;
            };
            if w.instrument != instrument {
                i += 1;
                continue;
            }
            // What the other side offers at or beyond our price, less what we took of it, best
            // level first.
            let book = ctx.book(instrument);
            let through: Box<dyn Iterator<Item = (Fixed, Fixed)>> = match w.side {
                Side::Buy => Box::new(book.asks().take_while(move |(p, _)| *p <= price)),
                Side::Sell => Box::new(book.bids().take_while(move |(p, _)| *p >= price)),
            };
            let (side, remaining) = (book_side(w.side.opposite()), w.remaining);
            let took = self.taken.consume(instrument, side, through, remaining);
            let take = took.iter().fold(Fixed::ZERO, |a, (_, q)| a.checked_add(*q).unwrap_or(a));
            if take.is_zero() {
                i += 1;
                continue;
            }
            if self.maker_fill(ctx, at, i, take, price, out) {
                continue; // removed: the next order moved to `i`
            }
            i += 1;
        }
    }

    /// Fills `take` of working order `i` at `price` as maker; returns whether it is now done
    /// (and removed).
    fn maker_fill(
        &mut self,
        ctx: &mut Context,
        at: Timestamp,
        i: usize,
        take: Fixed,
        price: Fixed,
        out: &mut Reports,
    ) -> bool {
        let (id, instrument, side) = {
            let w = &mut self.working[i];
            w.remaining = w.remaining.saturating_sub(take);
            w.filled = w.filled.checked_add(take).unwrap_or(w.filled);
            (w.id, w.instrument, w.side)
        };
        self.fill(ctx, at, id, instrument, side, take, price, true, out);
        if self.working[i].remaining.is_zero() {
            self.working.remove(i);
            self.event(ctx, at, id, instrument, OrderUpdate::Filled, out);
            true
        } else {
            self.event(ctx, at, id, instrument, OrderUpdate::PartiallyFilled, out);
            false
        }
    }
}

fn deliver(ctx: &mut Context, what: Outgoing, out: &mut Reports) {
    match what {
        Outgoing::Fill(f) => out.fill(ctx, f),
        Outgoing::Order(e) => out.order(ctx, e),
    }
}

fn expiry(tif: TimeInForce) -> Option<Timestamp> {
    match tif {
        TimeInForce::Gtd(at) => Some(at),
        _ => None,
    }
}

fn book_side(side: Side) -> BookSide {
    match side {
        Side::Buy => BookSide::Bid,
        Side::Sell => BookSide::Ask,
    }
}

fn other_side(side: Side) -> &'static str {
    match side {
        Side::Buy => "ask",
        Side::Sell => "bid",
    }
}

fn not_working(id: OrderId) -> Rejection {
    Rejection::new(
        RejectRule::NotWorking,
        format!("order {} is not working (filled, cancelled, expired or unknown)", id.0),
    )
}

impl Execution for PaperVenue {
    fn command(&mut self, ctx: &mut Context, command: &Command, out: &mut Reports) {
        let command = *command;
        let now = ctx.now();
        if self.cfg.entry_latency_ns == 0 {
            self.arrive(ctx, now, command, out);
        } else {
            self.inbound
                .push_back((Timestamp(now.0.saturating_add(self.cfg.entry_latency_ns)), command));
        }
    }

    fn has_working(&self) -> bool {
        !self.working.is_empty() || !self.inbound.is_empty() || !self.outbound.is_empty()
    }

    fn working(&self) -> usize {
        self.working.len()
    }

    fn rejected(&self) -> u64 {
        self.stats.rejected
    }

    fn on_trade(&mut self, ctx: &mut Context, trade: &Trade, out: &mut Reports) {
        if self.working.is_empty() || !ctx.tradable(trade.instrument) {
            return;
        }
        let (Some(price), Some(size)) = (Fixed::from_f64(trade.price), Fixed::from_f64(trade.size))
        else {
            return;
        };
        let at = ctx.now();
        // Stops first: a trade at or through the trigger makes them market orders.
        let mut i = 0;
        while i < self.working.len() {
            let w = &self.working[i];
            let triggered = w.instrument == trade.instrument
                && match (w.kind, w.side) {
                    (Resting::Stop(t), Side::Buy) => trade.price >= t,
                    (Resting::Stop(t), Side::Sell) => trade.price <= t,
                    _ => false,
                };
            if !triggered {
                i += 1;
                continue;
            }
            let w = self.working.remove(i);
            let filled = self.take(ctx, at, w.id, w.instrument, w.side, w.remaining, None, out);
            let order = if filled == w.remaining {
                OrderUpdate::Filled
            } else {
                if !filled.is_zero() {
                    self.event(ctx, at, w.id, w.instrument, OrderUpdate::PartiallyFilled, out);
                }
                OrderUpdate::Cancelled
            };
            self.event(ctx, at, w.id, w.instrument, order, out);
        }
        // Resting limits on the side the aggressor hit, best price first, then oldest.
        let hit = trade.aggressor.opposite();
        let mut order: Vec<usize> = (0..self.working.len())
            .filter(|&k| {
                let w = &self.working[k];
                w.instrument == trade.instrument
                    && w.side == hit
                    && matches!(w.kind, Resting::Limit(_))
            })
            .collect();
        let price_of = |w: &Working| match w.kind {
            Resting::Limit(p) => p,
            Resting::Stop(_) => Fixed::ZERO,
        };
        order.sort_by(|&a, &b| {
            let (pa, pb) = (price_of(&self.working[a]), price_of(&self.working[b]));
            let by_price = if hit == Side::Buy { pb.cmp(&pa) } else { pa.cmp(&pb) };
            by_price.then(a.cmp(&b))
        });
        let mut avail = size;
        let mut done = Vec::new();
        for k in order {
            let w = &mut self.working[k];
            let p = price_of(w);
            let through = match hit {
                Side::Buy => p > price,
                Side::Sell => p < price,
            };
            let take = if through {
                w.remaining.min(avail)
            } else if p == price {
                if w.queue_ahead >= size {
                    w.queue_ahead = w.queue_ahead.saturating_sub(size);
                    Fixed::ZERO
                } else {
                    let excess = size.saturating_sub(w.queue_ahead);
                    w.queue_ahead = Fixed::ZERO;
                    w.remaining.min(excess).min(avail)
                }
            } else {
                Fixed::ZERO
            };
            if take.is_zero() {
                continue;
            }
            avail = avail.saturating_sub(take);
            done.push((k, take, p));
        }
        // Fill in priority order; remove finished orders from the highest index down.
        let mut finished = Vec::new();
        for &(k, take, p) in &done {
            let (id, instrument, side) = {
                let w = &mut self.working[k];
                w.remaining = w.remaining.saturating_sub(take);
                w.filled = w.filled.checked_add(take).unwrap_or(w.filled);
                (w.id, w.instrument, w.side)
            };
            self.fill(ctx, at, id, instrument, side, take, p, true, out);
            let update = if self.working[k].remaining.is_zero() {
                finished.push(k);
                OrderUpdate::Filled
            } else {
                OrderUpdate::PartiallyFilled
            };
            self.event(ctx, at, id, instrument, update, out);
        }
        finished.sort_unstable();
        for k in finished.into_iter().rev() {
            self.working.remove(k);
        }
    }

    fn on_book(&mut self, ctx: &mut Context, update: &BookUpdate<'_>, out: &mut Reports) {
        self.taken.reported(update);
        if self.working.is_empty() || !ctx.tradable(update.instrument) {
            return;
        }
        let book = ctx.book(update.instrument);
        for w in self.working.iter_mut().filter(|w| w.instrument == update.instrument) {
            if let Resting::Limit(p) = w.kind {
                w.queue_ahead = w.queue_ahead.min(book.level(book_side(w.side), p));
            }
        }
        self.cross_resting(ctx, ctx.now(), update.instrument, None, out);
    }

    fn next_wakeup(&self) -> Option<Timestamp> {
        let a = self.inbound.front().map(|x| x.0);
        let b = self.outbound.front().map(|x| x.0);
        let c = self.working.iter().filter_map(|w| w.expires).min();
        [a, b, c].into_iter().flatten().min()
    }

    fn wake(&mut self, ctx: &mut Context, out: &mut Reports) {
        let now = ctx.now();
        while let Some(&(at, _)) = self.inbound.front()
            && at <= now
        {
            let Some((at, command)) = self.inbound.pop_front() else { break };
            self.arrive(ctx, at, command, out);
        }
        while let Some(&(at, _)) = self.outbound.front()
            && at <= now
        {
            let Some((_, what)) = self.outbound.pop_front() else { break };
            deliver(ctx, what, out);
        }
        let mut i = 0;
        while i < self.working.len() {
            if self.working[i].expires.is_some_and(|e| e <= now) {
                let w = self.working.remove(i);
                self.event(ctx, now, w.id, w.instrument, OrderUpdate::Expired, out);
            } else {
                i += 1;
            }
        }
    }
}
