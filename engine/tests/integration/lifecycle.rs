//! Order lifecycle through the paper venue: acknowledgements, fills, cancels, modifications,
//! expiry, halts and latency.

use kairos_engine::Execution;
use kairos_engine::paper::PaperConfig;
use kairos_strategies::{
    Modification, OrderRequest, OrderSize, OrderStatus, OrderUpdate, RejectRule, Side, TimeInForce,
};

use crate::common::*;

fn limit(side: Side, qty: f64, price: f64) -> OrderRequest {
    OrderRequest::limit(BTC, side, OrderSize::Units(qty), price)
}

#[test]
fn a_market_order_walks_the_book_level_by_level_and_pays_the_taker_fee() {
    let cfg = PaperConfig { taker_fee: 0.001, ..instant() };
    let mut e = engine(cfg);
    let mut s = Script::default();
    e.start(&mut s);
    snapshot(
        &mut e,
        &mut s,
        ms(1),
        &[("99.00", "1")],
        &[("100.00", "0.5"), ("100.50", "1"), ("101.00", "2")],
    );
    s.send.push(OrderRequest::market(BTC, Side::Buy, OrderSize::Units(1.2)));
    send(&mut e, &mut s);
    trade(&mut e, &mut s, ms(2), 99.5, 0.001, Side::Buy); // any event hands the order over
    let fills: Vec<(f64, f64)> = s.fills.iter().map(|f| (f.price, f.quantity)).collect();
    assert_eq!(fills, vec![(100.0, 0.5), (100.5, 0.7)]);
    assert!((s.fills[1].commission - 0.7 * 100.5 * 0.001).abs() < 1e-12);
    assert_eq!(s.updates_of(s.sent[0]), vec!["Accepted", "Filled"]);
    assert!((e.ctx.position(BTC) - 1.2).abs() < 1e-12);
    assert!(e.ctx.open_orders().is_empty());
}

#[test]
fn our_fills_take_the_liquidity_they_filled_against_until_the_feed_reports_the_level() {
    let mut e = engine(instant());
    let mut s = Script::default();
    e.start(&mut s);
    snapshot(&mut e, &mut s, ms(1), &[("99.00", "1")], &[("100.00", "1"), ("101.00", "5")]);
    let buy = |q| OrderRequest::market(BTC, Side::Buy, OrderSize::Units(q));
    s.send.push(buy(0.6));
    send(&mut e, &mut s);
    // The book the feed shows has not moved: the second order finds 0.4 left at 100.
    s.send.push(buy(0.6));
    send(&mut e, &mut s);
    let fills: Vec<(f64, f64)> = s.fills.iter().map(|f| (f.price, f.quantity)).collect();
    assert_eq!(fills, vec![(100.0, 0.6), (100.0, 0.4), (101.0, 0.2)]);
    // A trade elsewhere changes nothing; the feed reporting the level restores it.
    trade(&mut e, &mut s, ms(2), 99.0, 0.1, Side::Sell);
    level(&mut e, &mut s, ms(3), Side::Sell, "100.00", "0.7");
    s.send.push(buy(1.0));
    send(&mut e, &mut s);
    let fills: Vec<(f64, f64)> = s.fills[3..].iter().map(|f| (f.price, f.quantity)).collect();
    assert_eq!(
        fills,
        vec![(100.0, 0.7), (101.0, 0.3)],
        "100 at its reported size, 101 less the 0.2 taken"
    );
    // A snapshot is the exchange's whole word: everything is back.
    snapshot(&mut e, &mut s, ms(4), &[("99.00", "1")], &[("101.00", "5")]);
    s.send.push(buy(5.0));
    send(&mut e, &mut s);
    assert_eq!((s.fills[5].price, s.fills[5].quantity), (101.0, 5.0));
}

#[test]
fn a_book_that_moves_through_a_resting_order_fills_it_once_per_displayed_size() {
    let mut e = engine(instant());
    let mut s = Script::default();
    e.start(&mut s);
    snapshot(&mut e, &mut s, ms(1), &[("98.00", "1")], &[("101.00", "1")]);
    s.send.push(limit(Side::Buy, 1.0, 100.0));
    send(&mut e, &mut s);
    // An ask of 0.3 appears below our bid: we fill 0.3 of it...
    level(&mut e, &mut s, ms(2), Side::Sell, "99.50", "0.3");
    assert_eq!(s.fills.iter().map(|f| f.quantity).sum::<f64>(), 0.3);
    // ...and other levels moving do not let us fill against the same 0.3 again.
    level(&mut e, &mut s, ms(3), Side::Buy, "98.00", "2");
    level(&mut e, &mut s, ms(4), Side::Sell, "101.00", "2");
    assert_eq!(s.fills.len(), 1, "{:?}", s.fills);
    // The exchange reports the level again (its size is its own word): it fills what it shows.
    level(&mut e, &mut s, ms(5), Side::Sell, "99.50", "0.2");
    let total: f64 = s.fills.iter().map(|f| f.quantity).sum();
    assert!((total - 0.5).abs() < 1e-12, "{:?}", s.fills);
    assert_eq!(e.ctx.order_status(s.sent[0]), Some(OrderStatus::PartiallyFilled));
}

