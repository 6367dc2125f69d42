//! A JSON-RPC proxy on 127.0.0.1 in front of anvil that misbehaves on purpose: for
//! `eth_sendRawTransaction` calls it follows a repeating script of faults, the ones real nodes
//! and RPC providers produce. Everything else passes through.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with one `eth_sendRawTransaction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward and return the node's answer.
    Pass,
    /// Answer "nonce too low" without forwarding.
    NonceTooLow,
    /// Answer "replacement transaction underpriced" without forwarding.
    Underpriced,
    /// Forward, then answer "already known".
    AlreadyKnown,
    /// Answer HTTP 429 without forwarding.
    TooManyRequests,
    /// Forward, then close the connection without answering.
    DropAfterForward,
    /// Forward, then answer "nonce too low" (as a relay or a load-balanced provider does when
    /// another of its nodes already took the transaction).
    ForwardThenNonceTooLow,
    /// Forward, close the connection without answering, and answer `null` to the next
    /// `HIDDEN_RECEIPT_LOOKUPS` receipt lookups of that transaction (a lagging backend).
    DropAndDelayReceipt,
    /// Forward, having first told anvil to give the next block a timestamp this many seconds
    /// after the latest block's: the transaction lands in a later block than the one it was
    /// estimated against, as on a chain with 12-second slots.
    LaterBlock(u64),
}

/// How many receipt lookups [`Fault::DropAndDelayReceipt`] answers with `null`.
pub const HIDDEN_RECEIPT_LOOKUPS: u32 = 25;

#[derive(Default)]
struct Shared {
    sends: AtomicUsize,
    injected: AtomicUsize,
    refuse_overrides: AtomicBool,
    max_log_range: AtomicU64,
    hidden_receipts: Mutex<HashMap<String, u32>>,
    receipts_hidden: AtomicUsize,
    fail_reads: AtomicUsize,
}

pub struct Proxy {
    pub url: String,
    pub sends: Arc<AtomicUsize>,
    pub faults_injected: Arc<AtomicUsize>,
    /// When set, `eth_estimateGas` with block overrides (a fourth parameter) gets "too many
    /// arguments", as from a node that does not take them.
    pub refuse_block_overrides: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Refuse `eth_getLogs` over more than `blocks` blocks, as hosted nodes do (0: no limit).
    pub fn limit_log_range(&self, blocks: u64) {
        self.shared.max_log_range.store(blocks, Ordering::SeqCst);
    }

    /// Answer the next `n` requests other than broadcasts with HTTP 503 (a provider's outage).
    pub fn fail_next_reads(&self, n: usize) {
        self.shared.fail_reads.store(n, Ordering::SeqCst);
    }

    /// Reads still to fail.
    pub fn reads_to_fail(&self) -> usize {
        self.shared.fail_reads.load(Ordering::SeqCst)
    }

    /// Receipt lookups answered with `null` so far.
    pub fn receipts_hidden(&self) -> usize {
        self.shared.receipts_hidden.load(Ordering::SeqCst)
    }
}

pub async fn start(upstream: String, script: Vec<Fault>) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sends = Arc::new(AtomicUsize::new(0));
    let injected = Arc::new(AtomicUsize::new(0));
    let script = Arc::new(script);
    let client = reqwest::Client::new();
    let refuse = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared::default());
    let (s2, i2, r2, sh2) = (sends.clone(), injected.clone(), refuse.clone(), shared.clone());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let (upstream, script, client, sends, injected, refuse, shared) = (
                upstream.clone(),
                script.clone(),
                client.clone(),
                s2.clone(),
                i2.clone(),
                r2.clone(),
                sh2.clone(),
            );
            tokio::spawn(async move {
                let counters = (&*sends, &*injected, &*refuse);
                let _ = serve(sock, &upstream, &script, &client, counters, &shared).await;
            });
        }
    });
    Proxy { url, sends, faults_injected: injected, refuse_block_overrides: refuse, shared }
}

fn block_param(v: &serde_json::Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return Some(body);
            }
        }
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn respond(sock: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let msg = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(msg.as_bytes()).await
}

fn rpc_error(id: &serde_json::Value, code: i64, message: &str) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        .to_string()
}

