//! Reading OHLCV files with polars (CSV, Parquet, Arrow IPC) or serde (JSON arrays).

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::Path;

use kairos_strategies::{Bar, Instrument, InstrumentId, Timestamp};
use polars::prelude::*;

use super::timestamps::TimeFormat;
use super::{BarSeries, format_err, validate};
use crate::{Error, Result};

/// The extensions [`load`] reads, for messages.
const EXTENSIONS: &str = ".csv, .csv.gz, .txt, .parquet, .pq, .feather, .arrow, .ipc or .json";

/// Names a timestamp column may have (lower case); an empty name is a pandas index column.
const TIME_NAMES: &[&str] =
    &["timestamp", "time", "date", "datetime", "open_time", "opentime", "ts", "index", ""];

/// How to read a file where detection is not enough.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// The timestamp column's format; `None` detects it from every row.
    pub time_format: Option<TimeFormat>,
}

/// Loads and validates the bars in `path`; the format follows the extension (`.csv`,
/// `.csv.gz`, `.txt`, `.parquet`/`.pq`, `.feather`/`.arrow`/`.ipc`, `.json`).
pub fn load(path: impl AsRef<Path>) -> Result<BarSeries> {
    load_with(path, &LoadOptions::default())
}

/// [`load`] with options (a timestamp format given rather than detected).
pub fn load_with(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<BarSeries> {
    let path = path.as_ref();
    if path.is_dir() {
        return Err(format_err(
            path,
            format!("is a folder; give a data file ({EXTENSIONS}) inside it"),
        ));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    let io = |cause| Error::Io { path: path.to_path_buf(), cause };
    let columns = if name.ends_with(".json") {
        let text = std::fs::read_to_string(path).map_err(io)?;
        json_columns(path, &text, opts)?
    } else {
        let df = if name.ends_with(".csv") || name.ends_with(".csv.gz") || name.ends_with(".txt") {
            let mut raw = Vec::new();
            File::open(path).and_then(|mut f| f.read_to_end(&mut raw)).map_err(io)?;
            if raw.starts_with(&[0x1f, 0x8b]) {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .map_err(|e| format_err(path, format!("not a valid gzip file: {e}")))?;
                raw = out;
            }
            let read = CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(100_000))
                .into_reader_with_file_handle(Cursor::new(&raw))
                .finish();
            // polars' messages name no row: find it.
            if let (Err(_), Some(why)) = (&read, csv_row_problem(&raw)) {
                return Err(format_err(path, why));
            }
            read
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            ParquetReader::new(File::open(path).map_err(io)?).finish()
        } else if [".feather", ".arrow", ".ipc"].iter().any(|e| name.ends_with(e)) {
            IpcReader::new(File::open(path).map_err(io)?).finish()
        } else {
            return Err(format_err(path, format!("unknown file type; expected {EXTENSIONS}")));
        };
        let df = df.map_err(|e| format_err(path, format!("cannot read: {e}")))?;
        frame_columns(path, &df, opts)?
    };
    let symbol = symbol_from_path(path);
    let time_format = columns.time_format;
    let bars = columns.into_bars(path)?;
    let series = BarSeries {
        instrument: Instrument::new(symbol, "file"),
        bars,
        source: path.display().to_string(),
        simulated: false,
        time_format,
    };
    validate(path, &series.bars)?;
    Ok(series)
}

/// The first row of a CSV that polars could not read, and why: a byte that is not UTF-8, or
/// a row with more or fewer fields than the header (for files without quoted fields, whose
/// commas are all separators). `None` when neither explains the failure.
fn csv_row_problem(raw: &[u8]) -> Option<String> {
    let row_of = |offset: usize| raw[..offset].iter().filter(|&&c| c == b'\n').count();
    if let Err(e) = std::str::from_utf8(raw) {
        let at = e.valid_up_to();
        let line_start = raw[..at].iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
        return Some(match row_of(at) {
            0 => format!("the header is not UTF-8 text (byte 0x{:02X})", raw[at]),
            row => format!(
                "row {row}: not UTF-8 text (byte 0x{:02X} at column {})",
                raw[at],
                at - line_start + 1
            ),
        });
    }
    if raw.contains(&b'"') {
        return None;
    }
    let mut lines = raw.split(|&c| c == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let fields = |l: &[u8]| l.iter().filter(|&&c| c == b',').count() + 1;
    let header = fields(lines.next()?);
    for (i, l) in lines.enumerate() {
        if !l.is_empty() && fields(l) != header {
            return Some(format!("row {}: {} fields, the header has {header}", i + 1, fields(l)));
        }
    }
    None
}

/// The file name without its data extensions: `EURUSD.csv.gz` gives `EURUSD`.
fn symbol_from_path(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    let mut s = name;
    for ext in [".gz", ".csv", ".txt", ".parquet", ".pq", ".feather", ".arrow", ".ipc", ".json"] {
        if let Some(stripped) = s.strip_suffix(ext) {
            s = stripped;
        }
    }
    s.to_string()
}

/// Column-oriented raw bars before validation.
struct Columns {
    ts: Vec<Option<i64>>,
    /// Raw text of each timestamp for error messages, when the source was text.
    ts_text: Option<Vec<Option<String>>>,
    /// How the timestamps were written (`None`: a native datetime column).
    time_format: Option<TimeFormat>,
    open: Vec<Option<f64>>,
    high: Vec<Option<f64>>,
    low: Vec<Option<f64>>,
    close: Vec<Option<f64>>,
    volume: Vec<Option<f64>>,
}

impl Columns {
    fn into_bars(self, path: &Path) -> Result<Vec<Bar>> {
        if self.ts.is_empty() {
            return Err(format_err(path, "no rows"));
        }
        let mut bars = Vec::with_capacity(self.ts.len());
        for i in 0..self.ts.len() {
            let row_err = |problem: String| Error::BadRow {
                path: path.to_path_buf(),
                row: i + 1,
                time: self.ts[i].map(|t| Timestamp(t).to_iso()),
                problem,
            };
            let Some(ts) = self.ts[i] else {
                let raw = self.ts_text.as_ref().and_then(|t| t[i].clone());
                return Err(match raw {
                    Some(text) => row_err(format!("cannot read timestamp `{text}`")),
                    None => row_err("missing timestamp".into()),
                });
            };
            let get = |col: &[Option<f64>], name: &str| {
                col[i].ok_or_else(|| row_err(format!("missing or non-numeric {name}")))
            };
            bars.push(Bar {
                instrument: InstrumentId(0),
                ts: Timestamp(ts),
                open: get(&self.open, "open")?,
                high: get(&self.high, "high")?,
                low: get(&self.low, "low")?,
                close: get(&self.close, "close")?,
                volume: get(&self.volume, "volume")?,
            });
        }
        Ok(bars)
    }
}

fn find<'a>(names: &'a [String], wanted: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find(|n| wanted.contains(&n.trim().to_ascii_lowercase().as_str()))
        .map(String::as_str)
}

fn frame_columns(path: &Path, df: &DataFrame, opts: &LoadOptions) -> Result<Columns> {
    if df.height() == 0 {
        return Err(format_err(path, "no rows (only a header?)"));
    }
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let missing = |what: &str| {
        format_err(path, format!("no {what} column; columns are: {}", names.join(", ")))
    };
    let time_col = find(&names, TIME_NAMES).ok_or_else(|| missing("timestamp"))?;
    let (ts, ts_text, time_format) =
        time_column(path, df.column(time_col).map_err(|e| format_err(path, e.to_string()))?, opts)?;
    let num = |wanted: &[&str], what: &str, required: bool| -> Result<Vec<Option<f64>>> {
        match find(&names, wanted) {
            Some(name) => numeric_column(
                path,
                df.column(name).map_err(|e| format_err(path, e.to_string()))?,
                name,
            ),
            None if required => Err(missing(what)),
            None => Ok(vec![Some(0.0); df.height()]),
        }
    };
    Ok(Columns {
        ts,
        ts_text,
        time_format,
        open: num(&["open", "o"], "open", true)?,
        high: num(&["high", "h"], "high", true)?,
        low: num(&["low", "l"], "low", true)?,
        close: num(&["close", "c"], "close", true)?,
        volume: num(&["volume", "vol", "v"], "volume", false)?,
    })
}

fn numeric_column(path: &Path, col: &Column, name: &str) -> Result<Vec<Option<f64>>> {
    if col.dtype() == &DataType::String {
        // Inference fell back to text: some cell is not a number. Parse to find which.
        let s = col.str().map_err(|e| format_err(path, e.to_string()))?;
        return s
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                None => Ok(None),
                Some(t) => t.trim().parse::<f64>().map(Some).map_err(|_| Error::BadRow {
                    path: path.to_path_buf(),
                    row: i + 1,
                    time: None,
                    problem: format!("{name} `{t}` is not a number"),
                }),
            })
            .collect();
    }
    if !col.dtype().is_primitive_numeric() {
        return Err(format_err(
            path,
            format!("column `{name}` has type {}, expected numbers", col.dtype()),
        ));
    }
    let c = col.cast(&DataType::Float64).map_err(|e| format_err(path, e.to_string()))?;
    Ok(c.f64().map_err(|e| format_err(path, e.to_string()))?.iter().collect())
}

