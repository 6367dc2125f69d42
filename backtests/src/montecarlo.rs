//! Monte Carlo: how much of a run's result is the order its luck came in. Three resamplings of
//! one finished run, each simulated `runs` times, reproducibly from a seed:
//!
//! - **trade order**: the closed trades in a random order (a permutation). Each trade's profit
//!   is taken as a fraction of the equity before it opened, so the compounded final equity is the same
//!   for every order; what changes is the path, hence the drawdown.
//! - **trade bootstrap**: as many trades drawn with replacement: the final equity and the
//!   drawdown both vary.
//! - **return bootstrap**: the equity curve's bar returns drawn in blocks (a moving-block
//!   bootstrap, which keeps the returns' short-range dependence: volatility clusters, a
//!   position held over many bars), as many as the run had: the path bar by bar, with
//!   drawdowns inside trades, which the trade paths cannot see.
//!
//! Each gives percentiles (bands) of the final equity, the return and the maximum drawdown,
//! the probability of ending below the starting cash, and where the actual run falls among the
//! simulations. The return bootstrap also gives the bands of the equity path over time, at
//! [`PATH_POINTS`] times, for the report's fan chart. Simulation `i` draws from its own
//! ChaCha stream `i` of the seed, so results do not depend on the number of threads.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::engine::BacktestResult;
use crate::{Error, Result};

/// The percentiles of every band.
pub const PERCENTILES: [f64; 5] = [5.0, 25.0, 50.0, 75.0, 95.0];

/// Times at which the return bootstrap's equity bands are kept (for the fan chart).
pub const PATH_POINTS: usize = 400;

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MonteCarlo {
    /// Simulations per method.
    pub runs: usize,
    /// The seed.
    pub seed: u64,
    /// Bars per block of the return bootstrap (`None`: the cube root of the bars, at least 1).
    pub block: Option<usize>,
}

/// Percentiles of one figure over the simulations, with the actual run's value and its rank.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Band {
    /// The figure at each of [`PERCENTILES`].
    pub percentiles: Vec<f64>,
    /// The mean.
    pub mean: f64,
    /// The actual run's value.
    pub actual: f64,
    /// The share of simulations below the actual value, in percent (ties count half).
    pub actual_rank_pct: f64,
}

/// One method's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Method {
    /// `trade_order`, `trade_bootstrap` or `return_bootstrap`.
    pub name: &'static str,
    /// Simulations run.
    pub runs: usize,
    /// Final equity.
    pub final_equity: Band,
    /// Return in percent.
    pub return_pct: Band,
    /// Maximum drawdown in percent (negative, as in the summary).
    pub max_drawdown_pct: Band,
    /// Share of simulations ending below the starting cash, in percent.
    pub loss_probability_pct: f64,
}

/// Everything a Monte Carlo run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The settings.
    pub settings: MonteCarlo,
    /// The block length the return bootstrap used.
    pub block: usize,
    /// The percentiles of every band.
    pub percentiles: Vec<f64>,
    /// The trade order and trade bootstrap methods (absent without closed trades), then the
    /// return bootstrap.
    pub methods: Vec<Method>,
    /// The return bootstrap's equity bands over time: per kept time, its position in the
    /// equity curve and the equity at each percentile.
    #[serde(skip)]
    pub path: Vec<(usize, Vec<f64>)>,
}

/// The maximum drawdown of a path, in percent (0 or below).
fn max_drawdown(path: impl Iterator<Item = f64>) -> f64 {
    let mut peak = f64::NEG_INFINITY;
    let mut worst = 0.0f64;
    for v in path {
        peak = peak.max(v);
        if peak > 0.0 {
            worst = worst.min(v / peak - 1.0);
        }
    }
    worst * 100.0
}

/// The `q`-th percentile of sorted `v` (linear between ranks, as numpy's default).
fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = (v.len() - 1) as f64 * q / 100.0;
    let (i, f) = (pos.floor() as usize, pos - pos.floor());
    let hi = v[(i + 1).min(v.len() - 1)];
    v[i] + (hi - v[i]) * f
}

fn band(mut v: Vec<f64>, actual: f64) -> Band {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    // Mid-rank: values equal to the actual one (to rounding) count half, so a band with no
    // spread puts the actual run at 50%.
    let tie = |x: f64| (x - actual).abs() <= 1e-9 * actual.abs().max(1e-300);
    let below = v.iter().filter(|&&x| x < actual && !tie(x)).count() as f64
        + v.iter().filter(|&&x| tie(x)).count() as f64 / 2.0;
    Band {
        percentiles: PERCENTILES.iter().map(|&q| percentile(&v, q)).collect(),
        mean: if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 },
        actual,
        actual_rank_pct: if v.is_empty() { f64::NAN } else { below * 100.0 / v.len() as f64 },
    }
}

/// One method from each simulation's (final equity, max drawdown %).
fn method(name: &'static str, sims: &[(f64, f64)], cash: f64, actual: (f64, f64)) -> Method {
    let ret = |e: f64| (e / cash - 1.0) * 100.0;
    Method {
        name,
        runs: sims.len(),
        final_equity: band(sims.iter().map(|s| s.0).collect(), actual.0),
        return_pct: band(sims.iter().map(|s| ret(s.0)).collect(), ret(actual.0)),
        max_drawdown_pct: band(sims.iter().map(|s| s.1).collect(), actual.1),
        loss_probability_pct: sims.iter().filter(|s| s.0 < cash).count() as f64 * 100.0
            / sims.len().max(1) as f64,
    }
}

fn rng(seed: u64, sim: usize) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(sim as u64);
    r
}

