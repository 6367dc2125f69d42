//! Live execution on Binance spot: [`LiveVenue`] is the engine's execution client (it runs on
//! the engine's thread, synchronously), [`run_venue`] the task that talks to the exchange.
//!
//! An order goes: the strategy's request → [`LiveVenue`] sizes it on the symbol's filters,
//! journals it (the client order id comes from the journal) and only then hands it to the
//! venue task → the task sends it and reports the answer, and polls working orders for fills
//! → [`LiveVenue::apply`] journals each report and books it for the strategy
//! (`Engine::from_venue`). A request whose outcome is unknown (a timeout, a dropped
//! connection) is looked up by client order id once its `recvWindow` has passed; it is never
//! sent again.
//!
//! Fills and ends of resting orders come from the WebSocket API's user data stream
//! ([`crate::binance_user`], `executionReport` events) when one is configured, and from polls
//! (`GET /api/v3/order`, then `myTrades` since the last trade id): every `poll` while the stream
//! is down or absent, at once after each (re)subscription to catch up what a gap lost, and
//! every 30 polls as a safety net while it is up. The venue task reports each trade id of an
//! order once, whichever source saw it first. Commissions are taken as quote-currency amounts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kairos_engine::{Execution, Reports};
use kairos_strategies::{
    Command, Context, Fill, Fixed, InstrumentId, Order, OrderEvent, OrderId, OrderKind,
    OrderRequest, OrderSize, OrderStatus, OrderUpdate, RejectRule, Rejection, Side, TimeInForce,
};
use tokio::sync::mpsc;

use crate::binance_rest::{BinanceRest, NewOrder, RestError, SymbolRules};
use crate::binance_user::{ExecutionReport, UserEvent};
use crate::journal::{Journal, JournalFill};
use crate::now_ms;

/// What the engine's side asks the venue task for.
#[derive(Debug, Clone)]
pub enum VenueRequest {
    /// Send a new order (already journalled).
    New {
        /// The strategy's order.
        order: OrderId,
        /// As sent.
        new: NewOrder,
    },
    /// Cancel an order.
    Cancel {
        /// The strategy's order.
        order: OrderId,
        /// Its symbol.
        symbol: String,
        /// Its client order id.
        client_id: String,
    },
}

/// What the venue task reports back.
#[derive(Debug, Clone, PartialEq)]
pub enum VenueReport {
    /// The exchange took the order.
    Accepted {
        /// The strategy's order.
        order: OrderId,
        /// The exchange's id.
        venue_order_id: u64,
    },
    /// The exchange refused it (or it was never sent).
    Rejected {
        /// The strategy's order.
        order: OrderId,
        /// Why, in the exchange's words.
        reason: String,
    },
    /// A trade.
    Fill {
        /// The strategy's order.
        order: OrderId,
        /// The exchange's trade id.
        trade_id: u64,
        /// Milliseconds since the epoch.
        time_ms: i64,
        /// Quantity.
        qty: Fixed,
        /// Price.
        price: Fixed,
        /// Commission (quote currency).
        commission: Fixed,
    },
    /// The order ended without trading further (cancelled, expired).
    Done {
        /// The strategy's order.
        order: OrderId,
        /// `CANCELED`, `EXPIRED`, ...
        status: String,
    },
    /// A cancel was refused.
    CancelRejected {
        /// The strategy's order.
        order: OrderId,
        /// Why.
        reason: String,
    },
}

/// The price an order is sized on: its own limit, else the book's mid, else the instrument's
/// last mark.
pub(crate) fn reference_price(ctx: &Context, r: &OrderRequest) -> Option<f64> {
    let book = ctx.book(r.instrument);
    let mid = match (book.best_bid(), book.best_ask()) {
        (Some((b, _)), Some((a, _))) => Some((b.to_f64() + a.to_f64()) / 2.0),
        _ => None,
    };
    r.price().or(mid).or_else(|| {
        let p = ctx.portfolio().position(r.instrument).last_price();
        (p.is_finite() && p > 0.0).then_some(p)
    })
}

