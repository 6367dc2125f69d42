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

/// A password, zeroised on drop, never printed, never copied (not `Clone`).
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

    /// Whether the password is empty (which encrypts a key with no protection at all).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The largest scrypt `n` a key file may ask for, as log2: 2^20 (geth's standard is 2^18).
pub const MAX_SCRYPT_LOG_N: u32 = 20;
/// The most memory a key file's scrypt may take (`128 * r * n` bytes): 1 GiB.
pub const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// The most work a key file's scrypt may take (`128 * r * n * p` bytes mixed): 2 GiB.
pub const MAX_SCRYPT_WORK: u64 = 1 << 31;
/// The most PBKDF2 iterations a key file may ask for (geth writes 262,144).
pub const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;
/// The largest key file read (real ones are under 1 KiB).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

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
    dklen: u64,
    n: u64,
    r: u64,
    p: u64,
    salt: String,
}

#[derive(Deserialize)]
struct Pbkdf2Json {
    c: u64,
    dklen: u64,
    prf: String,
    salt: String,
}

/// A key file's key derivation, its parameters checked against the bounds above.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kdf {
    Scrypt { log_n: u8, r: u32, p: u32, salt: Vec<u8> },
    Pbkdf2 { c: u32, salt: Vec<u8> },
}

/// A parsed key file whose every field is checked, ready for the (costly) derivation.
struct Checked {
    kdf: Kdf,
    iv: [u8; 16],
    ciphertext: Zeroizing<Vec<u8>>,
    mac: Vec<u8>,
}

/// Parses and checks a key file's JSON text without deriving anything: every field is
/// decoded and the KDF's cost bounded, so a hostile file is an error here, never a huge
/// allocation or an endless loop later.
fn check(json: &str, what: &str) -> Result<(KeyFile, Checked)> {
    let file: KeyFile = serde_json::from_str(json).map_err(|e| Error::Keystore {
        what: what.into(),
        reason: format!("not a v3 key file: {e}"),
    })?;
    let checked = check_file(&file, what)?;
    Ok((file, checked))
}

