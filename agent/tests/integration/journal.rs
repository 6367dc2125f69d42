//! The journal and reconciliation against the simulated Binance exchange: an order is
//! journalled before it is sent, and after a crash at each step (journalled but not sent;
//! sent but not acknowledged; filled but the fill not journalled) the next start settles it
//! from the venue, sends nothing twice, and refuses to trade when it cannot settle.

use kairos_agent::binance_rest::{BinanceRest, Credentials, NewOrder};
use kairos_agent::binance_sim::{SimExchange, SimState, SimSymbol};
use kairos_agent::journal::{Journal, OrderState};
use kairos_agent::reconcile::reconcile_binance;
use kairos_strategies::{Fixed, Side};

const KEY: &str = "sim-api-key-0002";
const SECRET: &str = "sim-secret-journal";
const VENUE: &str = "binance-spot";

fn f(s: &str) -> Fixed {
    Fixed::parse(s).unwrap()
}

fn exchange() -> SimState {
    let mut s = SimState::new(KEY, SECRET, vec![SimSymbol::btcusdt()], &[("USDT", 10_000.0)]);
    s.price.insert("BTCUSDT".into(), 60_000.0);
    s
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn client(sim: &SimExchange) -> BinanceRest {
    let mut c = BinanceRest::new(&sim.url, Some(Credentials::new(KEY, SECRET))).unwrap();
    c.recv_window_ms = 1_000;
    c
}

/// Journals an order as the agent does before sending it.
fn intend(
    j: &mut Journal,
    side: &str,
    kind: &str,
    qty: &str,
    price: Option<&str>,
    at: i64,
) -> String {
    j.intend("kt", VENUE, "BTCUSDT", side, kind, qty, price, at).unwrap()
}

fn send(cid: &str, side: Side, qty: &str, price: Option<&str>) -> NewOrder {
    NewOrder::new("BTCUSDT", side, f(qty), price.map(f), cid)
}

#[test]
fn every_crash_point_settles_from_the_venue_without_a_second_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let sim = SimExchange::start(exchange()).await.unwrap();
        let mut rest = client(&sim);
        let (a, b, c);
        {
            let mut j = Journal::open(&path).unwrap();
            // (a) Journalled, then the agent died before sending: the venue never saw it.
            a = intend(&mut j, "BUY", "MARKET", "0.001", None, now_ms());
            // (b) Journalled and sent; the agent died before journalling the answer.
            b = intend(&mut j, "BUY", "MARKET", "0.002", None, now_ms());
            rest.new_order(&send(&b, Side::Buy, "0.002", None)).await.unwrap();
            // (c) Sent and acknowledged (resting); it filled while the agent was down.
            c = intend(&mut j, "SELL", "LIMIT", "0.001", Some("61000"), now_ms());
            let r = rest.new_order(&send(&c, Side::Sell, "0.001", Some("61000"))).await.unwrap();
            j.update(&c, Some(r.order_id), &r.status, "0", false).unwrap();
            // The client order ids are distinct and never reused.
            assert_eq!([a.as_str(), b.as_str(), c.as_str()], ["kt-1", "kt-2", "kt-3"]);
        } // the process is gone: the journal closes, its lock is released
        sim.lock().trade_at("BTCUSDT", 61_000.0);
        let sent_before = sim.lock().orders.len();

        // The restart.
        let mut j = Journal::open(&path).unwrap();
        let r = reconcile_binance(&j, &mut rest, VENUE, &["BTCUSDT"]).await.unwrap();
        let status = |cid: &str| j.order(cid).unwrap().unwrap();
        assert_eq!(
            (status(&a).state, status(&a).status.as_deref()),
            (OrderState::Final, Some("NOT_SENT"))
        );
        assert_eq!(
            (status(&b).state, status(&b).status.as_deref()),
            (OrderState::Final, Some("FILLED"))
        );
        assert_eq!(status(&b).executed, "0.002");
        assert_eq!(
            (status(&c).state, status(&c).status.as_deref()),
            (OrderState::Final, Some("FILLED"))
        );
        // Both fills are journalled, once each, with our client ids.
        let fills = j.fills(VENUE, "BTCUSDT").unwrap();
        let ids: Vec<_> = fills.iter().map(|f| f.client_id.clone().unwrap()).collect();
        assert_eq!(ids, vec![b.clone(), c.clone()]);
        assert_eq!(r.new_fills, 2);
        assert_eq!(r.working, 0);
        assert!(r.balances.iter().any(|(a, _, _)| a == "BTC"));
        // Nothing was sent during reconciliation.
        assert_eq!(sim.lock().orders.len(), sent_before);
        assert_eq!(sent_before, 2, "only (b) and (c) ever reached the venue");
        // The journal and the venue agree; a second reconciliation changes nothing.
        let again = reconcile_binance(&j, &mut rest, VENUE, &["BTCUSDT"]).await.unwrap();
        assert_eq!((again.settled.len(), again.new_fills), (0, 0));
        // The counter carries on after the restart: no client order id is given twice.
        assert_eq!(intend(&mut j, "BUY", "MARKET", "0.001", None, now_ms()), "kt-4");
    });
}