#[test]
fn what_the_book_cannot_fill_is_cancelled_and_an_empty_side_rejects() {
    let mut e = engine(instant());
    let mut s = Script::default();
    e.start(&mut s);
    snapshot(&mut e, &mut s, ms(1), &[("99.00", "1")], &[("100.00", "0.5")]);
    s.send.push(OrderRequest::market(BTC, Side::Buy, OrderSize::Units(2.0)));
    send(&mut e, &mut s);
    trade(&mut e, &mut s, ms(2), 99.5, 0.001, Side::Buy);
    assert_eq!(s.updates_of(s.sent[0]), vec!["Accepted", "PartiallyFilled", "Cancelled"]);
    snapshot(&mut e, &mut s, ms(3), &[("99.00", "1")], &[]);
    s.send.push(OrderRequest::market(BTC, Side::Buy, OrderSize::Units(1.0)));
    send(&mut e, &mut s);
    trade(&mut e, &mut s, ms(4), 99.0, 0.001, Side::Sell);
    let ev = &s.events.last().unwrap();
    match &ev.update {
        OrderUpdate::Rejected(r) => assert_eq!(r.rule, RejectRule::NoLiquidity, "{r}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_resting_limit_fills_only_after_the_queue_ahead_has_traded() {
    let cfg = PaperConfig { maker_fee: -0.0001, ..instant() };
    let mut e = engine(cfg);
    let mut s = Script::default();
    e.start(&mut s);
    snapshot(&mut e, &mut s, ms(1), &[("99.00", "3")], &[("100.00", "1")]);
    s.send.push(limit(Side::Buy, 1.0, 99.0));
    send(&mut e, &mut s);
    trade(&mut e, &mut s, ms(2), 99.0, 2.0, Side::Sell); // 3 ahead: 1 left ahead
    assert!(s.fills.is_empty());
    trade(&mut e, &mut s, ms(3), 99.0, 1.5, Side::Sell); // 0.5 beyond the queue
    assert_eq!(s.fills.len(), 1);
    assert_eq!((s.fills[0].price, s.fills[0].quantity), (99.0, 0.5));
    assert!(s.fills[0].commission < 0.0, "a maker rebate");
    assert_eq!(e.ctx.order_status(s.sent[0]), Some(OrderStatus::PartiallyFilled));
    // Cancels ahead of us shrink the queue (risk-averse: at most the level's new size).
    level(&mut e, &mut s, ms(4), Side::Buy, "99.00", "0.2");
    trade(&mut e, &mut s, ms(5), 99.0, 0.3, Side::Sell);
    assert_eq!(s.fills.len(), 2);
    assert_eq!(s.fills[1].quantity, 0.3);
    // A trade through our price fills the rest.
    trade(&mut e, &mut s, ms(6), 98.5, 5.0, Side::Sell);
    assert_eq!(s.fills.len(), 3);
    assert!((s.fills[2].quantity - 0.2).abs() < 1e-12);
    assert_eq!(s.updates_of(s.sent[0]).last().unwrap(), "Filled");
}

#[test]
fn a_marketable_limit_takes_then_rests_and_ioc_cancels_the_rest() {
    let mut e = engine(instant());
    let mut s = Script::default();
    e.start(&mut s);
    snapshot(&mut e, &mut s, ms(1), &[("99.00", "1")], &[("100.00", "0.4"), ("101.00", "1")]);
    s.send.push(limit(Side::Buy, 1.0, 100.0));
    s.send.push(limit(Side::Buy, 1.0, 100.0).with_tif(TimeInForce::Ioc));
    send(&mut e, &mut s);
    trade(&mut e, &mut s, ms(2), 100.0, 0.001, Side::Buy);
    assert_eq!(s.updates_of(s.sent[0]), vec!["Accepted", "PartiallyFilled"]);
    // The first took the 0.4 at 100: the immediate-or-cancel one finds nothing left there.
    assert_eq!(s.updates_of(s.sent[1]), vec!["Accepted", "Cancelled"]);
    assert_eq!(s.fills.len(), 1);
    assert_eq!(e.exec.working(), 1);
    // The feed reports the level again: the resting order, there first, takes it as maker,
    // and an immediate-or-cancel order sent after it again finds nothing.
    level(&mut e, &mut s, ms(3), Side::Sell, "100.00", "0.4");
    assert_eq!(s.updates_of(s.sent[0]), vec!["Accepted", "PartiallyFilled", "PartiallyFilled"]);
    assert_eq!((s.fills.len(), s.fills[1].quantity), (2, 0.4));
    s.send.push(limit(Side::Buy, 1.0, 100.0).with_tif(TimeInForce::Ioc));
    send(&mut e, &mut s);
    assert_eq!(s.updates_of(s.sent[2]), vec!["Accepted", "Cancelled"]);
}

#[test]
fn latency_delays_arrival_and_answers_and_a_late_cancel_is_refused() {
    let cfg =
        PaperConfig { entry_latency_ns: 5_000_000, response_latency_ns: 3_000_000, ..instant() };
    let mut e = engine(cfg);
    let mut s = Script::default();
    e.start(&mut s);
    snapshot(&mut e, &mut s, ms(0), &[("99.00", "1")], &[("100.00", "1")]);
    s.send.push(OrderRequest::market(BTC, Side::Buy, OrderSize::Units(0.5)));
    send(&mut e, &mut s);
    assert_eq!(e.ctx.order_status(s.sent[0]), Some(OrderStatus::Submitted));
    let id = s.sent[0];
    e.ctx.cancel(id); // reaches the venue after the order has filled
    e.run_pending(&mut s);
    // The book moves before the order arrives (at 5 ms): it fills against the new book.
    snapshot(&mut e, &mut s, ms(4), &[("99.00", "1")], &[("100.50", "1")]);
    trade(&mut e, &mut s, ms(7), 100.5, 0.001, Side::Buy);
    assert!(s.events.is_empty(), "the answers are still on their way");
    trade(&mut e, &mut s, ms(9), 100.5, 0.001, Side::Buy);
    assert_eq!(s.fills.len(), 1);
    assert_eq!(s.fills[0].price, 100.5);
    assert_eq!(s.fills[0].ts, ms(5));
    assert_eq!(s.updates_of(id)[..2], ["Accepted".to_string(), "Filled".to_string()]);
    let last = s.events.last().unwrap();
    assert!(
        matches!(&last.update, OrderUpdate::CancelRejected(r) if r.rule == RejectRule::NotWorking),
        "{last:?}"
    );
}

#[test]
fn modify_and_expiry_and_halts() {
    let mut e = engine(instant());
    let mut s = Script::default();
    e.start(&mut s);
    snapshot(&mut e, &mut s, ms(1), &[("99.00", "5"), ("98.00", "2")], &[("100.00", "1")]);
    s.send.push(limit(Side::Buy, 1.0, 99.0).with_tif(TimeInForce::Gtd(ms(50))));
    send(&mut e, &mut s);
    trade(&mut e, &mut s, ms(2), 100.0, 0.001, Side::Buy);
    let id = s.sent[0];
    // A new price joins the back of the new level's queue (2 ahead at 98).
    e.ctx.modify(id, Modification { price: Some(98.0), quantity: None }).unwrap();
    e.run_pending(&mut s);
    trade(&mut e, &mut s, ms(3), 98.0, 2.5, Side::Sell);
    assert_eq!(s.fills.iter().map(|f| f.quantity).sum::<f64>(), 0.5);
    assert_eq!(e.ctx.order(id).unwrap().request.price(), Some(98.0));
    // It expires at 50 ms, before the next event at 60 ms.
    trade(&mut e, &mut s, ms(60), 100.0, 0.001, Side::Buy);
    assert_eq!(s.updates_of(id).last().unwrap(), "Expired");
    assert!(e.ctx.open_orders().is_empty());
    // Halted: new orders are refused with the rule, until resumed.
    e.halt(BTC, "book not synchronised");
    assert!(!e.ctx.tradable(BTC));
    s.send.push(limit(Side::Buy, 1.0, 99.0));
    send(&mut e, &mut s);
    trade(&mut e, &mut s, ms(61), 100.0, 0.001, Side::Buy);
    let last = s.events.last().unwrap();
    assert!(
        matches!(&last.update, OrderUpdate::Rejected(r) if r.rule == RejectRule::TradingHalted && r.reason.contains("not synchronised")),
        "{last:?}"
    );
    e.resume(BTC);
    s.send.push(limit(Side::Buy, 1.0, 99.0));
    send(&mut e, &mut s);
    trade(&mut e, &mut s, ms(62), 100.0, 0.001, Side::Buy);
    assert_eq!(s.events.last().unwrap().update, OrderUpdate::Accepted);
}

#[test]
fn prices_reach_the_venue_as_whole_ticks() {
    let mut e = engine(instant());
    let mut s = Script::default();
    e.start(&mut s);
    snapshot(&mut e, &mut s, ms(1), &[("99.00", "1")], &[("100.00", "1")]);
    // 99.999999 buys at 99.99 (never more than asked); the fill prints exactly.
    s.send.push(limit(Side::Buy, 0.0015, 99.999_999));
    send(&mut e, &mut s);
    trade(&mut e, &mut s, ms(2), 99.99, 1.0, Side::Sell);
    assert_eq!(s.fills[0].price, 99.99);
    assert_eq!(s.fills[0].quantity, 0.001, "rounded down to the lot");
}
