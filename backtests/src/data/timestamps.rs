//! Timestamp detection and parsing.

use chrono::{NaiveDate, NaiveDateTime};

/// How a timestamp column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// ISO-8601 date-time text: `2021-12-31 23:01:00.000000`, `2021-12-31T23:01:00Z`, with an
    /// optional zone offset (converted to UTC).
    IsoDateTime,
    /// ISO date only: `2021-12-31`.
    IsoDate,
    /// US dates, `m/d/Y`, optionally followed by a time.
    UsDate,
    /// Day-first dates, `d/m/Y`, optionally followed by a time.
    DayFirstDate,
    /// Compact dates, `%Y%m%d` (`20211231`), as text or integers.
    CompactDate,
    /// Compact date-times, `%Y%m%d%H%M%S` (`20211231230100`), as text or integers.
    CompactDateTime,
    /// Integer seconds since the epoch.
    EpochSeconds,
    /// Integer milliseconds since the epoch.
    EpochMillis,
    /// Integer microseconds since the epoch.
    EpochMicros,
    /// Integer nanoseconds since the epoch.
    EpochNanos,
}

/// The names `--time-format` and the `time_format` key take, with the forms they read.
pub const TIME_FORMAT_NAMES: &str = "iso (2021-12-31 23:01:00), iso-date (2021-12-31), \
    mdy (12/31/2021), dmy (31/12/2021), ymd (20211231), ymdhms (20211231230100), \
    s, ms, us, ns (epoch seconds .. nanoseconds)";

impl std::str::FromStr for TimeFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "iso" => TimeFormat::IsoDateTime,
            "iso-date" => TimeFormat::IsoDate,
            "mdy" | "m/d/y" => TimeFormat::UsDate,
            "dmy" | "d/m/y" => TimeFormat::DayFirstDate,
            "ymd" | "%y%m%d" => TimeFormat::CompactDate,
            "ymdhms" | "%y%m%d%h%m%s" => TimeFormat::CompactDateTime,
            "s" => TimeFormat::EpochSeconds,
            "ms" => TimeFormat::EpochMillis,
            "us" => TimeFormat::EpochMicros,
            "ns" => TimeFormat::EpochNanos,
            other => {
                return Err(format!(
                    "unknown time format `{other}`; expected one of {TIME_FORMAT_NAMES}"
                ));
            }
        })
    }
}

