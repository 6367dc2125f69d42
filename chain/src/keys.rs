//! A folder of key files, laid out as geth's and foundry's keystores are
//! (`UTC--<time>--<address>`, one v3 JSON document each), so either tool can use it directly.

use std::io::Write;
use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;

use crate::keystore::{self, KeyFile, Password, ScryptParams};
use crate::{Error, Result};

/// One key file in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The address the file declares.
    pub address: Address,
    /// The file.
    pub path: PathBuf,
}

/// A keystore folder.
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
}

impl KeyDir {
    /// The folder at `dir` (created when a key is first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$XDG_DATA_HOME/kairos/keystore`, or `~/.local/share/kairos/keystore`.
    pub fn default_dir() -> PathBuf {
        let base = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
                .join(".local/share")
        });
        base.join("kairos/keystore")
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Every key file in the folder, by address. Files that are not key files are skipped
    /// with a warning.
    pub fn list(&self) -> Result<Vec<KeyEntry>> {
        let read = match std::fs::read_dir(&self.dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::Io { path: self.dir.clone(), reason: e.to_string() }),
        };
        let mut out = Vec::new();
        for entry in read {
            let entry =
                entry.map_err(|e| Error::Io { path: self.dir.clone(), reason: e.to_string() })?;
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            match declared_address(&path) {
                Some(address) => out.push(KeyEntry { address, path }),
                None => {
                    tracing::warn!(file = %path.display(), "not a key file with an address; skipped")
                }
            }
        }
        out.sort_by(|a, b| a.address.cmp(&b.address).then_with(|| a.path.cmp(&b.path)));
        Ok(out)
    }

    /// The file holding `address`.
    pub fn find(&self, address: Address) -> Result<KeyEntry> {
        let all = self.list()?;
        all.iter().find(|e| e.address == address).cloned().ok_or_else(|| Error::UnknownKey {
            what: address.to_string(),
            dir: self.dir.clone(),
            known: if all.is_empty() {
                "none".into()
            } else {
                all.iter().map(|e| e.address.to_string()).collect::<Vec<_>>().join(", ")
            },
        })
    }

    /// Generates a new key and writes it encrypted under `password`.
    pub fn create(&self, password: &Password, params: ScryptParams) -> Result<KeyEntry> {
        self.store(&PrivateKeySigner::random(), password, params)
    }

    /// Encrypts `signer`'s key into a new file. An address already in the folder is an error.
    pub fn store(
        &self,
        signer: &PrivateKeySigner,
        password: &Password,
        params: ScryptParams,
    ) -> Result<KeyEntry> {
        if let Ok(existing) = self.find(signer.address()) {
            return Err(Error::Keystore {
                what: existing.path.display().to_string(),
                reason: format!("{} is already in this keystore", signer.address()),
            });
        }
        let file = keystore::encrypt(signer, password, params)?;
        let name = format!(
            "UTC--{}--{}",
            chrono::Utc::now().format("%Y-%m-%dT%H-%M-%S%.9fZ"),
            alloy::primitives::hex::encode(signer.address())
        );
        let path = self.dir.join(name);
        write_private(&path, &serde_json::to_vec(&file).expect("a key file serialises"))?;
        tracing::info!(address = %signer.address(), file = %path.display(), "key stored");
        Ok(KeyEntry { address: signer.address(), path })
    }

    /// The key file `spec` names: a path to a file, or an address whose file is in this
    /// folder. `what` names the setting in errors (`--keystore`).
    pub fn resolve(&self, what: &str, spec: &str) -> Result<PathBuf> {
        let p = Path::new(spec);
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        match crate::tx::parse_address(what, spec) {
            Ok(addr) => Ok(self.find(addr)?.path),
            Err(_) => Err(Error::Keystore {
                what: format!("{what} {spec}"),
                reason: "no such file, and not an address".into(),
            }),
        }
    }

    /// Decrypts the key of `address`.
    pub fn unlock(&self, address: Address, password: &Password) -> Result<PrivateKeySigner> {
        unlock_file(&self.find(address)?.path, password)
    }
}

/// Reads a key file, refusing anything larger than a key file can be.
fn read_key_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let io = |e: std::io::Error| Error::Io { path: path.to_path_buf(), reason: e.to_string() };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(keystore::MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > keystore::MAX_KEY_FILE_BYTES {
        return Err(Error::Keystore {
            what: path.display().to_string(),
            reason: format!("larger than {} bytes: not a key file", keystore::MAX_KEY_FILE_BYTES),
        });
    }
    Ok(text)
}

/// Decrypts the key file at `path`.
pub fn unlock_file(path: &Path, password: &Password) -> Result<PrivateKeySigner> {
    let json = read_key_file(path)?;
    keystore::decrypt(&json, password, &path.display().to_string())
}

/// The address a key file declares, if it is one.
pub fn declared_address(path: &Path) -> Option<Address> {
    let text = read_key_file(path).ok()?;
    let file: KeyFile = serde_json::from_str(&text).ok()?;
    file.address?.trim_start_matches("0x").parse().ok()
}

/// Writes a new file readable only by its owner (0600) into a folder only its owner can enter
/// (0700, as geth makes its keystore); never overwrites.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| Error::Io { path: path.to_path_buf(), reason: e.to_string() };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(parent).map_err(io)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_find_unlock() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = KeyDir::new(tmp.path().join("ks"));
        assert!(dir.list().unwrap().is_empty());
        let pw = Password::new("pw");
        let a = dir.create(&pw, ScryptParams::LIGHT).unwrap();
        let b = dir.create(&pw, ScryptParams::LIGHT).unwrap();
        std::fs::write(tmp.path().join("ks/notes.txt"), "not a key").unwrap();
        let listed = dir.list().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&a) && listed.contains(&b));
        assert_eq!(dir.unlock(a.address, &pw).unwrap().address(), a.address);
        let err = dir.find(Address::ZERO).unwrap_err().to_string();
        assert!(err.contains(&a.address.to_string()), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&a.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(tmp.path().join("ks")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "the folder is the owner's alone");
        }
        let signer = dir.unlock(a.address, &pw).unwrap();
        let dup = dir.store(&signer, &pw, ScryptParams::LIGHT).unwrap_err().to_string();
        assert!(dup.contains("already in this keystore"), "{dup}");
        let huge = tmp.path().join("huge.json");
        std::fs::write(&huge, vec![b' '; 100_000]).unwrap();
        let err = unlock_file(&huge, &pw).unwrap_err().to_string();
        assert!(err.contains("not a key file"), "{err}");
    }
}
