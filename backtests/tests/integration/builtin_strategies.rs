//! The built-in strategies trade the way their descriptions say, on hand-made markets where the
//! right answer is known.

use kairos_backtests::data::BarSeries;
use kairos_backtests::engine::{Backtest, BacktestConfig, BacktestResult};
use kairos_strategies::{Bar, Instrument, InstrumentId, Registry, Timestamp};

fn series(closes: &[f64]) -> BarSeries {
    let bars = closes
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let open = if i == 0 { c } else { closes[i - 1] };
            Bar {
                instrument: InstrumentId(0),
                ts: Timestamp::from_secs(1_700_000_000 + 3600 * i as i64),
                open,
                high: open.max(c) * 1.001,
                low: open.min(c) * 0.999,
                close: c,
                volume: 1.0,
            }
        })
        .collect();
    BarSeries {
        instrument: Instrument::new("TEST", "test"),
        bars,
        source: "test".into(),
        simulated: false,
        time_format: None,
    }
}

fn run(name: &str, params: &[(&str, &str)], closes: &[f64]) -> BacktestResult {
    let mut s = Registry::with_builtins().build(name, params).unwrap();
    Backtest::new(BacktestConfig::default()).run(&[series(closes)], &mut s).unwrap()
}

/// Index of the bar whose time is `t`.
fn bar_of(r: &BacktestResult, t: Timestamp) -> usize {
    r.equity_time.iter().position(|x| x == t).unwrap()
}

#[test]
fn sma_cross_goes_with_the_trend() {
    // Down, up, down: a golden cross in the rally and a death cross after it.
    let mut closes: Vec<f64> = (0..30).map(|i| 100.0 - i as f64).collect();
    closes.extend((0..40).map(|i| 71.0 + 2.0 * i as f64));
    closes.extend((0..40).map(|i| 149.0 - 2.0 * i as f64));
    // Linear prices can make the two averages exactly equal at the turn, and touching is not
    // crossing; a wiggle keeps the test about trends.
    let closes: Vec<f64> =
        closes.iter().enumerate().map(|(i, c)| c * (1.0 + 0.002 * (i as f64).sin())).collect();
    let r = run("sma_cross", &[("fast", "3"), ("slow", "8")], &closes);
    let longs: Vec<_> = r.trades.iter().filter(|t| t.size > 0.0).collect();
    assert_eq!(longs.len(), 1, "{:?} fills {:?} rejected {}", r.trades, r.fills, r.rejected_orders);
    let long = longs[0];
    assert!(bar_of(&r, long.entry_time) > 30 && bar_of(&r, long.entry_time) < 40);
    assert!(bar_of(&r, long.exit_time) > 70 && bar_of(&r, long.exit_time) < 80);
    assert!(long.pnl > 0.0);
    // long_short leaves a short open after the death cross; long_only stays flat.
    assert!(r.portfolio.position(InstrumentId(0)).quantity() < 0.0);
    let r = run("sma_cross", &[("fast", "3"), ("slow", "8"), ("mode", "long_only")], &closes);
    assert!(r.trades.iter().all(|t| t.size > 0.0));
    assert_eq!(r.portfolio.position(InstrumentId(0)).quantity(), 0.0);
}

#[test]
fn rsi_reversion_buys_the_dip_and_exits_at_the_midline() {
    // A quiet market first: flat bars must not read as oversold (TA-Lib's RSI is 0 there).
    let mut closes = vec![100.0; 20];
    closes.extend((1..=10).map(|i| 100.0 - 3.0 * i as f64)); // a sell-off: RSI falls below 30
    closes.extend((1..=20).map(|i| 70.0 + 2.0 * i as f64)); // the rebound: RSI back above 50
    let r = run("rsi_reversion", &[("period", "5"), ("mode", "long_only")], &closes);
    assert_eq!(r.trades.len(), 1, "{:?}", r.trades);
    let t = r.trades[0];
    assert!(t.size > 0.0);
    let (entry, exit) = (bar_of(&r, t.entry_time), bar_of(&r, t.exit_time));
    assert!((21..=31).contains(&entry), "entered at bar {entry}");
    assert!(exit > 30, "exited at bar {exit}, during the rebound");
}

#[test]
fn bollinger_breakout_follows_a_break_and_exits_at_the_middle() {
    let mut closes: Vec<f64> =
        (0..30).map(|i| 100.0 + if i % 2 == 0 { 0.5 } else { -0.5 }).collect();
    closes.extend((1..=5).map(|i| 100.0 + 4.0 * i as f64)); // breaks out above the upper band
    closes.extend((1..=20).map(|i| 120.0 - 3.0 * i as f64)); // falls back through the middle
    let r =
        run("bollinger_breakout", &[("period", "20"), ("k", "2"), ("mode", "long_only")], &closes);
    let t = r.trades.first().copied().unwrap_or_else(|| panic!("no trade: {:?}", r.fills));
    assert!(t.size > 0.0);
    assert!((30..=33).contains(&bar_of(&r, t.entry_time)), "entry at {}", t.entry_time);
    assert!(bar_of(&r, t.exit_time) > 35);
}
