//! Where requests wait for a model, and how they run.
//!
//! - [`Batcher`]: requests for a batched model (embeddings, forecasts) go into a bounded queue;
//!   one task takes the first, adds every other that is already waiting while the batch stays
//!   within its budget (tokens for embeddings, rows for forecasts), and runs them as one model
//!   call on a blocking thread. While a batch runs, the next one gathers, so batches grow with
//!   the load, as in text-embeddings-inference.
//! - [`Generator`]: a thread that owns the LLM (its KV cache makes generation one request at a
//!   time) and streams each request's tokens back through a channel; it stops a request whose
//!   deadline passed or whose client went away.
//!
//! A full queue is refused at once with a `Retry-After` estimate from the recent service time;
//! a request whose deadline passes while it waits is answered without running, and one whose
//! client went away (or whose deadline passed) gives its place in the queue up at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kairos_models::embed::TextEncoder;
use kairos_models::features::COUNT;
use kairos_models::forecast::Forecaster;
use kairos_models::llm::{ChatTurn, Gemma, GenerateOptions, Generation};
use tokio::sync::{mpsc, oneshot};

use super::Worker;
use super::metrics::{BATCH_BUCKETS, LATENCY_BUCKETS, labels};

/// Why a request could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    /// Seconds to wait before retrying.
    pub retry_after_s: u64,
}

/// Recent seconds of model time per request (an exponential average), for `Retry-After`.
#[derive(Debug, Default)]
struct ServiceTime(AtomicU64);

impl ServiceTime {
    fn record(&self, per_request: f64) {
        let old = f64::from_bits(self.0.load(Ordering::Relaxed));
        let new = if old == 0.0 { per_request } else { 0.8 * old + 0.2 * per_request };
        self.0.store(new.to_bits(), Ordering::Relaxed);
    }
    fn retry_after(&self, waiting: usize) -> u64 {
        let per = f64::from_bits(self.0.load(Ordering::Relaxed));
        ((waiting as f64 + 1.0) * per).ceil().clamp(1.0, 60.0) as u64
    }
}

/// Something that waits in a [`Queue`].
pub trait Waits: Send + 'static {
    /// Whether nobody wants its answer any more (its deadline passed or its client went away),
    /// so that it no longer holds a place.
    fn abandoned(&self, now: Instant) -> bool;
}

/// A bounded queue whose abandoned entries give their places up: a request cut by its deadline
/// or dropped by its client stops counting against the bound at once, not when the model gets
/// to it. Waits asynchronously (the batchers) or on a thread (the LLM).
struct Queue<J> {
    jobs: Mutex<std::collections::VecDeque<J>>,
    cap: usize,
    notify: tokio::sync::Notify,
    ready: std::sync::Condvar,
    worker: Arc<Worker>,
    labels: String,
    service: ServiceTime,
}

