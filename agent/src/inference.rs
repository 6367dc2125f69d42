//! Model answers in `kairos backtest`: who answers the strategy's asks
//! ([`Context::ask`](kairos_strategies::Context::ask)), how late, and what the lateness
//! costs.
//!
//! With a latency modelled, a run whose strategy asked models runs twice on the same bars and
//! answers: once with every answer delayed as modelled, once with every answer there at once.
//! The difference between the two is the cost of the decision delay, reported beside the
//! latencies the run drew.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use kairos_backtests::data::BarSeries;
use kairos_backtests::engine::{Backtest, BacktestResult};
use kairos_backtests::stats::Summary;
use kairos_models::asks::{Answers, AskStats, Latency, LocalModels, Recording, Simulated};
use kairos_strategies::Strategy;
use serde::Serialize;

/// Where a backtest's model answers come from and how late they arrive.
#[derive(Debug, Clone, Default)]
pub struct ModelSettings {
    /// `NAME=PATH`: a local model under the name strategies ask for.
    pub models: Vec<(String, PathBuf)>,
    /// Answers recorded live (`record_answers` of a paper or live session).
    pub answers: Option<PathBuf>,
    /// The latency spec ([`Latency::parse`]); `None`: as recorded with `answers`, else none.
    pub latency: Option<String>,
    /// Seed of the latency draws.
    pub seed: u64,
    /// Device of the local models.
    pub device: String,
}

impl ModelSettings {
    /// Whether any of it was given.
    pub fn is_set(&self) -> bool {
        !self.models.is_empty() || self.answers.is_some() || self.latency.is_some()
    }

    /// Parses `NAME=PATH`.
    pub fn parse_model(s: &str) -> Result<(String, PathBuf), String> {
        let (name, path) = s
            .split_once('=')
            .filter(|(n, p)| !n.trim().is_empty() && !p.trim().is_empty())
            .ok_or_else(|| {
                format!("`{s}` is not NAME=PATH (fc=models/fc1, news=minilm, llm=gemma.gguf)")
            })?;
        Ok((name.trim().to_string(), PathBuf::from(path.trim())))
    }

    /// Loads the models and the recording, and parses the latency.
    pub fn load(&self) -> Result<(Answers, Latency)> {
        let mut local = LocalModels::new();
        for (name, path) in &self.models {
            if !path.exists() {
                bail!("--model {name}={}: no such file or folder", path.display());
            }
            local
                .load(name, path, &self.device)
                .with_context(|| format!("--model {name}={}", path.display()))?;
        }
        let recording = match &self.answers {
            Some(p) => {
                let r = Recording::load(p).map_err(anyhow::Error::msg)?;
                if r.is_empty() {
                    bail!("--model-answers {}: the file has no answers", p.display());
                }
                Some(Arc::new(r))
            }
            None => None,
        };
        let latency = match (&self.latency, &recording) {
            (Some(spec), _) => {
                let l =
                    Latency::parse(spec).map_err(|e| anyhow::anyhow!("--model-latency: {e}"))?;
                if l == Latency::Recorded && recording.is_none() {
                    bail!(
                        "--model-latency recorded takes each answer's latency from a recording: \
                         give --model-answers FILE"
                    );
                }
                l
            }
            (None, Some(_)) => Latency::Recorded,
            (None, None) => Latency::Zero,
        };
        let local = (!self.models.is_empty()).then(|| Arc::new(local));
        Ok((Answers { recording, local }, latency))
    }
}

/// One run's figures, for the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Total return, %.
    pub return_pct: f64,
    /// Final equity.
    pub equity_final: f64,
    /// Sharpe ratio.
    pub sharpe: f64,
    /// Deepest drawdown, %.
    pub max_drawdown_pct: f64,
    /// Closed trades.
    pub trades: usize,
}

impl Figures {
    fn of(s: &Summary) -> Self {
        Self {
            return_pct: s.return_pct,
            equity_final: s.equity_final,
            sharpe: s.sharpe,
            max_drawdown_pct: s.max_drawdown_pct,
            trades: s.num_trades,
        }
    }
}

/// What the strategy's model asks came to, and what their delay cost.
#[derive(Debug, Clone, Serialize)]
pub struct DelayReport {
    /// The latency model, in words.
    pub latency: String,
    /// The seed of its draws.
    pub seed: u64,
    /// The delayed run's asks.
    pub stats: AskStats,
    /// Latency percentiles drawn, ms: p50, p90, p99, max.
    pub latency_ms: [Option<f64>; 4],
    /// The run as reported, answers delayed.
    pub delayed: Figures,
    /// The same run with every answer at once (absent without a latency).
    pub instant: Option<Figures>,
    /// Return lost to the delay, percentage points (instant minus delayed).
    pub cost_return_points: Option<f64>,
    /// Final equity lost to the delay.
    pub cost_equity: Option<f64>,
}

