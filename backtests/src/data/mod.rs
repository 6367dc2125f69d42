//! Historical bar data: loading, validation, resampling and simulation.
//!
//! [`load`] reads OHLCV bars from CSV (plain or `.gz`), Parquet, Arrow IPC/feather and JSON
//! arrays `[[ms, open, high, low, close, volume], ...]`. Column names are matched without regard
//! to case (`Open`, `open`, `o` ...); the timestamp column is the one named like a time
//! (`timestamp`, `date`, `time`, `datetime`, `open_time`, or an unnamed first column) and its
//! form is detected from every row: ISO text, `m/d/Y` or `d/m/Y` dates (whichever some row's
//! day field above 12 shows; an error when no row tells them apart), compact `%Y%m%d` and
//! `%Y%m%d%H%M%S` dates, epoch seconds/milliseconds/microseconds/nanoseconds (refused when the
//! unit guessed gives a time outside 1900..2200), or a native datetime column.
//! [`LoadOptions::time_format`] sets the form instead. Every bar is validated (see [`validate`]); a bad
//! row is an error naming the file, the row and the problem.
//!
//! [`source`] also accepts `sim:SEED[:BARS]`, a seeded market simulator ([`sim`]).

mod load;
mod resample;
pub mod sim;
mod timestamps;
mod validate;

use std::path::Path;

use kairos_strategies::{Bar, Instrument, Timestamp};

pub use load::{LoadOptions, load, load_with};
pub use resample::{parse_interval, resample};
pub use timestamps::{TIME_FORMAT_NAMES, TimeFormat};
pub use validate::validate;

use crate::{Error, Result};

/// The bars of one instrument, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct BarSeries {
    /// What the bars are of.
    pub instrument: Instrument,
    /// The bars, strictly increasing in time.
    pub bars: Vec<Bar>,
    /// Where they came from (a path, or `sim:SEED:BARS`).
    pub source: String,
    /// True for simulator output, so reports can say the data is not real.
    pub simulated: bool,
    /// How the file's timestamps were written, as detected or given (`None`: generated, or a
    /// native datetime column).
    pub time_format: Option<TimeFormat>,
}

impl BarSeries {
    /// Number of bars.
    pub fn len(&self) -> usize {
        self.bars.len()
    }

    /// Whether there are no bars.
    pub fn is_empty(&self) -> bool {
        self.bars.is_empty()
    }

    /// First and last timestamps.
    pub fn span(&self) -> Option<(Timestamp, Timestamp)> {
        Some((self.bars.first()?.ts, self.bars.last()?.ts))
    }

    /// The median spacing of the first 1024 bars in nanoseconds (0 with fewer than two bars):
    /// the series' usual interval, at a cost that does not grow with the series.
    pub fn interval_hint(&self) -> i64 {
        let head = &self.bars[..self.bars.len().min(1025)];
        let mut d: Vec<i64> = head.windows(2).map(|w| w[1].ts.0 - w[0].ts.0).collect();
        if d.is_empty() {
            return 0;
        }
        let mid = d.len() / 2;
        *d.select_nth_unstable(mid).1
    }

    /// The median spacing of the bars in nanoseconds (0 with fewer than two bars).
    pub fn interval(&self) -> i64 {
        let mut d: Vec<i64> = self.bars.windows(2).map(|w| w[1].ts.0 - w[0].ts.0).collect();
        if d.is_empty() {
            return 0;
        }
        let mid = d.len() / 2;
        *d.select_nth_unstable(mid).1
    }
}

/// Loads a data source: a file path (see [`load`]) or `sim:SEED[:BARS]` (see [`sim`]).
pub fn source(spec: &str) -> Result<BarSeries> {
    source_with(spec, &LoadOptions::default())
}

/// [`source`] with options for files.
pub fn source_with(spec: &str, opts: &LoadOptions) -> Result<BarSeries> {
    match spec.strip_prefix("sim:") {
        Some(rest) => sim::SimConfig::parse(rest)?.generate(),
        None => load_with(Path::new(spec), opts),
    }
}

pub(crate) fn format_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Format { path: path.to_path_buf(), reason: reason.into() }
}
