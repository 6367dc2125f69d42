//! Property tests of the engine and the accounting, over random valid markets and a strategy
//! that trades at random (market, limit, stop and closing orders, unit and equity-fraction
//! sizes, cancels):
//!
//! - equity = cash + marked positions at every step, against a ledger kept from the fills;
//! - no fill outside its bar's low..high;
//! - no lookahead: cutting off or rewriting the future does not change any earlier decision;
//! - the same inputs give the same bits.

use kairos_backtests::data::BarSeries;
use kairos_backtests::engine::{Backtest, BacktestConfig, BacktestResult};
use kairos_backtests::venue::FillAt;
use kairos_strategies::{
    Bar, Context, Fill, Instrument, InstrumentId, OrderId, OrderKind, OrderRequest, OrderSize,
    Registry, Side, Strategy, TimeInForce, Timestamp,
};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Random valid bars from a seed: a random walk with gaps, wicks and volume.
fn market(seed: u64, n: usize, step_secs: i64, start: i64) -> Vec<Bar> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut close = 100.0 * (1.0 + rng.random::<f64>());
    (0..n)
        .map(|i| {
            let open = close * (1.0 + (rng.random::<f64>() - 0.5) * 0.01);
            close = open * (1.0 + (rng.random::<f64>() - 0.5) * 0.04);
            let high = open.max(close) * (1.0 + rng.random::<f64>() * 0.01);
            let low = open.min(close) * (1.0 - rng.random::<f64>() * 0.01);
            Bar {
                instrument: InstrumentId(0),
                ts: Timestamp::from_secs(start + i as i64 * step_secs),
                open,
                high,
                low,
                close,
                volume: (rng.random::<f64>() * 1000.0).round(),
            }
        })
        .collect()
}

fn series(bars: Vec<Bar>, symbol: &str) -> BarSeries {
    BarSeries {
        instrument: Instrument::new(symbol, "test"),
        bars,
        source: symbol.into(),
        simulated: false,
        time_format: None,
    }
}

/// Trades at random and checks the accounting against its own ledger at every bar.
struct Chaos {
    rng: ChaCha8Rng,
    cash: f64,
    qty: Vec<f64>,
    last: Vec<f64>,
    /// (time, request) of every order placed, for the lookahead test.
    decisions: Vec<(Timestamp, OrderRequest)>,
    /// (id, time) of every order placed.
    submitted: Vec<(OrderId, Timestamp)>,
    worst_mismatch: f64,
}

impl Chaos {
    fn new(seed: u64, cash: f64, instruments: usize) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            cash,
            qty: vec![0.0; instruments],
            last: vec![f64::NAN; instruments],
            decisions: Vec::new(),
            submitted: Vec::new(),
            worst_mismatch: 0.0,
        }
    }

    fn check(&mut self, ctx: &Context) {
        let marked: f64 =
            self.qty.iter().zip(&self.last).filter(|(q, _)| **q != 0.0).map(|(q, p)| q * p).sum();
        let scale = ctx.portfolio().initial_cash().abs() + marked.abs() + self.cash.abs();
        let m1 = (ctx.portfolio().cash() - self.cash).abs() / scale;
        let m2 = (ctx.equity() - (self.cash + marked)).abs() / scale;
        self.worst_mismatch = self.worst_mismatch.max(m1).max(m2);
        for (i, q) in self.qty.iter().enumerate() {
            assert_eq!(ctx.position(InstrumentId(i as u32)), *q, "position of instrument {i}");
        }
    }
}

