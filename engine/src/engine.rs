//! The engine: events in, strategy hooks and venue calls out, in time order.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use kairos_strategies::{
    Bar, BookSide, BookUpdate, Command, Context, Data, Fixed, InstrumentId, MarketEvent,
    ModelAnswer, OrderBook, OrderEvent, OrderUpdate, RejectRule, Rejection, Strategy, Timer,
    TimerId, Timestamp, TradingStatus,
};

use crate::models::{Due, answer_event, no_service};
use crate::{Answering, Clock, Execution, HistoricalClock, Models, Phase, Report, Reports};

/// One strategy's run: its context, its venue, its timers and the reports on their way to it.
///
/// Drivers call the event methods in time order; each one
/// 1. fires every timer and venue wake-up due before the event (in time order),
/// 2. lets the venue see the event (matching resting orders against it),
/// 3. calls the strategy's hook,
/// 4. hands the strategy's new requests to the venue, and delivers the venue's answers
///    (fills to `on_fill`, lifecycle events to `on_order`) until nothing is left to do.
///
/// Orders for an instrument that is halted ([`Engine::halt`]: its book is unsynced or its
/// feed stale) are rejected here with [`RejectRule::TradingHalted`], whatever the venue.
pub struct Engine<X, C = HistoricalClock> {
    /// The strategy's context.
    pub ctx: Context,
    /// The execution client.
    pub exec: X,
    clock: C,
    reports: Reports,
    commands: Vec<Command>,
    timers: BinaryHeap<Reverse<(Timestamp, TimerId, u64)>>,
    cancelled_timers: BTreeSet<TimerId>,
    /// Who answers model asks (`None`: every ask fails at once, saying so).
    models: Option<Box<dyn Models>>,
    /// Answers waiting for their arrival time.
    answers: BinaryHeap<Due>,
    answer_seq: u64,
    /// The earliest timer, model answer or venue wake-up (`i64::MAX` when none).
    next_due: Timestamp,
    /// `next_due`, or the earliest time there is when the venue has working orders: a bar
    /// at or after it takes the full path.
    gate: Timestamp,
    /// The venue fills market orders on the close ([`Execution::fills_at_close`], read once).
    close_phase: bool,
}

impl<X: Execution> Engine<X, HistoricalClock> {
    /// An engine for a historical run (backtest or replay).
    pub fn historical(ctx: Context, exec: X) -> Self {
        Self::new(ctx, exec, HistoricalClock, Reports::new(true))
    }
}

impl<X: Execution, C: Clock> Engine<X, C> {
    /// An engine with this clock; `reports` says whether fills are kept.
    pub fn new(ctx: Context, exec: X, clock: C, reports: Reports) -> Self {
        Self {
            ctx,
            clock,
            reports,
            commands: Vec::new(),
            timers: BinaryHeap::new(),
            cancelled_timers: BTreeSet::new(),
            models: None,
            answers: BinaryHeap::new(),
            answer_seq: 0,
            next_due: Timestamp(i64::MAX),
            gate: Timestamp(i64::MAX),
            close_phase: exec.fills_at_close(),
            exec,
        }
    }

    /// Answers the strategy's model asks with `models` (a backtest's simulated service, a live
    /// session's router).
    pub fn set_models(&mut self, models: Box<dyn Models>) {
        self.models = Some(models);
    }

    /// Model answers held for a later time (a backtest's modelled latency).
    pub fn answers_waiting(&self) -> usize {
        self.answers.len()
    }

    /// Fills and closed trades so far.
    pub fn reports(&self) -> &Reports {
        &self.reports
    }

    /// Takes the fills and closed trades kept so far (the run goes on with empty lists).
    pub fn take_history(
        &mut self,
    ) -> (Vec<kairos_strategies::Fill>, Vec<kairos_strategies::ClosedTrade>) {
        (std::mem::take(&mut self.reports.fills), std::mem::take(&mut self.reports.closed))
    }

    /// Orders refused because their instrument was halted.
    pub fn halted_rejects(&self) -> u64 {
        self.reports.halted_rejects
    }

    /// The time of the next timer or venue wake-up, if any.
    pub fn next_due(&self) -> Option<Timestamp> {
        (self.next_due.0 != i64::MAX).then_some(self.next_due)
    }

