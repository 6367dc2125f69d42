//! Loading real bar files, round trips through Parquet and Arrow IPC, and every malformed
//! input the loader must refuse with a message naming the file, the row and the problem.

use std::path::{Path, PathBuf};

use kairos_backtests::data::{self, BarSeries};
use kairos_strategies::Timestamp;
use polars::prelude::*;

fn iso(ts: Timestamp) -> String {
    ts.to_iso()
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn every_shared_bar_file_loads() {
    let Some(dir) = crate::common::bars_dir() else { return };
    let mut files = Vec::new();
    all_files(&dir, &mut files);
    files.sort();
    assert!(files.len() >= 9, "expected the shared bar files, found {files:?}");
    for f in &files {
        let s = data::load(f).unwrap_or_else(|e| panic!("{} failed: {e}", f.display()));
        assert!(s.len() > 1000, "{}: only {} bars", f.display(), s.len());
        let (a, b) = s.span().expect("span");
        assert!(
            iso(a).as_str() > "1990" && iso(b).as_str() < "2030",
            "{}: implausible span {a}..{b}",
            f.display()
        );
    }
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn values_match_the_files() {
    let Some(dir) = crate::common::bars_dir() else { return };
    let eur = data::load(dir.join("EURUSD.csv")).unwrap();
    let b = eur.bars[0];
    assert_eq!(
        (iso(b.ts).as_str(), b.open, b.high, b.low, b.close, b.volume),
        ("2017-04-19 09:00:00", 1.0716, 1.0722, 1.07083, 1.07219, 1413.0)
    );
    let btc = data::load(dir.join("btc-perp-20211231-20220201_1m.csv")).unwrap();
    assert_eq!(iso(btc.bars[0].ts), "2021-12-31 23:01:00");
    assert_eq!(btc.bars[0].volume, 2300413.7295);
    assert_eq!(btc.interval(), 60_000_000_000);
    let sp = data::load(dir.join("sp500.csv.gz")).unwrap();
    assert_eq!(
        (iso(sp.bars[0].ts).as_str(), sp.bars[0].close),
        ("1999-01-04 00:00:00", 1228.099976)
    );
    let json = data::load(dir.join("freqtrade/UNITTEST_BTC-1m.json")).unwrap();
    assert_eq!(json.bars[0].ts, Timestamp::from_millis(1509836520000));
    assert_eq!(json.bars[0].close, 0.00162008);
    let feather = data::load(dir.join("freqtrade/ETH_BTC-5m.feather")).unwrap();
    assert_eq!(feather.interval(), 300_000_000_000);
    assert!(iso(feather.bars[0].ts).starts_with("2018-01"));
}

fn frame(s: &BarSeries) -> DataFrame {
    let ts: Vec<i64> = s.bars.iter().map(|b| b.ts.0).collect();
    let col = |f: fn(&kairos_strategies::Bar) -> f64| s.bars.iter().map(f).collect::<Vec<f64>>();
    DataFrame::new_infer_height(vec![
        Column::new("date".into(), ts)
            .cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))
            .unwrap(),
        Column::new("open".into(), col(|b| b.open)),
        Column::new("high".into(), col(|b| b.high)),
        Column::new("low".into(), col(|b| b.low)),
        Column::new("close".into(), col(|b| b.close)),
        Column::new("volume".into(), col(|b| b.volume)),
    ])
    .unwrap()
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn parquet_and_ipc_round_trip() {
    let Some(dir) = crate::common::bars_dir() else { return };
    let src = data::load(dir.join("EURUSD.csv")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut df = frame(&src);
    let pq = tmp.path().join("EURUSD.parquet");
    ParquetWriter::new(std::fs::File::create(&pq).unwrap()).finish(&mut df).unwrap();
    let ipc = tmp.path().join("EURUSD.feather");
    IpcWriter::new(std::fs::File::create(&ipc).unwrap()).finish(&mut df).unwrap();
    for p in [pq, ipc] {
        let back = data::load(&p).unwrap();
        assert_eq!(back.bars, src.bars, "{}", p.display());
        assert_eq!(back.instrument.symbol, "EURUSD");
    }
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn resampling_real_minutes() {
    let Some(dir) = crate::common::bars_dir() else { return };
    let m1 = data::load(dir.join("btc-perp-20211231-20220201_1m.csv")).unwrap();
    let m5 = data::resample(&m1, data::parse_interval("5m").unwrap()).unwrap();
    // 23:01..23:04 fall in the 23:00 bucket, then whole 5-minute buckets.
    let first: Vec<_> = m1.bars.iter().take_while(|b| b.ts < m5.bars[1].ts).collect();
    assert_eq!(first.len(), 4);
    assert_eq!(m5.bars[0].open, first[0].open);
    assert_eq!(m5.bars[0].close, first[3].close);
    assert_eq!(m5.bars[0].high, first.iter().map(|b| b.high).fold(f64::MIN, f64::max));
    assert_eq!(m5.bars[0].low, first.iter().map(|b| b.low).fold(f64::MAX, f64::min));
    assert_eq!(m5.bars[0].volume, first.iter().map(|b| b.volume).sum::<f64>());
    let total: f64 = m1.bars.iter().map(|b| b.volume).sum();
    let d1 = data::resample(&m1, data::parse_interval("1d").unwrap()).unwrap();
    assert_eq!(d1.len(), 33); // 2021-12-31 .. 2022-02-01
    assert!(crate::common::close_rel(d1.bars.iter().map(|b| b.volume).sum::<f64>(), total, 1e-12));
    assert!(data::resample(&m5, 60_000_000_000).is_err());
    data::validate(Path::new("x"), &d1.bars).unwrap();
}

/// Writes `body` to a file called `name` and returns the loader's error message.
fn load_err(name: &str, body: &[u8]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join(name);
    std::fs::write(&p, body).unwrap();
    match data::load(&p) {
        Ok(s) => panic!("{name} loaded {} bars, expected an error", s.len()),
        Err(e) => e.to_string(),
    }
}

const HEADER: &str = "timestamp,open,high,low,close,volume\n";
const ROW1: &str = "2024-01-01 00:00:00,10,11,9,10.5,100\n";

#[test]
fn malformed_inputs_are_named() {
    let csv = |rows: &str| format!("{HEADER}{ROW1}{rows}").into_bytes();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "unsorted.csv",
            csv("2023-12-31 23:59:00,10,11,9,10,1\n"),
            vec!["unsorted.csv", "row 2", "not sorted", "2023-12-31 23:59:00"],
        ),
        (
            "dup.csv",
            csv("2024-01-01 00:00:00,10,11,9,10,1\n"),
            vec!["row 2", "duplicate timestamp"],
        ),
        ("nan.csv", csv("2024-01-01 00:01:00,10,11,9,NaN,1\n"), vec!["row 2", "close is NaN"]),
        (
            "zero.csv",
            csv("2024-01-01 00:01:00,10,11,0,10,1\n"),
            vec!["row 2", "low 0 is not a positive price"],
        ),
        (
            "negative.csv",
            csv("2024-01-01 00:01:00,-10,11,9,10,1\n"),
            vec!["row 2", "open -10 is not a positive price"],
        ),
        (
            "inverted.csv",
            csv("2024-01-01 00:01:00,10,9,11,10,1\n"),
            vec!["row 2", "high 9 is below low 11"],
        ),
        (
            "outside.csv",
            csv("2024-01-01 00:01:00,12,11,9,10,1\n"),
            vec!["row 2", "open 12 is outside low..high"],
        ),
        ("negvol.csv", csv("2024-01-01 00:01:00,10,11,9,10,-5\n"), vec!["row 2", "volume -5"]),
        (
            "badtime.csv",
            csv("2024-13-45 00:00:00,10,11,9,10,1\n"),
            vec!["row 2", "cannot read timestamp `2024-13-45 00:00:00`"],
        ),
        (
            "text.csv",
            csv("2024-01-01 00:01:00,10,eleven,9,10,1\n"),
            vec!["row 2", "high `eleven` is not a number"],
        ),
        (
            "blank.csv",
            csv("2024-01-01 00:01:00,10,11,9,,1\n"),
            vec!["row 2", "missing or non-numeric close"],
        ),
        (
            "noclose.csv",
            b"timestamp,open,high,low,volume\n2024-01-01 00:00:00,1,1,1,1\n".to_vec(),
            vec!["no close column", "timestamp, open, high, low, volume"],
        ),
        ("notime.csv", b"a,open,high,low,close\n1,1,1,1,1\n".to_vec(), vec!["no timestamp column"]),
        (
            "weirdtime.csv",
            b"date,open,high,low,close\nsoon,1,1,1,1\n".to_vec(),
            vec!["cannot tell the timestamp format from `soon`"],
        ),
        ("empty.csv", HEADER.as_bytes().to_vec(), vec!["empty.csv", "no rows"]),
        (
            "extra.csv",
            csv("2024-01-01 00:01:00,10,11,9,10,1,7\n"),
            vec!["extra.csv", "row 2: 7 fields, the header has 6"],
        ),
        (
            "latin1.csv",
            [HEADER.as_bytes(), ROW1.as_bytes(), b"2024-01-01 00:01:00,10,11\xff,9,10,1\n"]
                .concat(),
            vec!["latin1.csv", "row 2: not UTF-8 text (byte 0xFF at column 26)"],
        ),
        ("bars.xlsx", b"PK".to_vec(), vec!["unknown file type"]),
        ("broken.csv.gz", vec![0x1f, 0x8b, 8, 0, 1, 2, 3], vec!["not a valid gzip file"]),
        ("broken.parquet", b"PAR1 not really".to_vec(), vec!["broken.parquet", "cannot read"]),
        ("broken.json", b"{\"a\": 1}".to_vec(), vec!["expected a JSON array"]),
        (
            "short.json",
            b"[[1704067200000,1,1,1,1,1],[1704067260000,1,1]]".to_vec(),
            vec!["row 2", "has 3 fields"],
        ),
        (
            "nanjson.json",
            b"[[1704067200000,1,1,1,1,1],[1704067260000,1,1,1,null,1]]".to_vec(),
            vec!["row 2", "missing or non-numeric close"],
        ),
    ];
    for (name, body, wants) in cases {
        let msg = load_err(name, &body);
        for w in wants {
            assert!(msg.contains(w), "{name}: message `{msg}` lacks `{w}`");
        }
    }
}

#[test]
fn missing_file_names_the_path() {
    let e = data::load(Path::new("/nonexistent/bars.csv")).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/bars.csv"), "{e}");
    let e = data::source("sim:abc").unwrap_err().to_string();
    assert!(e.contains("sim:SEED"), "{e}");
}

#[test]
fn epoch_and_date_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let forms = [
        ("s.csv", "time,open,high,low,close\n1704067200,1,1,1,1\n1704067260,1,1,1,1\n"),
        ("ms.csv", "open_time,open,high,low,close\n1704067200000,1,1,1,1\n1704067260000,1,1,1,1\n"),
        ("us.csv", "ts,open,high,low,close\n1704067200000000,1,1,1,1\n1704067260000000,1,1,1,1\n"),
        (
            "ns.csv",
            "ts,open,high,low,close\n1704067200000000000,1,1,1,1\n1704067260000000000,1,1,1,1\n",
        ),
        (
            "iso.csv",
            "Date,Open,High,Low,Close\n2024-01-01T00:00:00Z,1,1,1,1\n2024-01-01T00:01:00Z,1,1,1,1\n",
        ),
        ("float.csv", "time,open,high,low,close\n1704067200.0,1,1,1,1\n1704067260.0,1,1,1,1\n"),
    ];
    for (name, body) in forms {
        let p = tmp.path().join(name);
        std::fs::write(&p, body).unwrap();
        let s = data::load(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.bars[0].ts, Timestamp(1_704_067_200_000_000_000), "{name}");
        assert_eq!(s.bars[1].ts, Timestamp(1_704_067_260_000_000_000), "{name}");
        assert_eq!(s.bars[0].volume, 0.0, "{name}: volume defaults to 0");
    }
    let p = tmp.path().join("us.csv");
    std::fs::write(&p, "Date,Open,High,Low,Close\n1/4/1999,1,1,1,1\n12/31/2018,1,1,1,1\n").unwrap();
    let s = data::load(&p).unwrap();
    assert_eq!(iso(s.bars[1].ts), "2018-12-31 00:00:00");
}

