//! Synthetic fingerprints for the benchmarks (benches/lambda.rs, benches/pipeline.rs,
//! benches/stock.rs): random landmarks at the density measured on Debian's music, and libraries of
//! them written through the library store. Each benchmark uses part of it.
#![allow(dead_code)]

use std::path::Path;

use earshot::engines::local::{Entry, LibraryStore};
use earshot::fingerprint::{FRAME_SECS, Fingerprint, Landmark};
use earshot::model::Scene;

/// Seconds per synthetic reference: 10,000 of them make 30 h, the fingerprint benchmark's
/// library, whose index is the 138 MB measured before the index was stored.
pub const REFERENCE_SECS: f64 = 10.8;

/// Random landmarks at `per_sec` for `secs`, from `seed`.
pub fn synthetic(seed: u64, secs: f64, per_sec: f64) -> Fingerprint {
    let frames = (secs / FRAME_SECS) as u32;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut landmarks = Vec::new();
    let per_frame = per_sec * FRAME_SECS;
    let mut owed = 0.0;
    for frame in 0..frames {
        owed += per_frame;
        while owed >= 1.0 {
            owed -= 1.0;
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            landmarks.push(Landmark {
                hash: (state % (1 << 21)) as u32,
                frame,
            });
        }
    }
    Fingerprint { landmarks, frames }
}

/// A library of `refs` synthetic references of [`REFERENCE_SECS`] each at 150 landmarks/s.
pub async fn library(dir: &Path, refs: u64) {
    let s3 = earshot::storage::s3_client(&earshot::config::S3Config::default()).await;
    let store = LibraryStore::open(dir.to_str().expect("utf-8"), &s3);
    for i in 0..refs {
        let fingerprint = synthetic(i + 1, REFERENCE_SECS, 150.0);
        let id = format!("{:064x}", i + 1);
        let entry = Entry {
            id: id.clone(),
            scene: Scene::Porn,
            label: format!("synthetic {i}"),
            source: "bench".to_owned(),
            bytes: 0,
            duration_secs: REFERENCE_SECS,
            added_at: 0,
        };
        store.put(&entry).await.expect("entry written");
        store
            .put_fingerprint(&id, &fingerprint)
            .await
            .expect("fingerprint written");
    }
}
