//! The agent's journal: orders, fills, balances, the risk state and agent events, in one
//! SQLite file (WAL, `synchronous = FULL`: a committed row survives a power cut).
//!
//! The rule that keeps a crash from duplicating an order: an order is journalled, with its
//! client order id, *before* it is sent ([`Journal::intend`]), in the same transaction that
//! takes its number from the journal's counter, so a client order id is never given to two
//! orders, across restarts included. An order left as an intent (the agent died before or while
//! sending it) is settled on the next start by asking the venue for that client order id
//! ([`crate::reconcile`]), never by sending it again blindly.
//!
//! One process at a time: the file `JOURNAL.lock` is held (an OS lock, released on exit, a
//! kill -9 included) while the journal is open.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::now_ms;

/// The journal's schema version; a newer file is refused rather than misread.
const SCHEMA: i64 = 1;

/// What went wrong with the journal file.
#[derive(Debug, thiserror::Error)]
#[error("journal {}: {reason}", path.display())]
pub struct JournalError {
    /// The file.
    pub path: PathBuf,
    /// What happened.
    pub reason: String,
}

/// Where an order is, as the journal knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    /// Journalled; it may or may not have reached the venue.
    Intent,
    /// The venue took it and it may still trade.
    Working,
    /// It can no longer trade (filled, cancelled, rejected, expired, or never sent).
    Final,
}

impl OrderState {
    fn name(self) -> &'static str {
        match self {
            Self::Intent => "intent",
            Self::Working => "working",
            Self::Final => "final",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "intent" => Self::Intent,
            "working" => Self::Working,
            "final" => Self::Final,
            _ => return None,
        })
    }
}

/// An order as journalled.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalOrder {
    /// Its client order id (`{prefix}-{seq}`).
    pub client_id: String,
    /// The venue (`binance-spot`).
    pub venue: String,
    /// Symbol.
    pub symbol: String,
    /// `BUY` or `SELL`.
    pub side: String,
    /// `MARKET`, `LIMIT`, ...
    pub kind: String,
    /// Quantity, exactly as sent.
    pub qty: String,
    /// Limit price, exactly as sent.
    pub price: Option<String>,
    /// Where it is.
    pub state: OrderState,
    /// The venue's last word (`NEW`, `FILLED`, ..., or `NOT_SENT`).
    pub status: Option<String>,
    /// The venue's id, once known.
    pub venue_order_id: Option<u64>,
    /// Quantity traded, as the venue reported it.
    pub executed: String,
    /// When it was journalled (ms since the epoch, the time its request is signed with).
    pub created_ms: i64,
}

/// A fill as journalled.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalFill {
    /// The venue.
    pub venue: String,
    /// Symbol.
    pub symbol: String,
    /// The venue's trade id (unique per venue and symbol).
    pub trade_id: u64,
    /// The venue's order id.
    pub venue_order_id: u64,
    /// Our client order id, when the order is ours.
    pub client_id: Option<String>,
    /// `BUY` or `SELL`.
    pub side: String,
    /// Quantity.
    pub qty: String,
    /// Price.
    pub price: String,
    /// Commission.
    pub commission: String,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
}

