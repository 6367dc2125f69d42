//! Coinbase Advanced Trade market data: the `level2` channel (messages on `l2_data`: a
//! snapshot, then updates that carry the new absolute quantity of a level, `"0"` removing it),
//! `market_trades` and `heartbeats`.
//!
//! Every message of a connection carries `sequence_num`, one more than the previous message's
//! on that connection, whatever its channel. A jump means messages were lost: every book fed
//! by that connection is unsynchronised until the exchange sends a new snapshot, which it does
//! after a resubscription. Public trades report the maker's side; the aggressor is the other.

use std::collections::BTreeMap;

use kairos_strategies::{BookSide, Fixed, OrderBook, Side};
use serde::Deserialize;

/// Why a message was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed Coinbase message: {}", self.0)
    }
}

/// A change to one product's book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookEvent {
    /// The product (`BTC-USD`).
    pub product: String,
    /// A full snapshot (the book is replaced) rather than an update.
    pub snapshot: bool,
    /// `(side, price, new quantity)`; a quantity of zero removes the level.
    pub levels: Vec<(BookSide, Fixed, Fixed)>,
}

/// A public trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeEvent {
    /// The product.
    pub product: String,
    /// The exchange's trade id.
    pub trade_id: String,
    /// Price.
    pub price: Fixed,
    /// Size.
    pub size: Fixed,
    /// The aggressor (the opposite of the maker side Coinbase reports).
    pub aggressor: Side,
    /// The trade's time (`time`), ns since the epoch; the message's when it names none.
    pub time_ns: i64,
}

/// What one message carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Book snapshots and updates.
    Book(Vec<BookEvent>),
    /// Trades.
    Trades(Vec<TradeEvent>),
    /// A heartbeat, with its counter.
    Heartbeat(u64),
    /// Subscription confirmations and other channels (counted, skipped).
    Other,
    /// An error answer from the exchange.
    Error(String),
}

/// One message: its place in the connection's sequence and what it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `sequence_num`, absent on error answers.
    pub sequence: Option<u64>,
    /// The envelope's `timestamp`, ns since the epoch (0 on error answers, which carry none).
    pub ts_ns: i64,
    /// The content.
    pub payload: Payload,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    channel: Option<&'a str>,
    #[serde(default)]
    sequence_num: Option<u64>,
    #[serde(default, borrow)]
    timestamp: Option<&'a str>,
    #[serde(default, borrow)]
    events: Vec<&'a serde_json::value::RawValue>,
    #[serde(default, rename = "type", borrow)]
    kind: Option<&'a str>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct RawL2<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    product_id: String,
    updates: Vec<RawLevel<'a>>,
}

#[derive(Deserialize)]
struct RawLevel<'a> {
    #[serde(borrow)]
    side: &'a str,
    price_level: Fixed,
    new_quantity: Fixed,
}

#[derive(Deserialize)]
struct RawTrades {
    #[serde(default)]
    trades: Vec<RawTrade>,
}

#[derive(Deserialize)]
struct RawTrade {
    trade_id: String,
    product_id: String,
    price: Fixed,
    size: Fixed,
    side: String,
    #[serde(default)]
    time: Option<String>,
}

#[derive(Deserialize)]
struct RawHeartbeat {
    heartbeat_counter: serde_json::Value,
}

fn bad(e: impl std::fmt::Display) -> ParseError {
    ParseError(e.to_string().chars().take(200).collect())
}

/// An RFC 3339 time (`2023-02-09T20:32:50.714964855Z`) as ns since the epoch.
fn time_ns(s: &str) -> Result<i64, ParseError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| bad(format!("time {s:?} is not an RFC 3339 time")))
}

