//! `kairos sweep`: a strategy over a grid of parameters, every combination through the
//! backtest engine, in parallel, with a progress bar; and `kairos sweep merge` for the
//! outputs of a sweep run in shards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kairos_backtests::data::{LoadOptions, TimeFormat};
use kairos_backtests::engine::BacktestConfig;
use kairos_backtests::report;
use kairos_backtests::sweep::walk::{self, rank};
use kairos_backtests::sweep::{Axis, Plan, Search, Select, Shard, Sweep, WalkForward, output};
use kairos_strategies::Registry;
use serde::Deserialize;

use crate::cli::{
    EngineArgs, data_sources, data_title, load_sources, merged_params, note, note_series,
    time_format,
};
use crate::config::{DataList, params_as_text, read_toml, relative_to};

/// `kairos sweep`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    merge: Option<SweepCommand>,
    /// TOML file with any of the settings below (see examples/sweep.toml); flags win.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Bars: a CSV/.csv.gz/Parquet/feather/JSON file, or `sim:SEED[:BARS]`. Repeat for
    /// several instruments.
    #[arg(long, value_delimiter = ',')]
    data: Vec<String>,
    /// Resample the data to this interval first (`5m`, `1h`, `1d`).
    #[arg(long)]
    resample: Option<String>,
    /// The timestamps' format, where detection cannot tell [default: detected].
    #[arg(long)]
    time_format: Option<TimeFormat>,
    /// Strategy name (`kairos strategies` lists them).
    #[arg(long)]
    strategy: Option<String>,
    /// A parameter every run shares, `name=value`; repeat for several.
    #[arg(long = "param", short = 'p')]
    params: Vec<String>,
    /// An axis of the grid: `name=A..B` (whole numbers A to B), `name=A..B:STEP`
    /// (`size=0.25..1:0.25`), or `name=v1,v2,...`; repeat for each parameter swept.
    #[arg(long = "grid", short = 'g')]
    grid: Vec<String>,
    /// Only combinations for which this holds: comparisons of parameters and numbers, with
    /// + - * / and parentheses, joined by && (`fast<slow`, `slow >= 2*fast && fast > 3`).
    #[arg(long = "where")]
    filter: Option<String>,
    /// The statistic the best rows are ranked by (any numeric column of sweep.csv)
    /// [default: sharpe].
    #[arg(long)]
    metric: Option<String>,
    /// Rank the lowest first (for volatility, drawdown duration, ...).
    #[arg(long)]
    ascending: bool,
    /// How many of the best rows to print [default: 20].
    #[arg(long)]
    top: Option<usize>,
    /// Folder for sweep.csv, sweep.parquet and sweep.json.
    #[arg(long)]
    out: Option<PathBuf>,
    /// `grid` runs every combination; `random` a seeded sample of `--trials` of them.
    #[arg(long, value_enum)]
    search: Option<SearchArg>,
    /// Combinations a random search runs.
    #[arg(long)]
    trials: Option<u64>,
    /// The random search's seed [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Run only slice I of N of the plan (`0/4` .. `3/4`); `kairos sweep merge` combines the
    /// slices' folders into the whole sweep's result.
    #[arg(long)]
    shard: Option<String>,
    /// Worker threads [default: every core].
    #[arg(long)]
    threads: Option<usize>,
    /// Walk-forward: re-optimise on each train window of N bars and run the best parameters
    /// on the M bars after it (`train=N,test=M[,step=K][,anchored]`); prints and writes the
    /// stitched out-of-sample statistics next to the in-sample ones.
    #[arg(long)]
    walk_forward: Option<String>,
    /// Also write report.html's charts as DIR/charts/NAME.png.
    #[arg(long)]
    png: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// `kairos sweep merge`.
