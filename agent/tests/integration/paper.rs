//! One engine, proven: a recording replayed by `kairos replay` and the same recording served
//! live to `kairos paper` by a Binance-format websocket server (and a REST snapshot endpoint)
//! on 127.0.0.1 give the same orders and the same paper fills, for a strategy that trades on
//! the book.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::{SinkExt, StreamExt};
use kairos_feeds::testkit::DELIVERED;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The spot BTCUSDT recording of ../shared/data (skipped when absent, unless
/// `KAIROS_REQUIRE_INTEROP` is set).
pub(crate) fn recording() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/binance-ws/spot/btcusdt_20240808.gz");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
        "no recording at {}",
        p.display()
    );
    eprintln!("skipping: no recording at {}", p.display());
    None
}

/// The recording's combined-stream messages, and its REST snapshot answer.
fn split(path: &Path) -> (Vec<String>, String) {
    let f = std::fs::File::open(path).unwrap();
    let r = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(f));
    let (mut stream, mut snapshot) = (Vec::new(), None);
    for line in r.lines() {
        let line = line.unwrap();
        let (_, json) = line.split_once(' ').unwrap();
        if json.contains("\"lastUpdateId\"") && !json.contains("\"stream\"") {
            snapshot.get_or_insert_with(|| json.to_string());
        } else {
            stream.push(json.to_string());
        }
    }
    (stream, snapshot.expect("the recording holds a REST snapshot"))
}

/// Serves `stream` on a websocket (`/stream?...`) and `snapshot` on any HTTP GET. The flag
/// turns true once the client has answered a ping sent after the last message: it has read
/// them all.
async fn serve(stream: Vec<String>, snapshot: String) -> (u16, u16, Arc<AtomicBool>) {
    let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let delivered = Arc::new(AtomicBool::new(false));
    let ports = (ws.local_addr().unwrap().port(), serve_rest(snapshot).await, delivered.clone());
    tokio::spawn(async move {
        // One connection: the whole recording, a ping, then silence (answering pings) until
        // closed.
        let Ok((tcp, _)) = ws.accept().await else { return };
        let Ok(mut sock) = tokio_tungstenite::accept_async(tcp).await else { return };
        for m in stream {
            if sock.send(WsMessage::Text(m.into())).await.is_err() {
                return;
            }
        }
        if sock.send(WsMessage::Ping(DELIVERED.to_vec().into())).await.is_err() {
            return;
        }
        while let Some(Ok(m)) = sock.next().await {
            if matches!(&m, WsMessage::Pong(p) if p.as_ref() == DELIVERED) {
                delivered.store(true, Ordering::SeqCst);
            }
        }
    });
    ports
}

