//! `kairos run --config agent.toml`: the headless agent. Its feeds, strategy, risk engine,
//! execution client (the paper venue, or Binance spot) and journal, run until SIGTERM or
//! Ctrl-C, with the operations server (`/metrics`, `/health`, `/ready`, `/status`, `/kill`).
//!
//! Start, on a live venue:
//! 1. the journal is opened (one agent per journal);
//! 2. the agent reconciles with the venue ([`crate::reconcile`]) and refuses to trade, saying
//!    why, when it cannot;
//! 3. orders an earlier session left working are cancelled (no strategy owns them) and
//!    settled;
//! 4. the exchange's filters are read and checked against `[instruments]`;
//! 5. positions and cash are rebuilt from the journal's fills, the risk state from the
//!    journal;
//! 6. only then does the strategy start.
//!
//! The kill switch is pulled by `POST /kill` (bearer token), `kairos kill`, or SIGUSR1; the
//! risk engine halts at once. SIGTERM and SIGINT stop the agent: the feeds drain, working
//! orders are cancelled (or left, as `[shutdown] on_stop` says), the journal is written, and
//! the exit status is 0.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use kairos_engine::risk::{Risk, RiskState};
use kairos_engine::{Engine, Execution, LiveClock, Reports};
use kairos_strategies::{Context, Fill, InstrumentId, OrderId, Registry, Side, Strategy};
use serde::Deserialize;
use tokio::sync::{Notify, mpsc, watch};

use crate::binance_rest::{BinanceRest, Credentials, SymbolRules};
use crate::journal::Journal;
use crate::live::{LiveVenue, run_venue};
use crate::now_ms;
use crate::ops::{InstrumentView, Metrics, MetricsSink, Ops};
use crate::paper::{AgentFile, Feeds, Hooks, Seen, drive};
use crate::replay::Recorder;

/// The journal's name for Binance spot.
pub const BINANCE_SPOT: &str = "binance-spot";

/// `[venue]`: where `kairos run` sends orders.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VenueSpec {
    /// `paper` or `binance-spot`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// REST base URL [default: `https://api.binance.com`].
    pub rest_url: Option<String>,
    /// Environment variable holding the API key [default: `BINANCE_API_KEY`].
    pub api_key_env: Option<String>,
    /// Environment variable holding the API secret [default: `BINANCE_API_SECRET`].
    pub api_secret_env: Option<String>,
    /// File holding the API key (instead of the environment).
    pub api_key_file: Option<PathBuf>,
    /// File holding the API secret (instead of the environment).
    pub api_secret_file: Option<PathBuf>,
    /// Milliseconds a signed request stays valid [default: 5000].
    pub recv_window_ms: Option<u64>,
    /// Milliseconds between polls of working orders while the user data stream is down or
    /// off (every 30 polls while it is up) [default: 1000].
    pub poll_ms: Option<u64>,
    /// Follow orders on the WebSocket API's user data stream [default: true].
    pub user_stream: Option<bool>,
    /// The WebSocket API's URL [default: `wss://ws-api.binance.com:443/ws-api/v3`].
    pub ws_api_url: Option<String>,
    /// Client order ids are `{client_prefix}-{n}` [default: `kairos`].
    pub client_prefix: Option<String>,
}

fn default_kind() -> String {
    "paper".into()
}

impl Default for VenueSpec {
    fn default() -> Self {
        Self {
            kind: default_kind(),
            rest_url: None,
            api_key_env: None,
            api_secret_env: None,
            api_key_file: None,
            api_secret_file: None,
            recv_window_ms: None,
            poll_ms: None,
            user_stream: None,
            ws_api_url: None,
            client_prefix: None,
        }
    }
}

impl VenueSpec {
    /// Whether orders go to a real venue.
    pub fn is_live(&self) -> bool {
        self.kind != "paper"
    }

    /// The REST base URL.
    pub fn rest_base(&self) -> &str {
        self.rest_url.as_deref().unwrap_or("https://api.binance.com")
    }

    /// The WebSocket API's URL, when the user data stream is on.
    pub fn user_stream_url(&self) -> Option<&str> {
        self.user_stream
            .unwrap_or(true)
            .then(|| self.ws_api_url.as_deref().unwrap_or(crate::binance_user::WS_API_URL))
    }

    /// The client order id prefix.
    pub fn prefix(&self) -> &str {
        self.client_prefix.as_deref().unwrap_or("kairos")
    }