/// Timestamps in nanoseconds, their text (for messages) and the format read.
type TimeColumn = (Vec<Option<i64>>, Option<Vec<Option<String>>>, Option<TimeFormat>);

fn time_column(path: &Path, col: &Column, opts: &LoadOptions) -> Result<TimeColumn> {
    let err = |e: PolarsError| format_err(path, e.to_string());
    match col.dtype() {
        DataType::String => {
            let s = col.str().map_err(err)?;
            let fmt = match opts.time_format {
                Some(f) => f,
                None => TimeFormat::detect_column(&s.iter().collect::<Vec<_>>())
                    .map_err(|e| format_err(path, e))?,
            };
            let text: Vec<Option<String>> = s.iter().map(|v| v.map(str::to_string)).collect();
            let ts = text.iter().map(|v| v.as_deref().and_then(|t| fmt.parse(t))).collect();
            Ok((ts, Some(text), Some(fmt)))
        }
        DataType::Datetime(unit, _) => {
            let unit = match unit {
                TimeUnit::Nanoseconds => TimeFormat::EpochNanos,
                TimeUnit::Microseconds => TimeFormat::EpochMicros,
                TimeUnit::Milliseconds => TimeFormat::EpochMillis,
            };
            let phys = col.cast(&DataType::Int64).map_err(err)?;
            Ok((
                phys.i64()
                    .map_err(err)?
                    .iter()
                    .map(|v| v.and_then(|v| unit.epoch_to_nanos(v)))
                    .collect(),
                None,
                None,
            ))
        }
        DataType::Date => {
            let phys = col.cast(&DataType::Int32).map_err(err)?;
            let days = phys.i32().map_err(err)?;
            Ok((
                days.iter()
                    .map(|d| d.and_then(|d| i64::from(d).checked_mul(86_400_000_000_000)))
                    .collect(),
                None,
                None,
            ))
        }
        dt if dt.is_integer() => {
            let phys = col.cast(&DataType::Int64).map_err(err)?;
            integers(path, phys.i64().map_err(err)?.iter().collect(), opts)
        }
        dt if dt.is_float() => {
            // Float epochs (as pandas writes integers with gaps): whole numbers only.
            let phys = col.cast(&DataType::Float64).map_err(err)?;
            let whole = phys
                .f64()
                .map_err(err)?
                .iter()
                .map(|x| x.filter(|x| x.is_finite() && x.fract() == 0.0).map(|x| x as i64));
            integers(path, whole.collect(), opts)
        }
        other => Err(format_err(
            path,
            format!("timestamp column has type {other}, expected text, integers or datetimes"),
        )),
    }
}

