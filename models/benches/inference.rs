//! Model inference: what a strategy pays per decision, and the text models' latency and
//! throughput. `scripts/bench/models_torch.py` measures PyTorch on the same shapes for the
//! comparison in BENCHMARKS.md.
//!
//! - `forecaster/*` (CPU): one decision from standardised features, on the batch-1 fast path
//!   and through candle; `stream` adds the per-bar feature update. Models are trained here for
//!   one epoch on the real BTC bars (the weights' values do not change the cost).
//! - `minilm/*`: all-MiniLM-L6-v2, batch 1 x 32 tokens, and batch 32 x 128 on a CPU or
//!   256 x 128 on a GPU.
//! - `gemma/decode`: Gemma-3-270M Q4_K_M, one greedy decode step with the KV cache.
//!
//! Settings, from the environment:
//! - `KAIROS_BENCH_DEVICE`: `cpu` (default), `cuda` or `cuda:N` (a `--features cuda` build);
//! - `KAIROS_BENCH_DTYPE`: MiniLM's weights, `f32`, `f16` or `bf16` (default `f32` on a CPU,
//!   `f16` on a GPU);
//! - `KAIROS_BENCH_SYNTHETIC=1`: made-up weights of the real shapes and formats
//!   ([`kairos_models::synthetic`]) instead of the fetched ones; also used when those are
//!   missing. That is how a rented GPU, which cannot fetch them, is measured.
//!
//! Forecaster groups need `../shared/data` and are skipped without it.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kairos_models::embed::Bert;
use kairos_models::features::{COUNT, Target, TargetKind};
use kairos_models::forecast::{Arch, ForecastStream, Forecaster, TrainOptions, train};
use kairos_models::synthetic;
use kairos_strategies::Bar;

fn btc() -> Option<Vec<Bar>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/bars/btc-perp-20211231-20220201_1m.csv");
    if !p.is_file() {
        eprintln!("skipping forecaster benches: {} not found", p.display());
        return None;
    }
    Some(kairos_backtests::data::load(&p).ok()?.bars)
}

fn model(bars: &[Bar], arch: Arch) -> Forecaster {
    let mut o = TrainOptions::new(arch, Target { kind: TargetKind::Return, horizon: 15 });
    o.epochs = 1;
    train(&bars[..12_000], "btc", &o, &Device::Cpu, |_| {}).expect("train").0
}

fn forecaster(c: &mut Criterion) {
    // The forecasters decide on the CPU, in the strategy's thread.
    if !device().is_cpu() {
        return;
    }
    let Some(bars) = btc() else { return };
    let mut g = c.benchmark_group("forecaster");
    g.throughput(Throughput::Elements(1));
    for (name, arch) in [("mlp", Arch::mlp()), ("gru", Arch::gru())] {
        let m = Arc::new(model(&bars, arch));
        let w = m.window();
        let rows: Vec<[f32; COUNT]> = (0..w)
            .map(|i| std::array::from_fn(|j| ((i * COUNT + j) as f32 * 0.37).sin()))
            .collect();
        g.bench_function(format!("{name}_fast"), |b| {
            b.iter(|| black_box(m.predict_window(black_box(&rows))))
        });
        let x = Tensor::from_vec(rows.concat(), (1, w, COUNT), &Device::Cpu).expect("tensor");
        g.bench_function(format!("{name}_candle"), |b| {
            b.iter(|| black_box(m.predict_batch(black_box(&x)).expect("forward")))
        });
        // Features, standardisation and the fast path, bar by bar over real bars.
        let mut stream = ForecastStream::new(m.clone());
        let mut i = 0;
        g.bench_function(format!("{name}_stream"), |b| {
            b.iter(|| {
                i = (i + 1) % bars.len();
                black_box(stream.update(&bars[i]))
            })
        });
    }
    g.finish();
}

