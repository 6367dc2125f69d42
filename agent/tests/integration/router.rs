//! `kairos router serve` as a real process on 127.0.0.1 in front of misbehaving servers (an
//! axum server in this test, plus a raw TCP listener that resets connections), run through
//! the sixteen fault scenarios of the failoverbench suite, each once as a whole answer and
//! once as a stream, and scored as the suite scores them: the caller gets a complete, correct
//! answer within the route's deadline (or, where the request itself is at fault, the error
//! without retries), and the answer names who gave it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path as AxPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::worker::{KEY, Worker, post, sse_data};

/// The routes' deadline in this suite, ms.
const DEADLINE_MS: u64 = 3000;
/// Slack for the scheduler of a 2-core machine on top of a deadline.
const SLACK_MS: u64 = 600;

#[derive(Default)]
struct Faults {
    /// Requests seen, by `scenario/role`: arrival and body.
    hits: Mutex<BTreeMap<String, Vec<(Instant, Value)>>>,
    /// When the `recover` primary comes back.
    recover_at: Mutex<Option<Instant>>,
}

impl Faults {
    fn hits(&self, key: &str) -> Vec<(Instant, Value)> {
        self.hits.lock().unwrap().get(key).cloned().unwrap_or_default()
    }
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    let c = json!({"id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": 1,
        "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

/// A complete, well-formed streamed answer.
fn good_stream(model: &str, pieces: &[&str], usage: (u32, u32)) -> Vec<String> {
    let mut out = vec![chunk(model, json!({"role": "assistant", "content": ""}), None)];
    for p in pieces {
        out.push(chunk(model, json!({"content": p}), None));
    }
    out.push(chunk(model, json!({}), Some("stop")));
    let u = json!({"id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": 1,
        "model": model, "choices": [],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1}});
    out.push(format!("data: {u}\n\n"));
    out.push("data: [DONE]\n\n".into());
    out
}

enum Tail {
    /// End the body cleanly.
    End,
    /// Abort the connection mid-body.
    Cut,
    /// Keep the connection open, silent.
    Hang,
}

fn sse(parts: Vec<String>, gap: Option<(usize, Duration)>, tail: Tail) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        for (i, p) in parts.into_iter().enumerate() {
            if let Some((at, d)) = gap
                && at == i
            {
                tokio::time::sleep(d).await;
            }
            if tx.send(Ok(Bytes::from(p))).await.is_err() {
                return;
            }
        }
        match tail {
            Tail::End => {}
            Tail::Cut => {
                // Mid-answer: after what was sent has reached the caller.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = tx.send(Err(std::io::Error::other("cut"))).await;
            }
            Tail::Hang => {
                tokio::time::sleep(Duration::from_secs(120)).await;
                drop(tx);
            }
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn status(code: u16, retry_after: Option<&str>, body: Value) -> Response {
    let mut r = (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response();
    if let Some(ra) = retry_after {
        r.headers_mut().insert("retry-after", ra.parse().unwrap());
    }
    r
}

fn err(message: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}})
}

fn last_role(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["role"].as_str())
        .unwrap_or("")
        .into()
}

