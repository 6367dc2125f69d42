//! The websocket connection against real websocket servers on 127.0.0.1 that misbehave: one
//! that drops the connection, one whose data freezes while it still answers pings, one that
//! stops answering pings, one that announces a shutdown, and no server at all.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kairos_feeds::ws::{self, Ended, WsConfig, WsEvent};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Copy)]
enum Server {
    /// Send three messages, then close.
    DropAfterThree,
    /// Send one message, then keep reading (answering pings) but send nothing more.
    Freeze,
    /// Send one message, then neither read nor write: pings go unanswered.
    Deaf,
    /// Send a message, then Binance's shutdown notice.
    Shutdown,
}

async fn serve(kind: Server) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await else { return };
                match kind {
                    Server::DropAfterThree => {
                        for i in 0..3 {
                            let _ = ws.send(Message::text(format!("m{i}"))).await;
                        }
                        let _ = ws.close(None).await;
                    }
                    Server::Freeze => {
                        let _ = ws.send(Message::text("only")).await;
                        // Reading answers pings; nothing is sent.
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                    Server::Deaf => {
                        let _ = ws.send(Message::text("only")).await;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Server::Shutdown => {
                        let _ = ws.send(Message::text("hello")).await;
                        let _ = ws
                            .send(Message::text(r#"{"event":{"e":"serverShutdown","E":1}}"#))
                            .await;
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                }
            });
        }
    });
    url
}

fn config(url: String) -> WsConfig {
    WsConfig {
        ping_every: Duration::from_millis(50),
        pong_timeout: Duration::from_millis(200),
        stale_after: Duration::from_millis(400),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(80),
        stable_after: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(2),
        ..WsConfig::new(url)
    }
}

/// Runs the connection until `n` events arrived; returns them.
async fn events(cfg: WsConfig, n: usize) -> Vec<WsEvent> {
    let (tx, mut rx) = mpsc::channel(64);
    let (stop_tx, stop) = watch::channel(false);
    let link = ws::Link { tx, stop, control: None };
    let task = tokio::spawn(ws::run(cfg, vec!["subscribe".into()], Some("serverShutdown"), link));
    let mut out = Vec::new();
    while out.len() < n {
        out.push(rx.recv().await.expect("the connection task ended"));
    }
    stop_tx.send(true).unwrap();
    drop(rx);
    task.await.unwrap();
    out
}

fn texts(ev: &[WsEvent]) -> Vec<&str> {
    ev.iter()
        .filter_map(|e| if let WsEvent::Text(t, _) = e { Some(t.as_str()) } else { None })
        .collect()
}

#[tokio::test]
async fn a_dropped_connection_is_reopened() {
    let ev = events(config(serve(Server::DropAfterThree).await), 10).await;
    assert_eq!(ev[0], WsEvent::Connected(1));
    assert_eq!(texts(&ev[..4]), ["m0", "m1", "m2"]);
    assert!(matches!(&ev[4], WsEvent::Disconnected { why: Ended::Closed(_), .. }), "{ev:?}");
    assert_eq!(ev[5], WsEvent::Connected(2));
    // The backoff grows from one drop to the next (the connections never stayed up).
    let waits: Vec<Duration> = ev
        .iter()
        .filter_map(|e| {
            if let WsEvent::Disconnected { retry_in, .. } = e { Some(*retry_in) } else { None }
        })
        .collect();
    assert!(waits.len() >= 2 && waits.iter().all(|w| *w <= Duration::from_millis(80)), "{waits:?}");
}

#[tokio::test]
async fn frozen_data_is_stale_though_pings_are_answered() {
    // Pings get a generous answer time, so only the missing data can end it.
    let cfg =
        WsConfig { pong_timeout: Duration::from_secs(5), ..config(serve(Server::Freeze).await) };
    let ev = events(cfg, 3).await;
    assert_eq!(texts(&ev), ["only"]);
    assert!(matches!(ev[2], WsEvent::Disconnected { why: Ended::Stale, .. }), "{ev:?}");
}

#[tokio::test]
async fn unanswered_pings_are_a_dead_peer() {
    let cfg =
        WsConfig { stale_after: Duration::from_secs(30), ..config(serve(Server::Deaf).await) };
    let ev = events(cfg, 3).await;
    assert!(matches!(ev[2], WsEvent::Disconnected { why: Ended::DeadPeer, .. }), "{ev:?}");
}

#[tokio::test]
async fn a_shutdown_notice_is_a_planned_reconnect_at_once() {
    let ev = events(config(serve(Server::Shutdown).await), 4).await;
    assert_eq!(texts(&ev), ["hello"], "the notice itself is not data");
    assert!(
        matches!(&ev[2], WsEvent::Disconnected { why: Ended::Planned(_), retry_in } if retry_in.is_zero()),
        "{ev:?}"
    );
    assert_eq!(ev[3], WsEvent::Connected(2));
}

#[tokio::test]
async fn no_server_is_a_connect_error_with_growing_waits() {
    // A port that was just free.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let ev = events(config(format!("ws://127.0.0.1:{port}")), 4).await;
    for e in &ev {
        assert!(matches!(e, WsEvent::Disconnected { why: Ended::Connect(_), .. }), "{e:?}");
    }
}
