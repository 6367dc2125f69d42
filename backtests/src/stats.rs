//! Summary statistics of a run, with backtesting.py's definitions.
//!
//! Every statistic backtesting.py (0.6) also reports is computed the way it computes it, so the
//! two can be compared figure for figure:
//!
//! - returns are of the equity curve; annualised figures compound the geometric mean of the
//!   *daily* returns (equity resampled to the last value of each calendar day, or week, month,
//!   year for coarser data) over 252 trading days a year, or 365 when more than 60% of the
//!   weekend share of bars fall on weekends (crypto);
//! - volatility is `sqrt((var + (1+g)²)^N − (1+g)^(2N))` of those day returns (`var` with one
//!   degree of freedom), the Sharpe ratio is annual return over it, Sortino uses the root mean
//!   square of negative day returns, Calmar the maximum drawdown;
//! - drawdowns are `1 − equity / running peak`, reported negative in percent; a drawdown
//!   period runs between two new peaks (or the end), its duration is in seconds;
//! - trade figures use each trade's return net of commission; the average trade is their
//!   geometric mean, the profit factor the sum of winning over losing *returns*, the SQN
//!   `sqrt(n) × mean(pnl) / std(pnl)`;
//! - exposure is the share of bars from a closed trade's entry bar to its exit bar, inclusive;
//! - buy and hold runs from the close of the first bar the strategy could trade
//!   ([`Strategy::warmup_bars`](kairos_strategies::Strategy::warmup_bars)) to the last close.
//!
//! Figures that are undefined (no trades, no losing trade, a flat equity) are NaN, written
//! as `null` in JSON.

use chrono::Datelike;
use kairos_strategies::Timestamp;
use serde::{Serialize, Serializer};

use crate::engine::BacktestResult;

const DAY_NS: i64 = 86_400_000_000_000;

fn finite_or_null<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
}

/// The summary of a run; field order is the order of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Total return of the equity, %.
    #[serde(serialize_with = "finite_or_null")]
    pub return_pct: f64,
    /// Buy-and-hold return over the tradable span, % (mean over instruments).
    #[serde(serialize_with = "finite_or_null")]
    pub buy_hold_return_pct: f64,
    /// Annualised return, %.
    #[serde(serialize_with = "finite_or_null")]
    pub return_ann_pct: f64,
    /// Annualised volatility, %.
    #[serde(serialize_with = "finite_or_null")]
    pub volatility_ann_pct: f64,
    /// Sharpe ratio (risk-free rate 0).
    #[serde(serialize_with = "finite_or_null")]
    pub sharpe: f64,
    /// Sortino ratio.
    #[serde(serialize_with = "finite_or_null")]
    pub sortino: f64,
    /// Calmar ratio.
    #[serde(serialize_with = "finite_or_null")]
    pub calmar: f64,
    /// Deepest drawdown, % (negative).
    #[serde(serialize_with = "finite_or_null")]
    pub max_drawdown_pct: f64,
    /// Mean of the drawdown periods' depths, % (negative).
    #[serde(serialize_with = "finite_or_null")]
    pub avg_drawdown_pct: f64,
    /// Longest drawdown period, seconds.
    #[serde(serialize_with = "finite_or_null")]
    pub max_drawdown_duration: f64,
    /// Closed trades.
    pub num_trades: usize,
    /// Share of closed trades with a positive net PnL, %.
    #[serde(serialize_with = "finite_or_null")]
    pub win_rate_pct: f64,
    /// Best trade return, %.
    #[serde(serialize_with = "finite_or_null")]
    pub best_trade_pct: f64,
    /// Worst trade return, %.
    #[serde(serialize_with = "finite_or_null")]
    pub worst_trade_pct: f64,
    /// Geometric mean trade return, %.
    #[serde(serialize_with = "finite_or_null")]
    pub avg_trade_pct: f64,
    /// Sum of winning returns over the sum of losing returns.
    #[serde(serialize_with = "finite_or_null")]
    pub profit_factor: f64,
    /// Arithmetic mean trade return, %.
    #[serde(serialize_with = "finite_or_null")]
    pub expectancy_pct: f64,
    /// System quality number.
    #[serde(serialize_with = "finite_or_null")]
    pub sqn: f64,
    /// Share of bars with a trade open, %.
    #[serde(serialize_with = "finite_or_null")]
    pub exposure_pct: f64,
    /// Final equity.
    #[serde(serialize_with = "finite_or_null")]
    pub equity_final: f64,
    /// Highest equity.
    #[serde(serialize_with = "finite_or_null")]
    pub equity_peak: f64,
    /// Commissions of the closed trades.
    #[serde(serialize_with = "finite_or_null")]
    pub commissions: f64,
    /// Bars replayed.
    pub bars: usize,
    /// First bar time.
    pub start: String,
    /// Last bar time.
    pub end: String,
    /// Trades still open at the end (valued in the final equity, not counted above).
    pub open_trades: usize,
    /// Orders the venue rejected.
    pub rejected_orders: u64,
    /// Whether the data was simulated.
    pub simulated: bool,
    /// Figures above that are computed as backtesting.py computes them but mean nothing for
    /// this run (annualised from a few days, a ratio over a volatility of almost nothing), each
    /// naming the figures and why. Empty when every figure can be read as it stands.
    pub warnings: Vec<String>,
}

