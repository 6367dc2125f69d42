//! `kairos top`: a terminal dashboard of a running agent, drawn with ratatui from the agent's
//! `/status` endpoint (the one `kairos status` prints once): the agent and its trading state,
//! money, feeds and their lag, books, positions, orders and rejections by rule, and the recent
//! order events. It redraws as the status changes, keeps drawing (and says so) while the agent
//! does not answer, and leaves the terminal as it found it on `q`, Esc or Ctrl-C.

use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

use crate::now_ms;
use crate::ops::Snapshot;

/// What the dashboard shows.
#[derive(Debug, Default)]
pub struct View {
    /// The agent's base URL.
    pub url: String,
    /// The last status read.
    pub status: Option<Snapshot>,
    /// Why the last read failed, if it did.
    pub error: Option<String>,
    /// Feed messages per second, between the last two reads.
    pub rate: Option<f64>,
    /// When the last status was read.
    pub updated: Option<Instant>,
}

impl View {
    /// A view of the agent at `url`, before the first read.
    pub fn new(url: &str) -> Self {
        Self { url: url.to_string(), ..Self::default() }
    }

    /// Takes a read: a status, or why there is none.
    pub fn update(&mut self, read: Result<Snapshot, String>, at: Instant) {
        match read {
            Ok(s) => {
                if let (Some(t), Some(last)) = (self.updated, &self.status) {
                    let dt = at.duration_since(t).as_secs_f64();
                    if dt > 0.0 {
                        self.rate = Some(s.messages.saturating_sub(last.messages) as f64 / dt);
                    }
                }
                self.status = Some(s);
                self.error = None;
                self.updated = Some(at);
            }
            Err(e) => self.error = Some(e),
        }
    }
}

fn state_style(state: &str) -> Style {
    match state {
        "ACTIVE" => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        "REDUCING" => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        _ => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

fn money(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let neg = v < 0.0;
    let text = format!("{:.2}", v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{frac}", if neg { "-" } else { "" })
}

fn pnl_span(v: f64) -> Span<'static> {
    let style = if v > 0.0 {
        Style::new().fg(Color::Green)
    } else if v < 0.0 {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    Span::styled(money(v), style)
}

/// A lag: milliseconds in seconds while small, then whole seconds, hours, days (a replayed
/// recording lags by its age).
fn lag(s: f64) -> String {
    match s {
        s if !s.is_finite() => "-".into(),
        s if s.abs() < 10.0 => format!("{s:.3}"),
        s if s.abs() < 3600.0 => format!("{s:.0} s"),
        s if s.abs() < 86_400.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.0} d", s / 86_400.0),
    }
}

fn price(p: Option<f64>) -> String {
    p.filter(|p| p.is_finite()).map_or("-".into(), |p| format!("{p:.2}"))
}

/// Draws the dashboard into `frame`.
pub fn draw(frame: &mut Frame<'_>, view: &View) {
    let (n, rules) = view
        .status
        .as_ref()
        .map_or((1, 1), |s| (s.instruments.len().max(1), s.rejections.len().max(1)));
    let feeds_h = (n + 3).min(14) as u16;
    let middle_h = (n + 3).max(rules + 4).min(14) as u16;
    let [head, feeds, middle, recent, foot] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Length(feeds_h),
        Constraint::Length(middle_h),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let Some(s) = &view.status else {
        let text = match &view.error {
            Some(e) => format!("waiting for the agent at {}: {e}", view.url),
            None => format!("reading {}/status ...", view.url),
        };
        frame.render_widget(
            Paragraph::new(text).block(Block::bordered().title(" kairos top ")),
            head.union(feeds),
        );
        footer(frame, foot, view);
        return;
    };
    header(frame, head, s, view);
    feeds_table(frame, feeds, s);
    let [positions, orders] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(middle);
    positions_table(frame, positions, s);
    orders_panel(frame, orders, s);
    recent_list(frame, recent, s);
    footer(frame, foot, view);
}

fn header(frame: &mut Frame<'_>, area: Rect, s: &Snapshot, view: &View) {
    let up = (now_ms() - s.started_ms).max(0) / 1000;
    let ready = match s.ready() {
        Ok(()) => Span::styled("ready", Style::new().fg(Color::Green)),
        Err(why) => Span::styled(format!("not ready: {why}"), Style::new().fg(Color::Yellow)),
    };
    let mut state = vec![
        Span::raw("trading "),
        Span::styled(s.trading_state.clone(), state_style(&s.trading_state)),
    ];
    if let Some(r) = &s.risk_reason {
        state.push(Span::raw(format!(" ({r})")));
    }
    state.push(Span::raw(format!(" · {} transitions · ", s.risk_transitions)));
    state.push(ready);
    if s.stopping {
        state.push(Span::styled(" · STOPPING", Style::new().fg(Color::Yellow)));
    }
    match s.user_stream {
        Some(true) => state.push(Span::raw(" · user stream up")),
        Some(false) => state
            .push(Span::styled(" · user stream DOWN (polling)", Style::new().fg(Color::Yellow))),
        None => {}
    }
    let lines = vec![
        Line::from(vec![
            Span::styled(s.strategy.clone(), Style::new().bold()),
            Span::raw(format!(
                " on {} · pid {} · up {}h{:02}m{:02}s · {}",
                s.venue,
                s.pid,
                up / 3600,
                up / 60 % 60,
                up % 60,
                if s.reconciled { "reconciled" } else { "NOT reconciled" }
            )),
        ]),
        Line::from(state),
        Line::from(vec![
            Span::raw(format!("equity {} · cash {} · realised ", money(s.equity), money(s.cash))),
            pnl_span(s.realised_pnl),
            Span::raw(" · unrealised "),
            pnl_span(s.unrealised_pnl),
        ]),
    ];
    let title = if view.error.is_some() { " kairos top · NOT ANSWERING " } else { " kairos top " };
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), area);
}

