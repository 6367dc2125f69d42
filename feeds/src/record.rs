//! Recording a live feed in the format of `../shared/data/binance-ws/`: one message a line,
//! `<local receive ns> <raw JSON>`, gzipped.
//!
//! For Binance, a REST depth snapshot of every symbol is fetched on each connection and written
//! in the same stream, wrapped as `{"stream":"<symbol>@snapshot","data":<REST answer>}`, so a
//! replay can synchronise its books (and several symbols' snapshots cannot be confused). The
//! file is written as a series of gzip members, one every few seconds, each flushed to disk: a
//! recorder killed mid-way leaves a file whose complete members replay, and
//! [`read_lines`] stops cleanly at a cut-off last member.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::binance_live::BinanceFeed;
use crate::coinbase_live::CoinbaseFeed;
use crate::ws::{self, WsConfig, WsEvent};
use crate::{Error, Result};

/// What to record.
#[derive(Debug, Clone)]
pub enum Target {
    /// Binance combined streams (diff depth, `bookTicker`, `trade`) and REST snapshots.
    Binance(BinanceFeed),
    /// Coinbase Advanced Trade `level2`, `market_trades` and `heartbeats`.
    Coinbase(CoinbaseFeed),
}

/// What a recording holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Lines written.
    pub lines: u64,
    /// Of which REST snapshots.
    pub snapshots: u64,
    /// Connections made.
    pub connections: u32,
}

/// Gzip members, each finished and flushed after `every` or `max_lines`.
struct Members {
    path: PathBuf,
    file: std::fs::File,
    gz: Option<flate2::write::GzEncoder<Vec<u8>>>,
    lines: u64,
    since: Instant,
}

impl Members {
    fn create(path: &Path) -> Result<Self> {
        let file = std::fs::File::create(path)
            .map_err(|e| Error::Io { path: path.to_path_buf(), reason: e.to_string() })?;
        Ok(Self { path: path.to_path_buf(), file, gz: None, lines: 0, since: Instant::now() })
    }

    fn line(&mut self, recv_ns: i64, json: &str) -> Result<()> {
        // A message is one line: a raw newline inside one would split it (JSON never needs
        // one, but a hostile server could send it).
        let json = json.replace(['\n', '\r'], " ");
        let gz = self.gz.get_or_insert_with(|| {
            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default())
        });
        writeln!(gz, "{recv_ns} {json}").map_err(|e| self.err(e))?;
        self.lines += 1;
        if self.since.elapsed() >= Duration::from_secs(5) || self.lines.is_multiple_of(20_000) {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.since = Instant::now();
        let Some(gz) = self.gz.take() else { return Ok(()) };
        let bytes = gz.finish().map_err(|e| self.err(e))?;
        self.file.write_all(&bytes).map_err(|e| self.err(e))?;
        self.file.sync_data().map_err(|e| self.err(e))
    }

    fn err(&self, e: std::io::Error) -> Error {
        Error::Io { path: self.path.clone(), reason: e.to_string() }
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Records `target` into `out` until `stop` turns true, or until `max_messages` stream
/// messages (snapshots not counted) are written.
pub async fn record(
    target: Target,
    out: &Path,
    max_messages: Option<u64>,
    mut stop: watch::Receiver<bool>,
) -> Result<Recorded> {
    let mut file = Members::create(out)?;
    let mut stats = Recorded::default();
    let (ws_tx, mut ws_rx) = mpsc::channel(8192);
    let (cfg, subscriptions, marker, binance): (WsConfig, Vec<String>, Option<&'static str>, _) =
        match &target {
            Target::Binance(f) => (
                WsConfig { url: f.stream_url(), ..f.ws.clone() },
                Vec::new(),
                Some("serverShutdown"),
                Some(f.clone()),
            ),
            Target::Coinbase(f) => (f.ws.clone(), f.subscriptions(), None, None),
        };
    let link = ws::Link { tx: ws_tx, stop: stop.clone(), control: None };
    let conn = tokio::spawn(ws::run(cfg, subscriptions, marker, link));
    let (snap_tx, mut snap_rx) = mpsc::channel::<(String, std::result::Result<String, String>)>(64);
    let http = reqwest_feeds::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    loop {
        tokio::select! {
            ev = ws_rx.recv() => match ev {
                None => break,
                Some(WsEvent::Connected(n)) => {
                    stats.connections = n;
                    if let Some(f) = &binance {
                        for s in &f.symbols {
                            let (http, url, tx, s) = (http.clone(), f.snapshot_url(s), snap_tx.clone(), s.clone());
                            tokio::spawn(async move {
                                let got = async {
                                    http.get(&url).send().await?.error_for_status()?.text().await
                                }
                                .await
                                .map_err(|e| format!("GET {url}: {e}"));
                                let _ = tx.send((s, got)).await;
                            });
                        }
                    }
                }
                Some(WsEvent::Text(text, recv)) => {
                    file.line(recv, &text)?;
                    stats.lines += 1;
                    if max_messages.is_some_and(|m| stats.lines - stats.snapshots >= m) {
                        break;
                    }
                }
                Some(WsEvent::Disconnected { why, retry_in }) => {
                    tracing::warn!(?why, ?retry_in, "recording: disconnected");
                }
            },
            Some((symbol, got)) = snap_rx.recv() => match got {
                Ok(body) if serde_json::from_str::<&serde_json::value::RawValue>(&body).is_ok() => {
                    let line = format!("{{\"stream\":\"{}@snapshot\",\"data\":{}}}", symbol.to_ascii_lowercase(), body.trim());
                    file.line(now_ns(), &line)?;
                    stats.lines += 1;
                    stats.snapshots += 1;
                }
                Ok(_) => tracing::warn!(%symbol, "recording: the snapshot answer is not JSON; not written"),
                Err(e) => tracing::warn!(%symbol, "recording: {e}"),
            },
            _ = stop.changed() => break,
        }
    }
    file.flush()?;
    conn.abort();
    Ok(stats)
}

/// Reads a recording's lines, plain or gzipped (several members), stopping at a cut-off last
/// member (a recorder that was killed) rather than failing. Returns the lines and whether the
/// end was cut off, for the caller to say so.
pub fn read_lines(path: &Path) -> Result<(Vec<String>, bool)> {
    let io = |reason: String| Error::Io { path: path.to_path_buf(), reason };
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(|e| io(e.to_string()))?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let mut text = Vec::new();
    let mut cut = false;
    if gz {
        if !raw.starts_with(&[0x1f, 0x8b]) {
            return Err(io("not a gzip file (it does not start with the gzip magic bytes)".into()));
        }
        if let Err(e) = flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut text) {
            // Only a file with at least one whole member before the cut is a cut recording.
            if e.kind() != std::io::ErrorKind::UnexpectedEof || text.is_empty() {
                return Err(io(format!("not a readable gzip file: {e}")));
            }
            cut = true;
        }
    } else {
        text = raw;
    }
    let mut lines: Vec<String> = Vec::new();
    for l in text.lines() {
        lines.push(l.map_err(|e| io(e.to_string()))?);
    }
    if cut {
        // The last line of a cut-off member may itself be cut.
        lines.pop();
    }
    Ok((lines, cut))
}
