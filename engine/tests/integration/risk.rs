//! The risk engine around the paper venue: every rule refuses with its name, the breakers
//! move the trading state, the kill switch halts within one event, and the state survives a
//! restart.

use kairos_engine::paper::PaperVenue;
use kairos_engine::risk::{Risk, RiskLimits, RiskState, TradingState};
use kairos_engine::{Engine, Execution};
use kairos_strategies::{
    Command, Context, Instrument, Modification, Order, OrderId, OrderRequest, OrderSize,
    OrderUpdate, RejectRule, RiskRule, Side,
};

use crate::common::*;

type RiskEngine = Engine<Risk<PaperVenue>>;

fn risk_engine(limits: RiskLimits) -> RiskEngine {
    let btc = Instrument::new("BTCUSDT", "paper").with_tick_size(0.01).with_lot_size(0.001);
    let eth = Instrument::new("ETHUSDT", "paper").with_tick_size(0.01).with_lot_size(0.001);
    let ctx = Context::new(vec![btc, eth], 100_000.0);
    let risk = Risk::new(PaperVenue::new(instant()), limits, &ctx).expect("valid limits");
    Engine::historical(ctx, risk)
}

fn limit(side: Side, qty: f64, price: f64) -> OrderRequest {
    OrderRequest::limit(BTC, side, OrderSize::Units(qty), price)
}

fn market(side: Side, qty: f64) -> OrderRequest {
    OrderRequest::market(BTC, side, OrderSize::Units(qty))
}

/// The book at `mid` (bid 0.5 below, ask 0.5 above), deep enough for every order here.
fn book_at(e: &mut RiskEngine, s: &mut Script, t: i64, mid: f64) {
    let bid = format!("{:.2}", mid - 0.5);
    let ask = format!("{:.2}", mid + 0.5);
    snapshot(e, s, ms(t), &[(&bid, "1000")], &[(&ask, "1000")]);
}

/// Sends `r` and returns its order's first update (accepted or rejected).
fn try_send(e: &mut RiskEngine, s: &mut Script, r: OrderRequest) -> OrderUpdate {
    s.send.push(r);
    send(e, s);
    let id = *s.sent.last().unwrap();
    s.events.iter().find(|ev| ev.order == id).map(|ev| ev.update.clone()).expect("an answer")
}

