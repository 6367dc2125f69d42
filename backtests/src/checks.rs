//! Bias checks of a strategy on real data: does it peek at the future, does it repeat.
//!
//! - [`lookahead`]: the strategy runs on the full data and on copies cut after several points
//!   in time. Up to a cut, the two runs saw exactly the same bars, so every decision there, and
//!   with it every fill and the equity after every bar, must be the same, bit for bit. A
//!   difference means a decision changed when only data after it changed: the strategy read
//!   the future (a shared series read ahead, a file of signals, anything). Each cut is run as
//!   a backtest runs it, and again with shared indicator series offered as a sweep offers them
//!   ([`SharedSeries`]), where a series read ahead would show.
//! - [`determinism`]: the strategy runs twice, from fresh builds, and once more with shared
//!   series; the equity curves, fills, trades and statistics must be identical, bit for bit
//!   (unseeded randomness, a hash map's order, state kept between runs all show here).
//!
//! Both take a constructor, so they check user plugins as they check the built-ins.

use std::sync::{Arc, Mutex, PoisonError};

use kairos_strategies::{
    Bar, BookUpdate, Command, Context, Data, Fill, OrderEvent, Quote, SharedSeries, Strategy,
    Timer, Timestamp, Trade, TradingStatus,
};

use crate::data::BarSeries;
use crate::engine::{Backtest, BacktestConfig, BacktestResult};
use crate::stats::Stat;
use crate::{Error, Result};

/// Builds a fresh strategy for each run.
pub type Build<'a> = &'a dyn Fn() -> Result<Box<dyn Strategy>>;

/// Where two runs first part.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// The equity point (bar time) where they first differ.
    pub point: usize,
    /// Its time.
    pub time: Timestamp,
    /// What differs, with both values.
    pub what: String,
}

/// One cut of [`lookahead`].
#[derive(Debug, Clone)]
pub struct Cut {
    /// The last bar time kept.
    pub at: Timestamp,
    /// Equity points compared.
    pub points: usize,
    /// Fills compared.
    pub fills: usize,
    /// Decisions (orders, cancels, modifications) compared.
    pub decisions: usize,
    /// Whether shared series were offered.
    pub shared: bool,
    /// Where the cut run left the full one, if it did.
    pub divergence: Option<Divergence>,
}

/// One decision: what the strategy asked for, when, and after how many bars (`in_bar`: during
/// that bar's `on_bar`, or in a hook after it).
#[derive(Debug, Clone, PartialEq)]
struct Decision {
    bars: usize,
    in_bar: bool,
    now: Timestamp,
    command: Command,
}

/// A strategy with every command it queues recorded, hook by hook (`on_stop` left out: a run
/// cut short stops earlier).
struct Recorder {
    inner: Box<dyn Strategy>,
    bars: usize,
    log: Arc<Mutex<Vec<Decision>>>,
}

impl Recorder {
    fn note(&mut self, ctx: &Context, in_bar: bool) {
        let cmds = ctx.pending_commands();
        if cmds.is_empty() {
            return;
        }
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        for &command in cmds {
            log.push(Decision { bars: self.bars, in_bar, now: ctx.now(), command });
        }
    }
}

impl Strategy for Recorder {
    fn warmup_bars(&self) -> usize {
        self.inner.warmup_bars()
    }
    fn wants_order_events(&self) -> bool {
        self.inner.wants_order_events()
    }
    fn share(&mut self, shared: &SharedSeries) {
        self.inner.share(shared)
    }
    fn on_start(&mut self, ctx: &mut Context) {
        self.inner.on_start(ctx);
        self.note(ctx, false);
    }
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        self.bars += 1;
        self.inner.on_bar(ctx, bar);
        self.note(ctx, true);
    }
    fn on_trade(&mut self, ctx: &mut Context, trade: &Trade) {
        self.inner.on_trade(ctx, trade);
        self.note(ctx, false);
    }
    fn on_quote(&mut self, ctx: &mut Context, quote: &Quote) {
        self.inner.on_quote(ctx, quote);
        self.note(ctx, false);
    }
    fn on_book(&mut self, ctx: &mut Context, update: &BookUpdate<'_>) {
        self.inner.on_book(ctx, update);
        self.note(ctx, false);
    }
    fn on_fill(&mut self, ctx: &mut Context, fill: &Fill) {
        self.inner.on_fill(ctx, fill);
        self.note(ctx, false);
    }
    fn on_order(&mut self, ctx: &mut Context, event: &OrderEvent) {
        self.inner.on_order(ctx, event);
        self.note(ctx, false);
    }
    fn on_timer(&mut self, ctx: &mut Context, timer: &Timer) {
        self.inner.on_timer(ctx, timer);
        self.note(ctx, false);
    }
    fn on_data(&mut self, ctx: &mut Context, data: &Data) {
        self.inner.on_data(ctx, data);
        self.note(ctx, false);
    }
    fn on_status(&mut self, ctx: &mut Context, status: &TradingStatus<'_>) {
        self.inner.on_status(ctx, status);
        self.note(ctx, false);
    }
    fn on_stop(&mut self, ctx: &mut Context) {
        self.inner.on_stop(ctx)
    }
}

