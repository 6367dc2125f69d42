//! Interoperability with an independent implementation, eth-account 0.14.0:
//! - raw signed EIP-1559 transactions for fixed inputs are byte-identical
//!   (`fixtures/eth_account_signed.json`, recorded by
//!   `scripts/reference/eth_account_reference.py sign`);
//! - key files eth-account wrote (scrypt at its default N = 2^18, scrypt light, pbkdf2)
//!   decrypt here;
//! - a key file Kairos writes decrypts in eth-account (live, with the Python package from
//!   `scripts/chain/setup.sh`; CI sets `KAIROS_REQUIRE_INTEROP=1` so a missing Python fails).

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use kairos_chain::Error;
use kairos_chain::keys::KeyDir;
use kairos_chain::keystore::{self, Password, ScryptParams};
use kairos_chain::tx::{self, TxFields};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn signed_transactions_match_eth_account_byte_for_byte() {
    let doc = read_json("eth_account_signed.json");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for c in cases {
        let signer: PrivateKeySigner = s(&c["private_key"]).parse().unwrap();
        assert_eq!(signer.address(), s(&c["address"]).parse::<Address>().unwrap());
        let fields = TxFields {
            chain_id: c["chain_id"].as_u64().unwrap(),
            nonce: c["nonce"].as_u64().unwrap(),
            to: tx::parse_address("to", s(&c["to"])).unwrap(),
            value: tx::parse_u256("value", s(&c["value"])).unwrap(),
            gas_limit: c["gas"].as_u64().unwrap(),
            max_fee_per_gas: tx::parse_int("max fee", s(&c["max_fee_per_gas"])).unwrap(),
            max_priority_fee_per_gas: tx::parse_int("prio", s(&c["max_priority_fee_per_gas"]))
                .unwrap(),
            input: tx::parse_bytes("data", s(&c["data"])).unwrap(),
        };
        let signed = tx::sign(&signer, fields.build().unwrap()).unwrap();
        assert_eq!(signed.raw.to_string(), s(&c["raw"]), "raw bytes, case {c}");
        assert_eq!(signed.hash.to_string(), s(&c["hash"]), "hash, case {c}");
    }
}

#[test]
fn eth_account_key_files_decrypt_here() {
    let index = read_json("eth_account_keystores.json");
    for f in index["files"].as_array().unwrap() {
        let path = fixtures().join(s(&f["file"]));
        let json = std::fs::read_to_string(&path).unwrap();
        let pw = Password::new(s(&f["password"]));
        let signer = keystore::decrypt(&json, &pw, s(&f["file"])).unwrap();
        assert_eq!(signer.address(), s(&f["address"]).parse::<Address>().unwrap(), "{f}");
        let err = keystore::decrypt(&json, &Password::new("not it"), s(&f["file"])).unwrap_err();
        assert!(matches!(err, Error::WrongPassword { .. }), "{err}");
        assert!(err.to_string().contains(s(&f["file"])), "{err}");
    }
}

fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        std::env::var_os("KAIROS_ETH_PYTHON").map(PathBuf::from),
        Some(root.join("target/eth-venv/bin/python")),
    ];
    let found = candidates.into_iter().flatten().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import eth_account"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
            "KAIROS_REQUIRE_INTEROP is set but no Python with eth-account was found \
             (run scripts/chain/setup.sh or set KAIROS_ETH_PYTHON)"
        );
        eprintln!("skipping: no Python with eth-account (run scripts/chain/setup.sh)");
    }
    found
}

#[test]
#[cfg_attr(kairos_no_eth_python, ignore = "needs eth-account: run scripts/chain/setup.sh")]
fn kairos_key_files_decrypt_in_eth_account() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = KeyDir::new(tmp.path().join("keys"));
    let pw_file = tmp.path().join("pw");
    std::fs::write(&pw_file, "kairos → eth-account\n").unwrap();
    let pw = Password::from_file(&pw_file).unwrap();
    // Standard parameters (what users get) and light ones.
    for params in [ScryptParams::STANDARD, ScryptParams::LIGHT] {
        let entry = dir.create(&pw, params).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scripts/reference/eth_account_reference.py");
        let out = std::process::Command::new(&py)
            .arg(script)
            .arg("decrypt")
            .arg(&entry.path)
            .arg(&pw_file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let addr: Address = String::from_utf8(out.stdout).unwrap().trim().parse().unwrap();
        assert_eq!(addr, entry.address, "{params:?}");
    }
}
