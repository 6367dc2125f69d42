//! A misbehaving Binance on 127.0.0.1, for testing feeds, engines and strategies against the
//! faults a real exchange connection has.
//!
//! [`serve`] replays a recording's combined-stream messages over a websocket (`/stream?...`)
//! and answers REST depth requests (`/api/v3/depth?symbol=..&limit=..`) with its own book at
//! that moment: the server applies every diff of the recording, including those it withholds,
//! so a snapshot is always the exchange's truth. [`Faults`] says what it does wrong: it ends
//! connections (a drop, frozen data with pings still answered, a `serverShutdown` notice),
//! withholds a diff (a gap), and slips in garbage. [`Truth`] is what an offline replay of the
//! whole recording says the book is at every update id, to check what a client reports.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use kairos_strategies::{Fixed, OrderBook};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::binance::{self, Applied, DepthSync, Market, Message, Snapshot};

/// Best bid and best ask `(price, size)`.
pub type TopOf = (Option<(Fixed, Fixed)>, Option<(Fixed, Fixed)>);

/// A Binance spot recording split for serving.
#[derive(Debug, Clone)]
pub struct BinanceRecording {
    /// Stream messages (the JSON of each line), in file order, without the REST snapshot.
    pub stream: Vec<String>,
    /// The recording's REST snapshot.
    pub snapshot: Snapshot,
    /// The symbol its diffs are about (the server answers depth requests for it only).
    pub symbol: String,
}

/// The book an offline replay of a whole recording has after every diff it applies.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Best levels by update id.
    pub tops: BTreeMap<u64, TopOf>,
    /// The last diff's final update id.
    pub last_update_id: u64,
}

impl BinanceRecording {
    /// Reads a recording in the `<receive ns> <raw JSON>` format (gzipped or plain).
    pub fn read(path: &Path) -> crate::Result<Self> {
        let (lines, _) = crate::record::read_lines(path)?;
        let (mut stream, mut snapshot) = (Vec::new(), None);
        for line in lines {
            let Some((_, json)) = line.split_once(' ') else { continue };
            match binance::parse(json) {
                Ok(Message::Snapshot(s)) => {
                    snapshot.get_or_insert(s);
                }
                _ => stream.push(json.to_string()),
            }
        }
        let snapshot = snapshot.ok_or_else(|| crate::Error::Io {
            path: path.to_path_buf(),
            reason: "no REST snapshot in the recording".into(),
        })?;
        let symbol = stream
            .iter()
            .find_map(|m| match binance::parse(m) {
                Ok(Message::Depth(d)) => Some(d.symbol),
                _ => None,
            })
            .ok_or_else(|| crate::Error::Io {
                path: path.to_path_buf(),
                reason: "no depth diff in the recording".into(),
            })?;
        Ok(Self { stream, snapshot, symbol })
    }

    /// The recording's own snapshot, then every diff, applied offline.
    pub fn truth(&self) -> Truth {
        let mut sync = DepthSync::new(Market::Spot);
        sync.on_snapshot(&self.snapshot);
        let mut t = Truth::default();
        for m in &self.stream {
            if let Ok(Message::Depth(d)) = binance::parse(m) {
                t.last_update_id = d.last;
                if sync.on_diff(&d) == Applied::Applied {
                    t.tops
                        .insert(sync.update_id(), (sync.book().best_bid(), sync.book().best_ask()));
                }
            }
        }
        t
    }
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A close frame.
    Drop,
    /// No more data; pings are still answered.
    Freeze,
    /// Binance's `serverShutdown` notice; data goes on until the client leaves.
    Shutdown,
}

/// What the server does wrong.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Connection `k` (from 1) ends as `cuts[k - 1]` says, after that many of its messages;
    /// connections past the list run to the end of the recording.
    pub cuts: Vec<(Cut, usize)>,
    /// Withhold the diff at this index of the stream (it still moves the server's book).
    pub withhold: Option<usize>,
    /// Send a garbage message before every this-many-th message.
    pub garbage_every: Option<usize>,
}

/// Where the server listens.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The websocket base (`ws://127.0.0.1:PORT`), for `BinanceFeed::ws_base`.
    pub ws: String,
    /// The REST base (`http://127.0.0.1:PORT`), for `BinanceFeed::rest_base`.
    pub rest: String,
}

