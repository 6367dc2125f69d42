//! Recorded feeds, in the format of `../shared/data/binance-ws/`: one message a line,
//! `<local receive time, ns> <raw message JSON>`, gzipped.
//!
//! [`verify_book`] replays a recording through the parser and the local book
//! ([`binance::DepthSync`]) and compares the book with the recording's own `bookTicker`
//! messages, the exchange's best bid and ask. How the two are matched in time: `bookTicker`
//! is pushed for every change of the best price or quantity and carries the book update id
//! `u` it reflects, while a diff leaves the book at its last update id. So the book after a
//! diff ending at `u` must equal the last `bookTicker` whose id is at or below `u` (between that
//! ticker's update and `u` the top did not change, or another ticker would exist). Tickers
//! arrive in id order on their own stream, a few milliseconds apart from the diffs, so a book
//! state is judged once a ticker with a higher id has arrived (or at the end of the file).
//!
//! The recordings start mid-stream: the diffs before the REST snapshot in the file are
//! buffered, those older than the snapshot dropped, and the book is valid from the first diff
//! that reaches past the snapshot. `unsynced` counts the diffs that could not be applied to a
//! synchronised book (buffered before the snapshot, stale, or after a gap until the next
//! snapshot); book states before the first ticker cannot be compared and are not counted.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use kairos_strategies::Fixed;

use crate::Result;
use crate::binance::{self, Applied, DepthSync, Message, Top};

/// What [`verify_book`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookCheck {
    /// Lines read.
    pub lines: u64,
    /// Book states compared with the exchange's best bid and ask.
    pub compared: u64,
    /// Of those, the ones that differed.
    pub mismatched: u64,
    /// Diffs not applied to a synchronised book.
    pub unsynced: u64,
    /// Lines that did not parse (counted and skipped).
    pub malformed: u64,
    /// Well-formed messages of kinds not used.
    pub other: u64,
    /// Gaps detected.
    pub gaps: u64,
    /// The first mismatches, described.
    pub examples: Vec<String>,
    /// The file ends in a cut-off gzip member (a recorder stopped mid-write): what precedes
    /// it was checked.
    pub cut_off: bool,
}

impl BookCheck {
    /// The summary line `book-check: compared=N mismatched=M unsynced=K`.
    pub fn line(&self) -> String {
        format!(
            "book-check: compared={} mismatched={} unsynced={}",
            self.compared, self.mismatched, self.unsynced
        )
    }
}

type TopOf = ((Fixed, Fixed), (Fixed, Fixed));

/// One symbol's comparison: book states waiting for the ticker that decides them.
#[derive(Default)]
struct Judge {
    /// Tickers by id, the newest last; older ones are dropped once no state needs them.
    tickers: VecDeque<Top>,
    /// Book states `(u, top)` not yet judged.
    states: VecDeque<(u64, TopOf)>,
}

impl Judge {
    /// Judges every state the tickers so far decide (all of them at the end of the file).
    fn settle(&mut self, all: bool, check: &mut BookCheck) {
        while let Some(&(u, top)) = self.states.front() {
            let decided = all || self.tickers.back().is_some_and(|t| t.update_id > u);
            if !decided {
                break;
            }
            self.states.pop_front();
            let at = self.tickers.partition_point(|t| t.update_id <= u);
            let Some(t) = at.checked_sub(1).map(|i| self.tickers[i]) else { continue };
            check.compared += 1;
            if (t.bid, t.ask) != top {
                check.mismatched += 1;
                if check.examples.len() < 5 {
                    check.examples.push(format!(
                        "book at update {u}: bid {} x {}, ask {} x {}; bookTicker {}: bid {} x {}, ask {} x {}",
                        top.0.0, top.0.1, top.1.0, top.1.1, t.update_id, t.bid.0, t.bid.1, t.ask.0, t.ask.1
                    ));
                }
            }
            // Keep the one ticker at or below the next state, and everything after it.
            let keep_from = at.saturating_sub(1);
            self.tickers.drain(..keep_from);
        }
    }
}

