//! `kairos paper --config agent.toml`: strategies on live feeds with paper execution.
//!
//! The session is the engine every mode runs, with a live clock, the Binance feed (and any DEX
//! pools) as its sources and the paper venue as its execution client. Feed adapters run on
//! tokio and hand the engine their events through bounded channels; the engine itself runs
//! on one task, synchronously. Every key of the config file is documented in
//! `examples/agent.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use kairos_engine::paper::{PaperConfig, PaperVenue};
use kairos_engine::risk::{Risk, RiskLimits};
use kairos_engine::{Engine, LiveClock, Reports};
use kairos_feeds::binance::Market;
use kairos_feeds::binance_live::{BinanceFeed, FeedEvent};
use kairos_feeds::coinbase_live::{CoinbaseFeed, FeedEvent as CbEvent};
use kairos_strategies::{
    Context, Instrument, InstrumentId, MarketEvent, Registry, Strategy, Timestamp,
};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use crate::replay::{Recorder, ReplayReport};

/// The config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    /// Strategy name (`kairos strategies`).
    pub strategy: String,
    /// Strategy parameters.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// Starting cash in the quote currency.
    #[serde(default = "default_cash")]
    pub cash: f64,
    /// Stop after this many seconds (0: run until Ctrl-C or SIGTERM).
    #[serde(default)]
    pub duration_s: f64,
    /// Folder for fills.csv and orders.csv (relative to the config file).
    pub out: Option<PathBuf>,
    /// The paper venue's fees and latencies.
    #[serde(default)]
    pub paper: PaperConfig,
    /// Tick and lot size of every instrument, by symbol.
    #[serde(default)]
    pub instruments: BTreeMap<String, InstrumentSpec>,
    /// Binance feeds.
    #[serde(default)]
    pub binance: Vec<BinanceSpec>,
    /// Coinbase Advanced Trade feeds.
    #[serde(default)]
    pub coinbase: Vec<CoinbaseSpec>,
    /// Uniswap pools.
    #[serde(default)]
    pub dex: Vec<DexSpec>,
    /// The risk engine's limits and breakers (`kairos_engine::risk::RiskLimits`).
    #[serde(default)]
    pub risk: RiskLimits,
}

fn default_cash() -> f64 {
    100_000.0
}

/// An instrument's increments.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSpec {
    /// Price step.
    pub tick_size: f64,
    /// Size step.
    pub lot_size: f64,
}

/// One Binance connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinanceSpec {
    /// `spot` or `usdm`.
    pub market: String,
    /// Symbols (`BTCUSDT`).
    pub symbols: Vec<String>,
    /// Websocket base URL, without `/stream` [default: Binance's production endpoint].
    pub ws_url: Option<String>,
    /// REST base URL [default: Binance's].
    pub rest_url: Option<String>,
    /// Snapshot depth [default: 5000 spot, 1000 USD-M].
    pub depth_limit: Option<u32>,
    /// Seconds without any message before the connection counts as stale [default: 30].
    pub stale_after_s: Option<f64>,
    /// Seconds between pings, and allowed for the answer [default: 10].
    pub ping_every_s: Option<f64>,
    /// First wait before reconnecting, doubled on every failure [default: 0.5].
    pub backoff_min_s: Option<f64>,
    /// Longest wait before reconnecting [default: 30].
    pub backoff_max_s: Option<f64>,
}

/// One Coinbase Advanced Trade connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoinbaseSpec {
    /// Products (`BTC-USD`); each is an instrument of that symbol.
    pub products: Vec<String>,
    /// Websocket URL [default: `wss://advanced-trade-ws.coinbase.com`].
    pub ws_url: Option<String>,
    /// Seconds without any message before the connection counts as stale [default: 30;
    /// heartbeats keep a quiet market's connection alive].
    pub stale_after_s: Option<f64>,
    /// Seconds between pings, and allowed for the answer [default: 10].
    pub ping_every_s: Option<f64>,
    /// First wait before reconnecting, doubled on every failure [default: 0.5].
    pub backoff_min_s: Option<f64>,
    /// Longest wait before reconnecting [default: 30].
    pub backoff_max_s: Option<f64>,
}

