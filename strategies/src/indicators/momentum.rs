//! Momentum: RSI (Wilder) and MACD.

use super::{Ema, Indicator, check_period};

/// TA-Lib treats |x| below 1e-8 as zero in its ratio guards.
const TA_ZERO: f64 = 1e-8;

/// Relative Strength Index with Wilder's smoothing, TA-Lib's definition: the first average gain
/// and loss are simple averages of the first `period` changes, later ones
/// `(prev × (period − 1) + change) / period`; the output is `100 × gain / (gain + loss)`, and 0
/// when the market did not move at all.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: usize,
    prev_input: Option<f64>,
    changes: usize,
    gain: f64,
    loss: f64,
    value: Option<f64>,
}

impl Rsi {
    /// An RSI over `period` changes (`period >= 1`).
    pub fn new(period: usize) -> Self {
        let period = check_period("RSI", period);
        Self { period, prev_input: None, changes: 0, gain: 0.0, loss: 0.0, value: None }
    }

    /// Wilder-smoothed average gain and loss (both 0 while the input has not moved), once
    /// warmed up.
    pub fn averages(&self) -> Option<(f64, f64)> {
        self.value.map(|_| (self.gain, self.loss))
    }

    fn ratio(&self) -> f64 {
        let total = self.gain + self.loss;
        if total.abs() < TA_ZERO { 0.0 } else { 100.0 * (self.gain / total) }
    }
}

impl Indicator for Rsi {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let prev = self.prev_input.replace(x)?;
        let change = x - prev;
        let n = self.period as f64;
        self.changes += 1;
        if self.changes <= self.period {
            if change < 0.0 {
                self.loss -= change;
            } else {
                self.gain += change;
            }
            if self.changes == self.period {
                self.loss /= n;
                self.gain /= n;
                self.value = Some(self.ratio());
            }
        } else {
            self.loss *= n - 1.0;
            self.gain *= n - 1.0;
            if change < 0.0 {
                self.loss -= change;
            } else {
                self.gain += change;
            }
            self.loss /= n;
            self.gain /= n;
            self.value = Some(self.ratio());
        }
        self.value
    }

    fn value(&self) -> Option<f64> {
        self.value
    }

    fn lookback(&self) -> usize {
        self.period
    }

    fn reset(&mut self) {
        *self = Self::new(self.period);
    }
}

/// One MACD reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdValue {
    /// Fast EMA − slow EMA.
    pub macd: f64,
    /// EMA of the MACD line.
    pub signal: f64,
    /// `macd − signal`.
    pub histogram: f64,
}

/// Moving Average Convergence/Divergence, TA-Lib's definition: the fast EMA is seeded on the
/// `fast` inputs that end where the slow EMA's seed ends (so both start on the same bar), and
/// the signal EMA is seeded with the simple average of the first `signal` MACD values.
#[derive(Debug, Clone)]
pub struct Macd {
    fast_period: usize,
    slow_period: usize,
    signal_period: usize,
    seen: usize,
    fast: Ema,
    slow: Ema,
    signal: Ema,
    line: Option<f64>,
    value: Option<MacdValue>,
}

impl Macd {
    /// MACD with the given periods; the usual ones are 12, 26, 9. If `fast > slow` they are
    /// swapped, as TA-Lib does.
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        let (fast, slow) = if fast > slow { (slow, fast) } else { (fast, slow) };
        check_period("MACD fast", fast);
        check_period("MACD signal", signal);
        Self {
            fast_period: fast,
            slow_period: slow,
            signal_period: signal,
            seen: 0,
            fast: Ema::new(fast),
            slow: Ema::new(slow),
            signal: Ema::new(signal),
            line: None,
            value: None,
        }
    }

    /// The MACD line alone, available `signal − 1` bars before the full reading.
    pub fn line(&self) -> Option<f64> {
        self.line
    }
}

impl Indicator for Macd {
    type Input = f64;
    type Output = MacdValue;

    #[inline]
    fn update(&mut self, x: f64) -> Option<MacdValue> {
        self.seen += 1;
        let slow = self.slow.update(x);
        let fast = if self.seen > self.slow_period - self.fast_period {
            self.fast.update(x)
        } else {
            None
        };
        if let (Some(f), Some(s)) = (fast, slow) {
            let macd = f - s;
            self.line = Some(macd);
            if let Some(signal) = self.signal.update(macd) {
                self.value = Some(MacdValue { macd, signal, histogram: macd - signal });
            }
        }
        self.value
    }

    fn value(&self) -> Option<MacdValue> {
        self.value
    }

    fn lookback(&self) -> usize {
        self.slow_period - 1 + self.signal_period - 1
    }

    fn reset(&mut self) {
        *self = Self::new(self.fast_period, self.slow_period, self.signal_period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsi_all_gains_is_100_and_flat_is_0() {
        let mut r = Rsi::new(3);
        let out: Vec<_> = [1.0, 2.0, 3.0, 4.0, 5.0].iter().map(|&x| r.update(x)).collect();
        assert_eq!(out[2], None);
        assert_eq!(out[3], Some(100.0));
        let mut r = Rsi::new(2);
        let out: Vec<_> = [1.0, 1.0, 1.0].iter().map(|&x| r.update(x)).collect();
        assert_eq!(out[2], Some(0.0));
    }

    #[test]
    fn macd_lookback_matches_first_value() {
        let mut m = Macd::new(12, 26, 9);
        let first = (0..100).position(|i| m.update(100.0 + (i as f64).sin()).is_some());
        assert_eq!(first, Some(m.lookback()));
    }
}