/// Whether recorded messages (or lines) are Coinbase Advanced Trade's: any of the first
/// hundred carries the `sequence_num` every Coinbase envelope has and no Binance message does.
pub fn is_coinbase<'a>(messages: impl Iterator<Item = &'a str>) -> bool {
    messages.take(100).any(|m| m.contains("\"sequence_num\""))
}

/// Replays the recording at `path` through the parser and book and compares the book with
/// the recording's `bookTicker` messages (see the module comment).
pub fn verify_book(path: &Path) -> Result<BookCheck> {
    let (lines, cut_off) = crate::record::read_lines(path)?;
    if is_coinbase(lines.iter().map(String::as_str)) {
        return Err(crate::Error::Io {
            path: path.to_path_buf(),
            reason: "a Coinbase recording: --verify-book compares the book with Binance's \
                     bookTicker messages, which it does not have (its books are checked by \
                     their sequence numbers as they are replayed)"
                .into(),
        });
    }
    let mut check = BookCheck { cut_off, ..BookCheck::default() };
    let mut books: BTreeMap<String, DepthSync> = BTreeMap::new();
    let mut judges: BTreeMap<String, Judge> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        check.lines += 1;
        let Some((_, json)) = line.split_once(' ') else {
            check.malformed += 1;
            continue;
        };
        match binance::parse(json) {
            Err(e) => {
                check.malformed += 1;
                tracing::debug!(line = i + 1, error = %e, "skipped");
            }
            Ok(Message::Other | Message::Trade(_)) => check.other += 1,
            Ok(Message::Top(symbol, top)) => {
                let j = judges.entry(symbol).or_default();
                if j.tickers.back().is_some_and(|t| t.update_id >= top.update_id) {
                    // Out of order: it cannot move the judgement forward.
                    continue;
                }
                j.tickers.push_back(top);
                j.settle(false, &mut check);
            }
            Ok(Message::Depth(d)) => {
                let sync =
                    books.entry(d.symbol.clone()).or_insert_with(|| DepthSync::new(d.market()));
                match sync.on_diff(&d) {
                    Applied::Applied => record_state(sync, &d.symbol, &mut judges, &mut check),
                    _ => check.unsynced += 1,
                }
            }
            Ok(Message::Snapshot(s)) => {
                // A REST answer names no symbol: it is the one book waiting for a snapshot.
                let waiting: Vec<String> = match &s.symbol {
                    Some(sym) => vec![sym.clone()],
                    None => books
                        .iter()
                        .filter(|(_, b)| b.needs_snapshot())
                        .map(|(k, _)| k.clone())
                        .collect(),
                };
                let [symbol] = waiting.as_slice() else {
                    tracing::warn!(
                        line = i + 1,
                        "a snapshot without a symbol and no single book waiting for one; skipped"
                    );
                    check.other += 1;
                    continue;
                };
                // A snapshot can come before the symbol's first diff (the REST answer was
                // quicker than the stream): the diffs after it are applied from it.
                let sync = books.entry(symbol.clone()).or_insert_with(DepthSync::for_either_market);
                let buffered = sync.buffer_len();
                let applied = sync.on_snapshot(&s);
                // The buffered diffs were counted as unsynced; those applied now were not.
                check.unsynced -= applied.min(buffered) as u64;
                if sync.is_synced() {
                    record_state(sync, symbol, &mut judges, &mut check);
                }
            }
        }
    }
    for j in judges.values_mut() {
        j.settle(true, &mut check);
    }
    check.gaps = books.values().map(|b| b.gaps).sum();
    Ok(check)
}

fn record_state(
    sync: &DepthSync,
    symbol: &str,
    judges: &mut BTreeMap<String, Judge>,
    check: &mut BookCheck,
) {
    let (Some(bid), Some(ask)) = (sync.book().best_bid(), sync.book().best_ask()) else {
        return;
    };
    let j = judges.entry(symbol.to_string()).or_default();
    j.states.push_back((sync.update_id(), (bid, ask)));
    j.settle(false, check);
}