/// A run, its decisions, and how many bars reached the strategy.
fn run(
    config: BacktestConfig,
    series: &[BarSeries],
    build: Build<'_>,
    shared: bool,
) -> Result<(BacktestResult, Vec<Decision>, usize)> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut s = Recorder { inner: build()?, bars: 0, log: log.clone() };
    if shared {
        s.share(&SharedSeries::new(series.iter().map(|s| &s.bars[..])));
    }
    let r = Backtest::new(config).quiet().run(series, &mut s)?;
    let decisions = std::mem::take(&mut *log.lock().unwrap_or_else(PoisonError::into_inner));
    Ok((r, decisions, s.bars))
}

/// The first decision where `a` and `b` differ, over `a`'s decisions up to the end of bar
/// `bars`' `on_bar` and all of `b`'s.
fn compare_decisions(a: &[Decision], b: &[Decision], bars: usize) -> Option<Divergence> {
    let upto: Vec<&Decision> =
        a.iter().filter(|d| d.bars < bars || (d.bars == bars && d.in_bar)).collect();
    let k = upto
        .iter()
        .zip(b)
        .position(|(x, y)| *x != y)
        .or_else(|| (upto.len() != b.len()).then_some(upto.len().min(b.len())))?;
    let (x, y): (Option<&Decision>, Option<&Decision>) = (upto.get(k).copied(), b.get(k));
    let d = x.or(y)?;
    let show =
        |d: Option<&Decision>| d.map_or("nothing".to_string(), |d| format!("{:?}", d.command));
    Some(Divergence {
        point: d.bars.saturating_sub(1),
        time: d.now,
        what: format!(
            "decision {} (after {} bars): {} with the full data, {} with it cut",
            k + 1,
            d.bars,
            show(x),
            show(y)
        ),
    })
}

/// The first place `a` and `b` differ among their first `points` equity points and the fills
/// up to `until` (bar labels), or `None`.
fn compare(
    a: &BacktestResult,
    b: &BacktestResult,
    points: usize,
    until: Option<Timestamp>,
) -> (Option<Divergence>, usize) {
    let time = |r: &BacktestResult, i: usize| r.equity_time.get(i).unwrap_or(Timestamp(0));
    let mut first: Option<Divergence> = None;
    let n = points.min(a.equity.len()).min(b.equity.len());
    if let Some(i) = (0..n).find(|&i| a.equity[i].to_bits() != b.equity[i].to_bits()) {
        first = Some(Divergence {
            point: i,
            time: time(a, i),
            what: format!("equity {} in one run, {} in the other", a.equity[i], b.equity[i]),
        });
    } else if a.equity.len().min(points) != b.equity.len().min(points) {
        first = Some(Divergence {
            point: n,
            time: time(a, n.saturating_sub(1)),
            what: format!(
                "{} equity points in one run, {} in the other",
                a.equity.len(),
                b.equity.len()
            ),
        });
    }
    let within = |f: &&kairos_strategies::Fill| until.is_none_or(|u| f.ts <= u);
    let fa: Vec<_> = a.fills.iter().filter(within).collect();
    let fb: Vec<_> = b.fills.iter().filter(within).collect();
    let same = |x: &kairos_strategies::Fill, y: &kairos_strategies::Fill| {
        x.ts == y.ts
            && x.side == y.side
            && x.instrument == y.instrument
            && x.quantity.to_bits() == y.quantity.to_bits()
            && x.price.to_bits() == y.price.to_bits()
            && x.commission.to_bits() == y.commission.to_bits()
    };
    let k = fa.iter().zip(&fb).position(|(x, y)| !same(x, y));
    let fill_diff = match k {
        Some(k) => {
            Some((k, format!("fill {}: {:?} in one run, {:?} in the other", k + 1, fa[k], fb[k])))
        }
        None if fa.len() != fb.len() => {
            let k = fa.len().min(fb.len());
            let extra = fa.get(k).or(fb.get(k)).copied();
            Some((
                k,
                format!(
                    "{} fills in one run, {} in the other (next: {extra:?})",
                    fa.len(),
                    fb.len()
                ),
            ))
        }
        None => None,
    };
    if let Some((k, what)) = fill_diff {
        let ts = fa.get(k).or(fb.get(k)).map_or(Timestamp(i64::MAX), |f| f.ts);
        let point = a.equity_time.count_before(ts, false);
        if first.as_ref().is_none_or(|d| ts < d.time) {
            first = Some(Divergence { point, time: ts, what });
        }
    }
    (first, fa.len())
}

