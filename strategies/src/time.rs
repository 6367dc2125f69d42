//! Nanosecond UTC timestamps.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A point in time: nanoseconds since the Unix epoch, UTC.
///
/// 64-bit nanoseconds cover the years 1678 to 2262, the same range as pandas and polars
/// `Datetime[ns]`, so timestamps cross between them without conversion.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Nanoseconds in one second.
    pub const NANOS_PER_SEC: i64 = 1_000_000_000;

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(ns: i64) -> Self {
        Self(ns)
    }

    /// From whole seconds since the epoch (saturating outside the representable range).
    pub const fn from_secs(s: i64) -> Self {
        Self(s.saturating_mul(Self::NANOS_PER_SEC))
    }

    /// From milliseconds since the epoch (saturating).
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// As a chrono UTC date-time.
    pub fn to_datetime(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_nanos(self.0)
    }

    /// ISO-8601 text without a zone suffix, `2024-01-02 03:04:05` (fraction only when non-zero),
    /// the way pandas prints a naive UTC index, so reports line up with Python tools.
    pub fn to_iso(self) -> String {
        let dt = self.to_datetime();
        let sub = self.0.rem_euclid(Self::NANOS_PER_SEC);
        if sub == 0 {
            dt.format("%Y-%m-%d %H:%M:%S").to_string()
        } else if sub % 1_000 == 0 {
            dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
        } else {
            dt.format("%Y-%m-%d %H:%M:%S%.9f").to_string()
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_formats_like_pandas() {
        assert_eq!(Timestamp::from_secs(0).to_iso(), "1970-01-01 00:00:00");
        assert_eq!(Timestamp(1_500_000).to_iso(), "1970-01-01 00:00:00.001500");
        assert_eq!(Timestamp(-1).to_iso(), "1969-12-31 23:59:59.999999999");
    }
}
