//! `earshot restore`: both block modes undone exactly (the grants that were there, not a guessed
//! `public-read`; the key, headers, metadata, tags and storage class), a reused key refused, no
//! block loop when the restored object's own event arrives, `--reference` and `--mark-normal`.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ObjectCannedAcl, StorageClass};

use crate::common::*;
use earshot::commands::restore::{Restore, run as restore};
use earshot::job::Job;
use earshot::model::Scene;
use earshot::pipeline::{Outcome, Pipeline, RestoreRequest};
use earshot::state::blocks;

fn request(reason: &str, mark_normal: bool) -> RestoreRequest {
    RestoreRequest {
        by: "alice".to_owned(),
        reason: reason.to_owned(),
        mark_normal,
    }
}

fn one(bucket: &str, key: &str, reason: &str) -> Restore {
    Restore {
        target: format!("s3://{bucket}/{key}"),
        reference: None,
        since: None,
        until: None,
        request: request(reason, false),
    }
}

async fn anonymous_get(url: &str) -> u16 {
    reqwest::get(url)
        .await
        .expect("the store answers")
        .status()
        .as_u16()
}

/// (type, id, uri, permission) of every grant, ignoring display names.
async fn grants(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> BTreeSet<String> {
    let acl = s3
        .get_object_acl()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("acl");
    acl.grants()
        .iter()
        .map(|g| {
            let grantee = g.grantee().expect("grantee");
            format!(
                "{} {} {} {}",
                grantee.r#type().as_str(),
                grantee.id().unwrap_or("-"),
                grantee.uri().unwrap_or("-"),
                g.permission().map_or("-", |p| p.as_str())
            )
        })
        .collect()
}

async fn process(pipeline: &Pipeline, bucket: &str, key: &str) -> Outcome {
    pipeline
        .process(&Job::new(bucket.to_owned(), key))
        .await
        .expect("job runs")
}

fn forbidden_status(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Finished { body, .. } => body.data.forbidden_status.as_u8(),
        other => panic!("not finished: {other:?}"),
    }
}

#[tokio::test]
async fn acl_restore_puts_back_the_exact_grants_and_calls_back() {
    require_moto();
    let endpoint = moto_endpoint();
    let s3 = s3(&endpoint).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (bad, library) = known_bad_in_library(dir.path()).await;
    let key = "audio/bad.mp3";
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_path(&bad).await.expect("readable"))
        .send()
        .await
        .expect("put");
    // A grant no canned ACL gives: another account may read the ACL. A restore that guessed
    // `public-read` would lose it.
    let owner = s3
        .get_object_acl()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("acl")
        .owner()
        .cloned()
        .expect("owner");
    s3.put_object_acl()
        .bucket(&bucket)
        .key(key)
        .grant_full_control(format!("id=\"{}\"", owner.id().expect("owner id")))
        .grant_read("uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"")
        .grant_read_acp("id=\"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be\"")
        .send()
        .await
        .expect("custom acl");
    let before = grants(&s3, &bucket, key).await;
    assert_eq!(before.len(), 3, "{before:?}");
    let url = format!("{endpoint}/{bucket}/{key}");

    let config = config_at(&endpoint, &bucket, &listener.url, "acl-private", &library);
    let pipeline = Pipeline::new(config.clone()).await.expect("builds");
    assert_eq!(forbidden_status(&process(&pipeline, &bucket, key).await), 1);
    assert_eq!(anonymous_get(&url).await, 403);
    let blocked = listener.wait_for(1, Duration::from_secs(20)).await[0].json();

    let summary = restore(config.clone(), &one(&bucket, key, "false positive"))
        .await
        .expect("restores");
    assert_eq!(summary.restored.len(), 1, "{summary:?}");
    assert_eq!(anonymous_get(&url).await, 200);
    assert_eq!(grants(&s3, &bucket, key).await, before, "the exact grants");

    let calls = listener.wait_for(2, Duration::from_secs(20)).await;
    let restored = calls[1].json();
    assert!(signature_ok(&calls[1], "s3cret"));
    assert_eq!(restored["data"]["trace_id"], blocked["data"]["trace_id"]);
    assert_eq!(restored["data"]["forbidden_status"], 0);
    assert_eq!(restored["data"]["source"], "restore");
    assert_eq!(restored["data"]["action"]["by"], "alice");
    assert_eq!(restored["data"]["action"]["reason"], "false positive");
    assert!(restored["data"]["action"]["at"].as_u64().is_some());

    // Idempotent: a second restore does nothing and sends nothing.
    let again = restore(config.clone(), &one(&bucket, key, "again"))
        .await
        .expect("no-op");
    assert_eq!(again.already.len(), 1, "{again:?}");
    let log = blocks::audit_log(&s3, &bucket).await.expect("audit log");
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.by.as_str()))
        .collect();
    assert_eq!(actions, [("block", "earshot"), ("restore", "alice")]);
    assert_eq!(listener.arrived(), 2, "no callback for the no-op restore");
}

