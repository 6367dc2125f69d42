//! `kairos worker`: the inference server that runs on a rented GPU (or any box), speaking the
//! OpenAI-compatible protocol the router and every OpenAI client speak.
//!
//! - Routes ([`routes`]): `POST /v1/chat/completions` (SSE streaming ending in
//!   `data: [DONE]`, a usage block), `POST /v1/completions` (with `logprobs`),
//!   `POST /v1/embeddings`, `GET /v1/models`, `POST /v1/forecast` for Kairos forecasters,
//!   `GET /health` (503 until every configured model is loaded, no key needed) and
//!   `GET /metrics` (Prometheus text, [`metrics`]).
//! - Models: all-MiniLM-L6-v2 embeddings, a Gemma-3 GGUF for generation, a trained forecaster;
//!   on `cpu` or `cuda:N`. Embedding and forecast requests that arrive together run as one
//!   batch within a token (or row) budget ([`lanes::Batcher`]); generation runs one request
//!   at a time on its own thread ([`lanes::Generator`]).
//! - Limits: a bounded queue per model that answers 429 with `Retry-After` when full, a
//!   deadline per request (the config's, lowered by the caller's `x-kairos-deadline-ms` or the
//!   OpenAI client's `x-stainless-timeout`), a body size limit.
//! - Security: bearer keys on every route but `/health` ([`auth`]); optional TLS (rustls,
//!   [`tls`]); prompts are not logged unless `log_prompts`, keys never.
//! - Graceful shutdown on SIGTERM or Ctrl-C: stop accepting, finish what is in flight, exit.

pub mod auth;
pub mod lanes;
pub use kairos_models::metrics;
pub mod routes;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use self::auth::Keys;
use self::lanes::{EmbedLane, ForecastLane, Generator};
use self::metrics::Metrics;

/// The environment variable with comma-separated keys, read unless `api_key_env` names
/// another.
pub const KEYS_ENV: &str = "KAIROS_WORKER_API_KEYS";

/// `kairos worker`'s flags; each overrides the same key of `--config`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WorkerArgs {
    /// The worker's TOML file (see examples/worker.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on (`0.0.0.0:8000`; port 0 picks a free one, printed at start).
    #[arg(long)]
    pub listen: Option<String>,
    /// A file of accepted bearer keys, one a line.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// A sentence-embedding model folder (all-MiniLM-L6-v2 layout).
    #[arg(long, value_name = "DIR")]
    pub embed_model: Option<PathBuf>,
    /// A Gemma-3 GGUF file for chat and text completions.
    #[arg(long, value_name = "FILE.gguf")]
    pub llm: Option<PathBuf>,
    /// A forecaster folder from `kairos train`.
    #[arg(long, value_name = "DIR")]
    pub forecaster: Option<PathBuf>,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long)]
    pub device: Option<String>,
    /// Serve without keys (only for a worker reachable from this machine alone).
    #[arg(long)]
    pub insecure_no_auth: bool,
}

/// One model section of the TOML file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// The folder or file.
    pub path: PathBuf,
    /// The name clients ask for (default: the folder or file name without extension).
    pub name: Option<String>,
    /// Requests that may wait for this model; one more is answered 429.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Embeddings: most tokens in one batch (inputs of concurrent requests together, as
    /// text-embeddings-inference's `max-batch-tokens`). Forecasts: most rows.
    #[serde(default = "default_batch")]
    pub max_batch: usize,
    /// Embeddings: most inputs in one request (OpenAI allows 2,048).
    #[serde(default = "default_max_inputs")]
    pub max_inputs: usize,
    /// Generation: the longest prompt plus answer, in tokens.
    #[serde(default = "default_context")]
    pub context_tokens: usize,
    /// Generation: new tokens when a chat request does not say (text completions default to
    /// 16, as OpenAI's).
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: usize,
    /// Embeddings: `f32`, `f16` or `bf16` weights.
    #[serde(default)]
    pub dtype: Option<String>,
}

fn default_queue() -> usize {
    64
}
fn default_batch() -> usize {
    16_384
}
fn default_max_inputs() -> usize {
    2048
}
fn default_context() -> usize {
    4096
}
fn default_max_tokens() -> usize {
    256
}

impl ModelSection {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            name: None,
            queue: default_queue(),
            max_batch: default_batch(),
            max_inputs: default_max_inputs(),
            context_tokens: default_context(),
            default_max_tokens: default_max_tokens(),
            dtype: None,
        }
    }

    /// The name clients ask for.
    pub fn model_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let p = self.path.file_stem().or(self.path.file_name());
            p.map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
        })
    }
}

