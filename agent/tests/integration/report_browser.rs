//! `report.html` in a real browser: headless Chromium (Debian's `chromium`), driven over the
//! DevTools protocol. The page of `sma_cross` on the BTC minute series (and of a sweep and a
//! walk-forward) loads from the file with nothing fetched over the network, no console error
//! and no script exception; every chart is an SVG that laid out, holds drawn shapes, and shows
//! on the screenshot as more than a blank box.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

fn kairos(args: &[&str]) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("KAIROS_OUT")
        .output()
        .expect("run kairos");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "kairos {args:?} failed: {err}");
    err
}

/// The browser, or `None` (a failure under `KAIROS_REQUIRE_INTEROP`).
fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("KAIROS_CHROMIUM").map(PathBuf::from),
        Some(PathBuf::from("/usr/lib/chromium/chromium")),
        Some(PathBuf::from("/usr/bin/chromium")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
            "chromium is missing: run scripts/ops/setup.sh"
        );
        eprintln!("skipping: chromium is missing (scripts/ops/setup.sh installs it)");
    }
    found
}

/// What the page showed.
#[derive(Debug)]
struct Seen {
    /// Console errors, script exceptions and log errors.
    errors: Vec<String>,
    /// Requests for anything but the file itself.
    network: Vec<String>,
    /// Each figure: its id, its box on the page, its SVG's size, the drawn shapes in it.
    charts: Vec<Value>,
    /// The whole page as a screenshot.
    screenshot: resvg::tiny_skia::Pixmap,
}

/// A DevTools session over one websocket.
struct Cdp {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
    session: Option<String>,
    events: Vec<Value>,
}

impl Cdp {
    /// Sends a command and waits for its answer, keeping the events that come before it.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).await.expect("send to chromium");
        loop {
            let m = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"))
                .expect("chromium closed the connection")
                .expect("websocket error");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).expect("a JSON message");
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    /// Waits for an event named `method`.
    async fn until(&mut self, method: &str) {
        if self.events.iter().any(|e| e["method"] == method) {
            return;
        }
        loop {
            let m = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no {method} from chromium"))
                .expect("chromium closed the connection")
                .expect("websocket error");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).expect("a JSON message");
            let hit = v["method"] == method;
            self.events.push(v);
            if hit {
                return;
            }
        }
    }
}

/// Per figure: id, page box and SVG size; the data marks drawn (curves: polylines of ten
/// points or more; areas and markers: polygons; bars and cells: rectangles filled with a
/// colour other than white), each with a non-empty box; and its labels.
const PROBE: &str = r#"JSON.stringify([...document.querySelectorAll('figure.chart')].map(f => {
  const svg = f.querySelector('svg');
  let curves = 0, polygons = 0, bars = 0, text = 0;
  const drawn = el => { const b = el.getBBox(); return b.width > 0 || b.height > 0; };
  if (svg) {
    for (const el of svg.querySelectorAll('polyline'))
      if (drawn(el) && el.points.numberOfItems >= 10) curves++;
    for (const el of svg.querySelectorAll('polygon')) if (drawn(el)) polygons++;
    for (const el of svg.querySelectorAll('rect')) {
      const fill = (el.getAttribute('fill') || '').toUpperCase();
      if (drawn(el) && fill !== '#FFFFFF' && fill !== 'NONE' && fill !== '') bars++;
    }
    for (const el of svg.querySelectorAll('text')) if (drawn(el) && el.textContent.trim()) text++;
  }
  const s = svg ? svg.getBoundingClientRect() : {x: 0, y: 0, width: 0, height: 0};
  return { id: f.id, x: s.x + scrollX, y: s.y + scrollY, w: s.width, h: s.height,
           curves, polygons, bars, text };
}))"#;

