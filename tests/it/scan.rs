//! `earshot scan`: existing objects judged under the rules, exactly the right set, each once, from
//! a listing, an inventory report or through the queue to running daemons; stopped and resumed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::common::*;
use earshot::config::Config;
use earshot::job::Job;
use earshot::pipeline::Pipeline;
use earshot::scan::{self, Input, Options, Rescan};

const WAIT: Duration = Duration::from_secs(120);

fn options(bucket: &str, prefix: &str) -> Options {
    Options::listing(bucket, prefix)
}

/// A bucket holding a mix: `fresh` unjudged clean uploads, `bad` known-bad ones, `judged`
/// uploads judged before the scan, `corrupt` ones that are not audio, and keys no rule covers.
struct Stock {
    dir: tempfile::TempDir,
    s3: aws_sdk_s3::Client,
    bucket: String,
    listener: Listener,
    config: Config,
    /// Keys the scan must judge.
    to_judge: BTreeSet<String>,
    /// Keys judged before the scan.
    judged: BTreeSet<String>,
    bad: BTreeSet<String>,
}

async fn stock(fresh: usize, bad: usize, judged: usize, corrupt: usize, foreign: usize) -> Stock {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (known_bad, library) = known_bad_in_library(dir.path()).await;
    let clean = tone(&dir.path().join("clean.mp3"), 2.0, 440, &["-b:a", "32k"]);
    let clean_bytes = std::fs::read(&clean).expect("clean");
    let bad_bytes = std::fs::read(&known_bad).expect("bad");
    let config = config(&bucket, &listener.url, "move", &library);
    let mut stock = Stock {
        dir,
        s3,
        bucket,
        listener,
        config,
        to_judge: BTreeSet::new(),
        judged: BTreeSet::new(),
        bad: BTreeSet::new(),
    };
    let mut puts = Vec::new();
    // Each clean upload differs by a trailing byte pattern so that its ETag and job are its own.
    let unique_clean = |i: usize| {
        let mut bytes = clean_bytes.clone();
        bytes.extend_from_slice(format!("{i:08}").as_bytes());
        bytes
    };
    for i in 0..fresh {
        let key = format!("audio/fresh/{i:04}.mp3");
        puts.push((key.clone(), unique_clean(i)));
        stock.to_judge.insert(key);
    }
    for i in 0..bad {
        let key = format!("audio/bad/{i:04}.mp3");
        puts.push((key.clone(), bad_bytes.clone()));
        stock.to_judge.insert(key.clone());
        stock.bad.insert(key);
    }
    for i in 0..judged {
        let key = format!("audio/judged/{i:04}.mp3");
        puts.push((key.clone(), unique_clean(100_000 + i)));
        stock.judged.insert(key);
    }
    for i in 0..corrupt {
        let key = format!("audio/corrupt/{i:04}.mp3");
        puts.push((key.clone(), noise(3000, i as u32 + 1)));
        stock.to_judge.insert(key);
    }
    for i in 0..foreign {
        let key = match i % 3 {
            0 => format!("video/{i:04}.mp3"),
            1 => format!("audio/notes/{i:04}.txt"),
            _ => format!("audit_freeze_backup/increment_audit/audio/{i:04}.mp3"),
        };
        puts.push((key, unique_clean(200_000 + i)));
    }
    let s3 = stock.s3.clone();
    let bucket = stock.bucket.clone();
    futures::future::join_all(puts.chunks(16).map(|chunk| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move {
            for (key, bytes) in chunk {
                put_bytes(&s3, &bucket, key, bytes.clone()).await;
            }
        }
    }))
    .await;
    if !stock.judged.is_empty() {
        let pipeline = Pipeline::new(stock.config.clone()).await.expect("builds");
        for key in &stock.judged {
            pipeline
                .process(&Job::new(stock.bucket.clone(), key.clone()))
                .await
                .expect("judged before the scan");
        }
        stock.listener.wait_for(stock.judged.len(), WAIT).await;
    }
    stock
}

impl Stock {
    /// The callbacks whose `source` is `scan`, by key.
    fn scan_callbacks(&self) -> BTreeMap<String, Vec<serde_json::Value>> {
        let mut by_key: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for received in self.listener.received() {
            let json = received.json();
            if json["data"]["source"] == "scan" {
                let key = json["data"]["key"].as_str().expect("key").to_owned();
                by_key.entry(key).or_default().push(json);
            }
        }
        by_key
    }

