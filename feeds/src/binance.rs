//! Binance market data: the combined-stream messages (`depthUpdate`, `bookTicker`, `trade`)
//! and REST depth snapshots, parsed without copying their strings, and the local book kept by
//! Binance's documented procedure.
//!
//! Spot (procedure rewritten 2024-12-16): buffer the diff stream, take a snapshot, drop diffs
//! with `u <= lastUpdateId`; the first diff applied must reach past the snapshot
//! (`U <= lastUpdateId + 1 <= u`), and afterwards any `U > local + 1` is a gap.
//! USD-M futures: drop diffs with `u < lastUpdateId`; the first applied must have
//! `U <= lastUpdateId <= u`, and afterwards every `pu` must equal the previous diff's `u`.
//! A gap (or a book that comes out crossed) unsynchronises the book until the next snapshot.

use kairos_strategies::{Fixed, OrderBook};
use serde::Deserialize;

mod fast;
use serde_json::value::RawValue;

/// Why a message was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON, or not the shape of any Binance message.
    Malformed(String),
    /// A price or quantity that is not a plain decimal.
    BadNumber(String),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed message: {e}"),
            Self::BadNumber(n) => write!(f, "not a decimal number: {n:?}"),
        }
    }
}

/// A diff of the book: the new total quantity at each price (zero removes the level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthDiff {
    /// The symbol, upper case.
    pub symbol: String,
    /// Event time, ms.
    pub event_ms: u64,
    /// First update id in the event (`U`).
    pub first: u64,
    /// Last update id in the event (`u`).
    pub last: u64,
    /// The previous event's last update id (`pu`, futures only).
    pub prev: Option<u64>,
    /// Bid levels.
    pub bids: Vec<(Fixed, Fixed)>,
    /// Ask levels.
    pub asks: Vec<(Fixed, Fixed)>,
}

impl DepthDiff {
    /// The market it comes from: only USD-M diffs carry the previous update id (`pu`).
    pub fn market(&self) -> Market {
        if self.prev.is_some() { Market::UsdM } else { Market::Spot }
    }
}

/// A REST depth snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The symbol when the message names it (REST answers do not).
    pub symbol: Option<String>,
    /// The update id the snapshot is at.
    pub last_update_id: u64,
    /// Bid levels.
    pub bids: Vec<(Fixed, Fixed)>,
    /// Ask levels.
    pub asks: Vec<(Fixed, Fixed)>,
}

/// The exchange's best bid and ask (`bookTicker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Top {
    /// The book update id it reflects.
    pub update_id: u64,
    /// Best bid price and quantity.
    pub bid: (Fixed, Fixed),
    /// Best ask price and quantity.
    pub ask: (Fixed, Fixed),
}

/// A trade print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeMsg {
    /// The symbol.
    pub symbol: String,
    /// Trade time, ms.
    pub time_ms: u64,
    /// Price.
    pub price: Fixed,
    /// Quantity.
    pub qty: Fixed,
    /// Whether the buyer was the maker (the aggressor sold).
    pub buyer_is_maker: bool,
}

/// One parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `depthUpdate`.
    Depth(DepthDiff),
    /// `bookTicker`, with the symbol.
    Top(String, Top),
    /// `trade`.
    Trade(TradeMsg),
    /// A depth snapshot.
    Snapshot(Snapshot),
    /// A well-formed message of a kind this parser does not use (counted, skipped).
    Other,
}

type Level = (Fixed, Fixed);

#[derive(Deserialize)]
struct RawDepth<'a> {
    #[serde(rename = "E")]
    event_ms: u64,
    #[serde(borrow, rename = "s")]
    symbol: &'a str,
    #[serde(rename = "U")]
    first: u64,
    #[serde(rename = "u")]
    last: u64,
    #[serde(default, rename = "pu")]
    prev: Option<u64>,
    #[serde(rename = "b")]
    bids: Vec<Level>,
    #[serde(rename = "a")]
    asks: Vec<Level>,
}

