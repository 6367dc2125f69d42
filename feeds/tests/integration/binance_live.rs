//! The live Binance feed against a Binance-format server on 127.0.0.1 that replays a real
//! recording (`../shared/data/binance-ws/`): a combined-stream websocket, and a REST depth
//! endpoint answering with the server's own book at that moment (the server applies every
//! diff, including those it withholds). Faults: a dropped connection, a withheld diff (a gap),
//! garbage, frozen data, a shutdown notice. Whatever the fault, every book state the feed
//! reports equals the book an offline replay of the whole recording has at that update id,
//! and the feed reports the symbol unsynchronised in between.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kairos_feeds::binance::{self, DepthSync, Market, Message};
use kairos_feeds::binance_live::{BinanceFeed, FeedEvent};
use kairos_feeds::ws::WsConfig;
use kairos_strategies::{Fixed, OrderBook};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

type TopOf = (Option<(Fixed, Fixed)>, Option<(Fixed, Fixed)>);

struct Recording {
    /// Stream messages (the JSON of each line), in file order, without the snapshot.
    stream: Vec<String>,
    snapshot: binance::Snapshot,
    /// The book after every diff an offline replay applies, by update id.
    truth: BTreeMap<u64, TopOf>,
    last_u: u64,
}

fn recording() -> Option<Recording> {
    use std::io::BufRead;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/binance-ws/spot/btcusdt_20240808.gz");
    if !path.exists() {
        assert!(
            std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
            "{} is missing",
            path.display()
        );
        eprintln!("skipping: {} is missing", path.display());
        return None;
    }
    let f = flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap());
    let (mut stream, mut snapshot) = (Vec::new(), None);
    for line in std::io::BufReader::new(f).lines() {
        let line = line.unwrap();
        let json = line.split_once(' ').unwrap().1.to_string();
        match binance::parse(&json).unwrap() {
            Message::Snapshot(s) => snapshot = Some(s),
            _ => stream.push(json),
        }
    }
    let snapshot = snapshot.expect("a snapshot in the recording");
    // The offline replay: the recording's own snapshot, then every diff.
    let mut sync = DepthSync::new(Market::Spot);
    sync.on_snapshot(&snapshot);
    let mut truth = BTreeMap::new();
    let mut last_u = 0;
    for m in &stream {
        if let Ok(Message::Depth(d)) = binance::parse(m) {
            last_u = d.last;
            if sync.on_diff(&d) == binance::Applied::Applied {
                truth.insert(sync.update_id(), (sync.book().best_bid(), sync.book().best_ask()));
            }
        }
    }
    assert!(truth.len() > 3_000);
    Some(Recording { stream, snapshot, truth, last_u })
}

/// What the server does wrong.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// Close the first connection after this many messages.
    drop_after: Option<usize>,
    /// Withhold the diff at this index of the stream (it still moves the server's book).
    withhold: Option<usize>,
    /// Send a garbage message before every this-many-th message.
    garbage_every: Option<usize>,
    /// Stop sending data on the first connection after this many messages (pings answered).
    freeze_after: Option<usize>,
    /// Send Binance's shutdown notice after this many messages of the first connection.
    shutdown_after: Option<usize>,
}

struct ServerState {
    book: OrderBook,
    at: u64,
    next: usize,
    connections: usize,
}

/// Applies a diff to the server's own book (the exchange's truth).
fn advance(st: &mut ServerState, msg: &str) {
    if let Ok(Message::Depth(d)) = binance::parse(msg)
        && d.last > st.at
        && d.first <= st.at + 1
    {
        st.book.set_levels(&d.bids, &d.asks);
        st.at = d.last;
    }
}

