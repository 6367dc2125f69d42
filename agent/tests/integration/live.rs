//! The live execution client through the engine against the simulated Binance exchange: a
//! market order fills from the exchange's answer, a resting limit fills when the market
//! trades through it (found by polling), a cancel ends an order, a filter failure is refused
//! before sending, and every order is in the journal with the exchange's status. With the
//! user data stream and no polling, fills come as `executionReport`s; a stream that drops
//! them and disconnects loses nothing (the catch-up after resubscribing finds them); a wrong
//! secret is refused with Binance's error.

use std::collections::BTreeMap;
use std::time::Duration;

use kairos_agent::binance_rest::{BinanceRest, Credentials};
use kairos_agent::binance_sim::{SimExchange, SimState, SimSymbol};
use kairos_agent::binance_user::{UserEvent, UserStream, run_user_stream};
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

/// What a strategy heard (shared with the other execution clients' tests).
#[derive(Default)]
pub(crate) struct Log {
    pub(crate) events: Vec<OrderEvent>,
    pub(crate) fills: Vec<Fill>,
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
    pub(crate) fn updates(&self, id: OrderId) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.order == id)
            .map(|e| format!("{:?}", e.update).split('(').next().unwrap().to_string())
            .collect()
    }
}

/// The exchange, the venue task (and the user data stream when `stream`), and an engine
/// with the live client, on BTCUSDT marked at 60,000.
struct Rig {
    rt: tokio::runtime::Runtime,
    sim: SimExchange,
    e: Engine<LiveVenue, HistoricalClock>,
    s: Log,
    reports: mpsc::UnboundedReceiver<VenueReport>,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new(balances: &[(&str, f64)], prefix: &str, poll: Duration, stream: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut state = SimState::new(KEY, SECRET, vec![SimSymbol::btcusdt()], balances);
        state.price.insert("BTCUSDT".into(), 60_000.0);
        let sim = rt.block_on(SimExchange::start(state)).unwrap();
        let mut rest = BinanceRest::new(&sim.url, Some(Credentials::new(KEY, SECRET))).unwrap();
        let rules = rt.block_on(rest.exchange_info(&["BTCUSDT"])).unwrap();
        let user = stream.then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let creds = Credentials::new(KEY, SECRET);
            let stream = UserStream { url: sim.ws_url.clone(), creds, clock_offset_ms: 0 };
            rt.spawn(run_user_stream(stream, tx));
            rx
        });
        let (req_tx, req_rx) = mpsc::unbounded_channel();
        let (rep_tx, reports) = mpsc::unbounded_channel();
        rt.spawn(run_venue(rest, req_rx, rep_tx, poll, BTreeMap::new(), user));
        let journal = Journal::open(dir.path().join("live.sqlite")).unwrap();
        let rules = rules.into_iter().map(Some).collect();
        let venue = LiveVenue::new(journal, "binance-spot", prefix, rules, req_tx);
        let btc = Instrument::new("BTCUSDT", "binance").with_tick_size(0.01).with_lot_size(0.00001);
        let mut ctx = Context::new(vec![btc], 10_000.0);
        ctx.portfolio_mut().mark(BTC, 60_000.0);
        let mut e: Engine<LiveVenue, HistoricalClock> = Engine::historical(ctx, venue);
        let mut s = Log::default();
        e.start(&mut s);
        Self { rt, sim, e, s, reports, _dir: dir }
    }

    /// Hands the venue's reports to the engine until `done` holds (a minute is a hang).
    fn pump(&mut self, done: impl Fn(&Log) -> bool) {
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while !done(&self.s) {
            assert!(std::time::Instant::now() < until, "no report: {:?}", self.s.events);
            let rx = &mut self.reports;
            let r: Option<VenueReport> = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(1), rx.recv()).await.ok().flatten()
            });
            if let Some(r) = r {
                self.e.from_venue(&mut self.s, |x, ctx, out| x.apply(ctx, r, out));
            }
        }
    }

    /// Submits an order and lets the engine hand it on.
    fn submit(&mut self, req: OrderRequest) -> OrderId {
        let id = self.e.ctx.submit(req).unwrap();
        self.e.run_pending(&mut self.s);
        id
    }

    /// Pumps until `order` has had `update`.
    fn until(&mut self, order: OrderId, update: &str) {
        self.pump(|s| s.updates(order).iter().any(|u| u == update));
    }
}

