//! What `kairos router serve` adds to a request, and how long it takes to fail over when a
//! worker dies, on loopback.
//!
//! An upstream in this process (axum on 127.0.0.1) answers the OpenAI routes at once: an
//! embedding, and a short chat answer (as one JSON body, or as SSE chunks ending in
//! `[DONE]` when asked to stream, which is how the router always asks). The `kairos` binary
//! serves the gateway in front of it. One client with keep-alive sends requests one at a
//! time, alternating the direct call and the call through the gateway so that both see the
//! same machine; the added latency is the difference of their percentiles.
//!
//! With `KAIROS_BENCH_LITELLM=PATH` (the `litellm` command of a LiteLLM proxy install) LiteLLM's
//! proxy is measured the same way, beside the gateway.
//!
//! Fail-over: two upstreams behind one route; the first is stopped (its port refuses
//! connections and its open connections are reset, as when a worker's process dies), and
//! the requests after it are timed until the circuit breaker has taken it out.
//!
//!   cargo bench -p kairos-agent --bench gateway [-- REQUESTS]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

const CHAT: &str = "The market is open.";

async fn chat(body: axum::Json<Value>) -> Response {
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let chunk = |delta: Value, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            )
        };
        let usage = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}});
        let sse = [
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": CHAT}), Value::Null),
            chunk(json!({}), json!("stop")),
            format!("data: {usage}\n\n"),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        return ([("content-type", "text/event-stream")], Body::from(sse)).into_response();
    }
    axum::Json(json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": CHAT}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}))
    .into_response()
}

async fn embeddings() -> Response {
    let v: Vec<f32> = (0..384).map(|i| (i as f32 * 0.01).sin()).collect();
    axum::Json(json!({"object": "list", "model": "m",
        "data": [{"object": "embedding", "index": 0, "embedding": v}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4}}))
    .into_response()
}

/// An upstream on 127.0.0.1; dropping the sender stops it (connections refused and reset).
async fn upstream() -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (url, h)
}

/// Starts a server process and waits for the line holding its address (`needle ... URL`).
/// The caller kills and reaps it.
#[allow(clippy::zombie_processes)]
fn spawn(mut c: Command, needle: &str) -> (Child, String) {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let (tx, rx) = std::sync::mpsc::channel();
    for out in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
    }
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let l = rx.recv_timeout(Duration::from_secs(120)).expect("the server printed nothing");
        if l.contains(needle) {
            let url = l.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();
            return (child, url.trim_end_matches('/').to_string());
        }
        assert!(Instant::now() < until, "no `{needle}`");
    }
}

