//! Fault injection for crash tests, compiled in only with the `test-hooks` feature.
//!
//! With it, `KAIROS_TEST_HALT_AT=POINT[:N]` stops the process the Nth time (default: the
//! first) it reaches `POINT`: it prints `kairos-test-hook: halted at POINT` on stderr and
//! sleeps until killed, so a test can SIGKILL it exactly there. The points are `signed` (the
//! signed bytes are journalled, not yet broadcast), `broadcast` (broadcast, journalled and
//! announced, no receipt looked for yet) and `receipt` (a receipt seen, confirmations not yet counted).
//! Without the feature, [`halt_at`] compiles to nothing.

/// Stops here if the test asked for it (see the module comment).
#[cfg(feature = "test-hooks")]
pub fn halt_at(point: &str) {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::sync::Mutex;
    static SEEN: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());
    let Ok(spec) = std::env::var("KAIROS_TEST_HALT_AT") else { return };
    let (name, nth) = match spec.split_once(':') {
        Some((n, k)) => (n.to_string(), k.parse().unwrap_or(1)),
        None => (spec, 1),
    };
    if name != point {
        return;
    }
    let count = {
        let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
        let c = seen.entry(name).or_default();
        *c += 1;
        *c
    };
    if count == nth {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "kairos-test-hook: halted at {point}");
        let _ = err.flush();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Compiled out: the `test-hooks` feature is off.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn halt_at(_point: &str) {}
