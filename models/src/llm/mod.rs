//! A small LLM for decisions: Gemma-3 (270M, Q4_K_M GGUF) through candle-transformers'
//! quantized Gemma-3, with the tokenizer read from the GGUF file itself.
//!
//! Greedy decoding or temperature/top-p sampling with a seed, a KV cache (prefill once, then
//! one token per step), stop sequences, and a JSON trading [`Decision`] parsed and validated
//! with serde, where anything invalid becomes `hold` with the reason logged.

mod decision;
mod tokenizer;

use std::path::Path;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_gemma3::ModelWeights;

pub use decision::{Action, DECISION_PREFIX, Decision, decision_prompt, parse_decision};
pub use tokenizer::GgufTokenizer;

use crate::{Error, Result};

/// How to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Most new tokens.
    pub max_tokens: usize,
    /// 0 for greedy decoding; otherwise the softmax temperature.
    pub temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens with this much probability (with a
    /// temperature above 0).
    pub top_p: Option<f64>,
    /// Seed for sampling.
    pub seed: u64,
    /// Stop when the text ends with any of these (the stop text is not returned).
    pub stop: Vec<String>,
    /// Wrap the prompt in Gemma's chat turn markers (`<start_of_turn>user ...`), for
    /// instruction-tuned models. The shipped Gemma-3-270M is the base model: plain completion.
    pub chat: bool,
    /// Compute each new token's log-probability ([`Step::logprob`]) even without
    /// alternatives (costs a softmax over the vocabulary per token).
    pub logprobs: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            temperature: 0.0,
            top_p: None,
            seed: 299_792_458,
            stop: Vec::new(),
            chat: false,
            logprobs: false,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model ended its turn.
    EndOfTurn,
    /// A stop sequence appeared.
    StopSequence,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The caller stopped it (a deadline, a client that went away).
    Cancelled,
}

/// One message of a conversation for [`Gemma::chat_tokens`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatTurn<'a> {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: &'a str,
    /// Its text.
    pub content: &'a str,
}

/// One generated token, as [`Gemma::generate_from`] hands it out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step<'a> {
    /// The token id.
    pub id: u32,
    /// The text this token completes (empty while a character is still incomplete; cut
    /// before a stop sequence).
    pub text: &'a str,
    /// Its natural-log probability under the model, when asked for.
    pub logprob: Option<f32>,
    /// The likeliest tokens at this position with their log-probabilities, likeliest first.
    pub top: &'a [(u32, f32)],
}

/// The log-softmax of `logits` at `pick`, and the `k` likeliest entries into `top` (likeliest
/// first, ties to the lower id).
fn log_softmax_pick(logits: &[f32], pick: u32, k: usize, top: &mut Vec<(u32, f32)>) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let lse = max + sum.ln() as f32;
    top.clear();
    if k > 0 {
        let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
        let k = k.min(idx.len());
        let by =
            |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
        idx.select_nth_unstable_by(k.saturating_sub(1), by);
        idx.truncate(k);
        idx.sort_by(by);
        top.extend(idx.into_iter().map(|i| (i, logits[i as usize] - lse)));
    }
    logits.get(pick as usize).map_or(f32::NEG_INFINITY, |&l| l - lse)
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Generation {
    /// The new text.
    pub text: String,
    /// Prompt tokens (with the chat markers).
    pub prompt_tokens: usize,
    /// New tokens.
    pub tokens: usize,
    /// Why it stopped.
    pub stop: StopReason,
    /// Prefill time in milliseconds.
    pub prefill_ms: f64,
    /// Decode speed in tokens per second (after the first token).
    pub decode_tokens_per_s: f64,
}

/// A loaded Gemma-3 GGUF model. Generation needs `&mut self` (the KV cache); share one across
/// threads behind a mutex (the [`cache`](crate::cache) does).
pub struct Gemma {
    model: ModelWeights,
    tokenizer: GgufTokenizer,
    device: Device,
    end_of_turn: Option<u32>,
    start_of_turn: Option<u32>,
}

impl std::fmt::Debug for Gemma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gemma")
            .field("vocab", &self.tokenizer.len())
            .field("device", &self.device)
            .finish()
    }
}