async fn server(rec: Arc<Recording>, faults: Faults) -> (String, String) {
    let mut book = OrderBook::new();
    book.set_levels(&rec.snapshot.bids, &rec.snapshot.asks);
    let st = Arc::new(Mutex::new(ServerState {
        book,
        at: rec.snapshot.last_update_id,
        next: 0,
        connections: 0,
    }));
    let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let urls = (
        format!("ws://{}", ws.local_addr().unwrap()),
        format!("http://{}", rest.local_addr().unwrap()),
    );
    let st2 = st.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = ws.accept().await else { return };
            let (st, rec) = (st2.clone(), rec.clone());
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await else { return };
                let first = {
                    let mut s = st.lock().unwrap();
                    s.connections += 1;
                    s.connections == 1
                };
                let mut sent = 0usize;
                loop {
                    let msg = {
                        let mut s = st.lock().unwrap();
                        let Some(m) = rec.stream.get(s.next).cloned() else { break };
                        let i = s.next;
                        s.next += 1;
                        advance(&mut s, &m);
                        (i, m)
                    };
                    let (i, m) = msg;
                    if first && faults.freeze_after == Some(sent) {
                        // Frozen: answer pings, send nothing.
                        while let Some(Ok(_)) = ws.next().await {}
                        return;
                    }
                    if first && faults.shutdown_after == Some(sent) {
                        let _ = ws
                            .send(WsMessage::text(r#"{"event":{"e":"serverShutdown","E":1}}"#))
                            .await;
                    }
                    if first && faults.drop_after == Some(sent) {
                        let _ = ws.close(None).await;
                        return;
                    }
                    if faults.garbage_every.is_some_and(|k| i.is_multiple_of(k)) {
                        let _ = ws
                            .send(WsMessage::text(
                                "{\"stream\":\"btcusdt@depth@100ms\",\"data\":{garbage",
                            ))
                            .await;
                    }
                    if faults.withhold == Some(i) {
                        continue;
                    }
                    if ws.send(WsMessage::text(m)).await.is_err() {
                        return;
                    }
                    sent += 1;
                    // A little pacing, so that snapshots are asked for mid-stream.
                    if sent.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
                // The recording is over: stay open, answering pings.
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = rest.accept().await else { return };
            let st = st.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let ok = req.starts_with("GET /api/v3/depth?symbol=BTCUSDT&limit=");
                let body = if ok {
                    let s = st.lock().unwrap();
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
    urls
}

struct Run {
    books: Vec<(u64, TopOf)>,
    statuses: Vec<(bool, String)>,
    malformed: usize,
}

async fn run_feed(rec: &Arc<Recording>, faults: Faults) -> Run {
    let (ws_base, rest_base) = server(rec.clone(), faults).await;
    let feed = BinanceFeed {
        ws_base,
        rest_base,
        ws: WsConfig {
            stale_after: Duration::from_millis(500),
            ping_every: Duration::from_millis(100),
            pong_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            ..WsConfig::new("")
        },
        snapshot_retry: Duration::from_millis(20),
        ..BinanceFeed::new(Market::Spot, &["btcusdt"])
    };
    let (tx, mut rx) = mpsc::channel(1024);
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(feed.run(tx, stop));
    let mut run = Run { books: Vec::new(), statuses: Vec::new(), malformed: 0 };
    let collect = async {
        while let Some(e) = rx.recv().await {
            match e {
                FeedEvent::Book { update_id, bid, ask, .. } => {
                    run.books.push((update_id, (bid, ask)));
                    if update_id == rec.last_u {
                        return;
                    }
                }
                FeedEvent::Status { synced, why, .. } => run.statuses.push((synced, why)),
                FeedEvent::Malformed(_) => run.malformed += 1,
                _ => {}
            }
        }
    };
    // A guard against a hang, not a synchronisation: the feed ends on the last update.
    tokio::time::timeout(Duration::from_secs(120), collect)
        .await
        .expect("the feed reached the end of the recording");
    stop_tx.send(true).unwrap();
    drop(rx);
    let _ = task.await;
    run
}

fn assert_true_to_the_recording(rec: &Recording, run: &Run) {
    assert!(run.books.len() > 1_000, "{} book states", run.books.len());
    for (u, top) in &run.books {
        assert_eq!(Some(top), rec.truth.get(u), "the book at update {u}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_book_equals_the_recordings_book_at_every_update() {
    let Some(rec) = recording().map(Arc::new) else { return };
    let run = run_feed(&rec, Faults::default()).await;
    assert_true_to_the_recording(&rec, &run);
    assert_eq!(
        run.statuses.iter().filter(|s| s.0).count(),
        1,
        "synchronised once: {:?}",
        run.statuses
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_detected_resynchronised_and_never_trusted_meanwhile() {
    let Some(rec) = recording().map(Arc::new) else { return };
    // A diff withheld: a gap, a new snapshot.
    let diff = (2_000..).find(|&i| rec.stream[i].contains("depthUpdate")).unwrap();
    let run = run_feed(&rec, Faults { withhold: Some(diff), ..Faults::default() }).await;
    assert_true_to_the_recording(&rec, &run);
    assert!(run.statuses.iter().any(|s| !s.0 && s.1.contains("gap")), "{:?}", run.statuses);
    assert!(run.statuses.iter().filter(|s| s.0).count() >= 2, "resynchronised: {:?}", run.statuses);

    // The connection dropped after 5,000 messages: reconnect, snapshot, resynchronise.
    let run = run_feed(&rec, Faults { drop_after: Some(5_000), ..Faults::default() }).await;
    assert_true_to_the_recording(&rec, &run);
    assert!(
        run.statuses.iter().any(|s| !s.0 && s.1.contains("disconnected")),
        "{:?}",
        run.statuses
    );

    // Garbage every 997 messages: counted and skipped.
    let run = run_feed(&rec, Faults { garbage_every: Some(997), ..Faults::default() }).await;
    assert_true_to_the_recording(&rec, &run);
    assert!(run.malformed >= 40, "{}", run.malformed);

    // Frozen data (pings still answered): stale, reconnect, resynchronise.
    let run = run_feed(&rec, Faults { freeze_after: Some(3_000), ..Faults::default() }).await;
    assert_true_to_the_recording(&rec, &run);
    assert!(run.statuses.iter().any(|s| !s.0 && s.1.contains("Stale")), "{:?}", run.statuses);

    // A shutdown notice: a planned reconnect.
    let run = run_feed(&rec, Faults { shutdown_after: Some(4_000), ..Faults::default() }).await;
    assert_true_to_the_recording(&rec, &run);
    assert!(run.statuses.iter().any(|s| !s.0 && s.1.contains("Planned")), "{:?}", run.statuses);
}
