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

/// The worker's image: deploy/worker.Dockerfile passes hadolint, runs as a user on the CUDA
/// runtime image, checks /health, and starts the worker with the arguments the Akash and
/// Nosana files give it.
#[test]
fn the_worker_dockerfile_passes_hadolint() {
    let Some(hadolint) = tool(repo().join("target/ops-venv/bin/hadolint"), "scripts/ops/setup.sh")
    else {
        return;
    };
    let path = repo().join("deploy/worker.Dockerfile");
    let o = Command::new(hadolint).arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && said.trim().is_empty(), "hadolint: {said}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\nUSER 10001") && text.contains("STOPSIGNAL SIGTERM"));
    assert!(text.contains("FROM nvidia/cuda:${CUDA_VERSION}-runtime-"), "a CUDA runtime base");
    assert!(text.contains("--features cuda"));
    assert!(text.contains("/health"));
    let entry = repo().join("deploy/worker-entrypoint.sh");
    use std::os::unix::fs::PermissionsExt as _;
    assert!(entry.metadata().unwrap().permissions().mode() & 0o111 != 0, "entrypoint executable");
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "target/"), "the build context leaves target/ out");
}

/// Runs scripts/ops/check-deploy.mjs: the network's own parser on `file` (its text replaced
/// by `edit` first). `None` when the tools are missing (a failure in CI).
fn check_deploy(what: &str, file: &str, edit: impl Fn(String) -> String) -> Option<(bool, Value)> {
    let ops = repo().join("scripts/ops");
    tool(ops.join("node_modules/.kairos-lock-sha256"), "scripts/ops/setup.sh")?;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(Path::new(file).file_name().unwrap());
    std::fs::write(&copy, edit(std::fs::read_to_string(repo().join(file)).unwrap())).unwrap();
    let o = Command::new("node")
        .arg(ops.join("check-deploy.mjs"))
        .arg(what)
        .arg(&copy)
        .current_dir(&ops)
        .output()
        .expect("node");
    let out: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    });
    Some((o.status.success(), out))
}

use serde_json::Value;

/// SHA-256 of `s` in hex, by sha256sum (an implementation other than the worker's).
fn sha256sum(s: &str) -> String {
    use std::io::Write as _;
    let mut p = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    String::from_utf8(o.stdout).unwrap()[..64].to_string()
}

