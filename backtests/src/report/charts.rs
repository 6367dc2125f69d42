//! The report's charts, drawn server-side as SVG with plotters: price with entries and exits,
//! equity against buy-and-hold, drawdown, monthly returns, the trade return histogram, and a
//! sweep's metric over two parameters.
//!
//! Long series are reduced to what a pixel column can show (the first, lowest, highest and
//! last point of each column, in time order), so a chart of a million bars stays a few tens
//! of kilobytes and looks the same as one drawn from every point.

use chrono::{DateTime, Datelike, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;

use kairos_strategies::{ClosedTrade, Timestamp};

use crate::data::BarSeries;
use crate::engine::BacktestResult;
use crate::{Error, Result};

/// Width of every chart, in pixels (the page scales them down on narrow screens).
pub const WIDTH: u32 = 1100;

/// Trades whose entry and exit are marked on the price chart, at the most (the rest are in
/// trades.csv; the caption says when some were left off).
pub const MAX_MARKED_TRADES: usize = 4000;

/// One chart: an id for the page and the tests, a title, and the SVG.
#[derive(Debug, Clone)]
pub struct Chart {
    /// `price`, `equity`, `drawdown`, `monthly`, `trades`, `heatmap` (with a suffix where
    /// there are several).
    pub id: String,
    /// The caption.
    pub title: String,
    /// A note under it (what was left off, why it is empty).
    pub note: Option<String>,
    /// The SVG document.
    pub svg: String,
}

const BLUE: RGBColor = RGBColor(31, 119, 180);
const GREY: RGBColor = RGBColor(127, 127, 127);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);
const INK: RGBColor = RGBColor(40, 40, 40);
const GRID: RGBColor = RGBColor(225, 225, 225);
const FONT: &str = "sans-serif";

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn chart_error(id: &str) -> impl Fn(String) -> Error + '_ {
    move |reason| Error::Chart { chart: id.to_string(), reason }
}

/// Draws into a fresh SVG of `WIDTH × height`.
fn svg(
    id: &str,
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> Result<(), String>,
) -> Result<String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(e).map_err(chart_error(id))?;
        draw(&root).map_err(chart_error(id))?;
        root.present().map_err(e).map_err(chart_error(id))?;
    }
    Ok(s)
}

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

fn time(t: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(t.0)
}

/// Labels for a time axis spanning `span` nanoseconds.
fn time_label(span: i64) -> impl Fn(&DateTime<Utc>) -> String {
    move |d: &DateTime<Utc>| {
        if span > 400 * 86_400 * 1_000_000_000 {
            d.format("%Y-%m").to_string()
        } else if span > 3 * 86_400 * 1_000_000_000 {
            d.format("%Y-%m-%d").to_string()
        } else {
            d.format("%m-%d %H:%M").to_string()
        }
    }
}

/// The points of a curve a chart `WIDTH` pixels wide can show: per pixel column the first,
/// lowest, highest and last point, in time order; non-finite values are left out.
pub fn decimate(
    points: impl Iterator<Item = (Timestamp, f64)>,
    t0: Timestamp,
    t1: Timestamp,
) -> Vec<(Timestamp, f64)> {
    let span = (t1.0 - t0.0).max(1) as f64;
    let columns = f64::from(WIDTH);
    let mut out = Vec::new();
    // The column being filled: (column, first, low, high, last), each with its order.
    let mut cur: Option<(i64, [(Timestamp, f64); 4])> = None;
    let flush = |out: &mut Vec<(Timestamp, f64)>, pts: [(Timestamp, f64); 4]| {
        let mut p = pts.to_vec();
        p.sort_by_key(|(t, _)| *t);
        p.dedup_by_key(|(t, _)| *t);
        out.extend(p);
    };
    for (t, v) in points.filter(|(_, v)| v.is_finite()) {
        let col = ((t.0 - t0.0) as f64 / span * columns) as i64;
        match &mut cur {
            Some((c, pts)) if *c == col => {
                if v < pts[1].1 {
                    pts[1] = (t, v);
                }
                if v > pts[2].1 {
                    pts[2] = (t, v);
                }
                pts[3] = (t, v);
            }
            _ => {
                if let Some((_, pts)) = cur.take() {
                    flush(&mut out, pts);
                }
                cur = Some((col, [(t, v); 4]));
            }
        }
    }
    if let Some((_, pts)) = cur {
        flush(&mut out, pts);
    }
    out
}