/// One figure of a [`Summary`], for tables of many runs (a sweep's rows).
#[derive(Debug, Clone, PartialEq)]
pub enum Stat {
    /// A number (`NaN` where undefined).
    Float(f64),
    /// A count.
    Int(u64),
    /// Text.
    Text(String),
    /// A flag.
    Bool(bool),
}

impl Summary {
    /// Every figure with its name, in the order of `summary.json` (`warnings` joined by
    /// `"; "`).
    pub fn figures(&self) -> Vec<(&'static str, Stat)> {
        use Stat::{Bool, Float, Int, Text};
        vec![
            ("return_pct", Float(self.return_pct)),
            ("buy_hold_return_pct", Float(self.buy_hold_return_pct)),
            ("return_ann_pct", Float(self.return_ann_pct)),
            ("volatility_ann_pct", Float(self.volatility_ann_pct)),
            ("sharpe", Float(self.sharpe)),
            ("sortino", Float(self.sortino)),
            ("calmar", Float(self.calmar)),
            ("max_drawdown_pct", Float(self.max_drawdown_pct)),
            ("avg_drawdown_pct", Float(self.avg_drawdown_pct)),
            ("max_drawdown_duration", Float(self.max_drawdown_duration)),
            ("num_trades", Int(self.num_trades as u64)),
            ("win_rate_pct", Float(self.win_rate_pct)),
            ("best_trade_pct", Float(self.best_trade_pct)),
            ("worst_trade_pct", Float(self.worst_trade_pct)),
            ("avg_trade_pct", Float(self.avg_trade_pct)),
            ("profit_factor", Float(self.profit_factor)),
            ("expectancy_pct", Float(self.expectancy_pct)),
            ("sqn", Float(self.sqn)),
            ("exposure_pct", Float(self.exposure_pct)),
            ("equity_final", Float(self.equity_final)),
            ("equity_peak", Float(self.equity_peak)),
            ("commissions", Float(self.commissions)),
            ("bars", Int(self.bars as u64)),
            ("start", Text(self.start.clone())),
            ("end", Text(self.end.clone())),
            ("open_trades", Int(self.open_trades as u64)),
            ("rejected_orders", Int(self.rejected_orders)),
            ("simulated", Bool(self.simulated)),
            ("warnings", Text(self.warnings.join("; "))),
        ]
    }