    async fn pipeline(&self) -> Arc<Pipeline> {
        Arc::new(Pipeline::new(self.config.clone()).await.expect("builds"))
    }
}

#[tokio::test]
async fn a_scan_judges_exactly_the_unjudged_in_scope_objects_and_keeps_a_report() {
    let stock = stock(150, 20, 40, 10, 30).await;
    let before = stock.listener.arrived() as usize;

    // A dry run counts without judging.
    let mut dry = options(&stock.bucket, "");
    dry.dry_run = true;
    let plan = scan::run(stock.pipeline().await, dry, CancellationToken::new())
        .await
        .expect("dry run");
    assert_eq!(plan.counts.by_suffix.get("mp3"), Some(&180));
    assert_eq!(plan.counts.already_judged, 40);
    assert_eq!(
        plan.counts.out_of_scope, 20,
        "earshot's own keys are not counted"
    );
    assert!(plan.counts.est_audio_hours > 0.0);
    assert_eq!(
        stock.listener.arrived() as usize,
        before,
        "a dry run judges nothing"
    );

    // Out of the time window: nothing is taken.
    let mut later = options(&stock.bucket, "");
    later.since = Some(earshot::clock::system_secs() + 3600);
    later.dry_run = true;
    let none = scan::run(stock.pipeline().await, later, CancellationToken::new())
        .await
        .expect("dry run");
    assert_eq!(none.counts.out_of_window, 220);
    assert_eq!(none.counts.taken(), 0);

    let done = scan::run(
        stock.pipeline().await,
        options(&stock.bucket, ""),
        CancellationToken::new(),
    )
    .await
    .expect("scan runs");
    let counts = &done.counts;
    assert_eq!(counts.read, 240, "earshot's own area is not even listed");
    assert_eq!(counts.judged.values().sum::<u64>(), 180, "{counts:?}");
    assert_eq!(counts.judged.get("blocked"), Some(&20), "{counts:?}");
    assert_eq!(counts.judged.get("unjudged"), Some(&10), "{counts:?}");
    assert_eq!(counts.judged.get("passed"), Some(&150), "{counts:?}");
    assert_eq!(counts.already_judged, 40);
    assert_eq!(counts.out_of_scope, 20);
    assert_eq!(counts.failed, 0);
    assert!(done.finished_at.is_some());

    let callbacks = stock.scan_callbacks();
    let keys: BTreeSet<String> = callbacks.keys().cloned().collect();
    assert_eq!(
        keys, stock.to_judge,
        "exactly the unjudged in-scope objects"
    );
    assert!(
        callbacks.values().all(|c| c.len() == 1),
        "each called back once"
    );
    for key in &stock.bad {
        assert_eq!(callbacks[key][0]["data"]["forbidden_status"], 2, "{key}");
        assert_eq!(
            head_status(&stock.s3, &stock.bucket, key).await,
            404,
            "{key}"
        );
    }
    for (key, calls) in &callbacks {
        if key.starts_with("audio/corrupt/") {
            assert_ne!(calls[0]["code"], 0, "{key}");
        }
    }

    // The report is in the bucket, and the scan is listed as finished.
    let report: scan::Checkpoint = serde_json::from_slice(
        &get_bytes(
            &stock.s3,
            &stock.bucket,
            &earshot::layout::scan_report_key(&done.id),
        )
        .await,
    )
    .expect("report");
    assert_eq!(report.counts, done.counts);
    let listed = scan::scans(&stock.s3, &stock.bucket).await.expect("scans");
    assert!(
        listed
            .iter()
            .any(|s| s.id == done.id && s.finished_at.is_some())
    );

    // Run again: nothing is judged twice. With --rescan=library-changed and the same library,
    // nothing either; with --rescan every object is judged again.
    let again = scan::run(
        stock.pipeline().await,
        options(&stock.bucket, "audio/fresh/"),
        CancellationToken::new(),
    )
    .await
    .expect("second scan");
    assert_eq!(again.counts.taken(), 0);
    assert_eq!(again.counts.already_judged, 150);
    let mut changed = options(&stock.bucket, "audio/fresh/");
    changed.rescan = Rescan::LibraryChanged;
    let changed = scan::run(stock.pipeline().await, changed, CancellationToken::new())
        .await
        .expect("library-changed rescan");
    assert_eq!(changed.counts.taken(), 0, "{:?}", changed.counts);

    // A reference added since: --rescan=library-changed judges them again (references are
    // stamped in whole seconds, hence the pause).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let newer = tone(&stock.dir.path().join("newer.mp3"), 3.0, 1200, &[]);
    library_with(stock.dir.path(), &newer, earshot::model::Scene::Ads).await;
    let mut changed = options(&stock.bucket, "audio/fresh/");
    changed.rescan = Rescan::LibraryChanged;
    let changed = scan::run(stock.pipeline().await, changed, CancellationToken::new())
        .await
        .expect("library-changed rescan");
    assert_eq!(changed.counts.taken(), 150, "{:?}", changed.counts);
    let callbacks = stock.scan_callbacks();
    assert!(
        callbacks
            .iter()
            .filter(|(key, _)| key.starts_with("audio/fresh/"))
            .all(|(_, calls)| calls.len() == 2
                && calls[0]["data"]["trace_id"] == calls[1]["data"]["trace_id"]),
        "judged again under the same trace_id"
    );
}

