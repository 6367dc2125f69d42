//! The [`Strategy`] trait.

use crate::{
    Bar, BookUpdate, Context, Data, Fill, OrderEvent, Quote, SharedSeries, Timer, Trade,
    TradingStatus,
};

/// A trading strategy: events in, orders out through the [`Context`].
///
/// # Contract
///
/// - Hooks are called on one thread, one at a time, in event-time order: `on_start` once before
///   any event, then the market, order, timer and data hooks as events happen, then `on_stop`
///   once.
/// - A bar reaches `on_bar` only after it has closed; nothing later has been seen, and
///   [`Context::now`] is the bar's close time (`bar.ts` is its open-time label). Orders
///   submitted in a hook work from the next event on (a market order fills at the next bar's
///   open, or at this bar's close when the run fills on close).
/// - Orders, cancels and modifications are requests: the venue's answer arrives later as an
///   [`OrderEvent`] to `on_order` (accepted, rejected with the rule, partially filled, filled,
///   cancelled, expired). A fill goes to `on_fill` first, after the portfolio has booked it,
///   then its `PartiallyFilled` or `Filled` event to `on_order`.
/// - Timers set with [`Context::schedule`] fire in time order (ties in the order they were
///   set), before any event later than them.
/// - Hooks must not block, sleep, read the wall clock or do I/O: the same code runs in a
///   backtest, where time is simulated, and live. Anything slow (a remote model) arrives as an
///   event. Keep state in `self` and randomness in seeded generators so backtests repeat.
/// - Every hook has an empty default body: implement only what the strategy uses.
///
/// The trait is object safe so runtimes can hold a `Box<dyn Strategy>` chosen by name from
/// the [`Registry`](crate::Registry); the backtest engine is also generic over it for speed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Kairos strategy",
    note = "implement `kairos_strategies::Strategy` for it: every hook has a default body, so \
            `impl Strategy for {Self} {{ fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {{ .. }} }}` is enough"
)]
pub trait Strategy: Send {
    /// Bars the strategy needs before it can trade (its longest indicator's warm-up, minus
    /// one). Reports use it for the buy-and-hold benchmark, which starts at the first bar the
    /// strategy could have traded, as backtesting.py's does.
    fn warmup_bars(&self) -> usize {
        0
    }

    /// Whether the strategy reads order events in [`Strategy::on_order`] (the default). A
    /// strategy that never does may say `false`: the runtime then skips delivering them,
    /// which saves a little on every order in a backtest. Its view of its orders
    /// ([`Context::open_orders`]) is kept either way, and fills still reach `on_fill`.
    fn wants_order_events(&self) -> bool {
        true
    }

    /// Offered before [`Strategy::on_start`] when every bar of the run is known in advance
    /// (a parameter sweep): the strategy may take the indicator series it needs from
    /// `shared` instead of computing them bar by bar, as `sma_cross` does. The series must
    /// give exactly what the streaming indicators give, and a strategy must read, at its
    /// `i`-th bar of an instrument, only value `i` (see [`SharedSeries`]). The default takes
    /// nothing, and the strategy runs as it would anywhere else.
    fn share(&mut self, shared: &SharedSeries) {
        let _ = shared;
    }

    /// The strategy as `Any`, for a runtime that has a loop compiled for its concrete type: a
    /// sweep runs the built-ins that return `Some` through the engine monomorphized for them
    /// (their hooks inlined into the bar loop) instead of through `dyn Strategy`, with the
    /// same results. The default, `None`, runs through `dyn Strategy`.
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }

    /// Called once before the first event.
    fn on_start(&mut self, ctx: &mut Context) {
        let _ = ctx;
    }

    /// Called for every closed bar.
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        let _ = (ctx, bar);
    }

    /// Called for every trade print.
    fn on_trade(&mut self, ctx: &mut Context, trade: &Trade) {
        let _ = (ctx, trade);
    }

    /// Called for every top-of-book change.
    fn on_quote(&mut self, ctx: &mut Context, quote: &Quote) {
        let _ = (ctx, quote);
    }

    /// Called for every order-book change, after [`Context::book`] reflects it.
    fn on_book(&mut self, ctx: &mut Context, update: &BookUpdate<'_>) {
        let _ = (ctx, update);
    }

    /// Called when one of the strategy's orders trades, after the portfolio has booked it.
    fn on_fill(&mut self, ctx: &mut Context, fill: &Fill) {
        let _ = (ctx, fill);
    }

    /// Called for every change in an order's life (after the strategy's view of its orders
    /// reflects it).
    fn on_order(&mut self, ctx: &mut Context, event: &OrderEvent) {
        let _ = (ctx, event);
    }

    /// Called when a timer set with [`Context::schedule`] comes due.
    fn on_timer(&mut self, ctx: &mut Context, timer: &Timer) {
        let _ = (ctx, timer);
    }

    /// Called for every custom data event (news, model answers, on-chain events).
    fn on_data(&mut self, ctx: &mut Context, data: &Data) {
        let _ = (ctx, data);
    }

    /// Called when an instrument stops or starts being tradable (its book lost or regained
    /// synchronisation, its feed went stale, an operator halted it), after
    /// [`Context::tradable`] reflects it. Runs start with live instruments halted until their
    /// books synchronise.
    fn on_status(&mut self, ctx: &mut Context, status: &TradingStatus<'_>) {
        let _ = (ctx, status);
    }

    /// Called once after the last event.
    fn on_stop(&mut self, ctx: &mut Context) {
        let _ = ctx;
    }
}

impl<S: Strategy + ?Sized> Strategy for Box<S> {
    fn warmup_bars(&self) -> usize {
        (**self).warmup_bars()
    }
    fn wants_order_events(&self) -> bool {
        (**self).wants_order_events()
    }
    fn share(&mut self, shared: &SharedSeries) {
        (**self).share(shared)
    }
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        (**self).as_any_mut()
    }
    fn on_start(&mut self, ctx: &mut Context) {
        (**self).on_start(ctx)
    }
    #[inline]
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        (**self).on_bar(ctx, bar)
    }
    fn on_trade(&mut self, ctx: &mut Context, trade: &Trade) {
        (**self).on_trade(ctx, trade)
    }
    fn on_quote(&mut self, ctx: &mut Context, quote: &Quote) {
        (**self).on_quote(ctx, quote)
    }
    fn on_book(&mut self, ctx: &mut Context, update: &BookUpdate<'_>) {
        (**self).on_book(ctx, update)
    }
    fn on_fill(&mut self, ctx: &mut Context, fill: &Fill) {
        (**self).on_fill(ctx, fill)
    }
    fn on_order(&mut self, ctx: &mut Context, event: &OrderEvent) {
        (**self).on_order(ctx, event)
    }
    fn on_timer(&mut self, ctx: &mut Context, timer: &Timer) {
        (**self).on_timer(ctx, timer)
    }
    fn on_data(&mut self, ctx: &mut Context, data: &Data) {
        (**self).on_data(ctx, data)
    }
    fn on_status(&mut self, ctx: &mut Context, status: &TradingStatus<'_>) {
        (**self).on_status(ctx, status)
    }
    fn on_stop(&mut self, ctx: &mut Context) {
        (**self).on_stop(ctx)
    }
}