    /// Starts the run: `on_start`, then whatever it asked for.
    pub fn start<S: Strategy + ?Sized>(&mut self, strategy: &mut S) {
        self.reports.set_deliver_orders(strategy.wants_order_events());
        strategy.on_start(&mut self.ctx);
        self.settle(strategy);
    }

    /// Hands requests made on the context outside a hook (by a driver, a console, a test) to
    /// the venue now, and delivers what comes back.
    pub fn run_pending<S: Strategy + ?Sized>(&mut self, strategy: &mut S) {
        self.settle(strategy);
    }

    /// Ends the run: what is due by now (a timer set in the last hook for that very moment)
    /// happens, then `on_stop`. Requests made there are not sent.
    pub fn stop<S: Strategy + ?Sized>(&mut self, strategy: &mut S) {
        let now = self.ctx.now();
        if self.next_due <= now {
            self.advance(strategy, now);
        }
        let left = self.answers.len();
        if let Some(m) = self.models.as_mut() {
            m.unanswered(left);
        }
        strategy.on_stop(&mut self.ctx);
    }

    /// A closed bar, labelled `bar.ts` (its open) and known at `close`.
    ///
    /// The venue matches working orders at the bar's open first, timers due before the close
    /// fire, the portfolio is marked at the close, then `on_bar` runs with `ctx.now()` at the
    /// close; with a venue that fills on close, market orders placed there fill at it.
    #[inline(always)]
    pub fn bar<S: Strategy + ?Sized>(&mut self, strategy: &mut S, bar: &Bar, close: Timestamp) {
        // One comparison decides the common case: no working order, no timer or wake-up
        // before the close.
        if self.gate <= close {
            return self.bar_busy(strategy, bar, close);
        }
        self.ctx.portfolio_mut().mark(bar.instrument, bar.close);
        self.ctx.set_now(close);
        strategy.on_bar(&mut self.ctx, bar);
        if self.ctx.asked() {
            self.after_bar(strategy, bar);
        }
    }

    /// The strategy asked for something in `on_bar`: hand it to the venue, and fill market
    /// orders at the close when the venue does.
    #[inline(never)]
    fn after_bar<S: Strategy + ?Sized>(&mut self, strategy: &mut S, bar: &Bar) {
        // The settle loop written in here: after a bar, nearly always one order to hand over.
        self.settle_inline(strategy);
        if self.close_phase && self.exec.has_working() {
            self.exec.on_bar(&mut self.ctx, bar, Phase::Close, &mut self.reports);
            self.settle(strategy);
        }
    }

    /// [`Engine::bar`] with orders working or a timer or venue wake-up before the close.
    #[inline(never)]
    fn bar_busy<S: Strategy + ?Sized>(&mut self, strategy: &mut S, bar: &Bar, close: Timestamp) {
        if self.next_due <= bar.ts {
            self.advance(strategy, bar.ts);
        }
        if self.exec.has_working() {
            self.match_open(strategy, bar);
        }
        if self.next_due <= close {
            self.advance(strategy, close);
        }
        self.ctx.portfolio_mut().mark(bar.instrument, bar.close);
        self.ctx.set_now(close);
        strategy.on_bar(&mut self.ctx, bar);
        // Matching at the open settled everything before `on_bar`: only what it asked for
        // (or a venue that fills on close) needs another pass.
        if self.ctx.asked() || (self.close_phase && self.exec.has_working()) {
            self.after_bar(strategy, bar);
        }
    }

    #[inline]
    fn match_open<S: Strategy + ?Sized>(&mut self, strategy: &mut S, bar: &Bar) {
        if bar.ts > self.ctx.now() {
            self.ctx.set_now(bar.ts);
        }
        self.ctx.portfolio_mut().mark(bar.instrument, bar.open);
        self.exec.on_bar(&mut self.ctx, bar, Phase::Open, &mut self.reports);
        self.settle(strategy);
    }

