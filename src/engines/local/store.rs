//! The reference library's storage: a directory or an S3 prefix, files per [`Entry`]
//! (`entries/<sha256>.json`, its fingerprint `entries/<sha256>.fp`, and a copy of the recording
//! `entries/<sha256>.audio` for reviewers to hear), read and written whole; and the library's
//! index, `index/library.idx` ([`crate::fingerprint::Index::write`]), rewritten when the library
//! changes and mapped into memory where it is read (an S3 library's is copied to a local cache
//! file first).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use super::super::EngineError;
use super::super::folder::{Folder, FolderError};
use crate::fingerprint::{Fingerprint, Index};
use crate::model::Scene;

/// One reference recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Lowercase hex SHA-256 of the recording's bytes.
    pub id: String,
    pub scene: Scene,
    pub label: String,
    /// Where the recording came from (file name or s3:// URL), for people.
    pub source: String,
    pub bytes: u64,
    pub duration_secs: f64,
    /// Seconds since the Unix epoch.
    pub added_at: u64,
}

/// Where a library is kept: its `entries/` folder, in a directory or under an S3 prefix.
#[derive(Debug, Clone)]
pub struct LibraryStore {
    entries: Folder,
    index: Folder,
    location: String,
}

/// The index's file name in the library's `index/` folder.
const INDEX_FILE: &str = "library.idx";

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("library {location}: {message}")]
    Io { location: String, message: String },
    #[error("library entry {location} is not valid: {message}")]
    BadEntry { location: String, message: String },
}

impl From<LibraryError> for EngineError {
    fn from(error: LibraryError) -> Self {
        EngineError::Failed {
            engine: "local".to_owned(),
            message: error.to_string(),
        }
    }
}

impl From<FolderError> for LibraryError {
    fn from(error: FolderError) -> Self {
        LibraryError::Io {
            location: error.location,
            message: error.message,
        }
    }
}

impl LibraryStore {
    /// A directory path, or `s3://bucket/prefix/`.
    pub fn open(location: &str, s3: &Client) -> LibraryStore {
        LibraryStore {
            entries: Folder::open(location, "entries", s3),
            index: Folder::open(location, "index", s3),
            location: Folder::open(location, "", s3).location(),
        }
    }

    /// Every file of `entries/` with its version tag (see [`Folder::listing`]).
    ///
    /// # Errors
    /// The store cannot be listed.
    pub async fn tags(&self) -> Result<BTreeMap<String, String>, LibraryError> {
        Ok(self.entries.listing().await?.into_iter().collect())
    }