/// The journal.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    _lock: Option<std::sync::Arc<std::fs::File>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens (or creates) the journal at `path` and takes its lock.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref().to_path_buf();
        let err = |reason: String| JournalError { path: path.clone(), reason };
        let lock = if path.as_os_str() == ":memory:" {
            None
        } else {
            Some(lock(&path).map_err(err)?.into())
        };
        let conn = Connection::open(&path).map_err(|e| err(e.to_string()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS orders (
                 client_id TEXT PRIMARY KEY,
                 venue TEXT NOT NULL,
                 symbol TEXT NOT NULL,
                 side TEXT NOT NULL,
                 kind TEXT NOT NULL,
                 qty TEXT NOT NULL,
                 price TEXT,
                 state TEXT NOT NULL CHECK (state IN ('intent', 'working', 'final')),
                 status TEXT,
                 venue_order_id INTEGER,
                 executed TEXT NOT NULL DEFAULT '0',
                 created_ms INTEGER NOT NULL,
                 updated_ms INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS orders_state ON orders(state);
             CREATE TABLE IF NOT EXISTS fills (
                 venue TEXT NOT NULL,
                 symbol TEXT NOT NULL,
                 trade_id INTEGER NOT NULL,
                 venue_order_id INTEGER NOT NULL,
                 client_id TEXT,
                 side TEXT NOT NULL,
                 qty TEXT NOT NULL,
                 price TEXT NOT NULL,
                 commission TEXT NOT NULL,
                 time_ms INTEGER NOT NULL,
                 PRIMARY KEY (venue, symbol, trade_id)
             );
             CREATE TABLE IF NOT EXISTS balances (
                 venue TEXT NOT NULL,
                 asset TEXT NOT NULL,
                 free TEXT NOT NULL,
                 locked TEXT NOT NULL,
                 at_ms INTEGER NOT NULL,
                 PRIMARY KEY (venue, asset)
             );
             CREATE TABLE IF NOT EXISTS risk (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, at_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS events (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 at_ms INTEGER NOT NULL,
                 kind TEXT NOT NULL,
                 detail TEXT NOT NULL
             );",
        )
        .map_err(|e| err(e.to_string()))?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0))
            .optional()
            .map_err(|e| err(e.to_string()))?;
        match version.as_deref().map(str::parse::<i64>) {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                    params![SCHEMA.to_string()],
                )
                .map_err(|e| err(e.to_string()))?;
            }
            Some(Ok(v)) if v == SCHEMA => {}
            Some(Ok(v)) => {
                return Err(err(format!(
                    "schema version {v}; this kairos reads {SCHEMA}: use a newer kairos"
                )));
            }
            Some(Err(_)) => {
                return Err(
                    err("the schema version is not a number: not a kairos journal?".into()),
                );
            }
        }
        Ok(Self { conn, path, _lock: lock })
    }

    /// Opens a journal to read it while its agent runs (no lock is taken; nothing can be
    /// written).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref().to_path_buf();
        let err = |reason: String| JournalError { path: path.clone(), reason };
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| err(e.to_string()))?;
        Ok(Self { conn, path, _lock: None })
    }

    /// Another handle on the same journal (its own SQLite connection; the lock is shared and
    /// held until the last handle is dropped), for another part of the same agent.
    pub fn clone_handle(&self) -> Result<Self, JournalError> {
        let err = |reason: String| JournalError { path: self.path.clone(), reason };
        if self._lock.is_none() {
            return Err(err("an in-memory journal has one handle".into()));
        }
        let conn = Connection::open(&self.path).map_err(|e| err(e.to_string()))?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(|e| err(e.to_string()))?;
        Ok(Self { conn, path: self.path.clone(), _lock: self._lock.clone() })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> JournalError {
        JournalError { path: self.path.clone(), reason: e.to_string() }
    }

    /// Journals a new order before it is sent and gives it its client order id
    /// `{prefix}-{n}`, `n` from the journal's counter (never reused). `created_ms` is the
    /// time the request will be signed with.
    #[allow(clippy::too_many_arguments)]
    pub fn intend(
        &mut self,
        prefix: &str,
        venue: &str,
        symbol: &str,
        side: &str,
        kind: &str,
        qty: &str,
        price: Option<&str>,
        created_ms: i64,
    ) -> Result<String, JournalError> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| JournalError { path: self.path.clone(), reason: e.to_string() })?;
        let key = format!("next:{prefix}");
        let n: i64 = tx
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map_err(|e| JournalError { path: self.path.clone(), reason: e.to_string() })?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let client_id = format!("{prefix}-{n}");
        let run = || -> rusqlite::Result<()> {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, (n + 1).to_string()],
            )?;
            tx.execute(
                "INSERT INTO orders (client_id, venue, symbol, side, kind, qty, price, state, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'intent', ?8, ?8)",
                params![client_id, venue, symbol, side, kind, qty, price, created_ms],
            )?;
            Ok(())
        };
        run().map_err(|e| JournalError { path: self.path.clone(), reason: e.to_string() })?;
        tx.commit().map_err(|e| JournalError { path: self.path.clone(), reason: e.to_string() })?;
        Ok(client_id)
    }

    /// Records the venue's word on an order: its id, status and traded quantity; `final_`
    /// when it can no longer trade.
    pub fn update(
        &self,
        client_id: &str,
        venue_order_id: Option<u64>,
        status: &str,
        executed: &str,
        final_: bool,
    ) -> Result<(), JournalError> {
        let state = if final_ { OrderState::Final } else { OrderState::Working };
        let n = self
            .conn
            .execute(
                "UPDATE orders SET venue_order_id = COALESCE(?2, venue_order_id), status = ?3, executed = ?4,
                 state = ?5, updated_ms = ?6 WHERE client_id = ?1",
                params![client_id, venue_order_id.map(|v| v as i64), status, executed, state.name(), now_ms()],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(JournalError {
                path: self.path.clone(),
                reason: format!("no order {client_id}"),
            });
        }
        Ok(())
    }

    /// Records a fill; `false` when it was already in (fills are keyed by the venue's trade
    /// id, so replaying the venue's history twice records each once).
    pub fn record_fill(&self, f: &JournalFill) -> Result<bool, JournalError> {
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO fills (venue, symbol, trade_id, venue_order_id, client_id, side, qty, price, commission, time_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    f.venue,
                    f.symbol,
                    f.trade_id as i64,
                    f.venue_order_id as i64,
                    f.client_id,
                    f.side,
                    f.qty,
                    f.price,
                    f.commission,
                    f.time_ms
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn orders_where(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<JournalOrder>, JournalError> {
        let sql = format!(
            "SELECT client_id, venue, symbol, side, kind, qty, price, state, status, venue_order_id, executed, created_ms
             FROM orders WHERE {filter} ORDER BY created_ms, client_id"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(args, |r| {
                let state: String = r.get(7)?;
                Ok(JournalOrder {
                    client_id: r.get(0)?,
                    venue: r.get(1)?,
                    symbol: r.get(2)?,
                    side: r.get(3)?,
                    kind: r.get(4)?,
                    qty: r.get(5)?,
                    price: r.get(6)?,
                    state: OrderState::parse(&state).unwrap_or(OrderState::Intent),
                    status: r.get(8)?,
                    venue_order_id: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
                    executed: r.get(10)?,
                    created_ms: r.get(11)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))
    }

    /// Orders that are not final (intents and working orders) on `venue`.
    pub fn unsettled(&self, venue: &str) -> Result<Vec<JournalOrder>, JournalError> {
        self.orders_where("venue = ?1 AND state != 'final'", &[&venue])
    }

    /// One order.
    pub fn order(&self, client_id: &str) -> Result<Option<JournalOrder>, JournalError> {
        Ok(self.orders_where("client_id = ?1", &[&client_id])?.pop())
    }

    /// Every order, oldest first.
    pub fn orders(&self) -> Result<Vec<JournalOrder>, JournalError> {
        self.orders_where("1 = 1", &[])
    }

    /// Every fill of `venue` and `symbol`, by trade id.
    pub fn fills(&self, venue: &str, symbol: &str) -> Result<Vec<JournalFill>, JournalError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT venue, symbol, trade_id, venue_order_id, client_id, side, qty, price, commission, time_ms
                 FROM fills WHERE venue = ?1 AND symbol = ?2 ORDER BY trade_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![venue, symbol], |r| {
                Ok(JournalFill {
                    venue: r.get(0)?,
                    symbol: r.get(1)?,
                    trade_id: r.get::<_, i64>(2)? as u64,
                    venue_order_id: r.get::<_, i64>(3)? as u64,
                    client_id: r.get(4)?,
                    side: r.get(5)?,
                    qty: r.get(6)?,
                    price: r.get(7)?,
                    commission: r.get(8)?,
                    time_ms: r.get(9)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))
    }

    /// The highest trade id journalled for `venue` and `symbol`.
    pub fn last_trade_id(&self, venue: &str, symbol: &str) -> Result<Option<u64>, JournalError> {
        self.conn
            .query_row(
                "SELECT MAX(trade_id) FROM fills WHERE venue = ?1 AND symbol = ?2",
                params![venue, symbol],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|v| v.map(|v| v as u64))
            .map_err(|e| self.err(e))
    }

    /// The venue's balances as last reconciled.
    pub fn set_balance(
        &self,
        venue: &str,
        asset: &str,
        free: &str,
        locked: &str,
    ) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT INTO balances (venue, asset, free, locked, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(venue, asset) DO UPDATE SET free = excluded.free, locked = excluded.locked, at_ms = excluded.at_ms",
                params![venue, asset, free, locked, now_ms()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Stores the risk engine's state (JSON of [`kairos_engine::risk::RiskState`]).
    pub fn save_risk(&self, state: &kairos_engine::risk::RiskState) -> Result<(), JournalError> {
        let json = serde_json::to_string(state)
            .map_err(|e| JournalError { path: self.path.clone(), reason: e.to_string() })?;
        self.conn
            .execute(
                "INSERT INTO risk (id, state, at_ms) VALUES (1, ?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET state = excluded.state, at_ms = excluded.at_ms",
                params![json, now_ms()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The stored risk state, if any. A row that does not read is an error (a halt must not
    /// be forgotten because its row was damaged).
    pub fn load_risk(&self) -> Result<Option<kairos_engine::risk::RiskState>, JournalError> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT state FROM risk WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| JournalError {
                path: self.path.clone(),
                reason: format!("the stored risk state does not read ({e}); refusing to guess it"),
            })
        })
        .transpose()
    }

    /// An agent event (started, reconciled, refused to trade, halted, ...).
    pub fn event(&self, kind: &str, detail: &str) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT INTO events (at_ms, kind, detail) VALUES (?1, ?2, ?3)",
                params![now_ms(), kind, detail],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The last `n` events, oldest first: `(at_ms, kind, detail)`.
    pub fn events(&self, n: usize) -> Result<Vec<(i64, String, String)>, JournalError> {
        let mut st = self
            .conn
            .prepare("SELECT at_ms, kind, detail FROM (SELECT * FROM events ORDER BY id DESC LIMIT ?1) ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![n as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))
    }
}

/// The process id holding the journal at `path`, if a process holds it.
pub fn holder(path: &Path) -> Option<u32> {
    let lock_path = lock_path(path);
    let file = std::fs::File::open(&lock_path).ok()?;
    if file.try_lock_shared().is_ok() {
        return None; // nobody holds it
    }
    std::fs::read_to_string(&lock_path).ok()?.trim().parse().ok()
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn lock(path: &Path) -> Result<std::fs::File, String> {
    let lock_path = lock_path(path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("lock file {}: {e}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            // The holder's process id, for `kairos kill` and `kairos status`.
            use std::io::Write as _;
            let _ = file.set_len(0);
            let _ = writeln!(&file, "{}", std::process::id());
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            Err("in use by another process (another agent on this journal); stop it first".into())
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(format!("lock file {}: {e}", lock_path.display()))
        }
    }
}
