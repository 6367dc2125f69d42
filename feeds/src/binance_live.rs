//! A live Binance feed: the combined stream over a websocket that stays up ([`ws`]), depth
//! snapshots over REST, and a local book per symbol kept by [`DepthSync`].
//!
//! Each symbol's book starts unsynchronised on every (re)connection: the diffs are buffered,
//! a snapshot is fetched once the first diff is in, and the book is synchronised from the
//! first diff that reaches past it. A gap, a snapshot older than the buffered diffs, or a lost
//! connection unsynchronises it again, and a new snapshot is fetched. Every change of state
//! is reported ([`FeedEvent::Status`]), so that trading on a symbol can be blocked while its
//! book cannot be trusted.
//!
//! Both endpoints are configurable: the websocket base (`wss://stream.binance.com:9443`, or
//! since 2026-04-23 for USD-M `wss://fstream.binance.com/market`) and the REST base
//! (`https://api.binance.com`, `https://fapi.binance.com`), so tests point them at servers on
//! 127.0.0.1.

use std::collections::BTreeMap;
use std::time::Duration;

use kairos_strategies::Fixed;
use tokio::sync::{mpsc, watch};

use crate::binance::{self, Applied, DepthSync, Market, Message, Snapshot, Top, TradeMsg};
use crate::ws::{self, WsConfig, WsEvent};

/// What to follow and where.
#[derive(Debug, Clone)]
pub struct BinanceFeed {
    /// Spot or USD-M futures (the sync procedure and the REST path differ).
    pub market: Market,
    /// Websocket base URL, without `/stream`.
    pub ws_base: String,
    /// REST base URL.
    pub rest_base: String,
    /// Symbols, any case (`BTCUSDT`).
    pub symbols: Vec<String>,
    /// Snapshot depth (spot up to 5000, futures up to 1000).
    pub depth_limit: u32,
    /// Connection settings (the URL is filled from `ws_base` and the symbols).
    pub ws: WsConfig,
    /// Wait before fetching a snapshot again after one was too old or failed.
    pub snapshot_retry: Duration,
}

/// What the feed reports.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    /// A symbol's book after a diff: its update id and best levels, and what changed.
    Book {
        /// The symbol, upper case.
        symbol: String,
        /// The update id the book is at.
        update_id: u64,
        /// Best bid `(price, size)`.
        bid: Option<(Fixed, Fixed)>,
        /// Best ask.
        ask: Option<(Fixed, Fixed)>,
        /// Exchange time of the diff (ms); a snapshot takes the symbol's latest event time.
        event_ms: u64,
        /// The changed levels, or the whole book when the book has just been synchronised.
        levels: Levels,
    },
    /// The exchange's best bid and ask.
    Top(String, Top),
    /// A trade.
    Trade(TradeMsg),
    /// A symbol's book became usable or stopped being so.
    Status {
        /// The symbol.
        symbol: String,
        /// Whether the book can be traded on.
        synced: bool,
        /// Why.
        why: String,
    },
    /// A message that did not parse (skipped).
    Malformed(String),
}

pub use crate::normalise::Levels;

struct SymbolState {
    /// Latest exchange time seen for the symbol (ms).
    last_ms: u64,
    sync: DepthSync,
    /// A snapshot fetch is in flight.
    fetching: bool,
}

impl BinanceFeed {
    /// A feed of `symbols` on `market` with Binance's production endpoints.
    pub fn new(market: Market, symbols: &[&str]) -> Self {
        let (ws_base, rest_base, depth_limit) = match market {
            Market::Spot => ("wss://stream.binance.com:9443", "https://api.binance.com", 5000),
            Market::UsdM => ("wss://fstream.binance.com/market", "https://fapi.binance.com", 1000),
        };
        Self {
            market,
            ws_base: ws_base.into(),
            rest_base: rest_base.into(),
            symbols: symbols.iter().map(|s| s.to_ascii_uppercase()).collect(),
            depth_limit,
            ws: WsConfig::new(String::new()),
            snapshot_retry: Duration::from_millis(250),
        }
    }

    /// The combined-stream URL: diff depth, `bookTicker` and `trade` of every symbol.
    pub fn stream_url(&self) -> String {
        let depth = match self.market {
            Market::Spot => "depth@100ms",
            Market::UsdM => "depth@0ms",
        };
        let streams: Vec<String> = self
            .symbols
            .iter()
            .flat_map(|s| {
                let s = s.to_ascii_lowercase();
                [format!("{s}@{depth}"), format!("{s}@bookTicker"), format!("{s}@trade")]
            })
            .collect();
        format!("{}/stream?streams={}", self.ws_base.trim_end_matches('/'), streams.join("/"))
    }

    /// The REST depth-snapshot URL of `symbol`.
    pub fn snapshot_url(&self, symbol: &str) -> String {
        let path = match self.market {
            Market::Spot => "/api/v3/depth",
            Market::UsdM => "/fapi/v1/depth",
        };
        format!(
            "{}{path}?symbol={symbol}&limit={}",
            self.rest_base.trim_end_matches('/'),
            self.depth_limit
        )
    }

