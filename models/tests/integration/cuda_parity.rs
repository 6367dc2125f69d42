//! CPU and CUDA agree within dtype tolerance: MiniLM embeddings (f32, and f16 on the GPU),
//! forecaster outputs and training, and Gemma logits. Runs in a `--features cuda` build on a
//! machine with an NVIDIA GPU; elsewhere it says why it skipped (`KAIROS_REQUIRE_GPU=1` makes
//! a missing GPU a failure). `KAIROS_PARITY_DEVICE=cpu` runs it against a second CPU model
//! instead, which checks the test itself on a machine without a GPU.
//!
//! The real weights and bars are used where they are (this machine's `scripts/models/fetch.sh`
//! and `../shared/data`). A rented GPU has neither and cannot fetch them, so there the models
//! are the [`synthetic`] ones (the real shapes and formats, the same numbers on both devices)
//! and the bars simulated: the comparison is of the kernels, which the weights' values do not
//! change.

use candle_core::{DType, Device, Tensor};
use kairos_models::embed::{Bert, TextEncoder, cosine};
use kairos_models::features::{COUNT, Target, TargetKind};
use kairos_models::forecast::{Arch, Forecaster, TrainOptions, train};
use kairos_models::llm::Gemma;
use kairos_models::synthetic;

fn gpu() -> Option<Device> {
    if let Ok(spec) = std::env::var("KAIROS_PARITY_DEVICE") {
        return Some(kairos_models::device(&spec).unwrap());
    }
    let required = std::env::var_os("KAIROS_REQUIRE_GPU").is_some();
    if !kairos_models::CUDA_ENABLED {
        assert!(!required, "KAIROS_REQUIRE_GPU is set but this build has no `cuda` feature");
        eprintln!("skipping: built without the `cuda` feature");
        return None;
    }
    match kairos_models::device("cuda:0") {
        Ok(d) => Some(d),
        Err(e) => {
            assert!(!required, "no GPU: {e}");
            eprintln!("skipping: {e}");
            None
        }
    }
}

/// MiniLM on `device` in `dtype`: the real weights when fetched, else synthetic ones.
fn minilm(device: &Device, dtype: DType) -> Bert {
    match crate::common::minilm() {
        Some(dir) => Bert::load(&dir, device, dtype).unwrap(),
        None => Bert::synthetic(&synthetic::minilm_config(), 11, device, dtype).unwrap(),
    }
}

/// A padded batch of 3 x 40 token ids, types and mask on `device`.
fn batch(device: &Device) -> (Tensor, Tensor, Tensor) {
    let lens = [40usize, 17, 3];
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for (r, &n) in lens.iter().enumerate() {
        for i in 0..40 {
            let real = i < n;
            ids.push(if !real {
                0
            } else if i == 0 {
                101
            } else {
                1000 + (r * 977 + i * 31) as u32
            });
            mask.push(real as u32);
        }
    }
    let ids = Tensor::from_vec(ids, (3, 40), device).unwrap();
    let mask = Tensor::from_vec(mask, (3, 40), device).unwrap();
    (ids.zeros_like().unwrap(), ids, mask)
}