impl TimeFormat {
    /// Guesses the format of a text timestamp from one sample.
    pub fn detect_text(sample: &str) -> Option<Self> {
        let s = sample.trim();
        if let Ok(v) = s.parse::<i64>() {
            if compact(s).is_some() {
                return Some(if s.len() == 8 {
                    TimeFormat::CompactDate
                } else {
                    TimeFormat::CompactDateTime
                });
            }
            return Some(Self::detect_epoch(v));
        }
        if s.contains('/') {
            return Some(TimeFormat::UsDate);
        }
        if s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
            return Some(TimeFormat::IsoDate);
        }
        parse_iso(s).map(|_| TimeFormat::IsoDateTime)
    }

    /// The format of a text column, from every value (`None` for a missing one): slash dates
    /// are day-first when some day field is above 12, month-first when some month field is,
    /// and an error when neither tells (every field is 12 or less) or both do; compact dates
    /// (`20211231`) are taken only when every value is one; integers are then epochs in the
    /// unit the first one's magnitude suggests, refused when implausible. The error names a
    /// row and says to pass `--time-format`.
    pub fn detect_column(values: &[Option<&str>]) -> Result<Self, String> {
        let values = values.iter().copied();
        let (row, sample) = values
            .clone()
            .enumerate()
            .find_map(|(i, v)| v.map(|v| (i + 1, v.trim())))
            .ok_or("timestamp column is empty")?;
        let fmt = Self::detect_text(sample).ok_or_else(|| {
            format!("cannot tell the timestamp format from `{sample}` (row {row}); pass --time-format ({TIME_FORMAT_NAMES})")
        })?;
        match fmt {
            TimeFormat::UsDate => slash_order(values),
            // Integers as text: compact dates or epochs, decided as for an integer column.
            TimeFormat::CompactDate
            | TimeFormat::CompactDateTime
            | TimeFormat::EpochSeconds
            | TimeFormat::EpochMillis
            | TimeFormat::EpochMicros
            | TimeFormat::EpochNanos => {
                let ints: Vec<Option<i64>> =
                    values.map(|v| v.and_then(|v| v.trim().parse().ok())).collect();
                Self::detect_integers(&ints)
            }
            other => Ok(other),
        }
    }

    /// The format of an integer column: compact dates when every value is one (`20211231`,
    /// `20211231230100`), else epochs in the unit the first value's magnitude suggests,
    /// checked on every row (a value outside 1900..2200 in that unit is an error naming it).
    pub fn detect_integers(values: &[Option<i64>]) -> Result<Self, String> {
        let (row, first) = values
            .iter()
            .enumerate()
            .find_map(|(i, v)| v.map(|v| (i + 1, v)))
            .ok_or("timestamp column is empty")?;
        let digits = first.to_string();
        if compact(&digits).is_some()
            && values.iter().flatten().all(|v| {
                let t = v.to_string();
                t.len() == digits.len() && compact(&t).is_some()
            })
        {
            return Ok(if digits.len() == 8 {
                TimeFormat::CompactDate
            } else {
                TimeFormat::CompactDateTime
            });
        }
        let unit = Self::detect_epoch(first);
        for (i, v) in values.iter().enumerate() {
            let Some(v) = *v else { continue };
            unit.check_epoch(v).map_err(|why| {
                let first_note = if i + 1 == row { String::new() } else {
                    format!(" (the unit was guessed from row {row}'s {first})")
                };
                format!("row {}: timestamp {v} {why}{first_note}; pass --time-format ({TIME_FORMAT_NAMES})", i + 1)
            })?;
        }
        Ok(unit)
    }

    /// Whether an epoch integer in this unit is a plausible market time: 1900 to 2200, and
    /// in seconds not within the first three years after 1970, where small numbers that are
    /// not times at all (`20211231` read as seconds) land.
    fn check_epoch(self, v: i64) -> Result<(), String> {
        const MIN_NS: i64 = -2_208_988_800_000_000_000; // 1900-01-01
        const MAX_NS: i64 = 7_258_118_400_000_000_000; // 2200-01-01
        let what = self.describe();
        match self.epoch_to_nanos(v) {
            None => Err(format!("is implausible as {what} (after the year 2262)")),
            Some(ns) if !(MIN_NS..MAX_NS).contains(&ns) => Err(format!(
                "is implausible as {what} ({}, outside 1900..2200)",
                kairos_strategies::Timestamp(ns).to_iso()
            )),
            Some(ns) if self == TimeFormat::EpochSeconds && (0..100_000_000).contains(&v) => {
                Err(format!(
                    "is implausible as {what} ({}, within three years of 1970)",
                    kairos_strategies::Timestamp(ns).to_iso()
                ))
            }
            Some(_) => Ok(()),
        }
    }

    /// Guesses the unit of an integer epoch from its magnitude: values before 1973 in
    /// milliseconds would be ambiguous, so anything below 1e11 is seconds, below 1e14
    /// milliseconds, below 1e17 microseconds, and nanoseconds above.
    pub fn detect_epoch(v: i64) -> Self {
        let a = v.unsigned_abs();
        if a < 100_000_000_000 {
            TimeFormat::EpochSeconds
        } else if a < 100_000_000_000_000 {
            TimeFormat::EpochMillis
        } else if a < 100_000_000_000_000_000 {
            TimeFormat::EpochMicros
        } else {
            TimeFormat::EpochNanos
        }
    }

    /// Converts an epoch integer in this unit to nanoseconds.
    pub fn epoch_to_nanos(self, v: i64) -> Option<i64> {
        match self {
            TimeFormat::EpochSeconds => v.checked_mul(1_000_000_000),
            TimeFormat::EpochMillis => v.checked_mul(1_000_000),
            TimeFormat::EpochMicros => v.checked_mul(1_000),
            TimeFormat::EpochNanos => Some(v),
            _ => None,
        }
    }

    /// Converts an integer timestamp in this format (an epoch, or a compact date's digits) to
    /// nanoseconds; `None` for a text format or a value this format does not read.
    pub fn parse_int(self, v: i64) -> Option<i64> {
        match self {
            TimeFormat::CompactDate | TimeFormat::CompactDateTime => self.parse(&v.to_string()),
            epoch => epoch.epoch_to_nanos(v),
        }
    }

    /// Parses one text value in this format to nanoseconds since the epoch (UTC).
    pub fn parse(self, s: &str) -> Option<i64> {
        let s = s.trim();
        match self {
            TimeFormat::IsoDateTime => parse_iso(s),
            TimeFormat::IsoDate => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(midnight),
            TimeFormat::UsDate => slash_date(s, "%m/%d/%Y"),
            TimeFormat::DayFirstDate => slash_date(s, "%d/%m/%Y"),
            TimeFormat::CompactDate | TimeFormat::CompactDateTime => {
                let ok = (self == TimeFormat::CompactDate) == (s.len() == 8);
                compact(s).filter(|_| ok)
            }
            epoch => s.parse::<i64>().ok().and_then(|v| epoch.epoch_to_nanos(v)),
        }
    }

    /// A human name for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            TimeFormat::IsoDateTime => "ISO date-time",
            TimeFormat::IsoDate => "ISO date (YYYY-mm-dd)",
            TimeFormat::UsDate => "m/d/Y date",
            TimeFormat::DayFirstDate => "d/m/Y date",
            TimeFormat::CompactDate => "%Y%m%d date",
            TimeFormat::CompactDateTime => "%Y%m%d%H%M%S date-time",
            TimeFormat::EpochSeconds => "epoch seconds",
            TimeFormat::EpochMillis => "epoch milliseconds",
            TimeFormat::EpochMicros => "epoch microseconds",
            TimeFormat::EpochNanos => "epoch nanoseconds",
        }
    }
}

