//! `kairos run` as a real process against real parts on 127.0.0.1: the simulated Binance spot
//! exchange (REST in Binance's formats, holding the venue's truth) and a Binance-format feed
//! server replaying a real recording. The agent is killed with SIGKILL at each of the three
//! points that touch money; after each restart no order was sent twice, the journal and the
//! venue agree, the strategy started only after reconciliation. A venue that does not answer
//! leaves the agent refusing to trade; SIGTERM applies the shutdown policy and exits 0; the
//! kill switch halts from each of its three paths and stays halted across a restart.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kairos_agent::binance_sim::{SimExchange, SimState, SimSymbol};
use kairos_agent::journal::{Journal, OrderState};
use kairos_feeds::testkit::{BinanceRecording, Endpoints, Faults};

use crate::paper::recording;

const KEY: &str = "sim-api-key-run1";
const SECRET: &str = "sim-secret-run";
const TOKEN: &str = "control-token-0123456789";
/// A hang, not a measurement: every wait below is for an event, bounded by this.
const HANG: Duration = Duration::from_secs(120);

pub(crate) struct Setup {
    dir: tempfile::TempDir,
    pub(crate) sim: SimExchange,
    pub(crate) cfg: PathBuf,
    /// The feed server.
    pub(crate) feed: Endpoints,
}

impl Setup {
    /// A fresh exchange, feed server and config. Market buys and crossing limit buys fill at
    /// 50,000 (the recording's bids are near 61,700, so the strategy's buys fill at once and
    /// its sells rest).
    async fn new(extra: &str) -> Option<Self> {
        Self::with_faults(extra, Faults::default()).await
    }

    /// [`Setup::new`] with a feed server that has `faults`.
    pub(crate) async fn with_faults(extra: &str, faults: Faults) -> Option<Self> {
        let rec = recording()?;
        let rec = Arc::new(BinanceRecording::read(&rec).unwrap());
        let feed: Endpoints = kairos_feeds::testkit::serve(rec, faults).await.unwrap();
        let mut state = SimState::new(
            KEY,
            SECRET,
            vec![SimSymbol::btcusdt()],
            &[("USDT", 1_000_000.0), ("BTC", 10.0)],
        );
        state.price.insert("BTCUSDT".into(), 50_000.0);
        let sim = SimExchange::start(state).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("agent.toml");
        let text = format!(
            r#"strategy = "book_imbalance"
cash = 100000
journal = "state/journal.sqlite"
{extra}
[params]
levels = 5
threshold = 0.3
size = 0.001
max_position = 0.002

[venue]
kind = "binance-spot"
rest_url = "{sim}"
ws_api_url = "{sim_ws}"
recv_window_ms = 1000
poll_ms = 50
client_prefix = "kt"

[server]
listen = "127.0.0.1:0"
token_env = "KAIROS_TEST_CONTROL_TOKEN"

[shutdown]
on_stop = "cancel"
drain_s = 10

[instruments.BTCUSDT]
tick_size = 0.01
lot_size = 0.00001

[[binance]]
market = "spot"
symbols = ["BTCUSDT"]
ws_url = "{ws}"
rest_url = "{rest}"
depth_limit = 5000
"#,
            sim = sim.url,
            sim_ws = sim.ws_url,
            ws = feed.ws,
            rest = feed.rest
        );
        std::fs::write(&cfg, text).unwrap();
        Some(Self { dir, sim, cfg, feed })
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.path().join("state/journal.sqlite")
    }