/// One HTTP/1.1 GET; the status code.
fn get_status(addr: &str, path: &str, key: Option<&str>) -> u16 {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = key.map(|k| format!("authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}connection: close\r\n\r\n").unwrap();
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// deploy/akash/worker.sdl.yaml, with a key's digest put in as its comment says, goes through
/// Akash's own SDL parser (akashjs): its manifest and deployment groups ask for an NVIDIA GPU,
/// persistent storage mounted where the weights go, and the worker's port; and the worker,
/// started here with the manifest's own arguments and environment, accepts that key and no
/// other. A broken copy (a GPU without a vendor) is refused, so the parser does check.
#[test]
fn the_akash_sdl_parses_with_akashjs_and_its_worker_takes_the_key_behind_the_digest() {
    let key = "lease-key-0123456789abcdef";
    let digest = sha256sum(key);
    let put = |t: String| t.replace("REPLACE_WITH_KEY_SHA256", &digest);
    let Some((ok, out)) = check_deploy("akash", "deploy/akash/worker.sdl.yaml", put) else {
        return;
    };
    assert!(ok, "akashjs refused the SDL: {out}");
    let svc = &out["manifest"][0]["services"][0];
    assert_eq!(svc["name"], "worker");
    let res = &svc["resources"];
    assert_eq!(res["gpu"]["units"]["val"], 1);
    let gpu_attrs: Vec<&str> = res["gpu"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert!(gpu_attrs.iter().any(|k| k.starts_with("vendor/nvidia/model/h100")), "{gpu_attrs:?}");
    let models = res["storage"].as_array().unwrap().iter().find(|s| s["name"] == "models").unwrap();
    assert!(
        models["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == "persistent" && a["value"] == "true")
    );
    let mount = &svc["params"]["storage"][0];
    assert_eq!(
        (&mount["name"], &mount["mount"]),
        (&Value::from("models"), &Value::from("/opt/kairos/target"))
    );
    let expose = &svc["expose"][0];
    assert_eq!((expose["port"].as_u64(), expose["global"].as_bool()), (Some(8000), Some(true)));
    let group = &out["groups"][0]["resources"][0];
    assert_eq!(group["price"]["denom"], "uakt");
    assert_eq!(group["resource"]["gpu"]["units"]["val"], "1");
    assert_eq!(out["version"].as_str().unwrap().len(), 64, "the manifest version hash");
    // Only the digest travels.
    let env: Vec<String> =
        svc["env"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect();
    assert!(!env.iter().any(|e| e.contains(key)));
    let keys = env.iter().find_map(|e| e.strip_prefix("KAIROS_WORKER_API_KEYS=")).unwrap();
    assert_eq!(keys, format!("sha256:{digest}"));

    // The manifest's command line, on this machine's CPU and a free port.
    let args: Vec<String> = svc["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| match a.as_str().unwrap() {
            "cuda:0" => "cpu".to_string(),
            "0.0.0.0:8000" => "127.0.0.1:0".to_string(),
            a => a.to_string(),
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .arg("worker")
        .args(&args)
        .current_dir(repo())
        .env("KAIROS_WORKER_API_KEYS", keys)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead as _;
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("//").next().unwrap().to_string();
    assert!(line.contains("kairos worker listening on"), "{line}");
    let statuses = (
        get_status(&addr, "/v1/models", Some(key)),
        get_status(&addr, "/v1/models", Some(&format!("sha256:{digest}"))),
        get_status(&addr, "/v1/models", None),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(statuses, (200, 401, 401));

    let broken = |t: String| put(t).replace("            vendor:\n", "            notvendor:\n");
    let (ok, out) = check_deploy("akash", "deploy/akash/worker.sdl.yaml", broken).unwrap();
    assert!(!ok && out["error"].is_string(), "{out}");
}

/// deploy/nosana/worker.json passes Nosana's job-definition validator (@nosana/types), runs the
/// same image with the same arguments as the Akash deployment, health-checks /health, and holds
/// a key digest, never a key: Nosana job definitions are public. A broken copy is refused.
#[test]
fn the_nosana_job_validates_and_matches_the_akash_deployment() {
    let Some((ok, out)) = check_deploy("nosana", "deploy/nosana/worker.json", |t| t) else {
        return;
    };
    assert!(ok, "{out}");
    let job: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/nosana/worker.json")).unwrap(),
    )
    .unwrap();
    let run = &job["ops"][0]["args"];
    assert_eq!(run["gpu"], true);
    assert!(run["env"]["KAIROS_WORKER_API_KEYS"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(run["expose"][0]["port"], 8000);
    assert_eq!(run["expose"][0]["health_checks"][0]["path"], "/health");
    let sdl = std::fs::read_to_string(repo().join("deploy/akash/worker.sdl.yaml")).unwrap();
    let image = run["image"].as_str().unwrap();
    assert!(sdl.contains(&format!("image: {image}\n")), "the same image on both networks");
    for a in run["cmd"].as_array().unwrap() {
        assert!(sdl.contains(&format!("      - {}\n", a.as_str().unwrap())), "{a} not in the SDL");
    }
    let broken = |t: String| t.replace("\"gpu\": true", "\"gpu\": \"yes\"");
    let (ok, out) = check_deploy("nosana", "deploy/nosana/worker.json", broken).unwrap();
    assert!(!ok && out["errors"][0]["path"].as_str().unwrap().contains("gpu"), "{out}");
}
