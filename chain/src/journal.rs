//! The transaction journal: every order, every state change of every transaction signed for
//! it, the next nonce per sender, and the day's spend per asset, in a SQLite file.
//!
//! It is written before the action it records takes effect outside the process (a signed
//! transaction is journalled with its raw bytes before it is broadcast), so after a crash the
//! executor resumes the same bytes rather than signing a second order, and the daily spend
//! caps survive restarts.
//!
//! An *order* is one thing the caller asked for (a transfer, a swap). Its transactions are
//! the versions signed for it: the original, its fee bumps (same nonce), and, only after the
//! chain showed its nonce taken by another transaction, a re-signed one at a new nonce. An
//! order is settled when one of its transactions is final (confirmed or reverted) or when
//! every one of them is known dead (dropped, replaced).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use alloy::primitives::{Address, B256, U256};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{Error, Result};

/// A transaction's states, as journalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// Checked and signed; not yet known to have reached a node.
    Signed,
    /// Sent to a node, which accepted it, already had it, or gave no clear answer: from here
    /// on it may be mined, and it is never signed again at another nonce until the chain shows
    /// that nonce used by a different transaction.
    Broadcast,
    /// Replaced by a fee bump (same nonce, higher fees) that was mined instead.
    Replaced,
    /// Included with enough confirmations.
    Confirmed,
    /// Included but reverted.
    Reverted,
    /// Never included: the node refused it outright, or its nonce was used by another
    /// transaction.
    Dropped,
    /// Its inclusion block was reorganised away; it is being tracked again.
    Reorged,
    /// Refused by a guardrail or a failed simulation: never signed or never sent.
    Refused,
}

impl TxState {
    /// The name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signed => "signed",
            Self::Broadcast => "broadcast",
            Self::Replaced => "replaced",
            Self::Confirmed => "confirmed",
            Self::Reverted => "reverted",
            Self::Dropped => "dropped",
            Self::Reorged => "reorged",
            Self::Refused => "refused",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "signed" => Self::Signed,
            "broadcast" => Self::Broadcast,
            "replaced" => Self::Replaced,
            "confirmed" => Self::Confirmed,
            "reverted" => Self::Reverted,
            "dropped" => Self::Dropped,
            "reorged" => Self::Reorged,
            "refused" => Self::Refused,
            _ => return None,
        })
    }

    /// Whether nothing more can happen to a transaction in this state.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Signed | Self::Broadcast | Self::Reorged)
    }
}

/// One state change to journal.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The order it belongs to ([`Journal::new_order`]).
    pub order: Option<i64>,
    /// The sender.
    pub sender: Address,
    /// The transaction's nonce, once one is taken.
    pub nonce: Option<u64>,
    /// The transaction hash, once signed.
    pub hash: Option<B256>,
    /// The new state.
    pub state: TxState,
    /// A human account (fees, block, reason).
    pub detail: &'a str,
    /// The signed transaction, with [`TxState::Signed`].
    pub raw: Option<&'a [u8]>,
}

/// One journalled state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxEvent {
    /// Its row in the journal (increasing).
    pub id: i64,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// The order it belongs to (absent in journals written before orders were kept).
    pub order: Option<i64>,
    /// The sender.
    pub sender: Address,
    /// Its nonce (absent for refusals before a nonce was taken).
    pub nonce: Option<u64>,
    /// The transaction hash, once signed.
    pub hash: Option<B256>,
    /// The new state.
    pub state: String,
    /// A human account (fees, block, reason).
    pub detail: String,
}

/// One signed version of an unsettled transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Its hash.
    pub hash: B256,
    /// The signed bytes, to rebroadcast as they are.
    pub raw: Vec<u8>,
}

/// A nonce of an order with signed transactions and no final state yet: what a restart must
/// resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsettled {
    /// The order (absent in journals written before orders were kept).
    pub order: Option<i64>,
    /// The nonce.
    pub nonce: u64,
    /// Every version signed for it that may still be mined, oldest first (fee bumps last).
    pub versions: Vec<Version>,
    /// Whether any of them was broadcast (otherwise the bytes never left the process).
    pub broadcast: bool,
}

