//! Writing a run's results: `summary.json`, `trades.csv`, `equity.csv`, and the summary table.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use kairos_strategies::Side;

use crate::engine::BacktestResult;
use crate::stats::Summary;
use crate::{Error, Result};

/// Writes `summary.json`, `trades.csv` and `equity.csv` into `dir` (created if missing).
pub fn write(dir: &Path, result: &BacktestResult, summary: &Summary) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;

    let p = dir.join("summary.json");
    let mut json = serde_json::to_string_pretty(summary)
        .map_err(|e| Error::Format { path: p.clone(), reason: e.to_string() })?;
    json.push('\n');
    std::fs::write(&p, json).map_err(io(&p))?;

    let p = dir.join("trades.csv");
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

    let p = dir.join("equity.csv");
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

/// The summary as an aligned two-column table.
pub fn table(summary: &Summary) -> String {
    let v = serde_json::to_value(summary).unwrap_or_default();
    let mut s = String::new();
    if let Some(map) = v.as_object() {
        let width = map.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in map {
            let text = match v {
                serde_json::Value::Number(n) if k == "max_drawdown_duration" => {
                    format_duration(n.as_f64().unwrap_or(f64::NAN))
                }
                serde_json::Value::Number(n) => match n.as_f64() {
                    Some(f) if n.is_f64() => format_number(f),
                    _ => n.to_string(),
                },
                serde_json::Value::Null => "-".into(),
                serde_json::Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(s, "{k:<width$}  {text:>24}");
        }
    }
    s
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

fn format_number(f: f64) -> String {
    if f.abs() >= 1e6 || (f != 0.0 && f.abs() < 1e-3) {
        format!("{f:.6e}")
    } else {
        format!("{f:.4}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_as_days_and_time() {
        assert_eq!(super::format_duration(2_640_960.0), "30d 13:36:00");
        assert_eq!(super::format_duration(59.0), "0d 00:00:59");
        assert_eq!(super::format_duration(f64::NAN), "-");
    }
}
