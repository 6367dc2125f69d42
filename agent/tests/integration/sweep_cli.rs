//! `kairos sweep` end to end: real processes, real files. A row of the sweep's CSV is the
//! `kairos backtest` of the same parameters; a config file, shards merged and a random search
//! give what they should; bad input is refused naming what is wrong.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

fn kairos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("KAIROS_CASH")
        .env_remove("KAIROS_COMMISSION")
        .output()
        .expect("run kairos")
}

fn ok(o: &Output) -> String {
    let (out, err) =
        (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "kairos failed: {}\nstdout: {out}\nstderr: {err}", o.status);
    out
}

fn fails(o: &Output) -> String {
    assert!(!o.status.success(), "kairos should have failed");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `sweep.csv` as a header and rows of fields (no field here holds a comma).
fn csv(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    let mut lines = text.lines();
    let head = lines.next().unwrap().split(',').map(str::to_string).collect();
    (head, lines.map(|l| l.split(',').map(str::to_string).collect()).collect())
}

const DATA: &str = "sim:5:3000";

fn sweep_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "sweep",
        "--data",
        DATA,
        "--strategy",
        "sma_cross",
        "--grid",
        "fast=2..12",
        "--grid",
        "slow=5..30:5",
        "--where",
        "fast<slow",
        "--commission",
        "0.0005",
        "--out",
        out,
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn a_sweep_row_is_the_backtest_of_its_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s");
    let o = kairos(&sweep_args(out.to_str().unwrap(), &["--top", "5", "--threads", "2"]));
    let stdout = ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("bar-evaluations/s"), "{stderr}");
    assert!(stderr.contains("SIMULATED"), "{stderr}");
    let table: Vec<&str> = stdout.lines().collect();
    assert_eq!(table.len(), 6, "a header and the best 5: {stdout}");
    assert!(table[0].contains("sharpe") && table[0].contains("fast") && table[0].contains("slow"));
    let (head, rows) = csv(&out);
    // fast 2..12 x slow 5,10,..,30 with fast < slow.
    let expect = (2..=12)
        .flat_map(|f| (5..=30).step_by(5).map(move |s| (f, s)))
        .filter(|(f, s)| f < s)
        .count();
    assert_eq!(rows.len(), expect);
    assert_eq!(&head[..3], ["combination", "fast", "slow"]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(meta["outcome"]["runs"], expect as u64);
    assert!(out.join("sweep.parquet").exists());
    // The best row by Sharpe is the first line of the table; its backtest gives every figure
    // of its CSV row exactly.
    let best_combination = table[1].split_whitespace().nth(1).unwrap().to_string();
    let row = rows.iter().find(|r| r[0] == best_combination).expect("the best row is in the CSV");
    let col: HashMap<&str, usize> = head.iter().enumerate().map(|(i, h)| (h.as_str(), i)).collect();
    let single = ok(&kairos(&[
        "backtest",
        "--data",
        DATA,
        "--strategy",
        "sma_cross",
        "-p",
        &format!("fast={}", row[1]),
        "-p",
        &format!("slow={}", row[2]),
        "--commission",
        "0.0005",
        "--json",
    ]));
    let json: serde_json::Value = serde_json::from_str(&single).unwrap();
    let mut compared = 0;
    for (k, v) in json.as_object().unwrap() {
        let Some(&i) = col.get(k.as_str()) else { continue };
        match v {
            serde_json::Value::Number(n) => {
                let x: f64 = row[i].parse().unwrap_or_else(|_| panic!("{k}: {:?}", row[i]));
                assert_eq!(x.to_bits(), n.as_f64().unwrap().to_bits(), "{k}");
                compared += 1;
            }
            serde_json::Value::Null => assert_eq!(row[i], "", "{k}"),
            _ => {}
        }
    }
    assert!(compared >= 20, "compared {compared} figures");
}

