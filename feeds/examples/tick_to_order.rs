//! In-process tick-to-order latency: from a raw message's arrival (before parsing) to the
//! order it causes reaching the venue, over the spot BTC recording with `book_imbalance` and
//! the paper venue. Prints p50, p99 and p99.9 in microseconds.
//!
//! `cargo run --release -p kairos-feeds --example tick_to_order [FILE]`

use std::time::Instant;

use kairos_engine::paper::{PaperConfig, PaperVenue};
use kairos_engine::{Engine, Execution, Reports};
use kairos_feeds::binance;
use kairos_feeds::normalise::{BinanceNormaliser, Drive};
use kairos_strategies::builtin::BookImbalance;
use kairos_strategies::{BookUpdate, Command, Context, Instrument, InstrumentId, Timestamp, Trade};

/// The paper venue, noting when each new order reaches it.
struct Timed {
    inner: PaperVenue,
    arrived: Vec<Instant>,
}

impl Execution for Timed {
    fn command(&mut self, ctx: &mut Context, command: &Command, out: &mut Reports) {
        if matches!(command, Command::Submit(_)) {
            self.arrived.push(Instant::now());
        }
        self.inner.command(ctx, command, out)
    }
    fn has_working(&self) -> bool {
        self.inner.has_working()
    }
    fn working(&self) -> usize {
        self.inner.working()
    }
    fn rejected(&self) -> u64 {
        self.inner.rejected()
    }
    fn on_trade(&mut self, ctx: &mut Context, trade: &Trade, out: &mut Reports) {
        self.inner.on_trade(ctx, trade, out)
    }
    fn on_book(&mut self, ctx: &mut Context, update: &BookUpdate<'_>, out: &mut Reports) {
        self.inner.on_book(ctx, update, out)
    }
    fn next_wakeup(&self) -> Option<Timestamp> {
        self.inner.next_wakeup()
    }
    fn wake(&mut self, ctx: &mut Context, out: &mut Reports) {
        self.inner.wake(ctx, out)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/binance-ws/spot/btcusdt_20240808.gz".into());
    let f = flate2::read::MultiGzDecoder::new(std::fs::File::open(&path)?);
    let lines: Vec<String> = std::io::BufRead::lines(std::io::BufReader::new(f))
        .map(|l| l.map(|l| l.split_once(' ').map(|(_, j)| j.to_string()).unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    let mut samples = Vec::new();
    let mut after_parse = Vec::new();
    for _round in 0..20 {
        let inst =
            Instrument::new("BTCUSDT", "binance").with_tick_size(0.01).with_lot_size(0.00001);
        let venue = Timed { inner: PaperVenue::new(PaperConfig::default()), arrived: Vec::new() };
        let mut engine = Engine::historical(Context::new(vec![inst], 1e6), venue);
        engine.halt(InstrumentId(0), "not synchronised");
        let mut strategy = BookImbalance::new(5, 0.3, 0.001, 0.005, Timestamp(0));
        let mut norm = BinanceNormaliser::new(&["BTCUSDT".to_string()], None);
        engine.start(&mut strategy);
        for l in &lines {
            let t0 = Instant::now();
            let before = engine.exec.arrived.len();
            let mut t1 = t0;
            if let Ok(m) = binance::parse(l) {
                t1 = Instant::now();
                norm.on_message(&m, &mut Drive { engine: &mut engine, strategy: &mut strategy });
            }
            if let Some(t) = engine.exec.arrived.get(before) {
                samples.push(t.duration_since(t0).as_nanos() as f64 / 1000.0);
                after_parse.push(t.duration_since(t1).as_nanos() as f64 / 1000.0);
            }
        }
    }
    for (what, mut v) in [("raw message", samples), ("parsed message", after_parse)] {
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
        println!(
            "tick-to-order from the {what}, over {} orders: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.2} µs",
            v.len(),
            q(0.5),
            q(0.99),
            q(0.999),
            v.last().copied().unwrap_or(0.0)
        );
    }
    Ok(())
}
