//! Who answers a strategy's model asks ([`Context::ask`](kairos_strategies::Context::ask)):
//! in backtests, local models or answers recorded live, each delayed by a modelled inference
//! latency; on paper and live, the [router](crate::router), with every answer recorded so a
//! backtest can replay it.
//!
//! - [`Latency`]: none, fixed, log-normal, drawn from latencies recorded live, or each recorded
//!   answer's own latency. Draws come from a seeded ChaCha, so a backtest repeats.
//! - [`Answers`]: where a backtest's answers come from: a [`Recording`] (matched by model and
//!   input), then [`LocalModels`] (a forecaster, a sentence encoder, a Gemma GGUF, each under
//!   the name the strategy asks for).
//! - [`Simulated`]: the engine's [`Models`] service for a backtest; [`AskStats`] says what
//!   happened (answered, failed, latencies).
//! - [`Live`]: the engine's service for paper and live sessions: each ask goes to the router
//!   on the tokio runtime, its answer is checked and typed, written to the recording, and sent
//!   back to the session's loop.
//!
//! The recording is JSON lines, one answered ask per line ([`Recorded`]).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kairos_engine::{Answering, Models};
use kairos_strategies::{
    ModelAnswer, ModelAsk, ModelFailure, ModelInput, ModelOutput, ModelReply, Timestamp,
};
use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::embed::TextEncoder;
use crate::forecast::{ForecastStream, Forecaster};
use crate::llm::{ChatTurn, Gemma, GenerateOptions};

// ---- latency ----------------------------------------------------------------------------

/// How long an answer takes to arrive in a backtest.
#[derive(Debug, Clone, PartialEq)]
pub enum Latency {
    /// At once: the answer is there in the hook that asked (a model that costs nothing).
    Zero,
    /// Always this many nanoseconds.
    Fixed(i64),
    /// Log-normal with this median (ns) and shape `sigma` (the standard deviation of the log):
    /// the usual shape of network and inference latency, with its long right tail.
    LogNormal {
        /// The median, ns.
        median: i64,
        /// The log's standard deviation.
        sigma: f64,
    },
    /// Drawn uniformly from these latencies (ns): the latencies recorded live.
    Empirical(Vec<i64>),
    /// Each recorded answer's own latency (answers replayed from a [`Recording`]); asks
    /// answered otherwise arrive at once.
    Recorded,
}

/// Parses `250ms`, `1.5s`, `800us`, `40ns` (a bare number is milliseconds) into ns.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix("ns") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e9)
    } else {
        (s, 1e6)
    };
    let v: f64 =
        num.trim().parse().map_err(|_| format!("`{s}` is not a duration (250ms, 1.5s, 800us)"))?;
    if !(v.is_finite() && v >= 0.0 && v * scale < 1e15) {
        return Err(format!("`{s}` is not a duration between 0 and 11 days"));
    }
    Ok((v * scale).round() as i64)
}

