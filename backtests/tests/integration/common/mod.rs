//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/data/bars`, or `None` (with a note) on a machine without the shared data.
/// In CI the data must be there: a missing folder fails the test instead of skipping it.
pub fn bars_dir() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/bars");
    if p.exists() {
        return Some(p);
    }
    assert!(std::env::var_os("CI").is_none(), "../shared/data/bars is missing in CI");
    eprintln!("skipping: ../shared/data/bars not found (not a Kairos dev machine)");
    None
}

/// `|a - b| <= rel × |b|`, with NaN equal to NaN.
pub fn close_rel(a: f64, b: f64, rel: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= rel * b.abs()
}
