//! Moving averages: simple, exponential and weighted.

use super::{Indicator, Window, check_period};

/// Simple moving average of the last `period` inputs.
///
/// The running sum is Kahan-compensated with separate compensations for values entering and
/// leaving the window, and a run of identical inputs yields that input exactly: the algorithm
/// of pandas' `rolling(period).mean()`, reproduced bit for bit, so a crossover of two SMAs
/// flips on the same bar here as in pandas-based backtesters.
#[derive(Debug, Clone)]
pub struct Sma {
    window: Window,
    period: usize,
    sum: f64,
    comp_add: f64,
    comp_remove: f64,
    negatives: usize,
    same_run: usize,
    prev: f64,
    value: Option<f64>,
}

impl Sma {
    /// An SMA over `period` inputs (`period >= 1`).
    pub fn new(period: usize) -> Self {
        let period = check_period("SMA", period);
        Self {
            window: Window::new(period),
            period,
            sum: 0.0,
            comp_add: 0.0,
            comp_remove: 0.0,
            negatives: 0,
            same_run: 0,
            prev: f64::NAN,
            value: None,
        }
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }
}

impl Indicator for Sma {
    type Input = f64;
    type Output = f64;

    #[inline(always)]
    fn update(&mut self, x: f64) -> Option<f64> {
        // Branch-free bookkeeping: this runs on every bar of every SMA strategy.
        if let Some(old) = self.window.push(x) {
            let y = -old - self.comp_remove;
            let t = self.sum + y;
            self.comp_remove = t - self.sum - y;
            self.sum = t;
            self.negatives -= usize::from(old < 0.0);
        }
        let y = x - self.comp_add;
        let t = self.sum + y;
        self.comp_add = t - self.sum - y;
        self.sum = t;
        self.negatives += usize::from(x < 0.0);
        self.same_run = if x == self.prev { self.same_run + 1 } else { 1 };
        self.prev = x;
        if !self.window.is_full() {
            return None;
        }
        let n = self.period;
        let mean = self.sum / n as f64;
        let mean = if self.same_run >= n {
            self.prev
        } else if (self.negatives == 0 && mean < 0.0) || (self.negatives == n && mean > 0.0) {
            0.0
        } else {
            mean
        };
        self.value = Some(mean);
        self.value
    }

    #[inline]
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

/// Exponential moving average with `k = 2 / (period + 1)`, seeded with the simple average of
/// the first `period` inputs (TA-Lib's default).
#[derive(Debug, Clone)]
pub struct Ema {
    period: usize,
    k: f64,
    seen: usize,
    seed_sum: f64,
    value: Option<f64>,
}

impl Ema {
    /// An EMA over `period` inputs (`period >= 1`).
    pub fn new(period: usize) -> Self {
        let period = check_period("EMA", period);
        Self { period, k: 2.0 / (period as f64 + 1.0), seen: 0, seed_sum: 0.0, value: None }
    }

    /// The smoothing factor `k`.
    pub fn alpha(&self) -> f64 {
        self.k
    }
}

impl Indicator for Ema {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        match self.value {
            Some(prev) => self.value = Some((x - prev) * self.k + prev),
            None => {
                self.seed_sum += x;
                self.seen += 1;
                if self.seen == self.period {
                    self.value = Some(self.seed_sum / self.period as f64);
                }
            }
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

/// Linearly weighted moving average: the newest input weighs `period`, the oldest 1.
#[derive(Debug, Clone)]
pub struct Wma {
    window: Window,
    period: usize,
    /// Σ of the inputs in the window.
    sum: f64,
    /// Σ of weight × input.
    weighted: f64,
    value: Option<f64>,
}

impl Wma {
    /// A WMA over `period` inputs (`period >= 1`).
    pub fn new(period: usize) -> Self {
        let period = check_period("WMA", period);
        Self { window: Window::new(period), period, sum: 0.0, weighted: 0.0, value: None }
    }
}

impl Indicator for Wma {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let n = self.period as f64;
        match self.window.push(x) {
            // Shifting every weight down by one subtracts the old window sum.
            Some(old) => {
                self.weighted += n * x - self.sum;
                self.sum += x - old;
            }
            None => {
                self.sum += x;
                self.weighted += x * self.window.len() as f64;
            }
        }
        if self.window.is_full() {
            self.value = Some(self.weighted / (n * (n + 1.0) / 2.0));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run<I: Indicator<Input = f64, Output = f64>>(mut ind: I, xs: &[f64]) -> Vec<Option<f64>> {
        xs.iter().map(|&x| ind.update(x)).collect()
    }

    #[test]
    fn sma_small() {
        assert_eq!(run(Sma::new(2), &[1.0, 3.0, 5.0]), vec![None, Some(2.0), Some(4.0)]);
    }

    #[test]
    fn sma_constant_run_is_exact() {
        let out = run(Sma::new(3), &[0.1, 0.7, 0.3, 0.3, 0.3]);
        assert_eq!(out[4], Some(0.3));
    }

    #[test]
    fn ema_seeds_with_sma() {
        let out = run(Ema::new(3), &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(out[2], Some(2.0));
        assert_eq!(out[3], Some(3.0));
    }

    #[test]
    fn wma_weights_newest_most() {
        let out = run(Wma::new(3), &[1.0, 2.0, 3.0, 6.0]);
        assert_eq!(out[2], Some((1.0 + 4.0 + 9.0) / 6.0));
        assert_eq!(out[3], Some((2.0 + 6.0 + 18.0) / 6.0));
    }
}
