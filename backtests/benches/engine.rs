//! Engine throughput: one `sma_cross` (10/20, long-short, 2 bps commission) run over the
//! 45,031-bar BTC perpetual series from `../shared/data` tiled to 10 million bars, reported in
//! bars per second. `scripts/bench/peer_backtesting_py.sh` runs the same workload in
//! backtesting.py for the comparison in BENCHMARKS.md.
//!
//! `KAIROS_BENCH_BARS` overrides the bar count.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kairos_backtests::data::{self, BarSeries};
use kairos_backtests::engine::{Backtest, BacktestConfig};
use kairos_strategies::builtin::{Mode, SmaCross};
use kairos_strategies::indicators::{Indicator, SmaPair};
use kairos_strategies::{Strategy, Timestamp};

/// The real series repeated end to end, each copy shifted in time so timestamps keep rising.
fn tiled(bars: usize) -> Option<BarSeries> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/bars/btc-perp-20211231-20220201_1m.csv");
    if !path.exists() {
        eprintln!("skipping: {} not found", path.display());
        return None;
    }
    let src = data::load(&path).expect("load btc-perp");
    let (first, last) = src.span().expect("bars");
    let span = last.0 - first.0 + src.interval();
    let mut out = Vec::with_capacity(bars);
    let mut tile = 0i64;
    while out.len() < bars {
        for b in &src.bars {
            if out.len() == bars {
                break;
            }
            let mut b = *b;
            b.ts = Timestamp(b.ts.0 + tile * span);
            out.push(b);
        }
        tile += 1;
    }
    Some(BarSeries { bars: out, ..src })
}

fn engine(c: &mut Criterion) {
    let n: usize =
        std::env::var("KAIROS_BENCH_BARS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let Some(series) = tiled(n) else { return };
    let series = [series];
    let backtest = Backtest::new(BacktestConfig {
        cash: 100_000.0,
        commission: 0.0002,
        ..BacktestConfig::default()
    });
    // Print what the run does, to compare with the peer script's line for the same run.
    let check =
        backtest.run(&series, &mut SmaCross::new(10, 20, Mode::LongShort, 1.0)).expect("run");
    eprintln!(
        "kairos: {n} bars, {} trades, final equity {:.2}",
        check.trades.len(),
        check.equity.last().copied().unwrap_or(f64::NAN)
    );
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function(format!("sma_cross_10_20_{}_bars", n), |b| {
        b.iter(|| {
            let mut s = SmaCross::new(10, 20, Mode::LongShort, 1.0);
            let r = backtest.run(black_box(&series), &mut s).expect("run");
            black_box(r.equity.len() + r.trades.len())
        })
    });
    // The engine's own cost per bar: the same replay with a strategy that does nothing.
    g.bench_function(format!("noop_strategy_{}_bars", n), |b| {
        b.iter(|| {
            let mut s = Noop;
            let r = backtest.run(black_box(&series), &mut s).expect("run");
            black_box(r.equity.len())
        })
    });
    // The strategy's indicator work alone: both SMAs over the closes.
    g.bench_function(format!("sma_pair_10_20_{}_closes", n), |b| {
        b.iter(|| {
            let mut p = SmaPair::new(10, 20);
            let mut acc = 0.0;
            for bar in &series[0].bars {
                if let Some((f, s)) = p.update(black_box(bar.close)) {
                    acc += f - s;
                }
            }
            black_box(acc)
        })
    });
    g.finish();
}

struct Noop;

impl Strategy for Noop {}

criterion_group!(benches, engine);
criterion_main!(benches);