impl Latency {
    /// Parses a latency spec:
    /// - `0` or `none`: at once;
    /// - `250ms` or `fixed:250ms`: always that;
    /// - `lognormal:median=250ms,sigma=0.5`;
    /// - `empirical:FILE`: drawn from the latencies in FILE, a recording of answers (JSON
    ///   lines with `latency_ns`) or one latency per line (`250ms`, or a bare number of ms);
    /// - `recorded`: each recorded answer's own latency (with a recording of answers).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        match spec {
            "0" | "none" | "zero" => return Ok(Latency::Zero),
            "recorded" => return Ok(Latency::Recorded),
            _ => {}
        }
        if let Some(rest) = spec.strip_prefix("lognormal:") {
            let (mut median, mut sigma) = (None, None);
            for part in rest.split(',') {
                let (k, v) = part.split_once('=').ok_or_else(|| {
                    format!("lognormal: `{part}` is not key=value (median=250ms,sigma=0.5)")
                })?;
                match k.trim() {
                    "median" => median = Some(parse_duration(v)?),
                    "sigma" => {
                        let s: f64 = v
                            .trim()
                            .parse()
                            .map_err(|_| format!("lognormal: sigma `{v}` is not a number"))?;
                        if !(s.is_finite() && (0.0..=5.0).contains(&s)) {
                            return Err(format!("lognormal: sigma {s} is outside [0, 5]"));
                        }
                        sigma = Some(s);
                    }
                    other => {
                        return Err(format!("lognormal: unknown key `{other}` (median and sigma)"));
                    }
                }
            }
            let median = median.ok_or("lognormal: median is missing (median=250ms,sigma=0.5)")?;
            let sigma = sigma.ok_or("lognormal: sigma is missing (median=250ms,sigma=0.5)")?;
            return Ok(Latency::LogNormal { median, sigma });
        }
        if let Some(file) = spec.strip_prefix("empirical:") {
            return Self::empirical(Path::new(file));
        }
        let d = spec.strip_prefix("fixed:").unwrap_or(spec);
        let ns = parse_duration(d).map_err(|e| {
            format!(
                "{e}; a latency is 0, 250ms, fixed:250ms, lognormal:median=250ms,sigma=0.5, \
                 empirical:FILE or recorded"
            )
        })?;
        Ok(if ns == 0 { Latency::Zero } else { Latency::Fixed(ns) })
    }

    /// The latencies in `path`: a recording of answers, or one duration per line.
    pub fn empirical(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("latencies {}: {e}", path.display()))?;
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let ns = if line.starts_with('{') {
                let r: Recorded = serde_json::from_str(line)
                    .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
                r.latency_ns
            } else {
                parse_duration(line)
                    .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?
            };
            if ns < 0 {
                return Err(format!("{} line {}: a negative latency", path.display(), i + 1));
            }
            v.push(ns);
        }
        if v.is_empty() {
            return Err(format!("latencies {}: no latency in the file", path.display()));
        }
        Ok(Latency::Empirical(v))
    }

    /// Whether every answer arrives at once.
    pub fn is_zero(&self) -> bool {
        matches!(self, Latency::Zero | Latency::Fixed(0))
    }

    /// A latency, ns; `recorded` is the answer's recorded one where there is one.
    pub fn draw(&self, rng: &mut ChaCha8Rng, recorded: Option<i64>) -> i64 {
        match self {
            Latency::Zero => 0,
            Latency::Fixed(ns) => *ns,
            Latency::LogNormal { median, sigma } => {
                // Box-Muller: one standard normal from two uniforms in (0, 1].
                let u1: f64 = 1.0 - rng.random::<f64>();
                let u2: f64 = rng.random::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let v = *median as f64 * (sigma * z).exp();
                v.clamp(0.0, 1e15).round() as i64
            }
            Latency::Empirical(v) => v[rng.random_range(0..v.len())],
            Latency::Recorded => recorded.unwrap_or(0),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |ns: i64| ns as f64 / 1e6;
        match self {
            Latency::Zero => f.write_str("none"),
            Latency::Fixed(ns) => write!(f, "fixed {} ms", ms(*ns)),
            Latency::LogNormal { median, sigma } => {
                write!(f, "log-normal, median {} ms, sigma {sigma}", ms(*median))
            }
            Latency::Empirical(v) => write!(f, "drawn from {} recorded latencies", v.len()),
            Latency::Recorded => f.write_str("as recorded"),
        }
    }
}

// ---- recordings ---------------------------------------------------------------------------

/// One answered ask, as a live session records it (one JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// When it was asked, ns since the epoch (the session's event time).
    pub asked_at_ns: i64,
    /// The model asked for.
    pub model: String,
    /// `chat`, `completion`, `embed` or `forecast`.
    pub kind: String,
    /// [`digest`] of the model and the input: how a backtest finds the answer to its ask.
    pub digest: String,
    /// The ask's tag.
    pub tag: u64,
    /// How long the answer took, ns.
    pub latency_ns: i64,
    /// The answer, or `None` with `error`.
    pub output: Option<ModelOutput>,
    /// The endpoint and model that answered.
    #[serde(default)]
    pub endpoint: String,
    /// The model that answered, as it named itself.
    #[serde(default)]
    pub answered_by: String,
    /// Why no answer came.
    #[serde(default)]
    pub error: Option<String>,
}

/// The key of an ask in a recording: SHA-256 of the model name and the input (JSON), hex.
pub fn digest(model: &str, input: &ModelInput) -> String {
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    h.update([0]);
    // Serialising plain data cannot fail.
    h.update(serde_json::to_vec(input).unwrap_or_default());
    let d = h.finalize();
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Answers recorded live, by [`digest`]; an input asked several times gets its answers in the
/// order they were recorded.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    by_digest: HashMap<String, Vec<Recorded>>,
    len: usize,
}

impl Recording {
    /// Reads a recording; a line that does not parse is an error naming it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("model answers {}: {e}", path.display()))?;
        let mut r = Recording::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |e: String| format!("model answers {} line {}: {e}", path.display(), i + 1);
            let rec: Recorded = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            if rec.latency_ns < 0 {
                return Err(bad(format!("latency_ns {} is negative", rec.latency_ns)));
            }
            if rec.output.is_none() && rec.error.is_none() {
                return Err(bad("neither an output nor an error".into()));
            }
            if let Some(ModelOutput::Forecast(p)) = &rec.output
                && !p.is_finite()
            {
                return Err(bad(format!("forecast {p} is not a number")));
            }
            r.by_digest.entry(rec.digest.clone()).or_default().push(rec);
            r.len += 1;
        }
        Ok(r)
    }

    /// Answered asks in the recording.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every recorded latency, ns.
    pub fn latencies(&self) -> Vec<i64> {
        self.by_digest.values().flatten().map(|r| r.latency_ns).collect()
    }
}