/// The units `r` asks for, a share of equity priced at `reference`; a close, the position
/// opposite the order's side (0 when there is none).
pub(crate) fn requested_units(ctx: &Context, r: &OrderRequest, reference: f64) -> f64 {
    match r.size {
        OrderSize::Units(q) => q,
        OrderSize::EquityFraction(f) => f * ctx.equity().max(0.0) / reference,
        OrderSize::ClosePosition => {
            let pos = ctx.position(r.instrument);
            if pos * r.side.sign() < 0.0 { pos.abs() } else { 0.0 }
        }
    }
}

/// Tells the strategy `update` about `order` now (a refusal the client decides itself).
pub(crate) fn tell(
    ctx: &mut Context,
    out: &mut Reports,
    order: OrderId,
    instrument: InstrumentId,
    update: OrderUpdate,
) {
    let ts = ctx.now();
    out.order(ctx, OrderEvent { order, instrument, ts, update });
}

impl VenueReport {
    /// The strategy's order it is about.
    pub fn order(&self) -> OrderId {
        match self {
            VenueReport::Accepted { order, .. }
            | VenueReport::Rejected { order, .. }
            | VenueReport::Fill { order, .. }
            | VenueReport::Done { order, .. }
            | VenueReport::CancelRejected { order, .. } => *order,
        }
    }
}

#[derive(Debug)]
struct LiveOrder {
    client_id: String,
    instrument: InstrumentId,
    side: Side,
    qty: Fixed,
    executed: Fixed,
    done: bool,
}

/// The engine's execution client for a live exchange (see the module comment).
pub struct LiveVenue {
    journal: Journal,
    venue: String,
    prefix: String,
    rules: Vec<Option<SymbolRules>>,
    tx: Option<mpsc::UnboundedSender<VenueRequest>>,
    orders: BTreeMap<OrderId, LiveOrder>,
    rejected: u64,
}

impl std::fmt::Debug for LiveVenue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveVenue")
            .field("venue", &self.venue)
            .field("orders", &self.orders.len())
            .finish()
    }
}

impl LiveVenue {
    /// A client journalling into `journal` under `venue`, with client order ids
    /// `{prefix}-{n}`, the exchange's `rules` for each of the context's instruments (in
    /// order; `None` for an instrument of another venue, whose orders it refuses), and the
    /// channel to the venue task.
    pub fn new(
        journal: Journal,
        venue: &str,
        prefix: &str,
        rules: Vec<Option<SymbolRules>>,
        tx: mpsc::UnboundedSender<VenueRequest>,
    ) -> Self {
        Self {
            journal,
            venue: venue.into(),
            prefix: prefix.into(),
            rules,
            tx: Some(tx),
            orders: BTreeMap::new(),
            rejected: 0,
        }
    }

    /// Closes the channel to the venue task: it ends after what it was already asked for.
    /// Orders asked for from now on are refused.
    pub fn close(&mut self) {
        self.tx = None;
    }

