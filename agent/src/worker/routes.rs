//! The worker's HTTP routes, in OpenAI's wire format ([`kairos_models::openai`]): errors are
//! `{"error": {"message", "type", "param", "code"}}` with OpenAI's status codes and codes
//! (`invalid_api_key`, `model_not_found`, `context_length_exceeded`), so every OpenAI client
//! and the router read them the same way.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use futures_util::Stream;
use kairos_models::llm::{GenerateOptions, Generation, StopReason};
use kairos_models::openai::*;
use kairos_strategies::{Bar, InstrumentId, Timestamp};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use super::Worker;
use super::lanes::{self, EmbedJob, ForecastJob, GenError, GenEvent, GenJob, JobError, PromptSpec};
use super::metrics::{LATENCY_BUCKETS, labels};

/// Most alternatives per token.
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    param: Option<&'static str>,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, code: None, param: None, message: message.into(), retry_after: None }
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }
    fn param(mut self, p: &'static str) -> Self {
        self.param = Some(p);
        self
    }
    fn code(mut self, c: &'static str) -> Self {
        self.code = Some(c);
        self
    }
    fn busy(model: &str, retry_after_s: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!("the queue for {model} is full; retry after {retry_after_s} s"),
        )
        .code("queue_full");
        e.retry_after = Some(retry_after_s);
        e
    }
    fn deadline(model: &str) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout_error",
            format!("the request's deadline passed before {model} answered"),
        )
        .code("deadline_exceeded")
    }
    fn loading(what: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_error",
            format!("{what} is still loading; GET /health says when the worker is ready"),
        )
        .code("model_loading")
    }
    fn unknown_model(asked: &str, served: &[String]) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!(
                "The model `{asked}` does not exist on this worker for this route (served: {})",
                if served.is_empty() { "none".to_string() } else { served.join(", ") }
            ),
        )
        .param("model")
        .code("model_not_found")
    }
    fn server(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// The body, as the worker sends it.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: self.message.clone(),
                kind: self.kind.to_string(),
                param: self.param.map(str::to_string),
                code: self.code.map(str::to_string),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The routes, with authentication on all but `/health`, the body limit and the request
/// counters.
pub fn router(worker: Arc<Worker>) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/v1/forecast", post(forecast))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(worker.clone(), auth));
    Router::new()
        .route("/health", get(health))
        .merge(api)
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", "no such route")
        })
        .layer(middleware::from_fn_with_state(worker.clone(), count))
        .layer(DefaultBodyLimit::max(worker.config.max_body_bytes))
        .with_state(worker)
}

async fn auth(State(w): State<Arc<Worker>>, req: Request, next: Next) -> Response {
    let h = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(message) = w.keys.refusal(w.config.insecure_no_auth, h) else {
        return next.run(req).await;
    };
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
        .code("invalid_api_key")
        .into_response()
}

async fn count(State(w): State<Arc<Worker>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let t0 = Instant::now();
    let r = next.run(req).await;
    let status = r.status().as_u16().to_string();
    w.metrics.add(
        "kairos_worker_requests_total",
        labels(&[("route", &route), ("code", &status)]),
        1.0,
    );
    let streaming = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !streaming && route.starts_with("/v1/") {
        w.metrics.observe(
            "kairos_worker_e2e_request_latency_seconds",
            labels(&[("route", &route)]),
            LATENCY_BUCKETS,
            t0.elapsed().as_secs_f64(),
        );
    }
    tracing::debug!(%route, %status, ms = t0.elapsed().as_millis() as u64, "request");
    r
}

/// The body as JSON, with errors that say what is wrong (and 413 above the size limit).
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let bytes = body.map_err(|e| {
        let status = e.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "request_too_large"
        } else {
            "invalid_request_error"
        };
        ApiError::new(status, kind, e.body_text())
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("the body is not a valid request: {e}")))
}

async fn health(State(w): State<Arc<Worker>>) -> Response {
    let names: Vec<String> = w.config.sections().map(|(_, s)| s.model_name()).collect();
    if w.ready() {
        axum::Json(serde_json::json!({ "status": "ok", "models": names })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "loading", "models": names })),
        )
            .into_response()
    }
}

