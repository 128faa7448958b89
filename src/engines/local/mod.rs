//! The `local` engine: offline matching against a reference library of known non-compliant audio.
//! Nothing leaves the user's servers.
//!
//! The library lives in a directory or under an S3 prefix, two files per reference:
//! `<library>/entries/<sha256>.json` ([`Entry`]) and `<library>/entries/<sha256>.fp`, its acoustic
//! fingerprint ([`crate::fingerprint`]). One pair per entry keeps adds and removes independent (no
//! shared index file to rewrite); the in-memory [`Index`] is built from them at load.
//!
//! Matching: an upload whose SHA-256 equals an entry's scores 100 on that entry's scene; otherwise
//! its fingerprint is looked up in the index, and each reference found inside it scores per
//! [`match_score`] on the reference's scene, with the matched segment (offsets in the upload and
//! the reference).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use aws_sdk_s3::Client;

mod store;

pub use store::{Entry, LibraryError, LibraryStore};

/// The SHA-256 of a file: a library entry's id.
pub use crate::signing::sha256_file;

use super::{Analyser, Clip, EngineError, Reference};
use crate::fingerprint::{Fingerprint, Index};
use crate::model::{Scene, SceneScore, Segment, Verdict};

/// One loaded state of the library: replaced whole when the library changes.
struct Snapshot {
    by_sha256: HashMap<[u8; 32], Entry>,
    /// Entries in index order.
    indexed: Vec<Entry>,
    index: Index,
    /// Every entry with its fingerprint, to rebuild from without reading the store again.
    loaded: Vec<(Entry, Option<Arc<Fingerprint>>)>,
}

impl Snapshot {
    fn build(loaded: Vec<(Entry, Option<Arc<Fingerprint>>)>) -> Snapshot {
        let mut by_sha256 = HashMap::new();
        let mut indexed = Vec::new();
        let mut fingerprints = Vec::new();
        for (entry, fingerprint) in &loaded {
            let mut sha = [0u8; 32];
            if hex::decode_to_slice(&entry.id, &mut sha).is_ok() {
                by_sha256.insert(sha, entry.clone());
            }
            if let Some(fingerprint) = fingerprint {
                fingerprints.push((entry.id.clone(), Fingerprint::clone(fingerprint)));
                indexed.push(entry.clone());
            }
        }
        Snapshot {
            by_sha256,
            indexed,
            index: Index::build(fingerprints),
            loaded,
        }
    }
}

/// The running engine: the library's entries by SHA-256 and their fingerprints indexed, reloaded
/// by [`Engine::refresh`] when the library changes and extended by [`Engine::learn`].
pub struct LocalEngine {
    name: String,
    store: Option<LibraryStore>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The store's [`LibraryStore::signature`] when last read (empty: unknown, read again).
    signature: Mutex<Vec<String>>,
}

impl LocalEngine {
    /// Loads the library at `location`: entries and fingerprints.
    ///
    /// # Errors
    /// The library cannot be read.
    pub async fn load(name: &str, location: &str, s3: &Client) -> Result<LocalEngine, EngineError> {
        let store = LibraryStore::open(location, s3);
        let signature = store.signature().await?;
        let loaded = read_library(name, &store, None).await?;
        let engine = Self::with_snapshot(name, Some(store), Snapshot::build(loaded));
        *engine.signature.lock().expect("not poisoned") = signature;
        Ok(engine)
    }

    /// An engine over entries already in memory (no store: it cannot learn or refresh).
    pub fn from_entries(name: &str, entries: Vec<(Entry, Option<Fingerprint>)>) -> LocalEngine {
        let loaded = entries
            .into_iter()
            .map(|(e, f)| (e, f.map(Arc::new)))
            .collect();
        Self::with_snapshot(name, None, Snapshot::build(loaded))
    }