    fn send(&self, req: VenueRequest) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(req).is_ok())
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    fn reject(
        &mut self,
        ctx: &mut Context,
        order: &Order,
        rule: RejectRule,
        reason: String,
        out: &mut Reports,
    ) {
        self.rejected += 1;
        tracing::info!(order = order.id.0, "order refused before sending: {reason}");
        let update = OrderUpdate::Rejected(Rejection::new(rule, reason));
        out.order(
            ctx,
            OrderEvent {
                order: order.id,
                instrument: order.request.instrument,
                ts: ctx.now(),
                update,
            },
        );
    }

    fn submit(&mut self, ctx: &mut Context, order: &Order, out: &mut Reports) {
        if self.tx.is_none() {
            let why = "not sent: the agent is stopping".to_string();
            return self.reject(ctx, order, RejectRule::Venue, why, out);
        }
        let r = &order.request;
        let Some(rules) = self.rules.get(r.instrument.index()).cloned().flatten() else {
            return self.reject(
                ctx,
                order,
                RejectRule::Venue,
                "no exchange rules for this instrument".into(),
                out,
            );
        };
        let Some(reference) = reference_price(ctx, r) else {
            return self.reject(
                ctx,
                order,
                RejectRule::NoLiquidity,
                format!("no price for {} yet", rules.symbol),
                out,
            );
        };
        let qty = requested_units(ctx, r, reference);
        let Some(qty) = rules.round_qty(qty).filter(|q| !q.is_zero()) else {
            return self.reject(
                ctx,
                order,
                RejectRule::ZeroSize,
                format!("the size rounds to zero steps of {}", rules.step_size),
                out,
            );
        };
        let (kind, tif, price) = match (r.kind, r.tif) {
            (OrderKind::Market, _) => ("MARKET", None, None),
            (OrderKind::Limit { price }, tif) => {
                let tif = match tif {
                    TimeInForce::Gtc => "GTC",
                    TimeInForce::Ioc => "IOC",
                    TimeInForce::Gtd(_) => {
                        return self.reject(
                            ctx,
                            order,
                            RejectRule::Venue,
                            "binance-spot has no good-till-date orders".into(),
                            out,
                        );
                    }
                };
                ("LIMIT", Some(tif), rules.round_price(price, r.side))
            }
            (OrderKind::Stop { .. }, _) => {
                return self.reject(
                    ctx,
                    order,
                    RejectRule::Venue,
                    "stop orders are not supported on binance-spot yet".into(),
                    out,
                );
            }
        };
        if kind == "LIMIT" && price.is_none() {
            return self.reject(
                ctx,
                order,
                RejectRule::Venue,
                "the price is not a decimal".into(),
                out,
            );
        }
        let check_price = price.or_else(|| Fixed::from_f64(reference)).unwrap_or(Fixed::ZERO);
        if let Err(reason) = rules.check(qty, check_price, kind == "MARKET") {
            return self.reject(ctx, order, RejectRule::Venue, reason, out);
        }
        let side = match r.side {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        };
        let price_text = price.map(|p| p.to_string());
        let client_id = match self.journal.intend(
            &self.prefix,
            &self.venue,
            &rules.symbol,
            side,
            kind,
            &qty.to_string(),
            price_text.as_deref(),
            now_ms(),
        ) {
            Ok(id) => id,
            // Never send what is not journalled.
            Err(e) => {
                return self.reject(ctx, order, RejectRule::Venue, format!("not sent: {e}"), out);
            }
        };
        kairos_chain::hooks::halt_at("order-journalled");
        let new = NewOrder {
            symbol: rules.symbol.clone(),
            side: r.side,
            kind,
            time_in_force: tif,
            quantity: qty,
            price,
            client_order_id: client_id.clone(),
        };
        self.orders.insert(
            order.id,
            LiveOrder {
                client_id,
                instrument: r.instrument,
                side: r.side,
                qty,
                executed: Fixed::ZERO,
                done: false,
            },
        );
        if !self.send(VenueRequest::New { order: order.id, new }) {
            tracing::error!(
                "the venue task is gone: the order stays an intent for the next start to settle"
            );
        }
    }

    /// Journals a report from the venue task and books it for the strategy. Run it through
    /// `Engine::from_venue`. An order that ended is forgotten (the journal keeps it), so a
    /// session of months holds only its working orders.
    pub fn apply(&mut self, ctx: &mut Context, report: VenueReport, out: &mut Reports) {
        let order = report.order();
        self.book_report(ctx, report, out);
        if self.orders.get(&order).is_some_and(|o| o.done) {
            self.orders.remove(&order);
        }
    }

    fn book_report(&mut self, ctx: &mut Context, report: VenueReport, out: &mut Reports) {
        let order = report.order();
        let Some(o) = self.orders.get_mut(&order) else {
            tracing::warn!(
                order = order.0,
                "a report for an order this session does not know: {report:?}"
            );
            return;
        };
        let journal_err = |e: crate::journal::JournalError| tracing::error!("journal: {e}");
        let now = ctx.now();
        match report {
            VenueReport::Accepted { venue_order_id, .. } => {
                let _ = self
                    .journal
                    .update(
                        &o.client_id,
                        Some(venue_order_id),
                        "NEW",
                        &o.executed.to_string(),
                        false,
                    )
                    .map_err(journal_err);
                out.accepted(ctx, order, o.instrument, now);
            }
            VenueReport::Rejected { reason, .. } => {
                o.done = true;
                self.rejected += 1;
                let _ = self
                    .journal
                    .update(&o.client_id, None, "REJECTED", "0", true)
                    .map_err(journal_err);
                let update = OrderUpdate::Rejected(Rejection::new(RejectRule::Venue, reason));
                out.order(ctx, OrderEvent { order, instrument: o.instrument, ts: now, update });
            }
            VenueReport::Fill { trade_id, time_ms, qty, price, commission, .. } => {
                kairos_chain::hooks::halt_at("fill-received");
                let fill = JournalFill {
                    venue: self.venue.clone(),
                    symbol: ctx.instrument(o.instrument).symbol.clone(),
                    trade_id,
                    venue_order_id: 0,
                    client_id: Some(o.client_id.clone()),
                    side: if o.side == Side::Buy { "BUY" } else { "SELL" }.into(),
                    qty: qty.to_string(),
                    price: price.to_string(),
                    commission: commission.to_string(),
                    time_ms,
                };
                let venue_id =
                    self.journal.order(&o.client_id).ok().flatten().and_then(|j| j.venue_order_id);
                let fill_row = JournalFill { venue_order_id: venue_id.unwrap_or(0), ..fill };
                match self.journal.record_fill(&fill_row) {
                    Ok(false) => return, // already booked
                    Ok(true) => {}
                    Err(e) => journal_err(e),
                }
                o.executed = Fixed::from_units(o.executed.units() + qty.units());
                let filled = o.executed >= o.qty;
                let status = if filled { "FILLED" } else { "PARTIALLY_FILLED" };
                let _ = self
                    .journal
                    .update(&o.client_id, venue_id, status, &o.executed.to_string(), filled)
                    .map_err(journal_err);
                let f = Fill {
                    order,
                    instrument: o.instrument,
                    ts: now,
                    side: o.side,
                    quantity: qty.to_f64(),
                    price: price.to_f64(),
                    commission: commission.to_f64(),
                };
                out.fill(ctx, f);
                if filled {
                    o.done = true;
                    out.finished(ctx, order, o.instrument, now, OrderStatus::Filled, || {
                        OrderUpdate::Filled
                    });
                } else {
                    out.finished(
                        ctx,
                        order,
                        o.instrument,
                        now,
                        OrderStatus::PartiallyFilled,
                        || OrderUpdate::PartiallyFilled,
                    );
                }
            }
            VenueReport::Done { status, .. } => {
                if o.done {
                    return;
                }
                o.done = true;
                let _ = self
                    .journal
                    .update(&o.client_id, None, &status, &o.executed.to_string(), true)
                    .map_err(journal_err);
                let (st, update) = if status == "EXPIRED" {
                    (OrderStatus::Expired, OrderUpdate::Expired)
                } else {
                    (OrderStatus::Cancelled, OrderUpdate::Cancelled)
                };
                out.finished(ctx, order, o.instrument, now, st, || update);
            }
            VenueReport::CancelRejected { reason, .. } => {
                let update = OrderUpdate::CancelRejected(Rejection::new(RejectRule::Venue, reason));
                out.order(ctx, OrderEvent { order, instrument: o.instrument, ts: now, update });
            }
        }
    }
}