/// Appends answered asks to a recording, one flushed line each (a crash loses at most the
/// line being written, and a torn last line is the only one a reader can trip on).
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    file: std::fs::File,
}

impl Recorder {
    /// Opens `path` for appending (creating it).
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("model answers {}: {e}", path.display()))?;
        Ok(Self { path: path.to_path_buf(), file })
    }

    /// Writes one answer of `ask`.
    pub fn write(&mut self, ask: &ModelAsk, answer: &ModelAnswer) -> Result<(), String> {
        let (output, endpoint, answered_by, error) = match &answer.result {
            Ok(r) => (Some(r.output.clone()), r.endpoint.clone(), r.model.clone(), None),
            Err(f) => (None, String::new(), String::new(), Some(f.reason.clone())),
        };
        let rec = Recorded {
            asked_at_ns: ask.at.0,
            model: ask.model.clone(),
            kind: ask.input.kind().into(),
            digest: digest(&ask.model, &ask.input),
            tag: ask.tag,
            latency_ns: answer.latency_ns().max(0),
            output,
            endpoint,
            answered_by,
            error,
        };
        let mut line = serde_json::to_vec(&rec).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .map_err(|e| format!("model answers {}: {e}", self.path.display()))
    }
}

// ---- local models -------------------------------------------------------------------------

enum Local {
    Forecaster(Arc<Forecaster>),
    Encoder(Arc<TextEncoder>),
    Llm(Arc<Mutex<Gemma>>),
}

/// In-process models under the names strategies ask for.
#[derive(Default)]
pub struct LocalModels {
    models: HashMap<String, (Local, String)>,
}

impl std::fmt::Debug for LocalModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModels").field("names", &self.names()).finish()
    }
}

impl LocalModels {
    /// No models.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads `path` (through the process-wide [cache](crate::cache)) under `name`: a `.gguf`
    /// file is a Gemma for chat and completions, a folder with `tokenizer.json` a sentence
    /// encoder, any other folder a forecaster from `kairos train`.
    pub fn load(&mut self, name: &str, path: &Path, device: &str) -> crate::Result<()> {
        let cache = crate::cache::global();
        let label =
            path.file_name().map_or_else(|| name.to_string(), |s| s.to_string_lossy().into_owned());
        let local = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
            Local::Llm(cache.gemma(path, device)?)
        } else if path.join("tokenizer.json").is_file() {
            Local::Encoder(cache.text_encoder(path, device)?)
        } else {
            Local::Forecaster(cache.forecaster(path, device)?)
        };
        self.models.insert(name.to_string(), (local, label));
        Ok(())
    }

    /// Adds a loaded forecaster under `name`.
    pub fn add_forecaster(&mut self, name: &str, model: Arc<Forecaster>) {
        self.models.insert(name.to_string(), (Local::Forecaster(model), name.to_string()));
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.models.keys().cloned().collect();
        v.sort();
        v
    }

    /// Answers `ask` with the model of its name (greedy decoding unless it asks otherwise).
    pub fn answer(&self, ask: &ModelAsk) -> Option<Result<ModelReply, String>> {
        let (local, label) = self.models.get(&ask.model)?;
        let reply = |output| ModelReply { output, endpoint: "local".into(), model: label.clone() };
        Some(match (local, &ask.input) {
            (Local::Forecaster(m), ModelInput::Forecast { bars }) => {
                forecast(m, bars).map(|p| reply(ModelOutput::Forecast(p)))
            }
            (Local::Encoder(e), ModelInput::Embed { texts }) => {
                e.embed(texts).map(|v| reply(ModelOutput::Embeddings(v))).map_err(|e| e.to_string())
            }
            (Local::Llm(g), ModelInput::Chat { messages, max_tokens, temperature }) => {
                let mut g = g.lock().unwrap_or_else(|p| p.into_inner());
                let turns: Vec<ChatTurn<'_>> = messages
                    .iter()
                    .map(|m| ChatTurn { role: m.role.as_str(), content: &m.content })
                    .collect();
                let opts = options(*max_tokens, *temperature, ask.id.0);
                g.chat_tokens(&turns)
                    .and_then(|ids| g.generate_from(&ids, &opts, 0, |_| true))
                    .map(|out| reply(ModelOutput::Text(out.text)))
                    .map_err(|e| e.to_string())
            }
            (Local::Llm(g), ModelInput::Completion { prompt, max_tokens, temperature }) => {
                let mut g = g.lock().unwrap_or_else(|p| p.into_inner());
                let opts = options(*max_tokens, *temperature, ask.id.0);
                g.generate(prompt, &opts, |_| {})
                    .map(|out| reply(ModelOutput::Text(out.text)))
                    .map_err(|e| e.to_string())
            }
            (l, input) => Err(format!(
                "`{}` is a {} and cannot answer a {} ask",
                ask.model,
                match l {
                    Local::Forecaster(_) => "forecaster",
                    Local::Encoder(_) => "sentence encoder",
                    Local::Llm(_) => "language model",
                },
                input.kind()
            )),
        })
    }
}

