//! `kairos train` and `kairos evaluate`: bar forecasters.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kairos_backtests::data;
use kairos_models::features::{Target, TargetKind};
use kairos_models::forecast::{self, Arch, EvalReport, Forecaster, Progress, TrainOptions};

/// `--device`: `cpu`, `cuda` or `cuda:N`, checked as the flag is read.
pub(crate) fn parse_device(s: &str) -> std::result::Result<String, String> {
    let ok = s == "cpu"
        || s == "cuda"
        || s.strip_prefix("cuda:").is_some_and(|n| n.parse::<usize>().is_ok());
    if ok { Ok(s.to_string()) } else { Err(format!("`{s}` is not cpu, cuda or cuda:N")) }
}

/// `--split TRAIN,VALIDATION`: two fractions, as the default is written.
fn parse_split(s: &str) -> std::result::Result<(f64, f64), String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [a, b] = parts.as_slice() else {
        return Err(format!("`{s}` is not two fractions like 0.7,0.15"));
    };
    let num = |t: &str| t.parse::<f64>().map_err(|_| format!("`{t}` is not a number"));
    Ok((num(a)?, num(b)?))
}

/// What to train: shared by `kairos train` and `kairos walkforward`.
#[derive(Debug, Clone, Args)]
pub struct ModelOpts {
    /// `mlp` (current bar's features) or `seq` (a GRU over the last bars).
    #[arg(long, default_value = "mlp", value_parser = ["mlp", "seq", "gru"])]
    model: String,
    /// `return` (regress the next-N-bar log return) or `sign` (classify its direction).
    #[arg(long, default_value = "return")]
    target: TargetKind,
    /// N, the bars ahead the target looks.
    #[arg(long, default_value_t = 15)]
    horizon: usize,
    /// Most epochs.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Early stopping: epochs without a better validation loss.
    #[arg(long, default_value_t = 5)]
    patience: usize,
    /// Samples per step.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 1e-2, allow_negative_numbers = true)]
    weight_decay: f64,
    /// Seed for initialisation and shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// MLP hidden widths (`64,32`) or the GRU's width (`32`).
    #[arg(long, value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Bars per GRU window.
    #[arg(long)]
    seq_len: Option<usize>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: String,
}

impl ModelOpts {
    fn arch(&self) -> Result<Arch> {
        let mut arch = Arch::by_name(&self.model)?;
        match &mut arch {
            Arch::Mlp { hidden } => {
                if !self.hidden.is_empty() {
                    *hidden = self.hidden.clone();
                }
                if self.seq_len.is_some() {
                    bail!("--seq-len applies to --model seq only");
                }
            }
            Arch::Gru { hidden, seq_len } => {
                match self.hidden.as_slice() {
                    [] => {}
                    [h] => *hidden = *h,
                    _ => bail!("--hidden takes one width for --model seq"),
                }
                if let Some(l) = self.seq_len {
                    *seq_len = l;
                }
            }
        }
        Ok(arch)
    }

    fn options(&self) -> Result<TrainOptions> {
        let mut o =
            TrainOptions::new(self.arch()?, Target { kind: self.target, horizon: self.horizon });
        o.epochs = self.epochs;
        o.patience = self.patience;
        o.batch_size = self.batch_size;
        o.learning_rate = self.lr;
        o.weight_decay = self.weight_decay;
        o.seed = self.seed;
        Ok(o)
    }
}

/// `kairos train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Bars of one instrument: a CSV/.csv.gz/Parquet/feather/JSON file.
    #[arg(long)]
    data: String,
    /// Resample the bars first (`5m`, `1h`).
    #[arg(long)]
    resample: Option<String>,
    #[command(flatten)]
    opts: ModelOpts,
    /// Fractions of the bars for training and validation (the rest is the test split).
    #[arg(long, default_value = "0.7,0.15", value_parser = parse_split)]
    split: (f64, f64),
    /// Folder to write model.safetensors and config.json to.
    #[arg(long)]
    out: PathBuf,
    /// Print the training report as JSON.
    #[arg(long)]
    json: bool,
}

/// `kairos evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// A folder written by `kairos train`.
    #[arg(long)]
    model: PathBuf,
    /// Bars to score: only those after the model's validation split count.
    #[arg(long)]
    data: String,
    /// Resample the bars first (as for training).
    #[arg(long)]
    resample: Option<String>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn load_series(spec: &str, resample: Option<&str>) -> Result<data::BarSeries> {
    let mut series = data::source(spec).with_context(|| format!("loading {spec}"))?;
    if let Some(r) = resample {
        series = data::resample(&series, data::parse_interval(r)?)?;
    }
    Ok(series)
}