impl Execution for LiveVenue {
    fn command(&mut self, ctx: &mut Context, command: &Command, out: &mut Reports) {
        match command {
            Command::Submit(order) => self.submit(ctx, order, out),
            Command::Cancel { order, instrument } => {
                match self.orders.get(order).filter(|o| !o.done) {
                    Some(o) => {
                        let req = VenueRequest::Cancel {
                            order: *order,
                            symbol: ctx.instrument(*instrument).symbol.clone(),
                            client_id: o.client_id.clone(),
                        };
                        let _ = self.send(req);
                    }
                    None => {
                        let update = OrderUpdate::CancelRejected(Rejection::new(
                            RejectRule::NotWorking,
                            format!("order {} is not working", order.0),
                        ));
                        out.order(
                            ctx,
                            OrderEvent {
                                order: *order,
                                instrument: *instrument,
                                ts: ctx.now(),
                                update,
                            },
                        );
                    }
                }
            }
            Command::Modify { order, instrument, .. } => {
                let update = OrderUpdate::ModifyRejected(Rejection::new(
                    RejectRule::BadModification,
                    "binance-spot: cancel the order and send a new one",
                ));
                tell(ctx, out, *order, *instrument, update);
            }
        }
    }

    fn has_working(&self) -> bool {
        self.orders.values().any(|o| !o.done)
    }