/// One Uniswap pool, read as an instrument.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DexSpec {
    /// The instrument's symbol (`WETHUSDC`).
    pub symbol: String,
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// The pool contract.
    pub address: String,
    /// `v2` or `v3`.
    pub kind: String,
    /// Whether the base asset is token0.
    pub base_is_token0: bool,
    /// token0's decimals.
    pub decimals0: u8,
    /// token1's decimals.
    pub decimals1: u8,
    /// First block to read [default: the latest].
    pub from_block: Option<u64>,
    /// Blocks held back against reorgs [default: 2].
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    /// Milliseconds between polls [default: 2000].
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
}

fn default_confirmations() -> u64 {
    2
}

fn default_poll_ms() -> u64 {
    2000
}

impl AgentFile {
    /// Reads, parses and checks a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut cfg: AgentFile =
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
        if let Some(o) = cfg.out.take() {
            let base = path.parent().unwrap_or(Path::new("."));
            cfg.out = Some(if o.is_absolute() { o } else { base.join(o) });
        }
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        if !(self.cash.is_finite() && self.cash > 0.0) {
            bail!("cash = {} is not a positive amount", self.cash);
        }
        if !(self.duration_s.is_finite() && self.duration_s >= 0.0) {
            bail!("duration_s = {} is not a number of seconds", self.duration_s);
        }
        self.paper.validate().map_err(|e| anyhow::anyhow!("[paper] {e}"))?;
        let symbols = self.symbols();
        let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
        self.risk.validate(&symbols).map_err(|e| anyhow::anyhow!("[risk] {e}"))?;
        if self.binance.is_empty() && self.coinbase.is_empty() && self.dex.is_empty() {
            bail!("no feeds: add a [[binance]], [[coinbase]] or [[dex]] section");
        }
        for (k, b) in self.binance.iter().enumerate() {
            let at = format!("[[binance]] #{}", k + 1);
            market(&b.market).with_context(|| at.clone())?;
            if b.symbols.is_empty() {
                bail!("{at}: symbols is empty");
            }
            let t = [b.stale_after_s, b.ping_every_s, b.backoff_min_s, b.backoff_max_s];
            check_timings(&at, t)?;
        }
        for (k, c) in self.coinbase.iter().enumerate() {
            let at = format!("[[coinbase]] #{}", k + 1);
            if c.products.is_empty() {
                bail!("{at}: products is empty");
            }
            let t = [c.stale_after_s, c.ping_every_s, c.backoff_min_s, c.backoff_max_s];
            check_timings(&at, t)?;
        }
        for d in &self.dex {
            if !matches!(d.kind.as_str(), "v2" | "v3") {
                bail!("[[dex]] {}: kind = `{}` is not v2 or v3", d.symbol, d.kind);
            }
            d.address.parse::<kairos_chain::alloy::primitives::Address>().map_err(|e| {
                anyhow::anyhow!("[[dex]] {}: address `{}`: {e}", d.symbol, d.address)
            })?;
        }
        for s in self.symbols() {
            if !self.instruments.contains_key(&s) {
                bail!(
                    "[instruments.{s}] is missing: give its tick_size and lot_size (the exchange's \
                     PRICE_FILTER tickSize and LOT_SIZE stepSize)"
                );
            }
        }
        // Each instrument's increments, before anything starts.
        self.instrument_table()?;
        Ok(())
    }

    /// Every symbol, in instrument order: the Binance ones, then the pools.
    pub fn symbols(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for b in &self.binance {
            for s in &b.symbols {
                let s = s.to_ascii_uppercase();
                if !v.contains(&s) {
                    v.push(s);
                }
            }
        }
        for c in &self.coinbase {
            for p in &c.products {
                if !v.contains(p) {
                    v.push(p.clone());
                }
            }
        }
        for d in &self.dex {
            if !v.contains(&d.symbol) {
                v.push(d.symbol.clone());
            }
        }
        v
    }

    /// The symbols whose trading waits for a synchronised book.
    fn book_symbols(&self) -> Vec<String> {
        let binance =
            self.binance.iter().flat_map(|b| b.symbols.iter().map(|s| s.to_ascii_uppercase()));
        binance.chain(self.coinbase.iter().flat_map(|c| c.products.iter().cloned())).collect()
    }

    /// The instrument table.
    pub fn instrument_table(&self) -> Result<Vec<Instrument>> {
        self.symbols()
            .into_iter()
            .map(|s| {
                let spec = self.instruments[&s];
                let venue = if self.dex.iter().any(|d| d.symbol == s) {
                    "uniswap"
                } else if self.coinbase.iter().any(|c| c.products.contains(&s)) {
                    "coinbase"
                } else {
                    "binance"
                };
                let i = Instrument::new(s.clone(), venue)
                    .with_tick_size(spec.tick_size)
                    .with_lot_size(spec.lot_size);
                i.validate().map_err(|e| anyhow::anyhow!("[instruments.{s}]: {e}"))?;
                Ok(i)
            })
            .collect()
    }
}

