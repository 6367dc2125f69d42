//! The event-driven backtest engine.
//!
//! A bar backtest is one configuration of the engine every mode runs
//! ([`kairos_engine::Engine`]): a historical clock, bar files as the source and the
//! [`SimulatedVenue`] as the execution client. Bars of one or more instruments are merged into
//! one stream ordered by time (ties in the order the series were given). For each bar:
//!
//! 1. the clock moves to the bar's open (`bar.ts`); timers due by then fire;
//! 2. working orders of that instrument are matched against the bar by the
//!    [`SimulatedVenue`] (market orders at the open, limits and stops when the bar trades
//!    through them), fills are booked and delivered to [`Strategy::on_fill`] and
//!    [`Strategy::on_order`];
//! 3. timers due by the bar's close fire, the instrument is marked at the close, the clock
//!    moves to the close and the strategy's [`Strategy::on_bar`] runs: it sees the bar only
//!    now that it has closed; its requests go to the venue, whose answers come back as events;
//! 4. with [`FillAt::Close`], market orders the strategy just placed fill at that close;
//! 5. once every bar of a timestamp is processed, the equity is recorded.
//!
//! A bar's close is the next bar's open, or its open plus the series' usual spacing when that
//! comes first (a gap in the data) or there is no next bar.
//!
//! The run is deterministic: the same bars, strategy and settings give bit-identical results.

use kairos_engine::{Engine, Execution};
use kairos_strategies::{
    Bar, ClosedTrade, Context, Fill, Instrument, InstrumentId, Portfolio, Strategy, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::data::BarSeries;
use crate::stats::{self, Summary};
use crate::time_index::TimeIndex;
use crate::venue::{FillAt, SimulatedVenue, VenueConfig};
use crate::{Error, Result};

/// The most negative commission accepted: a rebate of 5 bps of traded value. Venues' maker
/// rebates are a fraction of that (Binance's best is 0.5 bps); anything beyond it is a typo
/// that would compound into meaningless returns.
pub const MAX_REBATE: f64 = -0.0005;

/// Backtest settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BacktestConfig {
    /// Starting cash in the quote currency.
    pub cash: f64,
    /// Commission as a fraction of traded value. Negative down to [`MAX_REBATE`]: a maker
    /// rebate (paid to the trader on every fill).
    pub commission: f64,
    /// Fixed fee per fill.
    pub fixed_fee: f64,
    /// Slippage per fill in basis points.
    pub slippage_bps: f64,
    /// When market orders fill.
    pub fill: FillAt,
    /// Lot size override for every instrument (order sizes are whole multiples of it);
    /// `None` keeps the instruments' own (1 unit for files).
    pub lot_size: Option<f64>,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            cash: 100_000.0,
            commission: 0.0,
            fixed_fee: 0.0,
            slippage_bps: 0.0,
            fill: FillAt::NextOpen,
            lot_size: None,
        }
    }
}

impl BacktestConfig {
    /// Checks every setting, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |key, reason: String| Err(Error::Config { key, reason });
        if !(self.cash.is_finite() && self.cash > 0.0) {
            return bad("cash", format!("{} is not a positive amount", self.cash));
        }
        if !(self.commission.is_finite() && (MAX_REBATE..0.1).contains(&self.commission)) {
            return bad(
                "commission",
                format!(
                    "{} is outside [{MAX_REBATE}, 0.1) (a fraction of traded value: 0.001 = 0.1%; \
                     a negative one is a maker rebate, and none is larger than 0.0005, 5 bps)",
                    self.commission
                ),
            );
        }
        if !(self.fixed_fee.is_finite() && self.fixed_fee >= 0.0) {
            return bad("fixed_fee", format!("{} is not a non-negative amount", self.fixed_fee));
        }
        if !(self.slippage_bps.is_finite() && (0.0..10_000.0).contains(&self.slippage_bps)) {
            return bad("slippage_bps", format!("{} is outside [0, 10000)", self.slippage_bps));
        }
        if let Some(l) = self.lot_size
            && !(l.is_finite() && l > 0.0)
        {
            return bad("lot_size", format!("{l} is not a positive number"));
        }
        Ok(())
    }

    fn venue(&self) -> VenueConfig {
        VenueConfig {
            commission: self.commission,
            fixed_fee: self.fixed_fee,
            slippage_bps: self.slippage_bps,
            fill: self.fill,
        }
    }
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct BacktestResult {
    /// The settings it ran with.
    pub config: BacktestConfig,
    /// The instruments, indexed by `InstrumentId`.
    pub instruments: Vec<Instrument>,
    /// Where each instrument's data came from.
    pub sources: Vec<String>,
    /// Whether any of the data was simulated.
    pub simulated: bool,
    /// Number of bars replayed.
    pub bars: usize,
    /// One timestamp per equity point (each distinct bar time), run-length coded.
    pub equity_time: TimeIndex,
    /// Equity after each timestamp.
    pub equity: Vec<f64>,
    /// Closed trades in the order they closed. Positions still open at the end are not in it
    /// (as in backtesting.py); they are valued in the final equity.
    pub trades: Vec<ClosedTrade>,
    /// Every fill.
    pub fills: Vec<Fill>,
    /// The account at the end.
    pub portfolio: Portfolio,
    /// Orders the venue rejected.
    pub rejected_orders: u64,
    /// Orders still working at the end (never filled).
    pub unfilled_orders: usize,
    /// Per instrument: the close at the strategy's first tradable bar and the last close, for
    /// the buy-and-hold benchmark.
    pub buy_hold: Vec<(f64, f64)>,
}

