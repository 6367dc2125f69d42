//! Embedding throughput of `kairos worker` on this machine's CPU, beside the same model in
//! process and beside sentence-transformers on the same texts and batch size.
//!
//! The texts are generated here (headline-like sentences of 20 to 60 words, fixed by index) and
//! written to a file that the Python side reads, so both embed exactly the same inputs.
//!
//! - worker: `kairos worker --embed-model DIR` over HTTP on 127.0.0.1, requests of BATCH texts
//!   from CLIENTS concurrent clients (the worker batches what arrives together within its
//!   token budget);
//! - in process: `TextEncoder::embed` on BATCH texts at a time (what the worker runs, without
//!   HTTP and JSON);
//! - sentence-transformers: `SentenceTransformer(DIR).encode(texts, batch_size=BATCH)`, run by
//!   `scripts/bench/st_embed.py` with the Python given in `KAIROS_BENCH_PYTHON` (default
//!   `.venv-st/bin/python`, made by `scripts/bench/worker.sh`).
//!
//!   cargo bench -p kairos-agent --bench worker_embed [-- TEXTS]     (needs scripts/models/fetch.sh)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const BATCH: usize = 32;
const CLIENTS: usize = 4;

fn texts(n: usize) -> Vec<String> {
    let words = [
        "bitcoin",
        "rallies",
        "after",
        "the",
        "central",
        "bank",
        "signals",
        "a",
        "pause",
        "in",
        "rate",
        "hikes",
        "while",
        "ether",
        "slips",
        "as",
        "traders",
        "weigh",
        "regulatory",
        "risks",
        "and",
        "exchange",
        "outflows",
        "hit",
        "record",
        "levels",
        "across",
        "major",
        "venues",
        "amid",
        "thin",
        "liquidity",
        "funding",
        "rates",
        "turn",
        "negative",
    ];
    (0..n)
        .map(|i| {
            let len = 20 + (i * 7919) % 41;
            (0..len)
                .map(|j| words[(i * 31 + j * 17 + j * j) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models/all-MiniLM-L6-v2")
}

/// The caller kills and reaps it.
#[allow(clippy::zombie_processes)]
fn worker(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["worker", "--embed-model", dir.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .arg("--insecure-no-auth")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run kairos worker");
    use std::io::BufRead;
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    let url = loop {
        let l = lines.next().expect("the worker printed its address").unwrap();
        if let Some(u) = l.strip_prefix("kairos worker listening on ") {
            break u.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let dir = model_dir();
    if !dir.join("model.safetensors").is_file() {
        eprintln!("no {}: run scripts/models/fetch.sh", dir.display());
        return;
    }
    let texts = texts(n);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("texts.json");
    std::fs::write(&file, serde_json::to_vec(&texts).unwrap()).unwrap();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "== MiniLM-L6 embeddings on the CPU: {n} texts of 20 to 60 words, batch {BATCH} ({cores} cores)"
    );

    // In process.
    let enc = kairos_models::embed::TextEncoder::load(&dir, &kairos_models::Device::Cpu).unwrap();
    let tokens: usize = enc.token_counts(&texts).unwrap().iter().sum();
    println!("tokens: {tokens} ({:.1} a text)", tokens as f64 / n as f64);
    enc.embed(&texts[..BATCH]).unwrap();
    let mut best = 0.0f64;
    for _ in 0..3 {
        let t = Instant::now();
        for chunk in texts.chunks(BATCH) {
            enc.embed(chunk).unwrap();
        }
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    println!("kairos, in process (TextEncoder::embed), best of 3   {best:8.1} texts/s");
    drop(enc);

    // Through the worker.
    let (mut child, url) = worker(&dir);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let rate = rt.block_on(async {
        let c = reqwest::Client::new();
        let health = format!("{url}/health");
        let c2 = c.clone();
        let until = Instant::now() + Duration::from_secs(120);
        while c2.get(&health).send().await.map(|r| r.status() != 200).unwrap_or(true) {
            assert!(Instant::now() < until, "the worker never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let endpoint = format!("{url}/v1/embeddings");
        let post = move |chunk: Vec<String>| {
            let c = c.clone();
            let u = endpoint.clone();
            async move {
                let r = c
                    .post(u)
                    .json(&json!({"model": "all-MiniLM-L6-v2", "input": chunk}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let v: serde_json::Value = r.json().await.unwrap();
                assert_eq!(v["data"].as_array().unwrap().len(), chunk.len());
            }
        };
        post(texts[..BATCH].to_vec()).await;
        let chunks: Vec<Vec<String>> = texts.chunks(BATCH).map(<[String]>::to_vec).collect();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(chunks));
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let q = queue.clone();
            let post = post.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let next = q.lock().unwrap().pop();
                    let Some(chunk) = next else { break };
                    post(chunk).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        n as f64 / t.elapsed().as_secs_f64()
    });
    println!("kairos worker, HTTP, {CLIENTS} clients, one pass          {rate:8.1} texts/s");
    let _ = child.kill();
    let _ = child.wait();

    // sentence-transformers.
    let py = std::env::var("KAIROS_BENCH_PYTHON").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-st/bin/python").display().to_string()
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench/st_embed.py");
    match Command::new(&py)
        .arg(&script)
        .args(["--model", dir.to_str().unwrap(), "--texts", file.to_str().unwrap()])
        .args(["--batch", &BATCH.to_string()])
        .output()
    {
        Ok(o) if o.status.success() => print!("{}", String::from_utf8_lossy(&o.stdout)),
        Ok(o) => eprintln!("sentence-transformers failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            eprintln!("no sentence-transformers ({py}: {e}); scripts/bench/worker.sh installs it")
        }
    }
}
