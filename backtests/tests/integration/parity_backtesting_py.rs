//! Parity with backtesting.py.
//!
//! The fixtures in `tests/fixtures/backtesting_py/` were recorded by
//! `scripts/reference/record.sh`, which runs backtesting.py 0.6.6's canonical `SmaCross`
//! (SMA 10 and 20 of Close; `position.close(); buy()` on `crossover(sma1, sma2)`,
//! `position.close(); sell()` on `crossover(sma2, sma1)`;
//! `Backtest(data, SmaCross, cash=100_000, commission=.0002)`, every other setting default)
//! on real bar files from `../shared/data/bars`. Kairos' `sma_cross` with the same settings
//! must produce the same trades (count, entry and exit times, sizes, prices) and every summary
//! statistic within 1e-6 relative.

use kairos_backtests::data;
use kairos_backtests::engine::{Backtest, BacktestConfig};
use kairos_strategies::Registry;
use serde_json::Value;

fn check(fixture: &str) {
    let Some(dir) = crate::common::bars_dir() else { return };
    let reference: Value = serde_json::from_str(fixture).expect("fixture is JSON");
    let file = reference["file"].as_str().expect("file");
    let p = &reference["params"];
    let series = data::load(dir.join(file)).expect("load");
    let mut strategy = Registry::with_builtins()
        .build(
            "sma_cross",
            &[
                ("fast", p["fast"].to_string()),
                ("slow", p["slow"].to_string()),
                ("mode", "long_short".into()),
            ],
        )
        .expect("strategy");
    let cfg = BacktestConfig {
        cash: p["cash"].as_f64().expect("cash"),
        commission: p["commission"].as_f64().expect("commission"),
        ..BacktestConfig::default()
    };
    let result = Backtest::new(cfg).run(&[series], &mut strategy).expect("run");

    let trades = reference["trades"].as_array().expect("trades");
    assert_eq!(result.trades.len(), trades.len(), "{file}: trade count");
    for (i, (ours, theirs)) in result.trades.iter().zip(trades).enumerate() {
        let t = theirs.as_array().expect("trade row");
        let ctx = format!("{file} trade {i}");
        assert_eq!(ours.entry_time.to_iso(), t[0].as_str().expect("entry"), "{ctx}: entry time");
        assert_eq!(ours.exit_time.to_iso(), t[1].as_str().expect("exit"), "{ctx}: exit time");
        assert_eq!(ours.size, t[2].as_f64().expect("size"), "{ctx}: size");
        assert_eq!(ours.entry_price, t[3].as_f64().expect("entry price"), "{ctx}: entry price");
        assert_eq!(ours.exit_price, t[4].as_f64().expect("exit price"), "{ctx}: exit price");
        assert!(
            crate::common::close_rel(ours.pnl, t[5].as_f64().expect("pnl"), 1e-9),
            "{ctx}: pnl {} vs {}",
            ours.pnl,
            t[5]
        );
    }

    let summary = serde_json::to_value(result.summary()).expect("summary");
    let mut compared = 0;
    for (key, want) in reference["summary"].as_object().expect("summary") {
        let got = &summary[key];
        let (g, w) = (got.as_f64().unwrap_or(f64::NAN), want.as_f64().unwrap_or(f64::NAN));
        assert!(
            !got.is_null() || want.is_null(),
            "{file}: {key} is null, backtesting.py has {want}"
        );
        assert!(crate::common::close_rel(g, w, 1e-6), "{file}: {key} = {g}, backtesting.py {w}");
        compared += 1;
    }
    assert_eq!(compared, 23, "{file}: every reference statistic compared");
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn eurusd_hourly() {
    check(include_str!("../fixtures/backtesting_py/sma_cross_10_20_EURUSD.json"));
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn btc_perp_minutes() {
    check(include_str!(
        "../fixtures/backtesting_py/sma_cross_10_20_btc-perp-20211231-20220201_1m.json"
    ));
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn sp500_daily_gzipped() {
    check(include_str!("../fixtures/backtesting_py/sma_cross_10_20_sp500.json"));
}
