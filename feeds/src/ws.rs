//! A websocket connection that stays up: it reconnects with capped exponential backoff and
//! jitter, and watches two timers, one for a dead peer (no pong to our pings) and one for a
//! stale feed (no data, though the peer may still answer pings). A connection is also
//! renewed before the venue's own limit on its age (Binance closes them at 24 hours), and
//! when the venue announces a shutdown.
//!
//! The backoff doubles from `backoff_min` to `backoff_max` and is reset only after a
//! connection stayed up for `stable_after`: a server that accepts and drops at once is not
//! hammered. Each wait is drawn between half of it and all of it, so many clients do not
//! reconnect in step.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// How a connection is kept.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// Our ping interval.
    pub ping_every: Duration,
    /// No pong within this of a ping: the peer is dead.
    pub pong_timeout: Duration,
    /// No data message for this long: the feed is stale.
    pub stale_after: Duration,
    /// Renew the connection after this long (Binance closes them at 24 h).
    pub max_age: Duration,
    /// The first reconnect wait.
    pub backoff_min: Duration,
    /// The longest reconnect wait.
    pub backoff_max: Duration,
    /// A connection up this long resets the backoff.
    pub stable_after: Duration,
    /// Give up a connection attempt after this long.
    pub connect_timeout: Duration,
}

impl WsConfig {
    /// Defaults for `url`: pings every 10 s with 10 s to answer, stale after 30 s without data,
    /// renewed after 23 h 50 min, backoff 0.5 s to 30 s, stable after 60 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ping_every: Duration::from_secs(10),
            pong_timeout: Duration::from_secs(10),
            stale_after: Duration::from_secs(30),
            max_age: Duration::from_secs(23 * 3600 + 50 * 60),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It could not be opened.
    Connect(String),
    /// The peer closed it or the transport failed.
    Closed(String),
    /// No pong to a ping in time.
    DeadPeer,
    /// No data in time.
    Stale,
    /// Renewed: its age limit, or the venue announced a shutdown.
    Planned(String),
    /// The feed asked for a new connection.
    Asked(String),
}

/// What a feed asks of its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Send a text message now.
    Send(String),
    /// Close and reconnect at once (say, after a sequence gap: a new subscription brings a new
    /// snapshot).
    Reconnect(String),
}

/// What the connection reports.
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    /// Connected (the `n`th connection, from 1).
    Connected(u32),
    /// A text message, with its local receive time (ns since the epoch).
    Text(String, i64),
    /// The connection ended; the next attempt comes after `retry_in`.
    Disconnected {
        /// Why.
        why: Ended,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
}

/// Capped exponential backoff with jitter.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn wait(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        // Between half of it and all of it.
        let r = std::collections::hash_map::RandomState::new().build_hasher().finish();
        d / 2 + d.mul_f64((r % 1000) as f64 / 2000.0)
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The channels a connection talks through.
#[derive(Debug)]
pub struct Link {
    /// Where events go; the connection ends when it is closed.
    pub tx: mpsc::Sender<WsEvent>,
    /// The connection ends when this turns true.
    pub stop: watch::Receiver<bool>,
    /// Requests from the feed, if it makes any.
    pub control: Option<mpsc::Receiver<Control>>,
}