/// Each closed trade's profit as a fraction of the equity just before it opened.
pub fn trade_returns(r: &BacktestResult) -> Vec<f64> {
    let cash = r.config.cash;
    r.trades
        .iter()
        .map(|t| {
            // The equity before the trade opened: at the last point before its entry.
            let k = r.equity_time.count_before(t.entry_time, false);
            let before = if k == 0 { cash } else { r.equity[k - 1] };
            if before > 0.0 { t.pnl / before } else { f64::NAN }
        })
        .filter(|x| x.is_finite())
        .collect()
}

/// Runs the simulations on `threads` threads (0: every core).
pub fn simulate(r: &BacktestResult, mc: &MonteCarlo, threads: usize) -> Result<Outcome> {
    if mc.runs == 0 {
        return Err(Error::Config { key: "monte-carlo", reason: "0 simulations".into() });
    }
    let eq = &r.equity;
    if eq.len() < 2 || !eq.iter().all(|v| v.is_finite() && *v > 0.0) {
        return Err(Error::Config {
            key: "monte-carlo",
            reason: "the run has fewer than two equity points, or an equity at or below zero"
                .into(),
        });
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Config { key: "threads", reason: e.to_string() })?;
    let cash = r.config.cash;
    let mut methods = Vec::new();

    let trades = trade_returns(r);
    if !trades.is_empty() {
        let path = |order: &mut dyn Iterator<Item = f64>| {
            let mut e = cash;
            let dd = max_drawdown(std::iter::once(cash).chain(order.map(|x| {
                e *= 1.0 + x;
                e
            })));
            (e, dd)
        };
        let actual = path(&mut trades.iter().copied());
        let shuffled: Vec<(f64, f64)> = pool.install(|| {
            (0..mc.runs)
                .into_par_iter()
                .map(|i| {
                    let mut g = rng(mc.seed, i);
                    let mut order = trades.clone();
                    // Fisher-Yates.
                    for k in (1..order.len()).rev() {
                        order.swap(k, g.random_range(0..=k));
                    }
                    path(&mut order.into_iter())
                })
                .collect()
        });
        methods.push(method("trade_order", &shuffled, cash, actual));
        let drawn: Vec<(f64, f64)> = pool.install(|| {
            (0..mc.runs)
                .into_par_iter()
                .map(|i| {
                    let mut g = rng(mc.seed ^ 0x7472_6164_6573, i);
                    let n = trades.len();
                    path(&mut (0..n).map(|_| trades[g.random_range(0..n)]))
                })
                .collect()
        });
        methods.push(method("trade_bootstrap", &drawn, cash, actual));
    }

    // Moving-block bootstrap of the bar returns.
    let returns: Vec<f64> = eq.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let n = returns.len();
    let block = mc.block.unwrap_or_else(|| (n as f64).cbrt().ceil() as usize).clamp(1, n);
    let starts = n - block + 1;
    // Evenly spread return positions, the last one included.
    let points = PATH_POINTS.min(n);
    let keep: Vec<usize> = (1..=points).map(|k| k * n / points - 1).collect();
    let sims: Vec<((f64, f64), Vec<f64>)> = pool.install(|| {
        (0..mc.runs)
            .into_par_iter()
            .map(|i| {
                let mut g = rng(mc.seed ^ 0x7265_7475_726e, i);
                let (mut e, mut peak, mut worst) = (eq[0], eq[0], 0.0f64);
                let mut kept = Vec::with_capacity(keep.len());
                let mut next_keep = 0;
                let mut t = 0;
                while t < n {
                    let s = g.random_range(0..starts);
                    for &x in &returns[s..(s + block).min(s + n - t)] {
                        e *= 1.0 + x;
                        peak = peak.max(e);
                        worst = worst.min(e / peak - 1.0);
                        if keep.get(next_keep) == Some(&t) {
                            kept.push(e);
                            next_keep += 1;
                        }
                        t += 1;
                    }
                }
                // As a fraction of the starting cash, like the other methods.
                ((e / eq[0] * cash, worst * 100.0), kept)
            })
            .collect()
    });
    let actual = (eq[n] / eq[0] * cash, max_drawdown(eq.iter().copied()));
    let finals: Vec<(f64, f64)> = sims.iter().map(|s| s.0).collect();
    methods.push(method("return_bootstrap", &finals, cash, actual));
    let path = keep
        .iter()
        .enumerate()
        .map(|(j, &t)| {
            let mut v: Vec<f64> = sims.iter().filter_map(|s| s.1.get(j).copied()).collect();
            v.sort_by(f64::total_cmp);
            (t + 1, PERCENTILES.iter().map(|&q| percentile(&v, q) / eq[0] * cash).collect())
        })
        .collect();
    Ok(Outcome { settings: *mc, block, percentiles: PERCENTILES.to_vec(), methods, path })
}

/// Writes `montecarlo.json` into `dir` (through a temporary file): the settings, each
/// method's bands, and the return bootstrap's bands over time.
pub fn write(dir: &std::path::Path, o: &Outcome) -> Result<()> {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "path".into(),
            serde_json::json!(
                o.path
                    .iter()
                    .map(|(k, p)| serde_json::json!({ "point": k, "equity": p }))
                    .collect::<Vec<_>>()
            ),
        );
    }
    let text = serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    crate::report::write_file(dir, "montecarlo.json", text).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_as_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.5);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 4.0);
        assert!((percentile(&v, 5.0) - 1.15).abs() < 1e-12);
        assert!(percentile(&[], 5.0).is_nan());
        assert_eq!(max_drawdown([100.0, 120.0, 90.0, 130.0, 117.0].into_iter()), -25.0);
    }
}