/// `lo..hi` widened by a margin, and never empty.
fn pad(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let d = (hi - lo).abs();
    let m = if d > 0.0 { d * 0.05 } else { lo.abs().max(1.0) * 0.01 };
    (lo - m, hi + m)
}

fn bounds(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)))
}

/// The grid lines and labels every chart with a grid shares.
fn house_grid<
    'm,
    'a,
    'b,
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
    DB: DrawingBackend,
>(
    m: &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB> {
    m.light_line_style(GRID.mix(0.5)).bold_line_style(GRID).label_style((FONT, 12))
}

/// A time-axis chart: the mesh drawn, ready for series.
macro_rules! time_chart {
    ($root:expr, $caption:expr, $t0:expr, $t1:expr, $lo:expr, $hi:expr, $yfmt:expr, $ydesc:expr) => {{
        let (t0, t1): (Timestamp, Timestamp) = ($t0, $t1);
        let t1 = if t1 > t0 { t1 } else { Timestamp(t0.0 + 1) };
        let (lo, hi) = pad($lo, $hi);
        let mut chart = ChartBuilder::on($root)
            .margin(12)
            .caption($caption, (FONT, 17))
            .x_label_area_size(32)
            .y_label_area_size(72)
            .build_cartesian_2d(time(t0)..time(t1), lo..hi)
            .map_err(e)?;
        let label = time_label(t1.0 - t0.0);
        house_grid(&mut chart.configure_mesh())
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&label)
            .y_label_formatter($yfmt)
            .y_desc($ydesc)
            .draw()
            .map_err(e)?;
        chart
    }};
}

/// A labelled line of (time, value) points on a [`time_chart!`].
macro_rules! time_line {
    ($chart:expr, $pts:expr, $color:expr, $width:expr, $label:expr) => {
        $chart
            .draw_series(LineSeries::new(
                $pts.iter().map(|&(t, v)| (time(t), v)),
                $color.stroke_width($width),
            ))
            .map_err(e)?
            .label($label)
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], $color.stroke_width($width))
            })
    };
}

/// Close prices of `series` with each marked trade's entry (▲ long, ▼ short) and exit (✕).
pub fn price(series: &BarSeries, trades: &[&ClosedTrade], id: String) -> Result<Chart> {
    let bars = &series.bars;
    let (t0, t1) = match (bars.first(), bars.last()) {
        (Some(a), Some(b)) => (a.ts, b.ts),
        _ => (Timestamp(0), Timestamp(1)),
    };
    let line = decimate(bars.iter().map(|b| (b.ts, b.close)), t0, t1);
    let (lo, hi) = bounds(line.iter().map(|p| p.1));
    let marked = &trades[..trades.len().min(MAX_MARKED_TRADES)];
    // Smaller marks where there are many, so the price stays readable under them.
    let r = if marked.len() > 300 { 3 } else { 5 };
    let title = format!("{}: close, entries and exits", series.instrument.symbol);
    let svg = svg(&id, 380, |root| {
        let fmt = |y: &f64| format_axis(*y);
        let mut chart = time_chart!(root, &title, t0, t1, lo, hi, &fmt, "price");
        time_line!(chart, line, INK, 1, "close");
        let longs = marked.iter().filter(|t| t.size > 0.0);
        chart
            .draw_series(longs.map(|t| {
                TriangleMarker::new((time(t.entry_time), t.entry_price), r, GREEN.filled())
            }))
            .map_err(e)?
            .label("long entry")
            .legend(|(x, y)| TriangleMarker::new((x + 9, y), 5, GREEN.filled()));
        let shorts = marked.iter().filter(|t| t.size < 0.0);
        chart
            .draw_series(shorts.map(|t| {
                EmptyElement::at((time(t.entry_time), t.entry_price))
                    + Polygon::new(vec![(-5, -4), (5, -4), (0, 5)], RED.filled())
            }))
            .map_err(e)?
            .label("short entry")
            .legend(|(x, y)| {
                EmptyElement::at((x + 9, y))
                    + Polygon::new(vec![(-5, -4), (5, -4), (0, 5)], RED.filled())
            });
        chart
            .draw_series(marked.iter().map(|t| {
                Cross::new((time(t.exit_time), t.exit_price), r.min(3), BLUE.stroke_width(1))
            }))
            .map_err(e)?
            .label("exit")
            .legend(|(x, y)| Cross::new((x + 9, y), 3, BLUE.stroke_width(1)));
        legend(&mut chart)
    })?;
    let note = (trades.len() > marked.len()).then(|| {
        format!(
            "entries and exits marked for the first {} of {} trades",
            marked.len(),
            trades.len()
        )
    });
    Ok(Chart { id, title, note, svg })
}

fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .label_font((FONT, 12))
        .draw()
        .map_err(e)
}

/// Axis numbers: whole where large, a few decimals where small.
fn format_axis(y: f64) -> String {
    let a = y.abs();
    if a >= 1e6 {
        format!("{:.2}M", y / 1e6)
    } else if a >= 1000.0 {
        format!("{y:.0}")
    } else if a >= 1.0 {
        format!("{y:.2}")
    } else {
        format!("{y:.4}")
    }
}

/// The buy-and-hold value at each equity time: the cash put into every instrument in equal
/// parts at its close at the first tradable bar (`result.buy_hold`), as the table's figure.
pub fn buy_hold_curve(result: &BacktestResult, series: &[BarSeries]) -> Vec<(Timestamp, f64)> {
    let cash = result.config.cash;
    let n = series.len().max(1) as f64;
    let mut cursor = vec![0usize; series.len()];
    let mut last = vec![f64::NAN; series.len()];
    result
        .equity_time
        .iter()
        .map(|t| {
            let mut v = 0.0;
            for (k, s) in series.iter().enumerate() {
                while let Some(b) = s.bars.get(cursor[k]).filter(|b| b.ts <= t) {
                    last[k] = b.close;
                    cursor[k] += 1;
                }
                let base = result.buy_hold.get(k).map_or(f64::NAN, |b| b.0);
                // Before an instrument's first bar, its part is still cash.
                v += if last[k].is_nan() { cash / n } else { cash / n * last[k] / base };
            }
            (t, v)
        })
        .collect()
}

/// The equity curve and buy-and-hold.
pub fn equity(result: &BacktestResult, series: &[BarSeries]) -> Result<Chart> {
    let (t0, t1) = span(result);
    let eq = decimate(result.equity_time.iter().zip(result.equity.iter().copied()), t0, t1);
    let bh = decimate(buy_hold_curve(result, series).into_iter(), t0, t1);
    let (lo, hi) = bounds(eq.iter().chain(&bh).map(|p| p.1));
    let title = "Equity and buy-and-hold".to_string();
    let svg = svg("equity", 320, |root| {
        let fmt = |y: &f64| format_axis(*y);
        let mut chart = time_chart!(root, &title, t0, t1, lo, hi, &fmt, "equity");
        time_line!(chart, bh, GREY, 1, "buy and hold");
        time_line!(chart, eq, BLUE, 2, "strategy");
        legend(&mut chart)
    })?;
    Ok(Chart { id: "equity".into(), title, note: None, svg })
}

fn span(result: &BacktestResult) -> (Timestamp, Timestamp) {
    match (result.equity_time.first(), result.equity_time.last()) {
        (Some(a), Some(b)) => (a, b),
        _ => (Timestamp(0), Timestamp(1)),
    }
}

/// The drawdown from the running peak after each point, in percent (0 or below).
pub fn drawdown_curve(equity: &[f64]) -> Vec<f64> {
    let mut peak = f64::NEG_INFINITY;
    equity
        .iter()
        .map(|&v| {
            peak = peak.max(v);
            if peak > 0.0 && v.is_finite() { (v / peak - 1.0) * 100.0 } else { f64::NAN }
        })
        .collect()
}