    fn working(&self) -> usize {
        self.orders.values().filter(|o| !o.done).count()
    }

    fn rejected(&self) -> u64 {
        self.rejected
    }
}

#[derive(Debug)]
struct Working {
    order: OrderId,
    symbol: String,
    venue_order_id: Option<u64>,
    /// Trade ids already reported.
    reported: BTreeSet<u64>,
    /// Their total quantity.
    filled: Fixed,
}

impl Working {
    fn new(order: OrderId, symbol: &str, venue_order_id: Option<u64>) -> Self {
        Self {
            order,
            symbol: symbol.to_string(),
            venue_order_id,
            reported: BTreeSet::new(),
            filled: Fixed::ZERO,
        }
    }

    /// Reports a trade unless it was reported already.
    fn fill(&mut self, tx: &mpsc::UnboundedSender<VenueReport>, trade: VenueReport) {
        if let VenueReport::Fill { trade_id, qty, .. } = &trade
            && self.reported.insert(*trade_id)
        {
            self.filled = Fixed::from_units(self.filled.units() + qty.units());
            let _ = tx.send(trade);
        }
    }
}

/// Books an order update from the user data stream; true when the symbol needs a poll (the
/// order ended with trades this task did not see: the stream lost some).
fn on_execution(
    tx: &mpsc::UnboundedSender<VenueReport>,
    working: &mut BTreeMap<String, Working>,
    r: &ExecutionReport,
) -> bool {
    let Some(w) = working.get_mut(r.ours()).filter(|w| w.symbol == r.symbol) else {
        // Not ours to follow: an order that ended already, or of another client.
        return false;
    };
    if w.venue_order_id.is_none() {
        w.venue_order_id = Some(r.order_id);
        let _ = tx.send(VenueReport::Accepted { order: w.order, venue_order_id: r.order_id });
    }
    if r.execution_type == "TRADE"
        && let Ok(trade_id) = u64::try_from(r.trade_id)
    {
        let report = VenueReport::Fill {
            order: w.order,
            trade_id,
            time_ms: r.transact_time,
            qty: r.last_qty,
            price: r.last_price,
            commission: r.commission,
        };
        w.fill(tx, report);
    }
    if !r.is_final() {
        return false;
    }
    if w.filled < r.cum_qty {
        return true;
    }
    let (order, status) = (w.order, r.status.clone());
    working.remove(r.ours());
    if status != "FILLED" {
        let _ = tx.send(VenueReport::Done { order, status });
    }
    false
}

