//! Runs a strategy over a recorded Binance feed with paper execution: the same parser, book,
//! engine and paper venue as a live paper session (`kairos paper`), fed from a file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use kairos_engine::Engine;
use kairos_engine::paper::{PaperConfig, PaperVenue};
use kairos_engine::risk::{Risk, RiskLimits, TradingState, Transition};
use kairos_feeds::binance::{self, Message};
use kairos_feeds::coinbase::Payload as CbPayload;
use kairos_feeds::normalise::{BinanceNormaliser, CoinbaseNormaliser, Counts, Drive};
use kairos_strategies::{
    Bar, BookUpdate, Context, Data, Fill, Fixed, Instrument, InstrumentId, OrderEvent, Quote,
    RiskRule, Strategy, Timer, Trade, TradingStatus,
};

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as it goes.
    Max,
    /// `x` times the recorded pace (by the recording's receive times).
    Times(f64),
}

impl std::str::FromStr for Speed {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "max" {
            return Ok(Speed::Max);
        }
        let x = s.strip_suffix('x').and_then(|v| v.parse::<f64>().ok());
        match x {
            Some(x) if x.is_finite() && x > 0.0 => Ok(Speed::Times(x)),
            _ => bail!("speed `{s}`: expected max, or a positive multiple such as 1x or 10x"),
        }
    }
}

/// A recording in memory: `(receive ns, raw JSON)` per line.
pub struct Recording {
    /// The lines, split.
    pub lines: Vec<(i64, String)>,
    /// Lines without a receive time and a message.
    pub malformed_lines: u64,
    /// Seconds spent reading and decompressing.
    pub read_s: f64,
}

impl Recording {
    /// Reads and decompresses a recording (`.gz` or plain).
    pub fn read(path: &Path) -> Result<Self> {
        let started = Instant::now();
        let (raw, cut) = kairos_feeds::record::read_lines(path)?;
        if cut {
            say!(
                "warning: {}: the file ends in a cut-off gzip member (a recorder stopped mid-write); replaying what precedes it",
                path.display()
            );
        }
        let mut lines = Vec::with_capacity(raw.len());
        let mut malformed_lines = 0;
        for line in raw {
            match line.split_once(' ').map(|(t, j)| (t.parse::<i64>(), j)) {
                Some((Ok(t), json)) => lines.push((t, json.to_string())),
                _ => malformed_lines += 1,
            }
        }
        Ok(Self { lines, malformed_lines, read_s: started.elapsed().as_secs_f64() })
    }

    /// The exchange the recording is from: `coinbase` when its messages are Coinbase
    /// Advanced Trade envelopes, else `binance`.
    pub fn venue(&self) -> &'static str {
        let jsons = self.lines.iter().map(|(_, j)| j.as_str());
        if kairos_feeds::recording::is_coinbase(jsons) { "coinbase" } else { "binance" }
    }

    /// The symbols the recording's diffs and trades are about (anywhere in the file), with
    /// the finest price and size steps their first 20,000 messages use (both exchanges print
    /// every price on its tick grid). A step that fewer than one value in a thousand uses is
    /// taken for a stray (the spot BTC recording has one level size with six decimals among
    /// 56,000 with five or fewer, and Binance's lot for it is 0.00001); `--tick-size` and
    /// `--lot-size` override both.
    pub fn instruments(&self, venue: &str) -> Vec<Instrument> {
        // Per symbol: how many prices and sizes use each number of decimals.
        type Counts = [u64; Fixed::DECIMALS as usize + 1];
        let mut found: Vec<(String, Counts, Counts)> = Vec::new();
        let mut note = |sym: &str,
                        prices: &mut dyn Iterator<Item = Fixed>,
                        sizes: &mut dyn Iterator<Item = Fixed>| {
            let i = match found.iter().position(|f| f.0 == sym) {
                Some(i) => i,
                None => {
                    found.push((sym.to_string(), Counts::default(), Counts::default()));
                    found.len() - 1
                }
            };
            prices.for_each(|p| found[i].1[decimals(p) as usize] += 1);
            sizes.for_each(|q| found[i].2[decimals(q) as usize] += 1);
        };
        // A symbol's steps are read from its first 20,000 messages; every line is looked at,
        // so that a symbol first seen late in the file is an instrument too. A Binance line's
        // symbol is read from its stream name without parsing it.
        const ENOUGH: u32 = 20_000;
        let mut parsed: Vec<(String, u32)> = Vec::new();
        for (_, json) in &self.lines {
            let done =
                |sym: &str| parsed.iter().any(|(s, n)| *n >= ENOUGH && s.eq_ignore_ascii_case(sym));
            let skip = if venue == "coinbase" {
                let mut products = json
                    .match_indices("\"product_id\":\"")
                    .filter_map(|(i, k)| json[i + k.len()..].split_once('"').map(|(p, _)| p));
                products.next().is_some_and(&done) && products.all(&done)
            } else {
                stream_symbol(json).is_some_and(done)
            };
            if skip {
                continue;
            }
            let mut seen = |sym: &str| match parsed.iter_mut().find(|(s, _)| s == sym) {
                Some((_, n)) => *n += 1,
                None => parsed.push((sym.to_string(), 1)),
            };
            if venue == "coinbase" {
                match kairos_feeds::coinbase::parse(json).map(|m| m.payload) {
                    Ok(CbPayload::Book(events)) => {
                        for e in events {
                            seen(&e.product);
                            let (p, q): (Vec<Fixed>, Vec<Fixed>) =
                                e.levels.iter().map(|l| (l.1, l.2)).unzip();
                            note(&e.product, &mut p.into_iter(), &mut q.into_iter());
                        }
                    }
                    Ok(CbPayload::Trades(trades)) => {
                        for t in trades {
                            seen(&t.product);
                            let (p, q) = (std::iter::once(t.price), std::iter::once(t.size));
                            note(&t.product, &mut p.into_iter(), &mut q.into_iter());
                        }
                    }
                    _ => {}
                }
                continue;
            }
            match binance::parse(json) {
                Ok(Message::Depth(d)) => {
                    seen(&d.symbol);
                    let levels = d.bids.iter().chain(&d.asks);
                    note(&d.symbol, &mut levels.clone().map(|l| l.0), &mut levels.map(|l| l.1));
                }
                Ok(Message::Trade(t)) => {
                    seen(&t.symbol);
                    note(&t.symbol, &mut std::iter::once(t.price), &mut std::iter::once(t.qty))
                }
                _ => {}
            }
        }
        found
            .into_iter()
            .map(|(s, pd, qd)| {
                Instrument::new(s, venue)
                    .with_tick_size(10f64.powi(-(finest(&pd) as i32)))
                    .with_lot_size(10f64.powi(-(finest(&qd) as i32)))
            })
            .collect()
    }
}