async fn metrics(State(w): State<Arc<Worker>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], w.metrics.render())
        .into_response()
}

async fn models(State(w): State<Arc<Worker>>) -> axum::Json<ModelList> {
    let mut data = Vec::new();
    let mut add = |name: &str| {
        data.push(Model {
            id: name.to_string(),
            object: "model".into(),
            created: w.started,
            owned_by: "kairos".into(),
        })
    };
    if let Some(e) = w.embed.get() {
        add(&e.batcher.model);
    }
    if let Some(g) = w.llm.get() {
        add(&g.model);
    }
    if let Some(f) = w.forecaster.get() {
        add(&f.batcher.model);
    }
    axum::Json(ModelList { object: "list".into(), data })
}

fn served(w: &Worker, section: &Option<super::ModelSection>) -> Vec<String> {
    let _ = w;
    section.iter().map(|s| s.model_name()).collect()
}

fn now_s() -> i64 {
    crate::now_ms() / 1000
}

fn request_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:06x}", crate::now_ms(), n & 0xff_ffff)
}

/// The LLM, when this is its name.
fn generator<'a>(w: &'a Worker, model: &str) -> ApiResult<&'a lanes::Generator> {
    let Some(section) = &w.config.llm else {
        return Err(ApiError::unknown_model(model, &served(w, &w.config.llm)));
    };
    if section.model_name() != model {
        return Err(ApiError::unknown_model(model, &served(w, &w.config.llm)));
    }
    w.llm.get().ok_or_else(|| ApiError::loading(model))
}

struct GenParams {
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    seed: Option<u64>,
    stop: Option<Stop>,
    n: Option<u32>,
    logprobs: bool,
    top: u32,
}

fn options(
    g: &lanes::Generator,
    p: GenParams,
    default_max: usize,
) -> ApiResult<(GenerateOptions, bool, usize)> {
    if p.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid("n: this worker returns one choice (n = 1)").param("n"));
    }
    if p.top > MAX_TOP_LOGPROBS {
        return Err(ApiError::invalid(format!("top_logprobs: at most {MAX_TOP_LOGPROBS}"))
            .param("top_logprobs"));
    }
    let t = p.temperature.unwrap_or(1.0);
    if !(t.is_finite() && (0.0..=2.0).contains(&t)) {
        return Err(ApiError::invalid("temperature: must be between 0 and 2").param("temperature"));
    }
    if let Some(tp) = p.top_p
        && !(tp > 0.0 && tp <= 1.0)
    {
        return Err(ApiError::invalid("top_p: must be in (0, 1]").param("top_p"));
    }
    if p.max_tokens == Some(0) {
        return Err(ApiError::invalid("max_tokens: must be at least 1").param("max_tokens"));
    }
    let stop = p.stop.map(Stop::into_vec).unwrap_or_default();
    if stop.len() > 4 {
        return Err(ApiError::invalid("stop: at most 4 sequences").param("stop"));
    }
    let given = p.max_tokens.is_some();
    let max_tokens = p.max_tokens.map_or(default_max, |m| m as usize);
    if max_tokens > g.context_tokens {
        return Err(ApiError::invalid(format!(
            "max_tokens: {max_tokens} is more than the model's context of {} tokens",
            g.context_tokens
        ))
        .param("max_tokens")
        .code("context_length_exceeded"));
    }
    let opts = GenerateOptions {
        max_tokens,
        temperature: t,
        top_p: p.top_p.filter(|&tp| tp < 1.0),
        seed: p.seed.unwrap_or_else(|| crate::now_ms() as u64),
        stop,
        chat: false,
        logprobs: p.logprobs,
    };
    Ok((opts, given, p.top as usize))
}

fn gen_error(model: &str, e: GenError, param: &'static str) -> ApiError {
    match e {
        GenError::ContextLength { prompt, asked, limit } => ApiError::invalid(format!(
            "This model's maximum context length is {limit} tokens. However, you requested {} \
             tokens ({prompt} in the {param}, {asked} in the completion). Please reduce the \
             length of the {param} or completion.",
            prompt + asked
        ))
        .param(param)
        .code("context_length_exceeded"),
        GenError::Invalid(m) => ApiError::invalid(m).param(param),
        GenError::Deadline => ApiError::deadline(model),
        GenError::Model(m) => ApiError::server(format!("{model} failed: {m}")),
    }
}