/// The underwater chart.
pub fn drawdown(result: &BacktestResult) -> Result<Chart> {
    let (t0, t1) = span(result);
    let dd = drawdown_curve(&result.equity);
    let pts = decimate(result.equity_time.iter().zip(dd.iter().copied()), t0, t1);
    let (lo, _) = bounds(pts.iter().map(|p| p.1));
    let lo = if lo.is_finite() && lo < 0.0 { lo } else { -1.0 };
    let title = "Drawdown (underwater)".to_string();
    let svg = svg("drawdown", 220, |root| {
        let fmt = |y: &f64| format!("{y:.1}%");
        let mut chart = time_chart!(root, &title, t0, t1, lo, 0.0, &fmt, "drawdown");
        chart
            .draw_series(
                AreaSeries::new(pts.iter().map(|&(t, v)| (time(t), v)), 0.0, RED.mix(0.35))
                    .border_style(RED.stroke_width(1)),
            )
            .map_err(e)?;
        Ok(())
    })?;
    Ok(Chart { id: "drawdown".into(), title, note: None, svg })
}

/// Each calendar month's return in percent: the equity at its last point over the equity at
/// the previous month's last point (the first month: over the first point), by (year, month).
pub fn monthly_returns(result: &BacktestResult) -> Vec<(i32, u32, f64)> {
    let mut out: Vec<(i32, u32, f64)> = Vec::new();
    let mut prev = result.equity.first().copied().unwrap_or(f64::NAN);
    let mut month: Option<(i32, u32, f64)> = None;
    for (t, &v) in result.equity_time.iter().zip(&result.equity) {
        let d = time(t);
        let key = (d.year(), d.month());
        match &mut month {
            Some((y, m, last)) if (*y, *m) == key => *last = v,
            _ => {
                if let Some((y, m, last)) = month.take() {
                    out.push((y, m, (last / prev - 1.0) * 100.0));
                    prev = last;
                }
                month = Some((key.0, key.1, v));
            }
        }
    }
    if let Some((y, m, last)) = month {
        out.push((y, m, (last / prev - 1.0) * 100.0));
    }
    out
}

/// Red for losses, green for gains, white at zero, by `v / scale` in `[-1, 1]`.
fn diverging(v: f64, scale: f64) -> RGBColor {
    let x = if scale > 0.0 { (v / scale).clamp(-1.0, 1.0) } else { 0.0 };
    let mix =
        |a: u8, b: u8, f: f64| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (to, f) = if x < 0.0 { (RED, -x) } else { (GREEN, x) };
    RGBColor(mix(255, to.0, f), mix(255, to.1, f), mix(255, to.2, f))
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Months across, years down, each cell its return.
pub fn monthly(result: &BacktestResult) -> Result<Chart> {
    let rets = monthly_returns(result);
    let years: Vec<i32> = {
        let mut y: Vec<i32> = rets.iter().map(|r| r.0).collect();
        y.dedup();
        y
    };
    let ny = years.len().max(1);
    let scale = rets.iter().map(|r| r.2.abs()).filter(|x| x.is_finite()).fold(0.0, f64::max);
    let title = "Monthly returns (%)".to_string();
    let height = (90 + 34 * ny as u32).min(1400);
    let svg = svg("monthly", height, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .caption(&title, (FONT, 17))
            .x_label_area_size(28)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5f64..11.5, -0.5f64..(ny as f64 - 0.5))
            .map_err(e)?;
        let xl = |x: &f64| MONTHS.get(x.round() as usize).map_or(String::new(), |m| m.to_string());
        // The first year at the top.
        let row_of = |y: i32| (ny - 1 - years.iter().position(|&v| v == y).unwrap_or(0)) as f64;
        let yl = |y: &f64| {
            let i = ny as i64 - 1 - y.round() as i64;
            usize::try_from(i)
                .ok()
                .and_then(|i| years.get(i))
                .map_or(String::new(), |y| y.to_string())
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(12)
            .y_labels(ny)
            .x_label_formatter(&xl)
            .y_label_formatter(&yl)
            .label_style((FONT, 12))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(rets.iter().map(|&(y, m, r)| {
                let row = row_of(y);
                let col = f64::from(m - 1);
                let color = if r.is_finite() { diverging(r, scale) } else { GRID };
                Rectangle::new([(col - 0.48, row - 0.45), (col + 0.48, row + 0.45)], color.filled())
            }))
            .map_err(e)?;
        chart
            .draw_series(rets.iter().map(|&(y, m, r)| {
                let row = row_of(y);
                let text = if r.is_finite() { format!("{r:+.1}") } else { "-".into() };
                Text::new(
                    text,
                    (f64::from(m - 1), row),
                    (FONT, 12).into_font().color(&INK).pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    )),
                )
            }))
            .map_err(e)?;
        Ok(())
    })?;
    let note = rets.is_empty().then(|| "no equity points".to_string());
    Ok(Chart { id: "monthly".into(), title, note, svg })
}