async fn fault(
    State(f): State<Arc<Faults>>,
    AxPath((sc, role)): AxPath<(String, String)>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let key = format!("{sc}/{role}");
    let n = {
        let mut h = f.hits.lock().unwrap();
        let v = h.entry(key).or_default();
        v.push((Instant::now(), body.clone()));
        v.len() - 1
    };
    let model = body["model"].as_str().unwrap_or("?").to_string();
    let ok = |text: &str| sse(good_stream(&model, &[text], (5, 2)), None, Tail::End);
    let partial = || good_stream(&model, &["The answer", " is"], (5, 2))[..3].to_vec();
    if role != "primary" {
        // Fallbacks answer well, except where the scenario says otherwise.
        return match (sc.as_str(), role.as_str()) {
            ("policy400", "same") => {
                status(400, None, err("flagged by the content filter", "content_policy_violation"))
            }
            ("prefill", "fallback") if last_role(&body) == "assistant" => status(
                400,
                None,
                err(
                    "This model does not support assistant message prefill.",
                    "invalid_request_error",
                ),
            ),
            ("accounting", _) => {
                sse(good_stream("fallback-model", &["from the fallback"], (7, 3)), None, Tail::End)
            }
            (_, _) if last_role(&body) == "assistant" => ok(" 42."),
            _ => ok(&format!("answer from {role}")),
        };
    }
    match sc.as_str() {
        "s429ra" if n % 2 == 0 => {
            status(429, Some("1"), err("rate limited", "rate_limit_exceeded"))
        }
        "s429" => status(429, None, err("rate limited", "rate_limit_exceeded")),
        "s500once" if n % 2 == 0 => {
            status(500, None, json!({"error": {"message": "internal error"}}))
        }
        "s503" => status(503, None, json!({"error": {"message": "overloaded"}})),
        "noresp" => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            ok("too late")
        }
        "slowfirst" => sse(
            good_stream(&model, &["too late"], (5, 2)),
            Some((1, Duration::from_secs(20))),
            Tail::End,
        ),
        "cut" => sse(partial(), None, Tail::Cut),
        "stall" => sse(partial(), None, Tail::Hang),
        "malformed" => {
            let mut p = partial()[..1].to_vec();
            p.push("data: {\"choices\": [{\"delta\": {\"content\": 5\n\n".into());
            sse(p, None, Tail::End)
        }
        "nodone" => sse(partial(), None, Tail::End),
        "ctx400" => status(
            400,
            None,
            err("This model's maximum context length is 8192 tokens.", "context_length_exceeded"),
        ),
        "policy400" => {
            status(400, None, err("flagged by the content filter", "content_policy_violation"))
        }
        "prefill" | "accounting" => status(500, None, json!({"error": {"message": "down"}})),
        "recover" => {
            let at = *f
                .recover_at
                .lock()
                .unwrap()
                .get_or_insert_with(|| Instant::now() + Duration::from_millis(1500));
            if Instant::now() < at {
                status(503, None, json!({"error": {"message": "down for maintenance"}}))
            } else {
                ok("answer from primary")
            }
        }
        _ => ok("answer from primary"),
    }
}

async fn fault_health(
    State(f): State<Arc<Faults>>,
    AxPath((sc, role)): AxPath<(String, String)>,
) -> StatusCode {
    if sc == "recover"
        && role == "primary"
        && f.recover_at.lock().unwrap().is_some_and(|at| Instant::now() < at)
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::OK
}

/// Accepts connections, reads the request, and resets them before any header.
async fn resetter() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt as _;
                let mut s = s;
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
                let _ = s.set_zero_linger();
                drop(s);
            });
        }
    });
    port
}

struct Scenario {
    name: &'static str,
    /// The targets: (role, model).
    targets: &'static [(&'static str, &'static str)],
    /// A request ending in an assistant prefill.
    prefill: bool,
}

const SCENARIOS: &[Scenario] = &[
    Scenario { name: "s429ra", targets: &[("primary", "m"), ("fallback", "m2")], prefill: false },
    Scenario { name: "s429", targets: &[("primary", "m"), ("fallback", "m2")], prefill: false },
    Scenario { name: "s500once", targets: &[("primary", "m"), ("fallback", "m2")], prefill: false },
    Scenario { name: "s503", targets: &[("primary", "m"), ("fallback", "m2")], prefill: false },
    Scenario { name: "reset", targets: &[("primary", "m"), ("fallback", "m2")], prefill: false },
    Scenario { name: "noresp", targets: &[("primary", "m"), ("fallback", "m2")], prefill: false },
    Scenario {
        name: "slowfirst",
        targets: &[("primary", "m"), ("fallback", "m2")],
        prefill: false,
    },
    Scenario { name: "cut", targets: &[("primary", "m"), ("fallback", "m2")], prefill: false },
    Scenario { name: "stall", targets: &[("primary", "m"), ("fallback", "m2")], prefill: false },
    Scenario {
        name: "malformed",
        targets: &[("primary", "m"), ("fallback", "m2")],
        prefill: false,
    },
    Scenario { name: "nodone", targets: &[("primary", "m"), ("fallback", "m2")], prefill: false },
    Scenario {
        name: "ctx400",
        targets: &[("primary", "m-8k"), ("fallback", "m-128k")],
        prefill: false,
    },
    Scenario {
        name: "policy400",
        targets: &[("primary", "m"), ("same", "m"), ("fallback", "m2")],
        prefill: false,
    },
    Scenario { name: "prefill", targets: &[("primary", "m"), ("fallback", "m2")], prefill: true },
    Scenario { name: "recover", targets: &[("primary", "m"), ("fallback", "m2")], prefill: false },
    Scenario {
        name: "accounting",
        targets: &[("primary", "m"), ("fallback", "m2")],
        prefill: false,
    },
];

