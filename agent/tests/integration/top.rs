//! `kairos top` under tmux, against a real `kairos run` (the simulated Binance spot exchange,
//! a feed server replaying a real recording twice, held between the two): it draws the
//! dashboard, shows the count the agent's /status gives after the first replay, follows the
//! second replay to its new count, and on `q` exits 0 and gives the terminal back.

use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::Duration;

use kairos_feeds::testkit::Faults;

use crate::run::{Setup, status, until, which};

/// A tmux server of the test's own.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The events count on the dashboard's BTCUSDT feed row.
fn events_on(screen: &str) -> Option<u64> {
    screen.lines().find_map(|l| {
        let t: Vec<&str> = l.split_whitespace().collect();
        let at = t.iter().position(|w| *w == "synced")?;
        t.iter().any(|w| w.contains("BTCUSDT")).then(|| t.get(at + 1)?.parse().ok())?
    })
}

/// The agent's events count once it and the feed server's count stop moving (the server
/// holds between replays).
async fn settled_events(url: &str, s: &Setup) -> u64 {
    let read = || async {
        let n = status(url).await["instruments"][0]["events"].as_u64().unwrap_or(0);
        (n, s.feed.sent.load(Ordering::Relaxed))
    };
    let mut last = read().await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = read().await;
        if now == last && now.0 > 0 {
            return now.0;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_draws_follows_a_replayed_feed_and_quits_cleanly() {
    if which("tmux").is_none() {
        assert!(
            std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
            "tmux is missing: run scripts/ops/setup.sh"
        );
        eprintln!("skipping: tmux is not installed (scripts/ops/setup.sh)");
        return;
    }
    let Some(s) = Setup::with_faults("", Faults { loops: 2, ..Faults::default() }).await else {
        return;
    };
    // The first replay only, until the test lets the second start.
    s.feed.release.store(1, Ordering::Release);
    let mut a = s.start(&[]);
    let url = a.url().await;
    let first = settled_events(&url, &s).await;

    let tmux = Tmux { socket: format!("kairos-top-test-{}", std::process::id()) };
    let cmd = format!(
        "{} top --config '{}' --interval-ms 100; echo kairos-top-exit=$?; sleep 600",
        env!("CARGO_BIN_EXE_kairos"),
        s.cfg.display()
    );
    let o = tmux.run(&["new-session", "-d", "-s", "top", "-x", "150", "-y", "45", &cmd]);
    assert!(o.status.success(), "tmux: {}", String::from_utf8_lossy(&o.stderr));

    // It draws, with the agent's count.
    until("the dashboard with the first replay's count", || {
        events_on(&tmux.screen()) == Some(first)
    })
    .await;
    let screen = tmux.screen();
    for want in [
        "kairos top",
        "book_imbalance on binance-spot",
        "trading ACTIVE",
        "Feeds",
        "Positions",
        "Orders",
        "Recent orders",
        "q  quit",
    ] {
        assert!(screen.contains(want), "no `{want}` on\n{screen}");
    }

    // It follows the feed.
    s.feed.release.store(2, Ordering::Release);
    let end = tokio::time::Instant::now() + Duration::from_secs(120);
    while status(&url).await["instruments"][0]["events"].as_u64() <= Some(first) {
        assert!(tokio::time::Instant::now() < end, "the second replay did not reach the agent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = settled_events(&url, &s).await;
    assert!(second > first, "{second} after {first}");
    until("the dashboard with the second replay's count", || {
        events_on(&tmux.screen()) == Some(second)
    })
    .await;

    // It quits cleanly: exit status 0, the terminal's own screen back.
    let o = tmux.run(&["send-keys", "-t", "top", "q"]);
    assert!(o.status.success());
    until("kairos top to exit", || tmux.screen().contains("kairos-top-exit=")).await;
    let screen = tmux.screen();
    assert!(screen.contains("kairos-top-exit=0"), "{screen}");
    assert!(!screen.contains("Recent orders"), "the dashboard is left on the terminal:\n{screen}");

    a.signal("-TERM");
    let (exit, out) = a.wait().await;
    assert!(exit.success(), "{out}");
}