/// Runs `kairos paper --config cfg` until `delivered()` (the server's messages have all been
/// read), then stops it with SIGTERM: a stopping session still handles what it has received,
/// so the result does not depend on the machine's speed. Five minutes without delivery is a
/// hang, and fails.
fn paper_until_delivered(cfg: &Path, delivered: impl Fn() -> bool) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["paper", "--config", cfg.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let since = std::time::Instant::now();
    while !delivered() {
        if child.try_wait().unwrap().is_some() || since.elapsed().as_secs() > 300 {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "kairos paper stopped or hung before the server's messages were delivered\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    child.wait_with_output().unwrap()
}

fn first_event_ms(stream: &[String]) -> i64 {
    stream
        .iter()
        .find_map(|m| {
            let v: serde_json::Value = serde_json::from_str(m).ok()?;
            v["data"]["E"].as_i64()
        })
        .unwrap()
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn replay_and_live_paper_give_the_same_orders_and_fills() {
    let Some(path) = recording() else { return };
    let (stream, snapshot) = split(&path);
    // Trade from a minute in, when both have long been synchronised (they synchronise at
    // different moments: the file's snapshot sits at its place in the file, the live feed
    // asks for its own when it connects).
    let start = first_event_ms(&stream) + 60_000;
    let params = [
        "levels=5".to_string(),
        "threshold=0.3".into(),
        "size=0.001".into(),
        "max_position=0.005".into(),
        format!("start_ms={start}"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("replay"), dir.path().join("paper"));
    let mut replay = Command::new(env!("CARGO_BIN_EXE_kairos"));
    replay.args(["replay", "--file", path.to_str().unwrap(), "--strategy", "book_imbalance"]);
    for p in &params {
        replay.args(["--param", p]);
    }
    replay.args(["--tick-size", "0.01", "--lot-size", "0.00001", "--out", a.to_str().unwrap()]);
    let o = replay.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (ws_port, rest_port, delivered) = rt.block_on(serve(stream, snapshot));
    let cfg = dir.path().join("agent.toml");
    let param_toml: String = params
        .iter()
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            format!("{k} = {v}\n")
        })
        .collect();
    std::fs::write(
        &cfg,
        format!(
            "strategy = \"book_imbalance\"\nout = \"paper\"\n[params]\n{param_toml}\
             [instruments.BTCUSDT]\ntick_size = 0.01\nlot_size = 0.00001\n\
             [[binance]]\nmarket = \"spot\"\nsymbols = [\"BTCUSDT\"]\n\
             ws_url = \"ws://127.0.0.1:{ws_port}\"\nrest_url = \"http://127.0.0.1:{rest_port}\"\n"
        ),
    )
    .unwrap();
    let o = paper_until_delivered(&cfg, || delivered.load(Ordering::SeqCst));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    drop(rt);

    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    let (fa, fb) = (read(&a, "fills.csv"), read(&b, "fills.csv"));
    let (oa, ob) = (read(&a, "orders.csv"), read(&b, "orders.csv"));
    let fills = fa.lines().count() - 1;
    assert!(fills >= 5, "the strategy should trade: {fills} fills\n{stdout}");
    assert!(oa.contains("Cancelled") && oa.contains("Accepted"), "{oa}");
    assert_eq!(oa, ob, "order events differ between replay and live paper");
    assert_eq!(fa, fb, "fills differ between replay and live paper");
}

/// `kairos record` from the same server writes a file that `kairos replay --verify-book`
/// checks clean; killed with SIGKILL mid-recording, it leaves a file that still replays.
#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn record_writes_a_replayable_file_even_when_killed() {
    let Some(path) = recording() else { return };
    let (stream, snapshot) = split(&path);
    let n = stream.len();
    let dir = tempfile::tempdir().unwrap();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let verify = |file: &Path| -> (bool, String) {
        let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
            .args(["replay", "--file", file.to_str().unwrap(), "--verify-book"])
            .output()
            .unwrap();
        (
            o.status.success(),
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        )
    };
    let field = |out: &str, k: &str| -> u64 {
        let line =
            out.lines().find(|l| l.starts_with("book-check:")).unwrap_or_else(|| panic!("{out}"));
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap()
            .parse()
            .unwrap()
    };

    // A full recording.
    let (ws, rest, _) = rt.block_on(serve(stream.clone(), snapshot.clone()));
    let file = dir.path().join("rec.gz");
    // Until every message is in (the deadline is only a guard against a hang).
    let max = n.to_string();
    let o = record_command(ws, rest, &file)
        .args(["--max-messages", &max, "--duration-s", "300"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains(&format!("recorded {} messages (1 snapshots)", n + 1)), "{stdout}");
    let (ok, out) = verify(&file);
    assert!(ok, "{out}");
    assert_eq!(field(&out, "mismatched"), 0, "{out}");
    let full = field(&out, "compared");
    assert!(full > 3_000, "{out}");

    // Killed while the data is still arriving: the complete gzip members replay.
    let slow: Vec<String> = stream.clone();
    let (ws, rest) = rt.block_on(async move {
        // The same server, but slowed down so the kill lands mid-stream.
        let ws_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ports = serve_rest(snapshot).await;
        let port = ws_l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let Ok((tcp, _)) = ws_l.accept().await else { return };
            let Ok(mut sock) = tokio_tungstenite::accept_async(tcp).await else { return };
            for (i, m) in slow.into_iter().enumerate() {
                if sock.send(WsMessage::Text(m.into())).await.is_err() {
                    return;
                }
                if i % 2_000 == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
                }
            }
            while let Some(Ok(_)) = sock.next().await {}
        });
        (port, ports)
    });
    let file = dir.path().join("killed.gz");
    let mut child = record_command(ws, rest, &file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A member is finished every 5 s: wait for one, then kill mid-way through the next.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::metadata(&file).map_or(0, |m| m.len()) == 0 {
        assert!(std::time::Instant::now() < deadline, "nothing was written");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (ok, out) = verify(&file);
    assert!(ok, "{out}");
    assert_eq!(field(&out, "mismatched"), 0, "{out}");
    let part = field(&out, "compared");
    assert!(
        part > 0 && part < full,
        "the kill should have cut the recording: {part} of {full} states\n{out}"
    );
    drop(rt);
}

/// `kairos record` of BTCUSDT from the test server into `file`.
fn record_command(ws: u16, rest: u16, file: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kairos"));
    c.args(["record", "--venue", "binance-spot", "--symbols", "BTCUSDT"])
        .args(["--ws-url", &format!("ws://127.0.0.1:{ws}")])
        .args(["--rest-url", &format!("http://127.0.0.1:{rest}")])
        .args(["--out", file.to_str().unwrap()]);
    c
}

/// The REST snapshot endpoint alone.
async fn serve_rest(snapshot: String) -> u16 {
    let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = rest.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = rest.accept().await else { return };
            let body = snapshot.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tcp.write_all(head.as_bytes()).await;
                let _ = tcp.write_all(body.as_bytes()).await;
            });
        }
    });
    port
}

