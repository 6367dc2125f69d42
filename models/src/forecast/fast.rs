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

/// `e^x` in `f32` without a call into libm, so that loops over it vectorise (the GRU's gates
/// are 96 of them per bar of the window). Cody-Waite reduction `x = n ln2 + r` with
/// `|r| <= ln2/2`, Cephes `expf`'s polynomial for `e^r`, and `2^n` built in the exponent bits
/// from the rounding constant's mantissa (integer lanes only, no float-to-int conversion).
/// Relative error under 3e-7 against `f64::exp` (tested); the input is clamped to
/// `[-87.3, 88.3]`, where `e^x` is a normal `f32`.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    // 1.5 * 2^23: adding it rounds to an integer, held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.3);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // t's bits are ROUND's plus n; ROUND's exponent field is 150 = 127 + 23.
    let bits = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23;
    er * f32::from_bits(bits)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp_f32(2.0 * x) + 1.0)
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
                    // PyTorch's gate order: reset, update, new. One branch-free loop over the
                    // hidden units, which the compiler vectorises.
                    let (gi_r, gi) = gi.split_at(hdim);
                    let (gi_z, gi_n) = gi.split_at(hdim);
                    let (gh_r, gh) = gh.split_at(hdim);
                    let (gh_z, gh_n) = gh.split_at(hdim);
                    let gates = gi_r.iter().zip(gh_r).zip(gi_z.iter().zip(gh_z));
                    for ((hk, ((ir, hr), (iz, hz))), (i_n, h_n)) in
                        h.iter_mut().zip(gates).zip(gi_n.iter().zip(gh_n))
                    {
                        let r = sigmoid(ir + hr);
                        let z = sigmoid(iz + hz);
                        let n = tanh(i_n + r * h_n);
                        *hk = (1.0 - z) * n + z * *hk;
                    }
                }
                let mut o = [0.0f32; 1];
                out.apply(&h, &mut o);
                o[0]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_3e_7_of_f64_and_sigmoid_and_tanh_follow() {
        let mut worst = 0.0f64;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(1000.0).is_finite());
        for i in -2000..=2000 {
            let x = i as f32 * 0.01;
            let (s, t) = (sigmoid(x) as f64, tanh(x) as f64);
            assert!((s - 1.0 / (1.0 + (-(x as f64)).exp())).abs() < 1e-7, "sigmoid({x})");
            assert!((t - (x as f64).tanh()).abs() < 2e-7, "tanh({x})");
        }
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
    }
}
