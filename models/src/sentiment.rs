//! News sentiment from sentence embeddings: prototype sentences per class.
//!
//! Each class (positive, negative) is the normalised mean embedding of a handful of
//! prototype headlines. A text's score is its cosine to the positive centroid minus its cosine
//! to the negative one: above zero reads bullish, below bearish, near zero neutral or
//! off-topic. No training is needed, and the prototypes can be replaced with a desk's own.

use std::sync::Arc;

use crate::Result;
use crate::embed::{TextEncoder, cosine};

/// Default bullish prototypes.
pub const POSITIVE: &[&str] = &[
    "Bitcoin price surges as buyers pour in",
    "Crypto market rallies to new record highs",
    "Shares jump after earnings beat expectations",
    "Regulator approves the first spot bitcoin ETF",
    "Major company announces it bought bitcoin for its treasury",
    "Markets rebound strongly as investors return",
    "Exchange reports record inflows and growing adoption",
    "Analysts upgrade the outlook on strong demand",
];

/// Default bearish prototypes.
pub const NEGATIVE: &[&str] = &[
    "Bitcoin price crashes as sellers dump coins",
    "Crypto market plunges amid panic selling",
    "Exchange hacked and millions of dollars stolen",
    "Regulators ban cryptocurrency trading",
    "Shares tumble after the company misses earnings",
    "Crypto lender files for bankruptcy and freezes withdrawals",
    "Markets sink on fears of a recession",
    "Analysts downgrade the outlook on weak demand",
];

/// A prototype sentiment scorer over a shared sentence encoder.
#[derive(Debug, Clone)]
pub struct SentimentScorer {
    encoder: Arc<TextEncoder>,
    positive: Vec<f32>,
    negative: Vec<f32>,
}

fn centroid(rows: &[Vec<f32>]) -> Vec<f32> {
    let dim = rows.first().map_or(0, Vec::len);
    let mut c = vec![0.0f32; dim];
    for r in rows {
        for (a, b) in c.iter_mut().zip(r) {
            *a += b;
        }
    }
    let n = c.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    c.iter_mut().for_each(|v| *v /= n);
    c
}

impl SentimentScorer {
    /// A scorer with the default prototypes.
    pub fn new(encoder: Arc<TextEncoder>) -> Result<Self> {
        Self::with_prototypes(encoder, POSITIVE, NEGATIVE)
    }

    /// A scorer with prototypes of your own (at least one of each).
    pub fn with_prototypes<S: AsRef<str>>(
        encoder: Arc<TextEncoder>,
        positive: &[S],
        negative: &[S],
    ) -> Result<Self> {
        if positive.is_empty() || negative.is_empty() {
            return Err(crate::Error::Setting {
                name: "prototypes",
                reason: "need at least one positive and one negative sentence".into(),
            });
        }
        let positive = centroid(&encoder.embed(positive)?);
        let negative = centroid(&encoder.embed(negative)?);
        Ok(Self { encoder, positive, negative })
    }

    /// Scores in about `-1..=1` (positive is bullish), one per text, batched.
    pub fn score<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(64) {
            for e in self.encoder.embed(chunk)? {
                out.push(f64::from(cosine(&e, &self.positive) - cosine(&e, &self.negative)));
            }
        }
        Ok(out)
    }
}
