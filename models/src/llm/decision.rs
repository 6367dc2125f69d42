//! The JSON decision an LLM is asked for, and its strict parsing.

use serde::{Deserialize, Serialize};

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Open or add to a long position.
    Buy,
    /// Open or add to a short position (or reduce a long one).
    Sell,
    /// Do nothing.
    Hold,
}

/// A validated decision: `{"action":"buy|sell|hold","confidence":0..1,"reason":"..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The action.
    pub action: Action,
    /// How sure, in `0..=1`.
    pub confidence: f64,
    /// One sentence of why.
    pub reason: String,
    /// Set when the model's reply was unusable and this `hold` replaced it: what was wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

impl Decision {
    fn hold(why: String) -> Self {
        tracing::warn!(reason = %why, "LLM reply is not a valid decision; holding");
        Decision {
            action: Action::Hold,
            confidence: 0.0,
            reason: String::new(),
            invalid: Some(why),
        }
    }
}

/// What [`decision_prompt`] ends with: the opening of the JSON object, so the model only
/// continues it. Prepend it to the reply before parsing.
pub const DECISION_PREFIX: &str = "{\"action\": \"";

/// A few-shot completion prompt asking for a decision about `context` (a headline, a market
/// summary; folded onto one line). It ends inside the JSON object ([`DECISION_PREFIX`]), which
/// suits base models such as Gemma-3-270M as well as instruction-tuned ones.
pub fn decision_prompt(context: &str) -> String {
    let context = context.split_whitespace().collect::<Vec<_>>().join(" ");
    format!(
        "Each line is market news followed by a trading decision as JSON.\n\n\
         News: Bitcoin falls 15% after a major exchange halts withdrawals.\n\
         Decision: {{\"action\": \"sell\", \"confidence\": 0.8, \"reason\": \"exchange failure drives selling\"}}\n\n\
         News: Ether trades flat in a quiet session with low volume.\n\
         Decision: {{\"action\": \"hold\", \"confidence\": 0.6, \"reason\": \"no clear signal\"}}\n\n\
         News: Bitcoin jumps 10% as a large asset manager files for a spot ETF.\n\
         Decision: {{\"action\": \"buy\", \"confidence\": 0.7, \"reason\": \"new institutional demand\"}}\n\n\
         News: {context}\n\
         Decision: {DECISION_PREFIX}"
    )
}

/// The first balanced `{...}` in `text` (braces inside JSON strings ignored).
fn first_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, c) in text[start..].char_indices() {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Parses a model's reply: the first JSON object in it (code fences and chatter around it
/// are ignored) must be a [`Decision`] with a known action, a finite confidence in `0..=1`
/// and no other keys. Anything else is `hold`, with what was wrong in `invalid` and in the log.
pub fn parse_decision(reply: &str) -> Decision {
    let Some(obj) = first_object(reply) else {
        return Decision::hold(format!("no JSON object in the reply {:?}", clip(reply)));
    };
    let d: Decision = match serde_json::from_str(obj) {
        Ok(d) => d,
        Err(e) => return Decision::hold(format!("{e} in {:?}", clip(obj))),
    };
    if d.invalid.is_some() {
        return Decision::hold("the reply sets `invalid`".into());
    }
    if !(d.confidence.is_finite() && (0.0..=1.0).contains(&d.confidence)) {
        return Decision::hold(format!("confidence {} is outside 0..=1", d.confidence));
    }
    d
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_replies_parse() {
        let d = parse_decision(
            "Sure!\n```json\n{\"action\": \"buy\", \"confidence\": 0.7, \"reason\": \"ETF {approved}\"}\n```",
        );
        assert_eq!(d.action, Action::Buy);
        assert_eq!(d.confidence, 0.7);
        assert_eq!(d.reason, "ETF {approved}");
        assert!(d.invalid.is_none());
    }

    #[test]
    fn invalid_replies_hold_and_say_why() {
        for (reply, why) in [
            ("I think you should buy.", "no JSON object"),
            ("{\"action\": \"yolo\", \"confidence\": 0.5, \"reason\": \"x\"}", "unknown variant"),
            ("{\"action\": \"buy\", \"confidence\": 1.5, \"reason\": \"x\"}", "outside"),
            ("{\"action\": \"sell\", \"reason\": \"x\"}", "confidence"),
            (
                "{\"action\": \"buy\", \"confidence\": 0.5, \"reason\": \"x\", \"size\": 9}",
                "unknown field",
            ),
            ("{\"action\": \"buy\", \"confidence\": 0.5, ", "no JSON object"),
        ] {
            let d = parse_decision(reply);
            assert_eq!(d.action, Action::Hold, "{reply}");
            assert_eq!(d.confidence, 0.0);
            let w = d.invalid.unwrap_or_default();
            assert!(w.contains(why), "{reply}: {w}");
        }
    }
}