/// The symbol a Binance combined-stream line names (`{"stream":"btcusdt@depth@100ms",...`),
/// lower case as written, without parsing the line.
fn stream_symbol(json: &str) -> Option<&str> {
    json.strip_prefix("{\"stream\":\"")?.split_once('@').map(|(s, _)| s)
}

/// The most decimals that at least one value in a thousand uses (0 when there are none).
fn finest(counts: &[u64]) -> u32 {
    let total: u64 = counts.iter().sum();
    counts.iter().rposition(|&n| n > 0 && n * 1000 >= total).unwrap_or(0) as u32
}

/// Fractional digits a decimal uses.
fn decimals(x: Fixed) -> u32 {
    let mut u = x.units();
    if u == 0 {
        return 0;
    }
    let mut d = Fixed::DECIMALS;
    while d > 0 && u % 10 == 0 {
        u /= 10;
        d -= 1;
    }
    d
}

/// Forwards every hook to the strategy and keeps the order events for the report.
pub struct Recorder<S, K = Vec<OrderEvent>> {
    /// The strategy.
    pub inner: S,
    /// Where its order events go (every one, in order).
    pub events: K,
}

/// What a [`Recorder`] hands each order event to.
pub trait OrderSink: Send {
    /// One order event.
    fn order(&mut self, event: &OrderEvent);
    /// One fill.
    fn fill(&mut self, _fill: &Fill) {}
}

impl OrderSink for Vec<OrderEvent> {
    fn order(&mut self, event: &OrderEvent) {
        self.push(event.clone());
    }
}

impl<S: Strategy, K: OrderSink> Strategy for Recorder<S, K> {
    fn on_start(&mut self, ctx: &mut Context) {
        self.inner.on_start(ctx)
    }
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        self.inner.on_bar(ctx, bar)
    }
    fn on_trade(&mut self, ctx: &mut Context, trade: &Trade) {
        self.inner.on_trade(ctx, trade)
    }
    fn on_quote(&mut self, ctx: &mut Context, quote: &Quote) {
        self.inner.on_quote(ctx, quote)
    }
    fn on_book(&mut self, ctx: &mut Context, update: &BookUpdate<'_>) {
        self.inner.on_book(ctx, update)
    }
    fn on_fill(&mut self, ctx: &mut Context, fill: &Fill) {
        self.events.fill(fill);
        self.inner.on_fill(ctx, fill)
    }
    fn on_order(&mut self, ctx: &mut Context, event: &OrderEvent) {
        self.events.order(event);
        self.inner.on_order(ctx, event)
    }
    fn on_timer(&mut self, ctx: &mut Context, timer: &Timer) {
        self.inner.on_timer(ctx, timer)
    }
    fn on_data(&mut self, ctx: &mut Context, data: &Data) {
        self.inner.on_data(ctx, data)
    }
    fn on_status(&mut self, ctx: &mut Context, status: &TradingStatus<'_>) {
        self.inner.on_status(ctx, status)
    }
    fn on_stop(&mut self, ctx: &mut Context) {
        self.inner.on_stop(ctx)
    }
}

