//! `kairos keys` and `kairos tx sign` end to end, and the rule that no key or password ever
//! reaches the output, even at trace level.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn kairos(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kairos"));
    c.args(args).env_remove("KAIROS_KEYSTORE_PASSWORD").env_remove("KAIROS_KEYSTORE_DIR");
    c.env("RUST_LOG", "trace");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run kairos")
}

fn all_output(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn signed_cases() -> Vec<Value> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../chain/tests/fixtures/eth_account_signed.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

const PASSWORD: &str = "tr0ub4dor&3-kairos";

#[test]
fn import_then_sign_matches_eth_account_and_leaks_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let dir_s = dir.to_str().unwrap();
    let pw_file = tmp.path().join("pw");
    std::fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
    let pw_s = pw_file.to_str().unwrap();
    let mut transcript = String::new();
    for case in signed_cases().iter().take(3) {
        let key = case["private_key"].as_str().unwrap();
        let key_file = tmp.path().join("key.hex");
        std::fs::write(&key_file, key).unwrap();
        let o = kairos(
            &[
                "-vv",
                "keys",
                "import",
                "--keystore-dir",
                dir_s,
                "--private-key-file",
                key_file.to_str().unwrap(),
                "--password-file",
                pw_s,
                "--scrypt-log-n",
                "12",
            ],
            &[],
        );
        transcript += &all_output(&o);
        assert!(o.status.success(), "{}", all_output(&o));
        let address = case["address"].as_str().unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), address);
        std::fs::remove_file(&key_file).unwrap();

        // Sign by address (found in the folder), password from the environment.
        let num = |k: &str| case[k].to_string().trim_matches('"').to_string();
        let o = kairos(
            &[
                "-vv",
                "tx",
                "sign",
                "--keystore",
                address,
                "--keystore-dir",
                dir_s,
                "--chain-id",
                &num("chain_id"),
                "--nonce",
                &num("nonce"),
                "--to",
                case["to"].as_str().unwrap(),
                "--value",
                &num("value"),
                "--gas",
                &num("gas"),
                "--max-fee",
                &num("max_fee_per_gas"),
                "--priority-fee",
                &num("max_priority_fee_per_gas"),
                "--data",
                case["data"].as_str().unwrap(),
            ],
            &[("KAIROS_KEYSTORE_PASSWORD", PASSWORD)],
        );
        transcript += &all_output(&o);
        assert!(o.status.success(), "{}", all_output(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), case["raw"].as_str().unwrap());

        // Wrong password: a clear error, and still nothing secret in it.
        let o = kairos(
            &[
                "-vv",
                "tx",
                "sign",
                "--keystore",
                address,
                "--keystore-dir",
                dir_s,
                "--chain-id",
                "1",
                "--nonce",
                "0",
                "--to",
                address,
                "--gas",
                "21000",
                "--max-fee",
                "1",
                "--priority-fee",
                "1",
            ],
            &[("KAIROS_KEYSTORE_PASSWORD", "wrong")],
        );
        transcript += &all_output(&o);
        assert!(!o.status.success());
        assert!(all_output(&o).contains("wrong password"), "{}", all_output(&o));

        for secret in [key, key.trim_start_matches("0x"), PASSWORD] {
            assert!(!transcript.contains(secret), "a secret reached the output:\n{transcript}");
            assert!(!transcript.to_lowercase().contains(&secret.to_lowercase()));
        }
    }
    // The folder lists all three, in a form `keys address` agrees with.
    let o = kairos(&["keys", "list", "--keystore-dir", dir_s], &[]);
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let first_file = listed.lines().next().unwrap().split_whitespace().nth(1).unwrap();
    let o = kairos(&["keys", "address", first_file], &[]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        listed.lines().next().unwrap().split_whitespace().next().unwrap()
    );
    let o = kairos(&["keys", "address", first_file, "--verify", "--password-file", pw_s], &[]);
    assert!(o.status.success(), "{}", all_output(&o));
}

