//! `kairos replay --verify-book` on the real recordings in `../shared/data/binance-ws/`, and the
//! check itself attacked: a wrong quantity in the snapshot is caught, a missing diff is a gap
//! that unsynchronises the book, garbage lines are counted and skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use kairos_feeds::recording::verify_book;

fn recordings() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/binance-ws");
    let mut out = Vec::new();
    for market in ["spot", "usdm"] {
        let Ok(rd) = std::fs::read_dir(dir.join(market)) else { continue };
        out.extend(
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "gz")),
        );
    }
    out.sort();
    if out.is_empty() {
        assert!(
            std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
            "no recordings under {}",
            dir.display()
        );
        eprintln!("skipping: no recordings under {}", dir.display());
    }
    out
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn every_recording_replays_with_a_book_equal_to_the_exchanges_top() {
    for path in recordings() {
        let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
            .args(["replay", "--file", path.to_str().unwrap(), "--verify-book"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{}: {stdout}{}",
            path.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let last = stdout.lines().last().unwrap();
        let field = |k: &str| -> u64 {
            last.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(last.starts_with("book-check: "), "{last}");
        assert_eq!(field("mismatched"), 0, "{}: {last}", path.display());
        assert!(field("compared") > 3_000, "{}: {last}", path.display());
        // Only the diffs before the snapshot in the file are unsynced.
        assert!(field("unsynced") < 10, "{}: {last}", path.display());
    }
}

/// Writes `lines` gzipped into `dir`.
fn gz(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    for l in lines {
        writeln!(enc, "{l}").unwrap();
    }
    enc.finish().unwrap();
    path
}

fn lines_of(path: &Path) -> Vec<String> {
    use std::io::BufRead;
    let f = flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap());
    std::io::BufReader::new(f).lines().map(|l| l.unwrap()).collect()
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn the_check_catches_a_wrong_book_a_gap_and_skips_garbage() {
    let Some(path) = recordings().into_iter().find(|p| p.to_string_lossy().contains("spot")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let lines = lines_of(&path);
    let snap = lines.iter().position(|l| l.contains("\"lastUpdateId\"")).expect("a snapshot");
    let clean = verify_book(&path).unwrap();
    assert_eq!(clean.mismatched, 0);

    // A level the exchange never had, between the best bid and ask of the snapshot (off the
    // tick, so no diff ever removes it): the book's best ask is wrong, and the check says so.
    let mut wrong = lines.clone();
    wrong[snap] =
        wrong[snap].replacen("\"asks\":[[", "\"asks\":[[\"61837.63500000\",\"1.00000000\"],[", 1);
    assert_ne!(wrong[snap], lines[snap]);
    let check = verify_book(&gz(tmp.path(), "wrong.gz", &wrong)).unwrap();
    assert!(check.mismatched > 0, "{check:?}");
    assert!(check.examples[0].contains("ask 61837.635 x 1"), "{:?}", check.examples);

    // A diff after the snapshot goes missing: a gap, and the book stays unsynchronised (no
    // second snapshot in the file), so nothing after it is compared.
    let mut gap = lines.clone();
    let victim = (snap + 50..gap.len()).find(|&i| gap[i].contains("depthUpdate")).unwrap();
    gap.remove(victim);
    let check = verify_book(&gz(tmp.path(), "gap.gz", &gap)).unwrap();
    assert_eq!(check.gaps, 1, "{check:?}");
    assert_eq!(check.mismatched, 0);
    assert!(check.unsynced > 1_000 && check.compared < clean.compared / 2, "{check:?}");

    // Garbage: counted, skipped, nothing else changes.
    let mut junk = lines.clone();
    for (i, bad) in [
        "no-space-here".to_string(),
        "123 {not json".into(),
        "123 {\"stream\":\"btcusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\"}}".into(),
        "123 {\"stream\":\"btcusdt@bookTicker\",\"data\":{\"u\":1,\"s\":\"BTCUSDT\",\"b\":\"NaN\",\"B\":\"1\",\"a\":\"1\",\"A\":\"1\"}}".into(),
        "123 \u{feff}\u{0}".into(),
    ]
    .into_iter()
    .enumerate()
    {
        junk.insert(snap + 10 + i * 7, bad);
    }
    let check = verify_book(&gz(tmp.path(), "junk.gz", &junk)).unwrap();
    assert_eq!(check.malformed, 5, "{check:?}");
    assert_eq!((check.compared, check.mismatched), (clean.compared, 0));

    // A recording with nothing to compare: not a failure, but said.
    let empty = gz(tmp.path(), "empty.gz", &[]);
    let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["replay", "--file", empty.to_str().unwrap(), "--verify-book"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("nothing was compared"), "{err}");

    // Not a gzip file, and a missing one: errors naming the file.
    let plain = tmp.path().join("plain.gz");
    std::fs::write(&plain, "hello").unwrap();
    assert!(verify_book(&plain).unwrap_err().to_string().contains("plain.gz"));
    assert!(verify_book(&tmp.path().join("nope.gz")).unwrap_err().to_string().contains("nope.gz"));
}

/// A recording whose REST snapshot comes before every diff (when recording, the REST answer
/// can come back before the stream's first message): the book is synchronised from it, with
/// the rules of the market the diffs come from, both by the check and by a strategy's replay.
#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn a_snapshot_before_every_diff_synchronises_the_book() {
    let tmp = tempfile::tempdir().unwrap();
    for path in recordings() {
        let mut lines = lines_of(&path);
        let snap = lines.iter().position(|l| l.contains("\"lastUpdateId\"")).expect("a snapshot");
        assert!(
            lines[..snap].iter().any(|l| l.contains("depthUpdate")),
            "{}: the test needs diffs before the snapshot",
            path.display()
        );
        // Named as `kairos record` writes it: a bare REST answer names no symbol, and before
        // any diff there is no book waiting for it.
        let (ts, body) = lines
            .remove(snap)
            .split_once(' ')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap();
        let symbol = lines
            .iter()
            .find_map(|l| l.split_once("\"stream\":\"").and_then(|(_, r)| r.split_once('@')))
            .unwrap()
            .0
            .to_string();
        lines.insert(0, format!("{ts} {{\"stream\":\"{symbol}@snapshot\",\"data\":{body}}}"));
        let file = gz(tmp.path(), "early.gz", &lines);
        let check = verify_book(&file).unwrap();
        assert_eq!((check.mismatched, check.gaps), (0, 0), "{}: {check:?}", path.display());
        assert!(check.compared > 3_000, "{}: {check:?}", path.display());

        let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
            .args(["replay", "--file", file.to_str().unwrap(), "--strategy", "book_imbalance"])
            .output()
            .unwrap();
        let out =
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{}: {out}", path.display());
        let line =
            out.lines().find(|l| l.starts_with("replay: ")).unwrap_or_else(|| panic!("{out}"));
        let before = |k: &str| -> u64 {
            let w: Vec<&str> = line.split_whitespace().collect();
            let i = w.iter().position(|x| x.trim_end_matches(',') == k).unwrap();
            w[i - 1].parse().unwrap()
        };
        assert_eq!(before("gaps"), 0, "{}: {line}", path.display());
        assert!(before("book") > 3_000, "{}: {line}", path.display());
    }
}

/// A symbol whose first message comes late in the file (after the lines the steps are read
/// from for the others) is still an instrument of the replay, with its own tick and lot.
#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn a_symbol_first_seen_late_is_an_instrument() {
    let Some(path) = recordings().into_iter().find(|p| p.to_string_lossy().contains("spot")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut lines = lines_of(&path);
    assert!(lines.len() > 30_000, "the test needs a long recording");
    let ts = lines[30_000].split_once(' ').unwrap().0.to_string();
    for i in 0..50 {
        lines.insert(
            30_000 + i,
            format!(
                "{ts} {{\"stream\":\"ethusdt@trade\",\"data\":{{\"e\":\"trade\",\"E\":1723161300000,\"s\":\"ETHUSDT\",\"t\":{i},\"p\":\"2612.{:02}\",\"q\":\"0.{:04}\",\"T\":1723161300000,\"m\":true,\"M\":true}}}}",
                i + 1,
                i + 1
            ),
        );
    }
    let file = gz(tmp.path(), "late.gz", &lines);
    let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["replay", "--file", file.to_str().unwrap(), "--strategy", "book_imbalance"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("instrument: BTCUSDT tick 0.01 lot 0.00001"), "{err}");
    assert!(err.contains("instrument: ETHUSDT tick 0.01 lot 0.0001"), "{err}");
}

/// A recording cut mid-member (a recorder killed mid-write): replay and the book check both
/// say so, once, as a warning; with `--log-format json` every stderr line is a JSON object.
#[test]
fn a_cut_off_recording_is_flagged_once_and_json_logs_stay_json() {
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "{} {{\"stream\":\"btcusdt@trade\",\"data\":{{\"e\":\"trade\",\"E\":{},\"s\":\"BTCUSDT\",\"t\":{},\"p\":\"{}.10\",\"q\":\"0.5\",\"T\":{},\"m\":true,\"M\":true}}}}",
                1_704_067_200_000_000_000i64 + i * 1_000_000,
                1_704_067_200_000i64 + i,
                i + 1,
                42_000 + i,
                1_704_067_200_000i64 + i
            )
        })
        .collect();
    // Two members: the first whole, the second cut.
    let first = gz(tmp.path(), "a.gz", &lines[..100]);
    let second = gz(tmp.path(), "b.gz", &lines[100..]);
    let mut bytes = std::fs::read(&first).unwrap();
    let tail = std::fs::read(&second).unwrap();
    bytes.extend_from_slice(&tail[..tail.len() - 12]);
    let cut = tmp.path().join("cut.gz");
    std::fs::write(&cut, bytes).unwrap();

    for json in [false, true] {
        let mut args = vec!["replay", "--file", cut.to_str().unwrap(), "--strategy", "sma_cross"];
        if json {
            args.splice(0..0, ["--log-format", "json"]);
        }
        let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
            .args(&args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert_eq!(err.matches("cut-off gzip member").count(), 1, "{err}");
        assert_eq!(err.matches("placed no orders").count(), 1, "{err}");
        if json {
            for line in err.lines() {
                let v: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
                assert!(v["fields"]["message"].is_string(), "{line}");
            }
            assert!(err.contains("\"level\":\"WARN\""), "{err}");
        } else {
            assert!(err.contains("warning: "), "{err}");
        }
        // A bar strategy on a recording (trades only, no bars): no orders, and it says why.
        assert!(err.contains("sma_cross placed no orders: it decides on bars"), "{err}");
        let out = String::from_utf8_lossy(&o.stdout);
        // At least the whole first member was replayed.
        assert!(out.contains("replay: ") && !out.contains("replay: 0 messages"), "{out}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["replay", "--file", cut.to_str().unwrap(), "--verify-book"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("cut-off gzip member").count(), 1, "{err}");
}

/// The risk engine in a replay of the real spot recording: a position limit caps the position
/// (working orders included) and refuses by name; a daily-loss breaker halts trading, no
/// order is accepted until the next UTC day clears it; both show in the summary.
#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn the_risk_engine_caps_positions_and_halts_on_a_daily_loss() {
    let Some(path) = recordings().into_iter().find(|p| p.to_string_lossy().contains("spot")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = |risk: &str, out: &Path| {
        let file = out.with_extension("toml");
        std::fs::write(&file, format!("[risk]\n{risk}")).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
            .args(["replay", "--file", path.to_str().unwrap(), "--strategy", "book_imbalance"])
            .args(["-p", "levels=5", "-p", "threshold=0.3", "-p", "size=0.001"])
            .args(["-p", "max_position=0.005", "--tick-size", "0.01", "--lot-size", "0.00001"])
            .args(["--risk", file.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
        (stdout, std::fs::read_to_string(out.join("orders.csv")).unwrap())
    };

    // The strategy allows 0.005; the risk engine 0.002.
    let (stdout, orders) = run("[risk.max_position]\nBTCUSDT = 0.002\n", &tmp.path().join("cap"));
    assert!(
        stdout.contains("risk: ACTIVE; refused ") && stdout.contains(" max_position"),
        "{stdout}"
    );
    assert!(orders.contains("Risk(MaxPosition)"), "{orders}");
    let position: f64 =
        stdout.lines().find_map(|l| l.strip_prefix("BTCUSDT: position ")).unwrap().parse().unwrap();
    assert!(position.abs() <= 0.002 + 1e-12, "{stdout}");

    // A loss of a few cents for the day halts trading.
    let (stdout, orders) = run("max_daily_loss = 0.05\n", &tmp.path().join("halt"));
    assert!(stdout.contains("risk: ACTIVE -> HALTED at "), "{stdout}");
    assert!(stdout.contains("max_daily_loss"), "{stdout}");
    let ts = |l: &str| l.split(',').nth(1).unwrap().parse::<i64>().unwrap();
    let halted = orders.lines().find(|l| l.contains("Risk(Halted)")).map(ts);
    let halted = halted.unwrap_or_else(|| panic!("no order refused as halted\n{stdout}"));
    // The recording runs past midnight UTC: the daily breaker clears when the next day begins.
    const DAY: i64 = 86_400_000_000_000;
    let next_day = (halted / DAY + 1) * DAY;
    let late = orders
        .lines()
        .skip(1)
        .filter(|l| l.ends_with(",Accepted") && (halted..next_day).contains(&ts(l)))
        .count();
    assert_eq!(late, 0, "orders accepted while halted\n{orders}");
    assert!(stdout.contains("risk: HALTED -> ACTIVE at 2024-08-09 00:00:"), "{stdout}");
    assert!(orders.lines().any(|l| l.ends_with(",Accepted") && ts(l) >= next_day), "{stdout}");
}
