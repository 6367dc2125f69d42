//! `ml_forecast`: trade a trained forecaster's prediction.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use kairos_strategies::{
    AskId, Bar, Context, Data, InstrumentId, ModelAnswer, ModelInput, ParamSpec, Params, Result,
    Strategy, StrategyInfo, Timestamp,
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
///
/// With `ask=NAME` the strategy does not run the model itself: at each closed bar it asks the
/// model `NAME` through its context (the bars the model reads), and decides when the answer
/// arrives, as it would live behind the router. In a backtest the answer comes after the run's
/// modelled inference latency, so the report shows what the delay costs; with no latency the
/// trades are the same as the in-process run's. An answer older than one already acted on
/// (latencies reorder them) is dropped, and a failed ask changes nothing.
pub struct MlForecast {
    model: Arc<Forecaster>,
    threshold: f64,
    full: f64,
    size: f64,
    shorts: bool,
    flat_inside: bool,
    states: Vec<Option<State>>,
    log: Option<PredictionLog>,
    ask: Option<String>,
    /// Asks on their way: the bar each was made at.
    pending: HashMap<AskId, Timestamp>,
    failures: u64,
}

struct State {
    stream: ForecastStream,
    side: Option<bool>,
    /// With `ask`: the last bars, as many as the model reads.
    bars: VecDeque<Bar>,
    /// With `ask`: the bar of the newest answer acted on.
    acted: Option<Timestamp>,
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
        Self {
            model,
            threshold,
            full,
            size,
            shorts,
            flat_inside,
            states: Vec::new(),
            log: None,
            ask: None,
            pending: HashMap::new(),
            failures: 0,
        }
    }

    /// Asks the model `name` through the context instead of running it in the hook (see the
    /// type's docs).
    pub fn asking(mut self, name: impl Into<String>) -> Self {
        self.ask = Some(name.into());
        self
    }

    /// Asks that came back as failures.
    pub fn failed_asks(&self) -> u64 {
        self.failures
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
            bars: VecDeque::new(),
            acted: None,
        });
        if let Some(name) = &self.ask {
            let need = WARMUP + model.window();
            if st.bars.len() == need {
                st.bars.pop_front();
            }
            st.bars.push_back(*bar);
            if st.bars.len() < need {
                return;
            }
            let input = ModelInput::Forecast { bars: st.bars.iter().copied().collect() };
            // The bars come from the run, so the ask is valid; a refusal changes nothing.
            if let Ok(id) = ctx.ask(name, input, i as u64) {
                self.pending.insert(id, bar.ts);
            }
            return;
        }
        let Some(pred) = st.stream.update(bar) else { return };
        self.act(ctx, bar.instrument, bar.ts, pred);
    }

    fn on_data(&mut self, ctx: &mut Context, data: &Data) {
        let Some(answer) = data.get::<ModelAnswer>() else { return };
        let Some(bar_ts) = self.pending.remove(&answer.ask) else { return };
        let id = InstrumentId(answer.tag as u32);
        let Some(Some(st)) = self.states.get_mut(id.index()) else { return };
        let Some(pred) = answer.forecast() else {
            self.failures += 1;
            if self.failures == 1 {
                tracing::warn!(
                    model = %answer.model,
                    "a forecast ask failed (later failures are counted, not logged): {}",
                    answer.failure().unwrap_or("the answer is not a forecast")
                );
            }
            return;
        };
        if st.acted.is_some_and(|t| t >= bar_ts) {
            return;
        }
        st.acted = Some(bar_ts);
        self.act(ctx, id, bar_ts, pred);
    }
}

impl MlForecast {
    /// Turns a prediction made at the bar `bar_ts` of `id` into a target position.
    fn act(&mut self, ctx: &mut Context, id: InstrumentId, bar_ts: Timestamp, pred: f64) {
        let edge = edge(&self.model, pred);
        if let Some(log) = &self.log {
            log.lock().unwrap_or_else(|p| p.into_inner()).push((id, bar_ts, pred, edge));
        }
        let Some(Some(st)) = self.states.get_mut(id.index()) else { return };
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
        super::target(ctx, id, side, self.shorts, size);
    }
}

fn build(p: &Params) -> Result<Box<dyn Strategy>> {
    let dir = p.text("model")?;
    let model = crate::cache::global()
        .forecaster(Path::new(dir), "cpu")
        .map_err(|e| p.invalid("model", e.to_string()))?;
    let (threshold, full) = super::thresholds(p)?;
    let shorts = p.choice("mode")? == "long_short";
    let s =
        MlForecast::new(model, threshold, full, p.float("size")?, shorts, p.bool("flat_inside")?);
    let ask = p.text("ask")?.trim();
    Ok(Box::new(if ask.is_empty() { s } else { s.asking(ask) }))
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
            ParamSpec::text(
                "ask",
                "",
                false,
                "ask this model (a router route live; --model NAME=DIR in a backtest) through the context instead of running `model` in the hook; the answer arrives after the inference latency",
            ),
        ]
        .into_iter()
        .chain(super::sizing_specs())
        .collect(),
        build,
    }
}
