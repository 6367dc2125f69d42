//! The forecaster on real BTC 1-minute bars (`../shared/data`): feature parity between the
//! polars pipeline and the streaming one, training, saving and loading, the CPU fast path
//! against candle, seeded determinism, and the out-of-sample comparison with the baseline.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use kairos_models::features::{self, COUNT, FeatureState, Target, TargetKind};
use kairos_models::forecast::{Arch, ForecastStream, Forecaster, TrainOptions, evaluate, train};

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn streaming_features_match_polars_on_every_btc_bar() {
    let Some(bars) = crate::common::btc().map(|s| s.bars) else { return };
    let ds = features::frame(&bars, 5).unwrap();
    assert_eq!(ds.frame.height(), bars.len());
    assert_eq!(ds.frame.width(), COUNT);
    let mut st = FeatureState::new();
    let mut compared = 0;
    for (i, b) in bars.iter().enumerate() {
        let got = st.update(b);
        assert_eq!(got.is_some(), ds.valid[i], "bar {i}");
        if let Some(row) = got {
            for (j, (&a, &e)) in row.iter().zip(&ds.rows[i]).enumerate() {
                assert!(
                    (a - e).abs() <= 1e-9 * e.abs().max(1.0),
                    "bar {i} {}: streaming {a} polars {e}",
                    features::NAMES[j]
                );
            }
            compared += 1;
        }
    }
    assert!(compared > bars.len() - 200, "only {compared} rows compared");
}

fn quick(arch: Arch, kind: TargetKind, horizon: usize) -> TrainOptions {
    let mut o = TrainOptions::new(arch, Target { kind, horizon });
    o.epochs = 8;
    o.patience = 3;
    o
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn mlp_trains_saves_loads_and_serves_the_same_numbers() {
    let Some(bars) = crate::common::btc().map(|s| s.bars) else { return };
    let opts = quick(Arch::mlp(), TargetKind::Return, 15);
    let dev = Device::Cpu;
    let mut epochs = 0;
    let (model, report) = train(&bars, "btc", &opts, &dev, |p| {
        if let kairos_models::forecast::Progress::Epoch { .. } = p {
            epochs += 1;
        }
    })
    .unwrap();
    assert_eq!(epochs, report.epochs_run);
    assert!(report.best_epoch >= 1 && report.best_epoch <= report.epochs_run);
    // Splits are in time order and do not overlap.
    assert!(report.train.end_ts < report.validation.start_ts);
    assert!(report.validation.end_ts < report.test.start_ts);
    let t = report.test_metrics;
    eprintln!("mlp return h=15 test: {t:?}");
    assert!(t.samples > 5_000);
    // One-minute returns are close to unpredictable: out of sample the regression matches the
    // baseline (within 0.5%) once shrunk on validation data; it does not reliably beat it.
    assert!(t.mse <= t.baseline_mse * 1.005, "{t:?}");
    assert!((0.0..=1.0).contains(&model.config().shrink));

    // Same seed, same model.
    let (again, report2) = train(&bars, "btc", &opts, &dev, |_| {}).unwrap();
    assert_eq!(report.test_metrics, report2.test_metrics);
    assert_eq!(report.validation_loss, report2.validation_loss);

    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let loaded = Forecaster::load(dir.path(), &dev).unwrap();
    assert_eq!(loaded.config(), model.config());
    // Out of sample on the same file gives the test split's metrics.
    let ev = evaluate(&loaded, &bars).unwrap();
    assert_eq!(ev.samples, t.samples);
    assert!((ev.mse - t.mse).abs() <= 1e-12 * t.mse, "{ev:?} vs {t:?}");

    // The streaming path (features, normalisation, fast CPU forward) against candle's batch.
    let loaded = Arc::new(loaded);
    let mut stream = ForecastStream::new(loaded.clone());
    let ds = features::frame(&bars, 15).unwrap();
    let mut rows = Vec::new();
    let mut streamed = Vec::new();
    for (i, b) in bars.iter().enumerate().take(3_000) {
        if let Some(p) = stream.update(b) {
            let mut r = [0f32; COUNT];
            loaded.config().normalizer.apply(&ds.rows[i], &mut r);
            rows.extend_from_slice(&r);
            streamed.push(p);
        }
    }
    let x = Tensor::from_vec(rows, (streamed.len(), 1, COUNT), &dev).unwrap();
    let batch = loaded.predict_batch(&x).unwrap();
    for (i, (a, b)) in streamed.iter().zip(&batch).enumerate() {
        let scale = loaded.config().target_scale.std;
        assert!((a - b).abs() <= 1e-5 * scale, "row {i}: fast {a} candle {b}");
    }
    drop(again);
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn direction_classifier_beats_the_baseline_out_of_sample() {
    let Some(bars) = crate::common::btc().map(|s| s.bars) else { return };
    let opts = TrainOptions::new(Arch::mlp(), Target { kind: TargetKind::Sign, horizon: 15 });
    let (_, report) = train(&bars, "btc", &opts, &Device::Cpu, |_| {}).unwrap();
    let t = report.test_metrics;
    eprintln!("mlp sign h=15 test: {t:?}");
    assert!(t.beats_baseline(), "{t:?}");
    assert!(t.accuracy > t.baseline_accuracy && t.ic > 0.0, "{t:?}");
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn gru_classifier_trains_and_its_fast_path_matches_candle() {
    let Some(bars) = crate::common::btc().map(|s| s.bars) else { return };
    // A third of the file keeps the GRU's debug-build training short.
    let bars = &bars[..15_000];
    let mut opts = quick(Arch::Gru { hidden: 16, seq_len: 16 }, TargetKind::Sign, 15);
    opts.epochs = 3;
    let (model, report) = train(bars, "btc", &opts, &Device::Cpu, |_| {}).unwrap();
    eprintln!("gru sign h=15 test: {:?}", report.test_metrics);
    assert!(report.test_metrics.mse < 0.3, "Brier {}", report.test_metrics.mse);
    let model = Arc::new(model);
    let mut stream = ForecastStream::new(model.clone());
    let ds = features::frame(bars, 15).unwrap();
    let mut checked = 0;
    for (i, b) in bars.iter().enumerate().take(400) {
        let Some(p) = stream.update(b) else { continue };
        let mut win = Vec::new();
        for r in &ds.rows[i + 1 - 16..=i] {
            let mut n = [0f32; COUNT];
            model.config().normalizer.apply(r, &mut n);
            win.extend_from_slice(&n);
        }
        let x = Tensor::from_vec(win, (1, 16, COUNT), &Device::Cpu).unwrap();
        let c = model.predict_batch(&x).unwrap()[0];
        assert!((0.0..=1.0).contains(&p));
        assert!((p - c).abs() < 1e-5, "bar {i}: fast {p} candle {c}");
        checked += 1;
    }
    assert!(checked > 300);
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn bad_settings_and_short_data_are_named() {
    let Some(bars) = crate::common::btc().map(|s| s.bars) else { return };
    let mut o = quick(Arch::mlp(), TargetKind::Return, 0);
    let e = train(&bars[..1000], "btc", &o, &Device::Cpu, |_| {}).unwrap_err().to_string();
    assert!(e.contains("horizon"), "{e}");
    o.target.horizon = 5;
    let e = train(&bars[..100], "btc", &o, &Device::Cpu, |_| {}).unwrap_err().to_string();
    assert!(e.contains("too few"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let e = Forecaster::load(dir.path(), &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
}