    /// Checks the section.
    pub fn check(&self) -> Result<()> {
        if !matches!(self.kind.as_str(), "paper" | BINANCE_SPOT) {
            bail!("[venue] kind = `{}` is not paper or binance-spot", self.kind);
        }
        if let Some(w) = self.recv_window_ms
            && !(1..=60_000).contains(&w)
        {
            bail!("[venue] recv_window_ms = {w} is not within 1..=60000 (Binance's limit)");
        }
        if self.poll_ms == Some(0) {
            bail!("[venue] poll_ms = 0: give the milliseconds between polls");
        }
        if let Some(u) = &self.ws_api_url
            && !(u.starts_with("wss://") || u.starts_with("ws://"))
        {
            bail!("[venue] ws_api_url = `{u}` is not a ws:// or wss:// URL");
        }
        let p = self.prefix();
        if p.is_empty()
            || p.len() > 16
            || !p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '_'))
        {
            bail!(
                "[venue] client_prefix = `{p}`: 1 to 16 of A-Z a-z 0-9 . : _ (client order ids \
                 are `PREFIX-N`, at most 36 characters)"
            );
        }
        if self.api_key_file.is_some() != self.api_secret_file.is_some() {
            bail!("[venue] give both api_key_file and api_secret_file, or neither");
        }
        Ok(())
    }

    /// The API credentials, from the files or the environment; errors name the variable or
    /// the file, never a value.
    pub fn credentials(&self) -> Result<Credentials> {
        if let (Some(k), Some(s)) = (&self.api_key_file, &self.api_secret_file) {
            let read = |p: &Path, key: &str| -> Result<String> {
                let t = std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("[venue] {key} {}: {e}", p.display()))?;
                let t = t.trim().to_string();
                if t.is_empty() {
                    bail!("[venue] {key} {} is empty", p.display());
                }
                Ok(t)
            };
            return Ok(Credentials::new(read(k, "api_key_file")?, read(s, "api_secret_file")?));
        }
        let k = self.api_key_env.as_deref().unwrap_or("BINANCE_API_KEY");
        let s = self.api_secret_env.as_deref().unwrap_or("BINANCE_API_SECRET");
        Credentials::from_env(k, s).map_err(|e| anyhow::anyhow!("[venue] {e}"))
    }
}

/// `[server]`: the operations endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Address to listen on (`127.0.0.1:9184`; port 0 picks one, written to the journal's
    /// events).
    pub listen: String,
    /// Environment variable holding the bearer token `POST /kill` needs.
    pub token_env: Option<String>,
    /// File holding that token (instead of the environment).
    pub token_file: Option<PathBuf>,
}

impl ServerSpec {
    /// The control token, if one is configured; an error when it is configured but missing.
    pub fn token(&self) -> Result<Option<zeroize::Zeroizing<String>>> {
        let t = match (&self.token_file, &self.token_env) {
            (Some(p), _) => std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("[server] token_file {}: {e}", p.display()))?,
            (None, Some(v)) => std::env::var(v)
                .map_err(|_| anyhow::anyhow!("[server] environment variable {v} is not set"))?,
            (None, None) => return Ok(None),
        };
        let t = zeroize::Zeroizing::new(t.trim().to_string());
        if t.len() < 16 {
            bail!("[server] the control token is shorter than 16 characters");
        }
        Ok(Some(t))
    }
}

/// `[shutdown]`: what SIGTERM and SIGINT do.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSpec {
    /// `cancel` working orders, or `leave` them working at the venue.
    #[serde(default = "default_on_stop")]
    pub on_stop: String,
    /// Seconds to wait for the feeds to end, then for the cancels to be confirmed.
    #[serde(default = "default_drain")]
    pub drain_s: f64,
}

fn default_on_stop() -> String {
    "cancel".into()
}

fn default_drain() -> f64 {
    5.0
}

impl Default for ShutdownSpec {
    fn default() -> Self {
        Self { on_stop: default_on_stop(), drain_s: default_drain() }
    }
}

impl ShutdownSpec {
    /// Checks the section.
    pub fn check(&self) -> Result<()> {
        if !matches!(self.on_stop.as_str(), "cancel" | "leave") {
            bail!("[shutdown] on_stop = `{}` is not cancel or leave", self.on_stop);
        }
        if !(self.drain_s.is_finite() && self.drain_s > 0.0 && self.drain_s <= 600.0) {
            bail!("[shutdown] drain_s = {} is not within (0, 600] seconds", self.drain_s);
        }
        Ok(())
    }
}

/// What a run did, for the summary.
#[derive(Debug)]
pub struct RunReport {
    /// The metrics at the end.
    pub last: crate::ops::Snapshot,
    /// Seconds it ran.
    pub run_s: f64,
}