    /// A trade, a quote, a single-level book change, or a bar known at its label time.
    pub fn market<S: Strategy + ?Sized>(&mut self, strategy: &mut S, event: &MarketEvent) {
        match event {
            MarketEvent::Bar(b) => self.bar(strategy, b, b.ts),
            MarketEvent::Trade(t) => {
                self.at(strategy, t.ts);
                self.ctx.portfolio_mut().mark(t.instrument, t.price);
                self.exec.on_trade(&mut self.ctx, t, &mut self.reports);
                self.settle(strategy);
                strategy.on_trade(&mut self.ctx, t);
                self.settle(strategy);
            }
            MarketEvent::Quote(q) => {
                self.at(strategy, q.ts);
                if q.bid > 0.0 && q.ask > 0.0 {
                    self.ctx.portfolio_mut().mark(q.instrument, q.mid());
                }
                self.exec.on_quote(&mut self.ctx, q, &mut self.reports);
                self.settle(strategy);
                strategy.on_quote(&mut self.ctx, q);
                self.settle(strategy);
            }
            MarketEvent::Book(d) => {
                let (Some(price), Some(size)) = (Fixed::from_f64(d.price), Fixed::from_f64(d.size))
                else {
                    tracing::debug!(
                        ?d,
                        "book delta with a price or size that is not a decimal; skipped"
                    );
                    return;
                };
                let level = [(price, size)];
                let (bids, asks): (&[_], &[_]) = match d.side {
                    BookSide::Bid => (&level, &[]),
                    BookSide::Ask => (&[], &level),
                };
                let u = BookUpdate {
                    instrument: d.instrument,
                    ts: d.ts,
                    sequence: d.sequence,
                    bids,
                    asks,
                    snapshot: false,
                };
                self.book(strategy, &u);
            }
        }
    }

    /// A book update: applied to `ctx.book`, shown to the venue, then to `on_book`.
    pub fn book<S: Strategy + ?Sized>(&mut self, strategy: &mut S, update: &BookUpdate<'_>) {
        self.at(strategy, update.ts);
        let book = self.ctx.book_mut(update.instrument);
        if update.snapshot {
            book.clear();
        }
        book.set_levels(update.bids, update.asks);
        self.book_changed(strategy, update);
    }

    /// A book update its source has already applied to `ctx.book` (a replay's normaliser
    /// keeps its levels there, so that each is applied once): shown to the venue, then to
    /// `on_book`, as [`Engine::book`] does after applying it.
    pub fn book_applied<S: Strategy + ?Sized>(
        &mut self,
        strategy: &mut S,
        update: &BookUpdate<'_>,
    ) {
        self.at(strategy, update.ts);
        self.book_changed(strategy, update);
    }

    /// The context's book of `instrument`, lent to a source that applies levels to it itself
    /// (then [`Engine::book_applied`]), after doing what was due before `ts`, the time of the
    /// message the levels come from, as [`Engine::book`] does before applying an update.
    /// `None` for an instrument the run does not have.
    pub fn lend_book<S: Strategy + ?Sized>(
        &mut self,
        strategy: &mut S,
        instrument: InstrumentId,
        ts: Timestamp,
    ) -> Option<&mut OrderBook> {
        if instrument.index() >= self.ctx.instruments().len() {
            return None;
        }
        if self.next_due <= ts {
            self.advance(strategy, ts);
        }
        Some(self.ctx.book_mut(instrument))
    }

    fn book_changed<S: Strategy + ?Sized>(&mut self, strategy: &mut S, update: &BookUpdate<'_>) {
        let book = self.ctx.book(update.instrument);
        if let (Some((bid, _)), Some((ask, _))) = (book.best_bid(), book.best_ask()) {
            let mid = (bid.to_f64() + ask.to_f64()) / 2.0;
            self.ctx.portfolio_mut().mark(update.instrument, mid);
        }
        self.exec.on_book(&mut self.ctx, update, &mut self.reports);
        self.settle(strategy);
        strategy.on_book(&mut self.ctx, update);
        self.settle(strategy);
    }

    /// An answer from a venue that reports on its own time (a live exchange's acknowledgement,
    /// fill or cancel, arriving from another task): `deliver` hands it to the execution
    /// client, which books it through the [`Reports`]; then the strategy hears of it and its
    /// requests go out, as after any event.
    pub fn from_venue<S: Strategy + ?Sized, R>(
        &mut self,
        strategy: &mut S,
        deliver: impl FnOnce(&mut X, &mut Context, &mut Reports) -> R,
    ) -> R {
        let r = deliver(&mut self.exec, &mut self.ctx, &mut self.reports);
        self.settle(strategy);
        r
    }

