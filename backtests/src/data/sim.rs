//! A seeded market simulator: valid OHLCV bars from nothing but a seed.
//!
//! Log returns follow a GARCH(1,1) variance process (volatility clusters: calm stretches and
//! storms) around a drift that switches between a bull and a bear regime as a Markov chain,
//! with occasional jumps. Highs and lows extend beyond the open/close by a random share of the
//! bar's volatility, and volume rises with volatility. The same seed always gives the same bars.
//! It exists so `kairos backtest --data sim:42` runs with nothing but the build; reports say
//! the data is simulated.

use kairos_strategies::{Bar, Instrument, InstrumentId, Timestamp};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{BarSeries, validate};
use crate::{Error, Result};

/// Simulator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// RNG seed.
    pub seed: u64,
    /// Number of bars.
    pub bars: usize,
    /// Bar spacing in nanoseconds.
    pub interval: i64,
    /// First bar's timestamp.
    pub start: Timestamp,
    /// First open.
    pub start_price: f64,
    /// Long-run volatility per bar (standard deviation of log returns).
    pub vol: f64,
}

impl SimConfig {
    /// Defaults: 100,000 one-minute bars from 2024-01-01 starting at 100, ~60% annualised vol.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            bars: 100_000,
            interval: 60_000_000_000,
            start: Timestamp(1_704_067_200_000_000_000),
            start_price: 100.0,
            vol: 0.6 / (365.0f64 * 24.0 * 60.0).sqrt(),
        }
    }

    /// The most bars one series may have: 50 million (2.8 GB of bars), five times the largest
    /// benchmark, so that a mistyped count is an error and not an allocation that fails.
    pub const MAX_BARS: usize = 50_000_000;

    /// Parses `SEED[:BARS]` (the part after `sim:`).
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Spec(format!(
                "data source `sim:{spec}`: {why}; expected sim:SEED[:BARS], like sim:42 or sim:42:500000"
            ))
        };
        let mut parts = spec.split(':');
        let seed = parts.next().filter(|s| !s.is_empty()).ok_or_else(|| bad("missing seed"))?;
        let mut cfg = Self::new(seed.parse().map_err(|_| bad("the seed is not a whole number"))?);
        if let Some(b) = parts.next() {
            cfg.bars = b.parse().map_err(|_| bad("the bar count is not a whole number"))?;
            if cfg.bars == 0 {
                return Err(bad("the bar count must be at least 1"));
            }
            if cfg.bars > Self::MAX_BARS {
                return Err(bad(&format!(
                    "{} bars is more than the simulator makes ({}, {:.1} GB of bars)",
                    cfg.bars,
                    Self::MAX_BARS,
                    (Self::MAX_BARS * std::mem::size_of::<Bar>()) as f64 / 1e9
                )));
            }
        }
        if parts.next().is_some() {
            return Err(bad("too many fields"));
        }
        Ok(cfg)
    }

    /// Generates the series.
    pub fn generate(&self) -> Result<BarSeries> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut normal = || {
            // Box-Muller; 1 - u keeps the log argument in (0, 1].
            let u: f64 = 1.0 - rng.random::<f64>();
            let v: f64 = rng.random::<f64>();
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        let long_var = self.vol * self.vol;
        let (alpha, beta) = (0.06, 0.93);
        let omega = long_var * (1.0 - alpha - beta);
        let mut var = long_var;
        let mut bull = true;
        let drift = self.vol * 0.02;
        let mut close = self.start_price;
        let mut bars = Vec::with_capacity(self.bars);
        for i in 0..self.bars {
            // Regimes last a few thousand bars on average.
            let switch = normal().abs() > 3.35;
            if switch {
                bull = !bull;
            }
            let sigma = var.sqrt();
            let jump = if normal().abs() > 3.9 { normal() * sigma * 6.0 } else { 0.0 };
            let r = (if bull { drift } else { -drift }) + sigma * normal() + jump;
            let open = close;
            close = open * r.exp();
            let top = open.max(close) * (normal().abs() * sigma * 0.6).exp();
            let bottom = open.min(close) * (-normal().abs() * sigma * 0.6).exp();
            let volume = (1_000.0 * (0.4 * normal()).exp() * (sigma / self.vol)).round();
            bars.push(Bar {
                instrument: InstrumentId(0),
                ts: Timestamp(self.start.0 + i as i64 * self.interval),
                open,
                high: top,
                low: bottom,
                close,
                volume,
            });
            var = omega + alpha * r * r + beta * var;
        }
        let source = format!("sim:{}:{}", self.seed, self.bars);
        validate(std::path::Path::new(&source), &bars)?;
        Ok(BarSeries {
            instrument: Instrument::new("SIM-USD", "sim"),
            bars,
            source,
            simulated: true,
            time_format: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bars_and_valid() {
        let a = SimConfig::parse("7:5000").unwrap().generate().unwrap();
        let b = SimConfig::parse("7:5000").unwrap().generate().unwrap();
        let c = SimConfig::parse("8:5000").unwrap().generate().unwrap();
        assert_eq!(a, b);
        assert_ne!(a.bars, c.bars);
        assert_eq!(a.len(), 5000);
        assert!(a.simulated);
    }

    #[test]
    fn bad_specs_explain() {
        for (spec, want) in [
            ("", "missing seed"),
            ("x", "seed"),
            ("1:0", "at least 1"),
            ("1:2:3", "too many"),
            ("1:99999999999999", "more than the simulator makes (50000000"),
            ("1:200000000", "more than the simulator makes"),
            ("1:99999999999999999999999", "not a whole number"),
        ] {
            let e = SimConfig::parse(spec).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("sim:SEED"), "{spec}: {e}");
        }
    }
}
