//! Parameter sweeps: one strategy over a grid of parameters, every combination through the
//! same event-driven engine as a single backtest, in parallel.
//!
//! - The data is loaded and converted once and shared by every run (`&[BarSeries]`).
//! - Indicator series are computed once per distinct window and shared
//!   ([`SharedSeries`], offered to each run through
//!   [`Strategy::share`](kairos_strategies::Strategy::share)): `sma_cross` over windows
//!   2..100 computes 99 averages, not 9,702.
//! - A row is exactly the single run with the same parameters: the same engine, venue and
//!   statistics, and shared series that are the streaming indicators' values bit for bit
//!   (tested).
//! - Memory stays bounded: runs go in batches, each run's equity curve is summarised and
//!   dropped, and rows stream out to the caller's sink (the CSV and Parquet writers of
//!   [`output`]) batch by batch.

pub mod grid;
pub mod output;
pub mod walk;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kairos_strategies::{ParamKind, Registry, SharedSeries};
use rayon::prelude::*;

pub use grid::{Axis, Filter, Grid, Plan, Search, Shard};
pub use walk::{Select, WalkForward, WalkResult, Window, WindowResult};

use crate::data::BarSeries;
use crate::engine::{Backtest, BacktestConfig};
use crate::stats::Summary;
use crate::{Error, Result};

/// Combinations run between two hand-overs of rows to the sink.
const BATCH: usize = 2048;

/// A sweep, checked: the strategy exists, every axis is one of its parameters and every value
/// parses, the filter names only its parameters.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The strategy's name.
    pub strategy: String,
    /// Parameters every run shares (`name=value`).
    pub fixed: Vec<(String, String)>,
    /// The axes.
    pub grid: Grid,
    /// `--where`.
    pub filter: Option<Filter>,
    /// Every combination, or a random sample.
    pub search: Search,
    /// One slice of the plan.
    pub shard: Option<Shard>,
    /// The engine's settings.
    pub config: BacktestConfig,
    /// Each axis's parameter kind.
    pub kinds: Vec<ParamKind>,
    /// Each axis's values as numbers, for the filter (`NaN` where not a number).
    numeric: Vec<Vec<f64>>,
}

/// One combination's result.
#[derive(Debug, Clone)]
pub struct Row {
    /// The combination's index in the grid.
    pub combination: u64,
    /// Its value on each axis.
    pub values: Vec<String>,
    /// The run's statistics.
    pub summary: Summary,
}

/// What a sweep did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Combinations run.
    pub runs: u64,
    /// Combinations the strategy refused (its own cross-parameter checks), and the first
    /// reason.
    pub skipped: u64,
    /// Why the first skipped one was refused.
    pub skip_reason: Option<String>,
    /// Bars stepped over all runs.
    pub bar_evaluations: u64,
    /// Wall time of the runs.
    pub elapsed: Duration,
    /// Indicator series computed and shared.
    pub shared_series: usize,
}