async fn serve(
    mut sock: TcpStream,
    upstream: &str,
    script: &[Fault],
    client: &reqwest::Client,
    (sends, injected, refuse_overrides): (&AtomicUsize, &AtomicUsize, &AtomicBool),
    shared: &Shared,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(body) = read_request(&mut sock, &mut buf).await {
        let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let id = req.get("id").cloned().unwrap_or_default();
        let method = req.get("method").and_then(|m| m.as_str()).unwrap_or_default();
        if method != "eth_sendRawTransaction"
            && shared
                .fail_reads
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            respond(&mut sock, "503 Service Unavailable", "{}").await?;
            continue;
        }
        if method == "eth_getTransactionReceipt" {
            let hash = req["params"][0].as_str().unwrap_or_default().to_lowercase();
            let hide = {
                let mut hidden = shared.hidden_receipts.lock().unwrap();
                match hidden.get_mut(&hash) {
                    Some(left) if *left > 0 => {
                        *left -= 1;
                        true
                    }
                    _ => false,
                }
            };
            if hide {
                shared.receipts_hidden.fetch_add(1, Ordering::SeqCst);
                let null = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": null});
                respond(&mut sock, "200 OK", &null.to_string()).await?;
                continue;
            }
        }
        let limit = shared.max_log_range.load(Ordering::SeqCst);
        if method == "eth_getLogs" && limit > 0 {
            let f = &req["params"][0];
            if let (Some(from), Some(to)) =
                (block_param(&f["fromBlock"]), block_param(&f["toBlock"]))
                && to + 1 > from + limit
            {
                let msg = format!("query exceeds max block range {limit}");
                respond(&mut sock, "200 OK", &rpc_error(&id, -32005, &msg)).await?;
                continue;
            }
        }
        let params = req.get("params").and_then(|p| p.as_array()).map_or(0, |p| p.len());
        if refuse_overrides.load(Ordering::SeqCst)
            && req.get("method").and_then(|m| m.as_str()) == Some("eth_estimateGas")
            && params >= 4
        {
            respond(
                &mut sock,
                "200 OK",
                &rpc_error(&id, -32602, "too many arguments, want at most 3"),
            )
            .await?;
            continue;
        }
        let fault = if req.get("method").and_then(|m| m.as_str()) == Some("eth_sendRawTransaction")
        {
            let n = sends.fetch_add(1, Ordering::SeqCst);
            script[n % script.len()]
        } else {
            Fault::Pass
        };
        if fault != Fault::Pass {
            injected.fetch_add(1, Ordering::SeqCst);
        }
        let forward = async {
            client
                .post(upstream)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        match fault {
            Fault::Pass => respond(&mut sock, "200 OK", &forward.await).await?,
            Fault::NonceTooLow => {
                respond(&mut sock, "200 OK", &rpc_error(&id, -32000, "nonce too low")).await?
            }
            Fault::Underpriced => {
                respond(
                    &mut sock,
                    "200 OK",
                    &rpc_error(&id, -32000, "replacement transaction underpriced"),
                )
                .await?
            }
            Fault::AlreadyKnown => {
                forward.await;
                respond(&mut sock, "200 OK", &rpc_error(&id, -32000, "already known")).await?
            }
            Fault::TooManyRequests => respond(&mut sock, "429 Too Many Requests", "{}").await?,
            Fault::DropAfterForward => {
                forward.await;
                return sock.shutdown().await;
            }
            Fault::ForwardThenNonceTooLow => {
                forward.await;
                respond(&mut sock, "200 OK", &rpc_error(&id, -32000, "nonce too low")).await?
            }
            Fault::DropAndDelayReceipt => {
                let raw = req["params"][0].as_str().unwrap_or_default();
                let bytes = alloy::primitives::hex::decode(raw).unwrap_or_default();
                let hash = alloy::primitives::keccak256(&bytes).to_string().to_lowercase();
                shared.hidden_receipts.lock().unwrap().insert(hash, HIDDEN_RECEIPT_LOOKUPS);
                forward.await;
                return sock.shutdown().await;
            }
            Fault::LaterBlock(secs) => {
                let call = |method: &str, params: serde_json::Value| {
                    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
                    async move {
                        let v: serde_json::Value = client
                            .post(upstream)
                            .json(&body)
                            .send()
                            .await
                            .unwrap()
                            .json()
                            .await
                            .unwrap();
                        v["result"].clone()
                    }
                };
                let latest =
                    call("eth_getBlockByNumber", serde_json::json!(["latest", false])).await;
                let ts = latest["timestamp"].as_str().expect("a block timestamp");
                let ts = u64::from_str_radix(ts.trim_start_matches("0x"), 16).unwrap();
                call("evm_setNextBlockTimestamp", serde_json::json!([ts + secs])).await;
                respond(&mut sock, "200 OK", &forward.await).await?
            }
        }
    }
    Ok(())
}
