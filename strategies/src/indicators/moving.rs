//! Moving averages: simple, exponential and weighted.

use super::{Indicator, Window, check_period};

/// pandas' rolling-mean accumulator: a Kahan-compensated running sum with separate
/// compensations for values entering and leaving the window (`pandas/_libs/window/
/// aggregations.pyx`, `add_mean` / `remove_mean` / `calc_mean`).
#[derive(Debug, Clone)]
struct PandasMean {
    period: usize,
    divisor: f64,
    sum: f64,
    comp_add: f64,
    comp_remove: f64,
}

impl PandasMean {
    fn new(period: usize) -> Self {
        Self { period, divisor: period as f64, sum: 0.0, comp_add: 0.0, comp_remove: 0.0 }
    }

    #[inline(always)]
    fn remove(&mut self, old: f64) {
        kahan_add(&mut self.sum, &mut self.comp_remove, -old);
    }

    #[inline(always)]
    fn add(&mut self, x: f64) {
        kahan_add(&mut self.sum, &mut self.comp_add, x);
    }

    /// The mean of a full window whose newest input is `x`; `run` counts how many of the
    /// newest inputs equal `x`.
    #[inline(always)]
    fn mean(&self, x: f64, run: usize, window: &Window) -> f64 {
        finish_mean(self.period, self.sum / self.divisor, x, run, window)
    }
}

/// One step of pandas' compensated sum (`add_mean`, and `remove_mean` with `x` negated): adds
/// `x` to `sum`, carrying the rounding error in `comp`.
#[inline(always)]
fn kahan_add(sum: &mut f64, comp: &mut f64, x: f64) {
    let y = x - *comp;
    let t = *sum + y;
    *comp = t - *sum - y;
    *sum = t;
}

/// pandas' `calc_mean` for a full window of `period` inputs whose running sum divided by the
/// count is `mean`, whose newest input is `x`, and whose newest `run` inputs equal `x`.
#[inline(always)]
fn finish_mean(period: usize, mean: f64, x: f64, run: usize, window: &Window) -> f64 {
    if is_common(period, mean, x, run) { mean } else { finish_rare(period, mean, x, run, window) }
}

/// Whether the mean is the quotient itself: no run of equal inputs covers the window, and a
/// positive mean of a positive newest input (every price) has no sign to correct. The test
/// reads the quotient whatever the run, so the divisions happen before any branch.
#[inline(always)]
fn is_common(period: usize, mean: f64, x: f64, run: usize) -> bool {
    !((mean <= 0.0) | (x < 0.0) | (run >= period))
}

#[cold]
#[inline(never)]
fn finish_rare(period: usize, mean: f64, x: f64, run: usize, window: &Window) -> f64 {
    if run >= period {
        // pandas returns a window of equal inputs exactly.
        x
    } else {
        // pandas zeroes a mean whose sign contradicts every input (rounding noise). That
        // needs all inputs on one side, the newest included.
        sign_checked(period, mean, x, window)
    }
}

fn sign_checked(period: usize, mean: f64, x: f64, window: &Window) -> f64 {
    if !((mean < 0.0 && x >= 0.0) || (mean > 0.0 && x < 0.0)) {
        return mean;
    }
    let negatives = window.last(period).filter(|v| *v < 0.0).count();
    if (negatives == 0 && mean < 0.0) || (negatives == period && mean > 0.0) { 0.0 } else { mean }
}

/// Two [`PandasMean`]s side by side (lane 0 the fast average, lane 1 the slow one): the same
/// arithmetic lane by lane, laid out as arrays so that the compiler does both lanes in one
/// SIMD instruction (one division instead of two, which is what bounds the pair's speed).
/// IEEE arithmetic rounds each lane on its own, so the bits are those of two `PandasMean`s.
#[derive(Debug, Clone, Copy)]
struct PandasMeanPair {
    period: [usize; 2],
    /// The shorter period (a run of equal inputs that reaches it needs the exact path).
    min_period: usize,
    divisor: [f64; 2],
    sum: [f64; 2],
    comp_add: [f64; 2],
    comp_remove: [f64; 2],
}

impl PandasMeanPair {
    fn new(fast: usize, slow: usize) -> Self {
        Self {
            period: [fast, slow],
            min_period: fast.min(slow),
            divisor: [fast as f64, slow as f64],
            sum: [0.0; 2],
            comp_add: [0.0; 2],
            comp_remove: [0.0; 2],
        }
    }

