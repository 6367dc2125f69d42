//! Property tests: timers fire in time order; paper fills never exceed the traded volume
//! that caused them, nor the queue-position model's allowance.

use std::collections::BTreeMap;

use kairos_engine::Engine;
use kairos_engine::paper::PaperVenue;
use kairos_strategies::{
    Bar, Context, Instrument, OrderRequest, OrderSize, Side, Strategy, Timer, TimerId, Timestamp,
};
use proptest::prelude::*;

use crate::common::*;

/// Sets timers at given offsets from now (some in the past), from `on_start` and from bars,
/// cancels some, and records when each fired.
struct Timers {
    plan: Vec<(i64, bool)>,
    next: usize,
    set: Vec<(TimerId, Timestamp, Timestamp, bool)>,
    fired: Vec<(Timestamp, Timer)>,
}

impl Timers {
    fn set_some(&mut self, ctx: &mut Context, n: usize) {
        for _ in 0..n {
            let Some(&(offset, cancel)) = self.plan.get(self.next) else { return };
            self.next += 1;
            let at = Timestamp(ctx.now().0.saturating_add(offset).max(0));
            let id = ctx.schedule(at, self.next as u64);
            if cancel {
                ctx.cancel_timer(id);
            }
            self.set.push((id, at, ctx.now(), cancel));
        }
    }
}

