//! `earshot serve` as users run it: the real binary, polling a LocalStack SQS queue that the
//! bucket's ObjectCreated notifications feed, calling back a real listener.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use earshot::config::EngineConfig;
use earshot::layout::JOBS_PREFIX;

const WAIT: Duration = Duration::from_secs(60);

struct Setup {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    bucket: String,
    queue_url: String,
    dir: tempfile::TempDir,
    known_bad: PathBuf,
    /// The daemon's admin listener (`/metrics`).
    admin_port: u16,
}

impl Setup {
    fn admin(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// Messages on the queue, visible or in flight.
    async fn messages(&self) -> i64 {
        use aws_sdk_sqs::types::QueueAttributeName as Name;
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(Name::ApproximateNumberOfMessages)
            .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes");
        let count = |name: Name| -> i64 {
            attributes
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        count(Name::ApproximateNumberOfMessages)
            + count(Name::ApproximateNumberOfMessagesNotVisible)
    }
}

/// A bucket whose ObjectCreated events go to a fresh queue, and a library with one known-bad clip.
async fn setup() -> Setup {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let (sqs, queue_url) = fresh_queue(&s3, Some(&bucket)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (known_bad, _) = known_bad_in_library(dir.path()).await;
    Setup {
        s3,
        sqs,
        bucket,
        queue_url,
        dir,
        known_bad,
        admin_port: free_port(),
    }
}

/// `earshot serve` on the setup's queue.
async fn start(setup: &Setup, callback_url: &str, visibility_secs: u32) -> Daemon {
    start_with(setup, callback_url, visibility_secs, 30).await
}

async fn start_with(
    setup: &Setup,
    callback_url: &str,
    visibility_secs: u32,
    refresh_secs: u64,
) -> Daemon {
    let library = setup.dir.path().join("library");
    let mut config = config_at(LOCALSTACK, &setup.bucket, callback_url, "move", &library);
    config.sources.sqs = Some(sqs_source(&setup.queue_url, 4, visibility_secs));
    config.limits.max_object_bytes = 200_000;
    config.admin.listen = Some(format!("127.0.0.1:{}", setup.admin_port));
    let Some(EngineConfig::Local(local)) = config.engines.get_mut("local") else {
        panic!("the test config has a local engine");
    };
    local.refresh_secs = refresh_secs;
    Daemon::start(setup.dir.path(), &config)
}

async fn upload(setup: &Setup, key: &str, path: &Path) -> String {
    let out = setup
        .s3
        .put_object()
        .bucket(&setup.bucket)
        .key(key)
        .body(
            aws_sdk_s3::primitives::ByteStream::from_path(path)
                .await
                .expect("readable"),
        )
        .send()
        .await
        .expect("put");
    out.e_tag().expect("etag").trim_matches('"').to_owned()
}

/// The callbacks received so far, by key: (code, forbidden_status).
fn by_key(listener: &Listener) -> std::collections::BTreeMap<String, (i64, i64)> {
    listener
        .received()
        .iter()
        .map(|r| {
            let json = r.json();
            (
                json["data"]["key"].as_str().expect("key").to_owned(),
                (
                    json["code"].as_i64().expect("code"),
                    json["data"]["forbidden_status"]
                        .as_i64()
                        .expect("forbidden_status"),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_daemon_judges_every_upload_and_keeps_serving_after_bad_input() {
    let setup = setup().await;
    let listener = Listener::start().await;
    let mut daemon = start(&setup, &listener.url, 30).await;

    let dir = setup.dir.path();
    let corrupt = corrupt_flac(dir);
    let empty = dir.join("empty.mp3");
    std::fs::write(&empty, b"").expect("write");
    let text = dir.join("text.mp3");
    std::fs::write(&text, "Not audio at all.\n".repeat(100)).expect("write");
    let big = tone(&dir.join("big.wav"), 5.0, 440, &[]);
    let clean = speech(&dir.join("clean.mp3"), "Hi, call me back when you can.");

    // Garbage on the queue first: it must not stop the daemon.
    for body in ["not json at all", r#"{"unexpected":"shape"}"#] {
        setup
            .sqs
            .send_message()
            .queue_url(&setup.queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
    let known_etag = upload(&setup, "audio/known bad.mp3", &setup.known_bad).await;
    upload(&setup, "audio/corrupt.flac", &corrupt).await;
    upload(&setup, "audio/empty.mp3", &empty).await;
    upload(&setup, "audio/text.mp3", &text).await;
    upload(&setup, "audio/big.wav", &big).await;
    upload(&setup, "audio/clean.mp3", &clean).await;
    upload(&setup, "docs/readme.mp3", &clean).await; // out of scope: no callback

    listener.wait_for(6, WAIT).await;
    let results = by_key(&listener);
    let want = [
        ("audio/known bad.mp3", (0, 2)),
        ("audio/corrupt.flac", (1003, 0)),
        ("audio/empty.mp3", (1004, 0)),
        ("audio/text.mp3", (1001, 0)),
        ("audio/big.wav", (1005, 0)),
        ("audio/clean.mp3", (0, 0)),
    ];
    for (key, expected) in want {
        assert_eq!(results.get(key), Some(&expected), "{key}: {results:?}");
    }
    assert_eq!(
        head_status(&setup.s3, &setup.bucket, "audio/known bad.mp3").await,
        404
    );
    daemon.assert_running();

    // The same event again (a redelivery): no second block, no second callback.
    let duplicate = format!(
        r#"{{"Records":[{{"eventName":"ObjectCreated:Put","s3":{{"bucket":{{"name":"{}"}},"object":{{"key":"audio/known+bad.mp3","eTag":"{known_etag}"}}}}}}]}}"#,
        setup.bucket
    );
    setup
        .sqs
        .send_message()
        .queue_url(&setup.queue_url)
        .message_body(duplicate)
        .send()
        .await
        .expect("send");
    // And one more upload after all of that, which must still be judged.
    upload(&setup, "audio/after.mp3", &clean).await;
    listener.wait_for(7, WAIT).await;
    // Evidence that the messages which must call back nothing were handled too: the redelivery
    // recognised as a duplicate, the out-of-scope upload skipped.
    let base = setup.admin();
    eventually(
        WAIT,
        "the duplicate and the out-of-scope upload handled",
        || async {
            let duplicate = "earshot_jobs_total{rule=\"uploads\",outcome=\"duplicate\"}";
            let skipped = "earshot_jobs_total{rule=\"\",outcome=\"skipped\"}";
            let handled =
                scrape(&base, duplicate).await? >= 1.0 && scrape(&base, skipped).await? >= 1.0;
            handled.then_some(())
        },
    )
    .await;
    assert_eq!(listener.received().len(), 7, "{:?}", by_key(&listener));
    daemon.assert_running();

    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "exit {status:?}; log:\n{log}");
    assert!(
        log.contains("Malformed event"),
        "malformed messages are logged:\n{log}"
    );
    assert!(
        log.contains("duplicate event ignored"),
        "the duplicate is logged:\n{log}"
    );
}

#[tokio::test]
async fn sigterm_finishes_the_job_in_flight_then_exits_0() {
    let setup = setup().await;
    let listener = Listener::start_with_delay(Duration::from_secs(3)).await;
    let daemon = start(&setup, &listener.url, 30).await;
    upload(&setup, "audio/slow.mp3", &setup.known_bad).await;

    eventually(WAIT, "a callback started", || async {
        (listener.arrived() > 0).then_some(())
    })
    .await;
    // The job is in its callback now: SIGTERM must let it finish.
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "exit {status:?}; log:\n{log}");
    assert_eq!(
        listener.received().len(),
        1,
        "the callback in flight completed"
    );
    let records = setup
        .s3
        .list_objects_v2()
        .bucket(&setup.bucket)
        .prefix(JOBS_PREFIX)
        .send()
        .await
        .expect("list");
    assert_eq!(
        records.key_count(),
        Some(1),
        "the job was recorded as finished before exit"
    );
    assert!(log.contains("finishing jobs in flight"), "{log}");
}

#[tokio::test]
async fn a_job_longer_than_the_visibility_timeout_is_not_redelivered() {
    let setup = setup().await;
    // Visibility 10 s; the callback alone takes 14 s.
    let listener = Listener::start_with_delay(Duration::from_secs(14)).await;
    let daemon = start(&setup, &listener.url, 10).await;
    upload(&setup, "audio/long-job.mp3", &setup.known_bad).await;
    listener.wait_for(1, WAIT).await;
    // Evidence that the job ended: its message deleted, so it can come back no more.
    eventually(WAIT, "the message deleted", || async {
        (setup.messages().await == 0).then_some(())
    })
    .await;
    let log = daemon.log();
    assert_eq!(listener.arrived(), 1, "one callback attempt; log:\n{log}");
    assert!(
        !log.contains("being judged already"),
        "the message reappeared while its job ran:\n{log}"
    );
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    let attributes = setup
        .sqs
        .get_queue_attributes()
        .queue_url(&setup.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("attributes");
    let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
        attributes
            .attributes()
            .and_then(|a| a.get(&name))
            .cloned()
            .unwrap_or_default()
    };
    use aws_sdk_sqs::types::QueueAttributeName as A;
    assert_eq!(
        count(A::ApproximateNumberOfMessages),
        "0",
        "the message was deleted"
    );
    assert_eq!(
        count(A::ApproximateNumberOfMessagesNotVisible),
        "0",
        "the message was deleted"
    );
}

#[tokio::test]
async fn library_changes_reach_a_running_daemon_without_a_restart() {
    let track = "/usr/share/games/etr/music/spunkyrace-ks.ogg";
    let setup = setup().await;
    let listener = Listener::start().await;
    let mut daemon = start_with(&setup, &listener.url, 30, 1).await;
    let excerpt = |name: &str, bitrate: &str| {
        let out = setup.dir.path().join(name);
        run(std::process::Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-ss",
                "30",
                "-t",
                "10",
                "-i",
                track,
                "-b:a",
                bitrate,
            ])
            .arg(&out));
        out
    };
    upload(&setup, "audio/before.mp3", &excerpt("before.mp3", "128k")).await;
    listener.wait_for(1, WAIT).await;

    // Add the whole track to the library while the daemon runs.
    let add = std::process::Command::new(env!("CARGO_BIN_EXE_earshot"))
        .arg("--config")
        .arg(setup.dir.path().join("earshot.toml"))
        .args([
            "library",
            "add",
            "--scene",
            "porn",
            "--label",
            "added-live",
            track,
        ])
        .env("EARSHOT_LOG_FORMAT", "json")
        .output()
        .expect("earshot runs");
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    eventually(WAIT, "the running daemon reloading its library", || async {
        daemon
            .log()
            .contains("Reference library changed; reloaded.")
            .then_some(())
    })
    .await;
    upload(&setup, "audio/after.mp3", &excerpt("after.mp3", "96k")).await;
    listener.wait_for(2, WAIT).await;
    let results = by_key(&listener);
    assert_eq!(
        results.get("audio/before.mp3"),
        Some(&(0, 0)),
        "{results:?}"
    );
    assert_eq!(results.get("audio/after.mp3"), Some(&(0, 2)), "{results:?}");
    daemon.assert_running();
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(
        log.contains("Reference library changed; reloaded."),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_listener_beside_sqs_reports_health_readiness_and_metrics() {
    let setup = setup().await;
    let listener = Listener::start().await;
    let port = free_port();
    let missing = unique("earshot-missing");
    // A second rule names a bucket that does not exist: /readyz must say so.
    let library = setup.dir.path().join("library");
    let mut config = config_at(LOCALSTACK, &setup.bucket, &listener.url, "move", &library);
    config.sources.sqs = Some(sqs_source(&setup.queue_url, 8, 60));
    config.admin.listen = Some(format!("127.0.0.1:{port}"));
    config
        .rules
        .push(another_rule(&config, "elsewhere", &missing));
    let mut daemon = Daemon::start(setup.dir.path(), &config);
    let base = format!("http://127.0.0.1:{port}");
    daemon
        .wait_until_listening(&format!("{base}/healthz"))
        .await;
    upload(&setup, "audio/known-bad.mp3", &setup.known_bad).await;
    let callback = listener.wait_for(1, WAIT).await[0].json();
    assert_eq!(callback["data"]["forbidden_status"], 2);
    // The job is counted once it is recorded (job record, history row), just after its callback.
    let blocked = "earshot_jobs_total{rule=\"uploads\",outcome=\"blocked\"}";
    eventually(WAIT, "the job counted", || async {
        (scrape(&base, blocked).await == Some(1.0)).then_some(())
    })
    .await;

    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{base}{path}")).send();
    assert_eq!(get("/healthz").await.expect("answers").status(), 200);
    let ready = get("/readyz").await.expect("answers");
    assert_eq!(ready.status(), 503);
    let reasons = ready.text().await.expect("text");
    assert!(reasons.contains(&missing), "{reasons}");
    assert!(
        !reasons.contains(&format!("bucket {}:", setup.bucket)),
        "{reasons}"
    );
    let metrics = get("/metrics")
        .await
        .expect("answers")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("earshot_jobs_total{rule=\"uploads\",outcome=\"blocked\"} 1\n"),
        "{metrics}"
    );
    // The SQS source samples its queue's backlog from the start.
    assert!(
        metrics.contains("earshot_queue_depth{source=\"sqs\"} "),
        "{metrics}"
    );
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "log:\n{log}");
}

/// Makes the setup's queue send a message to a fresh dead-letter queue after `max_receives`
/// receives; returns that queue's URL.
async fn redrive_after(setup: &Setup, max_receives: u32) -> String {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let (_, dlq) = fresh_queue(&setup.s3, None).await;
    let arn = queue_arn(&setup.sqs, &dlq).await;
    let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives});
    setup
        .sqs
        .set_queue_attributes()
        .queue_url(&setup.queue_url)
        .attributes(A::RedrivePolicy, policy.to_string())
        .send()
        .await
        .expect("redrive policy");
    dlq
}

/// A daemon killed while it holds a job (at the point just after it takes the job's lease) does
/// not strand the upload: the lease, renewed only while a job runs, runs out, and the other
/// daemon takes the job over and finishes it once. Meanwhile the message is not spent: a delivery
/// that finds the job held waits for the lease instead of coming back every visibility timeout,
/// so it stays within a redrive count of 3 (visibility 10 s, lease 40 s: redelivered every 10 s
/// it would have gone to the dead-letter queue at its fourth receive, unjudged).
#[tokio::test]
async fn a_job_whose_daemon_was_killed_is_taken_over_when_its_lease_runs_out_not_dead_lettered() {
    let setup = setup().await;
    let dlq = redrive_after(&setup, 3).await;
    let listener = Listener::start().await;
    let library = setup.dir.path().join("library");
    let mut config = config_at(LOCALSTACK, &setup.bucket, &listener.url, "move", &library);
    config.sources.sqs = Some(sqs_source(&setup.queue_url, 4, 10));
    config.limits.job_lease_secs = 40;
    let spawn = |name: &str, crash_at: Option<&str>| {
        let dir = setup.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("earshot.toml");
        std::fs::write(&path, config_toml(&config)).expect("config");
        let log = dir.join("earshot.log");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_earshot"));
        command
            .arg("--config")
            .arg(&path)
            .arg("serve")
            .env("EARSHOT_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true);
        if let Some(point) = crash_at {
            command.env("EARSHOT_CRASH_AT", point);
        }
        Daemon {
            child: command.spawn().expect("earshot serve starts"),
            log,
        }
    };
    let mut first = spawn("first", Some("job-leased"));
    upload(&setup, "audio/held.mp3", &setup.known_bad).await;
    let crashed = tokio::time::timeout(WAIT, first.child.wait())
        .await
        .expect("the first daemon reaches the crash point")
        .expect("exit status");
    assert!(
        !crashed.success() && first.log().contains("EARSHOT_CRASH_AT"),
        "it aborted holding the lease:\n{}",
        first.log()
    );
    let second = spawn("second", None);
    let what = format!("the job taken over (log {})", second.log.display());
    eventually(Duration::from_secs(150), &what, || async {
        (!listener.received().is_empty()).then_some(())
    })
    .await;
    let received = listener.received();
    assert_eq!(received[0].json()["data"]["forbidden_status"], 2, "moved");
    // Evidence that the job ended: the message deleted (not sent to the dead-letter queue).
    eventually(WAIT, "the message deleted", || async {
        (setup.messages().await == 0).then_some(())
    })
    .await;
    let (status, log) = second.terminate().await;
    assert!(status.success(), "{log}");
    assert!(
        log.contains("another process; this delivery is left for later"),
        "the second daemon found the job held first:\n{log}"
    );
    assert_eq!(listener.received().len(), 1, "called back once:\n{log}");
    let in_dlq = setup
        .sqs
        .receive_message()
        .queue_url(&dlq)
        .send()
        .await
        .expect("receive");
    assert!(
        in_dlq.messages().is_empty(),
        "nothing reached the dead-letter queue:\n{log}"
    );
    assert_eq!(
        head_status(&setup.s3, &setup.bucket, "audio/held.mp3").await,
        404
    );
}
