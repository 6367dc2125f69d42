//! Per-endpoint state: the circuit breaker and the latencies hedging reads.
//!
//! The breaker is closed (traffic flows) until `failures` attempts in a row fail; then open
//! (no traffic) for `open_ms`; then half-open: one request (or a health probe) goes through as
//! a trial; its success closes the circuit, its failure opens it again.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The breaker's state, as `/metrics` shows it (0 closed, 1 half-open, 2 open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Traffic flows.
    Closed,
    /// One trial is allowed.
    HalfOpen,
    /// No traffic until the time given.
    Open,
}

impl Circuit {
    /// The gauge value.
    pub fn gauge(self) -> f64 {
        match self {
            Circuit::Closed => 0.0,
            Circuit::HalfOpen => 1.0,
            Circuit::Open => 2.0,
        }
    }
}

#[derive(Debug)]
struct State {
    consecutive: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
    /// First-token (or answer) latencies of the last answers, seconds.
    recent: VecDeque<f64>,
}

/// One endpoint's health.
#[derive(Debug)]
pub struct Health {
    failures: u32,
    open_for: Duration,
    state: Mutex<State>,
}

/// How many latencies the p95 is taken over.
const WINDOW: usize = 200;

impl Health {
    /// A closed breaker.
    pub fn new(failures: u32, open_for: Duration) -> Self {
        Self {
            failures,
            open_for,
            state: Mutex::new(State {
                consecutive: 0,
                open_until: None,
                trial_in_flight: false,
                recent: VecDeque::with_capacity(WINDOW),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state now.
    pub fn circuit(&self, now: Instant) -> Circuit {
        let s = self.lock();
        match s.open_until {
            None => Circuit::Closed,
            Some(t) if now < t => Circuit::Open,
            Some(_) => Circuit::HalfOpen,
        }
    }

    /// Whether a request may go to the endpoint now; in half-open, only one at a time (the
    /// trial), and taking it marks it in flight until [`Health::success`] or
    /// [`Health::failure`].
    pub fn admit(&self, now: Instant) -> bool {
        let mut s = self.lock();
        match s.open_until {
            None => true,
            Some(t) if now < t => false,
            Some(_) if s.trial_in_flight => false,
            Some(_) => {
                s.trial_in_flight = true;
                true
            }
        }
    }

    /// An attempt (or probe) succeeded, `latency` seconds to its first token.
    pub fn success(&self, latency: Option<f64>) {
        let mut s = self.lock();
        s.consecutive = 0;
        s.open_until = None;
        s.trial_in_flight = false;
        if let Some(l) = latency {
            if s.recent.len() == WINDOW {
                s.recent.pop_front();
            }
            s.recent.push_back(l);
        }
    }

    /// An attempt (or probe) failed; returns true when this failure opened the circuit.
    pub fn failure(&self, now: Instant) -> bool {
        let mut s = self.lock();
        s.consecutive = s.consecutive.saturating_add(1);
        let half_open = s.open_until.is_some_and(|t| now >= t);
        let was_closed = s.open_until.is_none();
        s.trial_in_flight = false;
        if half_open || s.consecutive >= self.failures {
            s.open_until = Some(now + self.open_for);
            return was_closed || half_open;
        }
        false
    }

    /// A trial that ended neither way (the caller gave up): let another one through.
    pub fn release(&self) {
        self.lock().trial_in_flight = false;
    }

    /// The p95 of the recent latencies, once there are `min` of them.
    pub fn p95(&self, min: usize) -> Option<Duration> {
        let s = self.lock();
        if s.recent.len() < min.max(1) {
            return None;
        }
        let mut v: Vec<f64> = s.recent.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let i = ((v.len() as f64) * 0.95).ceil() as usize;
        Some(Duration::from_secs_f64(v[i.clamp(1, v.len()) - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_lets_one_trial_through_and_closes_on_success() {
        let h = Health::new(3, Duration::from_millis(100));
        let t0 = Instant::now();
        assert!(!h.failure(t0) && !h.failure(t0));
        assert!(h.admit(t0));
        assert!(h.failure(t0), "the third failure opens");
        assert_eq!(h.circuit(t0), Circuit::Open);
        assert!(!h.admit(t0 + Duration::from_millis(99)));
        let later = t0 + Duration::from_millis(100);
        assert_eq!(h.circuit(later), Circuit::HalfOpen);
        assert!(h.admit(later), "one trial");
        assert!(!h.admit(later), "only one trial at a time");
        assert!(h.failure(later), "a failed trial opens again");
        assert!(!h.admit(later + Duration::from_millis(50)));
        let again = later + Duration::from_millis(100);
        assert!(h.admit(again));
        h.success(Some(0.01));
        assert_eq!(h.circuit(again), Circuit::Closed);
        assert!(h.admit(again) && h.admit(again));
    }

    #[test]
    fn p95_needs_enough_samples() {
        let h = Health::new(3, Duration::from_secs(1));
        for i in 1..=100 {
            h.success(Some(i as f64 / 1000.0));
        }
        assert_eq!(h.p95(200), None);
        assert_eq!(h.p95(20), Some(Duration::from_secs_f64(0.095)));
    }
}
