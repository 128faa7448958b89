//! earshot's benchmark, on LocalStack with the local engine (see bench/README.md):
//!
//! 1. upload→callback latency, p50/p95, over 50 uploads of 30 s MP3s into a bucket whose
//!    ObjectCreated events feed the queue `earshot serve` polls;
//! 2. jobs/second at `max_concurrency` 1 and 8, draining 50 queued events, beside the decode +
//!    fingerprint bound of the same files on every core in the same run; and at 8 again with a
//!    library of 10,000 references, with the daemon's peak RSS and its S3 requests per job;
//! 3. decode speed in × realtime, earshot (symphonia) beside `ffmpeg -f null` on the same files;
//! 4. peak RSS of `earshot moderate` on a 500 MB WAV (target: under 64 MB).
//!
//! Run with `bench/run.sh` (starts LocalStack) or `cargo bench --bench pipeline` with LocalStack
//! already up. `BENCH_QUICK=1` shrinks every workload for a smoke run.

#[path = "../tests/it/common/mod.rs"]
mod common;
#[path = "../tests/it/common/synthetic_library.rs"]
mod synthetic_library;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use earshot::model::Scene;

struct Sizes {
    uploads: usize,
    references: u64,
    clip_secs: f64,
    big_wav_bytes: u64,
}

fn sizes() -> Sizes {
    if std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1") {
        Sizes {
            uploads: 8,
            references: 1_000,
            clip_secs: 5.0,
            big_wav_bytes: 20_000_000,
        }
    } else {
        Sizes {
            uploads: 50,
            references: 10_000,
            clip_secs: 30.0,
            big_wav_bytes: 500_000_000,
        }
    }
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out");
    std::fs::create_dir_all(&dir).expect("bench/out");
    dir
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Distinct 30 s music-like MP3s (distinct frequencies, so distinct bytes and trace ids).
fn clips(dir: &Path, n: usize, secs: f64) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let path = dir.join(format!("clip-{i:03}.mp3"));
            if !path.exists() {
                let f = 200 + 7 * i;
                let source = format!(
                    "aevalsrc=exprs='0.3*sin(2*PI*{f}*t)*(1+sin(2*PI*0.5*t))+0.2*sin(2*PI*{g}*t)':s=44100:c=stereo:d={secs}",
                    g = f * 3 / 2
                );
                synthesize(&path, &source, &["-c:a", "libmp3lame", "-b:a", "128k"]);
            }
            path
        })
        .collect()
}

struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

async fn queue_for(s3: &aws_sdk_s3::Client, bucket: &str, notify: bool) -> Queue {
    let (sqs, url) = fresh_queue(s3, notify.then_some(bucket)).await;
    Queue { sqs, url }
}

/// A running `earshot serve` under GNU time, with its admin listener.
struct Daemon {
    child: tokio::process::Child,
    admin_port: u16,
    rss_report: PathBuf,
}

