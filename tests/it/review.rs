//! `review = "human"` on LocalStack: scores from `min_score` to 90 wait for a person, with the
//! object left published or held, a first callback at once (`result = 2`, review pending) and a
//! second when decided (same `trace_id`, decision, who, when, why); the CLI's list, show and
//! decide with a second decision refused; `block.learn` from a person's block; and the timeout
//! default.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use earshot::clock::Clock;
use earshot::config::ReviewVerdict;
use earshot::job::Job;
use earshot::pipeline::{DecideRequest, Outcome, Pipeline, ReviewError};
use earshot::state::{blocks, review};

async fn finished(pipeline: &Pipeline, bucket: &str, key: &str) -> earshot::callback::Body {
    match pipeline
        .process(&Job::new(bucket.to_owned(), key))
        .await
        .expect("job runs")
    {
        Outcome::Finished { body, .. } => *body,
        other => panic!("not finished: {other:?}"),
    }
}

async fn tags(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<(String, String)> {
    s3.get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("tagging")
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

// Multi-threaded: the listener answers the CLI's callback while the test waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_item_is_blocked_by_a_person_from_the_cli_and_learned() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (upload, library) = suspicious_in_library(dir.path()).await;
    let mut config = config(&bucket, &listener.url, "move", &library);
    human_review(&mut config, false, 3600);
    config.rules[0].block.learn = true;
    let config_path = dir.path().join("earshot.toml");
    std::fs::write(&config_path, config_toml(&config)).expect("config written");
    put_file(&s3, &bucket, "audio/voice.mp3", &upload, "audio/mpeg").await;
    let full = dir.path().join("reference.mp3");
    put_file(&s3, &bucket, "audio/full.mp3", &full, "audio/mpeg").await;

    let pipeline = Pipeline::new(config.clone()).await.expect("pipeline");
    let pending = finished(&pipeline, &bucket, "audio/voice.mp3").await;
    let score = pending.data.porn_info.score;
    assert!((60..=90).contains(&score), "suspicious band: {score}");
    assert_eq!(pending.data.result.as_u8(), 2);
    assert_eq!(pending.data.forbidden_status.as_u8(), 0);
    let info = pending.data.review.clone().expect("review info");
    assert_eq!((info.state.as_str(), info.held), ("pending", false));
    assert_eq!(
        head_status(&s3, &bucket, "audio/voice.mp3").await,
        200,
        "left published"
    );
    assert_eq!(
        tags(&s3, &bucket, "audio/voice.mp3").await,
        [("earshot-review".to_owned(), "pending".to_owned())]
    );
    // Above 90 is blocked at once, with no review.
    let full = finished(&pipeline, &bucket, "audio/full.mp3").await;
    assert_eq!(full.data.forbidden_status.as_u8(), 2);
    assert!(full.data.review.is_none());
    let first = listener.wait_for(2, Duration::from_secs(30)).await;
    let first_body = first
        .iter()
        .map(Received::json)
        .find(|b| b["data"]["key"] == "audio/voice.mp3")
        .expect("pending callback");
    assert_eq!(first_body["data"]["review"]["state"], "pending");
    assert_eq!(first_body["data"]["result"], 2);

    // The CLI lists it, shows it, and a person blocks it.
    let list = earshot(&config_path, &["review", "list"]);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert!(lines[0].contains("audio/voice.mp3") && lines[0].contains("published"));
    let id = lines[0].split_whitespace().next().expect("id").to_owned();
    assert_eq!(id, pending.data.trace_id);
    let show = earshot(&config_path, &["review", "show", &id]);
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    assert_eq!(shown["item"]["key"], "audio/voice.mp3");
    assert!(shown["decision"].is_null());
    let no_reason = earshot(
        &config_path,
        &["review", "decide", &id, "block", "--reason", " "],
    );
    assert_eq!(
        no_reason.status.code(),
        Some(2),
        "a decision needs a reason"
    );
    let decide = earshot(
        &config_path,
        &[
            "review",
            "decide",
            &id,
            "block",
            "--reason",
            "explicit lyrics",
            "--by",
            "ana",
        ],
    );
    assert!(
        decide.status.success(),
        "{}",
        String::from_utf8_lossy(&decide.stderr)
    );
    let second = listener.wait_for(3, Duration::from_secs(30)).await;
    let decided = second[2].json();
    assert_eq!(decided["data"]["trace_id"], id.as_str());
    assert_eq!(decided["data"]["review"]["state"], "block");
    assert_eq!(decided["data"]["action"]["by"], "ana");
    assert_eq!(decided["data"]["action"]["reason"], "explicit lyrics");
    assert_eq!(decided["data"]["result"], 1);
    assert_eq!(decided["data"]["forbidden_status"], 2);
    assert!(signature_ok(&second[2], "s3cret"));
    assert_eq!(head_status(&s3, &bucket, "audio/voice.mp3").await, 404);
    let backup = "audit_freeze_backup/increment_audit/audio/voice.mp3";
    assert_eq!(head_status(&s3, &bucket, backup).await, 200);
    assert!(
        tags(&s3, &bucket, backup).await.is_empty(),
        "the review tag is gone"
    );

    // A second reviewer is refused with the first decision, and nothing changes.
    let late = earshot(
        &config_path,
        &[
            "review",
            "decide",
            &id,
            "pass",
            "--reason",
            "fine by me",
            "--by",
            "bob",
        ],
    );
    assert_eq!(late.status.code(), Some(1));
    let refusal = String::from_utf8_lossy(&late.stderr);
    assert!(
        refusal.contains("decided already: block by ana"),
        "{refusal}"
    );
    assert_eq!(head_status(&s3, &bucket, "audio/voice.mp3").await, 404);
    let listed = earshot(&config_path, &["review", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).trim().is_empty());

    // The decision is in the audit log with its user.
    let log = blocks::audit_log(&s3, &bucket).await.expect("audit log");
    let entry = log
        .iter()
        .find(|e| e.action == "review-block")
        .expect("the decision is logged");
    assert_eq!(
        (entry.by.as_str(), entry.reason.as_str()),
        ("ana", "explicit lyrics")
    );
    assert!(log.iter().any(|e| e.action == "hold-for-review"));

    // block.learn: the same audio uploaded again is blocked at once (a fresh pipeline loads
    // the library as it is now), with no review.
    put_file(&s3, &bucket, "audio/again.mp3", &upload, "audio/mpeg").await;
    let fresh = Pipeline::new(config).await.expect("pipeline");
    let again = finished(&fresh, &bucket, "audio/again.mp3").await;
    assert_eq!(again.data.forbidden_status.as_u8(), 2, "{again:?}");
    assert!(again.data.review.is_none());
}

#[tokio::test]
async fn held_item_passed_by_a_person_is_put_back_exactly() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (upload, library) = suspicious_in_library(dir.path()).await;
    let mut config = config(&bucket, &listener.url, "move", &library);
    human_review(&mut config, true, 3600);
    s3.put_object()
        .bucket(&bucket)
        .key("audio/held.mp3")
        .content_type("audio/mpeg")
        .metadata("uploader", "u-42")
        .body(
            aws_sdk_s3::primitives::ByteStream::from_path(&upload)
                .await
                .expect("readable"),
        )
        .send()
        .await
        .expect("put");
    let original = get_bytes(&s3, &bucket, "audio/held.mp3").await;
    let pipeline = Pipeline::new(config).await.expect("pipeline");
    let pending = finished(&pipeline, &bucket, "audio/held.mp3").await;
    let info = pending.data.review.clone().expect("review info");
    assert_eq!((info.state.as_str(), info.held), ("pending", true));
    assert_eq!(
        pending.data.forbidden_status.as_u8(),
        2,
        "held: moved while it waits"
    );
    assert_eq!(head_status(&s3, &bucket, "audio/held.mp3").await, 404);
    listener.wait_for(1, Duration::from_secs(30)).await;

    let id = pending.data.trace_id.clone();
    let decided = pipeline
        .decide_review(
            &id,
            &DecideRequest {
                verdict: ReviewVerdict::Pass,
                by: "ana".to_owned(),
                reason: "a cover, licensed".to_owned(),
            },
        )
        .await
        .expect("decided");
    assert_eq!(decided.body.data.forbidden_status.as_u8(), 0);
    let second = listener.wait_for(2, Duration::from_secs(30)).await;
    let body = second[1].json();
    assert_eq!(body["data"]["trace_id"], id.as_str());
    assert_eq!(body["data"]["review"]["state"], "pass");
    assert_eq!(body["data"]["review"]["held"], true);
    assert_eq!(body["data"]["result"], 0);
    assert_eq!(body["data"]["forbidden_status"], 0);
    assert_eq!(body["data"]["action"]["by"], "ana");
    // Put back exactly: bytes, content type and metadata.
    assert_eq!(get_bytes(&s3, &bucket, "audio/held.mp3").await, original);
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("audio/held.mp3")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("audio/mpeg"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("uploader"))
            .map(String::as_str),
        Some("u-42")
    );
    // The put-back object's own event is a duplicate: no third callback, no new review.
    let again = pipeline
        .process(&Job::new(bucket.clone(), "audio/held.mp3"))
        .await
        .expect("runs");
    assert!(matches!(again, Outcome::Duplicate { .. }), "{again:?}");
    assert_eq!(listener.arrived(), 2);
    assert!(review::queue(&s3, &bucket).await.expect("queue").is_empty());
    // Deciding again is a conflict that names the first decision.
    let late = pipeline
        .decide_review(
            &id,
            &DecideRequest {
                verdict: ReviewVerdict::Block,
                by: "bob".to_owned(),
                reason: "no".to_owned(),
            },
        )
        .await;
    assert!(
        matches!(late, Err(ReviewError::Conflict(ref d)) if d.by == "ana"),
        "{late:?}"
    );
}

