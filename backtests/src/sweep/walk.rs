//! Walk-forward optimisation: the sweep re-run on each train window, the best parameters then
//! run on the test window that follows it, and the test windows' equity stitched into one
//! out-of-sample curve.
//!
//! - Windows are counted in distinct bar times (one per bar for one instrument). Window `i`
//!   trains on times `[s, s + train)` and tests on `[s + train, s + train + test)`, with
//!   `s = i × step` (`step` defaults to `test`, so the test windows tile the data); with
//!   `anchored` every train window starts at the first bar and grows. Only whole windows are
//!   run. A test window never overlaps its own train window, nor another test window
//!   (`step ≥ test` is required), so the stitched curve has one point per time.
//! - The best parameters are those of the highest `metric` on the train window (lowest with
//!   `ascending`; ties to the lower combination; combinations whose metric is undefined never
//!   win). A window where no combination scored stays flat (in cash) through its test window.
//! - The test run is fed the strategy's warm-up bars (`Strategy::warmup_bars`) from just
//!   before the test window, so its indicators are ready at the window's first bar; those bars
//!   are read, never scored: the window's equity, trades and statistics start at its first
//!   bar. They are bars of the past, so no test decision sees the future.
//! - The stitched curve compounds the windows: each one's returns applied to the equity the
//!   previous one ended with (trades' profit and size scaled to match). Its statistics are the
//!   same [`Summary`] as a backtest's, next to each window's in-sample figures.

use std::cmp::Ordering;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering as Atomic};

use kairos_strategies::{Registry, Timestamp};
use serde::Serialize;

use super::{Outcome, Plan, Row, Sweep};
use crate::data::BarSeries;
use crate::engine::{Backtest, BacktestResult};
use crate::stats::{self, Summary};
use crate::time_index::TimeIndex;
use crate::{Error, Result};

/// `--walk-forward train=N,test=M[,step=K][,anchored]`, in distinct bar times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WalkForward {
    /// Times in each train window (the first one's, when anchored).
    pub train: usize,
    /// Times in each test window.
    pub test: usize,
    /// Times between two windows' starts.
    pub step: usize,
    /// Every train window starts at the first time.
    pub anchored: bool,
}

/// One window, as half-open ranges of positions on the data's time line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// 0, 1, ...
    pub index: usize,
    /// First train position.
    pub train_start: usize,
    /// One past the last train position.
    pub train_end: usize,
    /// First test position.
    pub test_start: usize,
    /// One past the last test position.
    pub test_end: usize,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Sweep { key: "walk-forward", reason: reason.into() }
}

impl WalkForward {
    /// Parses `train=N,test=M[,step=K][,anchored]`.
    pub fn parse(spec: &str) -> Result<WalkForward> {
        let (mut train, mut test, mut step, mut anchored) = (None, None, None, false);
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "anchored" {
                anchored = true;
                continue;
            }
            let (k, v) = part.split_once('=').ok_or_else(|| {
                bad(format!("`{part}` in `{spec}`: expected train=N, test=M, step=K or anchored"))
            })?;
            let n: usize = v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                bad(format!("`{part}`: `{}` is not a whole number of bars above 0", v.trim()))
            })?;
            let slot = match k.trim() {
                "train" => &mut train,
                "test" => &mut test,
                "step" => &mut step,
                other => {
                    return Err(bad(format!(
                        "`{other}` in `{spec}`: expected train, test, step or anchored"
                    )));
                }
            };
            if slot.replace(n).is_some() {
                return Err(bad(format!("`{}` given twice in `{spec}`", k.trim())));
            }
        }
        let train = train.ok_or_else(|| bad(format!("`{spec}` has no train=N")))?;
        let test = test.ok_or_else(|| bad(format!("`{spec}` has no test=M")))?;
        let step = step.unwrap_or(test);
        if step < test {
            return Err(bad(format!(
                "step={step} is shorter than test={test}: test windows would overlap and the \
                 out-of-sample curve could not be stitched"
            )));
        }
        Ok(WalkForward { train, test, step, anchored })
    }

    /// The whole windows on a time line of `len` positions.
    pub fn windows(&self, len: usize) -> Result<Vec<Window>> {
        let mut out = Vec::new();
        let mut start = 0usize;
        loop {
            let train_start = if self.anchored { 0 } else { start };
            let Some(test_start) = start.checked_add(self.train) else { break };
            let Some(test_end) = test_start.checked_add(self.test) else { break };
            if test_end > len {
                break;
            }
            out.push(Window {
                index: out.len(),
                train_start,
                train_end: test_start,
                test_start,
                test_end,
            });
            let Some(next) = start.checked_add(self.step) else { break };
            start = next;
        }
        if out.is_empty() {
            return Err(bad(format!(
                "train={} + test={} needs {} bar times; the data has {len}",
                self.train,
                self.test,
                self.train.saturating_add(self.test)
            )));
        }
        Ok(out)
    }

    /// The spec as given back (`train=N,test=M,step=K[,anchored]`).
    pub fn text(&self) -> String {
        let mut s = format!("train={},test={},step={}", self.train, self.test, self.step);
        if self.anchored {
            s.push_str(",anchored");
        }
        s
    }
}

