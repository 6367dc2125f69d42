//! `kairos router serve`: an OpenAI-compatible gateway in front of the inference router
//! ([`kairos_models::router`]). The same routes as the worker (`/v1/chat/completions` with
//! and without streaming, `/v1/completions`, `/v1/embeddings`, `/v1/forecast`, `/v1/models`),
//! plus `/health` and `/metrics`; each answer names the endpoint and model that gave it
//! (`x-kairos-endpoint`, `x-kairos-model` headers, and a `kairos` object in whole answers).
//!
//! `router.toml` is the router's file (`[[endpoints]]`, `[[routes]]`, `[breaker]`) with two
//! sections of the gateway's own: `[server]` (listen address, keys, body limit) and `[local]`
//! (the in-process models behind the `local` target). See examples/router.toml.

pub mod local;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router as Axum;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request as AxRequest, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kairos_models::router::config::RouterConfig;
use kairos_models::router::{Kind, LocalModel, Request, RouteError, Router, StreamEvent};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::worker::auth::Keys;

/// The environment variable with the gateway's comma-separated keys.
pub const KEYS_ENV: &str = "KAIROS_ROUTER_API_KEYS";

/// `kairos router serve`'s flags; each overrides the same key of the file.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The router's TOML file (see examples/router.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Address to listen on (port 0 picks a free one, printed at start).
    #[arg(long)]
    pub listen: Option<String>,
    /// A file of accepted bearer keys, one a line.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// A Gemma GGUF for the `local` target.
    #[arg(long, value_name = "FILE.gguf")]
    pub local_llm: Option<PathBuf>,
    /// A sentence-embedding model folder for the `local` target.
    #[arg(long, value_name = "DIR")]
    pub local_embed: Option<PathBuf>,
    /// Serve without keys (only on an address this machine alone reaches).
    #[arg(long)]
    pub insecure_no_auth: bool,
}

/// `kairos router release`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ReleaseArgs {
    /// The router's TOML file (its `[verify] db`).
    #[arg(long)]
    pub config: PathBuf,
    /// The endpoint to let back in.
    pub endpoint: String,
}

/// `kairos router release`: lets a quarantined endpoint back into its routes (at the
/// gateway's next start) and forgets its failed checks.
pub fn release(args: ReleaseArgs) -> anyhow::Result<()> {
    let c = GatewayConfig::load(&args.config)?;
    let v = c.router.verify.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "router config {}: no [verify] section, so no quarantine",
            args.config.display()
        )
    })?;
    if kairos_models::router::verify::release(&v.db, &args.endpoint)
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        println!("{} released: it serves again from the router's next start", args.endpoint);
    } else {
        println!("{} was not quarantined", args.endpoint);
    }
    Ok(())
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A file of accepted keys, one a line (`sha256:<hex>` digests too).
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// The environment variable with comma-separated keys.
    #[serde(default = "default_keys_env")]
    pub api_key_env: String,
    /// Largest request body, bytes (413 above it).
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// Serve without keys.
    #[serde(default)]
    pub insecure_no_auth: bool,
}

fn default_listen() -> String {
    "127.0.0.1:8100".into()
}
fn default_keys_env() -> String {
    KEYS_ENV.into()
}
fn default_body() -> usize {
    4 << 20
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            api_key_file: None,
            api_key_env: default_keys_env(),
            max_body_bytes: default_body(),
            insecure_no_auth: false,
        }
    }
}

/// `[local]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocalSection {
    /// A Gemma GGUF file (chat and completions); the target's model is its file stem.
    #[serde(default)]
    pub llm: Option<PathBuf>,
    /// An embedding model folder; the target's model is the folder's name.
    #[serde(default)]
    pub embed: Option<PathBuf>,
    /// `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// New tokens when a request does not say.
    #[serde(default = "default_local_tokens")]
    pub max_tokens: usize,
}

fn default_device() -> String {
    "cpu".into()
}
fn default_local_tokens() -> usize {
    64
}

/// The whole file: the router's keys plus `[server]` and `[local]`.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `[server]`.
    pub server: ServerSection,
    /// `[local]`.
    pub local: LocalSection,
    /// The rest.
    pub router: RouterConfig,
}

