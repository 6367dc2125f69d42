//! Backtest a user plugin strategy next to a built-in one, from code.
//!
//! ```text
//! cargo run -p kairos-examples --example custom_strategy -- [DATA]
//! ```
//!
//! `DATA` is a bar file or `sim:SEED[:BARS]` (the default, `sim:7:200000`: 200,000 simulated
//! one-minute bars), resampled to hourly bars.

use kairos_backtests::data;
use kairos_backtests::engine::{Backtest, BacktestConfig};
use kairos_strategies::Registry;

fn main() -> anyhow::Result<()> {
    let source = std::env::args().nth(1).unwrap_or_else(|| "sim:7:200000".into());
    let series = data::resample(&data::source(&source)?, data::parse_interval("1h")?)?;
    if series.simulated {
        println!("note: {source} is simulated data");
    }
    let mut registry = Registry::with_builtins();
    kairos_plugin_donchian::register(&mut registry)?;
    let backtest =
        Backtest::new(BacktestConfig { commission: 0.0005, ..BacktestConfig::default() });
    for (name, params) in [
        ("donchian", vec![("period", "60"), ("exit", "20")]),
        ("sma_cross", vec![("fast", "10"), ("slow", "60")]),
    ] {
        let mut strategy = registry.build(name, &params)?;
        let s = backtest.run(std::slice::from_ref(&series), &mut strategy)?.summary();
        println!(
            "{name:<10} return {:>8.2}%  buy&hold {:>8.2}%  sharpe {:>6.2}  max drawdown {:>7.2}%  trades {}",
            s.return_pct, s.buy_hold_return_pct, s.sharpe, s.max_drawdown_pct, s.num_trades
        );
    }
    Ok(())
}
