//! The live execution client through the engine against the simulated Binance exchange: a
//! market order fills from the exchange's answer, a resting limit fills when the market
//! trades through it (found by polling), a cancel ends an order, a filter failure is refused
//! before sending, and every order is in the journal with the exchange's status.

use std::collections::BTreeMap;
use std::time::Duration;

use kairos_agent::binance_rest::{BinanceRest, Credentials};
use kairos_agent::binance_sim::{SimExchange, SimState, SimSymbol};
use kairos_agent::journal::{Journal, OrderState};
use kairos_agent::live::{LiveVenue, VenueReport, run_venue};
use kairos_engine::{Engine, HistoricalClock};
use kairos_strategies::{
    Context, Fill, Instrument, InstrumentId, OrderEvent, OrderId, OrderRequest, OrderSize, Side,
    Strategy,
};
use tokio::sync::mpsc;

const KEY: &str = "sim-api-key-0003";
const SECRET: &str = "sim-secret-live";
const BTC: InstrumentId = InstrumentId(0);

#[derive(Default)]
struct Log {
    events: Vec<OrderEvent>,
    fills: Vec<Fill>,
}

impl Strategy for Log {
    fn on_order(&mut self, _ctx: &mut Context, e: &OrderEvent) {
        self.events.push(e.clone());
    }
    fn on_fill(&mut self, _ctx: &mut Context, f: &Fill) {
        self.fills.push(*f);
    }
}

impl Log {
    fn updates(&self, id: OrderId) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.order == id)
            .map(|e| format!("{:?}", e.update).split('(').next().unwrap().to_string())
            .collect()
    }
}