#[derive(Debug, Subcommand)]
enum SweepCommand {
    /// Combine the output folders of every shard of one sweep into the result a single run
    /// gives.
    Merge {
        /// The shards' folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Folder for the merged sweep.csv, sweep.parquet, sweep.json and report.html.
        #[arg(long, required = true)]
        out: PathBuf,
        /// Rank the best rows by this statistic [default: the sweep's own].
        #[arg(long)]
        metric: Option<String>,
        /// Rank the lowest first.
        #[arg(long)]
        ascending: bool,
        /// How many of the best rows to print.
        #[arg(long, default_value_t = 20)]
        top: usize,
    },
}

/// `--search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SearchArg {
    /// Every combination.
    Grid,
    /// A seeded random sample.
    Random,
}

/// `kairos sweep --config FILE` (every key in examples/sweep.toml).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    data: Option<DataList>,
    resample: Option<String>,
    time_format: Option<String>,
    strategy: Option<String>,
    /// Fixed parameters.
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    /// Axes: `name = "A..B[:STEP]"` or `name = [v1, v2, ...]`, in the file's order.
    #[serde(default)]
    grid: toml::Table,
    #[serde(rename = "where")]
    filter: Option<String>,
    metric: Option<String>,
    ascending: Option<bool>,
    top: Option<usize>,
    out: Option<PathBuf>,
    search: Option<SearchArg>,
    trials: Option<u64>,
    seed: Option<u64>,
    shard: Option<String>,
    threads: Option<usize>,
    walk_forward: Option<String>,
    backtest: Option<BacktestConfig>,
}

impl SweepFile {
    fn load(path: &Path) -> Result<Self> {
        let mut f: SweepFile = read_toml(path)?;
        relative_to(path, &mut f.data, &mut f.out);
        Ok(f)
    }

    /// `[grid]` as `name=VALUES` axis specs.
    fn axes(&self) -> Result<Vec<String>> {
        self.grid
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Array(a) => a
                        .iter()
                        .map(|x| match x {
                            toml::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                Ok(format!("{k}={text}"))
            })
            .collect()
    }
}

