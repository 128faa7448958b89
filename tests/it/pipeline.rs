//! The whole job against real LocalStack S3, through earshot's own SDK client, with callbacks
//! received by a real HTTP listener: pass, move, ACL, scope, awkward keys, duplicates, an
//! interrupted move, bad input, and an undeliverable callback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::requests::{Requests, s3_requests, since};
use crate::common::*;
use aws_sdk_s3::types::ObjectCannedAcl;
use earshot::block::{self, BlockError, MoveStep, Target};
use earshot::config::Config;
use earshot::job::{Job, parse_event};
use earshot::pipeline::{Ack, CallbackOutcome, Disposition, Outcome, Pipeline};
use earshot::rules::Skip;

const WAIT: Duration = Duration::from_secs(20);

/// A test's world: a fresh bucket, a library holding one known-bad recording, a listener.
struct World {
    s3: aws_sdk_s3::Client,
    bucket: String,
    listener: Listener,
    dir: tempfile::TempDir,
    known_bad: PathBuf,
}

impl World {
    async fn new() -> World {
        require_localstack();
        let s3 = s3(LOCALSTACK).await;
        let bucket = fresh_bucket(&s3).await;
        let listener = Listener::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (known_bad, _) = known_bad_in_library(dir.path()).await;
        World {
            s3,
            bucket,
            listener,
            dir,
            known_bad,
        }
    }

    fn library(&self) -> PathBuf {
        self.dir.path().join("library")
    }

    fn config(&self, mode: &str) -> Config {
        config(&self.bucket, &self.listener.url, mode, &self.library())
    }

    async fn pipeline(&self, mode: &str) -> Pipeline {
        Pipeline::new(self.config(mode))
            .await
            .expect("pipeline builds")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Uploads `path` and returns the job its event would carry (key and ETag).
    async fn upload(&self, key: &str, path: &Path) -> Job {
        let out = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("audio/mpeg")
            .metadata("uploader", "alice")
            .tagging("source=app&kind=voice")
            .body(
                aws_sdk_s3::primitives::ByteStream::from_path(path)
                    .await
                    .expect("readable"),
            )
            .send()
            .await
            .expect("put");
        let mut job = Job::new(self.bucket.clone(), key);
        job.etag = out.e_tag().map(|e| e.trim_matches('"').to_owned());
        job
    }
}

fn finished(outcome: Outcome) -> (earshot::callback::Body, CallbackOutcome) {
    match outcome {
        Outcome::Finished { body, callback, .. } => (*body, callback),
        other => panic!("expected a finished job, got {other:?}"),
    }
}

#[tokio::test]
async fn clean_upload_passes_and_calls_back_result_0() {
    let world = World::new().await;
    let pipeline = world.pipeline("move").await;
    let clean = speech(
        &world.file("clean.mp3"),
        "Hello, this is a perfectly ordinary voice message.",
    );
    let job = world.upload("audio/clean.mp3", &clean).await;

    let (body, callback) = finished(pipeline.process(&job).await.expect("job runs"));
    assert_eq!(callback, CallbackOutcome::Delivered { attempts: 1 });
    assert_eq!(
        (
            body.code,
            body.data.result.as_u8(),
            body.data.forbidden_status.as_u8()
        ),
        (0, 0, 0)
    );

    let received = world.listener.wait_for(1, WAIT).await;
    let json = received[0].json();
    assert_eq!(json["code"], 0);
    assert_eq!(json["message"], "success");
    assert_eq!(json["data"]["result"], 0);
    assert_eq!(json["data"]["forbidden_status"], 0);
    assert_eq!(json["data"]["porn_info"]["hit_flag"], 0);
    assert_eq!(json["data"]["ads_info"]["score"], 0);
    assert_eq!(json["data"]["trace_id"], job.trace_id());
    assert_eq!(
        json["data"]["url"],
        format!("{LOCALSTACK}/{}/audio/clean.mp3", world.bucket)
    );
    assert!(signature_ok(&received[0], "s3cret"));
    assert_eq!(
        received[0].content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(
        head_status(&world.s3, &world.bucket, "audio/clean.mp3").await,
        200
    );
}

#[tokio::test]
async fn library_match_is_moved_with_its_bytes_type_metadata_and_tags() {
    let world = World::new().await;
    let pipeline = world.pipeline("move").await;
    let key = "audio/known.mp3";
    let job = world.upload(key, &world.known_bad).await;

    let (body, _) = finished(pipeline.process(&job).await.expect("job runs"));
    assert_eq!(
        (
            body.code,
            body.data.result.as_u8(),
            body.data.forbidden_status.as_u8()
        ),
        (0, 1, 2)
    );

    assert_eq!(head_status(&world.s3, &world.bucket, key).await, 404);
    let backup = format!("audit_freeze_backup/increment_audit/{key}");
    assert_eq!(
        get_bytes(&world.s3, &world.bucket, &backup).await,
        std::fs::read(&world.known_bad).expect("read")
    );
    let head = world
        .s3
        .head_object()
        .bucket(&world.bucket)
        .key(&backup)
        .send()
        .await
        .expect("backup exists");
    assert_eq!(head.content_type(), Some("audio/mpeg"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("uploader"))
            .map(String::as_str),
        Some("alice")
    );
    let tags = world
        .s3
        .get_object_tagging()
        .bucket(&world.bucket)
        .key(&backup)
        .send()
        .await
        .expect("tags");
    let mut tags: Vec<(String, String)> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("kind".to_owned(), "voice".to_owned()),
            ("source".to_owned(), "app".to_owned())
        ]
    );

