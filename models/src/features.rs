//! The forecaster's features: one definition, computed two ways that must agree.
//!
//! - [`frame`] computes every feature for a whole history at once with polars (training and
//!   evaluation: vectorised, and the frame can be inspected or saved);
//! - [`FeatureState`] computes the same features one bar at a time from a fixed window of past
//!   bars (backtests and live trading: a decision at bar `t` sees bars up to `t` and nothing
//!   else).
//!
//! A test on the real BTC file checks the two agree to 1e-9 on every row, so a model is served
//! the inputs it was trained on.
//!
//! | feature | definition at bar `t` (close `c`, volume `v`) |
//! | --- | --- |
//! | `ret_1`, `ret_5`, `ret_15`, `ret_60` | log return `ln(c[t] / c[t-h])` |
//! | `vol_15`, `vol_60` | sample standard deviation (ddof 1) of `ret_1` over the last `n` bars |
//! | `sma_gap_20`, `sma_gap_60` | `c[t] / SMA(c, n)[t] - 1` |
//! | `bb_z_20` | `(c[t] - SMA(c, 20)[t]) / stddev(c, 20)[t]`, population deviation as TA-Lib's BBANDS |
//! | `range` | `(high[t] - low[t]) / c[t]` |
//! | `volume_z_60` | `(v[t] - mean(v, 60)[t]) / stddev(v, 60)[t]` (ddof 1) |
//!
//! A row is valid once the longest window is full ([`WARMUP`] bars) and only when every
//! feature is finite (a flat stretch with zero deviation gives no row rather than an infinity).

use kairos_strategies::Bar;
use polars::prelude::*;
use polars_time::prelude::SeriesOpsTime;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Feature names, in column order.
pub const NAMES: [&str; 11] = [
    "ret_1",
    "ret_5",
    "ret_15",
    "ret_60",
    "vol_15",
    "vol_60",
    "sma_gap_20",
    "sma_gap_60",
    "bb_z_20",
    "range",
    "volume_z_60",
];

/// Number of features.
pub const COUNT: usize = NAMES.len();

/// Version of the feature definitions, saved with a model; a model trained on another version
/// is refused rather than fed different inputs.
pub const VERSION: u32 = 1;

/// Bars before the first valid row: `ret_60` and `vol_60` need 61 closes.
pub const WARMUP: usize = 60;

/// One row of features.
pub type Row = [f64; COUNT];

/// What a forecaster predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// The next-`horizon`-bar log return (regression).
    Return,
    /// Whether that return is positive (classification).
    Sign,
}

impl std::str::FromStr for TargetKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "return" => Ok(Self::Return),
            "sign" => Ok(Self::Sign),
            _ => Err(format!("unknown target `{s}`: use return or sign")),
        }
    }
}

/// The prediction target: kind and horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Regression or classification.
    pub kind: TargetKind,
    /// Bars ahead.
    pub horizon: usize,
}

/// Features and targets of a bar history.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The features, one row per bar (NaN where invalid), as polars computed them.
    pub frame: DataFrame,
    /// The same, row-major.
    pub rows: Vec<Row>,
    /// Whether each row is usable (warm-up over, all finite).
    pub valid: Vec<bool>,
    /// `ln(c[t+h] / c[t])`, NaN for the last `h` bars.
    pub future_return: Vec<f64>,
    /// Bar timestamps (ns).
    pub ts: Vec<i64>,
}

fn rolling(window: usize, ddof: Option<u8>) -> RollingOptionsFixedWindow {
    RollingOptionsFixedWindow {
        window_size: window,
        min_periods: window,
        center: false,
        weights: None,
        fn_params: ddof.map(|ddof| RollingFnParams::Var(RollingVarParams { ddof })),
    }
}

fn column(frame: &DataFrame, name: &str) -> Result<Series> {
    Ok(frame.column(name).map_err(polars_err)?.as_materialized_series().clone())
}

fn polars_err(e: PolarsError) -> Error {
    Error::Data(format!("polars: {e}"))
}