    /// The journal, read while no agent runs.
    fn journal(&self) -> Journal {
        Journal::open(self.journal_path()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn kairos(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kairos"));
        c.args(args)
            .arg("--config")
            .arg(&self.cfg)
            .env("BINANCE_API_KEY", KEY)
            .env("BINANCE_API_SECRET", SECRET)
            .env("KAIROS_TEST_CONTROL_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .env_remove("KAIROS_TEST_HALT_AT");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    pub(crate) fn start(&self, env: &[(&str, &str)]) -> Agent {
        let mut child = self
            .kairos(&["run"], env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kairos");
        let lines = capture_output(&mut child);
        Agent { child, lines }
    }

    /// Orders at the venue: `(client id, status)`.
    fn venue_orders(&self) -> Vec<(String, String)> {
        self.sim
            .lock()
            .orders
            .iter()
            .map(|o| (o.client_order_id.clone(), o.status.clone()))
            .collect()
    }
}

/// Collects the lines `child` writes to stderr and stdout (piped), as they come.
pub(crate) fn capture_output(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    for pipe in [
        Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stdout.take().unwrap()),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
    }
    lines
}

pub(crate) struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a line holding `needle`; panics if the agent ends first.
    async fn wait_line(&mut self, needle: &str) -> String {
        let until = tokio::time::Instant::now() + HANG;
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // The last lines may still be in the pipe.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
                    return l.clone();
                }
                panic!("kairos ended ({st}) before `{needle}`:\n{}", self.output());
            }
            assert!(tokio::time::Instant::now() < until, "no `{needle}`:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The operations server's base URL, from the log.
    pub(crate) async fn url(&mut self) -> String {
        let l = self.wait_line("operations server on http://").await;
        let at = l.find("http://").unwrap();
        l[at..].split_whitespace().next().unwrap().trim_end_matches('"').to_string()
    }

    fn sigkill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits for the exit; gives its status and everything it printed.
    pub(crate) async fn wait(mut self) -> (std::process::ExitStatus, String) {
        let until = tokio::time::Instant::now() + HANG;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return (st, self.output());
            }
            if tokio::time::Instant::now() > until {
                let _ = self.child.kill();
                panic!("kairos did not exit:\n{}", self.output());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until `f` holds (polled), bounded by [`HANG`].
pub(crate) async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + HANG;
    while !f() {
        assert!(tokio::time::Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub(crate) async fn status(url: &str) -> serde_json::Value {
    serde_json::from_str(&get(&format!("{url}/status")).await.1).unwrap()
}

/// The journal and the venue agree: every venue order is journalled with its id, status and
/// traded quantity; every venue trade is a journalled fill; no client order id reached the
/// venue twice; nothing is left unsettled in the journal that the venue has closed.
fn agree(s: &Setup) {
    let j = s.journal();
    let sim = s.sim.lock();
    let mut seen = std::collections::BTreeSet::new();
    for o in &sim.orders {
        assert!(seen.insert(o.client_order_id.clone()), "{} was sent twice", o.client_order_id);
        let jo = j
            .order(&o.client_order_id)
            .unwrap()
            .unwrap_or_else(|| panic!("venue order {} is not in the journal", o.client_order_id));
        assert_eq!(jo.venue_order_id, Some(o.order_id), "{jo:?}");
        let open = matches!(o.status.as_str(), "NEW" | "PARTIALLY_FILLED");
        if open {
            assert_eq!(jo.state, OrderState::Working, "{jo:?} vs {o:?}");
        } else {
            assert_eq!(jo.status.as_deref(), Some(o.status.as_str()), "{jo:?} vs {o:?}");
            assert_eq!(jo.state, OrderState::Final, "{jo:?}");
        }
        let executed: f64 = jo.executed.parse().unwrap();
        assert!((executed - o.executed).abs() < 1e-9, "{jo:?} vs {o:?}");
    }
    let fills = j.fills("binance-spot", "BTCUSDT").unwrap();
    assert_eq!(fills.len(), sim.trades.len(), "journal fills vs venue trades");
    for t in &sim.trades {
        assert!(fills.iter().any(|f| f.trade_id == t.id), "trade {} is not journalled", t.id);
    }
    for o in j.orders().unwrap() {
        if o.state != OrderState::Final {
            assert!(
                sim.orders.iter().any(|v| v.client_order_id == o.client_id
                    && matches!(v.status.as_str(), "NEW" | "PARTIALLY_FILLED")),
                "{o:?} is unsettled in the journal but not working at the venue"
            );
        }
    }
}

/// The events of the journal from the last `started` on, oldest first.
fn last_session_events(j: &Journal) -> Vec<(i64, String, String)> {
    let mut ev = j.events(10_000).unwrap();
    ev.sort_by_key(|e| e.0);
    let from = ev.iter().rposition(|e| e.1 == "started").unwrap();
    ev.split_off(from)
}

/// One crash point: SIGKILL there, check what the crash left, restart, trade on, stop with
/// SIGTERM, check that journal and venue agree.
async fn killed_at(point: &str) {
    let Some(s) = Setup::new("").await else { return };
    let mut a = s.start(&[("KAIROS_TEST_HALT_AT", point)]);
    a.wait_line(&format!("kairos-test-hook: halted at {point}")).await;
    a.sigkill();

    // What the crash left.
    let crashed = {
        let j = s.journal();
        let orders = j.orders().unwrap();
        let venue = s.venue_orders();
        match point {
            "order-journalled" => {
                let o = orders.last().expect("an order journalled");
                assert_eq!(o.state, OrderState::Intent, "{o:?}");
                assert!(!venue.iter().any(|(c, _)| *c == o.client_id), "{venue:?}");
                o.client_id.clone()
            }
            "order-sent" => {
                assert_eq!(venue.len(), 1, "{venue:?}");
                let o = orders.iter().find(|o| o.client_id == venue[0].0).expect("journalled");
                assert_eq!(o.state, OrderState::Intent, "the acknowledgement was not journalled");
                o.client_id.clone()
            }
            _ => {
                let trades = s.sim.lock().trades.len();
                assert!(trades >= 1);
                assert!(
                    j.fills("binance-spot", "BTCUSDT").unwrap().len() < trades,
                    "the fill was not journalled"
                );
                orders.iter().find(|o| o.state != OrderState::Final).unwrap().client_id.clone()
            }
        }
    };
    let before = s.venue_orders().len();

    // Restart: reconcile first, then trade on.
    let mut a = s.start(&[]);
    let url = a.url().await;
    until("new orders after the restart", || s.venue_orders().len() >= before + 3).await;
    let st = status(&url).await;
    assert_eq!(st["reconciled"], true);
    a.signal("-TERM");
    let (exit, out) = a.wait().await;
    assert!(exit.success(), "SIGTERM: {exit}\n{out}");

    agree(&s);
    assert!(
        s.sim.lock().requests.iter().any(|r| r == "WS userDataStream.subscribe.signature"),
        "the agent follows its orders on the user data stream"
    );
    let j = s.journal();
    let o = j.order(&crashed).unwrap().unwrap();
    let at_venue: Vec<_> = s.venue_orders().into_iter().filter(|(c, _)| *c == crashed).collect();
    match point {
        "order-journalled" => {
            assert_eq!(o.status.as_deref(), Some("NOT_SENT"), "{o:?}");
            assert!(at_venue.is_empty(), "the unsent order was sent after the restart");
        }
        _ => {
            assert_eq!(at_venue.len(), 1);
            assert_eq!(o.status.as_deref(), Some(at_venue[0].1.as_str()), "{o:?}");
        }
    }
    // The strategy started only after reconciliation, and its orders came after that.
    let ev = last_session_events(&j);
    let kinds: Vec<&str> = ev.iter().map(|e| e.1.as_str()).collect();
    let rec = kinds.iter().position(|k| *k == "reconciled").expect("reconciled");
    let started = kinds.iter().position(|k| *k == "strategy started").expect("strategy started");
    assert!(rec < started, "{kinds:?}");
    let started_ms = ev[started].0;
    let session_start = ev[0].0;
    for o in j.orders().unwrap() {
        if o.created_ms >= session_start {
            assert!(o.created_ms >= started_ms, "{o:?} was made before the strategy started");
        }
    }
    assert_eq!(kinds.last(), Some(&"stopped"), "{kinds:?}");
    // SIGTERM with `on_stop = "cancel"`: nothing is left working.
    assert!(
        s.sim.lock().open().next().is_none(),
        "orders still working after a cancelling stop: {:?}",
        s.venue_orders()
    );
    assert!(j.unsettled("binance-spot").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_an_order_is_journalled_and_before_it_is_sent() {
    killed_at("order-journalled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_an_order_is_sent_and_before_its_acknowledgement_is_journalled() {
    killed_at("order-sent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_a_fill_and_before_it_is_journalled() {
    killed_at("fill-received").await;
}

/// A venue that does not answer: the agent refuses to trade, says why, exits non-zero, and
/// sends no order; the journal says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_venue_that_does_not_answer_leaves_the_agent_refusing_to_trade() {
    let Some(s) = Setup::new("").await else { return };
    s.sim.lock().unavailable = true;
    let a = s.start(&[]);
    let (exit, out) = a.wait().await;
    assert!(!exit.success(), "{out}");
    assert!(out.contains("cannot reconcile with binance-spot, refusing to trade"), "{out}");
    assert!(out.contains("server time"), "the error says what did not answer: {out}");
    assert!(!out.contains(SECRET) && !out.contains(KEY), "{out}");
    assert!(s.venue_orders().is_empty());
    let sim = s.sim.lock();
    assert!(
        !sim.requests.iter().any(|r| r.starts_with("POST /api/v3/order")),
        "{:?}",
        sim.requests
    );
}

/// SIGTERM with `on_stop = "leave"` (set from the environment): exit 0, the working orders
/// stay working at the venue and in the journal; the next start cancels them before the
/// strategy starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_working_orders_when_told_to_and_the_next_start_settles_them() {
    let Some(s) = Setup::new("").await else { return };
    let mut a = s.start(&[("KAIROS__SHUTDOWN__ON_STOP", "leave")]);
    a.url().await;
    until("a resting order", || s.sim.lock().open().next().is_some()).await;
    a.signal("-TERM");
    let (exit, out) = a.wait().await;
    assert!(exit.success(), "{out}");
    agree(&s);
    let left: Vec<String> = s.sim.lock().open().map(|o| o.client_order_id.clone()).collect();
    // The strategy may have cancelled it in the meantime; when one was left, it is journalled
    // as working, and the next start cancels it before trading.
    let j = s.journal();
    for c in &left {
        assert_eq!(j.order(c).unwrap().unwrap().state, OrderState::Working);
    }
    drop(j);
    let mut a = s.start(&[]);
    a.url().await;
    a.signal("-TERM");
    let (exit, out) = a.wait().await;
    assert!(exit.success(), "{out}");
    let sim = s.sim.lock();
    for c in &left {
        let o = sim.orders.iter().find(|o| o.client_order_id == *c).unwrap();
        assert_eq!(o.status, "CANCELED", "{o:?}");
    }
    drop(sim);
    agree(&s);
}

/// The kill switch from each of its paths halts trading at once (working orders cancelled,
/// no new order reaches the venue, /ready says why), a request without the token is refused,
/// and the halt survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_halts_from_the_cli_the_http_endpoint_and_a_signal() {
    for path in ["http", "cli", "signal"] {
        let Some(s) = Setup::new("").await else { return };
        let mut a = s.start(&[]);
        let url = a.url().await;
        until("trading", || !s.venue_orders().is_empty()).await;
        let client = reqwest::Client::new();
        // No token, a wrong one: refused, still trading.
        let r = client.post(format!("{url}/kill")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let r = client.post(format!("{url}/kill")).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert_eq!(status(&url).await["trading_state"], "ACTIVE");
        let why = match path {
            "http" => {
                let r = client.post(format!("{url}/kill")).bearer_auth(TOKEN).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 200);
                "kill switch (http)"
            }
            "cli" => {
                let o = s.kairos(&["kill"], &[]).output().unwrap();
                let text = String::from_utf8_lossy(&o.stdout).to_string()
                    + &String::from_utf8_lossy(&o.stderr);
                assert!(o.status.success(), "{text}");
                assert!(text.contains("HALTED"), "{text}");
                "kill switch (cli via http)"
            }
            _ => {
                a.signal("-USR1");
                let why = "kill switch (SIGUSR1)";
                // A signal arrives when the kernel delivers it; the engine applies it then.
                let end = tokio::time::Instant::now() + HANG;
                while status(&url).await["trading_state"] != "HALTED" {
                    assert!(tokio::time::Instant::now() < end, "SIGUSR1 did not halt");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                why
            }
        };
        // The HTTP answer (and so `kairos kill`) comes once the engine has halted.
        let st = status(&url).await;
        assert_eq!(st["trading_state"], "HALTED", "{path}: {st}");
        assert_eq!(st["risk_reason"], why, "{path}");
        let (code, body) = get(&format!("{url}/ready")).await;
        assert_eq!(code, 503);
        assert!(body.contains(why), "{body}");
        // Working orders are cancelled, and no new order reaches the venue while feed
        // messages keep arriving.
        until("the cancels", || s.sim.lock().open().next().is_none()).await;
        let n = s.venue_orders().len();
        let seen = status(&url).await["messages"].as_u64().unwrap();
        let end = tokio::time::Instant::now() + HANG;
        loop {
            let m = status(&url).await["messages"].as_u64().unwrap();
            if m >= seen + 500 {
                break;
            }
            if tokio::time::Instant::now() > end {
                break; // the recording ran out
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(s.venue_orders().len(), n, "{path}: an order reached the venue after the halt");
        let text = get(&format!("{url}/metrics")).await.1;
        assert!(text.contains("kairos_trading_state{state=\"HALTED\"} 1"), "{text}");
        a.signal("-TERM");
        let (exit, out) = a.wait().await;
        assert!(exit.success(), "{out}");
        agree(&s);
        if path == "signal" {
            // The halt is journalled: a restart stays HALTED.
            let mut a = s.start(&[]);
            let url = a.url().await;
            let st = status(&url).await;
            assert_eq!(st["trading_state"], "HALTED", "{st}");
            assert_eq!(st["risk_reason"], why);
            // `kairos status` reads it; a reset is refused while the agent runs.
            let o = s.kairos(&["status"], &[]).output().unwrap();
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert!(text.contains("trading   HALTED (kill switch (SIGUSR1))"), "{text}");
            assert!(text.contains("BTCUSDT") && text.contains("not ready"), "{text}");
            let o = s.kairos(&["agent", "reset-risk"], &[]).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            assert!(!o.status.success() && err.contains("in use by another process"), "{err}");
            a.signal("-TERM");
            let (exit, out) = a.wait().await;
            assert!(exit.success(), "{out}");
            // Stopped: the operator resets, and the next start trades again.
            let o = s.kairos(&["agent", "reset-risk"], &[]).output().unwrap();
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            assert!(
                o.status.success() && text.contains("HALTED (kill switch (SIGUSR1)) -> ACTIVE"),
                "{text}"
            );
            let n = s.venue_orders().len();
            let mut a = s.start(&[]);
            let url = a.url().await;
            assert_eq!(status(&url).await["trading_state"], "ACTIVE");
            until("trading again", || s.venue_orders().len() > n).await;
            a.signal("-TERM");
            let (exit, out) = a.wait().await;
            assert!(exit.success(), "{out}");
            agree(&s);
        }
    }
}

/// `/metrics` is valid Prometheus text (`promtool check metrics`), and `/health` answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_health_answers() {
    let Some(s) = Setup::new("").await else { return };
    let mut a = s.start(&[]);
    let url = a.url().await;
    until("trading", || !s.venue_orders().is_empty()).await;
    assert_eq!(get(&format!("{url}/health")).await, (200, "ok\n".to_string()));
    let end = tokio::time::Instant::now() + HANG;
    while !get(&format!("{url}/metrics")).await.1.contains("kairos_user_stream_up 1") {
        assert!(tokio::time::Instant::now() < end, "the user data stream never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = get(&format!("{url}/metrics")).await.1;
    for name in [
        "kairos_feed_messages_total",
        "kairos_feed_lag_seconds{symbol=\"BTCUSDT\"",
        "kairos_book_resyncs_total",
        "kairos_orders_total",
        "kairos_fills_total",
        "kairos_rejections_total{rule=\"max_position\"}",
        "kairos_pnl{kind=\"realised\"}",
        "kairos_trading_state{state=\"ACTIVE\"} 1",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    a.signal("-TERM");
    let (exit, out) = a.wait().await;
    assert!(exit.success(), "{out}");
    let promtool = which("promtool");
    let Some(promtool) = promtool else {
        assert!(
            std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
            "promtool is missing: run scripts/ops/setup.sh"
        );
        eprintln!("skipping the promtool check: promtool is not installed (scripts/ops/setup.sh)");
        return;
    };
    let mut p = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && said.trim().is_empty(), "promtool: {said}\n{text}");
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// `kairos agent check` prints what the agent will connect to and may spend, and sends
/// nothing; a bad key is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_check_says_what_it_will_do_without_trading() {
    let Some(s) = Setup::new("").await else { return };
    let o = s.kairos(&["agent", "check"], &[]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(&format!("binance-spot at {}", s.sim.url)), "{out}");
    assert!(out.contains("book_imbalance") && out.contains("cash 100000"), "{out}");
    assert!(out.contains("warning     no notional limit"), "{out}");
    assert!(!out.contains(SECRET), "{out}");
    assert!(s.sim.lock().requests.is_empty(), "agent check sent something");
    let o =
        s.kairos(&["agent", "check"], &[("KAIROS__RISK__MAX_DAILY_LOSS", "-1")]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && err.contains("max_daily_loss"), "{err}");
    let o = s.kairos(&["agent", "check"], &[("KAIROS__VENUE__KND", "paper")]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && err.contains("knd"), "{err}");
}
