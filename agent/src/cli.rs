//! The `kairos` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Args, FromArgMatches as _, Parser, Subcommand};
use kairos_backtests::data::{self, BarSeries};
use kairos_backtests::engine::{Backtest, BacktestConfig};
use kairos_backtests::montecarlo::{self, MonteCarlo};
use kairos_backtests::report;
use kairos_backtests::venue::FillAt;
use kairos_strategies::Registry;

use crate::config::{BacktestFile, DataList};
use kairos_backtests::data::{LoadOptions, TimeFormat};

/// `--fill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FillArg {
    /// The next bar's open.
    NextOpen,
    /// The signal bar's close.
    Close,
}

/// Kairos: autonomous trading agents. Write a strategy once; backtest it, paper trade it, run it.
#[derive(Debug, Parser)]
#[command(name = "kairos", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr (progress notes too).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "KAIROS_LOG_FORMAT", help_heading = "Global options")]
    log_format: LogFormat,
    /// More logging (-v debug, -vv trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Global options")]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// How stderr is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Plain lines.
    Human,
    /// One JSON object a line (the `tracing` JSON layout), progress notes included.
    Json,
}

/// Whether stderr carries JSON lines (`--log-format json`).
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A progress note on stderr: a plain line, or with `--log-format json` a JSON object in the
/// layout of the log lines (`timestamp`, `level`, `fields.message`, `target`).
pub(crate) fn note(message: &str) {
    if JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
        let level = if message.starts_with("warning:") {
            "WARN"
        } else if message.starts_with("error:") {
            "ERROR"
        } else {
            "INFO"
        };
        let line = serde_json::json!({
            "timestamp": chrono::DateTime::from_timestamp_nanos(now_ns())
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": level,
            "fields": { "message": message },
            "target": "kairos",
        });
        eprintln!("{line}");
    } else {
        eprintln!("{message}");
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// `eprintln!` through [`note`].
macro_rules! say {
    ($($t:tt)*) => { $crate::cli::note(&format!($($t)*)) };
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Backtest a strategy on historical or simulated bars.
    Backtest(Box<BacktestArgs>),
    /// Sweep a strategy's parameters: every combination of a grid (or a random sample)
    /// through the backtest engine in parallel; rows to sweep.csv and sweep.parquet, the best
    /// printed. `kairos sweep merge` combines the folders of a sweep run in shards.
    Sweep(Box<crate::sweep::SweepArgs>),
    /// Bias checks of a strategy on real data: lookahead (did a decision use later data?) and
    /// determinism (do runs repeat bit for bit?).
    #[command(subcommand)]
    Check(crate::check::CheckCommand),
    /// List the registered strategies, or describe one.
    Strategies {
        /// A strategy to describe.
        name: Option<String>,
    },
    /// Manage encrypted key files (Web3 Secret Storage v3).
    #[command(subcommand)]
    Keys(crate::wallet::KeysCommand),
    /// Build and sign transactions.
    #[command(subcommand)]
    Tx(crate::wallet::TxCommand),
    /// Swap on a Uniswap V2 or V3 pool: quote, exact approval, slippage bound, deadline,
    /// confirmation.
    #[command(after_help = crate::onchain::EXIT_CODES)]
    Swap(Box<crate::onchain::SwapArgs>),
    /// Embed text with a sentence encoder (all-MiniLM-L6-v2): one JSON array of floats per
    /// input line.
    Embed(EmbedArgs),
    /// Train a bar forecaster (MLP or GRU) with a time-ordered train/validation/test split.
    Train(Box<crate::ml::TrainArgs>),
    /// Score a trained forecaster out of sample beside the naive baseline.
    Evaluate(crate::ml::EvaluateArgs),
    /// Walk-forward: train a forecaster on a window, trade the next window with `ml_forecast`
    /// out of sample, roll forward.
    Walkforward(Box<crate::ml::WalkForwardArgs>),
    /// Generate text with a small LLM (Gemma-3 GGUF), or a validated JSON trading decision.
    Generate(Box<crate::ml::GenerateArgs>),
    /// Serve models over the OpenAI-compatible HTTP protocol (chat, completions, embeddings,
    /// forecasts) with keys, limits and metrics: the program for a rented GPU (see
    /// examples/worker.toml).
    Worker(Box<crate::worker::WorkerArgs>),
    /// The inference router: an OpenAI-compatible gateway in front of remote workers and the
    /// local model, with one deadline per request, fail-over, circuit breakers and hedging
    /// (see examples/router.toml).
    #[command(subcommand)]
    Router(RouterCmd),
    /// Replay a recorded exchange feed (`<receive ns> <raw JSON>` a line, gzipped).
    Replay(ReplayArgs),
    /// Run a strategy on live feeds with paper execution (see examples/agent.toml).
    Paper(PaperArgs),
    /// Run the agent headless: feeds, strategy, risk engine, execution (paper or Binance
    /// spot), journal and the operations server, until SIGTERM or Ctrl-C (see
    /// examples/agent.toml).
    Run(RunArgs),
    /// Check an agent's config: print what it will connect to and what it may spend, without
    /// trading.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Pull a running agent's kill switch: trading HALTED, working orders cancelled.
    Kill(ControlArgs),
    /// Show a running agent's state: feeds, positions, PnL, risk state, recent orders.
    Status(StatusArgs),
    /// A terminal dashboard of a running agent (its /status, redrawn as it changes): feeds and
    /// their lag, books, positions, PnL, risk state, orders and rejections, recent orders.
    /// Quit with q, Esc or Ctrl-C.
    Top(TopArgs),
    /// Record a live feed to a file `kairos replay` reads (`<receive ns> <raw JSON>` a line).
    Record(RecordArgs),
    /// Load and validate data files; print what they hold and how their timestamps read.
    Data {
        /// Files or `sim:SEED[:BARS]`.
        #[arg(required = true)]
        sources: Vec<String>,
        /// The timestamps' format, where detection cannot tell: iso, iso-date, mdy, dmy, ymd,
        /// ymdhms, s, ms, us, ns [default: detected from every row].
        #[arg(long)]
        time_format: Option<TimeFormat>,
    },
}

#[derive(Debug, Args)]
struct BacktestArgs {
    /// TOML file with any of the settings below (see examples/backtest.toml); flags win.
    #[arg(long, env = "KAIROS_CONFIG")]
    config: Option<PathBuf>,
    /// Bars: a CSV/.csv.gz/Parquet/feather/JSON file, or `sim:SEED[:BARS]`. Repeat for
    /// several instruments.
    #[arg(long, env = "KAIROS_DATA", value_delimiter = ',')]
    data: Vec<String>,
    /// Resample the data to this interval first: a whole number and a unit, s, m, h, d or w
    /// (`30s`, `5m`, `1h`, `1d`, `1w`; weeks start on Monday).
    #[arg(long, value_parser = parse_resample)]
    resample: Option<String>,
    /// The timestamps' format, where detection cannot tell: iso, iso-date, mdy, dmy, ymd,
    /// ymdhms, s, ms, us, ns [default: detected from every row].
    #[arg(long)]
    time_format: Option<TimeFormat>,
    /// Strategy name (`kairos strategies` lists them).
    #[arg(long)]
    strategy: Option<String>,
    /// Strategy parameter `name=value`; repeat for several.
    #[arg(long = "param", short = 'p')]
    params: Vec<String>,
    #[command(flatten)]
    engine: EngineArgs,
    /// Folder for summary.json, trades.csv, equity.csv and report.html.
    #[arg(long, env = "KAIROS_OUT")]
    out: Option<PathBuf>,
    /// Also write each chart of report.html as DIR/charts/NAME.png.
    #[arg(long)]
    png: bool,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Monte Carlo: resample the run N times per method (trade order, trade bootstrap, block
    /// bootstrap of bar returns) and report bands of final equity and maximum drawdown.
    #[arg(long, value_name = "N")]
    monte_carlo: Option<usize>,
    /// The Monte Carlo seed [default: 0].
    #[arg(long, value_name = "SEED")]
    mc_seed: Option<u64>,
    /// Bars per block of the return bootstrap [default: the cube root of the bars].
    #[arg(long, value_name = "BARS")]
    mc_block: Option<usize>,
    /// A model the strategy asks for (`ctx.ask`), as NAME=PATH: a forecaster folder, a
    /// sentence-encoder folder or a Gemma .gguf. Repeat for several.
    #[arg(long = "model", value_name = "NAME=PATH", value_parser = crate::inference::ModelSettings::parse_model)]
    models: Vec<(String, PathBuf)>,
    /// Answers recorded by a paper or live session (`record_answers`): asks with the same
    /// model and input get the recorded answer, with its recorded latency unless
    /// --model-latency says otherwise.
    #[arg(long, value_name = "FILE")]
    model_answers: Option<PathBuf>,
    /// How late model answers arrive: 0, 250ms, lognormal:median=250ms,sigma=0.5,
    /// empirical:FILE (latencies recorded live) or recorded. The run is then repeated with
    /// every answer at once, and the difference reported as the cost of the delay
    /// [default: recorded with --model-answers, else 0].
    #[arg(long, value_name = "SPEC")]
    model_latency: Option<String>,
    /// Seed of the latency draws [default: 0].
    #[arg(long, value_name = "SEED")]
    model_seed: Option<u64>,
    /// Device of the --model models: cpu, cuda or cuda:N [default: cpu].
    #[arg(long, value_name = "DEVICE")]
    model_device: Option<String>,
}

/// The engine's settings, shared by `backtest` and `sweep`.
#[derive(Debug, Args)]
pub(crate) struct EngineArgs {
    /// Starting cash (also `KAIROS_CASH`).
    #[arg(long, allow_negative_numbers = true)]
    cash: Option<f64>,
    /// Commission as a fraction of traded value (0.0002 = 2 bps; down to -0.0005, a maker
    /// rebate), also `KAIROS_COMMISSION`.
    #[arg(long, allow_negative_numbers = true)]
    commission: Option<f64>,
    /// Fixed fee per fill.
    #[arg(long, allow_negative_numbers = true)]
    fixed_fee: Option<f64>,
    /// Slippage per fill in basis points.
    #[arg(long, allow_negative_numbers = true)]
    slippage_bps: Option<f64>,
    /// When market orders fill: at the next bar's open, or at the signal bar's close.
    #[arg(long, value_enum)]
    fill: Option<FillArg>,
    /// Lot size for every instrument (orders trade whole lots).
    #[arg(long, allow_negative_numbers = true)]
    lot_size: Option<f64>,
}

impl EngineArgs {
    /// `cfg` (from a config file or the defaults) with these flags over it; the environment
    /// sits between the two for cash and commission. Checked.
    pub(crate) fn apply(&self, mut cfg: BacktestConfig) -> Result<BacktestConfig> {
        if let Some(v) = self.cash.map_or_else(|| env_f64("KAIROS_CASH"), |v| Ok(Some(v)))? {
            cfg.cash = v;
        }
        if let Some(v) =
            self.commission.map_or_else(|| env_f64("KAIROS_COMMISSION"), |v| Ok(Some(v)))?
        {
            cfg.commission = v;
        }
        if let Some(v) = self.fixed_fee {
            cfg.fixed_fee = v;
        }
        if let Some(v) = self.slippage_bps {
            cfg.slippage_bps = v;
        }
        if let Some(v) = self.fill {
            cfg.fill = match v {
                FillArg::NextOpen => FillAt::NextOpen,
                FillArg::Close => FillAt::Close,
            };
        }
        if let Some(v) = self.lot_size {
            cfg.lot_size = Some(v);
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// `--resample`: checked when parsed, so that a bad interval is refused before any data loads.
fn parse_resample(s: &str) -> Result<String, String> {
    kairos_backtests::data::parse_interval(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// The `backtest` settings that are `Option`s (a config file fills what a flag leaves out)
/// with the defaults `BacktestConfig::default()` gives them, as the help shows them.
pub(crate) fn backtest_defaults() -> Vec<(&'static str, String)> {
    let d = kairos_backtests::engine::BacktestConfig::default();
    let fill = match d.fill {
        FillAt::NextOpen => FillArg::NextOpen,
        FillAt::Close => FillArg::Close,
    };
    let fill = clap::ValueEnum::to_possible_value(&fill).map(|v| v.get_name().to_string());
    vec![
        ("cash", d.cash.to_string()),
        ("commission", d.commission.to_string()),
        ("fixed_fee", d.fixed_fee.to_string()),
        ("slippage_bps", d.slippage_bps.to_string()),
        ("fill", fill.unwrap_or_default()),
        (
            "lot_size",
            d.lot_size
                .map_or_else(|| "the instruments' own (1 for files)".into(), |l| l.to_string()),
        ),
    ]
}

/// The command line, with the `backtest` defaults written into its help from the code.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    let with_defaults = |mut c: clap::Command| {
        for (id, value) in backtest_defaults() {
            c = c.mut_arg(id, |a| {
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                a.help(format!("{help} [default: {value}]"))
            });
        }
        c
    };
    Cli::command().mut_subcommand("backtest", with_defaults).mut_subcommand("sweep", with_defaults)
}

/// Runs the CLI with the built-in rule strategies and the model strategies
/// (`ml_forecast`, `news_sentiment`).
pub fn main() -> ExitCode {
    main_with(kairos_models::strategies::registry())
}

/// Runs the CLI with a registry of your own (`kairos_models::strategies::registry()` plus your
/// strategies).
pub fn main_with(registry: Registry) -> ExitCode {
    let cli = match command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    JSON_LOGS.store(cli.log_format == LogFormat::Json, std::sync::atomic::Ordering::Relaxed);
    init_logging(cli.log_format, cli.verbose);
    let result = match cli.command {
        Command::Backtest(args) => backtest(&registry, *args),
        Command::Sweep(args) => crate::sweep::sweep(&registry, *args),
        Command::Check(cmd) => crate::check::check(&registry, cmd),
        Command::Strategies { name } => strategies(&registry, name.as_deref()),
        Command::Data { sources, time_format } => data_info(&sources, time_format),
        Command::Replay(a) => replay(&registry, a),
        Command::Paper(a) => paper(&registry, a),
        Command::Record(a) => record(a),
        Command::Run(a) => run_agent(&registry, a),
        Command::Agent(AgentCommand::Check(a)) => agent_check(&registry, a),
        Command::Agent(AgentCommand::ResetRisk(a)) => reset_risk(a),
        Command::Kill(a) => kill_agent(a),
        Command::Status(a) => agent_status(a),
        Command::Top(a) => top(a),
        Command::Keys(cmd) => crate::wallet::keys(cmd),
        Command::Tx(cmd) => crate::wallet::tx(cmd),
        Command::Swap(a) => crate::onchain::swap(*a),
        Command::Embed(a) => embed(a),
        Command::Train(a) => crate::ml::train(*a),
        Command::Evaluate(a) => crate::ml::evaluate(a),
        Command::Generate(a) => crate::ml::generate(*a),
        Command::Worker(a) => crate::worker::worker(*a),
        Command::Router(RouterCmd::Serve(a)) => crate::gateway::serve(*a),
        Command::Router(RouterCmd::Release(a)) => crate::gateway::release(a),
        Command::Walkforward(a) => crate::ml::walk_forward(&registry, *a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("error: {e:#}");
            ExitCode::from(crate::onchain::exit_code(&e))
        }
    }
}

#[derive(Debug, Args)]
struct EmbedArgs {
    /// Model folder (config.json, tokenizer.json, model.safetensors; scripts/models/fetch.sh
    /// makes target/models/all-MiniLM-L6-v2), or `hf:sentence-transformers/all-MiniLM-L6-v2`
    /// to fetch it from the Hugging Face Hub when online.
    #[arg(long, env = "KAIROS_EMBED_MODEL")]
    model: String,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = crate::ml::parse_device)]
    device: String,
    /// Weight precision: f32, or f16/bf16 (half the memory; on a GPU, its tensor cores).
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Print one JSON document (an array of arrays) instead of one array per line.
    #[arg(long)]
    json: bool,
    /// Texts to embed; without any, one text per line of standard input.
    texts: Vec<String>,
}

fn embed(a: EmbedArgs) -> Result<()> {
    use std::io::BufRead;
    let texts: Vec<String> = if a.texts.is_empty() {
        std::io::stdin().lock().lines().collect::<std::io::Result<_>>()?
    } else {
        a.texts
    };
    let device = kairos_models::device(&a.device)?;
    let dtype = kairos_models::dtype(&a.dtype)?;
    let dir = kairos_models::hub::resolve_dir(&a.model, kairos_models::hub::ENCODER_FILES)?;
    let encoder = kairos_models::embed::TextEncoder::load_as(&dir, &device, dtype)?;
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(64) {
        out.extend(encoder.embed(chunk)?);
    }
    if a.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        for v in &out {
            println!("{}", serde_json::to_string(v)?);
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
struct RecordArgs {
    /// `binance-spot`, `binance-usdm` or `coinbase`.
    #[arg(long)]
    venue: String,
    /// Symbols (`BTCUSDT`; Coinbase products like `BTC-USD`), comma-separated or repeated.
    #[arg(long, value_delimiter = ',', required = true)]
    symbols: Vec<String>,
    /// The file to write (gzipped when it ends in .gz).
    #[arg(long)]
    out: PathBuf,
    /// Stop after this many seconds (default: until Ctrl-C or SIGTERM).
    #[arg(long, allow_negative_numbers = true)]
    duration_s: Option<f64>,
    /// Stop after this many stream messages (snapshots not counted).
    #[arg(long)]
    max_messages: Option<u64>,
    /// Websocket base URL [default: the venue's production endpoint].
    #[arg(long)]
    ws_url: Option<String>,
    /// REST base URL for Binance snapshots [default: the venue's].
    #[arg(long)]
    rest_url: Option<String>,
}

#[derive(Debug, Args)]
struct PaperArgs {
    /// The session's config file (every key is documented in examples/agent.toml).
    #[arg(long, env = "KAIROS_AGENT_CONFIG")]
    config: PathBuf,
    /// Stop after this many seconds (overrides `duration_s`).
    #[arg(long, allow_negative_numbers = true)]
    duration_s: Option<f64>,
    /// Folder for fills.csv and orders.csv (overrides `out`).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The agent's config file (every key is documented in examples/agent.toml; environment
    /// variables `KAIROS__SECTION__KEY` override its keys).
    #[arg(long, env = "KAIROS_AGENT_CONFIG")]
    config: PathBuf,
    /// Stop after this many seconds (overrides `duration_s`).
    #[arg(long, allow_negative_numbers = true)]
    duration_s: Option<f64>,
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Validate the config and print what the agent will connect to and may spend; nothing
    /// is sent anywhere.
    Check(RunArgs),
    /// Clear a stopped agent's kill-switch halt and drawdown breaker in its journal (an
    /// operator's decision; a daily-loss halt clears itself when the UTC day ends).
    ResetRisk(ControlArgs),
}

#[derive(Debug, Args)]
struct ControlArgs {
    /// The running agent's config file (its `[server]` and `journal`).
    #[arg(long, env = "KAIROS_AGENT_CONFIG")]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// The running agent's config file (its `[server]` and `journal`).
    #[arg(long, env = "KAIROS_AGENT_CONFIG")]
    config: PathBuf,
    /// Print the agent's `/status` JSON as it is.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct TopArgs {
    /// The running agent's config file (its `[server]` and `journal`).
    #[arg(long, env = "KAIROS_AGENT_CONFIG", required_unless_present = "url")]
    config: Option<PathBuf>,
    /// The agent's operations server instead (`http://127.0.0.1:9184`).
    #[arg(long, conflicts_with = "config")]
    url: Option<String>,
    /// Milliseconds between reads of /status.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    interval_ms: u64,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The recording (the format of ../shared/data/binance-ws/).
    #[arg(long)]
    file: PathBuf,
    /// Check the local order book against the recording's own `bookTicker` messages; prints,
    /// last, `book-check: compared=N mismatched=M unsynced=K`, and exits 1 if M > 0.
    #[arg(long, conflicts_with = "strategy")]
    verify_book: bool,
    /// Run this strategy on the recording with paper execution (`kairos strategies`).
    #[arg(long)]
    strategy: Option<String>,
    /// Strategy parameter `name=value`; repeat for several.
    #[arg(long = "param", short = 'p')]
    params: Vec<String>,
    /// `max`, or a multiple of the recorded pace (`1x`, `10x`).
    #[arg(long, default_value = "max")]
    speed: String,
    /// Starting cash in the quote currency.
    #[arg(long, default_value_t = 100_000.0, allow_negative_numbers = true)]
    cash: f64,
    /// Paper fee on resting fills, a fraction of notional (negative: a rebate).
    #[arg(long, default_value_t = 0.001, allow_negative_numbers = true)]
    maker_fee: f64,
    /// Paper fee on fills that take liquidity.
    #[arg(long, default_value_t = 0.001, allow_negative_numbers = true)]
    taker_fee: f64,
    /// Microseconds from an order leaving the strategy to the venue acting on it.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    entry_latency_us: i64,
    /// Microseconds from the venue's answer to the strategy hearing it.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    response_latency_us: i64,
    /// Price step of every instrument [default: the finest the recording's prices use].
    #[arg(long, allow_negative_numbers = true)]
    tick_size: Option<f64>,
    /// Size step of every instrument [default: the finest the recording's sizes use].
    #[arg(long, allow_negative_numbers = true)]
    lot_size: Option<f64>,
    /// A TOML file whose `[risk]` table sets the risk engine's limits and breakers (an
    /// agent's config will do; see examples/agent.toml) [default: no limits].
    #[arg(long)]
    risk: Option<PathBuf>,
    /// Folder for fills.csv and orders.csv.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn replay(registry: &Registry, a: ReplayArgs) -> Result<()> {
    if !a.verify_book {
        return replay_strategy(registry, a);
    }
    let started = Instant::now();
    let check = kairos_feeds::recording::verify_book(&a.file)?;
    if check.cut_off {
        say!(
            "warning: {}: the file ends in a cut-off gzip member (a recorder stopped mid-write); checking what precedes it",
            a.file.display()
        );
    }
    for e in &check.examples {
        say!("mismatch: {e}");
    }
    say!(
        "{}: {} lines in {:.2} s, {} malformed, {} not used, {} gaps",
        a.file.display(),
        check.lines,
        started.elapsed().as_secs_f64(),
        check.malformed,
        check.other,
        check.gaps
    );
    println!("{}", check.line());
    if check.compared == 0 {
        say!(
            "warning: nothing was compared: the recording has no bookTicker message after a \
             synchronised book (a depth snapshot followed by the diffs that reach past it)"
        );
    }
    if check.mismatched > 0 {
        bail!(
            "{} of {} book states differ from the exchange's bookTicker",
            check.mismatched,
            check.compared
        );
    }
    Ok(())
}

/// A watch channel that turns true on Ctrl-C, SIGTERM or after `duration_s`.
fn stop_signal(duration_s: Option<f64>) -> tokio::sync::watch::Receiver<bool> {
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            #[cfg(unix)]
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
                return;
            }
            std::future::pending::<()>().await
        };
        let timeout = async {
            match duration_s {
                Some(d) if d > 0.0 => {
                    tokio::time::sleep(std::time::Duration::from_secs_f64(d)).await
                }
                _ => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => say!("stopping (Ctrl-C)"),
            _ = term => say!("stopping (SIGTERM)"),
            _ = timeout => {}
        }
        let _ = stop_tx.send(true);
    });
    stop
}

fn record(a: RecordArgs) -> Result<()> {
    use kairos_feeds::record::{Target, record};
    if let Some(d) = a.duration_s
        && !(d.is_finite() && d > 0.0)
    {
        bail!("--duration-s {d} is not a positive number of seconds");
    }
    let refs: Vec<&str> = a.symbols.iter().map(String::as_str).collect();
    let target = match a.venue.as_str() {
        "binance-spot" | "binance-usdm" => {
            let market = if a.venue == "binance-spot" {
                kairos_feeds::binance::Market::Spot
            } else {
                kairos_feeds::binance::Market::UsdM
            };
            let mut f = kairos_feeds::binance_live::BinanceFeed::new(market, &refs);
            if let Some(u) = &a.ws_url {
                f.ws_base = u.clone();
            }
            if let Some(u) = &a.rest_url {
                f.rest_base = u.clone();
            }
            Target::Binance(f)
        }
        "coinbase" => {
            let mut f = kairos_feeds::coinbase_live::CoinbaseFeed::new(&refs);
            if let Some(u) = &a.ws_url {
                f.ws.url = u.clone();
            }
            Target::Coinbase(f)
        }
        other => bail!("--venue `{other}` is not binance-spot, binance-usdm or coinbase"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let stats = rt.block_on(async {
        let stop = stop_signal(a.duration_s);
        say!("recording {} {} into {}", a.venue, a.symbols.join(","), a.out.display());
        record(target, &a.out, a.max_messages, stop).await
    })?;
    println!(
        "recorded {} messages ({} snapshots) over {} connection(s) into {}",
        stats.lines,
        stats.snapshots,
        stats.connections,
        a.out.display()
    );
    Ok(())
}

fn paper(registry: &Registry, a: PaperArgs) -> Result<()> {
    let mut cfg = crate::paper::AgentFile::load(&a.config)?;
    if let Some(d) = a.duration_s {
        cfg.duration_s = d;
    }
    if let Some(o) = a.out {
        cfg.out = Some(o);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let report = rt.block_on(async {
        let stop = stop_signal(None);
        say!(
            "paper: {} on {} (fees maker {} taker {}, latency {} + {} µs)",
            cfg.strategy,
            cfg.symbols().join(", "),
            cfg.paper.maker_fee,
            cfg.paper.taker_fee,
            cfg.paper.entry_latency_ns / 1000,
            cfg.paper.response_latency_ns / 1000
        );
        crate::paper::run(&cfg, registry, stop).await
    })?;
    print!("{}", crate::replay::summary(&report).replacen("replay:", "paper:", 1));
    if let Some(dir) = &cfg.out {
        crate::replay::write_report(dir, &report)?;
        say!("wrote {}/fills.csv and orders.csv", dir.display());
    }
    Ok(())
}

fn load_agent(a: &RunArgs) -> Result<crate::paper::AgentFile> {
    let mut cfg = crate::paper::AgentFile::load(&a.config)?;
    if let Some(d) = a.duration_s {
        if !(d.is_finite() && d >= 0.0) {
            bail!("--duration-s {d} is not a number of seconds");
        }
        cfg.duration_s = d;
    }
    Ok(cfg)
}

fn agent_check(registry: &Registry, a: RunArgs) -> Result<()> {
    let cfg = load_agent(&a)?;
    let params = crate::config::params_as_text(&cfg.params);
    registry.build(&cfg.strategy, &params)?;
    print!("{}", crate::run::describe(&cfg, &a.config)?);
    println!("ok: the config is valid (nothing was sent anywhere)");
    Ok(())
}

fn reset_risk(a: ControlArgs) -> Result<()> {
    let cfg = crate::paper::AgentFile::load(&a.config)?;
    let path = cfg.journal.as_ref().context("the config has no journal: nothing to reset")?;
    // Opening takes the journal's lock: a running agent keeps its state.
    let j = crate::journal::Journal::open(path)?;
    let Some(mut state) = j.load_risk()? else {
        println!("no risk state in {}: trading starts ACTIVE", path.display());
        return Ok(());
    };
    let before = state.trading_state();
    let why = state.reason().unwrap_or("none").to_string();
    state.reset();
    j.save_risk(&state)?;
    let after = state.trading_state();
    j.event("risk reset", &format!("{} ({why}) -> {}", before.name(), after.name()))?;
    println!(
        "risk state reset: {} ({why}) -> {}{}",
        before.name(),
        after.name(),
        state.reason().map_or(String::new(), |r| format!(" ({r})"))
    );
    Ok(())
}

fn run_agent(registry: &Registry, a: RunArgs) -> Result<()> {
    let cfg = load_agent(&a)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let report = rt.block_on(async {
        let stop = stop_signal(None);
        let (kill_tx, kill_rx) = tokio::sync::mpsc::unbounded_channel();
        #[cfg(unix)]
        if let Ok(mut s) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        {
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if kill_tx.send(()).is_err() {
                        break;
                    }
                }
            });
        }
        say!(
            "run: {} on {} ({} venue, journal {})",
            cfg.strategy,
            cfg.symbols().join(", "),
            cfg.venue.kind,
            cfg.journal.as_ref().map_or("none".into(), |p| p.display().to_string())
        );
        crate::run::run(&cfg, registry, stop, Some(kill_rx)).await
    })?;
    let s = &report.last;
    println!(
        "run: {} orders, {} fills, {} cancelled, {} rejected, {} working at exit; trading {}{}",
        s.orders,
        s.fills,
        s.cancelled,
        s.rejections.values().sum::<u64>(),
        s.working,
        s.trading_state,
        s.risk_reason.as_deref().map_or(String::new(), |r| format!(" ({r})"))
    );
    println!(
        "run: equity {:.2}, realised {:.2}, unrealised {:.2}, {} messages in {:.1} s",
        s.equity, s.realised_pnl, s.unrealised_pnl, s.messages, report.run_s
    );
    Ok(())
}

/// The base URL of a running agent's operations server.
fn server_url(cfg: &crate::paper::AgentFile) -> Option<String> {
    let sv = cfg.server.as_ref()?;
    let addr = sv.listen.replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]");
    // Port 0 picks a port at start: the journal has the one it took.
    if addr.ends_with(":0") {
        let j = crate::journal::Journal::open_read_only(cfg.journal.as_ref()?).ok()?;
        let listening = j.events(200).ok()?.into_iter().rev().find(|(_, k, _)| k == "listening")?;
        return Some(format!("http://{}", listening.2.replace("0.0.0.0", "127.0.0.1")));
    }
    Some(format!("http://{addr}"))
}

fn kill_agent(a: ControlArgs) -> Result<()> {
    let cfg = crate::paper::AgentFile::load(&a.config)?;
    let token = match &cfg.server {
        Some(sv) => sv.token()?,
        None => None,
    };
    if let (Some(url), Some(token)) = (server_url(&cfg), token) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let answer = rt.block_on(async {
            let r = reqwest_feeds::Client::new()
                .post(format!("{url}/kill?by=cli"))
                .bearer_auth(token.as_str())
                .timeout(std::time::Duration::from_secs(5))
                .send()
                .await?;
            let status = r.status();
            Ok::<_, reqwest_feeds::Error>((status, r.text().await.unwrap_or_default()))
        });
        match answer {
            Ok((st, body)) if st.is_success() => {
                println!("{}", body.trim());
                return Ok(());
            }
            Ok((st, body)) => bail!("{url}/kill answered {st}: {}", body.trim()),
            Err(e) => say!("{url}/kill: {e}; trying the signal"),
        }
    }
    let journal = cfg.journal.as_ref().context(
        "no way to reach the agent: configure [server] with a token, or a journal (whose lock file holds the agent's process id)",
    )?;
    let pid = crate::journal::holder(journal).with_context(|| {
        format!("no agent holds the journal {}: is it running?", journal.display())
    })?;
    let ok = std::process::Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()
        .context("cannot run kill")?
        .success();
    if !ok {
        bail!("could not signal process {pid}");
    }
    println!("kill switch pulled: sent SIGUSR1 to the agent (process {pid})");
    Ok(())
}

