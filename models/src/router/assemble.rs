//! Checking stream chunks and assembling them into one answer.
//!
//! The router asks every endpoint for a stream, even when its caller wants one answer: that
//! is how it sees the first token arrive and a stream stall or end early. A caller that asked
//! for one answer gets the chunks put back together here.

use serde_json::{Map, Value, json};

use super::Kind;

/// Checks one chunk of a chat or text-completion stream: an object with a `choices` array
/// whose deltas (or texts) are strings. Returns the text it adds to choice 0 and whether it
/// carries choice 0's finish reason.
pub fn check_chunk(kind: Kind, v: &Value) -> Result<(String, bool), String> {
    let o = v.as_object().ok_or("a chunk that is not an object")?;
    let choices = o.get("choices").and_then(Value::as_array).ok_or("a chunk without `choices`")?;
    let mut text = String::new();
    let mut finished = false;
    for c in choices {
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
        let piece = match kind {
            Kind::Chat => {
                c.get("delta").ok_or("a chat chunk choice without `delta`")?.get("content")
            }
            _ => c.get("text"),
        };
        let piece = match piece {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err("a chunk whose content is not a string".into()),
        };
        let fin = match c.get("finish_reason") {
            None | Some(Value::Null) => false,
            Some(Value::String(_)) => true,
            Some(_) => return Err("a chunk whose finish_reason is not a string".into()),
        };
        if index == 0 {
            text.push_str(piece);
            finished |= fin;
        }
    }
    if let Some(u) = o.get("usage")
        && !u.is_null()
        && u.get("completion_tokens").and_then(Value::as_u64).is_none()
    {
        return Err("a usage block without completion_tokens".into());
    }
    Ok((text, finished))
}

/// Builds one chat completion or text completion from a stream's chunks.
#[derive(Debug, Default)]
pub struct Assembler {
    id: Option<Value>,
    created: Option<Value>,
    model: Option<Value>,
    text: String,
    finish: Option<Value>,
    chat_logprobs: Vec<Value>,
    tokens: Vec<Value>,
    token_logprobs: Vec<Value>,
    top_logprobs: Vec<Value>,
    text_offset: Vec<Value>,
    has_logprobs: bool,
    usage: Option<Value>,
}

impl Assembler {
    /// Adds a checked chunk.
    pub fn push(&mut self, kind: Kind, v: &Value) {
        self.id.get_or_insert_with(|| v.get("id").cloned().unwrap_or(Value::Null));
        self.created.get_or_insert_with(|| v.get("created").cloned().unwrap_or(json!(0)));
        if let Some(m) = v.get("model") {
            // The last answering target's name wins: after a fail-over it names the fallback.
            self.model = Some(m.clone());
        }
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u.clone());
        }
        let Some(choices) = v.get("choices").and_then(Value::as_array) else { return };
        for c in choices.iter().filter(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
        {
            let piece = match kind {
                Kind::Chat => c.pointer("/delta/content"),
                _ => c.get("text"),
            };
            if let Some(s) = piece.and_then(Value::as_str) {
                self.text.push_str(s);
            }
            if let Some(f) = c.get("finish_reason").filter(|f| !f.is_null()) {
                self.finish = Some(f.clone());
            }
            match (kind, c.get("logprobs")) {
                (Kind::Chat, Some(lp)) => {
                    if let Some(a) = lp.get("content").and_then(Value::as_array) {
                        self.has_logprobs = true;
                        self.chat_logprobs.extend(a.iter().cloned());
                    }
                }
                (_, Some(lp)) if !lp.is_null() => {
                    self.has_logprobs = true;
                    let take = |k: &str, into: &mut Vec<Value>| {
                        if let Some(a) = lp.get(k).and_then(Value::as_array) {
                            into.extend(a.iter().cloned());
                        }
                    };
                    take("tokens", &mut self.tokens);
                    take("token_logprobs", &mut self.token_logprobs);
                    take("top_logprobs", &mut self.top_logprobs);
                    take("text_offset", &mut self.text_offset);
                }
                _ => {}
            }
        }
    }

    /// The text so far (what a continuation starts from).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The answer.
    pub fn finish(self, kind: Kind) -> Value {
        let mut choice = Map::new();
        choice.insert("index".into(), json!(0));
        match kind {
            Kind::Chat => {
                choice.insert("message".into(), json!({"role": "assistant", "content": self.text}));
                choice.insert(
                    "logprobs".into(),
                    if self.has_logprobs {
                        json!({"content": self.chat_logprobs})
                    } else {
                        Value::Null
                    },
                );
            }
            _ => {
                choice.insert("text".into(), json!(self.text));
                choice.insert(
                    "logprobs".into(),
                    if self.has_logprobs {
                        json!({
                            "tokens": self.tokens,
                            "token_logprobs": self.token_logprobs,
                            "top_logprobs": self.top_logprobs,
                            "text_offset": self.text_offset,
                        })
                    } else {
                        Value::Null
                    },
                );
            }
        }
        choice.insert("finish_reason".into(), self.finish.unwrap_or(Value::Null));
        let object = if kind == Kind::Chat { "chat.completion" } else { "text_completion" };
        let mut out = json!({
            "id": self.id.unwrap_or(Value::Null),
            "object": object,
            "created": self.created.unwrap_or(json!(0)),
            "model": self.model.unwrap_or(Value::Null),
            "choices": [Value::Object(choice)],
        });
        if let Some(u) = self.usage {
            out["usage"] = u;
        }
        out
    }
}

