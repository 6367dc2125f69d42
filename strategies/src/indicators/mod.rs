//! Streaming technical indicators, O(1) per update.
//!
//! Each indicator takes one input at a time and returns its value once warmed up. The
//! definitions are TA-Lib's (seeding, Wilder smoothing, population standard deviation), and a
//! test holds reference values recorded from TA-Lib on real market data; [`Sma`] additionally
//! sums like pandas' `rolling().mean()` (Kahan-compensated), so crossovers of moving averages
//! decide exactly as they do in pandas-based tools.
//!
//! ```
//! use kairos_strategies::indicators::{Indicator, Sma};
//! let mut sma = Sma::new(3);
//! assert_eq!(sma.update(1.0), None);
//! assert_eq!(sma.update(2.0), None);
//! assert_eq!(sma.update(3.0), Some(2.0));
//! assert_eq!(sma.update(4.0), Some(3.0));
//! ```

mod cross;
mod momentum;
mod moving;
mod volatility;
mod vwap;

pub use cross::{Cross, CrossEvent, crossed_above, crossed_below};
pub use momentum::{Macd, MacdValue, Rsi};
pub use moving::{Ema, Sma, SmaPair, Wma};
pub use volatility::{Atr, Bollinger, BollingerValue, StdDev};
pub use vwap::Vwap;

/// A streaming indicator.
pub trait Indicator {
    /// What one update takes (a price, or a bar's high/low/close).
    type Input;
    /// What it yields.
    type Output: Copy;

    /// Feeds one input; returns the new value once the indicator is warmed up.
    fn update(&mut self, input: Self::Input) -> Option<Self::Output>;

    /// The latest value, if warmed up.
    fn value(&self) -> Option<Self::Output>;

    /// TA-Lib's lookback: how many inputs come before the first value.
    fn lookback(&self) -> usize;

    /// Forgets all inputs.
    fn reset(&mut self);

    /// Whether a value is available.
    fn is_ready(&self) -> bool {
        self.value().is_some()
    }
}

/// A ring of the last `n` inputs. The buffer is a power of two long so the hot path indexes
/// with a mask instead of wrapping with a compare.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    buf: Box<[f64]>,
    mask: usize,
    n: usize,
    /// Inputs pushed so far.
    pushed: usize,
}

impl Window {
    pub(crate) fn new(n: usize) -> Self {
        let n = n.max(1);
        let cap = (n + 1).next_power_of_two();
        Self { buf: vec![0.0; cap].into_boxed_slice(), mask: cap - 1, n, pushed: 0 }
    }

    /// The slot of the `i`-th input ever pushed.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn slot(&mut self, i: usize) -> &mut f64 {
        let j = i & self.mask;
        debug_assert!(j < self.buf.len());
        // SAFETY: `buf.len()` is a power of two and `mask == buf.len() - 1`, both fixed in
        // `new` and never changed, so `i & mask < buf.len()` for every `i`. This is the
        // innermost loop of every moving average; the bounds check costs more than the work.
        unsafe { self.buf.get_unchecked_mut(j) }
    }

    /// Pushes `x`; returns the value that fell out once the window is full.
    #[inline(always)]
    pub(crate) fn push(&mut self, x: f64) -> Option<f64> {
        let i = self.pushed;
        *self.slot(i) = x;
        self.pushed = i + 1;
        if i >= self.n { Some(*self.slot(i - self.n)) } else { None }
    }

    /// The newest `k` values (at most the window), oldest first.
    pub(crate) fn last(&self, k: usize) -> impl Iterator<Item = f64> + '_ {
        let start = self.pushed.saturating_sub(k.min(self.n));
        (start..self.pushed).map(move |i| self.buf[i & self.mask])
    }

    /// Pushes `x` and returns what fell out of the trailing `k <= n` inputs and out of the
    /// whole window, for two averages sharing one window.
    #[inline(always)]
    pub(crate) fn push2(&mut self, x: f64, k: usize) -> (Option<f64>, Option<f64>) {
        debug_assert!(k <= self.n);
        let i = self.pushed;
        let inner = if i >= k { Some(*self.slot(i - k)) } else { None };
        (inner, self.push(x))
    }

    /// [`Window::push2`] on a full window, where a value always leaves both: `[inner, outer]`.
    #[inline(always)]
    pub(crate) fn push2_full(&mut self, x: f64, k: usize) -> [f64; 2] {
        debug_assert!(k <= self.n && self.is_full());
        let i = self.pushed;
        let out = [*self.slot(i - k), *self.slot(i - self.n)];
        *self.slot(i) = x;
        self.pushed = i + 1;
        out
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.pushed.min(self.n)
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.pushed >= self.n
    }
}

/// Panics with a clear message on a zero period: a period is a programming constant or a
/// parameter validated by the registry before it gets here.
pub(crate) fn check_period(name: &str, period: usize) -> usize {
    assert!(period > 0, "{name} period must be at least 1");
    period
}