fn options(max_tokens: u32, temperature: f32, seed: u64) -> GenerateOptions {
    GenerateOptions {
        max_tokens: max_tokens as usize,
        temperature: f64::from(temperature),
        seed,
        ..GenerateOptions::default()
    }
}

/// The forecast at the last of `bars`, as the worker's `/v1/forecast` makes it.
fn forecast(m: &Arc<Forecaster>, bars: &[kairos_strategies::Bar]) -> Result<f64, String> {
    let mut stream = ForecastStream::new(m.clone());
    for b in bars {
        stream.push(b);
    }
    let need = crate::features::WARMUP + m.window();
    let rows = stream
        .window_rows()
        .ok_or_else(|| format!("{} bars given; the model needs at least {need}", bars.len()))?;
    let p = m.predict_window(rows);
    if p.is_finite() { Ok(p) } else { Err(format!("the model predicted {p}")) }
}

// ---- the backtest's service ---------------------------------------------------------------

/// Where a backtest's answers come from: the recording first (an ask whose model and input
/// were recorded live gets that answer), then the local models.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// Answers recorded live.
    pub recording: Option<Arc<Recording>>,
    /// In-process models.
    pub local: Option<Arc<LocalModels>>,
}

/// What a backtest's asks came to.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AskStats {
    /// Asks made.
    pub asked: u64,
    /// Asks answered from the recording.
    pub from_recording: u64,
    /// Asks answered by a local model.
    pub from_local: u64,
    /// Asks answered from the recording with an answer already given (the input was asked
    /// more often than it was recorded: the last recorded answer is given again).
    pub recording_reused: u64,
    /// Asks that got a failure (no such model, a refused input, a recorded error).
    pub failed: u64,
    /// Asks whose answer was due after the run's last event.
    pub unanswered: u64,
    /// The latency each answer was given, ns, in ask order.
    pub latencies_ns: Vec<i64>,
    /// The first failure's reason.
    pub first_failure: Option<String>,
}

impl AskStats {
    /// The `q`-quantile of the latencies (nearest rank), ms.
    pub fn latency_ms(&self, q: f64) -> Option<f64> {
        if self.latencies_ns.is_empty() {
            return None;
        }
        let mut v = self.latencies_ns.clone();
        v.sort_unstable();
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        Some(v[i] as f64 / 1e6)
    }

    /// The mean latency, ms.
    pub fn mean_ms(&self) -> Option<f64> {
        let n = self.latencies_ns.len();
        (n > 0).then(|| self.latencies_ns.iter().map(|&x| x as f64).sum::<f64>() / n as f64 / 1e6)
    }
}

/// A backtest's [`Models`] service: answers from [`Answers`], delayed by [`Latency`].
#[derive(Debug)]
pub struct Simulated {
    answers: Answers,
    used: HashMap<String, usize>,
    latency: Latency,
    rng: ChaCha8Rng,
    stats: Arc<Mutex<AskStats>>,
}

impl Simulated {
    /// A service; `seed` seeds the latency draws. Read what happened from [`Simulated::stats`].
    pub fn new(answers: Answers, latency: Latency, seed: u64) -> Self {
        Self {
            answers,
            used: HashMap::new(),
            latency,
            rng: ChaCha8Rng::seed_from_u64(seed),
            stats: Arc::default(),
        }
    }

    /// The run's figures (shared: read them after the run).
    pub fn stats(&self) -> Arc<Mutex<AskStats>> {
        self.stats.clone()
    }

    /// The recorded answer to `ask`, and whether it was given before.
    fn recorded(&mut self, ask: &ModelAsk) -> Option<(Recorded, bool)> {
        let rec = self.answers.recording.as_ref()?;
        let d = digest(&ask.model, &ask.input);
        let list = rec.by_digest.get(&d)?;
        let n = self.used.entry(d).or_insert(0);
        // Asked more often than recorded: the last recorded answer again.
        let reused = *n >= list.len();
        let r = list.get(*n).or_else(|| list.last())?.clone();
        *n += 1;
        Some((r, reused))
    }
}

