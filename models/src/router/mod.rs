//! The inference router: sends a model request to remote OpenAI-compatible endpoints (Kairos
//! workers on rented GPUs, vLLM, llama.cpp, any provider) and to the in-process model, and
//! keeps answering on time when they fail.
//!
//! - **One deadline per request** ([`config::RouteConfig::deadline_ms`]) covers every retry,
//!   fallback and hedge: each attempt gets what is left of it, never a fresh timeout.
//! - **Attempts are streams.** Chat and text completions are always asked of an endpoint as a
//!   stream, so the router sees the first token come (`first_token_ms`) and a stream stall
//!   between chunks (`stall_ms`). A stream that ends without a finish reason and `[DONE]`, or
//!   with a malformed chunk, is a failure, never a truncated success. A caller that asked for
//!   one answer gets the chunks assembled.
//! - **What is retried where.** A 429 or 5xx or a reset is retried on the same endpoint after
//!   its `Retry-After` or a jittered exponential backoff (when that fits in the deadline), then
//!   the next target. A 400 (context length, content policy) is never sent to the same model
//!   again: the next target serving another model gets it, or the caller gets the 400. A
//!   target that refuses an assistant prefill gets the request once more with the prefill
//!   turned into an instruction.
//! - **Mid-stream failure**: when a stream breaks after some text, the next target continues
//!   the answer (the text so far as an assistant prefill).
//! - A circuit breaker and health probes per endpoint ([`health`]); hedged requests after the
//!   primary's observed p95; the `local` target answers when no remote does, with
//!   `local_reserve_ms` of the deadline kept for it.
//! - A redaction hook sees every body before it leaves the machine.
//! - Figures per endpoint and route in [`Router::metrics`] (Prometheus text).