/// Uploads `path` at `key` with headers, metadata, tags and a storage class to check later.
async fn put_dressed(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, path: &std::path::Path) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("audio/x-custom")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"take 1.mp3\"")
        .metadata("uploader", "bob")
        .metadata("episode", "42")
        .tagging("team=voice&state=new%20upload")
        .storage_class(StorageClass::StandardIa)
        .body(ByteStream::from_path(path).await.expect("readable"))
        .send()
        .await
        .expect("put");
}

#[tokio::test]
async fn move_restore_puts_back_key_headers_metadata_tags_and_class_without_a_block_loop() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (bad, library) = known_bad_in_library(dir.path()).await;
    let (key, reused) = ("audio/take 1.mp3", "audio/reused.mp3");
    put_dressed(&s3, &bucket, key, &bad).await;
    put_dressed(&s3, &bucket, reused, &bad).await;
    let bytes = get_bytes(&s3, &bucket, key).await;
    let head_before = s3
        .head_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("head");

    let config = config(&bucket, &listener.url, "move", &library);
    let pipeline = Pipeline::new(config.clone()).await.expect("builds");
    for k in [key, reused] {
        assert_eq!(forbidden_status(&process(&pipeline, &bucket, k).await), 2);
        assert_eq!(head_status(&s3, &bucket, k).await, 404);
    }
    listener.wait_for(2, Duration::from_secs(20)).await;

    // A new upload at the key since the block: the restore refuses and names it.
    put_bytes(&s3, &bucket, reused, b"a newer upload".to_vec()).await;
    let refused = restore(config.clone(), &one(&bucket, reused, "mistake"))
        .await
        .expect_err("the key holds a newer upload");
    let text = refused.to_string();
    assert!(
        text.contains(reused) && text.contains("newer upload"),
        "{text}"
    );
    assert_eq!(
        get_bytes(&s3, &bucket, reused).await,
        b"a newer upload",
        "the newer upload stays"
    );
    let backup = format!("audit_freeze_backup/increment_audit/{reused}");
    assert_eq!(head_status(&s3, &bucket, &backup).await, 200, "still kept");

    restore(config.clone(), &one(&bucket, key, "false positive"))
        .await
        .expect("restores");
    assert_eq!(get_bytes(&s3, &bucket, key).await, bytes, "byte for byte");
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), head_before.content_type());
    assert_eq!(head.content_type(), Some("audio/x-custom"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(
        head.content_disposition(),
        head_before.content_disposition()
    );
    assert_eq!(head.metadata(), head_before.metadata());
    assert_eq!(head.storage_class(), Some(&StorageClass::StandardIa));
    let tags = s3
        .get_object_tagging()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("tags");
    let tags: BTreeSet<(String, String)> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    assert_eq!(
        tags,
        BTreeSet::from([
            ("state".to_owned(), "new upload".to_owned()),
            ("team".to_owned(), "voice".to_owned())
        ])
    );
    let backup = format!("audit_freeze_backup/increment_audit/{key}");
    assert_eq!(
        head_status(&s3, &bucket, &backup).await,
        404,
        "backup removed"
    );
    let calls = listener.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(calls[2].json()["data"]["forbidden_status"], 0);
    assert_eq!(calls[2].json()["data"]["key"], key);

    // The restored object's own event: recognised, nothing blocked, nothing called back.
    let event = Job {
        etag: head.e_tag().map(|e| e.trim_matches('"').to_owned()),
        ..Job::new(bucket.clone(), key)
    };
    let outcome = pipeline.process(&event).await.expect("runs");
    assert!(matches!(outcome, Outcome::Duplicate { .. }), "{outcome:?}");
    // And even judged afresh (its job record lost, or a new version id), it is not blocked again.
    let rejudged = Job {
        rejudge: true,
        ..event.clone()
    };
    let outcome = pipeline.process(&rejudged).await.expect("runs");
    let Outcome::Finished { body, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(body.data.forbidden_status.as_u8(), 0);
    assert_eq!(body.data.result.as_u8(), 1, "still scored as it is");
    assert!(
        body.message.contains("restored by alice"),
        "{}",
        body.message
    );
    assert_eq!(head_status(&s3, &bucket, key).await, 200);
}

#[tokio::test]
async fn restore_by_reference_undoes_that_entrys_blocks_and_mark_normal_keeps_the_audio_free() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let song = music(&dir.path().join("song.mp3"), 10.0, &["-b:a", "128k"]);
    let other = tone(&dir.path().join("other.mp3"), 4.0, 880, &["-b:a", "96k"]);
    let library = library_with(dir.path(), &song, Scene::Ads).await;
    // A second entry in the same library.
    let second = library_with(dir.path(), &other, Scene::Porn).await;
    assert_eq!(second, library);
    let song_again = music(&dir.path().join("song-64k.mp3"), 10.0, &["-b:a", "64k"]);
    put_file(&s3, &bucket, "audio/a.mp3", &song, "audio/mpeg").await;
    put_file(&s3, &bucket, "audio/b.mp3", &song_again, "audio/mpeg").await;
    put_file(&s3, &bucket, "audio/c.mp3", &other, "audio/mpeg").await;

    let config = config(&bucket, &listener.url, "move", &library);
    let pipeline = Pipeline::new(config.clone()).await.expect("builds");
    for key in ["audio/a.mp3", "audio/b.mp3", "audio/c.mp3"] {
        assert_eq!(
            forbidden_status(&process(&pipeline, &bucket, key).await),
            2,
            "{key}"
        );
    }
    let song_id = sha256_hex(&std::fs::read(&song).expect("song"));
    let summary = restore(
        config.clone(),
        &Restore {
            target: format!("s3://{bucket}"),
            reference: Some(song_id[..12].to_owned()),
            since: None,
            until: None,
            request: request("the song is licensed", true),
        },
    )
    .await
    .expect("restores");
    let mut restored = summary.restored.clone();
    restored.sort();
    assert_eq!(
        restored,
        [
            format!("s3://{bucket}/audio/a.mp3"),
            format!("s3://{bucket}/audio/b.mp3")
        ]
    );
    assert_eq!(head_status(&s3, &bucket, "audio/a.mp3").await, 200);
    assert_eq!(head_status(&s3, &bucket, "audio/b.mp3").await, 200);
    assert_eq!(
        head_status(&s3, &bucket, "audio/c.mp3").await,
        404,
        "another entry's block stands"
    );

    // Marked normal: the song re-encoded once more, at a new key, is not blocked, by fingerprint.
    let song_96 = music(&dir.path().join("song-96k.mp3"), 10.0, &["-b:a", "96k"]);
    put_file(&s3, &bucket, "audio/d.mp3", &song_96, "audio/mpeg").await;
    let outcome = process(&pipeline, &bucket, "audio/d.mp3").await;
    let Outcome::Finished { body, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(body.data.forbidden_status.as_u8(), 0, "{}", body.message);
    assert!(
        body.message.contains("marked normal by alice"),
        "{}",
        body.message
    );
    assert_eq!(head_status(&s3, &bucket, "audio/d.mp3").await, 200);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