/// Computes the features of `bars` (oldest first) with polars, and the `horizon`-bar future
/// return used as the target.
pub fn frame(bars: &[Bar], horizon: usize) -> Result<Dataset> {
    if horizon == 0 {
        return Err(Error::Data("the target horizon must be at least one bar".into()));
    }
    for (i, b) in bars.iter().enumerate() {
        if !(b.close.is_finite() && b.close > 0.0 && b.high.is_finite() && b.low.is_finite()) {
            return Err(Error::Data(format!(
                "bar {i} (ts {}) has a non-positive or non-finite price",
                b.ts.0
            )));
        }
        if !b.volume.is_finite() {
            return Err(Error::Data(format!("bar {i} (ts {}) has a non-finite volume", b.ts.0)));
        }
    }
    let col = |name: &str, f: fn(&Bar) -> f64| {
        Column::new(name.into(), bars.iter().map(f).collect::<Vec<f64>>())
    };
    let base = DataFrame::new_infer_height(vec![
        col("close", |b| b.close),
        col("high", |b| b.high),
        col("low", |b| b.low),
        col("volume", |b| b.volume),
    ])
    .map_err(polars_err)?;
    let close = column(&base, "close")?;
    let volume = column(&base, "volume")?;
    let log_close = close.f64().map_err(polars_err)?.apply_values(f64::ln).into_series();
    let sub = |a: &Series, b: &Series| (a - b).map_err(polars_err);
    let div = |a: &Series, b: &Series| (a / b).map_err(polars_err);
    let ret = |h: usize| sub(&log_close, &log_close.shift(h as i64));
    let ret_1 = ret(1)?;
    let sma = |n: usize| close.rolling_mean(rolling(n, None)).map_err(polars_err);
    let gap = |n: usize| -> Result<Series> { Ok(div(&close, &sma(n)?)? - 1.0f64) };
    let sma20 = sma(20)?;
    let std20 = close.rolling_std(rolling(20, Some(0))).map_err(polars_err)?;
    let bb_z = div(&sub(&close, &sma20)?, &std20)?;
    let range = div(&sub(&column(&base, "high")?, &column(&base, "low")?)?, &close)?;
    let vmean = volume.rolling_mean(rolling(60, None)).map_err(polars_err)?;
    let vstd = volume.rolling_std(rolling(60, Some(1))).map_err(polars_err)?;
    let volume_z = div(&sub(&volume, &vmean)?, &vstd)?;
    let future = sub(&log_close.shift(-(horizon as i64)), &log_close)?;

    let columns = [
        ret_1.clone(),
        ret(5)?,
        ret(15)?,
        ret(60)?,
        ret_1.rolling_std(rolling(15, Some(1))).map_err(polars_err)?,
        ret_1.rolling_std(rolling(60, Some(1))).map_err(polars_err)?,
        gap(20)?,
        gap(60)?,
        bb_z,
        range,
        volume_z,
    ];
    let columns: Vec<Column> = columns
        .into_iter()
        .zip(NAMES)
        .map(|(s, name)| s.with_name(name.into()).into_column())
        .collect();
    let frame = DataFrame::new_infer_height(columns).map_err(polars_err)?;

    let n = bars.len();
    let mut rows = vec![[f64::NAN; COUNT]; n];
    for (j, name) in NAMES.iter().enumerate() {
        let s = column(&frame, name)?;
        for (i, v) in s.f64().map_err(polars_err)?.iter().enumerate() {
            rows[i][j] = v.unwrap_or(f64::NAN);
        }
    }
    let valid = rows
        .iter()
        .enumerate()
        .map(|(i, r)| i >= WARMUP && r.iter().all(|v| v.is_finite()))
        .collect();
    let future_return =
        future.f64().map_err(polars_err)?.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    Ok(Dataset { frame, rows, valid, future_return, ts: bars.iter().map(|b| b.ts.0).collect() })
}

/// The features of one instrument, updated bar by bar from a window of the last 61 bars.
///
/// `update` costs a few hundred floating-point operations and never allocates.
#[derive(Debug, Clone)]
pub struct FeatureState {
    close: Ring<{ WARMUP + 1 }>,
    volume: Ring<{ WARMUP + 1 }>,
}

impl Default for FeatureState {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureState {
    /// An empty state.
    pub fn new() -> Self {
        Self { close: Ring::new(), volume: Ring::new() }
    }