/// TLS files.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `worker.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// A file of accepted keys, one a line.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// The environment variable with comma-separated keys.
    #[serde(default = "default_keys_env")]
    pub api_key_env: String,
    /// Largest request body, bytes (413 above it).
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// A request's deadline, ms, from its arrival (queue time included); a caller may ask
    /// for less.
    #[serde(default = "default_deadline")]
    pub deadline_ms: u64,
    /// Longest wait for requests in flight at shutdown, ms.
    #[serde(default = "default_grace")]
    pub shutdown_grace_ms: u64,
    /// Log prompts and answers (off: only sizes and timings are logged).
    #[serde(default)]
    pub log_prompts: bool,
    /// Serve without keys.
    #[serde(default)]
    pub insecure_no_auth: bool,
    /// The embedding model.
    #[serde(default)]
    pub embed: Option<ModelSection>,
    /// The generation model.
    #[serde(default)]
    pub llm: Option<ModelSection>,
    /// The forecaster.
    #[serde(default)]
    pub forecaster: Option<ModelSection>,
    /// TLS (off when absent).
    #[serde(default)]
    pub tls: Option<TlsSection>,
}

fn default_listen() -> String {
    "127.0.0.1:8000".into()
}
fn default_device() -> String {
    "cpu".into()
}
fn default_keys_env() -> String {
    KEYS_ENV.into()
}
fn default_body() -> usize {
    4 << 20
}
fn default_deadline() -> u64 {
    60_000
}
fn default_grace() -> u64 {
    30_000
}

impl Default for WorkerConfig {
    fn default() -> Self {
        toml::from_str("").expect("the defaults parse")
    }
}

impl WorkerConfig {
    /// The file (when given) with the flags on top, validated.
    pub fn resolve(args: &WorkerArgs) -> anyhow::Result<Self> {
        let mut c = match &args.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading worker config {}", p.display()))?;
                toml::from_str::<WorkerConfig>(&text)
                    .map_err(|e| anyhow::anyhow!("worker config {}: {e}", p.display()))?
            }
            None => WorkerConfig::default(),
        };
        if let Some(l) = &args.listen {
            c.listen = l.clone();
        }
        if let Some(d) = &args.device {
            c.device = d.clone();
        }
        if let Some(f) = &args.api_key_file {
            c.api_key_file = Some(f.clone());
        }
        let set = |slot: &mut Option<ModelSection>, p: &Option<PathBuf>| {
            if let Some(p) = p {
                match slot {
                    Some(s) => s.path = p.clone(),
                    None => *slot = Some(ModelSection::new(p.clone())),
                }
            }
        };
        set(&mut c.embed, &args.embed_model);
        set(&mut c.llm, &args.llm);
        set(&mut c.forecaster, &args.forecaster);
        c.insecure_no_auth |= args.insecure_no_auth;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> anyhow::Result<()> {
        self.listen
            .parse::<SocketAddr>()
            .map_err(|e| anyhow::anyhow!("listen {:?}: {e} (want HOST:PORT)", self.listen))?;
        if self.embed.is_none() && self.llm.is_none() && self.forecaster.is_none() {
            anyhow::bail!(
                "no model to serve: give --embed-model, --llm or --forecaster (or [embed], \
                 [llm], [forecaster] in the config)"
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (key, s) in self.sections() {
            if !s.path.exists() {
                anyhow::bail!("{key}.path {}: no such file or folder", s.path.display());
            }
            if s.queue == 0 || s.max_batch == 0 || s.max_inputs == 0 {
                anyhow::bail!("{key}: queue, max_batch and max_inputs must be at least 1");
            }
            if s.context_tokens < 2 || s.default_max_tokens == 0 {
                anyhow::bail!("{key}: context_tokens must be at least 2, default_max_tokens 1");
            }
            if !names.insert(s.model_name()) {
                anyhow::bail!("{key}.name {:?} is used by another model", s.model_name());
            }
        }
        if self.deadline_ms == 0 || self.max_body_bytes == 0 {
            anyhow::bail!("deadline_ms and max_body_bytes must be above 0");
        }
        Ok(())
    }

    /// The configured models, by config key.
    pub fn sections(&self) -> impl Iterator<Item = (&'static str, &ModelSection)> {
        [("embed", &self.embed), ("llm", &self.llm), ("forecaster", &self.forecaster)]
            .into_iter()
            .filter_map(|(k, s)| s.as_ref().map(|s| (k, s)))
    }
}

/// What the handlers share.
pub struct Worker {
    /// The settings.
    pub config: WorkerConfig,
    /// Accepted keys (empty with `insecure_no_auth`).
    pub keys: Keys,
    /// The figures.
    pub metrics: Metrics,
    /// Set once the embedding model is loaded.
    pub embed: OnceLock<EmbedLane>,
    /// Set once the LLM is loaded.
    pub llm: OnceLock<Generator>,
    /// Set once the forecaster is loaded.
    pub forecaster: OnceLock<ForecastLane>,
    /// Unix seconds at start (the models' `created`).
    pub started: i64,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("listen", &self.config.listen).finish_non_exhaustive()
    }
}