/// Runs `kairos sweep` (or `kairos sweep merge`).
pub fn sweep(registry: &Registry, args: SweepArgs) -> Result<()> {
    if let Some(SweepCommand::Merge { dirs, out, metric, ascending, top }) = args.merge {
        return merge(&dirs, &out, metric.as_deref(), ascending, top);
    }
    let file = match &args.config {
        Some(p) => SweepFile::load(p)?,
        None => SweepFile::default(),
    };
    let sources = data_sources(&args.data, file.data.clone())?;
    let strategy = args.strategy.clone().or(file.strategy.clone()).context(
        "no strategy: pass --strategy NAME or set `strategy` in the config file (`kairos strategies` lists them)",
    )?;
    let fixed = merged_params(params_as_text(&file.params), &args.params)?;
    // Axes: the file's, each replaced by a flag's of the same name.
    let mut specs = file.axes()?;
    for g in &args.grid {
        let name = g.split_once('=').map_or(g.as_str(), |(k, _)| k.trim());
        specs.retain(|s| s.split_once('=').map(|(k, _)| k.trim()) != Some(name));
        specs.push(g.clone());
    }
    if specs.is_empty() {
        bail!(
            "no grid: pass --grid NAME=VALUES (fast=2..100) or set a [grid] table in the config file"
        );
    }
    let axes = specs.iter().map(|s| Axis::parse(s)).collect::<Result<Vec<_>, _>>()?;
    let search = match args.search.or(file.search).unwrap_or(SearchArg::Grid) {
        SearchArg::Grid => {
            if args.trials.is_some() {
                bail!("--trials is for --search random");
            }
            Search::Grid
        }
        SearchArg::Random => Search::Random {
            trials: args.trials.or(file.trials).context("--search random needs --trials N")?,
            seed: args.seed.or(file.seed).unwrap_or(0),
        },
    };
    let shard = args.shard.as_deref().or(file.shard.as_deref()).map(Shard::parse).transpose()?;
    let config = args.engine.apply(file.backtest.unwrap_or_default())?;
    let filter = args.filter.clone().or(file.filter.clone());
    let sweep =
        Sweep::new(registry, &strategy, fixed, axes, filter.as_deref(), search, shard, config)?;
    let metric = args.metric.clone().or(file.metric.clone()).unwrap_or_else(|| "sharpe".into());
    let metrics = kairos_backtests::stats::Summary::metrics();
    if !metrics.contains(&metric.as_str()) {
        bail!("--metric {metric}: not a statistic (one of {})", metrics.join(", "));
    }
    let ascending = args.ascending || file.ascending.unwrap_or(false);
    let top = args.top.or(file.top).unwrap_or(20);
    let threads = args.threads.or(file.threads).unwrap_or(0);
    let out = args.out.clone().or(file.out.clone());
    if let Some(dir) = &out {
        kairos_backtests::report::check_out_dir(dir)?;
    }
    if args.png && out.is_none() {
        bail!("--png writes into the output folder: give --out DIR (or `out` in the config file)");
    }
    let plan = sweep.plan()?;
    let time_format = time_format(args.time_format, file.time_format.as_deref())?;
    let resample = args.resample.as_deref().or(file.resample.as_deref());
    let series = load_sources(&sources, resample, &LoadOptions { time_format })?;
    series.iter().for_each(note_series);
    let threads_used = if threads == 0 { rayon_threads() } else { threads };
    // What was swept over what data, for sweep.json and walk_forward.json.
    let definition = serde_json::json!({
        "strategy": strategy,
        "fixed": sweep.fixed.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "grid": sweep.grid.axes.iter().map(|a| &a.spec).collect::<Vec<_>>(),
        "where": sweep.filter.as_ref().map(|f| f.text()),
        "search": match search {
            Search::Grid => serde_json::json!({ "kind": "grid" }),
            Search::Random { trials, seed } => serde_json::json!({ "kind": "random", "trials": trials, "seed": seed }),
        },
        "backtest": config,
        "data": sources,
        "resample": resample,
    });
    if let Some(spec) = args.walk_forward.as_deref().or(file.walk_forward.as_deref()) {
        if shard.is_some() {
            bail!("--walk-forward runs whole: it cannot be split with --shard");
        }
        let wf = WalkForward::parse(spec)?;
        let meta = serde_json::json!({
            "sweep": definition,
            "walk_forward": wf,
            "metric": metric,
            "ascending": ascending,
        });
        let about = sweep_about(&sweep, &sources, config, &format!("walk-forward {}", wf.text()));
        let run = WalkRun {
            sweep: &sweep,
            plan: &plan,
            wf,
            metric,
            ascending,
            threads,
            threads_used,
            about,
            png: args.png,
        };
        return walk_forward(registry, run, &series, out.as_deref(), meta);
    }
    note(&format!(
        "sweep: {strategy} over {} ({} combinations in the grid, {} eligible{}), {} to run on {threads_used} thread{}",
        sweep.grid.axes.iter().map(|a| a.spec.as_str()).collect::<Vec<_>>().join(" "),
        sweep.grid.size(),
        plan.eligible,
        shard.map(|s| format!(", shard {}/{}", s.index, s.count)).unwrap_or_default(),
        plan.combinations.len(),
        if threads_used == 1 { "" } else { "s" },
    ));
    let bar = progress_bar("sweep", plan.combinations.len() as u64);
    let mut writer = out.as_deref().map(|d| output::Writer::create(d, &sweep)).transpose()?;
    // Without --out the rows are kept for the ranking: a sweep without files is a small one.
    let mut kept: Vec<kairos_backtests::sweep::Row> = Vec::new();
    if writer.is_none() && plan.combinations.len() > 1_000_000 {
        bail!(
            "{} runs without --out: give a folder to stream the rows into",
            plan.combinations.len()
        );
    }
    let started = Instant::now();
    let mut heat = out.as_ref().and_then(|_| output::Heat::new(&sweep.grid, &metric, ascending));
    let outcome =
        sweep.run(registry, &plan, &series, threads, &|n| bar.set_position(n), &mut |rows| {
            if let Some(h) = &mut heat {
                h.add(&sweep.grid, &rows);
            }
            match &mut writer {
                Some(w) => w.write(&rows),
                None => {
                    kept.extend(rows);
                    Ok(())
                }
            }
        })?;
    bar.finish_and_clear();
    let secs = outcome.elapsed.as_secs_f64().max(1e-9);
    note(&format!(
        "ran {} combination{} in {secs:.2} s: {:.1} M bar-evaluations/s ({} bars each, {} indicator series shared){}",
        outcome.runs,
        if outcome.runs == 1 { "" } else { "s" },
        outcome.bar_evaluations as f64 / secs / 1e6,
        series.iter().map(|s| s.len()).sum::<usize>(),
        outcome.shared_series,
        match (&outcome.skip_reason, outcome.skipped) {
            (Some(why), n) if n > 0 =>
                format!("; {n} refused by the strategy (first: {why}; --where can leave them out)"),
            _ => String::new(),
        }
    ));
    let meta = serde_json::json!({
        "sweep": definition,
        "shard": shard.map(|s| serde_json::json!({ "index": s.index, "count": s.count })),
        "metric": metric,
        "ascending": ascending,
        "outcome": {
            "combinations": plan.combinations.len(),
            "runs": outcome.runs,
            "skipped": outcome.skipped,
            "skip_reason": outcome.skip_reason,
            "bar_evaluations": outcome.bar_evaluations,
            "seconds": secs,
            "threads": threads_used,
            "shared_series": outcome.shared_series,
            "wall_seconds": started.elapsed().as_secs_f64(),
        },
    });
    match (writer, &out) {
        (Some(w), Some(dir)) => {
            w.finish(&meta)?;
            let best =
                top_rows(&output::top(dir, &metric, top, ascending)?, &sweep.grid.axes, &metric);
            let mut page = report::html::Page {
                title: format!(
                    "sweep: {strategy} over {} on {}",
                    sweep.grid.axes.iter().map(|a| a.spec.as_str()).collect::<Vec<_>>().join(" "),
                    data_title(&series)
                ),
                about: sweep_about(
                    &sweep,
                    &sources,
                    config,
                    &format!("{} runs in {secs:.2} s on {threads_used} threads", outcome.runs),
                ),
                ..Default::default()
            };
            if let Some((head, rows)) = best.split_first() {
                page.tables.push((
                    format!("best {} by {metric}", rows.len()),
                    head.clone(),
                    rows.to_vec(),
                ));
            }
            if let Some(h) = &heat {
                page.charts.push(h.chart(&sweep.grid)?);
            }
            report::html::write(dir, &page, args.png)?;
            note(&format!(
                "wrote {}/sweep.csv, sweep.parquet, sweep.json, report.html",
                dir.display()
            ));
            print_table(&best);
        }
        _ => {
            // Each row's metric read once, not at every comparison.
            let mut ranked: Vec<(Option<f64>, kairos_backtests::sweep::Row)> =
                kept.into_iter().map(|r| (r.summary.metric(&metric), r)).collect();
            ranked.sort_by(|(x, a), (y, b)| {
                rank(*x, *y, ascending).then(a.combination.cmp(&b.combination))
            });
            let kept: Vec<_> = ranked.into_iter().take(top).map(|(_, r)| r).collect();
            let names: Vec<&str> = sweep.grid.axes.iter().map(|a| a.name.as_str()).collect();
            print_table(&top_table(
                &names,
                &metric,
                kept.iter().map(|r| {
                    let s = &r.summary;
                    (
                        r.combination,
                        r.values.clone(),
                        shown(&metric).into_iter().map(|m| s.metric(m)).collect(),
                    )
                }),
            ));
        }
    }
    Ok(())
}

