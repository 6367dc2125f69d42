//! Models of the real shapes with made-up weights, for where the real weights cannot go: a
//! rented GPU that cannot download them, timing runs, and CPU-against-GPU parity checks.
//!
//! Every value comes from the seed and the tensor's name, so each device, each run and each
//! build gets the same model. The outputs mean nothing; the cost per token is the real
//! model's, since the shapes, dtypes and quantisation formats are the same:
//!
//! - [`minilm_config`] and [`Bert::synthetic`](crate::embed::Bert::synthetic):
//!   all-MiniLM-L6-v2 (6 layers, 384 wide, 30,522 tokens);
//! - [`write_gemma3_270m`]: a Gemma-3-270M GGUF with the Q4_K_M file's layout, tensor by
//!   tensor (Q8_0 embeddings, Q5_0/Q8_0/Q4_K/Q6_K projections as llama.cpp's Q4_K_M assigns
//!   them), and a made-up SentencePiece vocabulary of the real size with byte fallback.

use std::path::Path;

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use candle_transformers::models::bert::Config;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// all-MiniLM-L6-v2's `config.json`.
pub fn minilm_config() -> Config {
    serde_json::from_str(
        r#"{"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
            "num_attention_heads": 12, "intermediate_size": 1536, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
            "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
            "position_embedding_type": "absolute", "model_type": "bert"}"#,
    )
    .expect("the MiniLM config parses")
}

/// FNV-1a: a hash of the name that is the same in every build (std's hasher may change).
fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The values of tensor `name` of `shape`, from `seed`. Norm scales are near 1, biases near
/// 0, matrices uniform with standard deviation `1/sqrt(fan_in)` (activations stay of order 1
/// through the layers, as in a trained model).
pub fn values(seed: u64, name: &str, shape: &Shape) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(name));
    let n = shape.elem_count();
    let lower = name.to_ascii_lowercase();
    let uniform = |rng: &mut ChaCha8Rng, half: f32| rng.random_range(-half..=half);
    let bias = lower.ends_with("bias") || lower.ends_with("beta");
    if bias {
        return (0..n).map(|_| uniform(&mut rng, 0.02)).collect();
    }
    if lower.contains("norm") || shape.rank() == 1 {
        return (0..n).map(|_| 1.0 + uniform(&mut rng, 0.1)).collect();
    }
    let fan_in = *shape.dims().last().unwrap_or(&1) as f32;
    // Uniform on [-a, a] has standard deviation a / sqrt(3).
    let half = (3.0 / fan_in).sqrt();
    (0..n).map(|_| uniform(&mut rng, half)).collect()
}

/// Tensors made on request by [`values`], built on the CPU and moved to the device, so that
/// every device holds the same numbers.
struct Synthetic {
    seed: u64,
}

