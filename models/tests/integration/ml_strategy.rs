//! `ml_forecast` in the backtest engine on real BTC bars: a prediction at bar t depends on bars
//! up to t only (perturbing later bars changes nothing before them), the registry builds it
//! from a model folder, and the model is loaded once for many strategies.

use std::sync::{Arc, Mutex};

use candle_core::Device;
use kairos_backtests::data::BarSeries;
use kairos_backtests::engine::{Backtest, BacktestConfig};
use kairos_models::features::{Target, TargetKind};
use kairos_models::forecast::{Arch, TrainOptions, train};
use kairos_models::strategies::{MlForecast, PredictionLog};
use kairos_strategies::Bar;

fn trained(series: &BarSeries, arch: Arch, kind: TargetKind) -> tempfile::TempDir {
    let mut o = TrainOptions::new(arch, Target { kind, horizon: 15 });
    o.epochs = 2;
    let (model, _) = train(&series.bars[..12_000], "btc", &o, &Device::Cpu, |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    // Two epochs on a quarter of the file leave little signal, and validation may shrink the
    // output to the constant baseline; undo that so the predictions move with the bars.
    let path = dir.path().join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg["shrink"] = serde_json::json!(1.0);
    std::fs::write(&path, cfg.to_string()).unwrap();
    dir
}

fn run(
    series: &BarSeries,
    dir: &std::path::Path,
) -> (Vec<(i64, u64)>, kairos_backtests::engine::BacktestResult) {
    let model = kairos_models::cache::global().forecaster(dir, "cpu").unwrap();
    let log: PredictionLog = Arc::new(Mutex::new(Vec::new()));
    let mut s = MlForecast::new(model, 0.0, 0.2, 1.0, true, false).with_log(log.clone());
    let r =
        Backtest::new(BacktestConfig::default()).run(std::slice::from_ref(series), &mut s).unwrap();
    let preds = log.lock().unwrap().iter().map(|(_, ts, p, _)| (ts.0, p.to_bits())).collect();
    (preds, r)
}

/// Scales every price of the bars after `k` by a factor that varies bar to bar, and the
/// volumes too.
fn perturb(bars: &[Bar], k: usize) -> Vec<Bar> {
    let mut out = bars.to_vec();
    for (i, b) in out.iter_mut().enumerate().skip(k + 1) {
        let f = 1.0 + 0.01 * ((i as f64) * 0.7).sin();
        b.open *= f;
        b.high *= f * 1.001;
        b.low *= f * 0.999;
        b.close *= f;
        b.volume *= 2.0 + (i as f64).cos();
    }
    out
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn predictions_use_only_bars_up_to_their_own() {
    let Some(full) = crate::common::btc() else { return };
    for (arch, kind) in
        [(Arch::mlp(), TargetKind::Return), (Arch::Gru { hidden: 8, seq_len: 8 }, TargetKind::Sign)]
    {
        let dir = trained(&full, arch.clone(), kind);
        let mut series = full.clone();
        series.bars = full.bars[12_000..16_000].to_vec();
        let (base, base_run) = run(&series, dir.path());
        assert!(base.len() > 3_800, "{} predictions", base.len());
        assert!(!base_run.fills.is_empty(), "the strategy never traded");
        for k in [500, 1_700, 3_000] {
            let cut = series.bars[k].ts;
            let mut changed = series.clone();
            changed.bars = perturb(&series.bars, k);
            let (after, after_run) = run(&changed, dir.path());
            let upto = |p: &[(i64, u64)]| {
                p.iter().filter(|(t, _)| *t <= cut.0).copied().collect::<Vec<_>>()
            };
            assert_eq!(
                upto(&base),
                upto(&after),
                "{arch:?}: a prediction at or before bar {k} changed"
            );
            // The perturbation does reach the model: later predictions move.
            let later = |p: &[(i64, u64)]| {
                p.iter().filter(|(t, _)| *t > cut.0).copied().collect::<Vec<_>>()
            };
            assert_ne!(
                later(&base),
                later(&after),
                "{arch:?}: perturbing bars after {k} changed nothing"
            );
            let fills = |r: &kairos_backtests::engine::BacktestResult| {
                r.fills.iter().filter(|f| f.ts <= cut).copied().collect::<Vec<_>>()
            };
            assert_eq!(fills(&base_run), fills(&after_run));
            assert_eq!(&base_run.equity[..=k], &after_run.equity[..=k]);
        }
    }
}

#[test]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
fn registry_builds_it_from_a_folder_and_shares_one_model() {
    let Some(full) = crate::common::btc() else { return };
    let dir = trained(&full, Arch::mlp(), TargetKind::Sign);
    let reg = kairos_models::strategies::registry();
    let path = dir.path().to_str().unwrap();
    let before = kairos_models::cache::global().loads_of(dir.path());
    let built: Vec<_> = std::thread::scope(|s| {
        (0..4)
            .map(|_| {
                s.spawn(|| {
                    reg.build("ml_forecast", &[("model", path), ("threshold", "0.01")]).is_ok()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    assert!(built.iter().all(|&ok| ok));
    // Counted for this folder only: other tests load other models on other threads.
    assert_eq!(kairos_models::cache::global().loads_of(dir.path()), before + 1);

    let e = reg
        .build::<&str, &str>("ml_forecast", &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("model") && e.contains("required"), "{e}");
    let e = reg
        .build("ml_forecast", &[("model", "/nonexistent/model")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("/nonexistent/model"), "{e}");
    let e = reg
        .build("ml_forecast", &[("model", path), ("threshold", "0.5"), ("full", "0.1")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("full"), "{e}");
}
