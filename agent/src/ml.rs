//! `kairos train` and `kairos evaluate`: bar forecasters.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kairos_backtests::data;
use kairos_models::features::{Target, TargetKind};
use kairos_models::forecast::{self, Arch, EvalReport, Forecaster, Progress, TrainOptions};

/// `kairos train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Bars of one instrument: a CSV/.csv.gz/Parquet/feather/JSON file.
    #[arg(long)]
    data: String,
    /// Resample the bars first (`5m`, `1h`).
    #[arg(long)]
    resample: Option<String>,
    /// `mlp` (current bar's features) or `seq` (a GRU over the last bars).
    #[arg(long, default_value = "mlp")]
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
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 1e-2)]
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
    /// Fractions of the bars for training and validation (the rest is the test split).
    #[arg(long, default_value = "0.7,0.15", value_delimiter = ',', num_args = 2)]
    split: Vec<f64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
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
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn load_bars(spec: &str, resample: Option<&str>) -> Result<Vec<kairos_strategies::Bar>> {
    let mut series = data::source(spec).with_context(|| format!("loading {spec}"))?;
    if let Some(r) = resample {
        series = data::resample(&series, data::parse_interval(r)?)?;
    }
    Ok(series.bars)
}

fn arch(a: &TrainArgs) -> Result<Arch> {
    let mut arch = Arch::by_name(&a.model)?;
    match &mut arch {
        Arch::Mlp { hidden } => {
            if !a.hidden.is_empty() {
                *hidden = a.hidden.clone();
            }
            if a.seq_len.is_some() {
                bail!("--seq-len applies to --model seq only");
            }
        }
        Arch::Gru { hidden, seq_len } => {
            match a.hidden.as_slice() {
                [] => {}
                [h] => *hidden = *h,
                _ => bail!("--hidden takes one width for --model seq"),
            }
            if let Some(l) = a.seq_len {
                *seq_len = l;
            }
        }
    }
    Ok(arch)
}

/// Trains, saves and prints the report.
pub fn train(a: TrainArgs) -> Result<()> {
    let device = kairos_models::device(&a.device)?;
    let bars = load_bars(&a.data, a.resample.as_deref())?;
    let mut opts = TrainOptions::new(arch(&a)?, Target { kind: a.target, horizon: a.horizon });
    opts.epochs = a.epochs;
    opts.patience = a.patience;
    opts.batch_size = a.batch_size;
    opts.learning_rate = a.lr;
    opts.weight_decay = a.weight_decay;
    opts.seed = a.seed;
    opts.train_fraction = a.split[0];
    opts.validation_fraction = a.split[1];

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps {elapsed_precise} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut best_msg = String::new();
    let (model, report) = forecast::train(&bars, &a.data, &opts, &device, |p| match p {
        Progress::Start { epochs, batches } => bar.set_length((epochs * batches) as u64),
        Progress::Batch { epoch } => {
            bar.set_prefix(format!("epoch {epoch}"));
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
    let bars = load_bars(&a.data, a.resample.as_deref())?;
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
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling probability mass (with --temperature above 0).
    #[arg(long)]
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
    #[arg(long, default_value = "cpu")]
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
        eprintln!(
            "prompt {} tokens, prefill {:.1} ms; {} new tokens at {:.1} tokens/s; stop: {:?}",
            g.prompt_tokens, g.prefill_ms, g.tokens, g.decode_tokens_per_s, g.stop
        );
    }
    Ok(())
}
