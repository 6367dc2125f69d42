//! The gateway's `local` target: the in-process Candle models (a Gemma GGUF for chat and
//! completions, a MiniLM-layout encoder for embeddings), answering with greedy decoding in
//! the OpenAI format.

use std::path::Path;
use std::sync::Mutex;

use kairos_models::llm::{ChatTurn, Gemma, GenerateOptions, StopReason};
use kairos_models::router::{Kind, LocalModel};
use serde_json::{Value, json};

/// The loaded local models.
pub struct Local {
    llm: Option<(String, Mutex<Gemma>)>,
    embed: Option<(String, kairos_models::embed::TextEncoder)>,
    max_tokens: usize,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("llm", &self.llm.as_ref().map(|l| &l.0))
            .field("embed", &self.embed.as_ref().map(|e| &e.0))
            .finish()
    }
}

fn name_of(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "local".into())
}

impl Local {
    /// Loads what is given, on `device`.
    pub fn load(
        llm: Option<&Path>,
        embed: Option<&Path>,
        device: &str,
        max_tokens: usize,
    ) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let dev = kairos_models::device(device).with_context(|| format!("device {device}"))?;
        let llm = match llm {
            Some(p) => Some((
                name_of(p),
                Mutex::new(
                    Gemma::load(p, &dev).with_context(|| format!("local llm {}", p.display()))?,
                ),
            )),
            None => None,
        };
        let embed = match embed {
            Some(p) => Some((
                name_of(p),
                kairos_models::embed::TextEncoder::load(p, &dev)
                    .with_context(|| format!("local embed {}", p.display()))?,
            )),
            None => None,
        };
        Ok(Self { llm, embed, max_tokens })
    }

    /// The model names a route's `local` target may use.
    pub fn names(&self) -> Vec<String> {
        self.llm.iter().map(|l| l.0.clone()).chain(self.embed.iter().map(|e| e.0.clone())).collect()
    }

    fn generate(&self, kind: Kind, body: &Value) -> Result<Value, String> {
        let (name, g) = self.llm.as_ref().ok_or("no local LLM is loaded (--local-llm)")?;
        let mut g = g.lock().unwrap_or_else(|p| p.into_inner());
        let ids = match kind {
            Kind::Chat => {
                let msgs =
                    body.get("messages").and_then(Value::as_array).ok_or("messages: missing")?;
                let texts: Vec<(String, String)> = msgs
                    .iter()
                    .map(|m| {
                        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
                        let content = match m.get("content") {
                            Some(Value::String(s)) => s.clone(),
                            Some(Value::Array(parts)) => parts
                                .iter()
                                .filter_map(|p| p.get("text").and_then(Value::as_str))
                                .collect::<Vec<_>>()
                                .join(""),
                            _ => String::new(),
                        };
                        (role.to_string(), content)
                    })
                    .collect();
                let turns: Vec<ChatTurn<'_>> =
                    texts.iter().map(|(r, c)| ChatTurn { role: r, content: c }).collect();
                g.chat_tokens(&turns).map_err(|e| e.to_string())?
            }
            _ => {
                let p =
                    body.get("prompt").and_then(Value::as_str).ok_or("prompt: want a string")?;
                g.prompt_tokens(p, false)
            }
        };
        let max_tokens = body
            .get("max_completion_tokens")
            .or(body.get("max_tokens"))
            .and_then(Value::as_u64)
            .map_or(self.max_tokens, |m| m as usize);
        let stop = match body.get("stop") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => {
                a.iter().filter_map(Value::as_str).map(str::to_string).collect()
            }
            _ => Vec::new(),
        };
        let opts = GenerateOptions { max_tokens, temperature: 0.0, stop, ..Default::default() };
        let out = g.generate_from(&ids, &opts, 0, |_| true).map_err(|e| e.to_string())?;
        let finish = match out.stop {
            StopReason::MaxTokens => "length",
            _ => "stop",
        };
        let usage = json!({
            "prompt_tokens": out.prompt_tokens,
            "completion_tokens": out.tokens,
            "total_tokens": out.prompt_tokens + out.tokens,
        });
        let created = crate::now_ms() / 1000;
        Ok(match kind {
            Kind::Chat => json!({
                "id": format!("chatcmpl-local-{}", crate::now_ms()),
                "object": "chat.completion",
                "created": created,
                "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": out.text}, "logprobs": null, "finish_reason": finish}],
                "usage": usage,
            }),
            _ => json!({
                "id": format!("cmpl-local-{}", crate::now_ms()),
                "object": "text_completion",
                "created": created,
                "model": name,
                "choices": [{"index": 0, "text": out.text, "logprobs": null, "finish_reason": finish}],
                "usage": usage,
            }),
        })
    }

    fn embed(&self, body: &Value) -> Result<Value, String> {
        let (name, enc) = self.embed.as_ref().ok_or("no local embedding model (--local-embed)")?;
        let inputs: Vec<String> = match body.get("input") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or("input: want strings"))
                .collect::<Result<_, _>>()?,
            _ => return Err("input: want a string or a list of strings".into()),
        };
        let vecs = enc.embed(&inputs).map_err(|e| e.to_string())?;
        let data: Vec<Value> = vecs
            .into_iter()
            .enumerate()
            .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
            .collect();
        Ok(json!({
            "object": "list",
            "data": data,
            "model": name,
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }))
    }
}

impl LocalModel for Local {
    fn call(&self, kind: Kind, body: &Value) -> Result<Value, String> {
        match kind {
            Kind::Chat | Kind::Completion => self.generate(kind, body),
            Kind::Embedding => self.embed(body),
            Kind::Forecast => Err("the local target serves no forecaster".into()),
        }
    }
}
