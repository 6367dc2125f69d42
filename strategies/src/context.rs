//! The [`Context`]: what a strategy reads and how it trades.

use crate::{
    AskId, Command, Error, Fill, Instrument, InstrumentId, ModelAsk, ModelInput, Modification,
    Order, OrderBook, OrderEvent, OrderId, OrderKind, OrderRequest, OrderSize, OrderStatus,
    Portfolio, Result, Side, Timer, TimerId, Timestamp,
};

/// A strategy's window on its run: the clock, the instruments, the portfolio, its orders and
/// the local order books, and the only way it submits, cancels or modifies orders and sets
/// timers.
///
/// Trading is by request: [`Context::submit`], [`Context::cancel`] and [`Context::modify`]
/// queue a [`Command`] that the runtime hands to the venue after the hook returns; the outcome
/// comes back as an [`OrderEvent`] to [`Strategy::on_order`](crate::Strategy::on_order) (and
/// fills to `on_fill`). [`Context::open_orders`] is the strategy's own view of its orders,
/// which changes only through those events: an order just submitted shows as
/// [`OrderStatus::Submitted`] until the venue answers.
///
/// The same type is handed to a strategy by the backtest engine, the paper runtime and the live
/// runtime; only who processes the orders differs.
///
/// # Runtime interface
///
/// The methods under "runtime" ([`Context::new`], [`Context::set_now`],
/// [`Context::portfolio_mut`], [`Context::take_orders`] ...) are for execution runtimes. A
/// strategy never needs them: it reads through the accessors and trades through
/// [`Context::submit`] and its shorthands.
#[derive(Debug, Clone)]
pub struct Context {
    now: Timestamp,
    instruments: Vec<Instrument>,
    portfolio: Portfolio,
    orders: Vec<Order>,
    commands: Vec<Command>,
    next_order_id: u64,
    timers: Vec<Timer>,
    timer_cancels: Vec<TimerId>,
    next_timer_id: u64,
    asks: Vec<ModelAsk>,
    next_ask_id: u64,
    books: Vec<OrderBook>,
    halted: Vec<Option<String>>,
    /// How many instruments are halted.
    halts: usize,
    /// Something was asked for (an order, cancel, modification or timer) since the runtime
    /// last looked.
    asked: bool,
}

impl Context {
    // ---- strategy interface -------------------------------------------------------------

    /// The current time. During `on_bar` it is the bar's close (the moment the bar is known),
    /// not its open-time label `bar.ts`; during other hooks it is the event's time.
    #[inline]
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The run's instruments, indexed by [`InstrumentId`].
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// One instrument.
    ///
    /// # Panics
    /// If `id` does not come from this run.
    pub fn instrument(&self, id: InstrumentId) -> &Instrument {
        &self.instruments[id.index()]
    }

    /// Finds an instrument by symbol.
    pub fn instrument_id(&self, symbol: &str) -> Option<InstrumentId> {
        self.instruments.iter().position(|i| i.symbol == symbol).map(|i| InstrumentId(i as u32))
    }

