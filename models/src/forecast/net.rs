//! The forecasters' networks, in candle's shape: a config and `load(vb, cfg)` plus `forward`.

use candle_core::{D, Module, Result as CResult, Tensor};
use candle_nn::rnn::{GRU, GRUConfig, RNN};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::features;
use crate::{Error, Result};

/// A forecaster's architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Arch {
    /// A multilayer perceptron over the current bar's features, ReLU between layers.
    Mlp {
        /// Hidden layer widths.
        hidden: Vec<usize>,
    },
    /// A one-layer GRU over the last `seq_len` bars' features; its last state goes through a
    /// linear head.
    Gru {
        /// State width.
        hidden: usize,
        /// Bars per input window.
        seq_len: usize,
    },
}

impl Arch {
    /// The default MLP (11 -> 64 -> 32 -> 1).
    pub fn mlp() -> Self {
        Arch::Mlp { hidden: vec![64, 32] }
    }

    /// The default sequence model (GRU of width 32 over 32 bars).
    pub fn gru() -> Self {
        Arch::Gru { hidden: 32, seq_len: 32 }
    }

    /// `mlp` or `seq` (the GRU), with default sizes.
    pub fn by_name(name: &str) -> Result<Self> {
        match name {
            "mlp" => Ok(Self::mlp()),
            "seq" | "gru" => Ok(Self::gru()),
            _ => Err(Error::Setting {
                name: "model",
                reason: format!("unknown model `{name}`: use mlp or seq"),
            }),
        }
    }

    /// Rows per input window.
    pub fn seq_len(&self) -> usize {
        match self {
            Arch::Mlp { .. } => 1,
            Arch::Gru { seq_len, .. } => *seq_len,
        }
    }

    /// Checks sizes are usable.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| Err(Error::Setting { name: "arch", reason: reason.into() });
        match self {
            Arch::Mlp { hidden } if hidden.iter().any(|&h| h == 0 || h > 4096) => {
                bad("MLP widths must be in 1..=4096")
            }
            Arch::Gru { hidden, seq_len }
                if *hidden == 0 || *hidden > 1024 || *seq_len == 0 || *seq_len > 1024 =>
            {
                bad("GRU width and sequence length must be in 1..=1024")
            }
            _ => Ok(()),
        }
    }
}

/// A forecaster network. Input `[batch, window, features]`, output `[batch]` (raw: a scaled
/// return or a logit).
#[derive(Debug, Clone)]
pub enum Net {
    /// See [`Arch::Mlp`].
    Mlp {
        /// Hidden layers (`l0`, `l1`, ...).
        layers: Vec<Linear>,
        /// Output layer (`out`).
        out: Linear,
    },
    /// See [`Arch::Gru`].
    Gru {
        /// The recurrent layer (`gru`, PyTorch's tensor names).
        gru: GRU,
        /// Output layer (`out`).
        out: Linear,
    },
}

impl Net {
    /// Builds the network, reading or creating its tensors through `vb`.
    pub fn load(vb: VarBuilder<'_>, arch: &Arch) -> CResult<Self> {
        let n_in = features::COUNT;
        match arch {
            Arch::Mlp { hidden } => {
                let mut layers = Vec::with_capacity(hidden.len());
                let mut width = n_in;
                for (i, &h) in hidden.iter().enumerate() {
                    layers.push(candle_nn::linear(width, h, vb.pp(format!("l{i}")))?);
                    width = h;
                }
                let out = candle_nn::linear(width, 1, vb.pp("out"))?;
                Ok(Net::Mlp { layers, out })
            }
            Arch::Gru { hidden, .. } => {
                let gru = candle_nn::rnn::gru(n_in, *hidden, GRUConfig::default(), vb.pp("gru"))?;
                let out = candle_nn::linear(*hidden, 1, vb.pp("out"))?;
                Ok(Net::Gru { gru, out })
            }
        }
    }

    /// Raw outputs for `[batch, window, features]`.
    pub fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        match self {
            Net::Mlp { layers, out } => {
                let (b, _, f) = x.dims3()?;
                let mut h = x.reshape((b, f))?;
                for l in layers {
                    h = l.forward(&h)?.relu()?;
                }
                out.forward(&h)?.squeeze(D::Minus1)
            }
            Net::Gru { gru, out } => {
                let states = gru.seq(x)?;
                let Some(last) = states.last() else {
                    candle_core::bail!("a GRU forecaster needs at least one row per window")
                };
                out.forward(last.h())?.squeeze(D::Minus1)
            }
        }
    }
}