async fn browse(browser: &Path, page: &Path, profile: &Path) -> Seen {
    let mut child = tokio::process::Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--remote-debugging-port=0",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromium");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = lines.next_line().await.expect("chromium's stderr") {
            if let Some(u) = l.split("DevTools listening on ").nth(1) {
                return u.trim().to_string();
            }
        }
        panic!("chromium exited before listening");
    })
    .await
    .expect("chromium did not start listening");
    // Keep reading stderr so the browser never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let (ws, _) =
        tokio_tungstenite::connect_async(url.as_str()).await.expect("connect to chromium");
    let mut cdp = Cdp { ws, next: 0, session: None, events: Vec::new() };
    let target = cdp.call("Target.createTarget", json!({ "url": "about:blank" })).await;
    let attached = cdp
        .call("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true }))
        .await;
    cdp.session = attached["sessionId"].as_str().map(str::to_string);
    for domain in ["Runtime.enable", "Log.enable", "Network.enable", "Page.enable"] {
        cdp.call(domain, json!({})).await;
    }
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
    )
    .await;
    cdp.events.clear();
    let file = format!("file://{}", page.canonicalize().unwrap().display());
    cdp.call("Page.navigate", json!({ "url": file })).await;
    cdp.until("Page.loadEventFired").await;
    let probe =
        cdp.call("Runtime.evaluate", json!({ "expression": PROBE, "returnByValue": true })).await;
    let charts: Vec<Value> =
        serde_json::from_str(probe["result"]["value"].as_str().expect("the probe's answer"))
            .unwrap();
    let height = cdp
        .call(
            "Runtime.evaluate",
            json!({ "expression": "document.documentElement.scrollHeight", "returnByValue": true }),
        )
        .await["result"]["value"]
        .as_f64()
        .unwrap();
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1200, "height": height.ceil() as u64, "deviceScaleFactor": 1, "mobile": false }),
    )
    .await;
    let shot = cdp.call("Page.captureScreenshot", json!({ "format": "png" })).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("base64");
    let screenshot = resvg::tiny_skia::Pixmap::decode_png(&png).expect("a PNG screenshot");
    let _ = cdp.call("Browser.close", json!({})).await;
    let _ = child.kill().await;

    let mut errors = Vec::new();
    let mut network = Vec::new();
    for e in &cdp.events {
        let p = &e["params"];
        match e["method"].as_str().unwrap_or("") {
            "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "warning" => {
                errors.push(format!("console.{}: {}", p["type"], p["args"]))
            }
            "Runtime.exceptionThrown" => {
                errors.push(format!("exception: {}", p["exceptionDetails"]))
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                errors.push(format!("log: {}", p["entry"]["text"]))
            }
            "Network.requestWillBeSent" => {
                let u = p["request"]["url"].as_str().unwrap_or("").to_string();
                if u != file {
                    network.push(u);
                }
            }
            _ => {}
        }
    }
    Seen { errors, network, charts, screenshot }
}

/// The page's checks: loaded alone and clean, and each of `charts` a chart that drew at least
/// the data marks named (`curves`, `polygons`, `bars`: at least this many), and shows on the
/// screenshot as more than a blank box.
fn check(seen: &Seen, charts: &[(&str, &[(&str, u64)])], what: &str) {
    assert!(seen.errors.is_empty(), "{what}: {:?}", seen.errors);
    assert!(seen.network.is_empty(), "{what} fetched {:?}", seen.network);
    let found: Vec<&str> = seen.charts.iter().filter_map(|c| c["id"].as_str()).collect();
    for (id, marks) in charts {
        let Some(c) = seen.charts.iter().find(|c| c["id"] == format!("chart-{id}")) else {
            panic!("{what}: no chart {id} (charts: {found:?})");
        };
        let (w, h) = (c["w"].as_f64().unwrap(), c["h"].as_f64().unwrap());
        assert!(w > 500.0 && h > 100.0, "{what}: {id} laid out at {w}x{h}");
        for (kind, least) in *marks {
            let n = c[*kind].as_u64().unwrap();
            assert!(n >= *least, "{what}: {id} drew {n} {kind}, expected {least} or more: {c}");
        }
        assert!(c["text"].as_u64().unwrap() >= 3, "{what}: {id} has no labels: {c}");
        // On the screenshot: more than a blank box, in several colours.
        let (x0, y0) = (c["x"].as_f64().unwrap() as u32, c["y"].as_f64().unwrap() as u32);
        let mut inked = 0usize;
        let mut colours = std::collections::HashSet::new();
        let img = &seen.screenshot;
        for y in y0..(y0 + h as u32).min(img.height()) {
            for x in x0..(x0 + w as u32).min(img.width()) {
                let p = img.pixel(x, y).unwrap();
                let rgb = (p.red(), p.green(), p.blue());
                if rgb != (255, 255, 255) {
                    inked += 1;
                }
                colours.insert((rgb.0 >> 4, rgb.1 >> 4, rgb.2 >> 4));
            }
        }
        let area = (w * h) as usize;
        assert!(
            inked * 100 > area,
            "{what}: {id} is nearly blank on screen ({inked} of {area} pixels)"
        );
        assert!(colours.len() >= 4, "{what}: {id} shows {} colours", colours.len());
    }
}

