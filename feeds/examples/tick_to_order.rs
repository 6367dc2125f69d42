//! In-process tick-to-order latency: from a raw message's arrival (before parsing) to the
//! order it causes reaching the venue, over the spot BTC recording with `book_imbalance` and
//! the paper venue, then the same through the risk engine (every rule and breaker set, at
//! limits the run never reaches, so that every order is checked and none refused). Prints
//! p50, p99 and p99.9 in microseconds.
//!
//! `cargo run --release -p kairos-feeds --example tick_to_order [FILE]`

use std::time::Instant;

use kairos_engine::paper::{PaperConfig, PaperVenue};
use kairos_engine::risk::{Risk, RiskLimits};
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

/// Limits on every rule and breaker that the run does not reach.
fn limits() -> RiskLimits {
    RiskLimits {
        max_order_notional: Some(1e6),
        max_position: [("BTCUSDT".to_string(), 1.0)].into(),
        max_total_notional: Some(1e7),
        price_band_bps: Some(100.0),
        max_orders_per_s: Some(1_000_000),
        max_orders_per_min: Some(10_000_000),
        reduce_daily_loss: Some(1e8),
        max_daily_loss: Some(1e9),
        reduce_drawdown_pct: Some(90.0),
        max_drawdown_pct: Some(99.0),
        cancel_on_halt: Some(true),
    }
}

/// Where the venue is, in either stack.
trait Arrivals {
    fn arrived(&self) -> &[Instant];
}

impl Arrivals for Timed {
    fn arrived(&self) -> &[Instant] {
        &self.arrived
    }
}

impl Arrivals for Risk<Timed> {
    fn arrived(&self) -> &[Instant] {
        &self.inner.arrived
    }
}

/// One replay of `lines`; adds each order's latency from the raw and the parsed message.
fn replay<X: Execution + Arrivals>(
    lines: &[String],
    make: impl Fn(&Context) -> X,
    samples: &mut Vec<f64>,
    after_parse: &mut Vec<f64>,
) {
    let inst = Instrument::new("BTCUSDT", "binance").with_tick_size(0.01).with_lot_size(0.00001);
    let ctx = Context::new(vec![inst], 1e6);
    let venue = make(&ctx);
    let mut engine = Engine::historical(ctx, venue);
    engine.halt(InstrumentId(0), "not synchronised");
    let mut strategy = BookImbalance::new(5, 0.3, 0.001, 0.005, Timestamp(0));
    let mut norm = BinanceNormaliser::new(&["BTCUSDT".to_string()], None);
    engine.start(&mut strategy);
    for l in lines {
        let t0 = Instant::now();
        let before = engine.exec.arrived().len();
        let mut t1 = t0;
        if let Ok(m) = binance::parse(l) {
            t1 = Instant::now();
            norm.on_message(&m, &mut Drive { engine: &mut engine, strategy: &mut strategy });
        }
        if let Some(t) = engine.exec.arrived().get(before) {
            samples.push(t.duration_since(t0).as_nanos() as f64 / 1000.0);
            after_parse.push(t.duration_since(t1).as_nanos() as f64 / 1000.0);
        }
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
    let paper = || Timed { inner: PaperVenue::new(PaperConfig::default()), arrived: Vec::new() };
    let (mut samples, mut after_parse) = (Vec::new(), Vec::new());
    let (mut risk_samples, mut risk_after_parse) = (Vec::new(), Vec::new());
    // Alternating rounds, so that both stacks see the same machine.
    for _round in 0..20 {
        replay(&lines, |_| paper(), &mut samples, &mut after_parse);
        replay(
            &lines,
            |ctx| Risk::new(paper(), limits(), ctx).expect("valid limits"),
            &mut risk_samples,
            &mut risk_after_parse,
        );
    }
    for (what, mut v) in [
        ("raw message", samples),
        ("parsed message", after_parse),
        ("raw message, through the risk engine", risk_samples),
        ("parsed message, through the risk engine", risk_after_parse),
    ] {
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
