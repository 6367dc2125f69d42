//! `kairos check lookahead` and `kairos check determinism`: bias checks of a strategy on real
//! data (see `kairos_backtests::checks`).

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use kairos_backtests::checks::{self, Divergence};
use kairos_backtests::data::{LoadOptions, TimeFormat};
use kairos_strategies::Registry;

use crate::cli::{EngineArgs, load_sources, merged_params, note, note_series};

/// `kairos check`.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Run the strategy on the full data and on copies cut after several times; report any
    /// decision (order, cancel, modification), fill or equity point before a cut that differs
    /// from the full run's: the strategy read data from after the decision. Exit status 1 if
    /// one does.
    Lookahead(CheckArgs),
    /// Run the strategy twice from fresh builds, and once with shared indicator series (as a
    /// sweep runs it); report the first difference, bit for bit. Exit status 1 if any.
    Determinism(CheckArgs),
}

/// What both checks run.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Bars: a file or `sim:SEED[:BARS]`; repeat for several instruments.
    #[arg(long, required = true, value_delimiter = ',')]
    data: Vec<String>,
    /// Resample the data first (`5m`, `1h`, `1d`).
    #[arg(long)]
    resample: Option<String>,
    /// The timestamps' format, where detection cannot tell [default: detected].
    #[arg(long)]
    time_format: Option<TimeFormat>,
    /// Strategy name (`kairos strategies` lists them; plugins registered with
    /// `cli::main_with` too).
    #[arg(long)]
    strategy: String,
    /// Strategy parameter `name=value`; repeat for several.
    #[arg(long = "param", short = 'p')]
    params: Vec<String>,
    /// How many cut points the lookahead check tries, spread over the data after the
    /// strategy's warm-up.
    #[arg(long, default_value_t = 10)]
    cuts: usize,
    #[command(flatten)]
    engine: EngineArgs,
}

fn at(d: &Divergence) -> String {
    d.time.to_iso()
}

/// Runs a check; an error (exit status 1) when it finds a bias.
pub fn check(registry: &Registry, cmd: CheckCommand) -> Result<()> {
    let (lookahead, a) = match cmd {
        CheckCommand::Lookahead(a) => (true, a),
        CheckCommand::Determinism(a) => (false, a),
    };
    let params = merged_params(Vec::new(), &a.params)?;
    // Built once here so that bad parameters fail before any data loads.
    registry.build(&a.strategy, &params)?;
    let config = a.engine.apply(Default::default())?;
    let series =
        load_sources(&a.data, a.resample.as_deref(), &LoadOptions { time_format: a.time_format })?;
    series.iter().for_each(note_series);
    let build = || Ok(registry.build(&a.strategy, &params)?);
    let name = &a.strategy;
    if lookahead {
        let cuts = checks::lookahead(config, &series, &build, a.cuts)?;
        let failed: Vec<_> = cuts.iter().filter(|c| c.divergence.is_some()).collect();
        for c in &failed {
            let d = c.divergence.as_ref().expect("filtered");
            println!(
                "LOOKAHEAD: {name} {} decided differently at {} (equity point {}) once the data after {} was removed: {}",
                if c.shared { "with shared series (as in a sweep)" } else { "as a backtest" },
                at(d),
                d.point,
                c.at.to_iso(),
                d.what
            );
        }
        let decisions: usize = cuts.iter().map(|c| c.decisions).sum();
        let fills: usize = cuts.iter().map(|c| c.fills).sum();
        println!(
            "lookahead: {name}: {} of {} cut runs left the full run ({} decisions and {} fills compared, as a backtest and with shared series)",
            failed.len(),
            cuts.len(),
            decisions,
            fills
        );
        if !failed.is_empty() {
            bail!("{name} read data from after its decisions ({} cuts)", failed.len());
        }
        if decisions == 0 {
            note(
                "warning: the strategy decided nothing before any cut: the check compared no decision",
            );
        }
    } else {
        let reps = checks::determinism(config, &series, &build)?;
        let mut bad = 0;
        for r in &reps {
            match &r.divergence {
                Some(d) => {
                    bad += 1;
                    println!(
                        "NOT DETERMINISTIC: {name}, {} against the first, from {}: {}",
                        r.against,
                        at(d),
                        d.what
                    );
                }
                None => println!(
                    "determinism: {name}, {} against the first: identical ({} equity points, {} fills, {} trades, every statistic, bit for bit)",
                    r.against, r.points, r.fills, r.trades
                ),
            }
        }
        if bad > 0 {
            bail!("{name} is not deterministic");
        }
    }
    Ok(())
}