    /// A custom data event (news, a model's answer, an on-chain event).
    pub fn data<S: Strategy + ?Sized>(&mut self, strategy: &mut S, data: &Data) {
        self.at(strategy, data.ts);
        strategy.on_data(&mut self.ctx, data);
        self.settle(strategy);
    }

    /// A model's answer from a service that answers on its own time (a live session's router):
    /// delivered to `on_data` now, as [`Engine::data`] delivers any event.
    pub fn answer<S: Strategy + ?Sized>(&mut self, strategy: &mut S, answer: ModelAnswer) {
        let data = answer_event(answer);
        self.data(strategy, &data);
    }

    /// Halts trading in `instrument` (its book is unsynced, its feed stale): orders sent
    /// meanwhile are rejected. Resting orders stay at the venue.
    pub fn halt(&mut self, instrument: InstrumentId, why: impl Into<String>) {
        self.ctx.set_halted(instrument, Some(why.into()));
    }

    /// Lets `instrument` trade again.
    pub fn resume(&mut self, instrument: InstrumentId) {
        self.ctx.set_halted(instrument, None);
    }

    /// A feed's word on `instrument`: tradable (`synced`) or not, and why. A change halts or
    /// resumes it and reaches the strategy's `on_status`; a repeat of the current state only
    /// updates the reason [`Context::halt_reason`] gives.
    pub fn status<S: Strategy + ?Sized>(
        &mut self,
        strategy: &mut S,
        instrument: InstrumentId,
        synced: bool,
        why: &str,
    ) {
        if instrument.index() >= self.ctx.instruments().len() {
            return;
        }
        if self.ctx.tradable(instrument) == synced {
            if !synced {
                self.ctx.set_halted(instrument, Some(why.to_string()));
            }
            return;
        }
        self.ctx.set_halted(instrument, (!synced).then(|| why.to_string()));
        let st = TradingStatus { instrument, ts: self.ctx.now(), tradable: synced, reason: why };
        strategy.on_status(&mut self.ctx, &st);
        self.settle(strategy);
    }