impl<J: Waits> Queue<J> {
    fn new(worker: Arc<Worker>, model: &str, cap: usize) -> Self {
        Self {
            jobs: Mutex::new(std::collections::VecDeque::new()),
            cap: cap.max(1),
            notify: tokio::sync::Notify::new(),
            ready: std::sync::Condvar::new(),
            worker,
            labels: labels(&[("model", model)]),
            service: ServiceTime::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<J>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes the waiting count (call with the lock held, so updates stay in order).
    fn gauge(&self, n: usize) {
        self.worker.metrics.set(
            "kairos_worker_num_requests_waiting",
            self.labels.clone(),
            n as f64,
        );
    }

    /// Queues `job`, or refuses it when the queue is full of live requests. The refused job is
    /// dropped, which closes its reply channel.
    fn push(&self, job: J) -> Result<(), Busy> {
        let mut q = self.lock();
        if q.len() >= self.cap {
            let now = Instant::now();
            let before = q.len();
            q.retain(|j| !j.abandoned(now));
            rejected(&self.worker, &self.labels, "abandoned", before - q.len());
        }
        if q.len() >= self.cap {
            rejected(&self.worker, &self.labels, "queue_full", 1);
            return Err(Busy { retry_after_s: self.service.retry_after(q.len()) });
        }
        q.push_back(job);
        self.gauge(q.len());
        drop(q);
        self.notify.notify_one();
        self.ready.notify_one();
        Ok(())
    }

    /// Takes up to `budget` worth of jobs (at least one), waiting for the first.
    async fn take(&self, budget: usize, cost: impl Fn(&J) -> usize) -> Vec<J> {
        loop {
            let notified = self.notify.notified();
            {
                let mut q = self.lock();
                let mut batch = Vec::new();
                let mut used = 0;
                while let Some(j) = q.front() {
                    let c = cost(j);
                    if !batch.is_empty() && used + c > budget {
                        break;
                    }
                    used += c;
                    batch.extend(q.pop_front());
                }
                if !batch.is_empty() {
                    self.gauge(q.len());
                    return batch;
                }
            }
            notified.await;
        }
    }

    /// Takes the next job, blocking the thread until there is one.
    fn take_blocking(&self) -> J {
        let mut q = self.lock();
        loop {
            if let Some(j) = q.pop_front() {
                self.gauge(q.len());
                return j;
            }
            q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Counts `n` requests refused for `reason` (`queue_full`, `deadline`, `abandoned`) under the
/// model's labels `l`.
fn rejected(worker: &Worker, l: &str, reason: &str, n: usize) {
    if n > 0 {
        let l = format!("{l},reason=\"{reason}\"");
        worker.metrics.add("kairos_worker_rejected_total", l, n as f64);
    }
}

/// A request for a batched model.
pub trait Job: Waits {
    /// What it adds to a batch's budget.
    fn cost(&self) -> usize;
    /// When its answer is no longer wanted.
    fn deadline(&self) -> Instant;
    /// When it arrived.
    fn arrived(&self) -> Instant;
    /// Answers it without running: its deadline passed in the queue.
    fn expire(self);
}

/// A queue in front of a batched model.
pub struct Batcher<J: Job> {
    queue: Arc<Queue<J>>,
    /// The model's name.
    pub model: String,
    /// Most inputs a request may carry.
    pub max_inputs: usize,
}

impl<J: Job> std::fmt::Debug for Batcher<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("model", &self.model).finish_non_exhaustive()
    }
}

impl<J: Job> Batcher<J> {
    /// Starts the batching task; `run` computes one batch (on a blocking thread) and answers
    /// every job in it.
    pub fn start(
        worker: Arc<Worker>,
        model: String,
        queue: usize,
        budget: usize,
        max_inputs: usize,
        rt: &tokio::runtime::Handle,
        run: impl Fn(Vec<J>) + Send + Sync + 'static,
    ) -> Self {
        let q = Arc::new(Queue::new(worker.clone(), &model, queue));
        let run = Arc::new(run);
        let task_q = q.clone();
        rt.spawn(async move {
            let q = task_q;
            let l = q.labels.clone();
            loop {
                let batch = q.take(budget, J::cost).await;
                let now = Instant::now();
                let (live, late): (Vec<J>, Vec<J>) =
                    batch.into_iter().partition(|j| j.deadline() > now);
                rejected(&worker, &l, "deadline", late.len());
                for j in late {
                    j.expire();
                }
                if live.is_empty() {
                    continue;
                }
                let m = &worker.metrics;
                m.set("kairos_worker_num_requests_running", l.clone(), live.len() as f64);
                let cost: usize = live.iter().map(J::cost).sum();
                for j in &live {
                    let w = now.duration_since(j.arrived()).as_secs_f64();
                    m.observe("kairos_worker_queue_time_seconds", l.clone(), LATENCY_BUCKETS, w);
                }
                m.observe("kairos_worker_batch_size", l.clone(), BATCH_BUCKETS, live.len() as f64);
                m.observe("kairos_worker_batch_inputs", l.clone(), BATCH_BUCKETS, cost as f64);
                let n = live.len();
                let run = run.clone();
                let t0 = Instant::now();
                let _ = tokio::task::spawn_blocking(move || run(live)).await;
                q.service.record(t0.elapsed().as_secs_f64() / n as f64);
                m.set("kairos_worker_num_requests_running", l.clone(), 0.0);
            }
        });
        Self { queue: q, model, max_inputs }
    }

    /// Queues `job`, or refuses it when the queue is full.
    pub fn submit(&self, job: J) -> Result<(), Busy> {
        self.queue.push(job)
    }
}

/// An embedding request.
pub struct EmbedJob {
    /// The texts.
    pub texts: Vec<String>,
    /// Their tokens, all together.
    pub tokens: usize,
    /// Arrival.
    pub arrived: Instant,
    /// Deadline.
    pub deadline: Instant,
    /// Where the vectors go.
    pub reply: oneshot::Sender<Result<Vec<Vec<f32>>, JobError>>,
}

/// Why a queued job did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Its deadline passed before it ran.
    Deadline,
    /// The model failed.
    Model(String),
}

impl Waits for EmbedJob {
    fn abandoned(&self, now: Instant) -> bool {
        self.deadline <= now || self.reply.is_closed()
    }
}

impl Job for EmbedJob {
    fn cost(&self) -> usize {
        self.tokens
    }
    fn deadline(&self) -> Instant {
        self.deadline
    }
    fn arrived(&self) -> Instant {
        self.arrived
    }
    fn expire(self) {
        let _ = self.reply.send(Err(JobError::Deadline));
    }
}

/// The embedding model and its queue.
pub struct EmbedLane {
    /// The queue.
    pub batcher: Batcher<EmbedJob>,
    /// The model (the handlers count tokens with its tokenizer).
    pub encoder: Arc<TextEncoder>,
}

/// Starts the embedding lane.
pub fn embed_batcher(
    worker: Arc<Worker>,
    name: String,
    encoder: Arc<TextEncoder>,
    s: &super::ModelSection,
    rt: &tokio::runtime::Handle,
) -> EmbedLane {
    let enc = encoder.clone();
    let batcher = Batcher::start(
        worker,
        name,
        s.queue,
        s.max_batch,
        s.max_inputs,
        rt,
        move |jobs: Vec<EmbedJob>| {
            let all: Vec<&str> =
                jobs.iter().flat_map(|j| j.texts.iter().map(String::as_str)).collect();
            match enc.embed(&all) {
                Ok(vectors) => {
                    let mut it = vectors.into_iter();
                    for j in jobs {
                        let mine: Vec<Vec<f32>> = it.by_ref().take(j.texts.len()).collect();
                        let _ = j.reply.send(Ok(mine));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for j in jobs {
                        let _ = j.reply.send(Err(JobError::Model(msg.clone())));
                    }
                }
            }
        },
    );
    EmbedLane { batcher, encoder }
}

/// A forecast request: one window of standardised rows.
pub struct ForecastJob {
    /// The window, oldest row first.
    pub rows: Vec<[f32; COUNT]>,
    /// Arrival.
    pub arrived: Instant,
    /// Deadline.
    pub deadline: Instant,
    /// Where the prediction goes.
    pub reply: oneshot::Sender<Result<f64, JobError>>,
}

impl Waits for ForecastJob {
    fn abandoned(&self, now: Instant) -> bool {
        self.deadline <= now || self.reply.is_closed()
    }
}

impl Job for ForecastJob {
    fn cost(&self) -> usize {
        1
    }
    fn deadline(&self) -> Instant {
        self.deadline
    }
    fn arrived(&self) -> Instant {
        self.arrived
    }
    fn expire(self) {
        let _ = self.reply.send(Err(JobError::Deadline));
    }
}

/// The forecaster and its queue.
pub struct ForecastLane {
    /// The queue.
    pub batcher: Batcher<ForecastJob>,
    /// The model (the handlers compute the features).
    pub model: Arc<Forecaster>,
}

/// Starts the forecast lane: on the CPU each window runs on the plain-Rust path; on a GPU the
/// batch runs as one `[batch, window, features]` tensor.
pub fn forecast_batcher(
    worker: Arc<Worker>,
    name: String,
    model: Arc<Forecaster>,
    s: &super::ModelSection,
    rt: &tokio::runtime::Handle,
) -> ForecastLane {
    let m = model.clone();
    let batcher =
        Batcher::start(worker, name, s.queue, s.max_batch, 1, rt, move |jobs: Vec<ForecastJob>| {
            if m.device().is_cpu() {
                for j in jobs {
                    let p = m.predict_window(&j.rows);
                    let _ = j.reply.send(Ok(p));
                }
                return;
            }
            let flat: Vec<f32> =
                jobs.iter().flat_map(|j| j.rows.iter().flatten().copied()).collect();
            let out = m.predict_windows(flat, jobs.len());
            match out {
                Ok(p) => {
                    for (j, p) in jobs.into_iter().zip(p) {
                        let _ = j.reply.send(Ok(p));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for j in jobs {
                        let _ = j.reply.send(Err(JobError::Model(msg.clone())));
                    }
                }
            }
        });
    ForecastLane { batcher, model }
}

/// What a generation request asks for.
#[derive(Debug, Clone)]
pub enum PromptSpec {
    /// Plain text (a completion).
    Text(String),
    /// Token ids (a completion).
    Tokens(Vec<u32>),
    /// A conversation, as (role, text).
    Chat(Vec<(String, String)>),
}

/// A generated token as the handlers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenOut {
    /// The text it completes (may be empty mid-character).
    pub text: String,
    /// The token's own text and bytes (with `logprobs`).
    pub token: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its log-probability (with `logprobs`).
    pub logprob: Option<f32>,
    /// Alternatives: text, bytes, log-probability.
    pub top: Vec<(String, Vec<u8>, f32)>,
}

/// What the generator thread reports for a request.
#[derive(Debug, Clone)]
pub enum GenEvent {
    /// The prompt was read: its token count.
    Started {
        /// Prompt tokens.
        prompt_tokens: usize,
    },
    /// A new token.
    Token(TokenOut),
    /// The end.
    Done(Generation),
    /// It failed.
    Failed(GenError),
}

/// Why a generation failed.
#[derive(Debug, Clone, PartialEq)]
pub enum GenError {
    /// Prompt and answer would not fit the context.
    ContextLength {
        /// Prompt tokens.
        prompt: usize,
        /// Tokens asked for.
        asked: usize,
        /// The limit.
        limit: usize,
    },
    /// The request is malformed (a role, a token id).
    Invalid(String),
    /// The deadline passed (queued or while generating).
    Deadline,
    /// The model failed.
    Model(String),
}

/// A generation request.
pub struct GenJob {
    /// The prompt.
    pub prompt: PromptSpec,
    /// How to generate (`max_tokens` None: the model's default).
    pub opts: GenerateOptions,
    /// Whether `max_tokens` was given (otherwise the section's default, capped by the context).
    pub max_tokens_given: bool,
    /// Alternatives per token.
    pub top_logprobs: usize,
    /// Arrival.
    pub arrived: Instant,
    /// Deadline.
    pub deadline: Instant,
    /// Where events go; a closed channel stops the request.
    pub events: mpsc::UnboundedSender<GenEvent>,
}

impl Waits for GenJob {
    fn abandoned(&self, now: Instant) -> bool {
        self.deadline <= now || self.events.is_closed()
    }
}

/// The LLM's thread and queue.
pub struct Generator {
    queue: Arc<Queue<GenJob>>,
    /// The model's name.
    pub model: String,
    /// Its section (limits).
    pub context_tokens: usize,
    /// New tokens when a chat request does not say.
    pub default_max_tokens: usize,
    _thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator").field("model", &self.model).finish_non_exhaustive()
    }
}

impl Generator {
    /// Starts the generation thread.
    pub fn start(
        worker: Arc<Worker>,
        model: String,
        mut gemma: Gemma,
        s: &super::ModelSection,
    ) -> anyhow::Result<Self> {
        let q = Arc::new(Queue::new(worker.clone(), &model, s.queue));
        let (thread_q, limit) = (q.clone(), s.context_tokens);
        let thread = std::thread::Builder::new().name("kairos-llm".into()).spawn(move || {
            let q = thread_q;
            let l = q.labels.clone();
            loop {
                let job = q.take_blocking();
                let m = &worker.metrics;
                m.set("kairos_worker_num_requests_running", l.clone(), 1.0);
                let t0 = Instant::now();
                run_one(&worker, &l, &mut gemma, job, limit);
                q.service.record(t0.elapsed().as_secs_f64());
                m.set("kairos_worker_num_requests_running", l.clone(), 0.0);
            }
        })?;
        Ok(Self {
            queue: q,
            model,
            context_tokens: s.context_tokens,
            default_max_tokens: s.default_max_tokens,
            _thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Queues `job`, or refuses it when the queue is full.
    pub fn submit(&self, job: GenJob) -> Result<(), Busy> {
        self.queue.push(job)
    }
}

fn run_one(worker: &Worker, l: &str, gemma: &mut Gemma, mut job: GenJob, limit: usize) {
    let m = &worker.metrics;
    let now = Instant::now();
    m.observe(
        "kairos_worker_queue_time_seconds",
        l.to_string(),
        LATENCY_BUCKETS,
        now.duration_since(job.arrived).as_secs_f64(),
    );
    let events = job.events.clone();
    let fail = |e: GenError| {
        let _ = events.send(GenEvent::Failed(e));
    };
    if job.deadline <= now {
        rejected(worker, l, "deadline", 1);
        return fail(GenError::Deadline);
    }
    if events.is_closed() {
        rejected(worker, l, "abandoned", 1);
        return;
    }
    let ids = match &job.prompt {
        PromptSpec::Text(t) => gemma.prompt_tokens(t, false),
        PromptSpec::Tokens(ids) => ids.clone(),
        PromptSpec::Chat(turns) => {
            let t: Vec<ChatTurn<'_>> =
                turns.iter().map(|(r, c)| ChatTurn { role: r, content: c }).collect();
            match gemma.chat_tokens(&t) {
                Ok(ids) => ids,
                Err(e) => return fail(GenError::Invalid(e.to_string())),
            }
        }
    };
    let vocab = gemma.tokenizer().len();
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
        return fail(GenError::Invalid(format!(
            "token id {bad} is outside the vocabulary of {vocab}"
        )));
    }
    if ids.is_empty() {
        return fail(GenError::Invalid("the prompt is empty".into()));
    }
    if !job.max_tokens_given {
        job.opts.max_tokens = job.opts.max_tokens.min(limit.saturating_sub(ids.len()).max(1));
    }
    if ids.len() + job.opts.max_tokens > limit {
        return fail(GenError::ContextLength {
            prompt: ids.len(),
            asked: job.opts.max_tokens,
            limit,
        });
    }
    let _ = events.send(GenEvent::Started { prompt_tokens: ids.len() });
    m.add("kairos_worker_prompt_tokens_total", l.to_string(), ids.len() as f64);
    let deadline = job.deadline;
    let arrived = job.arrived;
    let want = job.top_logprobs > 0 || job.opts.logprobs;
    let mut first = true;
    let mut late = false;
    let tok = gemma.tokenizer().clone();
    let piece = |id: u32| {
        let mut b = Vec::new();
        tok.bytes(id, &mut b);
        (String::from_utf8_lossy(&b).into_owned(), b)
    };
    let result = gemma.generate_from(&ids, &job.opts, job.top_logprobs, |step| {
        if first {
            first = false;
            m.observe(
                "kairos_worker_time_to_first_token_seconds",
                l.to_string(),
                LATENCY_BUCKETS,
                arrived.elapsed().as_secs_f64(),
            );
        }
        let (token, bytes) = if want { piece(step.id) } else { (String::new(), Vec::new()) };
        let top = step.top.iter().map(|&(id, lp)| {
            let (t, b) = piece(id);
            (t, b, lp)
        });
        let out = TokenOut {
            text: step.text.to_string(),
            token,
            bytes,
            logprob: step.logprob,
            top: top.collect(),
        };
        if events.send(GenEvent::Token(out)).is_err() {
            return false;
        }
        if Instant::now() >= deadline {
            late = true;
            return false;
        }
        true
    });
    match result {
        Ok(g) => {
            m.add("kairos_worker_generation_tokens_total", l.to_string(), g.tokens as f64);
            if late {
                fail(GenError::Deadline);
            } else {
                let _ = events.send(GenEvent::Done(g));
            }
        }
        Err(e) => fail(GenError::Model(e.to_string())),
    }
}

/// The deadline of a request that arrived at `arrived`: the config's, lowered by what the
/// caller asks for (`x-kairos-deadline-ms`, or the OpenAI client's `x-stainless-timeout` in
/// seconds).
pub fn deadline(arrived: Instant, config_ms: u64, headers: &axum::http::HeaderMap) -> Instant {
    let ms = caller_deadline_ms(headers).map_or(config_ms as f64, |c| c.min(config_ms as f64));
    arrived + Duration::from_micros((ms * 1000.0) as u64)
}

/// The caller's own deadline in ms, the lower of `x-kairos-deadline-ms` and the OpenAI
/// clients' `x-stainless-timeout` (seconds); garbage, zero and negative values are ignored.
pub fn caller_deadline_ms(headers: &axum::http::HeaderMap) -> Option<f64> {
    let read = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let ms = read("x-kairos-deadline-ms");
    let stainless = read("x-stainless-timeout").map(|s| s * 1000.0);
    match (ms, stainless) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