#[derive(Deserialize)]
struct RawTop<'a> {
    #[serde(rename = "u")]
    update_id: u64,
    #[serde(borrow, rename = "s")]
    symbol: &'a str,
    #[serde(borrow, rename = "b")]
    bid: &'a str,
    #[serde(borrow, rename = "B")]
    bid_qty: &'a str,
    #[serde(borrow, rename = "a")]
    ask: &'a str,
    #[serde(borrow, rename = "A")]
    ask_qty: &'a str,
}

#[derive(Deserialize)]
struct RawTrade<'a> {
    #[serde(borrow, rename = "s")]
    symbol: &'a str,
    #[serde(rename = "T")]
    time_ms: u64,
    #[serde(borrow, rename = "p")]
    price: &'a str,
    #[serde(borrow, rename = "q")]
    qty: &'a str,
    #[serde(rename = "m")]
    buyer_is_maker: bool,
}

#[derive(Deserialize)]
struct RawSnapshot {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    bids: Vec<Level>,
    asks: Vec<Level>,
}

fn num(s: &str) -> Result<Fixed, ParseError> {
    Fixed::parse(s).ok_or_else(|| ParseError::BadNumber(s.chars().take(40).collect()))
}

fn malformed(e: serde_json::Error) -> ParseError {
    ParseError::Malformed(e.to_string())
}

/// What a stream name says its `data` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Depth,
    Top,
    Trade,
    Snapshot,
    Other,
}

fn kind_of(stream: &str) -> Kind {
    // `str::contains` sets up a substring searcher that costs more than scanning these short
    // names for their few `@`s.
    let b = stream.as_bytes();
    if (0..b.len()).any(|i| b[i] == b'@' && b[i..].starts_with(b"@depth")) {
        return Kind::Depth;
    }
    match stream.rsplit('@').next().unwrap_or_default() {
        "bookTicker" => Kind::Top,
        "trade" => Kind::Trade,
        "snapshot" => Kind::Snapshot,
        _ => Kind::Other,
    }
}

/// A combined-stream envelope's `data`, parsed as its stream says.
enum Data<'a> {
    Depth(RawDepth<'a>),
    Top(RawTop<'a>),
    Trade(RawTrade<'a>),
    Snapshot(RawSnapshot),
    Other,
}

/// `{"stream": ..., "data": ...}` in one pass: Binance writes `stream` first, so `data` is
/// parsed straight into its type (a `data` that comes first is kept raw and parsed after).
struct Envelope<'a> {
    stream: &'a str,
    data: Data<'a>,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a combined-stream message {\"stream\": ..., \"data\": ...}")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error as _;
                let (mut stream, mut data, mut early) =
                    (None::<&'de str>, None, None::<&'de RawValue>);
                while let Some(key) = map.next_key::<&'de str>()? {
                    match key {
                        "stream" => stream = Some(map.next_value()?),
                        "data" => match stream.map(kind_of) {
                            Some(kind) => data = Some(data_of(kind, &mut map)?),
                            None => early = Some(map.next_value()?),
                        },
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                let stream = stream.ok_or_else(|| A::Error::missing_field("stream"))?;
                let data = match (data, early) {
                    (Some(d), _) => d,
                    (None, Some(raw)) => {
                        let mut de = serde_json::Deserializer::from_str(raw.get());
                        parse_data(kind_of(stream), &mut de).map_err(A::Error::custom)?
                    }
                    (None, None) => return Err(A::Error::missing_field("data")),
                };
                Ok(Envelope { stream, data })
            }
        }
        d.deserialize_map(V)
    }
}

fn data_of<'de, A: serde::de::MapAccess<'de>>(
    kind: Kind,
    map: &mut A,
) -> Result<Data<'de>, A::Error> {
    Ok(match kind {
        Kind::Depth => Data::Depth(map.next_value()?),
        Kind::Top => Data::Top(map.next_value()?),
        Kind::Trade => Data::Trade(map.next_value()?),
        Kind::Snapshot => Data::Snapshot(map.next_value()?),
        Kind::Other => {
            map.next_value::<serde::de::IgnoredAny>()?;
            Data::Other
        }
    })
}

