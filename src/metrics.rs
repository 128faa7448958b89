//! Metrics for `/metrics`, as typed `prometheus-client` families in one registry, rendered in the
//! Prometheus text format (0.0.4). A family is a field here and is registered where it is made, so
//! nothing can be recorded that is not exported. No global registry: [`Metrics`] lives in the
//! pipeline and is shared with whoever serves it. A leaf: it imports nothing of the crate.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    rule: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct S3ErrorLabels {
    operation: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    engine: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollLabels {
    engine: String,
    answer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BucketLabels {
    bucket: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineLabels {
    engine: String,
    via: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReviewLabels {
    rule: String,
    event: String,
}

type Stages = Family<StageLabels, Histogram, fn() -> Histogram>;
type PollsPerTask = Family<EngineNameLabels, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineNameLabels {
    engine: String,
}

/// Upper bounds of the polls-per-task histogram buckets.
const POLL_BUCKETS: [f64; 9] = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 256.0];

fn polls_histogram() -> Histogram {
    Histogram::new(POLL_BUCKETS)
}

/// The process's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    stages: Stages,
    fetched_bytes: Counter,
    callback_deliveries: Family<ResultLabels, Counter>,
    callback_attempts: Counter,
    queue_depth: Family<SourceLabels, Gauge>,
    jobs_in_flight: Gauge,
    webhook_requests: Family<RequestLabels, Counter>,
    engine_results: Family<EngineLabels, Counter>,
    jobs_parked: Family<SourceLabels, Counter>,
    reviews: Family<ReviewLabels, Counter>,
    s3_requests: Family<OperationLabels, Counter>,
    s3_errors: Family<S3ErrorLabels, Counter>,
    reference_reloads: Family<ReloadLabels, Counter>,
    review_open: Family<BucketLabels, Gauge>,
    review_oldest: Family<BucketLabels, Gauge>,
    review_timeout: Family<BucketLabels, Gauge>,
    engine_polls: Family<PollLabels, Counter>,
    task_polls: PollsPerTask,
}

fn stage_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let jobs = Family::default();
        registry.register(
            "earshot_jobs",
            "Jobs by rule and outcome (passed, blocked, suspicious, unjudged, duplicate, waiting, skipped, failed)",
            Family::clone(&jobs),
        );
        let stages: Stages = Family::new_with_constructor(stage_histogram);
        registry.register(
            "earshot_stage_seconds",
            "Time spent per stage of a job (fetch, analyse, block, callback, job)",
            stages.clone(),
        );
        let fetched_bytes = Counter::default();
        registry.register(
            "earshot_fetched_bytes",
            "Bytes downloaded from object storage",
            fetched_bytes.clone(),
        );
        let callback_deliveries = Family::default();
        registry.register(
            "earshot_callback_deliveries",
            "Callbacks by result (delivered; failed: kept as a dead letter)",
            Family::clone(&callback_deliveries),
        );
        let callback_attempts = Counter::default();
        registry.register(
            "earshot_callback_attempts",
            "Callback POSTs sent, retries included",
            callback_attempts.clone(),
        );
        let queue_depth = Family::default();
        registry.register(
            "earshot_queue_depth",
            "Jobs waiting for a worker: the webhook's accepted jobs, or the SQS queue's visible messages (sampled every 30 s)",
            Family::clone(&queue_depth),
        );
        let jobs_in_flight = Gauge::default();
        registry.register(
            "earshot_jobs_in_flight",
            "Jobs being processed right now",
            jobs_in_flight.clone(),
        );
        let webhook_requests = Family::default();
        registry.register(
            "earshot_webhook_requests",
            "Webhook requests by endpoint and HTTP status",
            Family::clone(&webhook_requests),
        );
        let engine_results = Family::default();
        registry.register(
            "earshot_engine_results",
            "Provider results taken, by engine and how they arrived (callback, poll)",
            Family::clone(&engine_results),
        );
        let jobs_parked = Family::default();
        registry.register(
            "earshot_jobs_parked",
            "Jobs parked in a bucket's dead-job area, by the source that gave them up",
            Family::clone(&jobs_parked),
        );
        let reviews = Family::default();
        registry.register(
            "earshot_reviews",
            "Human review: items opened, and decisions by verdict (block, pass, timeout-block, timeout-pass)",
            Family::clone(&reviews),
        );
        let s3_requests = Family::default();
        registry.register(
            "earshot_s3_requests",
            "Requests sent to object storage by the daemon's S3 client, by operation (HeadObject, GetObject, PutObject…), retries included",
            Family::clone(&s3_requests),
        );
        let s3_errors = Family::default();
        registry.register(
            "earshot_s3_errors",
            "Object storage requests that failed, by operation and HTTP status (`unreachable` when no answer came); the answers earshot asks for (404, 304, 409, 412) are not errors",
            Family::clone(&s3_errors),
        );
        let reference_reloads = Family::default();
        registry.register(
            "earshot_reference_reloads",
            "Checks of an engine's reference data (library, dictionaries), by engine and result (changed, unchanged, failed)",
            Family::clone(&reference_reloads),
        );
        let review_open = Family::default();
        registry.register(
            "earshot_review_open_items",
            "Review items waiting for a decision, by bucket (as of the last review sweep)",
            Family::clone(&review_open),
        );
        let review_oldest = Family::default();
        registry.register(
            "earshot_review_oldest_open_seconds",
            "Age of the oldest review item waiting for a decision, by bucket (0 when none; as of the last review sweep)",
            Family::clone(&review_oldest),
        );
        let review_timeout = Family::default();
        registry.register(
            "earshot_review_timeout_seconds",
            "The longest review_timeout_secs of the rules reviewed in a bucket: an item older than this is overdue",
            Family::clone(&review_timeout),
        );
        let engine_polls = Family::default();
        registry.register(
            "earshot_engine_polls",
            "Polls of a provider for a late result, by engine and answer (running, result, failed)",
            Family::clone(&engine_polls),
        );
        let task_polls: PollsPerTask = Family::new_with_constructor(polls_histogram);
        registry.register(
            "earshot_engine_task_polls",
            "Polls each provider task took before its result came by polling or its deadline passed, by engine",
            task_polls.clone(),
        );
        Metrics {
            registry,
            jobs,
            stages,
            fetched_bytes,
            callback_deliveries,
            callback_attempts,
            queue_depth,
            jobs_in_flight,
            webhook_requests,
            engine_results,
            jobs_parked,
            reviews,
            s3_requests,
            s3_errors,
            reference_reloads,
            review_open,
            review_oldest,
            review_timeout,
            engine_polls,
            task_polls,
        }
    }
}

