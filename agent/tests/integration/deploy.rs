//! The deployment files: deploy/Dockerfile passes hadolint, deploy/kairos-agent.service passes
//! `systemd-analyze verify` (with the unit pointed at the kairos binary the tests built), and
//! the unit's stop settings leave the agent time to drain.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A tool, or `None` (a failure under `KAIROS_REQUIRE_INTEROP`).
fn tool(path: PathBuf, setup: &str) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
        "{} is missing: run {setup}",
        path.display()
    );
    eprintln!("skipping: {} is missing (run {setup})", path.display());
    None
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let Some(hadolint) = tool(repo().join("target/ops-venv/bin/hadolint"), "scripts/ops/setup.sh")
    else {
        return;
    };
    let o = Command::new(hadolint).arg(repo().join("deploy/Dockerfile")).output().unwrap();
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && said.trim().is_empty(), "hadolint: {said}");
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    assert!(text.contains("\nUSER 10001"), "the agent runs as a non-root user");
    assert!(text.contains("STOPSIGNAL SIGTERM"));
}

#[test]
fn the_systemd_unit_passes_systemd_analyze() {
    let Some(analyze) = tool(PathBuf::from("/usr/bin/systemd-analyze"), "scripts/ops/setup.sh")
    else {
        return;
    };
    let unit = std::fs::read_to_string(repo().join("deploy/kairos-agent.service")).unwrap();
    assert!(unit.contains("KillSignal=SIGTERM") && unit.contains("Restart=on-failure"));
    let stop: f64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.parse().ok())
        .expect("TimeoutStopSec");
    // Feeds, then cancels, each up to drain_s (the example's 5 s).
    assert!(stop >= 2.0 * 5.0 + 5.0, "TimeoutStopSec={stop} is shorter than a drain");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kairos-agent.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/kairos", env!("CARGO_BIN_EXE_kairos")))
        .unwrap();
    let o = Command::new(analyze).arg("verify").arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
}