impl BacktestResult {
    /// The summary statistics.
    pub fn summary(&self) -> Summary {
        stats::summarize(self)
    }
}

/// A configured backtest, ready to run strategies.
#[derive(Debug, Clone, Default)]
pub struct Backtest {
    config: BacktestConfig,
    quiet: bool,
}

impl Backtest {
    /// A backtest with these settings.
    pub fn new(config: BacktestConfig) -> Self {
        Self { config, quiet: false }
    }

    /// Without the warning a run logs when the venue rejected orders (a sweep runs thousands
    /// and reports the count in each row's `rejected_orders`).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Replays `series` through `strategy`.
    pub fn run<S: Strategy + ?Sized>(
        &self,
        series: &[BarSeries],
        strategy: &mut S,
    ) -> Result<BacktestResult> {
        self.run_with(series, strategy, None)
    }

    /// [`Backtest::run`] with `models` answering the strategy's model asks
    /// ([`Context::ask`](kairos_strategies::Context::ask)): a simulated service that delays
    /// each answer by a modelled inference latency. Without one, every ask fails at once.
    pub fn run_with<S: Strategy + ?Sized>(
        &self,
        series: &[BarSeries],
        strategy: &mut S,
        models: Option<Box<dyn kairos_engine::Models>>,
    ) -> Result<BacktestResult> {
        self.config.validate()?;
        if series.is_empty() || series.iter().all(BarSeries::is_empty) {
            return Err(Error::Config { key: "data", reason: "no bars to replay".into() });
        }
        let mut instruments: Vec<Instrument> =
            series.iter().map(|s| s.instrument.clone()).collect();
        if let Some(lot) = self.config.lot_size {
            for i in &mut instruments {
                i.lot_size = lot;
            }
        }
        for i in &instruments {
            i.validate()?;
        }
        let bars: usize = series.iter().map(BarSeries::len).sum();
        let mut run = Run {
            engine: Engine::historical(
                Context::new(instruments.clone(), self.config.cash),
                SimulatedVenue::new(self.config.venue()),
            ),
            equity_time: TimeIndex::new(),
            equity: Vec::new(),
        };
        if let Some(m) = models {
            run.engine.set_models(m);
        }
        run.engine.start(strategy);
        if let [only] = series {
            // One instrument: every bar is its own timestamp, so the curve has exactly one
            // point per bar, written in place (no capacity checks) while the bar is in cache,
            // and the times go to the run-length-coded index (no memory for regular bars).
            let all = &only.bars;
            run.equity = run.single(all, only.interval_hint(), strategy);
        } else {
            run.equity =
                crate::mem::vec_with_capacity(series.iter().map(BarSeries::len).max().unwrap_or(0));
            run.merged(series, strategy);
        }
        run.engine.stop(strategy);
        let unfilled_orders = run.engine.exec.working();
        let rejected_orders = run.engine.exec.rejected();
        if rejected_orders > 0 && !self.quiet {
            tracing::warn!(
                rejected_orders,
                "the venue rejected orders it could not size or afford"
            );
        }
        let (fills, trades) = run.engine.take_history();
        let warmup = strategy.warmup_bars();
        let buy_hold = series
            .iter()
            .map(|s| {
                let first = s.bars.get(warmup).map_or(f64::NAN, |b| b.close);
                let last = s.bars.last().map_or(f64::NAN, |b| b.close);
                (first, last)
            })
            .collect();
        Ok(BacktestResult {
            config: self.config,
            instruments,
            sources: series.iter().map(|s| s.source.clone()).collect(),
            simulated: series.iter().any(|s| s.simulated),
            bars,
            portfolio: run.engine.ctx.portfolio().clone(),
            equity_time: run.equity_time,
            equity: run.equity,
            trades,
            fills,
            rejected_orders,
            unfilled_orders,
            buy_hold,
        })
    }
}