#[tokio::test]
async fn nobody_deciding_in_time_lets_the_rule_decide() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (upload, library) = suspicious_in_library(dir.path()).await;
    let mut config = config(&bucket, &listener.url, "move", &library);
    human_review(&mut config, false, 600);
    put_file(&s3, &bucket, "audio/late.mp3", &upload, "audio/mpeg").await;
    let mut pipeline = Pipeline::new(config).await.expect("pipeline");
    let clock = Clock::fixed(earshot::clock::system_secs());
    pipeline.clock = clock.clone();
    let pending = finished(&pipeline, &bucket, "audio/late.mp3").await;
    let due = pending.data.review.as_ref().expect("review").due_at;
    assert_eq!(due, clock.now_secs() + 600);
    listener.wait_for(1, Duration::from_secs(30)).await;
    // Not due yet: nothing happens.
    clock.advance(599);
    assert_eq!(pipeline.expire_reviews().await, 0);
    assert_eq!(head_status(&s3, &bucket, "audio/late.mp3").await, 200);
    clock.advance(1);
    assert_eq!(pipeline.expire_reviews().await, 1);
    let second = listener.wait_for(2, Duration::from_secs(30)).await;
    let body = second[1].json();
    assert_eq!(body["data"]["review"]["state"], "block");
    assert_eq!(body["data"]["review"]["timeout"], true);
    assert_eq!(body["data"]["action"]["by"], "earshot");
    assert_eq!(body["data"]["forbidden_status"], 2);
    assert_eq!(head_status(&s3, &bucket, "audio/late.mp3").await, 404);
    // Decided once: the next sweep finds nothing.
    assert_eq!(pipeline.expire_reviews().await, 0);
    let metrics = pipeline.metrics.render();
    for line in [
        "earshot_reviews_total{rule=\"uploads\",event=\"opened\"} 1",
        "earshot_reviews_total{rule=\"uploads\",event=\"timeout-block\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert_eq!(listener.arrived(), 2);
}