fn parse_data<'de>(
    kind: Kind,
    de: &mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
) -> Result<Data<'de>, serde_json::Error> {
    Ok(match kind {
        Kind::Depth => Data::Depth(Deserialize::deserialize(de)?),
        Kind::Top => Data::Top(Deserialize::deserialize(de)?),
        Kind::Trade => Data::Trade(Deserialize::deserialize(de)?),
        Kind::Snapshot => Data::Snapshot(Deserialize::deserialize(de)?),
        Kind::Other => Data::Other,
    })
}

/// Parses one message: a combined-stream envelope (`{"stream": ..., "data": ...}`), or a bare
/// REST depth snapshot (`{"lastUpdateId": ...}`), as the recordings hold them.
pub fn parse(text: &str) -> Result<Message, ParseError> {
    let t = text.trim_start();
    if t.starts_with("{\"lastUpdateId\"") {
        return snapshot(t, None);
    }
    if let Some(m) = fast::parse(t) {
        return Ok(m);
    }
    parse_serde(t)
}

/// [`parse`] through serde_json alone, without the scanner for Binance's exact message
/// shapes (which answers for nearly every message and leaves the rest to this).
#[doc(hidden)]
pub fn parse_serde(text: &str) -> Result<Message, ParseError> {
    let t = text.trim_start();
    if t.starts_with("{\"lastUpdateId\"") {
        return snapshot(t, None);
    }
    let mut de = serde_json::Deserializer::from_str(t);
    let msg = parse_from(&mut de).map_err(malformed)?;
    de.end().map_err(malformed)?;
    msg
}

/// [`parse`] of a combined-stream envelope through any serde deserializer (for measuring JSON
/// parsers against each other on the same types; [`parse`] uses serde_json). The outer error
/// is the deserializer's, the inner one a field that is not a number.
#[doc(hidden)]
pub fn parse_from<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Result<Message, ParseError>, D::Error> {
    let env = Envelope::deserialize(de)?;
    Ok(message(env))
}

fn message(env: Envelope<'_>) -> Result<Message, ParseError> {
    match env.data {
        Data::Depth(d) => Ok(Message::Depth(DepthDiff {
            symbol: d.symbol.to_ascii_uppercase(),
            event_ms: d.event_ms,
            first: d.first,
            last: d.last,
            prev: d.prev,
            bids: d.bids,
            asks: d.asks,
        })),
        Data::Top(d) => Ok(Message::Top(
            d.symbol.to_ascii_uppercase(),
            Top {
                update_id: d.update_id,
                bid: (num(d.bid)?, num(d.bid_qty)?),
                ask: (num(d.ask)?, num(d.ask_qty)?),
            },
        )),
        Data::Trade(d) => Ok(Message::Trade(TradeMsg {
            symbol: d.symbol.to_ascii_uppercase(),
            time_ms: d.time_ms,
            price: num(d.price)?,
            qty: num(d.qty)?,
            buyer_is_maker: d.buyer_is_maker,
        })),
        Data::Snapshot(s) => Ok(Message::Snapshot(Snapshot {
            symbol: env.stream.split('@').next().map(str::to_ascii_uppercase),
            last_update_id: s.last_update_id,
            bids: s.bids,
            asks: s.asks,
        })),
        Data::Other => Ok(Message::Other),
    }
}

fn snapshot(text: &str, symbol: Option<String>) -> Result<Message, ParseError> {
    let s: RawSnapshot = serde_json::from_str(text).map_err(malformed)?;
    Ok(Message::Snapshot(Snapshot {
        symbol,
        last_update_id: s.last_update_id,
        bids: s.bids,
        asks: s.asks,
    }))
}

/// Which of Binance's procedures keeps the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    /// Spot: `U`/`u` continuity.
    Spot,
    /// USD-M futures: `pu` chaining.
    UsdM,
}

/// What happened to a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied: the book is synchronised at its `u`.
    Applied,
    /// Kept until a snapshot arrives.
    Buffered,
    /// Older than the book; dropped.
    Stale,
    /// Updates are missing: the book is unsynchronised until the next snapshot.
    Gap,
}