fn agent_status(a: StatusArgs) -> Result<()> {
    let cfg = crate::paper::AgentFile::load(&a.config)?;
    let url = server_url(&cfg).context(
        "the agent has no [server] in its config: `kairos status` reads its /status endpoint",
    )?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let body = rt
        .block_on(async {
            reqwest_feeds::Client::new()
                .get(format!("{url}/status"))
                .timeout(std::time::Duration::from_secs(5))
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        })
        .with_context(|| format!("cannot read {url}/status: is the agent running?"))?;
    if a.json {
        println!("{body}");
        return Ok(());
    }
    let s: crate::ops::Snapshot = serde_json::from_str(&body)
        .with_context(|| format!("{url}/status: not an agent's status"))?;
    print!("{}", crate::ops::describe(&s));
    Ok(())
}

fn top(a: TopArgs) -> Result<()> {
    let url = match (a.url, a.config) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(path)) => {
            let cfg = crate::paper::AgentFile::load(&path)?;
            server_url(&cfg).context(
                "the agent has no [server] in its config (or, listening on port 0, has not \
                 started yet): `kairos top` reads its /status endpoint",
            )?
        }
        (None, None) => bail!("pass --config AGENT.toml or --url URL"),
    };
    crate::top::run(&url, std::time::Duration::from_millis(a.interval_ms))
}

