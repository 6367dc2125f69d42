//! Streaming indicators over one million real closes (the BTC perpetual minute series from
//! `../shared/data`, tiled), one update at a time, in values per second.
//! `scripts/bench/peer_talib.py` times TA-Lib's array functions on the same values.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kairos_strategies::indicators::{Atr, Bollinger, Ema, Indicator, Macd, Rsi, Sma, StdDev, Wma};

const N: usize = 1_000_000;

/// (high, low, close) of the series, tiled to `N` values.
fn series() -> Option<Vec<(f64, f64, f64)>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/bars/btc-perp-20211231-20220201_1m.csv");
    let text = std::fs::read_to_string(&path).ok()?;
    let rows: Vec<(f64, f64, f64)> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?, f.get(4)?.parse().ok()?))
        })
        .collect();
    Some(rows.iter().cycle().take(N).copied().collect())
}

fn run<I: Indicator<Input = f64>>(mut ind: I, xs: &[f64]) -> usize {
    let mut n = 0;
    for &x in xs {
        if ind.update(black_box(x)).is_some() {
            n += 1;
        }
    }
    n
}

fn indicators(c: &mut Criterion) {
    let Some(hlc) = series() else {
        eprintln!("skipping: ../shared/data not found");
        return;
    };
    let closes: Vec<f64> = hlc.iter().map(|r| r.2).collect();
    let mut g = c.benchmark_group("indicators");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.bench_function("sma_20", |b| b.iter(|| run(Sma::new(20), &closes)));
    g.bench_function("ema_20", |b| b.iter(|| run(Ema::new(20), &closes)));
    g.bench_function("wma_20", |b| b.iter(|| run(Wma::new(20), &closes)));
    g.bench_function("rsi_14", |b| b.iter(|| run(Rsi::new(14), &closes)));
    g.bench_function("macd_12_26_9", |b| b.iter(|| run(Macd::new(12, 26, 9), &closes)));
    g.bench_function("bbands_20_2", |b| b.iter(|| run(Bollinger::new(20, 2.0), &closes)));
    g.bench_function("stddev_20", |b| b.iter(|| run(StdDev::new(20), &closes)));
    g.bench_function("atr_14", |b| {
        b.iter(|| {
            let mut atr = Atr::new(14);
            hlc.iter().filter(|&&r| atr.update(black_box(r)).is_some()).count()
        })
    });
    g.finish();
}

criterion_group!(benches, indicators);
criterion_main!(benches);