/// Integer timestamps: compact dates or epochs (see [`TimeFormat::detect_integers`]), or the
/// format given.
fn integers(path: &Path, values: Vec<Option<i64>>, opts: &LoadOptions) -> Result<TimeColumn> {
    let fmt = match opts.time_format {
        Some(f) => f,
        None => TimeFormat::detect_integers(&values).map_err(|e| format_err(path, e))?,
    };
    Ok((values.into_iter().map(|x| x.and_then(|x| fmt.parse_int(x))).collect(), None, Some(fmt)))
}

/// `[[ms, open, high, low, close, volume], ...]`, as exchange REST APIs and freqtrade write.
fn json_columns(path: &Path, text: &str, opts: &LoadOptions) -> Result<Columns> {
    let rows: Vec<Vec<serde_json::Value>> = serde_json::from_str(text).map_err(|e| {
        format_err(
            path,
            format!("expected a JSON array of [time, open, high, low, close, volume] arrays: {e}"),
        )
    })?;
    let n = rows.len();
    if n == 0 {
        return Err(format_err(path, "no rows"));
    }
    let mut c = Columns {
        ts: Vec::new(),
        ts_text: None,
        time_format: None,
        open: Vec::with_capacity(n),
        high: Vec::with_capacity(n),
        low: Vec::with_capacity(n),
        close: Vec::with_capacity(n),
        volume: Vec::with_capacity(n),
    };
    let mut raw_ts = Vec::with_capacity(n);
    for (i, row) in rows.iter().enumerate() {
        if row.len() < 5 {
            return Err(Error::BadRow {
                path: path.to_path_buf(),
                row: i + 1,
                time: None,
                problem: format!(
                    "has {} fields, expected [time, open, high, low, close, volume]",
                    row.len()
                ),
            });
        }
        let num = |v: &serde_json::Value| match v {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let t = match &row[0] {
            serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        };
        raw_ts.push(t);
        c.open.push(num(&row[1]));
        c.high.push(num(&row[2]));
        c.low.push(num(&row[3]));
        c.close.push(num(&row[4]));
        c.volume.push(row.get(5).map_or(Some(0.0), num));
    }
    let (ts, _, fmt) = integers(path, raw_ts, opts)?;
    c.ts = ts;
    c.time_format = fmt;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_from_file_names() {
        assert_eq!(symbol_from_path(Path::new("/x/EURUSD.csv")), "EURUSD");
        assert_eq!(symbol_from_path(Path::new("sp500.csv.gz")), "sp500");
        assert_eq!(symbol_from_path(Path::new("ETH_BTC-5m.feather")), "ETH_BTC-5m");
    }
}