impl GatewayConfig {
    /// Parses a `router.toml` text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let server = match table.remove("server") {
            Some(v) => v.try_into().map_err(|e| anyhow::anyhow!("[server]: {e}"))?,
            None => ServerSection::default(),
        };
        let local: LocalSection = match table.remove("local") {
            Some(v) => v.try_into().map_err(|e| anyhow::anyhow!("[local]: {e}"))?,
            None => toml::from_str("").map_err(|e| anyhow::anyhow!("{e}"))?,
        };
        let router: RouterConfig =
            toml::Value::Table(table).try_into().map_err(|e| anyhow::anyhow!("{e}"))?;
        router.check().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self { server, local, router })
    }

    /// Reads and parses a `router.toml` file; errors name it.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading router config {}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("router config {}: {e}", path.display()))
    }

    /// The file with the flags on top.
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let mut c = Self::load(&args.config)?;
        if let Some(l) = &args.listen {
            c.server.listen = l.clone();
        }
        if let Some(f) = &args.api_key_file {
            c.server.api_key_file = Some(f.clone());
        }
        if let Some(p) = &args.local_llm {
            c.local.llm = Some(p.clone());
        }
        if let Some(p) = &args.local_embed {
            c.local.embed = Some(p.clone());
        }
        c.server.insecure_no_auth |= args.insecure_no_auth;
        c.server.listen.parse::<SocketAddr>().map_err(|e| {
            anyhow::anyhow!("server.listen {:?}: {e} (want HOST:PORT)", c.server.listen)
        })?;
        Ok(c)
    }
}

struct Gateway {
    router: Arc<Router>,
    keys: Keys,
    insecure: bool,
    started: i64,
}

/// The `[local]` models of a router config, loaded when a route names the `local` target
/// (each such target's model checked to be among them).
pub fn local_models(c: &GatewayConfig) -> anyhow::Result<Option<Arc<dyn LocalModel>>> {
    let uses_local =
        c.router.routes.iter().any(|r| r.targets.iter().any(|t| t.endpoint == "local"));
    Ok(if uses_local {
        if c.local.llm.is_none() && c.local.embed.is_none() {
            anyhow::bail!(
                "a route names the `local` target: give [local] llm or embed (or --local-llm, \
                 --local-embed)"
            );
        }
        let l = local::Local::load(
            c.local.llm.as_deref(),
            c.local.embed.as_deref(),
            &c.local.device,
            c.local.max_tokens,
        )?;
        let names = l.names();
        for r in &c.router.routes {
            for t in r.targets.iter().filter(|t| t.endpoint == "local") {
                if !names.contains(&t.model) {
                    anyhow::bail!(
                        "route {:?}: local target model {:?} is not loaded (local models: {})",
                        r.model,
                        t.model,
                        names.join(", ")
                    );
                }
            }
        }
        Some(Arc::new(l))
    } else {
        None
    })
}

/// A router over `config` and `local` (from [`local_models`]), its probes and canaries
/// started on the current tokio runtime: what the gateway serves, and what a paper or live
/// session's model asks go through.
pub fn start_router(
    config: RouterConfig,
    local: Option<Arc<dyn LocalModel>>,
) -> anyhow::Result<Arc<Router>> {
    let router = Arc::new(Router::new(config, local).map_err(|e| anyhow::anyhow!("{e}"))?);
    router.spawn_probes();
    router.spawn_canaries();
    Ok(router)
}

/// `kairos router serve`: serves until SIGTERM or Ctrl-C.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let c = GatewayConfig::resolve(&args)?;
    let keys = Keys::required(
        c.server.api_key_file.as_deref(),
        &c.server.api_key_env,
        c.server.insecure_no_auth,
    )?;
    let local = local_models(&c)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let router = start_router(c.router, local)?;
        let addr: SocketAddr = c.server.listen.parse()?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local_addr = listener.local_addr()?;
        println!("kairos router listening on http://{local_addr}");
        tracing::info!(%local_addr, "router listening");
        let g = Arc::new(Gateway {
            router,
            keys,
            insecure: c.server.insecure_no_auth,
            started: crate::now_ms() / 1000,
        });
        let app = app(g, c.server.max_body_bytes);
        axum::serve(listener, app)
            .with_graceful_shutdown(crate::worker::stop_signal())
            .await
            .context("serving")
    })
}