impl Models for Simulated {
    fn ask(&mut self, ask: ModelAsk) -> Answering {
        let stats = self.stats.clone();
        let mut stats = stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.asked += 1;
        let (result, recorded_latency) = if let Some((r, reused)) = self.recorded(&ask) {
            stats.from_recording += 1;
            stats.recording_reused += u64::from(reused);
            let result = match (r.output, r.error) {
                (Some(output), _) => {
                    Ok(ModelReply { output, endpoint: "recorded".into(), model: r.answered_by })
                }
                (None, e) => Err(e.unwrap_or_default()),
            };
            (result, Some(r.latency_ns))
        } else if let Some(res) = self.answers.local.as_ref().and_then(|l| l.answer(&ask)) {
            stats.from_local += 1;
            (res, None)
        } else {
            let mut known: Vec<String> =
                self.answers.local.as_ref().map(|l| l.names()).unwrap_or_default();
            if self.answers.recording.is_some() {
                known.push("(the recording)".into());
            }
            let why = if known.is_empty() {
                format!(
                    "no model answers `{}` in this backtest: give it with --model {}=PATH, or \
                     recorded answers with --model-answers FILE",
                    ask.model, ask.model
                )
            } else {
                format!(
                    "no model answers `{}` in this backtest (it has {}); give it with --model \
                     {}=PATH",
                    ask.model,
                    known.join(", "),
                    ask.model
                )
            };
            (Err(why), None)
        };
        let latency = self.latency.draw(&mut self.rng, recorded_latency);
        stats.latencies_ns.push(latency);
        let result = result.map_err(|reason| {
            stats.failed += 1;
            if stats.first_failure.is_none() {
                stats.first_failure = Some(reason.clone());
            }
            ModelFailure { reason }
        });
        Answering::At(ask.answer(Timestamp(ask.at.0.saturating_add(latency)), result))
    }

    fn unanswered(&mut self, asks: usize) {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).unanswered += asks as u64;
    }
}

// ---- the live service ----------------------------------------------------------------------

/// The OpenAI-format request for `ask`, as the router takes it.
pub fn request(ask: &ModelAsk) -> crate::router::Request {
    use crate::router::Kind;
    let (kind, body) = match &ask.input {
        ModelInput::Chat { messages, max_tokens, temperature } => (
            Kind::Chat,
            json!({
                "model": ask.model,
                "messages": messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect::<Vec<_>>(),
                "max_tokens": max_tokens,
                "temperature": temperature,
            }),
        ),
        ModelInput::Completion { prompt, max_tokens, temperature } => (
            Kind::Completion,
            json!({"model": ask.model, "prompt": prompt, "max_tokens": max_tokens, "temperature": temperature}),
        ),
        ModelInput::Embed { texts } => {
            (Kind::Embedding, json!({"model": ask.model, "input": texts}))
        }
        ModelInput::Forecast { bars } => (
            Kind::Forecast,
            json!({
                "model": ask.model,
                "bars": bars.iter().map(|b| json!({
                    "ts": b.ts.0.div_euclid(1_000_000),
                    "open": b.open, "high": b.high, "low": b.low, "close": b.close, "volume": b.volume,
                })).collect::<Vec<_>>(),
            }),
        ),
    };
    crate::router::Request { kind, body, deadline: None }
}

/// The typed output of an OpenAI-format answer to `input`, or what is wrong with it.
pub fn output(input: &ModelInput, body: &Value) -> Result<ModelOutput, String> {
    let text = |field: &str| -> Result<ModelOutput, String> {
        let choice =
            body.get("choices").and_then(|c| c.get(0)).ok_or("the answer has no choices[0]")?;
        let t = match field {
            "message" => choice.get("message").and_then(|m| m.get("content")),
            _ => choice.get("text"),
        };
        t.and_then(Value::as_str)
            .map(|s| ModelOutput::Text(s.to_string()))
            .ok_or_else(|| format!("choices[0] has no {field} text"))
    };
    match input {
        ModelInput::Chat { .. } => text("message"),
        ModelInput::Completion { .. } => text("text"),
        ModelInput::Embed { texts } => {
            let data =
                body.get("data").and_then(Value::as_array).ok_or("the answer has no data")?;
            if data.len() != texts.len() {
                return Err(format!("{} embeddings for {} texts", data.len(), texts.len()));
            }
            let mut out = vec![Vec::new(); data.len()];
            let mut dim = None;
            for (i, d) in data.iter().enumerate() {
                let at = d.get("index").and_then(Value::as_u64).map_or(i, |x| x as usize);
                let v: Vec<f32> = d
                    .get("embedding")
                    .and_then(Value::as_array)
                    .ok_or_else(|| format!("data[{i}] has no float embedding"))?
                    .iter()
                    .map(|x| x.as_f64().map(|f| f as f32).filter(|f| f.is_finite()))
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("data[{i}]: an embedding value is not a number"))?;
                if v.is_empty() || *dim.get_or_insert(v.len()) != v.len() {
                    return Err(format!("data[{i}]: embeddings of different lengths"));
                }
                let slot = out.get_mut(at).ok_or_else(|| format!("data[{i}]: index {at}"))?;
                if !slot.is_empty() {
                    return Err(format!("data[{i}]: index {at} twice"));
                }
                *slot = v;
            }
            Ok(ModelOutput::Embeddings(out))
        }
        ModelInput::Forecast { .. } => body
            .get("prediction")
            .and_then(Value::as_f64)
            .filter(|p| p.is_finite())
            .map(ModelOutput::Forecast)
            .ok_or_else(|| "the answer has no finite prediction".into()),
    }
}