impl Strategy for Timers {
    fn on_start(&mut self, ctx: &mut Context) {
        ctx.set_now(Timestamp(0));
        self.set_some(ctx, 5);
    }
    fn on_bar(&mut self, ctx: &mut Context, _bar: &Bar) {
        self.set_some(ctx, 2);
    }
    fn on_timer(&mut self, ctx: &mut Context, timer: &Timer) {
        self.fired.push((ctx.now(), *timer));
        self.set_some(ctx, 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn timers_fire_in_time_order_and_never_early_or_late(
        plan in proptest::collection::vec((-5_000i64..200_000, proptest::bool::weighted(0.2)), 0..60),
        bars in 1usize..80,
    ) {
        let inst = Instrument::new("X", "test");
        let mut e = Engine::historical(Context::new(vec![inst], 1000.0), PaperVenue::new(instant()));
        let mut s = Timers { plan, next: 0, set: Vec::new(), fired: Vec::new() };
        e.start(&mut s);
        let step = 10_000i64;
        for i in 0..bars as i64 {
            let bar = Bar { instrument: BTC, ts: Timestamp(i * step), open: 1.0, high: 1.0, low: 1.0, close: 1.0, volume: 1.0 };
            e.bar(&mut s, &bar, Timestamp((i + 1) * step));
        }
        e.stop(&mut s);
        let end = Timestamp(bars as i64 * step);
        // In time order (a timer set for a moment already past fires at once); ties among
        // timers due at the same time in the order they were set.
        for w in s.fired.windows(2) {
            prop_assert!(w[0].0 <= w[1].0, "{:?} then {:?}", w[0], w[1]);
            if w[0].1.at == w[1].1.at {
                prop_assert!(w[0].1.id < w[1].1.id, "{:?} then {:?}", w[0], w[1]);
            }
        }
        let fired: BTreeMap<TimerId, Timestamp> = s.fired.iter().map(|(now, t)| (t.id, *now)).collect();
        for (id, at, set_at, cancelled) in &s.set {
            match fired.get(id) {
                Some(now) => {
                    prop_assert!(!cancelled, "cancelled timer {id:?} fired");
                    // At its time, or at once when set for a moment already past.
                    prop_assert_eq!(*now, (*at).max(*set_at), "timer {:?}", id);
                }
                None => prop_assert!(*cancelled || *at > end, "timer {:?} at {:?} (run ends {:?}) never fired", id, at, end),
            }
        }
    }

    #[test]
    fn paper_fills_never_exceed_the_traded_volume_or_the_queue_allowance(
        orders in proptest::collection::vec((any::<bool>(), 1u32..6, 1u32..40), 1..6),
        trades in proptest::collection::vec((0u32..12, 1u32..40, any::<bool>()), 0..80),
        depth in proptest::collection::vec(1u32..30, 6),
    ) {
        let mut e = engine(instant());
        let mut s = Script::default();
        e.start(&mut s);
        // A static book: bids 99.0 .. 99.5, asks 100.0 .. 100.5 (sizes in tenths).
        let bid_px = ["99.00", "99.10", "99.20", "99.30", "99.40", "99.50"];
        let ask_px = ["100.00", "100.10", "100.20", "100.30", "100.40", "100.50"];
        let sz: Vec<String> = depth.iter().map(|d| format!("{}", *d as f64 / 10.0)).collect();
        let bids: Vec<(&str, &str)> = bid_px.iter().zip(&sz).map(|(p, q)| (*p, q.as_str())).collect();
        let asks: Vec<(&str, &str)> = ask_px.iter().zip(&sz).map(|(p, q)| (*p, q.as_str())).collect();
        snapshot(&mut e, &mut s, ms(1), &bids, &asks);
        // Resting orders only (never marketable on this book).
        let mut placed = Vec::new();
        for (buy, lvl, qty) in &orders {
            let lvl = (*lvl as usize).min(5);
            let (side, price, queue) = if *buy {
                (Side::Buy, 99.0 + 0.1 * lvl as f64, depth[lvl] as f64 / 10.0)
            } else {
                (Side::Sell, 100.0 + 0.1 * lvl as f64, depth[lvl] as f64 / 10.0)
            };
            let q = *qty as f64 / 10.0;
            s.send.push(OrderRequest::limit(BTC, side, OrderSize::Units(q), price));
            placed.push((side, (price * 100.0).round() / 100.0, q, queue));
        }
        send(&mut e, &mut s);
        // Trades at prices 98.9 .. 100.6; aggressor sells hit our buys, buys lift our sells.
        let mut printed = Vec::new();
        for (k, (px, size, sell)) in trades.iter().enumerate() {
            let price = if *sell { 98.9 + 0.1 * *px as f64 / 2.0 } else { 100.0 + 0.1 * *px as f64 / 2.0 };
            let price = (price * 100.0).round() / 100.0;
            let size = *size as f64 / 10.0;
            let aggressor = if *sell { Side::Sell } else { Side::Buy };
            trade(&mut e, &mut s, ms(10 + k as i64), price, size, aggressor);
            printed.push((ms(10 + k as i64), price, size, aggressor));
        }
        // Per trade: our fills at that moment are at most its size.
        for (ts, _, size, _) in &printed {
            let ours: f64 = s.fills.iter().filter(|f| f.ts == *ts).map(|f| f.quantity).sum();
            prop_assert!(ours <= size + 1e-9, "filled {ours} on a trade of {size}");
        }
        // Per order: no more than asked, only from trades at or through its price, and no
        // more than the volume beyond the queue ahead at its price plus what traded through.
        for (id, (side, price, qty, queue)) in s.sent.iter().zip(&placed) {
            let filled: f64 = s.fills.iter().filter(|f| f.order == *id).map(|f| f.quantity).sum();
            prop_assert!(filled <= qty + 1e-9);
            for f in s.fills.iter().filter(|f| f.order == *id) {
                prop_assert_eq!(f.price, *price, "a maker fill is at the order's price");
            }
            let hits = |t: &(Timestamp, f64, f64, Side)| t.3 == side.opposite();
            let at: f64 = printed.iter().filter(|t| hits(t) && t.1 == *price).map(|t| t.2).sum();
            let through: f64 = printed.iter().filter(|t| hits(t) && match side {
                Side::Buy => t.1 < *price,
                Side::Sell => t.1 > *price,
            }).map(|t| t.2).sum();
            let allowance = (at - queue).max(0.0) + through;
            prop_assert!(filled <= allowance + 1e-9, "order {id:?} filled {filled}, allowance {allowance} (queue {queue}, at {at}, through {through})");
        }
        prop_assert!(e.ctx.portfolio().cash().is_finite());
    }
}