    /// Every figure's name, in [`Summary::figures`]' order.
    pub fn figure_names() -> Vec<&'static str> {
        Summary::empty().figures().into_iter().map(|(n, _)| n).collect()
    }

    /// The names of the numeric figures (what a sweep can rank by).
    pub fn metrics() -> Vec<&'static str> {
        let s = Summary::empty();
        s.figures()
            .into_iter()
            .filter(|(_, v)| matches!(v, Stat::Float(_) | Stat::Int(_)))
            .map(|(n, _)| n)
            .collect()
    }

    /// A numeric figure by name (`None` for an unknown or non-numeric one).
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.figures().into_iter().find(|(n, _)| *n == name).and_then(|(_, v)| match v {
            Stat::Float(x) => Some(x),
            Stat::Int(x) => Some(x as f64),
            _ => None,
        })
    }

    pub(crate) fn empty() -> Summary {
        Summary {
            return_pct: 0.0,
            buy_hold_return_pct: 0.0,
            return_ann_pct: 0.0,
            volatility_ann_pct: 0.0,
            sharpe: 0.0,
            sortino: 0.0,
            calmar: 0.0,
            max_drawdown_pct: 0.0,
            avg_drawdown_pct: 0.0,
            max_drawdown_duration: 0.0,
            num_trades: 0,
            win_rate_pct: 0.0,
            best_trade_pct: 0.0,
            worst_trade_pct: 0.0,
            avg_trade_pct: 0.0,
            profit_factor: 0.0,
            expectancy_pct: 0.0,
            sqn: 0.0,
            exposure_pct: 0.0,
            equity_final: 0.0,
            equity_peak: 0.0,
            commissions: 0.0,
            bars: 0,
            start: String::new(),
            end: String::new(),
            open_trades: 0,
            rejected_orders: 0,
            simulated: false,
            warnings: Vec::new(),
        }
    }
}

/// backtesting.py's `geometric_mean`: 0 if any `1 + r <= 0`, NaN for no returns.
fn geometric_mean(returns: &[f64]) -> f64 {
    if returns.iter().any(|r| 1.0 + r <= 0.0) {
        return 0.0;
    }
    if returns.is_empty() {
        return f64::NAN;
    }
    (returns.iter().map(|r| (1.0 + r).ln()).sum::<f64>() / returns.len() as f64).exp() - 1.0
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() { f64::NAN } else { xs.iter().sum::<f64>() / xs.len() as f64 }
}

/// Sample variance (one degree of freedom); NaN below two values.
fn var1(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64
}

fn nan_if_zero(x: f64) -> f64 {
    if x == 0.0 { f64::NAN } else { x }
}

/// How equity is bucketed for "daily" returns.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Period {
    Day,
    Week,
    Month,
    Year,
}

fn bucket(ts: Timestamp, period: Period) -> i64 {
    let day = ts.0.div_euclid(DAY_NS);
    match period {
        Period::Day => day,
        // Weeks end on Sunday (pandas 'W'); 1970-01-01 was a Thursday.
        Period::Week => (day + 3).div_euclid(7),
        Period::Month => {
            let d = ts.to_datetime();
            i64::from(d.year()) * 12 + i64::from(d.month0())
        }
        Period::Year => i64::from(ts.to_datetime().year()),
    }
}

/// backtesting.py's `_data_period`: the median spacing of the last 100 timestamps.
fn data_period_days(times: &[Timestamp]) -> i64 {
    let tail = &times[times.len().saturating_sub(100)..];
    let mut d: Vec<i64> = tail.windows(2).map(|w| w[1].0 - w[0].0).collect();
    if d.is_empty() {
        return 0;
    }
    d.sort_unstable();
    let n = d.len();
    let median =
        if n % 2 == 1 { d[n / 2] as f64 } else { (d[n / 2 - 1] as f64 + d[n / 2] as f64) / 2.0 };
    (median / DAY_NS as f64).floor() as i64
}

/// The drawdown figures of an equity curve: the deepest, and each period between two points at
/// zero drawdown (the last point closes the last one) with its duration in seconds and its
/// depth; and the sum and count of the nonzero drawdowns (the average where no period closed).
#[derive(Debug, Clone, PartialEq)]
struct Drawdowns {
    max_dd: f64,
    durations: Vec<f64>,
    peaks: Vec<f64>,
    nonzero_sum: f64,
    nonzero_n: usize,
}

