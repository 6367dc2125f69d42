//! Verification of untrusted workers: spot checks, canaries and a quarantine that survives
//! restarts.
//!
//! - **Spot checks.** After an answer from a remote endpoint, a random fraction of requests
//!   (`verify_fraction`, drawn from an OS-seeded generator *after* the answer, so nothing in
//!   a request tells the worker whether it will be checked) is re-run on the route's
//!   `verify_with` target (another endpoint, or `local`) with greedy decoding, and compared:
//!   answer text (the share of the longer answer that both begin with, at least
//!   `verify_min_agreement`) and embeddings by cosine (`verify_cosine`). Sampled chat
//!   requests (temperature above 0) cannot be compared token by token and are not checked.
//! - **Canaries.** Every `canary_ms`, each `[[canaries]]` prompt is asked greedily, with
//!   log-probabilities, of the reference and of every remote endpoint of its route. The tokens
//!   must be the same and the mean absolute difference of their log-probabilities within
//!   `logprob_tolerance` nats: a smaller or more quantized model than the one named gives
//!   itself away in its log-probabilities even where its text agrees (Gao et al., ICLR 2025).
//! - **Quarantine.** An endpoint with `failures_to_quarantine` failed checks is taken out of
//!   every route, reported (`kairos_router_quarantined`, a warning in the log), and its record
//!   is kept in SQLite under its name and URL: a restart keeps it out; a new lease (a new URL)
//!   starts clean; `kairos router release` lets it back in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::Value;

/// `[verify]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// The SQLite file of checks and quarantined endpoints.
    pub db: PathBuf,
    /// Failed checks (spot checks and canaries) that quarantine an endpoint.
    #[serde(default = "one")]
    pub failures_to_quarantine: u32,
    /// Canaries: the largest mean absolute difference of token log-probabilities, nats.
    #[serde(default = "default_tol")]
    pub logprob_tolerance: f64,
    /// Milliseconds between two canary rounds.
    #[serde(default = "default_canary_ms")]
    pub canary_ms: u64,
}

fn one() -> u32 {
    1
}
fn default_tol() -> f64 {
    0.15
}
fn default_canary_ms() -> u64 {
    300_000
}

/// `[[canaries]]`: a prompt with a known answer (the reference's).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// The route whose endpoints are asked.
    pub route: String,
    /// The user message.
    pub prompt: String,
    /// Tokens to compare.
    #[serde(default = "default_canary_tokens")]
    pub max_tokens: u32,
}

fn default_canary_tokens() -> u32 {
    8
}

