//! Memory over a long run: the agent of `kairos run` (paper venue, journal, risk engine,
//! metrics) on the spot BTC recording served by a Binance-format feed server on 127.0.0.1,
//! looped (each repeat's update ids and times moved on, so the book stays continuous). Prints
//! the resident memory after every loop and exits 1 if the last is more than 10% above the
//! first.
//!
//! `cargo run --release -p kairos-agent --example memory_loop [LOOPS] [FILE]`
//! (`scripts/bench/memory-flat.sh` runs it.)

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kairos_agent::ops::Metrics;
use kairos_agent::paper::AgentFile;
use kairos_feeds::testkit::{BinanceRecording, Faults};

/// Resident memory of this process, bytes (`/proc/self/statm`).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let loops: usize = std::env::args().nth(1).map_or(Ok(10), |a| a.parse())?;
    let file = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "../shared/data/binance-ws/spot/btcusdt_20240808.gz".into());
    let rec = Arc::new(BinanceRecording::read(std::path::Path::new(&file))?);
    let per_loop = rec.stream.len();
    let feed = kairos_feeds::testkit::serve(rec, Faults { loops, ..Faults::default() }).await?;
    // One loop at a time: the next starts after this one is measured.
    feed.release.store(1, Ordering::Release);
    let dir = tempfile::tempdir()?;
    let cfg_path = dir.path().join("agent.toml");
    std::fs::write(
        &cfg_path,
        format!(
            r#"strategy = "book_imbalance"
journal = "journal.sqlite"
[params]
size = 0.001
max_position = 0.005
[risk]
max_order_notional = 10000
price_band_bps = 100
max_orders_per_s = 50
max_daily_loss = 100000
[risk.max_position]
BTCUSDT = 0.01
[instruments.BTCUSDT]
tick_size = 0.01
lot_size = 0.00001
[[binance]]
market = "spot"
symbols = ["BTCUSDT"]
ws_url = "{}"
rest_url = "{}"
backoff_min_s = 0.05
backoff_max_s = 0.2
"#,
            feed.ws, feed.rest
        ),
    )?;
    let cfg = AgentFile::load(&cfg_path)?;
    let registry = kairos_models::strategies::registry();
    let params = kairos_agent::config::params_as_text(&cfg.params);
    let strategy = registry.build(&cfg.strategy, &params)?;
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    // The agent runs on this task (its future holds the journal's connection); the monitor
    // on another.
    let m = metrics.clone();
    let monitor = tokio::spawn(async move {
        println!("loop    events  orders  fills   resident MiB");
        let mut seen = Vec::new();
        for k in 1..=loops {
            // The server has sent loop k and the agent has handled it (its count stops).
            while feed.sent.load(Ordering::Relaxed) < k * per_loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let events = || m.update(|s| s.instruments.iter().map(|i| i.events).sum::<u64>());
            let mut last = u64::MAX;
            while events() != last {
                last = events();
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let s = m.snapshot();
            let r = rss();
            seen.push(r);
            println!(
                "{k:>4}  {:>8}  {:>6}  {:>5}   {:>8.1}",
                last,
                s.orders,
                s.fills,
                r as f64 / (1 << 20) as f64
            );
            feed.release.store(k + 1, Ordering::Release);
        }
        let _ = stop_tx.send(true);
        seen
    });
    let report = kairos_agent::run::run_observed(&cfg, strategy, stop, None, metrics).await?;
    let seen = monitor.await?;
    let (first, last) = (seen[0] as f64, *seen.last().unwrap_or(&0) as f64);
    let growth = (last / first - 1.0) * 100.0;
    println!(
        "resident memory after loop {loops} is {growth:+.1}% of loop 1 ({} orders, {} fills, trading {})",
        report.last.orders, report.last.fills, report.last.trading_state
    );
    if growth > 10.0 {
        println!("FAIL: more than 10% growth");
        std::process::exit(1);
    }
    println!("ok: within 10%");
    Ok(())
}