    /// Entry `id`, or None when it is gone.
    ///
    /// # Errors
    /// The store cannot be read or the entry is not valid.
    pub async fn entry(&self, id: &str) -> Result<Option<Entry>, LibraryError> {
        match self.entries.read(&format!("{id}.json")).await? {
            Some((location, bytes)) => parse_entry(&location, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Where the index is stored, for messages.
    fn index_location(&self) -> String {
        self.index.local_path(INDEX_FILE).map_or_else(
            || format!("{}{INDEX_FILE}", self.index.location()),
            |path| path.display().to_string(),
        )
    }

    /// Where this machine keeps the index it maps: in the library itself for a directory, in a
    /// cache file under the temporary directory for S3 (one per library location).
    fn index_path(&self) -> PathBuf {
        self.index.local_path(INDEX_FILE).unwrap_or_else(|| {
            use sha2::Digest;
            let digest = hex::encode(sha2::Sha256::digest(self.location.as_bytes()));
            std::env::temp_dir()
                .join("earshot-index")
                .join(format!("{}.idx", &digest[..16]))
        })
    }

    /// The stored index, mapped, with the metadata written beside it; None when there is none.
    ///
    /// # Errors
    /// The index cannot be read or is not a valid index (the caller rebuilds it).
    pub async fn read_index(&self) -> Result<Option<(Index, Vec<u8>)>, LibraryError> {
        let path = self.index_path();
        if self.index.local_path(INDEX_FILE).is_none()
            && !self.index.download(INDEX_FILE, &path).await?
        {
            return Ok(None);
        }
        let opened = tokio::task::spawn_blocking(move || {
            if !path.exists() {
                return Ok(None);
            }
            Index::open(&path).map(Some)
        })
        .await
        .map_err(|e| LibraryError::Io {
            location: self.location.clone(),
            message: e.to_string(),
        })?;
        opened.map_err(|e| LibraryError::BadEntry {
            location: self.index_location(),
            message: e.to_string(),
        })
    }

    /// Stores `index` with `meta` and returns it mapped from the written file (so that its
    /// tables are the page cache's, not the heap's).
    ///
    /// # Errors
    /// The index cannot be written.
    pub async fn write_index(
        &self,
        index: Arc<Index>,
        meta: Vec<u8>,
    ) -> Result<Index, LibraryError> {
        let path = self.index_path();
        let written = path.clone();
        let io = |message: String| LibraryError::Io {
            location: self.index_location(),
            message,
        };
        let mapped = tokio::task::spawn_blocking(move || {
            index.write(&written, &meta)?;
            Index::open(&written).map(|(index, _)| index)
        })
        .await
        .map_err(|e| io(e.to_string()))?
        .map_err(|e| io(e.to_string()))?;
        self.index.upload(INDEX_FILE, &path).await?;
        Ok(mapped)
    }

    pub fn location(&self) -> String {
        self.location.clone()
    }

    /// Every entry. A directory that does not exist yet is an empty library.
    ///
    /// # Errors
    /// The store cannot be listed or an entry cannot be read or parsed.
    pub async fn list(&self) -> Result<Vec<Entry>, LibraryError> {
        let mut entries = Vec::new();
        for (name, _) in self.entries.listing().await? {
            if !name.ends_with(".json") {
                continue;
            }
            // An entry removed between the listing and the read is simply gone.
            if let Some((location, bytes)) = self.entries.read(&name).await? {
                entries.push(parse_entry(&location, &bytes)?);
            }
        }
        entries.sort_by(|a, b| a.added_at.cmp(&b.added_at).then(a.id.cmp(&b.id)));
        Ok(entries)
    }

    /// Adds or replaces the entry with this id.
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn put(&self, entry: &Entry) -> Result<(), LibraryError> {
        let body = serde_json::to_vec_pretty(entry).expect("an entry always serialises");
        let name = format!("{}.json", entry.id);
        Ok(self.entries.write(&name, body, "application/json").await?)
    }

    /// Stores the fingerprint of entry `id`.
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn put_fingerprint(
        &self,
        id: &str,
        fingerprint: &Fingerprint,
    ) -> Result<(), LibraryError> {
        let name = format!("{id}.fp");
        let body = fingerprint.to_bytes();
        Ok(self
            .entries
            .write(&name, body, "application/octet-stream")
            .await?)
    }

    /// Keeps a copy of entry `id`'s recording, so that a reviewer can hear what an upload
    /// matched.
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn put_recording(&self, id: &str, bytes: Vec<u8>) -> Result<(), LibraryError> {
        let name = format!("{id}.audio");
        Ok(self
            .entries
            .write(&name, bytes, "application/octet-stream")
            .await?)
    }

    /// The recording of entry `id`, if a copy was kept (entries learned from blocked uploads
    /// keep none: their `source` names the object).
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn recording(&self, id: &str) -> Result<Option<Vec<u8>>, LibraryError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let read = self.entries.read(&format!("{id}.audio")).await?;
        Ok(read.map(|(_, bytes)| bytes))
    }

    /// The fingerprint of entry `id`, if one was stored.
    ///
    /// # Errors
    /// The store cannot be read, or the file is not a fingerprint.
    pub async fn fingerprint(&self, id: &str) -> Result<Option<Fingerprint>, LibraryError> {
        let Some((location, bytes)) = self.entries.read(&format!("{id}.fp")).await? else {
            return Ok(None);
        };
        Fingerprint::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| LibraryError::BadEntry {
                location,
                message: e.to_string(),
            })
    }

    /// Removes the entry with this id; false when there was none.
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn remove(&self, id: &str) -> Result<bool, LibraryError> {
        let entry = format!("{id}.json");
        if !self.entries.exists(&entry).await? {
            return Ok(false);
        }
        for name in [format!("{id}.fp"), format!("{id}.audio"), entry] {
            self.entries.delete(&name).await?;
        }
        Ok(true)
    }
}

fn parse_entry(location: &str, bytes: &[u8]) -> Result<Entry, LibraryError> {
    let entry: Entry = serde_json::from_slice(bytes).map_err(|e| LibraryError::BadEntry {
        location: location.to_owned(),
        message: e.to_string(),
    })?;
    let valid_id = entry.id.len() == 64 && entry.id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid_id {
        return Err(LibraryError::BadEntry {
            location: location.to_owned(),
            message: format!("id {:?} is not a SHA-256 in hex", entry.id),
        });
    }
    Ok(entry)
}