/// What `kairos agent check` prints: what the agent will connect to and what it may spend.
pub fn describe(cfg: &AgentFile, config: &Path) -> Result<String> {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "config      {}", config.display());
    let params = crate::config::params_as_text(&cfg.params);
    let p: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(s, "strategy    {} {}", cfg.strategy, p.join(" "));
    for b in &cfg.binance {
        let _ = writeln!(
            s,
            "feed        binance {} {} via {} (snapshots {})",
            b.market,
            b.symbols.join(","),
            b.ws_url.as_deref().unwrap_or(if b.market == "spot" {
                "wss://stream.binance.com:9443"
            } else {
                "wss://fstream.binance.com/market"
            }),
            b.rest_url.as_deref().unwrap_or(if b.market == "spot" {
                "https://api.binance.com"
            } else {
                "https://fapi.binance.com"
            })
        );
    }
    for c in &cfg.coinbase {
        let _ = writeln!(
            s,
            "feed        coinbase {} via {}",
            c.products.join(","),
            c.ws_url.as_deref().unwrap_or("wss://advanced-trade-ws.coinbase.com")
        );
    }
    for d in &cfg.dex {
        let _ =
            writeln!(s, "feed        {} pool {} {} via {}", d.kind, d.symbol, d.address, d.rpc_url);
    }
    if let Some(m) = &cfg.models {
        let g = crate::gateway::GatewayConfig::load(&m.router)?;
        let routes: Vec<&str> = g.router.routes.iter().map(|r| r.model.as_str()).collect();
        let _ = writeln!(
            s,
            "models      router {} (routes {}), answers recorded to {}",
            m.router.display(),
            routes.join(", "),
            m.record_answers.as_ref().map_or("nowhere".into(), |p| p.display().to_string())
        );
        for e in &g.router.endpoints {
            let _ =
                writeln!(s, "model host  {} {} (sees only what the strategy asks)", e.name, e.url);
        }
    }
    match cfg.venue.kind.as_str() {
        "paper" => {
            let _ = writeln!(s, "orders      paper venue (no real orders)");
        }
        kind => {
            let creds = match cfg.venue.credentials() {
                Ok(c) => format!("{c:?}"),
                Err(e) => format!("MISSING: {e}"),
            };
            let _ = writeln!(s, "orders      {kind} at {} ({creds})", cfg.venue.rest_base());
            let _ = writeln!(
                s,
                "            client order ids {}-N, recvWindow {} ms, polls every {} ms",
                cfg.venue.prefix(),
                cfg.venue.recv_window_ms.unwrap_or(5000),
                cfg.venue.poll_ms.unwrap_or(1000)
            );
            let _ = match cfg.venue.user_stream_url() {
                Some(u) => {
                    writeln!(s, "            order updates from the user data stream at {u}")
                }
                None => {
                    writeln!(s, "            order updates by polling only (user_stream = false)")
                }
            };
        }
    }
    if let Some(c) = &cfg.chain {
        let wallet = match crate::onchain::WalletFile::load(&c.wallet) {
            Ok(w) => format!(
                "wallet {} on chain {} at {}",
                c.wallet.display(),
                w.chain_id,
                kairos_chain::executor::redact(&w.rpc_url)
            ),
            Err(e) => format!("MISSING: wallet {}: {e:#}", c.wallet.display()),
        };
        for (symbol, router) in &c.routers {
            let _ = writeln!(
                s,
                "orders      {symbol}: swaps through Uniswap V2 router {router} ({wallet}), slippage {} bps, deadline {} s, within the wallet's guardrails",
                c.slippage_bps, c.deadline_s
            );
        }
    }
    let _ = writeln!(
        s,
        "journal     {}",
        cfg.journal.as_ref().map_or("none".into(), |p| p.display().to_string())
    );
    match &cfg.server {
        Some(sv) => {
            let token = match sv.token() {
                Ok(Some(_)) => "kill switch with a token".to_string(),
                Ok(None) => "no token: POST /kill refused".to_string(),
                Err(e) => format!("MISSING: {e}"),
            };
            let _ = writeln!(s, "server      http://{} ({token})", sv.listen);
        }
        None => {
            let _ = writeln!(s, "server      none (no /metrics; kill switch by SIGUSR1 only)");
        }
    }
    let _ = writeln!(
        s,
        "shutdown    {} working orders, drain {} s",
        cfg.shutdown.on_stop, cfg.shutdown.drain_s
    );
    let _ = writeln!(s, "may spend   cash {} (quote currency)", cfg.cash);
    let r = &cfg.risk;
    let opt = |v: Option<f64>| v.map_or("no limit".to_string(), |v| v.to_string());
    let _ = writeln!(s, "            max_order_notional {}", opt(r.max_order_notional));
    let _ = writeln!(s, "            max_total_notional {}", opt(r.max_total_notional));
    for sym in cfg.symbols() {
        let _ = writeln!(
            s,
            "            max_position.{sym} {}",
            opt(r.max_position.get(&sym).copied())
        );
    }
    let _ = writeln!(
        s,
        "            max_daily_loss {}, max_drawdown_pct {}",
        opt(r.max_daily_loss),
        opt(r.max_drawdown_pct)
    );
    if r.max_order_notional.is_none() && r.max_total_notional.is_none() {
        let _ = writeln!(
            s,
            "warning     no notional limit in [risk]: only cash and the venue bound the orders"
        );
    }
    Ok(s)
}

