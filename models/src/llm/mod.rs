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
        let sampling = if opts.temperature == 0.0 {
            Sampling::ArgMax
        } else {
            match opts.top_p {
                Some(p) => Sampling::TopP { p, temperature: opts.temperature },
                None => Sampling::All { temperature: opts.temperature },
            }
        };
        let mut sampler = LogitsProcessor::from_sampling(opts.seed, sampling);
        let prompt_ids = self.prompt_tokens(prompt, opts.chat);

        let t0 = Instant::now();
        let input = Tensor::new(prompt_ids.as_slice(), &self.device)?.unsqueeze(0)?;
        // Position 0 resets the KV cache.
        let mut logits = self.model.forward(&input, 0)?.squeeze(0)?;
        let prefill = t0.elapsed();
        let t1 = Instant::now();

        let mut bytes: Vec<u8> = Vec::new();
        let mut emitted = 0usize;
        let mut ids = Vec::new();
        let mut stop = StopReason::MaxTokens;
        let mut text = String::new();
        for step in 0..opts.max_tokens {
            let next = sampler.sample(&logits)?;
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
            if valid > emitted {
                let piece = String::from_utf8_lossy(&bytes[emitted..valid]).into_owned();
                text.push_str(&piece);
                emitted = valid;
                if let Some(s) =
                    opts.stop.iter().find(|s| !s.is_empty() && text.contains(s.as_str()))
                {
                    let cut = text.find(s.as_str()).unwrap_or(text.len());
                    // Hand out what precedes the stop sequence and no more.
                    let already = text.len() - piece.len();
                    if cut > already {
                        on_text(&text[already..cut]);
                    }
                    text.truncate(cut);
                    stop = StopReason::StopSequence;
                    break;
                }
                on_text(&piece);
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
            on_text(&tail);
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
