//! A paper session against a misbehaving Binance on 127.0.0.1 (`kairos_feeds::testkit`) that
//! replays a real recording and, in one session, drops the connection, freezes its data while
//! still answering pings, sends a `serverShutdown` notice, withholds a diff (a gap) and slips in
//! garbage. The engine must see each fault, halt the instrument until its book is
//! synchronised again, refuse every order meanwhile (and only then), keep its book true to the
//! exchange's at every update, and never panic. A Coinbase-format server that skips a sequence
//! number, the same.

use std::path::Path;
use std::sync::Arc;

use kairos_agent::paper::{AgentFile, run_with};
use kairos_feeds::testkit::{self, BinanceRecording, CoinbaseMarket, Cut, Faults, TopOf};
use kairos_strategies::{
    BookUpdate, Context, Fill, OrderEvent, OrderId, OrderRequest, OrderSize, OrderUpdate,
    RejectRule, Side, Strategy, Timestamp, Trade, TradingStatus,
};
use tokio::sync::watch;

/// Whether a session has seen everything, from a book's sequence and best levels.
type Done = Box<dyn FnMut(u64, &TopOf) -> bool + Send>;

/// Trades on every print it can (one market order at a time, alternating sides), and notes
/// what it saw.
struct Probe {
    /// Whether the session has seen everything, from the book's sequence and best levels.
    done: Done,
    stop: watch::Sender<bool>,
    pending: Option<OrderId>,
    /// Every order: whether the instrument was tradable when it was sent, and how many status
    /// changes the strategy had seen by then.
    sent: Vec<(OrderId, bool, usize)>,
    /// Orders refused as halted: whether the instrument was tradable then, and the status
    /// changes seen by then.
    halted_rejects: Vec<(OrderId, bool, usize)>,
    other_rejects: Vec<String>,
    /// Filled orders.
    filled: Vec<OrderId>,
    /// Every fill's venue time.
    fill_times: Vec<Timestamp>,
    statuses: Vec<(bool, String)>,
    /// When each status change came (the engine's time).
    status_times: Vec<Timestamp>,
    /// The engine's book after every update: its sequence and best levels.
    books: Vec<(u64, TopOf)>,
    fills_after_last_resume: usize,
}

impl Strategy for Probe {
    fn on_book(&mut self, ctx: &mut Context, u: &BookUpdate<'_>) {
        let b = ctx.book(u.instrument);
        let top = (b.best_bid(), b.best_ask());
        self.books.push((u.sequence, top));
        if (self.done)(u.sequence, &top) {
            let _ = self.stop.send(true);
        }
    }

    fn on_trade(&mut self, ctx: &mut Context, t: &Trade) {
        if self.pending.is_some() {
            return;
        }
        let side = if ctx.position(t.instrument) > 0.0 { Side::Sell } else { Side::Buy };
        let tradable = ctx.tradable(t.instrument);
        let id = ctx.submit(OrderRequest::market(t.instrument, side, OrderSize::Units(0.001)));
        let id = id.expect("a valid order");
        self.pending = Some(id);
        self.sent.push((id, tradable, self.statuses.len()));
    }

    fn on_order(&mut self, ctx: &mut Context, e: &OrderEvent) {
        let tradable = ctx.tradable(e.instrument);
        match &e.update {
            OrderUpdate::Rejected(r) if r.rule == RejectRule::TradingHalted => {
                self.halted_rejects.push((e.order, tradable, self.statuses.len()))
            }
            OrderUpdate::Rejected(r) => self.other_rejects.push(format!("{r:?}")),
            OrderUpdate::Filled => {
                self.filled.push(e.order);
                self.fills_after_last_resume += 1;
            }
            _ => return,
        }
        if self.pending == Some(e.order) {
            self.pending = None;
        }
    }

    fn on_status(&mut self, ctx: &mut Context, s: &TradingStatus<'_>) {
        assert_eq!(ctx.tradable(s.instrument), s.tradable, "the context agrees with the event");
        if s.tradable {
            self.fills_after_last_resume = 0;
        }
        self.statuses.push((s.tradable, s.reason.to_string()));
        self.status_times.push(s.ts);
    }