/// The device the text models run on (`KAIROS_BENCH_DEVICE`).
fn device() -> Device {
    let spec = std::env::var("KAIROS_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    kairos_models::device(&spec).unwrap_or_else(|e| panic!("KAIROS_BENCH_DEVICE: {e}"))
}

fn synthetic_only() -> bool {
    std::env::var_os("KAIROS_BENCH_SYNTHETIC").is_some_and(|v| v != "0")
}

fn models_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models")
}

fn minilm(c: &mut Criterion) {
    let dev = device();
    let dtype = match std::env::var("KAIROS_BENCH_DTYPE") {
        Ok(spec) => {
            kairos_models::dtype(&spec).unwrap_or_else(|e| panic!("KAIROS_BENCH_DTYPE: {e}"))
        }
        Err(_) if dev.is_cpu() => DType::F32,
        Err(_) => DType::F16,
    };
    let dir = models_dir().join("all-MiniLM-L6-v2");
    let real = if synthetic_only() { None } else { Bert::load(&dir, &dev, dtype).ok() };
    let weights = if real.is_some() { "real" } else { "synthetic" };
    let enc = real.unwrap_or_else(|| {
        Bert::synthetic(&synthetic::minilm_config(), 1, &dev, dtype).expect("synthetic MiniLM")
    });
    eprintln!("minilm: {weights} weights, {dtype:?}, {dev:?}");
    let mut g = c.benchmark_group("minilm");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let big = if dev.is_cpu() { 32 } else { 256 };
    for (batch, tokens) in [(1usize, 32usize), (big, 128)] {
        let n = batch * tokens;
        // Real vocabulary ids ([CLS] ... [SEP]); the values do not change the cost.
        let ids: Vec<u32> = (0..n)
            .map(|i| if i % tokens == 0 { 101 } else { 1000 + (i as u32 * 7919) % 20_000 })
            .collect();
        let ids = Tensor::from_vec(ids, (batch, tokens), &dev).expect("ids");
        let types = ids.zeros_like().expect("types");
        let mask = ids.ones_like().expect("mask");
        g.throughput(Throughput::Elements(batch as u64));
        // Each iteration waits for the GPU: latency, not queueing.
        g.bench_function(format!("b{batch}x{tokens}"), |b| {
            b.iter(|| {
                let e = enc.forward(&ids, &types, &mask).expect("forward");
                dev.synchronize().expect("synchronize");
                black_box(e)
            })
        });
    }
    g.finish();
}

fn gemma(c: &mut Criterion) {
    let dev = device();
    let real = models_dir().join("gemma-3-270m-q4_k_m.gguf");
    let tmp = tempfile::tempdir().expect("temporary folder");
    let path = if real.is_file() && !synthetic_only() {
        real
    } else {
        let p = tmp.path().join("gemma-synthetic.gguf");
        synthetic::write_gemma3_270m(&p, 1).expect("synthetic Gemma");
        p
    };
    eprintln!("gemma: {}, {dev:?}", path.display());
    let mut model = kairos_models::llm::Gemma::load(&path, &dev).expect("load Gemma");
    let mut g = c.benchmark_group("gemma");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(1));
    // Made-up weights do not stop at an end of turn: always 33 tokens, as with the real ones.
    let opts = kairos_models::llm::GenerateOptions { max_tokens: 33, ..Default::default() };
    // Per decode step, from the generation's own decode timing (prefill excluded).
    g.bench_function("decode", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let r = model
                    .generate("The weather in Paris today is", &opts, |_| {})
                    .expect("generate");
                let steps = (r.tokens as u64).saturating_sub(1).max(1);
                total += Duration::from_secs_f64(steps as f64 / r.decode_tokens_per_s.max(1e-9));
                done += steps;
            }
            total.mul_f64(iters as f64 / done as f64)
        })
    });
    g.finish();
}

criterion_group!(benches, forecaster, minilm, gemma);
criterion_main!(benches);