/// `stale_after_s`, `ping_every_s`, `backoff_min_s`, `backoff_max_s` of a connection.
fn check_timings(at: &str, t: [Option<f64>; 4]) -> Result<()> {
    let keys = ["stale_after_s", "ping_every_s", "backoff_min_s", "backoff_max_s"];
    for (key, v) in keys.iter().zip(t) {
        if let Some(v) = v
            && !(v.is_finite() && v > 0.0)
        {
            bail!("{at}: {key} = {v} is not a positive number of seconds");
        }
    }
    if let (Some(lo), Some(hi)) = (t[2], t[3])
        && lo > hi
    {
        bail!("{at}: backoff_min_s = {lo} is above backoff_max_s = {hi}");
    }
    Ok(())
}

/// Applies a connection's timing keys.
fn apply_timings(ws: &mut kairos_feeds::ws::WsConfig, t: [Option<f64>; 4]) {
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.01));
    if let Some(s) = t[0] {
        ws.stale_after = secs(s);
    }
    if let Some(s) = t[1] {
        ws.ping_every = secs(s);
        ws.pong_timeout = secs(s);
    }
    if let Some(s) = t[2] {
        ws.backoff_min = secs(s);
    }
    if let Some(s) = t[3] {
        ws.backoff_max = secs(s);
    }
}

fn market(s: &str) -> Result<Market> {
    match s {
        "spot" => Ok(Market::Spot),
        "usdm" => Ok(Market::UsdM),
        _ => bail!("market = `{s}` is not spot or usdm"),
    }
}

enum Source {
    Binance(FeedEvent),
    Coinbase(CbEvent),
    Dex(MarketEvent),
}

/// How long a stopping session waits for its feeds to end, handling what they still hand on.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs a paper session of the config's strategy until `duration_s`, Ctrl-C or SIGTERM (or
/// `stop`).
pub async fn run(
    cfg: &AgentFile,
    registry: &Registry,
    stop: watch::Receiver<bool>,
) -> Result<ReplayReport> {
    let params = crate::config::params_as_text(&cfg.params);
    let strategy = registry.build(&cfg.strategy, &params)?;
    Ok(run_with(cfg, strategy, stop).await?.0)
}

