//! A sweep's files: `sweep.csv` and `sweep.parquet` (one row per combination: its index, its
//! parameters and every summary statistic, in combination order), and `sweep.json` (what was
//! swept over what data, and how it went). Rows are written as they come, a batch at a time;
//! the files appear under their names only once complete, `sweep.json` last.
//!
//! [`merge`] combines the folders of a sweep's shards (`--shard I/N`) into what one run of
//! the whole sweep writes: the same `sweep.csv` byte for byte, the same rows in
//! `sweep.parquet`.

use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use kairos_strategies::ParamKind;
use polars::prelude::*;

use super::{Row, Sweep};
use crate::stats::{Stat, Summary};
use crate::{Error, Result};

/// The files a sweep writes, in the order they are renamed into place.
pub const FILES: [&str; 3] = ["sweep.csv", "sweep.parquet", "sweep.json"];

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |cause| Error::Io { path: path.to_path_buf(), cause }
}

fn pq(path: &Path) -> impl Fn(PolarsError) -> Error + '_ {
    move |e| Error::Format { path: path.to_path_buf(), reason: e.to_string() }
}

fn tmp(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.tmp"))
}

/// The columns of a sweep's rows: `combination`, the axes, then the summary's figures.
pub fn columns(axes: &[String]) -> Vec<String> {
    let mut c = vec!["combination".to_string()];
    c.extend(axes.iter().cloned());
    c.extend(Summary::figure_names().into_iter().map(str::to_string));
    c
}

/// Writes a sweep's rows as they come.
pub struct Writer {
    dir: PathBuf,
    csv: BufWriter<File>,
    parquet: Option<polars::io::parquet::write::BatchedWriter<File>>,
    axes: Vec<String>,
    kinds: Vec<ParamKind>,
    rows: u64,
}

impl Writer {
    /// Starts the files of `sweep` in `dir` (created if missing).
    pub fn create(dir: &Path, sweep: &Sweep) -> Result<Writer> {
        crate::report::check_out_dir(dir)?;
        let path = tmp(dir, "sweep.csv");
        let mut csv = BufWriter::new(File::create(&path).map_err(io(&path))?);
        let axes: Vec<String> = sweep.grid.axes.iter().map(|a| a.name.clone()).collect();
        writeln!(
            csv,
            "{}",
            columns(&axes).iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",")
        )
        .map_err(io(&path))?;
        Ok(Writer {
            dir: dir.to_path_buf(),
            csv,
            parquet: None,
            axes,
            kinds: sweep.kinds.clone(),
            rows: 0,
        })
    }

    /// Appends `rows`.
    pub fn write(&mut self, rows: &[Row]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let path = tmp(&self.dir, "sweep.csv");
        // Each row's figures once, for both files.
        let figures: Vec<Figures> = rows.iter().map(|r| r.summary.figures()).collect();
        for (r, f) in rows.iter().zip(&figures) {
            writeln!(self.csv, "{}", csv_line(r, f)).map_err(io(&path))?;
        }
        let df = frame(rows, &figures, &self.axes, &self.kinds).map_err(pq(&path))?;
        let ppath = tmp(&self.dir, "sweep.parquet");
        if self.parquet.is_none() {
            let f = File::create(&ppath).map_err(io(&ppath))?;
            self.parquet = Some(ParquetWriter::new(f).batched(df.schema()).map_err(pq(&ppath))?);
        }
        if let Some(w) = &mut self.parquet {
            w.write_batch(&df).map_err(pq(&ppath))?;
        }
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Completes the files, with `meta` as `sweep.json`, and renames them into place.
    pub fn finish(mut self, meta: &serde_json::Value) -> Result<()> {
        let path = tmp(&self.dir, "sweep.csv");
        self.csv.flush().map_err(io(&path))?;
        let ppath = tmp(&self.dir, "sweep.parquet");
        match self.parquet.take() {
            Some(w) => {
                w.finish().map_err(pq(&ppath))?;
            }
            None => {
                // No rows: an empty table with the columns.
                let mut df = frame(&[], &[], &self.axes, &self.kinds).map_err(pq(&ppath))?;
                let f = File::create(&ppath).map_err(io(&ppath))?;
                ParquetWriter::new(f).finish(&mut df).map_err(pq(&ppath))?;
            }
        }
        let jpath = tmp(&self.dir, "sweep.json");
        let text = serde_json::to_string_pretty(meta).unwrap_or_default();
        std::fs::write(&jpath, text + "\n").map_err(io(&jpath))?;
        for name in FILES {
            let to = self.dir.join(name);
            std::fs::rename(tmp(&self.dir, name), &to).map_err(io(&to))?;
        }
        Ok(())
    }
}