fn gateway(config: &str) -> (Child, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("router.toml");
    std::fs::write(&f, config).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_kairos"));
    c.args(["router", "serve", "--config", f.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .arg("--insecure-no-auth")
        .env("RUST_LOG", "warn");
    let (child, url) = spawn(c, "kairos router listening on");
    (child, url, dir)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn once(c: &reqwest::Client, url: &str, body: &Value) -> f64 {
    let t = Instant::now();
    let r = c.post(url).json(body).send().await.expect("request");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let b = r.bytes().await.unwrap();
    let us = t.elapsed().as_secs_f64() * 1e6;
    assert!(b.len() > 20);
    us
}

/// Sends `n` requests to each of `targets`, interleaved; per-request µs of each.
async fn measure(c: &reqwest::Client, targets: &[String], body: &Value, n: usize) -> Vec<Vec<f64>> {
    for _ in 0..n / 10 + 100 {
        for t in targets {
            once(c, t, body).await;
        }
    }
    let mut out = vec![Vec::with_capacity(n); targets.len()];
    for _ in 0..n {
        for (i, t) in targets.iter().enumerate() {
            out[i].push(once(c, t, body).await);
        }
    }
    for v in &mut out {
        v.sort_by(f64::total_cmp);
    }
    out
}

fn row(name: &str, v: &[f64], base: Option<&[f64]>) {
    let q = [0.5, 0.9, 0.99, 0.999];
    let cells: Vec<String> = q.iter().map(|&q| format!("{:8.1}", percentile(v, q))).collect();
    let added = base.map_or(String::new(), |b| {
        let d: Vec<String> =
            q.iter().map(|&q| format!("{:+8.1}", percentile(v, q) - percentile(b, q))).collect();
        format!("   added: {}", d.join(" "))
    });
    println!("{name:<28} p50/p90/p99/p99.9 µs: {}{added}", cells.join(" "));
}

fn litellm(upstream: &str) -> Option<(Child, String, tempfile::TempDir)> {
    let bin = std::env::var("KAIROS_BENCH_LITELLM").ok()?;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("litellm.yaml");
    std::fs::write(
        &f,
        format!(
            "model_list:\n  - model_name: chat\n    litellm_params:\n      model: openai/m\n      api_base: {upstream}/v1\n      api_key: none\n\
             \x20 - model_name: embed\n    litellm_params:\n      model: openai/m\n      api_base: {upstream}/v1\n      api_key: none\n\
             litellm_settings:\n  drop_params: true\n"
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = Command::new(bin);
    c.args(["--config", f.to_str().unwrap(), "--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--num_workers")
        .arg("1");
    let (child, _) = spawn(c, "Uvicorn running on");
    Some((child, format!("http://127.0.0.1:{port}"), dir))
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async move {
        println!(
            "== gateway overhead on loopback: {n} sequential requests per path, one keep-alive client ({} cores)",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let (up, _h) = upstream().await;
        let cfg = format!(
            "[[endpoints]]\nname = \"up\"\nurl = \"{up}\"\nprobe_path = \"\"\n\
             [[routes]]\nmodel = \"chat\"\ntargets = [{{ endpoint = \"up\", model = \"m\" }}]\n\
             [[routes]]\nmodel = \"embed\"\ntargets = [{{ endpoint = \"up\", model = \"m\" }}]\n"
        );
        let (mut gw, gw_url, _d) = gateway(&cfg);
        let mut ll = litellm(&up);
        let c = reqwest::Client::builder().pool_max_idle_per_host(4).build().unwrap();
        for (route, path, body) in [
            ("embed", "/v1/embeddings", json!({"model": "embed", "input": "BTC rallies"})),
            (
                "chat",
                "/v1/chat/completions",
                json!({"model": "chat", "messages": [{"role": "user", "content": "Is it open?"}], "max_tokens": 8}),
            ),
        ] {
            let mut targets = vec![format!("{up}{path}"), format!("{gw_url}{path}")];
            if let Some((_, u, _)) = &ll {
                targets.push(format!("{u}{path}"));
            }
            let r = measure(&c, &targets, &body, n).await;
            println!("-- {route} ({path})");
            row("direct", &r[0], None);
            row("kairos router serve", &r[1], Some(&r[0]));
            if r.len() > 2 {
                row("litellm proxy", &r[2], Some(&r[0]));
            }
        }
        let _ = gw.kill();
        let _ = gw.wait();
        if let Some((ch, _, _)) = &mut ll {
            let _ = ch.kill();
            let _ = ch.wait();
        }

        println!("== fail-over: the primary upstream dies; requests timed one after another");
        let (a, ha) = upstream().await;
        let (b, _hb) = upstream().await;
        let cfg = format!(
            "[breaker]\nfailures = 3\nopen_ms = 30000\n\
             [[endpoints]]\nname = \"a\"\nurl = \"{a}\"\nprobe_path = \"\"\n\
             [[endpoints]]\nname = \"b\"\nurl = \"{b}\"\nprobe_path = \"\"\n\
             [[routes]]\nmodel = \"embed\"\ntargets = [{{ endpoint = \"a\", model = \"m\" }}, {{ endpoint = \"b\", model = \"m\" }}]\n"
        );
        let (mut gw, gw_url, _d) = gateway(&cfg);
        let url = format!("{gw_url}/v1/embeddings");
        let body = json!({"model": "embed", "input": "BTC rallies"});
        for _ in 0..200 {
            once(&c, &url, &body).await;
        }
        let mut healthy: Vec<f64> = Vec::new();
        for _ in 0..2000 {
            healthy.push(once(&c, &url, &body).await);
        }
        healthy.sort_by(f64::total_cmp);
        ha.abort();
        let _ = ha.await;
        let mut after = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let r = c.post(&url).json(&body).send().await.unwrap();
            let served = r.headers().get("x-kairos-endpoint").and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
            assert!(r.status().is_success());
            let _ = r.bytes().await;
            after.push((t.elapsed().as_secs_f64() * 1e3, served));
        }
        println!(
            "healthy, through the gateway: p50 {:.3} ms, p99 {:.3} ms",
            percentile(&healthy, 0.5) / 1e3,
            percentile(&healthy, 0.99) / 1e3
        );
        for (i, (ms, by)) in after.iter().enumerate() {
            println!("request {:>2} after the primary died: {ms:8.3} ms, answered by {by}", i + 1);
        }
        let _ = gw.kill();
        let _ = gw.wait();
    });
}