/// Runs a paper session of `strategy` (the config's `strategy` and `params` are not read)
/// until `duration_s` or `stop`; gives the strategy back with the report.
pub async fn run_with<S: Strategy>(
    cfg: &AgentFile,
    strategy: S,
    mut stop: watch::Receiver<bool>,
) -> Result<(ReplayReport, S)> {
    let instruments = cfg.instrument_table()?;
    let symbols: Vec<String> = instruments.iter().map(|i| i.symbol.clone()).collect();
    let id_of = |s: &str| symbols.iter().position(|x| x == s).map(|i| InstrumentId(i as u32));
    let (tx, mut rx) = mpsc::channel::<Source>(8192);
    let (feed_stop_tx, feed_stop) = watch::channel(false);
    let mut tasks = Vec::new();
    for b in &cfg.binance {
        let refs: Vec<&str> = b.symbols.iter().map(String::as_str).collect();
        let mut feed = BinanceFeed::new(market(&b.market)?, &refs);
        if let Some(u) = &b.ws_url {
            feed.ws_base = u.clone();
        }
        if let Some(u) = &b.rest_url {
            feed.rest_base = u.clone();
        }
        if let Some(l) = b.depth_limit {
            feed.depth_limit = l;
        }
        apply_timings(
            &mut feed.ws,
            [b.stale_after_s, b.ping_every_s, b.backoff_min_s, b.backoff_max_s],
        );
        if let Some(s) = b.backoff_min_s {
            feed.snapshot_retry = Duration::from_secs_f64(s.max(0.01));
        }
        let (ftx, frx) = mpsc::channel(8192);
        tasks.push(tokio::spawn(feed.run(ftx, feed_stop.clone())));
        tasks.push(tokio::spawn(relay(frx, tx.clone(), Source::Binance)));
    }
    for c in &cfg.coinbase {
        let refs: Vec<&str> = c.products.iter().map(String::as_str).collect();
        let mut feed = CoinbaseFeed::new(&refs);
        if let Some(u) = &c.ws_url {
            feed.ws.url = u.clone();
        }
        apply_timings(
            &mut feed.ws,
            [c.stale_after_s, c.ping_every_s, c.backoff_min_s, c.backoff_max_s],
        );
        let (ftx, frx) = mpsc::channel(8192);
        tasks.push(tokio::spawn(feed.run(ftx, feed_stop.clone())));
        tasks.push(tokio::spawn(relay(frx, tx.clone(), Source::Coinbase)));
    }
    for d in &cfg.dex {
        let Some(id) = id_of(&d.symbol) else { continue };
        tasks.push(tokio::spawn(dex_task(d.clone(), id, tx.clone(), feed_stop.clone())));
    }
    drop(tx);
    let ctx = Context::new(instruments.clone(), cfg.cash);
    let venue = Risk::new(PaperVenue::new(cfg.paper), cfg.risk.clone(), &ctx)
        .map_err(|e| anyhow::anyhow!("[risk] {e}"))?;
    let mut engine = Engine::new(ctx, venue, LiveClock, Reports::new(true));
    for s in cfg.book_symbols() {
        if let Some(id) = id_of(&s) {
            engine.halt(id, "book not synchronised yet");
        }
    }
    let mut strategy = Recorder { inner: strategy, events: Vec::new() };
    engine.start(&mut strategy);
    let deadline = (cfg.duration_s > 0.0)
        .then(|| tokio::time::Instant::now() + Duration::from_secs_f64(cfg.duration_s));
    let started = std::time::Instant::now();
    let (mut messages, mut malformed) = (0u64, 0u64);
    let mut counts = kairos_feeds::normalise::Counts::default();
    // Once stopping: the feeds are told to stop, and what they already received is still
    // handled (nothing that reached the agent is dropped) until every feed has ended, or for
    // at most `DRAIN` when one does not.
    let mut draining: Option<tokio::time::Instant> = None;
    loop {
        // Sleep until the strategy's next timer (wall clock), the deadline, or an event.
        let timer_in = engine.next_timer().and_then(|t| {
            let now = kairos_engine::Clock::now(&LiveClock)?;
            Some(Duration::from_nanos((t.0 - now.0).max(0) as u64))
        });
        let sleep = tokio::time::sleep(timer_in.unwrap_or(Duration::from_secs(3600)));
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                messages += 1;
                match ev {
                    Source::Dex(e) => engine.market(&mut strategy, &e),
                    Source::Binance(FeedEvent::Book { symbol, update_id, event_ms, levels, .. }) => {
                        let Some(id) = id_of(&symbol) else { continue };
                        counts.books += 1;
                        let ts = Timestamp::from_millis(event_ms as i64);
                        engine.book(&mut strategy, &levels.update(id, ts, update_id));
                    }
                    Source::Binance(FeedEvent::Trade(t)) => {
                        let Some(id) = id_of(&t.symbol) else { continue };
                        counts.trades += 1;
                        engine.market(&mut strategy, &MarketEvent::Trade(kairos_feeds::normalise::trade(id, &t)));
                    }
                    Source::Binance(FeedEvent::Status { symbol, synced, why }) => {
                        let Some(id) = id_of(&symbol) else { continue };
                        tracing::info!(%symbol, synced, "{why}");
                        engine.status(&mut strategy, id, synced, &why);
                    }
                    Source::Binance(FeedEvent::Malformed(m)) => {
                        malformed += 1;
                        tracing::debug!("skipped a message: {m}");
                    }
                    Source::Binance(FeedEvent::Top(..)) => {}
                    Source::Coinbase(CbEvent::Book { product, sequence, ts_ns, levels, .. }) => {
                        let Some(id) = id_of(&product) else { continue };
                        counts.books += 1;
                        engine.book(&mut strategy, &levels.update(id, Timestamp(ts_ns), sequence));
                    }
                    Source::Coinbase(CbEvent::Trade(t)) => {
                        let Some(id) = id_of(&t.product) else { continue };
                        counts.trades += 1;
                        let trade = kairos_feeds::normalise::coinbase_trade(id, &t);
                        engine.market(&mut strategy, &MarketEvent::Trade(trade));
                    }
                    Source::Coinbase(CbEvent::Status { product, synced, why }) => {
                        let Some(id) = id_of(&product) else { continue };
                        tracing::info!(%product, synced, "{why}");
                        engine.status(&mut strategy, id, synced, &why);
                    }
                    Source::Coinbase(CbEvent::Malformed(m)) => {
                        malformed += 1;
                        tracing::debug!("skipped a message: {m}");
                    }
                }
            }
            _ = sleep => engine.tick(&mut strategy),
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } }, if draining.is_none() => {
                let _ = feed_stop_tx.send(true);
                draining = Some(tokio::time::Instant::now() + DRAIN);
            }
            _ = stop.changed(), if draining.is_none() => {
                let _ = feed_stop_tx.send(true);
                draining = Some(tokio::time::Instant::now() + DRAIN);
            }
            _ = async { match draining { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                tracing::warn!("a feed did not stop within {} s; stopping without it", DRAIN.as_secs());
                break;
            }
        }
    }
    let _ = feed_stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(DRAIN, t).await;
    }
    engine.stop(&mut strategy);
    let (fills, _) = engine.take_history();
    let positions =
        (0..symbols.len()).map(|k| engine.ctx.position(InstrumentId(k as u32))).collect();
    let (risk_state, risk_refused, risk_transitions) = ReplayReport::risk_of(&engine.exec);
    let report = ReplayReport {
        instruments,
        messages,
        malformed,
        counts,
        fills,
        events: strategy.events,
        halted_rejects: engine.halted_rejects(),
        equity: engine.ctx.equity(),
        cash: cfg.cash,
        positions,
        run_s: started.elapsed().as_secs_f64(),
        risk_state,
        risk_refused,
        risk_transitions,
    };
    Ok((report, strategy.inner))
}

