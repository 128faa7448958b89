//! Work that two processes can meet on, outside review, done exactly once: a lease raced by six
//! takers (and taken over once when its holder stopped), three `earshot moderate` processes at once
//! on each upload (as two daemons given the same event), five `earshot restore` processes at once
//! on each blocked object, two `earshot scan` processes of the same objects at once, and an upload
//! landing between a restore's check of the key and its write. The
//! processes are made to meet: the one that takes the lease waits there (`EARSHOT_PAUSE_AT`) while
//! the others arrive.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::cli::stdout_json;
use crate::common::*;
use earshot::state::blocks;
use earshot::state::lease::{self, Taken};

/// `earshot ARGS…` in a process of its own that waits `pause` at the point named.
async fn earshot_pausing(config: &Path, args: &[String], pause: &str) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_earshot"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("EARSHOT_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .env("EARSHOT_PAUSE_AT", pause)
        .output()
        .await
        .expect("earshot runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Per trace id: callbacks whose `data.source` is `source`.
fn callbacks_by_source(received: &[Received], source: Option<&str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for body in received.iter().map(Received::json) {
        if body["data"]["source"].as_str() == source {
            let id = body["data"]["trace_id"].as_str().expect("a trace id");
            *counts.entry(id.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// A bucket with `bad` uploads of a library recording (`audio/bad<i>.mp3`) and `clean` ones
/// (`audio/clean<i>.mp3`), a callback listener, and a config blocking by moving (also written to
/// a file for the processes).
struct Setup {
    s3: aws_sdk_s3::Client,
    bucket: String,
    listener: Listener,
    _dir: tempfile::TempDir,
    config: earshot::config::Config,
    config_path: std::path::PathBuf,
    keys: Vec<String>,
}

impl Setup {
    async fn new(bad: usize, clean: usize) -> Setup {
        require_localstack();
        let s3 = s3(LOCALSTACK).await;
        let bucket = fresh_bucket(&s3).await;
        let listener = Listener::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let known = tone(&dir.path().join("bad.mp3"), 3.0, 500, &[]);
        let ordinary = tone(&dir.path().join("clean.mp3"), 3.0, 260, &[]);
        let library = library_with(dir.path(), &known, earshot::model::Scene::Ads).await;
        let keys: Vec<String> = (0..bad).map(|i| format!("audio/bad{i}.mp3")).collect();
        for key in &keys {
            put_file(&s3, &bucket, key, &known, "audio/mpeg").await;
        }
        for i in 0..clean {
            let key = format!("audio/clean{i}.mp3");
            put_file(&s3, &bucket, &key, &ordinary, "audio/mpeg").await;
        }
        let config = config(&bucket, &listener.url, "move", &library);
        let config_path = dir.path().join("earshot.toml");
        std::fs::write(&config_path, config_toml(&config)).expect("write");
        Setup {
            s3,
            bucket,
            listener,
            _dir: dir,
            config,
            config_path,
            keys,
        }
    }
}

/// A lease its holder could not give back (S3 refused the release) is taken over by that holder
/// alone (`take_own`, for a process that knows none of its tasks runs the work), never by another
/// before it runs out.
#[tokio::test]
async fn a_lease_left_behind_is_taken_back_by_its_own_holder_only() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let prefix = "audit_freeze_backup/earshot/leases/own/";
    let take = |holder: &'static str, own: bool| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move {
            let taken = if own {
                lease::take_own(&s3, &bucket, prefix, holder, 1_010, 60).await
            } else {
                lease::take(&s3, &bucket, prefix, holder, 1_010, 60).await
            };
            taken.expect("S3 answers")
        }
    };
    let Taken::Held(first) = lease::take(&s3, &bucket, prefix, "a", 1_000, 60)
        .await
        .expect("S3 answers")
    else {
        panic!("a fresh lease is free")
    };
    assert!(matches!(take("a", false).await, Taken::Busy(_)));
    assert!(matches!(take("b", true).await, Taken::Busy(_)));
    let Taken::Held(again) = take("a", true).await else {
        panic!("its own holder takes it back")
    };
    assert_eq!(again.generation.generation, first.generation.generation + 1);
    assert!(matches!(take("b", false).await, Taken::Busy(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_six_takers_one_holds_a_lease_and_one_takes_over_a_stopped_holder() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    for round in 0..10 {
        let prefix = format!("audit_freeze_backup/earshot/leases/test-{round}/");
        let race = |now: u64| {
            let (s3, bucket, prefix) = (s3.clone(), bucket.clone(), prefix.clone());
            async move {
                let takers = (0..6).map(|i| {
                    let (s3, bucket, prefix) = (s3.clone(), bucket.clone(), prefix.clone());
                    tokio::spawn(async move {
                        lease::take(&s3, &bucket, &prefix, &format!("p{i}"), now, 60)
                            .await
                            .expect("S3 answers")
                    })
                });
                let mut held = Vec::new();
                let mut busy = Vec::new();
                for taker in takers {
                    match taker.await.expect("taker runs") {
                        Taken::Held(h) => held.push(h),
                        Taken::Busy(g) => busy.push(g),
                    }
                }
                (held, busy)
            }
        };
        let (mut held, busy) = race(1_000).await;
        assert_eq!(
            held.len(),
            1,
            "round {round}: one of six holds it: {held:?}"
        );
        let first = held.pop().expect("one");
        assert!(
            busy.iter().all(|g| g.holder == first.generation.holder),
            "round {round}: the others see the holder: {busy:?}"
        );
        // The holder stops without giving it back: nobody takes it before it runs out…
        let (held, _) = race(1_059).await;
        assert!(
            held.is_empty(),
            "round {round}: taken while it ran: {held:?}"
        );
        // …and exactly one of six takes it over after.
        let (mut held, _) = race(1_060).await;
        assert_eq!(held.len(), 1, "round {round}: one takeover: {held:?}");
        let second = held.pop().expect("one");
        assert_eq!(
            second.generation.generation,
            first.generation.generation + 1
        );
        // The stopped holder, back, learns that it lost the lease and must stop.
        let mut stale = first.clone();
        assert!(!stale.renew(&s3, 1_061, 60).await.expect("S3 answers"));
        assert!(!first.still_held(&s3).await.expect("S3 answers"));
        // Given back, the lease is free at once for exactly one.
        second.release(&s3, 1_062).await.expect("released");
        let (held, _) = race(1_062).await;
        assert_eq!(
            held.len(),
            1,
            "round {round}: one after the release: {held:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_judging_one_upload_at_once_block_and_call_back_once() {
    let Setup {
        s3,
        bucket,
        listener,
        config_path,
        keys,
        config: _,
        _dir,
    } = Setup::new(4, 0).await;
    let mut runs = Vec::new();
    for key in &keys {
        for _ in 0..3 {
            let args: Vec<String> = ["moderate".to_owned(), format!("s3://{bucket}/{key}")].into();
            let config_path = config_path.clone();
            runs.push(tokio::spawn(async move {
                earshot_pausing(&config_path, &args, "job-leased:1.5").await
            }));
        }
    }
    let mut refused = 0;
    for run in runs {
        let out = run.await.expect("runs");
        let (said, complained) = (text(&out.stdout), text(&out.stderr));
        if out.status.success() {
            // Judged here, or found judged by the process that held the job.
            assert_eq!(
                stdout_json_text(&said)["data"]["forbidden_status"],
                2,
                "moved: {said}"
            );
        } else {
            assert!(
                complained.contains("is being judged by another process"),
                "{complained}"
            );
            refused += 1;
        }
    }
    assert!(refused > 0, "the processes met");
    // Every process has exited and every upload has its job record: now count.
    for key in &keys {
        assert_eq!(head_status(&s3, &bucket, key).await, 404, "{key} blocked");
    }
    let records = earshot::state::keys_under(&s3, &bucket, earshot::layout::JOBS_PREFIX)
        .await
        .expect("job records");
    assert_eq!(records.len(), keys.len(), "{records:?}");
    let received = listener.wait_for(keys.len(), Duration::from_secs(30)).await;
    let judged = callbacks_by_source(&received, Some("manual"));
    assert_eq!(judged.len(), keys.len(), "{judged:?}");
    assert!(judged.values().all(|&n| n == 1), "{judged:?}");
    assert_eq!(listener.arrived() as usize, keys.len());
    let mut logged = BTreeMap::<String, usize>::new();
    for entry in blocks::audit_log(&s3, &bucket).await.expect("audit log") {
        *logged.entry(entry.action).or_default() += 1;
    }
    assert_eq!(logged.get("block"), Some(&keys.len()), "{logged:?}");
}

/// A job's lease is renewed while the job runs: a process that holds one past the lease's
/// length (3 s; it waits 5 s just after taking it) still holds it when another arrives at 4 s.
#[tokio::test]
async fn a_job_held_past_its_lease_length_is_renewed_not_taken_over() {
    let setup = Setup::new(1, 0).await;
    let mut config = setup.config.clone();
    config.limits.job_lease_secs = 3;
    let config_path = setup.config_path.with_file_name("short-lease.toml");
    std::fs::write(&config_path, config_toml(&config)).expect("write");
    let args: Vec<String> = [
        "moderate".to_owned(),
        format!("s3://{}/{}", setup.bucket, setup.keys[0]),
    ]
    .into();
    let holder = {
        let (config_path, args) = (config_path.clone(), args.clone());
        tokio::spawn(async move { earshot_pausing(&config_path, &args, "job-leased:5").await })
    };
    let etag = setup
        .s3
        .head_object()
        .bucket(&setup.bucket)
        .key(&setup.keys[0])
        .send()
        .await
        .expect("head")
        .e_tag()
        .expect("etag")
        .trim_matches('"')
        .to_owned();
    let mut job = earshot::job::Job::new(&setup.bucket, &setup.keys[0]);
    job.etag = Some(etag);
    let lease = earshot::layout::job_lease_prefix(&job.trace_id());
    // Evidence that the holder took the lease, then a wait past its length.
    eventually(Duration::from_secs(30), "the lease taken", || async {
        let held = earshot::state::keys_under(&setup.s3, &setup.bucket, &lease)
            .await
            .expect("S3 answers");
        (!held.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let late = earshot_pausing(&config_path, &args, "none:0").await;
    assert!(
        !late.status.success() && text(&late.stderr).contains("is being judged by another process"),
        "the late process found the job held: {}",
        text(&late.stderr)
    );
    let held = holder.await.expect("runs");
    assert!(held.status.success(), "{}", text(&held.stderr));
    let received = setup.listener.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(setup.listener.arrived(), 1, "called back once");
}

fn stdout_json_text(said: &str) -> serde_json::Value {
    serde_json::from_str(said).unwrap_or_else(|e| panic!("{e}: {said}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_restores_at_once_put_back_call_back_and_log_each_block_once() {
    let Setup {
        s3,
        bucket,
        listener,
        config,
        config_path,
        keys,
        _dir,
    } = Setup::new(4, 0).await;
    let pipeline = earshot::pipeline::Pipeline::new(config)
        .await
        .expect("builds");
    for key in &keys {
        pipeline
            .process(&earshot::job::Job::new(bucket.clone(), key))
            .await
            .expect("job runs");
        assert_eq!(head_status(&s3, &bucket, key).await, 404, "{key} blocked");
    }
    listener.wait_for(keys.len(), Duration::from_secs(30)).await;

    let mut runs = Vec::new();
    for key in &keys {
        for by in 0..5 {
            let args: Vec<String> = [
                "restore".to_owned(),
                format!("s3://{bucket}/{key}"),
                "--reason".to_owned(),
                "licensed".to_owned(),
                "--by".to_owned(),
                format!("user{by}"),
            ]
            .into();
            let config_path = config_path.clone();
            runs.push(tokio::spawn(async move {
                earshot_pausing(&config_path, &args, "restore-leased:1.5").await
            }));
        }
    }
    let mut restored = BTreeMap::<String, usize>::new();
    for run in runs {
        let out = run.await.expect("runs");
        let (said, complained) = (text(&out.stdout), text(&out.stderr));
        if let Some(url) = said.lines().find_map(|l| l.strip_prefix("restored ")) {
            assert!(out.status.success(), "{said}{complained}");
            *restored.entry(url.to_owned()).or_default() += 1;
        } else {
            // Refused while another restorer held the lease, or found it done after.
            assert!(
                complained.contains("is being restored by") || said.contains("already restored"),
                "{said}{complained}"
            );
        }
    }
    assert_eq!(restored.len(), keys.len(), "{restored:?}");
    assert!(restored.values().all(|&n| n == 1), "{restored:?}");
    // Every process has exited and every object is back: now count.
    for key in &keys {
        assert_eq!(head_status(&s3, &bucket, key).await, 200, "{key} back");
    }
    let received = listener
        .wait_for(2 * keys.len(), Duration::from_secs(30))
        .await;
    let restores = callbacks_by_source(&received, Some("restore"));
    assert_eq!(restores.len(), keys.len(), "{restores:?}");
    assert!(restores.values().all(|&n| n == 1), "{restores:?}");
    assert_eq!(listener.arrived() as usize, 2 * keys.len());
    let mut logged = BTreeMap::<String, usize>::new();
    for entry in blocks::audit_log(&s3, &bucket).await.expect("audit log") {
        if entry.action == "restore" {
            *logged.entry(entry.trace_id.expect("trace id")).or_default() += 1;
        }
    }
    assert_eq!(
        logged.keys().collect::<Vec<_>>(),
        restores.keys().collect::<Vec<_>>()
    );
    assert!(logged.values().all(|&n| n == 1), "{logged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_scans_of_the_same_objects_at_once_judge_each_object_once() {
    let Setup {
        bucket,
        listener,
        config_path,
        _dir,
        ..
    } = Setup::new(3, 3).await;
    let scan: Vec<String> = ["scan".to_owned(), format!("s3://{bucket}/audio/")].into();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (config_path, scan) = (config_path.clone(), scan.clone());
            tokio::spawn(async move { earshot_pausing(&config_path, &scan, "scan-leased:2").await })
        })
        .collect();
    let mut finished = Vec::new();
    let mut refused = 0;
    for run in runs {
        let out = run.await.expect("runs");
        let (said, complained) = (text(&out.stdout), text(&out.stderr));
        if out.status.success() {
            finished.push(stdout_json(&out));
        } else {
            assert!(
                complained.contains("is running in another process"),
                "{said}{complained}"
            );
            refused += 1;
        }
    }
    assert_eq!((finished.len(), refused), (1, 1), "{finished:?}");
    let counts = &finished[0]["counts"];
    assert_eq!(counts["judged"]["blocked"], 3, "{counts}");
    assert_eq!(counts["judged"]["passed"], 3, "{counts}");
    let received = listener.wait_for(6, Duration::from_secs(30)).await;
    let judged = callbacks_by_source(&received, Some("scan"));
    assert_eq!(judged.len(), 6, "{judged:?}");
    assert!(judged.values().all(|&n| n == 1), "{judged:?}");

    // Started again once the first is done: a new scan, which finds what is left (the clean ones;
    // the blocked were moved) judged.
    let again = earshot_pausing(&config_path, &scan, "none:0").await;
    let counts = stdout_json(&again)["counts"].clone();
    assert_eq!(counts["already_judged"], 3, "{counts}");
    assert_eq!(counts["judged"], serde_json::json!({}), "{counts}");
    assert_eq!(listener.arrived(), 6, "nothing judged twice");
}

/// An upload that lands at a blocked key after `earshot restore` found the key free, and before
/// it wrote the object back, is kept: the write is conditional on the key being free, so the
/// restore refuses (the key was reused) and keeps the backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_between_a_restores_check_and_its_write_is_kept() {
    use tokio::io::AsyncBufReadExt;
    let Setup {
        s3,
        bucket,
        config,
        config_path,
        keys,
        _dir,
        ..
    } = Setup::new(1, 0).await;
    let key = &keys[0];
    let pipeline = earshot::pipeline::Pipeline::new(config)
        .await
        .expect("builds");
    pipeline
        .process(&earshot::job::Job::new(bucket.clone(), key))
        .await
        .expect("job runs");
    assert_eq!(head_status(&s3, &bucket, key).await, 404, "blocked");
    let mut restore = tokio::process::Command::new(env!("CARGO_BIN_EXE_earshot"))
        .arg("--config")
        .arg(&config_path)
        .args([
            "restore",
            &format!("s3://{bucket}/{key}"),
            "--reason",
            "licensed",
        ])
        .env("EARSHOT_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("EARSHOT_PAUSE_AT", "restore-checked:3")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("earshot runs");
    // The restore has checked the key (free) and waits before writing: upload there now.
    let mut log = tokio::io::BufReader::new(restore.stderr.take().expect("piped")).lines();
    let mut seen = String::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), log.next_line())
            .await
            .expect("the restore reaches its write")
            .expect("reads")
            .unwrap_or_else(|| panic!("the restore ended first: {seen}"));
        seen.push_str(&line);
        if line.contains("EARSHOT_PAUSE_AT: waiting here.") && line.contains("restore-checked") {
            break;
        }
    }
    let new_upload = b"a new voice message, uploaded after the block".to_vec();
    put_bytes(&s3, &bucket, key, new_upload.clone()).await;
    while let Ok(Some(line)) = log.next_line().await {
        seen.push_str(&line);
    }
    let out = restore.wait_with_output().await.expect("ends");
    assert!(!out.status.success(), "the restore refuses: {seen}");
    assert!(seen.contains("holds a newer upload"), "says why: {seen}");
    assert_eq!(
        get_bytes(&s3, &bucket, key).await,
        new_upload,
        "the upload is kept"
    );
    let backup = earshot::layout::backup_key(key);
    assert_eq!(
        head_status(&s3, &bucket, &backup).await,
        200,
        "the backup is kept"
    );
}
