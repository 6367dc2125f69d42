//! A BERT encoder for sentence embeddings, on candle's fused kernels.
//!
//! candle-transformers has a BERT, and Kairos used it. Two measured reasons for this one:
//!
//! - **Half precision.** candle-transformers 0.11's attention mask is
//!   `(1 - mask) * f32::MIN` cast to the weights' dtype. In `f16` and `bf16` that constant is
//!   `-inf`, and `0 * -inf` is NaN at every real token: all-NaN embeddings (the test
//!   `minilm::half_precision_weights_give_the_f32_embeddings` caught it). Here the mask is an
//!   additive bias of -10,000 (what BERT itself used), finite in every dtype; it still puts
//!   exactly zero weight on padding after the softmax.
//! - **Fewer kernels per layer**, which is what batch-1 latency on a GPU is made of: one
//!   matmul for query, key and value together (their weights concatenated at load), the
//!   attention scale folded into the query weights, and candle-nn's fused softmax and layer
//!   norm instead of their five- and seven-operation compositions.
//!
//! The weights are the same file and the same names (`embeddings.*`, `encoder.layer.N.*`, with
//! or without a `bert.` prefix); the results match candle-transformers' BERT in `f32`.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct, PositionEmbeddingType};

use crate::{Error, Result};

/// The additive attention bias on padding: `exp(-10000)` is zero in every float type.
const MASKED: f64 = -10_000.0;

struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn load(vb: VarBuilder<'_>, size: usize, eps: f64) -> Result<Self> {
        Ok(Self { weight: vb.get(size, "weight")?, bias: vb.get(size, "bias")?, eps: eps as f32 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)?)
    }
}

/// `x @ w^T + b` for `x` of shape `(rows, in)`.
struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn load(vb: VarBuilder<'_>, inputs: usize, outputs: usize) -> Result<Self> {
        Ok(Self { weight: vb.get((outputs, inputs), "weight")?, bias: vb.get(outputs, "bias")? })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?)
    }
}

