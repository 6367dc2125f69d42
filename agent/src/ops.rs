//! What a running agent tells its operator: [`Metrics`] (read by `/metrics` in the Prometheus
//! text format, by `/status` as JSON, by `kairos status` and `kairos top`), `/health` and
//! `/ready`, and the authenticated kill switch `POST /kill`.
//!
//! The engine's task writes the metrics after every event (a few field updates under an
//! uncontended lock); the HTTP server only reads them.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kairos_engine::risk::KillSwitch;
use kairos_strategies::{OrderEvent, OrderUpdate};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::now_ms;
use crate::replay::OrderSink;

/// How many recent order events `/status` keeps.
pub const RECENT: usize = 30;

/// One instrument, as the operator sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InstrumentView {
    /// Symbol.
    pub symbol: String,
    /// Venue.
    pub venue: String,
    /// Whether its book is synchronised (or, without a book, whether it is tradable).
    pub synced: bool,
    /// Times its book went out of sync after being in sync.
    pub resyncs: u64,
    /// Market events handled.
    pub events: u64,
    /// Exchange time of the last one, ms since the epoch.
    pub last_event_ms: i64,
    /// Local time it was handled minus its exchange time, seconds.
    pub lag_s: f64,
    /// Best bid.
    pub bid: Option<f64>,
    /// Best ask.
    pub ask: Option<f64>,
    /// Position, units.
    pub position: f64,
    /// Average entry price.
    pub avg_price: f64,
}

/// A recent order event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecentOrder {
    /// Exchange time, ms since the epoch.
    pub ts_ms: i64,
    /// The strategy's order id.
    pub order: u64,
    /// Symbol.
    pub symbol: String,
    /// What happened (`accepted`, `filled`, `rejected by max_position: ...`).
    pub event: String,
}

/// Everything `/status` shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    /// `paper` or the venue (`binance-spot`).
    pub venue: String,
    /// The strategy.
    pub strategy: String,
    /// The agent's process id.
    pub pid: u32,
    /// Start time, ms since the epoch.
    pub started_ms: i64,
    /// Reconciled with the venue (always true on paper).
    pub reconciled: bool,
    /// Stopping.
    pub stopping: bool,
    /// Feed messages handled.
    pub messages: u64,
    /// Messages that did not parse.
    pub malformed: u64,
    /// Instruments.
    pub instruments: Vec<InstrumentView>,
    /// Orders the strategy sent (each is accepted or rejected).
    pub orders: u64,
    /// Fills.
    pub fills: u64,
    /// Orders that ended cancelled or expired.
    pub cancelled: u64,
    /// Rejections by rule (`max_position`, `venue`, ...).
    pub rejections: BTreeMap<String, u64>,
    /// Orders working now.
    pub working: usize,
    /// Equity in the quote currency.
    pub equity: f64,
    /// Cash.
    pub cash: f64,
    /// Realised profit and loss.
    pub realised_pnl: f64,
    /// Unrealised profit and loss.
    pub unrealised_pnl: f64,
    /// `ACTIVE`, `REDUCING` or `HALTED`.
    pub trading_state: String,
    /// Why it is not ACTIVE.
    pub risk_reason: Option<String>,
    /// Changes of trading state so far.
    pub risk_transitions: u64,
    /// The last order events, oldest first.
    pub recent: VecDeque<RecentOrder>,
    /// Whether the venue's user data stream is subscribed (absent without one).
    #[serde(default)]
    pub user_stream: Option<bool>,
}

impl Snapshot {
    /// Whether the agent is ready to trade: reconciled, every instrument synchronised, not
    /// stopping and not HALTED; otherwise why not.
    pub fn ready(&self) -> Result<(), String> {
        if !self.reconciled {
            return Err("not reconciled with the venue".into());
        }
        if self.stopping {
            return Err("stopping".into());
        }
        if let Some(i) = self.instruments.iter().find(|i| !i.synced) {
            return Err(format!("{} is not synchronised", i.symbol));
        }
        if self.trading_state == "HALTED" {
            return Err(format!(
                "trading is HALTED: {}",
                self.risk_reason.as_deref().unwrap_or("no reason given")
            ));
        }
        Ok(())
    }
}

/// The agent's metrics, shared between the engine's task and the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    snap: Mutex<Snapshot>,
}