/// The venue task: sends requests, reports answers, follows working orders on the user data
/// stream `user` (from [`crate::binance_user::run_user_stream`]) and polls them (see the
/// module comment). `last_trade` is the last trade id already journalled per symbol (fills at
/// or before it are not reported again). Ends when the request channel closes.
pub async fn run_venue(
    mut rest: BinanceRest,
    mut rx: mpsc::UnboundedReceiver<VenueRequest>,
    tx: mpsc::UnboundedSender<VenueReport>,
    poll: Duration,
    mut last_trade: BTreeMap<String, u64>,
    mut user: Option<mpsc::UnboundedReceiver<UserEvent>>,
) {
    let mut working: BTreeMap<String, Working> = BTreeMap::new();
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stream_up = false;
    let mut last_poll = Instant::now();
    let safety = poll * 30;
    loop {
        tokio::select! {
            ev = async {
                match user.as_mut() {
                    Some(u) => u.recv().await,
                    None => std::future::pending().await,
                }
            } => match ev {
                None => {
                    tracing::warn!("the user data stream ended: orders are polled");
                    user = None;
                    stream_up = false;
                }
                Some(UserEvent::Subscribed) => {
                    stream_up = true;
                    // What happened while there was no subscription.
                    poll_all(&mut rest, &tx, &mut working, &mut last_trade).await;
                    last_poll = Instant::now();
                }
                Some(UserEvent::Down(why)) => {
                    if stream_up {
                        tracing::warn!("user data stream down ({why}): orders are polled every {poll:?} until it is back");
                    }
                    stream_up = false;
                }
                Some(UserEvent::Execution(r)) => {
                    if on_execution(&tx, &mut working, &r) {
                        poll_symbol(&mut rest, &tx, &mut working, &mut last_trade, &r.symbol).await;
                    }
                }
            },
            req = rx.recv() => {
                let Some(req) = req else { break };
                match req {
                    VenueRequest::New { order, new } => {
                        let cid = new.client_order_id.clone();
                        let answer = match rest.new_order(&new).await {
                            Ok(r) => Ok(r),
                            Err(RestError::Api { code, msg, .. }) => Err(format!("Binance {code}: {msg}")),
                            Err(e) => {
                                // The outcome is unknown: look it up once the request can no
                                // longer be accepted, never send it again.
                                tracing::warn!(client_id = %cid, "no answer to a new order ({e}); looking it up");
                                tokio::time::sleep(Duration::from_millis(rest.recv_window_ms + 1_000)).await;
                                match rest.query_order(&new.symbol, &cid).await {
                                    Ok(Some(r)) => Ok(r),
                                    Ok(None) => Err(format!("not sent: {e}")),
                                    Err(e2) => {
                                        // Still unknown: keep polling it; the next start settles it
                                        // if this session cannot.
                                        tracing::error!(client_id = %cid, "cannot look the order up: {e2}");
                                        working.insert(cid.clone(), Working::new(order, &new.symbol, None));
                                        continue;
                                    }
                                }
                            }
                        };
                        match answer {
                            Ok(r) => {
                                kairos_chain::hooks::halt_at("order-sent");
                                let _ = tx.send(VenueReport::Accepted { order, venue_order_id: r.order_id });
                                // The polls and the stream may see these trades again: each
                                // trade id is reported once.
                                let mut w = Working::new(order, &new.symbol, Some(r.order_id));
                                for f in &r.fills {
                                    w.fill(&tx, VenueReport::Fill { order, trade_id: f.trade_id, time_ms: now_ms(), qty: f.qty, price: f.price, commission: f.commission });
                                }
                                if !r.is_final() || w.filled < r.executed_qty {
                                    working.insert(cid, w);
                                } else if r.status != "FILLED" {
                                    let _ = tx.send(VenueReport::Done { order, status: r.status.clone() });
                                }
                            }
                            Err(reason) => {
                                let _ = tx.send(VenueReport::Rejected { order, reason });
                            }
                        }
                    }
                    VenueRequest::Cancel { order, symbol, client_id } => match rest.cancel_order(&symbol, &client_id).await {
                        Ok(_) => {
                            // Trades before the cancel first, then the end.
                            poll_symbol(&mut rest, &tx, &mut working, &mut last_trade, &symbol).await;
                        }
                        Err(e) => {
                            let _ = tx.send(VenueReport::CancelRejected { order, reason: e.to_string() });
                        }
                    },
                }
            }
            _ = tick.tick() => {
                if stream_up && last_poll.elapsed() < safety {
                    continue;
                }
                last_poll = Instant::now();
                poll_all(&mut rest, &tx, &mut working, &mut last_trade).await;
            }
        }
    }
}

