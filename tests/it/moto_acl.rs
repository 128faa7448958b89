//! `acl-private` seen from outside: moto server enforces object ACLs on anonymous reads (LocalStack
//! keeps ACLs but does not enforce them), so this is where the 403 is observed.

use std::time::Duration;

use crate::common::*;
use earshot::model::Scene;
use earshot::pipeline::{Outcome, Pipeline};

async fn anonymous_get(url: &str) -> u16 {
    reqwest::get(url)
        .await
        .expect("moto answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn acl_private_makes_anonymous_get_answer_403() {
    require_moto();
    let endpoint = moto_endpoint();
    let s3 = s3(&endpoint).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = tone(&dir.path().join("bad.mp3"), 3.0, 660, &[]);
    let clean = tone(&dir.path().join("clean.mp3"), 3.0, 330, &[]);
    let library = library_with(dir.path(), &bad, Scene::Ads).await;

    for (key, path) in [("audio/bad.mp3", &bad), ("audio/clean.mp3", &clean)] {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
            .body(
                aws_sdk_s3::primitives::ByteStream::from_path(path)
                    .await
                    .expect("readable"),
            )
            .send()
            .await
            .expect("put");
        assert_eq!(
            anonymous_get(&format!("{endpoint}/{bucket}/{key}")).await,
            200
        );
    }

    let config = config_at(&endpoint, &bucket, &listener.url, "acl-private", &library);
    let pipeline = Pipeline::new(config).await.expect("builds");
    for key in ["audio/bad.mp3", "audio/clean.mp3"] {
        let outcome = pipeline
            .process(&earshot::job::Job::new(bucket.clone(), key))
            .await
            .expect("job runs");
        assert!(matches!(outcome, Outcome::Finished { .. }), "{outcome:?}");
    }

    assert_eq!(
        anonymous_get(&format!("{endpoint}/{bucket}/audio/bad.mp3")).await,
        403
    );
    assert_eq!(
        anonymous_get(&format!("{endpoint}/{bucket}/audio/clean.mp3")).await,
        200,
        "a clean upload stays readable"
    );
    let received = listener.wait_for(2, Duration::from_secs(20)).await;
    let statuses: Vec<(String, i64)> = received
        .iter()
        .map(|r| {
            let json = r.json();
            (
                json["data"]["key"].as_str().expect("key").to_owned(),
                json["data"]["forbidden_status"].as_i64().expect("status"),
            )
        })
        .collect();
    assert!(
        statuses.contains(&("audio/bad.mp3".to_owned(), 1)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("audio/clean.mp3".to_owned(), 0)),
        "{statuses:?}"
    );
}