/// The checks' store and the quarantined endpoints.
pub struct Verifier {
    conn: Mutex<Connection>,
    quarantined: Mutex<BTreeSet<String>>,
    failures_to_quarantine: u32,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Verifier {
    /// Opens (or creates) the store; `endpoints` are (name, url) of the configured ones.
    pub fn open(
        path: &Path,
        failures: u32,
        endpoints: &[(String, String)],
    ) -> Result<Self, String> {
        let at = |e: rusqlite::Error| format!("verify.db {}: {e}", path.display());
        let conn = Connection::open(path).map_err(at)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS checks (
                 id INTEGER PRIMARY KEY,
                 ts_ms INTEGER NOT NULL,
                 endpoint TEXT NOT NULL,
                 url TEXT NOT NULL,
                 kind TEXT NOT NULL,
                 passed INTEGER NOT NULL,
                 detail TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS quarantine (
                 endpoint TEXT NOT NULL,
                 url TEXT NOT NULL,
                 since_ms INTEGER NOT NULL,
                 reason TEXT NOT NULL,
                 PRIMARY KEY (endpoint, url));",
        )
        .map_err(at)?;
        let mut q = BTreeSet::new();
        {
            let mut st = conn.prepare("SELECT endpoint, url FROM quarantine").map_err(at)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(at)?;
            for r in rows {
                let (n, u) = r.map_err(at)?;
                if endpoints.iter().any(|(en, eu)| *en == n && *eu == u) {
                    q.insert(n);
                }
            }
        }
        Ok(Self {
            conn: Mutex::new(conn),
            quarantined: Mutex::new(q),
            failures_to_quarantine: failures.max(1),
        })
    }

    /// Whether an endpoint is out.
    pub fn is_quarantined(&self, name: &str) -> bool {
        self.quarantined.lock().unwrap_or_else(|p| p.into_inner()).contains(name)
    }

    /// The quarantined endpoints.
    pub fn quarantined(&self) -> Vec<String> {
        self.quarantined.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    /// Records a check; returns true when this failure quarantined the endpoint.
    pub fn record(&self, name: &str, url: &str, kind: &str, passed: bool, detail: &str) -> bool {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let already = self.is_quarantined(name);
        // The check and the quarantine it triggers commit together: a crash between them
        // cannot leave a failed check without its quarantine.
        let r = (|| -> rusqlite::Result<bool> {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO checks (ts_ms, endpoint, url, kind, passed, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![now_ms(), name, url, kind, passed as i64, detail],
            )?;
            let mut quarantine = false;
            if !passed && !already {
                let failed: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM checks WHERE endpoint = ?1 AND url = ?2 AND passed = 0",
                    params![name, url],
                    |r| r.get(0),
                )?;
                if failed >= self.failures_to_quarantine as i64 {
                    tx.execute(
                        "INSERT OR REPLACE INTO quarantine (endpoint, url, since_ms, reason) VALUES (?1, ?2, ?3, ?4)",
                        params![name, url, now_ms(), detail],
                    )?;
                    quarantine = true;
                }
            }
            tx.commit()?;
            Ok(quarantine)
        })();
        let quarantine = match r {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(endpoint = %name, error = %e, "could not record a verification");
                // Out of caution a failed check still takes the endpoint out for this run.
                !passed && !already
            }
        };
        if quarantine {
            self.quarantined.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string());
            tracing::warn!(endpoint = %name, %url, reason = %detail, "endpoint quarantined: it failed verification");
        }
        quarantine
    }
}

/// Lets a quarantined endpoint back in (and forgets its failed checks); returns whether it
/// was quarantined.
pub fn release(path: &Path, name: &str) -> Result<bool, String> {
    let at = |e: rusqlite::Error| format!("verify.db {}: {e}", path.display());
    if !path.is_file() {
        return Err(format!("verify.db {}: no such file", path.display()));
    }
    let conn = Connection::open(path).map_err(at)?;
    let n =
        conn.execute("DELETE FROM quarantine WHERE endpoint = ?1", params![name]).map_err(at)?;
    conn.execute("DELETE FROM checks WHERE endpoint = ?1 AND passed = 0", params![name])
        .map_err(at)?;
    Ok(n > 0)
}

/// The share of the longer text that both texts begin with.
pub fn agreement(a: &str, b: &str) -> f64 {
    let (na, nb) = (a.chars().count(), b.chars().count());
    if na == 0 && nb == 0 {
        return 1.0;
    }
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    common as f64 / na.max(nb) as f64
}

/// The vectors of an embeddings answer (`float` or `base64`).
pub fn vectors(v: &Value) -> Option<Vec<Vec<f32>>> {
    let data = v.get("data")?.as_array()?;
    data.iter()
        .map(|d| match d.get("embedding")? {
            Value::Array(a) => a.iter().map(|x| x.as_f64().map(|f| f as f32)).collect(),
            Value::String(s) => {
                let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
                (bytes.len() % 4 == 0).then(|| {
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect()
                })
            }
            _ => None,
        })
        .collect()
}

/// The smallest cosine between matching vectors; `None` when the counts or sizes differ.
pub fn min_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let mut min = f64::INFINITY;
    for (x, y) in a.iter().zip(b) {
        if x.len() != y.len() || x.is_empty() {
            return None;
        }
        let dot: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
        let n = |v: &[f32]| v.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
        let c = dot / (n(x) * n(y)).max(1e-30);
        min = min.min(if c.is_finite() { c } else { -1.0 });
    }
    Some(min)
}