    /// [`PandasMean::remove`] of `old[k]` from each lane `k`.
    #[inline(always)]
    fn remove(&mut self, old: [f64; 2]) {
        for (k, old) in old.into_iter().enumerate() {
            self.remove_lane(k, old);
        }
    }

    /// [`PandasMean::remove`] on lane `k` only (while the windows warm up).
    #[inline(always)]
    fn remove_lane(&mut self, k: usize, old: f64) {
        kahan_add(&mut self.sum[k], &mut self.comp_remove[k], -old);
    }

    /// [`PandasMean::add`] of `x` to both lanes.
    #[inline(always)]
    fn add(&mut self, x: f64) {
        for k in 0..2 {
            kahan_add(&mut self.sum[k], &mut self.comp_add[k], x);
        }
    }

    /// [`PandasMean::mean`] of both lanes.
    #[inline(always)]
    fn means(&self, x: f64, run: usize, window: &Window) -> (f64, f64) {
        let q = [self.sum[0] / self.divisor[0], self.sum[1] / self.divisor[1]];
        // `is_common` of both lanes at once: `f64::min` returns the other operand when one is
        // NaN, so `!(min <= 0)` is exactly `!(q0 <= 0) & !(q1 <= 0)`, NaNs included.
        if !((q[0] <= 0.0) | (q[1] <= 0.0) | (x < 0.0) | (run >= self.min_period)) {
            (q[0], q[1])
        } else {
            (
                finish_mean(self.period[0], q[0], x, run, window),
                finish_mean(self.period[1], q[1], x, run, window),
            )
        }
    }
}

/// Counts how many of the newest inputs are equal (pandas returns such a window's value
/// exactly).
#[derive(Debug, Clone)]
struct Run {
    len: usize,
    prev: f64,
}

impl Run {
    fn new() -> Self {
        Self { len: 0, prev: f64::NAN }
    }

    #[inline(always)]
    fn push(&mut self, x: f64) -> usize {
        self.len = if x == self.prev { self.len + 1 } else { 1 };
        self.prev = x;
        self.len
    }
}

/// Simple moving average of the last `period` inputs.
///
/// The running sum is Kahan-compensated with separate compensations for values entering and
/// leaving the window, and a run of identical inputs yields that input exactly: the algorithm
/// of pandas' `rolling(period).mean()`, reproduced bit for bit, so a crossover of two SMAs
/// flips on the same bar here as in pandas-based backtesters.
#[derive(Debug, Clone)]
pub struct Sma {
    window: Window,
    acc: PandasMean,
    run: Run,
    value: Option<f64>,
}

impl Sma {
    /// An SMA over `period` inputs (`period >= 1`).
    pub fn new(period: usize) -> Self {
        let period = check_period("SMA", period);
        Self {
            window: Window::new(period),
            acc: PandasMean::new(period),
            run: Run::new(),
            value: None,
        }
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.acc.period
    }
}

impl Indicator for Sma {
    type Input = f64;
    type Output = f64;

    #[inline(always)]
    fn update(&mut self, x: f64) -> Option<f64> {
        if let Some(old) = self.window.push(x) {
            self.acc.remove(old);
        }
        self.acc.add(x);
        let run = self.run.push(x);
        if !self.window.is_full() {
            return None;
        }
        self.value = Some(self.acc.mean(x, run, &self.window));
        self.value
    }

    #[inline]
    fn value(&self) -> Option<f64> {
        self.value
    }

    fn lookback(&self) -> usize {
        self.acc.period - 1
    }

    fn reset(&mut self) {
        *self = Self::new(self.acc.period);
    }
}

/// Two simple moving averages of one series (a fast and a slow one, as crossover strategies
/// use), sharing one window of inputs: each value is bit-identical to a separate [`Sma`], at
/// a little more than the cost of one.
#[derive(Debug, Clone)]
pub struct SmaPair {
    window: Window,
    means: PandasMeanPair,
    run: Run,
    value: Option<(f64, f64)>,
}

