//! Every event shape earshot accepts, from fixtures in tests/fixtures/events (see its README for
//! where each shape comes from), parsed into jobs or acknowledged as ignorable.

use earshot::job::{Job, parse_event};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn keys(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|job| job.key.as_str()).collect()
}

#[test]
fn s3_put_is_one_job_with_version_and_etag() {
    let parsed = parse_event(&fixture("s3-put.json")).expect("parses");
    assert_eq!(parsed.jobs.len(), 1);
    let job = &parsed.jobs[0];
    assert_eq!(job.bucket, "media");
    assert_eq!(job.key, "audio/voice-note.mp3");
    assert_eq!(
        job.version_id.as_deref(),
        Some("096fKKXTRTtl3on89fVO.nfljtsv6qko")
    );
    assert_eq!(
        job.etag.as_deref(),
        Some("d41d8cd98f00b204e9800998ecf8427e")
    );
    assert_eq!(job.size, Some(1024));
}

#[test]
fn a_batch_of_n_records_is_n_jobs() {
    let parsed = parse_event(&fixture("s3-batch.json")).expect("parses");
    assert_eq!(
        keys(&parsed.jobs),
        ["audio/one.mp3", "audio/two.wav", "audio/three.flac"]
    );
    assert!(parsed.ignored.is_empty());
}

#[test]
fn delete_and_test_events_are_ignored_not_errors() {
    for name in ["s3-delete.json", "s3-test-event.json"] {
        let parsed = parse_event(&fixture(name)).expect("parses");
        assert!(parsed.jobs.is_empty(), "{name}");
        assert_eq!(parsed.ignored.len(), 1, "{name}");
    }
}

#[test]
fn encoded_keys_decode() {
    let parsed = parse_event(&fixture("s3-keys-encoded.json")).expect("parses");
    assert_eq!(
        keys(&parsed.jobs),
        [
            "audio/my voice note.mp3",
            "audio/c++ talk #1.mp3",
            "audio/语音/café über.m4a"
        ]
    );
}

#[test]
fn sns_wrapped_event_unwraps_to_the_same_job() {
    let direct = parse_event(&fixture("s3-put.json")).expect("parses");
    let wrapped = parse_event(&fixture("sns-wrapped.json")).expect("parses");
    assert_eq!(direct, wrapped);
}

#[test]
fn sns_to_lambda_event_unwraps_to_the_same_job() {
    let direct = parse_event(&fixture("s3-put.json")).expect("parses");
    let lambda = parse_event(&fixture("sns-lambda.json")).expect("parses");
    assert_eq!(direct, lambda);
}

#[test]
fn minio_webhook_body() {
    let parsed = parse_event(&fixture("minio-put.json")).expect("parses");
    assert_eq!(parsed.jobs.len(), 1);
    assert_eq!(parsed.jobs[0].bucket, "media");
    assert_eq!(parsed.jobs[0].key, "audio/minio upload.wav");
    assert_eq!(
        parsed.jobs[0].etag.as_deref(),
        Some("8e3bd6ce00fd8c7a1c7e7b7f6c4d7a55")
    );
}

#[test]
fn eventbridge_object_created() {
    let parsed = parse_event(&fixture("eventbridge-object-created.json")).expect("parses");
    assert_eq!(parsed.jobs.len(), 1);
    let job = &parsed.jobs[0];
    assert_eq!(
        (job.bucket.as_str(), job.key.as_str()),
        ("media", "audio/event bridge.ogg")
    );
    assert_eq!(
        job.version_id.as_deref(),
        Some("IYV3p45BhZA8Oq0rrgA7ZY0Zmq1dWBkp")
    );
    assert_eq!(job.size, Some(5));
}

#[test]
fn eventbridge_other_detail_types_are_ignored() {
    let text = String::from_utf8(fixture("eventbridge-object-created.json"))
        .expect("utf-8")
        .replace("Object Created", "Object Deleted");
    let parsed = parse_event(text.as_bytes()).expect("parses");
    assert!(parsed.jobs.is_empty());
    assert_eq!(parsed.ignored.len(), 1);
}
