//! Walk-forward: test windows never overlap their train windows (nor each other); a window's
//! choice depends only on its train window; each test window is the single run of the chosen
//! parameters; the stitched curve compounds the windows.

use kairos_backtests::data::{self, BarSeries};
use kairos_backtests::engine::{Backtest, BacktestConfig};
use kairos_backtests::sweep::walk::time_line;
use kairos_backtests::sweep::{Axis, Search, Select, Sweep, WalkForward};
use kairos_strategies::Registry;
use proptest::prelude::*;

fn sweep(registry: &Registry) -> Sweep {
    Sweep::new(
        registry,
        "sma_cross",
        vec![("mode".into(), "long_short".into())],
        ["fast=2..20:3", "slow=10..60:10"].iter().map(|s| Axis::parse(s).unwrap()).collect(),
        Some("fast < slow"),
        Search::Grid,
        None,
        BacktestConfig { commission: 0.0005, ..BacktestConfig::default() },
    )
    .unwrap()
}

fn select() -> Select {
    Select { metric: "return_pct".into(), ascending: false }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every window: train before test, no shared position; test windows in order, disjoint,
    /// inside the data; as many windows as fit whole.
    #[test]
    fn test_windows_never_overlap_train_windows(
        train in 1usize..200, test in 1usize..100, extra in 0usize..100,
        anchored in any::<bool>(), len in 0usize..2000,
    ) {
        let wf = WalkForward { train, test, step: test + extra, anchored };
        match wf.windows(len) {
            Err(_) => prop_assert!(train + test > len),
            Ok(ws) => {
                prop_assert_eq!(ws.len(), (len - train - test) / (test + extra) + 1);
                for (i, w) in ws.iter().enumerate() {
                    prop_assert_eq!(w.index, i);
                    prop_assert!(w.train_start < w.train_end);
                    prop_assert!(w.train_end <= w.test_start, "train reaches into test");
                    prop_assert!(w.test_start < w.test_end && w.test_end <= len);
                    prop_assert_eq!(w.test_end - w.test_start, test);
                    if anchored { prop_assert_eq!(w.train_start, 0) }
                    else { prop_assert_eq!(w.train_end - w.train_start, train) }
                    if i > 0 {
                        prop_assert!(ws[i - 1].test_end <= w.test_start, "test windows overlap");
                    }
                }
            }
        }
    }
}

/// Over real runs: each window's train data ends before its test data starts, the stitched
/// curve has one point per test time, in order, and compounds the windows' returns.
#[test]
fn a_walk_forward_stitches_its_test_windows() {
    let registry = Registry::with_builtins();
    let sw = sweep(&registry);
    let plan = sw.plan().unwrap();
    let series = [data::source("sim:11:5000").unwrap()];
    let wf = WalkForward::parse("train=1500,test=700").unwrap();
    let r = sw.walk_forward(&registry, &plan, &series, &wf, &select(), 2, &|_| {}).unwrap();
    assert_eq!(r.windows.len(), 5);
    assert_eq!(r.untested, 5000 - 1500 - 5 * 700);
    let line = time_line(&series);
    let mut growth = 1.0;
    for w in &r.windows {
        assert!(w.train_span.1 < w.test_span.0, "window {}: train reaches test", w.window.index);
        assert_eq!(w.test_span, (line[w.window.test_start], line[w.window.test_end - 1]));
        let best = w.best.as_ref().expect("a combination scores on 1,500 bars");
        assert_eq!(best.summary.bars, 1500, "in-sample on the train window alone");
        let test = w.test.as_ref().unwrap();
        assert_eq!(test.bars, 700, "scored on the test window alone");
        assert!(w.warmup > 0, "sma_cross warms up");
        growth *= test.equity_final / BacktestConfig::default().cash;
    }
    let times: Vec<_> = r.oos.equity_time.iter().collect();
    assert_eq!(times.len(), 5 * 700);
    assert_eq!(times[0], line[1500]);
    assert!(times.windows(2).all(|t| t[0] < t[1]), "one point per time, in order");
    assert_eq!(r.oos_window.len(), times.len());
    let total = r.oos_summary.equity_final / BacktestConfig::default().cash;
    assert!((total - growth).abs() < 1e-9 * growth, "stitched {total} vs compounded {growth}");
    assert_eq!(r.oos_summary.bars, 5 * 700);
    assert!(r.oos_summary.num_trades > 0);
    assert_eq!(
        r.oos_summary.num_trades,
        r.windows.iter().map(|w| w.test.as_ref().unwrap().num_trades).sum::<usize>()
    );
    assert!(r.in_sample_mean("return_pct").is_some());
}