#[test]
fn bad_inputs_are_named_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let secret = "0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg";
    let bad_key = tmp.path().join("bad.hex");
    std::fs::write(&bad_key, secret).unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "x").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "keys",
                "import",
                "--keystore-dir",
                dir,
                "--private-key-file",
                bad_key.to_str().unwrap(),
                "--password-file",
                pw.to_str().unwrap(),
            ],
            "not a 32-byte hex private key",
        ),
        (
            vec![
                "tx",
                "sign",
                "--keystore",
                "0x000000000000000000000000000000000000dEaD",
                "--keystore-dir",
                dir,
                "--password-file",
                pw.to_str().unwrap(),
                "--chain-id",
                "1",
                "--nonce",
                "0",
                "--to",
                "0x1",
                "--gas",
                "21000",
                "--max-fee",
                "1",
                "--priority-fee",
                "1",
            ],
            "--to \"0x1\" is not an address",
        ),
        (
            vec![
                "tx",
                "sign",
                "--keystore",
                "0x000000000000000000000000000000000000dEaD",
                "--keystore-dir",
                dir,
                "--password-file",
                pw.to_str().unwrap(),
                "--chain-id",
                "1",
                "--nonce",
                "0",
                "--to",
                "0x000000000000000000000000000000000000dEaD",
                "--gas",
                "21000",
                "--max-fee",
                "1",
                "--priority-fee",
                "1",
            ],
            "no key for 0x000000000000000000000000000000000000dEaD",
        ),
        (
            vec![
                "tx",
                "sign",
                "--keystore",
                "nope.json",
                "--password-file",
                pw.to_str().unwrap(),
                "--chain-id",
                "1",
                "--nonce",
                "0",
                "--to",
                "0x000000000000000000000000000000000000dEaD",
                "--gas",
                "20000",
                "--max-fee",
                "1",
                "--priority-fee",
                "1",
            ],
            "below the intrinsic",
        ),
        (vec!["keys", "new", "--keystore-dir", dir], "no password: give --password-file"),
    ];
    for (args, needle) in cases {
        let o = kairos(&args, &[]);
        let out = all_output(&o);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(out.contains(needle), "{args:?}: expected {needle:?} in\n{out}");
        assert!(!out.contains(&secret[2..]), "the malformed key was echoed:\n{out}");
    }
}

/// What a new user ran into, each now a clear error with a non-zero exit status: hostile key
/// files (a petabyte scrypt and four billion PBKDF2 rounds aborted or hung the process),
/// calldata that needs more than the 21,000 base gas, an empty password, `keys import` with
/// no source, and `keys list` of a folder that does not exist.
#[test]
fn a_new_users_mistakes_and_hostile_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let dir_s = dir.to_str().unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "x\n").unwrap();
    let pw_s = pw.to_str().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let key = |kdf: &str, params: &str| {
        let path = tmp.path().join(format!("{kdf}-{}.json", params.len()));
        std::fs::write(
            &path,
            format!(
                r#"{{"version":3,"crypto":{{"cipher":"aes-128-ctr","cipherparams":{{"iv":"00000000000000000000000000000000"}},"ciphertext":"{z}","kdf":"{kdf}","kdfparams":{params},"mac":"{z}"}}}}"#,
                z = "00".repeat(32)
            ),
        )
        .unwrap();
        path
    };
    let huge_n = key("scrypt", r#"{"dklen":32,"n":1099511627776,"r":8,"p":1,"salt":"00"}"#);
    let huge_c = key("pbkdf2", r#"{"c":4294967295,"dklen":32,"prf":"hmac-sha256","salt":"00"}"#);
    let import = |f: &std::path::Path| {
        vec![
            "keys".to_string(),
            "import".into(),
            "--keystore-dir".into(),
            dir_s.into(),
            "--key-file".into(),
            f.to_str().unwrap().into(),
            "--password-file".into(),
            pw_s.into(),
        ]
    };
    let sign_calldata = vec![
        "tx",
        "sign",
        "--keystore",
        "nope.json",
        "--password-file",
        pw_s,
        "--chain-id",
        "1",
        "--nonce",
        "0",
        "--to",
        "0x000000000000000000000000000000000000dEaD",
        "--gas",
        "21000",
        "--max-fee",
        "1",
        "--priority-fee",
        "1",
        "--data",
        "0xffffffffffffffffffff",
    ];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (import(&huge_n), "kdfparams.n = 2^40 is above the limit 2^20"),
        (import(&huge_c), "kdfparams.c = 4294967295"),
        (sign_calldata.iter().map(|s| s.to_string()).collect(), "below the intrinsic 21400"),
        (
            ["keys", "new", "--keystore-dir", dir_s, "--password-file", empty.to_str().unwrap()]
                .map(String::from)
                .to_vec(),
            "the password is empty",
        ),
        (
            ["keys", "import", "--keystore-dir", dir_s, "--password-file", pw_s]
                .map(String::from)
                .to_vec(),
            "--private-key-file <PRIVATE_KEY_FILE>|--key-file <KEY_FILE>",
        ),
        (
            ["keys", "list", "--keystore-dir", dir_s].map(String::from).to_vec(),
            "no keystore folder at",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = kairos(&args, &[]);
        let out = all_output(&o);
        // An error exit, not a signal (the huge n used to end in SIGABRT).
        assert!(matches!(o.status.code(), Some(1 | 2)), "{args:?}: {:?}\n{out}", o.status);
        assert!(out.contains(needle), "{args:?}: expected {needle:?} in\n{out}");
    }
    assert!(!dir.exists(), "nothing was written");
    // With the flag, an empty password is taken, and the folder is the owner's alone.
    let o = kairos(
        &[
            "keys",
            "new",
            "--keystore-dir",
            dir_s,
            "--password-file",
            empty.to_str().unwrap(),
            "--allow-empty-password",
            "--scrypt-log-n",
            "10",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", all_output(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