/// The journal file. One process at a time holds it (an exclusive lock on `FILE.lock`, which
/// the operating system releases when the process ends, however it ends): two processes
/// signing for one wallet would each think they own its nonces.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    conn: Mutex<Connection>,
    _lock: Option<std::fs::File>,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`; `:memory:` for a throwaway one.
    /// Journals written by earlier versions are brought up to date in place.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let err = |e: rusqlite::Error| Error::Journal { path: path.clone(), reason: e.to_string() };
        let lock = if path.as_os_str() == ":memory:" { None } else { Some(lock(&path)?) };
        let conn = Connection::open(&path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS tx_events (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 at_ms INTEGER NOT NULL,
                 sender TEXT NOT NULL,
                 nonce INTEGER,
                 hash TEXT,
                 state TEXT NOT NULL,
                 detail TEXT NOT NULL,
                 raw BLOB
             );
             CREATE INDEX IF NOT EXISTS tx_events_hash ON tx_events(hash);
             CREATE TABLE IF NOT EXISTS orders (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 at_ms INTEGER NOT NULL,
                 sender TEXT NOT NULL,
                 summary TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS nonces (sender TEXT PRIMARY KEY, next INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS spends (
                 day INTEGER NOT NULL,
                 asset TEXT NOT NULL,
                 amount TEXT NOT NULL,
                 PRIMARY KEY (day, asset)
             );",
        )
        .map_err(err)?;
        let has_order: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('tx_events') WHERE name = 'order_id'")
            .and_then(|mut st| st.exists([]))
            .map_err(err)?;
        if !has_order {
            conn.execute_batch("ALTER TABLE tx_events ADD COLUMN order_id INTEGER").map_err(err)?;
        }
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS tx_events_order ON tx_events(order_id);
             CREATE INDEX IF NOT EXISTS tx_events_sender ON tx_events(sender, id);",
        )
        .map_err(err)?;
        Ok(Self { path, conn: Mutex::new(conn), _lock: lock })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(|e| Error::Journal { path: self.path.clone(), reason: e.to_string() })
    }

    /// Starts an order of `sender`; `summary` says what was asked for. Returns its id.
    pub fn new_order(&self, sender: Address, summary: &str) -> Result<i64> {
        let at_ms = chrono::Utc::now().timestamp_millis();
        self.with(|c| {
            c.execute(
                "INSERT INTO orders (at_ms, sender, summary) VALUES (?1, ?2, ?3)",
                params![at_ms, sender.to_string(), summary],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// The newest order of `sender` whose summary starts `{label}: ` (see
    /// `Executor::submit_labelled`), made at or after `since_ms`: its id.
    pub fn order_labelled(
        &self,
        sender: Address,
        label: &str,
        since_ms: i64,
    ) -> Result<Option<i64>> {
        let head = format!("{label}: ");
        self.with(|c| {
            c.query_row(
                "SELECT id FROM orders WHERE sender = ?1 AND substr(summary, 1, length(?2)) = ?2
                 AND at_ms >= ?3 ORDER BY id DESC LIMIT 1",
                params![sender.to_string(), head, since_ms],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// What an order asked for.
    pub fn order_summary(&self, order: i64) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row("SELECT summary FROM orders WHERE id = ?1", params![order], |r| r.get(0))
                .optional()
        })
    }

    /// Appends a state change; returns its row id.
    pub fn record(&self, e: Entry<'_>) -> Result<i64> {
        self.record_with_spends(e, 0, &[])
    }

    /// Appends a state change and adds `spends` to day `day`'s spend, in one transaction: a
    /// crash leaves both or neither, so a signed transaction's spend is never missing from the
    /// daily caps after a restart.
    pub fn record_with_spends(
        &self,
        e: Entry<'_>,
        day: i64,
        spends: &[(Address, U256)],
    ) -> Result<i64> {
        let at_ms = chrono::Utc::now().timestamp_millis();
        self.with(|c| {
            let c = c.transaction()?;
            for (asset, amount) in spends {
                add_spend_in(&c, day, *asset, *amount)?;
            }
            c.execute(
                "INSERT INTO tx_events (at_ms, sender, nonce, hash, state, detail, raw, order_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    at_ms,
                    e.sender.to_string(),
                    e.nonce.map(|n| n as i64),
                    e.hash.map(|h| h.to_string()),
                    e.state.as_str(),
                    e.detail,
                    e.raw,
                    e.order
                ],
            )?;
            let id = c.last_insert_rowid();
            c.commit()?;
            Ok(id)
        })
    }

    fn query_events(&self, filter: &str, arg: &dyn rusqlite::ToSql) -> Result<Vec<TxEvent>> {
        let sql = format!(
            "SELECT id, at_ms, order_id, sender, nonce, hash, state, detail FROM tx_events
             WHERE {filter} ORDER BY id"
        );
        self.with(|c| {
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map([arg], |r| {
                Ok(TxEvent {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    order: r.get(2)?,
                    sender: r.get::<_, String>(3)?.parse().unwrap_or(Address::ZERO),
                    nonce: r.get::<_, Option<i64>>(4)?.map(|n| n as u64),
                    hash: r.get::<_, Option<String>>(5)?.and_then(|h| h.parse().ok()),
                    state: r.get(6)?,
                    detail: r.get(7)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Every event of `sender`, oldest first.
    pub fn events(&self, sender: Address) -> Result<Vec<TxEvent>> {
        self.query_events("sender = ?1", &sender.to_string())
    }

    /// Every event of one order, oldest first.
    pub fn order_events(&self, order: i64) -> Result<Vec<TxEvent>> {
        self.query_events("order_id = ?1", &order)
    }

    /// Every event of one transaction hash, oldest first.
    pub fn hash_events(&self, hash: B256) -> Result<Vec<TxEvent>> {
        self.query_events("hash = ?1", &hash.to_string())
    }

    /// The transactions of `sender` that a restart must resume, by nonce: per order and nonce,
    /// the signed versions that may still be mined, unless one of that nonce's versions is
    /// already final. Rows whose hash does not parse are skipped with a warning; a version's
    /// nonce comes from its rows, or else from its signed bytes.
    pub fn unsettled(&self, sender: Address) -> Result<Vec<Unsettled>> {
        type Row = (Option<i64>, Option<i64>, String, String, Option<Vec<u8>>);
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT order_id, nonce, hash, state, raw FROM tx_events
                 WHERE sender = ?1 AND hash IS NOT NULL ORDER BY id",
            )?;
            let rows = st.query_map(params![sender.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            rows.collect()
        })?;
        #[derive(Default)]
        struct PerHash {
            first: usize,
            order: Option<i64>,
            nonce: Option<u64>,
            raw: Option<Vec<u8>>,
            last: Option<TxState>,
            broadcast: bool,
        }
        let mut hashes: BTreeMap<B256, PerHash> = BTreeMap::new();
        for (i, (order, nonce, hash, state, raw)) in rows.into_iter().enumerate() {
            let Ok(hash) = hash.parse::<B256>() else {
                tracing::warn!(journal = %self.path.display(), %hash, "a journal row's hash does not parse; skipped");
                continue;
            };
            let h =
                hashes.entry(hash).or_insert_with(|| PerHash { first: i, ..PerHash::default() });
            h.order = h.order.or(order);
            h.nonce = h.nonce.or(nonce.and_then(|n| u64::try_from(n).ok()));
            if raw.is_some() {
                h.raw = raw;
            }
            let state = TxState::parse(&state);
            h.broadcast |= state == Some(TxState::Broadcast);
            h.last = state.or(h.last);
        }
        /// Per order and nonce: whether a version is final, and the live versions (first row,
        /// bytes, whether broadcast).
        type Groups = BTreeMap<(u64, Option<i64>), (bool, Vec<(usize, Version, bool)>)>;
        let mut groups = Groups::new();
        for (hash, h) in hashes {
            let Some(nonce) = h.nonce.or_else(|| h.raw.as_deref().and_then(nonce_of)) else {
                continue;
            };
            let g = groups.entry((nonce, h.order)).or_default();
            match h.last {
                Some(TxState::Confirmed | TxState::Reverted) => g.0 = true,
                Some(s) if s.is_final() => {}
                _ => match h.raw {
                    Some(raw) => g.1.push((h.first, Version { hash, raw }, h.broadcast)),
                    None => tracing::warn!(
                        journal = %self.path.display(), %hash,
                        "an unsettled transaction has no signed bytes in the journal"
                    ),
                },
            }
        }
        let mut out = Vec::new();
        for ((nonce, order), (settled, mut versions)) in groups {
            if settled || versions.is_empty() {
                continue;
            }
            versions.sort_by_key(|v| v.0);
            let broadcast = versions.iter().any(|v| v.2);
            let versions = versions.into_iter().map(|v| v.1).collect();
            out.push(Unsettled { order, nonce, versions, broadcast });
        }
        Ok(out)
    }

    /// The next nonce recorded for `sender`.
    pub fn next_nonce(&self, sender: Address) -> Result<Option<u64>> {
        self.with(|c| {
            c.query_row(
                "SELECT next FROM nonces WHERE sender = ?1",
                params![sender.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|n| n.map(|n| n as u64))
        })
    }

    /// Records the next nonce of `sender`.
    pub fn set_next_nonce(&self, sender: Address, next: u64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO nonces (sender, next) VALUES (?1, ?2)
                 ON CONFLICT(sender) DO UPDATE SET next = excluded.next",
                params![sender.to_string(), next as i64],
            )
            .map(|_| ())
        })
    }

    /// Adds to the day's spend of `asset` (read and written in one transaction, so concurrent
    /// additions are not lost).
    pub fn add_spend(&self, day: i64, asset: Address, amount: U256) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            add_spend_in(&tx, day, asset, amount)?;
            tx.commit()
        })
    }

    /// The day's spend per asset.
    pub fn spends(&self, day: i64) -> Result<Vec<(Address, U256)>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT asset, amount FROM spends WHERE day = ?1")?;
            let rows = st.query_map(params![day], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (a, v) = row?;
                if let (Ok(a), Ok(v)) = (a.parse(), v.parse()) {
                    out.push((a, v));
                }
            }
            Ok(out)
        })
    }
}

/// Takes the journal's lock file, or says that another process holds it.
fn lock(path: &Path) -> Result<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let err = |reason: String| Error::Journal { path: path.to_path_buf(), reason };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| err(format!("lock file {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(err("in use by another process (another kairos command or agent on this wallet); \
             wait for it to finish"
                .into()))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(err(format!("lock file {}: {e}", lock_path.display())))
        }
    }
}

fn add_spend_in(c: &Connection, day: i64, asset: Address, amount: U256) -> rusqlite::Result<()> {
    let current: Option<String> = c
        .query_row(
            "SELECT amount FROM spends WHERE day = ?1 AND asset = ?2",
            params![day, asset.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    let current = current.and_then(|v| v.parse::<U256>().ok()).unwrap_or_default();
    c.execute(
        "INSERT INTO spends (day, asset, amount) VALUES (?1, ?2, ?3)
         ON CONFLICT(day, asset) DO UPDATE SET amount = excluded.amount",
        params![day, asset.to_string(), current.saturating_add(amount).to_string()],
    )?;
    Ok(())
}

/// The nonce a signed EIP-2718 transaction carries.
fn nonce_of(raw: &[u8]) -> Option<u64> {
    use alloy::consensus::Transaction;
    use alloy::eips::eip2718::Decodable2718;
    alloy::consensus::TxEnvelope::decode_2718(&mut &raw[..]).ok().map(|t| t.nonce())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        nonce: Option<u64>,
        hash: B256,
        state: TxState,
        raw: Option<&'static [u8]>,
    ) -> Entry<'static> {
        Entry {
            order: Some(1),
            sender: Address::repeat_byte(7),
            nonce,
            hash: Some(hash),
            state,
            detail: "",
            raw,
        }
    }

    #[test]
    fn events_nonces_spends_and_unsettled_survive_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.sqlite");
        let me = Address::repeat_byte(7);
        let (h1, h2) = (B256::repeat_byte(1), B256::repeat_byte(2));
        {
            let j = Journal::open(&path).unwrap();
            let o1 = j.new_order(me, "send 1").unwrap();
            let o2 = j.new_order(me, "send 2").unwrap();
            let e = |o, n, h, s, raw| Entry { order: Some(o), ..entry(Some(n), h, s, raw) };
            j.record(e(o1, 0, h1, TxState::Signed, Some(&[1, 2]))).unwrap();
            j.record(e(o1, 0, h1, TxState::Broadcast, None)).unwrap();
            j.record(e(o1, 0, h1, TxState::Confirmed, None)).unwrap();
            j.record(e(o2, 1, h2, TxState::Signed, Some(&[3, 4]))).unwrap();
            j.set_next_nonce(me, 2).unwrap();
            j.add_spend(100, Address::ZERO, U256::from(5)).unwrap();
            j.add_spend(100, Address::ZERO, U256::from(7)).unwrap();
        }
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.events(me).unwrap().len(), 4);
        assert_eq!(j.order_events(1).unwrap().len(), 3);
        assert_eq!(j.order_summary(2).unwrap().as_deref(), Some("send 2"));
        assert_eq!(j.next_nonce(me).unwrap(), Some(2));
        assert_eq!(j.next_nonce(Address::ZERO).unwrap(), None);
        assert_eq!(j.spends(100).unwrap(), vec![(Address::ZERO, U256::from(12))]);
        assert!(j.spends(101).unwrap().is_empty());
        assert_eq!(
            j.unsettled(me).unwrap(),
            vec![Unsettled {
                order: Some(2),
                nonce: 1,
                versions: vec![Version { hash: h2, raw: vec![3, 4] }],
                broadcast: false
            }]
        );
    }

    /// Written before the fix, where it failed: the executor journalled its broadcast rows
    /// without the nonce, and reading the latest row's nonce as an integer failed on NULL, so
    /// a journal holding a broadcast, unconfirmed transaction stopped every later start.
    #[test]
    fn a_broadcast_row_without_a_nonce_is_still_resumable() {
        let j = Journal::open(":memory:").unwrap();
        let me = Address::repeat_byte(7);
        let h = B256::repeat_byte(1);
        j.record(entry(Some(3), h, TxState::Signed, Some(&[1, 2]))).unwrap();
        j.record(entry(None, h, TxState::Broadcast, None)).unwrap();
        let u = j.unsettled(me).unwrap();
        assert_eq!(u.len(), 1, "{u:?}");
        assert_eq!((u[0].nonce, u[0].broadcast), (3, true));
    }

    #[test]
    fn bumps_are_resumed_together_and_a_final_version_settles_the_nonce() {
        let j = Journal::open(":memory:").unwrap();
        let me = Address::repeat_byte(7);
        let (a, b, c) = (B256::repeat_byte(1), B256::repeat_byte(2), B256::repeat_byte(3));
        j.record(entry(Some(0), a, TxState::Signed, Some(&[1]))).unwrap();
        j.record(entry(Some(0), a, TxState::Broadcast, None)).unwrap();
        j.record(entry(Some(0), b, TxState::Signed, Some(&[2]))).unwrap();
        j.record(entry(Some(0), b, TxState::Broadcast, None)).unwrap();
        j.record(entry(Some(1), c, TxState::Signed, Some(&[3]))).unwrap();
        let u = j.unsettled(me).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].versions.iter().map(|v| v.hash).collect::<Vec<_>>(), vec![a, b]);
        // The bump was mined: the nonce is settled, the original with it.
        j.record(entry(Some(0), b, TxState::Confirmed, None)).unwrap();
        j.record(entry(Some(1), c, TxState::Dropped, None)).unwrap();
        assert!(j.unsettled(me).unwrap().is_empty());
    }

    #[test]
    fn a_journal_from_before_orders_is_upgraded_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("old.sqlite");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE tx_events (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
               sender TEXT NOT NULL, nonce INTEGER, hash TEXT, state TEXT NOT NULL,
               detail TEXT NOT NULL, raw BLOB);",
        )
        .unwrap();
        let me = Address::repeat_byte(7);
        let h = B256::repeat_byte(9);
        c.execute(
            "INSERT INTO tx_events (at_ms, sender, nonce, hash, state, detail, raw)
             VALUES (1, ?1, 4, ?2, 'signed', '', x'0102')",
            params![me.to_string(), h.to_string()],
        )
        .unwrap();
        c.execute(
            "INSERT INTO tx_events (at_ms, sender, nonce, hash, state, detail, raw)
             VALUES (2, ?1, NULL, ?2, 'broadcast', '', NULL)",
            params![me.to_string(), h.to_string()],
        )
        .unwrap();
        drop(c);
        let j = Journal::open(&path).unwrap();
        let u = j.unsettled(me).unwrap();
        assert_eq!((u.len(), u[0].nonce, u[0].order), (1, 4, None));
        assert_eq!(j.events(me).unwrap()[0].order, None);
    }

    #[test]
    fn garbage_rows_are_skipped_not_fatal() {
        let j = Journal::open(":memory:").unwrap();
        let me = Address::repeat_byte(7);
        let good = B256::repeat_byte(1);
        j.record(entry(Some(2), good, TxState::Signed, Some(&[9]))).unwrap();
        j.with(|c| {
            let me = me.to_string();
            for (nonce, hash, state, raw) in [
                (Some(-5i64), "0x1234", "signed", Some(vec![1u8])),
                (None, "not a hash", "broadcast", None),
                (None, &B256::repeat_byte(3).to_string()[..], "signed", Some(vec![0xde, 0xad])),
                (Some(4), &B256::repeat_byte(4).to_string()[..], "exploded", None),
            ] {
                c.execute(
                    "INSERT INTO tx_events (at_ms, sender, nonce, hash, state, detail, raw)
                     VALUES (0, ?1, ?2, ?3, ?4, '', ?5)",
                    params![me, nonce, hash, state, raw],
                )?;
            }
            Ok(())
        })
        .unwrap();
        let u = j.unsettled(me).unwrap();
        assert_eq!(u.len(), 1, "{u:?}");
        assert_eq!(u[0].versions[0].hash, good);
        assert_eq!(j.events(me).unwrap().len(), 5);
    }

    #[test]
    fn one_process_at_a_time_holds_a_journal() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("j.sqlite");
        let first = Journal::open(&path).unwrap();
        // Locks are per open file description: a second open, in this process or another, is
        // refused.
        let err = Journal::open(&path).unwrap_err().to_string();
        assert!(err.contains("j.sqlite") && err.contains("in use by another process"), "{err}");
        drop(first);
        Journal::open(&path).unwrap();
    }

    #[test]
    fn a_signed_row_and_its_spend_are_written_together() {
        let j = Journal::open(":memory:").unwrap();
        let me = Address::repeat_byte(7);
        let h = B256::repeat_byte(1);
        j.record_with_spends(
            entry(Some(0), h, TxState::Signed, Some(&[1])),
            5,
            &[(Address::ZERO, U256::from(3)), (Address::ZERO, U256::from(4))],
        )
        .unwrap();
        assert_eq!(j.spends(5).unwrap(), vec![(Address::ZERO, U256::from(7))]);
        assert_eq!(j.events(me).unwrap().len(), 1);
    }

    #[test]
    fn an_unwritable_or_foreign_journal_is_a_named_error() {
        let err = Journal::open("/proc/kairos/journal.sqlite").unwrap_err().to_string();
        assert!(err.contains("/proc/kairos/journal.sqlite"), "{err}");
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("not-a-db.sqlite");
        std::fs::write(&path, vec![0x42u8; 4096]).unwrap();
        let err = Journal::open(&path).unwrap_err().to_string();
        assert!(err.contains("not-a-db.sqlite") && err.contains("not a database"), "{err}");
    }
}
