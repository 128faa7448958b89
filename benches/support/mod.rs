//! What the speech benches share: running a tool, decoding and gating a file into the clip the
//! speech engine judges, and peak RSS.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use earshot::audio::DecodeLimits;
use earshot::engines::Clip;
use earshot::engines::speech::gate::{Collector, Speech};

pub fn run(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(status.success(), "{command:?}");
}

/// Decodes and gates a file: the clip the engine judges, and the seconds that took.
pub fn clip(path: &Path) -> (Clip, f64) {
    let started = Instant::now();
    let mut collector = Collector::new(3600);
    let info = earshot::audio::decode_file(
        path,
        None,
        DecodeLimits {
            max_duration_secs: 3600,
        },
        &mut |samples, rate| collector.push(samples, rate),
    )
    .expect("decodes");
    let speech: Speech = collector.finish();
    let took = started.elapsed().as_secs_f64();
    let mut sha256 = [0u8; 32];
    for (i, b) in path.to_string_lossy().bytes().enumerate() {
        sha256[i % 32] ^= b.rotate_left(i as u32 % 8);
    }
    let clip = Clip {
        sha256,
        size: 0,
        audio: info,
        fingerprint: Default::default(),
        speech: Some(Arc::new(speech)),
    };
    (clip, took)
}

pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
