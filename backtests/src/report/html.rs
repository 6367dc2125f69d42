//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched at
//! view time) with a run's definition, its statistics and its charts; and `--png`, the same
//! charts as PNG files rendered from the same SVG (resvg), for servers without a browser.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::charts::{self, Chart};
use crate::data::BarSeries;
use crate::engine::BacktestResult;
use crate::stats::Summary;
use crate::{Error, Result};

/// Price charts drawn at the most (one per instrument; the rest are in the files).
pub const MAX_PRICE_CHARTS: usize = 8;

/// A page: a title, what was run (label, value), tables and charts.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The heading and the window's title.
    pub title: String,
    /// What was run, as label and value (strategy, parameters, data, period, settings).
    pub about: Vec<(String, String)>,
    /// Warnings shown at the top (simulated data, figures that mean nothing).
    pub warnings: Vec<String>,
    /// The statistics table (label, value), or none.
    pub stats: Vec<(String, String)>,
    /// Further tables, each a caption, a header and rows (sweeps' best rows, walk-forward
    /// windows), shown after the statistics.
    pub tables: Vec<(String, Vec<String>, Vec<Vec<String>>)>,
    /// The charts, in order.
    pub charts: Vec<Chart>,
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The charts of one run: price with entries and exits (per instrument), equity against
/// buy-and-hold, drawdown, monthly returns, trade returns.
pub fn run_charts(result: &BacktestResult, series: &[BarSeries]) -> Result<Vec<Chart>> {
    let mut out = Vec::new();
    for (k, s) in series.iter().enumerate().take(MAX_PRICE_CHARTS) {
        let trades: Vec<_> = result.trades.iter().filter(|t| t.instrument.index() == k).collect();
        let id = if series.len() == 1 { "price".to_string() } else { format!("price-{k}") };
        out.push(charts::price(s, &trades, id)?);
    }
    out.push(charts::equity(result, series)?);
    out.push(charts::drawdown(result)?);
    out.push(charts::monthly(result)?);
    out.push(charts::trades(&result.trades)?);
    Ok(out)
}

const STYLE: &str = "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;\
margin:24px auto;max-width:1140px;color:#222;padding:0 12px}h1{font-size:22px;margin:0 0 6px}\
h2{font-size:16px;margin:26px 0 8px}table{border-collapse:collapse;font-size:13px}\
td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}\
th{background:#f6f6f6}td:first-child,th:first-child{text-align:left}\
.about td{text-align:left}.stats{columns:2;column-gap:40px}.stats table{width:100%}\
figure{margin:18px 0}figcaption{font-size:13px;color:#555;margin-top:2px}\
svg{max-width:100%;height:auto;display:block}.warn{color:#a05a00}\
footer{color:#888;font-size:12px;margin-top:30px}";

fn table(head: &[String], rows: &[Vec<String>], class: &str) -> String {
    let mut s = format!("<table class=\"{class}\">");
    if !head.is_empty() {
        s.push_str("<tr>");
        for h in head {
            let _ = write!(s, "<th>{}</th>", escape(h));
        }
        s.push_str("</tr>");
    }
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", escape(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

/// The page as one HTML document.
pub fn render(page: &Page) -> String {
    let mut s = String::with_capacity(64 << 10);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&page.title),
        escape(&page.title)
    );
    if !page.about.is_empty() {
        let rows: Vec<Vec<String>> =
            page.about.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
        s.push_str(&table(&[], &rows, "about"));
        s.push('\n');
    }
    for w in &page.warnings {
        let _ = writeln!(s, "<p class=\"warn\">warning: {}</p>", escape(w));
    }
    if !page.stats.is_empty() {
        s.push_str("<h2>Statistics</h2>\n<div class=\"stats\">");
        let rows: Vec<Vec<String>> =
            page.stats.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
        s.push_str(&table(&[], &rows, "stats-table"));
        s.push_str("</div>\n");
    }
    for (caption, head, rows) in &page.tables {
        let _ = writeln!(s, "<h2>{}</h2>", escape(caption));
        s.push_str(&table(head, rows, "rows"));
        s.push('\n');
    }
    for c in &page.charts {
        let _ = write!(s, "<figure id=\"chart-{}\" class=\"chart\">", escape(&c.id));
        // plotters writes a complete SVG document; inline it without its XML declaration.
        let svg = c.svg.trim_start();
        let svg = match svg.strip_prefix("<?xml") {
            Some(rest) => rest.split_once("?>").map_or(svg, |(_, r)| r.trim_start()),
            None => svg,
        };
        s.push_str(svg);
        let _ = write!(s, "<figcaption>{}", escape(&c.title));
        if let Some(n) = &c.note {
            let _ = write!(s, " — {}", escape(n));
        }
        s.push_str("</figcaption></figure>\n");
    }
    let _ = write!(
        s,
        "<footer>Kairos {}; charts drawn server-side, nothing is fetched when this page is \
         opened.</footer>\n</body></html>\n",
        env!("CARGO_PKG_VERSION")
    );
    s
}