/// A chat answer's tokens and their log-probabilities.
pub fn token_logprobs(v: &Value) -> Vec<(String, f64)> {
    v.pointer("/choices/0/logprobs/content")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some((t.get("token")?.as_str()?.to_string(), t.get("logprob")?.as_f64()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Compares a canary answer with the reference's: the same tokens, and log-probabilities
/// within `tol` nats on average. `Err` says what differs.
pub fn compare_canary(reference: &Value, answer: &Value, tol: f64) -> Result<f64, String> {
    let (r, a) = (token_logprobs(reference), token_logprobs(answer));
    if r.is_empty() {
        return Err("the reference gave no log-probabilities".into());
    }
    if a.is_empty() {
        return Err("no log-probabilities in the answer".into());
    }
    let rt: Vec<&str> = r.iter().map(|t| t.0.as_str()).collect();
    let at: Vec<&str> = a.iter().map(|t| t.0.as_str()).collect();
    if rt != at {
        return Err(format!("canary tokens differ: {at:?} where the reference gave {rt:?}"));
    }
    let mean = r.iter().zip(&a).map(|(x, y)| (x.1 - y.1).abs()).sum::<f64>() / r.len() as f64;
    if mean.is_nan() || mean > tol {
        return Err(format!(
            "canary log-probabilities differ by {mean:.3} nats on average (tolerance {tol}): \
             a different or more quantized model than the one named"
        ));
    }
    Ok(mean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quarantine_survives_reopening_and_a_new_url_starts_clean() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v.sqlite");
        let eps = vec![("w".to_string(), "http://a".to_string())];
        let v = Verifier::open(&p, 2, &eps).unwrap();
        assert!(!v.record("w", "http://a", "chat", false, "wrong tokens"));
        assert!(!v.is_quarantined("w"));
        assert!(!v.record("w", "http://a", "chat", true, ""));
        assert!(v.record("w", "http://a", "chat", false, "wrong tokens"));
        assert!(v.is_quarantined("w"));
        drop(v);
        assert!(Verifier::open(&p, 2, &eps).unwrap().is_quarantined("w"));
        let moved = vec![("w".to_string(), "http://b".to_string())];
        assert!(!Verifier::open(&p, 2, &moved).unwrap().is_quarantined("w"));
        assert!(release(&p, "w").unwrap());
        assert!(!Verifier::open(&p, 2, &eps).unwrap().is_quarantined("w"));
        assert!(!release(&p, "w").unwrap());
    }

    #[test]
    fn comparisons() {
        assert_eq!(agreement("Paris is", "Paris is"), 1.0);
        assert!(agreement("Paris", "London") < 0.2);
        assert_eq!(min_cosine(&[vec![1.0, 0.0]], &[vec![1.0, 0.0]]), Some(1.0));
        assert_eq!(min_cosine(&[vec![1.0, 0.0]], &[vec![1.0]]), None);
        let b64 = base64::engine::general_purpose::STANDARD
            .encode([1.0f32, 2.0].iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<_>>());
        assert_eq!(vectors(&json!({"data": [{"embedding": b64}]})), Some(vec![vec![1.0, 2.0]]));
        let lp = |v: &[f64]| json!({"choices": [{"logprobs": {"content": v.iter().map(|l| json!({"token": "a", "logprob": l})).collect::<Vec<_>>()}}]});
        assert!(compare_canary(&lp(&[-0.1, -0.2]), &lp(&[-0.12, -0.18]), 0.15).is_ok());
        let e = compare_canary(&lp(&[-0.1, -0.2]), &lp(&[-0.9, -1.2]), 0.15).unwrap_err();
        assert!(e.contains("quantized"), "{e}");
        assert!(compare_canary(&lp(&[-0.1]), &lp(&[f64::NAN]), 0.15).is_err());
    }
}
