//! Throughput against Tencent AMS at its default limits: `earshot serve` (release build, webhook
//! source, LocalStack S3) with a `tencent_ams` engine against the fake AMS of
//! tests/it/common/providers/ on AMS's own defaults (it answers `RequestLimitExceeded` above 20
//! requests/s and works on at most 10 tasks at once, queueing the rest), each task taking `work`
//! once it has a slot. `jobs` distinct uploads are notified at once; the clock runs from the
//! first notification to the last callback. Two runs:
//!
//! - **defaults**: earshot on its defaults (20 requests/s, 10 tasks in progress, 10 tasks per
//!   call), 1 s per task. The ceiling is AMS's concurrency: 10 tasks ÷ 1 s = 10 jobs/s.
//! - **one task per call**: `max_batch = 1`, 0.1 s per task. The ceiling is the request rate:
//!   20 calls/s = 20 jobs/s (concurrency would allow 100), so this is where earshot's spacing of
//!   requests meets AMS's limit.
//!
//! Reported per run: jobs/s and its ratio to the ceiling, the most requests AMS saw in any
//! one-second window, how many it refused with `RequestLimitExceeded`, the most tasks it held
//! unfinished (created and not done: AMS queues what exceeds its 10, so only earshot's own limit
//! keeps this down) and worked on at once, and tasks per `CreateAudioModerationTask`. Needs
//! LocalStack (`bench/run.sh ams`). Written to bench/out/ams.md.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::providers::{AMS_SECRET_ID, AMS_SECRET_KEY, FakeAms};
use common::*;

fn jobs() -> usize {
    if std::env::var_os("BENCH_QUICK").is_some() {
        30
    } else {
        200
    }
}

struct Run {
    name: &'static str,
    /// Seconds AMS works on a task.
    work: Duration,
    /// Extra `[engines.ams]` settings.
    settings: &'static str,
    /// The jobs/s AMS's limits allow.
    ceiling: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    require_localstack();
    let jobs = jobs();
    let s3 = s3(LOCALSTACK).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("library")).expect("library");
    // One recording, uploaded under many keys: each key is its own job (its own trace id).
    let clip = tone(&dir.path().join("clip.mp3"), 2.0, 440, &["-b:a", "64k"]);
    let runs = [
        Run {
            name: "defaults, 1 s per task",
            work: Duration::from_millis(1000),
            settings: "",
            ceiling: 10.0,
        },
        Run {
            name: "max_batch = 1, 0.1 s per task",
            work: Duration::from_millis(100),
            settings: "max_batch = 1",
            ceiling: 20.0,
        },
    ];
    let mut table = String::from(
        "| run | jobs | time | jobs/s | ceiling | × ceiling | max requests in 1 s | RequestLimitExceeded | max tasks unfinished at AMS | max tasks worked on | Create calls | tasks/call | failed |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in &runs {
        let row = measure(&s3, dir.path(), &clip, jobs, run).await;
        println!("{row}");
        table.push_str(&row);
    }
    println!("\n{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out");
    std::fs::create_dir_all(&out).expect("bench/out");
    std::fs::write(out.join("ams.md"), table).expect("write bench/out/ams.md");
}

/// One run in a fresh bucket against a fresh fake; its table row.
async fn measure(
    s3: &aws_sdk_s3::Client,
    dir: &Path,
    clip: &Path,
    jobs: usize,
    run: &Run,
) -> String {
    let bucket = fresh_bucket(s3).await;
    let fake = FakeAms::start().await;
    fake.set_work(run.work);
    let listener = Listener::start().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    for i in 0..jobs {
        put_file(
            s3,
            &bucket,
            &format!("audio/{i:04}.mp3"),
            clip,
            "audio/mpeg",
        )
        .await;
    }
    let config = format!(
        r#"
        [s3]
        endpoint_url = "{LOCALSTACK}"
        region = "us-east-1"
        force_path_style = true
        access_key_id = "test"
        secret_access_key = "test"

        [[rules]]
        id = "voice"
        bucket = "{bucket}"
        prefix = "audio/"
        engine = "ams"
        callback = {{ url = "{callback}" }}

        [engines.local]
        type = "local"
        library = "{library}"

        [engines.ams]
        type = "tencent_ams"
        secret_id = "{AMS_SECRET_ID}"
        secret_key = "{AMS_SECRET_KEY}"
        endpoint = "{ams}"
        seed = "bench-seed"
        callback_base_url = "{base}"
        {settings}

        [async_jobs]
        token_key = "bench-token-key-0123456789abcdef0123"

        [sources.webhook]
        listen = "127.0.0.1:{port}"
        max_concurrency = 64
        queue_capacity = 1024
        [sources.webhook.minio]
        auth_token = "bench-webhook-token-0123"
        "#,
        callback = listener.url,
        library = dir.join("library").display(),
        ams = fake.url,
        settings = run.settings,
    );
    let mut daemon = Daemon::spawn(dir, &config);
    daemon
        .wait_until_listening(&format!("{base}/healthz"))
        .await;

    let client = reqwest::Client::new();
    let start = Instant::now();
    for i in 0..jobs {
        let event = s3_event(&bucket, &format!("audio/{i:04}.mp3"));
        let answer = client
            .post(format!("{base}/minio"))
            .bearer_auth("bench-webhook-token-0123")
            .json(&event)
            .send()
            .await
            .expect("webhook answers");
        assert_eq!(answer.status(), 200);
    }
    let callbacks = listener.wait_for(jobs, Duration::from_secs(600)).await;
    let elapsed = callbacks
        .iter()
        .map(|c| c.at)
        .max()
        .expect("callbacks")
        .duration_since(start);
    let failed = callbacks.iter().filter(|c| c.json()["code"] != 0).count();
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");

    let requests = fake.requests();
    let creates: Vec<_> = requests
        .iter()
        .filter(|r| r.action == "CreateAudioModerationTask" && r.error.is_none())
        .collect();
    let throttled = requests
        .iter()
        .filter(|r| r.error.as_deref() == Some("RequestLimitExceeded"))
        .count();
    let per_call = creates.iter().map(|r| r.tasks).sum::<usize>() as f64 / creates.len() as f64;
    let jobs_per_sec = jobs as f64 / elapsed.as_secs_f64();
    format!(
        "| {} | {jobs} | {:.1} s | {jobs_per_sec:.2} | {:.0}/s | {:.2} | {} | {throttled} | {} | {} | {} | {per_call:.1} | {failed} |\n",
        run.name,
        elapsed.as_secs_f64(),
        run.ceiling,
        jobs_per_sec / run.ceiling,
        fake.max_requests_per_second(),
        fake.max_unfinished(),
        fake.max_in_progress(),
        creates.len(),
    )
}