/// Runs the agent of `cfg` until `stop`.
pub async fn run(
    cfg: &AgentFile,
    registry: &Registry,
    stop: watch::Receiver<bool>,
    kill_signal: Option<mpsc::UnboundedReceiver<()>>,
) -> Result<RunReport> {
    let params = crate::config::params_as_text(&cfg.params);
    let strategy = registry.build(&cfg.strategy, &params)?;
    run_with(cfg, strategy, stop, kill_signal).await
}

/// Runs the agent of `cfg` with `strategy` (the config's `strategy` is only its name).
pub async fn run_with<S: Strategy>(
    cfg: &AgentFile,
    strategy: S,
    stop: watch::Receiver<bool>,
    kill_signal: Option<mpsc::UnboundedReceiver<()>>,
) -> Result<RunReport> {
    run_observed(cfg, strategy, stop, kill_signal, Arc::new(Metrics::default())).await
}

/// [`run_with`], writing its state into `metrics` (which the caller can read while it runs).
pub async fn run_observed<S: Strategy>(
    cfg: &AgentFile,
    strategy: S,
    stop: watch::Receiver<bool>,
    kill_signal: Option<mpsc::UnboundedReceiver<()>>,
    metrics: Arc<Metrics>,
) -> Result<RunReport> {
    let started = Instant::now();
    let instruments = cfg.instrument_table()?;
    let symbols: Vec<String> = instruments.iter().map(|i| i.symbol.clone()).collect();
    metrics.update(|s| {
        s.venue = cfg.venue.kind.clone();
        s.strategy = cfg.strategy.clone();
        s.pid = std::process::id();
        s.started_ms = now_ms();
        s.trading_state = "ACTIVE".into();
        s.instruments = instruments
            .iter()
            .map(|i| InstrumentView {
                symbol: i.symbol.clone(),
                venue: i.venue.clone(),
                synced: !cfg.book_symbols().contains(&i.symbol),
                ..Default::default()
            })
            .collect();
    });
    let journal = match &cfg.journal {
        Some(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("journal folder {}", dir.display()))?;
            }
            Some(Journal::open(p)?)
        }
        None if cfg.venue.is_live() || cfg.chain.is_some() => {
            bail!(
                "journal = \"...\" is required with a live [venue] or [chain]: orders are journalled before they are sent"
            )
        }
        None => None,
    };
    let note = |j: &Option<Journal>, kind: &str, detail: &str| {
        if let Some(j) = j
            && let Err(e) = j.event(kind, detail)
        {
            tracing::error!("journal: {e}");
        }
    };
    note(&journal, "started", &format!("pid {} venue {}", std::process::id(), cfg.venue.kind));

    // The operations server first: /health answers and /ready says why not while the agent
    // reconciles.
    let poke = Arc::new(Notify::new());
    let mut ctx = Context::new(instruments.clone(), cfg.cash);
    let mut server_task = None;
    let token = match &cfg.server {
        Some(sv) => sv.token()?,
        None => None,
    };

    // Live: reconcile, settle what an earlier session left working, read the filters.
    let mut venue_parts = None;
    if cfg.venue.is_live() {
        let journal = journal.as_ref().expect("checked above");
        let mut rest = BinanceRest::new(cfg.venue.rest_base(), Some(cfg.venue.credentials()?))?;
        if let Some(w) = cfg.venue.recv_window_ms {
            rest.recv_window_ms = w;
        }
        let venue_symbols: Vec<String> =
            instruments.iter().filter(|i| i.venue == "binance").map(|i| i.symbol.clone()).collect();
        if venue_symbols.is_empty() {
            bail!(
                "[venue] kind = binance-spot, but no [[binance]] spot feed has a symbol to trade"
            );
        }
        let refs: Vec<&str> = venue_symbols.iter().map(String::as_str).collect();
        let mut rec = crate::reconcile::reconcile_binance(journal, &mut rest, BINANCE_SPOT, &refs)
            .await
            .map_err(anyhow::Error::from)?;
        let orphans: Vec<_> = journal
            .unsettled(BINANCE_SPOT)?
            .into_iter()
            .filter(|o| o.venue_order_id.is_some())
            .collect();
        if !orphans.is_empty() {
            tracing::info!(
                orders = orphans.len(),
                "cancelling orders an earlier session left working (no strategy owns them)"
            );
            for o in &orphans {
                if let Err(e) = rest.cancel_order(&o.symbol, &o.client_id).await {
                    tracing::warn!(client_id = %o.client_id, "cancel: {e}");
                }
            }
            rec = crate::reconcile::reconcile_binance(journal, &mut rest, BINANCE_SPOT, &refs)
                .await
                .map_err(anyhow::Error::from)?;
            let left = journal.unsettled(BINANCE_SPOT)?;
            if !left.is_empty() {
                let ids: Vec<&str> = left.iter().map(|o| o.client_id.as_str()).collect();
                let why = format!(
                    "cannot reconcile with {BINANCE_SPOT}, refusing to trade: orders of an earlier session are still working and could not be cancelled: {}",
                    ids.join(", ")
                );
                note(&Some(journal.clone_handle()?), "refused", &why);
                bail!(why);
            }
        }
        tracing::info!(
            settled = rec.settled.len(),
            new_fills = rec.new_fills,
            "reconciled with {BINANCE_SPOT}"
        );
        let rules = rest.exchange_info(&refs).await.map_err(|e| {
            anyhow::anyhow!("cannot read {BINANCE_SPOT}'s filters, refusing to trade: {e}")
        })?;
        let mut by_instrument: Vec<Option<SymbolRules>> = vec![None; instruments.len()];
        for r in rules {
            let Some(k) = symbols.iter().position(|s| *s == r.symbol) else { continue };
            let i = &instruments[k];
            if (i.tick_size - r.tick_size.to_f64()).abs() > 1e-12
                || (i.lot_size - r.step_size.to_f64()).abs() > 1e-12
            {
                bail!(
                    "[instruments.{}] tick_size = {}, lot_size = {}, but {BINANCE_SPOT} says tickSize {} and stepSize {}: fix the config",
                    r.symbol,
                    i.tick_size,
                    i.lot_size,
                    r.tick_size,
                    r.step_size
                );
            }
            if r.status != "TRADING" {
                tracing::warn!(symbol = %r.symbol, status = %r.status, "the symbol is not TRADING at the venue");
            }
            by_instrument[k] = Some(r);
        }
        let mut last_trade = BTreeMap::new();
        for s in &venue_symbols {
            if let Some(t) = journal.last_trade_id(BINANCE_SPOT, s)? {
                last_trade.insert(s.clone(), t);
            }
        }
        venue_parts = Some((rest, by_instrument, last_trade));
    }

    // On chain: settle the swaps an earlier session left unsettled, read the pools' tokens.
    let mut chain_parts = None;
    if let Some(spec) = &cfg.chain {
        let journal = journal.as_ref().expect("checked above");
        let wallet = crate::onchain::WalletFile::load(&spec.wallet)?;
        let exec = wallet.agent_executor(spec.password_file.clone()).await?;
        let pools = crate::chain_venue::routes(&exec, spec, &cfg.dex).await?;
        let settled = match crate::chain_venue::reconcile(journal, &exec, &pools).await {
            Ok(n) => n,
            Err(e) => {
                note(&Some(journal.clone_handle()?), "refused", &e.to_string());
                return Err(e);
            }
        };
        tracing::info!(
            address = %exec.address(),
            pools = pools.len(),
            settled,
            "reconciled with the chain"
        );
        chain_parts = Some((exec, pools));
    }

    // The agent's book: positions and cash from the journal's fills.
    if let Some(j) = &journal {
        let mut n = 0;
        let mut closed = Vec::new();
        for (k, s) in symbols.iter().enumerate() {
            let fills = j.fills(BINANCE_SPOT, s)?.into_iter();
            for f in fills.chain(j.fills(crate::chain_venue::UNISWAP, s)?) {
                let (Ok(q), Ok(p), Ok(c)) =
                    (f.qty.parse::<f64>(), f.price.parse::<f64>(), f.commission.parse::<f64>())
                else {
                    bail!("journal: fill {} of {s} has a malformed number", f.trade_id);
                };
                let fill = Fill {
                    order: OrderId(u64::MAX),
                    instrument: InstrumentId(k as u32),
                    ts: kairos_strategies::Timestamp::from_millis(f.time_ms),
                    side: if f.side == "BUY" { Side::Buy } else { Side::Sell },
                    quantity: q,
                    price: p,
                    commission: c,
                };
                ctx.portfolio_mut().apply_fill(&fill, &mut closed);
                n += 1;
            }
        }
        if n > 0 {
            tracing::info!(fills = n, "positions rebuilt from the journal");
        }
    }

    let (venue_tx, venue_rx) = mpsc::unbounded_channel();
    let (report_tx, report_rx) = mpsc::unbounded_channel();
    let mut venue_task = None;
    let feeds = Feeds::spawn(cfg)?;
    let mut chain_task = None;
    let chain = match chain_parts {
        Some((exec, pools)) => {
            let spec = cfg.chain.clone().expect("chain parts come from [chain]");
            let routed = symbols.iter().map(|s| pools.iter().any(|p| &p.symbol == s)).collect();
            let j = journal.as_ref().expect("checked above").clone_handle()?;
            let (tx, rx) = mpsc::unbounded_channel();
            let report = report_tx.clone();
            chain_task =
                Some(tokio::spawn(crate::chain_venue::run_chain(exec, pools, spec, rx, report)));
            Some(crate::chain_venue::ChainVenue::new(j, cfg.venue.prefix(), routed, tx))
        }
        None => None,
    };
    let mut engine = match venue_parts {
        Some((rest, rules, last_trade)) => {
            let j = journal.as_ref().expect("live has a journal").clone_handle()?;
            let live = LiveVenue::new(j, BINANCE_SPOT, cfg.venue.prefix(), rules, venue_tx);
            let poll = Duration::from_millis(cfg.venue.poll_ms.unwrap_or(1000));
            let user = match cfg.venue.user_stream_url() {
                Some(url) => {
                    let stream = crate::binance_user::UserStream {
                        url: url.to_string(),
                        creds: cfg.venue.credentials()?,
                        clock_offset_ms: rest.clock_offset_ms,
                    };
                    let (tx, mut rx) = mpsc::unbounded_channel();
                    tokio::spawn(crate::binance_user::run_user_stream(stream, tx));
                    // The stream's state for /metrics and /status, on the way to the venue task.
                    let (relay, to_venue) = mpsc::unbounded_channel();
                    let m = metrics.clone();
                    m.update(|s| s.user_stream = Some(false));
                    tokio::spawn(async move {
                        use crate::binance_user::UserEvent;
                        while let Some(ev) = rx.recv().await {
                            match &ev {
                                UserEvent::Subscribed => m.update(|s| s.user_stream = Some(true)),
                                UserEvent::Down(_) => m.update(|s| s.user_stream = Some(false)),
                                UserEvent::Execution(_) => {}
                            }
                            if relay.send(ev).is_err() {
                                break;
                            }
                        }
                    });
                    Some(to_venue)
                }
                None => None,
            };
            venue_task =
                Some(tokio::spawn(run_venue(rest, venue_rx, report_tx, poll, last_trade, user)));
            let risk =
                Risk::new(Venue { main: MainVenue::Live(live), chain }, cfg.risk.clone(), &ctx)
                    .map_err(|e| anyhow::anyhow!("[risk] {e}"))?;
            Engine::new(ctx, risk, LiveClock, Reports::new(false))
        }
        None => {
            drop((venue_tx, venue_rx, report_tx));
            let paper = kairos_engine::paper::PaperVenue::new(cfg.paper);
            let venue = Venue { main: MainVenue::Paper(paper), chain };
            let risk = Risk::new(venue, cfg.risk.clone(), &ctx)
                .map_err(|e| anyhow::anyhow!("[risk] {e}"))?;
            Engine::new(ctx, risk, LiveClock, Reports::new(false))
        }
    };
    if let Some(j) = &journal
        && let Some(state) = j.load_risk()?
    {
        tracing::info!(
            state = state.trading_state().name(),
            "risk state restored from the journal"
        );
        engine.exec.restore(state);
    }
    metrics.update(|s| s.reconciled = true);
    // The restored state is what /status shows from its first answer.
    let mut observer = Observer {
        metrics: metrics.clone(),
        journal: journal.as_ref().map(|j| j.clone_handle()).transpose()?,
        transitions: engine.exec.transitions().len(),
        saved: Instant::now(),
        state: engine.exec.state().clone(),
        marked: Instant::now(),
    };
    observer.mark(&engine, false);

    let ops = Ops {
        metrics: metrics.clone(),
        kill: engine.exec.kill_switch(),
        poke: poke.clone(),
        token: token.map(Arc::new),
    };
    if let Some(sv) = &cfg.server {
        let (listener, addr) = crate::ops::bind(&sv.listen).await?;
        tracing::info!("operations server on http://{addr}");
        note(&journal, "listening", &addr.to_string());
        server_task = Some(tokio::spawn(crate::ops::serve(listener, ops.clone())));
    }
    if let Some(mut sig) = kill_signal {
        let ops = ops.clone();
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                ops.kill("SIGUSR1");
            }
        });
    }

    note(&journal, "strategy started", &cfg.strategy);
    let sink = MetricsSink { metrics: metrics.clone(), symbols: symbols.clone() };
    let mut strategy = Recorder { inner: strategy, events: sink };
    let answers = cfg.models.as_ref().map(|m| m.attach(&mut engine)).transpose()?;
    let mut hooks = Hooks {
        venue: (cfg.venue.is_live() || cfg.chain.is_some())
            .then_some((report_rx, apply_report as _)),
        poke: Some(poke),
        cancel_on_stop: cfg.shutdown.on_stop == "cancel",
        drain: Duration::from_secs_f64(cfg.shutdown.drain_s),
        answers,
    };
    let mut stop_rx = stop.clone();
    let stopping = metrics.clone();
    tokio::spawn(async move {
        if stop_rx.changed().await.is_ok() {
            stopping.update(|s| s.stopping = true);
        }
    });
    let tally = drive(cfg, &mut engine, &mut strategy, feeds, &mut hooks, stop, |e, seen| {
        observer.after(e, seen)
    })
    .await;
    // Stopping: the venue task finishes what it was asked for and ends; its last reports are
    // journalled (the strategy has stopped: nobody hears of them).
    if let MainVenue::Live(l) = &mut engine.exec.inner.main {
        l.close();
    }
    if let Some(c) = &mut engine.exec.inner.chain {
        c.close();
    }
    for t in [venue_task, chain_task].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs_f64(cfg.shutdown.drain_s), t).await;
    }
    if let Some((rx, apply)) = hooks.venue.as_mut() {
        let apply = *apply;
        while let Ok(r) = rx.try_recv() {
            engine.from_venue(&mut Nobody, |x, ctx, out| apply(&mut x.inner, ctx, r, out));
        }
    }
    observer.mark(&engine, true);
    metrics.update(|s| {
        s.messages = tally.messages;
        s.malformed = tally.malformed;
        s.stopping = true;
    });
    let last = metrics.snapshot();
    note(
        &journal,
        "stopped",
        &format!(
            "{} orders, {} fills, {} working, trading {}",
            last.orders, last.fills, last.working, last.trading_state
        ),
    );
    if let Some(t) = server_task {
        t.abort();
    }
    Ok(RunReport { last, run_s: started.elapsed().as_secs_f64() })
}