struct Layer {
    /// Query (pre-scaled by `1/sqrt(head_dim)`), key and value stacked: `(3 * hidden, hidden)`.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

/// A loaded BERT: token ids, token types and attention mask in, last hidden states out.
pub(crate) struct Encoder {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    activation: HiddenAct,
}

impl Encoder {
    /// Builds the encoder of `config` from `vb`'s tensors (a checkpoint's or made-up ones).
    pub(crate) fn load(vb: VarBuilder<'_>, config: &Config) -> Result<Self> {
        let bad = |reason: String| Error::Setting { name: "bert config", reason };
        if config.position_embedding_type != PositionEmbeddingType::Absolute {
            return Err(bad("only absolute position embeddings are supported".into()));
        }
        let (h, heads) = (config.hidden_size, config.num_attention_heads);
        if heads == 0 || h % heads != 0 {
            return Err(bad(format!("hidden size {h} does not split into {heads} heads")));
        }
        let head_dim = h / heads;
        let vb = if !vb.contains_tensor("embeddings.word_embeddings.weight")
            && vb.contains_tensor("bert.embeddings.word_embeddings.weight")
        {
            vb.pp("bert")
        } else {
            vb
        };
        let e = vb.pp("embeddings");
        let eps = config.layer_norm_eps;
        let word = e.get((config.vocab_size, h), "word_embeddings.weight")?;
        let position = e.get((config.max_position_embeddings, h), "position_embeddings.weight")?;
        let token_type = e.get((config.type_vocab_size, h), "token_type_embeddings.weight")?;
        let embedding_norm = Norm::load(e.pp("LayerNorm"), h, eps)?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            let q = Linear::load(a.pp("self.query"), h, h)?;
            let k = Linear::load(a.pp("self.key"), h, h)?;
            let v = Linear::load(a.pp("self.value"), h, h)?;
            let qkv = Linear {
                weight: Tensor::cat(&[(q.weight * scale)?, k.weight, v.weight], 0)?,
                bias: Tensor::cat(&[(q.bias * scale)?, k.bias, v.bias], 0)?,
            };
            layers.push(Layer {
                qkv,
                attention_out: Linear::load(a.pp("output.dense"), h, h)?,
                attention_norm: Norm::load(a.pp("output.LayerNorm"), h, eps)?,
                intermediate: Linear::load(
                    l.pp("intermediate.dense"),
                    h,
                    config.intermediate_size,
                )?,
                output: Linear::load(l.pp("output.dense"), config.intermediate_size, h)?,
                output_norm: Norm::load(l.pp("output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Self {
            word,
            position,
            token_type,
            embedding_norm,
            layers,
            heads,
            head_dim,
            activation: config.hidden_act,
        })
    }

    /// The last hidden states `(batch, tokens, hidden)` in the weights' dtype, for `u32` ids,
    /// types and mask of shape `(batch, tokens)`.
    pub(crate) fn forward(&self, ids: &Tensor, types: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if types.dims2()? != (b, t) || mask.dims2()? != (b, t) {
            return Err(Error::Data(format!(
                "token types {:?} and mask {:?} must have the ids' shape ({b}, {t})",
                types.dims(),
                mask.dims()
            )));
        }
        let max = self.position.dim(0)?;
        if t > max {
            return Err(Error::Data(format!("{t} tokens is more than the model's {max}")));
        }
        // candle's CUDA gather does not check its ids (an id past the table reads out of
        // bounds), so they are checked here, on every device alike: one reduction each.
        for (what, t, table) in
            [("token id", ids, &self.word), ("token type", types, &self.token_type)]
        {
            let top = t.flatten_all()?.max(0)?.to_scalar::<u32>()?;
            let size = table.dim(0)?;
            if top as usize >= size {
                return Err(Error::Data(format!("{what} {top} is outside the model's {size}")));
            }
        }
        let dtype = self.word.dtype();
        let h = self.dim();
        let words = self.word.index_select(&ids.flatten_all()?, 0)?;
        let kinds = self.token_type.index_select(&types.flatten_all()?, 0)?;
        let positions = self.position.narrow(0, 0, t)?.repeat((b, 1))?;
        let mut x = self.embedding_norm.forward(&((words + kinds)? + positions)?)?; // (b*t, h)
        // (b, 1, 1, t): 0 on tokens, MASKED on padding.
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * -MASKED)?
            .to_dtype(dtype)?
            .reshape((b, 1, 1, t))?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &bias, b, t, h)?;
        }
        Ok(x.reshape((b, t, h))?)
    }

    fn layer(
        &self,
        l: &Layer,
        x: &Tensor,
        bias: &Tensor,
        b: usize,
        t: usize,
        h: usize,
    ) -> Result<Tensor> {
        let (heads, d) = (self.heads, self.head_dim);
        // One copy puts query, key and value each in (b, heads, t, d) order, side by side.
        let qkv = l.qkv.forward(x)?.reshape((b, t, 3, heads, d))?.permute((2, 0, 3, 1, 4))?;
        let qkv = qkv.contiguous()?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let scores = q.matmul(&k.t()?)?.broadcast_add(bias)?;
        let p = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = p.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b * t, h))?;
        let x = l.attention_norm.forward(&(l.attention_out.forward(&context)? + x)?)?;
        let inner = l.intermediate.forward(&x)?;
        let inner = match self.activation {
            HiddenAct::Gelu => inner.gelu_erf()?,
            HiddenAct::GeluApproximate => inner.gelu()?,
            HiddenAct::Relu => inner.relu()?,
        };
        l.output_norm.forward(&(l.output.forward(&inner)? + x)?)
    }

    /// The hidden size, which is the embedding size.
    pub(crate) fn dim(&self) -> usize {
        self.heads * self.head_dim
    }

    /// The weights' dtype.
    pub(crate) fn dtype(&self) -> DType {
        self.word.dtype()
    }

    /// The device the weights live on.
    pub(crate) fn device(&self) -> &Device {
        self.word.device()
    }
}