/// A paper or live session's [`Models`] service: each ask goes to the router on the tokio
/// runtime; its answer (or failure) is checked, typed, recorded, and sent on `answers`, which
/// the session's loop hands to [`Engine::answer`](kairos_engine::Engine::answer).
pub struct Live {
    router: Arc<crate::router::Router>,
    rt: tokio::runtime::Handle,
    answers: tokio::sync::mpsc::UnboundedSender<ModelAnswer>,
    recorder: Option<Arc<Mutex<Recorder>>>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    /// A service over `router`, spawning on `rt`, sending answers on `answers` and writing
    /// them to `recorder` when there is one.
    pub fn new(
        router: Arc<crate::router::Router>,
        rt: tokio::runtime::Handle,
        answers: tokio::sync::mpsc::UnboundedSender<ModelAnswer>,
        recorder: Option<Recorder>,
    ) -> Self {
        Self {
            router,
            rt,
            answers,
            recorder: recorder.map(|r| Arc::new(Mutex::new(r))),
            in_flight: Arc::default(),
        }
    }
}

/// The most asks a live session keeps in flight: one more fails at once (a strategy asking in
/// a loop cannot flood the router or the memory).
pub const MAX_IN_FLIGHT: usize = 1024;

impl Models for Live {
    fn ask(&mut self, ask: ModelAsk) -> Answering {
        use std::sync::atomic::Ordering::Relaxed;
        if self.in_flight.load(Relaxed) >= MAX_IN_FLIGHT {
            let reason = format!(
                "{MAX_IN_FLIGHT} asks are already waiting for answers; this one was not sent"
            );
            return Answering::At(ask.answer(ask.at, Err(ModelFailure { reason })));
        }
        let router = self.router.clone();
        let tx = self.answers.clone();
        let recorder = self.recorder.clone();
        let in_flight = self.in_flight.clone();
        in_flight.fetch_add(1, Relaxed);
        // The ask's time is the session's event time; the latency is measured on the wall
        // clock from now, and the answer is stamped with the ask's time plus it.
        let sent = std::time::Instant::now();
        self.rt.spawn(async move {
            let result = match router.call(request(&ask)).await {
                Ok(a) => output(&ask.input, &a.body)
                    .map(|output| ModelReply { output, endpoint: a.endpoint, model: a.model })
                    .map_err(|e| ModelFailure { reason: format!("a malformed answer: {e}") }),
                Err(e) => Err(ModelFailure { reason: e.to_string() }),
            };
            let took = i64::try_from(sent.elapsed().as_nanos()).unwrap_or(i64::MAX);
            let at = Timestamp(ask.at.0.saturating_add(took));
            let answer = ask.answer(at, result);
            if let Some(r) = &recorder {
                let mut r = r.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = r.write(&ask, &answer) {
                    tracing::warn!("could not record a model answer: {e}");
                }
            }
            in_flight.fetch_sub(1, Relaxed);
            let _ = tx.send(answer);
        });
        Answering::Later
    }