/// `v`, or 0 when it is not a number (a flat position's average price): JSON has no NaN.
fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// Hears nothing: venue reports that arrive after the strategy stopped are booked to it.
struct Nobody;

impl Strategy for Nobody {}

/// The venue of the instruments that are not swapped on chain.
#[derive(Debug)]
pub enum MainVenue {
    /// The paper venue.
    Paper(kairos_engine::paper::PaperVenue),
    /// Binance spot.
    Live(LiveVenue),
}

/// The execution client `kairos run` puts behind the risk engine: the main venue, and the
/// on-chain client for the `[[dex]]` instruments `[chain]` routes.
#[derive(Debug)]
pub struct Venue {
    /// Paper or Binance spot.
    pub main: MainVenue,
    /// Swaps on chain.
    pub chain: Option<crate::chain_venue::ChainVenue>,
}

impl Venue {
    fn chain_for(
        &mut self,
        instrument: InstrumentId,
    ) -> Option<&mut crate::chain_venue::ChainVenue> {
        self.chain.as_mut().filter(|c| c.routes(instrument))
    }

    fn main_exec(&mut self) -> &mut dyn Execution {
        match &mut self.main {
            MainVenue::Paper(p) => p,
            MainVenue::Live(l) => l,
        }
    }

    fn main_ref(&self) -> &dyn Execution {
        match &self.main {
            MainVenue::Paper(p) => p,
            MainVenue::Live(l) => l,
        }
    }
}