#[test]
fn a_config_file_shards_and_a_random_search() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let whole = p("whole");
    ok(&kairos(&sweep_args(&whole, &[])));
    // The same sweep from a file.
    let cfg = tmp.path().join("sweep.toml");
    std::fs::write(
        &cfg,
        format!(
            "data = \"{DATA}\"\nstrategy = \"sma_cross\"\nwhere = \"fast<slow\"\nout = \"file\"\n\
             [grid]\nfast = \"2..12\"\nslow = [5, 10, 15, 20, 25, 30]\n[backtest]\ncommission = 0.0005\n"
        ),
    )
    .unwrap();
    ok(&kairos(&["sweep", "--config", cfg.to_str().unwrap()]));
    let read = |d: &str| std::fs::read(Path::new(d).join("sweep.csv")).unwrap();
    assert_eq!(read(&p("file")), read(&whole), "the file's sweep is the flags' sweep");
    // Three shards merged.
    for i in 0..3 {
        ok(&kairos(&sweep_args(&p(&format!("shard{i}")), &["--shard", &format!("{i}/3")])));
    }
    let merged = kairos(&[
        "sweep",
        "merge",
        &p("shard0"),
        &p("shard1"),
        &p("shard2"),
        "--out",
        &p("merged"),
    ]);
    let stdout = ok(&merged);
    assert!(stdout.lines().count() > 5, "{stdout}");
    assert_eq!(read(&p("merged")), read(&whole), "the merged shards are the whole sweep");
    // And its report has the whole sweep's heatmap and best rows.
    let part = |d: &str, from: &str, to: &str| {
        let html = std::fs::read_to_string(Path::new(d).join("report.html")).unwrap();
        let a = html.find(from).unwrap_or_else(|| panic!("{d}: no {from}"));
        let b = a + html[a..].find(to).unwrap();
        html[a..b].to_string()
    };
    assert_eq!(
        part(&p("merged"), "<figure id=\"chart-heatmap\"", "<figcaption>"),
        part(&whole, "<figure id=\"chart-heatmap\"", "<figcaption>")
    );
    assert_eq!(
        part(&p("merged"), "<table class=\"rows\"", "</table>"),
        part(&whole, "<table class=\"rows\"", "</table>")
    );
    let e = fails(&kairos(&["sweep", "merge", &p("shard0"), &p("shard1"), "--out", &p("m2")]));
    assert!(e.contains("shard 2/3 is missing"), "{e}");
    // A random search is reproducible by its seed, and a subset of the grid.
    let r = |name: &str, seed: &str| {
        ok(&kairos(&sweep_args(
            &p(name),
            &["--search", "random", "--trials", "7", "--seed", seed],
        )));
        csv(Path::new(&p(name))).1
    };
    let (a, b, c) = (r("r1", "3"), r("r2", "3"), r("r3", "4"));
    assert_eq!(a.len(), 7);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let all = csv(Path::new(&whole)).1;
    assert!(a.iter().all(|row| all.contains(row)), "each sampled row is the grid's row");
}

#[test]
fn bad_sweeps_are_refused_naming_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let out = out.to_str().unwrap();
    for (extra, want) in [
        (vec!["--metric", "luck"], "--metric luck: not a statistic"),
        (vec!["--grid", "fast=9..3"], "the range is empty"),
        (vec!["--grid", "fats=2..3"], "no parameter `fats`"),
        (vec!["--trials", "5"], "--trials is for --search random"),
        (vec!["--search", "random"], "needs --trials"),
        (vec!["--shard", "3/3"], "is not I/N"),
        (vec!["--commission", "0.5"], "commission"),
    ] {
        let e = fails(&kairos(&sweep_args(out, &extra)));
        assert!(e.contains(want), "{extra:?}: {e}");
    }
    let e = fails(&kairos(&[
        "sweep",
        "--data",
        DATA,
        "--strategy",
        "sma_cross",
        "--grid",
        "fast=2..4",
        "--where",
        "fast <",
    ]));
    assert!(e.contains("expected a name or a number"), "{e}");
    let e = fails(&kairos(&["sweep", "--data", DATA, "--strategy", "sma_cross"]));
    assert!(e.contains("no grid"), "{e}");
    let e = fails(&kairos(&[
        "sweep",
        "--data",
        "/nonexistent.csv",
        "--strategy",
        "sma_cross",
        "--grid",
        "fast=2..3",
    ]));
    assert!(e.contains("/nonexistent.csv"), "{e}");
    assert!(!Path::new(out).join("sweep.csv").exists());
}

/// `--walk-forward`: a table of windows and the stitched statistics on standard output; the
/// files hold one row per window and the stitched run as a backtest writes it, and agree.
#[test]
fn a_walk_forward_prints_and_writes_the_out_of_sample_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("wf");
    let o = out.to_str().unwrap();
    let stdout = ok(&kairos(&sweep_args(o, &["--walk-forward", "train=1000,test=500"])));
    assert!(stdout.contains("out-of-sample (stitched)"), "{stdout}");
    assert!(stdout.contains("walk-forward efficiency"), "{stdout}");
    let text = std::fs::read_to_string(out.join("walk_forward.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &head[..9],
        [
            "window",
            "train_start",
            "train_end",
            "test_start",
            "test_end",
            "warmup",
            "combination",
            "fast",
            "slow"
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4, "(3000 - 1000) / 500 windows");
    for r in &rows {
        assert!(r[2] < r[3], "train ends before test starts: {r:?}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("walk_forward.json")).unwrap())
            .unwrap();
    assert_eq!(meta["out_of_sample"], summary);
    assert_eq!(meta["windows"].as_array().unwrap().len(), 4);
    assert_eq!(meta["walk_forward"]["step"], 500);
    let equity = std::fs::read_to_string(out.join("equity.csv")).unwrap();
    assert_eq!(equity.lines().count(), 1 + 4 * 500, "one point per test bar");
    assert!(!out.join("sweep.csv").exists());

    let e = fails(&kairos(&sweep_args(
        o,
        &["--walk-forward", "train=1000,test=500", "--shard", "0/2"],
    )));
    assert!(e.contains("--shard"), "{e}");
    let e = fails(&kairos(&sweep_args(o, &["--walk-forward", "train=2500,test=600"])));
    assert!(e.contains("needs 3100 bar times; the data has 3000"), "{e}");
    let e = fails(&kairos(&sweep_args(o, &["--walk-forward", "train=100,test=50,step=10"])));
    assert!(e.contains("overlap"), "{e}");
}
