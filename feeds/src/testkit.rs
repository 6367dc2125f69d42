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
    /// Play the recording this many times (0 and 1: once). Each repeat moves update ids and
    /// times on past the previous one's and starts from the recording's snapshot again: the
    /// connection drops between repeats, and the client's new snapshot is that book.
    pub loops: usize,
}

/// Where the server listens.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The websocket base (`ws://127.0.0.1:PORT`), for `BinanceFeed::ws_base`.
    pub ws: String,
    /// The REST base (`http://127.0.0.1:PORT`), for `BinanceFeed::rest_base`.
    pub rest: String,
    /// Stream messages sent so far, over all connections and loops.
    pub sent: Arc<std::sync::atomic::AtomicUsize>,
    /// The server starts repeat `k` (from 0) only once this is above `k`: a test holds the
    /// stream between loops with it [default: no hold].
    pub release: Arc<std::sync::atomic::AtomicUsize>,
}

struct State {
    book: OrderBook,
    at: u64,
    next: usize,
    connections: usize,
    /// The repeat the server's book is in.
    repeat: usize,
}

/// How a recording is played more than once: repeat `k` adds `k * ids` to every update id
/// and `k * ms` to every time.
struct Repeat {
    loops: usize,
    ids: u64,
    ms: i64,
}

impl Repeat {
    fn of(rec: &BinanceRecording, loops: usize) -> Self {
        let (mut first, mut last, mut t0, mut t1) = (u64::MAX, 0u64, i64::MAX, 0i64);
        for m in &rec.stream {
            if let Ok(Message::Depth(d)) = binance::parse(m) {
                first = first.min(d.first);
                last = last.max(d.last);
                t0 = t0.min(d.event_ms as i64);
                t1 = t1.max(d.event_ms as i64);
            }
        }
        // Repeat k's first diff begins right after repeat k-1's last one.
        let ids = last.saturating_sub(first) + 1;
        Self { loops, ids, ms: (t1 - t0).max(0) + 1_000 }
    }

    /// The snapshot's update id in repeat `k`.
    fn snapshot_id(&self, rec: &BinanceRecording, k: usize) -> u64 {
        rec.snapshot.last_update_id + self.ids * k as u64
    }

    /// Message `i` of the looped stream.
    fn message(&self, rec: &BinanceRecording, i: usize) -> Option<String> {
        let n = rec.stream.len();
        if n == 0 || i >= n * self.loops {
            return None;
        }
        let (k, m) = (i / n, &rec.stream[i % n]);
        if k == 0 {
            return Some(m.clone());
        }
        // In place, so that the message keeps Binance's exact shape (key order included).
        let (ids, ms) = (self.ids * k as u64, self.ms * k as i64);
        let mut out = m.clone();
        for (key, add) in
            [("U", ids as i64), ("u", ids as i64), ("pu", ids as i64), ("E", ms), ("T", ms)]
        {
            out = shift_number(&out, key, add);
        }
        Some(out)
    }
}