fn finish_reason(g: &Generation) -> &'static str {
    match g.stop {
        StopReason::MaxTokens => "length",
        _ => "stop",
    }
}

/// Queues a generation; returns its events after the prompt was accepted (so a context-length
/// or a queue error is an HTTP error, not a broken stream).
async fn start_generation(
    w: &Worker,
    g: &lanes::Generator,
    prompt: PromptSpec,
    params: (GenerateOptions, bool, usize),
    arrived: Instant,
    deadline: Instant,
    param: &'static str,
) -> ApiResult<(mpsc::UnboundedReceiver<GenEvent>, usize)> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (opts, max_tokens_given, top_logprobs) = params;
    if w.config.log_prompts {
        tracing::info!(model = %g.model, prompt = ?prompt, "prompt");
    }
    g.submit(GenJob {
        prompt,
        opts,
        max_tokens_given,
        top_logprobs,
        arrived,
        deadline,
        events: tx,
    })
    .map_err(|b| ApiError::busy(&g.model, b.retry_after_s))?;
    match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        Err(_) => Err(ApiError::deadline(&g.model)),
        Ok(None) => Err(ApiError::server("the generator stopped")),
        Ok(Some(GenEvent::Started { prompt_tokens })) => Ok((rx, prompt_tokens)),
        Ok(Some(GenEvent::Failed(e))) => Err(gen_error(&g.model, e, param)),
        Ok(Some(_)) => Err(ApiError::server("generation events out of order")),
    }
}

/// Every event until the end, within the deadline.
async fn collect(
    g: &lanes::Generator,
    mut rx: mpsc::UnboundedReceiver<GenEvent>,
    deadline: Instant,
    param: &'static str,
) -> ApiResult<(Vec<lanes::TokenOut>, Generation)> {
    let mut tokens = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Err(_) => return Err(ApiError::deadline(&g.model)),
            Ok(None) => return Err(ApiError::server("the generator stopped mid-answer")),
            Ok(Some(GenEvent::Token(t))) => tokens.push(t),
            Ok(Some(GenEvent::Done(gen_))) => return Ok((tokens, gen_)),
            Ok(Some(GenEvent::Failed(e))) => return Err(gen_error(&g.model, e, param)),
            Ok(Some(GenEvent::Started { .. })) => {}
        }
    }
}

fn chat_logprobs(tokens: &[lanes::TokenOut]) -> ChatLogprobs {
    ChatLogprobs {
        content: tokens
            .iter()
            .filter_map(|t| {
                Some(TokenLogprob {
                    token: t.token.clone(),
                    logprob: t.logprob?,
                    bytes: Some(t.bytes.clone()),
                    top_logprobs: t
                        .top
                        .iter()
                        .map(|(s, b, lp)| TopLogprob {
                            token: s.clone(),
                            logprob: *lp,
                            bytes: Some(b.clone()),
                        })
                        .collect(),
                })
            })
            .collect(),
    }
}

fn completion_logprobs(tokens: &[lanes::TokenOut], offset0: usize) -> CompletionLogprobs {
    let mut out = CompletionLogprobs::default();
    let mut offset = offset0;
    for t in tokens {
        let Some(lp) = t.logprob else { continue };
        out.tokens.push(t.token.clone());
        out.token_logprobs.push(lp);
        out.top_logprobs.push(t.top.iter().map(|(s, _, lp)| (s.clone(), *lp)).collect());
        out.text_offset.push(offset);
        offset += t.text.len();
    }
    out
}

fn usage(prompt: usize, completion: usize) -> Usage {
    Usage {
        prompt_tokens: prompt as u32,
        completion_tokens: completion as u32,
        total_tokens: (prompt + completion) as u32,
    }
}

fn json_event<T: serde::Serialize>(v: &T) -> Event {
    Event::default().data(serde_json::to_string(v).unwrap_or_else(|_| "{}".into()))
}