    /// Adds a closed bar; returns its features once [`WARMUP`] bars have been seen and all are
    /// finite. A bar with a non-positive or non-finite price is not added and yields `None`.
    pub fn update(&mut self, bar: &Bar) -> Option<Row> {
        let finite = bar.close.is_finite()
            && bar.high.is_finite()
            && bar.low.is_finite()
            && bar.volume.is_finite();
        if !finite || bar.close <= 0.0 {
            return None;
        }
        self.close.push(bar.close);
        self.volume.push(bar.volume);
        if !self.close.full() {
            return None;
        }
        // Oldest first: c[0] is 60 bars back, c[60] is now.
        let c = self.close.ordered();
        let v = self.volume.ordered();
        let now = c[WARMUP];
        let ln = |x: f64| x.ln();
        let ret = |h: usize| ln(now) - ln(c[WARMUP - h]);
        let mut r1 = [0.0; WARMUP];
        for i in 0..WARMUP {
            r1[i] = ln(c[i + 1]) - ln(c[i]);
        }
        let sma = |n: usize| mean(&c[WARMUP + 1 - n..]);
        let sma20 = sma(20);
        let row = [
            r1[WARMUP - 1],
            ret(5),
            ret(15),
            ret(60),
            std(&r1[WARMUP - 15..], 1),
            std(&r1, 1),
            now / sma20 - 1.0,
            now / sma(60) - 1.0,
            (now - sma20) / std(&c[WARMUP + 1 - 20..], 0),
            (bar.high - bar.low) / now,
            (v[WARMUP] - mean(&v[1..])) / std(&v[1..], 1),
        ];
        row.iter().all(|x| x.is_finite()).then_some(row)
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn std(xs: &[f64], ddof: usize) -> f64 {
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (xs.len() - ddof) as f64).sqrt()
}

/// A fixed ring of the last `N` values.
#[derive(Debug, Clone)]
struct Ring<const N: usize> {
    buf: [f64; N],
    next: usize,
    len: usize,
    ordered: [f64; N],
}

impl<const N: usize> Ring<N> {
    fn new() -> Self {
        Self { buf: [0.0; N], next: 0, len: 0, ordered: [0.0; N] }
    }
    fn push(&mut self, v: f64) {
        self.buf[self.next] = v;
        self.next = (self.next + 1) % N;
        self.len = (self.len + 1).min(N);
    }
    fn full(&self) -> bool {
        self.len == N
    }
    /// The values, oldest first (only meaningful when full).
    fn ordered(&mut self) -> [f64; N] {
        let (tail, head) = self.buf.split_at(self.next);
        self.ordered[..head.len()].copy_from_slice(head);
        self.ordered[head.len()..].copy_from_slice(tail);
        self.ordered
    }
}

/// Per-feature mean and standard deviation, fitted on training rows only and saved with the
/// model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Feature names, in order.
    pub names: Vec<String>,
    /// Means.
    pub mean: Vec<f64>,
    /// Standard deviations (1 where a feature was constant).
    pub std: Vec<f64>,
}

impl Normalizer {
    /// Fits on the given rows (which must all be valid).
    pub fn fit<'a>(rows: impl Iterator<Item = &'a Row>) -> Result<Self> {
        let rows: Vec<&Row> = rows.collect();
        if rows.len() < 2 {
            return Err(Error::Data("fewer than two training rows to fit normalisation".into()));
        }
        // Fitted with polars so the statistics match what a user computes on the frame.
        let mut mean = Vec::with_capacity(COUNT);
        let mut std = Vec::with_capacity(COUNT);
        for j in 0..COUNT {
            let s = Series::new(NAMES[j].into(), rows.iter().map(|r| r[j]).collect::<Vec<f64>>());
            let m = s.mean().unwrap_or(0.0);
            let sd = s.std(1).unwrap_or(1.0);
            mean.push(m);
            std.push(if sd > 0.0 && sd.is_finite() { sd } else { 1.0 });
        }
        Ok(Self { names: NAMES.iter().map(|s| s.to_string()).collect(), mean, std })
    }

    /// Checks the saved names are this build's features.
    pub fn check(&self) -> Result<()> {
        if self.names.len() != COUNT
            || self.names.iter().zip(NAMES).any(|(a, b)| a != b)
            || self.mean.len() != COUNT
            || self.std.len() != COUNT
        {
            return Err(Error::Data(format!(
                "the model's features {:?} are not this build's {:?}",
                self.names, NAMES
            )));
        }
        Ok(())
    }

    /// Standardises one row into `out`.
    #[inline]
    pub fn apply(&self, row: &Row, out: &mut [f32]) {
        for j in 0..COUNT {
            out[j] = ((row[j] - self.mean[j]) / self.std[j]) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_strategies::{InstrumentId, Timestamp};

    fn bars(n: usize) -> Vec<Bar> {
        (0..n)
            .map(|i| {
                let x = i as f64;
                let c = 100.0 + (x * 0.37).sin() * 3.0 + x * 0.01;
                Bar {
                    instrument: InstrumentId::default(),
                    ts: Timestamp(i as i64 * 60_000_000_000),
                    open: c,
                    high: c + 0.5 + (x * 0.11).cos().abs(),
                    low: c - 0.5,
                    close: c,
                    volume: 10.0 + (x * 1.7).sin().abs() * 5.0,
                }
            })
            .collect()
    }

    #[test]
    fn streaming_matches_polars() {
        let bars = bars(400);
        let ds = frame(&bars, 5).unwrap();
        let mut st = FeatureState::new();
        for (i, b) in bars.iter().enumerate() {
            let got = st.update(b);
            assert_eq!(got.is_some(), ds.valid[i], "row {i}");
            if let Some(row) = got {
                for (j, (&a, &e)) in row.iter().zip(&ds.rows[i]).enumerate() {
                    assert!(
                        (a - e).abs() <= 1e-9 * e.abs().max(1.0),
                        "row {i} {}: {a} vs {e}",
                        NAMES[j]
                    );
                }
            }
        }
        assert!(ds.valid[WARMUP] && !ds.valid[WARMUP - 1]);
        let last = ds.future_return.len() - 1;
        assert!(ds.future_return[last].is_nan() && ds.future_return[last - 5].is_finite());
    }

    #[test]
    fn bad_prices_are_named() {
        let mut b = bars(80);
        b[7].close = f64::NAN;
        let e = frame(&b, 1).unwrap_err().to_string();
        assert!(e.contains("bar 7"), "{e}");
        assert!(FeatureState::new().update(&b[7]).is_none());
    }
}
