//! One attempt against one endpoint: the request, the classified failure, and the
//! server-sent-events reader with its first-token and stall limits.

use std::collections::VecDeque;
use std::time::Duration;

use reqwest_feeds as reqwest;
use serde_json::Value;
use tokio::time::Instant;

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// An HTTP error status, with `Retry-After` (or `retry-after-ms`) when the server sent one.
    Status {
        /// The status.
        status: u16,
        /// When the server asked to be tried again.
        retry_after: Option<Duration>,
        /// The error body (the OpenAI error object when there is one).
        body: Value,
    },
    /// No connection, or the connection reset before the headers.
    Connect(String),
    /// No headers (or, for embeddings and forecasts, no answer) within the first-token limit.
    NoResponse,
    /// Headers but no first token within the first-token limit.
    SlowFirstToken,
    /// No chunk within the stall limit.
    Stall,
    /// The connection broke mid-answer.
    Cut(String),
    /// The stream ended without `data: [DONE]` or without a finish reason.
    Truncated,
    /// A chunk or answer that is not what the protocol says.
    Malformed(String),
    /// The whole request's deadline came first.
    Deadline,
    /// The endpoint's circuit is open.
    CircuitOpen,
    /// The in-process model failed.
    Local(String),
}

impl Failure {
    /// A short name for logs, metrics and the reply's attempt list.
    pub fn label(&self) -> String {
        match self {
            Failure::Status { status, .. } => format!("http_{status}"),
            Failure::Connect(_) => "connect".into(),
            Failure::NoResponse => "no_response".into(),
            Failure::SlowFirstToken => "first_token_timeout".into(),
            Failure::Stall => "stall".into(),
            Failure::Cut(_) => "cut".into(),
            Failure::Truncated => "truncated".into(),
            Failure::Malformed(_) => "malformed".into(),
            Failure::Deadline => "deadline".into(),
            Failure::CircuitOpen => "circuit_open".into(),
            Failure::Local(_) => "local_error".into(),
        }
    }

    /// The request itself was refused (context length, content policy, a bad field): the
    /// same model would refuse it again.
    pub fn is_request_error(&self) -> bool {
        matches!(self, Failure::Status { status: 400 | 413 | 422, .. })
    }

    /// Worth trying the same endpoint again (after a backoff or its `Retry-After`).
    pub fn is_retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => matches!(status, 408 | 409 | 429 | 500..=599),
            Failure::Connect(_) => true,
            _ => false,
        }
    }

    /// Counts against the endpoint's breaker (a refused request is the caller's doing).
    pub fn is_endpoint_fault(&self) -> bool {
        !self.is_request_error() && !matches!(self, Failure::Deadline | Failure::CircuitOpen)
    }

    /// The detail for an error message.
    pub fn detail(&self) -> String {
        match self {
            Failure::Status { status, body, .. } => {
                let msg = body
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| body.to_string());
                format!("HTTP {status}: {}", clip(&msg, 300))
            }
            Failure::Connect(e) | Failure::Cut(e) | Failure::Malformed(e) | Failure::Local(e) => {
                format!("{}: {}", self.label(), clip(e, 300))
            }
            other => other.label(),
        }
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// `Retry-After` in seconds (or OpenAI's `retry-after-ms`), capped at an hour.
pub fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let num = |k: &str| h.get(k)?.to_str().ok()?.trim().parse::<f64>().ok();
    let d = num("retry-after-ms").map(|ms| ms / 1e3).or_else(|| num("retry-after"))?;
    (d.is_finite() && d >= 0.0).then(|| Duration::from_secs_f64(d.min(3600.0)))
}

/// What an opened attempt gives: a stream of chunks, or (embeddings, forecasts, the local
/// model) one whole answer.
#[derive(Debug)]
pub enum Upstream {
    /// A server-sent-events stream.
    Stream(SseReader),
    /// One answer.
    Whole(Option<Value>),
}

impl Upstream {
    /// The next chunk; `None` after `[DONE]` (or after the one whole answer).
    pub async fn next(&mut self, until: Instant) -> Result<Option<Value>, Failure> {
        match self {
            Upstream::Stream(r) => r.next(until).await,
            Upstream::Whole(v) => Ok(v.take()),
        }
    }
}

/// Reads `data:` events off a response body.
#[derive(Debug)]
pub struct SseReader {
    resp: reqwest::Response,
    buf: Vec<u8>,
    data: String,
    ready: VecDeque<Value>,
    done: bool,
    eof: bool,
}

impl SseReader {
    /// Wraps a response whose status was 2xx.
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            resp,
            buf: Vec::new(),
            data: String::new(),
            ready: VecDeque::new(),
            done: false,
            eof: false,
        }
    }

    /// The next chunk before `until`; `Ok(None)` once `[DONE]` came.
    pub async fn next(&mut self, until: Instant) -> Result<Option<Value>, Failure> {
        loop {
            if let Some(v) = self.ready.pop_front() {
                return Ok(Some(v));
            }
            if self.done {
                return Ok(None);
            }
            if self.eof {
                return Err(Failure::Truncated);
            }
            let chunk = match tokio::time::timeout_at(until, self.resp.chunk()).await {
                Err(_) => return Err(Failure::Stall),
                Ok(Err(e)) => return Err(Failure::Cut(e.to_string())),
                Ok(Ok(None)) => {
                    self.eof = true;
                    // A last event without its blank line still counts.
                    self.line_end()?;
                    self.dispatch()?;
                    continue;
                }
                Ok(Ok(Some(c))) => c,
            };
            self.buf.extend_from_slice(&chunk);
            while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                self.line(&line[..line.len() - 1])?;
                if self.done {
                    break;
                }
            }
            if self.buf.len() > 8 << 20 {
                return Err(Failure::Malformed("an event longer than 8 MiB".into()));
            }
        }
    }

    fn line_end(&mut self) -> Result<(), Failure> {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.line(&line)?;
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8]) -> Result<(), Failure> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return self.dispatch();
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| Failure::Malformed("a stream line that is not UTF-8".into()))?;
        if let Some(d) = line.strip_prefix("data:") {
            if !self.data.is_empty() {
                self.data.push('\n');
            }
            self.data.push_str(d.strip_prefix(' ').unwrap_or(d));
        } else if line.starts_with(':')
            || line.starts_with("event:")
            || line.starts_with("id:")
            || line.starts_with("retry:")
        {
        } else {
            return Err(Failure::Malformed(format!(
                "a stream line that is not SSE: {}",
                clip(line, 80)
            )));
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Result<(), Failure> {
        if self.data.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.data);
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let v: Value = serde_json::from_str(&data).map_err(|e| {
            Failure::Malformed(format!("a chunk that is not JSON ({e}): {}", clip(&data, 80)))
        })?;
        if v.get("error").is_some() {
            return Err(Failure::Status { status: 502, retry_after: None, body: v });
        }
        self.ready.push_back(v);
        Ok(())
    }
}
