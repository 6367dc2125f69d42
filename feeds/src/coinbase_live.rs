//! A live Coinbase Advanced Trade feed: `level2`, `market_trades` and `heartbeats` over a
//! websocket that stays up ([`ws`]), with every message's `sequence_num` checked.
//!
//! The level2 channel sends a snapshot on subscription, then updates. A jump in the sequence
//! means lost messages: every book of the connection is unsynchronised, reported so, and the
//! connection is renewed at once; the new subscription brings new snapshots. Heartbeats keep
//! the sequence moving on a quiet market, so a stale feed shows as no data at all.

use kairos_strategies::Fixed;
use tokio::sync::{mpsc, watch};

use crate::coinbase::{self, Books, Payload, Sequence, TradeEvent};
use crate::normalise::Levels;
use crate::ws::{self, Control, WsConfig, WsEvent};
use kairos_strategies::BookSide;

/// What to follow and where.
#[derive(Debug, Clone)]
pub struct CoinbaseFeed {
    /// Products (`BTC-USD`).
    pub products: Vec<String>,
    /// Connection settings; the URL defaults to `wss://advanced-trade-ws.coinbase.com`.
    pub ws: WsConfig,
}

/// What the feed reports.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    /// A product's book after a book message: its best levels, and what changed.
    Book {
        /// The product.
        product: String,
        /// The message's `sequence_num` (per connection).
        sequence: u64,
        /// The message's time, ns since the epoch.
        ts_ns: i64,
        /// Best bid `(price, size)`.
        bid: Option<(Fixed, Fixed)>,
        /// Best ask.
        ask: Option<(Fixed, Fixed)>,
        /// The changed levels, or the whole book when it has just been synchronised.
        levels: Levels,
    },
    /// A trade.
    Trade(TradeEvent),
    /// A product's book became usable or stopped being so.
    Status {
        /// The product.
        product: String,
        /// Whether the book can be traded on.
        synced: bool,
        /// Why.
        why: String,
    },
    /// A message that did not parse, or an error answer from the exchange (skipped).
    Malformed(String),
}

impl CoinbaseFeed {
    /// A feed of `products` from Coinbase's production endpoint.
    pub fn new(products: &[&str]) -> Self {
        Self {
            products: products.iter().map(|p| p.to_string()).collect(),
            ws: WsConfig::new("wss://advanced-trade-ws.coinbase.com"),
        }
    }

    /// The subscription messages sent on every connection.
    pub fn subscriptions(&self) -> Vec<String> {
        ["level2", "market_trades", "heartbeats"]
            .iter()
            .map(|channel| {
                serde_json::json!({"type": "subscribe", "product_ids": self.products, "channel": channel})
                    .to_string()
            })
            .collect()
    }

    /// Runs until `stop` turns true or `tx` is closed.
    pub async fn run(self, tx: mpsc::Sender<FeedEvent>, stop: watch::Receiver<bool>) {
        let (ws_tx, mut ws_rx) = mpsc::channel(4096);
        let (ctl_tx, ctl_rx) = mpsc::channel(4);
        let link = ws::Link { tx: ws_tx, stop, control: Some(ctl_rx) };
        let conn = tokio::spawn(ws::run(self.ws.clone(), self.subscriptions(), None, link));
        let mut books = Books::new();
        let mut synced: std::collections::BTreeMap<String, bool> = Default::default();
        let status = |product: &str, ok: bool, why: String| FeedEvent::Status {
            product: product.to_string(),
            synced: ok,
            why,
        };
        while let Some(ev) = ws_rx.recv().await {
            let mut out = Vec::new();
            match ev {
                WsEvent::Connected(n) => {
                    books.reconnected();
                    for p in &self.products {
                        synced.insert(p.clone(), false);
                        out.push(status(p, false, format!("connection {n}: awaiting a snapshot")));
                    }
                }
                WsEvent::Disconnected { why, .. } => {
                    for (p, s) in &mut synced {
                        if std::mem::replace(s, false) {
                            out.push(status(p, false, format!("disconnected: {why:?}")));
                        }
                    }
                }
                WsEvent::Text(text, _) => match coinbase::parse(&text) {
                    Err(e) => out.push(FeedEvent::Malformed(e.to_string())),
                    Ok(m) => {
                        if let Some(seq) = m.sequence {
                            match books.sequence(seq) {
                                Sequence::Repeat => continue,
                                Sequence::InOrder => {}
                                Sequence::Gap { missing } => {
                                    for (p, s) in &mut synced {
                                        if std::mem::replace(s, false) {
                                            out.push(status(
                                                p,
                                                false,
                                                format!(
                                                    "sequence gap: {missing} lost before {seq}"
                                                ),
                                            ));
                                        }
                                    }
                                    let _ = ctl_tx
                                        .send(Control::Reconnect(format!(
                                            "sequence gap before {seq}"
                                        )))
                                        .await;
                                    for e in out.drain(..) {
                                        if tx.send(e).await.is_err() {
                                            conn.abort();
                                            return;
                                        }
                                    }
                                    continue;
                                }
                            }
                        }
                        match m.payload {
                            Payload::Book(events) => {
                                for e in &events {
                                    let ok = books.apply(e);
                                    let was = synced.insert(e.product.clone(), ok).unwrap_or(false);
                                    if let Some(b) = books.book(&e.product) {
                                        // The engine gets the whole book when it has just
                                        // become usable, the changed levels after that.
                                        let levels = if was && !e.snapshot {
                                            let side = |s: BookSide| {
                                                e.levels
                                                    .iter()
                                                    .filter(|l| l.0 == s)
                                                    .map(|l| (l.1, l.2))
                                                    .collect()
                                            };
                                            Levels {
                                                bids: side(BookSide::Bid),
                                                asks: side(BookSide::Ask),
                                                full: false,
                                            }
                                        } else {
                                            Levels::whole(b)
                                        };
                                        out.push(FeedEvent::Book {
                                            product: e.product.clone(),
                                            sequence: m.sequence.unwrap_or(0),
                                            ts_ns: m.ts_ns,
                                            bid: b.best_bid(),
                                            ask: b.best_ask(),
                                            levels,
                                        });
                                    }
                                    if ok != was {
                                        let why = if ok {
                                            "synchronised from a snapshot"
                                        } else {
                                            "crossed or without a snapshot"
                                        };
                                        out.push(status(&e.product, ok, why.into()));
                                    }
                                }
                            }
                            Payload::Trades(trades) => {
                                out.extend(trades.into_iter().map(FeedEvent::Trade))
                            }
                            Payload::Error(msg) => out.push(FeedEvent::Malformed(format!(
                                "the exchange answered an error: {msg}"
                            ))),
                            Payload::Heartbeat(_) | Payload::Other => {}
                        }
                    }
                },
            }
            for e in out {
                if tx.send(e).await.is_err() {
                    conn.abort();
                    return;
                }
            }
        }
        let _ = conn.await;
    }
}