fn feeds_table(frame: &mut Frame<'_>, area: Rect, s: &Snapshot) {
    let header = Row::new([
        "symbol",
        "venue",
        "book",
        "events",
        "lag s",
        "resyncs",
        "bid",
        "ask",
        "spread bps",
    ])
    .style(Style::new().bold());
    let rows = s.instruments.iter().map(|i| {
        let spread = match (i.bid, i.ask) {
            (Some(b), Some(a)) if b > 0.0 && a >= b => {
                format!("{:.3}", (a - b) / ((a + b) / 2.0) * 1e4)
            }
            _ => "-".into(),
        };
        let book = if i.synced {
            Cell::from("synced").style(Style::new().fg(Color::Green))
        } else {
            Cell::from("NOT SYNCED").style(Style::new().fg(Color::Red).bold())
        };
        Row::new(vec![
            Cell::from(i.symbol.clone()),
            Cell::from(i.venue.clone()),
            book,
            Cell::from(i.events.to_string()),
            Cell::from(lag(i.lag_s)),
            Cell::from(i.resyncs.to_string()),
            Cell::from(price(i.bid)),
            Cell::from(price(i.ask)),
            Cell::from(spread),
        ])
    });
    let widths = [
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(11),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(10),
    ];
    let title = format!(" Feeds · {} messages · {} malformed ", s.messages, s.malformed);
    frame.render_widget(
        Table::new(rows, widths).header(header).block(Block::bordered().title(title)),
        area,
    );
}

fn positions_table(frame: &mut Frame<'_>, area: Rect, s: &Snapshot) {
    let header = Row::new(["symbol", "position", "avg price", "mid", "unrealised"])
        .style(Style::new().bold());
    let rows = s.instruments.iter().map(|i| {
        let mid = match (i.bid, i.ask) {
            (Some(b), Some(a)) => Some((a + b) / 2.0),
            _ => None,
        };
        let upnl = match mid {
            Some(m) if i.position != 0.0 => pnl_span((m - i.avg_price) * i.position),
            _ => Span::raw("-"),
        };
        Row::new(vec![
            Cell::from(i.symbol.clone()),
            Cell::from(format!("{}", i.position)),
            Cell::from(if i.position == 0.0 { "-".into() } else { format!("{:.2}", i.avg_price) }),
            Cell::from(price(mid)),
            Cell::from(upnl),
        ])
    });
    let widths = [
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(12),
    ];
    frame.render_widget(
        Table::new(rows, widths).header(header).block(Block::bordered().title(" Positions ")),
        area,
    );
}

