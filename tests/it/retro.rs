//! Retro-hunt: an upload judged normal, then a reference added that it contains; the kept
//! fingerprint finds it without reading the audio, and the object is judged again (blocked,
//! called back with `"source": "retro"`), by `earshot retro` and by a running daemon by itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::common::corpus::{ETR, ffmpeg};
use crate::common::*;
use earshot::config::RetroConfig;
use earshot::job::Job;
use earshot::model::Scene;
use earshot::pipeline::Pipeline;

const WAIT: Duration = Duration::from_secs(120);

/// A 10 s MP3 excerpt of `track` from 30 s in.
fn excerpt(dir: &Path, name: &str, track: &str, bitrate: &str) -> PathBuf {
    ffmpeg(
        &["-ss", "30", "-t", "10", "-i", track, "-b:a", bitrate],
        &dir.join(name),
    )
}

#[tokio::test]
async fn a_reference_added_later_finds_an_earlier_upload_from_its_kept_fingerprint() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, library) = known_bad_in_library(dir.path()).await;
    let track = format!("{ETR}/spunkyrace-ks.ogg");
    let other = format!("{ETR}/calmrace-ks.ogg");
    let song = excerpt(dir.path(), "song.mp3", &track, "96k");
    let unrelated = excerpt(dir.path(), "unrelated.mp3", &other, "96k");
    put_file(&s3, &bucket, "audio/old-upload.mp3", &song, "audio/mpeg").await;
    put_file(
        &s3,
        &bucket,
        "audio/unrelated.mp3",
        &unrelated,
        "audio/mpeg",
    )
    .await;

    let mut config = config(&bucket, &listener.url, "move", &library);
    config.rules[0].retro = RetroConfig {
        keep: true,
        auto: false,
    };
    let pipeline = Pipeline::new(config.clone()).await.expect("builds");
    for key in ["audio/old-upload.mp3", "audio/unrelated.mp3"] {
        pipeline
            .process(&Job::new(bucket.clone(), key))
            .await
            .expect("judged");
    }
    let first = listener.wait_for(2, WAIT).await;
    assert!(
        first
            .iter()
            .all(|c| c.json()["data"]["forbidden_status"] == 0)
    );
    let trace_of_old = first
        .iter()
        .map(Received::json)
        .find(|c| c["data"]["key"] == "audio/old-upload.mp3")
        .expect("callback")["data"]["trace_id"]
        .clone();

    // The whole track becomes a reference.
    library_with(dir.path(), Path::new(&track), Scene::Porn).await;
    let pipeline = Arc::new(Pipeline::new(config.clone()).await.expect("reloads"));

    let dry = earshot::retro::hunt(&pipeline, None, None, true)
        .await
        .expect("dry run");
    let matched: Vec<&str> = dry[0].matched.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(matched, ["audio/old-upload.mp3"], "{dry:?}");
    assert_eq!(dry[0].searched, 2);
    assert_eq!(listener.arrived(), 2, "a dry run judges nothing");

    let hunts = earshot::retro::hunt(&pipeline, None, None, false)
        .await
        .expect("hunt");
    assert_eq!(hunts.len(), 1, "{hunts:?}");
    assert_eq!(hunts[0].judged.get("blocked"), Some(&1), "{hunts:?}");
    assert!(hunts[0].failed.is_empty(), "{hunts:?}");
    let calls = listener.wait_for(3, WAIT).await;
    let retro = calls[2].json();
    assert_eq!(retro["data"]["source"], "retro");
    assert_eq!(retro["data"]["key"], "audio/old-upload.mp3");
    assert_eq!(retro["data"]["forbidden_status"], 2);
    assert_eq!(
        retro["data"]["trace_id"], trace_of_old,
        "the same object version"
    );
    assert_eq!(head_status(&s3, &bucket, "audio/old-upload.mp3").await, 404);
    assert_eq!(head_status(&s3, &bucket, "audio/unrelated.mp3").await, 200);

    // The loose prints were packed; a second hunt has nothing new to search for.
    let packs = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("audit_freeze_backup/earshot/prints/uploads/")
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = packs.contents().iter().filter_map(|o| o.key()).collect();
    assert!(
        keys.iter().any(|k| k.contains("/packs/")) && !keys.iter().any(|k| k.contains("/loose/")),
        "{keys:?}"
    );
    let again = earshot::retro::hunt(&pipeline, None, None, false)
        .await
        .expect("second hunt");
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(listener.arrived(), 3);
}

#[tokio::test]
async fn a_running_daemon_hunts_by_itself_when_its_library_gains_a_reference() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let (_, queue_url) = fresh_queue(&s3, Some(&bucket)).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, library) = known_bad_in_library(dir.path()).await;
    let track = format!("{ETR}/spunkyrace-ks.ogg");
    let song = excerpt(dir.path(), "song.mp3", &track, "128k");

    let mut config = config(&bucket, &listener.url, "move", &library);
    config.rules[0].retro = RetroConfig {
        keep: true,
        auto: true,
    };
    config.sources.sqs = Some(sqs_source(&queue_url, 2, 60));
    let Some(earshot::config::EngineConfig::Local(local)) = config.engines.get_mut("local") else {
        panic!("the test config has a local engine");
    };
    local.refresh_secs = 1;
    let mut daemon = Daemon::start(dir.path(), &config);
    put_file(&s3, &bucket, "audio/song.mp3", &song, "audio/mpeg").await;
    let first = listener.wait_for(1, WAIT).await;
    assert_eq!(first[0].json()["data"]["forbidden_status"], 0);

    library_with(dir.path(), Path::new(&track), Scene::Porn).await;
    let calls = listener.wait_for(2, WAIT).await;
    let retro = calls[1].json();
    assert_eq!(retro["data"]["source"], "retro", "{retro}");
    assert_eq!(retro["data"]["forbidden_status"], 2, "{retro}");
    assert_eq!(
        retro["data"]["trace_id"],
        first[0].json()["data"]["trace_id"]
    );
    daemon.assert_running();
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(log.contains("Retro-hunt done."), "{log}");
}
