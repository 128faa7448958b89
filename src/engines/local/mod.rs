//! The `local` engine: offline matching against a reference library of known non-compliant audio.
//! Nothing leaves the user's servers.
//!
//! The library lives in a directory or under an S3 prefix, two files per reference:
//! `<library>/entries/<sha256>.json` ([`Entry`]) and `<library>/entries/<sha256>.fp`, its acoustic
//! fingerprint ([`crate::fingerprint`]). One pair per entry keeps adds and removes independent;
//! the [`Index`] over them is kept beside them as `<library>/index/library.idx`, with the entries
//! and the listing tags it was built from. Loading maps that file and reads only the entries added,
//! changed or removed since it was written (a library written by another process, or the index
//! from an older run), then writes it back up to date; so a start reads one file, not every
//! fingerprint, and the engine holds no fingerprint of its own.
//!
//! Matching: an upload whose SHA-256 equals an entry's scores 100 on that entry's scene; otherwise
//! its fingerprint is looked up in the index, and each reference found inside it scores on the
//! reference's scene by how unlikely chance agreement is ([`crate::fingerprint::score_of`]), with the matched segment (offsets in the upload and
//! the reference).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use aws_sdk_s3::Client;

mod snapshot;
mod store;

pub use store::{Entry, LibraryError, LibraryStore};

/// The SHA-256 of a file: a library entry's id.
pub use crate::signing::sha256_file;

use self::snapshot::{Changes, IndexMeta, Snapshot, apply};
use super::{Analyser, Clip, EngineError, Reference};
use crate::fingerprint::{Fingerprint, Index};
use crate::model::{Scene, SceneScore, Segment, Verdict};

/// The running engine: the library's entries by SHA-256 and their fingerprints indexed, reloaded
/// by [`Engine::refresh`] when the library changes and extended by [`Engine::learn`].
pub struct LocalEngine {
    name: String,
    store: Option<LibraryStore>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The listing tags of the entry files the snapshot was read from; "" for files this engine
    /// wrote and has not listed since.
    tags: Mutex<BTreeMap<String, String>>,
    /// Learned entries not yet in the stored index.
    unsaved: AtomicBool,
    /// One update (learn or refresh) at a time, so none builds on a snapshot another replaced.
    updating: tokio::sync::Mutex<()>,
}

impl LocalEngine {
    /// Loads the library at `location`: its stored index, mapped, brought up to date with the
    /// entries added, changed or removed since it was written (reading only those), and written
    /// back when it was not up to date.
    ///
    /// # Errors
    /// The library cannot be read.
    pub async fn load(name: &str, location: &str, s3: &Client) -> Result<LocalEngine, EngineError> {
        let store = LibraryStore::open(location, s3);
        let listing = store.tags().await?;
        let stored = match store.read_index().await {
            Ok(Some((index, meta))) => match serde_json::from_slice::<IndexMeta>(&meta)
                .map_err(|e| e.to_string())
                .and_then(|meta| Ok((Snapshot::new(Arc::new(index), meta.entries)?, meta.tags)))
            {
                Ok(stored) => Some(stored),
                Err(message) => {
                    tracing::warn!(engine = name, %message, "The library's index does not match its entries; rebuilding it.");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(engine = name, error = %e, "The library's index cannot be used; rebuilding it.");
                None
            }
        };
        let (base, tags) = stored.unwrap_or_else(|| (Snapshot::empty(), BTreeMap::new()));
        let changes = Changes::between(&base.entries, &tags, &listing);
        let snapshot = if changes.is_empty() {
            base
        } else {
            let mut snapshot = apply(name, &store, &base, &changes).await?;
            drop(base);
            match store
                .write_index(snapshot.index.clone(), snapshot.meta(&listing))
                .await
            {
                Ok(mapped) => snapshot.index = Arc::new(mapped),
                Err(e) => {
                    tracing::warn!(engine = name, error = %e, "The library's index could not be written; it is rebuilt at the next start.");
                }
            }
            snapshot
        };
        let engine = Self::with_snapshot(name, Some(store), snapshot);
        *engine.tags.lock().expect("not poisoned") = listing;
        Ok(engine)
    }

    /// An engine over entries already in memory (no store: it cannot learn or refresh).
    pub fn from_entries(name: &str, entries: Vec<(Entry, Option<Fingerprint>)>) -> LocalEngine {
        let fingerprinted = entries
            .iter()
            .filter_map(|(e, f)| Some((e.id.clone(), f.clone()?)))
            .collect();
        let index = Arc::new(Index::build(fingerprinted));
        let snapshot = Snapshot::new(index, entries.into_iter().map(|(e, _)| e).collect())
            .expect("every reference has its entry");
        Self::with_snapshot(name, None, snapshot)
    }

    fn with_snapshot(name: &str, store: Option<LibraryStore>, snapshot: Snapshot) -> LocalEngine {
        tracing::info!(
            engine = name,
            entries = snapshot.by_sha256.len(),
            fingerprinted = snapshot.indexed.len(),
            index_mb = snapshot.index.table_bytes() / (1 << 20),
            mapped = snapshot.index.is_mapped(),
            "Reference library loaded."
        );
        LocalEngine {
            name: name.to_owned(),
            store,
            snapshot: RwLock::new(Arc::new(snapshot)),
            tags: Mutex::new(BTreeMap::new()),
            unsaved: AtomicBool::new(false),
            updating: tokio::sync::Mutex::new(()),
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

    /// Whether the index is mapped from the library's index file (not rebuilt in memory).
    pub fn index_is_mapped(&self) -> bool {
        self.current().index.is_mapped()
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
                    score: found.score,
                    label: entry.label.clone(),
                    reference_id: Some(entry.id.clone()),
                    reference_offset_secs: Some(found.segment.reference_offset_secs),
                    text: None,
                    term: None,
                    context: None,
                    ..Segment::default()
                };
                (entry, segment)
            })
            .collect()
    }