/// Runs the lookahead check with `cuts` cut points spread over the data after the strategy's
/// warm-up, each cut with and without shared series.
pub fn lookahead(
    config: BacktestConfig,
    series: &[BarSeries],
    build: Build<'_>,
    cuts: usize,
) -> Result<Vec<Cut>> {
    if series.iter().all(BarSeries::is_empty) {
        return Err(Error::Config { key: "data", reason: "no bars to replay".into() });
    }
    if cuts == 0 {
        return Err(Error::Config { key: "cuts", reason: "at least one cut".into() });
    }
    let warmup = build()?.warmup_bars();
    // Cut times from the longest series, after its warm-up.
    let longest = series.iter().max_by_key(|s| s.len()).map(|s| &s.bars[..]).unwrap_or_default();
    let from = (warmup + 1).min(longest.len().saturating_sub(1));
    let span = longest.len().saturating_sub(1) - from;
    let mut times: Vec<Timestamp> =
        (1..=cuts).map(|j| longest[from + span * j / (cuts + 1)].ts).collect();
    times.dedup();
    let mut out = Vec::new();
    for shared in [false, true] {
        let (full, full_decisions, _) = run(config, series, build, shared)?;
        for &at in &times {
            let cut: Vec<BarSeries> = series
                .iter()
                .map(|s| BarSeries {
                    bars: s.bars.iter().take_while(|b| b.ts <= at).copied().collect(),
                    instrument: s.instrument.clone(),
                    source: s.source.clone(),
                    simulated: s.simulated,
                    time_format: s.time_format,
                })
                .collect();
            if cut.iter().all(BarSeries::is_empty) {
                continue;
            }
            let (part, part_decisions, bars) = run(config, &cut, build, shared)?;
            let points = part.equity.len();
            let (mut divergence, fills) = compare(&full, &part, points, Some(at));
            if let Some(d) = compare_decisions(&full_decisions, &part_decisions, bars)
                && divergence.as_ref().is_none_or(|e| d.time <= e.time)
            {
                divergence = Some(d);
            }
            out.push(Cut {
                at,
                points,
                fills,
                decisions: part_decisions.len(),
                shared,
                divergence,
            });
        }
    }
    Ok(out)
}

/// What [`determinism`] compared.
#[derive(Debug, Clone)]
pub struct Repeat {
    /// Which runs: "second run" or "with shared series".
    pub against: &'static str,
    /// Equity points, fills and trades compared.
    pub points: usize,
    /// Fills compared.
    pub fills: usize,
    /// Trades compared.
    pub trades: usize,
    /// Where it left the first run, if it did.
    pub divergence: Option<Divergence>,
}

/// Runs the strategy three times (twice as a backtest, once with shared series) and compares
/// each later run with the first.
pub fn determinism(
    config: BacktestConfig,
    series: &[BarSeries],
    build: Build<'_>,
) -> Result<Vec<Repeat>> {
    let (first, first_decisions, _) = run(config, series, build, false)?;
    let mut out = Vec::new();
    for (against, shared) in [("second run", false), ("with shared series", true)] {
        let (other, other_decisions, bars) = run(config, series, build, shared)?;
        let (mut divergence, fills) = compare(&first, &other, usize::MAX, None);
        if let Some(d) = compare_decisions(&first_decisions, &other_decisions, bars)
            && divergence.as_ref().is_none_or(|e| d.time <= e.time)
        {
            divergence = Some(d);
        }
        if divergence.is_none() {
            let t = |r: &BacktestResult| format!("{:?}", r.trades);
            if t(&first) != t(&other) {
                divergence = Some(Divergence {
                    point: first.equity.len(),
                    time: first.equity_time.last().unwrap_or(Timestamp(0)),
                    what: "the closed trades differ".into(),
                });
            }
        }
        if divergence.is_none() {
            let (a, b) = (first.summary(), other.summary());
            for ((name, x), (_, y)) in a.figures().into_iter().zip(b.figures()) {
                let same = match (&x, &y) {
                    (Stat::Float(x), Stat::Float(y)) => x.to_bits() == y.to_bits(),
                    _ => x == y,
                };
                if !same {
                    divergence = Some(Divergence {
                        point: first.equity.len(),
                        time: first.equity_time.last().unwrap_or(Timestamp(0)),
                        what: format!("{name}: {x:?} in one run, {y:?} in the other"),
                    });
                    break;
                }
            }
        }
        out.push(Repeat {
            against,
            points: first.equity.len(),
            fills,
            trades: first.trades.len(),
            divergence,
        });
    }
    Ok(out)
}
