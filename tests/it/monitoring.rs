//! `infra/monitoring/` is checked, not just written: the alerting rules pass `promtool check
//! rules` and fire on the sample series of their `promtool test rules` file; every dashboard query
//! is valid PromQL; every metric the rules and the dashboard name is one earshot exports, and the
//! dashboard shows every family earshot exports; the `/metrics` page passes `promtool check
//! metrics`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use earshot::metrics::Metrics;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn monitoring() -> PathBuf {
    root().join("infra/monitoring")
}

fn promtool() -> Command {
    let path = root().join(".earshot/tools/bin/promtool");
    assert!(
        path.exists(),
        "{} is missing; scripts/install-deps.sh takes it out of Debian's prometheus package",
        path.display()
    );
    Command::new(path)
}

fn succeeds(command: &mut Command, what: &str) -> String {
    crate::common::succeeded(command.output().expect("promtool runs"), what)
}

/// Every `earshot_…` name in a file.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("earshot_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

/// The dashboard's queries, with Grafana's variables given values Prometheus accepts.
fn dashboard_queries() -> Vec<String> {
    let dashboard: serde_json::Value = serde_json::from_slice(
        &std::fs::read(monitoring().join("earshot-dashboard.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    panels
        .iter()
        .filter_map(|panel| panel["targets"].as_array())
        .flatten()
        .map(|target| {
            target["expr"]
                .as_str()
                .expect("every target has a query")
                .replace("$__rate_interval", "5m")
                .replace("$instance", ".*")
        })
        .collect()
}

/// The sample names a family is exported under, as Prometheus sees them.
fn exported_names() -> (BTreeSet<String>, BTreeSet<String>) {
    let families = Metrics::families(&Metrics::with_every_family().render());
    let mut samples = BTreeSet::new();
    for family in &families {
        // A counter's family is named with its `_total`; a histogram's samples have suffixes.
        for suffix in ["", "_bucket", "_sum", "_count"] {
            samples.insert(format!("{family}{suffix}"));
        }
    }
    (families, samples)
}

#[test]
fn alerting_rules_pass_promtool_and_fire_on_their_sample_series() {
    let rules = monitoring().join("earshot-alerts.yml");
    let checked = succeeds(
        promtool().arg("check").arg("rules").arg(&rules),
        "promtool check rules",
    );
    assert!(checked.contains("SUCCESS: 7 rules found"), "{checked}");
    // Every alert has a test case that expects it to fire.
    let tests =
        std::fs::read_to_string(monitoring().join("earshot-alerts.test.yml")).expect("tests");
    let alerts = std::fs::read_to_string(&rules).expect("rules");
    for alert in alerts
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!(
                "alertname: {alert}\n        exp_alerts:\n          - "
            )),
            "no test case expects {alert} to fire"
        );
    }
    let tested = succeeds(
        promtool()
            .current_dir(monitoring())
            .arg("test")
            .arg("rules")
            .arg("earshot-alerts.test.yml"),
        "promtool test rules",
    );
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    // promtool parses the queries of recording rules: one rule per panel query.
    let queries = dashboard_queries();
    assert!(queries.len() >= 15, "{queries:?}");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in queries.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::to_string(query).expect("a string")
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dashboard-queries.yml");
    std::fs::write(&file, rules).expect("write rules");
    let checked = succeeds(
        promtool().arg("check").arg("rules").arg(&file),
        "promtool check rules (the dashboard's queries)",
    );
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{checked}"
    );
}

#[test]
fn every_metric_the_rules_and_dashboard_name_is_one_earshot_exports() {
    let (families, samples) = exported_names();
    assert!(families.len() >= 17, "{families:?}");
    for file in [
        "earshot-alerts.yml",
        "earshot-alerts.test.yml",
        "earshot-dashboard.json",
    ] {
        let text = std::fs::read_to_string(monitoring().join(file)).expect("file");
        let named = metric_names(&text);
        assert!(!named.is_empty(), "{file} names no metric");
        let unknown: Vec<&String> = named.difference(&samples).collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics earshot does not export: {unknown:?}"
        );
    }
    // And the dashboard shows every family.
    let shown = dashboard_queries().join("\n");
    let missing: Vec<&String> = families
        .iter()
        .filter(|family| {
            !["", "_bucket"]
                .iter()
                .any(|suffix| metric_names(&shown).contains(&format!("{family}{suffix}")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard does not show {missing:?}"
    );
}

#[test]
fn the_metrics_page_passes_promtool_check_metrics() {
    let metrics = Metrics::with_every_family();
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    std::io::Write::write_all(
        &mut child.stdin.take().expect("stdin"),
        metrics.render().as_bytes(),
    )
    .expect("page written");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The S3 client's error counter, against LocalStack and a port nobody listens on: a 404 (an
/// answer earshot asks for) is a request and not an error; a request nobody answers is one, by
/// operation, at every attempt.
#[tokio::test]
async fn s3_errors_are_counted_by_operation_and_status_and_a_404_is_not_one() {
    use crate::common::{LOCALSTACK, require_localstack, s3_config, unique};
    require_localstack();
    let metrics = Metrics::default();
    let s3 =
        earshot::storage::s3_client_counted(&s3_config(LOCALSTACK), metrics.s3_counters()).await;
    let bucket = unique("errors");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let missing = s3.head_object().bucket(&bucket).key("nothing").send().await;
    assert_eq!(
        missing
            .expect_err("no such key")
            .raw_response()
            .map(|r| r.status().as_u16()),
        Some(404)
    );
    let page = metrics.render();
    assert!(
        page.contains("earshot_s3_requests_total{operation=\"HeadObject\"} 1\n"),
        "{page}"
    );
    assert!(!page.contains("earshot_s3_errors_total{"), "{page}");

    // Nobody listens on a port just freed: every attempt (the SDK retries) is unreachable.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let nowhere = earshot::storage::s3_client_counted(
        &s3_config(&format!("http://127.0.0.1:{port}")),
        metrics.s3_counters(),
    )
    .await;
    nowhere
        .get_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .expect_err("nobody answers");
    let page = metrics.render();
    let requests = sample(&page, "earshot_s3_requests_total{operation=\"GetObject\"}");
    let unreachable = sample(
        &page,
        "earshot_s3_errors_total{operation=\"GetObject\",status=\"unreachable\"}",
    );
    assert!(requests >= 1 && unreachable == requests, "{page}");
}

/// The value of the sample named exactly `name` (labels included) on a page, 0 when absent.
fn sample(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}
