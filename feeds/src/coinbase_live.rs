//! A live Coinbase Advanced Trade feed: `level2`, `market_trades` and `heartbeats` over a
//! websocket that stays up ([`ws`]), with every message's `sequence_num` checked.
//!
//! The level2 channel sends a snapshot on subscription, then updates. A jump in the sequence
//! means lost messages: every book of the connection is unsynchronised, reported so, and the
//! connection is renewed at once; the new subscription brings new snapshots. Heartbeats keep
//! the sequence moving on a quiet market, so a stale feed shows as no data at all.

use kairos_strategies::{BookUpdate, Fixed, InstrumentId, Trade};
use tokio::sync::{mpsc, watch};

use crate::coinbase::{self, TradeEvent};
use crate::normalise::{CoinbaseNormaliser, Levels, Sink};
use crate::ws::{self, Control, WsConfig, WsEvent};

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
        let mut norm = CoinbaseNormaliser::new(&self.products);
        while let Some(ev) = ws_rx.recv().await {
            let mut got = Collect::default();
            let mut out = Vec::new();
            // Trades go out as the exchange printed them (exact decimals, trade ids).
            let mut trades: std::collections::VecDeque<TradeEvent> = Default::default();
            match ev {
                WsEvent::Connected(n) => {
                    norm.connected(&format!("connection {n}: awaiting a snapshot"), &mut got)
                }
                WsEvent::Disconnected { why, .. } => {
                    norm.unsync_all(&format!("disconnected: {why:?}"), &mut got)
                }
                WsEvent::Text(text, _) => match coinbase::parse(&text) {
                    Err(e) => out.push(FeedEvent::Malformed(e.to_string())),
                    Ok(m) => {
                        if let coinbase::Payload::Error(msg) = &m.payload {
                            out.push(FeedEvent::Malformed(format!(
                                "the exchange answered an error: {msg}"
                            )));
                        }
                        if let coinbase::Payload::Trades(t) = &m.payload {
                            let followed =
                                t.iter().filter(|t| norm.instrument(&t.product).is_some());
                            trades.extend(followed.cloned());
                        }
                        if let Some(seq) = norm.on_message(&m, &mut got) {
                            let why = format!("sequence gap before {seq}");
                            let _ = ctl_tx.send(Control::Reconnect(why)).await;
                        }
                    }
                },
            }
            out.extend(got.0.into_iter().filter_map(|e| e.into_event(&norm, &mut trades)));
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

/// What the normaliser said about one websocket event, in order.
#[derive(Default)]
struct Collect(Vec<Said>);

enum Said {
    Book {
        id: InstrumentId,
        sequence: u64,
        ts_ns: i64,
        levels: Levels,
    },
    /// A trade (the exchange's own print goes out in its place).
    Trade,
    Status {
        id: InstrumentId,
        synced: bool,
        why: String,
    },
}

impl Sink for Collect {
    fn book(&mut self, u: &BookUpdate<'_>) {
        let levels = Levels { bids: u.bids.to_vec(), asks: u.asks.to_vec(), full: u.snapshot };
        self.0.push(Said::Book { id: u.instrument, sequence: u.sequence, ts_ns: u.ts.0, levels });
    }
    fn trade(&mut self, _: &Trade) {
        self.0.push(Said::Trade);
    }
    fn status(&mut self, id: InstrumentId, synced: bool, why: &str) {
        self.0.push(Said::Status { id, synced, why: why.to_string() });
    }
}

impl Said {
    fn into_event(
        self,
        norm: &CoinbaseNormaliser,
        trades: &mut std::collections::VecDeque<TradeEvent>,
    ) -> Option<FeedEvent> {
        let product = |id| norm.product(id).unwrap_or_default().to_string();
        Some(match self {
            Said::Book { id, sequence, ts_ns, levels } => {
                let book = norm.book(id);
                FeedEvent::Book {
                    product: product(id),
                    sequence,
                    ts_ns,
                    bid: book.and_then(|b| b.best_bid()),
                    ask: book.and_then(|b| b.best_ask()),
                    levels,
                }
            }
            Said::Trade => FeedEvent::Trade(trades.pop_front()?),
            Said::Status { id, synced, why } => {
                FeedEvent::Status { product: product(id), synced, why }
            }
        })
    }
}