impl Metrics {
    /// Runs `f` on the snapshot.
    pub fn update<R>(&self, f: impl FnOnce(&mut Snapshot) -> R) -> R {
        f(&mut self.snap.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A copy of the snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.update(|s| s.clone())
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let s = self.snapshot();
        let mut out = String::with_capacity(4096);
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, v) in rows {
                let v = if v.is_finite() { v } else { 0.0 };
                out.push_str(&format!("{name}{labels} {v}\n"));
            }
        };
        let per = |f: &dyn Fn(&InstrumentView) -> f64| -> Vec<(String, f64)> {
            s.instruments
                .iter()
                .map(|i| {
                    (
                        format!(
                            "{{symbol=\"{}\",venue=\"{}\"}}",
                            escape(&i.symbol),
                            escape(&i.venue)
                        ),
                        f(i),
                    )
                })
                .collect()
        };
        family(
            "kairos_up",
            "gauge",
            "Whether the agent is running (1) or stopping (0).",
            vec![(String::new(), if s.stopping { 0.0 } else { 1.0 })],
        );
        family(
            "kairos_ready",
            "gauge",
            "Whether the agent is ready to trade: reconciled, synchronised, not halted.",
            vec![(String::new(), if s.ready().is_ok() { 1.0 } else { 0.0 })],
        );
        if let Some(up) = s.user_stream {
            family(
                "kairos_user_stream_up",
                "gauge",
                "Whether the venue's user data stream is subscribed (order updates are polled while it is not).",
                vec![(String::new(), if up { 1.0 } else { 0.0 })],
            );
        }
        family(
            "kairos_feed_messages_total",
            "counter",
            "Feed messages handled.",
            vec![(String::new(), s.messages as f64)],
        );
        family(
            "kairos_feed_malformed_messages_total",
            "counter",
            "Feed messages that did not parse.",
            vec![(String::new(), s.malformed as f64)],
        );
        family(
            "kairos_market_events_total",
            "counter",
            "Market events (book updates and trades) handled, by instrument.",
            per(&|i| i.events as f64),
        );
        family(
            "kairos_feed_lag_seconds",
            "gauge",
            "Local time minus the exchange time of the instrument's last market event.",
            per(&|i| i.lag_s),
        );
        family(
            "kairos_book_synced",
            "gauge",
            "Whether the instrument's book is synchronised.",
            per(&|i| if i.synced { 1.0 } else { 0.0 }),
        );
        family(
            "kairos_book_resyncs_total",
            "counter",
            "Times the instrument's book went out of sync and had to be rebuilt.",
            per(&|i| i.resyncs as f64),
        );
        family(
            "kairos_position",
            "gauge",
            "Position by instrument, in units of the base asset.",
            per(&|i| i.position),
        );
        family(
            "kairos_orders_total",
            "counter",
            "Orders the strategies sent.",
            vec![(String::new(), s.orders as f64)],
        );
        family("kairos_fills_total", "counter", "Fills.", vec![(String::new(), s.fills as f64)]);
        family(
            "kairos_orders_cancelled_total",
            "counter",
            "Orders that ended cancelled or expired.",
            vec![(String::new(), s.cancelled as f64)],
        );
        let mut rules: Vec<(String, f64)> = kairos_strategies::RiskRule::ALL
            .iter()
            .map(|r| (format!("{{rule=\"{}\"}}", r.name()), 0.0))
            .collect();
        for (rule, n) in &s.rejections {
            let label = format!("{{rule=\"{}\"}}", escape(rule));
            match rules.iter_mut().find(|(l, _)| *l == label) {
                Some(row) => row.1 = *n as f64,
                None => rules.push((label, *n as f64)),
            }
        }
        family("kairos_rejections_total", "counter", "Orders rejected, by rule.", rules);
        family(
            "kairos_working_orders",
            "gauge",
            "Orders working now.",
            vec![(String::new(), s.working as f64)],
        );
        family(
            "kairos_equity",
            "gauge",
            "Equity in the quote currency.",
            vec![(String::new(), s.equity)],
        );
        family(
            "kairos_pnl",
            "gauge",
            "Profit and loss in the quote currency.",
            vec![
                ("{kind=\"realised\"}".into(), s.realised_pnl),
                ("{kind=\"unrealised\"}".into(), s.unrealised_pnl),
            ],
        );
        family(
            "kairos_trading_state",
            "gauge",
            "The risk engine's trading state (1 for the current one).",
            ["ACTIVE", "REDUCING", "HALTED"]
                .iter()
                .map(|st| {
                    (format!("{{state=\"{st}\"}}"), if s.trading_state == *st { 1.0 } else { 0.0 })
                })
                .collect(),
        );
        family(
            "kairos_risk_transitions_total",
            "counter",
            "Changes of trading state.",
            vec![(String::new(), s.risk_transitions as f64)],
        );
        out
    }
}

