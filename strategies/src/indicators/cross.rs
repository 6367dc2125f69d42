//! Crossover detection.

/// Whether series `a` crossed above `b` between the previous and the current reading:
/// `prev_a < prev_b && a > b` (backtesting.py's `crossover`; touching is not crossing).
#[inline]
pub fn crossed_above(prev_a: f64, prev_b: f64, a: f64, b: f64) -> bool {
    prev_a < prev_b && a > b
}

/// Whether `a` crossed below `b`: `prev_a > prev_b && a < b`.
#[inline]
pub fn crossed_below(prev_a: f64, prev_b: f64, a: f64, b: f64) -> bool {
    prev_a > prev_b && a < b
}

/// A crossing of two series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossEvent {
    /// `a` crossed above `b` (a golden cross when `a` is the fast average).
    Above,
    /// `a` crossed below `b` (a death cross).
    Below,
}

/// Remembers the previous pair of readings and reports crossings.
#[derive(Debug, Clone, Copy)]
pub struct Cross {
    prev_a: f64,
    prev_b: f64,
}

impl Default for Cross {
    fn default() -> Self {
        // NaN compares false both ways, so the first reading never reports a crossing.
        Self { prev_a: f64::NAN, prev_b: f64::NAN }
    }
}

impl Cross {
    /// A detector with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the current readings of `a` and `b`.
    #[inline]
    pub fn update(&mut self, a: f64, b: f64) -> Option<CrossEvent> {
        let (pa, pb) = (self.prev_a, self.prev_b);
        self.prev_a = a;
        self.prev_b = b;
        if crossed_above(pa, pb, a, b) {
            Some(CrossEvent::Above)
        } else if crossed_below(pa, pb, a, b) {
            Some(CrossEvent::Below)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_is_not_crossing() {
        let mut c = Cross::new();
        assert_eq!(c.update(1.0, 2.0), None);
        assert_eq!(c.update(2.0, 2.0), None);
        assert_eq!(c.update(3.0, 2.0), None);
        assert_eq!(c.update(1.0, 2.0), Some(CrossEvent::Below));
        assert_eq!(c.update(3.0, 2.0), Some(CrossEvent::Above));
    }
}