async fn chat(
    State(w): State<Arc<Worker>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let arrived = Instant::now();
    let req: ChatRequest = parse(body)?;
    let g = generator(&w, &req.model)?;
    if req.messages.is_empty() {
        return Err(ApiError::invalid("messages: at least one message").param("messages"));
    }
    let mut turns = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let text = match &m.content {
            None => String::new(),
            Some(c) => c
                .text()
                .map_err(|e| ApiError::invalid(format!("messages[{i}]: {e}")).param("messages"))?,
        };
        turns.push((m.role.clone(), text));
    }
    let params = options(
        g,
        GenParams {
            max_tokens: req.max_completion_tokens.or(req.max_tokens),
            temperature: req.temperature,
            top_p: req.top_p,
            seed: req.seed,
            stop: req.stop.clone(),
            n: req.n,
            logprobs: req.logprobs.unwrap_or(false),
            top: if req.logprobs.unwrap_or(false) { req.top_logprobs.unwrap_or(0) } else { 0 },
        },
        g.default_max_tokens,
    )?;
    let want_logprobs = req.logprobs.unwrap_or(false);
    let deadline = lanes::deadline(arrived, w.config.deadline_ms, &headers);
    let (rx, prompt_tokens) =
        start_generation(&w, g, PromptSpec::Chat(turns), params, arrived, deadline, "messages")
            .await?;
    let id = request_id("chatcmpl");
    let model = g.model.clone();
    if !req.stream {
        let (tokens, gen_) = collect(g, rx, deadline, "messages").await?;
        log_done(&model, &gen_, arrived);
        return Ok(axum::Json(ChatCompletion {
            id,
            object: "chat.completion".into(),
            created: now_s(),
            model,
            choices: vec![ChatChoice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant".into(),
                    content: Some(gen_.text.clone()),
                },
                logprobs: want_logprobs.then(|| chat_logprobs(&tokens)),
                finish_reason: Some(finish_reason(&gen_).into()),
            }],
            usage: Some(usage(prompt_tokens, gen_.tokens)),
        })
        .into_response());
    }
    let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(true);
    let created = now_s();
    let chunk = move |id: &str,
                      model: &str,
                      delta: Delta,
                      lp: Option<ChatLogprobs>,
                      fin: Option<String>| ChatChunk {
        id: id.to_string(),
        object: "chat.completion.chunk".into(),
        created,
        model: model.to_string(),
        choices: vec![ChunkChoice { index: 0, delta, logprobs: lp, finish_reason: fin }],
        usage: None,
    };
    let first = json_event(&chunk(
        &id,
        &model,
        Delta { role: Some("assistant".into()), content: Some(String::new()) },
        None,
        None,
    ));
    let stream = sse_stream(
        w.clone(),
        rx,
        deadline,
        arrived,
        model.clone(),
        vec![first],
        move |ev| match ev {
            StreamItem::Token(t) => {
                if t.text.is_empty() && !want_logprobs {
                    return Vec::new();
                }
                let lp = want_logprobs.then(|| chat_logprobs(std::slice::from_ref(&t)));
                vec![json_event(&chunk(
                    &id,
                    &model,
                    Delta { role: None, content: Some(t.text) },
                    lp,
                    None,
                ))]
            }
            StreamItem::End(gen_) => {
                let mut events = vec![json_event(&chunk(
                    &id,
                    &model,
                    Delta::default(),
                    None,
                    Some(finish_reason(&gen_).into()),
                ))];
                if include_usage {
                    let mut u = chunk(&id, &model, Delta::default(), None, None);
                    u.choices.clear();
                    u.usage = Some(usage(prompt_tokens, gen_.tokens));
                    events.push(json_event(&u));
                }
                events
            }
        },
    );
    Ok(Sse::new(stream).into_response())
}

enum StreamItem {
    Token(lanes::TokenOut),
    End(Generation),
}

fn log_done(model: &str, g: &Generation, arrived: Instant) {
    tracing::info!(
        model,
        prompt_tokens = g.prompt_tokens,
        tokens = g.tokens,
        ms = arrived.elapsed().as_millis() as u64,
        "generated"
    );
}

