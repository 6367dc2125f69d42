//! Figures in the Prometheus text format, for the worker's and the router's `GET /metrics`
//! (the worker names its own after vLLM's: `num_requests_running`, `time_to_first_token_seconds`,
//! `e2e_request_latency_seconds`, ... under `kairos_worker_`; the router's are under
//! `kairos_router_`).
//!
//! Counters, gauges and histograms keyed by name and label set, behind one mutex: a request
//! touches it a handful of times, far from the cost of the inference it measures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Latency buckets, seconds (vLLM's time-to-first-token buckets, cut to what a small worker
/// sees).
pub const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Batch-size buckets (requests or inputs per batch).
pub const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Registry {
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
    counters: BTreeMap<(&'static str, String), f64>,
    gauges: BTreeMap<(&'static str, String), f64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

/// A metrics registry.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Registry>,
}

/// A label set written `k="v",...` (values escaped as the text format wants).
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(s, "{k}=\"{v}\"");
    }
    s
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Declares a metric's help text and type (`counter`, `gauge`, `histogram`).
    pub fn describe(&self, name: &'static str, kind: &'static str, help: &'static str) {
        self.lock().help.insert(name, (kind, help));
    }

    /// Adds `by` to a counter.
    pub fn add(&self, name: &'static str, labels: String, by: f64) {
        *self.lock().counters.entry((name, labels)).or_default() += by;
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, labels: String, value: f64) {
        self.lock().gauges.insert((name, labels), value);
    }

    /// Adds `by` (may be negative) to a gauge.
    pub fn shift(&self, name: &'static str, labels: String, by: f64) {
        *self.lock().gauges.entry((name, labels)).or_default() += by;
    }

    /// Records one observation in a histogram with `bounds`.
    pub fn observe(&self, name: &'static str, labels: String, bounds: &'static [f64], v: f64) {
        let mut r = self.lock();
        let h = r.histograms.entry((name, labels)).or_insert_with(|| Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        });
        for (b, c) in h.bounds.iter().zip(h.counts.iter_mut()) {
            if v <= *b {
                *c += 1;
            }
        }
        h.sum += v;
        h.count += 1;
    }

    /// A counter's value (tests, logs).
    pub fn counter(&self, name: &'static str, labels: &str) -> f64 {
        self.lock().counters.get(&(name, labels.to_string())).copied().unwrap_or(0.0)
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let r = self.lock();
        let mut out = String::new();
        let head = |out: &mut String, name: &str, kind: &str| {
            let help = r.help.get(name).map_or("", |h| h.1);
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        let sample = |out: &mut String, name: &str, labels: &str, v: f64| {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        };
        let mut last = "";
        for ((name, l), v) in &r.counters {
            if *name != last {
                head(&mut out, name, "counter");
                last = name;
            }
            sample(&mut out, name, l, *v);
        }
        last = "";
        for ((name, l), v) in &r.gauges {
            if *name != last {
                head(&mut out, name, "gauge");
                last = name;
            }
            sample(&mut out, name, l, *v);
        }
        last = "";
        for ((name, l), h) in &r.histograms {
            if *name != last {
                head(&mut out, name, "histogram");
                last = name;
            }
            let sep = if l.is_empty() { "" } else { "," };
            for (b, c) in h.bounds.iter().zip(&h.counts) {
                let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"{b}\"}} {c}");
            }
            let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {}", h.count);
            sample(&mut out, &format!("{name}_sum"), l, h.sum);
            sample(&mut out, &format!("{name}_count"), l, h.count as f64);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.describe("lat", "histogram", "latency");
        let l = labels(&[("model", "a\"b")]);
        for v in [0.003, 0.003, 0.2, 100.0] {
            m.observe("lat", l.clone(), LATENCY_BUCKETS, v);
        }
        let text = m.render();
        assert!(text.contains("# TYPE lat histogram"), "{text}");
        assert!(text.contains(r#"lat_bucket{model="a\"b",le="0.001"} 0"#), "{text}");
        assert!(text.contains(r#"lat_bucket{model="a\"b",le="0.005"} 2"#), "{text}");
        assert!(text.contains(r#"lat_bucket{model="a\"b",le="0.25"} 3"#), "{text}");
        assert!(text.contains(r#"lat_bucket{model="a\"b",le="+Inf"} 4"#), "{text}");
        assert!(text.contains(r#"lat_count{model="a\"b"} 4"#), "{text}");
    }
}