/// When a bar is known: the next bar's open, or its own open plus the usual spacing when that
/// comes first or there is no next bar.
#[inline(always)]
fn close_time(bar: &Bar, next: Option<&Bar>, spacing: i64) -> Timestamp {
    let own = Timestamp(bar.ts.0.wrapping_add(spacing));
    match next {
        Some(n) if n.ts < own => n.ts,
        _ => own,
    }
}

/// How far ahead of the bar being processed the next bars are fetched into cache.
const PREFETCH_BARS: usize = 32;

/// Asks the CPU to bring `p`'s cache line in (a hint: it never faults, whatever `p` is).
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch(p: *const Bar) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that reads nothing and never faults, for any address; SSE
    // (which provides it) is part of every x86-64 CPU.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The mutable state of one run.
struct Run {
    engine: Engine<SimulatedVenue>,
    equity_time: TimeIndex,
    equity: Vec<f64>,
}

impl Run {
    /// One series: the equity after each bar.
    #[inline(always)]
    fn single<S: Strategy + ?Sized>(
        &mut self,
        all: &[Bar],
        spacing: i64,
        strategy: &mut S,
    ) -> Vec<f64> {
        let mut curve = crate::mem::vec_with_capacity(all.len());
        let mut step = |bar: &Bar, close: Timestamp| {
            if bar.instrument == InstrumentId(0) {
                self.engine.bar(strategy, bar, close);
            } else {
                self.engine.bar(strategy, &Bar { instrument: InstrumentId(0), ..*bar }, close);
            }
            self.equity_time.push(bar.ts);
            self.engine.ctx.portfolio().equity()
        };
        // `extend` from a slice's mapped iterator writes each point without a capacity
        // check; each bar closes at the next one's open at the latest.
        curve.extend(all.windows(2).map(|w| {
            prefetch(w.as_ptr().wrapping_add(PREFETCH_BARS));
            step(&w[0], close_time(&w[0], Some(&w[1]), spacing))
        }));
        if let Some(last) = all.last() {
            curve.push(step(last, close_time(last, None, spacing)));
        }
        curve
    }

    #[inline(always)]
    fn record(&mut self, ts: Timestamp) {
        self.equity_time.push(ts);
        self.equity.push(self.engine.ctx.portfolio().equity());
    }

    /// Several series: a k-way merge by time, ties broken by series order.
    fn merged<S: Strategy + ?Sized>(&mut self, series: &[BarSeries], strategy: &mut S) {
        let spacing: Vec<i64> = series.iter().map(BarSeries::interval_hint).collect();
        let mut cursor = vec![0usize; series.len()];
        let mut current: Option<Timestamp> = None;
        loop {
            let mut next: Option<(Timestamp, usize)> = None;
            for (k, s) in series.iter().enumerate() {
                if let Some(b) = s.bars.get(cursor[k])
                    && next.is_none_or(|(t, _)| b.ts < t)
                {
                    next = Some((b.ts, k));
                }
            }
            let Some((ts, k)) = next else { break };
            if let Some(cur) = current
                && cur != ts
            {
                self.record(cur);
            }
            current = Some(ts);
            let bars = &series[k].bars;
            let bar = Bar { instrument: InstrumentId(k as u32), ..bars[cursor[k]] };
            let close = close_time(&bar, bars.get(cursor[k] + 1), spacing[k]);
            cursor[k] += 1;
            self.engine.bar(strategy, &bar, close);
        }
        if let Some(cur) = current {
            self.record(cur);
        }
    }
}
