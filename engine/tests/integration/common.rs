//! A scripted strategy and helpers to drive an engine by hand.

use kairos_engine::Engine;
use kairos_engine::paper::{PaperConfig, PaperVenue};
use kairos_strategies::{
    BookUpdate, Context, Fill, Fixed, Instrument, InstrumentId, MarketEvent, OrderEvent, OrderId,
    OrderRequest, Side, Strategy, Timer, Timestamp, Trade,
};

pub const BTC: InstrumentId = InstrumentId(0);

pub fn fx(s: &str) -> Fixed {
    Fixed::parse(s).unwrap()
}

pub fn ms(t: i64) -> Timestamp {
    Timestamp::from_millis(t)
}

/// Records everything and sends the orders it is given, when it is given them.
#[derive(Default)]
pub struct Script {
    pub send: Vec<OrderRequest>,
    pub sent: Vec<OrderId>,
    pub events: Vec<OrderEvent>,
    pub fills: Vec<Fill>,
    pub timers: Vec<(Timestamp, Timer)>,
}

impl Script {
    pub fn flush(&mut self, ctx: &mut Context) {
        for r in std::mem::take(&mut self.send) {
            self.sent.push(ctx.submit(r).expect("valid order"));
        }
    }

    pub fn updates_of(&self, id: OrderId) -> Vec<String> {
        self.events.iter().filter(|e| e.order == id).map(|e| format!("{:?}", e.update)).collect()
    }
}

impl Strategy for Script {
    fn on_start(&mut self, ctx: &mut Context) {
        self.flush(ctx);
    }
    fn on_order(&mut self, _ctx: &mut Context, event: &OrderEvent) {
        self.events.push(event.clone());
    }
    fn on_fill(&mut self, _ctx: &mut Context, fill: &Fill) {
        self.fills.push(*fill);
    }
    fn on_timer(&mut self, ctx: &mut Context, timer: &Timer) {
        self.timers.push((ctx.now(), *timer));
    }
}

/// Submits the script's pending orders and hands them to the venue.
pub fn send(e: &mut Engine<impl kairos_engine::Execution>, s: &mut Script) {
    s.flush(&mut e.ctx);
    e.run_pending(s);
}

pub fn engine(cfg: PaperConfig) -> Engine<PaperVenue> {
    let btc = Instrument::new("BTCUSDT", "paper").with_tick_size(0.01).with_lot_size(0.001);
    Engine::historical(Context::new(vec![btc], 100_000.0), PaperVenue::new(cfg))
}

/// No fees, no latency.
pub fn instant() -> PaperConfig {
    PaperConfig { maker_fee: 0.0, taker_fee: 0.0, entry_latency_ns: 0, response_latency_ns: 0 }
}

pub fn snapshot(
    e: &mut Engine<impl kairos_engine::Execution>,
    s: &mut Script,
    ts: Timestamp,
    bids: &[(&str, &str)],
    asks: &[(&str, &str)],
) {
    let b: Vec<_> = bids.iter().map(|(p, q)| (fx(p), fx(q))).collect();
    let a: Vec<_> = asks.iter().map(|(p, q)| (fx(p), fx(q))).collect();
    e.book(s, &BookUpdate { instrument: BTC, ts, sequence: 1, bids: &b, asks: &a, snapshot: true });
}

pub fn level(
    e: &mut Engine<impl kairos_engine::Execution>,
    s: &mut Script,
    ts: Timestamp,
    side: Side,
    p: &str,
    q: &str,
) {
    let l = [(fx(p), fx(q))];
    let (bids, asks): (&[_], &[_]) = match side {
        Side::Buy => (&l, &[]),
        Side::Sell => (&[], &l),
    };
    e.book(s, &BookUpdate { instrument: BTC, ts, sequence: 2, bids, asks, snapshot: false });
}

pub fn trade(
    e: &mut Engine<impl kairos_engine::Execution>,
    s: &mut Script,
    ts: Timestamp,
    price: f64,
    size: f64,
    aggressor: Side,
) {
    e.market(s, &MarketEvent::Trade(Trade { instrument: BTC, ts, price, size, aggressor }));
}
