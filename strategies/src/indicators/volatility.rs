//! Volatility: rolling standard deviation, Bollinger bands and ATR.

use super::{Indicator, Sma, Window, check_period};

/// Population standard deviation of the last `period` inputs (TA-Lib's `STDDEV` with
/// `nbdev = 1`).
///
/// Sums are kept relative to a shift (the first input) so the variance does not lose its
/// digits to cancellation when prices are large and the spread is small.
#[derive(Debug, Clone)]
pub struct StdDev {
    window: Window,
    period: usize,
    shift: Option<f64>,
    s1: f64,
    s2: f64,
    value: Option<f64>,
}

impl StdDev {
    /// A standard deviation over `period` inputs (`period >= 1`).
    pub fn new(period: usize) -> Self {
        let period = check_period("StdDev", period);
        Self { window: Window::new(period), period, shift: None, s1: 0.0, s2: 0.0, value: None }
    }
}

impl Indicator for StdDev {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let k = *self.shift.get_or_insert(x);
        let d = x - k;
        self.s1 += d;
        self.s2 += d * d;
        if let Some(old) = self.window.push(x) {
            let d = old - k;
            self.s1 -= d;
            self.s2 -= d * d;
        }
        if self.window.is_full() {
            let n = self.period as f64;
            let mean = self.s1 / n;
            let var = self.s2 / n - mean * mean;
            self.value = Some(if var > 0.0 { var.sqrt() } else { 0.0 });
        }
        self.value
    }

    fn value(&self) -> Option<f64> {
        self.value
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }

    fn reset(&mut self) {
        *self = Self::new(self.period);
    }
}

/// One Bollinger reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BollingerValue {
    /// Middle band + `k_up` standard deviations.
    pub upper: f64,
    /// The simple moving average.
    pub middle: f64,
    /// Middle band − `k_down` standard deviations.
    pub lower: f64,
}

/// Bollinger bands: an SMA with bands `k` population standard deviations above and below
/// (TA-Lib's `BBANDS` with a simple moving average).
#[derive(Debug, Clone)]
pub struct Bollinger {
    sma: Sma,
    std: StdDev,
    k_up: f64,
    k_down: f64,
    value: Option<BollingerValue>,
}

impl Bollinger {
    /// Bands over `period` inputs, `k` deviations wide on both sides (the usual: 20, 2.0).
    pub fn new(period: usize, k: f64) -> Self {
        Self::asymmetric(period, k, k)
    }

    /// Bands with different widths above and below.
    pub fn asymmetric(period: usize, k_up: f64, k_down: f64) -> Self {
        Self { sma: Sma::new(period), std: StdDev::new(period), k_up, k_down, value: None }
    }
}

impl Indicator for Bollinger {
    type Input = f64;
    type Output = BollingerValue;

    #[inline]
    fn update(&mut self, x: f64) -> Option<BollingerValue> {
        let m = self.sma.update(x);
        let s = self.std.update(x);
        if let (Some(middle), Some(sd)) = (m, s) {
            self.value = Some(BollingerValue {
                upper: middle + self.k_up * sd,
                middle,
                lower: middle - self.k_down * sd,
            });
        }
        self.value
    }

    fn value(&self) -> Option<BollingerValue> {
        self.value
    }

    fn lookback(&self) -> usize {
        self.sma.lookback()
    }

    fn reset(&mut self) {
        self.sma.reset();
        self.std.reset();
        self.value = None;
    }
}

/// Average True Range with Wilder's smoothing (TA-Lib's `ATR`): the true range needs the
/// previous close, the first ATR is the simple average of the first `period` true ranges.
/// Input: `(high, low, close)`.
#[derive(Debug, Clone)]
pub struct Atr {
    period: usize,
    prev_close: Option<f64>,
    ranges: usize,
    sum: f64,
    value: Option<f64>,
}

impl Atr {
    /// An ATR over `period` bars (`period >= 1`; the usual is 14).
    pub fn new(period: usize) -> Self {
        let period = check_period("ATR", period);
        Self { period, prev_close: None, ranges: 0, sum: 0.0, value: None }
    }

    /// The true range of a bar given the previous close.
    pub fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
        let mut tr = high - low;
        let up = (prev_close - high).abs();
        if up > tr {
            tr = up;
        }
        let down = (prev_close - low).abs();
        if down > tr {
            tr = down;
        }
        tr
    }
}

impl Indicator for Atr {
    type Input = (f64, f64, f64);
    type Output = f64;

    #[inline]
    fn update(&mut self, (high, low, close): (f64, f64, f64)) -> Option<f64> {
        let pc = self.prev_close.replace(close)?;
        let tr = Self::true_range(high, low, pc);
        let n = self.period as f64;
        match self.value {
            Some(prev) => self.value = Some((prev * (n - 1.0) + tr) / n),
            None => {
                self.sum += tr;
                self.ranges += 1;
                if self.ranges == self.period {
                    self.value = Some(self.sum / n);
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stddev_of_known_window() {
        let mut s = StdDev::new(4);
        let out: Vec<_> = [2.0, 4.0, 4.0, 4.0, 5.0].iter().map(|&x| s.update(x)).collect();
        // population std of [2,4,4,4] = sqrt(0.75); of [4,4,4,5] = sqrt(0.1875)
        assert!((out[3].unwrap_or(f64::NAN) - 0.75f64.sqrt()).abs() < 1e-15);
        assert!((out[4].unwrap_or(f64::NAN) - 0.1875f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn true_range_uses_gaps() {
        assert_eq!(Atr::true_range(10.0, 9.0, 12.0), 3.0);
        assert_eq!(Atr::true_range(10.0, 9.0, 9.5), 1.0);
    }
}
