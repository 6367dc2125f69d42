//! Monte Carlo: reproducible from the seed whatever the threads; the trade order keeps the
//! compounded result and moves only the drawdown; a block as long as the run gives the run
//! itself back; bands are ordered and bad input is refused.

use kairos_backtests::data;
use kairos_backtests::engine::{Backtest, BacktestConfig, BacktestResult};
use kairos_backtests::montecarlo::{self, MonteCarlo, trade_returns};
use kairos_strategies::Registry;

fn run() -> BacktestResult {
    let series = [data::source("sim:21:6000").unwrap()];
    let mut s = Registry::with_builtins()
        .build("sma_cross", &[("fast", "8"), ("slow", "30"), ("mode", "long_short")])
        .unwrap();
    let config = BacktestConfig { commission: 0.0005, ..BacktestConfig::default() };
    Backtest::new(config).run(&series, &mut s).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[test]
fn the_same_seed_gives_the_same_bands_on_any_number_of_threads() {
    let r = run();
    assert!(r.trades.len() > 50, "{} trades", r.trades.len());
    let mc = MonteCarlo { runs: 300, seed: 9, block: None };
    let a = montecarlo::simulate(&r, &mc, 1).unwrap();
    let b = montecarlo::simulate(&r, &mc, 2).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.path, b.path);
    let c = montecarlo::simulate(&r, &MonteCarlo { seed: 10, ..mc }, 2).unwrap();
    assert_ne!(a.methods[1].final_equity, c.methods[1].final_equity, "another seed, other draws");
    let names: Vec<&str> = a.methods.iter().map(|m| m.name).collect();
    assert_eq!(names, ["trade_order", "trade_bootstrap", "return_bootstrap"]);
    for m in &a.methods {
        for b in [&m.final_equity, &m.return_pct, &m.max_drawdown_pct] {
            assert!(b.percentiles.windows(2).all(|w| w[0] <= w[1]), "{}: {:?}", m.name, b);
            assert!(b.percentiles.iter().all(|x| x.is_finite()));
        }
        assert!(m.max_drawdown_pct.percentiles[4] <= 0.0, "drawdowns are 0 or below");
        assert!((0.0..=100.0).contains(&m.loss_probability_pct));
    }
    // The fan chart's bands: ordered at every kept time, ending at the final-equity band.
    assert_eq!(a.path.len(), montecarlo::PATH_POINTS);
    assert!(a.path.iter().all(|(_, p)| p.windows(2).all(|w| w[0] <= w[1])));
    assert_eq!(a.path.last().unwrap().0, r.equity.len() - 1);
    let last = &a.path.last().unwrap().1;
    let rb = &a.methods[2].final_equity.percentiles;
    assert!(last.iter().zip(rb).all(|(x, y)| close(*x, *y)), "{last:?} vs {rb:?}");
}

#[test]
fn trade_order_moves_the_drawdown_not_the_compounded_result() {
    let r = run();
    let o = montecarlo::simulate(&r, &MonteCarlo { runs: 400, seed: 1, block: None }, 2).unwrap();
    let order = &o.methods[0];
    let cash = r.config.cash;
    let compounded = trade_returns(&r).iter().fold(cash, |e, x| e * (1.0 + x));
    for p in &order.final_equity.percentiles {
        assert!(close(*p, compounded), "{p} vs {compounded}");
    }
    assert_eq!(order.final_equity.actual_rank_pct, 50.0, "ties count half");
    let dd = &order.max_drawdown_pct.percentiles;
    assert!(dd[0] < dd[4], "orders differ in drawdown: {dd:?}");
    // The bootstrap with replacement spreads the result too.
    let boot = &o.methods[1].final_equity.percentiles;
    assert!(boot[0] < compounded && compounded < boot[4], "{boot:?} around {compounded}");
}

#[test]
fn one_block_as_long_as_the_run_gives_the_run_back() {
    let r = run();
    let n = r.equity.len() - 1;
    let o = montecarlo::simulate(&r, &MonteCarlo { runs: 20, seed: 3, block: Some(n) }, 1).unwrap();
    assert_eq!(o.block, n);
    let m = &o.methods[2];
    let last = *r.equity.last().unwrap() / r.equity[0] * r.config.cash;
    assert!(m.final_equity.percentiles.iter().all(|p| close(*p, last)));
    assert!(close(m.final_equity.actual, last));
    let dd = m.max_drawdown_pct.actual;
    assert!(m.max_drawdown_pct.percentiles.iter().all(|p| (p - dd).abs() < 1e-9), "{m:?}");
    assert!(dd < 0.0);
    // A block longer than the run is cut to it.
    let o = montecarlo::simulate(&r, &MonteCarlo { runs: 5, seed: 3, block: Some(10 * n) }, 1);
    assert_eq!(o.unwrap().block, n);
}

#[test]
fn runs_without_trades_or_simulations_are_handled() {
    let mut r = run();
    r.trades.clear();
    let o = montecarlo::simulate(&r, &MonteCarlo { runs: 10, seed: 0, block: Some(5) }, 1).unwrap();
    assert_eq!(o.methods.len(), 1, "no trades: the return bootstrap alone");
    let e = montecarlo::simulate(&r, &MonteCarlo { runs: 0, seed: 0, block: None }, 1);
    assert!(e.unwrap_err().to_string().contains("0 simulations"));
    r.equity.truncate(1);
    let e = montecarlo::simulate(&r, &MonteCarlo { runs: 10, seed: 0, block: None }, 1);
    assert!(e.unwrap_err().to_string().contains("fewer than two equity points"));
}