/// Writes `report.html` into `dir` (through a temporary file, renamed when complete), and
/// with `png` each chart as `charts/ID.png`. Returns the files written.
pub fn write(dir: &Path, page: &Page, png: bool) -> Result<Vec<PathBuf>> {
    super::check_out_dir(dir)?;
    let mut written = vec![super::write_file(dir, "report.html", render(page))?];
    if png {
        let folder = dir.join("charts");
        std::fs::create_dir_all(&folder)
            .map_err(|cause| Error::Io { path: folder.clone(), cause })?;
        let raster = Rasterizer::new();
        for c in &page.charts {
            written.push(super::write_file(&folder, &format!("{}.png", c.id), raster.png(c)?)?);
        }
    }
    Ok(written)
}

/// Renders charts' SVG to PNG with the machine's fonts.
pub struct Rasterizer {
    options: resvg::usvg::Options<'static>,
    /// Whether any font was found (without one, text is left out of the PNGs).
    pub fonts: bool,
}

impl Default for Rasterizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Rasterizer {
    /// Loads the system's fonts, with the first sans-serif family found for `sans-serif`.
    pub fn new() -> Rasterizer {
        let mut options = resvg::usvg::Options::default();
        let db = options.fontdb_mut();
        db.load_system_fonts();
        let sans = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica"]
            .into_iter()
            .find(|want| db.faces().any(|f| f.families.iter().any(|(n, _)| n == want)))
            .map(str::to_string)
            .or_else(|| db.faces().next().and_then(|f| f.families.first().map(|(n, _)| n.clone())));
        let fonts = sans.is_some();
        if let Some(family) = sans {
            db.set_sans_serif_family(family);
        } else {
            tracing::warn!(
                "no fonts found: the PNG charts will have no text (install one, e.g. Debian's fonts-dejavu-core)"
            );
        }
        Rasterizer { options, fonts }
    }

    /// One chart as PNG bytes.
    pub fn png(&self, chart: &Chart) -> Result<Vec<u8>> {
        let bad = |reason: String| Error::Chart { chart: chart.id.clone(), reason };
        let tree = resvg::usvg::Tree::from_str(&chart.svg, &self.options)
            .map_err(|e| bad(format!("the SVG does not parse: {e}")))?;
        let size = tree.size().to_int_size();
        let mut pixmap =
            resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| {
                bad(format!("{}x{} is not a size to draw", size.width(), size.height()))
            })?;
        resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
        pixmap.encode_png().map_err(|e| bad(format!("PNG encoding: {e}")))
    }
}

/// The page of one run: `about` (what was run), the statistics and warnings, and
/// [`run_charts`] over `series` (the bars the run read).
pub fn run_page(
    title: String,
    about: Vec<(String, String)>,
    result: &BacktestResult,
    summary: &Summary,
    series: &[BarSeries],
) -> Result<Page> {
    let mut warnings = summary.warnings.clone();
    if result.simulated {
        warnings.insert(0, "simulated data: these figures say nothing about a market".into());
    }
    Ok(Page {
        title,
        about,
        warnings,
        stats: super::rows(summary),
        tables: Vec::new(),
        charts: run_charts(result, series)?,
    })
}

/// What a run was, for a page's `about`: the strategy and parameters, the data, the period
/// and the engine's settings.
pub fn about(
    strategy: &str,
    params: &[(String, String)],
    result: &BacktestResult,
    summary: &Summary,
) -> Vec<(String, String)> {
    let c = &result.config;
    vec![
        (
            "strategy".into(),
            format!(
                "{strategy} {}",
                params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
            ),
        ),
        ("data".into(), result.sources.join(", ")),
        ("period".into(), format!("{} .. {} ({} bars)", summary.start, summary.end, summary.bars)),
        ("engine".into(), engine_text(c)),
    ]
}

/// The engine's settings, for a page's `about`.
pub fn engine_text(c: &crate::engine::BacktestConfig) -> String {
    format!(
        "cash {}, commission {}, fixed fee {}, slippage {} bps, fills at {}",
        c.cash,
        c.commission,
        c.fixed_fee,
        c.slippage_bps,
        match c.fill {
            crate::venue::FillAt::NextOpen => "the next open",
            crate::venue::FillAt::Close => "the signal bar's close",
        }
    )
}
