//! Strategies driven by models, registered next to the rule strategies with [`register`].
//!
//! | name | idea |
//! | --- | --- |
//! | `ml_forecast` | trade a trained forecaster's prediction when it crosses a threshold, sized by its confidence |
//! | `news_sentiment` | trade headlines from a timestamped file, scored by a sentence encoder |
//!
//! Models come from the process-wide [`cache`](crate::cache): every strategy and thread
//! naming the same folder shares one copy.

mod ml_forecast;
mod news_sentiment;

pub use ml_forecast::{MlForecast, PredictionLog};
pub use news_sentiment::{Headline, NewsSentiment, read_headlines};

use kairos_strategies::{
    Context, InstrumentId, OrderSize, ParamSpec, Params, Registry, StrategyInfo,
};

/// `size` and `mode`, as the rule strategies declare them.
pub(crate) fn sizing_specs() -> [ParamSpec; 2] {
    [
        ParamSpec::float("size", 1.0, 1e-6, 1.0, "largest fraction of equity per position"),
        ParamSpec::choice(
            "mode",
            "long_short",
            &["long_short", "long_only"],
            "long_short or long_only",
        ),
    ]
}

/// `threshold` and `full`, checked against each other.
pub(crate) fn thresholds(p: &Params) -> kairos_strategies::Result<(f64, f64)> {
    let (threshold, full) = (p.float("threshold")?, p.float("full")?);
    if full < threshold {
        return Err(
            p.invalid("full", format!("full ({full}) must be at least threshold ({threshold})"))
        );
    }
    Ok((threshold, full))
}

/// The model strategies' registry entries.
pub fn all() -> Vec<StrategyInfo> {
    vec![ml_forecast::info(), news_sentiment::info()]
}

/// Adds the model strategies to `registry`.
pub fn register(registry: &mut Registry) -> kairos_strategies::Result<()> {
    for info in all() {
        registry.register(info)?;
    }
    Ok(())
}

/// A built-in registry with the model strategies added.
pub fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    for info in all() {
        // Names are fixed and distinct from the built-ins'.
        let _ = r.register(info);
    }
    r
}

/// The equity fraction for a signal of `strength`: `size x min(1, |strength| / full)`, kept
/// above zero so a weak signal still sends a valid order.
pub(crate) fn scaled_size(size: f64, strength: f64, full: f64) -> f64 {
    (size * (strength.abs() / full).min(1.0)).max(1e-6)
}

/// Moves `id` to a position on one side: `Some(true)` long, `Some(false)` short (or flat when
/// shorts are off), `None` flat; `size` is the equity fraction of a new position.
pub(crate) fn target(
    ctx: &mut Context,
    id: InstrumentId,
    side: Option<bool>,
    shorts: bool,
    size: f64,
) {
    let pos = ctx.position(id);
    let want_long = side == Some(true);
    let want_short = side == Some(false) && shorts;
    if (want_long && pos > 0.0)
        || (want_short && pos < 0.0)
        || (!want_long && !want_short && pos == 0.0)
    {
        return;
    }
    ctx.close_position(id);
    // Sizes are validated fractions, so a refusal cannot happen; ignoring it keeps the hook
    // from panicking whatever the inputs.
    if want_long {
        let _ = ctx.buy(id, OrderSize::EquityFraction(size));
    } else if want_short {
        let _ = ctx.sell(id, OrderSize::EquityFraction(size));
    }
}