/// The human form of a status, for `kairos status`.
pub fn describe(s: &Snapshot) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let up = (now_ms() - s.started_ms).max(0) / 1000;
    let _ = writeln!(
        o,
        "agent     pid {} · {} on {} · up {}h{:02}m{:02}s · {}",
        s.pid,
        s.strategy,
        s.venue,
        up / 3600,
        up / 60 % 60,
        up % 60,
        match s.ready() {
            Ok(()) => "ready".to_string(),
            Err(why) => format!("not ready: {why}"),
        }
    );
    let _ = writeln!(
        o,
        "trading   {}{} · {} transitions",
        s.trading_state,
        s.risk_reason.as_deref().map_or(String::new(), |r| format!(" ({r})")),
        s.risk_transitions
    );
    let _ = writeln!(
        o,
        "money     equity {:.2} · cash {:.2} · realised {:.2} · unrealised {:.2}",
        s.equity, s.cash, s.realised_pnl, s.unrealised_pnl
    );
    let _ = writeln!(
        o,
        "orders    {} sent · {} fills · {} cancelled · {} working · rejected {}",
        s.orders,
        s.fills,
        s.cancelled,
        s.working,
        if s.rejections.is_empty() {
            "none".to_string()
        } else {
            s.rejections.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        }
    );
    let _ = writeln!(o, "feeds     {} messages ({} malformed)", s.messages, s.malformed);
    if let Some(up) = s.user_stream {
        let _ = writeln!(
            o,
            "orders    user data stream {}",
            if up { "subscribed" } else { "DOWN (orders are polled)" }
        );
    }
    for i in &s.instruments {
        let px = |p: Option<f64>| p.map_or("-".to_string(), |p| format!("{p}"));
        let _ = writeln!(
            o,
            "  {:<10} {:<8} {} · lag {:.3} s · {} resyncs · bid {} ask {} · position {} @ {:.2}",
            i.symbol,
            i.venue,
            if i.synced { "synced" } else { "NOT SYNCED" },
            i.lag_s,
            i.resyncs,
            px(i.bid),
            px(i.ask),
            i.position,
            i.avg_price
        );
    }
    if !s.recent.is_empty() {
        let _ = writeln!(o, "recent orders");
        for r in s.recent.iter().rev().take(10) {
            let _ = writeln!(o, "  #{:<6} {:<10} {}", r.order, r.symbol, r.event);
        }
    }
    o
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A [`crate::replay::Recorder`] sink that counts order events into the metrics and keeps
/// the last [`RECENT`].
#[derive(Debug, Clone)]
pub struct MetricsSink {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Symbols by instrument index.
    pub symbols: Vec<String>,
}

impl OrderSink for MetricsSink {
    fn fill(&mut self, _fill: &kairos_strategies::Fill) {
        self.metrics.update(|s| s.fills += 1);
    }

    fn order(&mut self, e: &OrderEvent) {
        let symbol = self.symbols.get(e.instrument.index()).cloned().unwrap_or_default();
        let text = match &e.update {
            OrderUpdate::Accepted => "accepted".to_string(),
            OrderUpdate::Rejected(r) => format!("rejected by {}: {}", r.rule.name(), r.reason),
            OrderUpdate::PartiallyFilled => "partially filled".into(),
            OrderUpdate::Filled => "filled".into(),
            OrderUpdate::Cancelled => "cancelled".into(),
            OrderUpdate::Expired => "expired".into(),
            OrderUpdate::CancelRejected(r) => format!("cancel rejected: {}", r.reason),
            OrderUpdate::Modified(_) => "modified".into(),
            OrderUpdate::ModifyRejected(r) => format!("modify rejected: {}", r.reason),
        };
        self.metrics.update(|s| {
            match &e.update {
                OrderUpdate::Accepted => s.orders += 1,
                OrderUpdate::Rejected(r) => {
                    s.orders += 1;
                    *s.rejections.entry(r.rule.name().to_string()).or_default() += 1;
                }
                OrderUpdate::Cancelled | OrderUpdate::Expired => s.cancelled += 1,
                _ => {}
            }
            if s.recent.len() == RECENT {
                s.recent.pop_front();
            }
            s.recent.push_back(RecentOrder {
                ts_ms: e.ts.0.div_euclid(1_000_000),
                order: e.order.0,
                symbol,
                event: text,
            });
        });
    }
}

