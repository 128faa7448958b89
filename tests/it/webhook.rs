//! `earshot serve` with `[sources.webhook]`, as users run it: MinIO-shaped notifications with
//! right, wrong and missing bearer tokens; a burst larger than the queue (503 + Retry-After, and
//! every accepted job completes); `/metrics` after a few jobs; and S3 → SNS → HTTP subscription on
//! LocalStack (confirmation, signature verification, tampered and forged messages refused).

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use earshot::config::{SnsWebhookConfig, WebhookConfig};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
const TOKEN: &str = "minio-webhook-token-0123456789";

/// MinIO's webhook body (tests/fixtures/events/minio-put.json) for one object.
fn minio_event(bucket: &str, key: &str) -> Value {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events/minio-put.json");
    let mut event: Value =
        serde_json::from_slice(&std::fs::read(fixture).expect("fixture")).expect("JSON fixture");
    let encoded = earshot::storage::encode_key(key);
    event["Key"] = json!(format!("{bucket}/{encoded}"));
    let record = &mut event["Records"][0]["s3"];
    record["bucket"]["name"] = json!(bucket);
    record["bucket"]["arn"] = json!(format!("arn:aws:s3:::{bucket}"));
    let object = record["object"].as_object_mut().expect("object");
    object.insert("key".to_owned(), json!(encoded));
    object.remove("eTag");
    object.remove("size");
    event
}

struct Setup {
    s3: aws_sdk_s3::Client,
    bucket: String,
    dir: tempfile::TempDir,
    known_bad: std::path::PathBuf,
    clean: std::path::PathBuf,
    port: u16,
}

async fn setup() -> Setup {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (known_bad, _) = known_bad_in_library(dir.path()).await;
    let clean = tone(&dir.path().join("clean.mp3"), 3.0, 330, &["-b:a", "96k"]);
    Setup {
        s3,
        bucket,
        dir,
        known_bad,
        clean,
        port: free_port(),
    }
}

impl Setup {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `earshot serve` with `[sources.webhook]` as `webhook` leaves it.
    async fn start(&self, callback_url: &str, webhook: impl FnOnce(&mut WebhookConfig)) -> Daemon {
        self.start_at(LOCALSTACK, callback_url, webhook).await
    }

    /// [`Setup::start`] reaching S3 at `endpoint`.
    async fn start_at(
        &self,
        endpoint: &str,
        callback_url: &str,
        webhook: impl FnOnce(&mut WebhookConfig),
    ) -> Daemon {
        let library = self.dir.path().join("library");
        let mut config = config_at(endpoint, &self.bucket, callback_url, "move", &library);
        let mut source = webhook_source(self.port, Some(TOKEN));
        webhook(&mut source);
        config.sources.webhook = Some(source);
        let mut daemon = Daemon::start(self.dir.path(), &config);
        daemon
            .wait_until_listening(&format!("{}/healthz", self.base()))
            .await;
        daemon
    }

    async fn put(&self, key: &str, file: &Path) {
        put_file(&self.s3, &self.bucket, key, file, "audio/mpeg").await;
    }
}

async fn post_minio(base: &str, token: Option<&str>, event: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/minio"))
        .json(event);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("webhook answers")
}

