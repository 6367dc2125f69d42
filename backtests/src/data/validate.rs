//! Bar validation: the checks every loaded or generated series passes.

use std::path::Path;

use kairos_strategies::Bar;

use crate::{Error, Result};

/// Checks that timestamps strictly increase and that every price is a positive finite number
/// with `low <= open, close <= high`, and volume finite and non-negative. The error names the
/// file, the 1-based row, its time and the problem.
pub fn validate(path: &Path, bars: &[Bar]) -> Result<()> {
    let mut prev: Option<&Bar> = None;
    for (i, b) in bars.iter().enumerate() {
        let bad = |problem: String| Error::BadRow {
            path: path.to_path_buf(),
            row: i + 1,
            time: Some(b.ts.to_iso()),
            problem,
        };
        if let Some(p) = prev {
            if b.ts == p.ts {
                return Err(bad(format!("duplicate timestamp (same as row {})", i)));
            }
            if b.ts < p.ts {
                return Err(bad(format!(
                    "timestamps not sorted: earlier than row {} ({})",
                    i,
                    p.ts.to_iso()
                )));
            }
        }
        for (name, v) in [("open", b.open), ("high", b.high), ("low", b.low), ("close", b.close)] {
            if v.is_nan() {
                return Err(bad(format!("{name} is NaN")));
            }
            if !v.is_finite() || v <= 0.0 {
                return Err(bad(format!("{name} {v} is not a positive price")));
            }
        }
        if b.high < b.low {
            return Err(bad(format!("high {} is below low {}", b.high, b.low)));
        }
        for (name, v) in [("open", b.open), ("close", b.close)] {
            if v > b.high || v < b.low {
                return Err(bad(format!(
                    "{name} {v} is outside low..high ({}..{})",
                    b.low, b.high
                )));
            }
        }
        if !(b.volume.is_finite() && b.volume >= 0.0) {
            return Err(bad(format!("volume {} is not a non-negative number", b.volume)));
        }
        prev = Some(b);
    }
    Ok(())
}
