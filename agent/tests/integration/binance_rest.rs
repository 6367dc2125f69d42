//! The Binance REST client against the simulated exchange on 127.0.0.1, which checks every
//! signature, timestamp and filter as Binance does and answers in its formats.

use kairos_agent::binance_rest::{BinanceRest, Credentials, NewOrder, RestError, client_order_id};
use kairos_agent::binance_sim::{SimExchange, SimState, SimSymbol};
use kairos_strategies::{Fixed, OrderId, Side};

const KEY: &str = "sim-api-key-0001";
const SECRET: &str = "sim-secret-that-never-prints";

fn f(s: &str) -> Fixed {
    Fixed::parse(s).unwrap()
}

fn exchange() -> SimState {
    let mut s =
        SimState::new(KEY, SECRET, vec![SimSymbol::btcusdt()], &[("USDT", 10_000.0), ("BTC", 0.0)]);
    s.price.insert("BTCUSDT".into(), 60_000.0);
    s
}

fn order(cid: &str, side: Side, qty: &str, price: Option<&str>) -> NewOrder {
    NewOrder::new("BTCUSDT", side, f(qty), price.map(f), cid)
}

fn api_code(e: &RestError) -> Option<i64> {
    match e {
        RestError::Api { code, .. } => Some(*code),
        _ => None,
    }
}

#[test]
fn orders_round_trip_through_a_binance_format_exchange() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let sim = SimExchange::start(exchange()).await.unwrap();
        let mut c = BinanceRest::new(&sim.url, Some(Credentials::new(KEY, SECRET))).unwrap();
        c.sync_time().await.unwrap();
        let rules = c.exchange_info(&["BTCUSDT"]).await.unwrap();
        assert_eq!(rules[0].tick_size, f("0.01"));
        assert_eq!(rules[0].step_size, f("0.00001"));
        assert_eq!(rules[0].min_notional, Some(5.0));
        assert_eq!(c.rate.weight_limit_1m, Some(6000));
        let e = c.exchange_info(&["NOPEUSDT"]).await.unwrap_err();
        assert_eq!(api_code(&e), Some(-1121), "{e}");

        // A market buy fills at once; the exchange knows it by our id.
        let id = client_order_id("kairos-t1", OrderId(1));
        let r = c.new_order(&order(&id, Side::Buy, "0.01", None)).await.unwrap();
        assert_eq!((r.status.as_str(), r.executed_qty), ("FILLED", f("0.01")));
        let q = c.query_order("BTCUSDT", &id).await.unwrap().expect("known");
        assert_eq!((q.ours(), q.status.as_str()), (id.as_str(), "FILLED"));
        assert!(c.query_order("BTCUSDT", "kairos-t1-999").await.unwrap().is_none());
        let bal = c.balances().await.unwrap();
        let usdt = bal.iter().find(|b| b.asset == "USDT").unwrap();
        assert_eq!(usdt.free, f("9400"));
        assert!(c.rate.used_weight_1m > 0);

        // A resting limit; the same id while it is open is refused as a duplicate.
        let rest = client_order_id("kairos-t1", OrderId(2));
        let r = c.new_order(&order(&rest, Side::Sell, "0.005", Some("61000.00"))).await.unwrap();
        assert_eq!(r.status, "NEW");
        let e =
            c.new_order(&order(&rest, Side::Sell, "0.005", Some("61000.00"))).await.unwrap_err();
        assert_eq!(api_code(&e), Some(-2010), "{e}");
        assert!(e.to_string().contains("Duplicate order sent."), "{e}");
        assert_eq!(c.open_orders("BTCUSDT").await.unwrap().len(), 1);
        // The market trades through it.
        sim.lock().trade_at("BTCUSDT", 61_000.5);
        assert_eq!(c.query_order("BTCUSDT", &rest).await.unwrap().unwrap().status, "FILLED");
        let trades = c.my_trades("BTCUSDT", None).await.unwrap();
        assert_eq!(trades.len(), 2);
        assert!(trades[1].is_maker && !trades[1].is_buyer);
        assert_eq!(c.my_trades("BTCUSDT", Some(trades[1].id)).await.unwrap().len(), 1);
        // Once it is closed, Binance takes the same client id again: a second order. (Why a
        // restarted agent must ask before it resends.)
        let again =
            c.new_order(&order(&rest, Side::Sell, "0.001", Some("62000.00"))).await.unwrap();
        assert_eq!(again.status, "NEW");
        assert_eq!(sim.lock().orders.iter().filter(|o| o.client_order_id == rest).count(), 2);

        // Cancel, and cancel again.
        let x = c.cancel_order("BTCUSDT", &rest).await.unwrap();
        assert_eq!((x.ours(), x.status.as_str()), (rest.as_str(), "CANCELED"));
        let e = c.cancel_order("BTCUSDT", &rest).await.unwrap_err();
        assert_eq!(api_code(&e), Some(-2011), "{e}");

        // The exchange's filters, and a balance too small.
        let e = c
            .new_order(&order("kairos-t1-5", Side::Buy, "0.000015", Some("60000.00")))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Filter failure: LOT_SIZE"), "{e}");
        let e = c
            .new_order(&order("kairos-t1-6", Side::Buy, "0.00001", Some("60000.00")))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Filter failure: NOTIONAL"), "{e}");
        let e = c.new_order(&order("kairos-t1-7", Side::Buy, "1", None)).await.unwrap_err();
        assert!(e.to_string().contains("insufficient balance"), "{e}");
        // A client order id Binance would refuse is refused here.
        let e = c.new_order(&order("has space", Side::Buy, "0.001", None)).await.unwrap_err();
        assert!(matches!(e, RestError::Filter { .. }), "{e}");
    });
}