fn apply_report(v: &mut Venue, ctx: &mut Context, r: crate::live::VenueReport, out: &mut Reports) {
    if let Some(c) = v.chain.as_mut().filter(|c| c.knows(r.order())) {
        return c.apply(ctx, r, out);
    }
    if let MainVenue::Live(l) = &mut v.main {
        l.apply(ctx, r, out);
    }
}

impl Execution for Venue {
    fn command(
        &mut self,
        ctx: &mut Context,
        command: &kairos_strategies::Command,
        out: &mut Reports,
    ) {
        let instrument = match command {
            kairos_strategies::Command::Submit(o) => o.request.instrument,
            kairos_strategies::Command::Cancel { instrument, .. }
            | kairos_strategies::Command::Modify { instrument, .. } => *instrument,
        };
        match self.chain_for(instrument) {
            Some(c) => c.command(ctx, command, out),
            None => self.main_exec().command(ctx, command, out),
        }
    }
    fn has_working(&self) -> bool {
        self.main_ref().has_working() || self.chain.as_ref().is_some_and(|c| c.has_working())
    }
    fn working(&self) -> usize {
        self.main_ref().working() + self.chain.as_ref().map_or(0, |c| c.working())
    }
    fn rejected(&self) -> u64 {
        self.main_ref().rejected() + self.chain.as_ref().map_or(0, |c| c.rejected())
    }
    fn on_trade(&mut self, ctx: &mut Context, t: &kairos_strategies::Trade, out: &mut Reports) {
        if let MainVenue::Paper(p) = &mut self.main {
            p.on_trade(ctx, t, out)
        }
    }
    fn on_quote(&mut self, ctx: &mut Context, q: &kairos_strategies::Quote, out: &mut Reports) {
        if let MainVenue::Paper(p) = &mut self.main {
            p.on_quote(ctx, q, out)
        }
    }
    fn on_book(
        &mut self,
        ctx: &mut Context,
        u: &kairos_strategies::BookUpdate<'_>,
        out: &mut Reports,
    ) {
        if let MainVenue::Paper(p) = &mut self.main {
            p.on_book(ctx, u, out)
        }
    }
    fn next_wakeup(&self) -> Option<kairos_strategies::Timestamp> {
        match &self.main {
            MainVenue::Paper(p) => p.next_wakeup(),
            MainVenue::Live(_) => None,
        }
    }
    fn wake(&mut self, ctx: &mut Context, out: &mut Reports) {
        if let MainVenue::Paper(p) = &mut self.main {
            p.wake(ctx, out)
        }
    }
}