impl Strategy for Chaos {
    fn on_fill(&mut self, _ctx: &mut Context, fill: &Fill) {
        self.cash -= fill.signed_quantity() * fill.price + fill.commission;
        self.qty[fill.instrument.index()] += fill.signed_quantity();
    }

    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        assert!(ctx.now() > bar.ts, "the clock is at the close of the bar being handled");
        self.last[bar.instrument.index()] = bar.close;
        self.check(ctx);
        let r: f64 = self.rng.random();
        if r < 0.35 {
            let side = if self.rng.random::<bool>() { Side::Buy } else { Side::Sell };
            let size = match self.rng.random_range(0..4u32) {
                0 => OrderSize::Units(self.rng.random_range(1..50u32) as f64),
                1 | 2 => OrderSize::EquityFraction(self.rng.random_range(0.05..1.0)),
                _ => OrderSize::ClosePosition,
            };
            let away = 1.0 + (self.rng.random::<f64>() - 0.5) * 0.06;
            let kind = match self.rng.random_range(0..3u32) {
                0 => OrderKind::Market,
                1 => OrderKind::Limit { price: bar.close * away },
                _ => OrderKind::Stop { price: bar.close * away },
            };
            let req = OrderRequest {
                instrument: bar.instrument,
                side,
                size,
                kind,
                tif: TimeInForce::Gtc,
            };
            if let Ok(id) = ctx.submit(req) {
                self.decisions.push((bar.ts, req));
                self.submitted.push((id, bar.ts));
            }
        } else if r < 0.40
            && let Some(o) = ctx.open_orders().first().map(|o| o.id)
        {
            ctx.cancel(o);
        }
    }
}

fn config(commission: f64, slippage: f64, fixed: f64, close: bool) -> BacktestConfig {
    BacktestConfig {
        cash: 10_000.0,
        commission,
        fixed_fee: fixed,
        slippage_bps: slippage,
        fill: if close { FillAt::Close } else { FillAt::NextOpen },
        lot_size: None,
    }
}