    fn on_fill(&mut self, _ctx: &mut Context, f: &Fill) {
        self.fill_times.push(f.ts);
    }
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn faults_halt_the_instrument_until_resynchronised_and_only_then() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/binance-ws/spot/btcusdt_20240808.gz");
    if !path.exists() {
        assert!(std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(), "no {}", path.display());
        eprintln!("skipping: no {}", path.display());
        return;
    }
    let rec = BinanceRecording::read(&path).unwrap();
    let truth = rec.truth();
    let rec = Arc::new(rec);
    let gap = (1_000..).find(|&i| rec.stream[i].contains("depthUpdate")).unwrap();
    let faults = Faults {
        cuts: vec![(Cut::Drop, 4_000), (Cut::Freeze, 4_000), (Cut::Shutdown, 4_000)],
        withhold: Some(gap),
        garbage_every: Some(997),
        ..Faults::default()
    };
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let at = rt.block_on(testkit::serve(rec.clone(), faults)).unwrap();
    // duration_s is a guard against a hang; the probe ends the session at the last update.
    let cfg: AgentFile = toml::from_str(&format!(
        "strategy = \"probe\"\nduration_s = 90\n\
         [instruments.BTCUSDT]\ntick_size = 0.01\nlot_size = 0.00001\n\
         [[binance]]\nmarket = \"spot\"\nsymbols = [\"BTCUSDT\"]\nws_url = \"{}\"\nrest_url = \"{}\"\n\
         stale_after_s = 1\nping_every_s = 0.5\nbackoff_min_s = 0.01\nbackoff_max_s = 0.05\n",
        at.ws, at.rest
    ))
    .unwrap();
    let last = truth.last_update_id;
    let (probe, stop) = Probe::new(Box::new(move |seq, _| seq >= last));
    let (report, p) = rt.block_on(run_with(&cfg, probe, stop)).unwrap();
    drop(rt);

    assert_eq!(
        p.books.last().map(|b| b.0),
        Some(truth.last_update_id),
        "the session reached the end of the recording: {:?}",
        p.statuses
    );
    // The book the strategy reads is the exchange's at every update it was told about.
    assert!(p.books.len() > 1_000, "{} book updates", p.books.len());
    for (u, top) in &p.books {
        assert_eq!(Some(top), truth.tops.get(u), "the engine's book at update {u}");
    }
    // Each fault was seen and followed by a resynchronisation.
    let why = |needle: &str| p.statuses.iter().any(|(ok, w)| !ok && w.contains(needle));
    for needle in ["gap", "disconnected", "Stale", "Planned"] {
        assert!(why(needle), "no halt for `{needle}`: {:?}", p.statuses);
    }
    let resumes = p.statuses.iter().filter(|s| s.0).count();
    assert!(resumes >= 5, "synchronised at the start and after each of 4 faults: {:?}", p.statuses);
    p.assert_halts_refuse_orders_and_only_then();
    assert_eq!(report.halted_rejects, p.halted_rejects.len() as u64);
    assert!(p.filled.len() > 100, "{} fills", p.filled.len());
    assert!(report.malformed >= 30, "garbage counted: {}", report.malformed);
}

impl Probe {
    fn new(done: Done) -> (Self, watch::Receiver<bool>) {
        let (stop_tx, stop) = watch::channel(false);
        let p = Probe {
            done,
            stop: stop_tx,
            pending: None,
            sent: Vec::new(),
            halted_rejects: Vec::new(),
            other_rejects: Vec::new(),
            filled: Vec::new(),
            fill_times: Vec::new(),
            statuses: Vec::new(),
            status_times: Vec::new(),
            books: Vec::new(),
            fills_after_last_resume: 0,
        };
        (p, stop)
    }

