//! What is already stored, on LocalStack (see bench/README.md):
//!
//! 1. `earshot scan` over 10,000 objects that were all judged before: objects/s listed and skipped,
//!    beside a bare `ListObjectsV2` of the same keys;
//! 2. judged objects/s of an in-process scan of distinct 30 s MP3s at `--concurrency` 2 and 4,
//!    beside the decode + fingerprint bound of the same files on both cores;
//! 3. a retro-hunt for one new reference over 100,000 kept prints of 3-minute uploads: the search
//!    time and the bytes read; and the bytes a print keeps per hour of audio, measured on Debian's
//!    music.
//!
//! Run with `bench/run.sh stock` (starts LocalStack) or `cargo bench --bench stock` with
//! LocalStack up. `BENCH_QUICK=1` shrinks every workload.

#[path = "../tests/it/common/mod.rs"]
mod common;
#[path = "../tests/it/common/synthetic_library.rs"]
mod synthetic_library;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use earshot::config::RetroConfig;
use earshot::engines::local::{Entry, LibraryStore};
use earshot::fingerprint::{FRAME_SECS, Landmark};
use earshot::job::Job;
use earshot::model::Scene;
use earshot::pipeline::Pipeline;
use earshot::scan::{self, Options};
use earshot::state::prints::{PACK_BYTES, Print};
use synthetic_library::synthetic;
use tokio_util::sync::CancellationToken;

struct Sizes {
    judged: usize,
    clips: usize,
    prints: usize,
}

fn sizes() -> Sizes {
    if std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1") {
        Sizes {
            judged: 500,
            clips: 6,
            prints: 2_000,
        }
    } else {
        Sizes {
            judged: 10_000,
            clips: 24,
            prints: 100_000,
        }
    }
}

fn options(bucket: &str, prefix: &str, concurrency: usize) -> Options {
    Options {
        concurrency,
        ..Options::listing(bucket, prefix)
    }
}

/// Part 1: listing and skip rate over `n` objects judged before.
async fn skip_rate(work: &Path, n: usize) -> (f64, f64) {
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let library = library_with(work, &work.join("reference.mp3"), Scene::Porn).await;
    let config = config(&bucket, &listener.url, "move", &library);
    futures::future::join_all((0..32).map(|lane| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move {
            for i in (lane..n).step_by(32) {
                let key = format!("audio/{i:06}.mp3");
                let put = s3
                    .put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .body(format!("not judged again {i}").into_bytes().into())
                    .send()
                    .await
                    .expect("put");
                let job = Job {
                    etag: put.e_tag().map(|e| e.trim_matches('"').to_owned()),
                    ..Job::new(bucket.clone(), key)
                };
                let record = serde_json::json!({"trace_id": job.trace_id(), "finished_at": 0,
                    "callback": "delivered", "body": {"code": 0, "message": "success", "data": {
                    "url": "", "result": 0, "forbidden_status": 0, "trace_id": job.trace_id(),
                    "porn_info": {"hit_flag": 0, "score": 0, "label": ""},
                    "ads_info": {"hit_flag": 0, "score": 0, "label": ""},
                    "bucket": bucket, "key": job.key}}});
                put_bytes(
                    &s3,
                    &bucket,
                    &earshot::layout::job_record_key(&job.trace_id()),
                    record.to_string().into_bytes(),
                )
                .await;
            }
        }
    }))
    .await;
    let started = Instant::now();
    let mut listed = 0usize;
    let mut pages = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("audio/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        listed += page.expect("page").contents().len();
    }
    let list_rate = listed as f64 / started.elapsed().as_secs_f64();
    let pipeline = Arc::new(Pipeline::new(config).await.expect("pipeline"));
    let started = Instant::now();
    let done = scan::run(pipeline, options(&bucket, "", 4), CancellationToken::new())
        .await
        .expect("scan");
    let scan_rate = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(done.counts.already_judged, n as u64, "{:?}", done.counts);
    (list_rate, scan_rate)
}

/// Distinct 30 s music-like MP3s.
fn clips(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let path = dir.join(format!("stock-{i:03}.mp3"));
            if !path.exists() {
                let f = 210 + 11 * i;
                let source = format!(
                    "aevalsrc=exprs='0.3*sin(2*PI*{f}*t)*(1+sin(2*PI*0.5*t))+0.2*sin(2*PI*{g}*t)':s=44100:c=stereo:d=30",
                    g = f * 3 / 2
                );
                synthesize(&path, &source, &["-c:a", "libmp3lame", "-b:a", "128k"]);
            }
            path
        })
        .collect()
}