/// Bins of closed trades' returns (percent): the bins' edges and counts.
pub fn histogram(returns: &[f64], bins: usize) -> (Vec<f64>, Vec<usize>) {
    let v: Vec<f64> = returns.iter().copied().filter(|x| x.is_finite()).collect();
    let (lo, hi) = bounds(v.iter().copied());
    if v.is_empty() || bins == 0 {
        return (Vec::new(), Vec::new());
    }
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, hi + 0.5) };
    let w = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (0..=bins).map(|i| lo + w * i as f64).collect();
    let mut counts = vec![0usize; bins];
    for x in v {
        let i = (((x - lo) / w) as usize).min(bins - 1);
        counts[i] += 1;
    }
    (edges, counts)
}

/// The distribution of closed trades' returns.
pub fn trades(trades: &[ClosedTrade]) -> Result<Chart> {
    let returns: Vec<f64> = trades.iter().map(|t| t.return_frac * 100.0).collect();
    let (edges, counts) = histogram(&returns, 40);
    let title = format!("Trade returns (%), {} closed trades", trades.len());
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (lo, hi) = match (edges.first(), edges.last()) {
        (Some(&a), Some(&b)) => (a, b),
        _ => (-1.0, 1.0),
    };
    let svg = svg("trades", 260, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .caption(&title, (FONT, 17))
            .x_label_area_size(32)
            .y_label_area_size(72)
            .build_cartesian_2d(lo..hi, 0f64..top * 1.08)
            .map_err(e)?;
        let xf = |x: &f64| format!("{x:.2}");
        let yf = |y: &f64| format!("{y:.0}");
        house_grid(&mut chart.configure_mesh())
            .disable_x_mesh()
            .x_labels(10)
            .y_labels(5)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .x_desc("return per trade, %")
            .y_desc("trades")
            .draw()
            .map_err(e)?;
        chart
            .draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, &c)| {
                let (a, b) = (edges[i], edges[i + 1]);
                let color = if (a + b) / 2.0 < 0.0 { RED } else { GREEN };
                // A bin of one trade among thousands still shows as a sliver.
                Rectangle::new(
                    [(a, 0.0), (b, (c as f64).max(top * 0.012))],
                    color.mix(0.8).filled(),
                )
            }))
            .map_err(e)?;
        Ok(())
    })?;
    let note = trades.is_empty().then(|| "no closed trades".to_string());
    Ok(Chart { id: "trades".into(), title, note, svg })
}