    fn unanswered(&mut self, asks: usize) {
        let n = self.in_flight.load(std::sync::atomic::Ordering::Relaxed) + asks;
        if n > 0 {
            tracing::info!(asks = n, "the session ended with model answers still on their way");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_strategies::{AskId, Bar, InstrumentId};

    fn ask(id: u64, model: &str, input: ModelInput, at: i64) -> ModelAsk {
        ModelAsk { id: AskId(id), model: model.into(), input, tag: id, at: Timestamp(at) }
    }

    fn embed(t: &str) -> ModelInput {
        ModelInput::Embed { texts: vec![t.into()] }
    }

    fn answered(m: &mut Simulated, a: ModelAsk) -> ModelAnswer {
        match m.ask(a) {
            Answering::At(a) => a,
            Answering::Later => panic!("a backtest answers at once"),
        }
    }

    #[test]
    fn latency_specs_parse_and_bad_ones_are_refused_naming_the_problem() {
        assert_eq!(Latency::parse("0").unwrap(), Latency::Zero);
        assert_eq!(Latency::parse("250ms").unwrap(), Latency::Fixed(250_000_000));
        assert_eq!(Latency::parse("fixed:1.5s").unwrap(), Latency::Fixed(1_500_000_000));
        assert_eq!(Latency::parse("40").unwrap(), Latency::Fixed(40_000_000));
        assert_eq!(
            Latency::parse("lognormal:median=200ms,sigma=0.5").unwrap(),
            Latency::LogNormal { median: 200_000_000, sigma: 0.5 }
        );
        for (spec, want) in [
            ("fast", "not a duration"),
            ("-5ms", "between 0 and"),
            ("NaNms", "between 0 and"),
            ("lognormal:median=200ms", "sigma is missing"),
            ("lognormal:median=200ms,sigma=9", "outside [0, 5]"),
            ("lognormal:mean=1ms,sigma=1", "unknown key `mean`"),
            ("empirical:/nonexistent/lat.txt", "/nonexistent/lat.txt"),
        ] {
            let e = Latency::parse(spec).expect_err(spec);
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn log_normal_draws_have_the_median_asked_for_and_repeat_with_the_seed() {
        let l = Latency::LogNormal { median: 100_000_000, sigma: 0.8 };
        let draws = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20_001).map(|_| l.draw(&mut rng, None)).collect::<Vec<_>>()
        };
        let mut a = draws(7);
        assert_eq!(a, draws(7));
        assert_ne!(a, draws(8));
        a.sort_unstable();
        let median = a[a.len() / 2] as f64;
        assert!((median / 1e8 - 1.0).abs() < 0.05, "median {median}");
        // The right tail: p99 of a log-normal is median * exp(2.326 sigma) = 6.4x here.
        let p99 = a[a.len() * 99 / 100] as f64 / 1e8;
        assert!((5.5..7.5).contains(&p99), "p99 {p99}");
        assert!(a[0] >= 0);
    }

    #[test]
    fn empirical_latencies_come_from_a_recording_or_a_list_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("lat.txt");
        std::fs::write(&list, "# ms\n120\n80ms\n\n1s\n").unwrap();
        assert_eq!(
            Latency::parse(&format!("empirical:{}", list.display())).unwrap(),
            Latency::Empirical(vec![120_000_000, 80_000_000, 1_000_000_000])
        );
        std::fs::write(&list, "120\nsoon\n").unwrap();
        let e = Latency::parse(&format!("empirical:{}", list.display())).unwrap_err();
        assert!(e.contains("line 2") && e.contains("soon"), "{e}");
    }

    #[test]
    fn a_recorded_session_is_replayed_by_input_with_its_latencies_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answers.jsonl");
        let mut rec = Recorder::open(&path).unwrap();
        let live = |id: u64, text: &str, at: i64, lat: i64, result| {
            let a = ask(id, "news", embed(text), at);
            let answer = a.answer(Timestamp(at + lat), result);
            (a, answer)
        };
        let ok = |v: f32| {
            Ok(ModelReply {
                output: ModelOutput::Embeddings(vec![vec![v, 1.0]]),
                endpoint: "w1".into(),
                model: "minilm".into(),
            })
        };
        for (a, answer) in [
            live(1, "up", 1_000, 5_000_000, ok(0.5)),
            live(2, "down", 2_000, 7_000_000, ok(-0.5)),
            live(3, "up", 3_000, 9_000_000, ok(0.25)),
            live(
                4,
                "boom",
                4_000,
                1_000,
                Err(ModelFailure { reason: "every target failed".into() }),
            ),
        ] {
            rec.write(&a, &answer).unwrap();
        }
        drop(rec);
        let recording = Arc::new(Recording::load(&path).unwrap());
        assert_eq!(recording.len(), 4);
        let answers = Answers { recording: Some(recording), local: None };
        let mut sim = Simulated::new(answers, Latency::Recorded, 0);
        // A backtest asks at other times; the answers follow the input, in recorded order.
        let a = answered(&mut sim, ask(1, "news", embed("up"), 10));
        assert_eq!(a.embeddings().unwrap()[0][0], 0.5);
        assert_eq!((a.latency_ns(), a.at), (5_000_000, Timestamp(5_000_010)));
        assert_eq!(a.result.as_ref().unwrap().endpoint, "recorded");
        assert_eq!(
            answered(&mut sim, ask(2, "news", embed("up"), 20)).embeddings().unwrap()[0][0],
            0.25
        );
        // Asked more often than recorded: the last answer again.
        assert_eq!(
            answered(&mut sim, ask(3, "news", embed("up"), 30)).embeddings().unwrap()[0][0],
            0.25
        );
        assert_eq!(answered(&mut sim, ask(4, "news", embed("down"), 40)).latency_ns(), 7_000_000);
        assert_eq!(
            answered(&mut sim, ask(5, "news", embed("boom"), 50)).failure(),
            Some("every target failed")
        );
        // Another model or input was never recorded: a failure that says how to answer it.
        let miss = answered(&mut sim, ask(6, "other", embed("up"), 60));
        assert!(miss.failure().unwrap().contains("--model other=PATH"), "{miss:?}");
        let s = sim.stats();
        let s = s.lock().unwrap();
        assert_eq!((s.asked, s.from_recording, s.failed, s.recording_reused), (6, 5, 2, 1));
        assert_eq!(s.latencies_ns[..2], [5_000_000, 9_000_000]);

        // A torn last line (a crash mid-write) and a hostile one are named.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"asked_at_ns\": 1, \"model\": \"news\"");
        std::fs::write(&path, &text).unwrap();
        let e = Recording::load(&path).unwrap_err();
        assert!(e.contains("line 5"), "{e}");
        let bad = "{\"asked_at_ns\":1,\"model\":\"m\",\"kind\":\"forecast\",\"digest\":\"d\",\"tag\":0,\"latency_ns\":-4,\"output\":{\"forecast\":1.0}}\n";
        std::fs::write(&path, bad).unwrap();
        assert!(Recording::load(&path).unwrap_err().contains("negative"));
    }

