//! Review items for the tests and benchmarks of the console at scale.

use earshot::pipeline::Pipeline;
use earshot::state::review::{self, ReviewItem};

use super::{Listener, config, human_review, put_file, suspicious_in_library};

/// A pipeline under human review (`timeout_secs`) on `bucket`, with one real upload judged and
/// waiting for a person; copies of its item make a queue of any length.
pub struct OneWaiting {
    pub pipeline: Pipeline,
    pub item: ReviewItem,
    _listener: Listener,
    _dir: tempfile::TempDir,
}

pub async fn one_item_waiting(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    timeout_secs: u64,
) -> OneWaiting {
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (upload, library) = suspicious_in_library(dir.path()).await;
    let mut config = config(bucket, &listener.url, "move", &library);
    human_review(&mut config, false, timeout_secs);
    put_file(s3, bucket, "audio/voice.mp3", &upload, "audio/mpeg").await;
    let pipeline = Pipeline::new(config).await.expect("pipeline");
    pipeline
        .process(&earshot::job::Job::new(bucket, "audio/voice.mp3"))
        .await
        .expect("judged");
    let queued = review::queue(s3, bucket).await.expect("queue");
    assert_eq!(queued.len(), 1, "the upload waits for a person");
    let item = review::item(s3, bucket, &queued[0].trace_id)
        .await
        .expect("item")
        .expect("an item");
    OneWaiting {
        pipeline,
        item,
        _listener: listener,
        _dir: dir,
    }
}