#[tokio::test]
async fn a_scan_stopped_partway_and_started_again_judges_every_object_exactly_once() {
    let stock = stock(120, 0, 0, 0, 0).await;
    let stop = CancellationToken::new();
    let watcher = async {
        while stock.listener.arrived() < 30 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
    };
    let (first, ()) = tokio::join!(
        scan::run(
            stock.pipeline().await,
            options(&stock.bucket, "audio/"),
            stop.clone()
        ),
        watcher
    );
    let first = first.expect("first part");
    assert!(first.finished_at.is_none(), "stopped before its end");
    let judged_first = first.counts.taken();
    assert!(
        (30..120).contains(&judged_first),
        "stopped partway: {judged_first}"
    );
    let kept: scan::Checkpoint = serde_json::from_slice(
        &get_bytes(
            &stock.s3,
            &stock.bucket,
            &earshot::layout::scan_checkpoint_key(&first.id),
        )
        .await,
    )
    .expect("checkpoint in the bucket");
    assert_eq!(kept.position, first.position);

    let second = scan::run(
        stock.pipeline().await,
        options(&stock.bucket, "audio/"),
        CancellationToken::new(),
    )
    .await
    .expect("resumed");
    assert_eq!(
        second.id, first.id,
        "the same command resumes the same scan"
    );
    assert!(second.finished_at.is_some());
    assert_eq!(second.counts.taken(), 120, "{:?}", second.counts);
    let callbacks = stock.scan_callbacks();
    assert_eq!(callbacks.len(), 120);
    let twice: Vec<&String> = callbacks
        .iter()
        .filter(|(_, calls)| calls.len() != 1)
        .map(|(key, _)| key)
        .collect();
    assert!(twice.is_empty(), "called back more than once: {twice:?}");
}