/// Trains, saves and prints the report.
pub fn train(a: TrainArgs) -> Result<()> {
    let device = kairos_models::device(&a.opts.device)?;
    let bars = load_series(&a.data, a.resample.as_deref())?.bars;
    let mut opts = a.opts.options()?;
    (opts.train_fraction, opts.validation_fraction) = a.split;
    let (model, report) = train_with_progress(&bars, &a.data, &opts, &device, "")?;
    model.save(&a.out).with_context(|| format!("saving to {}", a.out.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let c = model.config();
    println!("model      {:?} -> {}", c.arch, a.out.display());
    println!("target     {:?} over {} bars", c.target.kind, c.target.horizon);
    println!(
        "samples    train {}  validation {}  test {}",
        report.train.samples, report.validation.samples, report.test.samples
    );
    println!(
        "epochs     {} run, best {} (val loss {:.6}); shrink toward baseline {:.2}",
        report.epochs_run,
        report.best_epoch,
        report
            .validation_loss
            .get(report.best_epoch.saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN),
        c.shrink
    );
    print_eval("validation", c.target.kind, &report.validation_metrics);
    print_eval("test", c.target.kind, &report.test_metrics);
    Ok(())
}

/// Trains with a progress bar on standard error (hidden when it is not a terminal).
fn train_with_progress(
    bars: &[kairos_strategies::Bar],
    data: &str,
    opts: &TrainOptions,
    device: &kairos_models::Device,
    label: &str,
) -> Result<(Forecaster, forecast::TrainReport)> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps {elapsed_precise} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut best_msg = String::new();
    let (model, report) = forecast::train(bars, data, opts, device, |p| match p {
        Progress::Start { epochs, batches } => bar.set_length((epochs * batches) as u64),
        Progress::Batch { epoch } => {
            bar.set_prefix(format!("{label}epoch {epoch}"));
            bar.inc(1);
        }
        Progress::Epoch { epoch, train_loss, validation_loss, best } => {
            if best {
                best_msg = format!("best val {validation_loss:.5} @ {epoch}");
            }
            bar.set_message(format!("train {train_loss:.5} val {validation_loss:.5}; {best_msg}"));
        }
    })?;
    bar.finish_and_clear();
    Ok((model, report))
}

fn print_eval(name: &str, kind: TargetKind, e: &EvalReport) {
    let err = match kind {
        TargetKind::Return => "MSE",
        TargetKind::Sign => "Brier",
    };
    let verdict = if e.beats_baseline() { "beats" } else { "does not beat" };
    println!(
        "{name:<10} {} samples: {err} {:.6e} vs baseline {:.6e} ({verdict} it, {:+.2}%); \
         direction {:.2}% vs {:.2}%; IC {:.4}, rank IC {:.4}",
        e.samples,
        e.mse,
        e.baseline_mse,
        100.0 * (e.mse / e.baseline_mse - 1.0),
        100.0 * e.accuracy,
        100.0 * e.baseline_accuracy,
        e.ic,
        e.rank_ic
    );
}

/// Scores a saved model out of sample.
pub fn evaluate(a: EvaluateArgs) -> Result<()> {
    let device = kairos_models::device(&a.device)?;
    let model = Forecaster::load(&a.model, &device)?;
    let bars = load_series(&a.data, a.resample.as_deref())?.bars;
    let e = forecast::evaluate(&model, &bars)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        print_eval("out of sample", model.config().target.kind, &e);
    }
    Ok(())
}

/// `kairos generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A GGUF file (scripts/models/fetch.sh makes target/models/gemma-3-270m-q4_k_m.gguf).
    #[arg(long, env = "KAIROS_LLM_MODEL")]
    model: PathBuf,
    /// The prompt; without it, standard input.
    prompt: Option<String>,
    /// Most new tokens.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 for greedy decoding.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    temperature: f64,
    /// Nucleus sampling probability mass (with --temperature above 0).
    #[arg(long, allow_negative_numbers = true)]
    top_p: Option<f64>,
    /// Sampling seed.
    #[arg(long, default_value_t = 299_792_458)]
    seed: u64,
    /// Stop when this text appears (repeat for several).
    #[arg(long)]
    stop: Vec<String>,
    /// Wrap the prompt in Gemma's chat turn markers (instruction-tuned models).
    #[arg(long)]
    chat: bool,
    /// Ask for a JSON trading decision about the prompt's text, and print the validated
    /// decision (an invalid reply becomes hold).
    #[arg(long)]
    decision: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: String,
    /// Print timings (prefill, decode tokens/s) on standard error.
    #[arg(long)]
    stats: bool,
}

