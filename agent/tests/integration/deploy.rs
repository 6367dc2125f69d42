//! The deployment files: deploy/Dockerfile passes hadolint, deploy/kairos-agent.service passes
//! `systemd-analyze verify` (with the unit pointed at the kairos binary the tests built), and
//! the unit's stop settings leave the agent time to drain; deploy/k8s/sweep-job.yaml validates and
//! its pods' command lines run.

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

/// deploy/k8s/sweep-job.yaml passes kubernetes-validate --strict, is an Indexed Job whose
/// shard count matches its completions, and its pods' command lines, run here with the index
/// Kubernetes would give each, merge into the whole sweep's result.
#[test]
fn the_sweep_job_validates_and_its_shards_merge_into_the_sweep() {
    let venv = repo().join("target/ops-venv/bin");
    let Some(validate) = tool(venv.join("kubernetes-validate"), "scripts/ops/setup.sh") else {
        return;
    };
    let manifest = repo().join("deploy/k8s/sweep-job.yaml");
    let o = Command::new(validate).arg("--strict").arg(&manifest).output().unwrap();
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && said.contains("passed"), "kubernetes-validate: {said}");
    // The YAML as JSON, by the PyYAML kubernetes-validate installs.
    let o = Command::new(venv.join("python"))
        .args(["-c", "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let job: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    let env = &c["env"][0];
    assert_eq!(env["name"], "JOB_COMPLETION_INDEX");
    assert_eq!(
        env["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    let args: Vec<String> =
        c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    let shard = args.iter().position(|a| a == "--shard").map(|i| &args[i + 1]).unwrap();
    assert_eq!(
        shard,
        &format!("$(JOB_COMPLETION_INDEX)/{n}"),
        "the shard count is the completions'"
    );
    // Each pod's command line, with a small sweep in the ConfigMap and simulated data on the
    // volume.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::write(
        root.join("config/sweep.toml"),
        "strategy = \"sma_cross\"\nwhere = \"fast < slow\"\n[grid]\nfast = \"2..9\"\nslow = \"5..30:5\"\n",
    )
    .unwrap();
    let local = |a: &str, i: u64| {
        a.replace("$(JOB_COMPLETION_INDEX)", &i.to_string())
            .replace("/config/", &format!("{}/config/", root.display()))
            .replace("/sweeps/", &format!("{}/sweeps/", root.display()))
    };
    let data_at = args.iter().position(|a| a == "--data").unwrap() + 1;
    let mut shard_dirs = Vec::new();
    for i in 0..n {
        let mut a: Vec<String> = args.iter().map(|x| local(x, i)).collect();
        a[data_at] = "sim:11:2000".into();
        let out = a[a.iter().position(|x| x == "--out").unwrap() + 1].clone();
        let o = Command::new(env!("CARGO_BIN_EXE_kairos")).args(&a).output().unwrap();
        assert!(o.status.success(), "pod {i}: {}", String::from_utf8_lossy(&o.stderr));
        shard_dirs.push(out);
    }
    let merged = root.join("sweeps/all");
    let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["sweep", "merge"])
        .args(&shard_dirs)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(o.status.success(), "merge: {}", String::from_utf8_lossy(&o.stderr));
    let whole = root.join("whole");
    let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["sweep", "--config"])
        .arg(root.join("config/sweep.toml"))
        .args(["--data", "sim:11:2000", "--out"])
        .arg(&whole)
        .output()
        .unwrap();
    assert!(o.status.success(), "whole: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(merged.join("sweep.csv")).unwrap(),
        std::fs::read(whole.join("sweep.csv")).unwrap(),
        "the Job's shards merged are the whole sweep"
    );
}
