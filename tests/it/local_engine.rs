//! The local engine's acoustic matching through the product's own doors: `earshot library add`
//! fingerprints a Debian music track, `earshot library match` finds a transformed excerpt of it,
//! and a job on LocalStack blocks an upload that hides a re-encoded excerpt after some speech,
//! calling back with where in the upload it was found.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use earshot::job::Job;
use earshot::pipeline::{Outcome, Pipeline};

const TRACK: &str = "/usr/share/games/etr/music/freezingpoint.ogg";
const SPEECH: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";

/// Speech (7.1 s), then 10 s of the track from 40 s, faster by 4 %, as a 96 kb/s MP3.
fn disguised_excerpt(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("upload.mp3");
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", SPEECH, "-ss", "40", "-t", "10", "-i", TRACK])
        .args([
            "-filter_complex",
            "[0:a]aformat=sample_rates=44100:channel_layouts=mono[a];\
             [1:a]atempo=1.04,aformat=sample_rates=44100:channel_layouts=mono[b];[a][b]concat=n=2:v=0:a=1",
            "-b:a",
            "96k",
        ])
        .arg(&out));
    out
}

#[tokio::test]
async fn a_disguised_excerpt_of_a_library_track_is_found_and_blocked() {
    assert!(
        Path::new(TRACK).is_file(),
        "{TRACK} missing: run scripts/install-deps.sh"
    );
    require_localstack();
    let dir = tempfile::tempdir().expect("tempdir");
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let library = dir.path().join("library");
    let config = dir.path().join("earshot.toml");
    let typed = config_at(LOCALSTACK, &bucket, &listener.url, "move", &library);
    std::fs::write(&config, config_toml(&typed)).expect("write");

    let add = earshot(
        &config,
        &[
            "library",
            "add",
            "--scene",
            "porn",
            "--label",
            "banned-song",
            TRACK,
        ],
    );
    let id = added_id(&add);
    assert!(
        library.join("entries").join(format!("{id}.fp")).is_file(),
        "the fingerprint is stored beside the entry"
    );

    let upload = disguised_excerpt(dir.path());
    let matched = earshot(
        &config,
        &["library", "match", upload.to_str().expect("utf-8")],
    );
    assert!(
        matched.status.success(),
        "{}",
        String::from_utf8_lossy(&matched.stderr)
    );
    let matches: serde_json::Value = serde_json::from_slice(&matched.stdout).expect("JSON");
    assert_eq!(matches[0]["id"], id.as_str());
    assert!(
        matches[0]["score"].as_u64().expect("score") > 90,
        "{matches}"
    );
    let offset = matches[0]["offset_secs"].as_f64().expect("offset");
    assert!(
        (offset - 7.1).abs() < 1.0,
        "found {offset} s into the upload; the excerpt starts at 7.1 s"
    );

    let key = "audio/disguised.mp3";
    put_file(&s3, &bucket, key, &upload, "audio/mpeg").await;
    let pipeline = Pipeline::new(crate::common::config(
        &bucket,
        &listener.url,
        "move",
        &library,
    ))
    .await
    .expect("builds");
    let outcome = pipeline
        .process(&Job::new(bucket.clone(), key))
        .await
        .expect("job runs");
    let Outcome::Finished { body, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(body.data.forbidden_status.as_u8(), 2, "{body:?}");
    assert_eq!(head_status(&s3, &bucket, key).await, 404);

    let json = listener
        .wait_for(1, std::time::Duration::from_secs(20))
        .await[0]
        .json();
    assert_eq!(json["data"]["porn_info"]["label"], "banned-song");
    assert!(json["data"]["porn_info"]["score"].as_u64().expect("score") > 90);
    let segment = &json["data"]["segments"][0];
    assert_eq!(segment["scene"], "porn");
    assert_eq!(segment["reference_id"], id.as_str());
    let at = segment["offset_secs"].as_f64().expect("offset");
    let in_reference = segment["reference_offset_secs"]
        .as_f64()
        .expect("reference offset");
    assert!((at - 7.1).abs() < 1.0, "segment at {at} s");
    assert!(
        (in_reference - 40.0 - 1.04 * (at - 7.1)).abs() < 0.5,
        "reference offset {in_reference} s"
    );
}

#[tokio::test]
async fn a_rule_that_learns_catches_an_altered_reupload_of_what_it_blocked() {
    require_localstack();
    let dir = tempfile::tempdir().expect("tempdir");
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    // 12 s of music, known only by its SHA-256 (no fingerprint): exact copies only.
    let original = dir.path().join("original.mp3");
    run(Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-ss",
            "20",
            "-t",
            "12",
            "-i",
            TRACK,
            "-b:a",
            "128k",
        ])
        .arg(&original));
    let library = library_with(dir.path(), &original, earshot::model::Scene::Ads).await;
    let mut config = config_at(LOCALSTACK, &bucket, &listener.url, "move", &library);
    config.rules[0].block.learn = true;
    let pipeline = Pipeline::new(config).await.expect("builds");

    put_file(&s3, &bucket, "audio/first.mp3", &original, "audio/mpeg").await;
    let first = pipeline
        .process(&Job::new(bucket.clone(), "audio/first.mp3"))
        .await
        .expect("runs");
    let Outcome::Finished { body, .. } = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        body.data.forbidden_status.as_u8(),
        2,
        "the exact copy is blocked"
    );
    let id = hex::encode(earshot::engines::local::sha256_file(&original).expect("hash"));
    assert!(
        library.join("entries").join(format!("{id}.fp")).is_file(),
        "the blocked upload was fingerprinted into the library"
    );

    // Re-encoded to Vorbis, 3 % faster, 6 dB quieter: a different file, caught at once.
    let altered = dir.path().join("altered.ogg");
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(&original)
        .args([
            "-af",
            "atempo=1.03,volume=-6dB",
            "-c:a",
            "libvorbis",
            "-q:a",
            "2",
        ])
        .arg(&altered));
    put_file(&s3, &bucket, "audio/again.ogg", &altered, "audio/ogg").await;
    let second = pipeline
        .process(&Job::new(bucket.clone(), "audio/again.ogg"))
        .await
        .expect("runs");
    let Outcome::Finished { body, .. } = second else {
        panic!("{second:?}")
    };
    assert_eq!(
        body.data.forbidden_status.as_u8(),
        2,
        "the altered re-upload is blocked: {body:?}"
    );
    assert!(
        body.data.ads_info.label.starts_with("learned:"),
        "{:?}",
        body.data.ads_info
    );
}