    let received = world.listener.wait_for(1, WAIT).await;
    assert!(
        signature_ok(&received[0], "s3cret"),
        "X-Signature must verify"
    );
    let json = received[0].json();
    assert_eq!(json["data"]["forbidden_status"], 2);
    assert_eq!(json["data"]["result"], 1);
    assert_eq!(json["data"]["porn_info"]["hit_flag"], 1);
    assert_eq!(json["data"]["porn_info"]["score"], 100);
    assert_eq!(json["data"]["porn_info"]["label"], "known-bad");
    assert_eq!(json["data"]["backup_key"], backup);
}

#[tokio::test]
async fn acl_private_leaves_no_public_grant() {
    let world = World::new().await;
    let pipeline = world.pipeline("acl-private").await;
    let key = "audio/public-bad.mp3";
    let job = world.upload(key, &world.known_bad).await;
    world
        .s3
        .put_object_acl()
        .bucket(&world.bucket)
        .key(key)
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .expect("make public");

    let (body, _) = finished(pipeline.process(&job).await.expect("job runs"));
    assert_eq!(body.data.forbidden_status.as_u8(), 1);
    let acl = world
        .s3
        .get_object_acl()
        .bucket(&world.bucket)
        .key(key)
        .send()
        .await
        .expect("acl");
    let public = acl
        .grants()
        .iter()
        .filter_map(|g| g.grantee().and_then(|g| g.uri()))
        .any(|uri| uri.contains("AllUsers") || uri.contains("AuthenticatedUsers"));
    assert!(!public, "no public grant may remain: {:?}", acl.grants());
    assert_eq!(
        head_status(&world.s3, &world.bucket, key).await,
        200,
        "ACL mode keeps the object"
    );
    let json = world.listener.wait_for(1, WAIT).await[0].json();
    assert_eq!(json["data"]["forbidden_status"], 1);
}

#[tokio::test]
async fn keys_outside_the_scope_or_with_a_wrong_suffix_are_ignored() {
    let world = World::new().await;
    let pipeline = world.pipeline("move").await;
    for key in [
        "video/known.mp3",
        "audio/known.txt",
        "audio/known",
        "known.mp3",
    ] {
        let job = world.upload(key, &world.known_bad).await;
        match pipeline.process(&job).await.expect("job runs") {
            Outcome::Skipped(Skip::NoRule) => {}
            other => panic!("{key}: expected to be skipped, got {other:?}"),
        }
        assert_eq!(
            head_status(&world.s3, &world.bucket, key).await,
            200,
            "{key} untouched"
        );
    }
    let backup = Job::new(
        world.bucket.clone(),
        "audit_freeze_backup/increment_audit/audio/x.mp3",
    );
    assert!(matches!(
        pipeline.process(&backup).await.expect("job runs"),
        Outcome::Skipped(Skip::BackupDirectory)
    ));
    // `process` returned: every callback it sent was answered, and so recorded.
    assert!(
        world.listener.received().is_empty(),
        "ignored keys call back nothing"
    );
}