async fn completions(
    State(w): State<Arc<Worker>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let arrived = Instant::now();
    let req: CompletionRequest = parse(body)?;
    let g = generator(&w, &req.model)?;
    if req.echo == Some(true) {
        return Err(ApiError::invalid("echo: not served by this worker").param("echo"));
    }
    let prompt = match req.prompt {
        Prompt::Text(t) => PromptSpec::Text(t),
        Prompt::Tokens(ids) => PromptSpec::Tokens(ids),
        Prompt::Texts(mut v) if v.len() == 1 => PromptSpec::Text(v.remove(0)),
        Prompt::TokenBatch(mut v) if v.len() == 1 => PromptSpec::Tokens(v.remove(0)),
        _ => return Err(ApiError::invalid("prompt: one prompt per request").param("prompt")),
    };
    if matches!(&prompt, PromptSpec::Text(t) if t.is_empty()) {
        return Err(ApiError::invalid("prompt: empty").param("prompt"));
    }
    let want_logprobs = req.logprobs.is_some();
    let params = options(
        g,
        GenParams {
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            seed: req.seed,
            stop: req.stop.clone(),
            n: req.n,
            logprobs: want_logprobs,
            top: req.logprobs.unwrap_or(0),
        },
        // OpenAI's default for text completions.
        16,
    )?;
    let deadline = lanes::deadline(arrived, w.config.deadline_ms, &headers);
    let (rx, prompt_tokens) =
        start_generation(&w, g, prompt, params, arrived, deadline, "prompt").await?;
    let id = request_id("cmpl");
    let model = g.model.clone();
    let created = now_s();
    let completion = move |id: &str,
                           model: &str,
                           text: String,
                           lp: Option<CompletionLogprobs>,
                           fin: Option<String>| Completion {
        id: id.to_string(),
        object: "text_completion".into(),
        created,
        model: model.to_string(),
        choices: vec![CompletionChoice { index: 0, text, logprobs: lp, finish_reason: fin }],
        usage: None,
    };
    if !req.stream {
        let (tokens, gen_) = collect(g, rx, deadline, "prompt").await?;
        log_done(&model, &gen_, arrived);
        let lp = want_logprobs.then(|| completion_logprobs(&tokens, 0));
        let mut c =
            completion(&id, &model, gen_.text.clone(), lp, Some(finish_reason(&gen_).into()));
        c.usage = Some(usage(prompt_tokens, gen_.tokens));
        return Ok(axum::Json(c).into_response());
    }
    let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(true);
    let mut offset = 0usize;
    let stream = sse_stream(
        w.clone(),
        rx,
        deadline,
        arrived,
        model.clone(),
        Vec::new(),
        move |ev| match ev {
            StreamItem::Token(t) => {
                if t.text.is_empty() && !want_logprobs {
                    return Vec::new();
                }
                let lp =
                    want_logprobs.then(|| completion_logprobs(std::slice::from_ref(&t), offset));
                offset += t.text.len();
                vec![json_event(&completion(&id, &model, t.text, lp, None))]
            }
            StreamItem::End(gen_) => {
                let mut events = vec![json_event(&completion(
                    &id,
                    &model,
                    String::new(),
                    None,
                    Some(finish_reason(&gen_).into()),
                ))];
                if include_usage {
                    let mut u = completion(&id, &model, String::new(), None, None);
                    u.choices.clear();
                    u.usage = Some(usage(prompt_tokens, gen_.tokens));
                    events.push(json_event(&u));
                }
                events
            }
        },
    );
    Ok(Sse::new(stream).into_response())
}

