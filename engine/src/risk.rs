//! The risk engine: pre-trade rules and PnL breakers between a strategy and any execution
//! client.
//!
//! [`Risk`] wraps an [`Execution`] (the paper venue, a real venue's adapter, the on-chain
//! executor) and is itself one, so every mode runs the same checks. Each new order and each
//! modification is checked, in this order, against:
//!
//! - `invalid_order`: a size or price that is not a positive finite number (the context checks
//!   this too; the risk engine does not trust its caller);
//! - `halted`: the trading state is HALTED (a breaker, or the kill switch);
//! - `reducing`: the state is REDUCING and the order would not shrink the position;
//! - `order_rate`: more than `max_orders_per_s` in the last second or `max_orders_per_min` in
//!   the last minute (event time, so replays and backtests decide as live does);
//! - `price_band`: a limit or stop price more than `price_band_bps` from the reference (the
//!   book's mid, else the last trade, else the last mark), or no reference price at all;
//! - `max_order_notional`: size times price (the limit price, or the reference);
//! - `max_position`: the position, plus every working order on the same side, plus this one;
//! - `max_total_notional`: the value of every position with this order's worst case.
//!
//! An order that only shrinks a position (at most its size, in the other direction) passes
//! the position and exposure limits even when the position is above them (after a limit was
//! lowered). Cancels always pass. A refusal reaches the strategy as an order-rejected (or
//! modify-rejected) event naming the rule, and is logged.
//!
//! Trading states: ACTIVE, REDUCING, HALTED. Breakers move them: the day's loss (equity since
//! the UTC day began) reaching `reduce_daily_loss` or `max_daily_loss`, the drawdown from the
//! equity's peak reaching `reduce_drawdown_pct` or `max_drawdown_pct`. A tripped breaker
//! holds: the daily ones until the next UTC day, the drawdown ones until
//! [`Risk::reset_breakers`]. The [`KillSwitch`] halts from any thread; the next call into the
//! risk engine (any event or request) applies it. On entering HALTED, with `cancel_on_halt`,
//! every working order is cancelled. [`RiskState`] is what a journal stores to keep the state
//! over restarts ([`Risk::state`], [`Risk::restore`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kairos_strategies::{
    Bar, BookUpdate, Command, Context, InstrumentId, Modification, Order, OrderEvent, OrderId,
    OrderRequest, OrderSize, OrderUpdate, Quote, RejectRule, Rejection, RiskRule, Side, Timestamp,
    Trade,
};
use serde::{Deserialize, Serialize};

use crate::{Execution, Phase, Reports};

/// The risk limits, as `[risk]` in an agent's TOML. Every limit is optional; none set means
/// the risk engine only checks that orders are well-formed and applies the kill switch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskLimits {
    /// Largest order value, in the quote currency.
    pub max_order_notional: Option<f64>,
    /// Largest position per instrument, in its units (symbol = size), working orders
    /// included.
    pub max_position: BTreeMap<String, f64>,
    /// Largest value of all positions together, in the quote currency.
    pub max_total_notional: Option<f64>,
    /// Largest distance of a limit or stop price from the reference price, in basis points.
    pub price_band_bps: Option<f64>,
    /// Most new orders in any second.
    pub max_orders_per_s: Option<u32>,
    /// Most new orders in any minute.
    pub max_orders_per_min: Option<u32>,
    /// The day's loss (quote currency) that moves the state to REDUCING.
    pub reduce_daily_loss: Option<f64>,
    /// The day's loss (quote currency) that moves the state to HALTED.
    pub max_daily_loss: Option<f64>,
    /// The drawdown from the equity's peak, in percent, that moves the state to REDUCING.
    pub reduce_drawdown_pct: Option<f64>,
    /// The drawdown from the equity's peak, in percent, that moves the state to HALTED.
    pub max_drawdown_pct: Option<f64>,
    /// Cancel every working order when the state becomes HALTED [default: true].
    pub cancel_on_halt: Option<bool>,
}