#[tokio::test]
async fn keys_with_spaces_plus_and_non_ascii_round_trip() {
    let world = World::new().await;
    let pipeline = world.pipeline("move").await;
    let key = "audio/my voice+note 语音 café #1.mp3";
    world.upload(key, &world.known_bad).await;
    // The event carries the key as S3 encodes it: '+' for a space, %2B for '+', UTF-8 escapes.
    let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    let encoded = encoded.replace("%2F", "/");
    let event = format!(
        r#"{{"Records":[{{"eventName":"ObjectCreated:Put","s3":{{"bucket":{{"name":"{}"}},"object":{{"key":"{encoded}"}}}}}}]}}"#,
        world.bucket
    );
    let jobs = parse_event(event.as_bytes()).expect("parses").jobs;
    assert_eq!(jobs[0].key, key);

    let (body, _) = finished(pipeline.process(&jobs[0]).await.expect("job runs"));
    assert_eq!(body.data.forbidden_status.as_u8(), 2);
    assert_eq!(body.data.key, key);
    assert_eq!(head_status(&world.s3, &world.bucket, key).await, 404);
    let backup = format!("audit_freeze_backup/increment_audit/{key}");
    assert_eq!(head_status(&world.s3, &world.bucket, &backup).await, 200);
    let json = world.listener.wait_for(1, WAIT).await[0].json();
    assert_eq!(json["data"]["key"], key);
}

#[tokio::test]
async fn duplicate_event_causes_no_second_block_and_no_second_callback() {
    let world = World::new().await;
    let pipeline = world.pipeline("move").await;
    let job = world.upload("audio/dup.mp3", &world.known_bad).await;

    // Two deliveries at once, then a late third.
    let (a, b) = tokio::join!(pipeline.process(&job), pipeline.process(&job));
    let outcomes = [a.expect("runs"), b.expect("runs")];
    let finished_count = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Finished { .. }))
        .count();
    assert_eq!(finished_count, 1, "{outcomes:?}");
    match pipeline.process(&job).await.expect("runs") {
        Outcome::Duplicate { trace_id } => assert_eq!(trace_id, job.trace_id()),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // A fresh daemon (no memory of the first) also recognises it.
    let other_daemon = world.pipeline("move").await;
    assert!(matches!(
        other_daemon.process(&job).await.expect("runs"),
        Outcome::Duplicate { .. }
    ));

    // Each `process` returned after its callback (if any) was answered, and so recorded.
    let received = world.listener.received();
    assert_eq!(received.len(), 1, "exactly one callback");
    assert_eq!(received[0].json()["data"]["trace_id"], job.trace_id());
}

#[tokio::test]
async fn an_interrupted_move_loses_nothing_and_a_rerun_completes_it() {
    for step in [MoveStep::Copied, MoveStep::Verified, MoveStep::Deleted] {
        let world = World::new().await;
        let pipeline = world.pipeline("move").await;
        let key = "audio/interrupted.mp3";
        let job = world.upload(key, &world.known_bad).await;
        let bytes = std::fs::read(&world.known_bad).expect("read");
        let sha = earshot::engines::local::sha256_file(&world.known_bad).expect("hash");
        let etag = job.etag.clone().expect("put returns an ETag");
        let target = Target {
            bucket: &world.bucket,
            key,
            version_id: None,
            etag: &etag,
            size: bytes.len() as u64,
            sha256: sha,
        };
        let result = block::move_object(&world.s3, &target, &mut |at| {
            if at == step {
                Err(BlockError::Interrupted { step: at })
            } else {
                Ok(())
            }
        })
        .await;
        assert!(
            matches!(result, Err(BlockError::Interrupted { .. })),
            "{step:?}: {result:?}"
        );

        // Whatever the point of interruption, the bytes exist somewhere.
        let backup = earshot::layout::backup_key(key);
        let original = head_status(&world.s3, &world.bucket, key).await;
        let copy = head_status(&world.s3, &world.bucket, &backup).await;
        assert!(original == 200 || copy == 200, "{step:?}: object lost");

        // The event is redelivered; the job finishes the move and calls back once.
        let (body, _) = finished(pipeline.process(&job).await.expect("rerun runs"));
        assert_eq!(
            (body.code, body.data.forbidden_status.as_u8()),
            (0, 2),
            "{step:?}: {}",
            body.message
        );
        assert_eq!(
            head_status(&world.s3, &world.bucket, key).await,
            404,
            "{step:?}"
        );
        assert_eq!(
            get_bytes(&world.s3, &world.bucket, &backup).await,
            bytes,
            "{step:?}"
        );
        let received = world.listener.wait_for(1, WAIT).await;
        assert_eq!(received.len(), 1, "{step:?}");
        assert_eq!(
            received[0].json()["data"]["forbidden_status"],
            2,
            "{step:?}"
        );
    }
}

