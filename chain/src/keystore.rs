//! Encrypted key files in the Web3 Secret Storage v3 format, the one geth, foundry (`cast
//! wallet`), eth-account and MetaMask exports read and write.
//!
//! A key is encrypted with AES-128-CTR under a key derived from the password with scrypt
//! (geth's "standard" parameters by default: N = 2^18, r = 8, p = 1, which costs 256 MiB and
//! most of a second per attempt) and authenticated with `keccak256(dk[16..32] ++ ciphertext)`.
//! Files written by other tools with scrypt or PBKDF2-HMAC-SHA256 decrypt here.
//!
//! Secrets never leave this module in printable form: [`Password`] and every intermediate
//! buffer are zeroised on drop, and a decrypted key comes back as an
//! [`alloy`](alloy::signers::local::PrivateKeySigner) signer, whose `Debug` prints only the
//! address.

use std::fmt;
use std::path::Path;

use aes::cipher::{KeyIvInit, StreamCipher};
use alloy::primitives::{Address, B256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::{Error, Result};

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// A password, zeroised on drop, never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(Zeroizing::new(password.into()))
    }

    /// Reads the first line of `path` (a trailing newline is not part of the password, as in
    /// geth's and foundry's `--password-file`).
    pub fn from_file(path: &Path) -> Result<Self> {
        let mut text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| Error::Io { path: path.to_path_buf(), reason: e.to_string() })?,
        );
        let line_end = text.find(['\r', '\n']).unwrap_or(text.len());
        text.truncate(line_end);
        Ok(Self(Zeroizing::new(std::mem::take(&mut *text))))
    }

    /// Whether two passwords are the same (for a typed confirmation).
    pub fn matches(&self, other: &Password) -> bool {
        self.0.as_bytes() == other.0.as_bytes()
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// scrypt cost parameters for new key files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScryptParams {
    /// log2 of the CPU/memory cost N.
    pub log_n: u8,
    /// Block size.
    pub r: u32,
    /// Parallelism.
    pub p: u32,
}

impl ScryptParams {
    /// geth's `StandardScryptN`/`StandardScryptP`: N = 2^18, r = 8, p = 1.
    pub const STANDARD: Self = Self { log_n: 18, r: 8, p: 1 };
    /// geth's `LightScryptN`: N = 2^12. Only for tests and throwaway keys.
    pub const LIGHT: Self = Self { log_n: 12, r: 8, p: 6 };
}

impl Default for ScryptParams {
    fn default() -> Self {
        Self::STANDARD
    }
}

/// The JSON document of a v3 key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    /// The key's address, lowercase hex without `0x` (optional in the format; checked against
    /// the decrypted key when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The encrypted key. Old geth files spell it `Crypto`.
    #[serde(alias = "Crypto")]
    pub crypto: CryptoJson,
    /// A random UUID.
    #[serde(default)]
    pub id: String,
    /// Always 3.
    pub version: u32,
}

/// The `crypto` object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CryptoJson {
    /// `aes-128-ctr`.
    pub cipher: String,
    /// The cipher's IV.
    pub cipherparams: CipherParams,
    /// The encrypted private key, hex.
    pub ciphertext: String,
    /// `scrypt` or `pbkdf2`.
    pub kdf: String,
    /// The KDF's parameters.
    pub kdfparams: serde_json::Value,
    /// `keccak256(dk[16..32] ++ ciphertext)`, hex.
    pub mac: String,
}

/// The cipher's parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CipherParams {
    /// 16-byte IV, hex.
    pub iv: String,
}

#[derive(Deserialize)]
struct ScryptJson {
    dklen: usize,
    n: u64,
    r: u32,
    p: u32,
    salt: String,
}

#[derive(Deserialize)]
struct Pbkdf2Json {
    c: u32,
    dklen: usize,
    prf: String,
    salt: String,
}