/// Writes `body` as `name` in `dir` and loads it with `opts`.
fn load_as(
    dir: &Path,
    name: &str,
    body: &str,
    opts: &data::LoadOptions,
) -> kairos_backtests::Result<BarSeries> {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    data::load_with(&p, opts)
}

#[test]
fn slash_dates_are_read_in_the_order_every_row_allows() {
    let tmp = tempfile::tempdir().unwrap();
    let auto = data::LoadOptions::default();
    let rows = |dates: &[String]| {
        let mut s = String::from("date,open,high,low,close\n");
        for d in dates {
            s.push_str(&format!("{d},1,2,0.5,1.5\n"));
        }
        s
    };
    // Twelve March days written day first: every field is 12 or less, so no row tells d/m/Y
    // from m/d/Y. Refused, pointing at --time-format; with it, twelve days.
    let march: Vec<String> = (1..=12).map(|d| format!("{d:02}/03/2021")).collect();
    let e = load_as(tmp.path(), "march.csv", &rows(&march), &auto).unwrap_err().to_string();
    assert!(e.contains("ambiguous") && e.contains("--time-format dmy"), "{e}");
    let dmy = data::LoadOptions { time_format: Some("dmy".parse().unwrap()) };
    let s = load_as(tmp.path(), "march.csv", &rows(&march), &dmy).unwrap();
    assert_eq!(iso(s.bars[0].ts), "2021-03-01 00:00:00");
    assert_eq!(iso(s.bars[11].ts), "2021-03-12 00:00:00");
    assert_eq!(s.time_format, Some(data::TimeFormat::DayFirstDate));
    // A longer day-first file: row 13 shows the order, and every row is read so.
    let long: Vec<String> = (1..=20).map(|d| format!("{d:02}/03/2021")).collect();
    let s = load_as(tmp.path(), "long.csv", &rows(&long), &auto).unwrap();
    assert_eq!((s.len(), iso(s.bars[19].ts).as_str()), (20, "2021-03-20 00:00:00"));
    assert_eq!(s.time_format, Some(data::TimeFormat::DayFirstDate));
    // Month first, shown by a day above 12 in the second field.
    let us: Vec<String> = (1..=20).map(|d| format!("03/{d:02}/2021 09:30")).collect();
    let s = load_as(tmp.path(), "us.csv", &rows(&us), &auto).unwrap();
    assert_eq!(iso(s.bars[19].ts), "2021-03-20 09:30:00");
    assert_eq!(s.time_format, Some(data::TimeFormat::UsDate));
    // Both orders shown by different rows: neither fits.
    let e =
        load_as(tmp.path(), "mixed.csv", &rows(&["13/01/2021".into(), "01/14/2021".into()]), &auto)
            .unwrap_err()
            .to_string();
    assert!(e.contains("fit neither") && e.contains("row 2") && e.contains("row 1"), "{e}");
}

