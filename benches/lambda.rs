//! `earshot-lambda` cold start: the time from starting the release binary to its first request for
//! an invocation (the end of Lambda's init phase), against the local Runtime API of
//! tests/it/common/lambda_api.rs, with an empty library and with libraries of 1,000 and 10,000
//! references; and the binary's size. No server needed (the init phase makes no S3 call with a
//! directory library). Results: printed and written to bench/out/lambda.md.

#[path = "../tests/it/common/lambda_api.rs"]
mod lambda_api;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use earshot::engines::local::{Entry, LibraryStore};
use earshot::fingerprint::{FRAME_SECS, Fingerprint, Landmark};
use earshot::model::Scene;
use lambda_api::RuntimeApi;

const RUNS: usize = 7;

/// A library of `refs` synthetic references of 60 s each at 150 landmarks/s.
async fn library(dir: &Path, refs: u64) {
    let s3 = earshot::storage::s3_client(&earshot::config::S3Config::default()).await;
    let store = LibraryStore::open(dir.to_str().expect("utf-8"), &s3);
    let frames = (60.0 / FRAME_SECS) as u32;
    for i in 0..refs {
        let mut state = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut landmarks = Vec::new();
        for frame in 0..frames {
            for _ in 0..((150.0 * FRAME_SECS).round() as u32).max(1) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                landmarks.push(Landmark {
                    hash: (state % (1 << 21)) as u32,
                    frame,
                });
            }
        }
        let id = format!("{:064x}", i + 1);
        let entry = Entry {
            id: id.clone(),
            scene: Scene::Porn,
            label: format!("synthetic {i}"),
            source: "bench".to_owned(),
            bytes: 0,
            duration_secs: 60.0,
            added_at: 0,
        };
        store.put(&entry).await.expect("entry written");
        store
            .put_fingerprint(&id, &Fingerprint { landmarks, frames })
            .await
            .expect("fingerprint written");
    }
}

/// Milliseconds from spawn to the first `GET …/invocation/next`, `RUNS` times; sorted.
async fn cold_starts(dir: &Path) -> Vec<f64> {
    let config = dir.join("earshot.toml");
    std::fs::write(
        &config,
        format!(
            "[[rules]]\nid = \"uploads\"\nbucket = \"media\"\nprefix = \"audio/\"\n\n\
             [engines.local]\ntype = \"local\"\nlibrary = \"{}\"\n",
            dir.join("library").display()
        ),
    )
    .expect("config written");
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let api = RuntimeApi::start().await;
        let started = Instant::now();
        let mut child = api.spawn(&config, "warn", Stdio::inherit());
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

#[tokio::main]
async fn main() {
    let mut table = String::from(
        "| library | init p50 (ms) | init min–max (ms) | × empty |\n|---|---|---|---|\n",
    );
    let mut empty_p50 = None;
    for refs in [0u64, 1_000, 10_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("library")).expect("library dir");
        library(&dir.path().join("library"), refs).await;
        let times = cold_starts(dir.path()).await;
        let p50 = times[times.len() / 2];
        let base = *empty_p50.get_or_insert(p50);
        table.push_str(&format!(
            "| {refs} references × 60 s | {p50:.1} | {:.1}–{:.1} | {:.1}× |\n",
            times[0],
            times[times.len() - 1],
            p50 / base
        ));
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