/// Encrypts `signer`'s key under `password`.
pub fn encrypt(
    signer: &PrivateKeySigner,
    password: &Password,
    params: ScryptParams,
) -> Result<KeyFile> {
    let mut salt = [0u8; 32];
    let mut iv = [0u8; 16];
    fill_random(&mut salt)?;
    fill_random(&mut iv)?;
    let mut dk = Zeroizing::new([0u8; 32]);
    let scrypt_params = scrypt::Params::new(params.log_n, params.r, params.p, 32)
        .map_err(|e| Error::Keystore { what: "scrypt parameters".into(), reason: e.to_string() })?;
    scrypt::scrypt(password.bytes(), &salt, &scrypt_params, &mut *dk)
        .map_err(|e| Error::Keystore { what: "scrypt".into(), reason: e.to_string() })?;
    let mut ciphertext = Zeroizing::new(signer.credential().to_bytes().to_vec());
    Aes128Ctr::new(dk[..16].into(), (&iv).into()).apply_keystream(&mut ciphertext);
    let mac = mac(&dk[16..32], &ciphertext);
    Ok(KeyFile {
        address: Some(hex_lower(signer.address().as_slice())),
        crypto: CryptoJson {
            cipher: "aes-128-ctr".into(),
            cipherparams: CipherParams { iv: hex_lower(&iv) },
            ciphertext: hex_lower(&ciphertext),
            kdf: "scrypt".into(),
            kdfparams: serde_json::json!({
                "dklen": 32,
                "n": 1u64 << params.log_n,
                "p": params.p,
                "r": params.r,
                "salt": hex_lower(&salt),
            }),
            mac: hex_lower(mac.as_slice()),
        },
        id: uuid::Uuid::new_v4().to_string(),
        version: 3,
    })
}

/// Decrypts a key file's JSON text. `what` names it in errors (usually its path).
pub fn decrypt(json: &str, password: &Password, what: &str) -> Result<PrivateKeySigner> {
    let file: KeyFile = serde_json::from_str(json).map_err(|e| Error::Keystore {
        what: what.into(),
        reason: format!("not a v3 key file: {e}"),
    })?;
    decrypt_file(&file, password, what)
}

/// Decrypts a parsed key file.
pub fn decrypt_file(file: &KeyFile, password: &Password, what: &str) -> Result<PrivateKeySigner> {
    let bad = |reason: String| Error::Keystore { what: what.into(), reason };
    if file.version != 3 {
        return Err(bad(format!("version {} (only version 3 is supported)", file.version)));
    }
    let c = &file.crypto;
    if c.cipher != "aes-128-ctr" {
        return Err(bad(format!("cipher {:?} (only aes-128-ctr is supported)", c.cipher)));
    }
    let ciphertext =
        Zeroizing::new(unhex(&c.ciphertext).map_err(|e| bad(format!("ciphertext: {e}")))?);
    if ciphertext.len() != 32 {
        return Err(bad(format!("ciphertext is {} bytes, a key is 32", ciphertext.len())));
    }
    let iv = unhex(&c.cipherparams.iv).map_err(|e| bad(format!("iv: {e}")))?;
    let iv: [u8; 16] =
        iv.try_into().map_err(|v: Vec<u8>| bad(format!("iv is {} bytes, not 16", v.len())))?;
    let expected_mac = unhex(&c.mac).map_err(|e| bad(format!("mac: {e}")))?;
    let mut dk = Zeroizing::new(vec![0u8; 32]);
    match c.kdf.as_str() {
        "scrypt" => {
            let p: ScryptJson = serde_json::from_value(c.kdfparams.clone())
                .map_err(|e| bad(format!("scrypt parameters: {e}")))?;
            if !p.n.is_power_of_two() || p.n < 2 {
                return Err(bad(format!("scrypt n = {} is not a power of two", p.n)));
            }
            if p.dklen < 32 {
                return Err(bad(format!("dklen {} is shorter than 32", p.dklen)));
            }
            let log_n = p.n.trailing_zeros() as u8;
            let params = scrypt::Params::new(log_n, p.r, p.p, p.dklen)
                .map_err(|e| bad(format!("scrypt parameters: {e}")))?;
            let salt = unhex(&p.salt).map_err(|e| bad(format!("salt: {e}")))?;
            dk.resize(p.dklen, 0);
            scrypt::scrypt(password.bytes(), &salt, &params, &mut dk)
                .map_err(|e| bad(format!("scrypt: {e}")))?;
        }
        "pbkdf2" => {
            let p: Pbkdf2Json = serde_json::from_value(c.kdfparams.clone())
                .map_err(|e| bad(format!("pbkdf2 parameters: {e}")))?;
            if p.prf != "hmac-sha256" {
                return Err(bad(format!("pbkdf2 prf {:?} (only hmac-sha256)", p.prf)));
            }
            if p.dklen < 32 {
                return Err(bad(format!("dklen {} is shorter than 32", p.dklen)));
            }
            let salt = unhex(&p.salt).map_err(|e| bad(format!("salt: {e}")))?;
            dk.resize(p.dklen, 0);
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.bytes(), &salt, p.c, &mut dk);
        }
        other => return Err(bad(format!("kdf {other:?} (scrypt and pbkdf2 are supported)"))),
    }
    if mac(&dk[16..32], &ciphertext).as_slice() != expected_mac.as_slice() {
        return Err(Error::WrongPassword { what: what.into() });
    }
    let mut key = Zeroizing::new(ciphertext.to_vec());
    Aes128Ctr::new(dk[..16].into(), (&iv).into()).apply_keystream(&mut key);
    let mut secret = B256::from_slice(&key);
    let signer = PrivateKeySigner::from_bytes(&secret)
        .map_err(|e| bad(format!("the decrypted key is not a valid secp256k1 key: {e}")));
    secret.zeroize();
    let signer = signer?;
    if let Some(addr) = &file.address
        && let Ok(bytes) = unhex(addr)
        && bytes.len() == 20
        && Address::from_slice(&bytes) != signer.address()
    {
        return Err(bad(format!(
            "the file says address 0x{addr} but the key is {}",
            signer.address()
        )));
    }
    Ok(signer)
}