    /// Writes the index when this engine learned entries since it was last written, and maps
    /// the written file in place of the one built in memory.
    async fn save_learned(&self, store: &LibraryStore) {
        if !self.unsaved.swap(false, Ordering::SeqCst) {
            return;
        }
        let current = self.current();
        let meta = current.meta(&self.tags.lock().expect("not poisoned"));
        match store.write_index(current.index.clone(), meta).await {
            Ok(mapped) => {
                let entries = current.entries.clone();
                drop(current);
                let snapshot =
                    Snapshot::new(Arc::new(mapped), entries).expect("the same references");
                self.replace(snapshot);
            }
            Err(e) => {
                self.unsaved.store(true, Ordering::SeqCst);
                tracing::warn!(engine = %self.name, error = %e, "The library's index could not be written; trying again at the next refresh.");
            }
        }
    }
}

#[async_trait::async_trait]
impl Analyser for LocalEngine {
    fn references_as_of(&self) -> Option<u64> {
        self.current().entries.iter().map(|e| e.added_at).max()
    }

    async fn references_since(&self, since: u64) -> Result<Vec<Reference>, EngineError> {
        let Some(store) = &self.store else {
            return Ok(Vec::new());
        };
        let mut references = Vec::new();
        for entry in self
            .current()
            .indexed
            .iter()
            .filter(|e| e.added_at >= since)
        {
            // An entry removed since the snapshot was taken is no longer a reference.
            let Some(fingerprint) = store.fingerprint(&entry.id).await? else {
                continue;
            };
            references.push(Reference {
                id: entry.id.clone(),
                scene: entry.scene,
                label: entry.label.clone(),
                added_at: entry.added_at,
                fingerprint: Arc::new(fingerprint),
            });
        }
        Ok(references)
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
                context: None,
                ..Segment::default()
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
        let _updating = self.updating.lock().await;
        // A listing is cheap; reading entries is not (one GET each on S3): only changed ones are.
        let listing = store.tags().await?;
        let current = self.current();
        let changes = {
            let tags = self.tags.lock().expect("not poisoned");
            Changes::between(&current.entries, &tags, &listing)
        };
        let changed = !changes.is_empty();
        if changed {
            let before = current.entries.len();
            let snapshot = apply(&self.name, store, &current, &changes).await?;
            drop(current);
            tracing::info!(engine = %self.name, before, after = snapshot.entries.len(), "Reference library changed; reloaded.");
            self.replace(snapshot);
        }
        *self.tags.lock().expect("not poisoned") = listing;
        self.save_learned(store).await;
        Ok(changed)
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
        let _updating = self.updating.lock().await;
        store.put_fingerprint(&entry.id, &clip.fingerprint).await?;
        store.put(&entry).await?;
        let current = self.current();
        let mut entries: Vec<Entry> = current
            .entries
            .iter()
            .filter(|e| e.id != entry.id)
            .cloned()
            .collect();
        let (index, id, fingerprint) = (
            current.index.clone(),
            entry.id.clone(),
            clip.fingerprint.clone(),
        );
        let rebuilt = tokio::task::spawn_blocking(move || {
            index.rebuild(
                &|r| index.reference(r).0 != id,
                vec![(id.clone(), fingerprint)],
            )
        })
        .await
        .map_err(|e| EngineError::Failed {
            engine: self.name.clone(),
            message: e.to_string(),
        })?;
        drop(current);
        {
            // Written here, not listed yet: the next refresh takes the listing's tags as they are.
            let mut tags = self.tags.lock().expect("not poisoned");
            tags.insert(format!("{}.json", entry.id), String::new());
            tags.insert(format!("{}.fp", entry.id), String::new());
        }
        entries.push(entry);
        let snapshot =
            Snapshot::new(Arc::new(rebuilt), entries).expect("every reference has its entry");
        self.replace(snapshot);
        self.unsaved.store(true, Ordering::SeqCst);
        Ok(true)
    }
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