async fn embeddings(
    State(w): State<Arc<Worker>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let arrived = Instant::now();
    let req: EmbeddingRequest = parse(body)?;
    let served_names = served(&w, &w.config.embed);
    if !served_names.contains(&req.model) {
        return Err(ApiError::unknown_model(&req.model, &served_names));
    }
    let lane = w.embed.get().ok_or_else(|| ApiError::loading(&req.model))?;
    let texts = match req.input {
        EmbeddingInput::Text(t) => vec![t],
        EmbeddingInput::Texts(v) => v,
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatch(_) => {
            return Err(ApiError::invalid("input: token arrays are not served; send the text")
                .param("input"));
        }
    };
    if texts.is_empty() {
        return Err(ApiError::invalid("input: at least one text").param("input"));
    }
    if let Some(i) = texts.iter().position(String::is_empty) {
        return Err(ApiError::invalid(format!("input[{i}]: an empty string cannot be embedded"))
            .param("input"));
    }
    if texts.len() > lane.batcher.max_inputs {
        return Err(ApiError::invalid(format!(
            "input: {} texts; at most {} in one request",
            texts.len(),
            lane.batcher.max_inputs
        ))
        .param("input"));
    }
    let dim = lane.encoder.dim();
    if let Some(d) = req.dimensions
        && d as usize != dim
    {
        return Err(
            ApiError::invalid(format!("dimensions: this model gives {dim}")).param("dimensions")
        );
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "encoding_format `{other}`: use float or base64"
            ))
            .param("encoding_format"));
        }
    };
    let enc = lane.encoder.clone();
    let (texts, counts) = tokio::task::spawn_blocking(move || {
        let c = enc.token_counts(&texts);
        (texts, c)
    })
    .await
    .map_err(|e| ApiError::server(e.to_string()))?;
    let counts = counts.map_err(|e| ApiError::invalid(format!("input: {e}")).param("input"))?;
    let tokens: usize = counts.iter().sum();
    let deadline = lanes::deadline(arrived, w.config.deadline_ms, &headers);
    let (tx, rx) = oneshot::channel();
    lane.batcher
        .submit(EmbedJob { texts, tokens, arrived, deadline, reply: tx })
        .map_err(|b| ApiError::busy(&lane.batcher.model, b.retry_after_s))?;
    w.metrics.add(
        "kairos_worker_prompt_tokens_total",
        labels(&[("model", &lane.batcher.model)]),
        tokens as f64,
    );
    let vectors = match tokio::time::timeout_at(deadline.into(), rx).await {
        Err(_) | Ok(Ok(Err(JobError::Deadline))) => {
            return Err(ApiError::deadline(&lane.batcher.model));
        }
        Ok(Err(_)) => return Err(ApiError::server("the batcher stopped")),
        Ok(Ok(Err(JobError::Model(m)))) => return Err(ApiError::server(m)),
        Ok(Ok(Ok(v))) => v,
    };
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| Embedding {
            object: "embedding".into(),
            index: i as u32,
            embedding: if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                EmbeddingVector::Float(v)
            },
        })
        .collect();
    Ok(axum::Json(EmbeddingResponse {
        object: "list".into(),
        data,
        model: lane.batcher.model.clone(),
        usage: EmbeddingUsage { prompt_tokens: tokens as u32, total_tokens: tokens as u32 },
    })
    .into_response())
}

