//! The execution interface: what the engine asks of a venue, and how a venue answers.

use kairos_strategies::{
    Bar, BookUpdate, ClosedTrade, Command, Context, Fill, OrderEvent, Quote, Timestamp, Trade,
};

/// Which moment of a bar is being processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the strategy sees the bar: orders against the whole bar.
    Open,
    /// After the strategy saw the bar: market orders at its close.
    Close,
}

/// An answer from the venue, waiting to reach the strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A fill (already booked in the portfolio).
    Fill(Fill),
    /// An order lifecycle event.
    Order(OrderEvent),
    /// A delivered report's slot.
    #[doc(hidden)]
    Empty,
}

/// Where a venue puts its answers. [`Reports::fill`] books the fill in the portfolio at once
/// (so the next order's sizing sees it) and queues it for the strategy; the engine delivers
/// queued reports in order after the venue returns.
#[derive(Debug)]
pub struct Reports {
    /// Reports waiting, from `head` on (a plain vector: it empties after every delivery, so
    /// it never needs a ring).
    queue: Vec<Report>,
    head: usize,
    /// Every fill booked, oldest first (when history is kept).
    pub fills: Vec<Fill>,
    /// Every closed trade, in the order they closed (when history is kept).
    pub closed: Vec<ClosedTrade>,
    /// Fills booked in all.
    pub fill_count: u64,
    /// Orders refused because their instrument was halted (by the engine when sent, or by
    /// the venue when they arrived), counted from the events given to [`Reports::order`].
    pub halted_rejects: u64,
    forget: bool,
    deliver_orders: bool,
}

impl Reports {
    /// Reports that keep the history of fills and closed trades (`keep = true`, for backtests
    /// and replays) or only count them (long-running sessions, whose journal keeps them).
    pub fn new(keep: bool) -> Self {
        Self {
            queue: Vec::new(),
            head: 0,
            fills: Vec::new(),
            closed: Vec::new(),
            fill_count: 0,
            halted_rejects: 0,
            forget: !keep,
            deliver_orders: true,
        }
    }

    /// Books `fill` in the portfolio and the strategy's view of its order, and queues it.
    #[inline]
    pub fn fill(&mut self, ctx: &mut Context, fill: Fill) {
        ctx.portfolio_mut().apply_fill(&fill, &mut self.closed);
        ctx.apply_fill(&fill);
        self.fill_count += 1;
        if self.forget {
            self.closed.clear();
        } else {
            self.fills.push(fill);
        }
        self.queue.push(Report::Fill(fill));
    }

    /// Updates the strategy's view of its orders with `event` and queues it for
    /// `on_order` (unless the strategy said it does not read order events).
    #[inline]
    pub fn order(&mut self, ctx: &mut Context, event: OrderEvent) {
        if let kairos_strategies::OrderUpdate::Rejected(r) = &event.update
            && r.rule == kairos_strategies::RejectRule::TradingHalted
        {
            self.halted_rejects += 1;
        }
        ctx.apply_order_event(&event);
        if self.deliver_orders {
            self.queue.push(Report::Order(event));
        }
    }

    /// Reports that the venue took order `order`: [`Reports::order`] with
    /// [`OrderUpdate::Accepted`](kairos_strategies::OrderUpdate::Accepted), without building the
    /// event when nobody reads it.
    #[inline]
    pub fn accepted(
        &mut self,
        ctx: &mut Context,
        order: kairos_strategies::OrderId,
        instrument: kairos_strategies::InstrumentId,
        ts: Timestamp,
    ) {
        if self.deliver_orders {
            let update = kairos_strategies::OrderUpdate::Accepted;
            self.order(ctx, OrderEvent { order, instrument, ts, update });
        } else {
            ctx.set_order_status(order, kairos_strategies::OrderStatus::Accepted);
        }
    }

    /// Reports a final outcome of order `order` (filled, rejected, cancelled, expired) whose
    /// update is built only when someone reads it.
    #[inline]
    pub fn finished(
        &mut self,
        ctx: &mut Context,
        order: kairos_strategies::OrderId,
        instrument: kairos_strategies::InstrumentId,
        ts: Timestamp,
        status: kairos_strategies::OrderStatus,
        update: impl FnOnce() -> kairos_strategies::OrderUpdate,
    ) {
        if self.deliver_orders {
            self.order(ctx, OrderEvent { order, instrument, ts, update: update() });
        } else {
            ctx.set_order_status(order, status);
        }
    }

    /// Whether order events are queued for the strategy (see
    /// [`Strategy::wants_order_events`](kairos_strategies::Strategy::wants_order_events)).
    pub fn set_deliver_orders(&mut self, on: bool) {
        self.deliver_orders = on;
    }

    /// The next report for the strategy.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Report> {
        if self.head < self.queue.len() {
            let r = std::mem::replace(&mut self.queue[self.head], Report::Empty);
            self.head += 1;
            Some(r)
        } else {
            if self.head > 0 {
                self.queue.clear();
                self.head = 0;
            }
            None
        }
    }

    /// Whether reports wait for delivery.
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.head < self.queue.len()
    }
}

/// An execution client: the simulated bar venue, the paper venue, a real venue's adapter.
///
/// # Contract
///
/// - The engine calls it on one thread, in event-time order, with the context's clock set to
///   the moment being processed.
/// - Every [`Command`] gets an answer through `out`, now or later: `Accepted` or `Rejected`
///   for a submission, `Cancelled` or `CancelRejected` for a cancel, `Modified` or
///   `ModifyRejected` for a modification. Fills go through [`Reports::fill`], followed by
///   `PartiallyFilled` or `Filled`.
/// - A venue with latency answers later: it says when with [`Execution::next_wakeup`], and
///   the engine calls [`Execution::wake`] at that time (before any later event).
/// - The market hooks see each event after the context's book reflects it and before the
///   strategy does.
pub trait Execution {
    /// A request from the strategy, at `ctx.now()`.
    fn command(&mut self, ctx: &mut Context, command: &Command, out: &mut Reports);

    /// Whether any order is working at the venue (a cheap check for the hot path).
    fn has_working(&self) -> bool;

    /// How many orders are working.
    fn working(&self) -> usize;

    /// Orders the venue refused.
    fn rejected(&self) -> u64;

    /// A bar of `bar.instrument`, in the given phase.
    #[inline]
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar, phase: Phase, out: &mut Reports) {
        let _ = (ctx, bar, phase, out);
    }

    /// Whether the venue fills market orders at the close of the bar they were placed on
    /// (the engine then runs [`Phase::Close`] after `on_bar`).
    #[inline]
    fn fills_at_close(&self) -> bool {
        false
    }

    /// A trade print.
    fn on_trade(&mut self, ctx: &mut Context, trade: &Trade, out: &mut Reports) {
        let _ = (ctx, trade, out);
    }

    /// A top-of-book quote.
    fn on_quote(&mut self, ctx: &mut Context, quote: &Quote, out: &mut Reports) {
        let _ = (ctx, quote, out);
    }

    /// A book update (already applied to `ctx.book`).
    fn on_book(&mut self, ctx: &mut Context, update: &BookUpdate<'_>, out: &mut Reports) {
        let _ = (ctx, update, out);
    }

    /// When the venue next has something to do on its own (a delayed order arriving, an
    /// answer on its way back, an order expiring).
    #[inline]
    fn next_wakeup(&self) -> Option<Timestamp> {
        None
    }

    /// Does what was due at or before `ctx.now()`.
    fn wake(&mut self, ctx: &mut Context, out: &mut Reports) {
        let _ = (ctx, out);
    }
}