/// What [`DepthSync`] does with a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Keep it until a snapshot comes.
    Buffer,
    /// Drop it: the book is past it.
    Stale,
    /// Apply it.
    Apply,
    /// An update is missing before it: a gap.
    Lost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No usable snapshot: diffs are buffered.
    AwaitingSnapshot,
    /// A snapshot is in; the first diff that reaches past it is awaited.
    AwaitingFirst,
    /// Every diff since the snapshot applied.
    Synced,
}

/// Most diffs buffered while waiting for a snapshot (a few minutes of a busy symbol).
const MAX_BUFFER: usize = 10_000;

/// A symbol's local book, kept in sync with the diff stream.
#[derive(Debug)]
pub struct DepthSync {
    /// `None` until the first diff says which (a recording's snapshot can precede every diff).
    market: Option<Market>,
    book: OrderBook,
    state: State,
    /// The update id the book is at.
    at: u64,
    buffer: std::collections::VecDeque<DepthDiff>,
    /// Gaps seen so far.
    pub gaps: u64,
}

impl DepthSync {
    /// An unsynchronised book for `market`.
    pub fn new(market: Market) -> Self {
        Self { market: Some(market), ..Self::for_either_market() }
    }

    /// An unsynchronised book whose market the first diff decides (a USD-M diff carries
    /// `pu`, a spot one does not): for a recording, whose lines do not say which.
    pub fn for_either_market() -> Self {
        Self {
            market: None,
            book: OrderBook::new(),
            state: State::AwaitingSnapshot,
            at: 0,
            buffer: std::collections::VecDeque::new(),
            gaps: 0,
        }
    }

    /// The book (meaningful only while [`DepthSync::is_synced`], and empty when the levels are
    /// kept elsewhere: [`DepthSync::on_diff_in`]).
    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    /// Whether the book reflects every update up to [`DepthSync::update_id`].
    pub fn is_synced(&self) -> bool {
        self.state == State::Synced
    }

    /// Whether a snapshot is needed (none yet, or a gap since).
    pub fn needs_snapshot(&self) -> bool {
        self.state == State::AwaitingSnapshot
    }

    /// The update id the book is at.
    pub fn update_id(&self) -> u64 {
        self.at
    }

    /// Diffs kept until a snapshot arrives.
    pub fn buffer_len(&self) -> usize {
        self.buffer.len()
    }

    /// Takes a snapshot and applies the buffered diffs that follow it. Returns how many of
    /// the buffered diffs were applied.
    pub fn on_snapshot(&mut self, s: &Snapshot) -> usize {
        let mut book = std::mem::take(&mut self.book);
        let n = self.on_snapshot_in(s, &mut book);
        self.book = book;
        n
    }

    /// Applies a diff if it follows the book.
    pub fn on_diff(&mut self, d: &DepthDiff) -> Applied {
        let mut book = std::mem::take(&mut self.book);
        let r = self.on_diff_in(d, &mut book);
        self.book = book;
        r
    }

    /// [`DepthSync::on_snapshot`] keeping the levels in `book` instead of its own (a replay
    /// keeps them in the engine's book, so that each level is applied once). The same `book`
    /// must be given every time.
    pub fn on_snapshot_in(&mut self, s: &Snapshot, book: &mut OrderBook) -> usize {
        book.clear();
        book.set_levels(&s.bids, &s.asks);
        self.at = s.last_update_id;
        self.state = State::AwaitingFirst;
        let buffered = std::mem::take(&mut self.buffer);
        buffered.iter().filter(|d| self.on_diff_in(d, book) == Applied::Applied).count()
    }

    /// Whether [`DepthSync::on_diff`] would apply `d` to the book (rather than buffer it, drop
    /// it as stale or find a gap before it); an applied diff can still leave the book crossed,
    /// which is a gap.
    pub fn would_apply(&self, d: &DepthDiff) -> bool {
        self.step(d) == Step::Apply
    }

