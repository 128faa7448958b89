//! The reference library's storage: a directory or an S3 prefix, files per [`Entry`]
//! (`entries/<sha256>.json`, its fingerprint `entries/<sha256>.fp`, and a copy of the recording
//! `entries/<sha256>.audio` for reviewers to hear), read and written whole.

use std::path::PathBuf;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use super::super::EngineError;
use crate::fingerprint::Fingerprint;
use crate::model::Scene;
use crate::storage::S3Failure;

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

/// Where a library is kept.
#[derive(Debug, Clone)]
pub enum LibraryStore {
    Dir(PathBuf),
    S3 {
        client: Client,
        bucket: String,
        prefix: String,
    },
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

impl LibraryStore {
    /// A directory path, or `s3://bucket/prefix/`.
    pub fn open(location: &str, s3: &Client) -> LibraryStore {
        match location.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let mut prefix = prefix.to_owned();
                if !prefix.is_empty() && !prefix.ends_with('/') {
                    prefix.push('/');
                }
                LibraryStore::S3 {
                    client: s3.clone(),
                    bucket: bucket.to_owned(),
                    prefix,
                }
            }
            None => LibraryStore::Dir(PathBuf::from(location)),
        }
    }

    pub fn location(&self) -> String {
        match self {
            LibraryStore::Dir(dir) => dir.display().to_string(),
            LibraryStore::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
        }
    }

    fn io_error(&self, message: impl std::fmt::Display) -> LibraryError {
        LibraryError::Io {
            location: self.location(),
            message: message.to_string(),
        }
    }

    /// Every entry. A directory that does not exist yet is an empty library.
    ///
    /// # Errors
    /// The store cannot be listed or an entry cannot be read or parsed.
    pub async fn list(&self) -> Result<Vec<Entry>, LibraryError> {
        let mut entries = Vec::new();
        for (name, _) in self.listing().await? {
            if !name.ends_with(".json") {
                continue;
            }
            // An entry removed between the listing and the read is simply gone.
            if let Some((location, bytes)) = self.read(&name).await? {
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
        let mut signature: Vec<String> = self
            .listing()
            .await?
            .into_iter()
            .map(|(name, tag)| format!("{name} {tag}"))
            .collect();
        signature.sort();
        Ok(signature)
    }

    /// The files under `entries/`, by name, each with a tag that changes when the file does
    /// (size and modification time in a directory, the ETag on S3). Partial writes are skipped.
    async fn listing(&self) -> Result<Vec<(String, String)>, LibraryError> {
        let mut files = Vec::new();
        match self {
            LibraryStore::Dir(dir) => {
                let mut reader = match tokio::fs::read_dir(dir.join("entries")).await {
                    Ok(reader) => reader,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
                    Err(e) => return Err(self.io_error(e)),
                };
                while let Some(item) = reader.next_entry().await.map_err(|e| self.io_error(e))? {
                    let name = item.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    let meta = item.metadata().await.map_err(|e| self.io_error(e))?;
                    let modified = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos());
                    files.push((name, format!("{} {modified}", meta.len())));
                }
            }
            LibraryStore::S3 {
                client,
                bucket,
                prefix,
            } => {
                let entries_prefix = format!("{prefix}entries/");
                let mut pages = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(&entries_prefix)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| self.io_error(S3Failure::from_sdk(&e)))?;
                    for object in page.contents() {
                        let Some(name) = object.key().and_then(|k| k.strip_prefix(&entries_prefix))
                        else {
                            continue;
                        };
                        files.push((
                            name.to_owned(),
                            object.e_tag().unwrap_or_default().to_owned(),
                        ));
                    }
                }
            }
        }
        Ok(files)
    }

    /// Adds or replaces the entry with this id.
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn put(&self, entry: &Entry) -> Result<(), LibraryError> {
        let body = serde_json::to_vec_pretty(entry).expect("an entry always serialises");
        self.write(&format!("{}.json", entry.id), body, "application/json")
            .await
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
        self.write(
            &format!("{id}.fp"),
            fingerprint.to_bytes(),
            "application/octet-stream",
        )
        .await
    }

    /// Keeps a copy of entry `id`'s recording, so that a reviewer can hear what an upload
    /// matched.
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn put_recording(&self, id: &str, bytes: Vec<u8>) -> Result<(), LibraryError> {
        self.write(&format!("{id}.audio"), bytes, "application/octet-stream")
            .await
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
        Ok(self
            .read(&format!("{id}.audio"))
            .await?
            .map(|(_, bytes)| bytes))
    }

    /// The fingerprint of entry `id`, if one was stored.
    ///
    /// # Errors
    /// The store cannot be read, or the file is not a fingerprint.
    pub async fn fingerprint(&self, id: &str) -> Result<Option<Fingerprint>, LibraryError> {
        let Some((location, bytes)) = self.read(&format!("{id}.fp")).await? else {
            return Ok(None);
        };
        Fingerprint::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| LibraryError::BadEntry {
                location,
                message: e.to_string(),
            })
    }

    /// Writes `entries/<name>`: to a directory through a temporary file and a rename, so a
    /// reader never sees half a file; to S3 in one PUT.
    async fn write(
        &self,
        name: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), LibraryError> {
        match self {
            LibraryStore::Dir(dir) => {
                let entries_dir = dir.join("entries");
                tokio::fs::create_dir_all(&entries_dir)
                    .await
                    .map_err(|e| self.io_error(e))?;
                let partial = entries_dir.join(format!(".{name}.partial"));
                tokio::fs::write(&partial, &body)
                    .await
                    .map_err(|e| self.io_error(e))?;
                tokio::fs::rename(&partial, entries_dir.join(name))
                    .await
                    .map_err(|e| self.io_error(e))?;
            }
            LibraryStore::S3 {
                client,
                bucket,
                prefix,
            } => {
                client
                    .put_object()
                    .bucket(bucket)
                    .key(format!("{prefix}entries/{name}"))
                    .content_type(content_type)
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map_err(|e| self.io_error(S3Failure::from_sdk(&e)))?;
            }
        }
        Ok(())
    }

    /// Reads `entries/<name>` with its location for messages; None when it does not exist.
    async fn read(&self, name: &str) -> Result<Option<(String, Vec<u8>)>, LibraryError> {
        match self {
            LibraryStore::Dir(dir) => {
                let path = dir.join("entries").join(name);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Some((path.display().to_string(), bytes))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(self.io_error(e)),
                }
            }
            LibraryStore::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}entries/{name}");
                match client.get_object().bucket(bucket).key(&key).send().await {
                    Ok(out) => {
                        let bytes = out
                            .body
                            .collect()
                            .await
                            .map_err(|e| self.io_error(e))?
                            .to_vec();
                        Ok(Some((format!("s3://{bucket}/{key}"), bytes)))
                    }
                    Err(e) => {
                        let failure = S3Failure::from_sdk(&e);
                        if failure.is_not_found() {
                            Ok(None)
                        } else {
                            Err(self.io_error(failure))
                        }
                    }
                }
            }
        }
    }

    /// Removes the entry with this id; false when there was none.
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn remove(&self, id: &str) -> Result<bool, LibraryError> {
        match self {
            LibraryStore::Dir(dir) => {
                for extra in ["fp", "audio"] {
                    let path = dir.join("entries").join(format!("{id}.{extra}"));
                    if let Err(e) = tokio::fs::remove_file(&path).await
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        return Err(self.io_error(e));
                    }
                }
                let path = dir.join("entries").join(format!("{id}.json"));
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(self.io_error(e)),
                }
            }
            LibraryStore::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}entries/{id}.json");
                let exists = client.head_object().bucket(bucket).key(&key).send().await;
                if let Err(e) = exists {
                    let failure = S3Failure::from_sdk(&e);
                    return if failure.is_not_found() {
                        Ok(false)
                    } else {
                        Err(self.io_error(failure))
                    };
                }
                let extras = [
                    format!("{prefix}entries/{id}.fp"),
                    format!("{prefix}entries/{id}.audio"),
                ];
                for key in extras.into_iter().chain([key]) {
                    client
                        .delete_object()
                        .bucket(bucket)
                        .key(&key)
                        .send()
                        .await
                        .map_err(|e| self.io_error(S3Failure::from_sdk(&e)))?;
                }
                Ok(true)
            }
        }
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