/// [`Drawdowns`] as backtesting.py's `_drawdown` arrays give them: `1 - equity / running
/// peak` at each point, the same operations in the same order, so the same bits.
///
/// For a curve of finite equity that starts above zero (every run that did not blow up) the
/// division is done once per period instead of once per point: the running peak is constant
/// inside a period, and correctly rounded division and subtraction are monotonic, so the
/// period's deepest point is `1 - min / peak` exactly; a point is at zero drawdown exactly when
/// it equals the peak (for `0 < e < peak`, `e / peak` rounds below 1). The nonzero sum, which
/// needs every point's value, is only computed where it is used. Other curves take
/// [`drawdowns_each_point`].
fn drawdowns(eq: &[f64], at: &dyn Fn(usize) -> Timestamp) -> Drawdowns {
    let n = eq.len();
    if n == 0 || eq[0].is_nan() || eq[0] <= 0.0 || !eq.iter().all(|e| e.is_finite()) {
        return drawdowns_each_point(eq, at);
    }
    let mut d = Drawdowns {
        max_dd: 0.0,
        durations: Vec::new(),
        peaks: Vec::new(),
        nonzero_sum: -0.0,
        nonzero_n: 0,
    };
    // The period being walked: its peak, its lowest point since, and where it started.
    let mut peak = eq[0];
    let mut low = f64::INFINITY;
    let mut start = 0usize;
    let close = |d: &mut Drawdowns, i: usize, low: f64, peak: f64, start: usize| {
        let depth = if low < peak { 1.0 - low / peak } else { 0.0 };
        if depth > d.max_dd {
            d.max_dd = depth;
        }
        if i > start + 1 {
            d.durations.push((at(i).0 - at(start).0) as f64 / 1e9);
            d.peaks.push(depth);
        }
    };
    // Eight points at a time while none reaches the peak (most of a curve, in drawdown): their
    // lowest and highest computed side by side, one comparison with the peak for the eight.
    let mut i = 1;
    while i < n {
        if i + 8 <= n {
            let c = &eq[i..i + 8];
            let (mut lo, mut hi) = (c[0], c[0]);
            for &e in &c[1..] {
                lo = if e < lo { e } else { lo };
                hi = if e > hi { e } else { hi };
            }
            if hi < peak {
                low = if lo < low { lo } else { low };
                d.nonzero_n += 8;
                i += 8;
                continue;
            }
        }
        let e = eq[i];
        if e >= peak {
            close(&mut d, i, low, peak, start);
            peak = e;
            low = f64::INFINITY;
            start = i;
        } else {
            low = if e < low { e } else { low };
            d.nonzero_n += 1;
        }
        i += 1;
    }
    // The last point closes the last period (unless it closed one itself, at a new peak).
    if start + 1 < n {
        close(&mut d, n - 1, low, peak, start);
    }
    if d.durations.is_empty() && d.nonzero_n > 0 {
        d.nonzero_sum = drawdowns_each_point(eq, at).nonzero_sum;
    }
    d
}

/// [`Drawdowns`] with `1 - equity / running peak` computed at every point (any curve: NaN,
/// infinities, zero or negative equity).
fn drawdowns_each_point(eq: &[f64], at: &dyn Fn(usize) -> Timestamp) -> Drawdowns {
    let n = eq.len();
    let mut peak = f64::NEG_INFINITY;
    let mut max_dd = 0.0f64;
    let mut prev_zero: Option<usize> = None;
    let mut depth = f64::NEG_INFINITY;
    let (mut nonzero_sum, mut nonzero_n) = (-0.0f64, 0usize);
    let mut durations = Vec::new();
    let mut peaks = Vec::new();
    for (i, &e) in eq.iter().enumerate() {
        peak = peak.max(e);
        let d = 1.0 - e / peak;
        if !d.is_nan() {
            max_dd = max_dd.max(d);
        }
        if d != 0.0 {
            nonzero_sum += d;
            nonzero_n += 1;
        }
        depth = depth.max(d);
        if d == 0.0 || i + 1 == n {
            if let Some(p) = prev_zero
                && i > p + 1
            {
                durations.push((at(i).0 - at(p).0) as f64 / 1e9);
                peaks.push(depth);
            }
            prev_zero = Some(i);
            depth = f64::NEG_INFINITY.max(d);
        }
    }
    Drawdowns { max_dd, durations, peaks, nonzero_sum, nonzero_n }
}

