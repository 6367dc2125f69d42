//! A JSON-RPC proxy on 127.0.0.1 in front of anvil that misbehaves on purpose: for
//! `eth_sendRawTransaction` calls it follows a repeating script of faults, the ones real nodes
//! and RPC providers produce. Everything else passes through.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
}

pub struct Proxy {
    pub url: String,
    pub sends: Arc<AtomicUsize>,
    pub faults_injected: Arc<AtomicUsize>,
}

pub async fn start(upstream: String, script: Vec<Fault>) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sends = Arc::new(AtomicUsize::new(0));
    let injected = Arc::new(AtomicUsize::new(0));
    let script = Arc::new(script);
    let client = reqwest::Client::new();
    let (s2, i2) = (sends.clone(), injected.clone());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let (upstream, script, client, sends, injected) =
                (upstream.clone(), script.clone(), client.clone(), s2.clone(), i2.clone());
            tokio::spawn(async move {
                let _ = serve(sock, &upstream, &script, &client, &sends, &injected).await;
            });
        }
    });
    Proxy { url, sends, faults_injected: injected }
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
    sends: &AtomicUsize,
    injected: &AtomicUsize,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(body) = read_request(&mut sock, &mut buf).await {
        let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let id = req.get("id").cloned().unwrap_or_default();
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
        }
    }
    Ok(())
}
