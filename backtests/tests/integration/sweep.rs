//! Parameter sweeps: rows equal single runs bit for bit; shards merge into the whole sweep.

use std::path::Path;

use kairos_backtests::data::{self, BarSeries};
use kairos_backtests::engine::{Backtest, BacktestConfig};
use kairos_backtests::stats::{Stat, Summary};
use kairos_backtests::sweep::{Axis, Row, Search, Shard, Sweep, output};
use kairos_strategies::Registry;

fn axes(specs: &[&str]) -> Vec<Axis> {
    specs.iter().map(|s| Axis::parse(s).unwrap()).collect()
}

/// Every figure of two summaries, compared by their bits (NaN equal to NaN).
fn assert_same(a: &Summary, b: &Summary, what: &str) {
    for ((name, x), (_, y)) in a.figures().into_iter().zip(b.figures()) {
        let same = match (&x, &y) {
            (Stat::Float(x), Stat::Float(y)) => x.to_bits() == y.to_bits(),
            _ => x == y,
        };
        assert!(same, "{what}: {name} is {x:?} in the sweep and {y:?} alone");
    }
}

fn sweep_all(
    registry: &Registry,
    sweep: &Sweep,
    series: &[BarSeries],
    threads: usize,
) -> (Vec<Row>, kairos_backtests::sweep::Outcome) {
    let plan = sweep.plan().unwrap();
    let mut rows = Vec::new();
    let outcome = sweep
        .run(registry, &plan, series, threads, &|_| {}, &mut |r| {
            rows.extend(r);
            Ok(())
        })
        .unwrap();
    (rows, outcome)
}

/// Each row of a parallel sweep, with shared indicator series, is the single run of its
/// parameters through `Backtest::run` with the strategy computing its own averages bar by
/// bar: every statistic, bit for bit.
fn rows_equal_single_runs(series: BarSeries, grid: &[&str], filter: &str, config: BacktestConfig) {
    let registry = Registry::with_builtins();
    let sweep = Sweep::new(
        &registry,
        "sma_cross",
        vec![("mode".into(), "long_short".into())],
        axes(grid),
        Some(filter),
        Search::Grid,
        None,
        config,
    )
    .unwrap();
    let series = [series];
    let (rows, outcome) = sweep_all(&registry, &sweep, &series, 2);
    assert!(rows.len() > 20, "{} rows", rows.len());
    assert_eq!(outcome.runs, rows.len() as u64);
    assert_eq!(outcome.skipped, 0);
    assert!(outcome.shared_series > 0 && outcome.shared_series < rows.len());
    assert!(rows.windows(2).all(|w| w[0].combination < w[1].combination), "in combination order");
    let mut traded = 0;
    for row in &rows {
        let params = sweep.params(row.combination);
        let mut alone = registry.build("sma_cross", &params).unwrap();
        let single = Backtest::new(config).run(&series, &mut alone).unwrap().summary();
        assert_same(&row.summary, &single, &format!("{params:?}"));
        traded += usize::from(single.num_trades > 0);
    }
    assert!(traded > rows.len() / 2, "most combinations trade ({traded} of {})", rows.len());
}