impl Gemma {
    /// Loads a GGUF file onto `device`.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let bad = |reason: String| Error::ModelFile { path: path.to_path_buf(), reason };
        let mut file = std::fs::File::open(path)
            .map_err(|cause| Error::Io { path: path.to_path_buf(), cause })?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| bad(format!("not a GGUF file: {e}")))?;
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if !arch.starts_with("gemma") {
            return Err(bad(format!("architecture `{arch}` is not Gemma")));
        }
        let tokenizer = GgufTokenizer::from_gguf(&content).map_err(|e| bad(e.to_string()))?;
        let model =
            ModelWeights::from_gguf(content, &mut file, device).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            end_of_turn: tokenizer.token("<end_of_turn>"),
            start_of_turn: tokenizer.token("<start_of_turn>"),
            model,
            tokenizer,
            device: device.clone(),
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// Prompt tokens: `<bos>`, then the user turn when `chat` (the prompt's own text never
    /// becomes control tokens).
    pub fn prompt_tokens(&self, prompt: &str, chat: bool) -> Vec<u32> {
        let t = &self.tokenizer;
        let mut ids = vec![t.bos];
        match (chat, self.start_of_turn, self.end_of_turn) {
            (true, Some(sot), Some(eot)) => {
                ids.push(sot);
                ids.extend(t.encode("user\n", false));
                ids.extend(t.encode(prompt, false));
                ids.push(eot);
                ids.extend(t.encode("\n", false));
                ids.push(sot);
                ids.extend(t.encode("model\n", false));
            }
            _ => ids.extend(t.encode(prompt, false)),
        }
        ids
    }

    /// The next-token logits after `ids` (a fresh sequence: the KV cache restarts).
    pub fn logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        if ids.is_empty() {
            return Err(Error::Setting { name: "ids", reason: "need at least one token".into() });
        }
        // Checked here: on a GPU, the embedding lookup would read past its table.
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= self.tokenizer.len()) {
            return Err(Error::Data(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.tokenizer.len()
            )));
        }
        let input = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let logits = self.model.forward(&input, 0)?.squeeze(0)?;
        Ok(logits.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
    }

    /// Generates a reply to `prompt`; `on_text` receives the text as it is produced.
    pub fn generate(
        &mut self,
        prompt: &str,
        opts: &GenerateOptions,
        mut on_text: impl FnMut(&str),
    ) -> Result<Generation> {
        let ids = self.prompt_tokens(prompt, opts.chat);
        self.generate_from(&ids, opts, 0, |step| {
            if !step.text.is_empty() {
                on_text(step.text);
            }
            true
        })
    }

    /// Prompt tokens of a conversation in Gemma's chat format: `<bos>`, one turn per message
    /// (`system` text goes at the head of the first user turn, as Gemma's template does), then
    /// the model's turn opened. When the last message is the `assistant`'s, its turn is left
    /// open and generation continues it (a prefill). Message text never becomes control tokens.
    pub fn chat_tokens(&self, messages: &[ChatTurn<'_>]) -> Result<Vec<u32>> {
        let t = &self.tokenizer;
        let (Some(sot), Some(eot)) = (self.start_of_turn, self.end_of_turn) else {
            return Err(Error::Data(
                "this GGUF has no <start_of_turn>/<end_of_turn> tokens: it cannot chat".into(),
            ));
        };
        let mut system = String::new();
        let mut turns: Vec<(&str, String)> = Vec::new();
        for m in messages {
            match m.role {
                "system" | "developer" => {
                    if !system.is_empty() {
                        system.push_str("\n\n");
                    }
                    system.push_str(m.content);
                }
                "user" => {
                    let mut text = std::mem::take(&mut system);
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(m.content);
                    turns.push(("user", text));
                }
                "assistant" => turns.push(("model", m.content.to_string())),
                other => {
                    return Err(Error::Data(format!(
                        "message role `{other}` is not one of system, developer, user, assistant"
                    )));
                }
            }
        }
        if !system.is_empty() {
            turns.push(("user", system));
        }
        if turns.is_empty() {
            return Err(Error::Data("the conversation has no user or assistant message".into()));
        }
        let prefill = turns.last().is_some_and(|(role, _)| *role == "model");
        let mut ids = vec![t.bos];
        let n = turns.len();
        for (i, (role, text)) in turns.iter().enumerate() {
            ids.push(sot);
            ids.extend(t.encode(&format!("{role}\n"), false));
            ids.extend(t.encode(text, false));
            if prefill && i + 1 == n {
                return Ok(ids);
            }
            ids.push(eot);
            ids.extend(t.encode("\n", false));
        }
        ids.push(sot);
        ids.extend(t.encode("model\n", false));
        Ok(ids)
    }

    /// The core of generation, from prompt token ids. `on_step` sees every new token with the
    /// text it completes (whole characters only, so sometimes empty; cut before a stop
    /// sequence), its log-probability under the model (before temperature and top-p, as
    /// OpenAI reports it) and the `top_logprobs` likeliest alternatives. Returning `false`
    /// from `on_step` stops generation ([`StopReason::Cancelled`]): a deadline or a client
    /// that went away.
    pub fn generate_from(
        &mut self,
        prompt_ids: &[u32],
        opts: &GenerateOptions,
        top_logprobs: usize,
        mut on_step: impl FnMut(&Step<'_>) -> bool,
    ) -> Result<Generation> {
        if !(opts.temperature >= 0.0 && opts.temperature.is_finite()) {
            return Err(Error::Setting {
                name: "temperature",
                reason: "must be zero or positive".into(),
            });
        }
        if let Some(p) = opts.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(Error::Setting { name: "top_p", reason: "must be in (0, 1]".into() });
        }
        if prompt_ids.is_empty() {
            return Err(Error::Setting { name: "prompt", reason: "no tokens".into() });
        }
        if let Some(bad) = prompt_ids.iter().find(|&&i| i as usize >= self.tokenizer.len()) {
            return Err(Error::Data(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.tokenizer.len()
            )));
        }
        let sampling = if opts.temperature == 0.0 {
            Sampling::ArgMax
        } else {
            match opts.top_p {
                Some(p) => Sampling::TopP { p, temperature: opts.temperature },
                None => Sampling::All { temperature: opts.temperature },
            }
        };
        let mut sampler = LogitsProcessor::from_sampling(opts.seed, sampling);

        let t0 = Instant::now();
        let input = Tensor::new(prompt_ids, &self.device)?.unsqueeze(0)?;
        // Position 0 resets the KV cache.
        let mut logits = self.model.forward(&input, 0)?.squeeze(0)?;
        let prefill = t0.elapsed();
        let t1 = Instant::now();

        let mut bytes: Vec<u8> = Vec::new();
        let mut emitted = 0usize;
        let mut ids = Vec::new();
        let mut stop = StopReason::MaxTokens;
        let mut text = String::new();
        let mut top: Vec<(u32, f32)> = Vec::new();
        for step in 0..opts.max_tokens {
            let next = sampler.sample(&logits)?;
            let logprob = if top_logprobs > 0 || opts.logprobs {
                let raw = logits.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
                Some(log_softmax_pick(&raw, next, top_logprobs, &mut top))
            } else {
                None
            };
            if next == self.tokenizer.eos || Some(next) == self.end_of_turn {
                stop = StopReason::EndOfTurn;
                break;
            }
            ids.push(next);
            self.tokenizer.bytes(next, &mut bytes);
            // Emit whole characters only.
            let valid = match std::str::from_utf8(&bytes[emitted..]) {
                Ok(_) => bytes.len(),
                Err(e) => emitted + e.valid_up_to(),
            };
            let mut piece = String::new();
            if valid > emitted {
                piece = String::from_utf8_lossy(&bytes[emitted..valid]).into_owned();
                text.push_str(&piece);
                emitted = valid;
                if let Some(s) =
                    opts.stop.iter().find(|s| !s.is_empty() && text.contains(s.as_str()))
                {
                    let cut = text.find(s.as_str()).unwrap_or(text.len());
                    // Hand out what precedes the stop sequence and no more.
                    let already = text.len() - piece.len();
                    let out = if cut > already { &text[already..cut] } else { "" };
                    let step = Step { id: next, text: out, logprob, top: &top };
                    on_step(&step);
                    text.truncate(cut);
                    stop = StopReason::StopSequence;
                    break;
                }
            }
            if !on_step(&Step { id: next, text: &piece, logprob, top: &top }) {
                stop = StopReason::Cancelled;
                break;
            }
            if step + 1 == opts.max_tokens {
                break;
            }
            let pos = prompt_ids.len() + ids.len() - 1;
            let input = Tensor::new(&[next], &self.device)?.unsqueeze(0)?;
            logits = self.model.forward(&input, pos)?.squeeze(0)?;
        }
        if stop != StopReason::StopSequence && emitted < bytes.len() {
            let tail = String::from_utf8_lossy(&bytes[emitted..]).into_owned();
            if let Some(&last) = ids.last() {
                on_step(&Step { id: last, text: &tail, logprob: None, top: &[] });
            }
            text.push_str(&tail);
        }
        let decode = t1.elapsed().as_secs_f64();
        Ok(Generation {
            text,
            prompt_tokens: prompt_ids.len(),
            tokens: ids.len(),
            stop,
            prefill_ms: prefill.as_secs_f64() * 1e3,
            decode_tokens_per_s: if ids.len() > 1 && decode > 0.0 {
                (ids.len() - 1) as f64 / decode
            } else {
                0.0
            },
        })
    }

    /// Asks for a trading decision about `context` and parses it; an invalid reply is `hold`
    /// (with the reason in [`Decision::invalid`] and the log). The reply is the JSON object the
    /// prompt opened, ended at its first `}` or line break.
    pub fn decide(
        &mut self,
        context: &str,
        opts: &GenerateOptions,
    ) -> Result<(Decision, Generation)> {
        let mut o = opts.clone();
        o.stop.extend(["}".to_string(), "\n".to_string()]);
        let mut g = self.generate(&decision_prompt(context), &o, |_| {})?;
        g.text = format!("{DECISION_PREFIX}{}}}", g.text);
        Ok((parse_decision(&g.text), g))
    }
}
