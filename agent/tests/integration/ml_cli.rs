//! `kairos train`, `evaluate`, `walkforward`, `backtest --strategy ml_forecast` and `generate`
//! end to end on the real BTC file and the real Gemma weights.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kairos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run kairos")
}

fn ok(o: &Output) -> String {
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "stdout: {out}\nstderr: {err}");
    out
}

fn err(o: &Output) -> String {
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!e.contains("panicked"), "{e}");
    e
}

fn btc() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/bars/btc-perp-20211231-20220201_1m.csv");
    if p.is_file() {
        return Some(p);
    }
    assert!(std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(), "{} missing", p.display());
    None
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn train_evaluate_backtest_and_walk_forward() {
    let Some(data) = btc() else { return };
    let data = data.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("mlp");
    let m = model.to_str().unwrap();
    let out =
        ok(&kairos(&["train", "--data", data, "--target", "sign", "--epochs", "4", "--out", m]));
    assert!(out.contains("test") && out.contains("baseline"), "{out}");
    assert!(model.join("model.safetensors").is_file() && model.join("config.json").is_file());

    let ev: serde_json::Value =
        serde_json::from_str(&ok(&kairos(&["evaluate", "--model", m, "--data", data, "--json"])))
            .unwrap();
    assert!(ev["samples"].as_u64().unwrap() > 5_000, "{ev}");
    assert!(ev["baseline_mse"].as_f64().unwrap() > 0.0);

    // Data from before the model's validation split (EUR/USD, 2017) has nothing out of sample.
    let eurusd = Path::new(data).with_file_name("EURUSD.csv");
    let e = err(&kairos(&["evaluate", "--model", m, "--data", eurusd.to_str().unwrap()]));
    assert!(e.contains("validation split"), "{e}");

    let summary: serde_json::Value = serde_json::from_str(&ok(&kairos(&[
        "backtest",
        "--data",
        data,
        "--strategy",
        "ml_forecast",
        "-p",
        &format!("model={m}"),
        "-p",
        "threshold=0.02",
        "--lot-size",
        "0.001",
        "--json",
    ])))
    .unwrap();
    assert!(summary["num_trades"].as_u64().unwrap() > 0, "{summary}");

    let wf = tmp.path().join("wf");
    let out = ok(&kairos(&[
        "walkforward",
        "--data",
        data,
        "--train-bars",
        "15000",
        "--test-bars",
        "10000",
        "--epochs",
        "2",
        "--out",
        wf.to_str().unwrap(),
        "--json",
    ]));
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let folds = r["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 3, "{r}");
    for (i, f) in folds.iter().enumerate() {
        // Each fold trades strictly after it trained, and the next fold starts where it ended.
        assert!(f["test_start"].as_str().unwrap() > f["train_end"].as_str().unwrap());
        assert!(Path::new(f["model"].as_str().unwrap()).join("config.json").is_file());
        if i > 0 {
            assert!(f["test_start"].as_str().unwrap() > folds[i - 1]["test_end"].as_str().unwrap());
        }
    }
    assert!(wf.join("walkforward.json").is_file());

    let e = err(&kairos(&["train", "--data", data, "--model", "transformer", "--out", m]));
    assert!(e.contains("transformer") && e.contains("[possible values: mlp, seq, gru]"), "{e}");
    // Negative numbers reach the validation; the split reads as its default is written.
    let e = err(&kairos(&["train", "--data", data, "--lr", "-1", "--out", m]));
    assert!(e.contains("learning_rate") && e.contains("positive"), "{e}");
    let e = err(&kairos(&["train", "--data", data, "--split", "0.7", "--out", m]));
    assert!(e.contains("not two fractions like 0.7,0.15"), "{e}");
    let e = err(&kairos(&["train", "--data", data, "--device", "gpu", "--out", m]));
    assert!(e.contains("`gpu` is not cpu, cuda or cuda:N"), "{e}");
    let e = err(&kairos(&["train", "--data", "sim:1:150", "--out", m]));
    assert!(e.contains("too few"), "{e}");
    let e = err(&kairos(&["evaluate", "--model", tmp.path().to_str().unwrap(), "--data", data]));
    assert!(e.contains("config.json"), "{e}");
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn an_ml_strategy_asking_its_model_reports_what_the_inference_delay_costs() {
    let Some(data) = btc() else { return };
    let data = data.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("fc");
    let m = model.to_str().unwrap();
    ok(&kairos(&["train", "--data", data, "--target", "sign", "--epochs", "2", "--out", m]));
    let model_param = format!("model={m}");
    let local = format!("fc={m}");
    let backtest = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "backtest",
            "--data",
            data,
            "--strategy",
            "ml_forecast",
            "-p",
            &model_param,
            "-p",
            "threshold=0.02",
            "--lot-size",
            "0.001",
            "--json",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(&kairos(&args))).unwrap()
    };
    // In the hook, then asked through the context with no latency: the same run, trade for
    // trade (the answer is there before the venue sees the next bar).
    let inline = backtest(&[]);
    assert!(inline.get("model_answers").is_none());
    let asked = backtest(&["-p", "ask=fc", "--model", &local]);
    for k in ["return_pct", "num_trades", "equity_final", "sharpe"] {
        assert_eq!(asked[k], inline[k], "{k}");
    }
    let a = &asked["model_answers"];
    let bars = 45_031 - (60 + 1) + 1; // every bar once the model's 60 + 1 bars are there
    assert_eq!(a["stats"]["asked"].as_u64(), Some(bars), "{a}");
    assert_eq!(a["stats"]["from_local"].as_u64(), Some(bars));
    assert!(a["instant"].is_null() && a["cost_return_points"].is_null(), "{a}");

    // A decision that lands a bar and a half late on one-minute bars.
    let out = tmp.path().join("late");
    let late = backtest(&[
        "-p",
        "ask=fc",
        "--model",
        &local,
        "--model-latency",
        "90s",
        "--out",
        out.to_str().unwrap(),
    ]);
    let a = &late["model_answers"];
    // The twin without delay is the in-hook run; the reported run is the delayed one.
    assert_eq!(a["instant"]["return_pct"], inline["return_pct"], "{a}");
    assert_eq!(a["delayed"]["return_pct"], late["return_pct"]);
    assert_ne!(late["return_pct"], inline["return_pct"]);
    let cost = a["cost_return_points"].as_f64().unwrap();
    let want = inline["return_pct"].as_f64().unwrap() - late["return_pct"].as_f64().unwrap();
    assert!((cost - want).abs() < 1e-9, "{cost} vs {want}");
    assert_eq!(a["latency_ms"][0].as_f64(), Some(90_000.0));
    // Answers due after the last bar never arrive (one and a half bars' worth).
    assert!((1..=2).contains(&a["stats"]["unanswered"].as_u64().unwrap()), "{a}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("cost of the decision delay"), "the report shows it");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model_answers.json")).unwrap()).unwrap();
    assert_eq!(file["cost_return_points"], a["cost_return_points"]);

    // A latency distribution: repeatable with its seed, another seed another draw.
    let spec = "lognormal:median=40s,sigma=1";
    let l0 = backtest(&["-p", "ask=fc", "--model", &local, "--model-latency", spec]);
    let l0b = backtest(&["-p", "ask=fc", "--model", &local, "--model-latency", spec]);
    let l1 = backtest(&[
        "-p",
        "ask=fc",
        "--model",
        &local,
        "--model-latency",
        spec,
        "--model-seed",
        "1",
    ]);
    assert_eq!(l0["model_answers"], l0b["model_answers"]);
    assert_ne!(l0["model_answers"]["latency_ms"], l1["model_answers"]["latency_ms"]);
    let p50 = l0["model_answers"]["latency_ms"][0].as_f64().unwrap();
    assert!((36_000.0..44_000.0).contains(&p50), "{p50}");

    // Latencies from a file of recorded ones.
    let lat = tmp.path().join("lat.txt");
    std::fs::write(&lat, "30s\n45s\n120s\n").unwrap();
    let e = backtest(&[
        "-p",
        "ask=fc",
        "--model",
        &local,
        "--model-latency",
        &format!("empirical:{}", lat.display()),
    ]);
    let max = e["model_answers"]["latency_ms"][3].as_f64().unwrap();
    assert_eq!(max, 120_000.0);

    // Asking a model the run does not have: every ask fails, nothing trades, and it says how.
    let o = kairos(&[
        "backtest",
        "--data",
        data,
        "--strategy",
        "ml_forecast",
        "-p",
        &model_param,
        "-p",
        "ask=nope",
        "--model",
        &local,
    ]);
    let stdout = ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stdout.contains("0 by local models") && stdout.contains("failed"), "{stdout}");
    assert!(
        stderr.contains("no model answers `nope`") && stderr.contains("--model nope=PATH"),
        "{stderr}"
    );

    // Bad settings are refused before anything runs, naming what is wrong.
    for (args, want) in [
        (vec!["--model", "fc"], "is not NAME=PATH"),
        (vec!["--model", "fc=/nonexistent/fc"], "no such file or folder"),
        (vec!["--model-latency", "lognormal:median=5ms"], "sigma is missing"),
        (vec!["--model-latency", "soon"], "not a duration"),
        (vec!["--model-latency", "recorded"], "give --model-answers FILE"),
        (vec!["--model-answers", "/nonexistent/answers.jsonl"], "/nonexistent/answers.jsonl"),
    ] {
        let mut a =
            vec!["backtest", "--data", data, "--strategy", "ml_forecast", "-p", &model_param];
        a.extend(args);
        let e = err(&kairos(&a));
        assert!(e.contains(want), "{e}");
    }
}

#[test]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
fn generate_text_and_a_decision() {
    let gguf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models/gemma-3-270m-q4_k_m.gguf");
    if !gguf.is_file() {
        assert!(
            std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
            "run scripts/models/fetch.sh"
        );
        return;
    }
    let g = gguf.to_str().unwrap();
    let out = ok(&kairos(&[
        "generate",
        "--model",
        g,
        "--max-tokens",
        "8",
        "The Eiffel Tower is located in the city of",
    ]));
    assert!(out.contains("Paris"), "{out}");
    let out = ok(&kairos(&[
        "generate",
        "--model",
        g,
        "--decision",
        "--max-tokens",
        "48",
        "Bitcoin jumps 9% after the largest US bank starts offering it to clients.",
    ]));
    let d: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(["buy", "sell", "hold"].contains(&d["action"].as_str().unwrap()), "{d}");
    let c = d["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&c));
    let e = err(&kairos(&["generate", "--model", "/nonexistent.gguf", "x"]));
    assert!(e.contains("/nonexistent.gguf"), "{e}");
}
