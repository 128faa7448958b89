//! One loaded state of the library ([`Snapshot`]), what changed since it was read
//! ([`Changes`]), and applying those changes to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Entry, LibraryError, LibraryStore};
use crate::fingerprint::Index;

/// One loaded state of the library: replaced whole when the library changes. It holds the index
/// (mapped from the library's index file once written) and the entries, not the fingerprints:
/// those are in the index, and in the store for a retro-hunt.
pub(super) struct Snapshot {
    pub(super) by_sha256: HashMap<[u8; 32], Entry>,
    /// Every entry, in the order of [`LibraryStore::list`].
    pub(super) entries: Vec<Entry>,
    /// Entries in index order.
    pub(super) indexed: Vec<Entry>,
    pub(super) index: Arc<Index>,
}

/// What is written beside the index: the entries, and the listing tags of the files they were
/// read from, so that a reader knows which entries changed since without reading them.
#[derive(Serialize, Deserialize)]
pub(super) struct IndexMeta {
    pub(super) entries: Vec<Entry>,
    pub(super) tags: BTreeMap<String, String>,
}

impl Snapshot {
    /// `entries` must hold an entry for every reference of `index`.
    pub(super) fn new(index: Arc<Index>, mut entries: Vec<Entry>) -> Result<Snapshot, String> {
        entries.sort_by(|a, b| a.added_at.cmp(&b.added_at).then(a.id.cmp(&b.id)));
        let mut by_sha256 = HashMap::new();
        let mut by_id: HashMap<&str, &Entry> = HashMap::new();
        for entry in &entries {
            let mut sha = [0u8; 32];
            if hex::decode_to_slice(&entry.id, &mut sha).is_ok() {
                by_sha256.insert(sha, entry.clone());
            }
            by_id.insert(&entry.id, entry);
        }
        let indexed = (0..index.len())
            .map(|r| {
                let id = index.reference(r).0;
                by_id
                    .get(id)
                    .map(|e| (*e).clone())
                    .ok_or_else(|| format!("reference {id} has no entry"))
            })
            .collect::<Result<Vec<Entry>, String>>()?;
        Ok(Snapshot {
            by_sha256,
            entries,
            indexed,
            index,
        })
    }

    pub(super) fn empty() -> Snapshot {
        Snapshot::new(Arc::new(Index::build(Vec::new())), Vec::new()).expect("empty is consistent")
    }

    pub(super) fn meta(&self, tags: &BTreeMap<String, String>) -> Vec<u8> {
        serde_json::to_vec(&IndexMeta {
            entries: self.entries.clone(),
            tags: tags.clone(),
        })
        .expect("entries serialise")
    }
}
/// How the library's listing differs from what a snapshot was read from.
pub(super) struct Changes {
    /// Entries to read again (new or changed), and ids to drop (changed or gone).
    pub(super) read: Vec<String>,
    pub(super) drop: BTreeSet<String>,
}

impl Changes {
    pub(super) fn between(
        entries: &[Entry],
        tags: &BTreeMap<String, String>,
        listing: &BTreeMap<String, String>,
    ) -> Changes {
        // A file is unchanged when its tag is, or when this engine wrote it and has not listed
        // it since (tag "").
        let same = |file: &str| match (tags.get(file), listing.get(file)) {
            (Some(old), Some(new)) => old.is_empty() || old == new,
            (None, None) => true,
            _ => false,
        };
        let known: BTreeSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let listed: BTreeSet<&str> = listing
            .keys()
            .filter_map(|name| name.strip_suffix(".json"))
            .collect();
        let read: Vec<String> = listed
            .iter()
            .filter(|id| {
                !known.contains(*id) || !same(&format!("{id}.json")) || !same(&format!("{id}.fp"))
            })
            .map(|id| (*id).to_owned())
            .collect();
        let mut drop: BTreeSet<String> = known
            .iter()
            .filter(|id| !listed.contains(*id))
            .map(|id| (*id).to_owned())
            .collect();
        drop.extend(read.iter().cloned());
        Changes { read, drop }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.read.is_empty() && self.drop.is_empty()
    }
}
/// A snapshot with `changes` applied: the changed and new entries read (with their fingerprints),
/// the dropped ones left out of a rebuilt index.
pub(super) async fn apply(
    name: &str,
    store: &LibraryStore,
    base: &Snapshot,
    changes: &Changes,
) -> Result<Snapshot, LibraryError> {
    let mut entries: Vec<Entry> = base
        .entries
        .iter()
        .filter(|e| !changes.drop.contains(&e.id))
        .cloned()
        .collect();
    let mut added = Vec::new();
    for id in &changes.read {
        // An entry removed between the listing and the read is simply gone.
        let Some(entry) = store.entry(id).await? else {
            continue;
        };
        match store.fingerprint(id).await? {
            Some(fingerprint) => added.push((entry.id.clone(), fingerprint)),
            None => {
                tracing::warn!(engine = name, id = %entry.id, "Library entry has no fingerprint; it matches exact copies only. Add it again to fingerprint it.");
            }
        }
        entries.push(entry);
    }
    let base_index = base.index.clone();
    let drop = changes.drop.clone();
    let index = tokio::task::spawn_blocking(move || {
        base_index.rebuild(&|r| !drop.contains(base_index.reference(r).0), added)
    })
    .await
    .map_err(|e| LibraryError::Io {
        location: store.location(),
        message: e.to_string(),
    })?;
    Snapshot::new(Arc::new(index), entries).map_err(|message| LibraryError::BadEntry {
        location: store.location(),
        message,
    })
}
