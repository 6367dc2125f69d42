//! `kairos paper --config agent.toml`: strategies on live feeds with paper execution.
//!
//! The session is the engine every mode runs, with a live clock, the Binance feed (and any DEX
//! pools) as its sources and the paper venue as its execution client. Feed adapters run on
//! tokio and hand the engine their events through bounded channels; the engine itself runs
//! on one task, synchronously. Every key of the config file is documented in
//! `examples/agent.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use kairos_engine::paper::{PaperConfig, PaperVenue};
use kairos_engine::risk::{Risk, RiskLimits};
use kairos_engine::{Engine, Execution as _, LiveClock, Reports};
use kairos_feeds::binance::Market;
use kairos_feeds::binance_live::{BinanceFeed, FeedEvent};
use kairos_feeds::coinbase_live::{CoinbaseFeed, FeedEvent as CbEvent};
use kairos_strategies::{
    Context, Instrument, InstrumentId, MarketEvent, Registry, Strategy, Timestamp,
};
use serde::Deserialize;
use tokio::sync::{Notify, mpsc, watch};

use crate::live::VenueReport;

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
    /// Where `kairos run` sends orders [default: the paper venue].
    #[serde(default)]
    pub venue: crate::run::VenueSpec,
    /// The journal file of `kairos run` (relative to the config file).
    pub journal: Option<PathBuf>,
    /// The operations endpoint of `kairos run`.
    pub server: Option<crate::run::ServerSpec>,
    /// What stopping does.
    #[serde(default)]
    pub shutdown: crate::run::ShutdownSpec,
    /// On-chain execution of the `[[dex]]` instruments by `kairos run`.
    pub chain: Option<crate::chain_venue::ChainSpec>,
    /// Where the strategy's model asks go (`[models]`).
    pub models: Option<ModelsSpec>,
}

/// `[models]`: the strategy's model asks (`ctx.ask`) go through the inference router of a
/// `router.toml` (the file `kairos router serve` reads; its own paths are relative to the
/// working directory), and every answer is recorded for backtests to replay.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelsSpec {
    /// The router config (relative to this file).
    pub router: PathBuf,
    /// Append every answer (and failure) with its latency to this JSON-lines file, for
    /// `kairos backtest --model-answers` (relative to this file).
    pub record_answers: Option<PathBuf>,
}