/// Parses one Coinbase Advanced Trade websocket message.
pub fn parse(text: &str) -> Result<Message, ParseError> {
    let env: Envelope<'_> = serde_json::from_str(text).map_err(bad)?;
    if env.kind == Some("error") {
        return Ok(Message {
            sequence: env.sequence_num,
            ts_ns: 0,
            payload: Payload::Error(env.message.unwrap_or_default()),
        });
    }
    let channel = env.channel.ok_or_else(|| bad("no channel"))?;
    let sequence = Some(env.sequence_num.ok_or_else(|| bad("no sequence_num"))?);
    let ts_ns = match env.timestamp {
        Some(t) => time_ns(t)?,
        None if matches!(channel, "l2_data" | "market_trades") => {
            return Err(bad(format!("a {channel} message without a timestamp")));
        }
        None => 0,
    };
    let payload = match channel {
        "l2_data" => {
            let mut out = Vec::with_capacity(env.events.len());
            for e in env.events {
                let e: RawL2<'_> = serde_json::from_str(e.get()).map_err(bad)?;
                let snapshot = match e.kind {
                    "snapshot" => true,
                    "update" => false,
                    other => return Err(bad(format!("l2_data event type {other:?}"))),
                };
                let mut levels = Vec::with_capacity(e.updates.len());
                for u in e.updates {
                    let side = match u.side {
                        "bid" => BookSide::Bid,
                        "offer" | "ask" => BookSide::Ask,
                        other => return Err(bad(format!("book side {other:?}"))),
                    };
                    levels.push((side, u.price_level, u.new_quantity));
                }
                out.push(BookEvent { product: e.product_id, snapshot, levels });
            }
            Payload::Book(out)
        }
        "market_trades" => {
            let mut out = Vec::new();
            for e in env.events {
                let e: RawTrades = serde_json::from_str(e.get()).map_err(bad)?;
                for t in e.trades {
                    let aggressor = match t.side.as_str() {
                        "BUY" => Side::Sell,
                        "SELL" => Side::Buy,
                        other => return Err(bad(format!("trade side {other:?}"))),
                    };
                    let time_ns = match &t.time {
                        Some(s) => time_ns(s)?,
                        None => ts_ns,
                    };
                    out.push(TradeEvent {
                        product: t.product_id,
                        trade_id: t.trade_id,
                        price: t.price,
                        size: t.size,
                        aggressor,
                        time_ns,
                    });
                }
            }
            Payload::Trades(out)
        }
        "heartbeats" => {
            let e = env.events.first().ok_or_else(|| bad("a heartbeat without an event"))?;
            let h: RawHeartbeat = serde_json::from_str(e.get()).map_err(bad)?;
            let counter = match &h.heartbeat_counter {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            };
            Payload::Heartbeat(counter.ok_or_else(|| bad("heartbeat_counter"))?)
        }
        _ => Payload::Other,
    };
    Ok(Message { sequence, ts_ns, payload })
}

/// What the sequence check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequence {
    /// The next message, as expected (or the first of the connection).
    InOrder,
    /// Already seen (or older): skip it.
    Repeat,
    /// `missing` messages were lost before this one.
    Gap {
        /// How many.
        missing: u64,
    },
}

/// A connection's books, kept by the sequence numbers and the snapshots.
#[derive(Debug, Default)]
pub struct Books {
    last: Option<u64>,
    books: BTreeMap<String, (OrderBook, bool)>,
    /// Gaps seen so far.
    pub gaps: u64,
}

impl Books {
    /// No connection yet, no books.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last sequence number seen on this connection.
    pub fn last(&self) -> Option<u64> {
        self.last
    }

    /// A new connection: sequence numbers start again, and every book waits for its snapshot.
    pub fn reconnected(&mut self) {
        self.last = None;
        for b in self.books.values_mut() {
            b.1 = false;
        }
    }

    /// Checks a message's place in the sequence. On a gap every book is unsynchronised.
    pub fn sequence(&mut self, seq: u64) -> Sequence {
        let verdict = match self.last {
            None => Sequence::InOrder,
            Some(last) if seq <= last => return Sequence::Repeat,
            Some(last) if seq == last + 1 => Sequence::InOrder,
            Some(last) => Sequence::Gap { missing: seq - last - 1 },
        };
        self.last = Some(seq);
        if let Sequence::Gap { .. } = verdict {
            self.gaps += 1;
            for b in self.books.values_mut() {
                b.1 = false;
            }
        }
        verdict
    }

    /// Applies a book event; updates to a book that has had no snapshot since the last gap
    /// are dropped. Returns whether the book is synchronised after it.
    pub fn apply(&mut self, e: &BookEvent) -> bool {
        self.apply_in(e, None)
    }

    /// Whether [`Books::apply`] would change the product's book: a snapshot, or an update to
    /// a synchronised book.
    pub fn would_apply(&self, e: &BookEvent) -> bool {
        e.snapshot || self.books.get(&e.product).is_some_and(|b| b.1)
    }

    /// [`Books::apply`] on the levels kept in `shared` when given (a replay keeps them in the
    /// engine's book, so that each level is applied once; the same book must be given every
    /// time, and [`Books::book`] then stays empty).
    pub fn apply_in(&mut self, e: &BookEvent, shared: Option<&mut OrderBook>) -> bool {
        let (own, synced) =
            self.books.entry(e.product.clone()).or_insert_with(|| (OrderBook::new(), false));
        let book = match shared {
            Some(b) => b,
            None => own,
        };
        if e.snapshot {
            book.clear();
            *synced = true;
        } else if !*synced {
            return false;
        }
        for &(side, price, qty) in &e.levels {
            book.set(side, price, qty);
        }
        if !book.is_consistent() {
            *synced = false;
        }
        *synced
    }