/// Viridis, by `x` in `[0, 1]`.
fn sequential(x: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = if x.is_finite() { x.clamp(0.0, 1.0) } else { 0.0 } * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let m = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// A metric over two parameters: `cells[y][x]` (`None` where no combination ran or the
/// metric is undefined), with a colour scale.
pub fn heatmap(
    metric: &str,
    x: (&str, &[String]),
    y: (&str, &[String]),
    cells: &[Vec<Option<f64>>],
    note: Option<String>,
) -> Result<Chart> {
    let (nx, ny) = (x.1.len().max(1), y.1.len().max(1));
    // The colour scale spans the 2nd to the 98th percentile, so a few extreme cells (a
    // Sharpe ratio of a run with three trades) do not wash out the rest.
    let mut values: Vec<f64> =
        cells.iter().flatten().flatten().copied().filter(|v| v.is_finite()).collect();
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values.get(((values.len() as f64 - 1.0) * q).round() as usize).copied();
    let (lo, hi) = match (at(0.02), at(0.98)) {
        (Some(a), Some(b)) => (a, b),
        _ => (0.0, 1.0),
    };
    let clipped = values.first().is_some_and(|&v| v < lo) || values.last().is_some_and(|&v| v > hi);
    let note = match (note, clipped) {
        (n, false) => n,
        (None, true) => Some("colour scale from the 2nd to the 98th percentile".into()),
        (Some(n), true) => Some(format!("{n}; colour scale from the 2nd to the 98th percentile")),
    };
    let title = format!("{metric} over {} and {}", x.0, y.0);
    let height = 560;
    let svg = svg("heatmap", height, |root| {
        let (plot, bar) = root.split_horizontally(WIDTH - 110);
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .caption(&title, (FONT, 17))
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(nx as f64 - 0.5), -0.5f64..(ny as f64 - 0.5))
            .map_err(e)?;
        let xl = |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-9 {
                x.1.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let yl = |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-9 {
                y.1.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(nx.min(12))
            .y_labels(ny.min(12))
            .x_label_formatter(&xl)
            .y_label_formatter(&yl)
            .x_desc(x.0)
            .y_desc(y.0)
            .label_style((FONT, 12))
            .draw()
            .map_err(e)?;
        let scale = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        chart
            .draw_series(
                cells
                    .iter()
                    .enumerate()
                    .flat_map(|(j, row)| {
                        row.iter().enumerate().filter_map(move |(i, c)| c.map(|v| (i, j, v)))
                    })
                    .map(|(i, j, v)| {
                        let (i, j) = (i as f64, j as f64);
                        Rectangle::new(
                            [(i - 0.5, j - 0.5), (i + 0.5, j + 0.5)],
                            sequential(scale(v)).filled(),
                        )
                    }),
            )
            .map_err(e)?;
        // The colour scale.
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(44)
            .margin_bottom(52)
            .margin_right(10)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1.0, if hi > lo { lo..hi } else { lo - 1.0..lo + 1.0 })
            .map_err(e)?;
        let yf = |v: &f64| format_axis(*v);
        cb.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(6)
            .y_label_formatter(&yf)
            .label_style((FONT, 11))
            .draw()
            .map_err(e)?;
        let steps = 64;
        let (a, b) = if hi > lo { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
        cb.draw_series((0..steps).map(|k| {
            let (p, q) = (
                a + (b - a) * k as f64 / steps as f64,
                a + (b - a) * (k + 1) as f64 / steps as f64,
            );
            Rectangle::new([(0.0, p), (1.0, q)], sequential(k as f64 / (steps - 1) as f64).filled())
        }))
        .map_err(e)?;
        Ok(())
    })?;
    Ok(Chart { id: "heatmap".into(), title, note, svg })
}

/// The return bootstrap's equity bands over time (5–95 and 25–75 percentiles, the median) with
/// the actual equity.
pub fn monte_carlo_paths(
    result: &BacktestResult,
    mc: &crate::montecarlo::Outcome,
) -> Result<Chart> {
    let (t0, t1) = span(result);
    let at = |k: usize| result.equity_time.get(k).unwrap_or(t1);
    let band = |i: usize| mc.path.iter().map(|(k, v)| (at(*k), v[i])).collect::<Vec<_>>();
    let (p5, p25, p50, p75, p95) = (band(0), band(1), band(2), band(3), band(4));
    let eq = decimate(result.equity_time.iter().zip(result.equity.iter().copied()), t0, t1);
    let (lo, hi) = bounds(p5.iter().chain(&p95).chain(&eq).map(|p| p.1));
    let title = format!(
        "Monte Carlo: equity bands of {} block bootstraps of the bar returns (blocks of {} bars)",
        mc.settings.runs, mc.block
    );
    let svg = svg("mc-paths", 340, |root| {
        let fmt = |y: &f64| format_axis(*y);
        let mut chart = time_chart!(root, &title, t0, t1, lo, hi, &fmt, "equity");
        let area = |upper: &[(Timestamp, f64)], lower: &[(Timestamp, f64)]| {
            let mut pts: Vec<(DateTime<Utc>, f64)> =
                upper.iter().map(|&(t, v)| (time(t), v)).collect();
            pts.extend(lower.iter().rev().map(|&(t, v)| (time(t), v)));
            pts
        };
        chart
            .draw_series(std::iter::once(Polygon::new(area(&p95, &p5), BLUE.mix(0.15).filled())))
            .map_err(e)?
            .label("5–95%")
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 18, y + 5)], BLUE.mix(0.15).filled())
            });
        chart
            .draw_series(std::iter::once(Polygon::new(area(&p75, &p25), BLUE.mix(0.35).filled())))
            .map_err(e)?
            .label("25–75%")
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 18, y + 5)], BLUE.mix(0.35).filled())
            });
        time_line!(chart, p50, BLUE, 1, "median");
        time_line!(chart, eq, INK, 1, "actual");
        legend(&mut chart)
    })?;
    Ok(Chart { id: "mc-paths".into(), title, note: None, svg })
}

