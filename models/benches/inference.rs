//! Model inference on CPU: what a strategy pays per decision, and the text models' latency and
//! throughput. `scripts/bench/models_torch.py` measures PyTorch on the same shapes for the
//! comparison in BENCHMARKS.md.
//!
//! - `forecaster/*`: one decision from standardised features, on the batch-1 fast path and
//!   through candle; `stream` adds the per-bar feature update. Models are trained here for one
//!   epoch on the real BTC bars (the weights' values do not change the cost).
//! - `minilm/*`: all-MiniLM-L6-v2 with the real weights, batch 1 x 32 tokens and batch 32 x 128.
//! - `gemma/decode`: Gemma-3-270M Q4_K_M, one greedy decode step with the KV cache.
//!
//! Groups whose inputs are missing (`../shared/data`, `scripts/models/fetch.sh`) are skipped.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kairos_models::features::{COUNT, Target, TargetKind};
use kairos_models::forecast::{Arch, ForecastStream, Forecaster, TrainOptions, train};
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

fn minilm(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models/all-MiniLM-L6-v2");
    let Ok(enc) = kairos_models::embed::TextEncoder::load(&dir, &Device::Cpu) else {
        eprintln!("skipping minilm benches: run scripts/models/fetch.sh");
        return;
    };
    let mut g = c.benchmark_group("minilm");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (batch, tokens) in [(1usize, 32usize), (32, 128)] {
        let n = batch * tokens;
        // Real vocabulary ids ([CLS] ... [SEP]); the values do not change the cost.
        let ids: Vec<u32> = (0..n)
            .map(|i| if i % tokens == 0 { 101 } else { 1000 + (i as u32 * 7919) % 20_000 })
            .collect();
        let ids = Tensor::from_vec(ids, (batch, tokens), &Device::Cpu).expect("ids");
        let types = ids.zeros_like().expect("types");
        let mask = ids.ones_like().expect("mask");
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(format!("b{batch}x{tokens}"), |b| {
            b.iter(|| black_box(enc.forward(&ids, &types, &mask).expect("forward")))
        });
    }
    g.finish();
}

fn gemma(c: &mut Criterion) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models/gemma-3-270m-q4_k_m.gguf");
    let Ok(mut model) = kairos_models::llm::Gemma::load(&path, &Device::Cpu) else {
        eprintln!("skipping gemma benches: run scripts/models/fetch.sh");
        return;
    };
    let mut g = c.benchmark_group("gemma");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(1));
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
