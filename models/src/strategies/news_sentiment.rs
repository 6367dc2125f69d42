//! `news_sentiment`: trade timestamped headlines scored by a sentence encoder.

use std::path::Path;

use kairos_strategies::{
    Bar, Context, ParamSpec, Params, Result, Strategy, StrategyInfo, Timestamp,
};
use serde::Deserialize;

use crate::sentiment::SentimentScorer;

/// A headline and when it was published.
#[derive(Debug, Clone, PartialEq)]
pub struct Headline {
    /// Publication time.
    pub ts: Timestamp,
    /// The text.
    pub text: String,
}

#[derive(Deserialize)]
struct Line {
    time: serde_json::Value,
    text: String,
}

fn parse_time(v: &serde_json::Value) -> std::result::Result<i64, String> {
    match v {
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .ok_or_else(|| format!("`{s}` is not an RFC 3339 time (2022-01-05T14:30:00Z)")),
        serde_json::Value::Number(n) => {
            let x = n.as_i64().ok_or_else(|| format!("{n} is not a whole number"))?;
            // Epoch seconds, milliseconds or nanoseconds, by magnitude.
            let scale = match x.unsigned_abs() {
                0..=99_999_999_999 => 1_000_000_000,
                100_000_000_000..=99_999_999_999_999 => 1_000_000,
                _ => 1,
            };
            x.checked_mul(scale).ok_or_else(|| format!("{n} is out of range"))
        }
        other => Err(format!("{other} is not a time")),
    }
}

/// Reads headlines from a JSON-lines file, one `{"time": ..., "text": ...}` per line (`time`
/// in RFC 3339 or epoch seconds/milliseconds/nanoseconds), sorted by time. A bad line is an
/// error naming its number.
pub fn read_headlines(path: &Path) -> crate::Result<Vec<Headline>> {
    let text = std::fs::read_to_string(path)
        .map_err(|cause| crate::Error::Io { path: path.to_path_buf(), cause })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| {
            crate::Error::Data(format!("{} line {}: {reason}", path.display(), i + 1))
        };
        let l: Line = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let ts = parse_time(&l.time).map_err(bad)?;
        if l.text.trim().is_empty() {
            return Err(bad("empty text".into()));
        }
        out.push(Headline { ts: Timestamp(ts), text: l.text });
    }
    out.sort_by_key(|h| h.ts);
    Ok(out)
}

/// Scores each headline once (at build time: a headline's score depends on its text alone)
/// and acts on it at the first bar labelled at or after its publication time, so a headline
/// never moves a decision before it was out. A score above `threshold` targets a long
/// position, below `-threshold` a short one (flat in `long_only` mode), held for `hold` bars
/// unless a newer headline says otherwise; then flat. Sized as `size x min(1, |score| / full)`.
#[derive(Debug)]
pub struct NewsSentiment {
    news: Vec<(Timestamp, f64)>,
    threshold: f64,
    full: f64,
    hold: usize,
    size: f64,
    shorts: bool,
    states: Vec<State>,
}

#[derive(Debug, Clone, Default)]
struct State {
    next: usize,
    side: Option<bool>,
    left: usize,
}

impl NewsSentiment {
    /// A strategy over scored headlines `(time, score)`, sorted by time.
    pub fn new(
        news: Vec<(Timestamp, f64)>,
        threshold: f64,
        full: f64,
        hold: usize,
        size: f64,
        shorts: bool,
    ) -> Self {
        Self { news, threshold, full, hold, size, shorts, states: Vec::new() }
    }

    /// Scores `headlines` with `scorer` and builds the strategy.
    pub fn from_headlines(
        headlines: &[Headline],
        scorer: &SentimentScorer,
        threshold: f64,
        full: f64,
        hold: usize,
        size: f64,
        shorts: bool,
    ) -> crate::Result<Self> {
        let texts: Vec<&str> = headlines.iter().map(|h| h.text.as_str()).collect();
        let scores = scorer.score(&texts)?;
        let news = headlines.iter().zip(scores).map(|(h, s)| (h.ts, s)).collect();
        Ok(Self::new(news, threshold, full, hold, size, shorts))
    }
}

impl Strategy for NewsSentiment {
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        let i = bar.instrument.index();
        if self.states.len() <= i {
            self.states.resize_with(i + 1, State::default);
        }
        let st = &mut self.states[i];
        let mut latest = None;
        while let Some(&(ts, score)) = self.news.get(st.next) {
            if ts > bar.ts {
                break;
            }
            latest = Some(score);
            st.next += 1;
        }
        let (mut side, mut size) = (st.side, self.size);
        if let Some(score) = latest.filter(|s| s.abs() > self.threshold) {
            side = Some(score > 0.0);
            st.left = self.hold;
            size = super::scaled_size(self.size, score, self.full);
        } else if st.left > 0 {
            st.left -= 1;
            if st.left == 0 {
                side = None;
            }
        }
        // Orders only when the target side changes.
        if side != st.side {
            st.side = side;
            super::target(ctx, bar.instrument, side, self.shorts, size);
        }
    }
}

fn build(p: &Params) -> Result<Box<dyn Strategy>> {
    let dir = crate::hub::resolve_dir(p.text("model")?, crate::hub::ENCODER_FILES)
        .map_err(|e| p.invalid("model", e.to_string()))?;
    let encoder = crate::cache::global()
        .text_encoder(&dir, "cpu")
        .map_err(|e| p.invalid("model", e.to_string()))?;
    let scorer = SentimentScorer::new(encoder).map_err(|e| p.invalid("model", e.to_string()))?;
    let headlines =
        read_headlines(Path::new(p.text("news")?)).map_err(|e| p.invalid("news", e.to_string()))?;
    let (threshold, full) = super::thresholds(p)?;
    let s = NewsSentiment::from_headlines(
        &headlines,
        &scorer,
        threshold,
        full,
        p.usize("hold")?,
        p.float("size")?,
        p.choice("mode")? == "long_short",
    )
    .map_err(|e| p.invalid("news", e.to_string()))?;
    Ok(Box::new(s))
}

pub(crate) fn info() -> StrategyInfo {
    StrategyInfo {
        name: "news_sentiment",
        description: "trade timestamped headlines (JSON lines) scored bullish/bearish by a sentence encoder",
        params: [
            ParamSpec::text(
                "model",
                "",
                true,
                "sentence encoder folder (all-MiniLM-L6-v2), or hf:OWNER/NAME",
            ),
            ParamSpec::text("news", "", true, "JSON-lines file of {\"time\": ..., \"text\": ...}"),
            ParamSpec::float("threshold", 0.05, 0.0, 2.0, "score needed to take a side"),
            ParamSpec::float("full", 0.2, 1e-9, 2.0, "score at which a position is full size"),
            ParamSpec::int("hold", 60, 1, 1_000_000, "bars to hold after a headline"),
        ]
        .into_iter()
        .chain(super::sizing_specs())
        .collect(),
        build,
    }
}