fn refused_by(u: &OrderUpdate) -> Option<(&'static str, String)> {
    match u {
        OrderUpdate::Rejected(r) | OrderUpdate::ModifyRejected(r) => match r.rule {
            RejectRule::Risk(rule) => Some((rule.name(), r.reason.to_string())),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn every_rule_refuses_with_its_name_and_the_numbers() {
    let limits = RiskLimits {
        max_order_notional: Some(5_000.0),
        max_position: [("BTCUSDT".to_string(), 30.0)].into(),
        max_total_notional: Some(4_000.0),
        price_band_bps: Some(200.0),
        max_orders_per_s: Some(3),
        max_orders_per_min: Some(6),
        ..RiskLimits::default()
    };
    let mut e = risk_engine(limits);
    let mut s = Script::default();
    e.start(&mut s);

    // No price yet: nothing to check the order against.
    let (rule, why) = refused_by(&try_send(&mut e, &mut s, market(Side::Buy, 1.0))).unwrap();
    assert_eq!(rule, "price_band");
    assert!(why.contains("no price for BTCUSDT"), "{why}");

    book_at(&mut e, &mut s, 1, 100.0);
    // A fat finger: 110 is 1000 bps from the mid of 100.
    let (rule, why) = refused_by(&try_send(&mut e, &mut s, limit(Side::Buy, 1.0, 110.0))).unwrap();
    assert_eq!(rule, "price_band");
    assert!(why.contains("1000.0 bps") && why.contains("price_band_bps 200"), "{why}");
    // 60 units at 99 is 5,940, above 5,000.
    let (rule, why) = refused_by(&try_send(&mut e, &mut s, limit(Side::Buy, 60.0, 99.0))).unwrap();
    assert_eq!(rule, "max_order_notional");
    assert!(why.contains("5940.00") && why.contains("5000"), "{why}");

    // Working orders count: 25 resting, then 10 more would make 35 > 30.
    book_at(&mut e, &mut s, 2_000, 100.0);
    assert_eq!(try_send(&mut e, &mut s, limit(Side::Buy, 25.0, 99.0)), OrderUpdate::Accepted);
    let (rule, why) = refused_by(&try_send(&mut e, &mut s, limit(Side::Buy, 10.0, 99.0))).unwrap();
    assert_eq!(rule, "max_position");
    assert!(why.contains("working 25") && why.contains("max_position 30"), "{why}");
    // The sell side is another worst case: selling 10 is within it.
    assert_eq!(try_send(&mut e, &mut s, limit(Side::Sell, 10.0, 101.0)), OrderUpdate::Accepted);

    // Rates, in event time: two orders went through at 2 s (refused ones do not count); a
    // third passes, a fourth within the second is refused.
    assert_eq!(try_send(&mut e, &mut s, limit(Side::Buy, 1.0, 99.0)), OrderUpdate::Accepted);
    let (rule, why) = refused_by(&try_send(&mut e, &mut s, limit(Side::Buy, 1.0, 99.0))).unwrap();
    assert_eq!(rule, "order_rate", "{why}");
    assert!(why.contains("in the last second (max_orders_per_s 3)"), "{why}");
    // Three more, each in a second of its own, make six in the minute; a seventh is refused.
    for t in [3_500, 5_000, 6_500] {
        book_at(&mut e, &mut s, t, 100.0);
        assert_eq!(try_send(&mut e, &mut s, limit(Side::Buy, 1.0, 99.0)), OrderUpdate::Accepted);
    }
    let (rule, why) = refused_by(&try_send(&mut e, &mut s, limit(Side::Buy, 1.0, 99.0))).unwrap();
    assert_eq!(rule, "order_rate");
    assert!(why.contains("in the last minute (max_orders_per_min 6)"), "{why}");
    // A minute after the first ones, the window has room again.
    book_at(&mut e, &mut s, 62_500, 100.0);
    assert_eq!(try_send(&mut e, &mut s, limit(Side::Sell, 1.0, 101.0)), OrderUpdate::Accepted);

    // A modification is checked as the order it would leave.
    let resting = s.sent[3];
    e.ctx.modify(resting, Modification { price: Some(150.0), quantity: None }).unwrap();
    e.run_pending(&mut s);
    let last = s.events.iter().rev().find(|ev| ev.order == resting).unwrap();
    let (rule, _) = refused_by(&last.update).expect("a refused modification");
    assert_eq!(rule, "price_band");

    // Cancels always pass.
    assert!(e.ctx.cancel(resting));
    e.run_pending(&mut s);
    assert_eq!(s.updates_of(resting).last().unwrap(), "Cancelled");

    let counts: Vec<(&str, u64)> =
        e.exec.refused().filter(|(_, n)| *n > 0).map(|(r, n)| (r.name(), n)).collect();
    assert!(counts.contains(&("price_band", 3)), "{counts:?}");
    assert!(counts.contains(&("order_rate", 2)), "{counts:?}");
}

#[test]
fn the_total_notional_counts_every_instrument() {
    let limits = RiskLimits { max_total_notional: Some(3_000.0), ..RiskLimits::default() };
    let mut e = risk_engine(limits);
    let mut s = Script::default();
    e.start(&mut s);
    book_at(&mut e, &mut s, 1, 100.0);
    assert_eq!(try_send(&mut e, &mut s, market(Side::Buy, 20.0)), OrderUpdate::Accepted);
    // 20 at ~100 held; 11 more makes 3,100.
    let (rule, why) = refused_by(&try_send(&mut e, &mut s, market(Side::Buy, 11.0))).unwrap();
    assert_eq!(rule, "max_total_notional");
    assert!(why.contains("above max_total_notional 3000"), "{why}");
    // Selling shrinks it, and passes.
    assert_eq!(try_send(&mut e, &mut s, market(Side::Sell, 5.0)), OrderUpdate::Accepted);
}

#[test]
fn a_request_that_skips_the_context_is_still_checked() {
    let mut e = risk_engine(RiskLimits::default());
    let mut s = Script::default();
    e.start(&mut s);
    book_at(&mut e, &mut s, 1, 100.0);
    // Straight to the execution client, as a buggy runtime or plugin might: a NaN size.
    let bad = Order::new(OrderId(99), ms(1), market(Side::Buy, f64::NAN));
    let mut reports = kairos_engine::Reports::new(true);
    e.exec.command(&mut e.ctx, &Command::Submit(bad), &mut reports);
    let refused: Vec<_> = e.exec.refused().filter(|(_, n)| *n > 0).collect();
    assert_eq!(refused, vec![(RiskRule::InvalidOrder, 1)]);
    assert_eq!(e.exec.inner.working(), 0);
}

#[test]
fn breakers_move_the_state_and_the_daily_one_clears_the_next_day() {
    let limits = RiskLimits {
        reduce_daily_loss: Some(50.0),
        max_daily_loss: Some(150.0),
        ..RiskLimits::default()
    };
    let mut e = risk_engine(limits);
    let mut s = Script::default();
    e.start(&mut s);
    book_at(&mut e, &mut s, 1, 100.0);
    // 10 bought at the ask (100.5): equity 100,000 - 5 (half the spread on 10).
    assert_eq!(try_send(&mut e, &mut s, market(Side::Buy, 10.0)), OrderUpdate::Accepted);
    assert_eq!(e.exec.trading_state(), TradingState::Active);
    // A resting sell far above: it shrinks the position, so REDUCING keeps it.
    assert_eq!(try_send(&mut e, &mut s, limit(Side::Sell, 4.0, 101.5)), OrderUpdate::Accepted);
    let resting = *s.sent.last().unwrap();

    // The mid falls to 95: the loss is 10 * 5 + 5 = 55.
    book_at(&mut e, &mut s, 1_000, 95.0);
    assert_eq!(e.exec.trading_state(), TradingState::Reducing);
    let (rule, why) = refused_by(&try_send(&mut e, &mut s, market(Side::Buy, 1.0))).unwrap();
    assert_eq!(rule, "reducing");
    assert!(why.contains("reduce_daily_loss 50.00"), "{why}");
    // Selling more than the position would flip it: refused too.
    let (rule, _) = refused_by(&try_send(&mut e, &mut s, market(Side::Sell, 30.0))).unwrap();
    assert_eq!(rule, "reducing");
    // Selling 2 shrinks it (the 4 resting count towards the worst case: 10 - 4 - 2 = 4).
    assert_eq!(try_send(&mut e, &mut s, market(Side::Sell, 2.0)), OrderUpdate::Accepted);
    assert_eq!(s.updates_of(resting), vec!["Accepted"]);

    // The mid falls to 80: HALTED, and the resting order is cancelled.
    book_at(&mut e, &mut s, 2_000, 80.0);
    assert_eq!(e.exec.trading_state(), TradingState::Halted);
    assert_eq!(s.updates_of(resting), vec!["Accepted", "Cancelled"]);
    let (rule, why) = refused_by(&try_send(&mut e, &mut s, market(Side::Sell, 1.0))).unwrap();
    assert_eq!(rule, "halted");
    assert!(why.contains("max_daily_loss 150.00"), "{why}");

    // The next UTC day starts from the equity then: ACTIVE again.
    book_at(&mut e, &mut s, 86_400_000 + 1, 80.0);
    assert_eq!(e.exec.trading_state(), TradingState::Active);
    assert_eq!(try_send(&mut e, &mut s, market(Side::Sell, 1.0)), OrderUpdate::Accepted);
    let states: Vec<_> = e.exec.transitions().iter().map(|t| t.to.name()).collect();
    assert_eq!(states, vec!["REDUCING", "HALTED", "ACTIVE"]);
}

#[test]
fn the_drawdown_breaker_holds_until_reset_and_over_a_restart() {
    let limits = RiskLimits { max_drawdown_pct: Some(0.1), ..RiskLimits::default() };
    let mut e = risk_engine(limits.clone());
    let mut s = Script::default();
    e.start(&mut s);
    book_at(&mut e, &mut s, 1, 100.0);
    assert_eq!(try_send(&mut e, &mut s, market(Side::Buy, 100.0)), OrderUpdate::Accepted);
    // 100 units, mid down 1: a 100 loss on ~100,000 is 0.1%.
    book_at(&mut e, &mut s, 1_000, 99.0);
    assert_eq!(e.exec.trading_state(), TradingState::Halted);
    // Back up: still halted (a breaker holds), and still after the day changes.
    book_at(&mut e, &mut s, 86_400_000 * 3, 101.0);
    assert_eq!(e.exec.trading_state(), TradingState::Halted);

    // A restart from the stored state: still halted.
    let stored = serde_json::to_string(e.exec.state()).unwrap();
    let mut again = risk_engine(limits);
    again.exec.restore(serde_json::from_str::<RiskState>(&stored).unwrap());
    let mut s2 = Script::default();
    again.start(&mut s2);
    book_at(&mut again, &mut s2, 86_400_000 * 3 + 1, 101.0);
    assert_eq!(again.exec.trading_state(), TradingState::Halted);
    let (rule, why) = refused_by(&try_send(&mut again, &mut s2, market(Side::Buy, 1.0))).unwrap();
    assert_eq!(rule, "halted");
    assert!(why.contains("max_drawdown_pct 0.1%"), "{why}");
    // The operator resets it.
    again.exec.reset_breakers(&again.ctx);
    assert_eq!(again.exec.trading_state(), TradingState::Active);
    assert_eq!(try_send(&mut again, &mut s2, market(Side::Buy, 1.0)), OrderUpdate::Accepted);
}

#[test]
fn the_kill_switch_halts_within_one_event_from_another_thread() {
    let mut e = risk_engine(RiskLimits::default());
    let mut s = Script::default();
    e.start(&mut s);
    book_at(&mut e, &mut s, 1, 100.0);
    assert_eq!(try_send(&mut e, &mut s, limit(Side::Buy, 1.0, 99.0)), OrderUpdate::Accepted);
    let resting = *s.sent.last().unwrap();
    let switch = e.exec.kill_switch();
    std::thread::spawn(move || switch.pull("http")).join().unwrap();
    // The next event applies it: the state is HALTED and the resting order cancelled before
    // the strategy hears of the event.
    trade(&mut e, &mut s, ms(2), 100.0, 0.1, Side::Buy);
    assert_eq!(e.exec.trading_state(), TradingState::Halted);
    assert_eq!(s.updates_of(resting), vec!["Accepted", "Cancelled"]);
    let (rule, why) = refused_by(&try_send(&mut e, &mut s, limit(Side::Buy, 1.0, 99.0))).unwrap();
    assert_eq!(rule, "halted");
    assert!(why.contains("kill switch (http)"), "{why}");
    // Pulled and then an order with no event between: the order itself applies it.
    let mut e = risk_engine(RiskLimits::default());
    let mut s = Script::default();
    e.start(&mut s);
    book_at(&mut e, &mut s, 1, 100.0);
    e.exec.kill_switch().pull("cli");
    let u = try_send(&mut e, &mut s, market(Side::Buy, 1.0));
    let (rule, _) = refused_by(&u).unwrap_or_else(|| panic!("{u:?} {:?}", e.exec.trading_state()));
    assert_eq!(rule, "halted");
}

#[test]
fn settings_out_of_range_are_named() {
    let ctx = Context::new(vec![Instrument::new("BTCUSDT", "paper")], 1_000.0);
    let bad = |l: RiskLimits| {
        Risk::new(PaperVenue::new(instant()), l, &ctx).map(|_| ()).unwrap_err().to_string()
    };
    let e = bad(RiskLimits { max_order_notional: Some(f64::NAN), ..RiskLimits::default() });
    assert!(e.contains("`max_order_notional`") && e.contains("NaN"), "{e}");
    let e = bad(RiskLimits { max_drawdown_pct: Some(150.0), ..RiskLimits::default() });
    assert!(e.contains("`max_drawdown_pct`") && e.contains("below 100%"), "{e}");
    let e = bad(RiskLimits {
        reduce_daily_loss: Some(200.0),
        max_daily_loss: Some(100.0),
        ..RiskLimits::default()
    });
    assert!(e.contains("`reduce_daily_loss`") && e.contains("above max_daily_loss"), "{e}");
    let e =
        bad(RiskLimits { max_position: [("DOGE".into(), 1.0)].into(), ..RiskLimits::default() });
    assert!(e.contains("`max_position.DOGE`") && e.contains("not one of the instruments"), "{e}");
    let e = bad(RiskLimits { max_orders_per_s: Some(0), ..RiskLimits::default() });
    assert!(e.contains("`max_orders_per_s`"), "{e}");
    // An unknown key is refused by name (as `[risk]` in a config file).
    let e = serde_json::from_str::<RiskLimits>(r#"{"max_order_notionl": 5}"#).unwrap_err();
    assert!(e.to_string().contains("max_order_notionl"), "{e}");
}
