//! `rsi_reversion`: fade RSI extremes.

use super::{Mode, go, size_spec, state_for};
use crate::indicators::{Indicator, Rsi};
use crate::{Bar, Context, ParamSpec, Params, Result, Strategy, StrategyInfo};

/// When flat: go long when RSI falls below `lower`, short (long-short mode) when it rises
/// above `upper`. Exit a long when RSI reaches `exit` from below, a short when it reaches it
/// from above. A market that has not moved over the RSI period gives no signal.
#[derive(Debug, Clone)]
pub struct RsiReversion {
    period: usize,
    lower: f64,
    upper: f64,
    exit: f64,
    mode: Mode,
    size: f64,
    states: Vec<Rsi>,
}

impl RsiReversion {
    /// RSI(`period`) reversion with entry bands `lower`/`upper` and exit level `exit`.
    pub fn new(period: usize, lower: f64, upper: f64, exit: f64, mode: Mode, size: f64) -> Self {
        Self { period, lower, upper, exit, mode, size, states: Vec::new() }
    }
}

impl Strategy for RsiReversion {
    fn wants_order_events(&self) -> bool {
        false
    }

    fn warmup_bars(&self) -> usize {
        self.period
    }

    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        let period = self.period;
        let rsi = state_for(&mut self.states, bar.instrument, || Rsi::new(period));
        let Some(r) = rsi.update(bar.close) else { return };
        // TA-Lib's RSI reads 0 when prices have not moved at all; that is no signal.
        if rsi.averages().is_some_and(|(g, l)| g + l == 0.0) {
            return;
        }
        let pos = ctx.position(bar.instrument);
        if pos == 0.0 {
            if r < self.lower {
                go(ctx, bar.instrument, true, self.mode, self.size);
            } else if r > self.upper && self.mode == Mode::LongShort {
                go(ctx, bar.instrument, false, self.mode, self.size);
            }
        } else if (pos > 0.0 && r >= self.exit) || (pos < 0.0 && r <= self.exit) {
            ctx.close_position(bar.instrument);
        }
    }
}

fn build(p: &Params) -> Result<Box<dyn Strategy>> {
    let (lower, upper, exit) = (p.float("lower")?, p.float("upper")?, p.float("exit")?);
    if !(lower < exit && exit < upper) {
        return Err(
            p.invalid("exit", format!("need lower ({lower}) < exit ({exit}) < upper ({upper})"))
        );
    }
    Ok(Box::new(RsiReversion::new(
        p.usize("period")?,
        lower,
        upper,
        exit,
        Mode::from_params(p)?,
        p.float("size")?,
    )))
}

pub(crate) fn info() -> StrategyInfo {
    StrategyInfo {
        name: "rsi_reversion",
        description: "buy when RSI is oversold, sell short when overbought, exit at the midline",
        params: vec![
            ParamSpec::int("period", 14, 1, 10_000, "RSI period (bars)"),
            ParamSpec::float("lower", 30.0, 0.0, 100.0, "oversold level: go long below it"),
            ParamSpec::float("upper", 70.0, 0.0, 100.0, "overbought level: go short above it"),
            ParamSpec::float("exit", 50.0, 0.0, 100.0, "exit level"),
            Mode::spec(),
            size_spec(),
        ],
        build,
    }
}