/// Computes the summary of a finished run.
pub fn summarize(r: &BacktestResult) -> Summary {
    let eq = &r.equity;
    // The time axis is read through its runs (a day at a time, or one time where needed),
    // never copied out: a sweep summarises thousands of runs.
    let times = &r.equity_time;
    let at = |i: usize| times.get(i).unwrap_or(Timestamp(0));
    let n = eq.len();
    let first = eq.first().copied().unwrap_or(f64::NAN);
    let last = eq.last().copied().unwrap_or(f64::NAN);

    let Drawdowns { max_dd, durations, peaks, nonzero_sum, nonzero_n } = drawdowns(eq, &at);
    let (max_dd_duration, avg_dd) = if durations.is_empty() {
        let avg = if nonzero_n == 0 { f64::NAN } else { nonzero_sum / nonzero_n as f64 };
        (f64::NAN, avg)
    } else {
        (durations.iter().copied().fold(f64::NEG_INFINITY, f64::max), mean(&peaks))
    };

    // Day returns.
    let tail: Vec<Timestamp> = (n.saturating_sub(100)..n).map(at).collect();
    let freq_days = data_period_days(&tail);
    // Saturdays and Sundays, by day number (1970-01-01 was a Thursday, day 3 from Monday):
    // the calendar's answer without a calendar conversion.
    let mut weekend = 0usize;
    times.days(DAY_NS, |d, _, count| {
        if (d + 3).rem_euclid(7) >= 5 {
            weekend += count;
        }
    });
    let have_weekends = n > 0 && weekend as f64 / n as f64 > 2.0 / 7.0 * 0.6;
    let (period, annual_days) = match freq_days {
        7 => (Period::Week, 52.0),
        31 => (Period::Month, 12.0),
        365 => (Period::Year, 1.0),
        _ => (Period::Day, if have_weekends { 365.0 } else { 252.0 }),
    };
    // The equity at the last time of each period (a period's bucket depends only on the day).
    let mut closes: Vec<f64> = Vec::new();
    let mut last_bucket = None;
    times.days(DAY_NS, |d, last, _| {
        let Some(&e) = eq.get(last) else { return };
        let b = bucket(Timestamp(d * DAY_NS), period);
        if last_bucket == Some(b) {
            if let Some(l) = closes.last_mut() {
                *l = e;
            }
        } else {
            closes.push(e);
            last_bucket = Some(b);
        }
    });
    let day_returns: Vec<f64> = closes.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let g = geometric_mean(&day_returns);
    let ann_return = (1.0 + g).powf(annual_days) - 1.0;
    let vol = ((var1(&day_returns) + (1.0 + g).powi(2)).powf(annual_days)
        - (1.0 + g).powf(2.0 * annual_days))
    .sqrt();
    let downside = mean(&day_returns.iter().map(|r| r.min(0.0).powi(2)).collect::<Vec<_>>()).sqrt();

    // Trades.
    let returns: Vec<f64> = r.trades.iter().map(|t| t.return_frac).collect();
    let pnl: Vec<f64> = r.trades.iter().map(|t| t.pnl).collect();
    let n_trades = r.trades.len();
    // Exposure: the bars from each closed trade's entry to its exit, inclusive, counted once
    // where trades overlap.
    let mut spans: Vec<(usize, usize)> = r
        .trades
        .iter()
        .map(|t| {
            let a = times.count_before(t.entry_time, false);
            let b = times.count_before(t.exit_time, true);
            (a.min(n), b.min(n))
        })
        .filter(|(a, b)| a < b)
        .collect();
    spans.sort_unstable();
    let (mut exposed, mut reach) = (0usize, 0usize);
    for (a, b) in spans {
        let from = a.max(reach);
        if b > from {
            exposed += b - from;
        }
        reach = reach.max(b);
    }
    let wins: f64 = returns.iter().filter(|&&x| x > 0.0).sum();
    let losses: f64 = returns.iter().filter(|&&x| x < 0.0).sum();
    let buy_hold: Vec<f64> = r.buy_hold.iter().map(|(a, b)| (b - a) / a * 100.0).collect();

    let mut summary = Summary {
        return_pct: (last - first) / first * 100.0,
        buy_hold_return_pct: mean(&buy_hold),
        return_ann_pct: ann_return * 100.0,
        volatility_ann_pct: vol * 100.0,
        sharpe: ann_return * 100.0 / nan_if_zero(vol * 100.0),
        sortino: ann_return / (downside * annual_days.sqrt()),
        calmar: ann_return / nan_if_zero(max_dd),
        max_drawdown_pct: -max_dd * 100.0,
        avg_drawdown_pct: -avg_dd * 100.0,
        max_drawdown_duration: max_dd_duration,
        num_trades: n_trades,
        win_rate_pct: if n_trades == 0 {
            f64::NAN
        } else {
            pnl.iter().filter(|&&p| p > 0.0).count() as f64 / n_trades as f64 * 100.0
        },
        best_trade_pct: returns.iter().copied().fold(f64::NAN, f64::max) * 100.0,
        worst_trade_pct: returns.iter().copied().fold(f64::NAN, f64::min) * 100.0,
        avg_trade_pct: geometric_mean(&returns) * 100.0,
        profit_factor: wins / nan_if_zero(losses.abs()),
        expectancy_pct: mean(&returns) * 100.0,
        sqn: (n_trades as f64).sqrt() * mean(&pnl) / nan_if_zero(var1(&pnl).sqrt()),
        exposure_pct: if n == 0 { f64::NAN } else { exposed as f64 / n as f64 * 100.0 },
        equity_final: last,
        equity_peak: eq.iter().copied().fold(f64::NAN, f64::max),
        commissions: r.trades.iter().map(|t| t.commission).sum(),
        bars: r.bars,
        start: times.first().map(|t| t.to_iso()).unwrap_or_default(),
        end: times.last().map(|t| t.to_iso()).unwrap_or_default(),
        open_trades: r.portfolio.positions().iter().map(|p| p.lots().len()).sum(),
        rejected_orders: r.rejected_orders,
        simulated: r.simulated,
        warnings: Vec::new(),
    };
    summary.warnings = degenerate(&summary, day_returns.len(), period);
    summary
}