    fn with_snapshot(name: &str, store: Option<LibraryStore>, snapshot: Snapshot) -> LocalEngine {
        tracing::info!(
            engine = name,
            entries = snapshot.by_sha256.len(),
            fingerprinted = snapshot.indexed.len(),
            index_mb = snapshot.index.heap_bytes() / (1 << 20),
            "Reference library loaded."
        );
        LocalEngine {
            name: name.to_owned(),
            store,
            snapshot: RwLock::new(Arc::new(snapshot)),
            signature: Mutex::new(Vec::new()),
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .expect("the snapshot lock is never poisoned: nothing panics holding it")
            .clone()
    }

    fn replace(&self, snapshot: Snapshot) {
        *self
            .snapshot
            .write()
            .expect("the snapshot lock is never poisoned: nothing panics holding it") =
            Arc::new(snapshot);
    }

    pub fn len(&self) -> usize {
        self.current().by_sha256.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every library entry found in `fingerprint`, strongest first, as segments (any scene).
    pub fn matches(&self, fingerprint: &Fingerprint) -> Vec<(Entry, Segment)> {
        let snapshot = self.current();
        snapshot
            .index
            .query(fingerprint)
            .into_iter()
            .map(|found| {
                let entry = snapshot.indexed[found.reference].clone();
                let segment = Segment {
                    offset_secs: found.segment.query_offset_secs,
                    duration_secs: found.segment.duration_secs,
                    score: match_score(found.hits, found.span_landmarks),
                    label: entry.label.clone(),
                    reference_id: Some(entry.id.clone()),
                    reference_offset_secs: Some(found.segment.reference_offset_secs),
                    text: None,
                    term: None,
                };
                (entry, segment)
            })
            .collect()
    }
}

/// Reads every entry and its fingerprint, reusing the fingerprints `previous` already holds.
async fn read_library(
    name: &str,
    store: &LibraryStore,
    previous: Option<&Snapshot>,
) -> Result<Vec<(Entry, Option<Arc<Fingerprint>>)>, LibraryError> {
    let known: HashMap<&str, &Option<Arc<Fingerprint>>> = previous
        .map(|p| p.loaded.iter().map(|(e, f)| (e.id.as_str(), f)).collect())
        .unwrap_or_default();
    let mut loaded = Vec::new();
    for entry in store.list().await? {
        let fingerprint = match known.get(entry.id.as_str()) {
            Some(Some(fingerprint)) => Some(fingerprint.clone()),
            _ => store.fingerprint(&entry.id).await?.map(Arc::new),
        };
        if fingerprint.is_none() {
            tracing::warn!(engine = name, id = %entry.id, "Library entry has no fingerprint; it matches exact copies only. Add it again to fingerprint it.");
        }
        loaded.push((entry, fingerprint));
    }
    Ok(loaded)
}

#[async_trait::async_trait]
impl Analyser for LocalEngine {
    fn references_as_of(&self) -> Option<u64> {
        self.current().loaded.iter().map(|(e, _)| e.added_at).max()
    }

    fn references_since(&self, since: u64) -> Vec<Reference> {
        self.current()
            .loaded
            .iter()
            .filter(|(entry, _)| entry.added_at >= since)
            .filter_map(|(entry, fingerprint)| {
                Some(Reference {
                    id: entry.id.clone(),
                    scene: entry.scene,
                    label: entry.label.clone(),
                    added_at: entry.added_at,
                    fingerprint: fingerprint.clone()?,
                })
            })
            .collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn moderate(&self, clip: &Clip, scenes: &[Scene]) -> Result<Verdict, EngineError> {
        let mut verdict = Verdict::default();
        if let Some(entry) = self.current().by_sha256.get(&clip.sha256)
            && scenes.contains(&entry.scene)
        {
            let segment = Segment {
                offset_secs: 0.0,
                duration_secs: clip.audio.duration_secs(),
                score: 100,
                label: entry.label.clone(),
                reference_id: Some(entry.id.clone()),
                reference_offset_secs: Some(0.0),
                text: None,
                term: None,
            };
            verdict.scenes.insert(
                entry.scene,
                SceneScore {
                    score: 100,
                    label: entry.label.clone(),
                    segments: vec![segment],
                },
            );
            return Ok(verdict);
        }
        for (entry, segment) in self.matches(&clip.fingerprint) {
            if !scenes.contains(&entry.scene) || segment.score == 0 {
                continue;
            }
            let scene = verdict
                .scenes
                .entry(entry.scene)
                .or_insert_with(|| SceneScore {
                    score: 0,
                    label: String::new(),
                    segments: Vec::new(),
                });
            if segment.score > scene.score {
                scene.score = segment.score;
                scene.label = segment.label.clone();
            }
            scene.segments.push(segment);
        }
        Ok(verdict)
    }

    async fn refresh(&self) -> Result<bool, EngineError> {
        let Some(store) = &self.store else {
            return Ok(false);
        };
        let current = self.current();
        // A listing is cheap; reading every entry is not (one GET each on S3).
        let signature = store.signature().await?;
        if *self.signature.lock().expect("not poisoned") == signature {
            return Ok(false);
        }
        let loaded = read_library(&self.name, store, Some(&current)).await?;
        *self.signature.lock().expect("not poisoned") = signature;
        let unchanged = loaded.len() == current.loaded.len()
            && loaded.iter().zip(&current.loaded).all(|(a, b)| a.0 == b.0);
        if unchanged {
            return Ok(false);
        }
        let before = current.loaded.len();
        let snapshot = Snapshot::build(loaded);
        tracing::info!(engine = %self.name, before, after = snapshot.loaded.len(), "Reference library changed; reloaded.");
        self.replace(snapshot);
        Ok(true)
    }

    async fn learn(
        &self,
        clip: &Clip,
        scene: Scene,
        label: &str,
        source: &str,
    ) -> Result<bool, EngineError> {
        let Some(store) = &self.store else {
            return Ok(false);
        };
        let entry = Entry {
            id: hex::encode(clip.sha256),
            scene,
            label: label.to_owned(),
            source: source.to_owned(),
            bytes: clip.size,
            duration_secs: clip.audio.duration_secs(),
            added_at: crate::clock::system_secs(),
        };
        store.put_fingerprint(&entry.id, &clip.fingerprint).await?;
        store.put(&entry).await?;
        let current = self.current();
        let mut loaded: Vec<_> = current
            .loaded
            .iter()
            .filter(|(e, _)| e.id != entry.id)
            .cloned()
            .collect();
        loaded.push((entry, Some(Arc::new(clip.fingerprint.clone()))));
        self.replace(Snapshot::build(loaded));
        // The store changed under the last signature: the next refresh re-reads the library
        // (reusing every fingerprint held), which also confirms what was written.
        self.signature.lock().expect("not poisoned").clear();
        Ok(true)
    }
}

/// Landmarks that must agree for a match to count at all, for it to be suspicious (61+) and for
/// it to be sensitive (91+); and the share of the matched span's landmarks that must agree.
pub const WEAK_HITS: u32 = 20;
pub const STRONG_HITS: u32 = 60;
pub const MIN_DENSITY: f64 = 0.05;

/// Maps an acoustic match to the 0–100 scale.
///
/// - Fewer than [`WEAK_HITS`] agreeing landmarks, or agreeing landmarks that are under
///   [`MIN_DENSITY`] of all the query's landmarks in the matched span (a few coincidences spread
///   over minutes, as between two pieces by one composer): at most 59, normal.
/// - [`WEAK_HITS`] up to [`STRONG_HITS`]: 61–90, suspicious (a short or heavily degraded excerpt).
/// - [`STRONG_HITS`] or more: 91–100, sensitive, rising with the count (100 from 300).
///
/// An exact SHA-256 match scores 100 regardless. Measured on Debian's music (tests/it/fingerprint.rs):
/// true 8–10 s excerpts under every transform agree on 80–1400 landmarks at densities ≥ 0.14;
/// the best wrong reference reaches 27 landmarks at density ≤ 0.03.
pub fn match_score(hits: u32, span_landmarks: u32) -> u8 {
    let density = f64::from(hits) / f64::from(span_landmarks.max(1));
    if hits < WEAK_HITS || density < MIN_DENSITY {
        return (hits * 2).min(59) as u8;
    }
    if hits < STRONG_HITS {
        let t = f64::from(hits - WEAK_HITS) / f64::from(STRONG_HITS - WEAK_HITS);
        return (61.0 + t * 29.0).round() as u8;
    }
    let t = (f64::from(hits - STRONG_HITS) / 240.0).min(1.0);
    (91.0 + t * 9.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::AudioInfo;

    fn clip(sha: [u8; 32]) -> Clip {
        Clip {
            sha256: sha,
            size: 1,
            audio: AudioInfo {
                container: "wav".into(),
                codec: "pcm".into(),
                sample_rate: 8000,
                channels: 1,
                frames: 8000,
                estimated_frames: None,
                bad_packets: 0,
                truncated: false,
            },
            fingerprint: Fingerprint::default(),
            speech: None,
        }
    }

    fn entry(sha: [u8; 32], scene: Scene) -> Entry {
        Entry {
            id: hex::encode(sha),
            scene,
            label: "known-clip".into(),
            source: "test".into(),
            bytes: 1,
            duration_secs: 1.0,
            added_at: 0,
        }
    }

    #[tokio::test]
    async fn an_exact_match_scores_100_on_its_scene_only() {
        let engine = LocalEngine::from_entries("local", vec![(entry([7; 32], Scene::Porn), None)]);
        let hit = engine
            .moderate(&clip([7; 32]), &[Scene::Porn, Scene::Ads])
            .await
            .expect("moderates");
        assert_eq!(hit.score(Scene::Porn).map(|s| s.score), Some(100));
        assert_eq!(hit.score(Scene::Ads), None);
        let unconfigured = engine
            .moderate(&clip([7; 32]), &[Scene::Ads])
            .await
            .expect("moderates");
        assert!(unconfigured.scenes.is_empty());
        let miss = engine
            .moderate(&clip([8; 32]), &[Scene::Porn])
            .await
            .expect("moderates");
        assert!(miss.scenes.is_empty());
    }

    #[test]
    fn match_scores_fall_in_the_documented_bands() {
        // (hits, span landmarks, lowest, highest)
        let table = [
            (0, 0, 0, 0),
            (6, 10, 0, 59),
            (19, 20, 0, 59),
            (27, 1235, 0, 59),
            (200, 10_000, 0, 59),
            (20, 40, 61, 61),
            (40, 100, 61, 90),
            (59, 100, 89, 90),
            (60, 100, 91, 91),
            (150, 400, 91, 100),
            (300, 600, 100, 100),
            (5000, 6000, 100, 100),
        ];
        for (hits, span, low, high) in table {
            let score = match_score(hits, span);
            assert!(
                (low..=high).contains(&score),
                "{hits}/{span} → {score}, want {low}–{high}"
            );
        }
    }

    #[tokio::test]
    async fn a_directory_library_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let store = LibraryStore::open(
            dir.path().join("lib").to_str().expect("utf-8"),
            &Client::from_conf(config),
        );
        assert!(store.list().await.expect("lists").is_empty());
        let e = entry([1; 32], Scene::Ads);
        store.put(&e).await.expect("puts");
        assert_eq!(store.list().await.expect("lists"), vec![e.clone()]);
        assert!(store.remove(&e.id).await.expect("removes"));
        assert!(!store.remove(&e.id).await.expect("removes"));
        assert!(store.list().await.expect("lists").is_empty());
    }
}