/// The S3 client's counters: every request sent, and every one that failed.
#[derive(Clone, Debug)]
pub struct S3Counters {
    requests: Family<OperationLabels, Counter>,
    errors: Family<S3ErrorLabels, Counter>,
}

impl S3Counters {
    /// A request of `operation` (`GetObject`…) is being sent.
    pub fn request(&self, operation: &str) {
        self.requests
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .inc();
    }

    /// A request of `operation` was answered `status`, or not at all (`None`). Counted as an
    /// error unless it is a success or an answer earshot asks for: 404 (no such object), 304 and
    /// 412 (a condition not met: another daemon holds a lease) and 409.
    pub fn answered(&self, operation: &str, status: Option<u16>) {
        let status = match status {
            Some(200..=299 | 304 | 404 | 409 | 412) => return,
            Some(code) => code.to_string(),
            None => "unreachable".to_owned(),
        };
        self.errors
            .get_or_create(&S3ErrorLabels {
                operation: operation.to_owned(),
                status,
            })
            .inc();
    }
}

/// Counts a job in flight until dropped.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// A job ended with `outcome` under `rule` (`""` when no rule applied).
    pub fn job(&self, rule: &str, outcome: &str) {
        self.jobs
            .get_or_create(&JobLabels {
                rule: rule.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A job started; it counts as in flight until the guard is dropped.
    pub fn job_started(&self) -> InFlight {
        self.jobs_in_flight.inc();
        InFlight(self.jobs_in_flight.clone())
    }

    /// A stage of a job took the time since `started`.
    pub fn stage(&self, stage: &str, started: Instant) {
        self.stages
            .get_or_create(&StageLabels {
                stage: stage.to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
    }

    pub fn fetched_bytes(&self, bytes: u64) {
        self.fetched_bytes.inc_by(bytes);
    }

    /// A callback was delivered (or failed and was dead-lettered) after `attempts` POSTs.
    pub fn callback(&self, delivered: bool, attempts: u32) {
        let result = if delivered { "delivered" } else { "failed" };
        self.callback_deliveries
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
        self.callback_attempts.inc_by(u64::from(attempts));
    }

    pub fn queue_depth(&self, source: &str, depth: usize) {
        self.queue_depth
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    pub fn webhook_request(&self, endpoint: &str, status: u16) {
        self.webhook_requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_owned(),
                status: status.to_string(),
            })
            .inc();
    }

    /// A provider's result was taken, by `via` (`callback` or `poll`).
    pub fn engine_result(&self, engine: &str, via: &str) {
        self.engine_results
            .get_or_create(&EngineLabels {
                engine: engine.to_owned(),
                via: via.to_owned(),
            })
            .inc();
    }

    /// A job was parked in the dead-job area by `source`.
    pub fn parked(&self, source: &str) {
        self.jobs_parked
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .inc();
    }

    /// The S3 request and error counters, for [`crate::storage::s3_client_counted`]'s hook.
    pub fn s3_counters(&self) -> S3Counters {
        S3Counters {
            requests: self.s3_requests.clone(),
            errors: self.s3_errors.clone(),
        }
    }

    /// An engine checked its reference data: `result` is `changed`, `unchanged` or `failed`.
    pub fn reference_reload(&self, engine: &str, result: &str) {
        self.reference_reloads
            .get_or_create(&ReloadLabels {
                engine: engine.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// A provider was polled for a late result: `answer` is `running`, `result` or `failed`.
    pub fn engine_poll(&self, engine: &str, answer: &str) {
        self.engine_polls
            .get_or_create(&PollLabels {
                engine: engine.to_owned(),
                answer: answer.to_owned(),
            })
            .inc();
    }

    /// A provider task ended (its result polled, or its deadline passed) after `polls` polls.
    pub fn task_polls(&self, engine: &str, polls: u32) {
        self.task_polls
            .get_or_create(&EngineNameLabels {
                engine: engine.to_owned(),
            })
            .observe(f64::from(polls));
    }

    /// A review sweep read `bucket`'s queue: `open` items, the oldest `oldest_secs` old, under
    /// rules whose longest review timeout is `timeout_secs`.
    pub fn review_backlog(&self, bucket: &str, open: usize, oldest_secs: u64, timeout_secs: u64) {
        let labels = BucketLabels {
            bucket: bucket.to_owned(),
        };
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.review_open
            .get_or_create(&labels)
            .set(gauge(open as u64));
        self.review_oldest
            .get_or_create(&labels)
            .set(gauge(oldest_secs));
        self.review_timeout
            .get_or_create(&labels)
            .set(gauge(timeout_secs));
    }

    /// A review item was opened, or decided (`event` = `opened`, `block`, `pass`,
    /// `timeout-block`, `timeout-pass`).
    pub fn review(&self, rule: &str, event: &str) {
        self.reviews
            .get_or_create(&ReviewLabels {
                rule: rule.to_owned(),
                event: event.to_owned(),
            })
            .inc();
    }

    /// The families a page in the Prometheus text format exports (its `# TYPE` lines).
    pub fn families(page: &str) -> std::collections::BTreeSet<String> {
        page.lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    /// Metrics with one sample in every family (a family with none is not rendered): what a page
    /// that has seen every kind of event exports, for the checks of the README, the alerting
    /// rules and the dashboard against it.
    pub fn with_every_family() -> Metrics {
        let metrics = Metrics::default();
        metrics.job("r", "passed");
        let guard = metrics.job_started();
        metrics.stage("fetch", Instant::now());
        metrics.fetched_bytes(10);
        metrics.callback(true, 1);
        metrics.queue_depth("webhook", 0);
        metrics.webhook_request("minio", 200);
        metrics.engine_result("ams", "callback");
        metrics.parked("webhook");
        metrics.review("r", "opened");
        metrics.s3_counters().request("GetObject");
        metrics.s3_counters().answered("GetObject", Some(503));
        metrics.reference_reload("local", "failed");
        metrics.review_backlog("b", 1, 60, 3600);
        metrics.engine_poll("ams", "running");
        metrics.task_polls("ams", 3);
        drop(guard);
        metrics
    }

    /// Every family, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let metrics = Metrics::default();
        metrics.job("podcasts", "blocked");
        metrics.job("podcasts", "blocked");
        metrics.queue_depth("webhook", 3);
        metrics.stage(
            "fetch",
            Instant::now()
                .checked_sub(std::time::Duration::from_millis(30))
                .expect("the clock is past 30 ms"),
        );
        let text = metrics.render();
        assert!(
            text.contains("earshot_jobs_total{rule=\"podcasts\",outcome=\"blocked\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("earshot_queue_depth{source=\"webhook\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("earshot_stage_seconds_bucket{stage=\"fetch\",le=\"0.025\"} 0\n"));
        assert!(text.contains("earshot_stage_seconds_bucket{stage=\"fetch\",le=\"+Inf\"} 1\n"));
        assert!(text.contains("earshot_stage_seconds_count{stage=\"fetch\"} 1\n"));
        assert!(
            text.contains("# TYPE earshot_stage_seconds histogram\n"),
            "{text}"
        );
    }

    #[test]
    fn in_flight_jobs_are_counted_until_their_guard_drops() {
        let metrics = Metrics::default();
        let first = metrics.job_started();
        let second = metrics.job_started();
        assert!(metrics.render().contains("earshot_jobs_in_flight 2\n"));
        drop((first, second));
        assert!(metrics.render().contains("earshot_jobs_in_flight 0\n"));
    }

    /// Every recording method reaches an exported family, and the exported families are exactly
    /// those the README documents.
    #[test]
    fn every_family_recorded_is_exported_and_documented() {
        let metrics = Metrics::with_every_family();
        let exported = Metrics::families(&metrics.render());
        let readme = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"),
        )
        .expect("README.md");
        let documented: std::collections::BTreeSet<String> = readme
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|quoted| quoted.starts_with("earshot_"))
            .map(|quoted| quoted.split('{').next().unwrap_or(quoted).to_owned())
            .collect();
        assert_eq!(exported.len(), 19, "one family per method: {exported:?}");
        assert_eq!(
            exported, documented,
            "families exported (left) and documented in the README (right) differ"
        );
    }

    #[test]
    fn s3_answers_earshot_asks_for_are_not_errors() {
        let metrics = Metrics::default();
        let s3 = metrics.s3_counters();
        for status in [
            Some(200),
            Some(204),
            Some(304),
            Some(404),
            Some(409),
            Some(412),
        ] {
            s3.answered("HeadObject", status);
        }
        assert!(!metrics.render().contains("earshot_s3_errors_total{"));
        s3.answered("GetObject", Some(503));
        s3.answered("GetObject", None);
        s3.answered("PutObject", Some(403));
        let text = metrics.render();
        for line in [
            "earshot_s3_errors_total{operation=\"GetObject\",status=\"503\"} 1\n",
            "earshot_s3_errors_total{operation=\"GetObject\",status=\"unreachable\"} 1\n",
            "earshot_s3_errors_total{operation=\"PutObject\",status=\"403\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::default();
        metrics.job("a\"b\\c\nd", "passed");
        assert!(
            metrics
                .render()
                .contains(r#"earshot_jobs_total{rule="a\"b\\c\nd",outcome="passed"} 1"#)
        );
    }
}
