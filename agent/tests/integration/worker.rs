//! `kairos worker` as a real process on 127.0.0.1 with the real MiniLM and Gemma weights (and a
//! forecaster trained here on the real BTC bars): the OpenAI routes and their errors, keys
//! and rotation, body and queue limits, deadlines, batching, `/health` before and after the
//! models load, `/metrics` through promtool, TLS, graceful shutdown, and the official OpenAI
//! Python client against it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub(crate) const KEY: &str = "worker-key-0123456789";
const KEY2: &str = "worker-key-rotated-0123456789";
/// A hang, not a measurement: every wait below is for an event, bounded by this.
const HANG: Duration = Duration::from_secs(180);

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models")
}

/// The fetched weights, or a skip note (a failure in CI).
pub(crate) fn weights() -> Option<(PathBuf, PathBuf)> {
    let minilm = models_dir().join("all-MiniLM-L6-v2");
    let gguf = models_dir().join("gemma-3-270m-q4_k_m.gguf");
    if minilm.join("model.safetensors").is_file() && gguf.is_file() {
        return Some((minilm, gguf));
    }
    assert!(
        std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
        "model weights missing: run scripts/models/fetch.sh"
    );
    eprintln!("skipping: model weights not fetched (scripts/models/fetch.sh)");
    None
}

pub(crate) struct Worker {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    pub(crate) url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Worker {
    /// Starts `kairos worker` with `config` (TOML) and `args`, waits for its address.
    pub(crate) fn start(config: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(&["worker"], "kairos worker listening on ", config, args, env)
    }

