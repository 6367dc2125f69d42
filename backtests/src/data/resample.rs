//! Resampling bars to a coarser interval.

use kairos_strategies::{Bar, Timestamp};

use super::BarSeries;
use crate::{Error, Result};

/// Parses an interval such as `30s`, `1m`, `5m`, `1h`, `4h`, `1d`, `1w` into nanoseconds.
pub fn parse_interval(s: &str) -> Result<i64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        Error::Spec(format!(
            "interval `{s}`: expected a number and a unit s, m, h, d or w (like 5m or 1h)"
        ))
    };
    let too_long = || Error::Spec(format!("interval `{s}` is too long (at most 292 years)"));
    let n: i64 = match num.parse() {
        Ok(n) => n,
        Err(e) if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) => {
            return Err(too_long());
        }
        Err(_) => return Err(bad()),
    };
    let unit_ns: i64 = match unit {
        "s" | "sec" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" | "hour" => 3_600_000_000_000,
        "d" | "day" => 86_400_000_000_000,
        "w" | "week" => 7 * 86_400_000_000_000,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    n.checked_mul(unit_ns).ok_or_else(too_long)
}

const DAY: i64 = 86_400_000_000_000;
const WEEK: i64 = 7 * DAY;

/// Aggregates bars into buckets of `interval` nanoseconds aligned to the Unix epoch (UTC
/// midnight for days; weeks start on Monday, 00:00 UTC): open of the first bar, highest high,
/// lowest low, close of the last bar, summed volume; each new bar is labelled with its
/// bucket's start. Asking for an interval
/// finer than the data is an error.
pub fn resample(series: &BarSeries, interval: i64) -> Result<BarSeries> {
    let source = series.interval();
    if interval <= 0 || (source > 0 && interval < source) {
        return Err(Error::Spec(format!(
            "cannot resample {} to a finer interval ({} s < {} s)",
            series.source,
            interval as f64 / 1e9,
            source as f64 / 1e9
        )));
    }
    let mut out: Vec<Bar> =
        Vec::with_capacity(series.len() / (interval / source.max(1)).max(1) as usize + 1);
    // Weeks start on Monday (pandas' `W-MON` labels, and the weeks the statistics end on
    // Sunday): the epoch fell on a Thursday, four days after one.
    let offset = if interval % WEEK == 0 { 4 * DAY } else { 0 };
    for b in &series.bars {
        let bucket = Timestamp((b.ts.0 - offset).div_euclid(interval) * interval + offset);
        match out.last_mut() {
            Some(cur) if cur.ts == bucket => {
                cur.high = cur.high.max(b.high);
                cur.low = cur.low.min(b.low);
                cur.close = b.close;
                cur.volume += b.volume;
            }
            _ => out.push(Bar { ts: bucket, ..*b }),
        }
    }
    Ok(BarSeries { bars: out, ..series.clone_empty() })
}

impl BarSeries {
    fn clone_empty(&self) -> BarSeries {
        BarSeries {
            instrument: self.instrument.clone(),
            bars: Vec::new(),
            source: self.source.clone(),
            simulated: self.simulated,
            time_format: self.time_format,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_strategies::{Instrument, InstrumentId};

    fn bar(min: i64, o: f64, h: f64, l: f64, c: f64, v: f64) -> Bar {
        Bar {
            instrument: InstrumentId(0),
            ts: Timestamp(min * 60_000_000_000),
            open: o,
            high: h,
            low: l,
            close: c,
            volume: v,
        }
    }

    #[test]
    fn one_minute_to_five() {
        let s = BarSeries {
            instrument: Instrument::new("X", "t"),
            bars: (0..7)
                .map(|i| {
                    bar(
                        i,
                        10.0 + i as f64,
                        20.0 + i as f64,
                        5.0 - i as f64 * 0.1,
                        11.0 + i as f64,
                        1.0,
                    )
                })
                .collect(),
            source: "t".into(),
            simulated: false,
            time_format: None,
        };
        let r = resample(&s, parse_interval("5m").unwrap()).unwrap();
        assert_eq!(r.bars.len(), 2);
        assert_eq!(r.bars[0], bar(0, 10.0, 24.0, 4.6, 15.0, 5.0));
        assert_eq!(r.bars[1].ts, Timestamp(5 * 60_000_000_000));
        assert_eq!(r.bars[1].volume, 2.0);
        assert!(
            resample(&r, parse_interval("1m").unwrap()).unwrap_err().to_string().contains("finer")
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        // Daily bars from Thursday 2024-01-04 to Wednesday 2024-01-17.
        let day0 = 1_704_326_400_000_000_000 / 60_000_000_000;
        let s = BarSeries {
            instrument: Instrument::new("X", "t"),
            bars: (0..14).map(|d| bar(day0 + d * 1440, 10.0, 11.0, 9.0, 10.0, 1.0)).collect(),
            source: "t".into(),
            simulated: false,
            time_format: None,
        };
        let r = resample(&s, parse_interval("1w").unwrap()).unwrap();
        let starts: Vec<String> = r.bars.iter().map(|b| b.ts.to_iso()).collect();
        // Thursday..Sunday, Monday..Sunday, Monday..Wednesday.
        assert_eq!(starts, ["2024-01-01 00:00:00", "2024-01-08 00:00:00", "2024-01-15 00:00:00"]);
        assert_eq!(r.bars.iter().map(|b| b.volume).collect::<Vec<_>>(), [4.0, 7.0, 3.0]);
    }

    #[test]
    fn interval_parsing() {
        assert_eq!(parse_interval("1h").unwrap(), 3_600_000_000_000);
        assert_eq!(parse_interval("1d").unwrap(), 86_400_000_000_000);
        for bad in ["", "h", "5x", "0m", "-1m"] {
            let e = parse_interval(bad).unwrap_err().to_string();
            assert!(e.contains("expected a number and a unit"), "{bad}: {e}");
        }
        for long in ["99999999999w", "1000000000000000000000s"] {
            let e = parse_interval(long).unwrap_err().to_string();
            assert!(e.contains("too long"), "{long}: {e}");
        }
    }
}
