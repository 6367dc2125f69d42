//! Writing a run's results: `summary.json`, `trades.csv`, `equity.csv`, and the summary table.

pub mod charts;
pub mod html;

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use kairos_strategies::Side;

use crate::engine::BacktestResult;
use crate::stats::Summary;
use crate::{Error, Result};

/// Checks, before a run, that `dir` is a folder the reports can be written to (creating it if
/// missing): a file, `/dev/null` or a folder without write permission is an error naming it,
/// so a run never completes only to fail at its end.
pub fn check_out_dir(dir: &Path) -> Result<()> {
    create_out_dir(dir)?;
    let bad = |reason: String| Error::Format { path: dir.to_path_buf(), reason };
    let probe = dir.join(".kairos-write-check");
    std::fs::write(&probe, b"")
        .map_err(|e| bad(format!("cannot write into the output folder: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes `bytes` to `dir/name` through the hidden temporary `dir/.name.tmp`, renamed into
/// place once complete (removed on failure): the file is never seen half written.
pub fn write_file(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let done = std::fs::write(&tmp, bytes)
        .map_err(|cause| Error::Io { path: tmp.clone(), cause })
        .and_then(|()| {
            std::fs::rename(&tmp, &path).map_err(|cause| Error::Io { path: path.clone(), cause })
        });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done.map(|()| path)
}

/// `dir`, created if missing; an error naming it when it is a file.
fn create_out_dir(dir: &Path) -> Result<()> {
    let bad = |reason: String| Error::Format { path: dir.to_path_buf(), reason };
    if dir.exists() && !dir.is_dir() {
        return Err(bad("the output folder is a file, not a folder".into()));
    }
    std::fs::create_dir_all(dir).map_err(|e| bad(format!("cannot create the output folder: {e}")))
}

/// Writes `summary.json`, `trades.csv` and `equity.csv` into `dir` (created if missing).
///
/// Each is written to a hidden temporary file first; only when all three are complete are they
/// renamed into place, `summary.json` last. A failure removes the temporary files, so the
/// folder never holds a partial set that looks like a finished run (earlier runs' files are
/// left as they were).
pub fn write(dir: &Path, result: &BacktestResult, summary: &Summary) -> Result<()> {
    // No write probe here: the temporary files are the probe.
    create_out_dir(dir)?;
    let names = ["trades.csv", "equity.csv", "summary.json"];
    let tmp = |name: &str| dir.join(format!(".{name}.tmp"));
    let written = write_temporaries(result, summary, &tmp);
    let renamed = written.and_then(|()| {
        names.iter().try_for_each(|n| {
            std::fs::rename(tmp(n), dir.join(n))
                .map_err(|cause| Error::Io { path: dir.join(n), cause })
        })
    });
    if renamed.is_err() {
        for n in names {
            let _ = std::fs::remove_file(tmp(n));
        }
    }
    renamed
}

fn write_temporaries(
    result: &BacktestResult,
    summary: &Summary,
    tmp: &dyn Fn(&str) -> std::path::PathBuf,
) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| Error::Io { path, cause }
    };
    let p = tmp("summary.json");
    let mut json = serde_json::to_string_pretty(summary)
        .map_err(|e| Error::Format { path: p.clone(), reason: e.to_string() })?;
    json.push('\n');
    std::fs::write(&p, json).map_err(io(&p))?;

    let p = tmp("trades.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&p).map_err(io(&p))?);
    let multi = result.instruments.len() > 1;
    let mut s = String::from(
        "entry_time,exit_time,side,size,entry_price,exit_price,pnl,return_pct,commission",
    );
    if multi {
        s.push_str(",symbol");
    }
    s.push('\n');
    for t in &result.trades {
        let side = if t.size > 0.0 { Side::Buy } else { Side::Sell };
        let _ = write!(
            s,
            "{},{},{},{},{},{},{},{},{}",
            t.entry_time,
            t.exit_time,
            if side == Side::Buy { "long" } else { "short" },
            t.size.abs(),
            t.entry_price,
            t.exit_price,
            t.pnl,
            t.return_frac * 100.0,
            t.commission
        );
        if multi {
            let _ = write!(s, ",{}", result.instruments[t.instrument.index()].symbol);
        }
        s.push('\n');
        if s.len() > 1 << 16 {
            out.write_all(s.as_bytes()).map_err(io(&p))?;
            s.clear();
        }
    }
    out.write_all(s.as_bytes()).and_then(|_| out.flush()).map_err(io(&p))?;

    let p = tmp("equity.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&p).map_err(io(&p))?);
    let mut s = String::from("time,equity\n");
    for (t, e) in result.equity_time.iter().zip(&result.equity) {
        let _ = writeln!(s, "{t},{e}");
        if s.len() > 1 << 16 {
            out.write_all(s.as_bytes()).map_err(io(&p))?;
            s.clear();
        }
    }
    out.write_all(s.as_bytes()).and_then(|_| out.flush()).map_err(io(&p))?;
    Ok(())
}

/// The summary as an aligned two-column table, its warnings (figures that mean nothing for
/// this run) after it, one a line.
pub fn table(summary: &Summary) -> String {
    let rows = rows(summary);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut s = String::new();
    for (k, text) in rows {
        let _ = writeln!(s, "{k:<width$}  {text:>24}");
    }
    for w in &summary.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

/// The summary's figures as (name, text) in `summary.json`'s order: money to the cent, the
/// drawdown duration as days and time, other numbers to four decimals, undefined ones as `-`
/// (the warnings are not among them).
pub fn rows(summary: &Summary) -> Vec<(String, String)> {
    let v = serde_json::to_value(summary).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(map) = v.as_object() {
        for (k, v) in map {
            let text = match v {
                serde_json::Value::Number(n) if k == "max_drawdown_duration" => {
                    format_duration(n.as_f64().unwrap_or(f64::NAN))
                }
                serde_json::Value::Number(n) if MONEY.contains(&k.as_str()) => {
                    format_money(n.as_f64().unwrap_or(f64::NAN))
                }
                serde_json::Value::Number(n) => match n.as_f64() {
                    Some(f) if n.is_f64() => format_number(f),
                    _ => n.to_string(),
                },
                serde_json::Value::Null => "-".into(),
                serde_json::Value::String(t) => t.clone(),
                serde_json::Value::Array(_) => continue,
                other => other.to_string(),
            };
            out.push((k.clone(), text));
        }
    }
    out
}

/// Amounts of money, shown to the cent rather than to significant digits.
const MONEY: [&str; 3] = ["equity_final", "equity_peak", "commissions"];

fn format_money(f: f64) -> String {
    if !f.is_finite() {
        return "-".into();
    }
    let t = format!("{f:.2}");
    if t == "-0.00" { "0.00".into() } else { t }
}

/// Seconds as `12d 03:04:05`, the way a trader reads a drawdown's length.
fn format_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "-".into();
    }
    let s = secs.round() as i64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    format!("{d}d {h:02}:{m:02}:{sec:02}")
}

/// Four decimals (one form for every figure, so columns compare), scientific only beyond a
/// trillion; never `-0.0000`.
fn format_number(f: f64) -> String {
    let t = if f.abs() >= 1e12 { format!("{f:.4e}") } else { format!("{f:.4}") };
    if t.trim_start_matches('-').bytes().all(|c| c == b'0' || c == b'.') {
        t.trim_start_matches('-').to_string()
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_read_in_one_form() {
        use super::{format_money, format_number};
        assert_eq!(format_number(229_054.855_51), "229054.8555");
        assert_eq!(format_number(75_368_430.0), "75368430.0000");
        assert_eq!(format_number(-0.000_01), "0.0000");
        assert_eq!(format_number(-0.0), "0.0000");
        assert_eq!(format_number(5e16), "5.0000e16");
        assert_eq!(format_money(99_751_010.234), "99751010.23");
        assert_eq!(format_money(-0.001), "0.00");
        assert_eq!(format_money(f64::NAN), "-");
    }

    #[test]
    fn durations_read_as_days_and_time() {
        assert_eq!(super::format_duration(2_640_960.0), "30d 13:36:00");
        assert_eq!(super::format_duration(59.0), "0d 00:00:59");
        assert_eq!(super::format_duration(f64::NAN), "-");
    }
}