impl SimpleBackend for Synthetic {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let v = values(self.seed, name, &s);
        Tensor::from_vec(v, s, &Device::Cpu)?.to_dtype(dtype)?.to_device(dev)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("synthetic weights need a shape: `{name}` was asked for without one")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

/// A [`VarBuilder`] that makes every tensor a model asks for with [`values`].
pub fn var_builder(seed: u64, dtype: DType, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_backend(Box::new(Synthetic { seed }), dtype, device.clone())
}

/// Gemma-3-270M's dimensions.
const VOCAB: usize = 262_144;
const HIDDEN: usize = 640;
const LAYERS: usize = 18;
const FFN: usize = 2048;
const HEADS: usize = 4;
const HEAD_DIM: usize = 256;

/// llama.cpp's Q4_K_M rule for `attn_v` and `ffn_down`: more bits in the first and last
/// eighth of the layers and in every third layer between.
fn more_bits(layer: usize) -> bool {
    let n = LAYERS;
    layer < n / 8 || layer >= 7 * n / 8 || (layer - n / 8) % 3 == 2
}

/// Each tensor of the Q4_K_M Gemma-3-270M file: name, shape (rows, columns), format.
fn gemma_tensors() -> Vec<(String, Vec<usize>, GgmlDType)> {
    use GgmlDType::{F32, Q4K, Q5_0, Q6K, Q8_0};
    let mut t = vec![
        ("token_embd.weight".to_string(), vec![VOCAB, HIDDEN], Q8_0),
        ("output_norm.weight".to_string(), vec![HIDDEN], F32),
    ];
    for i in 0..LAYERS {
        let (v, down) = if more_bits(i) { (Q8_0, Q6K) } else { (Q5_0, Q4K) };
        let p = |s: &str| format!("blk.{i}.{s}.weight");
        t.extend([
            (p("attn_q"), vec![HEADS * HEAD_DIM, HIDDEN], Q5_0),
            (p("attn_k"), vec![HEAD_DIM, HIDDEN], Q5_0),
            (p("attn_v"), vec![HEAD_DIM, HIDDEN], v),
            (p("attn_output"), vec![HIDDEN, HEADS * HEAD_DIM], Q4K),
            (p("attn_q_norm"), vec![HEAD_DIM], F32),
            (p("attn_k_norm"), vec![HEAD_DIM], F32),
            (p("attn_norm"), vec![HIDDEN], F32),
            (p("post_attention_norm"), vec![HIDDEN], F32),
            (p("ffn_norm"), vec![HIDDEN], F32),
            (p("post_ffw_norm"), vec![HIDDEN], F32),
            (p("ffn_gate"), vec![FFN, HIDDEN], Q5_0),
            (p("ffn_up"), vec![FFN, HIDDEN], Q5_0),
            (p("ffn_down"), vec![HIDDEN, FFN], down),
        ]);
    }
    t
}

/// A SentencePiece vocabulary of `VOCAB` pieces: Gemma's control tokens at their ids, the
/// 256 byte-fallback pieces, then made-up words.
fn gemma_vocabulary() -> (Vec<String>, Vec<i32>) {
    const NORMAL: i32 = 1;
    const UNKNOWN: i32 = 2;
    const CONTROL: i32 = 3;
    const BYTE: i32 = 6;
    let mut pieces = vec!["<pad>".to_string(), "<eos>".into(), "<bos>".into(), "<unk>".into()];
    let mut types = vec![CONTROL, CONTROL, CONTROL, UNKNOWN];
    for b in 0..=255u8 {
        pieces.push(format!("<0x{b:02X}>"));
        types.push(BYTE);
    }
    for s in ["<start_of_turn>", "<end_of_turn>"] {
        pieces.push(s.into());
        types.push(CONTROL);
    }
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    let mut i = 0usize;
    while pieces.len() < VOCAB {
        // Distinct words: `i` in base 26, with the word-start marker on even ones.
        let (mut k, mut w) = (i, String::new());
        loop {
            w.push(letters[k % 26] as char);
            k /= 26;
            if k == 0 {
                break;
            }
        }
        pieces.push(if i.is_multiple_of(2) { format!("\u{2581}{w}") } else { w });
        types.push(NORMAL);
        i += 1;
    }
    (pieces, types)
}

/// Writes a Gemma-3-270M GGUF with the Q4_K_M file's tensors, shapes and formats and made-up
/// weights from `seed` (about 250 MB; a few seconds).
pub fn write_gemma3_270m(path: impl AsRef<Path>, seed: u64) -> Result<()> {
    use gguf_file::Value;
    let path = path.as_ref();
    let io = |cause| Error::Io { path: path.to_path_buf(), cause };
    let mut tensors = Vec::new();
    for (name, dims, format) in gemma_tensors() {
        let shape = Shape::from(dims);
        let t = Tensor::from_vec(values(seed, &name, &shape), shape, &Device::Cpu)?;
        tensors.push((name, QTensor::quantize(&t, format)?));
    }
    let (pieces, types) = gemma_vocabulary();
    let scores = (0..pieces.len()).map(|i| Value::F32(-(i as f32))).collect();
    let u32v = |v: usize| Value::U32(v as u32);
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("gemma3".into())),
        ("general.name", Value::String(format!("synthetic Gemma 3 270m (seed {seed})"))),
        ("gemma3.context_length", u32v(32_768)),
        ("gemma3.embedding_length", u32v(HIDDEN)),
        ("gemma3.block_count", u32v(LAYERS)),
        ("gemma3.feed_forward_length", u32v(FFN)),
        ("gemma3.attention.head_count", u32v(HEADS)),
        ("gemma3.attention.head_count_kv", u32v(1)),
        ("gemma3.attention.key_length", u32v(HEAD_DIM)),
        ("gemma3.attention.value_length", u32v(HEAD_DIM)),
        ("gemma3.attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
        ("gemma3.attention.sliding_window", u32v(512)),
        ("gemma3.rope.freq_base", Value::F32(1_000_000.0)),
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", Value::Array(pieces.into_iter().map(Value::String).collect())),
        ("tokenizer.ggml.scores", Value::Array(scores)),
        ("tokenizer.ggml.token_type", Value::Array(types.into_iter().map(Value::I32).collect())),
        ("tokenizer.ggml.bos_token_id", u32v(2)),
        ("tokenizer.ggml.eos_token_id", u32v(1)),
        ("tokenizer.ggml.unknown_token_id", u32v(3)),
        ("tokenizer.ggml.padding_token_id", u32v(0)),
        ("tokenizer.ggml.add_space_prefix", Value::Bool(false)),
    ];
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    gguf_file::write(&mut file, &metadata, &tensors)?;
    std::io::Write::flush(&mut file).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_depend_on_seed_and_name_only() {
        let s = Shape::from((4, 8));
        assert_eq!(values(1, "a.weight", &s), values(1, "a.weight", &s));
        assert_ne!(values(1, "a.weight", &s), values(2, "a.weight", &s));
        assert_ne!(values(1, "a.weight", &s), values(1, "b.weight", &s));
        let norm = values(1, "x.LayerNorm.weight", &Shape::from(64));
        assert!(norm.iter().all(|v| (0.9..=1.1).contains(v)), "{norm:?}");
        let bias = values(1, "x.bias", &Shape::from(64));
        assert!(bias.iter().all(|v| v.abs() <= 0.02));
        let m = values(1, "w", &Shape::from((256, 300)));
        let var = m.iter().map(|v| v * v).sum::<f32>() / m.len() as f32;
        assert!((var * 300.0 - 1.0).abs() < 0.05, "variance {var} is not 1/fan_in");
    }

    #[test]
    fn the_q4_k_m_layout_is_gemma_270m_s() {
        let t = gemma_tensors();
        assert_eq!(t.len(), 236, "the real file has 236 tensors");
        let of = |name: &str| t.iter().find(|x| x.0 == name).unwrap().2;
        // Read from the real file: attn_v is Q8_0 and ffn_down Q6_K in these layers.
        let more: Vec<usize> = (0..LAYERS).filter(|&i| more_bits(i)).collect();
        assert_eq!(more, [0, 1, 4, 7, 10, 13, 15, 16, 17]);
        assert_eq!(of("blk.4.ffn_down.weight"), GgmlDType::Q6K);
        assert_eq!(of("blk.5.ffn_down.weight"), GgmlDType::Q4K);
        assert_eq!(of("blk.2.attn_v.weight"), GgmlDType::Q5_0);
        assert_eq!(of("token_embd.weight"), GgmlDType::Q8_0);
        let (pieces, types) = gemma_vocabulary();
        assert_eq!((pieces.len(), types.len()), (VOCAB, VOCAB));
        let unique: std::collections::HashSet<_> = pieces.iter().collect();
        assert_eq!(unique.len(), VOCAB, "pieces are distinct");
    }
}