#[test]
fn sweep_rows_equal_single_runs_on_simulated_bars() {
    let series = data::source("sim:7:6000").unwrap();
    let config = BacktestConfig { commission: 0.0005, ..BacktestConfig::default() };
    rows_equal_single_runs(series, &["fast=2..30:2", "slow=5..60:5"], "fast<slow", config);
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn sweep_rows_equal_single_runs_on_btc_perp() {
    let Some(dir) = crate::common::bars_dir() else { return };
    let series = data::load(dir.join("btc-perp-20211231-20220201_1m.csv")).unwrap();
    let config = BacktestConfig { commission: 0.0004, ..BacktestConfig::default() };
    rows_equal_single_runs(series, &["fast=2..100:7", "slow=2..100:9"], "fast < slow", config);
}

#[test]
fn refused_combinations_are_counted_not_written() {
    let registry = Registry::with_builtins();
    // No filter: fast >= slow is refused by sma_cross itself.
    let sweep = Sweep::new(
        &registry,
        "sma_cross",
        vec![],
        axes(&["fast=2..6", "slow=3..6"]),
        None,
        Search::Grid,
        None,
        BacktestConfig::default(),
    )
    .unwrap();
    let series = [data::source("sim:1:800").unwrap()];
    let (rows, outcome) = sweep_all(&registry, &sweep, &series, 1);
    assert_eq!(rows.len(), 10, "pairs with fast < slow");
    assert_eq!(outcome.skipped, 10);
    let why = outcome.skip_reason.unwrap();
    assert!(why.contains("must be less than slow"), "{why}");
}

#[test]
fn bad_sweeps_are_refused_naming_what_is_wrong() {
    let registry = Registry::with_builtins();
    let make =
        |strategy: &str, fixed: Vec<(String, String)>, grid: &[&str], filter: Option<&str>| {
            Sweep::new(
                &registry,
                strategy,
                fixed,
                axes(grid),
                filter,
                Search::Grid,
                None,
                BacktestConfig::default(),
            )
            .map(|_| ())
            .unwrap_err()
            .to_string()
        };
    let e = make("nope", vec![], &["fast=2..3"], None);
    assert!(e.contains("nope"), "{e}");
    let e = make("sma_cross", vec![], &["fats=2..3"], None);
    assert!(e.contains("no parameter `fats`") && e.contains("fast"), "{e}");
    let e = make("sma_cross", vec![], &["fast=0..3"], None);
    assert!(e.contains("fast=0..3"), "{e}");
    let e = make("sma_cross", vec![], &["mode=long_short,sideways"], None);
    assert!(e.contains("sideways"), "{e}");
    let e = make("sma_cross", vec![("fast".into(), "3".into())], &["fast=2..3"], None);
    assert!(e.contains("both fixed"), "{e}");
    let e = make("sma_cross", vec![], &["fast=2..3"], Some("fast < slo"));
    assert!(e.contains("`slo`"), "{e}");
    // `slow` is not an axis here: its default (20) is used by the filter.
    assert!(
        Sweep::new(
            &registry,
            "sma_cross",
            vec![],
            axes(&["fast=2..30"]),
            Some("fast < slow"),
            Search::Grid,
            None,
            BacktestConfig::default(),
        )
        .unwrap()
        .plan()
        .unwrap()
        .combinations
        .len()
            == 18
    );
}

fn meta(
    sweep: &Sweep,
    shard: Option<Shard>,
    outcome: &kairos_backtests::sweep::Outcome,
) -> serde_json::Value {
    serde_json::json!({
        "sweep": { "strategy": sweep.strategy, "grid": sweep.grid.axes.iter().map(|a| &a.spec).collect::<Vec<_>>() },
        "shard": shard.map(|s| serde_json::json!({ "index": s.index, "count": s.count })),
        "outcome": { "runs": outcome.runs, "skipped": outcome.skipped },
    })
}

fn write_sweep(dir: &Path, sweep: &Sweep, series: &[BarSeries]) {
    let registry = Registry::with_builtins();
    let plan = sweep.plan().unwrap();
    let mut w = output::Writer::create(dir, sweep).unwrap();
    let outcome = sweep.run(&registry, &plan, series, 2, &|_| {}, &mut |r| w.write(&r)).unwrap();
    w.finish(&meta(sweep, sweep.shard, &outcome)).unwrap();
}

fn read_parquet(p: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::SerReader as _;
    polars::prelude::ParquetReader::new(std::fs::File::open(p).unwrap()).finish().unwrap()
}

/// Three shards merged give the whole sweep's files: the CSV byte for byte, the Parquet row
/// for row; a missing or doubled shard, or a shard of another sweep, is refused.
#[test]
fn shards_merge_into_the_whole_sweep() {
    let registry = Registry::with_builtins();
    let series = [data::source("sim:3:3000").unwrap()];
    let tmp = tempfile::tempdir().unwrap();
    let make = |shard: Option<Shard>, grid: &[&str]| {
        Sweep::new(
            &registry,
            "sma_cross",
            vec![],
            axes(grid),
            Some("fast<slow"),
            Search::Grid,
            shard,
            BacktestConfig::default(),
        )
        .unwrap()
    };
    let grid = ["fast=2..20", "slow=5..40:5"];
    write_sweep(&tmp.path().join("whole"), &make(None, &grid), &series);
    let shard_dirs: Vec<_> = (0..3).map(|i| tmp.path().join(format!("shard{i}"))).collect();
    for (i, d) in shard_dirs.iter().enumerate() {
        write_sweep(d, &make(Some(Shard { index: i as u64, count: 3 }), &grid), &series);
    }
    let merged = tmp.path().join("merged");
    let m = output::merge(&shard_dirs, &merged).unwrap();
    let whole_csv = std::fs::read(tmp.path().join("whole/sweep.csv")).unwrap();
    assert_eq!(std::fs::read(merged.join("sweep.csv")).unwrap(), whole_csv);
    let lines = whole_csv.iter().filter(|&&c| c == b'\n').count() as u64;
    assert_eq!(m.rows + 1, lines);
    let (a, b) = (
        read_parquet(&tmp.path().join("whole/sweep.parquet")),
        read_parquet(&merged.join("sweep.parquet")),
    );
    assert_eq!(a.shape(), b.shape());
    assert!(a.equals_missing(&b), "the merged Parquet has the whole sweep's rows");
    // Refusals.
    let e = output::merge(&shard_dirs[..2], &tmp.path().join("x")).unwrap_err().to_string();
    assert!(e.contains("shard 2/3 is missing"), "{e}");
    let twice = [shard_dirs[0].clone(), shard_dirs[0].clone(), shard_dirs[1].clone()];
    let e = output::merge(&twice, &tmp.path().join("x")).unwrap_err().to_string();
    assert!(e.contains("given twice"), "{e}");
    let other = tmp.path().join("other");
    write_sweep(
        &other,
        &make(Some(Shard { index: 2, count: 3 }), &["fast=2..21", "slow=5..40:5"]),
        &series,
    );
    let mixed = [shard_dirs[0].clone(), shard_dirs[1].clone(), other];
    let e = output::merge(&mixed, &tmp.path().join("x")).unwrap_err().to_string();
    assert!(e.contains("different sweep"), "{e}");
    let e = output::merge(&[tmp.path().join("nothing")], &tmp.path().join("x"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a finished sweep"), "{e}");
    // The best rows by a metric, read back from the Parquet.
    let top = output::top(&merged, "sharpe", 5, false).unwrap();
    assert_eq!(top.height(), 5);
    let s: Vec<Option<f64>> = top.column("sharpe").unwrap().f64().unwrap().iter().collect();
    assert!(s.windows(2).all(|w| w[0] >= w[1]), "{s:?}");
    assert!(output::top(&merged, "nope", 5, false).is_err());
}

/// A run interrupted before `finish` leaves no sweep files and no temporaries.
#[test]
fn an_unfinished_sweep_leaves_no_files() {
    let registry = Registry::with_builtins();
    let sweep = Sweep::new(
        &registry,
        "sma_cross",
        vec![],
        axes(&["fast=2..5", "slow=10"]),
        None,
        Search::Grid,
        None,
        BacktestConfig::default(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let series = [data::source("sim:2:500").unwrap()];
    {
        let mut w = output::Writer::create(tmp.path(), &sweep).unwrap();
        let plan = sweep.plan().unwrap();
        sweep.run(&registry, &plan, &series, 1, &|_| {}, &mut |r| w.write(&r)).unwrap();
        // dropped without finish
    }
    let left: Vec<_> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}
