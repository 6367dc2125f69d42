//! The sweep benchmark of BENCHMARKS.md: `sma_cross` over every pair of windows 2..100 with
//! fast < slow (4,851 combinations) on the 45,031-bar BTC perpetual series, through the
//! event-driven engine on every core, rows streamed to sweep.csv and sweep.parquet in a
//! temporary folder. Prints bar-evaluations per second (combinations x bars / wall time of the
//! runs) and the process's peak resident memory. `scripts/bench/peer_vectorbt.py` runs the
//! same grid in vectorbt.
//!
//! `cargo run --release -p kairos-backtests --example sweep_bench [THREADS] [ROUNDS]`

use std::path::Path;
use std::time::Instant;

use kairos_backtests::data;
use kairos_backtests::engine::BacktestConfig;
use kairos_backtests::sweep::{Axis, Search, Sweep, output};
use kairos_strategies::Registry;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads: usize = std::env::args().nth(1).and_then(|t| t.parse().ok()).unwrap_or(0);
    let rounds: usize = std::env::args().nth(2).and_then(|t| t.parse().ok()).unwrap_or(3);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/bars/btc-perp-20211231-20220201_1m.csv");
    let series = [data::load(&path)?];
    let registry = Registry::with_builtins();
    let config = BacktestConfig { commission: 0.0002, ..BacktestConfig::default() };
    let sweep = Sweep::new(
        &registry,
        "sma_cross",
        vec![("mode".into(), "long_short".into())],
        vec![Axis::parse("fast=2..100")?, Axis::parse("slow=2..100")?],
        Some("fast<slow"),
        Search::Grid,
        None,
        config,
    )?;
    let plan = sweep.plan()?;
    let tmp = std::env::temp_dir().join(format!("kairos-sweep-bench-{}", std::process::id()));
    for round in 0..rounds {
        let started = Instant::now();
        let mut w = output::Writer::create(&tmp, &sweep)?;
        let outcome =
            sweep.run(&registry, &plan, &series, threads, &|_| {}, &mut |r| w.write(&r))?;
        w.finish(&serde_json::json!({}))?;
        let wall = started.elapsed().as_secs_f64();
        println!(
            "round {round}: {} runs x {} bars = {:.1} M bar-evaluations in {wall:.3} s: {:.1} M bar-evaluations/s; peak RSS {:.0} MiB",
            outcome.runs,
            series[0].len(),
            outcome.bar_evaluations as f64 / 1e6,
            outcome.bar_evaluations as f64 / wall / 1e6,
            peak_rss_mib()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
