//! Binance messages turned into the SDK's events, with one local book per symbol: what a
//! replay and a live session hand to the engine, through the same code.

use kairos_engine::{Clock, Engine, Execution};
use kairos_strategies::{
    BookSide, BookUpdate, Fixed, InstrumentId, MarketEvent, OrderBook, Side, Strategy, Timestamp,
    Trade,
};

use crate::binance::{Applied, DepthSync, Market, Message};

/// Where normalised events go (the engine's driver implements it).
pub trait Sink {
    /// A book change (diff levels, or the whole book when `snapshot` is set).
    fn book(&mut self, update: &BookUpdate<'_>);
    /// The book a normaliser should keep `instrument`'s levels in, when the sink
    /// holds one it can lend on every call (a replay's engine, whose context book it is):
    /// each level is then applied once, there, and arrives through [`Sink::book_applied`]
    /// instead of [`Sink::book`]. While the instrument is not synchronised, such a book holds
    /// the normaliser's working state (a snapshot waiting for its first diff, or a book a gap
    /// has made wrong); a sink without one keeps the last synchronised state. Either is only
    /// to be read while the instrument is tradable.
    ///
    /// It is asked just before levels are applied to it, with the time of the message they
    /// come from: an engine first does what was due before then (a delayed order reaching the
    /// venue sees the book as it was), as [`Sink::book`] does before applying an update.
    fn shared_book(&mut self, instrument: InstrumentId, ts: Timestamp) -> Option<&mut OrderBook> {
        let _ = (instrument, ts);
        None
    }
    /// A book change already applied to the [`Sink::shared_book`].
    fn book_applied(&mut self, update: &BookUpdate<'_>) {
        self.book(update);
    }
    /// A trade print.
    fn trade(&mut self, trade: &Trade);
    /// The instrument's book became usable (`synced`) or stopped being so, and why.
    fn status(&mut self, instrument: InstrumentId, synced: bool, why: &str);
}

/// A normaliser's events into an engine and its strategy: what a replay (and the benches)
/// drive the engine with. It lends the engine's book to the normalisers
/// ([`Sink::shared_book`]), so that a replay applies each level once.
pub struct Drive<'a, S: Strategy + ?Sized, X: Execution, C: Clock> {
    /// The engine.
    pub engine: &'a mut Engine<X, C>,
    /// Its strategy.
    pub strategy: &'a mut S,
}

impl<S: Strategy + ?Sized, X: Execution, C: Clock> Sink for Drive<'_, S, X, C> {
    fn book(&mut self, update: &BookUpdate<'_>) {
        self.engine.book(self.strategy, update);
    }
    fn shared_book(&mut self, instrument: InstrumentId, ts: Timestamp) -> Option<&mut OrderBook> {
        self.engine.lend_book(self.strategy, instrument, ts)
    }
    fn book_applied(&mut self, update: &BookUpdate<'_>) {
        self.engine.book_applied(self.strategy, update);
    }
    fn trade(&mut self, trade: &Trade) {
        self.engine.market(self.strategy, &MarketEvent::Trade(*trade));
    }
    fn status(&mut self, instrument: InstrumentId, synced: bool, why: &str) {
        self.engine.status(self.strategy, instrument, synced, why);
        tracing::info!(instrument = instrument.0, synced, "{why}");
    }
}

/// A Binance trade print as the SDK's event: at its trade time, the aggressor the side opposite
/// the maker.
pub fn trade(instrument: InstrumentId, t: &crate::binance::TradeMsg) -> Trade {
    Trade {
        instrument,
        ts: Timestamp::from_millis(t.time_ms as i64),
        price: t.price.to_f64(),
        size: t.qty.to_f64(),
        aggressor: if t.buyer_is_maker { Side::Sell } else { Side::Buy },
    }
}

/// A Coinbase trade print as the SDK's event: at its own time (the message's when it names
/// none), the aggressor as the parser read it.
pub fn coinbase_trade(instrument: InstrumentId, t: &crate::coinbase::TradeEvent) -> Trade {
    Trade {
        instrument,
        ts: Timestamp(t.time_ns),
        price: t.price.to_f64(),
        size: t.size.to_f64(),
        aggressor: t.aggressor,
    }
}

/// The levels a book event changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Levels {
    /// Bid levels `(price, new size)`; size zero removes the level.
    pub bids: Vec<(Fixed, Fixed)>,
    /// Ask levels.
    pub asks: Vec<(Fixed, Fixed)>,
    /// The levels are the whole book (it has just been synchronised), not changes.
    pub full: bool,
}