/// Writes an S3 Inventory report (CSV, gzip) of `keys` into the bucket; returns its manifest URL.
async fn inventory(stock: &Stock, keys: &[String]) -> String {
    let mut csv = String::new();
    for key in keys {
        let head = stock
            .s3
            .head_object()
            .bucket(&stock.bucket)
            .key(key)
            .send()
            .await
            .expect("head");
        csv.push_str(&format!(
            "\"{}\",\"{}\",\"{}\",\"2026-11-01T10:00:00.000Z\",\"{}\",\"STANDARD\"\n",
            stock.bucket,
            earshot::storage::encode_key(key),
            head.content_length().unwrap_or(0),
            head.e_tag().unwrap_or("").trim_matches('"')
        ));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(csv.as_bytes()).expect("gzip");
    let data_key = "inventory/media/all/data/part-0.csv.gz";
    put_bytes(
        &stock.s3,
        &stock.bucket,
        data_key,
        gz.finish().expect("gzip"),
    )
    .await;
    let manifest = serde_json::json!({
        "sourceBucket": stock.bucket,
        "destinationBucket": format!("arn:aws:s3:::{}", stock.bucket),
        "version": "2016-11-30",
        "creationTimestamp": "1764590400000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass",
        "files": [{"key": data_key, "size": 1, "MD5checksum": "x"}]
    });
    let manifest_key = "inventory/media/all/2026-12-01T00-00Z/manifest.json";
    put_bytes(
        &stock.s3,
        &stock.bucket,
        manifest_key,
        manifest.to_string().into_bytes(),
    )
    .await;
    format!("s3://{}/{manifest_key}", stock.bucket)
}

#[tokio::test]
async fn an_inventory_report_and_a_file_of_keys_are_inputs() {
    let stock = stock(30, 5, 0, 0, 0).await;
    let all: Vec<String> = stock.to_judge.iter().cloned().collect();
    let (listed, rest) = all.split_at(20);
    let manifest = inventory(&stock, listed).await;
    let mut from_inventory = options(&stock.bucket, "");
    from_inventory.input = Input::Inventory(manifest);
    let done = scan::run(
        stock.pipeline().await,
        from_inventory,
        CancellationToken::new(),
    )
    .await
    .expect("inventory scan");
    assert_eq!(done.counts.taken(), 20, "{:?}", done.counts);
    let keys: BTreeSet<String> = stock.scan_callbacks().keys().cloned().collect();
    assert_eq!(keys, listed.iter().cloned().collect());

    let file: PathBuf = stock.dir.path().join("keys.txt");
    let text: String = rest
        .iter()
        .map(|k| format!("s3://{}/{k}\n", stock.bucket))
        .collect();
    std::fs::write(&file, format!("# the rest\n{text}")).expect("keys file");
    let mut from_keys = options(&stock.bucket, "");
    from_keys.input = Input::Keys(file);
    let done = scan::run(stock.pipeline().await, from_keys, CancellationToken::new())
        .await
        .expect("keys scan");
    assert_eq!(done.counts.taken(), rest.len() as u64, "{:?}", done.counts);
    let keys: BTreeSet<String> = stock.scan_callbacks().keys().cloned().collect();
    assert_eq!(keys, stock.to_judge, "every object, once");
}

#[tokio::test]
async fn enqueue_shares_a_scan_with_two_running_daemons() {
    let stock = stock(60, 4, 0, 0, 0).await;
    let (sqs, queue_url) = fresh_queue(&stock.s3, None).await;
    let mut config = stock.config.clone();
    config.sources.sqs = Some(sqs_source(&queue_url, 4, 60));
    let dirs = [
        tempfile::tempdir().expect("d1"),
        tempfile::tempdir().expect("d2"),
    ];
    let mut daemons: Vec<Daemon> = dirs
        .iter()
        .map(|d| Daemon::start(d.path(), &config))
        .collect();
    for daemon in &daemons {
        eventually(WAIT, "both daemons polling the queue", || async {
            daemon.log().contains("Polling SQS.").then_some(())
        })
        .await;
    }

    let mut enqueue = options(&stock.bucket, "audio/");
    enqueue.enqueue = Some(scan::Enqueue {
        sqs,
        queue_url,
        max_backlog: 20,
    });
    let pipeline = Arc::new(Pipeline::new(config.clone()).await.expect("builds"));
    let done = scan::run(pipeline, enqueue, CancellationToken::new())
        .await
        .expect("enqueued");
    assert_eq!(done.counts.enqueued, 64);
    stock.listener.wait_for(64, WAIT).await;
    let callbacks = stock.scan_callbacks();
    let keys: BTreeSet<String> = callbacks.keys().cloned().collect();
    assert_eq!(keys, stock.to_judge);
    assert!(callbacks.values().all(|c| c.len() == 1), "each once");
    for daemon in &mut daemons {
        daemon.assert_running();
    }
    let worked: Vec<bool> = daemons
        .iter()
        .map(|d| d.log().contains("Job finished."))
        .collect();
    assert_eq!(worked, [true, true], "both daemons took jobs");
    // Each `Job finished.` line is JSON with one `message` key (the body's message is its own).
    for daemon in &daemons {
        for line in daemon.log().lines().filter(|l| l.contains("Job finished.")) {
            assert_eq!(line.matches("\"message\":").count(), 1, "{line}");
            assert!(line.contains("\"body_message\":"), "{line}");
        }
    }
}

#[tokio::test]
async fn wildcard_scopes_and_exclusions_decide_what_uploads_and_scans_judge() {
    let stock = stock(0, 0, 0, 0, 0).await;
    let mut config = stock.config.clone();
    config.rules[0].prefix = "users/*/voice/".to_owned();
    config.rules[0].exclude = vec!["users/*/voice/drafts/".to_owned(), "users/0/".to_owned()];
    let bad = std::fs::read(stock.dir.path().join("known-bad.mp3")).expect("bad");
    let keys = [
        ("users/1/voice/a.mp3", true),
        ("users/22/voice/deep/b.mp3", true),
        ("users/1/voice/drafts/c.mp3", false),
        ("users/0/voice/d.mp3", false),
        ("users/1/music/e.mp3", false),
        ("users/1/2/voice/f.mp3", false),
    ];
    for (key, _) in keys {
        put_bytes(&stock.s3, &stock.bucket, key, bad.clone()).await;
    }
    let pipeline = Arc::new(Pipeline::new(config).await.expect("builds"));
    for (key, judged) in keys {
        let outcome = pipeline
            .process(&Job::new(stock.bucket.clone(), key))
            .await
            .expect("runs");
        assert_eq!(
            !matches!(outcome, earshot::pipeline::Outcome::Skipped(_)),
            judged,
            "{key}: {outcome:?}"
        );
    }
    // The judged ones were blocked (moved); the rest are untouched. A scan finds nothing more.
    for (key, judged) in keys {
        let status = head_status(&stock.s3, &stock.bucket, key).await;
        assert_eq!(status, if judged { 404 } else { 200 }, "{key}");
    }
    let done = scan::run(
        pipeline,
        options(&stock.bucket, "users/"),
        CancellationToken::new(),
    )
    .await
    .expect("scan");
    assert_eq!(done.counts.out_of_scope, 4, "{:?}", done.counts);
    assert_eq!(done.counts.taken(), 0, "{:?}", done.counts);
}

#[tokio::test]
async fn a_versioned_bucket_is_scanned_by_current_version_and_what_events_judged_is_skipped() {
    let stock = stock(0, 0, 0, 0, 0).await;
    stock
        .s3
        .put_bucket_versioning()
        .bucket(&stock.bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning");
    let bad = std::fs::read(stock.dir.path().join("known-bad.mp3")).expect("bad");
    let clean = std::fs::read(stock.dir.path().join("clean.mp3")).expect("clean");
    // Two versions of one key: only the current one (clean) is judged.
    put_bytes(&stock.s3, &stock.bucket, "audio/v.mp3", bad).await;
    put_bytes(&stock.s3, &stock.bucket, "audio/v.mp3", clean.clone()).await;
    let mut other = clean.clone();
    other.extend_from_slice(b"another upload");
    put_bytes(&stock.s3, &stock.bucket, "audio/event.mp3", other).await;
    // An upload judged from its event (which names the version).
    let head = stock
        .s3
        .head_object()
        .bucket(&stock.bucket)
        .key("audio/event.mp3")
        .send()
        .await
        .expect("head");
    let event = Job {
        version_id: head.version_id().map(str::to_owned),
        etag: head.e_tag().map(|e| e.trim_matches('"').to_owned()),
        ..Job::new(stock.bucket.clone(), "audio/event.mp3")
    };
    assert!(event.version_id.is_some());
    stock
        .pipeline()
        .await
        .process(&event)
        .await
        .expect("judged");
    stock.listener.wait_for(1, WAIT).await;

    let done = scan::run(
        stock.pipeline().await,
        options(&stock.bucket, "audio/"),
        CancellationToken::new(),
    )
    .await
    .expect("scan");
    assert_eq!(done.counts.already_judged, 1, "{:?}", done.counts);
    assert_eq!(
        done.counts.judged.get("passed"),
        Some(&1),
        "{:?}",
        done.counts
    );
    assert_eq!(done.counts.taken(), 1, "{:?}", done.counts);
    let callbacks = stock.scan_callbacks();
    assert_eq!(
        callbacks["audio/v.mp3"][0]["data"]["version_id"],
        head_version(&stock, "audio/v.mp3").await
    );
}

async fn head_version(stock: &Stock, key: &str) -> String {
    stock
        .s3
        .head_object()
        .bucket(&stock.bucket)
        .key(key)
        .send()
        .await
        .expect("head")
        .version_id()
        .expect("a version")
        .to_owned()
}