#[test]
fn compact_dates_are_dates_and_implausible_epochs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let auto = data::LoadOptions::default();
    let s = load_as(
        tmp.path(),
        "ymd.csv",
        "date,open,high,low,close\n20210101,1,2,0.5,1.5\n20210104,1,2,0.5,1.5\n",
        &auto,
    )
    .unwrap();
    assert_eq!(iso(s.bars[1].ts), "2021-01-04 00:00:00");
    assert_eq!(s.time_format, Some(data::TimeFormat::CompactDate));
    let s = load_as(
        tmp.path(),
        "ymdhms.csv",
        "date,open,high,low,close\n20210101093000,1,2,0.5,1.5\n20210101093100,1,2,0.5,1.5\n",
        &auto,
    )
    .unwrap();
    assert_eq!(iso(s.bars[1].ts), "2021-01-01 09:31:00");
    assert_eq!(s.time_format, Some(data::TimeFormat::CompactDateTime));
    // In JSON too.
    let s = load_as(
        tmp.path(),
        "ymd.json",
        "[[20210101,1,2,0.5,1.5,1],[20210102,1,2,0.5,1.5,1]]",
        &auto,
    )
    .unwrap();
    assert_eq!(iso(s.bars[0].ts), "2021-01-01 00:00:00");
    // Not all compact dates (20211332 is no date): epoch seconds in 1970, refused.
    let e = load_as(
        tmp.path(),
        "bad.csv",
        "date,open,high,low,close\n20210101,1,2,0.5,1.5\n20211332,1,2,0.5,1.5\n",
        &auto,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("row 1") && e.contains("implausible as epoch seconds (1970-"), "{e}");
    assert!(e.contains("--time-format"), "{e}");
    // Milliseconds guessed from the first row, a later row in the year 2250.
    let e = load_as(
        tmp.path(),
        "far.csv",
        "ts,open,high,low,close\n1704067200000,1,2,0.5,1.5\n8836358400000,1,2,0.5,1.5\n",
        &auto,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("row 2") && e.contains("outside 1900..2200") && e.contains("guessed from row 1"),
        "{e}"
    );
    // Given explicitly, small epochs are the user's to choose.
    let s = load_as(
        tmp.path(),
        "small.csv",
        "ts,open,high,low,close\n60,1,2,0.5,1.5\n120,1,2,0.5,1.5\n",
        &data::LoadOptions { time_format: Some("s".parse().unwrap()) },
    )
    .unwrap();
    assert_eq!(s.bars[1].ts, Timestamp(120_000_000_000));
    assert!("weekly".parse::<data::TimeFormat>().unwrap_err().contains("dmy (31/12/2021)"));
}