impl Drop for Writer {
    /// A sweep that did not finish leaves no temporary files behind.
    fn drop(&mut self) {
        for name in FILES {
            let _ = std::fs::remove_file(tmp(&self.dir, name));
        }
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A number as the shortest text that reads back to the same bits; empty for NaN and
/// infinities (undefined figures).
pub(crate) fn num(x: f64) -> String {
    if x.is_finite() { format!("{x}") } else { String::new() }
}

/// A row's figures, as [`Summary::figures`] gives them.
type Figures = Vec<(&'static str, Stat)>;

fn csv_line(r: &Row, figures: &Figures) -> String {
    let mut f = vec![r.combination.to_string()];
    f.extend(r.values.iter().map(|v| csv_field(v)));
    for (_, v) in figures {
        f.push(match v {
            Stat::Float(x) => num(*x),
            Stat::Int(x) => x.to_string(),
            Stat::Text(s) => csv_field(s),
            Stat::Bool(b) => b.to_string(),
        });
    }
    f.join(",")
}

/// `rows` as a table with typed columns (undefined figures as nulls).
fn frame(
    rows: &[Row],
    figures: &[Figures],
    axes: &[String],
    kinds: &[ParamKind],
) -> PolarsResult<DataFrame> {
    let mut cols = vec![Column::new(
        "combination".into(),
        rows.iter().map(|r| r.combination).collect::<Vec<u64>>(),
    )];
    for (a, (name, kind)) in axes.iter().zip(kinds).enumerate() {
        let vals = rows.iter().map(|r| r.values[a].as_str());
        cols.push(match kind {
            ParamKind::Int { .. } => {
                Column::new(name.into(), vals.map(|v| v.parse::<i64>().ok()).collect::<Vec<_>>())
            }
            ParamKind::Float { .. } => {
                Column::new(name.into(), vals.map(|v| v.parse::<f64>().ok()).collect::<Vec<_>>())
            }
            ParamKind::Bool => {
                Column::new(name.into(), vals.map(|v| v.parse::<bool>().ok()).collect::<Vec<_>>())
            }
            _ => Column::new(name.into(), vals.collect::<Vec<_>>()),
        });
    }
    for (i, (name, kind)) in Summary::empty().figures().into_iter().enumerate() {
        let col = match kind {
            Stat::Float(_) => Column::new(
                name.into(),
                figures
                    .iter()
                    .map(|f| match f[i].1 {
                        Stat::Float(x) if x.is_finite() => Some(x),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            Stat::Int(_) => Column::new(
                name.into(),
                figures
                    .iter()
                    .map(|f| if let Stat::Int(x) = f[i].1 { x } else { 0 })
                    .collect::<Vec<u64>>(),
            ),
            Stat::Bool(_) => Column::new(
                name.into(),
                figures.iter().map(|f| matches!(f[i].1, Stat::Bool(true))).collect::<Vec<bool>>(),
            ),
            Stat::Text(_) => Column::new(
                name.into(),
                figures
                    .iter()
                    .map(|f| if let Stat::Text(s) = &f[i].1 { s.clone() } else { String::new() })
                    .collect::<Vec<String>>(),
            ),
        };
        cols.push(col);
    }
    DataFrame::new(rows.len(), cols)
}

/// What [`merge`] did.
#[derive(Debug, Clone)]
pub struct Merged {
    /// Rows in the merged files.
    pub rows: u64,
    /// The shards' `sweep.json`, with the shard removed and the counts summed.
    pub meta: serde_json::Value,
}

/// Combines the output folders of every shard of one sweep into `out`: the same files one run
/// of the whole sweep writes. Refuses folders of different sweeps, a shard twice or missing,
/// and unfinished folders.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Merged> {
    let bad = |path: &Path, reason: String| Error::Format { path: path.to_path_buf(), reason };
    if dirs.is_empty() {
        return Err(Error::Sweep { key: "merge", reason: "no shard folders given".into() });
    }
    let mut metas = Vec::new();
    for d in dirs {
        let p = d.join("sweep.json");
        let text = std::fs::read_to_string(&p)
            .map_err(|e| bad(&p, format!("not a finished sweep's folder (no sweep.json: {e})")))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(&p, format!("not a sweep's record: {e}")))?;
        metas.push((p, v));
    }
    let first = &metas[0].1;
    let count = first["shard"]["count"].as_u64().unwrap_or(1);
    let mut seen = vec![false; count as usize];
    for (p, m) in &metas {
        if m["sweep"] != first["sweep"] {
            return Err(bad(
                p,
                format!(
                    "is a different sweep from {} (strategy, grid, filter, search, settings or data differ)",
                    metas[0].0.display()
                ),
            ));
        }
        let (i, n) = (m["shard"]["index"].as_u64(), m["shard"]["count"].as_u64().unwrap_or(1));
        if n != count {
            return Err(bad(p, format!("is a shard of {n}, the first folder one of {count}")));
        }
        let i = i.unwrap_or(0) as usize;
        if std::mem::replace(&mut seen[i], true) {
            return Err(bad(p, format!("shard {i}/{count} is given twice")));
        }
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(Error::Sweep {
            key: "merge",
            reason: format!("shard {missing}/{count} is missing (give every shard's folder)"),
        });
    }
    // The CSV: every shard's lines, by combination.
    let mut header: Option<String> = None;
    let mut lines: Vec<(u64, String)> = Vec::new();
    for d in dirs {
        let p = d.join("sweep.csv");
        let f = std::io::BufReader::new(File::open(&p).map_err(io(&p))?);
        let mut it = f.lines();
        let h = it.next().transpose().map_err(io(&p))?.unwrap_or_default();
        match &header {
            Some(h0) if *h0 != h => {
                return Err(bad(&p, "has other columns than the first shard".into()));
            }
            _ => header = Some(h),
        }
        for (n, l) in it.enumerate() {
            let l = l.map_err(io(&p))?;
            let k = l
                .split(',')
                .next()
                .and_then(|k| k.parse().ok())
                .ok_or_else(|| bad(&p, format!("line {}: no combination number", n + 2)))?;
            lines.push((k, l));
        }
    }
    lines.sort_by_key(|(k, _)| *k);
    if let Some(w) = lines.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::Sweep {
            key: "merge",
            reason: format!("combination {} is in two shards", w[0].0),
        });
    }
    crate::report::check_out_dir(out)?;
    let cpath = tmp(out, "sweep.csv");
    let mut csv = BufWriter::new(File::create(&cpath).map_err(io(&cpath))?);
    writeln!(csv, "{}", header.unwrap_or_default()).map_err(io(&cpath))?;
    for (_, l) in &lines {
        writeln!(csv, "{l}").map_err(io(&cpath))?;
    }
    csv.flush().map_err(io(&cpath))?;
    drop(csv);
    // The Parquet: every shard's rows, by combination.
    let mut all: Option<DataFrame> = None;
    for d in dirs {
        let p = d.join("sweep.parquet");
        let df = ParquetReader::new(File::open(&p).map_err(io(&p))?).finish().map_err(pq(&p))?;
        all = Some(match all {
            None => df,
            Some(a) => a.vstack(&df).map_err(pq(&p))?,
        });
    }
    let ppath = tmp(out, "sweep.parquet");
    let mut df = all
        .unwrap_or_default()
        .sort(["combination"], SortMultipleOptions::default())
        .map_err(pq(&ppath))?;
    ParquetWriter::new(File::create(&ppath).map_err(io(&ppath))?)
        .finish(&mut df)
        .map_err(pq(&ppath))?;
    let mut meta = first.clone();
    meta["shard"] = serde_json::Value::Null;
    for key in ["runs", "skipped", "bar_evaluations", "combinations"] {
        let total: u64 = metas.iter().filter_map(|(_, m)| m["outcome"][key].as_u64()).sum();
        meta["outcome"][key] = total.into();
    }
    meta["outcome"]["merged_from"] =
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().into();
    let jpath = tmp(out, "sweep.json");
    std::fs::write(&jpath, serde_json::to_string_pretty(&meta).unwrap_or_default() + "\n")
        .map_err(io(&jpath))?;
    for name in FILES {
        let to = out.join(name);
        std::fs::rename(tmp(out, name), &to).map_err(io(&to))?;
    }
    Ok(Merged { rows: lines.len() as u64, meta })
}

/// The best `n` rows of a finished sweep's `sweep.parquet` by `metric` (highest first, or
/// lowest with `ascending`; undefined values last).
pub fn top(dir: &Path, metric: &str, n: usize, ascending: bool) -> Result<DataFrame> {
    let p = dir.join("sweep.parquet");
    let df = ParquetReader::new(File::open(&p).map_err(io(&p))?).finish().map_err(pq(&p))?;
    if df.column(metric).is_err() {
        return Err(Error::Sweep {
            key: "metric",
            reason: format!("`{metric}` is not a column of {}", p.display()),
        });
    }
    let sorted = df
        .sort(
            [metric, "combination"],
            SortMultipleOptions::default()
                .with_order_descending_multi([!ascending, false])
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .map_err(pq(&p))?;
    Ok(sorted.head(Some(n)))
}

/// The best value of a metric over two axes of a sweep (the first two with more than one
/// value), the others taken at their best: what the report's heatmap shows. Fed rows as they
/// stream, it holds one number per cell of the two axes.
#[derive(Debug, Clone)]
pub struct Heat {
    metric: String,
    ascending: bool,
    /// The axes across and down.
    pub axes: (usize, usize),
    /// `cells[y][x]`.
    pub cells: Vec<Vec<Option<f64>>>,
    digits: Vec<usize>,
}

impl Heat {
    /// For `grid`, ranking by `metric`; `None` when fewer than two axes have several values.
    pub fn new(grid: &super::Grid, metric: &str, ascending: bool) -> Option<Heat> {
        let mut wide = grid.axes.iter().enumerate().filter(|(_, a)| a.values.len() > 1);
        let (x, ax) = wide.next()?;
        let (y, ay) = wide.next()?;
        Some(Heat {
            metric: metric.to_string(),
            ascending,
            axes: (x, y),
            cells: vec![vec![None; ax.values.len()]; ay.values.len()],
            digits: Vec::new(),
        })
    }

    /// Takes in `rows`' metric.
    pub fn add(&mut self, grid: &super::Grid, rows: &[Row]) {
        for r in rows {
            self.add_value(grid, r.combination, r.summary.metric(&self.metric));
        }
    }

    /// Takes in combination `k`'s metric (`None` or not finite: nothing).
    pub fn add_value(&mut self, grid: &super::Grid, k: u64, value: Option<f64>) {
        let Some(m) = value.filter(|v| v.is_finite()) else { return };
        if k >= grid.size() {
            return;
        }
        grid.digits(k, &mut self.digits);
        let (Some(&i), Some(&j)) = (self.digits.get(self.axes.0), self.digits.get(self.axes.1))
        else {
            return;
        };
        if let Some(cell) = self.cells.get_mut(j).and_then(|row| row.get_mut(i)) {
            let better = super::walk::rank(Some(m), *cell, self.ascending);
            if cell.is_none() || better == std::cmp::Ordering::Less {
                *cell = Some(m);
            }
        }
    }

    /// Takes in every row of a finished sweep's `sweep.parquet` (a merged one, say).
    pub fn add_file(&mut self, grid: &super::Grid, dir: &Path) -> Result<()> {
        let p = dir.join("sweep.parquet");
        let df = ParquetReader::new(File::open(&p).map_err(io(&p))?).finish().map_err(pq(&p))?;
        let ks = df.column("combination").and_then(|c| c.u64().cloned()).map_err(pq(&p))?;
        let vs = df
            .column(&self.metric)
            .and_then(|c| c.cast(&DataType::Float64))
            .and_then(|c| c.f64().cloned())
            .map_err(pq(&p))?;
        for (k, v) in ks.iter().zip(vs.iter()) {
            if let Some(k) = k {
                self.add_value(grid, k, v);
            }
        }
        Ok(())
    }

    /// The heatmap chart.
    pub fn chart(&self, grid: &super::Grid) -> Result<crate::report::charts::Chart> {
        let (ax, ay) = (&grid.axes[self.axes.0], &grid.axes[self.axes.1]);
        let others: Vec<&str> = grid
            .axes
            .iter()
            .enumerate()
            .filter(|(k, a)| *k != self.axes.0 && *k != self.axes.1 && a.values.len() > 1)
            .map(|(_, a)| a.name.as_str())
            .collect();
        let note =
            (!others.is_empty()).then(|| format!("each cell the best over {}", others.join(", ")));
        crate::report::charts::heatmap(
            &self.metric,
            (&ax.name, &ax.values),
            (&ay.name, &ay.values),
            &self.cells,
            note,
        )
    }
}