fn router_toml(http: u16, reset: u16) -> String {
    let mut s = String::from("[breaker]\nfailures = 2\nopen_ms = 300\n\n");
    for sc in SCENARIOS {
        for (role, _) in sc.targets {
            let url = if sc.name == "reset" && *role == "primary" {
                format!("http://127.0.0.1:{reset}")
            } else {
                format!("http://127.0.0.1:{http}/s/{}/{role}", sc.name)
            };
            let probe = if sc.name == "recover" { "probe_ms = 100" } else { "probe_path = \"\"" };
            s += &format!(
                "[[endpoints]]\nname = \"{}-{role}\"\nurl = \"{url}\"\n{probe}\n\n",
                sc.name
            );
        }
        let targets: Vec<String> = sc
            .targets
            .iter()
            .map(|(role, m)| format!("{{ endpoint = \"{}-{role}\", model = \"{m}\" }}", sc.name))
            .collect();
        s += &format!(
            "[[routes]]\nmodel = \"{}\"\ntargets = [{}]\ndeadline_ms = {DEADLINE_MS}\n\
             first_token_ms = 700\nstall_ms = 400\nretries = 1\nbackoff_ms = 20\n\n",
            sc.name,
            targets.join(", ")
        );
    }
    s
}

/// One call through the gateway: status, headers, the answer text (assembled from the
/// stream when streaming), the whole body or the stream's events, and the time it took.
struct Reply {
    status: u16,
    endpoint: String,
    text: Option<String>,
    body: Value,
    done: bool,
    ms: u64,
}