fn replay_strategy(registry: &Registry, a: ReplayArgs) -> Result<()> {
    use crate::replay;
    let name = a.strategy.clone().context(
        "pass --strategy NAME to run a strategy on the recording, or --verify-book to check its book",
    )?;
    let mut params = Vec::new();
    for p in &a.params {
        params.push(Registry::parse_kv(p)?);
    }
    let strategy = registry.build(&name, &params)?;
    let speed: replay::Speed = a.speed.parse()?;
    let rec = replay::Recording::read(&a.file)?;
    let mut instruments = rec.instruments(rec.venue());
    for i in &mut instruments {
        if let Some(t) = a.tick_size {
            i.tick_size = t;
        }
        if let Some(l) = a.lot_size {
            i.lot_size = l;
        }
    }
    for i in &instruments {
        say!("instrument: {} tick {} lot {}", i.symbol, i.tick_size, i.lot_size);
    }
    if !(a.cash.is_finite() && a.cash > 0.0) {
        bail!("--cash {} is not a positive amount", a.cash);
    }
    let paper = kairos_engine::paper::PaperConfig {
        maker_fee: a.maker_fee,
        taker_fee: a.taker_fee,
        entry_latency_ns: a.entry_latency_us.saturating_mul(1000),
        response_latency_ns: a.response_latency_us.saturating_mul(1000),
    };
    let risk = match &a.risk {
        Some(p) => replay::risk_from_file(p)?,
        None => Default::default(),
    };
    let setup = replay::ReplaySetup { instruments, cash: a.cash, paper, speed, risk };
    say!(
        "{}: {} lines read and decompressed in {:.3} s ({} malformed lines)",
        a.file.display(),
        rec.lines.len(),
        rec.read_s,
        rec.malformed_lines
    );
    let warmup = strategy.warmup_bars();
    let report = replay::run(&rec, &setup, strategy)?;
    print!("{}", replay::summary(&report));
    if report.events.is_empty() && warmup > 0 {
        say!(
            "warning: {name} placed no orders: it decides on bars (its warm-up is {warmup} bars),              and a recording carries trades, quotes and book updates, not bars              (a strategy that reads the book, such as book_imbalance, trades on them)"
        );
    }
    if let Some(dir) = &a.out {
        replay::write_report(dir, &report)?;
        say!("wrote {}/fills.csv and orders.csv", dir.display());
    }
    Ok(())
}

