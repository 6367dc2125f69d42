//! Model answers in the engine: where a strategy's [`ModelAsk`]s go and how their answers
//! come back as data events.

use std::cmp::Ordering;

use kairos_strategies::{Data, ModelAnswer, ModelAsk, ModelFailure, Timestamp};

/// Who answers a run's model asks.
///
/// A backtest's service answers at once with the time the answer would arrive (the ask's
/// time plus a modelled latency): the engine holds the answer and delivers it then, in time
/// order with everything else. A live service sends the ask on (to the router, on another
/// task) and returns [`Answering::Later`]; the runtime hands the answer to
/// [`Engine::answer`](crate::Engine::answer) when it comes.
pub trait Models: Send {
    /// A strategy asked.
    fn ask(&mut self, ask: ModelAsk) -> Answering;

    /// The run ended with these asks still unanswered (a backtest's answers due after its last
    /// event, a live session's replies in flight).
    fn unanswered(&mut self, asks: usize) {
        let _ = asks;
    }
}

/// What a [`Models`] service did with an ask.
#[derive(Debug)]
pub enum Answering {
    /// Here is the answer; deliver it at its `at` (never before the ask).
    At(ModelAnswer),
    /// It is on its way; the runtime delivers it with [`Engine::answer`](crate::Engine::answer).
    Later,
}

/// A run without a model service: every ask fails at once, saying so.
pub(crate) fn no_service(ask: &ModelAsk) -> ModelAnswer {
    ask.answer(
        ask.at,
        Err(ModelFailure {
            reason: format!(
                "this run has no model service, so `{}` cannot answer (backtests: give the \
                 models with --model NAME=PATH or recorded answers with --model-answers; \
                 paper and live: a router config)",
                ask.model
            ),
        }),
    )
}

/// The data event that brings `answer` (source `model:<name>`).
pub fn answer_event(answer: ModelAnswer) -> Data {
    let source = format!("model:{}", answer.model);
    Data::new(answer.at, source, answer)
}

/// An answer waiting for its time.
pub(crate) struct Due {
    pub at: Timestamp,
    pub seq: u64,
    pub answer: ModelAnswer,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    // Reversed: the earliest (then the first asked) on top of a max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}