fn app(g: Arc<Gateway>, max_body: usize) -> Axum {
    let api = Axum::new()
        .route("/v1/chat/completions", post(|s, h, b| route(s, h, b, Kind::Chat)))
        .route("/v1/completions", post(|s, h, b| route(s, h, b, Kind::Completion)))
        .route("/v1/embeddings", post(|s, h, b| route(s, h, b, Kind::Embedding)))
        .route("/v1/forecast", post(|s, h, b| route(s, h, b, Kind::Forecast)))
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(g.clone(), auth));
    Axum::new()
        .route("/health", get(health))
        .merge(api)
        .fallback(|| async {
            error(StatusCode::NOT_FOUND, "invalid_request_error", None, "no such route")
        })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(g)
}

fn error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> Response {
    let mut r = (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        ),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

async fn auth(State(g): State<Arc<Gateway>>, req: AxRequest, next: Next) -> Response {
    let h = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(message) = g.keys.refusal(g.insecure, h) else {
        return next.run(req).await;
    };
    error(StatusCode::UNAUTHORIZED, "invalid_request_error", Some("invalid_api_key"), message)
}

async fn health(State(g): State<Arc<Gateway>>) -> Response {
    axum::Json(json!({"status": "ok", "routes": g.router.config().routes.iter().map(|r| &r.model).collect::<Vec<_>>()}))
        .into_response()
}

async fn metrics(State(g): State<Arc<Gateway>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], g.router.metrics())
        .into_response()
}

async fn models(State(g): State<Arc<Gateway>>) -> Response {
    let data: Vec<Value> = g
        .router
        .config()
        .routes
        .iter()
        .map(|r| json!({"id": r.model, "object": "model", "created": g.started, "owned_by": "kairos-router"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// The caller's own deadline (the worker's reading of the same headers).
fn caller_deadline(h: &HeaderMap) -> Option<Duration> {
    let ms = crate::worker::lanes::caller_deadline_ms(h)?;
    Some(Duration::from_micros((ms.min(86_400_000.0) * 1e3) as u64))
}

fn named(mut r: Response, endpoint: &str, model: &str) -> Response {
    for (k, v) in [("x-kairos-endpoint", endpoint), ("x-kairos-model", model)] {
        if let Ok(v) = HeaderValue::from_str(v) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn route_error(e: RouteError) -> Response {
    match &e {
        RouteError::UnknownModel(..) => error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            &e.to_string(),
        ),
        RouteError::Invalid(m) => error(StatusCode::BAD_REQUEST, "invalid_request_error", None, m),
        RouteError::Refused { endpoint, model, status, body, .. } => {
            let st = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut b = body.clone();
            if b.get("error").is_none() {
                b = json!({"error": {"message": e.to_string(), "type": "invalid_request_error"}});
            }
            named((st, axum::Json(b)).into_response(), endpoint, model)
        }
        RouteError::Exhausted { attempts, .. } => {
            let deadline = attempts.last().is_none_or(|a| a.outcome.starts_with("deadline"));
            let (st, code) = if deadline {
                (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded")
            } else {
                (StatusCode::BAD_GATEWAY, "upstream_failed")
            };
            error(st, "server_error", Some(code), &e.to_string())
        }
    }
}

async fn route(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    kind: Kind,
) -> Response {
    let bytes = match body {
        Ok(b) => b,
        Err(e) => {
            let st = e.status();
            return error(st, "invalid_request_error", None, &e.body_text());
        }
    };
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                "the body is not a JSON object",
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                &format!("the body is not JSON: {e}"),
            );
        }
    };
    if let Err(m) = check_request(kind, &body) {
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", None, &m);
    }
    let stream = kind != Kind::Embedding
        && kind != Kind::Forecast
        && body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage =
        body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let req = Request { kind, body, deadline: caller_deadline(&headers) };
    if !stream {
        return match g.router.call(req).await {
            Ok(a) => {
                let mut b = a.body;
                b["kairos"] = json!({
                    "endpoint": a.endpoint,
                    "model": a.model,
                    "elapsed_ms": a.elapsed_ms,
                    "attempts": a.attempts.iter().map(|x| json!({"endpoint": x.endpoint, "model": x.model, "outcome": x.outcome, "at_ms": x.at_ms})).collect::<Vec<_>>(),
                });
                named(axum::Json(b).into_response(), &a.endpoint, &a.model)
            }
            Err(e) => route_error(e),
        };
    }
    match g.router.stream(req).await {
        Err(e) => route_error(e),
        Ok(s) => {
            let (endpoint, model) = (s.endpoint.clone(), s.model.clone());
            let mut events = s.events;
            let sse = async_stream(move |tx| async move {
                while let Some(ev) = events.recv().await {
                    match ev {
                        StreamEvent::Chunk(v) => {
                            // The usage chunk only for a caller that asked for it.
                            let usage_only = v
                                .get("choices")
                                .and_then(Value::as_array)
                                .is_some_and(Vec::is_empty);
                            if usage_only && !include_usage {
                                continue;
                            }
                            let mut v = v;
                            if !include_usage && let Some(o) = v.as_object_mut() {
                                o.remove("usage");
                            }
                            if tx.send(Event::default().data(v.to_string())).await.is_err() {
                                return;
                            }
                        }
                        StreamEvent::Done(_) => {
                            let _ = tx.send(Event::default().data("[DONE]")).await;
                            return;
                        }
                        StreamEvent::Failed(e) => {
                            // No [DONE]: the caller sees an error, never a short answer.
                            let err = json!({"error": {"message": format!("the stream broke and no target could finish it: {e}"), "type": "server_error", "code": "stream_failed"}});
                            let _ = tx.send(Event::default().data(err.to_string())).await;
                            return;
                        }
                    }
                }
            });
            named(Sse::new(sse).into_response(), &endpoint, &model)
        }
    }
}

/// A stream fed by a task through a channel.
fn async_stream<F, Fut>(f: F) -> impl futures_util::Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) })
}

