//! `kairos check lookahead|determinism` end to end on the built-ins (the peeking and
//! state-keeping strategies are in kairos-backtests' checks tests, registered as plugins).

use std::process::{Command, Output};

fn kairos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kairos")).args(args).env_remove("RUST_LOG").output().unwrap()
}

fn data() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/bars/btc-perp-20211231-20220201_1m.csv");
    if p.exists() { p.display().to_string() } else { "sim:8:5000".into() }
}

#[test]
fn the_built_ins_pass_both_checks_from_the_command_line() {
    let d = data();
    let o = kairos(&[
        "check",
        "lookahead",
        "--data",
        &d,
        "--strategy",
        "sma_cross",
        "-p",
        "fast=8",
        "-p",
        "slow=40",
        "--cuts",
        "4",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("0 of 8 cut runs left the full run"), "{out}");
    let o = kairos(&[
        "check",
        "determinism",
        "--data",
        &d,
        "--strategy",
        "bollinger_breakout",
        "--commission",
        "0.0004",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert_eq!(out.matches("identical").count(), 2, "{out}");
}

#[test]
fn bad_checks_are_refused_naming_what_is_wrong() {
    for (args, want) in [
        (vec!["check", "lookahead", "--data", "sim:1:500", "--strategy", "nope"], "nope"),
        (
            vec![
                "check",
                "lookahead",
                "--data",
                "sim:1:500",
                "--strategy",
                "sma_cross",
                "--cuts",
                "0",
            ],
            "cuts",
        ),
        (
            vec!["check", "determinism", "--data", "/no/such.csv", "--strategy", "sma_cross"],
            "/no/such.csv",
        ),
        (
            vec![
                "check",
                "determinism",
                "--data",
                "sim:1:500",
                "--strategy",
                "sma_cross",
                "-p",
                "fast=50",
                "-p",
                "slow=5",
            ],
            "fast",
        ),
    ] {
        let o = kairos(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{args:?}: {err}");
    }
}