#[test]
fn orders_go_out_journalled_and_their_fills_come_back() {
    let mut r = Rig::new(&[("USDT", 10_000.0)], "kl", Duration::from_millis(50), false);
    let sim = r.sim.clone();

    // A market buy: 0.0123456 rounds down to the step, 0.01234.
    let buy = r.submit(OrderRequest::market(BTC, Side::Buy, OrderSize::Units(0.0123456)));
    r.until(buy, "Filled");
    assert_eq!(r.s.updates(buy), vec!["Accepted", "Filled"]);
    assert_eq!(r.s.fills.len(), 1);
    assert!((r.s.fills[0].quantity - 0.01234).abs() < 1e-12 && r.s.fills[0].price == 60_000.0);
    assert!((r.e.ctx.position(BTC) - 0.01234).abs() < 1e-12);
    assert_eq!(sim.lock().orders[0].client_order_id, "kl-1");
    assert_eq!(sim.lock().orders[0].qty, 0.01234);

    // A resting sell at 61,000.005: rounded up to 61,000.01 (a sell never goes lower).
    let sell = r.submit(OrderRequest::limit(BTC, Side::Sell, OrderSize::Units(0.005), 61_000.005));
    r.until(sell, "Accepted");
    assert_eq!(sim.lock().orders[1].price, 61_000.01);
    sim.lock().trade_at("BTCUSDT", 61_000.5);
    r.until(sell, "Filled");
    assert!((r.e.ctx.position(BTC) - 0.00734).abs() < 1e-12);

    // A resting buy, cancelled.
    let rest_buy = r.submit(OrderRequest::limit(BTC, Side::Buy, OrderSize::Units(0.001), 50_000.0));
    r.until(rest_buy, "Accepted");
    assert!(r.e.ctx.cancel(rest_buy));
    r.e.run_pending(&mut r.s);
    r.until(rest_buy, "Cancelled");

    // Refused before sending: worth less than the 5 USDT minimum. Nothing reaches the exchange
    // or the journal.
    let sent = sim.lock().orders.len();
    let tiny = r.submit(OrderRequest::limit(BTC, Side::Buy, OrderSize::Units(0.00005), 50_000.0));
    assert_eq!(r.s.updates(tiny), vec!["Rejected"]);
    assert!(format!("{:?}", r.s.events.last().unwrap().update).contains("NOTIONAL"));
    // Refused by the exchange: more than the balance.
    let big = r.submit(OrderRequest::market(BTC, Side::Buy, OrderSize::Units(5.0)));
    r.pump(|s| !s.updates(big).is_empty());
    assert_eq!(r.s.updates(big), vec!["Rejected"]);
    assert!(format!("{:?}", r.s.events.last().unwrap().update).contains("insufficient balance"));
    assert_eq!(sim.lock().orders.len(), sent, "refused orders never became exchange orders");

    // The journal agrees with the exchange about every order it sent.
    let j = r.e.exec.journal();
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

/// Waits (bounded: a minute is a hang) until `f` holds for the exchange.
fn wait_sim(sim: &SimExchange, what: &str, f: impl Fn(&SimState) -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while !f(&sim.lock()) {
        assert!(std::time::Instant::now() < until, "waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn fills_come_on_the_user_data_stream_and_a_gap_in_it_loses_nothing() {
    // Polls an hour apart: only the stream, and the catch-up after a resubscription, report.
    let balances = [("USDT", 10_000.0), ("BTC", 1.0)];
    let mut r = Rig::new(&balances, "ku", Duration::from_secs(3600), true);
    let sim = r.sim.clone();
    wait_sim(&sim, "the subscription", |s| s.user_subscriptions == 1);

    // A resting buy, filled in two parts as the market trades it: each part is an
    // executionReport on the stream.
    let buy = r.submit(OrderRequest::limit(BTC, Side::Buy, OrderSize::Units(0.005), 59_000.0));
    r.until(buy, "Accepted");
    assert!(sim.lock().trade_part("ku-1", 0.002));
    r.pump(|s| s.fills.len() == 1);
    assert_eq!(r.s.updates(buy), vec!["Accepted", "PartiallyFilled"]);
    assert!((r.s.fills[0].quantity - 0.002).abs() < 1e-12 && r.s.fills[0].price == 59_000.0);
    assert!(sim.lock().trade_part("ku-1", 0.003));
    r.until(buy, "Filled");
    assert!((r.e.ctx.position(BTC) - 0.005).abs() < 1e-12);

    // A resting sell; the stream loses the events of its fill, then drops. The agent
    // subscribes again and the catch-up finds the fill.
    let sell = r.submit(OrderRequest::limit(BTC, Side::Sell, OrderSize::Units(0.004), 61_000.0));
    r.until(sell, "Accepted");
    sim.lock().user_events_muted = true;
    sim.lock().trade_at("BTCUSDT", 61_500.0);
    assert_eq!(sim.lock().orders[1].status, "FILLED");
    sim.lock().user_events_muted = false;
    sim.kick_user_streams();
    r.until(sell, "Filled");
    assert_eq!(sim.lock().user_subscriptions, 2, "subscribed again after the drop");
    assert!((r.e.ctx.position(BTC) - 0.001).abs() < 1e-12);

    // Each trade once, in the journal as at the exchange.
    assert_eq!(r.s.fills.len(), 3, "{:?}", r.s.fills);
    let j = r.e.exec.journal();
    assert_eq!(j.fills("binance-spot", "BTCUSDT").unwrap().len(), sim.lock().trades.len());
    for o in j.orders().unwrap() {
        assert_eq!((o.status.as_deref(), o.state), (Some("FILLED"), OrderState::Final), "{o:?}");
    }
}

#[test]
fn a_wrong_secret_is_refused_with_binances_error() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let state = SimState::new(KEY, SECRET, vec![SimSymbol::btcusdt()], &[]);
    let sim = rt.block_on(SimExchange::start(state)).unwrap();
    for (key, secret, says) in [(KEY, "not-the-secret", "-1022"), ("not-the-key", SECRET, "-2015")]
    {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let stream = UserStream {
            url: sim.ws_url.clone(),
            creds: Credentials::new(key, secret),
            clock_offset_ms: 0,
        };
        rt.spawn(run_user_stream(stream, tx));
        let ev = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.ok().flatten()
        });
        match ev {
            Some(UserEvent::Down(why)) => {
                assert!(why.contains(says) && why.contains("refused"), "{why}");
                assert!(!why.contains(secret), "the secret never shows: {why}");
            }
            other => panic!("not refused: {other:?}"),
        }
    }
    assert_eq!(sim.lock().user_subscriptions, 0);
}