/// A progress bar of `len` runs, with the rate and an ETA.
fn progress_bar(label: &str, len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{label} [{{bar:30}}] {{pos}}/{{len}} runs {{per_sec}} {{elapsed_precise}} eta {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

type TopRow = (u64, Vec<String>, Vec<Option<f64>>);

/// The figures the ranking table shows: the metric, then the usual ones.
fn shown(metric: &str) -> Vec<&str> {
    let mut v = vec![metric];
    v.extend(
        ["return_pct", "sharpe", "max_drawdown_pct", "num_trades"]
            .into_iter()
            .filter(|m| *m != metric),
    );
    v
}

/// The ranking table: a header, then a line per row.
fn top_table(axes: &[&str], metric: &str, rows: impl Iterator<Item = TopRow>) -> Vec<Vec<String>> {
    let mut head: Vec<String> = vec!["#".into(), "combination".into()];
    head.extend(axes.iter().map(|a| a.to_string()));
    head.extend(shown(metric).into_iter().map(str::to_string));
    let mut table = vec![head];
    for (i, (k, values, figs)) in rows.enumerate() {
        let mut line = vec![(i + 1).to_string(), k.to_string()];
        line.extend(values);
        line.extend(figs.iter().map(|f| fig(*f)));
        table.push(line);
    }
    table
}

/// A figure as the tables show it: whole numbers bare, others to four decimals, `-` where
/// undefined.
fn fig(x: Option<f64>) -> String {
    // Never `-0`.
    let x = x.map(|v| if v == 0.0 { 0.0 } else { v });
    match x {
        Some(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "-".into(),
    }
}

/// The best rows read back from sweep.parquet, as a table.
fn top_rows(df: &polars::prelude::DataFrame, axes: &[Axis], metric: &str) -> Vec<Vec<String>> {
    let names: Vec<&str> = axes.iter().map(|a| a.name.as_str()).collect();
    let cell = |name: &str, i: usize| -> Option<polars::prelude::AnyValue<'_>> {
        df.column(name).ok().and_then(|c| c.get(i).ok())
    };
    let num =
        |name: &str, i: usize| -> Option<f64> { cell(name, i).and_then(|v| v.extract::<f64>()) };
    let text = |v: Option<polars::prelude::AnyValue<'_>>| -> String {
        match v {
            Some(polars::prelude::AnyValue::String(s)) => s.to_string(),
            Some(v) => v.to_string(),
            None => String::new(),
        }
    };
    let rows = (0..df.height()).map(|i| {
        let k = cell("combination", i).and_then(|v| v.extract::<u64>()).unwrap_or(0);
        let values = names.iter().map(|n| text(cell(n, i))).collect();
        (k, values, shown(metric).into_iter().map(|m| num(m, i)).collect())
    });
    top_table(&names, metric, rows)
}

/// What a sweep ran, for its report.
fn sweep_about(
    sweep: &Sweep,
    sources: &[String],
    config: BacktestConfig,
    ran: &str,
) -> Vec<(String, String)> {
    let mut about = vec![(
        "strategy".to_string(),
        format!(
            "{} {}",
            sweep.strategy,
            sweep.fixed.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
        ),
    )];
    about.push((
        "grid".into(),
        sweep.grid.axes.iter().map(|a| a.spec.as_str()).collect::<Vec<_>>().join(" "),
    ));
    if let Some(f) = &sweep.filter {
        about.push(("where".into(), f.text().to_string()));
    }
    about.push(("data".into(), sources.join(", ")));
    about.push(("engine".into(), report::html::engine_text(&config)));
    about.push(("ran".into(), ran.to_string()));
    about
}

/// A walk-forward's settings.
struct WalkRun<'a> {
    sweep: &'a Sweep,
    plan: &'a Plan,
    wf: WalkForward,
    metric: String,
    ascending: bool,
    threads: usize,
    threads_used: usize,
    /// What was run, for the report.
    about: Vec<(String, String)>,
    png: bool,
}

