//! Metrics: counters, gauges and latency histograms kept in memory and rendered in the Prometheus
//! text exposition format (version 0.0.4) for `/metrics`. The pipeline records jobs, stages, bytes
//! and callbacks; sources record their queue depth. No global registry: the [`Metrics`] lives in
//! the [`crate::pipeline::Pipeline`] and is shared with whoever serves it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// What each metric family is, for the `# HELP` and `# TYPE` lines.
const FAMILIES: [(&str, &str, &str); 8] = [
    (
        "earshot_jobs_total",
        "counter",
        "Jobs by rule and outcome (passed, blocked, suspicious, unjudged, duplicate, skipped, failed).",
    ),
    (
        "earshot_stage_seconds",
        "histogram",
        "Time spent per stage of a job (fetch, analyse, block, callback, job).",
    ),
    (
        "earshot_fetched_bytes_total",
        "counter",
        "Bytes downloaded from object storage.",
    ),
    (
        "earshot_callback_deliveries_total",
        "counter",
        "Callbacks by result (delivered, failed: kept as a dead letter).",
    ),
    (
        "earshot_callback_attempts_total",
        "counter",
        "Callback POSTs sent, retries included.",
    ),
    (
        "earshot_queue_depth",
        "gauge",
        "Jobs accepted by a source and waiting for a worker.",
    ),
    (
        "earshot_jobs_in_flight",
        "gauge",
        "Jobs being processed right now.",
    ),
    (
        "earshot_webhook_requests_total",
        "counter",
        "Webhook requests by endpoint and HTTP status.",
    ),
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Registry {
    /// (family, rendered labels) → value, for counters and gauges.
    values: BTreeMap<(&'static str, String), f64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

/// The process's metrics. Cheap to update from many tasks: one short lock per update.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Metrics {
    /// Adds `by` to a counter.
    pub fn add(&self, name: &'static str, labels: &[(&str, &str)], by: f64) {
        *self
            .lock()
            .values
            .entry((name, render(labels)))
            .or_default() += by;
    }

    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1.0);
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        self.lock().values.insert((name, render(labels)), value);
    }

    /// Records one observation in a histogram.
    pub fn observe(&self, name: &'static str, labels: &[(&str, &str)], elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut registry = self.lock();
        let histogram = registry
            .histograms
            .entry((name, render(labels)))
            .or_default();
        for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let registry = self.lock();
        let mut out = String::new();
        for (family, kind, help) in FAMILIES {
            let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} {kind}");
            for ((name, labels), value) in &registry.values {
                if *name == family {
                    let _ = writeln!(out, "{family}{} {value}", braces(labels));
                }
            }
            for ((name, labels), histogram) in &registry.histograms {
                if *name != family {
                    continue;
                }
                for (count, bound) in histogram.counts.iter().zip(BUCKETS) {
                    let le = join(labels, &format!("le=\"{bound}\""));
                    let _ = writeln!(out, "{family}_bucket{{{le}}} {count}");
                }
                let le = join(labels, "le=\"+Inf\"");
                let _ = writeln!(out, "{family}_bucket{{{le}}} {}", histogram.count);
                let _ = writeln!(out, "{family}_sum{} {}", braces(labels), histogram.sum);
                let _ = writeln!(out, "{family}_count{} {}", braces(labels), histogram.count);
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .expect("the metrics lock is never poisoned: nothing panics while holding it")
    }
}

/// `a="x",b="y"`, values escaped as the format requires.
fn render(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(name, value)| {
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{value}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn braces(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}

fn join(labels: &str, extra: &str) -> String {
    if labels.is_empty() {
        extra.to_owned()
    } else {
        format!("{labels},{extra}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let metrics = Metrics::default();
        metrics.inc(
            "earshot_jobs_total",
            &[("rule", "podcasts"), ("outcome", "blocked")],
        );
        metrics.inc(
            "earshot_jobs_total",
            &[("rule", "podcasts"), ("outcome", "blocked")],
        );
        metrics.set("earshot_queue_depth", &[("source", "webhook")], 3.0);
        metrics.observe(
            "earshot_stage_seconds",
            &[("stage", "fetch")],
            Duration::from_millis(30),
        );
        let text = metrics.render();
        assert!(text.contains("earshot_jobs_total{rule=\"podcasts\",outcome=\"blocked\"} 2\n"));
        assert!(text.contains("earshot_queue_depth{source=\"webhook\"} 3\n"));
        assert!(text.contains("earshot_stage_seconds_bucket{stage=\"fetch\",le=\"0.025\"} 0\n"));
        assert!(text.contains("earshot_stage_seconds_bucket{stage=\"fetch\",le=\"0.05\"} 1\n"));
        assert!(text.contains("earshot_stage_seconds_bucket{stage=\"fetch\",le=\"+Inf\"} 1\n"));
        assert!(text.contains("earshot_stage_seconds_count{stage=\"fetch\"} 1\n"));
        assert!(text.contains("# TYPE earshot_stage_seconds histogram\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(render(&[("key", "a\"b\\c\nd")]), r#"key="a\"b\\c\nd""#);
    }
}