/// Where earshot runs only as a Lambda function, the template's scheduled `{"earshot": "sweep"}`
/// invocation lets the rule decide the review items nobody decided in time, once.
#[tokio::test]
async fn a_scheduled_lambda_sweep_decides_overdue_review_items() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (upload, library) = suspicious_in_library(dir.path()).await;
    let mut config = config(&bucket, &listener.url, "move", &library);
    human_review(&mut config, false, 600);
    put_file(&s3, &bucket, "audio/late.mp3", &upload, "audio/mpeg").await;
    let mut pipeline = Pipeline::new(config).await.expect("pipeline");
    let clock = Clock::fixed(earshot::clock::system_secs());
    pipeline.clock = clock.clone();
    finished(&pipeline, &bucket, "audio/late.mp3").await;
    listener.wait_for(1, Duration::from_secs(30)).await;
    let sweep =
        || earshot::sources::lambda::handle(&pipeline, serde_json::json!({"earshot": "sweep"}));
    let answer = sweep().await.expect("the sweep runs");
    assert_eq!(answer["reviews_decided"], 0, "not due yet: {answer}");
    clock.advance(600);
    let answer = sweep().await.expect("the sweep runs");
    assert_eq!(answer["reviews_decided"], 1, "{answer}");
    let second = listener.wait_for(2, Duration::from_secs(30)).await;
    let body = second[1].json();
    assert_eq!(body["data"]["review"]["timeout"], true);
    assert_eq!(body["data"]["forbidden_status"], 2);
    assert_eq!(head_status(&s3, &bucket, "audio/late.mp3").await, 404);
    let answer = sweep().await.expect("the sweep runs");
    assert_eq!(answer["reviews_decided"], 0, "decided once: {answer}");
    assert_eq!(listener.arrived(), 2);
}