impl Levels {
    /// The whole of `book`.
    pub fn whole(book: &kairos_strategies::OrderBook) -> Self {
        Self { bids: book.bids().collect(), asks: book.asks().collect(), full: true }
    }

    /// These levels as the engine's book event for `instrument`.
    pub fn update(&self, instrument: InstrumentId, ts: Timestamp, sequence: u64) -> BookUpdate<'_> {
        BookUpdate {
            instrument,
            ts,
            sequence,
            bids: &self.bids,
            asks: &self.asks,
            snapshot: self.full,
        }
    }
}

/// Counts of what the normaliser did with its messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Book changes handed on.
    pub books: u64,
    /// Trades handed on.
    pub trades: u64,
    /// Diffs that could not be applied (buffered before a snapshot, stale, or after a gap).
    pub unsynced: u64,
    /// Gaps (missing updates) found.
    pub gaps: u64,
    /// Messages about symbols not followed.
    pub unknown_symbol: u64,
    /// Snapshots that named no symbol while no single book waited for one.
    pub orphan_snapshots: u64,
}

/// Keeps a [`DepthSync`] per followed symbol and turns messages into [`Sink`] calls.
///
/// Event times are the exchange's: a diff's event time (`E`), a trade's trade time (`T`); a
/// snapshot, which carries none, takes the symbol's latest event time. The same messages
/// therefore give the same events whether they come from a file or a socket.
#[derive(Debug)]
pub struct BinanceNormaliser {
    symbols: Vec<String>,
    market: Option<Market>,
    books: Vec<Option<DepthSync>>,
    last_ms: Vec<u64>,
    bids: Vec<(Fixed, Fixed)>,
    asks: Vec<(Fixed, Fixed)>,
    counts: Counts,
}