/// Generates text, or a decision.
pub fn generate(a: GenerateArgs) -> Result<()> {
    use std::io::{Read, Write};
    let prompt = match a.prompt {
        Some(p) => p,
        None => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
    };
    let device = kairos_models::device(&a.device)?;
    let mut model = kairos_models::llm::Gemma::load(&a.model, &device)?;
    let opts = kairos_models::llm::GenerateOptions {
        max_tokens: a.max_tokens,
        temperature: a.temperature,
        top_p: a.top_p,
        seed: a.seed,
        stop: a.stop,
        chat: a.chat,
        logprobs: false,
    };
    let g = if a.decision {
        let (d, g) = model.decide(&prompt, &opts)?;
        println!("{}", serde_json::to_string(&d)?);
        g
    } else {
        let mut out = std::io::stdout().lock();
        let g = model.generate(&prompt, &opts, |t| {
            let _ = out.write_all(t.as_bytes());
            let _ = out.flush();
        })?;
        let _ = writeln!(out);
        g
    };
    if a.stats {
        say!(
            "prompt {} tokens, prefill {:.1} ms; {} new tokens at {:.1} tokens/s; stop: {:?}",
            g.prompt_tokens,
            g.prefill_ms,
            g.tokens,
            g.decode_tokens_per_s,
            g.stop
        );
    }
    Ok(())
}