/// The README's `earshot hash-password` and `earshot console`: the console alone, a password
/// hashed by the CLI, a page without a session redirected to the login, the session cookie's
/// flags, a wrong password refused, and the hash redacted by `check-config`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_runs_alone_with_a_password_hashed_by_the_cli() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let password_file = dir.path().join("password.txt");
    std::fs::write(&password_file, "a long passphrase\n").expect("written");
    let hashed = Command::new(env!("CARGO_BIN_EXE_earshot"))
        .arg("hash-password")
        .stdin(std::fs::File::open(&password_file).expect("readable"))
        .output()
        .expect("runs");
    assert!(
        hashed.status.success(),
        "{}",
        String::from_utf8_lossy(&hashed.stderr)
    );
    let hash = String::from_utf8_lossy(&hashed.stdout).trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let mut config = config(&bucket, &unreachable_url(), "move", dir.path());
    human_review(&mut config, false, 3600);
    let port = free_port();
    config.console = Some(earshot::config::ConsoleConfig {
        listen: format!("127.0.0.1:{port}"),
        session_key: "k".repeat(40),
        session_ttl_secs: 600,
        secure_cookie: true,
        users: vec![earshot::config::ConsoleUserConfig {
            name: "ana".to_owned(),
            role: earshot::config::Role::Reviewer,
            password_hash: Some(hash.clone()),
        }],
        proxy: None,
    });
    let text = config_toml(&config);
    let mut console = Daemon::spawn_command(dir.path(), &text, "info", "console");
    let base = format!("http://127.0.0.1:{port}");
    console.wait_until_listening(&format!("{base}/login")).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let queue = http.get(format!("{base}/")).send().await.expect("answers");
    assert_eq!(queue.status().as_u16(), 303);
    assert_eq!(queue.headers()["location"], "/login?next=%2F");
    let login = |password: &str| {
        http.post(format!("{base}/login"))
            .form(&[("user", "ana"), ("password", password), ("next", "/")])
            .send()
    };
    let refused = login("wrong").await.expect("answers");
    assert_eq!(refused.status().as_u16(), 401);
    assert!(refused.headers().get("set-cookie").is_none());
    let signed_in = login("a long passphrase").await.expect("answers");
    assert_eq!(signed_in.status().as_u16(), 303);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .expect("text")
        .to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Max-Age=600"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let (status, _) = console.terminate().await;
    assert!(status.success());
    let check = earshot(&dir.path().join("earshot.toml"), &["check-config"]);
    let printed = String::from_utf8_lossy(&check.stdout);
    assert!(
        !printed.contains(&hash) && !printed.contains(&"k".repeat(40)),
        "{printed}"
    );
}
