//! Model answers: how a strategy asks a model and hears back, the same way in a backtest, on
//! paper and live.
//!
//! A strategy asks with [`Context::ask`](crate::Context::ask) and goes on; the answer arrives
//! later as a [`Data`](crate::Data) event to [`Strategy::on_data`](crate::Strategy::on_data)
//! whose payload is a [`ModelAnswer`], at the time it would arrive: live, when the router's
//! reply comes back; in a backtest, at the ask's time plus the run's modelled inference
//! latency (fixed, drawn from a distribution, or the latency recorded live). A decision made
//! on an answer is therefore made when the answer is there, not when it was asked for, and a
//! backtest shows what that delay costs.
//!
//! ```
//! use kairos_strategies::prelude::*;
//! use kairos_strategies::{ModelAnswer, ModelInput};
//!
//! struct AskEachBar;
//!
//! impl Strategy for AskEachBar {
//!     fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
//!         // Route `forecaster` as the router's config (or the backtest) names it.
//!         let _ = ctx.ask("forecaster", ModelInput::Forecast { bars: vec![*bar] }, 0);
//!     }
//!     fn on_data(&mut self, ctx: &mut Context, data: &Data) {
//!         let Some(answer) = data.get::<ModelAnswer>() else { return };
//!         if let Some(p) = answer.forecast() {
//!             if p > 0.0 {
//!                 let _ = ctx.buy(InstrumentId(0), OrderSize::EquityFraction(0.5));
//!             }
//!         }
//!     }
//! }
//! ```

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Bar, Timestamp};

/// An ask's handle, unique within a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AskId(pub u64);

/// Who says a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The question.
    User,
    /// An earlier answer (or the start of this one).
    Assistant,
}

impl Role {
    /// `system`, `user` or `assistant`, as the OpenAI format spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl ChatMessage {
    /// A message.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }
}

/// What a strategy asks a model. Only what is here leaves the machine: the runtime adds
/// nothing of the account (no balances, positions or keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelInput {
    /// A chat, answered by greedy decoding (temperature 0) unless `temperature` says
    /// otherwise.
    Chat {
        /// The messages, oldest first.
        messages: Vec<ChatMessage>,
        /// The longest answer, in tokens.
        max_tokens: u32,
        /// Sampling temperature (0 = greedy, reproducible).
        temperature: f32,
    },
    /// A text completion.
    Completion {
        /// The prompt.
        prompt: String,
        /// The longest answer, in tokens.
        max_tokens: u32,
        /// Sampling temperature (0 = greedy, reproducible).
        temperature: f32,
    },
    /// Sentence embeddings, one per text.
    Embed {
        /// The texts.
        texts: Vec<String>,
    },
    /// A bar forecaster's prediction at the last of `bars` (closed bars of one instrument,
    /// oldest first; at least the model's warm-up).
    Forecast {
        /// The bars.
        bars: Vec<Bar>,
    },
}

impl ModelInput {
    /// `chat`, `completion`, `embed` or `forecast`.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelInput::Chat { .. } => "chat",
            ModelInput::Completion { .. } => "completion",
            ModelInput::Embed { .. } => "embed",
            ModelInput::Forecast { .. } => "forecast",
        }
    }

    /// Why this input cannot be sent, if it cannot (checked by [`Context::ask`]).
    ///
    /// [`Context::ask`]: crate::Context::ask
    pub fn problem(&self) -> Option<String> {
        let temp = |t: f32| {
            (!(t.is_finite() && (0.0..=2.0).contains(&t)))
                .then(|| format!("temperature {t} is outside [0, 2]"))
        };
        match self {
            ModelInput::Chat { messages, max_tokens, temperature } => {
                if messages.is_empty() {
                    return Some("a chat needs at least one message".into());
                }
                if *max_tokens == 0 {
                    return Some("max_tokens must be at least 1".into());
                }
                temp(*temperature)
            }
            ModelInput::Completion { prompt, max_tokens, temperature } => {
                if prompt.is_empty() {
                    return Some("the prompt is empty".into());
                }
                if *max_tokens == 0 {
                    return Some("max_tokens must be at least 1".into());
                }
                temp(*temperature)
            }
            ModelInput::Embed { texts } => {
                if texts.is_empty() {
                    return Some("no texts to embed".into());
                }
                texts.iter().position(String::is_empty).map(|i| format!("texts[{i}] is empty"))
            }
            ModelInput::Forecast { bars } => {
                if bars.is_empty() {
                    return Some("no bars to forecast from".into());
                }
                for (i, b) in bars.iter().enumerate() {
                    let p = [b.open, b.high, b.low, b.close];
                    if p.iter().any(|x| !(x.is_finite() && *x > 0.0))
                        || !(b.volume.is_finite() && b.volume >= 0.0)
                    {
                        return Some(format!(
                            "bars[{i}]: prices must be finite and positive, volume finite and not negative"
                        ));
                    }
                    if i > 0 && b.ts <= bars[i - 1].ts {
                        return Some(format!("bars[{i}] is not after the bar before"));
                    }
                }
                None
            }
        }
    }
}