/// Hands one feed's events on to the session's channel, as `Source`s.
async fn relay<E>(mut rx: mpsc::Receiver<E>, tx: mpsc::Sender<Source>, wrap: fn(E) -> Source) {
    while let Some(e) = rx.recv().await {
        if tx.send(wrap(e)).await.is_err() {
            break;
        }
    }
}

/// Polls one pool and hands its events on.
async fn dex_task(
    d: DexSpec,
    id: InstrumentId,
    tx: mpsc::Sender<Source>,
    mut stop: watch::Receiver<bool>,
) {
    use kairos_chain::alloy::providers::{Provider, RootProvider};
    use kairos_chain::feed::{DexFeed, Pool, PoolKind};
    let (Ok(url), Ok(address)) = (d.rpc_url.parse(), d.address.parse()) else {
        tracing::error!(symbol = %d.symbol, "bad rpc_url or address; the pool is not followed");
        return;
    };
    let provider = RootProvider::new_http(url);
    let from = match d.from_block {
        Some(b) => b,
        None => match provider.get_block_number().await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(symbol = %d.symbol, error = %e, "cannot read the block number");
                return;
            }
        },
    };
    let pool = Pool {
        address,
        kind: if d.kind == "v3" { PoolKind::V3 } else { PoolKind::V2 },
        instrument: id,
        base_is_token0: d.base_is_token0,
        decimals0: d.decimals0,
        decimals1: d.decimals1,
    };
    let mut feed = DexFeed::new(provider, vec![pool], from, d.confirmations);
    loop {
        match feed.poll().await {
            Ok(events) => {
                for e in events {
                    if tx.send(Source::Dex(e)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::warn!(symbol = %d.symbol, error = %e, "pool poll failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(d.poll_ms.max(50))) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/agent.toml");
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn the_example_config_loads_and_every_key_it_documents_is_real() {
        let cfg: AgentFile = toml::from_str(&example()).unwrap();
        cfg.check().unwrap();
        // Uncomment every `# key = value` line: the file must still be a valid config (the
        // structs deny unknown keys, so a documented key that does not exist fails here).
        let all: String = example()
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with('[')
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            k.chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                        }) =>
                {
                    rest.to_string()
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let cfg: AgentFile = toml::from_str(&all).unwrap_or_else(|e| panic!("{e}\n{all}"));
        cfg.check().unwrap();
        assert!(cfg.binance[0].backoff_max_s.is_some() && !cfg.dex.is_empty());
    }

    #[test]
    fn bad_risk_settings_are_refused_at_load_by_name() {
        let base = example();
        for (line, key, says) in [
            ("max_daily_loss = -5", "max_daily_loss", "not a positive number"),
            ("max_drawdown_pct = 100", "max_drawdown_pct", "not below 100%"),
            ("max_orders_per_s = 0", "max_orders_per_s", "refuse every order"),
        ] {
            let (k, _) = line.split_once(" = ").unwrap();
            let text: String =
                base.lines()
                    .map(|l| {
                        if l.starts_with(&format!("{k} ")) {
                            line.to_string()
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
            let cfg: AgentFile = toml::from_str(&text).unwrap();
            let e = cfg.check().unwrap_err().to_string();
            assert!(e.contains(&format!("[risk] risk setting `{key}`")) && e.contains(says), "{e}");
        }
        let text = base.replace("BTCUSDT = 0.05", "ETHUSDT = 0.05");
        let e = toml::from_str::<AgentFile>(&text).unwrap().check().unwrap_err().to_string();
        assert!(
            e.contains("`max_position.ETHUSDT`") && e.contains("not one of the instruments"),
            "{e}"
        );
        let text = base.replace("max_order_notional = 5000", "max_order_notinal = 5000");
        let e = toml::from_str::<AgentFile>(&text).unwrap_err().to_string();
        assert!(e.contains("max_order_notinal"), "{e}");
    }

    #[test]
    fn bad_timings_are_refused_by_name() {
        let base = example();
        for (key, v) in [("stale_after_s", "-1"), ("ping_every_s", "0"), ("backoff_max_s", "nan")] {
            let text = base.replace("[[binance]]\n", &format!("[[binance]]\n{key} = {v}\n"));
            let cfg: AgentFile = toml::from_str(&text).unwrap();
            let e = cfg.check().unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    /// Every instrument's increments are checked with the rest of the file, before the
    /// session starts, and the error names the section.
    #[test]
    fn bad_increments_are_refused_at_load_naming_the_instrument() {
        let base = example();
        let (at, _) = base.split_once("tick_size = ").unwrap();
        let section = at.rsplit_once("[instruments.").unwrap().1.split_once(']').unwrap().0;
        for bad in ["0", "-0.01", "nan"] {
            let text = base.replacen("tick_size = ", &format!("tick_size = {bad} # "), 1);
            let cfg: AgentFile = toml::from_str(&text).unwrap();
            let e = cfg.check().unwrap_err().to_string();
            assert!(e.contains(&format!("[instruments.{section}]")) && e.contains("tick"), "{e}");
        }
    }
}