/// Files decoded and fingerprinted per second, on `threads` threads, in this process.
fn bound(files: &[PathBuf], threads: usize) -> f64 {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for lane in 0..threads {
            scope.spawn(move || {
                for file in files.iter().skip(lane).step_by(threads) {
                    earshot::fingerprint::fingerprint_file(
                        file,
                        Some("mp3"),
                        earshot::audio::DecodeLimits {
                            max_duration_secs: 10_800,
                        },
                    )
                    .expect("decodes");
                }
            });
        }
    });
    files.len() as f64 / started.elapsed().as_secs_f64()
}

/// Part 2: judged objects/s of an in-process scan at `concurrency`.
async fn judged_rate(work: &Path, files: &[PathBuf], concurrency: usize) -> f64 {
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let library = library_with(work, &work.join("reference.mp3"), Scene::Porn).await;
    let config = config(&bucket, &listener.url, "move", &library);
    for (i, file) in files.iter().enumerate() {
        put_file(
            &s3,
            &bucket,
            &format!("audio/{i:03}.mp3"),
            file,
            "audio/mpeg",
        )
        .await;
    }
    let pipeline = Arc::new(Pipeline::new(config).await.expect("pipeline"));
    let started = Instant::now();
    let done = scan::run(
        pipeline,
        options(&bucket, "", concurrency),
        CancellationToken::new(),
    )
    .await
    .expect("scan");
    let rate = files.len() as f64 / started.elapsed().as_secs_f64();
    assert_eq!(done.counts.taken(), files.len() as u64, "{:?}", done.counts);
    rate
}

/// Part 3: a retro-hunt for one new 60 s reference over `n` kept prints of 3-minute uploads,
/// one holding the reference. Returns (seconds, bytes read, prints/s).
async fn retro(work: &Path, n: usize, per_sec: f64) -> (f64, u64, f64) {
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let reference = synthetic(u64::MAX, 60.0, per_sec);
    let library = work.join(format!("retro-library-{n}"));
    let _ = std::fs::remove_dir_all(&library);
    let store = LibraryStore::open(library.to_str().expect("utf-8"), &s3);
    let id = format!("{:064x}", 7);
    store
        .put(&Entry {
            id: id.clone(),
            scene: Scene::Porn,
            label: "new reference".into(),
            source: "bench".into(),
            bytes: 0,
            duration_secs: 60.0,
            added_at: earshot::clock::system_secs(),
        })
        .await
        .expect("entry");
    store
        .put_fingerprint(&id, &reference)
        .await
        .expect("fingerprint");
    let mut config = config(&bucket, &listener.url, "move", &library);
    config.rules[0].retro = RetroConfig {
        keep: true,
        auto: false,
    };
    let planted = n / 2;
    let mut pack = Vec::new();
    let mut part = 0;
    let prefix = earshot::layout::prints_prefix("uploads");
    for i in 0..n {
        let mut fingerprint = synthetic(i as u64 + 1, 180.0, per_sec);
        if i == planted {
            // The reference plays 40 s into this upload.
            let shift = (40.0 / FRAME_SECS) as u32;
            fingerprint
                .landmarks
                .extend(reference.landmarks.iter().map(|l| Landmark {
                    frame: l.frame + shift,
                    ..*l
                }));
            fingerprint.landmarks.sort_by_key(|l| l.frame);
        }
        let print = Print {
            trace_id: format!("{i:032x}"),
            key: format!("audio/{i:06}.mp3"),
            version_id: None,
            etag: format!("{i:032x}"),
            fingerprint: Print::sample(&fingerprint),
        };
        let bytes = print.to_bytes();
        pack.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        pack.extend_from_slice(&bytes);
        if pack.len() >= PACK_BYTES || i + 1 == n {
            put_bytes(
                &s3,
                &bucket,
                &format!("{prefix}packs/{part:06}.espk"),
                std::mem::take(&mut pack),
            )
            .await;
            part += 1;
        }
    }
    let pipeline = Arc::new(Pipeline::new(config).await.expect("pipeline"));
    let started = Instant::now();
    let hunts = earshot::retro::hunt(&pipeline, None, Some(0), true)
        .await
        .expect("hunt");
    let secs = started.elapsed().as_secs_f64();
    let matched: Vec<&str> = hunts[0].matched.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(matched, [format!("audio/{planted:06}.mp3")], "{hunts:?}");
    assert_eq!(hunts[0].searched, n as u64);
    (secs, hunts[0].bytes, n as f64 / secs)
}