/// Keeps the metrics and the journal's risk state up to date after every event.
struct Observer {
    metrics: Arc<Metrics>,
    journal: Option<Journal>,
    transitions: usize,
    state: RiskState,
    saved: Instant,
    marked: Instant,
}

impl Observer {
    fn after(&mut self, e: &mut Engine<Risk<Venue>, LiveClock>, seen: Seen) {
        match seen {
            Seen::Market(id, ts) => {
                let lag = now_ms() as f64 / 1e3 - ts.0 as f64 / 1e9;
                self.metrics.update(|s| {
                    s.messages += 1;
                    if let Some(i) = s.instruments.get_mut(id.index()) {
                        i.events += 1;
                        i.last_event_ms = ts.0.div_euclid(1_000_000);
                        i.lag_s = finite(lag);
                    }
                });
            }
            Seen::Status(id, synced) => self.metrics.update(|s| {
                if let Some(i) = s.instruments.get_mut(id.index()) {
                    if i.synced && !synced {
                        i.resyncs += 1;
                    }
                    i.synced = synced;
                }
            }),
            Seen::Malformed => self.metrics.update(|s| {
                s.messages += 1;
                s.malformed += 1;
            }),
            Seen::Other => {}
        }
        let changed = e.exec.transitions().len() != self.transitions;
        if changed || self.marked.elapsed() >= Duration::from_millis(200) {
            self.mark(e, changed);
        }
    }