/// Checks a whole answer (embeddings, forecasts): the shape a strategy reads.
pub fn check_whole(kind: Kind, v: &Value) -> Result<(), String> {
    match kind {
        Kind::Embedding => {
            let data =
                v.get("data").and_then(Value::as_array).ok_or("embeddings without `data`")?;
            for d in data {
                match d.get("embedding") {
                    Some(Value::Array(a)) => {
                        if a.is_empty() || !a.iter().all(|x| x.as_f64().is_some_and(f64::is_finite))
                        {
                            return Err("an embedding that is empty or not finite numbers".into());
                        }
                    }
                    Some(Value::String(_)) => {}
                    _ => return Err("an embedding entry without `embedding`".into()),
                }
            }
            Ok(())
        }
        Kind::Forecast => match v.get("prediction").and_then(Value::as_f64) {
            Some(p) if p.is_finite() => Ok(()),
            _ => Err("a forecast without a finite `prediction`".into()),
        },
        Kind::Chat | Kind::Completion => {
            let c = v.pointer("/choices/0").ok_or("an answer without choices")?;
            let text = match kind {
                Kind::Chat => c.pointer("/message/content"),
                _ => c.get("text"),
            };
            match text {
                Some(Value::String(_)) => Ok(()),
                _ => Err("an answer whose content is not a string".into()),
            }
        }
    }
}

/// A whole chat or text completion (the local model's) as the chunks of a stream.
pub fn as_chunks(kind: Kind, whole: &Value) -> Vec<Value> {
    let base = |choices: Value| {
        json!({
            "id": whole.get("id").cloned().unwrap_or(Value::Null),
            "object": if kind == Kind::Chat { "chat.completion.chunk" } else { "text_completion" },
            "created": whole.get("created").cloned().unwrap_or(json!(0)),
            "model": whole.get("model").cloned().unwrap_or(Value::Null),
            "choices": choices,
        })
    };
    let c = whole.pointer("/choices/0").cloned().unwrap_or(Value::Null);
    let text = match kind {
        Kind::Chat => c.pointer("/message/content").cloned(),
        _ => c.get("text").cloned(),
    }
    .unwrap_or(json!(""));
    let lp = c.get("logprobs").cloned().unwrap_or(Value::Null);
    let fin = c.get("finish_reason").cloned().unwrap_or(json!("stop"));
    let first = match kind {
        Kind::Chat => {
            json!([{"index": 0, "delta": {"role": "assistant", "content": text}, "logprobs": lp, "finish_reason": fin}])
        }
        _ => json!([{"index": 0, "text": text, "logprobs": lp, "finish_reason": fin}]),
    };
    let mut out = vec![base(first)];
    if let Some(u) = whole.get("usage").filter(|u| !u.is_null()) {
        let mut last = base(json!([]));
        last["usage"] = u.clone();
        out.push(last);
    }
    out
}