/// Each method's bands of the return and of the maximum drawdown: 5–95% as a thin bar,
/// 25–75% as a thick one, the median as a tick, the actual run as a dot.
pub fn monte_carlo_bands(mc: &crate::montecarlo::Outcome) -> Result<Chart> {
    let rows: Vec<&crate::montecarlo::Method> = mc.methods.iter().collect();
    let n = rows.len().max(1);
    let title = format!(
        "Monte Carlo: return and maximum drawdown, {} simulations per method",
        mc.settings.runs
    );
    let height = 120 + 46 * n as u32;
    let svg = svg("mc-bands", height, |root| {
        let root = root.titled(&title, (FONT, 17)).map_err(e)?;
        let (left, right) = root.split_horizontally(WIDTH / 2);
        let panel = |area: &Area<'_>,
                     pick: &dyn Fn(&crate::montecarlo::Method) -> &crate::montecarlo::Band,
                     name: &str|
         -> Result<(), String> {
            let (lo, hi) = bounds(rows.iter().flat_map(|m| {
                let b = pick(m);
                b.percentiles.iter().copied().chain([b.actual])
            }));
            let (lo, hi) = pad(lo, hi);
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(if name.starts_with("return") { 120 } else { 20 })
                .build_cartesian_2d(lo..hi, -0.5f64..(n as f64 - 0.5))
                .map_err(e)?;
            let label = |y: &f64| {
                let i = y.round();
                if (y - i).abs() > 1e-9 || !name.starts_with("return") {
                    return String::new();
                }
                rows.get(n - 1 - i as usize).map_or(String::new(), |m| m.name.replace('_', " "))
            };
            let xf = |x: &f64| format!("{x:.1}%");
            house_grid(&mut chart.configure_mesh())
                .disable_y_mesh()
                .x_labels(6)
                .y_labels(n)
                .x_label_formatter(&xf)
                .y_label_formatter(&label)
                .x_desc(name)
                .draw()
                .map_err(e)?;
            for (j, m) in rows.iter().enumerate() {
                let y = (n - 1 - j) as f64;
                let b = pick(m);
                let p = &b.percentiles;
                // A band without spread (trade order's return) is its median tick alone.
                let spread = (hi - lo) * 1e-4;
                let outer = (p[4] - p[0] > spread).then(|| {
                    Rectangle::new([(p[0], y - 0.06), (p[4], y + 0.06)], BLUE.mix(0.35).filled())
                });
                let inner = (p[3] - p[1] > spread).then(|| {
                    Rectangle::new([(p[1], y - 0.2), (p[3], y + 0.2)], BLUE.mix(0.7).filled())
                });
                chart.draw_series([outer, inner].into_iter().flatten()).map_err(e)?;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(p[2], y - 0.28), (p[2], y + 0.28)],
                        INK.stroke_width(2),
                    )))
                    .map_err(e)?;
                chart
                    .draw_series(std::iter::once(Circle::new((b.actual, y), 4, RED.filled())))
                    .map_err(e)?;
            }
            Ok(())
        };
        panel(&left, &|m| &m.return_pct, "return, % (red: the actual run)")?;
        panel(&right, &|m| &m.max_drawdown_pct, "maximum drawdown, %")?;
        Ok(())
    })?;
    Ok(Chart { id: "mc-bands".into(), title, note: None, svg })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimation_keeps_every_extreme_in_time_order() {
        let n = 1_000_000i64;
        let pts: Vec<(Timestamp, f64)> =
            (0..n).map(|i| (Timestamp(i * 60_000_000_000), ((i * 7919) % 10_007) as f64)).collect();
        let d = decimate(pts.iter().copied(), pts[0].0, pts[pts.len() - 1].0);
        assert!(d.len() <= 4 * (WIDTH as usize + 1), "{} points", d.len());
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "in time order");
        let (lo, hi) = bounds(pts.iter().map(|p| p.1));
        assert!(d.iter().any(|p| p.1 == lo) && d.iter().any(|p| p.1 == hi));
        assert_eq!(d.first(), pts.first());
        assert_eq!(d.last(), pts.last());
        // NaN points are left out, not drawn as zero.
        let holes = [(Timestamp(0), 1.0), (Timestamp(1), f64::NAN), (Timestamp(2), 2.0)];
        assert_eq!(decimate(holes.into_iter(), Timestamp(0), Timestamp(2)).len(), 2);
    }

    #[test]
    fn histogram_counts_every_finite_return_once() {
        let r = [-2.0, -1.0, -0.5, 0.0, 0.25, 3.0, f64::NAN];
        let (edges, counts) = histogram(&r, 10);
        assert_eq!(edges.len(), 11);
        assert_eq!(counts.iter().sum::<usize>(), 6);
        assert_eq!((edges[0], edges[10]), (-2.0, 3.0));
        assert_eq!(counts[9], 1, "the maximum lands in the last bin");
        let (e, c) = histogram(&[1.5, 1.5], 4);
        assert_eq!((c.iter().sum::<usize>(), e.len()), (2, 5));
        assert!(histogram(&[], 4).1.is_empty());
    }

    #[test]
    fn monthly_returns_compound_to_the_whole_run() {
        let day = 86_400_000_000_000i64;
        let start = 1_640_995_200_000_000_000i64; // 2022-01-01
        let mut r = BacktestResult {
            config: Default::default(),
            instruments: Vec::new(),
            sources: Vec::new(),
            simulated: false,
            bars: 0,
            equity_time: Default::default(),
            equity: Vec::new(),
            trades: Vec::new(),
            fills: Vec::new(),
            portfolio: kairos_strategies::Portfolio::new(100.0, 1),
            rejected_orders: 0,
            unfilled_orders: 0,
            buy_hold: Vec::new(),
        };
        for i in 0..100 {
            r.equity_time.push(Timestamp(start + i * day));
            r.equity.push(100.0 * (1.0 + 0.01 * (i as f64).sin()) + i as f64);
        }
        let m = monthly_returns(&r);
        assert_eq!(
            m.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
            [(2022, 1), (2022, 2), (2022, 3), (2022, 4)]
        );
        let total: f64 = m.iter().map(|x| 1.0 + x.2 / 100.0).product();
        let whole = r.equity[99] / r.equity[0];
        assert!((total - whole).abs() < 1e-12, "{total} vs {whole}");
        let dd = drawdown_curve(&[100.0, 110.0, 99.0, 120.0, 60.0]);
        assert_eq!(dd[..2], [0.0, 0.0]);
        assert!((dd[2] + 10.0).abs() < 1e-12 && dd[3] == 0.0 && (dd[4] + 50.0).abs() < 1e-12);
    }
}