    /// [`DepthSync::on_diff`] on the levels kept in `book` (see [`DepthSync::on_snapshot_in`]).
    pub fn on_diff_in(&mut self, d: &DepthDiff, book: &mut OrderBook) -> Applied {
        self.market.get_or_insert(d.market());
        match self.step(d) {
            Step::Buffer => {
                if self.buffer.len() >= MAX_BUFFER {
                    self.buffer.pop_front();
                }
                self.buffer.push_back(d.clone());
                Applied::Buffered
            }
            Step::Stale => Applied::Stale,
            Step::Apply => self.apply(d, book),
            Step::Lost => self.lost(d),
        }
    }

    /// What Binance's procedure does with `d` in the current state.
    fn step(&self, d: &DepthDiff) -> Step {
        let market = self.market.unwrap_or_else(|| d.market());
        match self.state {
            State::AwaitingSnapshot => Step::Buffer,
            State::AwaitingFirst => {
                let (stale, first) = match market {
                    Market::Spot => (d.last <= self.at, d.first <= self.at.saturating_add(1)),
                    Market::UsdM => (d.last < self.at, d.first <= self.at),
                };
                match (stale, first) {
                    (true, _) => Step::Stale,
                    (false, true) => Step::Apply,
                    // The snapshot is older than the oldest diff kept: take another.
                    (false, false) => Step::Lost,
                }
            }
            State::Synced => {
                let follows = match (market, d.prev) {
                    (Market::UsdM, Some(pu)) => pu == self.at,
                    _ if d.last <= self.at => return Step::Stale,
                    _ => d.first <= self.at.saturating_add(1),
                };
                if follows { Step::Apply } else { Step::Lost }
            }
        }
    }

    fn apply(&mut self, d: &DepthDiff, book: &mut OrderBook) -> Applied {
        book.set_levels(&d.bids, &d.asks);
        self.at = d.last;
        if !book.is_consistent() {
            // A crossed book cannot be right: some update was lost.
            return self.lost(d);
        }
        self.state = State::Synced;
        Applied::Applied
    }