/// A risk setting out of range, named by its key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("risk setting `{key}`: {reason}")]
pub struct RiskConfigError {
    /// The key, as written in `[risk]`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl RiskLimits {
    /// Checks every setting against `instruments` (the symbols of `max_position`), naming the
    /// first one out of range.
    pub fn validate(&self, symbols: &[&str]) -> Result<(), RiskConfigError> {
        let bad = |key: &str, reason: String| Err(RiskConfigError { key: key.into(), reason });
        let positive = [
            ("max_order_notional", self.max_order_notional),
            ("max_total_notional", self.max_total_notional),
            ("price_band_bps", self.price_band_bps),
            ("reduce_daily_loss", self.reduce_daily_loss),
            ("max_daily_loss", self.max_daily_loss),
            ("reduce_drawdown_pct", self.reduce_drawdown_pct),
            ("max_drawdown_pct", self.max_drawdown_pct),
        ];
        for (key, v) in positive {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return bad(key, format!("{v} is not a positive number"));
            }
        }
        for (key, v) in [
            ("reduce_drawdown_pct", self.reduce_drawdown_pct),
            ("max_drawdown_pct", self.max_drawdown_pct),
        ] {
            if let Some(v) = v
                && v >= 100.0
            {
                return bad(key, format!("{v}% is not below 100%"));
            }
        }
        for (key, v) in [
            ("max_orders_per_s", self.max_orders_per_s),
            ("max_orders_per_min", self.max_orders_per_min),
        ] {
            if v == Some(0) {
                return bad(key, "0 would refuse every order (leave it out for no limit)".into());
            }
        }
        if let (Some(r), Some(h)) = (self.reduce_daily_loss, self.max_daily_loss)
            && r > h
        {
            return bad("reduce_daily_loss", format!("{r} is above max_daily_loss ({h})"));
        }
        if let (Some(r), Some(h)) = (self.reduce_drawdown_pct, self.max_drawdown_pct)
            && r > h
        {
            return bad("reduce_drawdown_pct", format!("{r} is above max_drawdown_pct ({h})"));
        }
        for (symbol, v) in &self.max_position {
            let key = format!("max_position.{symbol}");
            if !symbols.contains(&symbol.as_str()) {
                return bad(
                    &key,
                    format!("{symbol} is not one of the instruments ({})", symbols.join(", ")),
                );
            }
            if !(v.is_finite() && *v >= 0.0) {
                return bad(&key, format!("{v} is not a size (0 or more)"));
            }
        }
        Ok(())
    }
}

/// Where trading stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradingState {
    /// Orders pass the rules.
    Active,
    /// Only orders that shrink a position pass.
    Reducing,
    /// No new orders; cancels only.
    Halted,
}

impl TradingState {
    /// `ACTIVE`, `REDUCING` or `HALTED`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Reducing => "REDUCING",
            Self::Halted => "HALTED",
        }
    }
}

/// A tripped breaker: the state it holds trading at, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trip {
    /// REDUCING or HALTED.
    pub state: TradingState,
    /// What tripped it, with the numbers.
    pub why: String,
    /// When.
    pub at: Timestamp,
}

/// What the risk engine must remember over a restart (a journal stores it as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskState {
    /// The highest equity seen.
    pub peak_equity: Option<f64>,
    /// The UTC day (days since 1970-01-01) the daily figures are for.
    pub day: Option<i64>,
    /// Equity when that day began (or when the agent first saw it).
    pub day_start_equity: Option<f64>,
    /// The daily-loss breaker, if tripped (cleared when a new UTC day begins).
    pub daily: Option<Trip>,
    /// The drawdown breaker, if tripped (cleared only by a reset).
    pub drawdown: Option<Trip>,
    /// The kill switch's halt, if pulled (cleared only by a reset).
    pub killed: Option<Trip>,
}

impl RiskState {
    /// What an operator's reset of a stopped agent does: the kill switch's halt and the
    /// drawdown breaker are cleared and the equity peak forgotten (the drawdown counts again
    /// from the equity the agent next sees). A daily-loss halt stays until the UTC day ends.
    pub fn reset(&mut self) {
        self.drawdown = None;
        self.killed = None;
        self.peak_equity = None;
    }