    /// A product's book, if it is synchronised.
    pub fn book(&self, product: &str) -> Option<&OrderBook> {
        self.books.get(product).filter(|b| b.1).map(|b| &b.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l2(seq: u64, kind: &str, levels: &str) -> String {
        format!(
            r#"{{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":{seq},"events":[{{"type":"{kind}","product_id":"BTC-USD","updates":[{levels}]}}]}}"#
        )
    }

    fn level(side: &str, price: &str, qty: &str) -> String {
        format!(
            r#"{{"side":"{side}","event_time":"1970-01-01T00:00:00Z","price_level":"{price}","new_quantity":"{qty}"}}"#
        )
    }

    fn f(s: &str) -> Fixed {
        Fixed::parse(s).unwrap()
    }

    #[test]
    fn messages_parse_as_documented() {
        let snap = l2(
            0,
            "snapshot",
            &[level("bid", "21921.73", "0.06317902"), level("offer", "21921.74", "1.5")].join(","),
        );
        let m = parse(&snap).unwrap();
        assert_eq!(m.sequence, Some(0));
        assert_eq!(m.ts_ns, 1_675_974_770_714_964_855, "the envelope's time, to the ns");
        let Payload::Book(ev) = m.payload else { panic!() };
        assert!(ev[0].snapshot);
        assert_eq!(ev[0].levels[1], (BookSide::Ask, f("21921.74"), f("1.5")));
        let trades = r#"{"channel":"market_trades","client_id":"","timestamp":"2023-02-09T20:19:35.39625135Z","sequence_num":4,"events":[{"type":"snapshot","trades":[{"trade_id":"000000000","product_id":"ETH-USD","price":"1260.01","size":"0.3","side":"BUY","time":"2019-08-14T20:42:27.265Z"}]}]}"#;
        let Payload::Trades(t) = parse(trades).unwrap().payload else { panic!() };
        assert_eq!((t[0].price, t[0].aggressor), (f("1260.01"), Side::Sell), "BUY is the maker");
        assert_eq!(t[0].time_ns, 1_565_815_347_265_000_000, "the trade's own time");
        let hb = r#"{"channel":"heartbeats","client_id":"","timestamp":"2023-06-23T20:31:26.122969572Z","sequence_num":5,"events":[{"current_time":"2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105","heartbeat_counter":"3049"}]}"#;
        assert_eq!(parse(hb).unwrap().payload, Payload::Heartbeat(3049));
        let sub = r#"{"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:32:50Z","sequence_num":1,"events":[{"subscriptions":{"level2":["BTC-USD"]}}]}"#;
        assert_eq!(parse(sub).unwrap().payload, Payload::Other);
        let err = r#"{"type":"error","message":"failure to subscribe"}"#;
        assert_eq!(parse(err).unwrap().payload, Payload::Error("failure to subscribe".into()));
        for bad in [
            "",
            "{}",
            "[]",
            &l2(1, "weird", ""),
            &l2(1, "update", &level("middle", "1", "1")),
            &l2(1, "update", &level("bid", "NaN", "1")),
            &l2(1, "update", "").replace("2023-02-09T20:32:50.714964855Z", "yesterday"),
            &l2(1, "update", "").replace(r#""timestamp":"2023-02-09T20:32:50.714964855Z","#, ""),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_sequence_gap_unsyncs_the_books_until_a_snapshot() {
        let mut books = Books::new();
        let run = |books: &mut Books, text: &str| -> Option<bool> {
            let m = parse(text).unwrap();
            if books.sequence(m.sequence.unwrap()) == Sequence::Repeat {
                return None;
            }
            let Payload::Book(ev) = m.payload else { return None };
            ev.iter().map(|e| books.apply(e)).last()
        };
        assert_eq!(
            run(&mut books, &l2(7, "update", &level("bid", "100", "1"))),
            Some(false),
            "no snapshot yet"
        );
        assert_eq!(
            run(
                &mut books,
                &l2(
                    8,
                    "snapshot",
                    &[level("bid", "100", "1"), level("offer", "101", "2")].join(",")
                )
            ),
            Some(true)
        );
        assert_eq!(run(&mut books, &l2(9, "update", &level("bid", "100", "0"))), Some(true));
        assert_eq!(books.book("BTC-USD").unwrap().best_bid(), None, "\"0\" removed the level");
        assert_eq!(
            run(&mut books, &l2(9, "update", &level("bid", "99", "5"))),
            None,
            "a repeat is skipped"
        );
        // 10 and 11 lost.
        assert_eq!(run(&mut books, &l2(12, "update", &level("bid", "99", "5"))), Some(false));
        assert_eq!(books.gaps, 1);
        assert!(books.book("BTC-USD").is_none());
        assert_eq!(
            run(
                &mut books,
                &l2(
                    13,
                    "snapshot",
                    &[level("bid", "98", "1"), level("offer", "101", "2")].join(",")
                )
            ),
            Some(true)
        );
        assert_eq!(books.book("BTC-USD").unwrap().best_bid(), Some((f("98"), f("1"))));
        // A new connection starts its own sequence.
        books.reconnected();
        assert!(books.book("BTC-USD").is_none());
        assert_eq!(books.sequence(0), Sequence::InOrder);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any text, and mutations of a real message, parse or are refused.
        #[test]
        fn any_message_parses_or_is_refused(
            text in ".{0,200}",
            edits in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..4),
        ) {
            let _ = parse(&text);
            let mut bytes = l2(3, "update", &level("offer", "21921.74", "1.5")).into_bytes();
            for (at, b) in edits {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
