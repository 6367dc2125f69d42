//! The live Coinbase feed against a Coinbase-format websocket server on 127.0.0.1: it answers
//! the subscriptions, sends a level2 snapshot of its book, then updates, trades and heartbeats
//! with per-connection sequence numbers; on the first connection it skips a sequence number.
//! The feed must see the gap, report the book unsynchronised, reconnect, resynchronise from the
//! new snapshot, and report only book states the server's book really went through.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kairos_feeds::coinbase_live::{CoinbaseFeed, FeedEvent};
use kairos_feeds::ws::WsConfig;
use kairos_strategies::{Fixed, OrderBook};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

type TopOf = (Option<(Fixed, Fixed)>, Option<(Fixed, Fixed)>);

const UPDATES: usize = 3_000;
const GAP_AT: u64 = 400;

struct Exchange {
    book: OrderBook,
    rng: u64,
    updates: usize,
    /// The book's top after every update, in order.
    tops: Vec<TopOf>,
    connections: usize,
}

impl Exchange {
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
}

fn l2(seq: u64, kind: &str, levels: &[(bool, Fixed, Fixed)]) -> String {
    let updates: Vec<serde_json::Value> = levels
        .iter()
        .map(|(bid, p, q)| {
            serde_json::json!({"side": if *bid { "bid" } else { "offer" }, "event_time": "2026-12-02T00:00:00Z",
                "price_level": p.to_string(), "new_quantity": q.to_string()})
        })
        .collect();
    serde_json::json!({"channel": "l2_data", "client_id": "", "timestamp": "2026-12-02T00:00:00Z",
        "sequence_num": seq, "events": [{"type": kind, "product_id": "BTC-USD", "updates": updates}]})
    .to_string()
}

async fn exchange(done: Arc<AtomicBool>) -> (String, Arc<Mutex<Exchange>>) {
    let mut book = OrderBook::new();
    for c in 0..50 {
        book.set_bid(Fixed::from_units((9_950 + c) * 1_000_000), Fixed::from_units(100_000_000));
        book.set_ask(Fixed::from_units((10_001 + c) * 1_000_000), Fixed::from_units(100_000_000));
    }
    let top = (book.best_bid(), book.best_ask());
    let ex = Arc::new(Mutex::new(Exchange {
        book,
        rng: 0x9E37_79B9_7F4A_7C15,
        updates: 0,
        tops: vec![top],
        connections: 0,
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let ex2 = ex.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let (ex, done) = (ex2.clone(), done.clone());
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await else { return };
                // Three subscriptions: level2, market_trades, heartbeats.
                for _ in 0..3 {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) => {
                            assert!(t.as_str().contains("\"subscribe\""), "{t}")
                        }
                        _ => return,
                    }
                }
                let first = {
                    let mut e = ex.lock().unwrap();
                    e.connections += 1;
                    e.connections == 1
                };
                let mut seq = 0u64;
                // The snapshot of the book as it is now.
                let snapshot = {
                    let e = ex.lock().unwrap();
                    let mut levels: Vec<(bool, Fixed, Fixed)> =
                        e.book.bids().map(|(p, q)| (true, p, q)).collect();
                    levels.extend(e.book.asks().map(|(p, q)| (false, p, q)));
                    l2(seq, "snapshot", &levels)
                };
                if ws.send(Message::text(snapshot)).await.is_err() {
                    return;
                }
                loop {
                    let msg = {
                        let mut e = ex.lock().unwrap();
                        if e.updates == UPDATES {
                            done.store(true, Ordering::SeqCst);
                            None
                        } else {
                            e.updates += 1;
                            seq += 1;
                            if first && seq == GAP_AT {
                                seq += 1; // one message lost on the way
                            }
                            let levels = e.update();
                            let mut out = vec![l2(seq, "update", &levels)];
                            if e.updates.is_multiple_of(50) {
                                seq += 1;
                                out.push(serde_json::json!({"channel": "heartbeats", "client_id": "", "timestamp": "2026-12-02T00:00:00Z",
                                    "sequence_num": seq, "events": [{"current_time": "now", "heartbeat_counter": e.updates}]}).to_string());
                                seq += 1;
                                out.push(serde_json::json!({"channel": "market_trades", "client_id": "", "timestamp": "2026-12-02T00:00:00Z",
                                    "sequence_num": seq, "events": [{"type": "update", "trades": [{"trade_id": "1", "product_id": "BTC-USD",
                                    "price": "100.00", "size": "0.5", "side": "SELL", "time": "2026-12-02T00:00:00Z"}]}]}).to_string());
                            }
                            Some(out)
                        }
                    };
                    let Some(msgs) = msg else { break };
                    for m in msgs {
                        if ws.send(Message::text(m)).await.is_err() {
                            return;
                        }
                    }
                }
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    (url, ex)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_gap_is_resynchronised_and_only_real_book_states_are_reported() {
    let done = Arc::new(AtomicBool::new(false));
    let (url, ex) = exchange(done.clone()).await;
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
    let collect = async {
        while let Some(e) = rx.recv().await {
            match e {
                FeedEvent::Book { bid, ask, .. } => {
                    books.push((bid, ask));
                    if done.load(Ordering::SeqCst) {
                        let e = ex.lock().unwrap();
                        if e.tops.last() == Some(&(bid, ask)) && e.updates == UPDATES {
                            return;
                        }
                    }
                }
                FeedEvent::Status { synced, why, .. } => statuses.push((synced, why)),
                FeedEvent::Trade(t) => {
                    assert_eq!(t.aggressor, kairos_strategies::Side::Buy, "SELL is the maker");
                    trades += 1;
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
    // Every reported state is one the exchange's book went through, in order.
    let mut at = 0;
    for b in &books {
        let found = e.tops[at..].iter().position(|t| t == b);
        at +=
            found.unwrap_or_else(|| panic!("{b:?} is not a state of the book after position {at}"));
    }
    assert!(books.len() > UPDATES / 2, "{} states", books.len());
}