fn init_logging(format: LogFormat, verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn strategies(registry: &Registry, name: Option<&str>) -> Result<()> {
    match name {
        Some(n) => print!("{}", registry.describe(n)?),
        None => {
            for info in registry.iter() {
                println!("{:<20} {}", info.name, info.description);
            }
            println!("\n`kairos strategies NAME` shows a strategy's parameters.");
        }
    }
    Ok(())
}

pub(crate) fn load_sources(
    sources: &[String],
    resample: Option<&str>,
    opts: &LoadOptions,
) -> Result<Vec<BarSeries>> {
    let interval = resample.map(data::parse_interval).transpose()?;
    sources
        .iter()
        .map(|s| {
            let series = data::source_with(s, opts)?;
            Ok(match interval {
                Some(i) => data::resample(&series, i)?,
                None => series,
            })
        })
        .collect()
}

pub(crate) fn describe_series(s: &BarSeries) -> String {
    let (a, b) = s.span().map(|(a, b)| (a.to_iso(), b.to_iso())).unwrap_or_default();
    let bars = if s.len() == 1 { "1 bar".to_string() } else { format!("{} bars", s.len()) };
    let span = if s.len() == 1 {
        a
    } else {
        format!("{a} .. {b}, every {}", format_interval(s.interval()))
    };
    let times =
        s.time_format.map(|f| format!(", timestamps read as {}", f.describe())).unwrap_or_default();
    format!("{} ({}): {bars}, {span}{times}", s.source, s.instrument.symbol)
}

/// Nanoseconds as the largest whole unit: `1m`, `4h`, `1d`, `90s`, `250ms`.
fn format_interval(ns: i64) -> String {
    const UNITS: [(i64, &str); 6] = [
        (7 * 86_400_000_000_000, "w"),
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
    ];
    for (unit, name) in UNITS {
        if ns >= unit && ns % unit == 0 {
            return format!("{}{name}", ns / unit);
        }
    }
    format!("{ns}ns")
}

fn data_info(sources: &[String], time_format: Option<TimeFormat>) -> Result<()> {
    let mut failed = 0;
    let opts = LoadOptions { time_format };
    for src in sources {
        match data::source_with(src, &opts) {
            Ok(s) => println!("ok   {}", describe_series(&s)),
            Err(e) => {
                failed += 1;
                println!("FAIL {e}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} sources failed validation", sources.len());
    }
    Ok(())
}

/// A number from the environment, the error naming the variable (not a flag the user did not
/// pass).
fn env_f64(name: &str) -> Result<Option<f64>> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("environment variable {name}={v:?} is not a number")),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("environment variable {name} is not UTF-8"),
    }
}

