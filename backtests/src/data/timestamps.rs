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
    /// Integer seconds since the epoch.
    EpochSeconds,
    /// Integer milliseconds since the epoch.
    EpochMillis,
    /// Integer microseconds since the epoch.
    EpochMicros,
    /// Integer nanoseconds since the epoch.
    EpochNanos,
}

impl TimeFormat {
    /// Guesses the format of a text timestamp from one sample.
    pub fn detect_text(sample: &str) -> Option<Self> {
        let s = sample.trim();
        if s.parse::<i64>().is_ok() {
            return s.parse::<i64>().ok().map(Self::detect_epoch);
        }
        if s.contains('/') {
            return Some(TimeFormat::UsDate);
        }
        if s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
            return Some(TimeFormat::IsoDate);
        }
        parse_iso(s).map(|_| TimeFormat::IsoDateTime)
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

    /// Parses one text value in this format to nanoseconds since the epoch (UTC).
    pub fn parse(self, s: &str) -> Option<i64> {
        let s = s.trim();
        match self {
            TimeFormat::IsoDateTime => parse_iso(s),
            TimeFormat::IsoDate => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(midnight),
            TimeFormat::UsDate => {
                for f in ["%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M"] {
                    if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
                        return dt.and_utc().timestamp_nanos_opt();
                    }
                }
                NaiveDate::parse_from_str(s, "%m/%d/%Y").ok().and_then(midnight)
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
            TimeFormat::EpochSeconds => "epoch seconds",
            TimeFormat::EpochMillis => "epoch milliseconds",
            TimeFormat::EpochMicros => "epoch microseconds",
            TimeFormat::EpochNanos => "epoch nanoseconds",
        }
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