fn mac(dk_tail: &[u8], ciphertext: &[u8]) -> B256 {
    let mut buf = Zeroizing::new(Vec::with_capacity(dk_tail.len() + ciphertext.len()));
    buf.extend_from_slice(dk_tail);
    buf.extend_from_slice(ciphertext);
    keccak256(&*buf)
}

fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Keystore {
        what: "random bytes".into(),
        reason: format!("the OS random source failed: {e}"),
    })
}

fn hex_lower(bytes: &[u8]) -> String {
    alloy::primitives::hex::encode(bytes)
}

fn unhex(s: &str) -> std::result::Result<Vec<u8>, String> {
    alloy::primitives::hex::decode(s.trim()).map_err(|e| format!("invalid hex ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_password() {
        let signer = PrivateKeySigner::random();
        let pw = Password::new("correct horse");
        let file = encrypt(&signer, &pw, ScryptParams::LIGHT).unwrap();
        let json = serde_json::to_string(&file).unwrap();
        let back = decrypt(&json, &pw, "test").unwrap();
        assert_eq!(back.address(), signer.address());
        let err = decrypt(&json, &Password::new("wrong"), "test").unwrap_err();
        assert!(matches!(err, Error::WrongPassword { .. }), "{err}");
        assert!(err.to_string().contains("wrong password"), "{err}");
    }

    #[test]
    fn password_debug_is_redacted() {
        assert_eq!(format!("{:?}", Password::new("hunter2")), "Password(<redacted>)");
    }

    #[test]
    fn password_file_drops_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        assert_eq!(Password::from_file(&p).unwrap().bytes(), b"s3cret");
    }

    #[test]
    fn malformed_files_are_named_errors() {
        let pw = Password::new("x");
        for (json, needle) in [
            ("{}", "not a v3 key file"),
            ("[1,2]", "not a v3 key file"),
            (
                r#"{"version":3,"crypto":{"cipher":"aes-256-gcm","cipherparams":{"iv":"00"},"ciphertext":"00","kdf":"scrypt","kdfparams":{},"mac":"00"}}"#,
                "cipher",
            ),
            (
                r#"{"version":3,"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"00"},"ciphertext":"zz","kdf":"scrypt","kdfparams":{},"mac":"00"}}"#,
                "ciphertext: invalid hex",
            ),
            (
                r#"{"version":3,"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"00000000000000000000000000000000"},"ciphertext":"0000000000000000000000000000000000000000000000000000000000000000","kdf":"argon2","kdfparams":{},"mac":"00"}}"#,
                "kdf \"argon2\"",
            ),
            (
                r#"{"version":3,"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"00000000000000000000000000000000"},"ciphertext":"0000000000000000000000000000000000000000000000000000000000000000","kdf":"scrypt","kdfparams":{"dklen":32,"n":1000,"r":8,"p":1,"salt":"00"},"mac":"00"}}"#,
                "power of two",
            ),
        ] {
            let err = decrypt(json, &pw, "bad.json").unwrap_err().to_string();
            assert!(err.contains("bad.json") && err.contains(needle), "{json}: {err}");
        }
    }
}