impl Sweep {
    /// Checks a sweep of `strategy` with `fixed` parameters over `axes`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registry: &Registry,
        strategy: &str,
        fixed: Vec<(String, String)>,
        axes: Vec<Axis>,
        filter: Option<&str>,
        search: Search,
        shard: Option<Shard>,
        config: BacktestConfig,
    ) -> Result<Sweep> {
        config.validate()?;
        let info = registry.get(strategy)?;
        // The fixed parameters alone parse (the axes then override them).
        let base = registry.params(strategy, &fixed)?;
        let mut kinds = Vec::new();
        let mut numeric = Vec::new();
        for a in &axes {
            let spec =
                info.params.iter().find(|p| p.name == a.name).ok_or_else(|| Error::Sweep {
                    key: "grid",
                    reason: format!(
                        "{strategy} has no parameter `{}` (it has {})",
                        a.name,
                        info.params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                    ),
                })?;
            if fixed.iter().any(|(k, _)| k == &a.name) {
                return Err(Error::Sweep {
                    key: "grid",
                    reason: format!("`{}` is both fixed (--param) and an axis (--grid)", a.name),
                });
            }
            for v in &a.values {
                let mut one = fixed.clone();
                one.push((a.name.clone(), v.clone()));
                registry.params(strategy, &one).map_err(|e| Error::Sweep {
                    key: "grid",
                    reason: format!("`{}`: {e}", a.spec),
                })?;
            }
            numeric.push(a.values.iter().map(|v| v.parse().unwrap_or(f64::NAN)).collect());
            kinds.push(spec.kind.clone());
        }
        let grid = Grid::new(axes)?;
        let names: Vec<String> = grid.axes.iter().map(|a| a.name.clone()).collect();
        let fixed_numbers: Vec<(String, f64)> = base
            .iter()
            .filter_map(|(k, v)| {
                let x = match v {
                    kairos_strategies::ParamValue::Int(i) => *i as f64,
                    kairos_strategies::ParamValue::Float(f) => *f,
                    _ => return None,
                };
                Some((k.to_string(), x))
            })
            .collect();
        let filter = filter.map(|f| Filter::parse(f, &names, &fixed_numbers)).transpose()?;
        Ok(Sweep {
            strategy: strategy.to_string(),
            fixed,
            grid,
            filter,
            search,
            shard,
            config,
            kinds,
            numeric,
        })
    }

    /// The combinations this sweep (or its shard) runs.
    pub fn plan(&self) -> Result<Plan> {
        Plan::new(&self.grid, self.filter.as_ref(), &self.numeric, self.search, self.shard)
    }

    /// Combination `k`'s parameters: the fixed ones, then each axis's value.
    pub fn params(&self, k: u64) -> Vec<(String, String)> {
        let mut p = self.fixed.clone();
        for (a, v) in self.grid.axes.iter().zip(self.grid.values(k)) {
            p.push((a.name.clone(), v.to_string()));
        }
        p
    }

    /// Runs combination `k` alone over `series`; `Err` with the strategy's reason when it
    /// refuses these parameters. `shared` offers the run shared indicator series.
    pub fn run_one(
        &self,
        registry: &Registry,
        k: u64,
        series: &[BarSeries],
        shared: Option<&SharedSeries>,
    ) -> Result<Summary, String> {
        let mut strategy =
            registry.build(&self.strategy, &self.params(k)).map_err(|e| e.to_string())?;
        if let Some(s) = shared {
            strategy.share(s);
        }
        let backtest = Backtest::new(self.config).quiet();
        // Built-ins with a loop compiled for their type run through it (the same engine and
        // results, the hooks inlined); any other strategy through `dyn Strategy`.
        let any = strategy.as_any_mut();
        let r = match any.and_then(|a| a.downcast_mut::<kairos_strategies::builtin::SmaCross>()) {
            Some(s) => backtest.run(series, s),
            None => backtest.run(series, &mut strategy),
        }
        .map_err(|e| e.to_string())?;
        Ok(r.summary())
    }

    /// Runs `plan` over `series` on `threads` threads (0: every core), handing rows to `sink`
    /// in combination order, a batch at a time. `progress` is told how many runs have
    /// finished, as they finish.
    pub fn run(
        &self,
        registry: &Registry,
        plan: &Plan,
        series: &[BarSeries],
        threads: usize,
        progress: &(dyn Fn(u64) + Sync),
        sink: &mut dyn FnMut(Vec<Row>) -> Result<()>,
    ) -> Result<Outcome> {
        if series.is_empty() || series.iter().all(BarSeries::is_empty) {
            return Err(Error::Config { key: "data", reason: "no bars to replay".into() });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("sweep-{i}"))
            .build()
            .map_err(|e| Error::Sweep { key: "threads", reason: e.to_string() })?;
        let shared = SharedSeries::new(series.iter().map(|s| &s.bars[..]));
        let bars: u64 = series.iter().map(|s| s.len() as u64).sum();
        let done = AtomicU64::new(0);
        let started = Instant::now();
        let mut out = Outcome::default();
        for batch in plan.combinations.chunks(BATCH) {
            let results: Vec<(u64, Result<Summary, String>)> = pool.install(|| {
                batch
                    .par_iter()
                    .map(|&k| {
                        let r = self.run_one(registry, k, series, Some(&shared));
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                        (k, r)
                    })
                    .collect()
            });
            let mut rows = Vec::with_capacity(results.len());
            for (k, r) in results {
                match r {
                    Ok(summary) => {
                        out.runs += 1;
                        out.bar_evaluations += bars;
                        let values = self.grid.values(k).into_iter().map(str::to_string).collect();
                        rows.push(Row { combination: k, values, summary });
                    }
                    Err(reason) => {
                        out.skipped += 1;
                        out.skip_reason.get_or_insert(reason);
                    }
                }
            }
            sink(rows)?;
        }
        out.elapsed = started.elapsed();
        out.shared_series = shared.cached();
        Ok(out)
    }
}
