//! `ml_forecast`: trade a trained forecaster's prediction.

use std::path::Path;
use std::sync::{Arc, Mutex};

use kairos_strategies::{
    Bar, Context, InstrumentId, ParamSpec, Params, Result, Strategy, StrategyInfo, Timestamp,
};

use crate::features::{TargetKind, WARMUP};
use crate::forecast::{ForecastStream, Forecaster};

/// Predictions as the strategy made them: instrument, bar time, prediction, edge.
pub type PredictionLog = Arc<Mutex<Vec<(InstrumentId, Timestamp, f64, f64)>>>;

/// At each closed bar, predicts from bars up to that one (features, normalisation and model
/// as trained) and turns the prediction into an *edge*:
///
/// - regression models: the predicted log return in units of the training returns' standard
///   deviation;
/// - direction models: `2 p - 1` for the probability `p` of a rise.
///
/// An edge above `threshold` targets a long position, below `-threshold` a short one (flat in
/// `long_only` mode); in between the position is kept, or closed with `flat_inside=true`. A new
/// position's size is `size x min(1, |edge| / full)` of equity: stronger forecasts, bigger
/// positions. Orders go in only when the target side changes.
pub struct MlForecast {
    model: Arc<Forecaster>,
    threshold: f64,
    full: f64,
    size: f64,
    shorts: bool,
    flat_inside: bool,
    states: Vec<Option<State>>,
    log: Option<PredictionLog>,
}

struct State {
    stream: ForecastStream,
    side: Option<bool>,
}

impl std::fmt::Debug for MlForecast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlForecast")
            .field("model", &self.model)
            .field("threshold", &self.threshold)
            .field("full", &self.full)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl MlForecast {
    /// A strategy around `model`; see the type's docs for the parameters.
    pub fn new(
        model: Arc<Forecaster>,
        threshold: f64,
        full: f64,
        size: f64,
        shorts: bool,
        flat_inside: bool,
    ) -> Self {
        Self { model, threshold, full, size, shorts, flat_inside, states: Vec::new(), log: None }
    }

    /// Records every prediction into `log` (tests, research notebooks).
    pub fn with_log(mut self, log: PredictionLog) -> Self {
        self.log = Some(log);
        self
    }

    /// The edge of a prediction (see the type's docs).
    pub fn edge(&self, prediction: f64) -> f64 {
        edge(&self.model, prediction)
    }
}

fn edge(model: &Forecaster, prediction: f64) -> f64 {
    let c = model.config();
    match c.target.kind {
        TargetKind::Return => prediction / c.target_scale.std,
        TargetKind::Sign => 2.0 * prediction - 1.0,
    }
}

impl Strategy for MlForecast {
    fn warmup_bars(&self) -> usize {
        WARMUP + self.model.window() - 1
    }

    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        let i = bar.instrument.index();
        if self.states.len() <= i {
            self.states.resize_with(i + 1, || None);
        }
        let model = &self.model;
        let st = self.states[i].get_or_insert_with(|| State {
            stream: ForecastStream::new(model.clone()),
            side: None,
        });
        let Some(pred) = st.stream.update(bar) else { return };
        let edge = edge(model, pred);
        if let Some(log) = &self.log {
            log.lock().unwrap_or_else(|p| p.into_inner()).push((
                bar.instrument,
                bar.ts,
                pred,
                edge,
            ));
        }
        let side = if edge > self.threshold {
            Some(true)
        } else if edge < -self.threshold {
            Some(false)
        } else if self.flat_inside {
            None
        } else {
            st.side
        };
        if side == st.side {
            return;
        }
        st.side = side;
        let size = super::scaled_size(self.size, edge, self.full);
        super::target(ctx, bar.instrument, side, self.shorts, size);
    }
}

fn build(p: &Params) -> Result<Box<dyn Strategy>> {
    let dir = p.text("model")?;
    let model = crate::cache::global()
        .forecaster(Path::new(dir), "cpu")
        .map_err(|e| p.invalid("model", e.to_string()))?;
    let (threshold, full) = super::thresholds(p)?;
    let shorts = p.choice("mode")? == "long_short";
    Ok(Box::new(MlForecast::new(
        model,
        threshold,
        full,
        p.float("size")?,
        shorts,
        p.bool("flat_inside")?,
    )))
}

pub(crate) fn info() -> StrategyInfo {
    StrategyInfo {
        name: "ml_forecast",
        description: "trade a trained forecaster (kairos train) when its edge crosses a threshold, sized by confidence",
        params: [
            ParamSpec::text("model", "", true, "forecaster folder written by `kairos train`"),
            ParamSpec::float("threshold", 0.05, 0.0, 10.0, "edge needed to take a side"),
            ParamSpec::float("full", 0.25, 1e-9, 10.0, "edge at which a position is full size"),
            ParamSpec::bool(
                "flat_inside",
                false,
                "close the position when the edge falls back inside the threshold",
            ),
        ]
        .into_iter()
        .chain(super::sizing_specs())
        .collect(),
        build,
    }
}
