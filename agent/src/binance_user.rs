//! Binance spot's user data stream over the WebSocket API: order updates as they happen
//! (`executionReport`), instead of polling. The listenKey streams are deprecated; this
//! subscribes with `userDataStream.subscribe.signature`, which takes the same HMAC-SHA256 key
//! as REST: the request's parameters (`apiKey`, `timestamp`) sorted by name, as a query string,
//! are what is signed.
//!
//! [`run_user_stream`] keeps the connection up (the reconnects, pings and backoff of
//! [`kairos_feeds::ws`]), subscribes again after every connect with a fresh timestamp, and
//! reports [`UserEvent`]s. The venue task ([`crate::live::run_venue`]) reads trades and ends
//! of orders from it, catches up by polling after every (re)subscription, and polls as before
//! while the stream is down: a stream that drops loses events, and the poll finds them.

use std::time::Duration;

use kairos_feeds::ws::{self, Control, Link, WsConfig, WsEvent};
use kairos_strategies::Fixed;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::binance_rest::{Credentials, fixed, query_string};

/// Binance spot's WebSocket API.
pub const WS_API_URL: &str = "wss://ws-api.binance.com:443/ws-api/v3";

/// How long to wait before subscribing again after the exchange refused a subscription (a
/// wrong key is not retried in a tight loop).
pub const REFUSED_RETRY: Duration = Duration::from_secs(30);

/// An order update (`executionReport`), the fields the agent reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExecutionReport {
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: String,
    /// The order's client id; for a cancel, the cancel request's.
    #[serde(rename = "c")]
    pub client_order_id: String,
    /// For a cancel, the cancelled order's client id; empty otherwise.
    #[serde(rename = "C", default)]
    pub orig_client_order_id: String,
    /// `BUY` or `SELL`.
    #[serde(rename = "S")]
    pub side: String,
    /// `NEW`, `CANCELED`, `REPLACED`, `REJECTED`, `TRADE`, `EXPIRED`, `TRADE_PREVENTION`.
    #[serde(rename = "x")]
    pub execution_type: String,
    /// The order's status after this update.
    #[serde(rename = "X")]
    pub status: String,
    /// Why it was rejected (`NONE` otherwise).
    #[serde(rename = "r", default)]
    pub reject_reason: String,
    /// The exchange's order id.
    #[serde(rename = "i")]
    pub order_id: u64,
    /// This trade's quantity.
    #[serde(rename = "l", deserialize_with = "fixed")]
    pub last_qty: Fixed,
    /// Traded so far.
    #[serde(rename = "z", deserialize_with = "fixed")]
    pub cum_qty: Fixed,
    /// This trade's price.
    #[serde(rename = "L", deserialize_with = "fixed")]
    pub last_price: Fixed,
    /// This trade's commission.
    #[serde(rename = "n", deserialize_with = "fixed")]
    pub commission: Fixed,
    /// Its asset (`null` without a trade).
    #[serde(rename = "N", default)]
    pub commission_asset: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(rename = "T")]
    pub transact_time: i64,
    /// The trade id (-1 without a trade).
    #[serde(rename = "t")]
    pub trade_id: i64,
}

impl ExecutionReport {
    /// The client id of the order this is about (a cancel's report names the cancel request
    /// in `c` and the order in `C`).
    pub fn ours(&self) -> &str {
        if self.orig_client_order_id.is_empty() {
            &self.client_order_id
        } else {
            &self.orig_client_order_id
        }
    }

    /// Whether the order can change no more.
    pub fn is_final(&self) -> bool {
        matches!(
            self.status.as_str(),
            "FILLED" | "CANCELED" | "REJECTED" | "EXPIRED" | "EXPIRED_IN_MATCH"
        )
    }
}

/// A message from the WebSocket API.
#[derive(Debug, Clone, PartialEq)]
pub enum WsApiMessage {
    /// The answer to a request.
    Response {
        /// The request's id.
        id: Value,
        /// HTTP-like status (200 is success).
        status: u16,
        /// `subscriptionId` of a subscription's answer.
        subscription: Option<u64>,
        /// The exchange's error code and message, when it refused.
        error: Option<(i64, String)>,
    },
    /// An order update.
    Execution(Box<ExecutionReport>),
    /// The exchange ended the subscription (`eventStreamTerminated`).
    Terminated,
    /// Another event (`outboundAccountPosition`, `balanceUpdate`, ...), by its type.
    Other(String),
}