impl SmaPair {
    /// SMA(`fast`) and SMA(`slow`) with `1 <= fast <= slow`.
    pub fn new(fast: usize, slow: usize) -> Self {
        let fast = check_period("SMA fast", fast);
        let slow = check_period("SMA slow", slow);
        assert!(fast <= slow, "SmaPair needs fast ({fast}) <= slow ({slow})");
        Self {
            window: Window::new(slow),
            means: PandasMeanPair::new(fast, slow),
            run: Run::new(),
            value: None,
        }
    }
}

impl Indicator for SmaPair {
    type Input = f64;
    /// `(fast, slow)`.
    type Output = (f64, f64);

    #[inline(always)]
    fn update(&mut self, x: f64) -> Option<(f64, f64)> {
        let [fast, _] = self.means.period;
        if self.window.is_full() {
            // Both windows full: a value leaves each (the one leaving the fast window is still
            // inside the slow one).
            let old = self.window.push2_full(x, fast);
            self.means.remove(old);
        } else {
            let (fast_old, slow_old) = self.window.push2(x, fast);
            if let Some(old) = fast_old {
                self.means.remove_lane(0, old);
            }
            if let Some(old) = slow_old {
                self.means.remove_lane(1, old);
            }
        }
        self.means.add(x);
        let run = self.run.push(x);
        if !self.window.is_full() {
            return None;
        }
        self.value = Some(self.means.means(x, run, &self.window));
        self.value
    }

    #[inline]
    fn value(&self) -> Option<(f64, f64)> {
        self.value
    }

    fn lookback(&self) -> usize {
        self.means.period[1] - 1
    }

    fn reset(&mut self) {
        *self = Self::new(self.means.period[0], self.means.period[1]);
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
    fn sma_sign_follows_inputs_like_pandas() {
        // Kahan residue can leave a tiny negative mean after large positives leave the window;
        // pandas clamps it to 0 when no input in the window is negative.
        let mut s = Sma::new(2);
        for x in [1e17, 1.0, 1.0] {
            s.update(x);
        }
        assert_eq!(s.value(), Some(1.0));
        let out = run(Sma::new(2), &[-1.0, -3.0, 2.0, 4.0]);
        assert_eq!(out[1..], [Some(-2.0), Some(-0.5), Some(3.0)]);
    }

    #[test]
    fn sma_constant_run_is_exact() {
        let out = run(Sma::new(3), &[0.1, 0.7, 0.3, 0.3, 0.3]);
        assert_eq!(out[4], Some(0.3));
    }

    #[test]
    fn pair_matches_two_smas_bit_for_bit() {
        let xs: Vec<f64> = (0..500)
            .map(|i| 100.0 + ((i * 37 % 101) as f64).sin() * 3.0 + (i / 50) as f64 * 0.1)
            .collect();
        let xs: Vec<f64> =
            xs.iter().enumerate().map(|(i, x)| if i % 7 < 3 { 100.0 } else { *x }).collect();
        assert_pair_is_two_smas(&xs);
    }

    proptest::proptest! {
        /// Every branch of pandas' mean: signs that need the window scanned (negative inputs,
        /// Kahan residue after huge values leave), runs of equal inputs, zeros.
        #[test]
        fn pair_matches_two_smas_on_any_series(
            xs in proptest::collection::vec(
                proptest::prop_oneof![
                    -1e3..1e3f64,
                    proptest::strategy::Just(0.0),
                    proptest::strategy::Just(1.5),
                    proptest::strategy::Just(1e17),
                    proptest::strategy::Just(-2.25),
                ],
                0..300,
            )
        ) {
            assert_pair_is_two_smas(&xs);
        }
    }

    fn assert_pair_is_two_smas(xs: &[f64]) {
        for (f, s) in [(1, 1), (1, 5), (3, 4), (10, 20), (7, 30)] {
            let mut pair = SmaPair::new(f, s);
            let (mut a, mut b) = (Sma::new(f), Sma::new(s));
            for &x in xs {
                let p = pair.update(x);
                let (fa, sb) = (a.update(x), b.update(x));
                match p {
                    Some((pf, ps)) => {
                        assert_eq!(Some(pf.to_bits()), fa.map(f64::to_bits), "fast {f}/{s}");
                        assert_eq!(Some(ps.to_bits()), sb.map(f64::to_bits), "slow {f}/{s}");
                    }
                    None => assert!(sb.is_none()),
                }
            }
        }
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
