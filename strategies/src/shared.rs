//! Indicator series computed once and shared by many runs over the same bars.
//!
//! A parameter sweep runs one strategy thousands of times over the same data with different
//! parameters; `sma_cross` over windows 2..100 needs only 99 distinct moving averages, yet each
//! run would compute its two bar by bar. Before such a run the engine offers the strategy a
//! [`SharedSeries`] through [`Strategy::share`](crate::Strategy::share): the strategy asks it
//! for the series it needs (`shared.sma(id, 20)`), which the first run to ask computes, with
//! the same streaming indicator the strategy would use, and every later run borrows.
//!
//! The values are those the streaming indicator gives bar by bar, bit for bit (the sweep's
//! tests compare a sweep row with a single run). A strategy that takes a series must read, at
//! its `i`-th bar of an instrument, value `i` and nothing later: the series holds the future
//! too, and reading ahead is a lookahead bias that no backtest could see otherwise.
//!
//! The cache is thread-safe: parallel runs ask for the same key at once, one computes it and
//! the others wait for that value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::indicators::{Indicator, Sma};
use crate::{Bar, InstrumentId};

/// One value per bar of an instrument; `NaN` where the indicator has no value yet.
pub type Series = Arc<[f64]>;

/// A series being computed or computed, by instrument and key.
type Cells = HashMap<(u32, String), Arc<OnceLock<Series>>>;

/// The bars of a run, known before it starts, and the indicator series computed from them.
#[derive(Debug, Default)]
pub struct SharedSeries {
    closes: Vec<Arc<[f64]>>,
    cache: Mutex<Cells>,
}

impl SharedSeries {
    /// The series of runs over `bars`, one slice per instrument, indexed by
    /// [`InstrumentId`] (the order a backtest numbers its series in).
    pub fn new<'a>(bars: impl IntoIterator<Item = &'a [Bar]>) -> Self {
        Self {
            closes: bars.into_iter().map(|b| b.iter().map(|b| b.close).collect()).collect(),
            cache: Mutex::default(),
        }
    }

    /// How many instruments there are.
    pub fn instruments(&self) -> usize {
        self.closes.len()
    }

    /// An instrument's closes, bar by bar (`None` for an instrument the run does not have).
    pub fn closes(&self, id: InstrumentId) -> Option<&[f64]> {
        self.closes.get(id.index()).map(|c| &c[..])
    }

    /// The series `key` of instrument `id`: `compute(closes)` the first time any run asks for
    /// it, the same values afterwards. `None` for an unknown instrument, or when `compute`
    /// gives a series of another length than the closes (the caller then computes its own).
    /// Keys name the computation and all its parameters (`"sma(20)"`): two computations under
    /// one key would share one answer.
    pub fn series(
        &self,
        id: InstrumentId,
        key: &str,
        compute: impl FnOnce(&[f64]) -> Vec<f64>,
    ) -> Option<Series> {
        let closes = self.closes.get(id.index())?;
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache.entry((id.0, key.to_string())).or_default().clone()
        };
        // Computed outside the map's lock: runs asking for other keys go on meanwhile, and
        // runs asking for this one wait on the cell.
        let s = cell.get_or_init(|| {
            let v = compute(closes);
            if v.len() == closes.len() { v.into() } else { Arc::from(Vec::new()) }
        });
        (s.len() == closes.len()).then(|| s.clone())
    }

    /// The values a streaming indicator of closes gives, bar by bar, under `key`.
    pub fn indicator<I: Indicator<Input = f64, Output = f64>>(
        &self,
        id: InstrumentId,
        key: &str,
        make: impl FnOnce() -> I,
    ) -> Option<Series> {
        self.series(id, key, |closes| {
            let mut ind = make();
            closes.iter().map(|&c| ind.update(c).unwrap_or(f64::NAN)).collect()
        })
    }

    /// [`Sma`] of closes over `period` bars.
    pub fn sma(&self, id: InstrumentId, period: usize) -> Option<Series> {
        if period == 0 {
            return None;
        }
        self.indicator(id, &format!("sma({period})"), || Sma::new(period))
    }

    /// How many series are cached.
    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn bars(closes: &[f64]) -> Vec<Bar> {
        closes
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar {
                instrument: InstrumentId(0),
                ts: Timestamp(i as i64),
                open: c,
                high: c,
                low: c,
                close: c,
                volume: 1.0,
            })
            .collect()
    }

    #[test]
    fn an_sma_series_is_the_streaming_sma_and_is_computed_once() {
        let closes: Vec<f64> = (0..500).map(|i| 100.0 + (i as f64 * 0.37).sin() * 3.1).collect();
        let b = bars(&closes);
        let shared = SharedSeries::new([&b[..]]);
        let s = shared.sma(InstrumentId(0), 7).unwrap();
        let mut sma = Sma::new(7);
        for (i, &c) in closes.iter().enumerate() {
            match sma.update(c) {
                Some(v) => assert_eq!(s[i].to_bits(), v.to_bits(), "bar {i}"),
                None => assert!(s[i].is_nan(), "bar {i}"),
            }
        }
        let again = shared.sma(InstrumentId(0), 7).unwrap();
        assert!(Arc::ptr_eq(&s, &again), "the second ask borrows the first answer");
        assert_eq!(shared.cached(), 1);
        assert!(shared.sma(InstrumentId(1), 7).is_none(), "no such instrument");
        assert!(shared.sma(InstrumentId(0), 0).is_none());
        assert!(shared.series(InstrumentId(0), "short", |_| vec![1.0]).is_none());
    }

    #[test]
    fn threads_asking_at_once_share_one_computation() {
        let b = bars(&[1.0; 1000]);
        let shared = SharedSeries::new([&b[..]]);
        let computed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    shared.series(InstrumentId(0), "k", |c| {
                        computed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        c.to_vec()
                    })
                });
            }
        });
        assert_eq!(computed.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