    #[test]
    fn the_digest_follows_model_and_input() {
        let bar = Bar {
            instrument: InstrumentId(0),
            ts: Timestamp(60),
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 3.0,
        };
        let f = |close| ModelInput::Forecast { bars: vec![Bar { close, ..bar }] };
        assert_eq!(digest("fc", &f(1.5)), digest("fc", &f(1.5)));
        assert_ne!(digest("fc", &f(1.5)), digest("fc", &f(1.25)));
        assert_ne!(digest("fc", &f(1.5)), digest("fc2", &f(1.5)));
    }

    #[test]
    fn router_answers_are_typed_and_malformed_ones_refused() {
        let chat = ModelInput::Chat {
            messages: vec![kairos_strategies::ChatMessage::new(
                kairos_strategies::Role::User,
                "hi",
            )],
            max_tokens: 4,
            temperature: 0.0,
        };
        let body = json!({"choices": [{"message": {"content": "hello"}}]});
        assert_eq!(output(&chat, &body).unwrap(), ModelOutput::Text("hello".into()));
        assert!(output(&chat, &json!({"choices": []})).unwrap_err().contains("choices[0]"));
        let two = ModelInput::Embed { texts: vec!["a".into(), "b".into()] };
        let body = json!({"data": [{"index": 1, "embedding": [2.0, 3.0]}, {"index": 0, "embedding": [0.0, 1.0]}]});
        assert_eq!(
            output(&two, &body).unwrap(),
            ModelOutput::Embeddings(vec![vec![0.0, 1.0], vec![2.0, 3.0]])
        );
        for (bad, want) in [
            (json!({"data": [{"embedding": [1.0]}]}), "1 embeddings for 2 texts"),
            (
                json!({"data": [{"embedding": [1.0]}, {"embedding": [1.0, 2.0]}]}),
                "different lengths",
            ),
            (
                json!({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}),
                "twice",
            ),
            (json!({"data": [{"embedding": "AAAA"}, {"embedding": [1.0]}]}), "no float embedding"),
        ] {
            let e = output(&two, &bad).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let fc = ModelInput::Forecast { bars: vec![] };
        assert_eq!(output(&fc, &json!({"prediction": 0.25})).unwrap(), ModelOutput::Forecast(0.25));
        assert!(output(&fc, &json!({"prediction": "NaN"})).is_err());
        // The request carries only the input.
        let r = request(&ask(
            1,
            "fc",
            ModelInput::Forecast {
                bars: vec![Bar {
                    instrument: InstrumentId(0),
                    ts: Timestamp(120_000_000),
                    open: 1.0,
                    high: 1.0,
                    low: 1.0,
                    close: 1.0,
                    volume: 0.0,
                }],
            },
            0,
        ));
        assert_eq!(
            r.body,
            json!({"model": "fc", "bars": [{"ts": 120, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0}]})
        );
    }
}