    /// The trading state these trips hold.
    pub fn trading_state(&self) -> TradingState {
        [&self.daily, &self.drawdown, &self.killed]
            .into_iter()
            .flatten()
            .map(|t| t.state)
            .max()
            .unwrap_or(TradingState::Active)
    }

    /// Why trading is not ACTIVE (the most severe trip's reason), if it is not.
    pub fn reason(&self) -> Option<&str> {
        [&self.killed, &self.drawdown, &self.daily]
            .into_iter()
            .flatten()
            .max_by_key(|t| t.state)
            .map(|t| t.why.as_str())
    }
}

/// Halts trading from anywhere: another thread, a signal handler's task, an HTTP endpoint.
/// Cloning gives another handle to the same switch.
#[derive(Debug, Clone, Default)]
pub struct KillSwitch {
    pulled: Arc<AtomicBool>,
    why: Arc<Mutex<String>>,
}

impl KillSwitch {
    /// Pulls the switch: the risk engine halts at its next call. `why` says who (`cli`,
    /// `http`, `SIGUSR1`) and is kept with the halt.
    pub fn pull(&self, why: &str) {
        *self.why.lock().unwrap_or_else(|e| e.into_inner()) = why.to_string();
        self.pulled.store(true, Ordering::Release);
    }

    /// Whether it was pulled and not yet taken by the risk engine.
    pub fn is_pulled(&self) -> bool {
        self.pulled.load(Ordering::Acquire)
    }

    fn take(&self) -> Option<String> {
        if !self.pulled.swap(false, Ordering::AcqRel) {
            return None;
        }
        Some(std::mem::take(&mut *self.why.lock().unwrap_or_else(|e| e.into_inner())))
    }
}

/// A change of trading state, for logs, metrics and the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// When.
    pub at: Timestamp,
    /// From.
    pub from: TradingState,
    /// To.
    pub to: TradingState,
    /// Why.
    pub why: String,
}

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const DAY: i64 = 86_400 * SECOND;

/// The risk engine around the execution client `X` (see the module comment).
#[derive(Debug)]
pub struct Risk<X> {
    /// The execution client it guards.
    pub inner: X,
    limits: RiskLimits,
    /// `max_position` by instrument index.
    max_position: Vec<Option<f64>>,
    state: RiskState,
    kill: KillSwitch,
    /// Submission times within the last minute.
    recent: VecDeque<Timestamp>,
    /// Last trade price by instrument index.
    last_trade: Vec<Option<f64>>,
    /// Refusals by rule, in [`RiskRule::ALL`]'s order.
    refused: [u64; RiskRule::ALL.len()],
    transitions: Vec<Transition>,
    /// Orders handed to the venue (and maybe still working there): the ones a halt cancels.
    /// Pruned to the context's open orders as it grows.
    sent: std::collections::BTreeSet<OrderId>,
}

impl<X: Execution> Risk<X> {
    /// The risk engine with `limits` (checked against the context's instruments) around
    /// `inner`.
    pub fn new(inner: X, limits: RiskLimits, ctx: &Context) -> Result<Self, RiskConfigError> {
        let symbols: Vec<&str> = ctx.instruments().iter().map(|i| i.symbol.as_str()).collect();
        limits.validate(&symbols)?;
        let max_position =
            ctx.instruments().iter().map(|i| limits.max_position.get(&i.symbol).copied()).collect();
        Ok(Self {
            inner,
            limits,
            max_position,
            state: RiskState::default(),
            kill: KillSwitch::default(),
            recent: VecDeque::new(),
            last_trade: vec![None; symbols.len()],
            refused: [0; RiskRule::ALL.len()],
            transitions: Vec::new(),
            sent: std::collections::BTreeSet::new(),
        })
    }

    /// A handle that halts trading from anywhere.
    pub fn kill_switch(&self) -> KillSwitch {
        self.kill.clone()
    }

    /// The trading state now.
    pub fn trading_state(&self) -> TradingState {
        self.state.trading_state()
    }

    /// What to store to keep the state over a restart.
    pub fn state(&self) -> &RiskState {
        &self.state
    }