impl Worker {
    /// Whether every configured model is loaded.
    pub fn ready(&self) -> bool {
        (self.config.embed.is_none() || self.embed.get().is_some())
            && (self.config.llm.is_none() || self.llm.get().is_some())
            && (self.config.forecaster.is_none() || self.forecaster.get().is_some())
    }
}

fn describe(m: &Metrics) {
    m.describe(
        "kairos_worker_requests_total",
        "counter",
        "Requests answered, by route and status.",
    );
    m.describe("kairos_worker_num_requests_running", "gauge", "Requests being computed.");
    m.describe("kairos_worker_num_requests_waiting", "gauge", "Requests queued for a model.");
    m.describe("kairos_worker_model_loaded", "gauge", "1 once the model is loaded.");
    m.describe(
        "kairos_worker_time_to_first_token_seconds",
        "histogram",
        "From arrival to the first generated token.",
    );
    m.describe(
        "kairos_worker_e2e_request_latency_seconds",
        "histogram",
        "From arrival to the last byte of the answer.",
    );
    m.describe("kairos_worker_queue_time_seconds", "histogram", "Time spent waiting for a model.");
    m.describe("kairos_worker_batch_size", "histogram", "Requests per batch.");
    m.describe("kairos_worker_batch_inputs", "histogram", "Inputs (texts or rows) per batch.");
    m.describe("kairos_worker_prompt_tokens_total", "counter", "Prompt and input tokens.");
    m.describe("kairos_worker_generation_tokens_total", "counter", "Generated tokens.");
    m.describe(
        "kairos_worker_rejected_total",
        "counter",
        "Requests refused or dropped: full queue, deadline passed, client gone.",
    );
}

/// Loads the configured models one by one (the server answers `/health` 503 meanwhile).
fn load_models(worker: &Arc<Worker>, rt: &tokio::runtime::Handle) -> anyhow::Result<()> {
    let c = &worker.config;
    let device =
        kairos_models::device(&c.device).with_context(|| format!("device {}", c.device))?;
    if let Some(s) = &c.embed {
        let name = s.model_name();
        let dtype = kairos_models::dtype(s.dtype.as_deref().unwrap_or("f32"))
            .map_err(|e| anyhow::anyhow!("embed.dtype: {e}"))?;
        let t0 = std::time::Instant::now();
        let enc = kairos_models::embed::TextEncoder::load_as(&s.path, &device, dtype)
            .with_context(|| format!("loading embed model {}", s.path.display()))?;
        tracing::info!(model = %name, ms = t0.elapsed().as_millis() as u64, "embedding model loaded");
        let b = lanes::embed_batcher(worker.clone(), name.clone(), Arc::new(enc), s, rt);
        let _ = worker.embed.set(b);
        worker.metrics.set("kairos_worker_model_loaded", metrics::labels(&[("model", &name)]), 1.0);
    }
    if let Some(s) = &c.forecaster {
        let name = s.model_name();
        let f = kairos_models::forecast::Forecaster::load(&s.path, &device)
            .with_context(|| format!("loading forecaster {}", s.path.display()))?;
        tracing::info!(model = %name, "forecaster loaded");
        let b = lanes::forecast_batcher(worker.clone(), name.clone(), Arc::new(f), s, rt);
        let _ = worker.forecaster.set(b);
        worker.metrics.set("kairos_worker_model_loaded", metrics::labels(&[("model", &name)]), 1.0);
    }
    if let Some(s) = &c.llm {
        let name = s.model_name();
        let t0 = std::time::Instant::now();
        let g = kairos_models::llm::Gemma::load(&s.path, &device)
            .with_context(|| format!("loading LLM {}", s.path.display()))?;
        tracing::info!(model = %name, ms = t0.elapsed().as_millis() as u64, "LLM loaded");
        let gen_ = Generator::start(worker.clone(), name.clone(), g, s)?;
        let _ = worker.llm.set(gen_);
        worker.metrics.set("kairos_worker_model_loaded", metrics::labels(&[("model", &name)]), 1.0);
    }
    Ok(())
}

/// `kairos worker`: serves until SIGTERM or Ctrl-C.
pub fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let config = WorkerConfig::resolve(&args)?;
    let keys = Keys::required(
        config.api_key_file.as_deref(),
        &config.api_key_env,
        config.insecure_no_auth,
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(config, keys))
}

