//! Bearer keys: several at once (rotation: add the new key, move clients, drop the old), from a
//! file (one a line, `#` comments) and from the environment (comma-separated). A presented
//! key is compared with every configured key in constant time over SHA-256 digests, so neither
//! the content nor the length of a key leaks through timing. Keys never reach a log: [`Keys`]
//! prints only how many there are.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The accepted keys (as digests).
#[derive(Clone, Default)]
pub struct Keys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} configured)", self.digests.len())
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Shortest key accepted: a guessable key on a public port is no key.
pub const MIN_KEY_LEN: usize = 16;

impl Keys {
    /// Keys from a file's lines (blank lines and `#` comments skipped) and from the
    /// comma-separated `env` value. An error names the file, never a key.
    pub fn load(file: Option<&Path>, env: Option<&str>) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("api key file {}: {e}", path.display()))?;
            for (i, line) in text.lines().enumerate() {
                let k = line.trim();
                if k.is_empty() || k.starts_with('#') {
                    continue;
                }
                if k.len() < MIN_KEY_LEN {
                    anyhow::bail!(
                        "api key file {} line {}: a key needs at least {MIN_KEY_LEN} characters",
                        path.display(),
                        i + 1
                    );
                }
                keys.push(k.to_string());
            }
        }
        if let Some(v) = env {
            for (i, k) in v.split(',').map(str::trim).filter(|k| !k.is_empty()).enumerate() {
                if k.len() < MIN_KEY_LEN {
                    anyhow::bail!(
                        "api key {} of the environment: a key needs at least {MIN_KEY_LEN} \
                         characters",
                        i + 1
                    );
                }
                keys.push(k.to_string());
            }
        }
        Ok(Self { digests: keys.iter().map(|k| digest(k)).collect() })
    }

    /// No key configured.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether the `Authorization` header value (`Bearer KEY`) carries an accepted key. Every
    /// configured key is compared, whichever matches.
    pub fn accepts(&self, header: Option<&str>) -> bool {
        let Some(key) = header.and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        }) else {
            return false;
        };
        let d = digest(key);
        let mut ok = subtle::Choice::from(0u8);
        for k in &self.digests {
            ok |= k.ct_eq(&d);
        }
        bool::from(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_file_and_env_and_bad_headers() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("keys");
        std::fs::write(&f, "# current\nkey-one-0123456789\n\n  key-two-0123456789  \n").unwrap();
        let k = Keys::load(Some(&f), Some("key-env-0123456789, ")).unwrap();
        assert_eq!(k.len(), 3);
        for good in ["Bearer key-one-0123456789", "bearer key-two-0123456789"] {
            assert!(k.accepts(Some(good)), "{good}");
        }
        assert!(k.accepts(Some("Bearer key-env-0123456789")));
        for bad in [
            None,
            Some(""),
            Some("key-one-0123456789"),
            Some("Basic key-one-0123456789"),
            Some("Bearer key-one-012345678"),
            Some("Bearer key-one-01234567890"),
            Some("Bearer "),
        ] {
            assert!(!k.accepts(bad), "{bad:?}");
        }
        assert!(!format!("{k:?}").contains("key-one"));
    }

    #[test]
    fn short_keys_are_refused_without_printing_them() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("keys");
        std::fs::write(&f, "short\n").unwrap();
        let e = Keys::load(Some(&f), None).unwrap_err().to_string();
        assert!(e.contains("line 1") && !e.contains("short\n") && !e.contains(": short"), "{e}");
        let e = Keys::load(None, Some("tiny")).unwrap_err().to_string();
        assert!(!e.contains("tiny"), "{e}");
        let e = Keys::load(Some(&dir.path().join("none")), None).unwrap_err().to_string();
        assert!(e.contains("none"), "{e}");
    }
}