/// `json` with the integer value of every `"key":` moved by `add`.
fn shift_number(json: &str, key: &str, add: i64) -> String {
    let pat = format!("\"{key}\":");
    let mut out = String::with_capacity(json.len() + 8);
    let mut rest = json;
    while let Some(at) = rest.find(&pat) {
        let start = at + pat.len();
        out.push_str(&rest[..start]);
        let digits = rest[start..].bytes().take_while(u8::is_ascii_digit).count();
        match rest[start..start + digits].parse::<i64>() {
            Ok(v) => out.push_str(&(v + add).to_string()),
            Err(_) => out.push_str(&rest[start..start + digits]),
        }
        rest = &rest[start + digits..];
    }
    out.push_str(rest);
    out
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
        repeat: 0,
    }));
    let ws = TcpListener::bind("127.0.0.1:0").await?;
    let rest = TcpListener::bind("127.0.0.1:0").await?;
    let sent_total = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let urls = Endpoints {
        ws: format!("ws://{}", ws.local_addr()?),
        rest: format!("http://{}", rest.local_addr()?),
        sent: sent_total.clone(),
        release: Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX)),
    };
    let release = urls.release.clone();
    let repeat = Arc::new(Repeat::of(&rec, faults.loops.max(1)));
    let faults = Arc::new(faults);
    let symbol = rec.symbol.clone();
    let st2 = st.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = ws.accept().await else { return };
            let (st, rec, faults) = (st2.clone(), rec.clone(), faults.clone());
            let (repeat, sent_total) = (repeat.clone(), sent_total.clone());
            let release = release.clone();
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
                    // Held between repeats until the test lets the next one start.
                    let at = st.lock().unwrap_or_else(|e| e.into_inner()).next;
                    let k = at / rec.stream.len().max(1);
                    while release.load(std::sync::atomic::Ordering::Acquire) <= k {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    let next = {
                        let mut s = st.lock().unwrap_or_else(|e| e.into_inner());
                        match repeat.message(&rec, s.next) {
                            None => None,
                            Some(m) => {
                                let i = s.next;
                                let k = i / rec.stream.len().max(1);
                                if k > s.repeat {
                                    // A new repeat: the exchange's book starts again from the
                                    // recording's snapshot (ids moved on), and the connection
                                    // drops, so the client takes a new snapshot.
                                    s.repeat = k;
                                    s.book = OrderBook::new();
                                    s.book.set_levels(&rec.snapshot.bids, &rec.snapshot.asks);
                                    s.at = repeat.snapshot_id(&rec, k);
                                    Some(None)
                                } else {
                                    s.next += 1;
                                    advance(&mut s, &m);
                                    Some(Some((i, m)))
                                }
                            }
                        }
                    };
                    let (i, m) = match next {
                        None => break,
                        Some(None) => {
                            let _ = tx.close().await;
                            reader.abort();
                            return;
                        }
                        Some(Some(im)) => im,
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
                    sent_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

/// The market a [`serve_coinbase`] exchange makes up: a seeded random walk of its book.
#[derive(Debug, Clone, Copy)]
pub struct CoinbaseMarket {
    /// Book updates to send in all (over every connection), then silence with heartbeats off.
    pub updates: usize,
    /// On the first connection, skip this sequence number (a lost message: a gap).
    pub gap_at: Option<u64>,
    /// A trade every this many updates.
    pub trade_every: usize,
    /// A heartbeat every this many updates.
    pub heartbeat_every: usize,
}

impl Default for CoinbaseMarket {
    fn default() -> Self {
        Self { updates: 3_000, gap_at: Some(400), trade_every: 50, heartbeat_every: 50 }
    }
}

/// What a [`serve_coinbase`] exchange did, for a test to check a client against.
#[derive(Debug)]
pub struct CoinbaseState {
    /// The exchange's book now.
    pub book: OrderBook,
    rng: u64,
    /// Updates sent so far.
    pub updates: usize,
    /// The book's best levels after every update, in order (the first: the initial book).
    pub tops: Vec<TopOf>,
    /// Connections accepted.
    pub connections: usize,
    /// Every update was sent, and the client answered a ping sent after the last: its reader
    /// has taken in everything.
    pub delivered: bool,
}

/// The payload of the ping a test server sends after its last message: its pong means the
/// client has read everything before it.
pub const DELIVERED: &[u8] = b"kairos-delivered";

/// The exchange's clock: 2026-12-02T00:00:00Z plus a millisecond per update.
const COINBASE_EPOCH_NS: i64 = 1_796_169_600_000_000_000;

impl CoinbaseState {
    fn next(&mut self) -> u64 {
        // xorshift64: the same market every run.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// One update: a few levels on either side, sizes from 0 (removal) to 4.
    fn update(&mut self) -> Vec<(bool, Fixed, Fixed)> {
        let n = 1 + self.next() % 3;
        let mut levels = Vec::new();
        for _ in 0..n {
            let r = self.next();
            let bid = r.is_multiple_of(2);
            let cents = (r >> 8) % 100;
            let price = if bid { 9_900 + cents } else { 10_001 + cents };
            let price = Fixed::from_units(price as i64 * 1_000_000);
            let size = Fixed::from_units(((r >> 20) % 5) as i64 * 100_000_000);
            if bid {
                self.book.set_bid(price, size)
            } else {
                self.book.set_ask(price, size)
            }
            levels.push((bid, price, size));
        }
        self.tops.push((self.book.best_bid(), self.book.best_ask()));
        levels
    }

    fn time(&self) -> String {
        let ns = COINBASE_EPOCH_NS + self.updates as i64 * 1_000_000;
        chrono::DateTime::from_timestamp_nanos(ns)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    }
}

fn l2(seq: u64, time: &str, kind: &str, levels: &[(bool, Fixed, Fixed)]) -> String {
    let updates: Vec<serde_json::Value> = levels
        .iter()
        .map(|(bid, p, q)| {
            serde_json::json!({"side": if *bid { "bid" } else { "offer" }, "event_time": time,
                "price_level": p.to_string(), "new_quantity": q.to_string()})
        })
        .collect();
    serde_json::json!({"channel": "l2_data", "client_id": "", "timestamp": time,
        "sequence_num": seq, "events": [{"type": kind, "product_id": "BTC-USD", "updates": updates}]})
    .to_string()
}

/// A Coinbase Advanced Trade websocket for `BTC-USD` on 127.0.0.1: it takes the three
/// subscriptions (`level2`, `market_trades`, `heartbeats`), sends a level2 snapshot of its
/// book, then updates, trades and heartbeats with per-connection sequence numbers; a
/// connection after the first begins with 20 trades before its snapshot. Returns its URL and
/// its state.
pub async fn serve_coinbase(
    market: CoinbaseMarket,
) -> std::io::Result<(String, Arc<Mutex<CoinbaseState>>)> {
    let mut book = OrderBook::new();
    for c in 0..50 {
        book.set_bid(Fixed::from_units((9_950 + c) * 1_000_000), Fixed::from_units(100_000_000));
        book.set_ask(Fixed::from_units((10_001 + c) * 1_000_000), Fixed::from_units(100_000_000));
    }
    let top = (book.best_bid(), book.best_ask());
    let ex = Arc::new(Mutex::new(CoinbaseState {
        book,
        rng: 0x9E37_79B9_7F4A_7C15,
        updates: 0,
        tops: vec![top],
        connections: 0,
        delivered: false,
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}", listener.local_addr()?);
    let ex2 = ex.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let ex = ex2.clone();
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(sock).await else { return };
                let (mut tx, mut rx) = ws.split();
                for _ in 0..3 {
                    match rx.next().await {
                        Some(Ok(WsMessage::Text(t))) if t.as_str().contains("\"subscribe\"") => {}
                        _ => return,
                    }
                }
                let ex_r = ex.clone();
                let reader = tokio::spawn(async move {
                    while let Some(Ok(m)) = rx.next().await {
                        if matches!(&m, WsMessage::Pong(p) if p.as_ref() == DELIVERED) {
                            ex_r.lock().unwrap_or_else(|e| e.into_inner()).delivered = true;
                        }
                    }
                });
                let lock = || ex.lock().unwrap_or_else(|e| e.into_inner());
                let first = {
                    let mut e = lock();
                    e.connections += 1;
                    e.connections == 1
                };
                let mut seq = 0u64;
                if !first {
                    // A new connection's channels are independent: trades may come before the
                    // book's snapshot, while the product is not synchronised. A few, paced, so
                    // that a strategy's order in flight at the gap has ended by the last.
                    for _ in 0..20 {
                        let trade = {
                            let e = lock();
                            let price = e.book.best_bid().map_or(Fixed::from_units(0), |b| b.0);
                            serde_json::json!({"channel": "market_trades", "client_id": "", "timestamp": e.time(),
                                "sequence_num": seq, "events": [{"type": "update", "trades": [{"trade_id": format!("r{seq}"), "product_id": "BTC-USD",
                                "price": price.to_string(), "size": "0.1", "side": "BUY", "time": e.time()}]}]}).to_string()
                        };
                        seq += 1;
                        if tx.send(WsMessage::text(trade)).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
                let snapshot = {
                    let e = lock();
                    let mut levels: Vec<(bool, Fixed, Fixed)> =
                        e.book.bids().map(|(p, q)| (true, p, q)).collect();
                    levels.extend(e.book.asks().map(|(p, q)| (false, p, q)));
                    l2(seq, &e.time(), "snapshot", &levels)
                };
                if tx.send(WsMessage::text(snapshot)).await.is_err() {
                    return;
                }
                loop {
                    let msgs = {
                        let mut e = lock();
                        if e.updates == market.updates {
                            break;
                        }
                        e.updates += 1;
                        seq += 1;
                        if first && Some(seq) == market.gap_at {
                            seq += 1; // one message lost on the way
                        }
                        let levels = e.update();
                        let time = e.time();
                        let mut out = vec![l2(seq, &time, "update", &levels)];
                        if e.updates.is_multiple_of(market.heartbeat_every.max(1)) {
                            seq += 1;
                            out.push(serde_json::json!({"channel": "heartbeats", "client_id": "", "timestamp": time,
                                "sequence_num": seq, "events": [{"current_time": time, "heartbeat_counter": e.updates}]}).to_string());
                        }
                        if e.updates.is_multiple_of(market.trade_every.max(1)) {
                            seq += 1;
                            // Alternately a sell into the best bid (the maker side, which
                            // Coinbase reports, BUY) and a buy from the best ask.
                            let into_bid =
                                (e.updates / market.trade_every.max(1)).is_multiple_of(2);
                            let (maker, level) = if into_bid {
                                ("BUY", e.book.best_bid())
                            } else {
                                ("SELL", e.book.best_ask())
                            };
                            let price = level.map_or(Fixed::from_units(0), |b| b.0);
                            out.push(serde_json::json!({"channel": "market_trades", "client_id": "", "timestamp": time,
                                "sequence_num": seq, "events": [{"type": "update", "trades": [{"trade_id": e.updates.to_string(), "product_id": "BTC-USD",
                                "price": price.to_string(), "size": "0.5", "side": maker, "time": time}]}]}).to_string());
                        }
                        out
                    };
                    for m in msgs {
                        if tx.send(WsMessage::text(m)).await.is_err() {
                            reader.abort();
                            return;
                        }
                    }
                    tokio::task::yield_now().await;
                }
                let _ = tx.send(WsMessage::Ping(DELIVERED.to_vec().into())).await;
                let _ = reader.await;
                drop(tx);
            });
        }
    });
    Ok((url, ex))
}

#[cfg(test)]
mod repeat_tests {
    use super::*;

    /// Each repeat of a looped recording, from its own snapshot, applies every diff without a
    /// gap and ends on the book the recording ends on.
    #[test]
    fn a_looped_recording_replays_from_each_repeats_snapshot() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/binance-ws/spot/btcusdt_20240808.gz");
        if !p.exists() {
            eprintln!("skipping: no recording at {}", p.display());
            return;
        }
        let rec = BinanceRecording::read(&p).unwrap();
        let r = Repeat::of(&rec, 3);
        let n = rec.stream.len();
        let mut tops = Vec::new();
        for k in 0..3 {
            let mut sync = DepthSync::new(Market::Spot);
            let mut snap = rec.snapshot.clone();
            snap.last_update_id = r.snapshot_id(&rec, k);
            sync.on_snapshot(&snap);
            let (mut applied, mut gaps) = (0, 0);
            for i in k * n..(k + 1) * n {
                if let Ok(Message::Depth(d)) = binance::parse(&r.message(&rec, i).unwrap()) {
                    match sync.on_diff(&d) {
                        Applied::Applied => applied += 1,
                        Applied::Gap => gaps += 1,
                        _ => {}
                    }
                }
            }
            assert_eq!(gaps, 0, "repeat {k}");
            assert!(applied > 1000);
            tops.push((sync.book().best_bid(), sync.book().best_ask()));
        }
        assert!(r.message(&rec, 3 * n).is_none());
        assert_eq!(tops[0], tops[2]);
        assert_eq!(tops[0], tops[1]);
    }
}