/// Runs the backtest with the strategy's model asks answered as `settings` say; `build`
/// makes a fresh strategy for the run without delay. Returns the run as reported (with the
/// delay) and, when the strategy asked, the report on its asks.
pub fn run(
    backtest: &Backtest,
    series: &[BarSeries],
    strategy: &mut Box<dyn Strategy>,
    build: impl Fn() -> Result<Box<dyn Strategy>>,
    settings: &ModelSettings,
) -> Result<(BacktestResult, Option<DelayReport>)> {
    let (answers, latency) = settings.load()?;
    let sim = Simulated::new(answers.clone(), latency.clone(), settings.seed);
    let stats = sim.stats();
    let result = backtest.run_with(series, strategy, Some(Box::new(sim)))?;
    let stats = stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if stats.asked == 0 {
        if settings.is_set() {
            say!(
                "warning: the strategy asked no model, so --model, --model-answers and \
                 --model-latency changed nothing (a strategy asks with ctx.ask; ml_forecast \
                 with -p ask=NAME)"
            );
        }
        return Ok((result, None));
    }
    let delayed = Figures::of(&result.summary());
    let instant = if latency.is_zero() {
        None
    } else {
        let mut twin = build()?;
        let sim = Simulated::new(answers, Latency::Zero, settings.seed);
        let r = backtest.run_with(series, &mut twin, Some(Box::new(sim)))?;
        Some(Figures::of(&r.summary()))
    };
    let cost_return_points = instant.as_ref().map(|i| i.return_pct - delayed.return_pct);
    let cost_equity = instant.as_ref().map(|i| i.equity_final - delayed.equity_final);
    let latency_ms = [
        stats.latency_ms(0.5),
        stats.latency_ms(0.9),
        stats.latency_ms(0.99),
        stats.latency_ms(1.0),
    ];
    Ok((
        result,
        Some(DelayReport {
            latency: latency.to_string(),
            seed: settings.seed,
            stats,
            latency_ms,
            delayed,
            instant,
            cost_return_points,
            cost_equity,
        }),
    ))
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1} ms"))
}

impl DelayReport {
    /// The lines `kairos backtest` prints.
    pub fn lines(&self) -> Vec<String> {
        let s = &self.stats;
        let mut v = vec![format!(
            "model answers: {} asked ({} from the recording, {} by local models, {} failed, {} \
             still on their way at the end); latency {} (seed {}): p50 {}, p90 {}, p99 {}, max {}",
            s.asked,
            s.from_recording,
            s.from_local,
            s.failed,
            s.unanswered,
            self.latency,
            self.seed,
            ms(self.latency_ms[0]),
            ms(self.latency_ms[1]),
            ms(self.latency_ms[2]),
            ms(self.latency_ms[3]),
        )];
        if s.recording_reused > 0 {
            v.push(format!(
                "warning: {} asks were asked more often than the recording holds answers to them: \
                 each got the last recorded answer again",
                s.recording_reused
            ));
        }
        if let Some(f) = &s.first_failure {
            v.push(format!("warning: {} model asks failed; the first: {f}", s.failed));
        }
        match (&self.instant, self.cost_return_points) {
            (Some(i), Some(cost)) => v.push(format!(
                "decision delay: return {:.2}% with it against {:.2}% with every answer at once: \
                 it {} {:.2} percentage points, {:.2} of final equity (Sharpe {:.2} against \
                 {:.2}, max drawdown {:.2}% against {:.2}%, {} against {} trades)",
                self.delayed.return_pct,
                i.return_pct,
                if cost >= 0.0 { "costs" } else { "gains" },
                cost.abs(),
                self.cost_equity.unwrap_or(f64::NAN).abs(),
                self.delayed.sharpe,
                i.sharpe,
                self.delayed.max_drawdown_pct,
                i.max_drawdown_pct,
                self.delayed.trades,
                i.trades,
            )),
            _ => v.push(
                "decision delay: none modelled (every answer arrives at once); give \
                 --model-latency (250ms, lognormal:median=250ms,sigma=0.5, empirical:FILE) to \
                 see what it costs"
                    .into(),
            ),
        }
        v
    }

    /// The report table: caption, header, rows.
    pub fn table(&self) -> (String, Vec<String>, Vec<Vec<String>>) {
        let head = vec!["figure".to_string(), "answers delayed".into(), "answers at once".into()];
        let f2 = |v: f64| format!("{v:.2}");
        let mut rows = Vec::new();
        let inst = self.instant.as_ref();
        type Cell = fn(&Figures) -> String;
        let cells: [(&str, Cell); 5] = [
            ("return %", |f| format!("{:.2}", f.return_pct)),
            ("final equity", |f| format!("{:.2}", f.equity_final)),
            ("Sharpe", |f| format!("{:.2}", f.sharpe)),
            ("max drawdown %", |f| format!("{:.2}", f.max_drawdown_pct)),
            ("trades", |f| f.trades.to_string()),
        ];
        for (name, cell) in cells {
            rows.push(vec![name.to_string(), cell(&self.delayed), inst.map_or("-".into(), cell)]);
        }
        rows.push(vec![
            "cost of the delay (return points)".into(),
            self.cost_return_points.map_or("-".into(), f2),
            String::new(),
        ]);
        let s = &self.stats;
        rows.push(vec![
            "asks (failed, unanswered at the end)".into(),
            format!("{} ({}, {})", s.asked, s.failed, s.unanswered),
            String::new(),
        ]);
        for (q, v) in ["p50", "p90", "p99", "max"].iter().zip(self.latency_ms) {
            rows.push(vec![format!("latency {q}"), ms(v), String::new()]);
        }
        (
            format!("Model answers and the cost of the decision delay (latency {})", self.latency),
            head,
            rows,
        )
    }
}