    /// The account.
    #[inline]
    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }

    /// Net signed position in `instrument`.
    #[inline]
    pub fn position(&self, instrument: InstrumentId) -> f64 {
        self.portfolio.position(instrument).quantity()
    }

    /// Account equity at the latest marks.
    pub fn equity(&self) -> f64 {
        self.portfolio.equity()
    }

    /// The strategy's orders that are not final (submitted, accepted or partly filled),
    /// oldest first.
    pub fn open_orders(&self) -> &[Order] {
        &self.orders
    }

    /// One of the open orders.
    pub fn order(&self, id: OrderId) -> Option<&Order> {
        self.orders.iter().find(|o| o.id == id)
    }

    /// The local L2 book of `instrument` (empty where the run has no book feed for it).
    pub fn book(&self, instrument: InstrumentId) -> &OrderBook {
        &self.books[instrument.index()]
    }

    /// Whether orders in `instrument` can be sent now: `false` while its book is not
    /// synchronised or its feed is stale (orders sent meanwhile are rejected with
    /// [`RejectRule::TradingHalted`](crate::RejectRule::TradingHalted)).
    pub fn tradable(&self, instrument: InstrumentId) -> bool {
        self.halted.get(instrument.index()).is_some_and(Option::is_none)
    }

    /// Runtime: whether any instrument is halted (one flag for the hot path).
    #[inline]
    pub fn any_halted(&self) -> bool {
        self.halts > 0
    }

    /// Why `instrument` cannot be traded now, if it cannot.
    pub fn halt_reason(&self, instrument: InstrumentId) -> Option<&str> {
        self.halted.get(instrument.index()).and_then(|h| h.as_deref())
    }

    /// Submits an order. It is checked here (finite positive sizes and prices, a known
    /// instrument); the venue's answer arrives as an [`OrderEvent`].
    pub fn submit(&mut self, request: OrderRequest) -> Result<OrderId> {
        self.check(&request)?;
        let id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        let order = Order::new(id, self.now, request);
        self.orders.push(order);
        self.commands.push(Command::Submit(order));
        self.asked = true;
        Ok(id)
    }

    /// Submits a market buy.
    pub fn buy(&mut self, instrument: InstrumentId, size: OrderSize) -> Result<OrderId> {
        self.submit(OrderRequest::market(instrument, Side::Buy, size))
    }

    /// Submits a market sell.
    pub fn sell(&mut self, instrument: InstrumentId, size: OrderSize) -> Result<OrderId> {
        self.submit(OrderRequest::market(instrument, Side::Sell, size))
    }

    /// Submits a market order that flattens the position in `instrument` when it fills.
    /// Returns `None` when the position is already flat.
    #[inline]
    pub fn close_position(&mut self, instrument: InstrumentId) -> Option<OrderId> {
        let qty = self.position(instrument);
        if qty == 0.0 {
            return None;
        }
        let side = if qty > 0.0 { Side::Sell } else { Side::Buy };
        self.submit(OrderRequest::market(instrument, side, OrderSize::ClosePosition)).ok()
    }

    /// Asks the venue to cancel an order; `false` if the order is not open in the strategy's
    /// view (nothing is sent). The outcome arrives as `Cancelled` or `CancelRejected` (the
    /// order may fill before the cancel reaches the venue).
    pub fn cancel(&mut self, id: OrderId) -> bool {
        let Some(o) = self.orders.iter().find(|o| o.id == id) else { return false };
        self.commands.push(Command::Cancel { order: id, instrument: o.request.instrument });
        self.asked = true;
        true
    }

    /// Asks the venue to cancel every open order in `instrument`; returns how many requests
    /// were sent.
    pub fn cancel_all(&mut self, instrument: InstrumentId) -> usize {
        let before = self.commands.len();
        for o in self.orders.iter().filter(|o| o.request.instrument == instrument) {
            self.commands.push(Command::Cancel { order: o.id, instrument });
            self.asked = true;
        }
        self.commands.len() - before
    }

    /// Asks the venue to change an open order's price or total quantity. The outcome arrives
    /// as `Modified` or `ModifyRejected`. A new price, or a larger quantity, loses the
    /// order's place in the queue, as on exchanges.
    pub fn modify(&mut self, id: OrderId, change: Modification) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidOrder { reason });
        let Some(o) = self.orders.iter().find(|o| o.id == id) else {
            return bad(format!("order {} is not open", id.0));
        };
        if let Some(p) = change.price {
            if !(p.is_finite() && p > 0.0) {
                return bad(format!("price {p} is not a positive number"));
            }
            if matches!(o.request.kind, OrderKind::Market) {
                return bad(format!("order {} is a market order and has no price", id.0));
            }
        }
        if let Some(q) = change.quantity
            && !(q.is_finite() && q > 0.0)
        {
            return bad(format!("quantity {q} is not a positive number of units"));
        }
        if change.price.is_none() && change.quantity.is_none() {
            return bad("the modification changes nothing".into());
        }
        let instrument = o.request.instrument;
        self.commands.push(Command::Modify { order: id, instrument, change });
        self.asked = true;
        Ok(())
    }

    /// Sets a timer: [`Strategy::on_timer`](crate::Strategy::on_timer) runs at `at` (at once,
    /// before the next event, if `at` is not after now) with `tag` to say which job it is.
    /// Timers fire in time order, ties in the order they were set.
    pub fn schedule(&mut self, at: Timestamp, tag: u64) -> TimerId {
        let id = TimerId(self.next_timer_id);
        self.next_timer_id += 1;
        self.timers.push(Timer { id, at, tag });
        self.asked = true;
        id
    }

    /// Cancels a timer that has not fired.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.timer_cancels.push(id);
        self.asked = true;
    }

    /// Asks the model `model` (a route of the router's config live; a model of the run in a
    /// backtest) for an answer to `input`, labelled `tag`. The hook goes on at once; the
    /// answer arrives as a [`Data`](crate::Data) event whose payload is a
    /// [`ModelAnswer`](crate::ModelAnswer) (source `model:<model>`), when it would arrive:
    /// live, when the reply comes; in a backtest, after the run's modelled inference latency.
    /// Every ask gets exactly one answer, a failure included (no route, every target down, the
    /// deadline passed), unless the run ends first.
    ///
    /// Refused here, naming the field, when the input cannot be sent (no messages, an empty
    /// text, a bar with a NaN price). Only what `input` holds leaves the machine.
    pub fn ask(&mut self, model: &str, input: ModelInput, tag: u64) -> Result<AskId> {
        if model.trim().is_empty() {
            return Err(Error::InvalidAsk { reason: "the model name is empty".into() });
        }
        if let Some(reason) = input.problem() {
            return Err(Error::InvalidAsk { reason: format!("{} ask: {reason}", input.kind()) });
        }
        let id = AskId(self.next_ask_id);
        self.next_ask_id += 1;
        self.asks.push(ModelAsk { id, model: model.to_string(), input, tag, at: self.now });
        self.asked = true;
        Ok(id)
    }

    fn check(&self, r: &OrderRequest) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidOrder { reason });
        if r.instrument.index() >= self.instruments.len() {
            return bad(format!("unknown instrument id {}", r.instrument.0));
        }
        match r.size {
            // Comparisons are false for NaN, and the bounds exclude the infinities.
            OrderSize::Units(q) if !(q > 0.0 && q < f64::INFINITY) => {
                return bad(format!("size {q} is not a positive number of units"));
            }
            OrderSize::EquityFraction(f) if !(f > 0.0 && f <= 1.0) => {
                return bad(format!("equity fraction {f} is outside (0, 1]"));
            }
            _ => {}
        }
        match r.kind {
            OrderKind::Limit { price } | OrderKind::Stop { price }
                if !(price.is_finite() && price > 0.0) =>
            {
                bad(format!("price {price} is not a positive number"))
            }
            _ => Ok(()),
        }
    }

    // ---- runtime interface --------------------------------------------------------------

    /// Runtime: a context for `instruments` with `cash` in the account. Every instrument is
    /// tradable until the runtime halts it.
    pub fn new(instruments: Vec<Instrument>, cash: f64) -> Self {
        let n = instruments.len();
        let portfolio = Portfolio::new(cash, n);
        Self {
            now: Timestamp(i64::MIN),
            instruments,
            portfolio,
            orders: Vec::new(),
            commands: Vec::new(),
            next_order_id: 1,
            timers: Vec::new(),
            timer_cancels: Vec::new(),
            next_timer_id: 1,
            asks: Vec::new(),
            next_ask_id: 1,
            books: vec![OrderBook::new(); n],
            halted: vec![None; n],
            halts: 0,
            asked: false,
        }
    }

    /// Runtime: advances the clock.
    #[inline]
    pub fn set_now(&mut self, now: Timestamp) {
        self.now = now;
    }

    /// Runtime: the account, to mark prices and book fills.
    #[inline]
    pub fn portfolio_mut(&mut self) -> &mut Portfolio {
        &mut self.portfolio
    }

    /// Runtime: the local book of `instrument`, to apply feed updates to.
    pub fn book_mut(&mut self, instrument: InstrumentId) -> &mut OrderBook {
        &mut self.books[instrument.index()]
    }

    /// Runtime: halts trading in `instrument` (with the reason), or lets it trade again.
    pub fn set_halted(&mut self, instrument: InstrumentId, why: Option<String>) {
        if let Some(h) = self.halted.get_mut(instrument.index()) {
            *h = why;
        }
        self.halts = self.halted.iter().filter(|h| h.is_some()).count();
    }

    /// Runtime: whether the strategy asked for anything (an order, a cancel, a modification,
    /// a timer) since the runtime last called [`Context::clear_asked`]: one flag, for the hot
    /// path.
    #[inline]
    pub fn asked(&self) -> bool {
        self.asked
    }

    /// Runtime: the runtime has taken every command and timer change.
    #[inline]
    pub fn clear_asked(&mut self) {
        self.asked = false;
    }

    /// Runtime: whether commands wait to be taken with [`Context::swap_commands`].
    #[inline]
    pub fn has_commands(&self) -> bool {
        !self.commands.is_empty()
    }

    /// Runtime: the commands queued and not yet taken, oldest first (what the strategy asked
    /// for in the hook that just ran; the bias checks record these as its decisions).
    pub fn pending_commands(&self) -> &[Command] {
        &self.commands
    }

    /// Runtime: swaps the queued commands into `out` (which should be empty), oldest first,
    /// so the runtime reuses one buffer.
    #[inline]
    pub fn swap_commands(&mut self, out: &mut Vec<Command>) {
        std::mem::swap(&mut self.commands, out);
    }

    /// Runtime: whether a timer was set or cancelled since the last
    /// [`Context::take_timers`].
    #[inline]
    pub fn has_timer_changes(&self) -> bool {
        !self.timers.is_empty() || !self.timer_cancels.is_empty()
    }

    /// Runtime: the timers set and cancelled since the last call.
    pub fn take_timers(&mut self) -> (Vec<Timer>, Vec<TimerId>) {
        (std::mem::take(&mut self.timers), std::mem::take(&mut self.timer_cancels))
    }

    /// Runtime: whether model asks wait to be taken.
    #[inline]
    pub fn has_asks(&self) -> bool {
        !self.asks.is_empty()
    }

    /// Runtime: the model asks made since the last call, oldest first.
    pub fn take_asks(&mut self) -> Vec<ModelAsk> {
        std::mem::take(&mut self.asks)
    }

    /// Runtime: updates the strategy's view with an order event (before the strategy's
    /// `on_order` sees it). Final orders leave the open list.
    pub fn apply_order_event(&mut self, ev: &OrderEvent) {
        if let crate::OrderUpdate::Modified(m) = &ev.update {
            let Some(i) = self.orders.iter().position(|o| o.id == ev.order) else { return };
            self.orders[i].apply_modification(m);
        }
        if let Some(s) = ev.status() {
            self.set_order_status(ev.order, s);
        }
    }

    /// Runtime: sets the status of an open order in the strategy's view (a final status
    /// removes it), as [`Context::apply_order_event`] does for the event's status.
    #[inline]
    pub fn set_order_status(&mut self, id: OrderId, status: OrderStatus) {
        // The order is nearly always the newest (just accepted) or the oldest (just done).
        let i = match (self.orders.last(), self.orders.first()) {
            (Some(o), _) if o.id == id => self.orders.len() - 1,
            (_, Some(o)) if o.id == id => 0,
            _ => match self.orders.iter().position(|o| o.id == id) {
                Some(i) => i,
                None => return,
            },
        };
        if status.is_final() {
            // `Vec::remove` of the last element still calls memmove (for nothing).
            if i + 1 == self.orders.len() {
                self.orders.pop();
            } else {
                self.orders.remove(i);
            }
        } else {
            self.orders[i].status = status;
        }
    }

    /// Runtime: counts a fill in the strategy's view of its order.
    pub fn apply_fill(&mut self, fill: &Fill) {
        if let Some(o) = self.orders.iter_mut().find(|o| o.id == fill.order) {
            o.filled += fill.quantity;
        }
    }

    /// Runtime: forgets every open order (the run ended); returns them.
    pub fn clear_orders(&mut self) -> Vec<Order> {
        self.commands.clear();
        std::mem::take(&mut self.orders)
    }

    /// Runtime: the status of open order `id` (`None` once it is final or if unknown).
    pub fn order_status(&self, id: OrderId) -> Option<OrderStatus> {
        self.order(id).map(|o| o.status)
    }
}
