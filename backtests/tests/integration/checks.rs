//! The bias checks catch strategies that peek or do not repeat, and pass the built-ins.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kairos_backtests::checks::{self, Cut};
use kairos_backtests::data::{self, BarSeries};
use kairos_backtests::engine::BacktestConfig;
use kairos_strategies::{
    Bar, Context, InstrumentId, OrderSize, Params, Registry, SharedSeries, Strategy, StrategyInfo,
};

/// Buys when the next bar's close is higher, sells when lower: it reads the future through
/// the shared closes a sweep offers (and trades nothing without them).
#[derive(Default)]
struct PeeksAtShared {
    closes: Option<Arc<[f64]>>,
    i: usize,
}

impl Strategy for PeeksAtShared {
    fn share(&mut self, shared: &SharedSeries) {
        self.closes = shared.closes(InstrumentId(0)).map(Arc::from);
    }
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        let i = self.i;
        self.i += 1;
        let Some(next) = self.closes.as_ref().and_then(|c| c.get(i + 1)) else { return };
        trade_on(ctx, bar, *next);
    }
}

fn trade_on(ctx: &mut Context, bar: &Bar, next: f64) {
    let pos = ctx.position(bar.instrument);
    if next > bar.close && pos <= 0.0 {
        ctx.close_position(bar.instrument);
        ctx.buy(bar.instrument, OrderSize::EquityFraction(0.5)).ok();
    } else if next < bar.close && pos > 0.0 {
        ctx.close_position(bar.instrument);
    }
}

/// Trades on a counter kept between runs (a `static`): the second run is not the first.
struct KeepsState;

static RUNS: AtomicU64 = AtomicU64::new(0);

impl Strategy for KeepsState {
    fn on_start(&mut self, _ctx: &mut Context) {
        RUNS.fetch_add(1, Ordering::SeqCst);
    }
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        let k = RUNS.load(Ordering::SeqCst);
        if (bar.ts.0 / 60_000_000_000 + k as i64) % 97 == 0 {
            ctx.close_position(bar.instrument);
            ctx.buy(bar.instrument, OrderSize::EquityFraction(0.5)).ok();
        }
    }
}

fn sim() -> Vec<BarSeries> {
    vec![data::source("sim:21:4000").unwrap()]
}

/// A registry with the built-ins and the test's strategies, as a user crate registers its own.
fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    let info = |name, build| StrategyInfo { name, description: "test", params: vec![], build };
    fn peeks(_: &Params) -> kairos_strategies::Result<Box<dyn Strategy>> {
        Ok(Box::new(PeeksAtShared::default()))
    }
    fn keeps(_: &Params) -> kairos_strategies::Result<Box<dyn Strategy>> {
        Ok(Box::new(KeepsState))
    }
    r.register(info("peeks_at_shared", peeks)).unwrap();
    r.register(info("keeps_state", keeps)).unwrap();
    r
}

fn lookahead(name: &str, params: &[(&str, &str)], series: &[BarSeries]) -> Vec<Cut> {
    let r = registry();
    let build = || Ok(r.build(name, params)?);
    checks::lookahead(BacktestConfig::default(), series, &build, 8).unwrap()
}

#[test]
fn the_lookahead_check_catches_a_strategy_reading_shared_series_ahead() {
    let cuts = lookahead("peeks_at_shared", &[], &sim());
    assert_eq!(cuts.len(), 16, "8 cuts, as a backtest and with shared series");
    assert!(
        cuts.iter().filter(|c| !c.shared).all(|c| c.divergence.is_none()),
        "it cannot peek without them"
    );
    let caught: Vec<_> = cuts.iter().filter(|c| c.shared && c.divergence.is_some()).collect();
    // At a cut where the removed close would not have changed its mind, nothing differs.
    assert!(caught.len() >= 2, "caught at {} of 8 cuts", caught.len());
    for c in caught {
        let d = c.divergence.as_ref().unwrap();
        // The decision that changed is the last kept bar's, whose next close the cut removed,
        // made at that bar's close.
        assert_eq!(d.point + 1, c.points, "{d:?}");
        assert!(d.time > c.at && d.what.contains("with the full data"), "{d:?}");
    }
}

#[test]
fn the_built_in_strategies_pass_the_lookahead_check() {
    let mut series = vec![sim()];
    if let Some(dir) = crate::common::bars_dir() {
        series.push(vec![data::load(dir.join("btc-perp-20211231-20220201_1m.csv")).unwrap()]);
    }
    for s in &series {
        for (name, params) in [
            ("sma_cross", vec![("fast", "5"), ("slow", "30")]),
            ("rsi_reversion", vec![]),
            ("bollinger_breakout", vec![]),
        ] {
            let cuts = lookahead(name, &params, s);
            assert!(cuts.iter().all(|c| c.divergence.is_none()), "{name}: {cuts:?}");
            assert!(cuts.iter().any(|c| c.fills > 0), "{name} traded before some cut");
        }
    }
}

#[test]
fn the_determinism_check_passes_the_built_ins_and_catches_state_kept_between_runs() {
    let r = registry();
    let series = sim();
    for name in ["sma_cross", "rsi_reversion", "bollinger_breakout"] {
        let build = || Ok(r.build::<&str, &str>(name, &[])?);
        let reps = checks::determinism(BacktestConfig::default(), &series, &build).unwrap();
        assert_eq!(reps.len(), 2);
        assert!(reps.iter().all(|x| x.divergence.is_none()), "{name}: {reps:?}");
    }
    let build = || Ok(r.build::<&str, &str>("keeps_state", &[])?);
    let reps = checks::determinism(BacktestConfig::default(), &series, &build).unwrap();
    assert!(reps.iter().all(|x| x.divergence.is_some()), "{reps:?}");
    assert!(reps[0].fills > 0);
}