async fn ask(url: &str, model: &str, prefill: bool, stream: bool) -> Reply {
    let mut messages = vec![json!({"role": "user", "content": "What is the answer?"})];
    if prefill {
        messages.push(json!({"role": "assistant", "content": "The answer is"}));
    }
    let mut body = json!({"model": model, "messages": messages, "max_tokens": 16});
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    let t0 = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let endpoint = r
        .headers()
        .get("x-kairos-endpoint")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let raw = r.text().await.unwrap();
    let ms = t0.elapsed().as_millis() as u64;
    if !stream || status != 200 {
        let body: Value = serde_json::from_str(&raw).unwrap_or(Value::String(raw));
        let text =
            body.pointer("/choices/0/message/content").and_then(Value::as_str).map(str::to_string);
        return Reply { status, endpoint, text, body, done: true, ms };
    }
    let events = sse_data(&raw);
    let done = events.last().is_some_and(|e| e == "[DONE]");
    let mut text = String::new();
    let mut chunks = Vec::new();
    let mut malformed = false;
    for e in events.iter().filter(|e| *e != "[DONE]") {
        match serde_json::from_str::<Value>(e) {
            Ok(v) if v.get("error").is_none() => {
                if let Some(t) = v.pointer("/choices/0/delta/content").and_then(Value::as_str) {
                    text.push_str(t);
                }
                chunks.push(v);
            }
            _ => malformed = true,
        }
    }
    Reply {
        status,
        endpoint,
        text: (!malformed).then_some(text),
        body: Value::Array(chunks),
        done,
        ms,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sixteen_failoverbench_scenarios_pass_through_the_gateway() {
    let faults = Arc::new(Faults::default());
    let app = axum::Router::new()
        .route("/s/{sc}/{role}/v1/chat/completions", axum::routing::post(fault))
        .route("/s/{sc}/{role}/health", axum::routing::get(fault_health))
        .with_state(faults.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let reset = resetter().await;
    let gw = Worker::spawn(
        &["router", "serve"],
        "kairos router listening on ",
        &router_toml(http, reset),
        &[],
        &[],
    );
    let url = gw.url.clone();

    let mut score = BTreeMap::new();
    for sc in SCENARIOS {
        let mut failures: Vec<String> = Vec::new();
        for stream in [false, true] {
            let how = if stream { "stream" } else { "whole" };
            let n = if sc.name == "recover" { 20 } else { 1 };
            let mut replies = Vec::new();
            for _ in 0..n {
                replies.push(ask(&url, sc.name, sc.prefill, stream).await);
                if sc.name == "recover" {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let r = &replies[replies.len() - 1];
            let mut check = |ok: bool, what: &str| {
                if !ok {
                    failures.push(format!(
                        "{how}: {what} (status {}, endpoint {:?}, text {:?}, {} ms, body {})",
                        r.status, r.endpoint, r.text, r.ms, r.body
                    ));
                }
            };
            for (i, x) in replies.iter().enumerate() {
                let bad = [
                    (x.ms <= DEADLINE_MS + SLACK_MS, "deadline missed"),
                    (x.status == 200, "not a success"),
                    (x.done, "the stream has no [DONE]"),
                    (x.text.as_deref().is_some_and(|t| !t.is_empty()), "no well-formed answer"),
                ];
                for (ok, what) in bad {
                    check(
                        ok,
                        &format!(
                            "request {i}: {what} (status {}, {} ms, body {})",
                            x.status, x.ms, x.body
                        ),
                    );
                }
            }
            let text = r.text.clone().unwrap_or_default();
            match sc.name {
                "s429ra" => {
                    // The Retry-After was honoured: the retry came a second after the 429.
                    let h = faults.hits("s429ra/primary");
                    let k = h.len();
                    check(
                        k >= 2 && h[k - 1].0 - h[k - 2].0 >= Duration::from_millis(990),
                        "Retry-After not honoured",
                    );
                    check(
                        r.endpoint == "s429ra-primary" && text == "answer from primary",
                        "not the primary after its wait",
                    );
                }
                "s500once" => {
                    check(r.endpoint == "s500once-primary", "the retry did not go to the primary")
                }
                "cut" | "stall" | "nodone" => {
                    // The fallback continued the answer from where the primary stopped.
                    check(text == "The answer is 42.", "the answer was not continued whole");
                    let fb = faults.hits(&format!("{}/fallback", sc.name));
                    let last = fb.last().map(|h| h.1.clone()).unwrap_or(Value::Null);
                    check(
                        last_role(&last) == "assistant"
                            && last["messages"][1]["content"] == "The answer is",
                        "the fallback was not given the text so far",
                    );
                }
                "ctx400" => {
                    check(r.endpoint == "ctx400-fallback", "not the longer-context fallback");
                }
                "policy400" => {
                    check(
                        faults.hits("policy400/same").is_empty(),
                        "the refused model was asked again on another endpoint",
                    );
                    check(r.endpoint == "policy400-fallback", "not the other model");
                }
                "prefill" => {
                    let fb = faults.hits("prefill/fallback");
                    check(
                        fb.len() >= 2 && last_role(&fb[fb.len() - 1].1) == "user",
                        "the prefill was not rewritten for the fallback",
                    );
                    check(text == "answer from fallback", "not the fallback's answer");
                }
                "recover" => {
                    let tail: Vec<&str> =
                        replies[15..].iter().map(|x| x.endpoint.as_str()).collect();
                    check(
                        tail.iter().all(|e| *e == "recover-primary"),
                        &format!("traffic did not return to the primary: {tail:?}"),
                    );
                }
                "accounting" => {
                    let (model, usage) = if stream {
                        let chunks = r.body.as_array().cloned().unwrap_or_default();
                        let m = chunks
                            .iter()
                            .filter_map(|c| c["model"].as_str())
                            .next_back()
                            .unwrap_or("")
                            .to_string();
                        let u = chunks
                            .iter()
                            .rev()
                            .find(|c| !c["usage"].is_null())
                            .map(|c| c["usage"].clone())
                            .unwrap_or(Value::Null);
                        (m, u)
                    } else {
                        (
                            r.body["model"].as_str().unwrap_or("").to_string(),
                            r.body["usage"].clone(),
                        )
                    };
                    check(
                        model == "fallback-model",
                        "the reply does not name the fallback's model",
                    );
                    check(
                        usage["prompt_tokens"] == 7 && usage["completion_tokens"] == 3,
                        "the usage is not the fallback's",
                    );
                    check(
                        r.endpoint == "accounting-fallback",
                        "the header does not name the fallback",
                    );
                    if !stream {
                        check(
                            r.body["kairos"]["endpoint"] == "accounting-fallback",
                            "the kairos block does not name the fallback",
                        );
                    }
                }
                _ => check(
                    r.endpoint.ends_with("-fallback") && text == "answer from fallback",
                    "not the fallback's answer",
                ),
            }
            if sc.name == "recover" {
                faults.recover_at.lock().unwrap().take();
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        }
        if sc.name == "recover" {
            // While down, the breaker kept most requests off the primary.
            let hits = faults.hits("recover/primary").len();
            if hits >= 40 {
                failures.push(format!("the primary got {hits} requests for 40 calls: no breaker"));
            }
        }
        score.insert(sc.name, failures);
    }
    let passed = score.values().filter(|f| f.is_empty()).count();
    let mut report = format!("failoverbench through kairos router serve: {passed}/16\n");
    for (name, f) in &score {
        report +=
            &format!("  {name:<11} {}\n", if f.is_empty() { "pass".into() } else { f.join("; ") });
    }
    eprintln!("{report}");
    assert_eq!(passed, 16, "{report}\ngateway output:\n{}", gw.output());

    // The figures: per-endpoint attempts and circuits, per-route requests.
    let m = metric(&url).await;
    for needle in [
        "kairos_router_attempts_total{endpoint=\"s503-primary\",outcome=\"http_503\"}",
        "kairos_router_circuit_opened_total{endpoint=\"s503-primary\"}",
        "kairos_router_attempts_total{endpoint=\"noresp-primary\",outcome=\"no_response\"}",
        "kairos_router_attempts_total{endpoint=\"slowfirst-primary\",outcome=\"first_token_timeout\"}",
        "kairos_router_attempts_total{endpoint=\"cut-primary\",outcome=\"cut\"} 2",
        "kairos_router_continuations_total{route=\"cut\"} 2",
        "kairos_router_requests_total{route=\"accounting\",outcome=\"ok\"} 2",
        "kairos_router_circuit_state{endpoint=\"recover-primary\"} 0",
    ] {
        assert!(m.contains(needle), "no {needle} in /metrics:\n{m}");
    }
    // A request the gateway refuses itself never leaves the machine.
    let before = faults.hits.lock().unwrap().values().map(Vec::len).sum::<usize>();
    let (st, _, b) = post(
        &format!("{url}/v1/chat/completions"),
        Some(KEY),
        &json!({"model": "s503", "messages": []}),
        &[],
    )
    .await;
    assert_eq!(st, 400, "{b}");
    let (st, _, b) = post(
        &format!("{url}/v1/chat/completions"),
        Some(KEY),
        &json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
        &[],
    )
    .await;
    assert_eq!((st, b["error"]["code"].as_str()), (404, Some("model_not_found")), "{b}");
    let (st, _, _) = post(
        &format!("{url}/v1/chat/completions"),
        Some("wrong-key-0123456789"),
        &json!({"model": "s503"}),
        &[],
    )
    .await;
    assert_eq!(st, 401);
    let after = faults.hits.lock().unwrap().values().map(Vec::len).sum::<usize>();
    assert_eq!(before, after, "refused requests reached an endpoint");
}

/// Two real Kairos workers (Gemma and MiniLM) behind the gateway, the gateway's own local
/// models as the last target: the official OpenAI client through the gateway, the same greedy
/// answer as a worker gives directly, fail-over when a worker is killed (timed, within the
/// deadline), and the local models answering once both workers are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
async fn two_workers_fail_over_to_each_other_then_to_the_local_model() {
    let Some((minilm, gguf)) = crate::worker::weights() else { return };
    let cfg = crate::worker::config(&minilm, &gguf, "");
    let mut a = Worker::start(&cfg, &[], &[]);
    let mut b = Worker::start(&cfg, &[], &[]);
    a.ready().await;
    b.ready().await;
    let local_llm = gguf.file_stem().unwrap().to_str().unwrap().to_string();
    let local_embed = minilm.file_name().unwrap().to_str().unwrap().to_string();
    let toml = format!(
        "[breaker]\nfailures = 1\nopen_ms = 60000\n\
         [[endpoints]]\nname = \"a\"\nurl = \"{}\"\napi_key_env = \"TEST_WORKER_KEY\"\nprobe_path = \"\"\n\
         [[endpoints]]\nname = \"b\"\nurl = \"{}/v1\"\napi_key_env = \"TEST_WORKER_KEY\"\nprobe_path = \"\"\n\
         [[routes]]\nmodel = \"gemma\"\ntargets = [{{ endpoint = \"a\", model = \"gemma\" }}, {{ endpoint = \"b\", model = \"gemma\" }}, {{ endpoint = \"local\", model = \"{local_llm}\" }}]\n\
         deadline_ms = 60000\nlocal_reserve_ms = 20000\n\
         [[routes]]\nmodel = \"minilm\"\ntargets = [{{ endpoint = \"a\", model = \"minilm\" }}, {{ endpoint = \"b\", model = \"minilm\" }}, {{ endpoint = \"local\", model = \"{local_embed}\" }}]\n\
         deadline_ms = 20000\n",
        a.url, b.url
    );
    let gw = Worker::spawn(
        &["router", "serve"],
        "kairos router listening on ",
        &toml,
        &["--local-llm", gguf.to_str().unwrap(), "--local-embed", minilm.to_str().unwrap()],
        &[("TEST_WORKER_KEY", KEY)],
    );
    let url = gw.url.clone();

    // The official client through the gateway.
    let u = url.clone();
    tokio::task::spawn_blocking(move || crate::worker::openai_client_checks(&u, "gemma", "minilm"))
        .await
        .unwrap();

    let ask = json!({"model": "gemma", "messages": [{"role": "user", "content": "Name a colour."}],
        "max_tokens": 8, "temperature": 0});
    let chat = format!("{url}/v1/chat/completions");
    let (st, _, direct) =
        post(&format!("{}/v1/chat/completions", a.url), Some(KEY), &ask, &[]).await;
    assert_eq!(st, 200, "{direct}");
    let (st, h, via) = post(&chat, Some(KEY), &ask, &[]).await;
    assert_eq!(st, 200, "{via}");
    assert_eq!(
        via["choices"][0]["message"], direct["choices"][0]["message"],
        "the gateway changed the answer"
    );
    assert_eq!(h["x-kairos-endpoint"], "a");
    let t = Instant::now();
    let (st, _, _) = post(&chat, Some(KEY), &ask, &[]).await;
    assert_eq!(st, 200);
    let healthy_ms = t.elapsed().as_millis();

    // Worker a dies: the next request goes to b, with the time a failed attempt cost.
    a.signal("-KILL");
    let t = Instant::now();
    let (st, h, r) = post(&chat, Some(KEY), &ask, &[]).await;
    let failover_ms = t.elapsed().as_millis();
    assert_eq!(st, 200, "{r}");
    assert_eq!(h["x-kairos-endpoint"], "b", "{r}");
    assert_eq!(r["choices"][0]["message"], direct["choices"][0]["message"]);
    assert_eq!(r["kairos"]["attempts"][0]["outcome"], "connect", "{r}");
    eprintln!(
        "fail-over after a worker died: {failover_ms} ms (a healthy request: {healthy_ms} ms)"
    );
    assert!(failover_ms < 60_000, "the deadline was missed");
    // The breaker (one failure opens it here) keeps the next request off the dead worker.
    let (st, _, r) = post(&chat, Some(KEY), &ask, &[]).await;
    assert_eq!(st, 200);
    assert_eq!(r["kairos"]["attempts"][0]["outcome"], "circuit_open", "{r}");

    // Both gone: the local models answer, the same greedy text as the workers'.
    b.signal("-KILL");
    let (st, h, r) = post(&chat, Some(KEY), &ask, &[]).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(h["x-kairos-endpoint"], "local", "{r}");
    assert_eq!(r["model"], local_llm.as_str());
    assert_eq!(r["choices"][0]["message"]["content"], direct["choices"][0]["message"]["content"]);
    let mut s = ask.clone();
    s["stream"] = json!(true);
    let (st, h, r) = post(&chat, Some(KEY), &s, &[]).await;
    assert_eq!((st, h["x-kairos-endpoint"].to_str().unwrap()), (200, "local"));
    let events = sse_data(r.as_str().unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{events:?}");
    let (st, h, e) = post(
        &format!("{url}/v1/embeddings"),
        Some(KEY),
        &json!({"model": "minilm", "input": ["btc up"]}),
        &[],
    )
    .await;
    assert_eq!((st, h["x-kairos-endpoint"].to_str().unwrap()), (200, "local"), "{e}");
    assert_eq!(e["data"][0]["embedding"].as_array().unwrap().len(), 384);
}

/// The lying workers: each proxies a real Kairos worker and changes what it says.
async fn liar(
    State(real): State<Arc<String>>,
    AxPath((name, path)): AxPath<(String, String)>,
    body: Bytes,
) -> Response {
    let mut req: Value = serde_json::from_slice(&body).unwrap();
    if name == "tokens" {
        let m = req["model"].as_str().unwrap_or("?").to_string();
        return sse(good_stream(&m, &["Definitely", " purple."], (5, 2)), None, Tail::End);
    }
    req["model"] = json!(req["model"].as_str().unwrap());
    let resp = reqwest::Client::new()
        .post(format!("{real}/v1/{path}"))
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(req.to_string())
        .send()
        .await
        .unwrap();
    let st = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    if path == "embeddings" {
        let mut v: Value = serde_json::from_str(&text).unwrap();
        if name == "embed" {
            // A cheaper encoder's vectors: the same size, pointing elsewhere.
            for d in v["data"].as_array_mut().unwrap() {
                let e = d["embedding"].as_array_mut().unwrap();
                e.reverse();
            }
        }
        return (StatusCode::from_u16(st).unwrap(), axum::Json(v)).into_response();
    }
    // Chat streams: the same tokens; a substitute's log-probabilities.
    let mut out = Vec::new();
    for e in sse_data(&text) {
        if e == "[DONE]" {
            out.push("data: [DONE]\n\n".to_string());
            continue;
        }
        let mut v: Value = serde_json::from_str(&e).unwrap();
        if name == "subst"
            && let Some(lp) =
                v.pointer_mut("/choices/0/logprobs/content").and_then(Value::as_array_mut)
        {
            for t in lp {
                let l = t["logprob"].as_f64().unwrap();
                t["logprob"] = json!(l - 0.7);
            }
        }
        out.push(format!("data: {v}\n\n"));
    }
    sse(out, None, Tail::End)
}

async fn metric(url: &str) -> String {
    reqwest::Client::new()
        .get(format!("{url}/metrics"))
        .header("authorization", format!("Bearer {KEY}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn wait_metric(gw: &Worker, needle: &str) {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        if metric(&gw.url).await.contains(needle) {
            return;
        }
        assert!(Instant::now() < until, "no {needle}:\n{}\n{}", metric(&gw.url).await, gw.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A worker that returns wrong embeddings, one that returns wrong tokens, and one that serves
/// a substitute model (the same text, other log-probabilities) are caught by spot checks and
/// canaries against a real worker, quarantined, kept out after a restart (SQLite), and let
/// back in by `kairos router release`; an honest proxy of the same worker passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
async fn lying_workers_are_quarantined_across_restarts() {
    let Some((minilm, gguf)) = crate::worker::weights() else { return };
    let mut w = Worker::start(&crate::worker::config(&minilm, &gguf, ""), &[], &[]);
    w.ready().await;
    let app = axum::Router::new()
        .route("/liar/{name}/v1/{*path}", axum::routing::post(liar))
        .with_state(Arc::new(w.url.clone()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("verify.sqlite");
    let ep = |name: &str, url: String| {
        format!(
            "[[endpoints]]\nname = \"{name}\"\nurl = \"{url}\"\napi_key_env = \"TEST_WORKER_KEY\"\nprobe_path = \"\"\n"
        )
    };
    let liar_url = |n: &str| format!("http://127.0.0.1:{port}/liar/{n}");
    let toml = [
        format!("[verify]\ndb = {db:?}\nfailures_to_quarantine = 1\nlogprob_tolerance = 0.15\ncanary_ms = 600000\n"),
        ep("honest", w.url.clone()),
        ep("liar-embed", liar_url("embed")),
        ep("liar-tokens", liar_url("tokens")),
        ep("liar-subst", liar_url("subst")),
        ep("honest-proxy", liar_url("proxy")),
        "[[routes]]\nmodel = \"minilm\"\ntargets = [{ endpoint = \"liar-embed\", model = \"minilm\" }, { endpoint = \"honest\", model = \"minilm\" }]\nverify_fraction = 1.0\nverify_with = \"honest\"\n".into(),
        "[[routes]]\nmodel = \"gemma\"\ntargets = [{ endpoint = \"liar-tokens\", model = \"gemma\" }, { endpoint = \"honest\", model = \"gemma\" }]\nverify_fraction = 1.0\nverify_with = \"honest\"\n".into(),
        "[[routes]]\nmodel = \"subst\"\ntargets = [{ endpoint = \"liar-subst\", model = \"gemma\" }, { endpoint = \"honest-proxy\", model = \"gemma\" }, { endpoint = \"honest\", model = \"gemma\" }]\nverify_with = \"honest\"\n".into(),
        "[[canaries]]\nroute = \"subst\"\nprompt = \"Name a colour.\"\nmax_tokens = 6\n".into(),
    ]
    .join("\n");
    let env = [("TEST_WORKER_KEY", KEY)];
    let gw = Worker::spawn(&["router", "serve"], "kairos router listening on ", &toml, &[], &env);
    let url = gw.url.clone();

    // Wrong embeddings: answered once (the check runs after the answer), then quarantined.
    let emb = json!({"model": "minilm", "input": ["btc breaks out", "eth unlock delayed"]});
    let (st, h, _) = post(&format!("{url}/v1/embeddings"), Some(KEY), &emb, &[]).await;
    assert_eq!((st, h["x-kairos-endpoint"].to_str().unwrap()), (200, "liar-embed"));
    wait_metric(&gw, "kairos_router_quarantined{endpoint=\"liar-embed\"} 1").await;
    let (st, h, e) = post(&format!("{url}/v1/embeddings"), Some(KEY), &emb, &[]).await;
    assert_eq!((st, h["x-kairos-endpoint"].to_str().unwrap()), (200, "honest"), "{e}");
    assert_eq!(e["kairos"]["attempts"][0]["outcome"], "quarantined", "{e}");

    // Wrong tokens.
    let ask = json!({"model": "gemma", "messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 6, "temperature": 0});
    let (st, h, _) = post(&format!("{url}/v1/chat/completions"), Some(KEY), &ask, &[]).await;
    assert_eq!((st, h["x-kairos-endpoint"].to_str().unwrap()), (200, "liar-tokens"));
    wait_metric(&gw, "kairos_router_quarantined{endpoint=\"liar-tokens\"} 1").await;
    let (_, h, _) = post(&format!("{url}/v1/chat/completions"), Some(KEY), &ask, &[]).await;
    assert_eq!(h["x-kairos-endpoint"], "honest");

    // The substitute: the canary round at start catches it by its log-probabilities; the
    // honest proxy of the same worker passes the same canary.
    wait_metric(&gw, "kairos_router_quarantined{endpoint=\"liar-subst\"} 1").await;
    wait_metric(&gw, "kairos_router_verifications_total{endpoint=\"honest-proxy\",kind=\"canary\",result=\"pass\"} 1").await;
    let m = metric(&url).await;
    assert!(m.contains("kairos_router_quarantined{endpoint=\"honest-proxy\"} 0"), "{m}");
    assert!(m.contains("kairos_router_quarantined{endpoint=\"honest\"} 0"), "{m}");
    drop(gw);

    // A restart keeps the three out (the record is in SQLite), before any new check.
    let gw = Worker::spawn(&["router", "serve"], "kairos router listening on ", &toml, &[], &env);
    let m = metric(&gw.url).await;
    for liar in ["liar-embed", "liar-tokens", "liar-subst"] {
        assert!(
            m.contains(&format!("kairos_router_quarantined{{endpoint=\"{liar}\"}} 1")),
            "{liar}:\n{m}"
        );
    }
    let sub = json!({"model": "subst", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0});
    let (st, h, r) = post(&format!("{}/v1/chat/completions", gw.url), Some(KEY), &sub, &[]).await;
    assert_eq!((st, h["x-kairos-endpoint"].to_str().unwrap()), (200, "honest-proxy"), "{r}");
    assert_eq!(r["kairos"]["attempts"][0]["outcome"], "quarantined");
    drop(gw);

    // The operator lets one back in.
    let cfg = dir.path().join("router.toml");
    std::fs::write(&cfg, &toml).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["router", "release", "--config", cfg.to_str().unwrap(), "liar-tokens"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("liar-tokens released"));
    let gw = Worker::spawn(&["router", "serve"], "kairos router listening on ", &toml, &[], &env);
    let m = metric(&gw.url).await;
    assert!(m.contains("kairos_router_quarantined{endpoint=\"liar-tokens\"} 0"), "{m}");
    assert!(m.contains("kairos_router_quarantined{endpoint=\"liar-embed\"} 1"), "{m}");
}