fn orders_panel(frame: &mut Frame<'_>, area: Rect, s: &Snapshot) {
    let mut lines = vec![
        Line::from(format!(
            "{} sent · {} fills · {} cancelled · {} working",
            s.orders, s.fills, s.cancelled, s.working
        )),
        Line::from("rejected:".bold()),
    ];
    if s.rejections.is_empty() {
        lines.push(Line::from("  none"));
    }
    for (rule, n) in &s.rejections {
        lines.push(Line::from(format!("  {rule:<20} {n}")));
    }
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Orders ")), area);
}

fn recent_list(frame: &mut Frame<'_>, area: Rect, s: &Snapshot) {
    let room = area.height.saturating_sub(3) as usize;
    let header = Row::new(["time (UTC)", "order", "symbol", "event"]).style(Style::new().bold());
    let rows = s.recent.iter().rev().take(room).map(|r| {
        let t = chrono::DateTime::from_timestamp_millis(r.ts_ms)
            .map_or("-".into(), |t| t.format("%H:%M:%S%.3f").to_string());
        let style = if r.event.starts_with("rejected") {
            Style::new().fg(Color::Red)
        } else if r.event.starts_with("filled") || r.event.starts_with("fill") {
            Style::new().fg(Color::Green)
        } else {
            Style::new()
        };
        Row::new(vec![
            Cell::from(t),
            Cell::from(r.order.to_string()),
            Cell::from(r.symbol.clone()),
            Cell::from(r.event.clone()).style(style),
        ])
    });
    let widths = [
        Constraint::Length(13),
        Constraint::Length(8),
        Constraint::Length(12),
        Constraint::Min(20),
    ];
    frame.render_widget(
        Table::new(rows, widths).header(header).block(Block::bordered().title(" Recent orders ")),
        area,
    );
}