/// Starts `earshot serve` on `library` and waits until it polls.
async fn serve(
    dir: &Path,
    bucket: &str,
    queue: &Queue,
    callback: &str,
    concurrency: usize,
    library: &Path,
) -> Daemon {
    let mut typed = config_at(LOCALSTACK, bucket, callback, "move", library);
    typed.sources.sqs = Some(sqs_source(&queue.url, concurrency, 60));
    let admin_port = free_port();
    typed.admin.listen = Some(format!("127.0.0.1:{admin_port}"));
    let text = config_toml(&typed);
    let config = dir.join(format!("serve-{concurrency}.toml"));
    std::fs::write(&config, text).expect("config");
    let log = dir.join(format!("serve-{concurrency}.log"));
    let rss_report = dir.join(format!("serve-{concurrency}.time"));
    let child = tokio::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg("-o")
        .arg(&rss_report)
        .arg(env!("CARGO_BIN_EXE_earshot"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("EARSHOT_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,earshot::sources=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .kill_on_drop(true)
        .spawn()
        .expect("earshot serve starts under GNU time (Debian package `time`)");
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Polling SQS")
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "earshot serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Daemon {
        child,
        admin_port,
        rss_report,
    }
}

/// The daemon's `earshot_s3_requests_total`, all operations.
async fn s3_requests(daemon: &Daemon) -> u64 {
    let url = format!("http://127.0.0.1:{}/metrics", daemon.admin_port);
    let text = reqwest::get(&url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with("earshot_s3_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Stops the daemon (SIGTERM to earshot, GNU time's child) and returns its peak RSS in MB.
async fn stop(mut daemon: Daemon) -> f64 {
    let pid = daemon.child.id().expect("running").to_string();
    let _ = Command::new("pkill").args(["-TERM", "-P", &pid]).status();
    let _ = tokio::time::timeout(Duration::from_secs(30), daemon.child.wait()).await;
    std::fs::read_to_string(&daemon.rss_report)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Latency: one upload every 200 ms; each job's latency is callback arrival − upload return.
async fn latency(dir: &Path, clips: &[PathBuf]) -> (f64, f64) {
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let queue = queue_for(&s3, &bucket, true).await;
    let listener = Listener::start().await;
    let daemon = serve(dir, &bucket, &queue, &listener.url, 8, &dir.join("library")).await;
    let mut uploaded = std::collections::HashMap::new();
    for (i, clip) in clips.iter().enumerate() {
        let key = format!("audio/latency-{i:03}.mp3");
        put_file(&s3, &bucket, &key, clip, "audio/mpeg").await;
        uploaded.insert(key, Instant::now());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let arrivals = listener
        .wait_for(clips.len(), Duration::from_secs(300))
        .await;
    stop(daemon).await;
    let mut latencies: Vec<f64> = arrivals
        .iter()
        .map(|received| {
            let key = received.json()["data"]["key"]
                .as_str()
                .expect("key")
                .to_owned();
            received.at.duration_since(uploaded[&key]).as_secs_f64() * 1000.0
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    (percentile(&latencies, 50.0), percentile(&latencies, 95.0))
}

struct Throughput {
    jobs_per_sec: f64,
    peak_rss_mb: f64,
    s3_requests_per_job: f64,
    /// CPU seconds per job of the daemon (start-up included) and of LocalStack while it ran.
    earshot_cpu_per_job: f64,
    localstack_cpu_per_job: f64,
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |n: usize| {
        fields
            .get(n)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn localstack_pid() -> u32 {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(".localstack/localstack.pid");
    std::fs::read_to_string(file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0)
}

/// Throughput: objects uploaded without notifications, then one event each queued at once; the
/// time from the queue filling to the last callback.
async fn throughput(
    dir: &Path,
    clips: &[PathBuf],
    concurrency: usize,
    library: &Path,
) -> Throughput {
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let queue = queue_for(&s3, &bucket, false).await;
    let listener = Listener::start().await;
    let mut bodies = Vec::new();
    for (i, clip) in clips.iter().enumerate() {
        let key = format!("audio/throughput-{i:03}.mp3");
        put_file(&s3, &bucket, &key, clip, "audio/mpeg").await;
        bodies.push(format!(
            r#"{{"Records":[{{"eventName":"ObjectCreated:Put","s3":{{"bucket":{{"name":"{bucket}"}},"object":{{"key":"{key}"}}}}}}]}}"#
        ));
    }
    let daemon = serve(dir, &bucket, &queue, &listener.url, concurrency, library).await;
    let requests_before = s3_requests(&daemon).await;
    let localstack_before = cpu_secs(localstack_pid());
    let start = Instant::now();
    for (n, chunk) in bodies.chunks(10).enumerate() {
        let mut batch = queue.sqs.send_message_batch().queue_url(&queue.url);
        for (i, body) in chunk.iter().enumerate() {
            batch = batch.entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("m{n}-{i}"))
                    .message_body(body)
                    .build()
                    .expect("entry"),
            );
        }
        batch.send().await.expect("send batch");
    }
    listener
        .wait_for(clips.len(), Duration::from_secs(600))
        .await;
    let secs = start.elapsed().as_secs_f64();
    let localstack_cpu = cpu_secs(localstack_pid()) - localstack_before;
    let requests = s3_requests(&daemon).await - requests_before;
    let rss_report = daemon.rss_report.clone();
    let peak_rss_mb = stop(daemon).await;
    let report = std::fs::read_to_string(rss_report).unwrap_or_default();
    let earshot_cpu: f64 = report
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("User time (seconds): ")
                .or_else(|| l.strip_prefix("System time (seconds): "))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum();
    let jobs = clips.len() as f64;
    Throughput {
        jobs_per_sec: jobs / secs,
        peak_rss_mb,
        s3_requests_per_job: requests as f64 / jobs,
        earshot_cpu_per_job: earshot_cpu / jobs,
        localstack_cpu_per_job: localstack_cpu / jobs,
    }
}

/// The decode + fingerprint bound: `files` hashed, decoded and fingerprinted in-process on every
/// core (what a job does with the bytes), in files per second.
fn decode_fingerprint_bound(files: &[PathBuf]) -> (f64, usize) {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let limits = earshot::audio::DecodeLimits {
        max_duration_secs: 24 * 3600,
    };
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(file) =
                    files.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    earshot::signing::sha256_file(file).expect("hashes");
                    earshot::fingerprint::fingerprint_file(file, Some("mp3"), limits)
                        .expect("decodes");
                }
            });
        }
    });
    (files.len() as f64 / start.elapsed().as_secs_f64(), workers)
}

/// One long MP3: `files` joined frame by frame (no re-encode), so process start-up is amortised.
fn joined(dir: &Path, files: &[PathBuf]) -> PathBuf {
    let long = dir.join(format!("joined-{}.mp3", files.len()));
    if !long.exists() {
        let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        run(Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
            .arg(format!("concat:{}", list.join("|")))
            .args(["-c", "copy"])
            .arg(&long));
    }
    long
}

/// Decode speed in × realtime: earshot's decoder in-process, and ffmpeg decoding to null.
fn decode_speed(files: &[PathBuf]) -> (f64, f64) {
    let limits = earshot::audio::DecodeLimits {
        max_duration_secs: 24 * 3600,
    };
    let mut audio_secs = 0.0;
    let start = Instant::now();
    for file in files {
        let info = earshot::audio::decode_file(file, Some("mp3"), limits, &mut |_, _| {})
            .expect("decodes");
        audio_secs += info.duration_secs();
    }
    let earshot_x = audio_secs / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for file in files {
        run(Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-threads", "1", "-i"])
            .arg(file)
            .args(["-f", "null", "-"]));
    }
    let ffmpeg_x = audio_secs / start.elapsed().as_secs_f64();
    (earshot_x, ffmpeg_x)
}

/// Peak RSS in MB of `earshot moderate` on a WAV of about `bytes`, by GNU time.
fn moderate_peak_rss(dir: &Path, bytes: u64) -> (f64, f64) {
    let wav = dir.join(format!("big-{bytes}.wav"));
    let secs = bytes as f64 / (44_100.0 * 2.0 * 2.0);
    if !wav.exists() {
        run(Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!(
                "sine=frequency=440:sample_rate=44100:duration={secs}"
            ))
            .args(["-ac", "2", "-c:a", "pcm_s16le"])
            .arg(&wav));
    }
    let size_mb = std::fs::metadata(&wav).expect("wav").len() as f64 / 1e6;
    let config = dir.join("moderate.toml");
    std::fs::write(
        &config,
        format!(
            "[engines.local]\ntype = \"local\"\nlibrary = \"{}\"\n",
            dir.join("library").display()
        ),
    )
    .expect("config");
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_earshot"))
        .arg("--config")
        .arg(&config)
        .arg("moderate")
        .arg(&wav)
        .env("EARSHOT_LOG_FORMAT", "json")
        .output()
        .expect("GNU time runs (Debian package `time`)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kb: f64 = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .expect("GNU time reports the peak RSS")
        .trim()
        .parse()
        .expect("a number");
    (size_mb, kb / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let sizes = sizes();
    require_localstack();
    let dir = out_dir();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let clip_files = clips(&work, sizes.uploads * 3, sizes.clip_secs);
    // The library holds one unrelated entry, so the engine runs its lookup for every job.
    let reference = tone(&work.join("reference.mp3"), 3.0, 1234, &[]);
    runtime.block_on(library_with(&work, &reference, Scene::Porn));

    let n = sizes.uploads;
    eprintln!("latency over {n} uploads …");
    let (p50, p95) = runtime.block_on(latency(&work, &clip_files[..n]));
    let small = work.join("library");
    eprintln!("throughput at max_concurrency 1 …");
    let one = runtime.block_on(throughput(&work, &clip_files[n..2 * n], 1, &small));
    eprintln!("throughput at max_concurrency 8 …");
    let at_eight = runtime.block_on(throughput(&work, &clip_files[2 * n..], 8, &small));
    eprintln!("decode + fingerprint bound of the same files …");
    let (bound, cores) = decode_fingerprint_bound(&clip_files[2 * n..]);
    eprintln!("throughput at max_concurrency 8 with 10,000 references …");
    let big = work.join(format!("library-{}", sizes.references));
    if !big.join("index/library.idx").exists() {
        let _ = std::fs::remove_dir_all(&big);
        runtime.block_on(async {
            synthetic_library::library(&big, sizes.references).await;
            // As `earshot library add` leaves it: the index written beside the entries.
            let s3 = s3(LOCALSTACK).await;
            earshot::engines::local::LocalEngine::load("local", &big.display().to_string(), &s3)
                .await
                .expect("the library loads");
        });
    }
    let at_scale = runtime.block_on(throughput(&work, &clip_files[2 * n..], 8, &big));
    let (one, eight) = (one.jobs_per_sec, at_eight.jobs_per_sec);
    // LocalStack serves every request on the same cores: what is left for decoding.
    let shared_bound = cores as f64 / (cores as f64 / bound + at_eight.localstack_cpu_per_job);
    eprintln!("decode speed …");
    let (earshot_x, ffmpeg_x) = decode_speed(&clip_files[..n.min(20)]);
    let long = joined(&work, &clip_files[..n.min(20)]);
    let (earshot_long_x, ffmpeg_long_x) = decode_speed(std::slice::from_ref(&long));
    eprintln!("peak RSS of earshot moderate …");
    let (wav_mb, rss_mb) = moderate_peak_rss(&work, sizes.big_wav_bytes);

    let clip = sizes.clip_secs;
    let refs = sizes.references;
    let long_min = n.min(20) as f64 * clip / 60.0;
    let report = format!(
        "| measure | value |\n|---|---|\n\
         | upload→callback latency p50 ({n} × {clip:.0} s MP3) | {p50:.0} ms |\n\
         | upload→callback latency p95 | {p95:.0} ms |\n\
         | jobs/s at max_concurrency 1 | {one:.1} |\n\
         | jobs/s at max_concurrency 8 | {eight:.1} ({:.2}× concurrency 1) |\n\
         | decode + fingerprint bound of the same files on {cores} cores | {bound:.1} jobs/s (max_concurrency 8 reaches {:.0} %) |\n\
         | CPU per job at 8: earshot serve / LocalStack / the bound's decode + fingerprint | {:.0} / {:.0} / {:.0} ms |\n\
         | bound with LocalStack's CPU on the same cores | {:.1} jobs/s (max_concurrency 8 reaches {:.0} %) |\n\
         | S3 requests per job (pass, one-entry library) | {:.1} |\n\
         | jobs/s at max_concurrency 8, {refs} references | {:.1} ({:.0} % of the bound) |\n\
         | peak RSS of `earshot serve`, {refs} references, during those jobs | {:.0} MB (one-entry library: {:.0} MB) |\n\
         | decode, earshot (symphonia, in-process) | {earshot_x:.0}× realtime |\n\
         | decode, `ffmpeg -threads 1 -f null` (per file) | {ffmpeg_x:.0}× realtime |\n\
         | earshot ÷ ffmpeg decode speed, per file | {:.2} |\n\
         | decode of one {long_min:.0}-minute MP3: earshot / ffmpeg | {earshot_long_x:.0}× / {ffmpeg_long_x:.0}× realtime ({:.2}) |\n\
         | peak RSS, `earshot moderate` on a {wav_mb:.0} MB WAV | {rss_mb:.1} MB (target < 64 MB) |\n",
        eight / one,
        100.0 * eight / bound,
        at_eight.earshot_cpu_per_job * 1000.0,
        at_eight.localstack_cpu_per_job * 1000.0,
        cores as f64 / bound * 1000.0,
        shared_bound,
        100.0 * eight / shared_bound,
        at_eight.s3_requests_per_job,
        at_scale.jobs_per_sec,
        100.0 * at_scale.jobs_per_sec / bound,
        at_scale.peak_rss_mb,
        at_eight.peak_rss_mb,
        earshot_x / ffmpeg_x,
        earshot_long_x / ffmpeg_long_x,
    );
    println!("{report}");
    std::fs::write(dir.join("results.md"), &report).expect("write results");
}