#[tokio::test]
async fn bad_input_calls_back_with_its_code_and_is_not_blocked() {
    let world = World::new().await;
    let mut config = world.config("move");
    config.limits.max_object_bytes = 200_000;
    let pipeline = Pipeline::new(config).await.expect("pipeline builds");
    let corrupt = corrupt_flac(world.dir.path());
    let text = world.file("notes.txt");
    std::fs::write(&text, "Meeting notes, definitely not audio.\n".repeat(100)).expect("write");
    let empty = world.file("empty");
    std::fs::write(&empty, b"").expect("write");
    let big = tone(&world.file("big.wav"), 5.0, 440, &[]);
    assert!(std::fs::metadata(&big).expect("exists").len() > 200_000);

    let cases: [(&str, &Path, i32); 4] = [
        ("audio/corrupt.flac", &corrupt, 1003),
        ("audio/empty.mp3", &empty, 1004),
        ("audio/text.mp3", &text, 1001),
        ("audio/big.wav", &big, 1005),
    ];
    for (key, path, code) in cases {
        let job = world.upload(key, path).await;
        let (body, callback) = finished(pipeline.process(&job).await.expect("job runs"));
        assert_eq!(body.code, code, "{key}: {}", body.message);
        assert!(
            !body.message.is_empty() && body.message != "success",
            "{key}"
        );
        assert_eq!(body.data.forbidden_status.as_u8(), 0, "{key}");
        assert_eq!(
            callback,
            CallbackOutcome::Delivered { attempts: 1 },
            "{key}"
        );
        assert_eq!(
            head_status(&world.s3, &world.bucket, key).await,
            200,
            "{key} is not blocked"
        );
    }
    let received = world.listener.wait_for(4, WAIT).await;
    let codes: Vec<i64> = received
        .iter()
        .map(|r| r.json()["code"].as_i64().expect("code"))
        .collect();
    assert_eq!(codes, [1003, 1004, 1001, 1005]);
    assert!(received.iter().all(|r| signature_ok(r, "s3cret")));
}

#[tokio::test]
async fn a_missing_object_calls_back_object_gone() {
    let world = World::new().await;
    let pipeline = world.pipeline("move").await;
    let mut job = Job::new(world.bucket.clone(), "audio/never-uploaded.mp3");
    job.etag = Some("0123456789abcdef0123456789abcdef".to_owned());
    let (body, _) = finished(pipeline.process(&job).await.expect("job runs"));
    assert_eq!(body.code, 1101, "{}", body.message);
    assert!(body.message.contains("does not exist"), "{}", body.message);
}