/// How the best row of a train window is chosen.
#[derive(Debug, Clone)]
pub struct Select {
    /// The statistic (a name of [`Summary::metrics`]).
    pub metric: String,
    /// Lowest first.
    pub ascending: bool,
}

/// Best first: higher values (or lower when `ascending`), undefined ones last.
pub fn rank(x: Option<f64>, y: Option<f64>, ascending: bool) -> Ordering {
    let x = x.filter(|v| v.is_finite());
    let y = y.filter(|v| v.is_finite());
    match (x, y) {
        (Some(a), Some(b)) => {
            let o = a.total_cmp(&b);
            if ascending { o } else { o.reverse() }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// One window's outcome.
#[derive(Debug, Clone)]
pub struct WindowResult {
    /// The window.
    pub window: Window,
    /// Its train and test windows' first and last times.
    pub train_span: (Timestamp, Timestamp),
    /// The test window's first and last times.
    pub test_span: (Timestamp, Timestamp),
    /// The best train row (`None`: no combination scored on the train window).
    pub best: Option<Row>,
    /// The best parameters' run on the test window (`None` when there were none).
    pub test: Option<Summary>,
    /// Warm-up bars fed before the test window.
    pub warmup: usize,
}

/// What a walk-forward run produced.
#[derive(Debug, Clone)]
pub struct WalkResult {
    /// Every window, in order.
    pub windows: Vec<WindowResult>,
    /// The stitched out-of-sample run: its equity, trades and statistics.
    pub oos: BacktestResult,
    /// The stitched run's statistics.
    pub oos_summary: Summary,
    /// The window each point of `oos.equity` belongs to.
    pub oos_window: Vec<u32>,
    /// All the train sweeps' and test runs' work, together.
    pub outcome: Outcome,
    /// Positions on the time line after the last test window (not tested).
    pub untested: usize,
}

impl WalkResult {
    /// The mean over windows of each metric's in-sample value, where defined.
    pub fn in_sample_mean(&self, metric: &str) -> Option<f64> {
        let v: Vec<f64> = self
            .windows
            .iter()
            .filter_map(|w| w.best.as_ref()?.summary.metric(metric))
            .filter(|x| x.is_finite())
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// Walk-forward efficiency: the stitched out-of-sample annualised return over the mean
    /// in-sample one (Pardo's ratio; near 1 when the optimum carries over, near 0 or below
    /// when it was fitted noise).
    pub fn efficiency(&self) -> Option<f64> {
        let is = self.in_sample_mean("return_ann_pct")?;
        let oos = self.oos_summary.return_ann_pct;
        (is != 0.0 && oos.is_finite()).then(|| oos / is)
    }
}

/// Every distinct bar time of `series`, in order.
pub fn time_line(series: &[BarSeries]) -> Vec<Timestamp> {
    let mut t: Vec<Timestamp> = series.iter().flat_map(|s| s.bars.iter().map(|b| b.ts)).collect();
    t.sort_unstable();
    t.dedup();
    t
}

/// The bars of `s` at times `[from, to)` (`to = None`: to the end), borrowed.
fn span(s: &BarSeries, from: Timestamp, to: Option<Timestamp>) -> &[kairos_strategies::Bar] {
    let a = s.bars.partition_point(|b| b.ts < from);
    let b = to.map_or(s.bars.len(), |to| s.bars.partition_point(|b| b.ts < to));
    &s.bars[a..b.max(a)]
}

/// The bars of `series` at times `[from, to)` (`to = None`: to the end).
pub fn slice(series: &[BarSeries], from: Timestamp, to: Option<Timestamp>) -> Vec<BarSeries> {
    series
        .iter()
        .map(|s| BarSeries { bars: span(s, from, to).to_vec(), ..clone_empty(s) })
        .collect()
}

/// The number of bars of `series` at times `[from, to)`.
fn bars_in(series: &[BarSeries], from: Timestamp, to: Option<Timestamp>) -> usize {
    series.iter().map(|s| span(s, from, to).len()).sum()
}

/// `s`'s description without its bars.
fn clone_empty(s: &BarSeries) -> BarSeries {
    BarSeries {
        instrument: s.instrument.clone(),
        bars: Vec::new(),
        source: s.source.clone(),
        simulated: s.simulated,
        time_format: s.time_format,
    }
}

/// The part of `r` from time `from` on: its equity points, the trades that closed and the
/// fills made from then; `base` is the equity just before (cash when nothing came before).
fn cut(r: &BacktestResult, from: Timestamp) -> (BacktestResult, f64) {
    let skip = r.equity_time.count_before(from, false);
    let base = if skip == 0 { r.config.cash } else { r.equity[skip - 1] };
    let mut time = TimeIndex::new();
    r.equity_time.iter().skip(skip).for_each(|t| time.push(t));
    let out = BacktestResult {
        equity_time: time,
        equity: r.equity[skip..].to_vec(),
        trades: r.trades.iter().filter(|t| t.exit_time >= from).cloned().collect(),
        fills: r.fills.iter().filter(|f| f.ts >= from).cloned().collect(),
        ..r.clone()
    };
    (out, base)
}

/// First close at or after `from` and last close before `to`, per series: the test window's
/// buy-and-hold.
fn buy_hold(series: &[BarSeries], from: Timestamp, to: Option<Timestamp>) -> Vec<(f64, f64)> {
    series
        .iter()
        .map(|s| {
            let bars = span(s, from, to);
            (bars.first().map_or(f64::NAN, |b| b.close), bars.last().map_or(f64::NAN, |b| b.close))
        })
        .collect()
}

impl Sweep {
    /// Runs `plan` walk-forward over `series`: a sweep on each train window (on `threads`
    /// threads), the best row's parameters on its test window. `progress` is told how many
    /// runs have finished over all windows (windows × (combinations + 1) in all).
    #[allow(clippy::too_many_arguments)]
    pub fn walk_forward(
        &self,
        registry: &Registry,
        plan: &Plan,
        series: &[BarSeries],
        wf: &WalkForward,
        select: &Select,
        threads: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<WalkResult> {
        if !Summary::metrics().contains(&select.metric.as_str()) {
            return Err(Error::Sweep {
                key: "metric",
                reason: format!(
                    "`{}` is not a statistic (one of {})",
                    select.metric,
                    Summary::metrics().join(", ")
                ),
            });
        }
        let line = time_line(series);
        let windows = wf.windows(line.len())?;
        let at = |p: usize| line.get(p).copied();
        let done = AtomicU64::new(0);
        let mut outcome = Outcome::default();
        let mut results = Vec::with_capacity(windows.len());
        let mut parts: Vec<(BacktestResult, f64, usize)> = Vec::new();
        for w in &windows {
            let (t0, t1) = (line[w.train_start], at(w.train_end));
            let train = slice(series, t0, t1);
            let offset = done.load(Atomic::Relaxed);
            let mut best: Option<(Option<f64>, Row)> = None;
            let o = self.run(
                registry,
                plan,
                &train,
                threads,
                &|n| {
                    progress(offset + n);
                },
                &mut |rows| {
                    for r in rows {
                        let m = r.summary.metric(&select.metric).filter(|x| x.is_finite());
                        if m.is_none() {
                            continue;
                        }
                        let better = match &best {
                            None => true,
                            Some((bm, b)) => {
                                rank(m, *bm, select.ascending)
                                    .then(r.combination.cmp(&b.combination))
                                    == Ordering::Less
                            }
                        };
                        if better {
                            best = Some((m, r));
                        }
                    }
                    Ok(())
                },
            )?;
            done.fetch_add(plan.combinations.len() as u64, Atomic::Relaxed);
            outcome.runs += o.runs;
            outcome.skipped += o.skipped;
            if outcome.skip_reason.is_none() {
                outcome.skip_reason = o.skip_reason;
            }
            outcome.bar_evaluations += o.bar_evaluations;
            outcome.elapsed += o.elapsed;
            outcome.shared_series += o.shared_series;
            let best = best.map(|(_, r)| r);
            let (s0, s1) = (line[w.test_start], at(w.test_end));
            let test_last = line[w.test_end - 1];
            let mut warmup = 0;
            let test = match &best {
                None => None,
                Some(row) => {
                    let params = self.params(row.combination);
                    let mut strategy = registry.build(&self.strategy, &params)?;
                    warmup = strategy.warmup_bars().min(w.test_start);
                    let data = slice(series, line[w.test_start - warmup], s1);
                    let started = std::time::Instant::now();
                    let r = Backtest::new(self.config).quiet().run(&data, &mut strategy)?;
                    outcome.elapsed += started.elapsed();
                    outcome.runs += 1;
                    outcome.bar_evaluations += r.bars as u64;
                    let (mut part, base) = cut(&r, s0);
                    part.buy_hold = buy_hold(series, s0, s1);
                    part.bars = bars_in(series, s0, s1);
                    let summary = stats::summarize(&part);
                    parts.push((part, base, w.index));
                    Some(summary)
                }
            };
            progress(done.fetch_add(1, Atomic::Relaxed) + 1);
            if test.is_none() {
                // Flat: in cash at every test time.
                let mut time = TimeIndex::new();
                line[w.test_start..w.test_end].iter().for_each(|&t| time.push(t));
                let flat = BacktestResult {
                    config: self.config,
                    instruments: series.iter().map(|s| s.instrument.clone()).collect(),
                    sources: series.iter().map(|s| s.source.clone()).collect(),
                    simulated: series.iter().any(|s| s.simulated),
                    bars: bars_in(series, s0, s1),
                    equity: vec![self.config.cash; w.test_end - w.test_start],
                    equity_time: time,
                    trades: Vec::new(),
                    fills: Vec::new(),
                    portfolio: kairos_strategies::Portfolio::new(self.config.cash, series.len()),
                    rejected_orders: 0,
                    unfilled_orders: 0,
                    buy_hold: buy_hold(series, s0, s1),
                };
                parts.push((flat, self.config.cash, w.index));
            }
            results.push(WindowResult {
                window: *w,
                train_span: (t0, line[w.train_end - 1]),
                test_span: (s0, test_last),
                best,
                test,
                warmup,
            });
        }
        let (oos, oos_window) = stitch(self.config.cash, &parts, series, &line, &windows);
        let oos_summary = stats::summarize(&oos);
        let untested = line.len() - windows.last().map_or(0, |w| w.test_end);
        Ok(WalkResult { windows: results, oos, oos_summary, oos_window, outcome, untested })
    }
}

/// The test windows' runs compounded into one: each part's equity and trades scaled by the
/// equity the previous part ended with over the equity it started from.
fn stitch(
    cash: f64,
    parts: &[(BacktestResult, f64, usize)],
    series: &[BarSeries],
    line: &[Timestamp],
    windows: &[Window],
) -> (BacktestResult, Vec<u32>) {
    let mut running = cash;
    let mut time = TimeIndex::new();
    let mut equity = Vec::new();
    let mut which = Vec::new();
    let mut trades = Vec::new();
    let mut fills = Vec::new();
    let (mut rejected, mut bars) = (0u64, 0usize);
    for (part, base, w) in parts {
        let k = if *base > 0.0 && base.is_finite() { running / base } else { 1.0 };
        for (t, e) in part.equity_time.iter().zip(&part.equity) {
            time.push(t);
            equity.push(e * k);
            which.push(*w as u32);
        }
        trades.extend(part.trades.iter().map(|t| kairos_strategies::ClosedTrade {
            size: t.size * k,
            pnl: t.pnl * k,
            commission: t.commission * k,
            ..*t
        }));
        fills.extend(part.fills.iter().cloned());
        rejected += part.rejected_orders;
        bars += part.bars;
        if let Some(&e) = part.equity.last() {
            running = e * k;
        }
    }
    let first = windows.first().map(|w| line[w.test_start]);
    let last = windows.last().map(|w| line.get(w.test_end).copied());
    let buy_hold = match (first, last) {
        (Some(a), Some(b)) => buy_hold(series, a, b),
        _ => Vec::new(),
    };
    let template = parts.last().map(|(p, _, _)| p);
    let result = BacktestResult {
        config: template.map_or_else(Default::default, |p| p.config),
        instruments: series.iter().map(|s| s.instrument.clone()).collect(),
        sources: series.iter().map(|s| s.source.clone()).collect(),
        simulated: series.iter().any(|s| s.simulated),
        bars,
        equity_time: time,
        equity,
        trades,
        fills,
        portfolio: template.map_or_else(
            || kairos_strategies::Portfolio::new(cash, series.len()),
            |p| p.portfolio.clone(),
        ),
        rejected_orders: rejected,
        unfilled_orders: template.map_or(0, |p| p.unfilled_orders),
        buy_hold,
    };
    (result, which)
}

/// The columns of `walk_forward.csv`: the window's bounds, the chosen combination and its
/// parameters, then every figure in sample (`is_`) and out of sample (`oos_`).
pub fn columns(axes: &[String]) -> Vec<String> {
    let mut c: Vec<String> =
        ["window", "train_start", "train_end", "test_start", "test_end", "warmup", "combination"]
            .into_iter()
            .map(str::to_string)
            .collect();
    c.extend(axes.iter().cloned());
    for prefix in ["is_", "oos_"] {
        c.extend(Summary::figure_names().into_iter().map(|n| format!("{prefix}{n}")));
    }
    c
}

fn figure_cells(s: Option<&Summary>, out: &mut Vec<String>) {
    use crate::stats::Stat;
    let figures = s.map_or_else(|| Summary::empty().figures(), Summary::figures);
    for (_, v) in figures {
        out.push(match (s, v) {
            (None, _) => String::new(),
            (_, Stat::Float(x)) => super::output::num(x),
            (_, Stat::Int(x)) => x.to_string(),
            (_, Stat::Text(t)) => super::output::csv_field(&t),
            (_, Stat::Bool(b)) => b.to_string(),
        });
    }
}

/// Writes a walk-forward's files into `dir`: `walk_forward.csv` (one row per window), the
/// stitched out-of-sample run as a backtest writes it (`summary.json`, `trades.csv`,
/// `equity.csv`), and `walk_forward.json` last: `meta` with every window, the stitched
/// statistics, the in-sample means and the efficiency. Each file appears under its name only
/// once complete.
pub fn write(dir: &Path, sweep: &Sweep, r: &WalkResult, meta: serde_json::Value) -> Result<()> {
    crate::report::check_out_dir(dir)?;
    let axes: Vec<String> = sweep.grid.axes.iter().map(|a| a.name.clone()).collect();
    let mut text =
        columns(&axes).iter().map(|c| super::output::csv_field(c)).collect::<Vec<_>>().join(",");
    text.push('\n');
    for w in &r.windows {
        let mut cells = vec![
            w.window.index.to_string(),
            w.train_span.0.to_string(),
            w.train_span.1.to_string(),
            w.test_span.0.to_string(),
            w.test_span.1.to_string(),
            w.warmup.to_string(),
        ];
        match &w.best {
            Some(b) => {
                cells.push(b.combination.to_string());
                cells.extend(b.values.iter().map(|v| super::output::csv_field(v)));
            }
            None => cells.extend(std::iter::repeat_n(String::new(), 1 + axes.len())),
        }
        figure_cells(w.best.as_ref().map(|b| &b.summary), &mut cells);
        figure_cells(w.test.as_ref(), &mut cells);
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    crate::report::write_file(dir, "walk_forward.csv", text)?;
    crate::report::write(dir, &r.oos, &r.oos_summary)?;

    let windows: Vec<serde_json::Value> = r
        .windows
        .iter()
        .map(|w| {
            let span = |(a, b): (Timestamp, Timestamp), from: usize, to: usize| {
                serde_json::json!({ "start": a.to_string(), "end": b.to_string(), "times": to - from })
            };
            serde_json::json!({
                "index": w.window.index,
                "train": span(w.train_span, w.window.train_start, w.window.train_end),
                "test": span(w.test_span, w.window.test_start, w.window.test_end),
                "warmup": w.warmup,
                "combination": w.best.as_ref().map(|b| b.combination),
                "params": w.best.as_ref().map(|b| {
                    axes.iter().cloned().zip(b.values.iter().map(|v| serde_json::json!(v))).collect::<serde_json::Map<_, _>>()
                }),
                "in_sample": w.best.as_ref().map(|b| &b.summary),
                "out_of_sample": &w.test,
            })
        })
        .collect();
    let means: serde_json::Map<String, serde_json::Value> = Summary::metrics()
        .into_iter()
        .filter_map(|m| Some((m.to_string(), serde_json::json!(r.in_sample_mean(m)?))))
        .collect();
    let mut meta = meta;
    if let Some(o) = meta.as_object_mut() {
        o.insert("windows".into(), serde_json::Value::Array(windows));
        o.insert("out_of_sample".into(), serde_json::to_value(&r.oos_summary).unwrap_or_default());
        o.insert("in_sample_mean".into(), serde_json::Value::Object(means));
        o.insert("efficiency".into(), serde_json::json!(r.efficiency()));
        o.insert("untested_times".into(), serde_json::json!(r.untested));
    }
    let text = serde_json::to_string_pretty(&meta).unwrap_or_default() + "\n";
    crate::report::write_file(dir, "walk_forward.json", text).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        let w = WalkForward::parse("train=100,test=20").unwrap();
        assert_eq!(w, WalkForward { train: 100, test: 20, step: 20, anchored: false });
        let w = WalkForward::parse(" train=100 , test=20, step=30, anchored").unwrap();
        assert_eq!(w, WalkForward { train: 100, test: 20, step: 30, anchored: true });
        assert_eq!(WalkForward::parse(&w.text()).unwrap(), w);
        for (spec, says) in [
            ("train=100", "no test"),
            ("test=5", "no train"),
            ("train=0,test=5", "above 0"),
            ("train=x,test=5", "`x`"),
            ("train=10,test=5,step=4", "overlap"),
            ("train=10,test=5,train=3", "twice"),
            ("train=10,tset=5", "`tset`"),
            ("train=10;test=5", "not a whole number"),
            ("train=10,test=5,walk", "expected"),
        ] {
            let e = WalkForward::parse(spec).unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
        }
    }

    #[test]
    fn windows_tile_and_too_little_data_says_how_much_is_needed() {
        let w = WalkForward::parse("train=10,test=5").unwrap();
        let ws = w.windows(31).unwrap();
        assert_eq!(ws.len(), 4);
        assert_eq!((ws[0].train_start, ws[0].test_start, ws[0].test_end), (0, 10, 15));
        assert_eq!((ws[3].train_start, ws[3].test_start, ws[3].test_end), (15, 25, 30));
        let a = WalkForward::parse("train=10,test=5,anchored").unwrap();
        assert!(a.windows(31).unwrap().iter().all(|w| w.train_start == 0));
        let e = w.windows(14).unwrap_err().to_string();
        assert!(e.contains("needs 15 bar times; the data has 14"), "{e}");
        let huge = WalkForward { train: usize::MAX, test: 1, step: 1, anchored: false };
        assert!(huge.windows(10).is_err());
    }
}