impl ModelsSpec {
    /// Starts the router on the current tokio runtime and makes it `engine`'s model service;
    /// answers arrive on the returned channel, for [`Hooks::answers`].
    pub(crate) fn attach<X: kairos_engine::Execution>(
        &self,
        engine: &mut Engine<X, LiveClock>,
    ) -> Result<mpsc::UnboundedReceiver<kairos_strategies::ModelAnswer>> {
        let c = crate::gateway::GatewayConfig::load(&self.router)?;
        let router = crate::gateway::local_models(&c)
            .and_then(|local| crate::gateway::start_router(c.router, local))
            .with_context(|| format!("[models] router {}", self.router.display()))?;
        let recorder = self
            .record_answers
            .as_deref()
            .map(kairos_models::asks::Recorder::open)
            .transpose()
            .map_err(|e| anyhow::anyhow!("[models] record_answers: {e}"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let live =
            kairos_models::asks::Live::new(router, tokio::runtime::Handle::current(), tx, recorder);
        engine.set_models(Box::new(live));
        Ok(rx)
    }
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
    /// Reads, parses and checks a config file, with the environment's `KAIROS__SECTION__KEY`
    /// overrides applied.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, std::env::vars())
    }

    /// [`AgentFile::load`] with the overrides taken from `env` (`KAIROS__CASH=5000`,
    /// `KAIROS__VENUE__REST_URL=...`, `KAIROS__BINANCE__0__WS_URL=...` for the first
    /// `[[binance]]`). A value is read as TOML when it parses as one (`5000`, `true`,
    /// `["BTCUSDT"]`), as a string otherwise.
    pub fn load_with(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut overrides: Vec<(String, String)> =
            env.into_iter().filter(|(k, _)| k.starts_with("KAIROS__")).collect();
        overrides.sort();
        let mut cfg: AgentFile = if overrides.is_empty() {
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?
        } else {
            let mut table: toml::Table =
                toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
            for (k, v) in &overrides {
                crate::config::apply_override(&mut table, k, v)?;
            }
            let names: Vec<&str> = overrides.iter().map(|(k, _)| k.as_str()).collect();
            toml::Value::Table(table).try_into().with_context(|| {
                format!(
                    "config file {} with the environment's {}",
                    path.display(),
                    names.join(", ")
                )
            })?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        cfg.out = cfg.out.take().map(rel);
        cfg.journal = cfg.journal.take().map(rel);
        cfg.venue.api_key_file = cfg.venue.api_key_file.take().map(rel);
        cfg.venue.api_secret_file = cfg.venue.api_secret_file.take().map(rel);
        if let Some(s) = &mut cfg.server {
            s.token_file = s.token_file.take().map(rel);
        }
        if let Some(c) = &mut cfg.chain {
            c.wallet = rel(std::mem::take(&mut c.wallet));
            c.password_file = c.password_file.take().map(rel);
        }
        if let Some(m) = &mut cfg.models {
            m.router = rel(std::mem::take(&mut m.router));
            m.record_answers = m.record_answers.take().map(rel);
            // Refused at load, naming the file and the key, not when the first ask goes out.
            crate::gateway::GatewayConfig::load(&m.router).context("[models] router")?;
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
        self.venue.check()?;
        self.shutdown.check()?;
        if let Some(c) = &self.chain {
            c.check(&self.dex)?;
        }
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
    pub(crate) fn book_symbols(&self) -> Vec<String> {
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
    stop: watch::Receiver<bool>,
) -> Result<(ReplayReport, S)> {
    let instruments = cfg.instrument_table()?;
    let feeds = Feeds::spawn(cfg)?;
    let ctx = Context::new(instruments.clone(), cfg.cash);
    let venue = Risk::new(PaperVenue::new(cfg.paper), cfg.risk.clone(), &ctx)
        .map_err(|e| anyhow::anyhow!("[risk] {e}"))?;
    let mut engine = Engine::new(ctx, venue, LiveClock, Reports::new(true));
    let answers = cfg.models.as_ref().map(|m| m.attach(&mut engine)).transpose()?;
    let mut strategy = Recorder { inner: strategy, events: Vec::new() };
    let mut hooks = Hooks { venue: None, poke: None, cancel_on_stop: false, drain: DRAIN, answers };
    let tally = drive(cfg, &mut engine, &mut strategy, feeds, &mut hooks, stop, |_, _| {}).await;
    let (fills, _) = engine.take_history();
    let positions =
        (0..instruments.len()).map(|k| engine.ctx.position(InstrumentId(k as u32))).collect();
    let (risk_state, risk_refused, risk_transitions) = ReplayReport::risk_of(&engine.exec);
    let report = ReplayReport {
        instruments,
        messages: tally.messages,
        malformed: tally.malformed,
        counts: tally.counts,
        fills,
        events: strategy.events,
        halted_rejects: engine.halted_rejects(),
        equity: engine.ctx.equity(),
        cash: cfg.cash,
        positions,
        run_s: tally.run_s,
        risk_state,
        risk_refused,
        risk_transitions,
    };
    Ok((report, strategy.inner))
}

/// The running feeds of a session: their events arrive on one channel.
pub(crate) struct Feeds {
    rx: mpsc::Receiver<Source>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Feeds {
    /// Starts every feed of the config (on the current tokio runtime).
    pub(crate) fn spawn(cfg: &AgentFile) -> Result<Self> {
        let symbols = cfg.symbols();
        let id_of = |s: &str| symbols.iter().position(|x| x == s).map(|i| InstrumentId(i as u32));
        let (tx, rx) = mpsc::channel::<Source>(8192);
        let (stop, feed_stop) = watch::channel(false);
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
        Ok(Self { rx, stop, tasks })
    }
}

/// Applies a venue task's report to the execution client.
pub(crate) type ApplyReport<Y> = fn(&mut Y, &mut Context, VenueReport, &mut Reports);

/// What a session does besides feeding its engine market events.
pub(crate) struct Hooks<Y> {
    /// A live venue task's reports, and how the execution client books them.
    pub venue: Option<(mpsc::UnboundedReceiver<VenueReport>, ApplyReport<Y>)>,
    /// Woken when the kill switch is pulled: the risk engine halts at once, not at the next
    /// event.
    pub poke: Option<Arc<Notify>>,
    /// Cancel working orders when stopping (and wait, within `drain`, for the venue to say
    /// they ended).
    pub cancel_on_stop: bool,
    /// How long a stopping session waits for its feeds, then for its cancels.
    pub drain: Duration,
    /// The answers to the strategy's model asks ([`ModelsSpec::attach`]).
    pub answers: Option<mpsc::UnboundedReceiver<kairos_strategies::ModelAnswer>>,
}

/// What a session saw.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Feed messages handled.
    pub messages: u64,
    /// Messages that did not parse.
    pub malformed: u64,
    /// Books and trades.
    pub counts: kairos_feeds::normalise::Counts,
    /// Seconds the session ran.
    pub run_s: f64,
}

/// What the session just handed the engine, for its observers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Seen {
    /// A market event of an instrument, with its exchange time.
    Market(InstrumentId, Timestamp),
    /// An instrument's book went in or out of sync.
    Status(InstrumentId, bool),
    /// A message that did not parse.
    Malformed,
    /// A venue report, a timer, the kill switch.
    Other,
}

/// Runs `engine` on the config's feeds until `stop` (or `duration_s`), then drains: the
/// feeds are told to stop and what they had already received is still handled (nothing that
/// reached the agent is dropped) until every feed has ended, or for at most `hooks.drain`.
/// `after` runs after every event the engine handled.
pub(crate) async fn drive<Y: kairos_engine::Execution, W: Strategy>(
    cfg: &AgentFile,
    engine: &mut Engine<Risk<Y>, LiveClock>,
    strategy: &mut W,
    mut feeds: Feeds,
    hooks: &mut Hooks<Y>,
    mut stop: watch::Receiver<bool>,
    mut after: impl FnMut(&mut Engine<Risk<Y>, LiveClock>, Seen),
) -> Tally {
    let symbols = cfg.symbols();
    let id_of = |s: &str| symbols.iter().position(|x| x == s).map(|i| InstrumentId(i as u32));
    for s in cfg.book_symbols() {
        if let Some(id) = id_of(&s) {
            engine.halt(id, "book not synchronised yet");
        }
    }
    engine.start(strategy);
    let deadline = (cfg.duration_s > 0.0)
        .then(|| tokio::time::Instant::now() + Duration::from_secs_f64(cfg.duration_s));
    let started = std::time::Instant::now();
    let mut t = Tally::default();
    let mut draining: Option<tokio::time::Instant> = None;
    let poke = hooks.poke.clone().unwrap_or_default();
    loop {
        // Sleep until the strategy's next timer (wall clock), the deadline, or an event.
        let timer_in = engine.next_timer().and_then(|t| {
            let now = kairos_engine::Clock::now(&LiveClock)?;
            Some(Duration::from_nanos((t.0 - now.0).max(0) as u64))
        });
        // At least once a second, so that observers see the time pass in a quiet market.
        let sleep = tokio::time::sleep(
            timer_in.unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(1)),
        );
        let venue = async {
            match hooks.venue.as_mut() {
                Some((rx, _)) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let answer = async {
            match hooks.answers.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = feeds.rx.recv() => {
                let Some(ev) = ev else { break };
                t.messages += 1;
                let seen = handle(engine, strategy, &id_of, &mut t, ev);
                after(engine, seen);
            }
            r = venue => {
                let Some((_, apply)) = hooks.venue.as_ref() else { continue };
                let apply = *apply;
                match r {
                    Some(r) => engine.from_venue(strategy, |x, ctx, out| apply(&mut x.inner, ctx, r, out)),
                    None => {
                        tracing::error!("the venue task ended; no more orders can be sent");
                        hooks.venue = None;
                    }
                }
                after(engine, Seen::Other);
            }
            _ = poke.notified() => {
                engine.from_venue(strategy, |x, ctx, out| x.apply_switches(ctx, out));
                after(engine, Seen::Other);
            }
            a = answer => {
                match a {
                    Some(a) => engine.answer(strategy, a),
                    None => hooks.answers = None,
                }
                after(engine, Seen::Other);
            }
            _ = sleep => { engine.tick(strategy); after(engine, Seen::Other); }
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } }, if draining.is_none() => {
                let _ = feeds.stop.send(true);
                draining = Some(tokio::time::Instant::now() + hooks.drain);
            }
            _ = stop.changed(), if draining.is_none() => {
                let _ = feeds.stop.send(true);
                draining = Some(tokio::time::Instant::now() + hooks.drain);
            }
            _ = async { match draining { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                tracing::warn!("a feed did not stop within {} s; stopping without it", hooks.drain.as_secs());
                break;
            }
        }
    }
    let _ = feeds.stop.send(true);
    for task in feeds.tasks {
        let _ = tokio::time::timeout(hooks.drain, task).await;
    }
    if hooks.cancel_on_stop && engine.exec.has_working() {
        let open: Vec<_> = engine.ctx.open_orders().iter().map(|o| o.id).collect();
        tracing::info!(orders = open.len(), "stopping: cancelling working orders");
        for id in open {
            engine.ctx.cancel(id);
        }
        engine.run_pending(strategy);
        after(engine, Seen::Other);
        let until = tokio::time::Instant::now() + hooks.drain;
        while engine.exec.has_working() {
            let Some((rx, apply)) = hooks.venue.as_mut() else { break };
            let apply = *apply;
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(r)) => {
                    engine.from_venue(strategy, |x, ctx, out| apply(&mut x.inner, ctx, r, out));
                    after(engine, Seen::Other);
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        working = engine.exec.working(),
                        "orders still working after {} s of cancelling; the next start settles them",
                        hooks.drain.as_secs()
                    );
                    break;
                }
            }
        }
    }
    engine.stop(strategy);
    t.run_s = started.elapsed().as_secs_f64();
    t
}

/// Hands one feed event to the engine.
fn handle<Y: kairos_engine::Execution, W: Strategy>(
    engine: &mut Engine<Risk<Y>, LiveClock>,
    strategy: &mut W,
    id_of: &dyn Fn(&str) -> Option<InstrumentId>,
    t: &mut Tally,
    ev: Source,
) -> Seen {
    match ev {
        Source::Dex(e) => {
            engine.market(strategy, &e);
            Seen::Other
        }
        Source::Binance(FeedEvent::Book { symbol, update_id, event_ms, levels, .. }) => {
            let Some(id) = id_of(&symbol) else { return Seen::Other };
            t.counts.books += 1;
            let ts = Timestamp::from_millis(event_ms as i64);
            engine.book(strategy, &levels.update(id, ts, update_id));
            Seen::Market(id, ts)
        }
        Source::Binance(FeedEvent::Trade(tr)) => {
            let Some(id) = id_of(&tr.symbol) else { return Seen::Other };
            t.counts.trades += 1;
            let trade = kairos_feeds::normalise::trade(id, &tr);
            let ts = trade.ts;
            engine.market(strategy, &MarketEvent::Trade(trade));
            Seen::Market(id, ts)
        }
        Source::Binance(FeedEvent::Status { symbol, synced, why }) => {
            let Some(id) = id_of(&symbol) else { return Seen::Other };
            tracing::info!(%symbol, synced, "{why}");
            engine.status(strategy, id, synced, &why);
            Seen::Status(id, synced)
        }
        Source::Binance(FeedEvent::Malformed(m)) | Source::Coinbase(CbEvent::Malformed(m)) => {
            t.malformed += 1;
            tracing::debug!("skipped a message: {m}");
            Seen::Malformed
        }
        Source::Binance(FeedEvent::Top(..)) => Seen::Other,
        Source::Coinbase(CbEvent::Book { product, sequence, ts_ns, levels, .. }) => {
            let Some(id) = id_of(&product) else { return Seen::Other };
            t.counts.books += 1;
            engine.book(strategy, &levels.update(id, Timestamp(ts_ns), sequence));
            Seen::Market(id, Timestamp(ts_ns))
        }
        Source::Coinbase(CbEvent::Trade(tr)) => {
            let Some(id) = id_of(&tr.product) else { return Seen::Other };
            t.counts.trades += 1;
            let trade = kairos_feeds::normalise::coinbase_trade(id, &tr);
            let ts = trade.ts;
            engine.market(strategy, &MarketEvent::Trade(trade));
            Seen::Market(id, ts)
        }
        Source::Coinbase(CbEvent::Status { product, synced, why }) => {
            let Some(id) = id_of(&product) else { return Seen::Other };
            tracing::info!(%product, synced, "{why}");
            engine.status(strategy, id, synced, &why);
            Seen::Status(id, synced)
        }
    }
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