async fn forecast(
    State(w): State<Arc<Worker>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let arrived = Instant::now();
    let req: ForecastRequest = parse(body)?;
    let served_names = served(&w, &w.config.forecaster);
    if !served_names.contains(&req.model) {
        return Err(ApiError::unknown_model(&req.model, &served_names));
    }
    let lane = w.forecaster.get().ok_or_else(|| ApiError::loading(&req.model))?;
    let mut stream = kairos_models::forecast::ForecastStream::new(lane.model.clone());
    let mut last_ts = i64::MIN;
    for (i, b) in req.bars.iter().enumerate() {
        let prices = [b.open, b.high, b.low, b.close];
        if prices.iter().any(|p| !p.is_finite() || *p <= 0.0)
            || !b.volume.is_finite()
            || b.volume < 0.0
        {
            return Err(ApiError::invalid(format!(
                "bars[{i}]: prices must be finite and positive, volume finite and not negative"
            ))
            .param("bars"));
        }
        if b.high < b.low || b.high < b.open.max(b.close) || b.low > b.open.min(b.close) {
            return Err(ApiError::invalid(format!(
                "bars[{i}]: high and low do not contain open and close"
            ))
            .param("bars"));
        }
        if b.ts <= last_ts {
            return Err(ApiError::invalid(format!(
                "bars[{i}]: ts {} is not after the bar before",
                b.ts
            ))
            .param("bars"));
        }
        last_ts = b.ts;
        stream.push(&Bar {
            instrument: InstrumentId(0),
            ts: Timestamp::from_millis(b.ts),
            open: b.open,
            high: b.high,
            low: b.low,
            close: b.close,
            volume: b.volume,
        });
    }
    let need = kairos_models::features::WARMUP + lane.model.window();
    let Some(rows) = stream.window_rows() else {
        return Err(ApiError::invalid(format!(
            "bars: {} given; the model needs at least {need} consecutive bars",
            req.bars.len()
        ))
        .param("bars"));
    };
    let rows = rows.to_vec();
    let deadline = lanes::deadline(arrived, w.config.deadline_ms, &headers);
    let (tx, rx) = oneshot::channel();
    lane.batcher
        .submit(ForecastJob { rows, arrived, deadline, reply: tx })
        .map_err(|b| ApiError::busy(&lane.batcher.model, b.retry_after_s))?;
    let p = match tokio::time::timeout_at(deadline.into(), rx).await {
        Err(_) | Ok(Ok(Err(JobError::Deadline))) => {
            return Err(ApiError::deadline(&lane.batcher.model));
        }
        Ok(Err(_)) => return Err(ApiError::server("the batcher stopped")),
        Ok(Ok(Err(JobError::Model(m)))) => return Err(ApiError::server(m)),
        Ok(Ok(Ok(p))) => p,
    };
    let target = lane.model.config().target;
    Ok(axum::Json(ForecastResponse {
        object: "forecast".into(),
        model: lane.batcher.model.clone(),
        created: now_s(),
        target: match target.kind {
            kairos_models::features::TargetKind::Return => "return".into(),
            kairos_models::features::TargetKind::Sign => "sign".into(),
        },
        horizon: target.horizon as u32,
        prediction: p,
        bars: req.bars.len() as u32,
    })
    .into_response())
}

/// Server-sent events from a generation: `first`, then what `map` makes of each token and of
/// the end, then `[DONE]`. A failure or a passed deadline sends an `error` object and ends the
/// stream without `[DONE]`, so no client mistakes a cut answer for a whole one. Dropping the
/// stream (the client went away) closes the channel, which stops the generation.
fn sse_stream(
    w: Arc<Worker>,
    rx: mpsc::UnboundedReceiver<GenEvent>,
    deadline: Instant,
    arrived: Instant,
    model: String,
    first: Vec<Event>,
    map: impl FnMut(StreamItem) -> Vec<Event> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    struct St<M> {
        w: Arc<Worker>,
        rx: mpsc::UnboundedReceiver<GenEvent>,
        deadline: Instant,
        arrived: Instant,
        model: String,
        pending: std::collections::VecDeque<Event>,
        finished: bool,
        map: M,
    }
    let st = St { w, rx, deadline, arrived, model, pending: first.into(), finished: false, map };
    futures_util::stream::unfold(st, |mut s| async move {
        loop {
            if let Some(e) = s.pending.pop_front() {
                return Some((Ok(e), s));
            }
            if s.finished {
                return None;
            }
            let error = match tokio::time::timeout_at(s.deadline.into(), s.rx.recv()).await {
                Err(_) => Some(ApiError::deadline(&s.model)),
                Ok(None) => Some(ApiError::server("the generator stopped mid-answer")),
                Ok(Some(GenEvent::Token(t))) => {
                    s.pending.extend((s.map)(StreamItem::Token(t)));
                    None
                }
                Ok(Some(GenEvent::Done(g))) => {
                    s.pending.extend((s.map)(StreamItem::End(g.clone())));
                    s.pending.push_back(Event::default().data("[DONE]"));
                    s.finished = true;
                    log_done(&s.model, &g, s.arrived);
                    s.w.metrics.observe(
                        "kairos_worker_e2e_request_latency_seconds",
                        labels(&[("route", "stream")]),
                        LATENCY_BUCKETS,
                        s.arrived.elapsed().as_secs_f64(),
                    );
                    None
                }
                Ok(Some(GenEvent::Failed(e))) => Some(gen_error(&s.model, e, "prompt")),
                Ok(Some(GenEvent::Started { .. })) => None,
            };
            if let Some(e) = error {
                tracing::warn!(model = %s.model, error = %e.message, "stream ended early");
                s.pending.push_back(json_event(&e.body()));
                s.finished = true;
            }
        }
    })
}
