//! The reference library's storage: a directory or an S3 prefix, files per [`Entry`]
//! (`entries/<sha256>.json`, its fingerprint `entries/<sha256>.fp`, and a copy of the recording
//! `entries/<sha256>.audio` for reviewers to hear), read and written whole.

use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use super::super::EngineError;
use super::super::folder::{Folder, FolderError};
use crate::fingerprint::Fingerprint;
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
    location: String,
}

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
            location: Folder::open(location, "", s3).location(),
        }
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

    /// A cheap summary of the library's state from a listing alone: every file's name with its
    /// version tag. Equal signatures mean nothing changed.
    ///
    /// # Errors
    /// The store cannot be listed.
    pub async fn signature(&self) -> Result<Vec<String>, LibraryError> {
        Ok(self.entries.signature().await?)
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
