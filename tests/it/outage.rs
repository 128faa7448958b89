//! S3 refuses a job's record just after its callback was answered 200 (a fault soak found the
//! object called back twice): writing the record is a step of its own, so the callback is sent
//! once and the record says it was delivered — whether S3 comes back while the job still tries,
//! or only after the job was left for its retry.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use earshot::job::Job;
use earshot::pipeline::{CallbackOutcome, Outcome, Pipeline};

const WAIT: Duration = Duration::from_secs(60);

/// A fresh bucket with one upload; a pipeline whose S3 is behind a gate (its patience with a
/// refused record as given); a listener that holds each callback for `hold` before answering 200.
struct World {
    s3: aws_sdk_s3::Client,
    bucket: String,
    gate: gate::Gate,
    listener: Listener,
    pipeline: Arc<Pipeline>,
    job: Job,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new(patience: Duration, hold: Duration) -> World {
        require_localstack();
        let s3 = s3(LOCALSTACK).await;
        let bucket = fresh_bucket(&s3).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let clean = speech(
            &dir.path().join("clean.mp3"),
            "Hello, this is an ordinary message.",
        );
        put_file(&s3, &bucket, "audio/clean.mp3", &clean, "audio/mpeg").await;
        let gate = gate::Gate::start(LOCALSTACK.trim_start_matches("http://")).await;
        let listener = Listener::start_with_delay(hold).await;
        let config = config_at(
            &gate.url,
            &bucket,
            &listener.url,
            "move",
            &dir.path().join("library"),
        );
        let pipeline = Pipeline::new(config)
            .await
            .expect("builds")
            .with_record_patience(patience);
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key("audio/clean.mp3")
            .send()
            .await
            .expect("uploaded");
        let mut job = Job::new(bucket.clone(), "audio/clean.mp3");
        job.etag = head.e_tag().map(|e| e.trim_matches('"').to_owned());
        World {
            s3,
            bucket,
            gate,
            listener,
            pipeline: Arc::new(pipeline),
            job,
            _dir: dir,
        }
    }

    /// Runs the job in the background, and closes the gate once its callback has arrived (it is
    /// answered after the gate closed, so the record is the next thing S3 is asked for).
    async fn run_and_cut_after_the_callback(
        &self,
    ) -> tokio::task::JoinHandle<Result<Outcome, earshot::pipeline::JobError>> {
        let (pipeline, job) = (self.pipeline.clone(), self.job.clone());
        let running = tokio::spawn(async move { pipeline.process(&job).await });
        eventually(WAIT, "the callback arriving", || async {
            (self.listener.arrived() == 1).then_some(())
        })
        .await;
        self.gate.close();
        running
    }

    /// PutObject requests the pipeline has sent (each attempt counts).
    fn puts(&self) -> f64 {
        self.pipeline
            .metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("earshot_s3_requests_total{operation=\"PutObject\"} "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// The job's record, read past the gate.
    async fn record(&self) -> Option<earshot::state::JobRecord> {
        earshot::state::finished_job(&self.s3, &self.bucket, &self.job.trace_id())
            .await
            .expect("S3 answers the test")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_s3_refuses_after_the_callback_is_written_without_calling_back_again() {
    let world = World::new(Duration::from_secs(90), Duration::from_secs(2)).await;
    let running = world.run_and_cut_after_the_callback().await;
    let before = world.puts();
    // Evidence the record was refused: the callback was answered, the record was tried twice
    // more, the job has not finished, and S3 holds no record.
    world.listener.wait_for(1, WAIT).await;
    eventually(WAIT, "two refused attempts at the record", || async {
        (world.puts() >= before + 2.0).then_some(())
    })
    .await;
    assert!(
        !running.is_finished(),
        "the job waits for S3 to take its record"
    );
    assert!(world.record().await.is_none());
    world.gate.open();
    let outcome = running.await.expect("joins").expect("the job finishes");
    let Outcome::Finished { callback, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(callback, CallbackOutcome::Delivered { attempts: 1 });
    let record = world.record().await.expect("the record is written");
    assert_eq!(record.callback, "delivered");
    assert_eq!(world.listener.received().len(), 1, "called back once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_left_for_its_retry_after_the_callback_resumes_at_its_record() {
    let world = World::new(Duration::from_secs(2), Duration::from_secs(2)).await;
    let running = world.run_and_cut_after_the_callback().await;
    let first = running.await.expect("joins");
    assert!(first.is_err(), "left for its retry: {first:?}");
    // A retry while S3 is still away fails too, and calls nobody.
    assert!(world.pipeline.process(&world.job).await.is_err());
    world.gate.open();
    let outcome = world
        .pipeline
        .process(&world.job)
        .await
        .expect("the retry finishes");
    let Outcome::Finished { callback, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(callback, CallbackOutcome::Delivered { attempts: 1 });
    assert_eq!(
        world.record().await.expect("recorded").callback,
        "delivered"
    );
    // A duplicate delivery of the event now finds the record.
    let again = world.pipeline.process(&world.job).await.expect("runs");
    assert!(matches!(again, Outcome::Duplicate { .. }), "{again:?}");
    assert_eq!(world.listener.received().len(), 1, "called back once");
}