/// The charts of a run's page and the marks each must hold.
const RUN_CHARTS: [(&str, &[(&str, u64)]); 5] = [
    ("price", &[("curves", 1), ("polygons", 10)]),
    ("equity", &[("curves", 2)]),
    ("drawdown", &[("polygons", 1)]),
    ("monthly", &[("bars", 1)]),
    ("trades", &[("bars", 5)]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_shared_data, ignore = "needs ../shared/data")]
async fn the_btc_report_opens_offline_and_every_chart_draws() {
    let Some(browser) = chromium() else { return };
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/bars/btc-perp-20211231-20220201_1m.csv");
    if !data.is_file() {
        assert!(std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(), "{} missing", data.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bt");
    let d = data.to_str().unwrap();
    let o = out.to_str().unwrap();
    kairos(&[
        "backtest",
        "--data",
        d,
        "--strategy",
        "sma_cross",
        "--out",
        o,
        "--monte-carlo",
        "200",
    ]);
    let html = out.join("report.html");
    let size = std::fs::metadata(&html).unwrap().len();
    assert!(size < 2 << 20, "report.html is {size} bytes");
    let text = std::fs::read_to_string(&html).unwrap();
    for absent in ["<script", "<link", "src=", "href=", "url(", "@import"] {
        assert!(!text.contains(absent), "report.html holds `{absent}`");
    }
    let seen = browse(&browser, &html, &tmp.path().join("profile")).await;
    check(&seen, &RUN_CHARTS, "backtest report");
    let mc: [(&str, &[(&str, u64)]); 2] =
        [("mc-paths", &[("polygons", 2), ("curves", 2)]), ("mc-bands", &[("bars", 4)])];
    check(&seen, &mc, "backtest report, Monte Carlo");
    assert!(text.contains("sharpe") && text.contains("max_drawdown_pct"), "the statistics table");

    // A sweep's page: its heatmap; a walk-forward's: the stitched run's charts.
    let sweep = |out: &Path, extra: &[&str]| {
        let mut args = vec!["sweep", "--data", d, "--strategy", "sma_cross"];
        args.extend(["--grid", "fast=2..40:4", "--grid", "slow=10..80:10", "--where", "fast<slow"]);
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        kairos(&args);
    };
    let sw = tmp.path().join("sw");
    sweep(&sw, &[]);
    let seen = browse(&browser, &sw.join("report.html"), &tmp.path().join("profile2")).await;
    check(&seen, &[("heatmap", &[("bars", 60)])], "sweep report");
    let wf = tmp.path().join("wf");
    sweep(&wf, &["--walk-forward", "train=10000,test=10000"]);
    let seen = browse(&browser, &wf.join("report.html"), &tmp.path().join("profile3")).await;
    check(&seen, &RUN_CHARTS, "walk-forward report");
}

/// `--png`: every chart of the page as a PNG that decodes to the chart's size and is not
/// blank.
#[test]
fn png_charts_are_written_and_not_blank() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bt");
    kairos(&[
        "backtest",
        "--data",
        "sim:3:3000",
        "--strategy",
        "sma_cross",
        "-p",
        "fast=5",
        "-p",
        "slow=20",
        "--out",
        out.to_str().unwrap(),
        "--png",
        "--monte-carlo",
        "50",
    ]);
    for id in ["price", "equity", "drawdown", "monthly", "trades", "mc-paths", "mc-bands"] {
        let p = out.join("charts").join(format!("{id}.png"));
        let img = resvg::tiny_skia::Pixmap::load_png(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(img.width(), 1100, "{id}");
        let inked = img
            .pixels()
            .iter()
            .filter(|p| (p.red(), p.green(), p.blue()) != (255, 255, 255))
            .count();
        assert!(inked * 100 > img.pixels().len(), "{id}.png is blank");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("simulated data"), "the page says the data is simulated");
    // The folder may come from the config file; without any folder --png is refused.
    let cfg = tmp.path().join("bt.toml");
    std::fs::write(&cfg, "data = \"sim:4:500\"\nstrategy = \"sma_cross\"\nout = \"from-file\"\n")
        .unwrap();
    kairos(&["backtest", "--config", cfg.to_str().unwrap(), "--png"]);
    assert!(tmp.path().join("from-file/charts/equity.png").is_file());
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["backtest", "--data", "sim:4:500", "--strategy", "sma_cross", "--png"])
        .env_remove("KAIROS_OUT")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--png writes into the output folder"));
    let mc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("montecarlo.json")).unwrap())
            .unwrap();
    assert_eq!(mc["methods"].as_array().unwrap().len(), 3);
    assert_eq!(mc["settings"]["runs"], 50);
    assert_eq!(mc["path"].as_array().unwrap().len(), 400);
}