/// The value of one sample line of a Prometheus text page.
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{page}"))
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minio_webhook_checks_the_bearer_token_and_metrics_count_the_jobs() {
    let setup = setup().await;
    let listener = Listener::start().await;
    let daemon = setup.start(&listener.url, |_| {}).await;
    setup.put("audio/known-bad.mp3", &setup.known_bad).await;
    setup.put("audio/clean.mp3", &setup.clean).await;
    setup
        .put("audio/unauthenticated.mp3", &setup.known_bad)
        .await;

    let base = setup.base();
    let refused = minio_event(&setup.bucket, "audio/unauthenticated.mp3");
    let missing = post_minio(&base, None, &refused).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let wrong = post_minio(&base, Some("minio-webhook-token-0123456780"), &refused).await;
    assert_eq!(wrong.status(), 401);

    for key in ["audio/known-bad.mp3", "audio/clean.mp3"] {
        let answer = post_minio(&base, Some(TOKEN), &minio_event(&setup.bucket, key)).await;
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.expect("JSON answer");
        assert_eq!(body["accepted"], 1);
    }
    let malformed = reqwest::Client::new()
        .post(format!("{base}/minio"))
        .bearer_auth(TOKEN)
        .body("{\"EventName\": ")
        .send()
        .await
        .expect("answers");
    assert_eq!(malformed.status(), 400);

    // Refused requests were answered (401, 400) before anything could be queued; the job counts
    // on /metrics below confirm that only the two accepted jobs ran.
    let callbacks = listener.wait_for(2, WAIT).await;
    assert_eq!(
        listener.received().len(),
        2,
        "refused requests judged nothing"
    );
    let bodies: Vec<Value> = callbacks.iter().map(Received::json).collect();
    let blocked = bodies
        .iter()
        .find(|b| {
            b["data"]["url"]
                .as_str()
                .unwrap_or("")
                .ends_with("known-bad.mp3")
        })
        .expect("callback for the known-bad upload");
    assert_eq!(blocked["data"]["forbidden_status"], 2);
    assert_eq!(
        head_status(&setup.s3, &setup.bucket, "audio/unauthenticated.mp3").await,
        200,
        "the object of a refused request is untouched"
    );

    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("answers");
    assert_eq!(ready.status(), 200);
    // A job is counted when it ends, just after its callback was answered: the page is read
    // once both jobs are counted.
    let job_lines = |page: &str| {
        page.lines()
            .filter(|l| l.starts_with("earshot_jobs_total{"))
            .count()
    };
    let page = eventually(WAIT, "both jobs counted on /metrics", || {
        let client = client.clone();
        let base = base.clone();
        async move {
            let page = client.get(format!("{base}/metrics")).send().await.ok()?;
            let ok = page.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/plain; version=0.0.4");
            assert!(ok, "the Prometheus text format");
            let page = page.text().await.ok()?;
            (job_lines(&page) == 2).then_some(page)
        }
    })
    .await;
    let jobs = |outcome: &str| {
        sample(
            &page,
            &format!("earshot_jobs_total{{rule=\"uploads\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(jobs("blocked"), 1.0);
    assert_eq!(jobs("passed"), 1.0);
    assert_eq!(
        sample(
            &page,
            "earshot_callback_deliveries_total{result=\"delivered\"}"
        ),
        2.0
    );
    let sizes = std::fs::metadata(&setup.known_bad).expect("exists").len()
        + std::fs::metadata(&setup.clean).expect("exists").len();
    assert_eq!(sample(&page, "earshot_fetched_bytes_total"), sizes as f64);
    assert_eq!(
        sample(&page, "earshot_stage_seconds_count{stage=\"fetch\"}"),
        2.0
    );
    assert_eq!(
        sample(&page, "earshot_stage_seconds_count{stage=\"block\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &page,
            "earshot_stage_seconds_bucket{stage=\"job\",le=\"+Inf\"}"
        ),
        2.0
    );
    let requests = |status: &str| {
        sample(
            &page,
            &format!("earshot_webhook_requests_total{{endpoint=\"minio\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(requests("401"), 2.0);
    assert_eq!(requests("200"), 2.0);
    assert_eq!(requests("400"), 1.0);
    assert_eq!(
        sample(&page, "earshot_queue_depth{source=\"webhook\"}"),
        0.0
    );
    assert_eq!(sample(&page, "earshot_jobs_in_flight"), 0.0);
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    for family in earshot::metrics::Metrics::families(&page) {
        assert!(
            readme.contains(&format!("`{family}")),
            "/metrics exports {family}, which the README does not document"
        );
    }

    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "log:\n{log}");
}

/// S3 stops answering for longer than the webhook's retries last: the accepted job is parked in
/// the bucket once S3 answers again (never dropped), and `earshot jobs replay` judges it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_the_webhook_gives_up_on_is_parked_and_judged_after_replay() {
    let setup = setup().await;
    let listener = Listener::start().await;
    let gate = gate::Gate::start(LOCALSTACK.trim_start_matches("http://")).await;
    let mut daemon = setup
        .start_at(&gate.url, &listener.url, |webhook| {
            webhook.max_attempts = 2;
            webhook.retry_initial_ms = 200;
        })
        .await;
    setup.put("audio/known-bad.mp3", &setup.known_bad).await;
    let metrics = |series: String| {
        let base = setup.base();
        async move {
            let page = reqwest::get(format!("{base}/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            page.lines()
                .find_map(|line| line.strip_prefix(series.as_str())?.strip_prefix(' '))
                .and_then(|v| v.parse::<f64>().ok())
        }
    };

    gate.close();
    let event = minio_event(&setup.bucket, "audio/known-bad.mp3");
    let answer = post_minio(&setup.base(), Some(TOKEN), &event).await;
    assert_eq!(answer.status(), 200, "accepted while S3 is down");
    // Evidence that both runs failed and the parking write is being retried.
    let failed = "earshot_jobs_total{rule=\"uploads\",outcome=\"failed\"}";
    eventually(WAIT, "two failed runs", || async {
        metrics(failed.to_owned()).await.filter(|&n| n >= 2.0)
    })
    .await;
    eventually(WAIT, "a failed parking write in the log", || async {
        daemon
            .log()
            .contains("Parking the job failed; retrying.")
            .then_some(())
    })
    .await;
    daemon.assert_running();

    gate.open();
    let parked = "earshot_jobs_parked_total{source=\"webhook\"}";
    eventually(WAIT, "the job parked", || async {
        metrics(parked.to_owned()).await.filter(|&n| n == 1.0)
    })
    .await;
    assert_eq!(
        listener.received().len(),
        0,
        "a parked job is not judged and not called back"
    );
    let dead = earshot::state::dead_jobs(&setup.s3, &setup.bucket)
        .await
        .expect("dead jobs list");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].1.job.key, "audio/known-bad.mp3");
    assert_eq!(dead[0].1.source, "webhook");
    assert!(
        dead[0].1.reason.starts_with("gave up after 2 runs"),
        "{}",
        dead[0].1.reason
    );

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_earshot"))
        .arg("--config")
        .arg(setup.dir.path().join("earshot.toml"))
        .args(["jobs", "replay", &format!("s3://{}", setup.bucket)])
        .output()
        .await
        .expect("earshot jobs replay runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "blocked s3://{}/audio/known-bad.mp3",
            setup.bucket
        )),
        "{stdout}"
    );
    let callbacks = listener.wait_for(1, WAIT).await;
    let body = callbacks[0].json();
    assert_eq!(body["code"], 0, "{body}");
    assert_eq!(body["data"]["forbidden_status"], 2, "{body}");
    assert!(
        earshot::state::dead_jobs(&setup.s3, &setup.bucket)
            .await
            .expect("dead jobs list")
            .is_empty(),
        "a replayed job leaves the dead-job area"
    );
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_larger_than_the_queue_is_answered_503_and_every_accepted_job_completes() {
    let setup = setup().await;
    // A slow callback receiver keeps the single worker busy, so the queue of 2 fills.
    let listener = Listener::start_with_delay(Duration::from_millis(700)).await;
    let daemon = setup
        .start(&listener.url, |webhook| {
            webhook.max_concurrency = 1;
            webhook.queue_capacity = 2;
            webhook.retry_after_secs = 3;
        })
        .await;
    let keys: Vec<String> = (0..10).map(|i| format!("audio/burst-{i}.mp3")).collect();
    for key in &keys {
        setup.put(key, &setup.clean).await;
    }

    let base = setup.base();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for key in &keys {
        let answer = post_minio(&base, Some(TOKEN), &minio_event(&setup.bucket, key)).await;
        match answer.status().as_u16() {
            200 => accepted.push(key.clone()),
            503 => {
                assert_eq!(
                    answer.headers().get("retry-after").map(|v| v.as_bytes()),
                    Some(&b"3"[..])
                );
                refused.push(key.clone());
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        !refused.is_empty(),
        "a burst of 10 into a queue of 2 must be refused in part"
    );
    assert!(accepted.len() >= 2, "accepted: {accepted:?}");

    // Every accepted job completes.
    let callbacks = listener.wait_for(accepted.len(), WAIT).await;
    let called_back = |key: &str| {
        callbacks.iter().any(|c| {
            c.json()["data"]["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(key))
        })
    };
    for key in &accepted {
        assert!(called_back(key), "accepted job {key} was not called back");
    }

    // The sender retries the refused ones, as MinIO does, until they are accepted.
    for key in &refused {
        eventually(WAIT, &format!("{key} accepted"), || async {
            let answer = post_minio(&base, Some(TOKEN), &minio_event(&setup.bucket, key)).await;
            (answer.status() == 200).then_some(())
        })
        .await;
    }
    let callbacks = listener.wait_for(keys.len(), WAIT).await;
    assert_eq!(callbacks.len(), keys.len());
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sns_subscription_is_confirmed_verified_and_tampering_refused() {
    let setup = setup().await;
    let sns = aws_sdk_sns::Client::new(
        &earshot::storage::sdk_config(&s3_config(LOCALSTACK), Some(LOCALSTACK)).await,
    );
    let topic_arn = sns
        .create_topic()
        .name(unique("earshot-uploads"))
        .send()
        .await
        .expect("topic created")
        .topic_arn
        .expect("topic arn");
    let callbacks = Listener::start().await;
    let daemon = setup
        .start(&callbacks.url, |webhook| {
            webhook.minio = None;
            webhook.sns = Some(SnsWebhookConfig {
                topic_arns: vec![topic_arn.clone()],
                trusted_cert_origins: vec![LOCALSTACK.to_owned()],
            });
        })
        .await;

    // earshot's subscription: LocalStack sends a signed SubscriptionConfirmation, earshot checks
    // it and visits SubscribeURL.
    let endpoint = format!("{}/sns", setup.base());
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("http")
        .endpoint(&endpoint)
        .send()
        .await
        .expect("subscribed");
    // A peer subscriber (the test) receives the same signed messages, to tamper with.
    let peer = Listener::start().await;
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("http")
        .endpoint(&peer.url)
        .send()
        .await
        .expect("peer subscribed");
    let confirmation = peer.wait_for(1, WAIT).await[0].json();
    let subscribe_url = confirmation["SubscribeURL"].as_str().expect("SubscribeURL");
    reqwest::get(subscribe_url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("peer confirms");

    eventually(WAIT, "earshot confirming its subscription", || async {
        let subscriptions = sns
            .list_subscriptions_by_topic()
            .topic_arn(&topic_arn)
            .send()
            .await
            .expect("listed");
        subscriptions
            .subscriptions()
            .iter()
            .any(|s| {
                s.endpoint() == Some(endpoint.as_str())
                    && s.subscription_arn()
                        .is_some_and(|arn| arn.starts_with("arn:"))
            })
            .then_some(())
    })
    .await;

    // An object that must never be judged: only a tampered message names it.
    setup.put("audio/other.mp3", &setup.known_bad).await;
    setup
        .s3
        .put_bucket_notification_configuration()
        .bucket(&setup.bucket)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .topic_configurations(
                    aws_sdk_s3::types::TopicConfiguration::builder()
                        .topic_arn(&topic_arn)
                        .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
                        .build()
                        .expect("topic configuration"),
                )
                .build(),
        )
        .send()
        .await
        .expect("bucket notifications to SNS");
    setup.put("audio/known-bad.mp3", &setup.known_bad).await;

    let judged = callbacks.wait_for(1, WAIT).await[0].json();
    assert_eq!(judged["data"]["forbidden_status"], 2, "{judged}");
    assert!(
        judged["data"]["url"]
            .as_str()
            .expect("url")
            .ends_with("audio/known-bad.mp3")
    );

    // The peer's copy of the notification, genuine and then altered.
    let notification = eventually(WAIT, "the peer's copy of the notification", || async {
        peer.received().iter().map(Received::json).find(|m| {
            m["Type"] == "Notification"
                && m["Message"]
                    .as_str()
                    .is_some_and(|s| s.contains("known-bad.mp3"))
        })
    })
    .await;
    let client = reqwest::Client::new();
    let post = |message: Value| {
        let client = client.clone();
        let endpoint = endpoint.clone();
        async move {
            client
                .post(&endpoint)
                .header("x-amz-sns-message-type", "Notification")
                .body(message.to_string())
                .send()
                .await
                .expect("answers")
                .status()
                .as_u16()
        }
    };
    let mut tampered = notification.clone();
    tampered["Message"] = json!(
        notification["Message"]
            .as_str()
            .expect("message")
            .replace("known-bad.mp3", "other.mp3")
    );
    assert_eq!(post(tampered).await, 403, "a tampered message is refused");
    let mut forged_cert = notification.clone();
    forged_cert["SigningCertURL"] = json!("https://sns.us-east-1.amazonaws.com.evil.example/c.pem");
    assert_eq!(
        post(forged_cert).await,
        403,
        "a foreign certificate is refused"
    );
    let mut other_topic = notification.clone();
    other_topic["TopicArn"] = json!("arn:aws:sns:us-east-1:000000000000:someone-else");
    assert_eq!(
        post(other_topic).await,
        403,
        "a topic not configured is refused"
    );
    assert_eq!(post(json!({"Type": "Notification"})).await, 400);
    assert_eq!(
        post(notification).await,
        200,
        "the genuine message passes (a duplicate: judged once)"
    );

    // The tampered messages were refused (403) before anything was queued; the genuine one, a
    // duplicate, is judged once: wait until it has been recognised as such.
    let duplicate = "earshot_jobs_total{rule=\"uploads\",outcome=\"duplicate\"}";
    eventually(WAIT, "the duplicate notification processed", || async {
        scrape(&setup.base(), duplicate).await.filter(|&n| n >= 1.0)
    })
    .await;
    let judged = callbacks
        .received()
        .iter()
        .filter(|c| {
            c.json()["data"]["url"]
                .as_str()
                .unwrap_or("")
                .ends_with("known-bad.mp3")
        })
        .count();
    assert_eq!(judged, 1, "the object is judged once");
    assert_eq!(
        head_status(&setup.s3, &setup.bucket, "audio/other.mp3").await,
        200,
        "the object named only by the tampered message was not touched"
    );
    assert!(
        callbacks.received().iter().all(|c| !c.json()["data"]["url"]
            .as_str()
            .unwrap_or("")
            .ends_with("other.mp3")),
        "no job for the tampered message"
    );
    let log = daemon.log();
    assert!(log.contains("SNS subscription confirmed"), "log:\n{log}");
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "log:\n{log}");
}