#[test]
fn bad_credentials_rate_limits_and_a_dead_exchange_are_named() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let sim = SimExchange::start(exchange()).await.unwrap();
        let mut wrong_secret =
            BinanceRest::new(&sim.url, Some(Credentials::new(KEY, "wrong"))).unwrap();
        let e = wrong_secret.open_orders("BTCUSDT").await.unwrap_err();
        assert_eq!(api_code(&e), Some(-1022), "{e}");
        assert!(!e.to_string().contains("wrong") && !format!("{e:?}").contains("wrong"), "{e:?}");
        let mut wrong_key =
            BinanceRest::new(&sim.url, Some(Credentials::new("other", SECRET))).unwrap();
        let e = wrong_key.open_orders("BTCUSDT").await.unwrap_err();
        assert_eq!(api_code(&e), Some(-2015), "{e}");
        let mut anonymous = BinanceRest::new(&sim.url, None).unwrap();
        assert!(matches!(anonymous.open_orders("BTCUSDT").await, Err(RestError::NoCredentials(_))));
        // A clock far behind the exchange's: outside recvWindow.
        let mut late = BinanceRest::new(&sim.url, Some(Credentials::new(KEY, SECRET))).unwrap();
        late.clock_offset_ms = -60_000;
        let e = late.open_orders("BTCUSDT").await.unwrap_err();
        assert_eq!(api_code(&e), Some(-1021), "{e}");
        late.sync_time().await.unwrap();
        late.open_orders("BTCUSDT").await.unwrap();

        // A 429 with Retry-After: refused, and nothing is sent until it has passed.
        let mut c = BinanceRest::new(&sim.url, Some(Credentials::new(KEY, SECRET))).unwrap();
        sim.lock().rate_limit_next = Some(30);
        let e = c.open_orders("BTCUSDT").await.unwrap_err();
        assert!(e.to_string().contains("HTTP 429, Retry-After 30"), "{e}");
        sim.lock().rate_limit_next = None;
        let sent = sim.lock().requests.len();
        let e = c.open_orders("BTCUSDT").await.unwrap_err();
        assert!(matches!(e, RestError::RateLimited { .. }), "{e}");
        assert_eq!(sim.lock().requests.len(), sent, "a request went out while blocked");
        // The request weight: past the limit, refused before sending.
        let mut c = BinanceRest::new(&sim.url, Some(Credentials::new(KEY, SECRET))).unwrap();
        c.exchange_info(&["BTCUSDT"]).await.unwrap();
        c.rate.weight_limit_1m = Some(c.rate.used_weight_1m + 5);
        let e = c.open_orders("BTCUSDT").await.unwrap_err();
        assert!(e.to_string().contains("would pass the limit"), "{e}");
        assert_eq!(sim.lock().requests.len(), sent + 1);

        // An exchange that does not answer properly.
        sim.lock().unavailable = true;
        let mut c = BinanceRest::new(&sim.url, Some(Credentials::new(KEY, SECRET))).unwrap();
        let e = c.open_orders("BTCUSDT").await.unwrap_err();
        assert!(e.to_string().contains("HTTP 503"), "{e}");
        // Nobody listening.
        let mut c =
            BinanceRest::new("http://127.0.0.1:9", Some(Credentials::new(KEY, SECRET))).unwrap();
        let e = c.open_orders("BTCUSDT").await.unwrap_err();
        assert!(
            matches!(e, RestError::Http { .. }) && e.to_string().contains("127.0.0.1:9"),
            "{e}"
        );
        assert!(!e.to_string().contains("signature"), "the signed query is not in the error: {e}");
    });
}