/// A request for a model answer, as the runtime receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelAsk {
    /// Its handle.
    pub id: AskId,
    /// The model asked for: a route name of the router's config (live), or of the backtest's
    /// models.
    pub model: String,
    /// What is asked.
    pub input: ModelInput,
    /// The strategy's own label (which instrument, which job).
    pub tag: u64,
    /// When it was asked.
    pub at: Timestamp,
}

impl ModelAsk {
    /// The answer to this ask that arrives at `at` (how a runtime makes one).
    pub fn answer(&self, at: Timestamp, result: Result<ModelReply, ModelFailure>) -> ModelAnswer {
        ModelAnswer {
            ask: self.id,
            model: Arc::from(self.model.as_str()),
            tag: self.tag,
            asked_at: self.at,
            at,
            result,
        }
    }
}

/// What a model answered, checked and typed by the runtime: a strategy never sees a
/// malformed or truncated answer, only this or a [`ModelFailure`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelOutput {
    /// Generated text (chat or completion).
    Text(String),
    /// One embedding per text.
    Embeddings(Vec<Vec<f32>>),
    /// A forecaster's prediction: the expected log return over its horizon, or the
    /// probability of a rise, as the model was trained.
    Forecast(f64),
}

/// An answer that did come.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReply {
    /// The answer.
    pub output: ModelOutput,
    /// The endpoint that answered (`local` for an in-process model, `recorded` for a
    /// recording).
    pub endpoint: String,
    /// The model that answered, as it named itself.
    pub model: String,
}

/// Why no answer came: every target failed, the deadline passed, the input was refused, or
/// the run has no such model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFailure {
    /// What went wrong, for logs.
    pub reason: String,
}

/// The answer to a [`Context::ask`](crate::Context::ask): the payload of the [`Data`] event
/// (source `model:<name>`) that brings it.
///
/// [`Data`]: crate::Data
#[derive(Debug, Clone, PartialEq)]
pub struct ModelAnswer {
    /// The ask it answers.
    pub ask: AskId,
    /// The model asked for.
    pub model: Arc<str>,
    /// The ask's tag.
    pub tag: u64,
    /// When it was asked.
    pub asked_at: Timestamp,
    /// When it arrived (the event's time).
    pub at: Timestamp,
    /// The answer, or why there is none.
    pub result: Result<ModelReply, ModelFailure>,
}

impl ModelAnswer {
    /// How long it took, in nanoseconds.
    pub fn latency_ns(&self) -> i64 {
        self.at.0.saturating_sub(self.asked_at.0)
    }

    /// The text, for a chat or completion that was answered.
    pub fn text(&self) -> Option<&str> {
        match &self.result {
            Ok(ModelReply { output: ModelOutput::Text(t), .. }) => Some(t),
            _ => None,
        }
    }

    /// The embeddings, for an embedding ask that was answered.
    pub fn embeddings(&self) -> Option<&[Vec<f32>]> {
        match &self.result {
            Ok(ModelReply { output: ModelOutput::Embeddings(e), .. }) => Some(e),
            _ => None,
        }
    }

    /// The prediction, for a forecast that was answered.
    pub fn forecast(&self) -> Option<f64> {
        match &self.result {
            Ok(ModelReply { output: ModelOutput::Forecast(p), .. }) => Some(*p),
            _ => None,
        }
    }

    /// The reason, when no answer came.
    pub fn failure(&self) -> Option<&str> {
        self.result.as_ref().err().map(|f| f.reason.as_str())
    }
}

impl fmt::Display for ModelFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}
