//! The live Coinbase feed against a Coinbase-format websocket server on 127.0.0.1: it answers
//! the subscriptions, sends a level2 snapshot of its book, then updates, trades and heartbeats
//! with per-connection sequence numbers; on the first connection it skips a sequence number.
//! The feed must see the gap, report the book unsynchronised, reconnect, resynchronise from the
//! new snapshot, and report only book states the server's book really went through.

use std::time::Duration;

use kairos_feeds::coinbase_live::{CoinbaseFeed, FeedEvent};
use kairos_feeds::testkit::{self, CoinbaseMarket};
use kairos_feeds::ws::WsConfig;
use tokio::sync::{mpsc, watch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_gap_is_resynchronised_and_only_real_book_states_are_reported() {
    let market = CoinbaseMarket::default();
    let (url, ex) = testkit::serve_coinbase(market).await.unwrap();
    let feed = CoinbaseFeed {
        ws: WsConfig {
            stale_after: Duration::from_secs(30),
            backoff_min: Duration::from_millis(10),
            ..WsConfig::new(url)
        },
        ..CoinbaseFeed::new(&["BTC-USD"])
    };
    let (tx, mut rx) = mpsc::channel(1024);
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(feed.run(tx, stop));
    let (mut books, mut statuses, mut trades) = (Vec::new(), Vec::new(), 0);
    let mut aggressors = std::collections::BTreeSet::new();
    let collect = async {
        while let Some(e) = rx.recv().await {
            match e {
                FeedEvent::Book { bid, ask, .. } => {
                    books.push((bid, ask));
                    let e = ex.lock().unwrap();
                    if e.updates == market.updates && e.tops.last() == Some(&(bid, ask)) {
                        return;
                    }
                }
                FeedEvent::Status { synced, why, .. } => statuses.push((synced, why)),
                FeedEvent::Trade(t) => {
                    // The server alternates makers BUY (a sell aggressor) and SELL.
                    trades += 1;
                    aggressors.insert(format!("{:?}", t.aggressor));
                }
                FeedEvent::Malformed(m) => panic!("{m}"),
            }
        }
    };
    // A guard against a hang, not a synchronisation.
    tokio::time::timeout(Duration::from_secs(120), collect)
        .await
        .expect("the feed reached the final book");
    stop_tx.send(true).unwrap();
    drop(rx);
    let _ = task.await;

    let e = ex.lock().unwrap();
    assert_eq!(e.connections, 2, "reconnected once, after the gap");
    assert!(statuses.iter().any(|s| !s.0 && s.1.contains("sequence gap")), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| s.0).count(), 2, "synchronised twice: {statuses:?}");
    assert!(trades > 0);
    assert_eq!(aggressors.len(), 2, "both sides traded, maker BUY read as a sell: {aggressors:?}");
    // Every reported state is one the exchange's book went through, in order.
    let mut at = 0;
    for b in &books {
        let found = e.tops[at..].iter().position(|t| t == b);
        at +=
            found.unwrap_or_else(|| panic!("{b:?} is not a state of the book after position {at}"));
    }
    assert!(books.len() > market.updates / 2, "{} states", books.len());
}