fn footer(frame: &mut Frame<'_>, area: Rect, view: &View) {
    let mut spans = vec![Span::styled(" q ", Style::new().reversed()), Span::raw(" quit  ")];
    spans.push(Span::raw(format!("{}  ", view.url)));
    if let Some(r) = view.rate {
        spans.push(Span::raw(format!("{r:.0} msg/s  ")));
    }
    if let Some(e) = &view.error {
        spans.push(Span::styled(format!("not answering: {e}"), Style::new().fg(Color::Red)));
    } else if let Some(t) = view.updated {
        spans.push(Span::raw(format!("updated {:.1} s ago", t.elapsed().as_secs_f64())));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Reads `/status` every `every` on a thread of its own (the dashboard stays responsive while
/// a read hangs) until the receiver is dropped.
fn reader(url: String, every: Duration) -> mpsc::Receiver<Result<Snapshot, String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            let _ = tx.send(Err("cannot start a runtime".into()));
            return;
        };
        let client = reqwest_feeds::Client::new();
        loop {
            let read = rt.block_on(async {
                let r = client
                    .get(format!("{url}/status"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let r = r.error_for_status().map_err(|e| e.to_string())?;
                let body = r.text().await.map_err(|e| e.to_string())?;
                serde_json::from_str::<Snapshot>(&body)
                    .map_err(|e| format!("not an agent's status: {e}"))
            });
            if tx.send(read).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    });
    rx
}

/// Runs the dashboard on the terminal until the user quits.
pub fn run(url: &str, every: Duration) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!("kairos top draws on a terminal; `kairos status` prints the same once");
    }
    let reads = reader(url.to_string(), every);
    let mut terminal = ratatui::try_init().context("cannot take over the terminal")?;
    let mut view = View::new(url);
    let result = (|| -> Result<()> {
        let mut dirty = true;
        let mut last_draw = Instant::now();
        loop {
            while let Ok(read) = reads.try_recv() {
                view.update(read, Instant::now());
                dirty = true;
            }
            // The footer's age counts on without reads.
            if dirty || last_draw.elapsed() >= Duration::from_secs(1) {
                terminal.draw(|f| draw(f, &view))?;
                dirty = false;
                last_draw = Instant::now();
            }
            if event::poll(Duration::from_millis(100))? {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => {
                        let ctrl_c = k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL);
                        if matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                            return Ok(());
                        }
                    }
                    Event::Resize(..) => dirty = true,
                    _ => {}
                }
            }
        }
    })();
    ratatui::try_restore().context("cannot give the terminal back")?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{InstrumentView, RecentOrder};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(view: &View) -> String {
        let mut t = Terminal::new(TestBackend::new(140, 40)).expect("terminal");
        t.draw(|f| draw(f, view)).expect("draw");
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn it_draws_the_status_and_says_when_the_agent_does_not_answer() {
        let mut s = Snapshot {
            venue: "binance-spot".into(),
            strategy: "book_imbalance".into(),
            pid: 4242,
            started_ms: now_ms() - 3_723_000,
            reconciled: true,
            messages: 131_762,
            trading_state: "REDUCING".into(),
            risk_reason: Some("daily loss 2.1% >= 2%".into()),
            equity: 1_234_567.891,
            cash: 99_000.0,
            realised_pnl: -12.5,
            orders: 7,
            fills: 5,
            working: 1,
            user_stream: Some(false),
            ..Snapshot::default()
        };
        s.rejections.insert("max_position".into(), 3);
        s.instruments.push(InstrumentView {
            symbol: "BTCUSDT".into(),
            venue: "binance".into(),
            synced: true,
            events: 98_765,
            lag_s: 0.012,
            bid: Some(61_700.0),
            ask: Some(61_700.5),
            position: 0.002,
            avg_price: 61_000.0,
            ..InstrumentView::default()
        });
        s.recent.push_back(RecentOrder {
            ts_ms: 1_723_075_200_123,
            order: 9,
            symbol: "BTCUSDT".into(),
            event: "rejected by max_position: over 0.002".into(),
        });
        let mut view = View::new("http://127.0.0.1:9184");
        let t0 = Instant::now();
        view.update(Ok(s.clone()), t0);
        s.messages += 1000;
        view.update(Ok(s), t0 + Duration::from_secs(2));
        let text = screen(&view);
        for want in [
            "book_imbalance on binance-spot · pid 4242 · up 1h02m03s · reconciled",
            "trading REDUCING (daily loss 2.1% >= 2%)",
            "user stream DOWN (polling)",
            "equity 1,234,567.89",
            "realised -12.50",
            "BTCUSDT",
            "98765",
            "61700.00",
            "0.081", // spread in bps
            "1.40",  // unrealised: (61,700.25 - 61,000) x 0.002
            "max_position",
            "00:00:00.123",
            "rejected by max_position",
            "500 msg/s",
        ] {
            assert!(text.contains(want), "no `{want}` in\n{text}");
        }

        view.update(Err("connection refused".into()), Instant::now());
        let text = screen(&view);
        assert!(text.contains("NOT ANSWERING") && text.contains("connection refused"), "{text}");
        assert!(text.contains("BTCUSDT"), "the last status stays on screen:\n{text}");

        let fresh = {
            let mut v = View::new("http://127.0.0.1:1");
            v.update(Err("connection refused".into()), Instant::now());
            v
        };
        assert!(screen(&fresh).contains("waiting for the agent at http://127.0.0.1:1"));
    }

    #[test]
    fn lags_read_in_their_unit() {
        assert_eq!(lag(0.0123), "0.012");
        assert_eq!(lag(42.4), "42 s");
        assert_eq!(lag(7200.0), "2.0 h");
        assert_eq!(lag(73_143_457.0), "847 d");
        assert_eq!(lag(f64::NAN), "-");
    }

    #[test]
    fn money_is_grouped_and_nan_is_a_dash() {
        assert_eq!(money(0.0), "0.00");
        assert_eq!(money(999.999), "1,000.00");
        assert_eq!(money(-1_234_567.0), "-1,234,567.00");
        assert_eq!(money(f64::NAN), "-");
    }
}