pub mod assemble;
pub mod config;
pub mod health;
pub mod upstream;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use reqwest_feeds as reqwest;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::assemble::Assembler;
use self::config::{LOCAL, RouteConfig, RouterConfig, TargetConfig};
use self::health::Health;
use self::upstream::{Failure, SseReader, Upstream};
use crate::metrics::{LATENCY_BUCKETS, Metrics, labels};

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/completions`.
    Completion,
    /// `POST /v1/embeddings`.
    Embedding,
    /// `POST /v1/forecast`.
    Forecast,
}

impl Kind {
    /// The route's path.
    pub fn path(self) -> &'static str {
        match self {
            Kind::Chat => "/v1/chat/completions",
            Kind::Completion => "/v1/completions",
            Kind::Embedding => "/v1/embeddings",
            Kind::Forecast => "/v1/forecast",
        }
    }

    fn streams(self) -> bool {
        matches!(self, Kind::Chat | Kind::Completion)
    }
}

/// The in-process model behind the `local` target. Called on a blocking thread; returns the
/// same JSON an endpoint would (a whole answer, never a stream).
pub trait LocalModel: Send + Sync {
    /// Answers a request whose `model` is the local target's model name.
    fn call(&self, kind: Kind, body: &Value) -> Result<Value, String>;
}

/// Rewrites a body before it leaves the machine (drop fields, mask text). Not applied to the
/// `local` target.
pub type Redactor = Arc<dyn Fn(Kind, &mut Value) + Send + Sync>;

/// One attempt, as the answer and the errors list them.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptLog {
    /// The endpoint's name (`local` for the in-process model).
    pub endpoint: String,
    /// The model asked for there.
    pub model: String,
    /// `ok`, `continued` (it gave part of the answer) or the failure's label.
    pub outcome: String,
    /// Milliseconds from the request's start to the attempt's end.
    pub at_ms: u64,
}

/// What went wrong with a whole request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    /// No route has that model name.
    #[error("no route for model {0:?} (known: {1})")]
    UnknownModel(String, String),
    /// The request is not one the router can send.
    #[error("bad request: {0}")]
    Invalid(String),
    /// Every model that could take the request refused it (a 400: context length, content
    /// policy); `body` is the last endpoint's error.
    #[error("{endpoint} ({model}) refused the request: {detail}")]
    Refused {
        /// Who refused.
        endpoint: String,
        /// Its model.
        model: String,
        /// The HTTP status.
        status: u16,
        /// Its error body.
        body: Value,
        /// A readable summary.
        detail: String,
    },
    /// No target answered within the deadline.
    #[error("no answer for {model} within {deadline_ms} ms: {}", summary(.attempts))]
    Exhausted {
        /// The route.
        model: String,
        /// The deadline it had.
        deadline_ms: u64,
        /// What was tried.
        attempts: Vec<AttemptLog>,
    },
}

fn summary(a: &[AttemptLog]) -> String {
    if a.is_empty() {
        return "no target could be tried".into();
    }
    a.iter()
        .map(|a| format!("{}/{} {} at {} ms", a.endpoint, a.model, a.outcome, a.at_ms))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A request.
#[derive(Debug, Clone)]
pub struct Request {
    /// What it asks for.
    pub kind: Kind,
    /// The OpenAI-format body; its `model` names the route.
    pub body: Value,
    /// A tighter deadline than the route's (the caller's own timeout).
    pub deadline: Option<Duration>,
}

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The endpoint that gave the (last part of the) answer.
    pub endpoint: String,
    /// Its model.
    pub model: String,
    /// The OpenAI-format answer.
    pub body: Value,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptLog>,
    /// Milliseconds from the start.
    pub elapsed_ms: u64,
}

/// What a streamed request yields after its first chunk.
#[derive(Debug)]
pub enum StreamEvent {
    /// A chunk to pass on (chat or completion chunk JSON).
    Chunk(Value),
    /// The stream is complete.
    Done(Vec<AttemptLog>),
    /// The stream failed after it began and no target could continue it: the caller must
    /// treat what it got as incomplete.
    Failed(RouteError),
}

/// A stream that has begun.
#[derive(Debug)]
pub struct Streaming {
    /// The endpoint that sent the first token.
    pub endpoint: String,
    /// Its model.
    pub model: String,
    /// The first chunks (up to and with the first token), then the rest.
    pub events: mpsc::Receiver<StreamEvent>,
}

enum Msg {
    Start { endpoint: String, model: String },
    Event(StreamEvent),
}

struct Endpoint {
    name: String,
    base: String,
    key: Option<String>,
    cost: f64,
    weight: f64,
    probe: Option<(String, Duration)>,
    health: Health,
}

/// The router. Cheap to share (`Arc`); every method takes `&self`.
pub struct Router {
    config: RouterConfig,
    endpoints: BTreeMap<String, Arc<Endpoint>>,
    http: reqwest::Client,
    local: Option<Arc<dyn LocalModel>>,
    redact: Option<Redactor>,
    metrics: Arc<Metrics>,
    requests: AtomicU64,
    hedged: AtomicU64,
    rng: std::sync::Mutex<rand_chacha::ChaCha20Rng>,
    verifier: Option<Arc<verify::Verifier>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("endpoints", &self.endpoints.keys().collect::<Vec<_>>())
            .field("routes", &self.config.routes.iter().map(|r| &r.model).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn read_key(e: &config::EndpointConfig) -> Result<Option<String>, String> {
    let at = format!("endpoints {:?}", e.name);
    if let Some(var) = &e.api_key_env {
        let k = std::env::var(var)
            .map_err(|_| format!("{at}.api_key_env: the environment variable {var} is not set"))?;
        return Ok(Some(k.trim().to_string()));
    }
    if let Some(p) = &e.api_key_file {
        let text = std::fs::read_to_string(p)
            .map_err(|err| format!("{at}.api_key_file {}: {err}", p.display()))?;
        let k = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'));
        return k
            .map(|k| Some(k.to_string()))
            .ok_or_else(|| format!("{at}.api_key_file {}: no key in it", p.display()));
    }
    Ok(None)
}

fn describe(m: &Metrics) {
    m.describe("kairos_router_requests_total", "counter", "Requests, by route and outcome.");
    m.describe("kairos_router_attempts_total", "counter", "Attempts, by endpoint and outcome.");
    m.describe(
        "kairos_router_request_latency_seconds",
        "histogram",
        "From a request's arrival to its answer (or failure), by route.",
    );
    m.describe(
        "kairos_router_time_to_first_token_seconds",
        "histogram",
        "From an attempt's start to its first token (whole answer for embeddings), by endpoint.",
    );
    m.describe("kairos_router_circuit_state", "gauge", "0 closed, 1 half-open, 2 open.");
    m.describe("kairos_router_circuit_opened_total", "counter", "Times the circuit opened.");
    m.describe("kairos_router_hedges_total", "counter", "Hedged second attempts started.");
    m.describe(
        "kairos_router_fallbacks_total",
        "counter",
        "Answers from a target after the first.",
    );
    m.describe("kairos_router_continuations_total", "counter", "Streams continued elsewhere.");
    m.describe("kairos_router_spend_total", "counter", "Tokens times the endpoint's cost.");
    m.describe("kairos_router_tokens_total", "counter", "Prompt and completion tokens.");
    m.describe("kairos_router_probe_up", "gauge", "1 when the last health probe succeeded.");
    m.describe(
        "kairos_router_verifications_total",
        "counter",
        "Spot checks and canaries, by endpoint, kind and result.",
    );
    m.describe("kairos_router_quarantined", "gauge", "1 while the endpoint is quarantined.");
}

impl Router {
    /// A router for a checked config, with the in-process model when a route names `local`.
    pub fn new(config: RouterConfig, local: Option<Arc<dyn LocalModel>>) -> Result<Self, String> {
        config.check()?;
        let uses_local =
            config.routes.iter().any(|r| r.targets.iter().any(|t| t.endpoint == LOCAL));
        if uses_local && local.is_none() {
            return Err("a route names the `local` target but no local model is loaded".into());
        }
        let mut endpoints = BTreeMap::new();
        for e in &config.endpoints {
            let probe = (!e.probe_path.is_empty())
                .then(|| (e.probe_path.clone(), Duration::from_millis(e.probe_ms)));
            endpoints.insert(
                e.name.clone(),
                Arc::new(Endpoint {
                    name: e.name.clone(),
                    base: e.url.trim_end_matches('/').trim_end_matches("/v1").to_string(),
                    key: read_key(e)?,
                    cost: e.cost,
                    weight: e.weight,
                    probe,
                    health: Health::new(
                        config.breaker.failures,
                        Duration::from_millis(config.breaker.open_ms),
                    ),
                }),
            );
        }
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        let metrics = Arc::new(Metrics::default());
        describe(&metrics);
        for name in endpoints.keys() {
            metrics.set("kairos_router_circuit_state", labels(&[("endpoint", name)]), 0.0);
        }
        let verifier = match &config.verify {
            None => None,
            Some(v) => {
                let eps: Vec<(String, String)> =
                    endpoints.values().map(|e| (e.name.clone(), e.base.clone())).collect();
                let ver = verify::Verifier::open(&v.db, v.failures_to_quarantine, &eps)?;
                for name in endpoints.keys() {
                    let q = if ver.is_quarantined(name) { 1.0 } else { 0.0 };
                    metrics.set("kairos_router_quarantined", labels(&[("endpoint", name)]), q);
                }
                for name in ver.quarantined() {
                    tracing::warn!(endpoint = %name, "endpoint stays quarantined (verify.db)");
                }
                Some(Arc::new(ver))
            }
        };
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("seeding the sampler: {e}"))?;
        Ok(Self {
            config,
            endpoints,
            http,
            local,
            redact: None,
            metrics,
            requests: AtomicU64::new(0),
            hedged: AtomicU64::new(0),
            rng: std::sync::Mutex::new(rand_chacha::ChaCha20Rng::from_seed(seed)),
            verifier,
        })
    }

    /// Sets the redaction hook.
    pub fn with_redactor(mut self, r: Redactor) -> Self {
        self.redact = Some(r);
        self
    }

    /// The config it runs.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The figures, Prometheus text.
    pub fn metrics(&self) -> String {
        let now = Instant::now().into_std();
        for (name, e) in &self.endpoints {
            self.metrics.set(
                "kairos_router_circuit_state",
                labels(&[("endpoint", name)]),
                e.health.circuit(now).gauge(),
            );
        }
        self.metrics.render()
    }

    /// The registry (for a counter's value in tests and logs).
    pub fn registry(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts one health-probe task per endpoint with a probe path (call from a runtime).
    pub fn spawn_probes(self: &Arc<Self>) {
        for e in self.endpoints.values() {
            let Some((path, every)) = e.probe.clone() else { continue };
            let (e, http, m) = (e.clone(), self.http.clone(), self.metrics.clone());
            tokio::spawn(async move {
                let url = format!("{}{path}", e.base);
                let l = labels(&[("endpoint", &e.name)]);
                loop {
                    tokio::time::sleep(every).await;
                    let mut rq = http.get(&url).timeout(every.max(Duration::from_millis(200)));
                    if let Some(k) = &e.key {
                        rq = rq.bearer_auth(k);
                    }
                    let ok = matches!(rq.send().await, Ok(r) if r.status().is_success());
                    m.set("kairos_router_probe_up", l.clone(), if ok { 1.0 } else { 0.0 });
                    let now = Instant::now().into_std();
                    if ok {
                        // A healthy probe ends an open circuit's wait early (its next request
                        // is the half-open trial).
                        if e.health.circuit(now) != health::Circuit::Closed {
                            e.health.success(None);
                        }
                    } else if e.health.failure(now) {
                        m.add("kairos_router_circuit_opened_total", l.clone(), 1.0);
                    }
                }
            });
        }
    }

    /// One whole answer (streams are assembled).
    pub async fn call(self: &Arc<Self>, req: Request) -> Result<Answer, RouteError> {
        let kind = req.kind;
        let t0 = Instant::now();
        let (tx, mut rx) = mpsc::channel(64);
        // Its own task: a spot check after the answer runs on without delaying the caller.
        let me = self.clone();
        tokio::spawn(async move { me.drive(req, tx).await });
        let collect = async {
            let mut asm = Assembler::default();
            let mut whole = None;
            let mut who = (String::new(), String::new());
            while let Some(m) = rx.recv().await {
                match m {
                    Msg::Start { endpoint, model } => who = (endpoint, model),
                    Msg::Event(StreamEvent::Chunk(v)) => {
                        if kind.streams() {
                            asm.push(kind, &v);
                        } else {
                            whole = Some(v);
                        }
                    }
                    Msg::Event(StreamEvent::Done(attempts)) => {
                        let body =
                            whole.take().unwrap_or_else(|| std::mem::take(&mut asm).finish(kind));
                        return Ok(Answer {
                            endpoint: who.0,
                            model: who.1,
                            body,
                            attempts,
                            elapsed_ms: t0.elapsed().as_millis() as u64,
                        });
                    }
                    Msg::Event(StreamEvent::Failed(e)) => return Err(e),
                }
            }
            Err(RouteError::Invalid("the request ended without an answer".into()))
        };
        collect.await
    }

    /// A streamed answer: returns once the first token is in (or the request failed).
    pub async fn stream(self: &Arc<Self>, req: Request) -> Result<Streaming, RouteError> {
        let (tx, mut rx) = mpsc::channel(64);
        let me = self.clone();
        tokio::spawn(async move { me.drive(req, tx).await });
        let (out_tx, out_rx) = mpsc::channel(64);
        let (endpoint, model) = match rx.recv().await {
            Some(Msg::Start { endpoint, model }) => (endpoint, model),
            Some(Msg::Event(StreamEvent::Failed(e))) => return Err(e),
            _ => return Err(RouteError::Invalid("the request ended without an answer".into())),
        };
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if let Msg::Event(ev) = m
                    && out_tx.send(ev).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(Streaming { endpoint, model, events: out_rx })
    }

    /// The targets in the order this request tries them: by priority, and within a
    /// priority by a weighted draw.
    fn plan(&self, route: &RouteConfig) -> Vec<TargetConfig> {
        let mut groups: BTreeMap<u32, Vec<TargetConfig>> = BTreeMap::new();
        for (i, t) in route.targets.iter().enumerate() {
            groups.entry(t.priority.unwrap_or(i as u32)).or_default().push(t.clone());
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (_, mut g) in groups {
            while !g.is_empty() {
                let w: Vec<f64> = g
                    .iter()
                    .map(|t| self.endpoints.get(&t.endpoint).map_or(1.0, |e| e.weight))
                    .collect();
                let total: f64 = w.iter().sum();
                let mut x = rng.random::<f64>() * total;
                let mut pick = g.len() - 1;
                for (i, wi) in w.iter().enumerate() {
                    if x < *wi {
                        pick = i;
                        break;
                    }
                    x -= wi;
                }
                out.push(g.remove(pick));
            }
        }
        out
    }

    fn backoff(&self, route: &RouteConfig, tries: u32) -> Duration {
        let cap = route.backoff_ms.saturating_mul(1 << tries.min(16)).min(route.backoff_max_ms);
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        // Full jitter, at least a tenth of the cap.
        Duration::from_millis(cap / 10 + (rng.random::<f64>() * (cap - cap / 10) as f64) as u64)
    }

    /// The body sent to a target: its model name, a stream for chat and completions, the
    /// text so far as a prefill when continuing, the redaction hook for remotes.
    fn body_for(
        &self,
        kind: Kind,
        t: &TargetConfig,
        req: &Value,
        partial: &str,
        rewrite: bool,
    ) -> Value {
        let mut b = req.clone();
        b["model"] = json!(t.model);
        if kind.streams() && t.endpoint != LOCAL {
            b["stream"] = json!(true);
            b["stream_options"] = json!({"include_usage": true});
        }
        if kind.streams() && t.endpoint == LOCAL {
            b["stream"] = json!(false);
            if let Some(o) = b.as_object_mut() {
                o.remove("stream_options");
            }
        }
        if !partial.is_empty() {
            match kind {
                Kind::Chat => {
                    if let Some(msgs) = b.get_mut("messages").and_then(Value::as_array_mut) {
                        match msgs.last_mut() {
                            Some(last)
                                if last.get("role").and_then(Value::as_str)
                                    == Some("assistant") =>
                            {
                                let before =
                                    last.get("content").and_then(Value::as_str).unwrap_or("");
                                last["content"] = json!(format!("{before}{partial}"));
                            }
                            _ => msgs.push(json!({"role": "assistant", "content": partial})),
                        }
                    }
                }
                _ => {
                    if let Some(p) = b.get("prompt").and_then(Value::as_str) {
                        b["prompt"] = json!(format!("{p}{partial}"));
                    }
                }
            }
        }
        if rewrite && kind == Kind::Chat {
            rewrite_prefill(&mut b);
        }
        if t.endpoint != LOCAL
            && let Some(r) = &self.redact
        {
            r(kind, &mut b);
        }
        b
    }

    /// Opens an attempt: sends the request and waits for its first token (or whole answer)
    /// until `until`.
    async fn open(
        &self,
        kind: Kind,
        t: &TargetConfig,
        body: Value,
        until: Instant,
    ) -> Result<(Upstream, Vec<Value>), Failure> {
        if t.endpoint == LOCAL {
            let local =
                self.local.clone().ok_or_else(|| Failure::Local("no local model".into()))?;
            let job = tokio::task::spawn_blocking(move || local.call(kind, &body));
            let v = match tokio::time::timeout_at(until, job).await {
                Err(_) => return Err(Failure::Deadline),
                Ok(Err(e)) => return Err(Failure::Local(e.to_string())),
                Ok(Ok(Err(e))) => return Err(Failure::Local(e)),
                Ok(Ok(Ok(v))) => v,
            };
            assemble::check_whole(kind, &v).map_err(Failure::Malformed)?;
            if kind.streams() {
                let chunks = assemble::as_chunks(kind, &v);
                return Ok((Upstream::Whole(None), chunks));
            }
            return Ok((Upstream::Whole(None), vec![v]));
        }
        let e =
            self.endpoints.get(&t.endpoint).ok_or(Failure::Connect("unknown endpoint".into()))?;
        let mut rq = self
            .http
            .post(format!("{}{}", e.base, kind.path()))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default());
        if let Some(k) = &e.key {
            rq = rq.bearer_auth(k);
        }
        let left = until.saturating_duration_since(Instant::now());
        rq = rq.header("x-kairos-deadline-ms", left.as_millis().max(1).to_string());
        let resp = match tokio::time::timeout_at(until, rq.send()).await {
            Err(_) => return Err(Failure::NoResponse),
            Ok(Err(err)) => {
                let mut s = err.to_string();
                let mut src = std::error::Error::source(&err);
                while let Some(x) = src {
                    s = format!("{s}: {x}");
                    src = x.source();
                }
                return Err(Failure::Connect(s));
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            let ra = upstream::retry_after(resp.headers());
            // An error body is read up to 64 KiB: a hostile endpoint cannot fill the memory.
            let text = match tokio::time::timeout_at(until, read_capped(resp, 64 << 10)).await {
                Ok(Ok((b, _))) => Some(String::from_utf8_lossy(&b).into_owned()),
                _ => None,
            };
            let body = text
                .as_deref()
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
                .unwrap_or_else(|| json!({"error": {"message": text.unwrap_or_default()}}));
            return Err(Failure::Status { status, retry_after: ra, body });
        }
        if !kind.streams() {
            let bytes = match tokio::time::timeout_at(until, read_capped(resp, MAX_ANSWER)).await {
                Err(_) => return Err(Failure::NoResponse),
                Ok(Err(e)) => return Err(Failure::Cut(e.to_string())),
                Ok(Ok((_, true))) => {
                    return Err(Failure::Malformed(format!(
                        "an answer over {} MiB",
                        MAX_ANSWER >> 20
                    )));
                }
                Ok(Ok((b, false))) => b,
            };
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| Failure::Malformed(format!("an answer that is not JSON: {e}")))?;
            assemble::check_whole(kind, &v).map_err(Failure::Malformed)?;
            return Ok((Upstream::Whole(None), vec![v]));
        }
        let mut r = SseReader::new(resp);
        let mut first = Vec::new();
        loop {
            let v = match r.next(until).await {
                Err(Failure::Stall) => return Err(Failure::SlowFirstToken),
                Err(f) => return Err(f),
                Ok(None) => return Err(Failure::Truncated),
                Ok(Some(v)) => v,
            };
            let (text, fin) = assemble::check_chunk(kind, &v).map_err(Failure::Malformed)?;
            first.push(v);
            if !text.is_empty() || fin {
                return Ok((Upstream::Stream(r), first));
            }
            if first.len() > 64 {
                return Err(Failure::Malformed("64 chunks without a token".into()));
            }
        }
    }

    fn record(&self, log: &mut Vec<AttemptLog>, t0: Instant, t: &TargetConfig, outcome: &str) {
        self.metrics.add(
            "kairos_router_attempts_total",
            // The label without the detail ("cut (after 13 chars)" counts as "cut").
            labels(&[
                ("endpoint", &t.endpoint),
                ("outcome", outcome.split(' ').next().unwrap_or("")),
            ]),
            1.0,
        );
        log.push(AttemptLog {
            endpoint: t.endpoint.clone(),
            model: t.model.clone(),
            outcome: outcome.to_string(),
            at_ms: t0.elapsed().as_millis() as u64,
        });
    }

    fn endpoint_failed(&self, t: &TargetConfig, f: &Failure) {
        let Some(e) = self.endpoints.get(&t.endpoint) else { return };
        if f.is_endpoint_fault() {
            if e.health.failure(Instant::now().into_std()) {
                self.metrics.add(
                    "kairos_router_circuit_opened_total",
                    labels(&[("endpoint", &t.endpoint)]),
                    1.0,
                );
                tracing::warn!(endpoint = %t.endpoint, "circuit opened");
            }
        } else {
            e.health.release();
        }
    }

    /// Whether to hedge this request now, and after how long.
    fn hedge_after(&self, route: &RouteConfig, t: &TargetConfig) -> Option<Duration> {
        if !route.hedge || t.endpoint == LOCAL {
            return None;
        }
        let p95 = self.endpoints.get(&t.endpoint)?.health.p95(route.hedge_min_samples as usize)?;
        let n = self.requests.load(Ordering::Relaxed).max(1) as f64;
        let h = self.hedged.load(Ordering::Relaxed) as f64;
        ((h + 1.0) / n <= route.hedge_max_share).then_some(p95)
    }

    /// Runs one request to its end, sending what happens down `tx`.
    async fn drive(&self, req: Request, tx: mpsc::Sender<Msg>) {
        let t0 = Instant::now();
        let kind = req.kind;
        let model = req.body.get("model").and_then(Value::as_str).unwrap_or("").to_string();
        let fail = |e: RouteError| Msg::Event(StreamEvent::Failed(e));
        let Some(route) = self.config.route(&model) else {
            let known = self.config.routes.iter().map(|r| r.model.as_str()).collect::<Vec<_>>();
            let _ = tx.send(fail(RouteError::UnknownModel(model, known.join(", ")))).await;
            return;
        };
        if kind.streams() && req.body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
            let _ = tx.send(fail(RouteError::Invalid("the router serves n = 1 only".into()))).await;
            return;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let rl = labels(&[("route", &route.model)]);
        let mut deadline_ms = route.deadline_ms;
        if let Some(d) = req.deadline {
            deadline_ms = deadline_ms.min(d.as_millis().max(1) as u64);
        }
        let deadline = t0 + Duration::from_millis(deadline_ms);
        let mut plan = self.plan(route);
        let has_local = plan.iter().any(|t| t.endpoint == LOCAL);
        let remote_deadline = if has_local {
            deadline - Duration::from_millis(route.local_reserve_ms)
        } else {
            deadline
        };
        let mut log = Vec::new();
        let mut partial = String::new();
        let mut started = false;
        let mut refused: BTreeSet<String> = BTreeSet::new();
        let mut last_refusal: Option<(TargetConfig, Failure)> = None;
        let mut idx = 0;
        let finish = |ok: &str| {
            self.metrics.add(
                "kairos_router_requests_total",
                labels(&[("route", &route.model), ("outcome", ok)]),
                1.0,
            );
            self.metrics.observe(
                "kairos_router_request_latency_seconds",
                rl.clone(),
                LATENCY_BUCKETS,
                t0.elapsed().as_secs_f64(),
            );
        };
        // Targets skipped for an open circuit: when nothing else answered, they get one try
        // each anyway (a breaker must not turn "all endpoints flaky" into "no answer").
        let mut skipped_open: Vec<TargetConfig> = Vec::new();
        let mut forced = false;
        'targets: loop {
            if idx >= plan.len() {
                if forced || skipped_open.is_empty() || started || Instant::now() >= deadline {
                    break;
                }
                forced = true;
                plan = std::mem::take(&mut skipped_open);
                idx = 0;
            }
            let t = plan[idx].clone();
            idx += 1;
            if refused.contains(&t.model) {
                continue;
            }
            let until_all = if t.endpoint == LOCAL { deadline } else { remote_deadline };
            let mut tries = 0u32;
            let mut rewrite = false;
            loop {
                let now = Instant::now();
                if now >= until_all {
                    self.record(&mut log, t0, &t, "deadline");
                    continue 'targets;
                }
                if self.verifier.as_ref().is_some_and(|v| v.is_quarantined(&t.endpoint)) {
                    self.record(&mut log, t0, &t, "quarantined");
                    continue 'targets;
                }
                if !forced
                    && let Some(e) = self.endpoints.get(&t.endpoint)
                    && !e.health.admit(now.into_std())
                {
                    self.record(&mut log, t0, &t, "circuit_open");
                    skipped_open.push(t.clone());
                    continue 'targets;
                }
                let until = until_all.min(now + Duration::from_millis(route.first_token_ms));
                let body = self.body_for(kind, &t, &req.body, &partial, rewrite);
                // A hedge: when the first target is slower than its p95, start the next.
                let hedge = (log.is_empty() && !started && idx < plan.len())
                    .then(|| self.hedge_after(route, &t))
                    .flatten();
                let attempt_t0 = Instant::now();
                let (res, who) = match hedge {
                    None => (self.open(kind, &t, body, until).await, t.clone()),
                    Some(after) => {
                        let t2 = plan[idx].clone();
                        let b2 = self.body_for(kind, &t2, &req.body, &partial, rewrite);
                        let a = self.open(kind, &t, body, until);
                        let b = async {
                            tokio::time::sleep(after).await;
                            self.hedged.fetch_add(1, Ordering::Relaxed);
                            self.metrics.add(
                                "kairos_router_hedges_total",
                                labels(&[("endpoint", &t2.endpoint)]),
                                1.0,
                            );
                            let until2 = until_all
                                .min(Instant::now() + Duration::from_millis(route.first_token_ms));
                            self.open(kind, &t2, b2, until2).await
                        };
                        tokio::pin!(a, b);
                        let mut a_res = None;
                        let mut b_res = None;
                        loop {
                            tokio::select! {
                                r = &mut a, if a_res.is_none() => {
                                    if r.is_ok() { break (r, t.clone()); }
                                    a_res = Some(r);
                                }
                                r = &mut b, if b_res.is_none() => {
                                    if r.is_ok() { idx += 1; break (r, t2.clone()); }
                                    b_res = Some(r);
                                }
                            }
                            if let (Some(_), Some(rb)) = (&a_res, &b_res) {
                                // Both failed: log the hedge's failure, go on with the first's.
                                if let Err(f) = rb {
                                    self.record(&mut log, t0, &t2, &f.label());
                                    self.endpoint_failed(&t2, f);
                                }
                                idx += 1;
                                break (a_res.take().unwrap_or(Err(Failure::Deadline)), t.clone());
                            }
                        }
                    }
                };
                let (mut up, first) = match res {
                    Ok(x) => x,
                    Err(f) => {
                        let f = if Instant::now() >= deadline { Failure::Deadline } else { f };
                        self.record(&mut log, t0, &who, &f.label());
                        self.endpoint_failed(&who, &f);
                        tracing::debug!(endpoint = %who.endpoint, failure = %f.detail(), "attempt failed");
                        if f.is_request_error() {
                            if kind == Kind::Chat
                                && !rewrite
                                && ends_with_assistant(&req.body, &partial)
                            {
                                // Perhaps it refuses the prefill: once more without one.
                                rewrite = true;
                                continue;
                            }
                            refused.insert(who.model.clone());
                            last_refusal = Some((who, f));
                            continue 'targets;
                        }
                        if f.is_retryable() && tries < route.retries && who.endpoint == t.endpoint {
                            let wait = match &f {
                                Failure::Status { retry_after: Some(d), .. } => *d,
                                _ => self.backoff(route, tries),
                            };
                            if Instant::now() + wait < until_all {
                                tries += 1;
                                tokio::time::sleep(wait).await;
                                continue;
                            }
                        }
                        continue 'targets;
                    }
                };
                // The first token is in.
                let ttft = attempt_t0.elapsed().as_secs_f64();
                self.metrics.observe(
                    "kairos_router_time_to_first_token_seconds",
                    labels(&[("endpoint", &who.endpoint)]),
                    LATENCY_BUCKETS,
                    ttft,
                );
                if !started {
                    started = true;
                    if tx
                        .send(Msg::Start {
                            endpoint: who.endpoint.clone(),
                            model: who.model.clone(),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                } else {
                    self.metrics.add("kairos_router_continuations_total", rl.clone(), 1.0);
                }
                let mut finished = false;
                let mut usage = None;
                let mut whole = None;
                let from = partial.len();
                let mut pending: std::collections::VecDeque<Value> = first.into();
                let outcome: Result<(), Failure> = loop {
                    let v = match pending.pop_front() {
                        Some(v) => v,
                        None => {
                            let stall = (Instant::now() + Duration::from_millis(route.stall_ms))
                                .min(deadline);
                            match up.next(stall).await {
                                Ok(Some(v)) => v,
                                Ok(None) if finished || !kind.streams() => break Ok(()),
                                Ok(None) => break Err(Failure::Truncated),
                                Err(Failure::Stall) if Instant::now() >= deadline => {
                                    break Err(Failure::Deadline);
                                }
                                Err(f) => break Err(f),
                            }
                        }
                    };
                    if kind.streams() {
                        let (text, fin) = match assemble::check_chunk(kind, &v) {
                            Ok(x) => x,
                            Err(e) => break Err(Failure::Malformed(e)),
                        };
                        if finished && !text.is_empty() {
                            break Err(Failure::Malformed("text after the finish reason".into()));
                        }
                        partial.push_str(&text);
                        finished |= fin;
                        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                            usage = Some(u.clone());
                        }
                    }
                    if !kind.streams() {
                        whole = Some(v.clone());
                    }
                    if tx.send(Msg::Event(StreamEvent::Chunk(v))).await.is_err() {
                        // The caller went away: stop reading (dropping the stream closes it).
                        if let Some(e) = self.endpoints.get(&who.endpoint) {
                            e.health.release();
                        }
                        return;
                    }
                    if !kind.streams() {
                        break Ok(());
                    }
                };
                match outcome {
                    Ok(()) => {
                        if let Some(e) = self.endpoints.get(&who.endpoint) {
                            e.health.success(Some(ttft));
                            if let Some(u) = &usage {
                                let n =
                                    u.get("total_tokens").and_then(Value::as_f64).unwrap_or(0.0);
                                let l = labels(&[("endpoint", &who.endpoint)]);
                                self.metrics.add("kairos_router_tokens_total", l.clone(), n);
                                self.metrics.add("kairos_router_spend_total", l, n * e.cost / 1e6);
                            }
                        }
                        self.record(&mut log, t0, &who, "ok");
                        if log.first().map(|a| &a.endpoint) != Some(&who.endpoint) {
                            self.metrics.add("kairos_router_fallbacks_total", rl.clone(), 1.0);
                        }
                        finish("ok");
                        let _ = tx.send(Msg::Event(StreamEvent::Done(log))).await;
                        drop(tx);
                        if from == 0 {
                            self.spot_check(route, kind, &req.body, &who, &partial, whole).await;
                        }
                        return;
                    }
                    Err(f) => {
                        let f = if Instant::now() >= deadline { Failure::Deadline } else { f };
                        self.record(
                            &mut log,
                            t0,
                            &who,
                            &format!("{} (after {} chars)", f.label(), partial.len()),
                        );
                        self.endpoint_failed(&who, &f);
                        // The next target continues from the text so far.
                        continue 'targets;
                    }
                }
            }
        }
        let err = match last_refusal {
            Some((t, Failure::Status { status, body, .. })) if !started => {
                finish("refused");
                let detail =
                    upstream::Failure::Status { status, retry_after: None, body: body.clone() }
                        .detail();
                RouteError::Refused { endpoint: t.endpoint, model: t.model, status, body, detail }
            }
            _ => {
                finish("failed");
                RouteError::Exhausted { model: route.model.clone(), deadline_ms, attempts: log }
            }
        };
        let _ = tx.send(fail(err)).await;
    }
}

impl Router {
    /// An attempt run to its end: the whole answer (streams assembled).
    async fn complete(
        &self,
        kind: Kind,
        t: &TargetConfig,
        body: Value,
        until: Instant,
    ) -> Result<Value, Failure> {
        let (mut up, first) = self.open(kind, t, body, until).await?;
        if !kind.streams() {
            return first.into_iter().next().ok_or(Failure::Truncated);
        }
        let mut asm = Assembler::default();
        let mut finished = false;
        for v in &first {
            let (_, fin) = assemble::check_chunk(kind, v).map_err(Failure::Malformed)?;
            finished |= fin;
            asm.push(kind, v);
        }
        while let Some(v) = up.next(until).await? {
            let (_, fin) = assemble::check_chunk(kind, &v).map_err(Failure::Malformed)?;
            finished |= fin;
            asm.push(kind, &v);
        }
        if !finished {
            return Err(Failure::Truncated);
        }
        Ok(asm.finish(kind))
    }

    fn reference(&self, route: &RouteConfig) -> Option<TargetConfig> {
        let w = route.verify_with.as_ref()?;
        route.targets.iter().find(|t| &t.endpoint == w).cloned()
    }

    fn verified(&self, endpoint: &str, kind: &str, passed: bool, detail: &str) {
        let (Some(v), Some(e)) = (&self.verifier, self.endpoints.get(endpoint)) else { return };
        let l = labels(&[
            ("endpoint", endpoint),
            ("kind", kind),
            ("result", if passed { "pass" } else { "fail" }),
        ]);
        self.metrics.add("kairos_router_verifications_total", l, 1.0);
        if v.record(endpoint, &e.base, kind, passed, detail) {
            self.metrics.set("kairos_router_quarantined", labels(&[("endpoint", endpoint)]), 1.0);
        }
    }

    /// After an answer from `who`: with the route's probability, the same request greedily
    /// on the reference, compared.
    async fn spot_check(
        &self,
        route: &RouteConfig,
        kind: Kind,
        req: &Value,
        who: &TargetConfig,
        text: &str,
        whole: Option<Value>,
    ) {
        if self.verifier.is_none() || route.verify_fraction <= 0.0 || who.endpoint == LOCAL {
            return;
        }
        let Some(reference) = self.reference(route) else { return };
        if reference.endpoint == who.endpoint {
            return;
        }
        if kind.streams() && req.get("temperature").and_then(Value::as_f64).unwrap_or(1.0) != 0.0 {
            return; // sampled text cannot be compared token by token
        }
        let draw = self.rng.lock().unwrap_or_else(|p| p.into_inner()).random::<f64>();
        if draw >= route.verify_fraction {
            return;
        }
        let mut body = self.body_for(kind, &reference, req, "", false);
        if kind.streams() {
            body["temperature"] = json!(0);
        }
        if kind == Kind::Embedding {
            body["encoding_format"] = json!("float");
        }
        let until = Instant::now() + Duration::from_millis(route.deadline_ms);
        let r = match self.complete(kind, &reference, body, until).await {
            Ok(r) => r,
            Err(f) => {
                tracing::info!(reference = %reference.endpoint, failure = %f.detail(), "spot check skipped: the reference did not answer");
                return;
            }
        };
        let (passed, detail) = match kind {
            Kind::Chat | Kind::Completion => {
                let rt = match kind {
                    Kind::Chat => r.pointer("/choices/0/message/content"),
                    _ => r.pointer("/choices/0/text"),
                }
                .and_then(Value::as_str)
                .unwrap_or("");
                let a = verify::agreement(text, rt);
                (
                    a >= route.verify_min_agreement,
                    format!(
                        "answers agree on {:.0}% (need {:.0}%)",
                        a * 100.0,
                        route.verify_min_agreement * 100.0
                    ),
                )
            }
            Kind::Embedding => {
                let got = whole.as_ref().and_then(verify::vectors);
                let want = verify::vectors(&r);
                match (got, want) {
                    (Some(g), Some(w)) => match verify::min_cosine(&g, &w) {
                        Some(c) => (
                            c >= route.verify_cosine,
                            format!("embedding cosine {c:.4} (need {})", route.verify_cosine),
                        ),
                        None => (
                            false,
                            "embeddings of other counts or sizes than the reference's".into(),
                        ),
                    },
                    _ => return,
                }
            }
            Kind::Forecast => {
                let g = whole.as_ref().and_then(|w| w.get("prediction")).and_then(Value::as_f64);
                let w = r.get("prediction").and_then(Value::as_f64);
                match (g, w) {
                    (Some(g), Some(w)) => {
                        let ok = (g - w).abs() <= 1e-4 * w.abs().max(1.0);
                        (ok, format!("forecast {g} where the reference gave {w}"))
                    }
                    _ => return,
                }
            }
        };
        let kind_label = format!(
            "spot_{}",
            match kind {
                Kind::Chat => "chat",
                Kind::Completion => "completion",
                Kind::Embedding => "embedding",
                Kind::Forecast => "forecast",
            }
        );
        self.verified(&who.endpoint, &kind_label, passed, &detail);
    }

    /// One round of canaries: each prompt greedily, with log-probabilities, on the reference
    /// and on every other remote target of its route, compared.
    pub async fn canary_round(&self) {
        let Some(vc) = &self.config.verify else { return };
        for c in &self.config.canaries {
            let Some(route) = self.config.route(&c.route) else { continue };
            let Some(reference) = self.reference(route) else { continue };
            let body = json!({"model": route.model, "messages": [{"role": "user", "content": c.prompt}],
                "max_tokens": c.max_tokens, "temperature": 0, "logprobs": true, "top_logprobs": 1});
            let until = Instant::now() + Duration::from_millis(route.deadline_ms);
            let rb = self.body_for(Kind::Chat, &reference, &body, "", false);
            let r = match self.complete(Kind::Chat, &reference, rb, until).await {
                Ok(r) => r,
                Err(f) => {
                    tracing::warn!(reference = %reference.endpoint, failure = %f.detail(), "canary round skipped: the reference did not answer");
                    continue;
                }
            };
            for t in route
                .targets
                .iter()
                .filter(|t| t.endpoint != LOCAL && t.endpoint != reference.endpoint)
            {
                if self.verifier.as_ref().is_some_and(|v| v.is_quarantined(&t.endpoint)) {
                    continue;
                }
                let until = Instant::now() + Duration::from_millis(route.deadline_ms);
                let b = self.body_for(Kind::Chat, t, &body, "", false);
                match self.complete(Kind::Chat, t, b, until).await {
                    // A reference without log-probabilities (the local model) is compared by
                    // its text alone.
                    Ok(a) if verify::token_logprobs(&r).is_empty() => {
                        let text = |v: &Value| {
                            v.pointer("/choices/0/message/content")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string()
                        };
                        let (rt, at) = (text(&r), text(&a));
                        if rt == at {
                            self.verified(&t.endpoint, "canary", true, "same text");
                        } else {
                            self.verified(
                                &t.endpoint,
                                "canary",
                                false,
                                &format!("canary answer {at:?} where the reference gave {rt:?}"),
                            );
                        }
                    }
                    Ok(a) => match verify::compare_canary(&r, &a, vc.logprob_tolerance) {
                        Ok(d) => self.verified(
                            &t.endpoint,
                            "canary",
                            true,
                            &format!("mean |dlogprob| {d:.4}"),
                        ),
                        Err(e) => self.verified(&t.endpoint, "canary", false, &e),
                    },
                    // An endpoint that does not answer is the breaker's business, not a lie.
                    Err(f) => {
                        tracing::info!(endpoint = %t.endpoint, failure = %f.detail(), "canary unanswered")
                    }
                }
            }
        }
    }

    /// Starts the canary task (call from a runtime): a round at start, then every
    /// `canary_ms`.
    pub fn spawn_canaries(self: &Arc<Self>) {
        let Some(v) = &self.config.verify else { return };
        if self.config.canaries.is_empty() {
            return;
        }
        let every = Duration::from_millis(v.canary_ms);
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.canary_round().await;
                tokio::time::sleep(every).await;
            }
        });
    }

    /// The endpoints quarantined now.
    pub fn quarantined(&self) -> Vec<String> {
        self.verifier.as_ref().map(|v| v.quarantined()).unwrap_or_default()
    }
}

/// The largest whole answer (embeddings, forecasts) read from an endpoint.
const MAX_ANSWER: usize = 64 << 20;

/// A body up to `cap` bytes, and whether there was more.
async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut out = Vec::new();
    while let Some(c) = resp.chunk().await? {
        if out.len() + c.len() > cap {
            out.extend_from_slice(&c[..cap - out.len()]);
            return Ok((out, true));
        }
        out.extend_from_slice(&c);
    }
    Ok((out, false))
}

fn ends_with_assistant(body: &Value, partial: &str) -> bool {
    !partial.is_empty()
        || body
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|m| m.last())
            .and_then(|m| m.get("role"))
            .and_then(Value::as_str)
            == Some("assistant")
}

/// A trailing assistant message (a prefill) turned into an instruction, for a target that
/// refuses prefills.
fn rewrite_prefill(b: &mut Value) {
    let Some(msgs) = b.get_mut("messages").and_then(Value::as_array_mut) else { return };
    let is_prefill =
        msgs.last().and_then(|m| m.get("role")).and_then(Value::as_str) == Some("assistant");
    if !is_prefill {
        return;
    }
    let Some(last) = msgs.pop() else { return };
    let text = match last.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    msgs.push(json!({
        "role": "user",
        "content": format!(
            "Your answer so far is below between the markers. Continue it from exactly where it \
             stops; do not repeat it.\n<<<\n{text}\n>>>"
        ),
    }));
}