#[tokio::test]
async fn an_unreachable_callback_is_dead_lettered_and_replays() {
    let world = World::new().await;
    let config = config(&world.bucket, &unreachable_url(), "move", &world.library());
    let pipeline = Pipeline::new(config).await.expect("builds");
    let job = world.upload("audio/lonely.mp3", &world.known_bad).await;

    let (body, callback) = finished(pipeline.process(&job).await.expect("job runs"));
    assert_eq!(
        body.data.forbidden_status.as_u8(),
        2,
        "the block does not wait for the callback"
    );
    let CallbackOutcome::DeadLettered { key, error } = callback else {
        panic!("expected a dead letter, got {callback:?}");
    };
    assert!(error.contains("failed"), "{error}");
    assert_eq!(
        key,
        format!(
            "audit_freeze_backup/earshot/dead-letters/{}.json",
            job.trace_id()
        )
    );
    let letter: serde_json::Value =
        serde_json::from_slice(&get_bytes(&world.s3, &world.bucket, &key).await).expect("JSON");
    assert_eq!(letter["attempts"], 3);
    let kept: serde_json::Value =
        serde_json::from_str(letter["request"]["body"].as_str().expect("body kept")).expect("JSON");
    assert_eq!(
        kept,
        serde_json::to_value(&body).expect("serialises"),
        "the full body is kept"
    );

    // Replay to a working listener with the CLI: same body, same signature, letter removed.
    let config_file = world.file("earshot.toml");
    std::fs::write(
        &config_file,
        format!(
            "[s3]\nendpoint_url = \"{LOCALSTACK}\"\nregion = \"us-east-1\"\nforce_path_style = true\n\
             access_key_id = \"test\"\nsecret_access_key = \"test\"\n"
        ),
    )
    .expect("write");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_earshot"))
        .args(["--config"])
        .arg(&config_file)
        .args([
            "callbacks",
            "replay",
            &format!("s3://{}", world.bucket),
            "--to",
            &world.listener.url,
        ])
        .output()
        .await
        .expect("earshot runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let received = world.listener.wait_for(1, WAIT).await;
    assert!(
        signature_ok(&received[0], "s3cret"),
        "the replay carries the original signature"
    );
    assert_eq!(received[0].json(), kept);
    assert_eq!(
        head_status(&world.s3, &world.bucket, &key).await,
        404,
        "delivered letters are removed"
    );
}

#[tokio::test]
async fn moved_object_keeps_content_type_when_tags_are_empty() {
    let world = World::new().await;
    let pipeline = world.pipeline("move").await;
    let key = "audio/untagged.mp3";
    world
        .s3
        .put_object()
        .bucket(&world.bucket)
        .key(key)
        .content_type("audio/x-custom")
        .body(
            aws_sdk_s3::primitives::ByteStream::from_path(&world.known_bad)
                .await
                .expect("readable"),
        )
        .send()
        .await
        .expect("put");
    let (body, _) = finished(
        pipeline
            .process(&Job::new(world.bucket.clone(), key))
            .await
            .expect("runs"),
    );
    assert_eq!(body.data.forbidden_status.as_u8(), 2);
    let head = world
        .s3
        .head_object()
        .bucket(&world.bucket)
        .key(earshot::layout::backup_key(key))
        .send()
        .await
        .expect("backup");
    assert_eq!(head.content_type(), Some("audio/x-custom"));
}

#[tokio::test]
async fn an_object_overwritten_since_its_event_calls_back_object_changed() {
    let world = World::new().await;
    let pipeline = world.pipeline("move").await;
    let key = "audio/overwritten.mp3";
    let stale = world.upload(key, &world.known_bad).await;
    let newer = tone(&world.file("newer.mp3"), 2.0, 440, &[]);
    world.upload(key, &newer).await;

    let (body, _) = finished(pipeline.process(&stale).await.expect("job runs"));
    assert_eq!(body.code, 1102, "{}", body.message);
    assert_eq!(body.data.forbidden_status.as_u8(), 0);
    assert_eq!(
        head_status(&world.s3, &world.bucket, key).await,
        200,
        "the newer upload stays"
    );
}

#[tokio::test]
async fn a_key_uploaded_again_is_judged_again_when_its_job_has_no_etag() {
    let world = World::new().await;
    let pipeline = world.pipeline("move").await;
    let key = "audio/reused-name.mp3";
    let clean = tone(&world.file("clean.mp3"), 2.0, 300, &[]);
    world.upload(key, &clean).await;
    let (first, _) = finished(
        pipeline
            .process(&Job::new(world.bucket.clone(), key))
            .await
            .expect("runs"),
    );
    assert_eq!(first.data.forbidden_status.as_u8(), 0);

    // Same key, new content, and again a job that names only bucket and key.
    world.upload(key, &world.known_bad).await;
    let (second, _) = finished(
        pipeline
            .process(&Job::new(world.bucket.clone(), key))
            .await
            .expect("runs"),
    );
    assert_eq!(
        second.data.forbidden_status.as_u8(),
        2,
        "the new upload is judged and blocked"
    );
    assert_ne!(first.data.trace_id, second.data.trace_id);
}

/// A job that can never succeed as it stands (its record in the bucket is not what earshot wrote)
/// is parked with the reason and acknowledged, not retried forever; once a person fixes the
/// cause, `earshot jobs replay`'s code runs it and it is judged.
#[tokio::test]
async fn a_job_that_cannot_succeed_is_parked_with_the_reason_and_replays_once_fixed() {
    let world = World::new().await;
    let pipeline = world.pipeline("move").await;
    let job = world.upload("audio/known-bad.mp3", &world.known_bad).await;
    let record = earshot::layout::job_record_key(&job.trace_id());
    put_bytes(&world.s3, &world.bucket, &record, b"{not json".to_vec()).await;

    let handled = pipeline.handle(&job, "sqs").await;
    let error = handled
        .result
        .expect_err("the corrupt record stops the job");
    assert_eq!(error.disposition(), Disposition::DeadLetter, "{error}");
    assert_eq!(handled.ack, Ack::Done, "acknowledged, not retried");
    let parked = handled.parked.expect("parked");
    assert_eq!(parked, earshot::layout::dead_job_key(&job.trace_id()));
    let dead = earshot::state::dead_jobs(&world.s3, &world.bucket)
        .await
        .expect("listed");
    assert_eq!(dead.len(), 1);
    let (key, dead) = &dead[0];
    assert_eq!(key, &parked);
    assert_eq!(dead.job, job);
    assert_eq!(dead.source, "sqs");
    assert!(dead.reason.contains(&record), "{}", dead.reason);
    assert!(dead.reason.contains("not valid JSON"), "{}", dead.reason);
    assert_eq!(
        head_status(&world.s3, &world.bucket, "audio/known-bad.mp3").await,
        200,
        "nothing was blocked"
    );
    assert!(
        world.listener.received().is_empty(),
        "nothing was called back"
    );

    // A person removes the bad record; the replay judges the job and clears its parking place.
    world
        .s3
        .delete_object()
        .bucket(&world.bucket)
        .key(&record)
        .send()
        .await
        .expect("deleted");
    let config = config(&world.bucket, &world.listener.url, "move", &world.library());
    earshot::commands::replay::jobs(config, &format!("s3://{}", world.bucket))
        .await
        .expect("every parked job ran");
    let body = world.listener.wait_for(1, WAIT).await[0].json();
    assert_eq!(body["data"]["forbidden_status"], 2, "{body}");
    assert!(
        earshot::state::dead_jobs(&world.s3, &world.bucket)
            .await
            .expect("listed")
            .is_empty()
    );
}

#[tokio::test]
async fn a_job_makes_only_the_s3_requests_it_needs() {
    let world = World::new().await;
    let pipeline = world.pipeline("move").await;
    let clean = speech(&world.file("clean.mp3"), "An ordinary voice message.");
    let job = world.upload("audio/clean.mp3", &clean).await;
    let before = s3_requests(&pipeline);
    finished(pipeline.process(&job).await.expect("job runs"));
    let passed = since(&s3_requests(&pipeline), &before);
    // The job's lease taken and ended, the object (one GET: no HEAD), the job record looked up
    // and written, the results row.
    let expected = [
        ("DeleteObject", 1),
        ("GetObject", 2),
        ("ListObjectsV2", 1),
        ("PutObject", 3),
    ];
    assert_eq!(
        passed,
        Requests::from(expected.map(|(op, n)| (op.to_owned(), n)))
    );

    let job = world.upload("audio/bad.mp3", &world.known_bad).await;
    let before = s3_requests(&pipeline);
    finished(pipeline.process(&job).await.expect("job runs"));
    let moved = since(&s3_requests(&pipeline), &before);
    // On top of a pass: its prior state kept for an exact restore (HEAD, tags, ACL, a record),
    // whether a person marked it normal (a listing), the copy (verified by its own checksum), a
    // HEAD of the backup and of the original, the delete, the audit log.
    assert_eq!(moved.get("GetObject"), Some(&3), "{moved:?}");
    assert_eq!(moved.get("CopyObject"), Some(&1), "{moved:?}");
    assert!(moved.get("HeadObject") <= Some(&4), "{moved:?}");
    assert!(moved.values().sum::<u64>() <= 20, "{moved:?}");
}