/// `kairos sweep --walk-forward`.
fn walk_forward(
    registry: &Registry,
    run: WalkRun<'_>,
    series: &[kairos_backtests::data::BarSeries],
    out: Option<&Path>,
    meta: serde_json::Value,
) -> Result<()> {
    let line = walk::time_line(series);
    let windows = run.wf.windows(line.len())?;
    // A sweep per window, then one test run.
    let total = windows.len() as u64 * (run.plan.combinations.len() as u64 + 1);
    note(&format!(
        "walk-forward: {} windows ({}) of {} combinations each on {} thread{}, best by {}",
        windows.len(),
        run.wf.text(),
        run.plan.combinations.len(),
        run.threads_used,
        if run.threads_used == 1 { "" } else { "s" },
        run.metric,
    ));
    let bar = progress_bar("walk-forward", total);
    let select = Select { metric: run.metric.clone(), ascending: run.ascending };
    let r = run.sweep.walk_forward(
        registry,
        run.plan,
        series,
        &run.wf,
        &select,
        run.threads,
        &|n| bar.set_position(n),
    )?;
    bar.finish_and_clear();
    let secs = r.outcome.elapsed.as_secs_f64().max(1e-9);
    note(&format!(
        "ran {} runs in {secs:.2} s: {:.1} M bar-evaluations/s",
        r.outcome.runs,
        r.outcome.bar_evaluations as f64 / secs / 1e6
    ));
    let names: Vec<&str> = run.sweep.grid.axes.iter().map(|a| a.name.as_str()).collect();
    let short =
        |t: kairos_strategies::Timestamp| t.to_string().chars().take(16).collect::<String>();
    let m = run.metric.as_str();
    let mut table = vec![
        ["window", "train", "test"]
            .into_iter()
            .map(str::to_string)
            .chain(names.iter().map(|n| n.to_string()))
            .chain([format!("is_{m}"), format!("oos_{m}"), "oos_return_pct".into()])
            .collect::<Vec<_>>(),
    ];
    for w in &r.windows {
        let mut line = vec![
            w.window.index.to_string(),
            format!("{}..{}", short(w.train_span.0), short(w.train_span.1)),
            format!("{}..{}", short(w.test_span.0), short(w.test_span.1)),
        ];
        match &w.best {
            Some(b) => line.extend(b.values.iter().cloned()),
            None => line.extend(names.iter().map(|_| "(none: flat)".to_string())),
        }
        line.push(fig(w.best.as_ref().and_then(|b| b.summary.metric(m))));
        line.push(fig(w.test.as_ref().and_then(|t| t.metric(m))));
        line.push(fig(w.test.as_ref().map(|t| t.return_pct)));
        table.push(line);
    }
    print_table(&table);
    println!();
    let mut compare = vec![vec![
        "statistic".to_string(),
        "in-sample (mean of windows)".into(),
        "out-of-sample (stitched)".into(),
    ]];
    let mut shown_metrics = vec![m];
    shown_metrics.extend(
        [
            "return_pct",
            "return_ann_pct",
            "sharpe",
            "max_drawdown_pct",
            "win_rate_pct",
            "num_trades",
        ]
        .into_iter()
        .filter(|x| *x != m),
    );
    for name in shown_metrics {
        compare.push(vec![
            name.to_string(),
            fig(r.in_sample_mean(name)),
            fig(r.oos_summary.metric(name)),
        ]);
    }
    print_table(&compare);
    let flat = r.windows.iter().filter(|w| w.best.is_none()).count();
    if flat > 0 {
        note(&format!(
            "warning: in {flat} of {} windows no combination had a defined {m} on the train window, \
             so they stay in cash{}",
            r.windows.len(),
            if m == "sharpe" || m == "sortino" || m == "calmar" || m.ends_with("_ann_pct") {
                " (annualised figures need at least two days of returns; --metric return_pct is defined on any window)"
            } else {
                ""
            }
        ));
    }
    println!(
        "walk-forward efficiency (out-of-sample / in-sample annual return): {}{}",
        fig(r.efficiency()),
        if r.untested > 0 {
            format!("; the last {} bar times fit no whole window and were not tested", r.untested)
        } else {
            String::new()
        }
    );
    if let Some(dir) = out {
        walk::write(dir, run.sweep, &r, meta)?;
        // The report of the stitched run, over the bars it tested.
        let tested = match (r.windows.first(), r.windows.last()) {
            (Some(a), Some(b)) => {
                walk::slice(series, a.test_span.0, line.get(b.window.test_end).copied())
            }
            _ => Vec::new(),
        };
        let title = format!(
            "walk-forward: {} over {} on {}, out of sample",
            run.sweep.strategy,
            run.sweep.grid.axes.iter().map(|a| a.spec.as_str()).collect::<Vec<_>>().join(" "),
            data_title(series)
        );
        let mut page =
            report::html::run_page(title, run.about.clone(), &r.oos, &r.oos_summary, &tested)?;
        if let Some((head, rows)) = table.split_first() {
            page.tables.push(("windows".into(), head.clone(), rows.to_vec()));
        }
        if let Some((head, rows)) = compare.split_first() {
            page.tables.push(("in and out of sample".into(), head.clone(), rows.to_vec()));
        }
        report::html::write(dir, &page, run.png)?;
        note(&format!(
            "wrote {}/walk_forward.csv, walk_forward.json, report.html and the stitched run's summary.json, trades.csv, equity.csv",
            dir.display()
        ));
    }
    Ok(())
}

