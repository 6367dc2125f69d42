//! A strategy plugin written the way a Kairos user writes one: its own crate, depending on
//! `kairos-strategies` alone, exposing a [`register`] function that adds it to a registry.
//!
//! `donchian`: go long when a bar closes above the highest high of the previous `period` bars,
//! short (in long-short mode) below the lowest low; exit a long at the lowest low of the last
//! `exit` bars and a short at their highest high.

use std::collections::VecDeque;

use kairos_strategies::prelude::*;
use kairos_strategies::{ParamSpec, Registry, Result, StrategyInfo};

/// The Donchian breakout strategy.
#[derive(Debug, Clone)]
pub struct Donchian {
    period: usize,
    exit: usize,
    long_only: bool,
    highs: VecDeque<f64>,
    lows: VecDeque<f64>,
}

impl Donchian {
    /// Entry channel of `period` bars, exit channel of `exit` bars.
    pub fn new(period: usize, exit: usize, long_only: bool) -> Self {
        let cap = period.max(exit);
        Self {
            period,
            exit,
            long_only,
            highs: VecDeque::with_capacity(cap + 1),
            lows: VecDeque::with_capacity(cap + 1),
        }
    }

    fn channel(v: &VecDeque<f64>, n: usize, max: bool) -> f64 {
        let it = v.iter().rev().take(n).copied();
        if max { it.fold(f64::MIN, f64::max) } else { it.fold(f64::MAX, f64::min) }
    }
}

impl Strategy for Donchian {
    fn warmup_bars(&self) -> usize {
        self.period.max(self.exit)
    }

    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        let full = self.highs.len() >= self.period.max(self.exit);
        if full {
            let pos = ctx.position(bar.instrument);
            let upper = Self::channel(&self.highs, self.period, true);
            let lower = Self::channel(&self.lows, self.period, false);
            if bar.close > upper && pos <= 0.0 {
                ctx.close_position(bar.instrument);
                let _ = ctx.buy(bar.instrument, OrderSize::EquityFraction(1.0));
            } else if bar.close < lower && pos >= 0.0 && !self.long_only {
                ctx.close_position(bar.instrument);
                let _ = ctx.sell(bar.instrument, OrderSize::EquityFraction(1.0));
            } else if (pos > 0.0 && bar.close < Self::channel(&self.lows, self.exit, false))
                || (pos < 0.0 && bar.close > Self::channel(&self.highs, self.exit, true))
            {
                ctx.close_position(bar.instrument);
            }
        }
        self.highs.push_back(bar.high);
        self.lows.push_back(bar.low);
        if self.highs.len() > self.period.max(self.exit) {
            self.highs.pop_front();
            self.lows.pop_front();
        }
    }
}

fn build(p: &Params) -> Result<Box<dyn Strategy>> {
    let (period, exit) = (p.usize("period")?, p.usize("exit")?);
    if exit > period {
        return Err(p.invalid("exit", format!("exit ({exit}) must not exceed period ({period})")));
    }
    Ok(Box::new(Donchian::new(period, exit, p.choice("mode")? == "long_only")))
}

/// Adds `donchian` to `registry`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.register(StrategyInfo {
        name: "donchian",
        description: "Donchian channel breakout with a shorter exit channel",
        params: vec![
            ParamSpec::int("period", 20, 2, 10_000, "entry channel (bars)"),
            ParamSpec::int("exit", 10, 1, 10_000, "exit channel (bars)"),
            ParamSpec::choice(
                "mode",
                "long_short",
                &["long_short", "long_only"],
                "long_short or long_only",
            ),
        ],
        build,
    })
}