/// The figures that are computed as backtesting.py computes them but mean nothing here, each
/// with the reason: annual figures from almost no periods, ratios over a volatility or a
/// drawdown of almost nothing, values no real strategy reaches.
fn degenerate(s: &Summary, periods: usize, period: Period) -> Vec<String> {
    let unit = match period {
        Period::Day => "daily",
        Period::Week => "weekly",
        Period::Month => "monthly",
        Period::Year => "yearly",
    };
    let mut w = Vec::new();
    if periods < 30 && s.return_ann_pct.is_finite() {
        w.push(format!(
            "return_ann_pct, volatility_ann_pct, sharpe, sortino, calmar: annualised from {periods} \
             {unit} return(s); below 30 they are extrapolation, not a measurement"
        ));
    }
    if s.volatility_ann_pct.is_finite() && s.volatility_ann_pct < 0.01 && s.sharpe.is_finite() {
        w.push(format!(
            "sharpe, sortino: the annual volatility is {:.3e}%, so the ratios divide by almost \
             nothing",
            s.volatility_ann_pct
        ));
    }
    if s.sharpe.is_finite() && s.sharpe.abs() > 10.0 {
        w.push(format!(
            "sharpe {:.1}: beyond any real strategy's (above 10); check commissions, fills and \
             the data",
            s.sharpe
        ));
    }
    if s.return_ann_pct.is_finite() && s.return_ann_pct.abs() > 10_000.0 {
        w.push(format!("return_ann_pct {:.3e}%: beyond any real strategy's", s.return_ann_pct));
    }
    if s.calmar.is_finite() && s.max_drawdown_pct.abs() < 0.01 {
        w.push(format!(
            "calmar: the max drawdown is only {:.3e}%, so the ratio divides by almost nothing",
            s.max_drawdown_pct.abs()
        ));
    }
    if s.rejected_orders > 0 {
        let what = if s.num_trades == 0 && s.open_trades == 0 {
            "every order was rejected, so nothing traded"
        } else {
            "the figures cover only the orders that filled"
        };
        w.push(format!(
            "{} order(s) rejected (a size under one lot, or more than the cash affords): {what}",
            s.rejected_orders
        ));
    }
    if s.num_trades > 0 && s.num_trades < 10 && s.sqn.is_finite() {
        w.push(format!("sqn, win_rate_pct, profit_factor: from {} trade(s) only", s.num_trades));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same(a: &Drawdowns, b: &Drawdowns) -> bool {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        a.max_dd.to_bits() == b.max_dd.to_bits()
            && bits(&a.durations) == bits(&b.durations)
            && bits(&a.peaks) == bits(&b.peaks)
            && a.nonzero_n == b.nonzero_n
            && (a.durations.is_empty() && a.nonzero_sum.to_bits() == b.nonzero_sum.to_bits()
                || !a.durations.is_empty())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// The one-division-per-period drawdowns are the every-point ones bit for bit, on
        /// curves with plateaus, repeated peaks, new highs and deep falls.
        #[test]
        fn drawdowns_per_period_equal_drawdowns_per_point(
            steps in proptest::collection::vec(prop_oneof![Just(0i32), -40i32..40, Just(1000)], 0..300),
            start in 1.0f64..1e7,
        ) {
            let mut e = start;
            let eq: Vec<f64> = steps.iter().map(|&s| {
                e = (e * (1.0 + f64::from(s) / 1000.0)).max(1e-3);
                e
            }).collect();
            let at = |i: usize| Timestamp(i as i64 * 60_000_000_000);
            let fast = drawdowns(&eq, &at);
            let each = drawdowns_each_point(&eq, &at);
            prop_assert!(same(&fast, &each), "{fast:?}\n{each:?}");
            // Where no period closed, the average needs the nonzero sum: the same bits too.
            if fast.durations.is_empty() {
                prop_assert_eq!(fast.nonzero_sum.to_bits(), each.nonzero_sum.to_bits());
            }
        }
    }

    #[test]
    fn drawdowns_of_odd_curves_take_the_every_point_path() {
        let at = |i: usize| Timestamp(i as i64);
        for eq in
            [vec![], vec![5.0], vec![1.0, f64::NAN, 0.5], vec![-1.0, -2.0, 3.0], vec![0.0, 1.0]]
        {
            assert!(same(&drawdowns(&eq, &at), &drawdowns_each_point(&eq, &at)), "{eq:?}");
        }
        // A dip of one point and recovery: one period of two bars.
        let d = drawdowns(&[100.0, 90.0, 100.0], &at);
        assert_eq!((d.max_dd, d.durations.len()), (0.09999999999999998, 1));
    }

    #[test]
    fn geometric_mean_like_backtesting_py() {
        assert!((geometric_mean(&[0.1, -0.1]) - ((1.1f64 * 0.9).sqrt() - 1.0)).abs() < 1e-15);
        assert_eq!(geometric_mean(&[0.1, -1.0]), 0.0);
        assert!(geometric_mean(&[]).is_nan());
    }

    #[test]
    fn weekdays_by_day_number_are_the_calendar_s() {
        for k in -800..800i64 {
            let t = Timestamp(k * (DAY_NS / 3) + 12_345);
            let calendar = t.to_datetime().weekday().num_days_from_monday() >= 5;
            assert_eq!((t.0.div_euclid(DAY_NS) + 3).rem_euclid(7) >= 5, calendar, "{}", t.to_iso());
        }
    }

    #[test]
    fn week_buckets_end_on_sunday() {
        // 2024-01-07 was a Sunday, 2024-01-08 a Monday.
        let sun = Timestamp(1_704_585_600_000_000_000);
        let mon = Timestamp(sun.0 + DAY_NS);
        let sat = Timestamp(sun.0 - DAY_NS);
        assert_eq!(bucket(sat, Period::Week), bucket(sun, Period::Week));
        assert_ne!(bucket(sun, Period::Week), bucket(mon, Period::Week));
    }
}
