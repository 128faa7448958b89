//! Start-up with a big library: `earshot-lambda`'s cold start (the time from starting the binary
//! to its first request for an invocation, the end of Lambda's init phase, against the local
//! Runtime API of tests/it/common/lambda_api.rs) and `earshot serve`'s (to its webhook port
//! accepting connections), with an empty library and libraries of 1,000 and 10,000 references;
//! the first start after the entries were written (it builds and writes the index) and the starts
//! after it (they map the index); the peak RSS of a started `earshot serve`; and the Lambda
//! binary's size. No server needed (a directory library). Results: printed and written to
//! bench/out/lambda.md.

#[path = "../tests/it/common/lambda_api.rs"]
mod lambda_api;
#[path = "../tests/it/common/synthetic_library.rs"]
mod synthetic_library;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lambda_api::RuntimeApi;
use synthetic_library::{REFERENCE_SECS, library};

const RUNS: usize = 7;

fn write_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let config = dir.join("earshot.toml");
    std::fs::write(
        &config,
        format!(
            "[[rules]]\nid = \"uploads\"\nbucket = \"media\"\nprefix = \"audio/\"\n\n\
             [engines.local]\ntype = \"local\"\nlibrary = \"{}\"\n\n\
             [sources.webhook]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [sources.webhook.minio]\nauth_token = \"bench-token-0123456789\"\n",
            dir.join("library").display()
        ),
    )
    .expect("config written");
    config
}

/// Milliseconds from spawn to the first `GET …/invocation/next`, `runs` times; sorted.
async fn cold_starts(config: &Path, runs: usize) -> Vec<f64> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let api = RuntimeApi::start().await;
        let started = Instant::now();
        let mut child = api.spawn(config, "warn", Stdio::inherit());
        let ready = loop {
            if let Some(at) = api.first_next() {
                break at;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no /next within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        times.push((ready - started).as_secs_f64() * 1000.0);
        child.kill().await.expect("killed");
    }
    times.sort_by(f64::total_cmp);
    times
}

/// Milliseconds from spawning `earshot serve` (under GNU time) to its webhook port accepting a
/// connection, `runs` times, sorted; and the largest peak RSS (MB) of those runs.
async fn serve_starts(config: &Path, port: u16, runs: usize) -> (Vec<f64>, f64) {
    let mut times = Vec::new();
    let mut peak_mb = 0.0f64;
    for _ in 0..runs {
        let rss = tempfile::NamedTempFile::new().expect("temp");
        let started = Instant::now();
        let mut child = tokio::process::Command::new("/usr/bin/time")
            .arg("-v")
            .arg("-o")
            .arg(rss.path())
            .arg(env!("CARGO_BIN_EXE_earshot"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("earshot serve starts under GNU time");
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "earshot serve did not listen within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        // SIGTERM to earshot (GNU time's child), so that GNU time reports.
        let _ = std::process::Command::new("pkill")
            .args(["-TERM", "-P", &child.id().expect("running").to_string()])
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        let report = std::fs::read_to_string(rss.path()).unwrap_or_default();
        let kb: f64 = report
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        peak_mb = peak_mb.max(kb / 1024.0);
    }
    times.sort_by(f64::total_cmp);
    (times, peak_mb)
}

#[tokio::main]
async fn main() {
    let mut table = String::from(
        "| library | index | lambda: first start (builds the index) | lambda init p50 (min–max) | serve: first start | serve init p50 (min–max) | serve peak RSS |\n|---|---|---|---|---|---|---|\n",
    );
    for refs in [0u64, 1_000, 10_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("library")).expect("library dir");
        library(&dir.path().join("library"), refs).await;
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
            listener.local_addr().expect("addr").port()
        };
        let config = write_config(dir.path(), port);
        let index = dir.path().join("library/index/library.idx");
        let lambda_first = cold_starts(&config, 1).await[0];
        let lambda = cold_starts(&config, RUNS).await;
        let _ = std::fs::remove_file(&index);
        let (serve_first, _) = serve_starts(&config, port, 1).await;
        let (serve, rss_mb) = serve_starts(&config, port, RUNS).await;
        let index_mb = std::fs::metadata(&index).map_or(0.0, |m| m.len() as f64 / 1e6);
        let p50 = |t: &[f64]| t[t.len() / 2];
        table.push_str(&format!(
            "| {refs} references × {REFERENCE_SECS} s | {index_mb:.0} MB | {:.0} ms | {:.1} ms ({:.1}–{:.1}) | {:.0} ms | {:.1} ms ({:.1}–{:.1}) | {rss_mb:.0} MB |\n",
            lambda_first,
            p50(&lambda),
            lambda[0],
            lambda[lambda.len() - 1],
            serve_first[0],
            p50(&serve),
            serve[0],
            serve[serve.len() - 1],
        ));
        eprint!("{table}");
    }
    let binary = Path::new(env!("CARGO_BIN_EXE_earshot-lambda"));
    let size = std::fs::metadata(binary).expect("binary").len();
    let stripped = tempfile::NamedTempFile::new().expect("temp");
    let status = std::process::Command::new("strip")
        .arg("-o")
        .arg(stripped.path())
        .arg(binary)
        .status()
        .expect("strip runs");
    assert!(status.success());
    let stripped_size = std::fs::metadata(stripped.path()).expect("stripped").len();
    table.push_str(&format!(
        "\nbinary (bench profile = release + line tables): {:.1} MB; stripped, as deployed: {:.1} MB\n",
        size as f64 / 1e6,
        stripped_size as f64 / 1e6
    ));
    print!("{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out");
    std::fs::create_dir_all(&out).expect("bench/out");
    std::fs::write(out.join("lambda.md"), table).expect("write results");
}