    fn lost(&mut self, d: &DepthDiff) -> Applied {
        self.gaps += 1;
        self.state = State::AwaitingSnapshot;
        self.buffer.clear();
        self.buffer.push_back(d.clone());
        Applied::Gap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Fixed {
        Fixed::parse(s).unwrap()
    }

    fn diff(first: u64, last: u64, prev: Option<u64>, bid: (&str, &str)) -> DepthDiff {
        DepthDiff {
            symbol: "BTCUSDT".into(),
            event_ms: 0,
            first,
            last,
            prev,
            bids: vec![(f(bid.0), f(bid.1))],
            asks: vec![(f("200"), f("1"))],
        }
    }

    fn snap(id: u64) -> Snapshot {
        Snapshot {
            symbol: None,
            last_update_id: id,
            bids: vec![(f("99"), f("5"))],
            asks: vec![(f("200"), f("2"))],
        }
    }

    #[test]
    fn messages_parse_as_the_recordings_hold_them() {
        let depth = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"]],"a":[["61837.64000000","1.54698000"]]}}"#;
        let Message::Depth(d) = parse(depth).unwrap() else { panic!() };
        assert_eq!((d.first, d.last, d.prev), (50093239189, 50093239202, None));
        assert_eq!(d.asks, vec![(f("61837.64"), f("1.54698"))]);
        let top = r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;
        let Message::Top(sym, t) = parse(top).unwrap() else { panic!() };
        assert_eq!((sym.as_str(), t.update_id, t.bid.0), ("BTCUSDT", 50093239212, f("61837.63")));
        let trade = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#;
        let Message::Trade(t) = parse(trade).unwrap() else { panic!() };
        assert!(t.buyer_is_maker && t.qty == f("0.02"));
        let fut = r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":5,"u":9,"pu":4,"b":[],"a":[]}}"#;
        let Message::Depth(d) = parse(fut).unwrap() else { panic!() };
        assert_eq!(d.prev, Some(4));
        let s =
            r#"{"lastUpdateId":50093239218,"bids":[["61837.63000000","3.78826000"]],"asks":[]}"#;
        let Message::Snapshot(s) = parse(s).unwrap() else { panic!() };
        assert_eq!(s.last_update_id, 50093239218);
        assert_eq!(parse(r#"{"stream":"x@kline_1m","data":{}}"#).unwrap(), Message::Other);
        // `data` before `stream`: kept raw, parsed after.
        let late = r#"{"data":{"u":7,"s":"ETHUSDT","b":"1.5","B":"2","a":"1.6","A":"3"},"stream":"ethusdt@bookTicker"}"#;
        assert!(
            matches!(parse(late).unwrap(), Message::Top(s, t) if s == "ETHUSDT" && t.update_id == 7)
        );
        let bad_level = r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"s":"B","U":1,"u":2,"b":[["1e5","1"]],"a":[]}}"#;
        assert!(
            matches!(parse(bad_level), Err(ParseError::Malformed(m)) if m.contains("not a decimal number: \"1e5\""))
        );
        for bad in ["", "{", "[1]", r#"{"stream":"btcusdt@trade","data":{"p":1}}"#] {
            assert!(matches!(parse(bad), Err(ParseError::Malformed(_))), "{bad}");
        }
        let nan = r#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"X","b":"NaN","B":"1","a":"1","A":"1"}}"#;
        assert_eq!(parse(nan), Err(ParseError::BadNumber("NaN".into())));
    }

    #[test]
    fn spot_sync_follows_the_documented_procedure() {
        let mut s = DepthSync::new(Market::Spot);
        assert_eq!(s.on_diff(&diff(5, 9, None, ("100", "1"))), Applied::Buffered);
        assert_eq!(s.on_diff(&diff(10, 12, None, ("101", "1"))), Applied::Buffered);
        // Snapshot at 10: the first diff is stale, the second reaches past it.
        assert_eq!(s.on_snapshot(&snap(10)), 1);
        assert!(s.is_synced() && s.update_id() == 12);
        assert_eq!(s.book().best_bid(), Some((f("101"), f("1"))));
        assert_eq!(s.on_diff(&diff(13, 14, None, ("102", "1"))), Applied::Applied);
        assert_eq!(s.on_diff(&diff(11, 14, None, ("103", "1"))), Applied::Stale);
        // 15 is missing.
        assert_eq!(s.on_diff(&diff(16, 17, None, ("104", "1"))), Applied::Gap);
        assert!(s.needs_snapshot() && !s.is_synced() && s.gaps == 1);
        // A snapshot older than the buffered diff: the first does not reach it; another gap.
        assert_eq!(s.on_snapshot(&snap(12)), 0);
        assert!(s.needs_snapshot());
        assert_eq!(s.on_diff(&diff(18, 20, None, ("105", "1"))), Applied::Buffered);
        assert_eq!(s.on_snapshot(&snap(18)), 1);
        assert!(s.is_synced());
    }

    #[test]
    fn futures_sync_chains_pu() {
        let mut s = DepthSync::new(Market::UsdM);
        s.on_diff(&diff(5, 9, Some(4), ("100", "1")));
        s.on_diff(&diff(10, 15, Some(9), ("101", "1")));
        // Snapshot at 12: 5..9 is stale, 10..15 holds it.
        assert_eq!(s.on_snapshot(&snap(12)), 1);
        assert_eq!(s.on_diff(&diff(16, 20, Some(15), ("102", "1"))), Applied::Applied);
        assert_eq!(s.on_diff(&diff(22, 25, Some(21), ("103", "1"))), Applied::Gap);
        assert!(s.needs_snapshot());
    }

    /// A snapshot before the symbol's first diff (a recording whose REST answer came back
    /// before the stream's first message): the first diff decides the market's rules.
    #[test]
    fn a_snapshot_first_takes_the_market_of_the_first_diff() {
        // USD-M: the diff 10..15 holds the snapshot at 12 (`U <= id <= u`), which the spot
        // rule (`U <= id + 1 <= u`) would accept too; 12..12 tells them apart.
        let mut s = DepthSync::for_either_market();
        s.on_snapshot(&snap(12));
        assert_eq!(s.on_diff(&diff(12, 12, Some(11), ("100", "1"))), Applied::Applied);
        assert_eq!(s.on_diff(&diff(13, 20, Some(12), ("101", "1"))), Applied::Applied);
        // Chained by `pu`: a `U` past `at + 1` is no gap on USD-M.
        assert_eq!(s.on_diff(&diff(25, 30, Some(20), ("102", "1"))), Applied::Applied);
        assert_eq!(s.gaps, 0);
        // Spot: 12..12 is stale after a snapshot at 12; 13..14 is the first applied.
        let mut s = DepthSync::for_either_market();
        s.on_snapshot(&snap(12));
        assert_eq!(s.on_diff(&diff(12, 12, None, ("100", "1"))), Applied::Stale);
        assert_eq!(s.on_diff(&diff(13, 14, None, ("101", "1"))), Applied::Applied);
        assert_eq!(s.on_diff(&diff(16, 17, None, ("102", "1"))), Applied::Gap);
    }

    /// Update ids at the top of the range (a hostile or corrupt snapshot) do not overflow.
    #[test]
    fn update_ids_at_u64_max_do_not_overflow() {
        for market in [Market::Spot, Market::UsdM] {
            let mut s = DepthSync::new(market);
            s.on_snapshot(&snap(u64::MAX));
            let prev = (market == Market::UsdM).then_some(u64::MAX - 1);
            assert_eq!(s.on_diff(&diff(5, 9, prev, ("100", "1"))), Applied::Stale);
            let r = s.on_diff(&diff(u64::MAX, u64::MAX, prev, ("100", "1")));
            assert_eq!(r, if market == Market::Spot { Applied::Stale } else { Applied::Applied });
            // Synced at the last id: anything after it is stale or chained.
            let _ = s.on_diff(&diff(u64::MAX, u64::MAX, Some(u64::MAX), ("100", "1")));
        }
    }

    #[test]
    fn a_crossed_book_is_a_gap() {
        let mut s = DepthSync::new(Market::Spot);
        s.on_snapshot(&snap(10));
        // A bid at 250 above the ask at 200.
        assert_eq!(s.on_diff(&diff(11, 11, None, ("250", "1"))), Applied::Gap);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// `would_apply` says exactly when `on_diff` applies a diff to the book, whatever the
        /// state, market and ids.
        #[test]
        fn would_apply_predicts_on_diff(
            futures in proptest::bool::ANY,
            steps in proptest::collection::vec(
                (0u8..6, 0u64..30, 0u64..4, proptest::option::of(0u64..30), 0u64..3),
                1..60,
            ),
        ) {
            let market = if futures { Market::UsdM } else { Market::Spot };
            let mut s = DepthSync::new(market);
            for (kind, first, len, prev, price) in steps {
                if kind == 0 {
                    s.on_snapshot(&snap(first));
                    continue;
                }
                // Bids at 100..102 against asks at 200: never crossed, so every apply sticks.
                let d = diff(first, first + len, prev, (&format!("{}", 100 + price), "1"));
                let predicted = s.would_apply(&d);
                let before = s.update_id();
                let r = s.on_diff(&d);
                let applied = r == Applied::Applied;
                proptest::prop_assert_eq!(predicted, applied, "{:?} at {} -> {:?}", d, before, r);
            }
        }

        /// Any text, and any byte mutation of real messages, parses or is an error.
        #[test]
        fn any_message_parses_or_is_refused(
            text in ".{0,200}",
            which in 0usize..4,
            edits in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..4),
        ) {
            let _ = parse(&text);
            let real = [
                r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":9,"b":[["1.5","2"]],"a":[["2.5","0.00000000"]]}}"#,
                r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#,
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":3,"p":"61837.63","q":"0.02","T":1,"m":true,"M":true}}"#,
                r#"{"lastUpdateId":50093239218,"bids":[["61837.63000000","3.78826000"]],"asks":[["61837.64","1"]]}"#,
            ][which];
            let mut bytes = real.as_bytes().to_vec();
            for (at, b) in edits {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
