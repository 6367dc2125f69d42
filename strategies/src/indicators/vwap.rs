//! Volume-weighted average price.

use std::collections::VecDeque;

use super::{Indicator, check_period};

/// Volume-weighted average price of `(price, volume)` inputs: anchored (from the first input or
/// the last [`Vwap::reset`], e.g. at a session open) or over a rolling window of bars.
/// Feed it a bar's typical price `(high + low + close) / 3` for the usual bar VWAP.
/// No value while the volume seen is zero.
#[derive(Debug, Clone)]
pub struct Vwap {
    window: Option<usize>,
    items: VecDeque<(f64, f64)>,
    pv: f64,
    vol: f64,
    value: Option<f64>,
}

impl Vwap {
    /// An anchored VWAP over everything since the start or the last reset.
    pub fn anchored() -> Self {
        Self { window: None, items: VecDeque::new(), pv: 0.0, vol: 0.0, value: None }
    }

    /// A VWAP over the last `period` inputs.
    pub fn rolling(period: usize) -> Self {
        let period = check_period("VWAP", period);
        Self {
            window: Some(period),
            items: VecDeque::with_capacity(period + 1),
            pv: 0.0,
            vol: 0.0,
            value: None,
        }
    }
}

impl Indicator for Vwap {
    type Input = (f64, f64);
    type Output = f64;

    #[inline]
    fn update(&mut self, (price, volume): (f64, f64)) -> Option<f64> {
        self.pv += price * volume;
        self.vol += volume;
        if let Some(n) = self.window {
            self.items.push_back((price, volume));
            if self.items.len() > n
                && let Some((p, v)) = self.items.pop_front()
            {
                self.pv -= p * v;
                self.vol -= v;
            }
            if self.items.len() < n {
                return None;
            }
        }
        self.value = if self.vol > 0.0 { Some(self.pv / self.vol) } else { None };
        self.value
    }

    fn value(&self) -> Option<f64> {
        self.value
    }

    fn lookback(&self) -> usize {
        self.window.map_or(0, |n| n - 1)
    }

    fn reset(&mut self) {
        self.items.clear();
        self.pv = 0.0;
        self.vol = 0.0;
        self.value = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_and_rolling() {
        let mut a = Vwap::anchored();
        a.update((10.0, 1.0));
        assert_eq!(a.update((20.0, 3.0)), Some(17.5));
        let mut r = Vwap::rolling(2);
        assert_eq!(r.update((10.0, 1.0)), None);
        assert_eq!(r.update((20.0, 1.0)), Some(15.0));
        assert_eq!(r.update((40.0, 3.0)), Some(35.0));
        assert_eq!(Vwap::anchored().update((5.0, 0.0)), None);
    }
}
