//! The engine's run-of-bars fast path (`Strategy::on_bars`) changes nothing but speed: the
//! built-in `sma_cross`, which implements it, gives bit-identical results (every equity point,
//! trade, fill and the final account) to the same strategy fed bar by bar through `on_bar`, on
//! real and simulated data, in both fill modes, with costs, and on bars that carry another
//! instrument id.

use kairos_backtests::data::{self, BarSeries};
use kairos_backtests::engine::{Backtest, BacktestConfig, BacktestResult};
use kairos_backtests::venue::FillAt;
use kairos_strategies::{Bar, BarRun, Context, Fill, InstrumentId, Registry, Strategy};

/// A strategy with its `on_bars` hidden, so the engine takes the bar-by-bar path.
struct PerBar(Box<dyn Strategy>);

impl Strategy for PerBar {
    fn warmup_bars(&self) -> usize {
        self.0.warmup_bars()
    }
    fn on_start(&mut self, ctx: &mut Context) {
        self.0.on_start(ctx)
    }
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        self.0.on_bar(ctx, bar)
    }
    fn on_fill(&mut self, ctx: &mut Context, fill: &Fill) {
        self.0.on_fill(ctx, fill)
    }
    fn on_stop(&mut self, ctx: &mut Context) {
        self.0.on_stop(ctx)
    }
}

/// Everything a run produced, printed: `{:?}` of an `f64` round-trips, so equal strings mean
/// equal bits.
fn fingerprint(r: &BacktestResult) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{} {}",
        r.equity,
        r.equity_time.iter().collect::<Vec<_>>(),
        r.trades,
        r.fills,
        r.portfolio,
        r.rejected_orders,
        r.unfilled_orders
    )
}

fn both_ways(series: &BarSeries, params: &[(&str, &str)], config: BacktestConfig) -> usize {
    let reg = Registry::with_builtins();
    let bt = Backtest::new(config);
    let fast = bt.run(std::slice::from_ref(series), &mut reg.build("sma_cross", params).unwrap());
    let slow =
        bt.run(std::slice::from_ref(series), &mut PerBar(reg.build("sma_cross", params).unwrap()));
    let (fast, slow) = (fast.unwrap(), slow.unwrap());
    assert_eq!(fast.equity.len(), series.len());
    assert!(
        fingerprint(&fast) == fingerprint(&slow),
        "{}: {params:?} {config:?}: the fast path differs from on_bar",
        series.source
    );
    fast.fills.len()
}

fn configs() -> Vec<BacktestConfig> {
    let base = BacktestConfig { commission: 0.0002, ..BacktestConfig::default() };
    vec![
        base,
        BacktestConfig { fill: FillAt::Close, ..base },
        BacktestConfig { slippage_bps: 3.0, fixed_fee: 1.5, cash: 250_000.0, ..base },
        BacktestConfig { lot_size: Some(0.01), ..base },
    ]
}

const PARAMS: [&[(&str, &str)]; 3] = [
    &[("fast", "10"), ("slow", "20")],
    &[("fast", "5"), ("slow", "50"), ("mode", "long_only")],
    &[("fast", "2"), ("slow", "3"), ("size", "0.5")],
];

#[test]
fn sma_cross_fast_path_matches_on_bar_on_real_data() {
    let Some(dir) = crate::common::bars_dir() else { return };
    for file in ["EURUSD.csv", "btc-perp-20211231-20220201_1m.csv", "sp500.csv.gz"] {
        let series = data::load(&dir.join(file)).unwrap();
        let mut fills = 0;
        for params in PARAMS {
            for config in configs() {
                fills += both_ways(&series, params, config);
            }
        }
        // The comparison means something only if the runs trade.
        assert!(fills > 100, "{file}: {fills} fills");
    }
}

#[test]
fn sma_cross_fast_path_matches_on_bar_on_simulated_data() {
    for seed in 1..=3 {
        let series = data::source(&format!("sim:{seed}:20000")).unwrap();
        for params in PARAMS {
            for config in configs() {
                both_ways(&series, params, config);
            }
        }
    }
}

#[test]
fn bars_labelled_with_another_instrument_are_relabelled_either_way() {
    let mut series = data::source("sim:9:5000").unwrap();
    let reference = data::source("sim:9:5000").unwrap();
    // Some bars carry another id (a hand-built series): the runs stop around them.
    for (i, b) in series.bars.iter_mut().enumerate() {
        if i % 997 < 3 {
            b.instrument = InstrumentId(3);
        }
    }
    let config = configs()[0];
    both_ways(&series, PARAMS[0], config);
    let reg = Registry::with_builtins();
    let bt = Backtest::new(config);
    let a = bt.run(&[series], &mut reg.build("sma_cross", PARAMS[0]).unwrap()).unwrap();
    let b = bt.run(&[reference], &mut reg.build("sma_cross", PARAMS[0]).unwrap()).unwrap();
    assert_eq!(fingerprint(&a), fingerprint(&b));
}

/// A strategy whose `on_bars` takes part of each run and acts only at the end of a run:
/// runs of any length, handed back runs and actions at the last bar all book correctly.
struct Lumpy {
    calls: usize,
    seen: usize,
}

impl Strategy for Lumpy {
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        self.seen += 1;
        if self.seen.is_multiple_of(50) {
            ctx.close_position(bar.instrument);
            let _ = ctx.buy(bar.instrument, kairos_strategies::OrderSize::Units(1.0));
        }
    }
    fn on_bars(&mut self, run: &mut BarRun<'_>) {
        self.calls += 1;
        // Runs are taken 1 to 7 bars at a time; the 40th is handed back, which turns the fast
        // path off for the rest of the backtest.
        if self.calls == 40 {
            return;
        }
        let bars = run.bars();
        let want = 1 + self.calls % 7;
        for (i, bar) in bars.iter().take(want).enumerate() {
            self.seen += 1;
            if self.seen.is_multiple_of(50) {
                let ctx = run.act_at(i);
                ctx.close_position(bar.instrument);
                let _ = ctx.buy(bar.instrument, kairos_strategies::OrderSize::Units(1.0));
                return;
            }
        }
        run.consume(want);
    }
}

#[test]
fn a_strategy_that_hands_runs_back_is_fed_bar_by_bar() {
    let series = data::source("sim:4:3000").unwrap();
    for config in configs() {
        let bt = Backtest::new(config);
        let mut strategy = Lumpy { calls: 0, seen: 0 };
        let lumpy = bt.run(std::slice::from_ref(&series), &mut strategy);
        // It was called until it handed a run back, and never after.
        assert_eq!(strategy.calls, 40);
        struct Plain(Lumpy);
        impl Strategy for Plain {
            fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
                self.0.on_bar(ctx, bar)
            }
        }
        let plain = bt.run(std::slice::from_ref(&series), &mut Plain(Lumpy { calls: 0, seen: 0 }));
        let (lumpy, plain) = (lumpy.unwrap(), plain.unwrap());
        assert!(lumpy.fills.len() > 50, "{}", lumpy.fills.len());
        assert_eq!(fingerprint(&lumpy), fingerprint(&plain), "{config:?}");
    }
}