    /// Orders were refused while halted, and only then: an order sent while halted is refused
    /// at once; one sent while tradable is refused only if a halt came before it reached the
    /// venue (the paper venue's entry latency); nothing fills while halted; trading resumed.
    fn assert_halts_refuse_orders_and_only_then(&self) {
        let p = self;
        assert!(p.statuses.last().is_some_and(|s| s.0), "tradable at the end: {:?}", p.statuses);
        for (id, tradable, seen) in &p.sent {
            let refused = p.halted_rejects.iter().find(|r| r.0 == *id);
            if !tradable {
                assert_eq!(refused.map(|r| r.2), Some(*seen), "order {id:?} sent while halted");
            } else if let Some(r) = refused {
                assert!(r.2 > *seen, "order {id:?} refused with no halt since it was sent");
            }
        }
        for r in &p.halted_rejects {
            assert!(!r.1, "order {:?} refused as halted while tradable", r.0);
        }
        // A fill's report may arrive after a halt (the response latency); the fill itself
        // never falls inside a halt.
        let mut windows = Vec::new();
        for (k, (ok, _)) in p.statuses.iter().enumerate() {
            if !ok {
                let end = p.status_times.get(k + 1).copied().unwrap_or(Timestamp(i64::MAX));
                windows.push((p.status_times[k], end));
            }
        }
        for f in &p.fill_times {
            let inside = windows.iter().find(|w| w.0 < *f && *f < w.1);
            assert!(inside.is_none(), "a fill at {f:?} while halted {inside:?}");
        }
        assert!(p.sent.iter().any(|s| !s.1), "no order met a halt: {:?}", p.statuses);
        assert!(p.other_rejects.is_empty(), "{:?}", p.other_rejects);
        assert!(p.fills_after_last_resume > 0, "trading resumed after the last resynchronisation");
    }
}

/// The same through a Coinbase connection: a sequence number skipped on the first connection
/// halts `BTC-USD` until the new connection's snapshot; the book the strategy reads only ever
/// takes states the exchange's book went through, in order.
#[test]
fn a_coinbase_sequence_gap_halts_the_product_until_the_new_snapshot() {
    let market =
        CoinbaseMarket { updates: 3_000, gap_at: Some(400), trade_every: 2, heartbeat_every: 50 };
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (url, ex) = rt.block_on(testkit::serve_coinbase(market)).unwrap();
    let cfg: AgentFile = toml::from_str(&format!(
        "strategy = \"probe\"\nduration_s = 90\n\
         [instruments.BTC-USD]\ntick_size = 0.01\nlot_size = 0.00000001\n\
         [[coinbase]]\nproducts = [\"BTC-USD\"]\nws_url = \"{url}\"\nbackoff_min_s = 0.01\n"
    ))
    .unwrap();
    let seen = ex.clone();
    let (probe, stop) = Probe::new(Box::new(move |_, top| {
        let e = seen.lock().unwrap();
        e.updates == market.updates && e.tops.last() == Some(top)
    }));
    let (report, p) = rt.block_on(run_with(&cfg, probe, stop)).unwrap();
    drop(rt);

    let e = ex.lock().unwrap();
    assert_eq!(e.connections, 2, "reconnected once, after the gap: {:?}", p.statuses);
    assert!(p.statuses.iter().any(|s| !s.0 && s.1.contains("sequence gap")), "{:?}", p.statuses);
    assert_eq!(p.statuses.iter().filter(|s| s.0).count(), 2, "{:?}", p.statuses);
    // Every book the strategy read is one the exchange's went through, in order.
    let mut at = 0;
    for (_, b) in &p.books {
        let found = e.tops[at..].iter().position(|t| t == b);
        at += found.unwrap_or_else(|| panic!("{b:?} is not a state of the book after {at}"));
    }
    assert!(p.books.len() > market.updates / 6, "{} book updates", p.books.len());
    assert_eq!(p.books.last().map(|b| b.1), e.tops.last().copied(), "the final book");
    p.assert_halts_refuse_orders_and_only_then();
    assert_eq!(report.halted_rejects, p.halted_rejects.len() as u64);
    assert!(p.filled.len() > 100, "{} fills", p.filled.len());
    assert_eq!(report.malformed, 0);
}