struct State {
    book: OrderBook,
    at: u64,
    next: usize,
    connections: usize,
}

/// Applies a diff to the server's own book (the exchange's truth).
fn advance(st: &mut State, msg: &str) {
    if let Ok(Message::Depth(d)) = binance::parse(msg)
        && d.last > st.at
        && d.first <= st.at + 1
    {
        st.book.set_levels(&d.bids, &d.asks);
        st.at = d.last;
    }
}

/// Serves `rec` with `faults` on two fresh ports of 127.0.0.1, on the current tokio runtime,
/// until the runtime stops. After the recording, connections stay open, answering pings.
pub async fn serve(rec: Arc<BinanceRecording>, faults: Faults) -> std::io::Result<Endpoints> {
    let mut book = OrderBook::new();
    book.set_levels(&rec.snapshot.bids, &rec.snapshot.asks);
    let st = Arc::new(Mutex::new(State {
        book,
        at: rec.snapshot.last_update_id,
        next: 0,
        connections: 0,
    }));
    let ws = TcpListener::bind("127.0.0.1:0").await?;
    let rest = TcpListener::bind("127.0.0.1:0").await?;
    let urls = Endpoints {
        ws: format!("ws://{}", ws.local_addr()?),
        rest: format!("http://{}", rest.local_addr()?),
    };
    let faults = Arc::new(faults);
    let symbol = rec.symbol.clone();
    let st2 = st.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = ws.accept().await else { return };
            let (st, rec, faults) = (st2.clone(), rec.clone(), faults.clone());
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(sock).await else { return };
                // Read all the time, as an exchange does: pings are answered while data flows.
                let (mut tx, mut rx) = ws.split();
                let reader =
                    tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
                let cut = {
                    let mut s = st.lock().unwrap_or_else(|e| e.into_inner());
                    s.connections += 1;
                    faults.cuts.get(s.connections - 1).copied()
                };
                let mut sent = 0usize;
                loop {
                    let (i, m) = {
                        let mut s = st.lock().unwrap_or_else(|e| e.into_inner());
                        let Some(m) = rec.stream.get(s.next).cloned() else { break };
                        let i = s.next;
                        s.next += 1;
                        advance(&mut s, &m);
                        (i, m)
                    };
                    match cut {
                        Some((Cut::Freeze, n)) if n == sent => break,
                        Some((Cut::Shutdown, n)) if n == sent => {
                            let notice = r#"{"event":{"e":"serverShutdown","E":1}}"#;
                            let _ = tx.send(WsMessage::text(notice)).await;
                        }
                        Some((Cut::Drop, n)) if n == sent => {
                            let _ = tx.close().await;
                            reader.abort();
                            return;
                        }
                        _ => {}
                    }
                    if faults.garbage_every.is_some_and(|k| i.is_multiple_of(k)) {
                        let junk = "{\"stream\":\"btcusdt@depth@100ms\",\"data\":{garbage";
                        let _ = tx.send(WsMessage::text(junk)).await;
                    }
                    if faults.withhold == Some(i) {
                        continue;
                    }
                    if tx.send(WsMessage::text(m)).await.is_err() {
                        reader.abort();
                        return;
                    }
                    sent += 1;
                    // A little pacing, so that snapshots are asked for mid-stream.
                    if sent.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
                // Frozen, or the recording is over: no more data; pings are still answered
                // until the client leaves.
                let _ = reader.await;
                drop(tx);
            });
        }
    });
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = rest.accept().await else { return };
            let (st, symbol) = (st.clone(), symbol.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let ok = req.starts_with(&format!("GET /api/v3/depth?symbol={symbol}&limit="));
                let body = if ok {
                    let s = st.lock().unwrap_or_else(|e| e.into_inner());
                    let side = |it: &mut dyn Iterator<Item = (Fixed, Fixed)>| {
                        it.map(|(p, q)| format!("[\"{p}\",\"{q}\"]")).collect::<Vec<_>>().join(",")
                    };
                    format!(
                        "{{\"lastUpdateId\":{},\"bids\":[{}],\"asks\":[{}]}}",
                        s.at,
                        side(&mut s.book.bids()),
                        side(&mut s.book.asks())
                    )
                } else {
                    "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}".to_string()
                };
                let status = if ok { "200 OK" } else { "400 Bad Request" };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(urls)
}