/// What the gateway checks itself before anything leaves the machine: the fields every
/// target needs, in the types the protocol gives them.
fn check_request(kind: Kind, b: &Value) -> Result<(), String> {
    match b.get("model") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err("model: a non-empty string is required".into()),
    }
    match kind {
        Kind::Chat => {
            let msgs = b
                .get("messages")
                .and_then(Value::as_array)
                .ok_or("messages: an array is required")?;
            if msgs.is_empty() {
                return Err("messages: at least one message".into());
            }
            for (i, m) in msgs.iter().enumerate() {
                let role = m.get("role").and_then(Value::as_str);
                if !matches!(role, Some("system" | "developer" | "user" | "assistant" | "tool")) {
                    return Err(format!(
                        "messages[{i}].role: one of system, developer, user, assistant, tool"
                    ));
                }
                if !matches!(
                    m.get("content"),
                    None | Some(Value::Null | Value::String(_) | Value::Array(_))
                ) {
                    return Err(format!("messages[{i}].content: a string or an array of parts"));
                }
            }
        }
        Kind::Completion => {
            if !matches!(b.get("prompt"), Some(Value::String(_) | Value::Array(_))) {
                return Err("prompt: a string (or array) is required".into());
            }
        }
        Kind::Embedding => {
            if !matches!(b.get("input"), Some(Value::String(_) | Value::Array(_))) {
                return Err("input: a string or an array is required".into());
            }
        }
        Kind::Forecast => {
            if !b.get("bars").is_some_and(Value::is_array) {
                return Err("bars: an array is required".into());
            }
        }
    }
    if let Some(n) = b.get("n")
        && n.as_u64() != Some(1)
    {
        return Err("n: the router returns one choice (n = 1)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// examples/router.toml parses (unknown keys are errors), shows the defaults it says it
    /// shows, and names every key of the file format.
    #[test]
    fn the_example_documents_every_key() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/router.toml");
        let text = std::fs::read_to_string(p).unwrap();
        let c = GatewayConfig::parse(&text).unwrap();
        assert_eq!(c.server, ServerSection::default());
        let d: RouterConfig = toml::from_str(
            "[[routes]]\nmodel = \"x\"\ntargets = [{ endpoint = \"local\", model = \"y\" }]\n\
             [[endpoints]]\nname = \"e\"\nurl = \"http://h\"\n",
        )
        .unwrap();
        assert_eq!(c.router.breaker, d.breaker);
        let (r, dr) = (&c.router.routes[0], &d.routes[0]);
        assert_eq!(
            (r.deadline_ms, r.first_token_ms, r.stall_ms, r.retries, r.backoff_ms),
            (dr.deadline_ms, dr.first_token_ms, dr.stall_ms, dr.retries, dr.backoff_ms)
        );
        assert_eq!(
            (r.backoff_max_ms, r.local_reserve_ms, r.hedge, r.hedge_min_samples),
            (dr.backoff_max_ms, dr.local_reserve_ms, dr.hedge, dr.hedge_min_samples)
        );
        assert_eq!(r.hedge_max_share, dr.hedge_max_share);
        assert_eq!(
            (r.verify_min_agreement, r.verify_cosine),
            (dr.verify_min_agreement, dr.verify_cosine)
        );
        let v = c.router.verify.as_ref().unwrap();
        let dv: kairos_models::router::verify::VerifyConfig = toml::from_str("db = \"x\"").unwrap();
        assert_eq!(
            (v.failures_to_quarantine, v.logprob_tolerance, v.canary_ms),
            (dv.failures_to_quarantine, dv.logprob_tolerance, dv.canary_ms)
        );
        assert_eq!(c.router.canaries[0].max_tokens, 8);
        let (e, de) = (&c.router.endpoints[0], &d.endpoints[0]);
        assert_eq!(
            (e.cost, e.weight, &e.probe_path, e.probe_ms),
            (de.cost, de.weight, &de.probe_path, de.probe_ms)
        );
        assert_eq!(c.local.device, "cpu");
        assert_eq!(c.local.max_tokens, default_local_tokens());
        for k in [
            "[server]",
            "listen",
            "api_key_file",
            "api_key_env",
            "max_body_bytes",
            "insecure_no_auth",
            "[local]",
            "llm",
            "embed",
            "device",
            "max_tokens",
            "[breaker]",
            "failures",
            "open_ms",
            "[[endpoints]]",
            "name",
            "url",
            "cost",
            "weight",
            "probe_path",
            "probe_ms",
            "[[routes]]",
            "model",
            "targets",
            "endpoint",
            "priority",
            "deadline_ms",
            "first_token_ms",
            "stall_ms",
            "retries",
            "backoff_ms",
            "backoff_max_ms",
            "local_reserve_ms",
            "hedge",
            "hedge_max_share",
            "hedge_min_samples",
            "verify_fraction",
            "verify_with",
            "verify_min_agreement",
            "verify_cosine",
            "[verify]",
            "db",
            "failures_to_quarantine",
            "logprob_tolerance",
            "canary_ms",
            "[[canaries]]",
            "route",
            "prompt",
        ] {
            assert!(text.contains(k), "examples/router.toml does not mention {k}");
        }
    }

    #[test]
    fn bad_files_name_the_key() {
        let base = "[[endpoints]]\nname = \"a\"\nurl = \"http://h\"\n";
        for (extra, want) in [
            (
                "[[routes]]\nmodel = \"m\"\ntargets = [{ endpoint = \"b\", model = \"x\" }]\n",
                "targets[0].endpoint \"b\"",
            ),
            ("[[routes]]\nmodel = \"m\"\ntargets = []\n", "targets: at least one"),
            (
                "[[routes]]\nmodel = \"m\"\ntargets = [{ endpoint = \"a\", model = \"x\" }]\ndeadline_ms = 0\n",
                "deadline_ms",
            ),
            (
                "[[routes]]\nmodel = \"m\"\ntargets = [{ endpoint = \"a\", model = \"x\" }]\ntypo = 1\n",
                "typo",
            ),
            ("[server]\nlisten = 5\n", "[server]"),
            ("[[endpoints]]\nname = \"a\"\nurl = \"http://h2\"\n", "used by another endpoint"),
            ("[[endpoints]]\nname = \"c\"\nurl = \"ftp://h\"\n", "want http:// or https://"),
        ] {
            let e = GatewayConfig::parse(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(e.contains(want), "{extra:?}: {e}");
        }
    }
}