/// [`check`] of a parsed file.
fn check_file(file: &KeyFile, what: &str) -> Result<Checked> {
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
    let mac = unhex(&c.mac).map_err(|e| bad(format!("mac: {e}")))?;
    if mac.len() != 32 {
        return Err(bad(format!("mac is {} bytes, not 32", mac.len())));
    }
    let dklen = |d: u64| {
        if d == 32 { Ok(()) } else { Err(bad(format!("kdfparams.dklen is {d}; it must be 32"))) }
    };
    let salt = |s: &str| {
        let v = unhex(s).map_err(|e| bad(format!("kdfparams.salt: {e}")))?;
        if v.len() > 1024 {
            return Err(bad(format!("kdfparams.salt is {} bytes (at most 1024)", v.len())));
        }
        Ok(v)
    };
    let kdf = match c.kdf.as_str() {
        "scrypt" => {
            let p: ScryptJson = serde_json::from_value(c.kdfparams.clone())
                .map_err(|e| bad(format!("scrypt kdfparams: {e}")))?;
            dklen(p.dklen)?;
            if !p.n.is_power_of_two() || p.n < 2 {
                return Err(bad(format!("kdfparams.n = {} is not a power of two", p.n)));
            }
            let log_n = p.n.trailing_zeros();
            if log_n > MAX_SCRYPT_LOG_N {
                return Err(bad(format!(
                    "kdfparams.n = 2^{log_n} is above the limit 2^{MAX_SCRYPT_LOG_N}"
                )));
            }
            if p.r == 0 || p.p == 0 {
                return Err(bad(format!("kdfparams.r = {} and p = {} must be positive", p.r, p.p)));
            }
            let memory = 128u64.saturating_mul(p.r).saturating_mul(p.n);
            if memory > MAX_SCRYPT_MEMORY {
                return Err(bad(format!(
                    "kdfparams.r = {} with n = {} needs {memory} bytes (at most {MAX_SCRYPT_MEMORY})",
                    p.r, p.n
                )));
            }
            if memory.saturating_mul(p.p) > MAX_SCRYPT_WORK {
                return Err(bad(format!(
                    "kdfparams.p = {} makes scrypt too costly (128 * r * n * p above {MAX_SCRYPT_WORK})",
                    p.p
                )));
            }
            // Both fit in u32: r * 128 * 2 <= 2^30 and p * 128 * 2 <= 2^31.
            Kdf::Scrypt { log_n: log_n as u8, r: p.r as u32, p: p.p as u32, salt: salt(&p.salt)? }
        }
        "pbkdf2" => {
            let p: Pbkdf2Json = serde_json::from_value(c.kdfparams.clone())
                .map_err(|e| bad(format!("pbkdf2 kdfparams: {e}")))?;
            if p.prf != "hmac-sha256" {
                return Err(bad(format!("kdfparams.prf {:?} (only hmac-sha256)", p.prf)));
            }
            dklen(p.dklen)?;
            if p.c == 0 || p.c > u64::from(MAX_PBKDF2_ROUNDS) {
                return Err(bad(format!(
                    "kdfparams.c = {} (from 1 to {MAX_PBKDF2_ROUNDS} rounds)",
                    p.c
                )));
            }
            Kdf::Pbkdf2 { c: p.c as u32, salt: salt(&p.salt)? }
        }
        other => return Err(bad(format!("kdf {other:?} (scrypt and pbkdf2 are supported)"))),
    };
    Ok(Checked { kdf, iv, ciphertext, mac })
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
    let mut key = signer.credential().to_bytes();
    let mut ciphertext = Zeroizing::new(key.to_vec());
    key.as_mut_slice().zeroize();
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

/// Decrypts a key file's JSON text. `what` names it in errors (usually its path). The file is
/// checked before anything is derived: a scrypt `n` above 2^20, more than 1 GiB of scrypt
/// memory, PBKDF2 rounds above ten million or a `dklen` other than 32 are errors naming the
/// field.
pub fn decrypt(json: &str, password: &Password, what: &str) -> Result<PrivateKeySigner> {
    let (file, checked) = check(json, what)?;
    derive_and_open(&file, checked, password, what)
}

/// Decrypts a parsed key file (checked as [`decrypt`] checks it).
pub fn decrypt_file(file: &KeyFile, password: &Password, what: &str) -> Result<PrivateKeySigner> {
    derive_and_open(file, check_file(file, what)?, password, what)
}

fn derive_and_open(
    file: &KeyFile,
    c: Checked,
    password: &Password,
    what: &str,
) -> Result<PrivateKeySigner> {
    let bad = |reason: String| Error::Keystore { what: what.into(), reason };
    let mut dk = Zeroizing::new(vec![0u8; 32]);
    match &c.kdf {
        Kdf::Scrypt { log_n, r, p, salt } => {
            let params = scrypt::Params::new(*log_n, *r, *p, 32)
                .map_err(|e| bad(format!("scrypt parameters: {e}")))?;
            scrypt::scrypt(password.bytes(), salt, &params, &mut dk)
                .map_err(|e| bad(format!("scrypt: {e}")))?;
        }
        Kdf::Pbkdf2 { c: rounds, salt } => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.bytes(), salt, *rounds, &mut dk);
        }
    }
    if mac(&dk[16..32], &c.ciphertext).as_slice() != c.mac.as_slice() {
        return Err(Error::WrongPassword { what: what.into() });
    }
    let mut key = Zeroizing::new(c.ciphertext.to_vec());
    Aes128Ctr::new(dk[..16].into(), (&c.iv).into()).apply_keystream(&mut key);
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
                r#"{"version":3,"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"00000000000000000000000000000000"},"ciphertext":"0000000000000000000000000000000000000000000000000000000000000000","kdf":"argon2","kdfparams":{},"mac":"0000000000000000000000000000000000000000000000000000000000000000"}}"#,
                "kdf \"argon2\"",
            ),
        ] {
            let err = decrypt(json, &pw, "bad.json").unwrap_err().to_string();
            assert!(err.contains("bad.json") && err.contains(needle), "{json}: {err}");
        }
    }

    fn light_file() -> serde_json::Value {
        let signer = PrivateKeySigner::random();
        let file = encrypt(&signer, &Password::new("pw"), ScryptParams::LIGHT).unwrap();
        serde_json::to_value(&file).unwrap()
    }

    /// Hostile key files are errors naming the field, found before any derivation: no abort
    /// from a petabyte allocation, no four-billion-round loop.
    #[test]
    fn hostile_kdf_parameters_are_refused_before_deriving() {
        let pw = Password::new("pw");
        let scrypt = |key: &str, v: serde_json::Value| {
            let mut f = light_file();
            f["crypto"]["kdfparams"][key] = v;
            f.to_string()
        };
        let pbkdf2 = |c: serde_json::Value, dklen: u64| {
            let mut f = light_file();
            f["crypto"]["kdf"] = "pbkdf2".into();
            f["crypto"]["kdfparams"] =
                serde_json::json!({"c": c, "dklen": dklen, "prf": "hmac-sha256", "salt": "00"});
            f.to_string()
        };
        for (json, needle) in [
            (scrypt("n", 1_099_511_627_776u64.into()), "kdfparams.n = 2^40 is above the limit"),
            (scrypt("n", 1000.into()), "not a power of two"),
            (scrypt("n", 0.into()), "not a power of two"),
            (scrypt("n", (-4).into()), "scrypt kdfparams"),
            (scrypt("n", "4096".into()), "scrypt kdfparams"),
            (scrypt("r", (1u64 << 40).into()), "kdfparams.r"),
            (scrypt("r", 0.into()), "must be positive"),
            (scrypt("p", 1_000_000.into()), "kdfparams.p"),
            (scrypt("dklen", 64.into()), "dklen is 64"),
            (scrypt("dklen", 16.into()), "dklen is 16"),
            (scrypt("salt", "zz".into()), "kdfparams.salt"),
            (pbkdf2(4_294_967_295u64.into(), 32), "kdfparams.c = 4294967295"),
            (pbkdf2(0.into(), 32), "kdfparams.c = 0"),
            (pbkdf2(1000.into(), 31), "dklen is 31"),
            (pbkdf2("many".into(), 32), "pbkdf2 kdfparams"),
        ] {
            let started = std::time::Instant::now();
            let err = decrypt(&json, &pw, "hostile.json").unwrap_err().to_string();
            assert!(err.contains("hostile.json") && err.contains(needle), "{needle}: {err}");
            // Refused before deriving: LIGHT's own scrypt alone would take longer than this
            // check on any machine, so a bound of a second can only fail if derivation ran.
            assert!(started.elapsed() < std::time::Duration::from_secs(1), "{needle}");
        }
        let text = light_file().to_string();
        for cut in [0, 1, text.len() / 2, text.len() - 1] {
            let err = decrypt(&text[..cut], &pw, "cut.json").unwrap_err().to_string();
            assert!(err.contains("not a v3 key file"), "{err}");
        }
        let mut f = light_file();
        f["crypto"]["mac"] = "00".into();
        assert!(decrypt(&f.to_string(), &pw, "m").unwrap_err().to_string().contains("mac is 1"));
        f["version"] = "3".into();
        assert!(decrypt(&f.to_string(), &pw, "m").is_err());
    }

    fn cost_within_bounds(json: &str) {
        if let Ok((_, c)) = check(json, "fuzz") {
            match c.kdf {
                Kdf::Scrypt { log_n, r, p, .. } => {
                    let mem = (128 * u64::from(r)) << log_n;
                    assert!(u32::from(log_n) <= MAX_SCRYPT_LOG_N && mem <= MAX_SCRYPT_MEMORY);
                    assert!(mem * u64::from(p) <= MAX_SCRYPT_WORK);
                }
                Kdf::Pbkdf2 { c, .. } => assert!((1..=MAX_PBKDF2_ROUNDS).contains(&c)),
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Random text is an error, never a panic.
        #[test]
        fn random_text_never_panics(text in ".{0,400}") {
            cost_within_bounds(&text);
            let _ = check(&text, "fuzz");
        }

        /// Byte mutations of a real file: every parse that succeeds has a bounded cost, and
        /// a cheap one decrypts to an error or to a key, never a panic.
        #[test]
        fn mutated_files_stay_bounded(
            edits in proptest::collection::vec((0usize..2000, proptest::num::u8::ANY), 1..6)
        ) {
            let mut bytes = LIGHT_FILE.as_bytes().to_vec();
            for (at, b) in edits {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            let text = String::from_utf8_lossy(&bytes);
            cost_within_bounds(&text);
            if let Ok((_, c)) = check(&text, "fuzz")
                && matches!(c.kdf, Kdf::Scrypt { log_n, r, p, .. } if log_n <= 12 && r * p <= 64)
            {
                let _ = decrypt(&text, &Password::new("pw"), "fuzz");
            }
        }

        /// Field values of every type and size in the KDF parameters.
        #[test]
        fn any_kdf_parameters_are_checked(
            n in proptest::num::u64::ANY, r in proptest::num::u64::ANY,
            p in proptest::num::u64::ANY, dklen in proptest::num::u64::ANY,
        ) {
            let mut f: serde_json::Value = serde_json::from_str(LIGHT_FILE).unwrap();
            f["crypto"]["kdfparams"] = serde_json::json!({"n": n, "r": r, "p": p, "dklen": dklen, "salt": "00"});
            cost_within_bounds(&f.to_string());
        }
    }

    /// A LIGHT (n = 2^12) file of a throwaway key, password "pw".
    const LIGHT_FILE: &str = r#"{"address":"","crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"6087dab2f9fdbbfaddc31a909735c1e6"},"ciphertext":"5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f1de7733","kdf":"scrypt","kdfparams":{"dklen":32,"n":4096,"p":6,"r":8,"salt":"ae3cd4e7013836a3df6bd7241b12699f2c14d1e2a1f0da4d1f4bbe2e5b5dbe2b"},"mac":"517ead924a9d0b4e4d88e8c3c3e2b1a5e5d2d8b9b5e0f4a7c3d2e1f0a9b8c7d6"},"id":"3198bc9c-6672-5ab3-d995-4942343ae5b6","version":3}"#;
}