#[test]
fn the_agent_refuses_to_trade_when_it_cannot_settle() {
    let dir = tempfile::tempdir().unwrap();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let sim = SimExchange::start(exchange()).await.unwrap();
        let mut rest = client(&sim);
        let mut j = Journal::open(dir.path().join("j.sqlite")).unwrap();
        let old = now_ms() - 60_000;
        let cid = intend(&mut j, "BUY", "MARKET", "0.001", None, old);

        // The venue does not answer: refused, saying why, and the intent stays unsettled.
        sim.lock().unavailable = true;
        let e = reconcile_binance(&j, &mut rest, VENUE, &["BTCUSDT"]).await.unwrap_err();
        assert!(
            e.to_string().starts_with("cannot reconcile with binance-spot, refusing to trade"),
            "{e}"
        );
        assert!(e.to_string().contains("HTTP 503"), "{e}");
        assert_eq!(j.order(&cid).unwrap().unwrap().state, OrderState::Intent);
        sim.lock().unavailable = false;

        // An open order at the venue that the journal does not know.
        let mut other = client(&sim);
        other.new_order(&send("manual-1", Side::Buy, "0.001", Some("50000"))).await.unwrap();
        let e = reconcile_binance(&j, &mut rest, VENUE, &["BTCUSDT"]).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("open order manual-1 (BUY 0.001 BTCUSDT at 50000) is not in the journal"),
            "{e}"
        );
        // A trade on the account by someone else, after the agent's first order.
        other.cancel_order("BTCUSDT", "manual-1").await.unwrap();
        other.new_order(&send("manual-2", Side::Buy, "0.001", None)).await.unwrap();
        let e = reconcile_binance(&j, &mut rest, VENUE, &["BTCUSDT"]).await.unwrap_err();
        assert!(e.to_string().contains("is not from this agent"), "{e}");
        let events = j.events(5).unwrap();
        assert!(
            events.iter().any(|(_, k, d)| k == "refused" && d.contains("not from this agent")),
            "{events:?}"
        );

        // A working order the venue does not know is a problem, not a silent close.
        let mut j2 = Journal::open(dir.path().join("j2.sqlite")).unwrap();
        let w = intend(&mut j2, "SELL", "LIMIT", "0.001", Some("70000"), old);
        j2.update(&w, Some(999), "NEW", "0", false).unwrap();
        let e = reconcile_binance(&j2, &mut client(&sim), VENUE, &["BTCUSDT"]).await.unwrap_err();
        assert!(e.to_string().contains("was working and the venue does not know it"), "{e}");
    });
}

#[test]
fn the_journal_is_one_process_at_a_time_and_refuses_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let j = Journal::open(&path).unwrap();
    let e = Journal::open(&path).unwrap_err().to_string();
    assert!(e.contains("in use by another process"), "{e}");
    // The risk state round-trips; a damaged row is an error, not a fresh start.
    let state = kairos_engine::risk::RiskState { peak_equity: Some(123.0), ..Default::default() };
    j.save_risk(&state).unwrap();
    assert_eq!(j.load_risk().unwrap(), Some(state));
    drop(j);
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("UPDATE risk SET state = 'not json' WHERE id = 1", []).unwrap();
    raw.execute("UPDATE meta SET value = '99' WHERE key = 'schema'", []).unwrap();
    drop(raw);
    let e = Journal::open(&path).unwrap_err().to_string();
    assert!(e.contains("schema version 99"), "{e}");
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("UPDATE meta SET value = '1' WHERE key = 'schema'", []).unwrap();
    drop(raw);
    let j = Journal::open(&path).unwrap();
    let e = j.load_risk().unwrap_err().to_string();
    assert!(e.contains("refusing to guess"), "{e}");
    // Not a database at all.
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, "this is not sqlite, just text long enough to have a header........")
        .unwrap();
    let e = Journal::open(&junk).unwrap_err().to_string();
    assert!(e.contains("junk.sqlite"), "{e}");
}