#[test]
fn minilm_embeddings_agree() {
    let Some(gpu) = gpu() else { return };
    let want = {
        let (types, ids, mask) = batch(&Device::Cpu);
        minilm(&Device::Cpu, DType::F32).forward(&ids, &types, &mask).unwrap()
    };
    let want = want.to_vec2::<f32>().unwrap();
    let (types, ids, mask) = batch(&gpu);
    // f32 on both: the same numbers to rounding; f16 and bf16 on the GPU: the same directions.
    for (dtype, tolerance) in [(DType::F32, 1e-4f32), (DType::F16, 2e-3), (DType::BF16, 1e-2)] {
        let got = minilm(&gpu, dtype).forward(&ids, &types, &mask).unwrap();
        for (w, g) in want.iter().zip(got.to_vec2::<f32>().unwrap()) {
            let d = w.iter().zip(&g).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(d < tolerance, "{dtype:?}: max |cpu - cuda| = {d}");
            assert!(cosine(w, &g) > 0.999, "{dtype:?}: cosine {}", cosine(w, &g));
        }
    }
    // With the real model, through the tokenizer as well.
    if let Some(dir) = crate::common::minilm() {
        let cpu = TextEncoder::load(&dir, &Device::Cpu).unwrap();
        let cuda = TextEncoder::load(&dir, &gpu).unwrap();
        let texts = ["Bitcoin surges to a record high", "rates, inflation and the dollar", "gm"];
        for (a, b) in cpu.embed(&texts).unwrap().iter().zip(cuda.embed(&texts).unwrap()) {
            let d = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(d < 1e-4, "max |cpu - cuda| = {d}");
        }
    }
}

#[test]
fn forecaster_outputs_agree() {
    let Some(gpu) = gpu() else { return };
    let bars = match crate::common::btc() {
        Some(s) => s.bars,
        None => kairos_backtests::data::source("sim:5:12000").unwrap().bars,
    };
    for arch in [Arch::mlp(), Arch::gru()] {
        let mut o = TrainOptions::new(arch, Target { kind: TargetKind::Return, horizon: 15 });
        o.epochs = 1;
        let (m, _) = train(&bars[..10_000], "btc", &o, &Device::Cpu, |_| {}).unwrap();
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        let on_gpu = Forecaster::load(dir.path(), &gpu).unwrap();
        let w = m.window();
        let data: Vec<f32> = (0..64 * w * COUNT).map(|i| (i as f32 * 0.13).sin()).collect();
        let x_cpu = Tensor::from_vec(data.clone(), (64, w, COUNT), &Device::Cpu).unwrap();
        let x_gpu = Tensor::from_vec(data, (64, w, COUNT), &gpu).unwrap();
        let (a, b) = (m.forward_raw(&x_cpu).unwrap(), on_gpu.forward_raw(&x_gpu).unwrap());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "cpu {x} cuda {y}");
        }
        // Training on the GPU also runs.
        let mut o = TrainOptions::new(
            m.config().arch.clone(),
            Target { kind: TargetKind::Sign, horizon: 15 },
        );
        o.epochs = 1;
        train(&bars[..10_000], "btc", &o, &gpu, |_| {}).unwrap();
    }
}

#[test]
fn gemma_logits_agree() {
    let Some(gpu) = gpu() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (path, real) = match crate::common::gemma() {
        Some(p) => (p, true),
        None => {
            let p = tmp.path().join("gemma-synthetic.gguf");
            synthetic::write_gemma3_270m(&p, 11).unwrap();
            (p, false)
        }
    };
    let mut cpu = Gemma::load(&path, &Device::Cpu).unwrap();
    let mut cuda = Gemma::load(&path, &gpu).unwrap();
    let ids = cpu.prompt_tokens("The Eiffel Tower is located in the city of", false);
    let (a, b) = (cpu.logits(&ids).unwrap(), cuda.logits(&ids).unwrap());
    let argmax = |v: &[f32]| v.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).unwrap().0;
    let (top_a, top_b) = (argmax(&a), argmax(&b));
    if real {
        assert_eq!(top_a, top_b);
    } else {
        // Made-up weights give flat logits with near-ties at the top; the two picks must be
        // ties on the CPU's scale (within 1% of its logit range).
        let range = a[top_a] - a.iter().copied().fold(f32::INFINITY, f32::min);
        assert!(a[top_a] - a[top_b] <= 0.01 * range, "cpu picks {top_a}, cuda {top_b}");
    }
    // Q4_K matmuls dequantise differently on the two backends: compare directions, not bits.
    let c = cosine(&a, &b);
    assert!(c > 0.999, "cosine {c}");
}
