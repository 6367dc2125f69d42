//! The batch-1 CPU inference path: the same weights as the candle network, in plain `f32`
//! slices, so a per-bar decision costs a few microseconds instead of a dozen candle operations.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::Arch;
use crate::Result;
use crate::features::COUNT;

/// A dense layer `y = W x + b`, with `W` stored transposed (`[in, out]`): the product is a sum
/// of weight columns scaled by the inputs, contiguous over the outputs, which the compiler
/// vectorises without horizontal reductions.
#[derive(Debug, Clone)]
pub(super) struct Dense {
    wt: Vec<f32>,
    b: Vec<f32>,
    n_in: usize,
    n_out: usize,
}

fn host(t: Tensor) -> Result<Vec<f32>> {
    Ok(t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

impl Dense {
    fn load(
        vb: &VarBuilder<'_>,
        weight: &str,
        bias: &str,
        n_in: usize,
        n_out: usize,
    ) -> Result<Self> {
        let w = host(vb.get((n_out, n_in), weight)?)?;
        let mut wt = vec![0.0f32; n_in * n_out];
        for o in 0..n_out {
            for i in 0..n_in {
                wt[i * n_out + o] = w[o * n_in + i];
            }
        }
        let b = host(vb.get(n_out, bias)?)?;
        Ok(Self { wt, b, n_in, n_out })
    }

    #[inline]
    fn apply(&self, x: &[f32], y: &mut [f32]) {
        let y = &mut y[..self.n_out];
        y.copy_from_slice(&self.b);
        for (col, &xi) in self.wt.chunks_exact(self.n_out).zip(&x[..self.n_in]) {
            for (yo, w) in y.iter_mut().zip(col) {
                *yo += w * xi;
            }
        }
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// See the module docs.
#[derive(Debug, Clone)]
pub(super) enum FastNet {
    Mlp { layers: Vec<Dense>, out: Dense, width: usize },
    Gru { w_ih: Dense, w_hh: Dense, hidden: usize, out: Dense },
}

impl FastNet {
    pub(super) fn load(vb: &VarBuilder<'_>, arch: &Arch) -> Result<Self> {
        match arch {
            Arch::Mlp { hidden } => {
                let mut layers = Vec::new();
                let mut n_in = COUNT;
                for (i, &h) in hidden.iter().enumerate() {
                    layers.push(Dense::load(
                        vb,
                        &format!("l{i}.weight"),
                        &format!("l{i}.bias"),
                        n_in,
                        h,
                    )?);
                    n_in = h;
                }
                let out = Dense::load(vb, "out.weight", "out.bias", n_in, 1)?;
                let width = hidden.iter().copied().max().unwrap_or(0).max(COUNT);
                Ok(FastNet::Mlp { layers, out, width })
            }
            Arch::Gru { hidden, .. } => {
                let h = *hidden;
                Ok(FastNet::Gru {
                    w_ih: Dense::load(vb, "gru.weight_ih_l0", "gru.bias_ih_l0", COUNT, 3 * h)?,
                    w_hh: Dense::load(vb, "gru.weight_hh_l0", "gru.bias_hh_l0", h, 3 * h)?,
                    hidden: h,
                    out: Dense::load(vb, "out.weight", "out.bias", h, 1)?,
                })
            }
        }
    }

    /// The raw output for one window of standardised rows, oldest first.
    pub(super) fn forward(&self, rows: &[[f32; COUNT]]) -> f32 {
        match self {
            FastNet::Mlp { layers, out, width } => {
                // Two ping-pong buffers on the stack for the usual sizes.
                let mut a = [0.0f32; 256];
                let mut b = [0.0f32; 256];
                let mut heap;
                let (x, y): (&mut [f32], &mut [f32]) = if *width <= 256 {
                    (&mut a, &mut b)
                } else {
                    heap = vec![0.0f32; 2 * width];
                    heap.split_at_mut(*width)
                };
                let Some(row) = rows.last() else { return f32::NAN };
                x[..COUNT].copy_from_slice(row);
                let (mut cur, mut next) = (x, y);
                for l in layers {
                    l.apply(cur, next);
                    for v in &mut next[..l.n_out] {
                        *v = v.max(0.0);
                    }
                    std::mem::swap(&mut cur, &mut next);
                }
                let mut o = [0.0f32; 1];
                out.apply(cur, &mut o);
                o[0]
            }
            FastNet::Gru { w_ih, w_hh, hidden, out } => {
                let hdim = *hidden;
                let mut h = vec![0.0f32; hdim];
                let mut gi = vec![0.0f32; 3 * hdim];
                let mut gh = vec![0.0f32; 3 * hdim];
                for row in rows {
                    w_ih.apply(row, &mut gi);
                    w_hh.apply(&h, &mut gh);
                    for k in 0..hdim {
                        // PyTorch's gate order: reset, update, new.
                        let r = sigmoid(gi[k] + gh[k]);
                        let z = sigmoid(gi[hdim + k] + gh[hdim + k]);
                        let n = (gi[2 * hdim + k] + r * gh[2 * hdim + k]).tanh();
                        h[k] = (1.0 - z) * n + z * h[k];
                    }
                }
                let mut o = [0.0f32; 1];
                out.apply(&h, &mut o);
                o[0]
            }
        }
    }
}