/// What a replay did.
pub struct ReplayReport {
    /// The instruments.
    pub instruments: Vec<Instrument>,
    /// Messages handed to the parser.
    pub messages: u64,
    /// Messages that did not parse (counted, skipped).
    pub malformed: u64,
    /// What the normaliser did.
    pub counts: Counts,
    /// Every fill.
    pub fills: Vec<Fill>,
    /// Every order event.
    pub events: Vec<OrderEvent>,
    /// Orders refused because their instrument was halted.
    pub halted_rejects: u64,
    /// Equity at the end, at the last marks.
    pub equity: f64,
    /// Starting cash.
    pub cash: f64,
    /// Net positions at the end.
    pub positions: Vec<f64>,
    /// Seconds in the replay loop (parse, book, engine, strategy, paper venue).
    pub run_s: f64,
    /// The risk engine's trading state at the end.
    pub risk_state: TradingState,
    /// Orders the risk engine refused, by rule (the rules that refused any).
    pub risk_refused: Vec<(RiskRule, u64)>,
    /// The risk engine's changes of trading state.
    pub risk_transitions: Vec<Transition>,
}

impl ReplayReport {
    /// The risk engine's part of the report, read from it at the end of a run.
    pub(crate) fn risk_of<X: kairos_engine::Execution>(
        risk: &Risk<X>,
    ) -> (TradingState, Vec<(RiskRule, u64)>, Vec<Transition>) {
        (
            risk.trading_state(),
            risk.refused().filter(|(_, n)| *n > 0).collect(),
            risk.transitions().to_vec(),
        )
    }
}

/// The `[risk]` table of a TOML file (an agent's config, or a file holding only that table).
pub fn risk_from_file(path: &std::path::Path) -> Result<RiskLimits> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read risk settings {}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("risk settings {}", path.display()))?;
    let Some(risk) = table.remove("risk") else {
        bail!("{}: no [risk] table", path.display());
    };
    risk.try_into().with_context(|| format!("{}: [risk]", path.display()))
}

/// Everything a replay needs.
pub struct ReplaySetup {
    /// Instruments (from the recording, or given).
    pub instruments: Vec<Instrument>,
    /// Starting cash.
    pub cash: f64,
    /// The paper venue's fees and latencies.
    pub paper: PaperConfig,
    /// Pace.
    pub speed: Speed,
    /// The risk engine's limits and breakers.
    pub risk: RiskLimits,
}

