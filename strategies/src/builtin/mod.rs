//! Built-in rule strategies, registered in [`Registry::with_builtins`](crate::Registry::with_builtins).
//!
//! | name | idea |
//! | --- | --- |
//! | `sma_cross` | trend: fast/slow SMA crossover |
//! | `rsi_reversion` | mean reversion: fade RSI extremes, exit at the midline |
//! | `bollinger_breakout` | breakout: trade closes outside the bands, exit at the middle band |
//! | `book_imbalance` | order book: rest a buy at the best bid when the bids outweigh the asks, and the reverse |
//!
//! Each trades every instrument on its stream independently, sizing each entry as a fraction
//! of available equity (`size`, default 1.0 = all in).

mod bollinger_breakout;
mod book_imbalance;
mod rsi_reversion;
mod sma_cross;

pub use bollinger_breakout::BollingerBreakout;
pub use book_imbalance::BookImbalance;
pub use rsi_reversion::RsiReversion;
pub use sma_cross::SmaCross;

use crate::{Context, InstrumentId, OrderSize, ParamSpec, Params, Result, StrategyInfo};

/// Whether a strategy may hold short positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Long and short.
    LongShort,
    /// Long or flat.
    LongOnly,
}

impl Mode {
    pub(crate) const CHOICES: &'static [&'static str] = &["long_short", "long_only"];

    pub(crate) fn spec() -> ParamSpec {
        ParamSpec::choice("mode", "long_short", Self::CHOICES, "long_short or long_only")
    }

    pub(crate) fn from_params(p: &Params) -> Result<Self> {
        Ok(if p.choice("mode")? == "long_only" { Mode::LongOnly } else { Mode::LongShort })
    }
}

pub(crate) fn size_spec() -> ParamSpec {
    ParamSpec::float("size", 1.0, 1e-6, 1.0, "fraction of available equity per entry")
}

/// Per-instrument state, grown on first sight of an instrument.
pub(crate) fn state_for<T>(states: &mut Vec<T>, id: InstrumentId, make: impl Fn() -> T) -> &mut T {
    let i = id.index();
    if states.len() <= i {
        states.resize_with(i + 1, &make);
    }
    &mut states[i]
}

/// Flattens any position and opens one on `long`'s side (shorts only in long-short mode).
pub(crate) fn go(ctx: &mut Context, id: InstrumentId, long: bool, mode: Mode, size: f64) {
    ctx.close_position(id);
    let size = OrderSize::EquityFraction(size);
    // The fraction is validated by the registry, so a refusal here cannot happen; ignoring
    // the result keeps a hook from panicking whatever the parameters (`ok()` drops the error
    // only when there is one).
    if long {
        ctx.buy(id, size).ok();
    } else if mode == Mode::LongShort {
        ctx.sell(id, size).ok();
    }
}

/// The built-in strategies' registry entries.
pub fn all() -> Vec<StrategyInfo> {
    vec![
        sma_cross::info(),
        rsi_reversion::info(),
        bollinger_breakout::info(),
        book_imbalance::info(),
    ]
}