/// [`poll_symbol`] for every symbol with a working order.
async fn poll_all(
    rest: &mut BinanceRest,
    tx: &mpsc::UnboundedSender<VenueReport>,
    working: &mut BTreeMap<String, Working>,
    last_trade: &mut BTreeMap<String, u64>,
) {
    let symbols: BTreeSet<String> = working.values().map(|w| w.symbol.clone()).collect();
    for symbol in symbols {
        poll_symbol(rest, tx, working, last_trade, &symbol).await;
    }
}

/// Looks up the working orders of `symbol`; reports the symbol's new trades to the orders
/// they belong to (the trades since `last_trade`, which then moves on), then the orders that
/// ended.
async fn poll_symbol(
    rest: &mut BinanceRest,
    tx: &mpsc::UnboundedSender<VenueReport>,
    working: &mut BTreeMap<String, Working>,
    last_trade: &mut BTreeMap<String, u64>,
    symbol: &str,
) {
    let ids: Vec<String> =
        working.iter().filter(|(_, w)| w.symbol == symbol).map(|(c, _)| c.clone()).collect();
    let mut ended = Vec::new();
    let mut traded = false;
    for cid in &ids {
        let Some(w) = working.get_mut(cid) else { continue };
        match rest.query_order(symbol, cid).await {
            Ok(Some(r)) => {
                if w.venue_order_id.is_none() {
                    w.venue_order_id = Some(r.order_id);
                    let _ = tx
                        .send(VenueReport::Accepted { order: w.order, venue_order_id: r.order_id });
                }
                traded |= r.executed_qty > Fixed::ZERO;
                if r.is_final() {
                    ended.push((cid.clone(), r.status));
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(client_id = %cid, "polling the order: {e}"),
        }
    }
    if traded {
        let by_id: BTreeMap<u64, String> = working
            .iter()
            .filter_map(|(cid, w)| w.venue_order_id.map(|v| (v, cid.clone())))
            .collect();
        loop {
            let from = last_trade.get(symbol).map(|l| l + 1);
            let trades = match rest.my_trades(symbol, from).await {
                Ok(t) => t,
                Err(e) => {
                    // Nothing ends before its trades are read: try again at the next poll.
                    tracing::warn!(symbol, "reading trades: {e}");
                    return;
                }
            };
            for t in &trades {
                if let Some(w) = by_id.get(&t.order_id).and_then(|cid| working.get_mut(cid)) {
                    let order = w.order;
                    w.fill(
                        tx,
                        VenueReport::Fill {
                            order,
                            trade_id: t.id,
                            time_ms: t.time,
                            qty: t.qty,
                            price: t.price,
                            commission: t.commission,
                        },
                    );
                }
            }
            match trades.iter().map(|t| t.id).max() {
                Some(max) => {
                    last_trade.insert(symbol.to_string(), max);
                }
                None => break,
            }
            if trades.len() < 1000 {
                break;
            }
        }
    }
    for (cid, status) in ended {
        if let Some(w) = working.remove(&cid)
            && status != "FILLED"
        {
            let _ = tx.send(VenueReport::Done { order: w.order, status });
        }
    }
}