/// The operations server's shared state.
#[derive(Clone)]
pub struct Ops {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The risk engine's kill switch.
    pub kill: KillSwitch,
    /// Woken after the switch is pulled, so that the engine applies it at once.
    pub poke: Arc<Notify>,
    /// The bearer token `POST /kill` needs (none: the endpoint refuses).
    pub token: Option<Arc<zeroize::Zeroizing<String>>>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops").field("token", &self.token.as_ref().map(|_| "<redacted>")).finish()
    }
}

impl Ops {
    /// Pulls the kill switch (`who` says from where) and wakes the engine.
    pub fn kill(&self, who: &str) {
        tracing::warn!("kill switch pulled ({who})");
        self.kill.pull(who);
        self.poke.notify_one();
    }
}

/// The routes: `GET /metrics`, `GET /health`, `GET /ready`, `GET /status`, `POST /kill`.
pub fn router(ops: Ops) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/status", get(status))
        .route("/kill", post(kill))
        .with_state(ops)
}

/// Serves [`router`] on `listener` until the runtime stops.
pub async fn serve(listener: tokio::net::TcpListener, ops: Ops) {
    if let Err(e) = axum::serve(listener, router(ops)).await {
        tracing::error!("the operations server stopped: {e}");
    }
}

/// Binds `addr` for [`serve`], with an error naming it.
pub async fn bind(addr: &str) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("[server] listen = \"{addr}\": {e}"))?;
    let a = l.local_addr()?;
    Ok((l, a))
}

async fn metrics(State(ops): State<Ops>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], ops.metrics.render())
        .into_response()
}

async fn health(State(ops): State<Ops>) -> Response {
    if ops.metrics.update(|s| s.stopping) {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
    } else {
        "ok\n".into_response()
    }
}

async fn ready(State(ops): State<Ops>) -> Response {
    match ops.metrics.snapshot().ready() {
        Ok(()) => "ready\n".into_response(),
        Err(why) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response()
        }
    }
}

async fn status(State(ops): State<Ops>) -> Response {
    axum::Json(ops.metrics.snapshot()).into_response()
}

/// Whether `headers` carry `Authorization: Bearer <token>` (compared in constant time).
fn authorised(headers: &HeaderMap, token: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(given) = given.strip_prefix("Bearer ") else { return false };
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// `POST /kill?by=WHO`: who asked, for the log and the journal (`cli` from `kairos kill`).
#[derive(Debug, Deserialize)]
struct KillQuery {
    by: Option<String>,
}

async fn kill(
    State(ops): State<Ops>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<KillQuery>,
) -> Response {
    let Some(token) = &ops.token else {
        return (
            StatusCode::FORBIDDEN,
            "no control token is configured ([server] token_env or token_file)\n",
        )
            .into_response();
    };
    if !authorised(&headers, token) {
        tracing::warn!("POST /kill refused: missing or wrong bearer token");
        return (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response();
    }
    let who = match q.by.as_deref() {
        Some(b)
            if !b.is_empty() && b.len() <= 16 && b.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!("{b} via http")
        }
        _ => "http".to_string(),
    };
    ops.kill(&who);
    // Answer once the engine has applied it (it does at once, between two events).
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        if ops.metrics.update(|s| s.trading_state == "HALTED") {
            return "kill switch pulled: trading HALTED\n".into_response();
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    (StatusCode::ACCEPTED, "kill switch pulled; the engine has not applied it yet\n")
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_says_why_not() {
        let mut s =
            Snapshot { reconciled: true, trading_state: "ACTIVE".into(), ..Default::default() };
        s.instruments.push(InstrumentView { symbol: "BTCUSDT".into(), ..Default::default() });
        assert_eq!(s.ready().unwrap_err(), "BTCUSDT is not synchronised");
        s.instruments[0].synced = true;
        assert!(s.ready().is_ok());
        s.trading_state = "HALTED".into();
        s.risk_reason = Some("kill switch (http)".into());
        assert!(s.ready().unwrap_err().contains("kill switch (http)"));
        s.reconciled = false;
        assert_eq!(s.ready().unwrap_err(), "not reconciled with the venue");
    }

    #[test]
    fn a_bearer_token_must_match_exactly() {
        let mut h = HeaderMap::new();
        assert!(!authorised(&h, "s3cret"));
        h.insert(header::AUTHORIZATION, "Bearer s3cre".parse().unwrap());
        assert!(!authorised(&h, "s3cret"));
        h.insert(header::AUTHORIZATION, "s3cret".parse().unwrap());
        assert!(!authorised(&h, "s3cret"));
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(authorised(&h, "s3cret"));
    }
}