    /// The time of the strategy's next timer, if any.
    pub fn next_timer(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Fires the strategy's timers due by the clock's time (live runs call this when
    /// [`Engine::next_timer`] comes); venue wake-ups before each timer happen first. Venue
    /// wake-ups alone wait for the next event, whose exchange time moves the venue on, so a
    /// live session fills exactly as a replay of the same messages. Does nothing under a
    /// historical clock.
    pub fn tick<S: Strategy + ?Sized>(&mut self, strategy: &mut S) {
        let Some(now) = self.clock.now() else { return };
        while let Some(t) = self.next_timer().filter(|t| *t <= now) {
            self.advance(strategy, t);
        }
    }

    /// Moves time to `ts` (never backwards): what was due before it happens first.
    #[inline]
    fn at<S: Strategy + ?Sized>(&mut self, strategy: &mut S, ts: Timestamp) {
        if self.next_due <= ts {
            self.advance(strategy, ts);
        }
        if ts > self.ctx.now() {
            self.ctx.set_now(ts);
        }
    }

    /// Fires, in time order, every timer, model answer and venue wake-up due at or before
    /// `until`; at the same instant timers first, then answers, then venue wake-ups.
    pub fn advance<S: Strategy + ?Sized>(&mut self, strategy: &mut S, until: Timestamp) {
        loop {
            let timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
            let answer = self.answers.peek().map(|d| d.at);
            let wake = self.exec.next_wakeup();
            let Some(next) = [timer, answer, wake].into_iter().flatten().min() else { break };
            if next > until {
                break;
            }
            if next > self.ctx.now() {
                self.ctx.set_now(next);
            }
            if timer == Some(next) {
                let Some(Reverse((at, id, tag))) = self.timers.pop() else { break };
                if self.cancelled_timers.remove(&id) {
                    continue;
                }
                strategy.on_timer(&mut self.ctx, &Timer { id, at, tag });
            } else if answer == Some(next) {
                let Some(due) = self.answers.pop() else { break };
                strategy.on_data(&mut self.ctx, &answer_event(due.answer));
            } else {
                self.exec.wake(&mut self.ctx, &mut self.reports);
            }
            self.settle(strategy);
        }
        self.refresh_due();
    }

    /// Hands the asks the strategy just made to the model service; answers that come with
    /// their time wait in `answers` (one that is due now is delivered by the settle loop).
    #[inline(never)]
    fn send_asks(&mut self) {
        for ask in self.ctx.take_asks() {
            let answer = match self.models.as_mut() {
                None => no_service(&ask),
                Some(m) => match m.ask(ask) {
                    Answering::At(a) => a,
                    Answering::Later => continue,
                },
            };
            let at = answer.at.max(answer.asked_at);
            self.answer_seq += 1;
            self.answers.push(Due {
                at,
                seq: self.answer_seq,
                answer: ModelAnswer { at, ..answer },
            });
        }
    }

    /// Whether a held answer is due by now.
    #[inline]
    fn answer_due(&self) -> bool {
        self.answers.peek().is_some_and(|d| d.at <= self.ctx.now())
    }

    #[inline]
    fn refresh_due(&mut self) {
        let t = self.timers.peek().map_or(i64::MAX, |Reverse((at, _, _))| at.0);
        let w = self.exec.next_wakeup().map_or(i64::MAX, |w| w.0);
        let a = self.answers.peek().map_or(i64::MAX, |d| d.at.0);
        self.next_due = Timestamp(t.min(w).min(a));
        self.gate = if self.exec.has_working() { Timestamp(i64::MIN) } else { self.next_due };
    }

    /// Hands the strategy's requests to the venue and the venue's answers to the strategy
    /// until neither has anything left.
    #[inline]
    fn settle<S: Strategy + ?Sized>(&mut self, strategy: &mut S) {
        if self.reports.is_pending() || self.ctx.asked() {
            self.settle_all(strategy);
        } else {
            self.refresh_due();
        }
    }

    #[inline(never)]
    fn settle_all<S: Strategy + ?Sized>(&mut self, strategy: &mut S) {
        self.settle_inline(strategy);
    }

    /// [`Engine::settle_all`]'s body.
    #[inline(always)]
    fn settle_inline<S: Strategy + ?Sized>(&mut self, strategy: &mut S) {
        loop {
            if self.ctx.has_timer_changes() {
                let (set, cancelled) = self.ctx.take_timers();
                for t in set {
                    self.timers.push(Reverse((t.at, t.id, t.tag)));
                }
                self.cancelled_timers.extend(cancelled);
            }
            if let Some(report) = self.reports.pop() {
                match report {
                    Report::Fill(fill) => strategy.on_fill(&mut self.ctx, &fill),
                    Report::Empty => {}
                    Report::Order(event) => strategy.on_order(&mut self.ctx, &event),
                }
                continue;
            }
            if self.ctx.has_asks() {
                self.send_asks();
            }
            // An answer due now (a backtest without latency) comes before the venue sees the
            // requests, as a hook's own computation would.
            if self.answer_due() {
                if let Some(due) = self.answers.pop() {
                    strategy.on_data(&mut self.ctx, &answer_event(due.answer));
                }
                continue;
            }
            if !self.ctx.has_commands() {
                break;
            }
            self.ctx.swap_commands(&mut self.commands);
            let halts = self.ctx.any_halted();
            for command in &self.commands {
                if halts
                    && let Command::Submit(order) = command
                    && let Some(why) = self.ctx.halt_reason(order.request.instrument)
                {
                    let reason = format!(
                        "{} cannot be traded now: {why}",
                        self.ctx.instrument(order.request.instrument).symbol
                    );
                    let event = OrderEvent {
                        order: order.id,
                        instrument: order.request.instrument,
                        ts: self.ctx.now(),
                        update: OrderUpdate::Rejected(Rejection::new(
                            RejectRule::TradingHalted,
                            reason,
                        )),
                    };
                    self.reports.order(&mut self.ctx, event);
                    continue;
                }
                self.exec.command(&mut self.ctx, command, &mut self.reports);
            }
            self.commands.clear();
            // A venue that answers at once and a strategy that does not read the answers: done.
            if !self.reports.is_pending()
                && !self.ctx.has_commands()
                && !self.ctx.has_timer_changes()
                && !self.ctx.has_asks()
            {
                break;
            }
        }
        self.ctx.clear_asked();
        debug_assert!(!self.reports.is_pending());
        self.refresh_due();
    }
}