/// Rows of cells, right-aligned in columns.
fn print_table(table: &[Vec<String>]) {
    let cols = table.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| table.iter().map(|r| r.get(c).map_or(0, String::len)).max().unwrap_or(0))
        .collect();
    for r in table {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(s, w)| format!("{s:>w$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

/// `kairos sweep merge`.
fn merge(
    dirs: &[PathBuf],
    out: &Path,
    metric: Option<&str>,
    ascending: bool,
    top: usize,
) -> Result<()> {
    let m = output::merge(dirs, out)?;
    note(&format!("merged {} shard folders: {} rows into {}", dirs.len(), m.rows, out.display()));
    let metric = metric
        .map(str::to_string)
        .or_else(|| m.meta["metric"].as_str().map(str::to_string))
        .unwrap_or_else(|| "sharpe".into());
    let ascending = ascending || m.meta["ascending"].as_bool().unwrap_or(false);
    let axes: Vec<Axis> = m.meta["sweep"]["grid"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().and_then(|s| Axis::parse(s).ok())).collect())
        .unwrap_or_default();
    let best = top_rows(&output::top(out, &metric, top, ascending)?, &axes, &metric);
    // The merged sweep's report, as one run of the whole sweep writes it.
    let sweep = &m.meta["sweep"];
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(" "),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    let mut page = report::html::Page {
        title: format!(
            "sweep: {} over {}, merged from {} shards",
            text(&sweep["strategy"]),
            text(&sweep["grid"]),
            dirs.len()
        ),
        about: ["strategy", "fixed", "grid", "where", "data"]
            .into_iter()
            .map(|k| (k.to_string(), text(&sweep[k])))
            .chain([(
                "ran".to_string(),
                format!("{} rows from {} shard folders", m.rows, dirs.len()),
            )])
            .collect(),
        ..Default::default()
    };
    if let Some((head, rows)) = best.split_first() {
        page.tables.push((format!("best {} by {metric}", rows.len()), head.clone(), rows.to_vec()));
    }
    if let Ok(grid) = kairos_backtests::sweep::Grid::new(axes.clone())
        && let Some(mut heat) = output::Heat::new(&grid, &metric, ascending)
    {
        heat.add_file(&grid, out)?;
        page.charts.push(heat.chart(&grid)?);
    }
    report::html::write(out, &page, false)?;
    print_table(&best);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// examples/sweep.toml parses, with its axes in the file's order.
    #[test]
    fn the_example_file_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sweep.toml");
        let f = SweepFile::load(&p).unwrap();
        assert_eq!(f.axes().unwrap(), ["fast=2..100", "slow=2..100"]);
        assert_eq!(f.strategy.as_deref(), Some("sma_cross"));
        assert_eq!(f.filter.as_deref(), Some("fast < slow"));
        assert!(f.backtest.is_some());
        let t = "[grid]\nslow = [30, 20]\nfast = \"2..4\"\n";
        let f: SweepFile = toml::from_str(t).unwrap();
        assert_eq!(f.axes().unwrap(), ["slow=30,20", "fast=2..4"]);
        assert!(toml::from_str::<SweepFile>("grdi = 1").is_err());
    }
}
