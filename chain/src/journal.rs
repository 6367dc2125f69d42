//! The transaction journal: every state change of every transaction, the next nonce per
//! sender, and the day's spend per asset, in a SQLite file.
//!
//! It is written before the action it records takes effect outside the process (a signed
//! transaction is journalled with its raw bytes before it is broadcast), so after a crash the
//! executor rebroadcasts the same bytes rather than signing a second order, and the daily
//! spend caps survive restarts.

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
    /// A node accepted it (or already had it).
    Broadcast,
    /// Replaced by a fee bump (same nonce, higher fees).
    Replaced,
    /// Included with enough confirmations.
    Confirmed,
    /// Included but reverted.
    Reverted,
    /// Gone from the node and never included; the nonce was freed or reused.
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
}

/// One journalled state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxEvent {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
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

/// A signed transaction with no final state yet: what a restart must resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsettled {
    /// Its nonce.
    pub nonce: u64,
    /// Its hash.
    pub hash: B256,
    /// The signed bytes, to rebroadcast as they are.
    pub raw: Vec<u8>,
}

/// The journal file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`; `:memory:` for a throwaway one.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let err = |e: rusqlite::Error| Error::Journal { path: path.clone(), reason: e.to_string() };
        let conn = Connection::open(&path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
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
             CREATE TABLE IF NOT EXISTS nonces (sender TEXT PRIMARY KEY, next INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS spends (
                 day INTEGER NOT NULL,
                 asset TEXT NOT NULL,
                 amount TEXT NOT NULL,
                 PRIMARY KEY (day, asset)
             );",
        )
        .map_err(err)?;
        Ok(Self { path, conn: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|e| Error::Journal { path: self.path.clone(), reason: e.to_string() })
    }

    /// Appends a state change. `raw` is the signed transaction, for [`TxState::Signed`].
    pub fn record(
        &self,
        sender: Address,
        nonce: Option<u64>,
        hash: Option<B256>,
        state: TxState,
        detail: &str,
        raw: Option<&[u8]>,
    ) -> Result<()> {
        let at_ms = chrono::Utc::now().timestamp_millis();
        self.with(|c| {
            c.execute(
                "INSERT INTO tx_events (at_ms, sender, nonce, hash, state, detail, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    at_ms,
                    sender.to_string(),
                    nonce.map(|n| n as i64),
                    hash.map(|h| h.to_string()),
                    state.as_str(),
                    detail,
                    raw
                ],
            )
            .map(|_| ())
        })
    }

    /// Every event of `sender`, oldest first.
    pub fn events(&self, sender: Address) -> Result<Vec<TxEvent>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT at_ms, nonce, hash, state, detail FROM tx_events WHERE sender = ?1
                 ORDER BY id",
            )?;
            let rows = st.query_map(params![sender.to_string()], |r| {
                Ok(TxEvent {
                    at_ms: r.get(0)?,
                    sender,
                    nonce: r.get::<_, Option<i64>>(1)?.map(|n| n as u64),
                    hash: r.get::<_, Option<String>>(2)?.and_then(|h| h.parse().ok()),
                    state: r.get(3)?,
                    detail: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Signed transactions of `sender` whose latest state is not final (signed, broadcast or
    /// reorged), by nonce: what to resume after a restart.
    pub fn unsettled(&self, sender: Address) -> Result<Vec<Unsettled>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT e.nonce, e.hash, s.raw FROM tx_events e
                 JOIN tx_events s ON s.hash = e.hash AND s.state = 'signed'
                 WHERE e.sender = ?1 AND e.id = (SELECT MAX(id) FROM tx_events WHERE hash = e.hash)
                   AND e.state IN ('signed', 'broadcast', 'reorged')
                 ORDER BY e.nonce, e.id",
            )?;
            let rows = st.query_map(params![sender.to_string()], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (nonce, hash, raw) = row?;
                if let Ok(hash) = hash.parse() {
                    out.push(Unsettled { nonce: nonce as u64, hash, raw });
                }
            }
            Ok(out)
        })
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

    /// Adds to the day's spend of `asset`.
    pub fn add_spend(&self, day: i64, asset: Address, amount: U256) -> Result<()> {
        let current = self.spends(day)?.into_iter().find(|(a, _)| *a == asset).map(|(_, v)| v);
        let total = current.unwrap_or_default().saturating_add(amount);
        self.with(|c| {
            c.execute(
                "INSERT INTO spends (day, asset, amount) VALUES (?1, ?2, ?3)
                 ON CONFLICT(day, asset) DO UPDATE SET amount = excluded.amount",
                params![day, asset.to_string(), total.to_string()],
            )
            .map(|_| ())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_nonces_spends_and_unsettled_survive_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.sqlite");
        let me = Address::repeat_byte(7);
        let (h1, h2) = (B256::repeat_byte(1), B256::repeat_byte(2));
        {
            let j = Journal::open(&path).unwrap();
            j.record(me, Some(0), Some(h1), TxState::Signed, "fees", Some(&[1, 2])).unwrap();
            j.record(me, Some(0), Some(h1), TxState::Broadcast, "", None).unwrap();
            j.record(me, Some(0), Some(h1), TxState::Confirmed, "block 5", None).unwrap();
            j.record(me, Some(1), Some(h2), TxState::Signed, "fees", Some(&[3, 4])).unwrap();
            j.set_next_nonce(me, 2).unwrap();
            j.add_spend(100, Address::ZERO, U256::from(5)).unwrap();
            j.add_spend(100, Address::ZERO, U256::from(7)).unwrap();
        }
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.events(me).unwrap().len(), 4);
        assert_eq!(j.next_nonce(me).unwrap(), Some(2));
        assert_eq!(j.next_nonce(Address::ZERO).unwrap(), None);
        assert_eq!(j.spends(100).unwrap(), vec![(Address::ZERO, U256::from(12))]);
        assert!(j.spends(101).unwrap().is_empty());
        assert_eq!(
            j.unsettled(me).unwrap(),
            vec![Unsettled { nonce: 1, hash: h2, raw: vec![3, 4] }]
        );
    }

    #[test]
    fn an_unwritable_journal_is_a_named_error() {
        let err = Journal::open("/proc/kairos/journal.sqlite").unwrap_err().to_string();
        assert!(err.contains("/proc/kairos/journal.sqlite"), "{err}");
    }
}