impl BinanceNormaliser {
    /// Follows `symbols` (upper case; instrument `i` is `symbols[i]`). `market` picks the
    /// sync procedure; `None` takes it from the first diff (`pu` present: USD-M).
    pub fn new(symbols: &[String], market: Option<Market>) -> Self {
        let n = symbols.len();
        Self {
            symbols: symbols.iter().map(|s| s.to_ascii_uppercase()).collect(),
            market,
            books: (0..n).map(|_| None).collect(),
            last_ms: vec![0; n],
            bids: Vec::new(),
            asks: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// What it did so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The instrument of `symbol`, if followed.
    pub fn instrument(&self, symbol: &str) -> Option<InstrumentId> {
        self.symbols.iter().position(|s| s == symbol).map(|i| InstrumentId(i as u32))
    }

    /// The local book of an instrument, once a diff for it arrived.
    pub fn sync(&self, instrument: InstrumentId) -> Option<&DepthSync> {
        self.books.get(instrument.index()).and_then(Option::as_ref)
    }

    /// Whether `instrument`'s book waits for a REST snapshot.
    pub fn needs_snapshot(&self, instrument: InstrumentId) -> bool {
        self.sync(instrument).is_none_or(DepthSync::needs_snapshot)
    }

    /// Handles one message.
    pub fn on_message(&mut self, msg: &Message, sink: &mut impl Sink) {
        match msg {
            Message::Depth(d) => {
                let Some(id) = self.instrument(&d.symbol) else {
                    self.counts.unknown_symbol += 1;
                    return;
                };
                let i = id.index();
                self.last_ms[i] = self.last_ms[i].max(d.event_ms);
                let market = self.market.unwrap_or(d.market());
                let sync = self.books[i].get_or_insert_with(|| DepthSync::new(market));
                let was_synced = sync.is_synced();
                // A shared book is lent only for a diff that will be applied to it (the others
                // touch no book, and must not move the engine's time: they never reach it).
                let ts = Timestamp::from_millis(d.event_ms as i64);
                let book = if sync.would_apply(d) { sink.shared_book(id, ts) } else { None };
                let (applied, shared) = match book {
                    Some(book) => (sync.on_diff_in(d, book), true),
                    None => (sync.on_diff(d), false),
                };
                match applied {
                    Applied::Applied if !was_synced => {
                        // The first diff past a snapshot: the engine gets the whole book.
                        self.publish_full(id, sink);
                    }
                    Applied::Applied => {
                        self.counts.books += 1;
                        let u = BookUpdate {
                            instrument: id,
                            ts: Timestamp::from_millis(d.event_ms as i64),
                            sequence: d.last,
                            bids: &d.bids,
                            asks: &d.asks,
                            snapshot: false,
                        };
                        if shared { sink.book_applied(&u) } else { sink.book(&u) }
                    }
                    Applied::Gap => {
                        self.counts.unsynced += 1;
                        self.counts.gaps += 1;
                        if was_synced {
                            sink.status(
                                id,
                                false,
                                "a gap in the diff stream; waiting for a snapshot",
                            );
                        }
                    }
                    Applied::Buffered | Applied::Stale => self.counts.unsynced += 1,
                }
            }
            Message::Snapshot(s) => {
                let id = match &s.symbol {
                    Some(sym) => self.instrument(sym),
                    None => {
                        // A REST answer names no symbol: it is for the one book waiting.
                        let waiting: Vec<usize> = (0..self.books.len())
                            .filter(|&i| {
                                self.books[i].as_ref().is_some_and(DepthSync::needs_snapshot)
                            })
                            .collect();
                        match waiting.as_slice() {
                            [i] => Some(InstrumentId(*i as u32)),
                            _ => None,
                        }
                    }
                };
                let Some(id) = id else {
                    self.counts.orphan_snapshots += 1;
                    return;
                };
                self.snapshot(id, s, sink);
            }
            Message::Trade(t) => {
                let Some(id) = self.instrument(&t.symbol) else {
                    self.counts.unknown_symbol += 1;
                    return;
                };
                let i = id.index();
                self.last_ms[i] = self.last_ms[i].max(t.time_ms);
                self.counts.trades += 1;
                sink.trade(&trade(id, t));
            }
            Message::Top(..) | Message::Other => {}
        }
    }

    /// Applies a REST snapshot to `instrument`'s book.
    pub fn snapshot(
        &mut self,
        id: InstrumentId,
        s: &crate::binance::Snapshot,
        sink: &mut impl Sink,
    ) {
        let i = id.index();
        let Some(slot) = self.books.get_mut(i) else { return };
        // Before the symbol's first diff, that diff decides the market (unless it is given).
        let market = self.market;
        let sync = slot.get_or_insert_with(|| {
            market.map_or_else(DepthSync::for_either_market, DepthSync::new)
        });
        let buffered = sync.buffer_len() as u64;
        let ts = Timestamp::from_millis(self.last_ms[i] as i64);
        let applied = match sink.shared_book(id, ts) {
            Some(book) => sync.on_snapshot_in(s, book),
            None => sync.on_snapshot(s),
        } as u64;
        // The buffered diffs were counted as unsynced; those applied now were not.
        self.counts.unsynced = self.counts.unsynced.saturating_sub(applied.min(buffered));
        if sync.is_synced() {
            self.publish_full(id, sink);
        }
    }

    /// Hands the whole synchronised book of `id` on, and says it is usable.
    fn publish_full(&mut self, id: InstrumentId, sink: &mut impl Sink) {
        let i = id.index();
        let Some(sync) = self.books.get(i).and_then(Option::as_ref) else { return };
        self.bids.clear();
        self.asks.clear();
        let ts = Timestamp::from_millis(self.last_ms[i] as i64);
        let (book, shared) = match sink.shared_book(id, ts) {
            Some(book) => (&*book, true),
            None => (sync.book(), false),
        };
        self.bids.extend(book.bids());
        self.asks.extend(book.asks());
        self.counts.books += 1;
        let u = BookUpdate {
            instrument: id,
            ts: Timestamp::from_millis(self.last_ms[i] as i64),
            sequence: sync.update_id(),
            bids: &self.bids,
            asks: &self.asks,
            snapshot: true,
        };
        if shared {
            sink.book_applied(&u)
        } else {
            sink.book(&u)
        }
        sink.status(id, true, "book synchronised");
    }
}

/// Keeps the books of one Coinbase connection's products (by its sequence numbers and
/// snapshots) and turns messages into [`Sink`] calls: what the live feed and a replay share.
///
/// A sequence number that jumps is a gap: every synchronised product is reported unusable
/// until a new snapshot (the live feed renews its connection, which brings them). A sequence
/// that starts again at 0 is a new connection (a recording holds several). Event times are
/// the messages' own (`timestamp`, a trade's `time`).
#[derive(Debug)]
pub struct CoinbaseNormaliser {
    products: Vec<String>,
    books: crate::coinbase::Books,
    synced: Vec<bool>,
    bids: Vec<(Fixed, Fixed)>,
    asks: Vec<(Fixed, Fixed)>,
    counts: Counts,
}

impl CoinbaseNormaliser {
    /// Follows `products` (instrument `i` is `products[i]`).
    pub fn new(products: &[String]) -> Self {
        Self {
            products: products.to_vec(),
            books: crate::coinbase::Books::new(),
            synced: vec![false; products.len()],
            bids: Vec::new(),
            asks: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// What it did so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The instrument of `product`, if followed.
    pub fn instrument(&self, product: &str) -> Option<InstrumentId> {
        self.products.iter().position(|p| p == product).map(|i| InstrumentId(i as u32))
    }

    /// The product of an instrument.
    pub fn product(&self, id: InstrumentId) -> Option<&str> {
        self.products.get(id.index()).map(String::as_str)
    }

    /// A product's book, while it is synchronised (empty when its levels are kept in the
    /// sink's [`Sink::shared_book`]).
    pub fn book(&self, id: InstrumentId) -> Option<&OrderBook> {
        self.books.book(self.product(id)?)
    }

    /// Every synchronised product becomes unusable, for `why`.
    pub fn unsync_all(&mut self, why: &str, sink: &mut impl Sink) {
        for (i, s) in self.synced.iter_mut().enumerate() {
            if std::mem::replace(s, false) {
                sink.status(InstrumentId(i as u32), false, why);
            }
        }
    }

    /// A new connection: sequence numbers start again and every book waits for its snapshot.
    pub fn connected(&mut self, why: &str, sink: &mut impl Sink) {
        self.books.reconnected();
        self.unsync_all(why, sink);
    }

    /// Handles one message; returns the sequence number before which messages were lost, on a
    /// gap (the connection should be renewed).
    pub fn on_message(
        &mut self,
        m: &crate::coinbase::Message,
        sink: &mut impl Sink,
    ) -> Option<u64> {
        use crate::coinbase::{Payload, Sequence};
        if let Some(seq) = m.sequence {
            if seq == 0 && self.books.last().is_some() {
                self.connected("a new connection in the stream", sink);
            }
            match self.books.sequence(seq) {
                Sequence::Repeat => return None,
                Sequence::InOrder => {}
                Sequence::Gap { missing } => {
                    self.counts.gaps += 1;
                    self.unsync_all(&format!("sequence gap: {missing} lost before {seq}"), sink);
                    return Some(seq);
                }
            }
        }
        match &m.payload {
            Payload::Book(events) => {
                for e in events {
                    let Some(id) = self.instrument(&e.product) else {
                        self.counts.unknown_symbol += 1;
                        continue;
                    };
                    let i = id.index();
                    let ts = Timestamp(m.ts_ns);
                    // A shared book (a replay's engine's) is lent only for an event that
                    // changes it, as for Binance.
                    let shared =
                        if self.books.would_apply(e) { sink.shared_book(id, ts) } else { None };
                    let lent = shared.is_some();
                    let ok = self.books.apply_in(e, shared);
                    let was = std::mem::replace(&mut self.synced[i], ok);
                    if !ok {
                        self.counts.unsynced += 1;
                        if was {
                            sink.status(id, false, "crossed or without a snapshot");
                        }
                        continue;
                    }
                    self.bids.clear();
                    self.asks.clear();
                    // The engine gets the whole book when it has just become usable (or on a
                    // snapshot), the changed levels after that.
                    let full = !was || e.snapshot;
                    if full {
                        let book = match lent {
                            true => sink.shared_book(id, ts).map(|b| &*b),
                            false => self.books.book(&e.product),
                        };
                        if let Some(book) = book {
                            self.bids.extend(book.bids());
                            self.asks.extend(book.asks());
                        }
                    } else {
                        for &(side, p, q) in &e.levels {
                            match side {
                                BookSide::Bid => self.bids.push((p, q)),
                                BookSide::Ask => self.asks.push((p, q)),
                            }
                        }
                    }
                    self.counts.books += 1;
                    let u = BookUpdate {
                        instrument: id,
                        ts: Timestamp(m.ts_ns),
                        sequence: m.sequence.unwrap_or(0),
                        bids: &self.bids,
                        asks: &self.asks,
                        snapshot: full,
                    };
                    if lent {
                        sink.book_applied(&u)
                    } else {
                        sink.book(&u)
                    }
                    if !was {
                        sink.status(id, true, "synchronised from a snapshot");
                    }
                }
            }
            Payload::Trades(trades) => {
                for t in trades {
                    let Some(id) = self.instrument(&t.product) else {
                        self.counts.unknown_symbol += 1;
                        continue;
                    };
                    self.counts.trades += 1;
                    sink.trade(&coinbase_trade(id, t));
                }
            }
            Payload::Heartbeat(_) | Payload::Other | Payload::Error(_) => {}
        }
        None
    }
}