/// Replays `rec` through `strategy`.
pub fn run<S: Strategy>(rec: &Recording, setup: &ReplaySetup, strategy: S) -> Result<ReplayReport> {
    setup.paper.validate().map_err(|e| anyhow::anyhow!("paper settings: {e}"))?;
    if setup.instruments.is_empty() {
        bail!("the recording holds no depth diffs or trades: nothing to replay");
    }
    for i in &setup.instruments {
        i.validate()?;
    }
    let symbols: Vec<String> = setup.instruments.iter().map(|i| i.symbol.clone()).collect();
    let coinbase = rec.venue() == "coinbase";
    let mut norm = BinanceNormaliser::new(&symbols, None);
    let mut cb = CoinbaseNormaliser::new(&symbols);
    let ctx = Context::new(setup.instruments.clone(), setup.cash);
    let venue = Risk::new(PaperVenue::new(setup.paper), setup.risk.clone(), &ctx)
        .map_err(|e| anyhow::anyhow!("[risk] {e}"))?;
    let mut engine = Engine::historical(ctx, venue);
    for k in 0..symbols.len() {
        engine.halt(InstrumentId(k as u32), "book not synchronised yet");
    }
    let mut strategy = Recorder { inner: strategy, events: Vec::new() };
    engine.start(&mut strategy);
    let (mut messages, mut malformed) = (0u64, 0u64);
    let started = Instant::now();
    let first = rec.lines.first().map_or(0, |l| l.0);
    for (recv, json) in &rec.lines {
        if let Speed::Times(x) = setup.speed {
            let due = Duration::from_secs_f64(((recv - first).max(0) as f64 / 1e9) / x);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        messages += 1;
        let mut drive = Drive { engine: &mut engine, strategy: &mut strategy };
        let parsed = if coinbase {
            kairos_feeds::coinbase::parse(json)
                .map(|m| {
                    // A gap in a recording stays a gap: the books wait for the next snapshot
                    // (the recorder's renewed connection brought one).
                    let _ = cb.on_message(&m, &mut drive);
                })
                .map_err(|e| e.to_string())
        } else {
            binance::parse(json).map(|m| norm.on_message(&m, &mut drive)).map_err(|e| e.to_string())
        };
        if let Err(e) = parsed {
            malformed += 1;
            tracing::debug!(error = %e, "skipped a message");
        }
    }
    let run_s = started.elapsed().as_secs_f64();
    engine.stop(&mut strategy);
    let (fills, _) = engine.take_history();
    let positions =
        (0..symbols.len()).map(|k| engine.ctx.position(InstrumentId(k as u32))).collect();
    let (risk_state, risk_refused, risk_transitions) = ReplayReport::risk_of(&engine.exec);
    Ok(ReplayReport {
        instruments: setup.instruments.clone(),
        messages,
        malformed,
        counts: if coinbase { cb.counts() } else { norm.counts() },
        fills,
        events: strategy.events,
        halted_rejects: engine.halted_rejects(),
        equity: engine.ctx.equity(),
        cash: setup.cash,
        positions,
        run_s,
        risk_state,
        risk_refused,
        risk_transitions,
    })
}

/// Writes `fills.csv` and `orders.csv` into `dir`.
pub fn write_report(dir: &PathBuf, r: &ReplayReport) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let sym = |id: InstrumentId| r.instruments.get(id.index()).map_or("?", |i| i.symbol.as_str());
    let mut fills = String::from("order,ts_ns,symbol,side,quantity,price,commission\n");
    for f in &r.fills {
        fills.push_str(&format!(
            "{},{},{},{:?},{},{},{}\n",
            f.order.0,
            f.ts.0,
            sym(f.instrument),
            f.side,
            f.quantity,
            f.price,
            f.commission
        ));
    }
    let mut orders = String::from("order,ts_ns,symbol,update\n");
    for e in &r.events {
        let update = format!("{:?}", e.update).replace(',', ";").replace('"', "'");
        orders.push_str(&format!("{},{},{},{}\n", e.order.0, e.ts.0, sym(e.instrument), update));
    }
    for (name, body) in [("fills.csv", fills), ("orders.csv", orders)] {
        let p = dir.join(name);
        std::fs::write(&p, body).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// A line-per-fact summary for people.
pub fn summary(r: &ReplayReport) -> String {
    use kairos_strategies::OrderUpdate as U;
    let count = |f: &dyn Fn(&U) -> bool| r.events.iter().filter(|e| f(&e.update)).count();
    let mut s = String::new();
    s.push_str(&format!(
        "replay: {} messages ({} malformed) in {:.3} s ({:.2} M msg/s): {} book updates, {} trades, {} diffs unsynced, {} gaps\n",
        r.messages,
        r.malformed,
        r.run_s,
        r.messages as f64 / r.run_s.max(1e-9) / 1e6,
        r.counts.books,
        r.counts.trades,
        r.counts.unsynced,
        r.counts.gaps
    ));
    s.push_str(&format!(
        "orders: {} accepted, {} rejected ({} while halted), {} cancelled, {} expired; {} fills\n",
        count(&|u| matches!(u, U::Accepted)),
        count(&|u| matches!(u, U::Rejected(_))),
        r.halted_rejects,
        count(&|u| matches!(u, U::Cancelled)),
        count(&|u| matches!(u, U::Expired)),
        r.fills.len()
    ));
    for (i, p) in r.instruments.iter().zip(&r.positions) {
        s.push_str(&format!("{}: position {p}\n", i.symbol));
    }
    s.push_str(&format!("equity: {:.2} (started with {:.2})\n", r.equity, r.cash));
    let refused: Vec<String> =
        r.risk_refused.iter().map(|(rule, n)| format!("{n} {}", rule.name())).collect();
    s.push_str(&format!(
        "risk: {}; refused {}\n",
        r.risk_state.name(),
        if refused.is_empty() { "none".to_string() } else { refused.join(", ") }
    ));
    for t in &r.risk_transitions {
        s.push_str(&format!(
            "risk: {} -> {} at {}: {}\n",
            t.from.name(),
            t.to.name(),
            t.at.to_iso(),
            t.why
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::finest;

    #[test]
    fn a_stray_finer_value_does_not_set_the_step() {
        // The spot BTC recording's sizes: one value with six decimals among tens of thousands.
        assert_eq!(finest(&[26_175, 50, 952, 379, 3_654, 24_962, 1, 0, 0]), 5);
        // One in a thousand is enough, and a coarse series keeps its step.
        assert_eq!(finest(&[999, 1, 0, 0, 0, 0, 0, 0, 0]), 1);
        assert_eq!(finest(&[0, 0, 7, 0, 0, 0, 0, 0, 0]), 2);
        assert_eq!(finest(&[0; 9]), 0);
    }
}
