//! The live Binance feed against a Binance-format server on 127.0.0.1 that replays a real
//! recording (`../shared/data/binance-ws/`): a combined-stream websocket, and a REST depth
//! endpoint answering with the server's own book at that moment (the server applies every
//! diff, including those it withholds). Faults: a dropped connection, a withheld diff (a gap),
//! garbage, frozen data, a shutdown notice. Whatever the fault, every book state the feed
//! reports equals the book an offline replay of the whole recording has at that update id,
//! and the feed reports the symbol unsynchronised in between.

use std::sync::Arc;
use std::time::Duration;

use kairos_feeds::binance::Market;
use kairos_feeds::binance_live::{BinanceFeed, FeedEvent};
use kairos_feeds::testkit::{self, BinanceRecording, Cut, Faults, TopOf, Truth};
use kairos_feeds::ws::WsConfig;
use tokio::sync::{mpsc, watch};

struct Recording {
    rec: Arc<BinanceRecording>,
    truth: Truth,
}

fn recording() -> Option<Recording> {
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
    let rec = BinanceRecording::read(&path).unwrap();
    let truth = rec.truth();
    assert!(truth.tops.len() > 3_000);
    Some(Recording { rec: Arc::new(rec), truth })
}

struct Run {
    books: Vec<(u64, TopOf)>,
    statuses: Vec<(bool, String)>,
    malformed: usize,
}

async fn run_feed(rec: &Recording, faults: Faults) -> Run {
    let at = testkit::serve(rec.rec.clone(), faults).await.unwrap();
    let feed = BinanceFeed {
        ws_base: at.ws,
        rest_base: at.rest,
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
                    if update_id == rec.truth.last_update_id {
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
        assert_eq!(Some(top), rec.truth.tops.get(u), "the book at update {u}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
async fn the_live_book_equals_the_recordings_book_at_every_update() {
    let Some(rec) = recording() else { return };
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
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
async fn faults_are_detected_resynchronised_and_never_trusted_meanwhile() {
    let Some(rec) = recording() else { return };
    // A diff withheld: a gap, a new snapshot.
    let diff = (2_000..).find(|&i| rec.rec.stream[i].contains("depthUpdate")).unwrap();
    let run = run_feed(&rec, Faults { withhold: Some(diff), ..Faults::default() }).await;
    assert_true_to_the_recording(&rec, &run);
    assert!(run.statuses.iter().any(|s| !s.0 && s.1.contains("gap")), "{:?}", run.statuses);
    assert!(run.statuses.iter().filter(|s| s.0).count() >= 2, "resynchronised: {:?}", run.statuses);

    // The connection dropped after 5,000 messages: reconnect, snapshot, resynchronise.
    let run = run_feed(&rec, Faults { cuts: vec![(Cut::Drop, 5_000)], ..Faults::default() }).await;
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
    let run =
        run_feed(&rec, Faults { cuts: vec![(Cut::Freeze, 3_000)], ..Faults::default() }).await;
    assert_true_to_the_recording(&rec, &run);
    assert!(run.statuses.iter().any(|s| !s.0 && s.1.contains("Stale")), "{:?}", run.statuses);

    // A shutdown notice: a planned reconnect.
    let run =
        run_feed(&rec, Faults { cuts: vec![(Cut::Shutdown, 4_000)], ..Faults::default() }).await;
    assert_true_to_the_recording(&rec, &run);
    assert!(run.statuses.iter().any(|s| !s.0 && s.1.contains("Planned")), "{:?}", run.statuses);
}