/// Parses one text message; the error says what is wrong with it.
pub fn parse_message(text: &str) -> Result<WsApiMessage, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(ev) = v.get("event") {
        let kind = ev.get("e").and_then(Value::as_str).unwrap_or("");
        return match kind {
            "executionReport" => serde_json::from_value::<ExecutionReport>(ev.clone())
                .map(|r| WsApiMessage::Execution(Box::new(r)))
                .map_err(|e| format!("executionReport: {e}")),
            "eventStreamTerminated" => Ok(WsApiMessage::Terminated),
            "" => Err("an event without a type (`e`)".into()),
            other => Ok(WsApiMessage::Other(other.to_string())),
        };
    }
    let Some(status) = v.get("status").and_then(Value::as_u64) else {
        return Err("neither an event nor an answer (no `event`, no `status`)".into());
    };
    let error = v.get("error").map(|e| {
        (
            e.get("code").and_then(Value::as_i64).unwrap_or(0),
            e.get("msg").and_then(Value::as_str).unwrap_or("").to_string(),
        )
    });
    Ok(WsApiMessage::Response {
        id: v.get("id").cloned().unwrap_or(Value::Null),
        status: u16::try_from(status).unwrap_or(u16::MAX),
        subscription: v.pointer("/result/subscriptionId").and_then(Value::as_u64),
        error,
    })
}

/// The signed `userDataStream.subscribe.signature` request.
pub fn subscribe_request(creds: &Credentials, id: &str, timestamp_ms: i64) -> String {
    let params = [("apiKey", creds.api_key().to_string()), ("timestamp", timestamp_ms.to_string())];
    let signature = creds.sign(&query_string(&params));
    json!({
        "id": id,
        "method": "userDataStream.subscribe.signature",
        "params": {"apiKey": creds.api_key(), "timestamp": timestamp_ms, "signature": signature},
    })
    .to_string()
}

/// What the stream reports to the venue task.
#[derive(Debug, Clone, PartialEq)]
pub enum UserEvent {
    /// Subscribed: events flow from now on (what happened before is for a poll to find).
    Subscribed,
    /// An order update.
    Execution(Box<ExecutionReport>),
    /// No subscription any more, and why; events are lost until the next
    /// [`UserEvent::Subscribed`].
    Down(String),
}

/// Where and as whom to subscribe.
#[derive(Debug, Clone)]
pub struct UserStream {
    /// The WebSocket API's URL ([`WS_API_URL`]).
    pub url: String,
    /// The API key and secret.
    pub creds: Credentials,
    /// Milliseconds to add to the local clock for the exchange's (from
    /// [`crate::binance_rest::BinanceRest::sync_time`]).
    pub clock_offset_ms: i64,
}