    /// Restores a stored state (before the run starts): trips, the peak and the day's start
    /// equity carry on.
    pub fn restore(&mut self, state: RiskState) {
        self.state = state;
    }

    /// Clears the drawdown breaker and the kill switch (an operator's decision); the daily
    /// breaker stays until the next UTC day. The peak restarts from the equity now.
    pub fn reset_breakers(&mut self, ctx: &Context) {
        let from = self.trading_state();
        self.state.drawdown = None;
        self.state.killed = None;
        self.state.peak_equity = Some(ctx.equity());
        let to = self.trading_state();
        if from != to {
            self.transition(ctx.now(), from, to, "reset by the operator".into());
        }
    }

    /// Refusals so far, by rule.
    pub fn refused(&self) -> impl Iterator<Item = (RiskRule, u64)> + '_ {
        RiskRule::ALL.iter().copied().zip(self.refused.iter().copied())
    }

    /// Every change of trading state so far, oldest first.
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// The limits.
    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }

    fn transition(&mut self, at: Timestamp, from: TradingState, to: TradingState, why: String) {
        tracing::warn!(from = from.name(), to = to.name(), "trading state: {why}");
        self.transitions.push(Transition { at, from, to, why });
    }

    /// Applies the kill switch and the breakers now, without waiting for the next event (a
    /// live session calls it when the switch is pulled). Run it through
    /// `Engine::from_venue`, so that the cancels it makes go out.
    pub fn apply_switches(&mut self, ctx: &mut Context, out: &mut Reports) {
        self.watch(ctx, out);
    }

    /// Applies the kill switch and the breakers at `ctx.now()`; on entering HALTED, cancels
    /// every working order when configured to.
    fn watch(&mut self, ctx: &mut Context, out: &mut Reports) {
        let from = self.trading_state();
        let now = ctx.now();
        if let Some(who) = self.kill.take() {
            let why = format!("kill switch ({who})");
            self.state.killed = Some(Trip { state: TradingState::Halted, why, at: now });
        }
        let breakers = self.limits.max_daily_loss.is_some()
            || self.limits.reduce_daily_loss.is_some()
            || self.limits.max_drawdown_pct.is_some()
            || self.limits.reduce_drawdown_pct.is_some();
        if breakers {
            self.breakers(ctx.equity(), now);
        }
        let to = self.trading_state();
        if to != from {
            let why = self.state.reason().unwrap_or("breakers cleared").to_string();
            self.transition(now, from, to, why);
            if to == TradingState::Halted && self.limits.cancel_on_halt.unwrap_or(true) {
                self.cancel_all(ctx, out);
            }
        }
    }

    fn breakers(&mut self, equity: f64, now: Timestamp) {
        if !equity.is_finite() {
            return;
        }
        let day = now.0.div_euclid(DAY);
        if self.state.day != Some(day) {
            self.state.day = Some(day);
            self.state.day_start_equity = Some(equity);
            self.state.daily = None;
        }
        let peak = self.state.peak_equity.map_or(equity, |p| p.max(equity));
        self.state.peak_equity = Some(peak);
        let loss = self.state.day_start_equity.unwrap_or(equity) - equity;
        let severity = |reduce: Option<f64>, halt: Option<f64>, v: f64| {
            if halt.is_some_and(|h| v >= h) {
                Some(TradingState::Halted)
            } else if reduce.is_some_and(|r| v >= r) {
                Some(TradingState::Reducing)
            } else {
                None
            }
        };
        let l = &self.limits;
        if let Some(s) = severity(l.reduce_daily_loss, l.max_daily_loss, loss)
            && self.state.daily.as_ref().is_none_or(|t| t.state < s)
        {
            let limit =
                if s == TradingState::Halted { l.max_daily_loss } else { l.reduce_daily_loss };
            let why = format!(
                "the day's loss {loss:.2} reached {} {:.2} (equity {equity:.2}, {:.2} at the day's start)",
                if s == TradingState::Halted { "max_daily_loss" } else { "reduce_daily_loss" },
                limit.unwrap_or(0.0),
                self.state.day_start_equity.unwrap_or(equity)
            );
            self.state.daily = Some(Trip { state: s, why, at: now });
        }
        let dd = if peak > 0.0 { (peak - equity) / peak * 100.0 } else { 0.0 };
        if let Some(s) = severity(l.reduce_drawdown_pct, l.max_drawdown_pct, dd)
            && self.state.drawdown.as_ref().is_none_or(|t| t.state < s)
        {
            let limit =
                if s == TradingState::Halted { l.max_drawdown_pct } else { l.reduce_drawdown_pct };
            let why = format!(
                "the drawdown {dd:.2}% reached {} {}% (equity {equity:.2}, peak {peak:.2})",
                if s == TradingState::Halted { "max_drawdown_pct" } else { "reduce_drawdown_pct" },
                limit.unwrap_or(0.0)
            );
            self.state.drawdown = Some(Trip { state: s, why, at: now });
        }
    }

    fn cancel_all(&mut self, ctx: &mut Context, out: &mut Reports) {
        let working: Vec<(OrderId, InstrumentId)> = ctx
            .open_orders()
            .iter()
            .filter(|o| !o.status.is_final() && self.sent.contains(&o.id))
            .map(|o| (o.id, o.request.instrument))
            .collect();
        if working.is_empty() {
            return;
        }
        tracing::warn!(orders = working.len(), "halted: cancelling every working order");
        for (order, instrument) in working {
            self.inner.command(ctx, &Command::Cancel { order, instrument }, out);
        }
    }

    /// The price orders in `instrument` are checked against: the book's mid, else the last
    /// trade, else the portfolio's last mark.
    fn reference(&self, ctx: &Context, instrument: InstrumentId) -> Option<f64> {
        let book = ctx.book(instrument);
        if let (Some((b, _)), Some((a, _))) = (book.best_bid(), book.best_ask()) {
            return Some((b.to_f64() + a.to_f64()) / 2.0);
        }
        if let Some(p) = self.last_trade.get(instrument.index()).copied().flatten() {
            return Some(p);
        }
        let p = ctx.portfolio().position(instrument).last_price();
        (p.is_finite() && p > 0.0).then_some(p)
    }

    /// The signed quantity `request` trades (an estimate at `price` for a share of equity),
    /// less what `filled` already did.
    fn signed_quantity(ctx: &Context, request: &OrderRequest, price: f64, filled: f64) -> f64 {
        let q = match request.size {
            OrderSize::Units(q) => q,
            OrderSize::EquityFraction(f) => f * ctx.equity().max(0.0) / price,
            OrderSize::ClosePosition => ctx.position(request.instrument).abs(),
        };
        let q = (q - filled).max(0.0);
        match request.side {
            Side::Buy => q,
            Side::Sell => -q,
        }
    }

    /// Checks a new order (or `order` as a modification would leave it), at `ctx.now()`.
    fn check(
        &mut self,
        ctx: &Context,
        order: &Order,
        counts_as_new: bool,
    ) -> Result<(), (RiskRule, String)> {
        let r = &order.request;
        let inst = r.instrument;
        if inst.index() >= ctx.instruments().len() {
            return Err((RiskRule::InvalidOrder, format!("unknown instrument id {}", inst.0)));
        }
        let symbol = &ctx.instrument(inst).symbol;
        match r.size {
            OrderSize::Units(q) if !(q > 0.0 && q < f64::INFINITY) => {
                return Err((RiskRule::InvalidOrder, format!("size {q} is not a positive number")));
            }
            OrderSize::EquityFraction(f) if !(f > 0.0 && f <= 1.0) => {
                return Err((
                    RiskRule::InvalidOrder,
                    format!("equity fraction {f} is outside (0, 1]"),
                ));
            }
            _ => {}
        }
        if let Some(p) = r.price()
            && !(p.is_finite() && p > 0.0)
        {
            return Err((RiskRule::InvalidOrder, format!("price {p} is not a positive number")));
        }
        let state = self.trading_state();
        if state == TradingState::Halted {
            let why = self.state.reason().unwrap_or("halted").to_string();
            return Err((RiskRule::Halted, format!("trading is HALTED: {why}")));
        }
        let position = ctx.position(inst);
        let closing = matches!(r.size, OrderSize::ClosePosition);
        // The order's worst case: every working order on its side fills, then it does.
        let Some(reference) = self.reference(ctx, inst) else {
            if closing {
                return Ok(());
            }
            return Err((
                RiskRule::PriceBand,
                format!(
                    "no price for {symbol} yet (no book, trade or mark) to check the order against"
                ),
            ));
        };
        let qty = Self::signed_quantity(ctx, r, r.price().unwrap_or(reference), order.filled);
        let same_side: f64 = ctx
            .open_orders()
            .iter()
            .filter(|o| {
                o.id != order.id && o.request.instrument == inst && o.request.side == r.side
            })
            .map(|o| {
                Self::signed_quantity(
                    ctx,
                    &o.request,
                    o.request.price().unwrap_or(reference),
                    o.filled,
                )
            })
            .sum();
        let before = position + same_side;
        let after = before + qty;
        // Shrinks the position without crossing zero.
        let reduces = closing || (after.abs() <= before.abs() + 1e-12 && after * before >= 0.0);
        if state == TradingState::Reducing && !reduces {
            let why = self.state.reason().unwrap_or("reducing").to_string();
            return Err((
                RiskRule::Reducing,
                format!(
                    "trading is REDUCING ({why}): a {} of {} {symbol} would take the position from {} to {}",
                    side_word(r.side),
                    qty.abs(),
                    before,
                    after
                ),
            ));
        }
        if counts_as_new {
            let (per_s, per_min) = (self.limits.max_orders_per_s, self.limits.max_orders_per_min);
            if per_s.is_some() || per_min.is_some() {
                let now = ctx.now();
                while self.recent.front().is_some_and(|t| t.0 <= now.0 - MINUTE) {
                    self.recent.pop_front();
                }
                let last_s = self.recent.iter().rev().take_while(|t| t.0 > now.0 - SECOND).count();
                if let Some(m) = per_s
                    && last_s >= m as usize
                {
                    return Err((
                        RiskRule::OrderRate,
                        format!("{last_s} orders in the last second (max_orders_per_s {m})"),
                    ));
                }
                if let Some(m) = per_min
                    && self.recent.len() >= m as usize
                {
                    return Err((
                        RiskRule::OrderRate,
                        format!(
                            "{} orders in the last minute (max_orders_per_min {m})",
                            self.recent.len()
                        ),
                    ));
                }
            }
        }
        if let (Some(band), Some(p)) = (self.limits.price_band_bps, r.price()) {
            let off = (p / reference - 1.0).abs() * 1e4;
            if off > band {
                return Err((
                    RiskRule::PriceBand,
                    format!(
                        "price {p} is {off:.1} bps from the reference {reference} of {symbol} (price_band_bps {band})"
                    ),
                ));
            }
        }
        if !closing && let Some(max) = self.limits.max_order_notional {
            let notional = qty.abs() * r.price().unwrap_or(reference);
            if notional > max {
                return Err((
                    RiskRule::MaxOrderNotional,
                    format!("the order is worth {notional:.2}, above max_order_notional {max}"),
                ));
            }
        }
        if !reduces {
            if let Some(max) = self.max_position.get(inst.index()).copied().flatten()
                && after.abs() > max + 1e-12
            {
                return Err((
                    RiskRule::MaxPosition,
                    format!(
                        "{symbol}: position {position}, working {same_side} on this side, and this order's {qty} make {after}, past max_position {max}"
                    ),
                ));
            }
            if let Some(max) = self.limits.max_total_notional {
                let mut total = 0.0;
                for (k, _) in ctx.instruments().iter().enumerate() {
                    let id = InstrumentId(k as u32);
                    let pos = if id == inst { after } else { ctx.position(id) };
                    if pos != 0.0 {
                        total += pos.abs() * self.reference(ctx, id).unwrap_or(0.0);
                    }
                }
                if total > max {
                    return Err((
                        RiskRule::MaxTotalNotional,
                        format!(
                            "positions would be worth {total:.2} in all, above max_total_notional {max}"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn refuse(&mut self, rule: RiskRule, reason: &str, symbol: &str) {
        if let Some(i) = RiskRule::ALL.iter().position(|r| *r == rule) {
            self.refused[i] += 1;
        }
        tracing::info!(rule = rule.name(), symbol, "order refused: {reason}");
    }
}

fn side_word(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

impl<X: Execution> Execution for Risk<X> {
    fn command(&mut self, ctx: &mut Context, command: &Command, out: &mut Reports) {
        self.watch(ctx, out);
        match command {
            Command::Submit(order) => {
                if let Err((rule, reason)) = self.check(ctx, order, true) {
                    let symbol = ctx
                        .instruments()
                        .get(order.request.instrument.index())
                        .map_or("?", |i| i.symbol.as_str())
                        .to_string();
                    self.refuse(rule, &reason, &symbol);
                    let update =
                        OrderUpdate::Rejected(Rejection::new(RejectRule::Risk(rule), reason));
                    let event = OrderEvent {
                        order: order.id,
                        instrument: order.request.instrument,
                        ts: ctx.now(),
                        update,
                    };
                    out.order(ctx, event);
                    return;
                }
                if self.limits.max_orders_per_s.is_some()
                    || self.limits.max_orders_per_min.is_some()
                {
                    self.recent.push_back(ctx.now());
                }
                self.sent.insert(order.id);
                if self.sent.len() > 64 + 2 * ctx.open_orders().len() {
                    let open: std::collections::BTreeSet<OrderId> =
                        ctx.open_orders().iter().map(|o| o.id).collect();
                    self.sent.retain(|id| open.contains(id) || *id == order.id);
                }
            }
            Command::Modify { order, instrument, change } => {
                if let Some(current) = ctx.order(*order).copied() {
                    let changed = modified(&current, change);
                    if let Err((rule, reason)) = self.check(ctx, &changed, false) {
                        let symbol = ctx.instrument(*instrument).symbol.clone();
                        self.refuse(rule, &reason, &symbol);
                        let update = OrderUpdate::ModifyRejected(Rejection::new(
                            RejectRule::Risk(rule),
                            reason,
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
                        return;
                    }
                }
            }
            Command::Cancel { .. } => {}
        }
        self.inner.command(ctx, command, out);
    }

    fn has_working(&self) -> bool {
        self.inner.has_working()
    }

    fn working(&self) -> usize {
        self.inner.working()
    }

    fn rejected(&self) -> u64 {
        self.inner.rejected() + self.refused.iter().sum::<u64>()
    }

    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar, phase: Phase, out: &mut Reports) {
        self.inner.on_bar(ctx, bar, phase, out);
        self.watch(ctx, out);
    }

    fn fills_at_close(&self) -> bool {
        self.inner.fills_at_close()
    }

    fn on_trade(&mut self, ctx: &mut Context, trade: &Trade, out: &mut Reports) {
        if let Some(p) = self.last_trade.get_mut(trade.instrument.index()) {
            *p = Some(trade.price);
        }
        self.inner.on_trade(ctx, trade, out);
        self.watch(ctx, out);
    }

    fn on_quote(&mut self, ctx: &mut Context, quote: &Quote, out: &mut Reports) {
        self.inner.on_quote(ctx, quote, out);
        self.watch(ctx, out);
    }

    fn on_book(&mut self, ctx: &mut Context, update: &BookUpdate<'_>, out: &mut Reports) {
        self.inner.on_book(ctx, update, out);
        self.watch(ctx, out);
    }

    fn next_wakeup(&self) -> Option<Timestamp> {
        self.inner.next_wakeup()
    }

    fn wake(&mut self, ctx: &mut Context, out: &mut Reports) {
        self.inner.wake(ctx, out);
        self.watch(ctx, out);
    }
}

/// `order` as `change` would leave it.
fn modified(order: &Order, change: &Modification) -> Order {
    let mut o = *order;
    o.apply_modification(change);
    o
}