/// Keeps a connection to `cfg.url` until told to stop, sending `on_connect` (subscriptions)
/// after every connect, and reporting through the link. `shutdown_marker`: a text message
/// containing it is the venue announcing a shutdown.
pub async fn run(
    cfg: WsConfig,
    on_connect: Vec<String>,
    shutdown_marker: Option<&str>,
    link: Link,
) {
    let Link { tx, mut stop, mut control } = link;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut backoff = Backoff { next: cfg.backoff_min, min: cfg.backoff_min, max: cfg.backoff_max };
    let mut n = 0u32;
    while !*stop.borrow() {
        let attempt = tokio::time::timeout(
            cfg.connect_timeout,
            tokio_tungstenite::connect_async(cfg.url.as_str()),
        )
        .await;
        let (why, up_for) = match attempt {
            Err(_) => (
                Ended::Connect(format!("no answer within {:?}", cfg.connect_timeout)),
                Duration::ZERO,
            ),
            Ok(Err(e)) => (Ended::Connect(e.to_string()), Duration::ZERO),
            Ok(Ok((mut ws, _))) => {
                n += 1;
                if tx.send(WsEvent::Connected(n)).await.is_err() {
                    return;
                }
                let started = Instant::now();
                let mut failed = None;
                for m in &on_connect {
                    if let Err(e) = ws.send(WsMessage::text(m.clone())).await {
                        failed = Some(Ended::Closed(format!("subscribing: {e}")));
                        break;
                    }
                }
                let why = match failed {
                    Some(w) => w,
                    None => {
                        let io = (&tx, &mut stop, &mut control);
                        match session(&cfg, &mut ws, shutdown_marker, io, started).await {
                            Some(w) => w,
                            None => return,
                        }
                    }
                };
                let _ = ws.close(None).await;
                (why, started.elapsed())
            }
        };
        if up_for >= cfg.stable_after {
            backoff.reset();
        }
        let retry_in = if matches!(why, Ended::Planned(_) | Ended::Asked(_)) {
            Duration::ZERO
        } else {
            backoff.wait()
        };
        tracing::warn!(url = %cfg.url, ?why, ?retry_in, "websocket disconnected");
        if tx.send(WsEvent::Disconnected { why, retry_in }).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(retry_in) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One connection's life; `None` when told to stop (or nobody listens any more).
async fn session<S>(
    cfg: &WsConfig,
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    shutdown_marker: Option<&str>,
    (tx, stop, control): (
        &mpsc::Sender<WsEvent>,
        &mut watch::Receiver<bool>,
        &mut Option<mpsc::Receiver<Control>>,
    ),
    started: Instant,
) -> Option<Ended>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut last_data = Instant::now();
    // The ping we are waiting an answer to, if any.
    let mut ping_sent: Option<Instant> = None;
    let mut last_ping = Instant::now();
    let tick = (cfg.ping_every.min(cfg.pong_timeout).min(cfg.stale_after) / 4)
        .max(Duration::from_millis(5));
    let mut timer = tokio::time::interval(tick);
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(WsMessage::Text(t))) => {
                    last_data = Instant::now();
                    let text = t.as_str().to_string();
                    if shutdown_marker.is_some_and(|m| text.contains(m)) {
                        return Some(Ended::Planned("the venue announced a shutdown".into()));
                    }
                    if tx.send(WsEvent::Text(text, now_ns())).await.is_err() {
                        return None;
                    }
                }
                Some(Ok(WsMessage::Ping(p))) => {
                    if let Err(e) = ws.send(WsMessage::Pong(p)).await {
                        return Some(Ended::Closed(format!("answering a ping: {e}")));
                    }
                }
                Some(Ok(WsMessage::Pong(_))) => ping_sent = None,
                Some(Ok(WsMessage::Close(frame))) => {
                    return Some(Ended::Closed(format!("closed by the peer: {frame:?}")));
                }
                Some(Ok(_)) => last_data = Instant::now(),
                Some(Err(e)) => return Some(Ended::Closed(e.to_string())),
                None => return Some(Ended::Closed("the stream ended".into())),
            },
            _ = timer.tick() => {
                if ping_sent.is_some_and(|t| t.elapsed() >= cfg.pong_timeout) {
                    return Some(Ended::DeadPeer);
                }
                if last_data.elapsed() >= cfg.stale_after {
                    return Some(Ended::Stale);
                }
                if started.elapsed() >= cfg.max_age {
                    return Some(Ended::Planned(format!("renewed after {:?}", cfg.max_age)));
                }
                if ping_sent.is_none() && last_ping.elapsed() >= cfg.ping_every {
                    last_ping = Instant::now();
                    ping_sent = Some(last_ping);
                    if let Err(e) = ws.send(WsMessage::Ping(Vec::new().into())).await {
                        return Some(Ended::Closed(format!("pinging: {e}")));
                    }
                }
            }
            c = async {
                match control.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            } => match c {
                Some(Control::Send(text)) => {
                    if let Err(e) = ws.send(WsMessage::text(text)).await {
                        return Some(Ended::Closed(format!("sending: {e}")));
                    }
                }
                Some(Control::Reconnect(why)) => return Some(Ended::Asked(why)),
                // The feed dropped its sender: it asks nothing more.
                None => *control = None,
            },
            _ = stop.changed() => {
                if *stop.borrow() {
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let mut b = Backoff { next: min, min, max };
        let mut nominal = min;
        for _ in 0..8 {
            let w = b.wait();
            assert!(w >= nominal / 2 && w <= nominal, "{w:?} for {nominal:?}");
            nominal = (nominal * 2).min(max);
        }
        b.reset();
        assert!(b.wait() <= min);
    }
}