fn backtest(registry: &Registry, args: BacktestArgs) -> Result<()> {
    let file = match &args.config {
        Some(p) => BacktestFile::load(p)?,
        None => BacktestFile::default(),
    };
    let sources = data_sources(&args.data, file.data.clone())?;
    let strategy_name = args
        .strategy
        .clone()
        .or_else(|| file.strategy.clone())
        .context("no strategy: pass --strategy NAME or set `strategy` in the config file (`kairos strategies` lists them)")?;
    let params = merged_params(file.params_as_text(), &args.params)?;
    // Flags win over the environment, which wins over the file.
    let cfg = args.engine.apply(file.backtest.unwrap_or_default())?;
    let mut strategy = registry.build(&strategy_name, &params)?;
    let out = args.out.clone().or(file.out.clone());
    if let Some(dir) = &out {
        report::check_out_dir(dir)?;
    }
    if args.png && out.is_none() {
        bail!("--png writes into the output folder: give --out DIR (or `out` in the config file)");
    }
    let mc_file = file.monte_carlo.unwrap_or_default();
    if args.monte_carlo.or(mc_file.runs) == Some(0) {
        bail!("--monte-carlo takes a number of simulations above 0");
    }
    if args.mc_block.or(mc_file.block) == Some(0) {
        bail!("--mc-block takes a number of bars above 0");
    }
    let time_format = time_format(args.time_format, file.time_format.as_deref())?;
    let resample = args.resample.as_deref().or(file.resample.as_deref());
    let series = load_sources(&sources, resample, &LoadOptions { time_format })?;
    let mut warnings = Vec::new();
    for s in &series {
        note_series(s);
        let warmup = strategy.warmup_bars();
        if warmup >= s.len() {
            warnings.push(format!(
                "{strategy_name} needs {warmup} bars before its first decision and {} has {}: \
                 it cannot trade",
                s.source,
                s.len()
            ));
        }
    }
    let spans: Vec<_> = series.iter().filter_map(|s| s.span().map(|sp| (s, sp))).collect();
    for (i, (a, (a0, a1))) in spans.iter().enumerate() {
        for (b, (b0, b1)) in &spans[i + 1..] {
            if a1 < b0 || b1 < a0 {
                warnings.push(format!(
                    "{} ({} .. {}) and {} ({} .. {}) do not overlap in time: positions on the \
                     first stay open while the second trades",
                    a.source,
                    a0.to_iso(),
                    a1.to_iso(),
                    b.source,
                    b0.to_iso(),
                    b1.to_iso()
                ));
            }
        }
    }
    for w in &warnings {
        say!("warning: {w}");
    }
    let model_settings = crate::inference::ModelSettings {
        models: args.models.clone(),
        answers: args.model_answers.clone(),
        latency: args.model_latency.clone(),
        seed: args.model_seed.unwrap_or(0),
        device: args.model_device.clone().unwrap_or_else(|| "cpu".into()),
    };
    let started = Instant::now();
    let (result, delay) = crate::inference::run(
        &Backtest::new(cfg),
        &series,
        &mut strategy,
        || Ok(registry.build(&strategy_name, &params)?),
        &model_settings,
    )?;
    let elapsed = started.elapsed();
    let mut summary = result.summary();
    summary.warnings.splice(0..0, warnings);
    if args.json {
        let mut v = serde_json::to_value(&summary)?;
        if let (Some(d), Some(o)) = (&delay, v.as_object_mut()) {
            o.insert("model_answers".into(), serde_json::to_value(d)?);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "strategy: {strategy_name} {}",
            params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
        );
        print!("{}", report::table(&summary));
    }
    // With a modelled delay the bars ran twice (with and without it).
    let runs = if delay.as_ref().is_some_and(|d| d.instant.is_some()) { 2 } else { 1 };
    say!(
        "replayed {} bar{} in {:.3} s ({:.1} M bars/s){}",
        result.bars,
        if result.bars == 1 { "" } else { "s" },
        elapsed.as_secs_f64(),
        (runs * result.bars) as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6,
        if runs == 2 { ", twice: with the answers delayed and at once" } else { "" }
    );
    if let Some(d) = &delay {
        for line in d.lines() {
            // The figures on stdout with the summary; with --json they are in it.
            if line.starts_with("warning:") {
                say!("{line}");
            } else if !args.json {
                println!("{line}");
            }
        }
    }
    let monte_carlo = match (args.monte_carlo.or(mc_file.runs), args.mc_seed, args.mc_block) {
        (None, None, None) => None,
        (None, _, _) => bail!("--mc-seed and --mc-block go with --monte-carlo N"),
        (Some(runs), seed, block) => {
            let mc = MonteCarlo {
                runs,
                seed: seed.or(mc_file.seed).unwrap_or(0),
                block: block.or(mc_file.block),
            };
            let started = Instant::now();
            match montecarlo::simulate(&result, &mc, 0) {
                Ok(o) => {
                    if !args.json {
                        println!();
                        print!("{}", monte_carlo_table(&o));
                    }
                    say!(
                        "monte carlo: {} simulations per method in {:.2} s (seed {}, blocks of {} bars)",
                        runs,
                        started.elapsed().as_secs_f64(),
                        mc.seed,
                        o.block
                    );
                    Some(o)
                }
                // A run Monte Carlo cannot resample still writes its results.
                Err(e) => {
                    say!("warning: no Monte Carlo: {e}");
                    None
                }
            }
        }
    };
    if let Some(out) = &out {
        report::write(out, &result, &summary)?;
        let about = report::html::about(&strategy_name, &params, &result, &summary);
        let title = format!("{strategy_name} on {}", data_title(&series));
        let mut page = report::html::run_page(title, about, &result, &summary, &series)?;
        if let Some(d) = &delay {
            std::fs::write(out.join("model_answers.json"), serde_json::to_vec_pretty(d)?)
                .with_context(|| format!("writing {}/model_answers.json", out.display()))?;
            page.tables.push(d.table());
        }
        if let Some(o) = &monte_carlo {
            montecarlo::write(out, o)?;
            page.tables.push(monte_carlo_rows(o));
            page.charts.push(report::charts::monte_carlo_paths(&result, o)?);
            page.charts.push(report::charts::monte_carlo_bands(o)?);
        }
        let files = report::html::write(out, &page, args.png)?;
        say!(
            "wrote {}/summary.json, trades.csv, equity.csv, report.html{}{}",
            out.display(),
            if delay.is_some() { ", model_answers.json" } else { "" },
            if args.png {
                format!(" and {} charts as PNG", files.len() - 1)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// The Monte Carlo bands as a report table: caption, header, rows.
fn monte_carlo_rows(o: &montecarlo::Outcome) -> (String, Vec<String>, Vec<Vec<String>>) {
    let mut head = vec!["method".to_string(), "figure".into()];
    head.extend(o.percentiles.iter().map(|p| format!("p{p:.0}")));
    head.extend(["actual".into(), "actual rank".into(), "P(loss)".into()]);
    let mut rows = Vec::new();
    for m in &o.methods {
        for (name, b) in [
            ("final equity", &m.final_equity),
            ("return %", &m.return_pct),
            ("max drawdown %", &m.max_drawdown_pct),
        ] {
            let mut r = vec![m.name.replace('_', " "), name.to_string()];
            r.extend(b.percentiles.iter().map(|v| format!("{v:.2}")));
            r.push(format!("{:.2}", b.actual));
            r.push(format!("{:.0}%", b.actual_rank_pct));
            r.push(if name == "final equity" {
                format!("{:.1}%", m.loss_probability_pct)
            } else {
                String::new()
            });
            rows.push(r);
        }
    }
    (
        format!(
            "Monte Carlo bands ({} simulations per method, seed {})",
            o.settings.runs, o.settings.seed
        ),
        head,
        rows,
    )
}

/// The Monte Carlo bands as an aligned text table.
fn monte_carlo_table(o: &montecarlo::Outcome) -> String {
    let (caption, head, rows) = monte_carlo_rows(o);
    let mut all = vec![head];
    all.extend(rows);
    let widths: Vec<usize> = (0..all[0].len())
        .map(|c| all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut s = format!("{caption}\n");
    for r in &all {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| if i < 2 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        s.push_str(cells.join("  ").trim_end());
        s.push('\n');
    }
    s
}

/// The instruments' names, for a report's title.
pub(crate) fn data_title(series: &[kairos_backtests::data::BarSeries]) -> String {
    let names: Vec<&str> = series.iter().map(|s| s.instrument.symbol.as_str()).collect();
    match names.len() {
        0..=3 => names.join(", "),
        n => format!("{}, ... ({n} instruments)", names[..3].join(", ")),
    }
}

/// The data sources: the flags', or else the config file's. None, or one source twice, is an
/// error.
pub(crate) fn data_sources(flags: &[String], file: Option<DataList>) -> Result<Vec<String>> {
    let sources = if flags.is_empty() {
        file.map(DataList::into_vec).unwrap_or_default()
    } else {
        flags.to_vec()
    };
    if sources.is_empty() {
        bail!("no data: pass --data FILE (or sim:SEED) or set `data` in the config file");
    }
    for (i, a) in sources.iter().enumerate() {
        if let Some(j) = sources[..i].iter().position(|b| same_source(a, b)) {
            bail!(
                "data source {} (`{a}`) is the same as source {} (`{}`): each instrument once",
                i + 1,
                j + 1,
                sources[j]
            );
        }
    }
    Ok(sources)
}

/// The config file's parameters, each replaced by a `--param name=value` flag's.
pub(crate) fn merged_params(
    mut params: Vec<(String, String)>,
    flags: &[String],
) -> Result<Vec<(String, String)>> {
    for p in flags {
        let (k, v) = Registry::parse_kv(p)?;
        params.retain(|(pk, _)| pk != &k);
        params.push((k, v));
    }
    Ok(params)
}

/// `--time-format`, or else the config file's `time_format`.
pub(crate) fn time_format(
    flag: Option<TimeFormat>,
    file: Option<&str>,
) -> Result<Option<TimeFormat>> {
    match (flag, file) {
        (Some(f), _) => Ok(Some(f)),
        (None, Some(t)) => t
            .parse::<TimeFormat>()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("config key `time_format`: {e}")),
        (None, None) => Ok(None),
    }
}

/// The `data:` line for a loaded series, and the note that simulated data is not history.
pub(crate) fn note_series(s: &BarSeries) {
    say!("data: {}", describe_series(s));
    if s.simulated {
        say!(
            "note: {} is SIMULATED data from the built-in market simulator, not market history",
            s.source
        );
    }
}

/// Whether two data sources name the same data: the same text, or paths to the same file.
pub(crate) fn same_source(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// `kairos router ...`.
#[derive(Debug, clap::Subcommand)]
pub enum RouterCmd {
    /// Serve the OpenAI-compatible gateway until SIGTERM or Ctrl-C.
    Serve(Box<crate::gateway::ServeArgs>),
    /// Let a quarantined endpoint back in (it failed verification) and forget its failed
    /// checks.
    Release(crate::gateway::ReleaseArgs),
}