    /// Runs until `stop` turns true or `tx` is closed.
    pub async fn run(self, tx: mpsc::Sender<FeedEvent>, stop: watch::Receiver<bool>) {
        let cfg = WsConfig { url: self.stream_url(), ..self.ws.clone() };
        let (ws_tx, mut ws_rx) = mpsc::channel(4096);
        let link = ws::Link { tx: ws_tx, stop: stop.clone(), control: None };
        let conn = tokio::spawn(ws::run(cfg, Vec::new(), Some("serverShutdown"), link));
        // Each fetch is tagged with its connection: a snapshot asked for on an earlier one is
        // not applied to the books of a later one.
        type Fetched = (u32, String, Result<Snapshot, String>);
        let (snap_tx, mut snap_rx) = mpsc::channel::<Fetched>(16);
        let http = reqwest_feeds::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let mut state: BTreeMap<String, SymbolState> = BTreeMap::new();
        let mut connection = 0u32;
        let fetch = |conn: u32, symbol: String, delay: Duration| {
            let (http, url, snap_tx) = (http.clone(), self.snapshot_url(&symbol), snap_tx.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let got = async {
                    let text = http.get(&url).send().await?.error_for_status()?.text().await?;
                    Ok::<_, reqwest_feeds::Error>(text)
                }
                .await;
                let result = match got {
                    Err(e) => Err(format!("GET {url}: {e}")),
                    Ok(text) => match binance::parse(&text) {
                        Ok(Message::Snapshot(s)) => Ok(s),
                        Ok(_) => Err(format!("GET {url}: not a depth snapshot")),
                        Err(e) => Err(format!("GET {url}: {e}")),
                    },
                };
                let _ = snap_tx.send((conn, symbol, result)).await;
            });
        };
        let book =
            |symbol: &str, sync: &DepthSync, event_ms: u64, levels: Levels| FeedEvent::Book {
                symbol: symbol.to_string(),
                update_id: sync.update_id(),
                bid: sync.book().best_bid(),
                ask: sync.book().best_ask(),
                event_ms,
                levels,
            };
        let status = |symbol: &str, synced: bool, why: String| FeedEvent::Status {
            symbol: symbol.to_string(),
            synced,
            why,
        };
        loop {
            let mut out = Vec::new();
            // What a message or a snapshot did to one symbol's book: a status when it became
            // synchronised or stopped being so, and a fetch when it waits for a snapshot.
            let mut settle =
                |symbol: &str, st: &mut SymbolState, was: bool, why: String, retry: Duration| {
                    let now = st.sync.is_synced();
                    if now != was {
                        out.push(status(symbol, now, why));
                    }
                    if st.sync.needs_snapshot() && !st.fetching {
                        st.fetching = true;
                        fetch(connection, symbol.to_string(), retry);
                    }
                };
            tokio::select! {
                ev = ws_rx.recv() => match ev {
                    None => break,
                    Some(WsEvent::Connected(n)) => {
                        connection = n;
                        state = self
                            .symbols
                            .iter()
                            .map(|s| (s.clone(), SymbolState { last_ms: 0, sync: DepthSync::new(self.market), fetching: false }))
                            .collect();
                        for s in &self.symbols {
                            out.push(status(s, false, format!("connection {n}: awaiting a snapshot")));
                        }
                    }
                    Some(WsEvent::Disconnected { why, .. }) => {
                        for s in std::mem::take(&mut state).keys() {
                            out.push(status(s, false, format!("disconnected: {why:?}")));
                        }
                    }
                    Some(WsEvent::Text(text, _)) => match binance::parse(&text) {
                        Err(e) => out.push(FeedEvent::Malformed(e.to_string())),
                        Ok(Message::Top(s, t)) => out.push(FeedEvent::Top(s, t)),
                        Ok(Message::Trade(t)) => {
                            if let Some(st) = state.get_mut(&t.symbol) {
                                st.last_ms = st.last_ms.max(t.time_ms);
                            }
                            out.push(FeedEvent::Trade(t))
                        }
                        Ok(Message::Snapshot(_) | Message::Other) => {}
                        Ok(Message::Depth(d)) => {
                            let Some(st) = state.get_mut(&d.symbol) else { continue };
                            st.last_ms = st.last_ms.max(d.event_ms);
                            let was = st.sync.is_synced();
                            let applied = st.sync.on_diff(&d);
                            let why = if applied == Applied::Applied {
                                "synchronised".to_string()
                            } else {
                                format!("gap before update {}", d.first)
                            };
                            settle(&d.symbol, st, was, why, Duration::ZERO);
                            if applied == Applied::Applied {
                                // The first diff past a snapshot brings the whole book.
                                let levels = if was {
                                    Levels { bids: d.bids.clone(), asks: d.asks.clone(), full: false }
                                } else {
                                    Levels::whole(st.sync.book())
                                };
                                out.push(book(&d.symbol, &st.sync, d.event_ms, levels));
                            }
                        }
                    },
                },
                Some((conn, symbol, result)) = snap_rx.recv() => {
                    let Some(st) = state.get_mut(&symbol).filter(|st| conn == connection && st.fetching) else {
                        continue;
                    };
                    st.fetching = false;
                    let was = st.sync.is_synced();
                    match result {
                        Err(e) => tracing::warn!(%symbol, error = %e, "depth snapshot failed; retrying"),
                        Ok(snap) => {
                            st.sync.on_snapshot(&snap);
                        }
                    }
                    let why = format!("synchronised from the snapshot at {}", st.sync.update_id());
                    // A failed fetch, or a snapshot older than the buffered diffs: another, a
                    // moment later.
                    settle(&symbol, st, was, why, self.snapshot_retry);
                    if st.sync.is_synced() {
                        let levels = Levels::whole(st.sync.book());
                        out.push(book(&symbol, &st.sync, st.last_ms, levels));
                    }
                }
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