async fn serve(config: WorkerConfig, keys: Keys) -> anyhow::Result<()> {
    let addr: SocketAddr = config.listen.parse()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    let metrics = Metrics::default();
    describe(&metrics);
    let worker = Arc::new(Worker {
        keys,
        metrics,
        embed: OnceLock::new(),
        llm: OnceLock::new(),
        forecaster: OnceLock::new(),
        started: crate::now_ms() / 1000,
        config,
    });
    let scheme = if worker.config.tls.is_some() { "https" } else { "http" };
    // The line tests and scripts read for the port.
    println!("kairos worker listening on {scheme}://{local}");
    tracing::info!(%local, keys = worker.keys.len(), "worker listening");

    let (load_failed_tx, load_failed) = tokio::sync::oneshot::channel::<anyhow::Error>();
    {
        let w = worker.clone();
        let rt = tokio::runtime::Handle::current();
        std::thread::Builder::new().name("kairos-load".into()).spawn(move || {
            if let Err(e) = load_models(&w, &rt) {
                let _ = load_failed_tx.send(e);
            }
        })?;
    }

    let app = routes::router(worker.clone());
    let grace = Duration::from_millis(worker.config.shutdown_grace_ms);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let server: tokio::task::JoinHandle<anyhow::Result<()>> = match &worker.config.tls {
        None => tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("serving")
        }),
        Some(t) => {
            let l = tls::TlsListener::new(listener, tls::acceptor(&t.cert, &t.key)?);
            tokio::spawn(async move {
                axum::serve(l, app).with_graceful_shutdown(shutdown).await.context("serving")
            })
        }
    };
    // A load that ends well drops its sender: that is no reason to stop.
    let failed = async move {
        match load_failed.await {
            Ok(e) => e,
            Err(_) => std::future::pending().await,
        }
    };
    let failure = tokio::select! {
        _ = stop_signal() => None,
        e = failed => Some(e),
    };
    let _ = stop_tx.send(true);
    tracing::info!("worker stopping: finishing the requests in flight");
    let done = tokio::time::timeout(grace, server).await;
    if let Some(e) = failure {
        return Err(e.context("the worker could not load its models"));
    }
    match done {
        Ok(Ok(r)) => r?,
        Ok(Err(e)) => anyhow::bail!("server task: {e}"),
        Err(_) => tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "requests still running at the end of the grace period"
        ),
    }
    tracing::info!("worker stopped");
    Ok(())
}

pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/worker.toml");
        std::fs::read_to_string(p).unwrap()
    }

    /// examples/worker.toml parses (unknown keys are errors), shows the defaults it says it
    /// shows, and names every key of the file format, commented out or not.
    #[test]
    fn the_example_documents_every_key() {
        let text = example();
        let c: WorkerConfig = toml::from_str(&text).unwrap();
        let d = WorkerConfig::default();
        assert_eq!((&c.listen, &c.device, &c.api_key_env), (&d.listen, &d.device, &d.api_key_env));
        assert_eq!(
            (c.max_body_bytes, c.deadline_ms, c.shutdown_grace_ms, c.log_prompts),
            (d.max_body_bytes, d.deadline_ms, d.shutdown_grace_ms, d.log_prompts)
        );
        assert!(!c.insecure_no_auth && c.api_key_file.is_none() && c.tls.is_none());
        for s in [c.embed.as_ref(), c.llm.as_ref(), c.forecaster.as_ref()] {
            let s = s.expect("every model section is in the example");
            let def = ModelSection::new(s.path.clone());
            assert_eq!(
                (s.queue, s.max_batch, s.max_inputs, s.context_tokens, s.default_max_tokens),
                (
                    def.queue,
                    def.max_batch,
                    def.max_inputs,
                    def.context_tokens,
                    def.default_max_tokens
                )
            );
        }
        // Uncommented, the optional keys parse too.
        let all: WorkerConfig = toml::from_str(
            &text
                .replace("# api_key_file", "api_key_file")
                .replace("# dtype", "dtype")
                .replace("# [tls]", "[tls]")
                .replace("# cert", "cert")
                .replace("# key =", "key ="),
        )
        .unwrap();
        assert!(all.api_key_file.is_some() && all.tls.is_some());
        assert_eq!(all.embed.unwrap().dtype.as_deref(), Some("f16"));
        let keys = [
            "listen",
            "device",
            "api_key_file",
            "api_key_env",
            "max_body_bytes",
            "deadline_ms",
            "shutdown_grace_ms",
            "log_prompts",
            "insecure_no_auth",
            "[embed]",
            "[llm]",
            "[forecaster]",
            "[tls]",
            "path",
            "name",
            "queue",
            "max_batch",
            "max_inputs",
            "context_tokens",
            "default_max_tokens",
            "dtype",
            "cert",
            "key",
        ];
        for k in keys {
            assert!(text.contains(k), "examples/worker.toml does not mention {k}");
        }
    }
}