/// A window's choice is made on its train window alone: scrambling every bar after it leaves
/// the choice and its in-sample figures as they were; the test figures are those of the
/// chosen parameters run alone over the warm-up and test bars.
#[test]
fn a_window_chooses_from_its_train_window_alone() {
    let registry = Registry::with_builtins();
    let sw = sweep(&registry);
    let plan = sw.plan().unwrap();
    let series = data::source("sim:5:4000").unwrap();
    let wf = WalkForward::parse("train=2000,test=1000").unwrap();
    let run = |s: &BarSeries| {
        sw.walk_forward(&registry, &plan, std::slice::from_ref(s), &wf, &select(), 2, &|_| {})
            .unwrap()
    };
    let a = run(&series);
    let mut future = series.clone();
    // A different future after the first train window: prices from another seed.
    let other = data::source("sim:99:4000").unwrap();
    for (b, o) in future.bars[2000..].iter_mut().zip(&other.bars[2000..]) {
        *b = kairos_strategies::Bar { ts: b.ts, ..*o };
    }
    let b = run(&future);
    let (wa, wb) = (&a.windows[0], &b.windows[0]);
    let (ba, bb) = (wa.best.as_ref().unwrap(), wb.best.as_ref().unwrap());
    assert_eq!(ba.combination, bb.combination, "the choice moved with future data");
    assert_eq!(ba.summary.return_pct.to_bits(), bb.summary.return_pct.to_bits());
    assert_ne!(
        wa.test.as_ref().unwrap().return_pct.to_bits(),
        wb.test.as_ref().unwrap().return_pct.to_bits(),
        "the test window does see its own (changed) bars"
    );

    // The test window is the single run of the chosen parameters over warm-up + test bars.
    let w = &a.windows[1];
    let mut strategy =
        registry.build("sma_cross", &sw.params(w.best.as_ref().unwrap().combination)).unwrap();
    let from = w.window.test_start - w.warmup;
    let alone = BarSeries { bars: series.bars[from..w.window.test_end].to_vec(), ..series.clone() };
    let single = Backtest::new(sw.config).run(&[alone], &mut strategy).unwrap();
    let test = w.test.as_ref().unwrap();
    assert_eq!(test.equity_final.to_bits(), single.equity.last().unwrap().to_bits());
    assert_eq!(w.warmup, strategy_warmup(&registry, &sw, w.best.as_ref().unwrap().combination));
}

fn strategy_warmup(registry: &Registry, sw: &Sweep, k: u64) -> usize {
    use kairos_strategies::Strategy;
    registry.build("sma_cross", &sw.params(k)).unwrap().warmup_bars()
}

/// A metric no combination defines leaves every window flat, and a metric that is not a
/// statistic is refused by name.
#[test]
fn unscored_windows_stay_flat_and_bad_metrics_are_named() {
    let registry = Registry::with_builtins();
    let sw = sweep(&registry);
    let plan = sw.plan().unwrap();
    let series = [data::source("sim:3:600").unwrap()];
    let wf = WalkForward::parse("train=200,test=100").unwrap();
    let bad = Select { metric: "sharp".into(), ascending: false };
    let e = sw.walk_forward(&registry, &plan, &series, &wf, &bad, 1, &|_| {}).unwrap_err();
    assert!(e.to_string().contains("`sharp` is not a statistic"), "{e}");
    // Too little data for one window.
    let long = WalkForward::parse("train=500,test=200").unwrap();
    let e = sw.walk_forward(&registry, &plan, &series, &long, &select(), 1, &|_| {}).unwrap_err();
    assert!(e.to_string().contains("the data has 600"), "{e}");
    // On 8 bars no average of 10 or more is ready: no combination trades, the Sharpe ratio is
    // undefined everywhere, and every test window stays in cash.
    let short = WalkForward::parse("train=8,test=100").unwrap();
    let sharpe = Select { metric: "sharpe".into(), ascending: false };
    let r = sw.walk_forward(&registry, &plan, &series, &short, &sharpe, 1, &|_| {}).unwrap();
    assert_eq!(r.windows.len(), 5);
    assert!(r.windows.iter().all(|w| w.best.is_none() && w.test.is_none()));
    assert_eq!(r.oos.equity.len(), 500);
    assert!(r.oos.equity.iter().all(|e| *e == sw.config.cash));
    assert_eq!(r.oos_summary.num_trades, 0);
}