    /// Copies the portfolio and the risk state into the metrics; journals the risk state on a
    /// change of trading state (at once) or when it moved (at most once a second), or when
    /// `force`d.
    fn mark(&mut self, e: &Engine<Risk<Venue>, LiveClock>, force: bool) {
        self.marked = Instant::now();
        let p = e.ctx.portfolio();
        let state = e.exec.state();
        let transitions = e.exec.transitions();
        for t in &transitions[self.transitions.min(transitions.len())..] {
            if let Some(j) = &self.journal {
                let _ = j.event(
                    "trading state",
                    &format!("{} -> {}: {}", t.from.name(), t.to.name(), t.why),
                );
            }
        }
        self.transitions = transitions.len();
        self.metrics.update(|s| {
            s.equity = finite(p.equity());
            s.cash = finite(p.cash());
            s.realised_pnl = finite(p.realised_pnl());
            s.unrealised_pnl = finite(p.unrealised_pnl());
            s.working = e.exec.working();
            s.trading_state = state.trading_state().name().to_string();
            s.risk_reason = state.reason().map(str::to_string);
            s.risk_transitions = transitions.len() as u64;
            for (k, i) in s.instruments.iter_mut().enumerate() {
                let id = InstrumentId(k as u32);
                let pos = p.position(id);
                i.position = finite(pos.quantity());
                i.avg_price = finite(pos.avg_price());
                let book = e.ctx.book(id);
                i.bid = book.best_bid().map(|(p, _)| p.to_f64());
                i.ask = book.best_ask().map(|(p, _)| p.to_f64());
            }
        });
        if let Some(j) = &self.journal
            && *state != self.state
            && (force || self.saved.elapsed() >= Duration::from_secs(1))
        {
            if let Err(err) = j.save_risk(state) {
                tracing::error!("journal: {err}");
            }
            self.state = state.clone();
            self.saved = Instant::now();
        }
    }
}