/// A slash date in `date_fmt` (`%m/%d/%Y` or `%d/%m/%Y`), optionally with a time.
fn slash_date(s: &str, date_fmt: &str) -> Option<i64> {
    for t in [" %H:%M:%S", " %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, &format!("{date_fmt}{t}")) {
            return dt.and_utc().timestamp_nanos_opt();
        }
    }
    NaiveDate::parse_from_str(s, date_fmt).ok().and_then(midnight)
}

/// `20211231` or `20211231230100` (years 1900 to 2199) as nanoseconds; `None` for anything
/// else.
fn compact(s: &str) -> Option<i64> {
    if !s.bytes().all(|c| c.is_ascii_digit()) || !matches!(s.get(..2), Some("19" | "20" | "21")) {
        return None;
    }
    match s.len() {
        8 => NaiveDate::parse_from_str(s, "%Y%m%d").ok().and_then(midnight),
        14 => NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S")
            .ok()
            .and_then(|dt| dt.and_utc().timestamp_nanos_opt()),
        _ => None,
    }
}

/// Whether a column of slash dates is month-first or day-first, from every row.
fn slash_order<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Result<TimeFormat, String> {
    // The first row whose first field must be a day (above 12), and one whose second must be.
    let (mut day_first, mut month_first) = (None, None);
    for (i, v) in values.enumerate() {
        let Some(v) = v else { continue };
        let mut fields = v.trim().split('/').map(|f| f.trim().parse::<u32>().ok());
        let (Some(Some(a)), Some(Some(b))) = (fields.next(), fields.next()) else { continue };
        if a > 12 && day_first.is_none() {
            day_first = Some((i + 1, v.trim()));
        }
        if b > 12 && month_first.is_none() {
            month_first = Some((i + 1, v.trim()));
        }
    }
    match (day_first, month_first) {
        (Some(_), None) => Ok(TimeFormat::DayFirstDate),
        (None, Some(_)) => Ok(TimeFormat::UsDate),
        (Some((r1, d)), Some((r2, m))) => Err(format!(
            "slash dates that fit neither d/m/Y (row {r2}: `{m}`) nor m/d/Y (row {r1}: `{d}`)"
        )),
        (None, None) => Err("the slash dates are ambiguous: every day and month field is 12 \
             or less, so they read as d/m/Y and as m/d/Y; pass --time-format dmy or \
             --time-format mdy (config key `time_format`)"
            .into()),
    }
}

fn midnight(d: NaiveDate) -> Option<i64> {
    d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_nanos_opt()
}

fn parse_iso(s: &str) -> Option<i64> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return dt.timestamp_nanos_opt();
    }
    // With an offset but a space separator: `2021-01-01 00:00:00+00:00`.
    for f in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(dt) = chrono::DateTime::parse_from_str(s, f) {
            return dt.timestamp_nanos_opt();
        }
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
            return dt.and_utc().timestamp_nanos_opt();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_and_parses_every_form() {
        let cases = [
            ("2021-12-31 23:01:00.000000", TimeFormat::IsoDateTime, 1_640_991_660_000_000_000),
            ("2021-12-31T23:01:00Z", TimeFormat::IsoDateTime, 1_640_991_660_000_000_000),
            ("2022-01-01 00:01:00+01:00", TimeFormat::IsoDateTime, 1_640_991_660_000_000_000),
            ("2017-04-19 09:00:00", TimeFormat::IsoDateTime, 1_492_592_400_000_000_000),
            ("2021-12-31", TimeFormat::IsoDate, 1_640_908_800_000_000_000),
            ("12/31/2021", TimeFormat::UsDate, 1_640_908_800_000_000_000),
            ("1640991660", TimeFormat::EpochSeconds, 1_640_991_660_000_000_000),
            ("1640991660000", TimeFormat::EpochMillis, 1_640_991_660_000_000_000),
            ("1640991660000000", TimeFormat::EpochMicros, 1_640_991_660_000_000_000),
            ("1640991660000000000", TimeFormat::EpochNanos, 1_640_991_660_000_000_000),
        ];
        for (s, f, ns) in cases {
            assert_eq!(TimeFormat::detect_text(s), Some(f), "{s}");
            assert_eq!(f.parse(s), Some(ns), "{s}");
        }
        assert_eq!(TimeFormat::detect_text("yesterday"), None);
        assert_eq!(TimeFormat::IsoDateTime.parse("2021-13-45 00:00:00"), None);
    }
}