#[test]
fn orders_go_out_journalled_and_their_fills_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut state = SimState::new(KEY, SECRET, vec![SimSymbol::btcusdt()], &[("USDT", 10_000.0)]);
    state.price.insert("BTCUSDT".into(), 60_000.0);
    let sim = rt.block_on(SimExchange::start(state)).unwrap();
    let mut rest = BinanceRest::new(&sim.url, Some(Credentials::new(KEY, SECRET))).unwrap();
    let rules = rt.block_on(rest.exchange_info(&["BTCUSDT"])).unwrap();

    let (req_tx, req_rx) = mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = mpsc::unbounded_channel();
    rt.spawn(run_venue(rest, req_rx, rep_tx, Duration::from_millis(50), BTreeMap::new()));
    let journal = Journal::open(dir.path().join("live.sqlite")).unwrap();
    let venue = LiveVenue::new(
        journal,
        "binance-spot",
        "kl",
        rules.into_iter().map(Some).collect(),
        req_tx,
    );
    let btc = Instrument::new("BTCUSDT", "binance").with_tick_size(0.01).with_lot_size(0.00001);
    let mut ctx = Context::new(vec![btc], 10_000.0);
    ctx.portfolio_mut().mark(BTC, 60_000.0);
    let mut e: Engine<LiveVenue, HistoricalClock> = Engine::historical(ctx, venue);
    let mut s = Log::default();
    e.start(&mut s);

    // Hands the venue's reports to the engine until `done` holds (a minute is a hang).
    let mut pump =
        |e: &mut Engine<LiveVenue, HistoricalClock>, s: &mut Log, done: &dyn Fn(&Log) -> bool| {
            let until = std::time::Instant::now() + Duration::from_secs(60);
            while !done(s) {
                assert!(std::time::Instant::now() < until, "no report: {:?}", s.events);
                let r: Option<VenueReport> = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(1), rep_rx.recv()).await.ok().flatten()
                });
                if let Some(r) = r {
                    e.from_venue(s, |x, ctx, out| x.apply(ctx, r, out));
                }
            }
        };

    // A market buy: 0.0123456 rounds down to the step, 0.01234.
    let buy =
        e.ctx.submit(OrderRequest::market(BTC, Side::Buy, OrderSize::Units(0.0123456))).unwrap();
    e.run_pending(&mut s);
    pump(&mut e, &mut s, &|s| s.updates(buy).contains(&"Filled".to_string()));
    assert_eq!(s.updates(buy), vec!["Accepted", "Filled"]);
    assert_eq!(s.fills.len(), 1);
    assert!((s.fills[0].quantity - 0.01234).abs() < 1e-12 && s.fills[0].price == 60_000.0);
    assert!((e.ctx.position(BTC) - 0.01234).abs() < 1e-12);
    assert_eq!(sim.lock().orders[0].client_order_id, "kl-1");
    assert_eq!(sim.lock().orders[0].qty, 0.01234);

    // A resting sell at 61,000.005: rounded up to 61,000.01 (a sell never goes lower).
    let sell = e
        .ctx
        .submit(OrderRequest::limit(BTC, Side::Sell, OrderSize::Units(0.005), 61_000.005))
        .unwrap();
    e.run_pending(&mut s);
    pump(&mut e, &mut s, &|s| s.updates(sell).contains(&"Accepted".to_string()));
    assert_eq!(sim.lock().orders[1].price, 61_000.01);
    sim.lock().trade_at("BTCUSDT", 61_000.5);
    pump(&mut e, &mut s, &|s| s.updates(sell).contains(&"Filled".to_string()));
    assert!((e.ctx.position(BTC) - 0.00734).abs() < 1e-12);

    // A resting buy, cancelled.
    let rest_buy = e
        .ctx
        .submit(OrderRequest::limit(BTC, Side::Buy, OrderSize::Units(0.001), 50_000.0))
        .unwrap();
    e.run_pending(&mut s);
    pump(&mut e, &mut s, &|s| s.updates(rest_buy).contains(&"Accepted".to_string()));
    assert!(e.ctx.cancel(rest_buy));
    e.run_pending(&mut s);
    pump(&mut e, &mut s, &|s| s.updates(rest_buy).contains(&"Cancelled".to_string()));

    // Refused before sending: worth less than the 5 USDT minimum. Nothing reaches the exchange
    // or the journal.
    let sent = sim.lock().orders.len();
    let tiny = e
        .ctx
        .submit(OrderRequest::limit(BTC, Side::Buy, OrderSize::Units(0.00005), 50_000.0))
        .unwrap();
    e.run_pending(&mut s);
    assert_eq!(s.updates(tiny), vec!["Rejected"]);
    assert!(format!("{:?}", s.events.last().unwrap().update).contains("NOTIONAL"));
    // Refused by the exchange: more than the balance.
    let big = e.ctx.submit(OrderRequest::market(BTC, Side::Buy, OrderSize::Units(5.0))).unwrap();
    e.run_pending(&mut s);
    pump(&mut e, &mut s, &|s| !s.updates(big).is_empty());
    assert_eq!(s.updates(big), vec!["Rejected"]);
    assert!(format!("{:?}", s.events.last().unwrap().update).contains("insufficient balance"));
    assert_eq!(sim.lock().orders.len(), sent, "refused orders never became exchange orders");

    // The journal agrees with the exchange about every order it sent.
    let j = e.exec.journal();
    let orders = j.orders().unwrap();
    assert_eq!(orders.len(), 4, "{orders:?}");
    let status: Vec<_> =
        orders.iter().map(|o| (o.client_id.as_str(), o.status.as_deref(), o.state)).collect();
    assert_eq!(
        status,
        vec![
            ("kl-1", Some("FILLED"), OrderState::Final),
            ("kl-2", Some("FILLED"), OrderState::Final),
            ("kl-3", Some("CANCELED"), OrderState::Final),
            ("kl-4", Some("REJECTED"), OrderState::Final),
        ]
    );
    let sim_state = sim.lock();
    for o in &sim_state.orders {
        let jo = orders.iter().find(|j| j.client_id == o.client_order_id).unwrap();
        assert_eq!(jo.status.as_deref(), Some(o.status.as_str()));
    }
    assert_eq!(j.fills("binance-spot", "BTCUSDT").unwrap().len(), sim_state.trades.len());
}
