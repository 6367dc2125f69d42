//! The `kairos` binary end to end: real processes, real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kairos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run kairos")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn bars_dir() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/bars");
    if p.exists() {
        return Some(p);
    }
    assert!(std::env::var_os("CI").is_none(), "../shared/data/bars is missing in CI");
    None
}

const SUMMARY_KEYS: [&str; 25] = [
    "return_pct",
    "buy_hold_return_pct",
    "return_ann_pct",
    "volatility_ann_pct",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_pct",
    "avg_drawdown_pct",
    "max_drawdown_duration",
    "num_trades",
    "win_rate_pct",
    "best_trade_pct",
    "worst_trade_pct",
    "avg_trade_pct",
    "profit_factor",
    "expectancy_pct",
    "sqn",
    "exposure_pct",
    "equity_final",
    "equity_peak",
    "commissions",
    "bars",
    "start",
    "end",
];

#[test]
fn backtest_on_simulated_data_writes_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = kairos(&[
        "backtest",
        "--data",
        "sim:42:20000",
        "--strategy",
        "sma_cross",
        "-p",
        "fast=10",
        "-p",
        "slow=30",
        "--commission",
        "0.0005",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("SIMULATED"), "the run must say the data is simulated: {stderr}");
    assert!(stdout.contains("return_pct") && stdout.contains("sharpe"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let keys: Vec<&str> = summary.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(&keys[..25], &SUMMARY_KEYS, "summary.json keys and order");
    assert_eq!(summary["bars"], 20000);
    assert_eq!(summary["simulated"], true);
    let trades = std::fs::read_to_string(out.join("trades.csv")).unwrap();
    let mut lines = trades.lines();
    assert_eq!(
        lines.next(),
        Some("entry_time,exit_time,side,size,entry_price,exit_price,pnl,return_pct,commission")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len() as u64, summary["num_trades"].as_u64().unwrap());
    assert!(rows.len() > 10, "a 20k-bar crossover run trades: {}", rows.len());
    let pnl: f64 = rows.iter().map(|r| r.split(',').nth(6).unwrap().parse::<f64>().unwrap()).sum();
    assert!(pnl.is_finite());
    let equity = std::fs::read_to_string(out.join("equity.csv")).unwrap();
    assert_eq!(equity.lines().count(), 20001);
    assert!(equity.starts_with("time,equity\n2024-01-01 00:00:00,100000\n"), "{}", &equity[..60]);
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn config_file_matches_flags() {
    let Some(dir) = bars_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bt.toml");
    let data = dir.join("EURUSD.csv");
    std::fs::write(
        &cfg,
        format!(
            "data = \"{}\"\nstrategy = \"sma_cross\"\nout = \"from-file\"\n[params]\nfast = 10\nslow = 20\n[backtest]\ncash = 100000.0\ncommission = 0.0002\n",
            data.display()
        ),
    )
    .unwrap();
    let o = kairos(&["backtest", "--config", cfg.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let flags_out = tmp.path().join("from-flags");
    let o2 = kairos(&[
        "backtest",
        "--data",
        data.to_str().unwrap(),
        "--strategy",
        "sma_cross",
        "--cash",
        "100000",
        "--commission",
        "0.0002",
        "--out",
        flags_out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o2.status.success(), "{}", text(&o2).1);
    let a = std::fs::read_to_string(tmp.path().join("from-file/summary.json")).unwrap();
    let b = std::fs::read_to_string(flags_out.join("summary.json")).unwrap();
    assert_eq!(a, b);
    let s: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(s["num_trades"], 262, "the backtesting.py parity run");
    // A flag overrides the file.
    let o3 = kairos(&["backtest", "--config", cfg.to_str().unwrap(), "-p", "fast=5", "--json"]);
    let s3: serde_json::Value = serde_json::from_str(&text(&o3).0).unwrap();
    assert_ne!(s3["num_trades"], 262);
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let bad_csv = tmp.path().join("bad.csv");
    std::fs::write(&bad_csv, "timestamp,open,high,low,close\n2024-01-01 00:00:00,1,2,0.5,1\n2024-01-01 00:01:00,1,2,3,1\n").unwrap();
    let bad_toml = tmp.path().join("bad.toml");
    std::fs::write(&bad_toml, "strategy = \"sma_cross\"\ncapital = 5\n").unwrap();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["backtest", "--data", "sim:1:100", "--strategy", "nope"],
            vec!["unknown strategy `nope`", "sma_cross"],
        ),
        (
            vec!["backtest", "--data", "sim:1:100", "--strategy", "sma_cross", "-p", "fats=3"],
            vec!["no parameter `fats`", "fast (integer"],
        ),
        (
            vec!["backtest", "--data", "sim:1:100", "--strategy", "sma_cross", "-p", "fast"],
            vec!["not of the form key=value"],
        ),
        (
            vec!["backtest", "--data", "/no/such/file.csv", "--strategy", "sma_cross"],
            vec!["/no/such/file.csv"],
        ),
        (
            vec!["backtest", "--data", bad_csv.to_str().unwrap(), "--strategy", "sma_cross"],
            vec!["bad.csv", "row 2", "high 2 is below low 3"],
        ),
        (
            vec!["backtest", "--data", "sim:1:100", "--strategy", "sma_cross", "--cash", "-5"],
            vec!["`cash`", "-5"],
        ),
        (
            vec!["backtest", "--data", "sim:1:100", "--strategy", "sma_cross", "--fill", "later"],
            vec!["'later'", "[possible values: next-open, close]"],
        ),
        (
            vec!["backtest", "--data", "sim:1:100", "--strategy", "sma_cross", "--resample", "5q"],
            vec!["interval `5q`"],
        ),
        (vec!["backtest", "--config", bad_toml.to_str().unwrap()], vec!["bad.toml", "capital"]),
        (vec!["backtest", "--strategy", "sma_cross"], vec!["no data"]),
        (vec!["backtest", "--data", "sim:x", "--strategy", "sma_cross"], vec!["sim:SEED"]),
    ];
    for (args, wants) in cases {
        let o = kairos(&args);
        let (_, stderr) = text(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        for w in wants {
            assert!(stderr.contains(w), "{args:?}: `{stderr}` lacks `{w}`");
        }
    }
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn lists_strategies_and_checks_data() {
    let o = kairos(&["strategies"]);
    let (stdout, _) = text(&o);
    for s in ["sma_cross", "rsi_reversion", "bollinger_breakout"] {
        assert!(stdout.contains(s), "{stdout}");
    }
    let o = kairos(&["strategies", "sma_cross"]);
    assert!(text(&o).0.contains("mode (long_short|long_only, default long_short)"));
    let Some(dir) = bars_dir() else { return };
    let o = kairos(&[
        "data",
        dir.join("sp500.csv.gz").to_str().unwrap(),
        dir.join("freqtrade/ETH_BTC-5m.feather").to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("5031 bars") && stdout.contains("5760 bars"), "{stdout}");
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn example_config_file_runs() {
    if bars_dir().is_none() {
        return;
    }
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/backtest.toml");
    let tmp = tempfile::tempdir().unwrap();
    let o = kairos(&[
        "backtest",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        tmp.path().to_str().unwrap(),
        "--json",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let s: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(s["num_trades"], 262);
    assert!(tmp.path().join("summary.json").exists());
}

#[test]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
fn embed_prints_one_unit_vector_per_input() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models/all-MiniLM-L6-v2");
    if !dir.join("model.safetensors").exists() {
        assert!(
            std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
            "MiniLM weights missing: run scripts/models/fetch.sh"
        );
        eprintln!("skipping: MiniLM weights not fetched (scripts/models/fetch.sh)");
        return;
    }
    let o = kairos(&["embed", "--model", dir.to_str().unwrap(), "--json", "ETH breaks out", "gm"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: Vec<Vec<f32>> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v.len(), 2);
    for e in &v {
        assert_eq!(e.len(), 384);
        assert!((e.iter().map(|x| x * x).sum::<f32>().sqrt() - 1.0).abs() < 1e-4);
    }
    // Half precision: the same directions; a dtype that is not one is named.
    let o = kairos(&[
        "embed",
        "--model",
        dir.to_str().unwrap(),
        "--dtype",
        "f16",
        "--json",
        "ETH breaks out",
        "gm",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let half: Vec<Vec<f32>> = serde_json::from_str(&text(&o).0).unwrap();
    for (a, b) in v.iter().zip(&half) {
        assert!(kairos_models::embed::cosine(a, b) > 0.999);
    }
    let o = kairos(&["embed", "--model", dir.to_str().unwrap(), "--dtype", "int4", "x"]);
    assert!(!o.status.success() && text(&o).1.contains("`int4`: expected f32, f16 or bf16"));
    let o = kairos(&["embed", "--model", dir.to_str().unwrap(), "--device", "cuda:0", "x"]);
    if !kairos_models::CUDA_ENABLED {
        assert!(text(&o).1.contains("--features cuda"), "{}", text(&o).1);
    }
}

#[test]
fn embed_from_an_unreachable_hub_says_what_failed() {
    let home = tempfile::tempdir().unwrap();
    // A closed port on 127.0.0.1 stands in for being offline.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["embed", "--model", "hf:sentence-transformers/all-MiniLM-L6-v2", "gm"])
        .env("HF_HOME", home.path())
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("downloading config.json") && stderr.contains(&format!("127.0.0.1:{port}")),
        "{stderr}"
    );
}

/// Runs `kairos` with extra environment variables.
fn kairos_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kairos"));
    c.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run kairos")
}

/// The odd and hostile inputs a new user tries: each a clear error or a flagged warning, none
/// an abort, a hang or a silent wrong answer.
#[test]
fn odd_input_is_refused_or_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let failing = |args: &[&str], env: &[(&str, &str)]| {
        let o = kairos_env(args, env);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {out}{err}");
        assert!(!err.contains("panicked") && !out.contains("return_pct"), "{args:?}: {out}{err}");
        err
    };
    let bt = |extra: &[&str]| {
        let mut v = vec!["backtest", "--strategy", "sma_cross"];
        v.extend_from_slice(extra);
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let v = bt(extra);
        failing(&v.iter().map(String::as_str).collect::<Vec<_>>(), env)
    };
    // 1. Bar counts that cannot be allocated.
    for n in ["sim:1:99999999999999", "sim:1:200000000"] {
        let e = run(&["--data", n], &[]);
        assert!(e.contains("more than the simulator makes"), "{e}");
    }
    // 2, 3. Day-first dates that also read month-first; compact dates.
    let dmy = d.join("march.csv");
    let mut body = String::from("date,open,high,low,close,volume\n");
    for day in 1..=12 {
        body.push_str(&format!("{day:02}/03/2021,1,2,0.5,1.5,10\n"));
    }
    std::fs::write(&dmy, &body).unwrap();
    let o = kairos(&["data", dmy.to_str().unwrap()]);
    let (out, _) = text(&o);
    assert!(
        !o.status.success() && out.contains("ambiguous") && out.contains("--time-format dmy"),
        "{out}"
    );
    let (out, _) = text(&kairos(&["data", "--time-format", "dmy", dmy.to_str().unwrap()]));
    assert!(out.contains("12 bars, 2021-03-01 00:00:00 .. 2021-03-12 00:00:00, every 1d"), "{out}");
    assert!(out.contains("timestamps read as d/m/Y date"), "{out}");
    let ymd = d.join("ymd.csv");
    std::fs::write(&ymd, "date,open,high,low,close\n20210101,1,2,0.5,1.5\n20210104,1,2,0.5,1.5\n")
        .unwrap();
    let (out, _) = text(&kairos(&["data", ymd.to_str().unwrap()]));
    assert!(
        out.contains("2021-01-01 00:00:00 .. 2021-01-04 00:00:00") && out.contains("%Y%m%d"),
        "{out}"
    );
    // 4. A commission no venue charges or pays.
    let e = run(&["--data", "sim:1:500", "--commission", "-0.1"], &[]);
    assert!(e.contains("`commission`") && e.contains("-0.1 is outside [-0.0005"), "{e}");
    // 6. Outputs that cannot be written: refused before the run, nothing left behind.
    let file = d.join("a-file");
    std::fs::write(&file, "x").unwrap();
    for out in [file.to_str().unwrap(), "/dev/null"] {
        let e = run(&["--data", "sim:1:500", "--out", out], &[]);
        assert!(e.contains("is a file, not a folder"), "{e}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = d.join("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root writes anywhere; the check means something only when the folder refuses.
        if std::fs::write(ro.join("probe"), "").is_err() {
            let e = run(&["--data", "sim:1:500", "--out", ro.to_str().unwrap()], &[]);
            assert!(e.contains("cannot write into the output folder"), "{e}");
            assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 0);
        }
    }
    // The same file twice; a folder as data; a missing file said once; the environment named.
    let e = run(&["--data", "sim:1:500", "--data", "sim:1:500"], &[]);
    assert!(e.contains("is the same as source 1"), "{e}");
    let e = run(
        &[
            "--data",
            ymd.to_str().unwrap(),
            "--data",
            &format!("{}/../{}/ymd.csv", d.display(), d.file_name().unwrap().to_str().unwrap()),
        ],
        &[],
    );
    assert!(e.contains("is the same as source 1"), "{e}");
    let e = run(&["--data", d.to_str().unwrap()], &[]);
    assert!(e.contains("is a folder"), "{e}");
    let e = run(&["--data", "/nonexistent/bars.csv"], &[]);
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    let e = run(&["--data", "sim:1:500"], &[("KAIROS_CASH", "abc")]);
    assert!(e.contains("KAIROS_CASH=\"abc\" is not a number") && !e.contains("--cash"), "{e}");
    let e = run(&["--data", "sim:1:500", "--lot-size", "-1"], &[]);
    assert!(e.contains("`lot_size`: -1 is not a positive number"), "{e}");
}

#[test]
fn meaningless_figures_and_runs_that_cannot_trade_are_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // 3,000 one-minute bars: every annual figure comes from two days.
    let o = kairos(&[
        "backtest",
        "--data",
        "sim:3:3000",
        "--strategy",
        "sma_cross",
        "-p",
        "fast=2",
        "-p",
        "slow=5",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(stdout.contains("warning: return_ann_pct, volatility_ann_pct, sharpe"), "{stdout}");
    assert!(!stdout.contains("-0.0000") && !stdout.contains("e7"), "{stdout}");
    let equity = stdout.lines().find(|l| l.starts_with("equity_final")).unwrap();
    assert_eq!(equity.trim().rsplit_once('.').unwrap().1.len(), 2, "money to the cent: {equity}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let warnings = summary["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().contains("annualised from")),
        "{warnings:?}"
    );
    // No temporary file is left beside the reports.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    // A warm-up longer than the data; instruments that never overlap.
    let o = kairos(&["backtest", "--data", "sim:1:10", "--strategy", "sma_cross", "--json"]);
    let (stdout, err) = text(&o);
    assert!(err.contains("warning: sma_cross needs") && err.contains("it cannot trade"), "{err}");
    assert!(stdout.contains("it cannot trade"), "{stdout}");
    let a = tmp.path().join("a.json");
    let b = tmp.path().join("b.json");
    std::fs::write(&a, "[[1704067200000,1,2,0.5,1.5,1],[1704067260000,1,2,0.5,1.5,1]]").unwrap();
    std::fs::write(&b, "[[1706745600000,1,2,0.5,1.5,1],[1706745660000,1,2,0.5,1.5,1]]").unwrap();
    let o = kairos(&[
        "backtest",
        "--data",
        a.to_str().unwrap(),
        "--data",
        b.to_str().unwrap(),
        "--strategy",
        "sma_cross",
    ]);
    let (_, err) = text(&o);
    assert!(err.contains("do not overlap in time"), "{err}");
    // Every order rejected (a lot bigger than the cash affords): flagged, not a quiet 0 trades.
    let o = kairos(&[
        "backtest",
        "--data",
        "sim:1:3000",
        "--strategy",
        "sma_cross",
        "--lot-size",
        "1e300",
        "--json",
    ]);
    let (stdout, err) = text(&o);
    let summary: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    let warned = summary["warnings"].as_array().unwrap().iter().any(|w| {
        w.as_str().is_some_and(|w| w.contains("rejected") && w.contains("nothing traded"))
    });
    assert!(warned, "{stdout}");
    // JSON logs: every stderr line is a JSON object.
    let o = kairos(&[
        "backtest",
        "--log-format",
        "json",
        "--data",
        "sim:1:500",
        "--strategy",
        "sma_cross",
    ]);
    let (_, err) = text(&o);
    for line in err.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    assert!(err.contains("replayed 500 bars"), "{err}");
}

#[test]
fn help_lists_values_and_keeps_global_options_apart() {
    let (help, _) = text(&kairos(&["backtest", "--help"]));
    assert!(
        help.contains("[possible values: next-open, close]") || help.contains("- next-open"),
        "{help}"
    );
    let global = help.find("Global options:").expect("a Global options heading");
    assert!(help[global..].contains("--log-format") && help[global..].contains("--verbose"));
    assert!(!help[..global].contains("--log-format"), "{help}");
    // The defaults shown are the ones the code uses.
    let d = kairos_backtests::engine::BacktestConfig::default();
    for (flag, value) in [
        ("--cash", d.cash.to_string()),
        ("--commission", d.commission.to_string()),
        ("--fixed-fee", d.fixed_fee.to_string()),
        ("--slippage-bps", d.slippage_bps.to_string()),
    ] {
        let at = help.find(&format!("{flag} <")).unwrap_or_else(|| panic!("{flag} in {help}"));
        let entry = &help[at..];
        let entry = &entry[..entry[2..].find("\n      --").map_or(entry.len(), |e| e + 2)];
        assert!(entry.contains(&format!("[default: {value}]")), "{flag}: {entry}");
    }
    assert!(help.contains("[default: next-open]"), "{help}");
    // A bad interval is refused when parsed, before any data is read.
    let o = kairos(&["backtest", "--data", "/nonexistent.csv", "--resample", "7x"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("interval `7x`") && !err.contains("nonexistent"), "{err}");
}