    /// Starts `kairos SUBCOMMAND --config FILE --listen 127.0.0.1:0 --api-key-file KEYS ARGS`
    /// (the worker, or the router's gateway) and waits for the `needle` line with its address.
    pub(crate) fn spawn(
        sub: &[&str],
        needle: &str,
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys"), format!("# test keys\n{KEY}\n")).unwrap();
        let cfg = dir.path().join("service.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_kairos"));
        c.args(sub)
            .args(["--config", cfg.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(["--api-key-file", dir.path().join("keys").to_str().unwrap()])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("KAIROS_WORKER_API_KEYS")
            .env_remove("KAIROS_ROUTER_API_KEYS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("run kairos worker");
        let lines = crate::run::capture_output(&mut child);
        let mut w = Worker { child, lines, url: String::new(), _dir: dir };
        let l = w.wait_line(needle);
        w.url = l.rsplit(' ').next().unwrap().to_string();
        w
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn wait_line(&mut self, needle: &str) -> String {
        let until = Instant::now() + HANG;
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!("kairos worker ended ({st}) before `{needle}`:\n{}", self.output());
            }
            assert!(Instant::now() < until, "no `{needle}`:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `/health` until 200.
    pub(crate) async fn ready(&mut self) {
        let until = Instant::now() + HANG;
        let c = reqwest::Client::new();
        loop {
            if let Ok(r) = c.get(format!("{}/health", self.url)).send().await {
                if r.status() == 200 {
                    return;
                }
                assert_eq!(r.status(), 503, "{}", self.output());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("kairos worker ended ({st}):\n{}", self.output());
            }
            assert!(Instant::now() < until, "never ready:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let until = Instant::now() + HANG;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < until, "did not exit:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A POST with `key` (None: no header); status, headers and the body as JSON (or a string).
pub(crate) async fn post(
    url: &str,
    key: Option<&str>,
    body: &Value,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = reqwest::Client::new().post(url).header("content-type", "application/json");
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    let resp = r.body(body.to_string()).send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let bytes = resp.bytes().await.unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, v)
}

async fn get(url: &str, key: Option<&str>) -> (u16, String) {
    let mut r = reqwest::Client::new().get(url);
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    let resp = r.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The `data:` payloads of a server-sent event body.
pub(crate) fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|e| {
            e.lines().find_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
        })
        .map(str::to_string)
        .collect()
}

pub(crate) fn config(minilm: &Path, gguf: &Path, extra_llm: &str) -> String {
    format!(
        "max_body_bytes = 65536\n\
         [embed]\npath = {:?}\nname = \"minilm\"\nmax_batch = 4096\n\
         [llm]\npath = {:?}\nname = \"gemma\"\ncontext_tokens = 512\n{extra_llm}\n",
        minilm, gguf
    )
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
async fn openai_routes_keys_limits_batching_and_metrics() {
    let Some((minilm, gguf)) = weights() else { return };
    let mut w = Worker::start(
        &config(&minilm, &gguf, "queue = 1"),
        &[],
        &[("KAIROS_WORKER_API_KEYS", &format!("{KEY2},"))],
    );
    w.ready().await;
    let u = w.url.clone();

    // Keys: /health needs none; every other route refuses a missing or wrong key; both the
    // file's key and the environment's (rotation) are accepted.
    assert_eq!(get(&format!("{u}/health"), None).await.0, 200);
    for key in [None, Some("worker-key-0123456788"), Some("x")] {
        let (s, h, b) = post(&format!("{u}/v1/embeddings"), key, &json!({}), &[]).await;
        assert_eq!(s, 401, "{b}");
        assert_eq!(b["error"]["code"], "invalid_api_key");
        assert_eq!(h["www-authenticate"], "Bearer");
        assert_eq!(get(&format!("{u}/v1/models"), key).await.0, 401);
        assert_eq!(get(&format!("{u}/metrics"), key).await.0, 401);
    }
    let (s, models) = get(&format!("{u}/v1/models"), Some(KEY2)).await;
    assert_eq!(s, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    let ids: Vec<&str> =
        models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["minilm", "gemma"]);

    // Embeddings: floats, base64 of the same floats, unit length; texts in concurrent requests
    // batched together give what they give alone.
    let emb = format!("{u}/v1/embeddings");
    let texts = ["Bitcoin rallies after the ETF approval", "The central bank raises rates", "ok"];
    let (s, _, one) = post(&emb, Some(KEY), &json!({"model": "minilm", "input": texts}), &[]).await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["data"].as_array().unwrap().len(), 3);
    assert!(one["usage"]["prompt_tokens"].as_u64().unwrap() >= 3 + 6);
    let alone: Vec<Vec<f64>> =
        one["data"].as_array().unwrap().iter().map(|d| floats(&d["embedding"])).collect();
    for v in &alone {
        assert_eq!(v.len(), 384);
        let n: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "{n}");
    }
    let (_, _, b64) = post(
        &emb,
        Some(KEY),
        &json!({"model": "minilm", "input": texts[0], "encoding_format": "base64"}),
        &[],
    )
    .await;
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> =
        raw.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    let (_, _, flt) =
        post(&emb, Some(KEY), &json!({"model": "minilm", "input": texts[0]}), &[]).await;
    let as_f32: Vec<f32> = floats(&flt["data"][0]["embedding"]).iter().map(|&x| x as f32).collect();
    assert_eq!(decoded, as_f32, "base64 and float encodings differ");
    assert!(cosine(&alone[0], &floats(&flt["data"][0]["embedding"])) > 0.99999);
    let jobs: Vec<_> = (0..12)
        .map(|i| {
            let (emb, text) = (emb.clone(), texts[i % 3].to_string());
            tokio::spawn(async move {
                let (s, _, b) =
                    post(&emb, Some(KEY), &json!({"model": "minilm", "input": text}), &[]).await;
                assert_eq!(s, 200, "{b}");
                (i % 3, floats(&b["data"][0]["embedding"]))
            })
        })
        .collect();
    for j in jobs {
        let (i, v) = j.await.unwrap();
        let c = cosine(&v, &alone[i]);
        assert!(c > 0.99999, "text {i}: cosine {c} with its embedding alone");
    }
    let (_, metrics) = get(&format!("{u}/metrics"), Some(KEY)).await;
    let batch_count: f64 = metrics
        .lines()
        .find(|l| l.starts_with("kairos_worker_batch_size_count{model=\"minilm\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    // 15 requests: fewer batches than requests means some ran together.
    assert!(batch_count < 15.0, "no request was batched with another: {batch_count}");

    // Bad requests, each named.
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"model": "nope", "input": "x"}), 404, "model_not_found"),
        (json!({"model": "minilm", "input": ""}), 400, "input[0]"),
        (json!({"model": "minilm", "input": []}), 400, "at least one"),
        (json!({"model": "minilm", "input": [1, 2, 3]}), 400, "token arrays"),
        (json!({"model": "minilm", "input": "x", "dimensions": 7}), 400, "384"),
        (
            json!({"model": "minilm", "input": "x", "encoding_format": "hex"}),
            400,
            "encoding_format",
        ),
        (json!({"model": "minilm"}), 400, "input"),
    ];
    for (body, status, needle) in cases {
        let (s, _, b) = post(&emb, Some(KEY), &body, &[]).await;
        assert_eq!(s, status, "{body} -> {b}");
        assert!(b.to_string().contains(needle), "{body} -> {b}");
    }
    let resp = reqwest::Client::new()
        .post(&emb)
        .header("authorization", format!("Bearer {KEY}"))
        .body("{\"model\": \"minilm\", \"input\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("not a valid request"));
    let big = "word ".repeat(20_000);
    let (s, _, b) = post(&emb, Some(KEY), &json!({"model": "minilm", "input": big}), &[]).await;
    assert_eq!(s, 413, "{b}");
    assert!(b["error"]["message"].is_string(), "{b}");

    // Chat: greedy answers repeat, streaming gives the same text, ends with a usage chunk and
    // [DONE]; the reply names the model.
    let chat = format!("{u}/v1/chat/completions");
    let ask = json!({"model": "gemma", "messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Name a large city in France."}],
        "max_tokens": 12, "temperature": 0});
    let (s, _, a) = post(&chat, Some(KEY), &ask, &[]).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["model"], "gemma");
    assert_eq!(a["object"], "chat.completion");
    let text = a["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    assert!(!text.is_empty());
    let u1 = &a["usage"];
    assert_eq!(
        u1["total_tokens"].as_u64(),
        Some(u1["prompt_tokens"].as_u64().unwrap() + u1["completion_tokens"].as_u64().unwrap())
    );
    let (_, _, again) = post(&chat, Some(KEY), &ask, &[]).await;
    assert_eq!(again["choices"][0]["message"]["content"], text.as_str());
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let (s, h, body) = post(&chat, Some(KEY), &streamed, &[]).await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let data = sse_data(body.as_str().unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> =
        data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    let joined: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str().map(str::to_string))
        .collect();
    assert_eq!(joined, text);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let usage = chunks.last().unwrap();
    assert!(usage["choices"].as_array().unwrap().is_empty());
    assert_eq!(usage["usage"], a["usage"]);

    // Completions with logprobs: the greedy token is the likeliest alternative.
    let (s, _, c) = post(
        &format!("{u}/v1/completions"),
        Some(KEY),
        &json!({"model": "gemma", "prompt": "The capital of France is", "max_tokens": 4, "temperature": 0, "logprobs": 3}),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{c}");
    let lp = &c["choices"][0]["logprobs"];
    let toks = lp["tokens"].as_array().unwrap();
    assert_eq!(toks.len(), 4);
    for (i, t) in toks.iter().enumerate() {
        let chosen = lp["token_logprobs"][i].as_f64().unwrap();
        let top = lp["top_logprobs"][i].as_object().unwrap();
        assert_eq!(top.len(), 3);
        let best = top.values().map(|v| v.as_f64().unwrap()).fold(f64::NEG_INFINITY, f64::max);
        assert!(chosen <= 0.0 && (chosen - best).abs() < 1e-6, "{lp}");
        assert_eq!(top[t.as_str().unwrap()].as_f64().unwrap(), chosen);
    }
    let joined: String = toks.iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(joined, c["choices"][0]["text"].as_str().unwrap());

    // Context length, with OpenAI's code; other bad generation requests.
    let long = "tick ".repeat(600);
    let (s, _, e) = post(
        &chat,
        Some(KEY),
        &json!({"model": "gemma", "messages": [{"role": "user", "content": long}]}),
        &[],
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error"]["code"], "context_length_exceeded");
    assert!(e["error"]["message"].as_str().unwrap().contains("maximum context length is 512"));
    for (body, needle) in [
        (json!({"model": "gemma", "messages": []}), "at least one message"),
        (json!({"model": "gemma", "messages": [{"role": "robot", "content": "hi"}]}), "robot"),
        (
            json!({"model": "gemma", "messages": [{"role": "user", "content": "hi"}], "n": 2}),
            "n = 1",
        ),
        (
            json!({"model": "gemma", "messages": [{"role": "user", "content": "hi"}], "temperature": -1}),
            "temperature",
        ),
        (
            json!({"model": "gemma", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
            "image_url",
        ),
        (
            json!({"model": "minilm", "messages": [{"role": "user", "content": "hi"}]}),
            "model_not_found",
        ),
    ] {
        let (s, _, e) = post(&chat, Some(KEY), &body, &[]).await;
        assert!(s == 400 || s == 404, "{body} -> {s} {e}");
        assert!(e.to_string().contains(needle), "{body} -> {e}");
    }

    // A deadline shorter than the answer: 504, on time, for both shapes; a stream never ends
    // in [DONE] when cut.
    let slow = json!({"model": "gemma", "messages": [{"role": "user", "content": "Count to one thousand."}],
        "max_tokens": 400, "temperature": 0});
    let t0 = Instant::now();
    let (s, _, e) = post(&chat, Some(KEY), &slow, &[("x-kairos-deadline-ms", "300")]).await;
    assert_eq!(s, 504, "{e}");
    assert_eq!(e["error"]["code"], "deadline_exceeded");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let mut slow_stream = slow.clone();
    slow_stream["stream"] = json!(true);
    let (s, _, body) =
        post(&chat, Some(KEY), &slow_stream, &[("x-kairos-deadline-ms", "400")]).await;
    if s == 200 {
        let data = sse_data(body.as_str().unwrap());
        assert_ne!(data.last().unwrap(), "[DONE]", "{body}");
        let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
        assert_eq!(last["error"]["code"], "deadline_exceeded", "{body}");
    } else {
        assert_eq!(s, 504, "{body}");
    }

    // The queue (1 for the LLM): one running, one waiting, the next refused with Retry-After.
    let client = reqwest::Client::new();
    let mut running = client
        .post(&chat)
        .header("authorization", format!("Bearer {KEY}"))
        .body(slow_stream.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(running.status(), 200);
    running.chunk().await.unwrap().expect("the first chunk");
    let waiting = {
        let mut short = slow.clone();
        short["max_tokens"] = json!(16);
        let chat = chat.clone();
        tokio::spawn(async move {
            post(&chat, Some(KEY), &short, &[("x-kairos-deadline-ms", "60000")]).await
        })
    };
    let until = Instant::now() + HANG;
    loop {
        let (_, m) = get(&format!("{u}/metrics"), Some(KEY)).await;
        if m.contains("kairos_worker_num_requests_waiting{model=\"gemma\"} 1") {
            break;
        }
        assert!(Instant::now() < until, "the second request never queued:\n{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, h, e) = post(&chat, Some(KEY), &slow, &[]).await;
    assert_eq!(s, 429, "{e}");
    assert_eq!(e["error"]["type"], "rate_limit_error");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // The client of the running stream goes away: its generation stops and the waiting
    // request runs to the end.
    drop(running);
    let (s, _, done) = waiting.await.unwrap();
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["choices"][0]["finish_reason"], "length");

    // /metrics is valid Prometheus text.
    let (_, m) = get(&format!("{u}/metrics"), Some(KEY)).await;
    for name in [
        "kairos_worker_num_requests_running",
        "kairos_worker_time_to_first_token_seconds_bucket",
        "kairos_worker_e2e_request_latency_seconds_bucket",
        "kairos_worker_requests_total{route=\"/v1/chat/completions\",code=\"429\"} 1",
        "kairos_worker_rejected_total{model=\"gemma\",reason=\"queue_full\"} 1",
        "kairos_worker_generation_tokens_total{model=\"gemma\"}",
    ] {
        assert!(m.contains(name), "{name} missing:\n{m}");
    }
    promtool(&m);
    // Keys never reach the log, nor prompts (log_prompts is off).
    let log = w.output();
    assert!(!log.contains(KEY) && !log.contains(KEY2), "{log}");
    assert!(!log.contains("Name a large city"), "{log}");
}

fn promtool(metrics: &str) {
    if Command::new("promtool").arg("--version").output().is_err() {
        assert!(std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(), "promtool missing");
        return;
    }
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    p.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    // promtool's lint complains about names only; an error in the format fails the check.
    assert!(!text.contains("error"), "promtool: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
async fn health_is_503_until_the_models_load() {
    let Some((minilm, _)) = weights() else { return };
    // The model's config.json is a FIFO: loading blocks until the test writes it.
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("minilm");
    std::fs::create_dir(&m).unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::os::unix::fs::symlink(minilm.join(f), m.join(f)).unwrap();
    }
    let fifo = m.join("config.json");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut w = Worker::start(&format!("[embed]\npath = {m:?}\nname = \"minilm\"\n"), &[], &[]);
    let (s, body) = get(&format!("{}/health", w.url), None).await;
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("loading"));
    let (s, _, e) = post(
        &format!("{}/v1/embeddings", w.url),
        Some(KEY),
        &json!({"model": "minilm", "input": "x"}),
        &[],
    )
    .await;
    assert_eq!(s, 503, "{e}");
    assert_eq!(e["error"]["code"], "model_loading");
    let cfg = std::fs::read(minilm.join("config.json")).unwrap();
    std::thread::spawn(move || std::fs::write(fifo, cfg).unwrap());
    w.ready().await;
    let (s, _, _) = post(
        &format!("{}/v1/embeddings", w.url),
        Some(KEY),
        &json!({"model": "minilm", "input": "x"}),
        &[],
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
async fn sigterm_finishes_the_stream_in_flight_then_exits() {
    let Some((minilm, gguf)) = weights() else { return };
    let mut w = Worker::start(&config(&minilm, &gguf, ""), &[], &[]);
    w.ready().await;
    let body = json!({"model": "gemma", "messages": [{"role": "user", "content": "Tell a story."}],
        "max_tokens": 40, "temperature": 0, "stream": true});
    let mut r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", w.url))
        .header("authorization", format!("Bearer {KEY}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let mut text = String::from_utf8(r.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    w.signal("-TERM");
    while let Some(c) = r.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&c));
    }
    let data = sse_data(&text);
    assert_eq!(data.last().unwrap(), "[DONE]", "{text}");
    let st = w.wait_exit().await;
    assert!(st.success(), "{st}:\n{}", w.output());
    assert!(w.output().contains("worker stopped"), "{}", w.output());
    assert!(reqwest::Client::new().get(format!("{}/health", w.url)).send().await.is_err());
}

#[test]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
fn refuses_bad_setups_with_clear_errors() {
    let Some((minilm, gguf)) = weights() else { return };
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kairos"));
        c.arg("worker").args(args).env_remove("KAIROS_WORKER_API_KEYS");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(!o.status.success());
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!e.contains("panicked"), "{e}");
        e
    };
    let m = minilm.to_str().unwrap();
    let e = run(&["--embed-model", m, "--listen", "127.0.0.1:0"], &[]);
    assert!(e.contains("no api key") && e.contains("--api-key-file"), "{e}");
    let e = run(&["--listen", "127.0.0.1:0"], &[("KAIROS_WORKER_API_KEYS", KEY)]);
    assert!(e.contains("no model to serve"), "{e}");
    let e = run(&["--embed-model", "/nonexistent/minilm"], &[("KAIROS_WORKER_API_KEYS", KEY)]);
    assert!(e.contains("/nonexistent/minilm"), "{e}");
    let e = run(&["--embed-model", m, "--listen", "localhost"], &[("KAIROS_WORKER_API_KEYS", KEY)]);
    assert!(e.contains("listen"), "{e}");
    let e = run(&["--embed-model", m], &[("KAIROS_WORKER_API_KEYS", "short")]);
    assert!(e.contains("16 characters") && !e.contains("short,"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nmax_queue = 3\n").unwrap();
    let e = run(
        &["--config", cfg.to_str().unwrap(), "--embed-model", m],
        &[("KAIROS_WORKER_API_KEYS", KEY)],
    );
    assert!(e.contains("max_queue"), "{e}");
    // A GGUF that is not one: the worker starts, then exits naming the file.
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"not a gguf").unwrap();
    let e = run(
        &["--llm", bad.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &[("KAIROS_WORKER_API_KEYS", KEY)],
    );
    assert!(e.contains("bad.gguf"), "{e}");
    let _ = gguf;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
async fn tls_serves_https_with_the_given_certificate() {
    let Some((minilm, _)) = weights() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(
        p("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    // A test CA and a server certificate it signs.
    for args in [
        vec![
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=kairos-test-ca",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ],
        vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p("key.pem"),
            "-out",
            &p("leaf.csr"),
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("ext"),
            "-out",
            &p("cert.pem"),
        ],
    ] {
        let o = Command::new("openssl").args(&args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let ca = dir.path().join("ca.pem");
    let w = Worker::start(
        &format!("[embed]\npath = {minilm:?}\n[tls]\ncert = {cert:?}\nkey = {key:?}\n"),
        &[],
        &[],
    );
    assert!(w.url.starts_with("https://"), "{}", w.url);
    let addr = w.url.trim_start_matches("https://").to_string();
    // A plain-HTTP client gets no answer; a TLS client that trusts the certificate gets one.
    let plain = reqwest::Client::new().get(format!("http://{addr}/health")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    let body = tls_get(&addr, &ca, "/health").await;
    assert!(body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.1 503"), "{body}");
    let body = tls_get(&addr, &ca, "/v1/models").await;
    assert!(body.starts_with("HTTP/1.1 401"), "{body}");
}

async fn tls_get(addr: &str, cert: &Path, path: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The official OpenAI Python client (scripts/ops/setup.sh installs it in target/ops-venv).
fn openai_python() -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ops-venv/bin/python");
    let ok = py.is_file()
        && Command::new(&py)
            .args(["-c", "import openai"])
            .output()
            .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    assert!(
        std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
        "openai client missing: scripts/ops/setup.sh"
    );
    eprintln!("skipping: the openai Python client is not installed (scripts/ops/setup.sh)");
    None
}

/// Runs `tests/openai_client.py` against `url`: chat with and without streaming, completions
/// with logprobs, embeddings (the client's default base64), models, and a wrong key refused.
pub(crate) fn openai_client_checks(url: &str, chat_model: &str, embed_model: &str) {
    let Some(py) = openai_python() else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
    let o = Command::new(py)
        .arg(script)
        .args([&format!("{url}/v1"), KEY, chat_model, embed_model])
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("all checks passed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
async fn the_official_openai_python_client_works_against_the_worker() {
    let Some((minilm, gguf)) = weights() else { return };
    let mut w = Worker::start(&config(&minilm, &gguf, ""), &[], &[]);
    w.ready().await;
    let url = w.url.clone();
    tokio::task::spawn_blocking(move || openai_client_checks(&url, "gemma", "minilm"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
async fn forecasts_equal_the_in_process_model() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/bars/btc-perp-20211231-20220201_1m.csv");
    if !data.is_file() {
        assert!(std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(), "{} missing", data.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlp");
    let o = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args([
            "train",
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "1",
            "--out",
            model.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut w = Worker::start("", &["--forecaster", model.to_str().unwrap()], &[]);
    w.ready().await;
    let series = kairos_backtests::data::load(&data).unwrap();
    let bars: Vec<kairos_strategies::Bar> = series.bars[1000..1150].to_vec();
    let f = Arc::new(
        kairos_models::forecast::Forecaster::load(&model, &kairos_models::Device::Cpu).unwrap(),
    );
    let mut stream = kairos_models::forecast::ForecastStream::new(f);
    let want = bars.iter().map(|b| stream.update(b)).last().flatten().unwrap();
    let body: Vec<Value> = bars
        .iter()
        .map(|b| json!({"ts": b.ts.nanos() / 1_000_000, "open": b.open, "high": b.high, "low": b.low, "close": b.close, "volume": b.volume}))
        .collect();
    let url = format!("{}/v1/forecast", w.url);
    let (s, _, r) = post(&url, Some(KEY), &json!({"model": "mlp", "bars": body}), &[]).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["prediction"].as_f64().unwrap(), want);
    assert_eq!(r["bars"], 150);
    // Too few bars, a NaN price, bars out of order: each named.
    let (s, _, e) = post(&url, Some(KEY), &json!({"model": "mlp", "bars": body[..10]}), &[]).await;
    assert_eq!(s, 400);
    assert!(e["error"]["message"].as_str().unwrap().contains("needs at least"), "{e}");
    let mut nan = body.clone();
    nan[5]["close"] = json!("NaN");
    let (s, _, _) = post(&url, Some(KEY), &json!({"model": "mlp", "bars": nan}), &[]).await;
    assert_eq!(s, 400);
    let mut bad = body.clone();
    bad[7]["high"] = json!(1.0);
    let (s, _, e) = post(&url, Some(KEY), &json!({"model": "mlp", "bars": bad}), &[]).await;
    assert_eq!(s, 400);
    assert!(e.to_string().contains("bars[7]"), "{e}");
    let mut swapped = body.clone();
    swapped.swap(3, 4);
    let (s, _, e) = post(&url, Some(KEY), &json!({"model": "mlp", "bars": swapped}), &[]).await;
    assert_eq!(s, 400);
    assert!(e.to_string().contains("bars[4]"), "{e}");
}
