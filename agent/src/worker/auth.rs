//! Bearer keys: several at once (rotation: add the new key, move clients, drop the old), from a
//! file (one a line, `#` comments) and from the environment (comma-separated). A presented
//! key is compared with every configured key in constant time over SHA-256 digests, so neither
//! the content nor the length of a key leaks through timing. Keys never reach a log: [`Keys`]
//! prints only how many there are.
//!
//! An entry `sha256:<64 hex digits>` is a key's digest rather than the key: a worker whose
//! configuration is public (a Nosana job definition lives on IPFS) is given digests only, and
//! the keys stay with the agent (`printf %s KEY | sha256sum` gives the digits).

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

/// One configured entry as a digest: a key, or `sha256:` and the key's digest in hex. The
/// error says what is wrong without the entry.
fn entry(k: &str) -> Result<[u8; 32], String> {
    if let Some(hex) = k.strip_prefix("sha256:") {
        let b = hex.as_bytes();
        if b.len() != 64 || !b.iter().all(u8::is_ascii_hexdigit) {
            return Err("a sha256: entry needs 64 hex digits".into());
        }
        let mut d = [0u8; 32];
        for (i, pair) in b.chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
            d[i] = u8::from_str_radix(s, 16).map_err(|e| e.to_string())?;
        }
        return Ok(d);
    }
    if k.len() < MIN_KEY_LEN {
        return Err(format!("a key needs at least {MIN_KEY_LEN} characters"));
    }
    Ok(digest(k))
}

impl Keys {
    /// Keys from a file's lines (blank lines and `#` comments skipped) and from the
    /// comma-separated `env` value. An error names the file, never a key.
    pub fn load(file: Option<&Path>, env: Option<&str>) -> anyhow::Result<Self> {
        let mut digests = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("api key file {}: {e}", path.display()))?;
            for (i, line) in text.lines().enumerate() {
                let k = line.trim();
                if k.is_empty() || k.starts_with('#') {
                    continue;
                }
                let d = entry(k).map_err(|e| {
                    anyhow::anyhow!("api key file {} line {}: {e}", path.display(), i + 1)
                })?;
                digests.push(d);
            }
        }
        if let Some(v) = env {
            for (i, k) in v.split(',').map(str::trim).filter(|k| !k.is_empty()).enumerate() {
                let d = entry(k)
                    .map_err(|e| anyhow::anyhow!("api key {} of the environment: {e}", i + 1))?;
                digests.push(d);
            }
        }
        Ok(Self { digests })
    }

    /// The keys a server starts with: the file's and those in the environment variable
    /// `env_name`; none is an error unless the server runs with `insecure_no_auth`.
    pub fn required(
        file: Option<&Path>,
        env_name: &str,
        insecure_no_auth: bool,
    ) -> anyhow::Result<Self> {
        let keys = Self::load(file, std::env::var(env_name).ok().as_deref())?;
        if keys.is_empty() && !insecure_no_auth {
            anyhow::bail!(
                "no api key: give --api-key-file (one key a line) or set {env_name} \
                 (comma-separated); --insecure-no-auth serves without keys"
            );
        }
        Ok(keys)
    }

    /// Why a request with this `Authorization` header is refused (`None`: let it in).
    pub fn refusal(&self, insecure_no_auth: bool, header: Option<&str>) -> Option<&'static str> {
        if (self.is_empty() && insecure_no_auth) || self.accepts(header) {
            return None;
        }
        Some(if header.is_none() {
            "You didn't provide an API key: send `Authorization: Bearer KEY`."
        } else {
            "Incorrect API key provided."
        })
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
    fn digests_stand_for_keys() {
        // printf %s key-hashed-0123456789 | sha256sum
        let d = "sha256:".to_string() + &hex(&digest("key-hashed-0123456789"));
        let k = Keys::load(None, Some(&format!("{d},key-plain-0123456789"))).unwrap();
        assert!(k.accepts(Some("Bearer key-hashed-0123456789")));
        assert!(k.accepts(Some("Bearer key-plain-0123456789")));
        // The digest itself is not a key.
        assert!(!k.accepts(Some(&format!("Bearer {d}"))));
        for bad in ["sha256:abc", &format!("{}zz", &d[..d.len() - 2]), &format!("{d}00")] {
            let e = Keys::load(None, Some(bad)).unwrap_err().to_string();
            assert!(e.contains("64 hex digits") && !e.contains(&bad[7..]), "{e}");
        }
        assert_eq!(
            hex(&digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
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
