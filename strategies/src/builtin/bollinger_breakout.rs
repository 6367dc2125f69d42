//! `bollinger_breakout`: trade closes outside the bands.

use super::{Mode, go, size_spec, state_for};
use crate::indicators::{Bollinger, Indicator};
use crate::{Bar, Context, ParamSpec, Params, Result, Strategy, StrategyInfo};

/// Go long when a bar closes above the upper band, short (long-short mode) when it closes below
/// the lower band; exit when the close crosses back through the middle band.
#[derive(Debug, Clone)]
pub struct BollingerBreakout {
    period: usize,
    k: f64,
    mode: Mode,
    size: f64,
    states: Vec<Bollinger>,
}

impl BollingerBreakout {
    /// Bands of `period` bars, `k` standard deviations wide.
    pub fn new(period: usize, k: f64, mode: Mode, size: f64) -> Self {
        Self { period, k, mode, size, states: Vec::new() }
    }
}

impl Strategy for BollingerBreakout {
    fn wants_order_events(&self) -> bool {
        false
    }

    fn warmup_bars(&self) -> usize {
        self.period - 1
    }

    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        let (period, k) = (self.period, self.k);
        let bands = state_for(&mut self.states, bar.instrument, || Bollinger::new(period, k));
        let Some(b) = bands.update(bar.close) else { return };
        let pos = ctx.position(bar.instrument);
        let c = bar.close;
        if c > b.upper && pos <= 0.0 {
            go(ctx, bar.instrument, true, self.mode, self.size);
        } else if c < b.lower && pos >= 0.0 && (pos > 0.0 || self.mode == Mode::LongShort) {
            go(ctx, bar.instrument, false, self.mode, self.size);
        } else if (pos > 0.0 && c < b.middle) || (pos < 0.0 && c > b.middle) {
            ctx.close_position(bar.instrument);
        }
    }
}

fn build(p: &Params) -> Result<Box<dyn Strategy>> {
    Ok(Box::new(BollingerBreakout::new(
        p.usize("period")?,
        p.float("k")?,
        Mode::from_params(p)?,
        p.float("size")?,
    )))
}

pub(crate) fn info() -> StrategyInfo {
    StrategyInfo {
        name: "bollinger_breakout",
        description: "go with closes outside the Bollinger bands, exit at the middle band",
        params: vec![
            ParamSpec::int("period", 20, 2, 10_000, "band period (bars)"),
            ParamSpec::float("k", 2.0, 0.1, 10.0, "band width in standard deviations"),
            Mode::spec(),
            size_spec(),
        ],
        build,
    }
}
