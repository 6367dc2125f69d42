//! CPU and CUDA agree within dtype tolerance: MiniLM embeddings, forecaster outputs and Gemma
//! logits. Runs in a `--features cuda` build on a machine with an NVIDIA GPU; elsewhere it says
//! why it skipped (`KAIROS_REQUIRE_GPU=1` makes a missing GPU a failure).

use candle_core::{Device, Tensor};
use kairos_models::features::{COUNT, Target, TargetKind};
use kairos_models::forecast::{Arch, Forecaster, TrainOptions, train};

fn gpu() -> Option<Device> {
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

#[test]
fn minilm_embeddings_agree() {
    let Some(gpu) = gpu() else { return };
    // With a GPU present the comparison must run: missing weights fail, as before.
    let dir = crate::common::minilm().expect("MiniLM weights: run scripts/models/fetch.sh");
    let cpu = kairos_models::embed::TextEncoder::load(&dir, &Device::Cpu).unwrap();
    let cuda = kairos_models::embed::TextEncoder::load(&dir, &gpu).unwrap();
    let texts = [
        "Bitcoin surges to a record high",
        "a much longer sentence about rates, inflation and the dollar",
        "gm",
    ];
    for (a, b) in cpu.embed(&texts).unwrap().iter().zip(cuda.embed(&texts).unwrap()) {
        let d = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(d < 1e-4, "max |cpu - cuda| = {d}");
    }
}

#[test]
fn forecaster_outputs_agree() {
    let Some(gpu) = gpu() else { return };
    let bars = crate::common::btc().expect("the shared BTC bars (../shared/data)").bars;
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
    let path = crate::common::gemma().expect("the Gemma GGUF: run scripts/models/fetch.sh");
    let mut cpu = kairos_models::llm::Gemma::load(&path, &Device::Cpu).unwrap();
    let mut cuda = kairos_models::llm::Gemma::load(&path, &gpu).unwrap();
    let ids = cpu.prompt_tokens("The Eiffel Tower is located in the city of", false);
    let (a, b) = (cpu.logits(&ids).unwrap(), cuda.logits(&ids).unwrap());
    let argmax = |v: &[f32]| v.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).map(|(i, _)| i);
    assert_eq!(argmax(&a), argmax(&b));
    let dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    let cos = dot
        / (a.iter().map(|x| x * x).sum::<f32>().sqrt()
            * b.iter().map(|x| x * x).sum::<f32>().sqrt());
    // Q4_K matmuls dequantise differently on the two backends: compare directions, not bits.
    assert!(cos > 0.999, "cosine {cos}");
}