/// Keeps the subscription up and reports to `tx` until `tx` closes (the venue task ended).
pub async fn run_user_stream(stream: UserStream, tx: mpsc::UnboundedSender<UserEvent>) {
    let mut cfg = WsConfig::new(stream.url.clone());
    // A quiet account sends nothing for hours: the pings tell a dead peer, not the data.
    cfg.stale_after = Duration::from_secs(365 * 24 * 3600);
    let (ws_tx, mut ws_rx) = mpsc::channel(1024);
    let (ctl_tx, ctl_rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let link = Link { tx: ws_tx, stop: stop_rx, control: Some(ctl_rx) };
    let conn = tokio::spawn(async move { ws::run(cfg, Vec::new(), None, link).await });
    let mut pending: Option<String> = None;
    let mut n = 0u64;
    loop {
        let ev = tokio::select! {
            ev = ws_rx.recv() => ev,
            _ = tx.closed() => None,
        };
        let Some(ev) = ev else { break };
        match ev {
            WsEvent::Connected(_) => {
                n += 1;
                let id = format!("kairos-uds-{n}");
                let now = crate::now_ms() + stream.clock_offset_ms;
                let req = subscribe_request(&stream.creds, &id, now);
                pending = Some(id);
                if ctl_tx.send(Control::Send(req)).await.is_err() {
                    break;
                }
            }
            WsEvent::Text(text, _) => match parse_message(&text) {
                Ok(WsApiMessage::Response { id, status, error, .. }) => {
                    if pending.as_deref() != id.as_str() {
                        continue;
                    }
                    pending = None;
                    if status == 200 {
                        tracing::info!(url = %stream.url, "user data stream subscribed");
                        if tx.send(UserEvent::Subscribed).is_err() {
                            break;
                        }
                    } else {
                        let (code, msg) = error.unwrap_or((0, String::new()));
                        let why = format!(
                            "the exchange refused the subscription (HTTP {status}, Binance {code}: {msg})"
                        );
                        tracing::error!(
                            "user data stream: {why}; orders are polled, retrying in {REFUSED_RETRY:?}"
                        );
                        if tx.send(UserEvent::Down(why.clone())).is_err() {
                            break;
                        }
                        let ctl = ctl_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(REFUSED_RETRY).await;
                            let _ = ctl.send(Control::Reconnect(why)).await;
                        });
                    }
                }
                Ok(WsApiMessage::Execution(r)) => {
                    if tx.send(UserEvent::Execution(r)).is_err() {
                        break;
                    }
                }
                Ok(WsApiMessage::Terminated) => {
                    let why = "the exchange ended the subscription".to_string();
                    if tx.send(UserEvent::Down(why.clone())).is_err() {
                        break;
                    }
                    let _ = ctl_tx.send(Control::Reconnect(why)).await;
                }
                Ok(WsApiMessage::Other(_)) => {}
                Err(e) => {
                    tracing::warn!(
                        "user data stream: a message that does not parse ({e}): {text:.200}"
                    )
                }
            },
            WsEvent::Disconnected { why, .. } => {
                pending = None;
                if tx.send(UserEvent::Down(format!("disconnected: {why:?}"))).is_err() {
                    break;
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = conn.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subscription_is_signed_over_its_sorted_parameters() {
        let creds = Credentials::new("key-1", "secret-1");
        let req: Value =
            serde_json::from_str(&subscribe_request(&creds, "a", 1_700_000_000_000)).expect("JSON");
        assert_eq!(req["method"], "userDataStream.subscribe.signature");
        assert_eq!(req["params"]["apiKey"], "key-1");
        assert_eq!(req["params"]["timestamp"], 1_700_000_000_000i64);
        let want = crate::binance_rest::sign("secret-1", "apiKey=key-1&timestamp=1700000000000");
        assert_eq!(req["params"]["signature"], want.as_str());
    }

    #[test]
    fn messages_parse_into_answers_and_events_and_bad_ones_say_why() {
        // Binance's documented executionReport, inside the WebSocket API's event wrapper.
        let ev = r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW","S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"NEW","X":"NEW","r":"NONE","i":4293153,"l":"0.00000000","z":"0.00000000","L":"0.00000000","n":"0","N":null,"T":1499405658657,"t":-1,"v":3,"I":8641984,"w":true,"m":false,"M":false,"O":1499405658657,"Z":"0.00000000","Y":"0.00000000","Q":"0.00000000","W":1499405658657,"V":"NONE"}}"#;
        let WsApiMessage::Execution(r) = parse_message(ev).expect("parses") else {
            panic!("not an execution report")
        };
        assert_eq!(
            (r.symbol.as_str(), r.ours(), r.order_id),
            ("ETHBTC", "mUvoqJxFIILMdfAW5iGSOW", 4293153)
        );
        assert_eq!((r.execution_type.as_str(), r.trade_id, r.is_final()), ("NEW", -1, false));
        let cancel = ev
            .replace(r#""c":"mUvoqJxFIILMdfAW5iGSOW""#, r#""c":"cancel-1""#)
            .replace(r#""C":"""#, r#""C":"mUvoqJxFIILMdfAW5iGSOW""#);
        let cancel = cancel.replace(r#""X":"NEW""#, r#""X":"CANCELED""#);
        let WsApiMessage::Execution(c) = parse_message(&cancel).expect("parses") else {
            panic!("not an execution report")
        };
        assert_eq!((c.ours(), c.is_final()), ("mUvoqJxFIILMdfAW5iGSOW", true));

        let ok =
            r#"{"id":"kairos-uds-1","status":200,"result":{"subscriptionId":3},"rateLimits":[]}"#;
        assert_eq!(
            parse_message(ok),
            Ok(WsApiMessage::Response {
                id: json!("kairos-uds-1"),
                status: 200,
                subscription: Some(3),
                error: None
            })
        );
        let refused = r#"{"id":"x","status":400,"error":{"code":-1022,"msg":"Signature for this request is not valid."}}"#;
        let Ok(WsApiMessage::Response { error: Some((code, _)), .. }) = parse_message(refused)
        else {
            panic!("not a refusal")
        };
        assert_eq!(code, -1022);
        let end = r#"{"subscriptionId":0,"event":{"e":"eventStreamTerminated","E":1}}"#;
        assert_eq!(parse_message(end), Ok(WsApiMessage::Terminated));

        for (bad, says) in [
            ("{", "not JSON"),
            (r#"{"hello":1}"#, "neither an event"),
            (r#"{"event":{"x":1}}"#, "without a type"),
            (&ev.replace(r#""l":"0.00000000""#, r#""l":"NaN""#), "not a decimal"),
        ] {
            let e = parse_message(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