/// `kairos walkforward`.
#[derive(Debug, Args)]
pub struct WalkForwardArgs {
    /// Bars of one instrument.
    #[arg(long)]
    data: String,
    /// Resample the bars first (`5m`, `1h`).
    #[arg(long)]
    resample: Option<String>,
    #[command(flatten)]
    opts: ModelOpts,
    /// Bars each fold trains on (the last fifth of them for early stopping).
    #[arg(long, default_value_t = 20_000)]
    train_bars: usize,
    /// Bars each fold then trades, out of sample.
    #[arg(long, default_value_t = 5_000)]
    test_bars: usize,
    /// `ml_forecast` parameter `name=value` (threshold, full, size, mode, flat_inside).
    #[arg(long = "param", short = 'p')]
    params: Vec<String>,
    /// Commission as a fraction of traded value.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    commission: f64,
    /// Lot size (orders trade whole lots).
    #[arg(long, default_value_t = 0.001, allow_negative_numbers = true)]
    lot_size: f64,
    /// Starting cash of each fold.
    #[arg(long, default_value_t = 100_000.0, allow_negative_numbers = true)]
    cash: f64,
    /// Folder for each fold's model (`fold-1`, ...) and `walkforward.json`.
    #[arg(long)]
    out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// One walk-forward fold.
#[derive(Debug, serde::Serialize)]
struct Fold {
    fold: usize,
    model: PathBuf,
    train_start: String,
    train_end: String,
    test_start: String,
    test_end: String,
    best_epoch: usize,
    shrink: f64,
    /// The forecaster on the traded window, beside the baseline.
    forecast: EvalReport,
    /// `ml_forecast` trading the window: return, trades, buy and hold.
    return_pct: f64,
    buy_hold_pct: f64,
    trades: usize,
    max_drawdown_pct: f64,
}

/// Trains on a window, trades the next one out of sample, rolls forward by one test window.
pub fn walk_forward(registry: &kairos_strategies::Registry, a: WalkForwardArgs) -> Result<()> {
    use kairos_backtests::engine::{Backtest, BacktestConfig};
    let device = kairos_models::device(&a.opts.device)?;
    let series = load_series(&a.data, a.resample.as_deref())?;
    let bars = &series.bars;
    if a.test_bars == 0 || a.train_bars == 0 {
        bail!("--train-bars and --test-bars must be positive");
    }
    if bars.len() < a.train_bars + a.test_bars {
        bail!(
            "{} bars are fewer than one fold (--train-bars {} + --test-bars {})",
            bars.len(),
            a.train_bars,
            a.test_bars
        );
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for p in &a.params {
        let (k, v) = kairos_strategies::Registry::parse_kv(p)?;
        if k == "model" {
            bail!("-p model=... is set by the walk-forward itself");
        }
        params.retain(|(pk, _)| pk != &k);
        params.push((k, v));
    }
    let cfg = BacktestConfig {
        cash: a.cash,
        commission: a.commission,
        lot_size: Some(a.lot_size),
        ..BacktestConfig::default()
    };
    cfg.validate()?;
    let mut folds = Vec::new();
    let mut start = 0;
    while start + a.train_bars + a.test_bars / 2 <= bars.len() {
        let end = (start + a.train_bars + a.test_bars).min(bars.len());
        let k = folds.len() + 1;
        let window = &bars[start..end];
        let total = window.len() as f64;
        let mut opts = a.opts.options()?;
        // The window's last test-length bars are the fold's test split: the traded window.
        opts.train_fraction = 0.8 * a.train_bars as f64 / total;
        opts.validation_fraction = 0.2 * a.train_bars as f64 / total;
        let (model, report) =
            train_with_progress(window, &a.data, &opts, &device, &format!("fold {k} "))?;
        let dir = a.out.join(format!("fold-{k}"));
        model.save(&dir).with_context(|| format!("saving to {}", dir.display()))?;

        // Trade the test window; the bars before it only warm the features up.
        let test_from = start + a.train_bars;
        let warm = kairos_models::features::WARMUP + model.window() - 1;
        let mut traded = series.clone();
        traded.bars = bars[test_from - warm.min(test_from)..end].to_vec();
        let mut p = params.clone();
        p.push(("model".into(), dir.display().to_string()));
        let mut strategy = registry.build("ml_forecast", &p)?;
        let r = Backtest::new(cfg).run(std::slice::from_ref(&traded), &mut strategy)?;
        let s = r.summary();
        let (first, last) = (bars[test_from].open, bars[end - 1].close);
        folds.push(Fold {
            fold: k,
            model: dir,
            train_start: bars[start].ts.to_iso(),
            train_end: bars[test_from - 1].ts.to_iso(),
            test_start: bars[test_from].ts.to_iso(),
            test_end: bars[end - 1].ts.to_iso(),
            best_epoch: report.best_epoch,
            shrink: model.config().shrink,
            forecast: report.test_metrics,
            return_pct: s.return_pct,
            buy_hold_pct: 100.0 * (last / first - 1.0),
            trades: r.trades.len(),
            max_drawdown_pct: s.max_drawdown_pct,
        });
        start += a.test_bars;
    }
    let compounded = folds.iter().fold(1.0, |acc, f| acc * (1.0 + f.return_pct / 100.0));
    let beat = folds.iter().filter(|f| f.forecast.beats_baseline()).count();
    let summary = serde_json::json!({
        "data": a.data,
        "folds": folds,
        "compounded_return_pct": 100.0 * (compounded - 1.0),
        "folds_beating_baseline": beat,
        "mean_ic": folds.iter().map(|f| f.forecast.ic).sum::<f64>() / folds.len().max(1) as f64,
    });
    std::fs::create_dir_all(&a.out)?;
    let path = a.out.join("walkforward.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "{:<5} {:<20} {:<20} {:>7} {:>9} {:>8} {:>7} {:>9} {:>9} {:>6}",
        "fold",
        "trades from",
        "to",
        "samples",
        "err/base",
        "dir %",
        "IC",
        "return %",
        "hold %",
        "trades"
    );
    for f in &folds {
        println!(
            "{:<5} {:<20} {:<20} {:>7} {:>9.4} {:>8.2} {:>7.4} {:>9.2} {:>9.2} {:>6}",
            f.fold,
            &f.test_start[..f.test_start.len().min(19)],
            &f.test_end[..f.test_end.len().min(19)],
            f.forecast.samples,
            f.forecast.mse / f.forecast.baseline_mse,
            100.0 * f.forecast.accuracy,
            f.forecast.ic,
            f.return_pct,
            f.buy_hold_pct,
            f.trades
        );
    }
    println!(
        "{} folds; the forecast beat the baseline in {beat}; compounded out-of-sample return {:.2}%; report: {}",
        folds.len(),
        100.0 * (compounded - 1.0),
        path.display()
    );
    Ok(())
}
