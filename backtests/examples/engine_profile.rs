//! Runs the engine benchmark's workload a fixed number of times, for profilers:
//! `valgrind --tool=callgrind --toggle-collect='*Backtest*run*' target/release/examples/engine_profile`
//! gives a repeatable instruction count per bar.
//!
//! `engine_profile [RUNS] [DATA]` (defaults: 20 runs of the shared BTC perpetual minute bars);
//! `TILE=N` repeats the series N times first, `NOOP=1` replays with a strategy that never trades.

use kairos_backtests::data;
use kairos_backtests::engine::{Backtest, BacktestConfig};
use kairos_strategies::Strategy;
use kairos_strategies::builtin::{Mode, SmaCross};

/// A strategy that never trades: the engine's own cost (`NOOP=1`).
struct Noop;

impl Strategy for Noop {}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let src = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "../shared/data/bars/btc-perp-20211231-20220201_1m.csv".into());
    let mut series = [data::source(&src)?];
    // TILE=N repeats the series N times end to end, as the criterion bench does.
    if let Some(n) = std::env::var("TILE").ok().and_then(|v| v.parse::<i64>().ok()) {
        let s = &mut series[0];
        let (first, last) = s.span().ok_or("no bars")?;
        let span = last.0 - first.0 + s.interval();
        let one = s.bars.clone();
        for k in 1..n {
            s.bars.extend(one.iter().map(|b| kairos_strategies::Bar {
                ts: kairos_strategies::Timestamp(b.ts.0 + k * span),
                ..*b
            }));
        }
    }
    let bt = Backtest::new(BacktestConfig { commission: 0.0002, ..BacktestConfig::default() });
    let started = std::time::Instant::now();
    let mut trades = 0;
    let noop = std::env::var_os("NOOP").is_some();
    for _ in 0..runs {
        if noop {
            trades += bt.run(&series, &mut Noop)?.trades.len();
        } else {
            let mut s = SmaCross::new(10, 20, Mode::LongShort, 1.0);
            trades += bt.run(&series, &mut s)?.trades.len();
        }
    }
    let bars = runs * series[0].len();
    let secs = started.elapsed().as_secs_f64();
    println!("{bars} bars, {trades} trades, {:.1} M bars/s", bars as f64 / secs / 1e6);
    Ok(())
}