#[test]
fn folders_and_extensions_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let e = data::load(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("is a folder"), "{e}");
    let e = load_err("bars.xlsx", b"PK");
    assert!(e.contains(".txt") && e.contains(".pq"), "{e}");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{1,19}",
            "-?[0-9]{1,6}\\.[0-9]{0,6}",
            Just("nan".to_string()),
            Just("inf".to_string()),
            Just(String::new()),
            "[a-z\"]{1,5}",
            "20[0-9]{2}-[01][0-9]-[0-3][0-9][ T][0-2][0-9]:[0-5][0-9]:[0-5][0-9]",
            "[01]?[0-9]/[0-3]?[0-9]/19[0-9]{2}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Whatever a CSV holds, loading returns bars or an error; it never panics.
        #[test]
        fn arbitrary_csv_never_panics(
            header in prop::sample::subsequence(vec!["timestamp", "open", "high", "low", "close", "volume", "x"], 0..=7),
            rows in prop::collection::vec(prop::collection::vec(cell(), 0..8), 0..12),
        ) {
            let mut body = header.join(",");
            body.push('\n');
            for r in &rows {
                body.push_str(&r.join(","));
                body.push('\n');
            }
            let tmp = tempfile::tempdir().unwrap();
            let p = tmp.path().join("fuzz.csv");
            std::fs::write(&p, &body).unwrap();
            if let Ok(s) = data::load(&p) {
                data::validate(&p, &s.bars).unwrap();
            }
        }

        /// Valid CSV and JSON files with bytes replaced, inserted or removed: each load gives
        /// valid bars or an error, never a panic.
        #[test]
        fn mutated_files_load_or_fail_cleanly(
            json in any::<bool>(),
            edits in prop::collection::vec((0usize..2000, 0u8..3, prop::sample::select(
                b"0123456789.,:-/ \n\"[]{}eEnaTZ\xff\x00".to_vec())), 1..6),
        ) {
            let mut body = if json { String::from("[") } else { String::from(HEADER) };
            for i in 0..20 {
                let t = 1_704_067_200 + i * 60;
                if json {
                    body.push_str(&format!("{}[{}000,10,11,9,10.5,{i}]", if i > 0 { "," } else { "" }, t));
                } else {
                    body.push_str(&format!("{t},10,11,9,10.5,{i}\n"));
                }
            }
            if json { body.push(']'); }
            let mut bytes = body.into_bytes();
            for (at, op, b) in edits {
                let i = at % bytes.len();
                match op {
                    0 => bytes[i] = b,
                    1 => bytes.insert(i, b),
                    _ => { bytes.remove(i); }
                }
            }
            let tmp = tempfile::tempdir().unwrap();
            let p = tmp.path().join(if json { "m.json" } else { "m.csv" });
            std::fs::write(&p, &bytes).unwrap();
            if let Ok(s) = data::load(&p) {
                prop_assert!(!s.is_empty());
                data::validate(&p, &s.bars).unwrap();
            }
        }

        /// Arbitrary bytes in any supported container never panic the loader.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), ext in prop::sample::select(vec!["json", "csv.gz", "parquet", "feather", "csv"])) {
            let tmp = tempfile::tempdir().unwrap();
            let p = tmp.path().join(format!("fuzz.{ext}"));
            std::fs::write(&p, &bytes).unwrap();
            let _ = data::load(&p);
        }
    }
}