fn run(bars: &[BarSeries], seed: u64, cfg: BacktestConfig) -> (BacktestResult, Chaos) {
    let mut chaos = Chaos::new(seed, cfg.cash, bars.len());
    let r = Backtest::new(cfg).run(bars, &mut chaos).expect("run");
    (r, chaos)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn accounting_and_fills_hold(
        seed in any::<u64>(),
        n in 2usize..300,
        commission in 0.0f64..0.01,
        slippage in 0.0f64..50.0,
        fixed in 0.0f64..2.0,
        close in any::<bool>(),
    ) {
        let bars = market(seed, n, 60, 1_700_000_000);
        let (r, chaos) = run(&[series(bars.clone(), "A")], seed ^ 1, config(commission, slippage, fixed, close));
        prop_assert!(chaos.worst_mismatch < 1e-9, "equity/cash off by {} relative", chaos.worst_mismatch);
        // The recorded equity is cash + position marked at each close, replayed from the fills.
        let mut cash = 10_000.0;
        let mut qty = 0.0;
        let mut f = 0;
        for (i, b) in bars.iter().enumerate() {
            while f < r.fills.len() && r.fills[f].ts == b.ts {
                let fill = r.fills[f];
                prop_assert!(b.low <= fill.price && fill.price <= b.high,
                    "fill at {} outside bar {} low {} high {}", fill.price, b.ts, b.low, b.high);
                cash -= fill.signed_quantity() * fill.price + fill.commission;
                qty += fill.signed_quantity();
                f += 1;
            }
            let want = cash + qty * b.close;
            prop_assert!((r.equity[i] - want).abs() <= 1e-9 * (10_000.0 + (qty * b.close).abs()),
                "equity[{}] = {} but cash + marked position = {}", i, r.equity[i], want);
        }
        prop_assert_eq!(f, r.fills.len(), "every fill belongs to a bar");
        prop_assert!(n < 100 || r.fills.len() > 5, "the random strategy traded only {} times", r.fills.len());
    }

    #[test]
    fn no_lookahead(seed in any::<u64>(), n in 10usize..200, cut_frac in 0.1f64..0.9) {
        let bars = market(seed, n, 3600, 1_600_000_000);
        let k = ((n as f64) * cut_frac) as usize;
        let cut_ts = bars[k].ts;
        // Rewrite everything after bar k with another market.
        let mut rewritten = bars.clone();
        let other = market(seed.wrapping_add(7), n, 3600, 1_600_000_000);
        for i in k + 1..n {
            let scale = rewritten[k].close / other[k].close;
            let o = other[i];
            rewritten[i] = Bar { open: o.open * scale, high: o.high * scale, low: o.low * scale, close: o.close * scale, ..o };
        }
        for close in [false, true] {
            let cfg = config(0.001, 5.0, 0.0, close);
            let (a, ca) = run(&[series(bars.clone(), "A")], seed, cfg);
            let (b, cb) = run(&[series(rewritten.clone(), "A")], seed, cfg);
            let (c, cc) = run(&[series(bars[..=k].to_vec(), "A")], seed, cfg);
            let upto = |d: &[(Timestamp, OrderRequest)]| d.iter().filter(|(t, _)| *t <= cut_ts).copied().collect::<Vec<_>>();
            prop_assert_eq!(upto(&ca.decisions), upto(&cb.decisions));
            prop_assert_eq!(upto(&ca.decisions), upto(&cc.decisions));
            let fills_upto = |r: &BacktestResult| r.fills.iter().filter(|f| f.ts <= cut_ts).copied().collect::<Vec<_>>();
            prop_assert_eq!(fills_upto(&a), fills_upto(&b));
            prop_assert_eq!(fills_upto(&a), fills_upto(&c));
            prop_assert_eq!(&a.equity[..=k], &b.equity[..=k]);
            prop_assert_eq!(&a.equity[..=k], &c.equity[..]);
        }
        // The built-in strategies too.
        for name in ["sma_cross", "rsi_reversion", "bollinger_breakout"] {
            let reg = Registry::with_builtins();
            let params: [(&str, &str); 0] = [];
            let cfg = config(0.0005, 0.0, 0.0, false);
            let full = Backtest::new(cfg).run(&[series(bars.clone(), "A")], &mut reg.build(name, &params).unwrap()).unwrap();
            let cut = Backtest::new(cfg).run(&[series(bars[..=k].to_vec(), "A")], &mut reg.build(name, &params).unwrap()).unwrap();
            prop_assert_eq!(&full.equity[..=k], &cut.equity[..], "{} equity before the cut", name);
            let f: Vec<_> = full.fills.iter().filter(|f| f.ts <= cut_ts).copied().collect();
            prop_assert_eq!(f, cut.fills.clone(), "{} fills before the cut", name);
        }
    }

    #[test]
    fn same_inputs_same_bits(seed in any::<u64>(), n in 2usize..300) {
        let a = series(market(seed, n, 60, 1_700_000_000), "A");
        let b = series(market(seed ^ 0xabc, n, 90, 1_700_000_030), "B");
        let cfg = config(0.0007, 3.0, 0.1, false);
        let (r1, _) = run(&[a.clone(), b.clone()], seed, cfg);
        let (r2, _) = run(&[a, b], seed, cfg);
        let bits = |r: &BacktestResult| r.equity.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&r1), bits(&r2));
        prop_assert_eq!(&r1.fills, &r2.fills);
        prop_assert_eq!(&r1.trades, &r2.trades);
        prop_assert_eq!(serde_json::to_string(&r1.summary()).unwrap(), serde_json::to_string(&r2.summary()).unwrap());
    }

    #[test]
    fn merged_streams_are_time_ordered(seed in any::<u64>(), n in 2usize..200) {
        let a = series(market(seed, n, 60, 1_700_000_000), "A");
        let b = series(market(seed ^ 5, n, 45, 1_700_000_000), "B");
        let mut times: Vec<Timestamp> = a.bars.iter().chain(&b.bars).map(|b| b.ts).collect();
        times.sort();
        times.dedup();
        let (r, chaos) = run(&[a.clone(), b.clone()], seed, config(0.001, 0.0, 0.0, false));
        prop_assert_eq!(&r.equity_time, &times, "one equity point per distinct bar time, in order");
        prop_assert!(chaos.worst_mismatch < 1e-9);
        for f in &r.fills {
            let submitted = chaos.submitted.iter().find(|(id, _)| *id == f.order).map(|(_, t)| *t);
            prop_assert!(submitted.is_some_and(|t| t < f.ts), "fill {:?} not after its order ({:?})", f, submitted);
            let own = if f.instrument.0 == 0 { &a } else { &b };
            let bar = own.bars.iter().find(|x| x.ts == f.ts);
            prop_assert!(bar.is_some_and(|x| x.contains(f.price)), "fill {:?} not inside a bar of its instrument", f);
        }
    }
}