/// Landmarks per second and print bytes per hour of audio of Debian's music.
fn print_density() -> Vec<(String, f64, f64)> {
    let tracks = [
        "/usr/share/games/etr/music/spunkyrace-ks.ogg",
        "/usr/share/games/etr/music/calmrace-ks.ogg",
        "/usr/share/games/frozen-bubble/snd/introzik.ogg",
    ];
    tracks
        .iter()
        .map(|track| {
            let (info, fingerprint) = earshot::fingerprint::fingerprint_file(
                Path::new(track),
                Some("ogg"),
                earshot::audio::DecodeLimits {
                    max_duration_secs: 10_800,
                },
            )
            .expect("decodes");
            let secs = info.duration_secs();
            let print = Print {
                trace_id: "0".repeat(32),
                key: "audio/a-typical-key.mp3".into(),
                version_id: None,
                etag: "0".repeat(32),
                fingerprint: Print::sample(&fingerprint),
            };
            let name = Path::new(track)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                name,
                fingerprint.landmarks.len() as f64 / secs,
                print.to_bytes().len() as f64 / secs * 3600.0,
            )
        })
        .collect()
}

fn main() {
    let sizes = sizes();
    require_localstack();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out");
    let work = out.join("work");
    std::fs::create_dir_all(&work).expect("bench/out/work");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    tone(&work.join("reference.mp3"), 3.0, 1234, &[]);

    eprintln!("scan over {} judged objects …", sizes.judged);
    let (list_rate, skip_rate) = runtime.block_on(skip_rate(&work, sizes.judged));
    let files = clips(&work, sizes.clips);
    eprintln!("decode + fingerprint bound …");
    let bound_2 = bound(&files, 2);
    eprintln!("scan judging {} objects …", sizes.clips);
    let judged_2 = runtime.block_on(judged_rate(&work, &files, 2));
    let judged_4 = runtime.block_on(judged_rate(&work, &files, 4));
    let density = print_density();
    let per_sec = density.iter().map(|d| d.1).sum::<f64>() / density.len() as f64;
    eprintln!("retro-hunt over {} prints …", sizes.prints);
    let (retro_secs, retro_bytes, retro_rate) =
        runtime.block_on(retro(&work, sizes.prints, per_sec));

    let mut report = format!(
        "| measure | value |\n|---|---|\n\
         | bare ListObjectsV2 of {n} keys | {list_rate:.0} objects/s |\n\
         | `earshot scan` over {n} objects judged before (listed and skipped) | {skip_rate:.0} objects/s ({:.2}× the bare listing) |\n\
         | decode + fingerprint bound, {c} × 30 s MP3 on 2 threads | {bound_2:.2} files/s |\n\
         | `earshot scan` judging them, `--concurrency 2` | {judged_2:.2} objects/s ({:.2}× the bound) |\n\
         | `earshot scan` judging them, `--concurrency 4` | {judged_4:.2} objects/s ({:.2}× the bound) |\n\
         | retro-hunt, one new 60 s reference over {p} kept prints of 3-minute uploads ({per_sec:.0} landmarks/s) | {retro_secs:.1} s ({retro_rate:.0} prints/s, {:.0} MB read) |\n",
        skip_rate / list_rate,
        judged_2 / bound_2,
        judged_4 / bound_2,
        retro_bytes as f64 / 1e6,
        n = sizes.judged,
        c = sizes.clips,
        p = sizes.prints,
    );
    for (name, landmarks, bytes_per_hour) in &density {
        report.push_str(&format!(
            "| print kept of {name} | {landmarks:.0} landmarks/s, {:.2} MB per hour of audio |\n",
            bytes_per_hour / 1e6
        ));
    }
    println!("{report}");
    std::fs::write(out.join("stock.md"), &report).expect("bench/out/stock.md");
}
