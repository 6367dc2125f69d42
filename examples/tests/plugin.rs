//! The example plugin works the way a user's would: registered next to the built-ins, found by
//! name, validated, and run by the engine.

use kairos_backtests::data;
use kairos_backtests::engine::{Backtest, BacktestConfig};
use kairos_strategies::Registry;

#[test]
fn plugin_registers_validates_and_trades() {
    let mut registry = Registry::with_builtins();
    kairos_plugin_donchian::register(&mut registry).unwrap();
    assert!(registry.iter().any(|i| i.name == "donchian"));
    assert!(kairos_plugin_donchian::register(&mut registry).is_err(), "a name registers once");
    let e =
        registry.build("donchian", &[("period", "10"), ("exit", "20")]).err().unwrap().to_string();
    assert!(e.contains("exit (20) must not exceed period (10)"), "{e}");

    let series = data::source("sim:3:20000").unwrap();
    let run = |mode: &str| {
        let mut s = registry
            .build("donchian", &[("period", "120"), ("exit", "60"), ("mode", mode)])
            .unwrap();
        Backtest::new(BacktestConfig::default()).run(std::slice::from_ref(&series), &mut s).unwrap()
    };
    let both = run("long_short");
    assert!(both.trades.len() > 5, "{} trades", both.trades.len());
    assert!(both.trades.iter().any(|t| t.size < 0.0) && both.trades.iter().any(|t| t.size > 0.0));
    let long = run("long_only");
    assert!(long.trades.iter().all(|t| t.size > 0.0), "long_only never shorts");
}