/// The same for Coinbase: `kairos record --venue coinbase` from a Coinbase-format server on
/// 127.0.0.1, then `kairos replay` of that file, and `kairos paper` live against a second
/// server making the same market, give the same orders and fills.
#[test]
fn coinbase_record_replay_and_live_paper_agree() {
    use kairos_feeds::testkit::{CoinbaseMarket, serve_coinbase};
    let market =
        CoinbaseMarket { updates: 3_000, gap_at: None, trade_every: 2, heartbeat_every: 50 };
    // Every message the server sends: the snapshot, the updates, heartbeats and trades.
    let total = 1 + market.updates + market.updates / 50 + market.updates / 2;
    let dir = tempfile::tempdir().unwrap();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let file = dir.path().join("coinbase.gz");
    let (url, _) = rt.block_on(serve_coinbase(market)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["record", "--venue", "coinbase", "--symbols", "BTC-USD", "--ws-url", &url])
        .args(["--out", file.to_str().unwrap(), "--max-messages", &total.to_string()])
        .args(["--duration-s", "60"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let params = ["levels=5", "threshold=0.2", "size=0.1", "max_position=0.5"];
    let (a, b) = (dir.path().join("replay"), dir.path().join("paper"));
    let mut replay = Command::new(env!("CARGO_BIN_EXE_kairos"));
    replay.args(["replay", "--file", file.to_str().unwrap(), "--strategy", "book_imbalance"]);
    for p in params {
        replay.args(["--param", p]);
    }
    replay.args(["--tick-size", "0.01", "--lot-size", "0.00000001", "--out", a.to_str().unwrap()]);
    let o = replay.output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["replay", "--file", file.to_str().unwrap(), "--verify-book"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("a Coinbase recording"), "{err}");
    let line = format!("replay: {total} messages (0 malformed)");
    assert!(stdout.starts_with(&line), "every recorded message read as Coinbase's: {stdout}");

    let (url, state) = rt.block_on(serve_coinbase(market)).unwrap();
    let cfg = dir.path().join("agent.toml");
    let param_toml: String = params.iter().map(|p| p.replacen('=', " = ", 1) + "\n").collect();
    std::fs::write(
        &cfg,
        format!(
            "strategy = \"book_imbalance\"\nout = \"paper\"\n[params]\n{param_toml}\
             [instruments.BTC-USD]\ntick_size = 0.01\nlot_size = 0.00000001\n\
             [[coinbase]]\nproducts = [\"BTC-USD\"]\nws_url = \"{url}\"\n"
        ),
    )
    .unwrap();
    let o = paper_until_delivered(&cfg, || state.lock().unwrap().delivered);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    drop(rt);

    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    let (fa, fb) = (read(&a, "fills.csv"), read(&b, "fills.csv"));
    let (oa, ob) = (read(&a, "orders.csv"), read(&b, "orders.csv"));
    assert!(fa.lines().count() > 5, "the strategy should trade:\n{stdout}\n{oa}");
    assert_eq!(oa, ob, "order events differ between replay and live paper");
    assert_eq!(fa, fb, "fills differ between replay and live paper");
}