    fn landmarks(seed: u64) -> Fingerprint {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let landmarks = (0..3000u32)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                crate::fingerprint::Landmark {
                    hash: (state % (1 << 21)) as u32,
                    frame: i / 3,
                }
            })
            .collect();
        Fingerprint {
            landmarks,
            frames: 1000,
        }
    }

    #[tokio::test]
    async fn the_index_is_stored_mapped_and_kept_up_to_date() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = dir.path().join("lib");
        let location = location.to_str().expect("utf-8");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let s3 = Client::from_conf(config);
        let store = LibraryStore::open(location, &s3);
        for n in 1..=3u8 {
            store
                .put_fingerprint(&hex::encode([n; 32]), &landmarks(u64::from(n)))
                .await
                .expect("puts");
            store.put(&entry([n; 32], Scene::Porn)).await.expect("puts");
        }
        let found = |engine: &LocalEngine, n: u8| {
            engine
                .matches(&landmarks(u64::from(n)))
                .first()
                .map(|(e, s)| (e.id.clone(), s.score))
        };
        let engine = LocalEngine::load("local", location, &s3)
            .await
            .expect("loads");
        let index_file = dir.path().join("lib/index/library.idx");
        assert!(
            index_file.is_file(),
            "the index is written at the first load"
        );
        assert!(engine.index_is_mapped());
        assert_eq!(found(&engine, 2), Some((hex::encode([2u8; 32]), 100)));

        // Another process adds 4 and removes 1: a load maps the stored index and applies that.
        store
            .put_fingerprint(&hex::encode([4u8; 32]), &landmarks(4))
            .await
            .expect("puts");
        store.put(&entry([4; 32], Scene::Ads)).await.expect("puts");
        assert!(
            store
                .remove(&hex::encode([1u8; 32]))
                .await
                .expect("removes")
        );
        let written = std::fs::metadata(&index_file)
            .and_then(|m| m.modified())
            .expect("stat");
        let reloaded = LocalEngine::load("local", location, &s3)
            .await
            .expect("loads");
        assert_eq!(reloaded.len(), 3);
        assert_eq!(found(&reloaded, 4).map(|f| f.1), Some(100));
        assert_eq!(found(&reloaded, 1), None);
        assert!(reloaded.index_is_mapped());
        let rewritten = std::fs::metadata(&index_file)
            .and_then(|m| m.modified())
            .expect("stat");
        assert!(rewritten > written, "the index is written back up to date");
        // The running engine sees the same at its refresh.
        assert!(engine.refresh().await.expect("refreshes"));
        assert_eq!(found(&engine, 4).map(|f| f.1), Some(100));
        assert_eq!(found(&engine, 1), None);
        assert!(
            !engine.refresh().await.expect("refreshes"),
            "nothing changed since"
        );

        // Learning adds to memory at once and to the stored index at the next refresh.
        let mut learned = clip([5; 32]);
        learned.fingerprint = landmarks(5);
        assert!(
            engine
                .learn(&learned, Scene::Porn, "learned", "s3://b/k")
                .await
                .expect("learns")
        );
        assert_eq!(found(&engine, 5).map(|f| f.1), Some(100));
        assert!(!engine.index_is_mapped());
        assert!(
            !engine.refresh().await.expect("refreshes"),
            "its own files are not re-read"
        );
        assert!(engine.index_is_mapped());
        let after = LocalEngine::load("local", location, &s3)
            .await
            .expect("loads");
        assert_eq!(after.len(), 4);
        assert_eq!(found(&after, 5).map(|f| f.1), Some(100));

        // A damaged index is rebuilt from the entries.
        std::fs::write(&index_file, b"ESIX0001 damaged").expect("writes");
        let rebuilt = LocalEngine::load("local", location, &s3)
            .await
            .expect("loads");
        assert_eq!(rebuilt.len(), 4);
        assert_eq!(found(&rebuilt, 3).map(|f| f.1), Some(100));
        assert!(rebuilt.index_is_mapped());
        let refs = rebuilt.references_since(0).await.expect("reads");
        assert_eq!(refs.len(), 4);
        assert!(refs.iter().all(|r| r.fingerprint.landmarks.len() == 3000));
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
