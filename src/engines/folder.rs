//! A folder of small files in a directory or under an S3 prefix, read and written whole: where the
//! local engine's library entries and the speech engine's dictionaries are kept.

use std::path::PathBuf;

use aws_sdk_s3::Client;

use crate::storage::object;

/// A directory, or a prefix (ending in `/`, or empty) in a bucket.
#[derive(Debug, Clone)]
pub enum Folder {
    Dir(PathBuf),
    S3 {
        client: Client,
        bucket: String,
        prefix: String,
    },
}

/// A folder that cannot be read or written, with where and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{location}: {message}")]
pub struct FolderError {
    pub location: String,
    pub message: String,
}

impl Folder {
    /// `location` is a directory path or `s3://bucket/prefix/`; `sub` a folder inside it (or "").
    pub fn open(location: &str, sub: &str, s3: &Client) -> Folder {
        match location.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let prefix: String = [prefix, sub]
                    .iter()
                    .map(|part| part.trim_matches('/'))
                    .filter(|part| !part.is_empty())
                    .map(|part| format!("{part}/"))
                    .collect();
                Folder::S3 {
                    client: s3.clone(),
                    bucket: bucket.to_owned(),
                    prefix,
                }
            }
            None if sub.is_empty() => Folder::Dir(PathBuf::from(location)),
            None => Folder::Dir(PathBuf::from(location).join(sub)),
        }
    }

    pub fn location(&self) -> String {
        match self {
            Folder::Dir(dir) => dir.display().to_string(),
            Folder::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> FolderError {
        FolderError {
            location: self.location(),
            message: message.to_string(),
        }
    }

    /// The files, by name, each with a tag that changes when the file does (size and
    /// modification time in a directory, the ETag on S3). Partial writes and hidden files are
    /// skipped; a directory that does not exist yet is empty.
    ///
    /// # Errors
    /// The folder cannot be listed.
    pub async fn listing(&self) -> Result<Vec<(String, String)>, FolderError> {
        let mut files = Vec::new();
        match self {
            Folder::Dir(dir) => {
                // One blocking task for the whole directory: thousands of entries each awaited
                // on the blocking pool would take a second.
                let dir = dir.clone();
                let listed = tokio::task::spawn_blocking(move || {
                    let reader = match std::fs::read_dir(&dir) {
                        Ok(reader) => reader,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            return Ok(Vec::new());
                        }
                        Err(e) => return Err(e),
                    };
                    let mut files = Vec::new();
                    for item in reader {
                        let item = item?;
                        let name = item.file_name().to_string_lossy().into_owned();
                        if name.starts_with('.') {
                            continue;
                        }
                        let meta = item.metadata()?;
                        let modified = meta
                            .modified()
                            .ok()
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map_or(0, |d| d.as_nanos());
                        files.push((name, format!("{} {modified}", meta.len())));
                    }
                    Ok(files)
                })
                .await
                .map_err(|e| self.error(e))?;
                files = listed.map_err(|e| self.error(e))?;
            }
            Folder::S3 {
                client,
                bucket,
                prefix,
            } => {
                let listed = object::list(client, bucket, prefix)
                    .await
                    .map_err(|e| self.error(e))?;
                for listed in listed {
                    let Some(name) = listed.key.strip_prefix(prefix.as_str()) else {
                        continue;
                    };
                    if !name.contains('/') {
                        files.push((name.to_owned(), listed.etag));
                    }
                }
            }
        }
        Ok(files)
    }

    /// A cheap summary of the folder's state from a listing alone: every file's name with its
    /// tag. Equal signatures mean nothing changed.
    ///
    /// # Errors
    /// The folder cannot be listed.
    pub async fn signature(&self) -> Result<Vec<String>, FolderError> {
        let mut signature: Vec<String> = self
            .listing()
            .await?
            .into_iter()
            .map(|(name, tag)| format!("{name} {tag}"))
            .collect();
        signature.sort();
        Ok(signature)
    }

    /// Writes `name`: to a directory through a temporary file and a rename, so a reader never
    /// sees half a file; to S3 in one PUT.
    ///
    /// # Errors
    /// The folder cannot be written.
    pub async fn write(
        &self,
        name: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), FolderError> {
        match self {
            Folder::Dir(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| self.error(e))?;
                let partial = dir.join(format!(".{name}.partial"));
                tokio::fs::write(&partial, &body)
                    .await
                    .map_err(|e| self.error(e))?;
                tokio::fs::rename(&partial, dir.join(name))
                    .await
                    .map_err(|e| self.error(e))?;
            }
            Folder::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}{name}");
                object::put(client, bucket, &key, body.into(), Some(content_type))
                    .await
                    .map_err(|e| self.error(e))?;
            }
        }
        Ok(())
    }

    /// Reads `name` with its location for messages; None when it does not exist.
    ///
    /// # Errors
    /// The folder cannot be read.
    pub async fn read(&self, name: &str) -> Result<Option<(String, Vec<u8>)>, FolderError> {
        match self {
            Folder::Dir(dir) => {
                let path = dir.join(name);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Some((path.display().to_string(), bytes))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(self.error(e)),
                }
            }
            Folder::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}{name}");
                let bytes = object::get(client, bucket, &key)
                    .await
                    .map_err(|e| self.error(e))?;
                Ok(bytes.map(|bytes| (format!("s3://{bucket}/{key}"), bytes)))
            }
        }
    }

    /// Where `name` is on this machine, for a directory folder; None for S3.
    pub fn local_path(&self, name: &str) -> Option<PathBuf> {
        match self {
            Folder::Dir(dir) => Some(dir.join(name)),
            Folder::S3 { .. } => None,
        }
    }

    /// Copies `name` of an S3 folder to the local file `to`, streamed (through a temporary file
    /// beside it and a rename); false when it does not exist. A directory folder's files are
    /// used where they are ([`Folder::local_path`]): false.
    ///
    /// # Errors
    /// The folder cannot be read or `to` cannot be written.
    pub async fn download(&self, name: &str, to: &std::path::Path) -> Result<bool, FolderError> {
        use tokio::io::AsyncWriteExt;
        let Folder::S3 {
            client,
            bucket,
            prefix,
        } = self
        else {
            return Ok(false);
        };
        let key = format!("{prefix}{name}");
        let Some(mut body) = object::open(client, bucket, &key)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(false);
        };
        let partial = to.with_extension(format!("{}.partial", crate::fingerprint::unique_suffix()));
        if let Some(dir) = to.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| self.error(e))?;
        }
        let copied = async {
            let mut file = tokio::fs::File::create(&partial).await?;
            while let Some(chunk) = body.try_next().await.map_err(std::io::Error::other)? {
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            tokio::fs::rename(&partial, to).await
        }
        .await;
        if let Err(e) = copied {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(self.error(format!("copying {key} to {}: {e}", to.display())));
        }
        Ok(true)
    }

    /// Writes the local file `from` as `name`: copied into a directory folder (through a
    /// temporary file and a rename), streamed to S3 in one PUT.
    ///
    /// # Errors
    /// `from` cannot be read or the folder cannot be written.
    pub async fn upload(&self, name: &str, from: &std::path::Path) -> Result<(), FolderError> {
        match self {
            Folder::Dir(dir) => {
                let target = dir.join(name);
                if target == from {
                    return Ok(());
                }
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| self.error(e))?;
                let partial = dir.join(format!(".{name}.partial"));
                tokio::fs::copy(from, &partial)
                    .await
                    .map_err(|e| self.error(e))?;
                tokio::fs::rename(&partial, target)
                    .await
                    .map_err(|e| self.error(e))
            }
            Folder::S3 {
                client,
                bucket,
                prefix,
            } => {
                let body = object::file_body(from).await.map_err(|e| self.error(e))?;
                let key = format!("{prefix}{name}");
                object::put(client, bucket, &key, body, Some("application/octet-stream"))
                    .await
                    .map_err(|e| self.error(e))
            }
        }
    }

    /// Whether `name` exists.
    ///
    /// # Errors
    /// The folder cannot be read.
    pub async fn exists(&self, name: &str) -> Result<bool, FolderError> {
        match self {
            Folder::Dir(dir) => match tokio::fs::metadata(dir.join(name)).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(self.error(e)),
            },
            Folder::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}{name}");
                object::exists(client, bucket, &key)
                    .await
                    .map_err(|e| self.error(e))
            }
        }
    }

    /// Deletes `name`; deleting what is not there succeeds.
    ///
    /// # Errors
    /// The folder cannot be written.
    pub async fn delete(&self, name: &str) -> Result<(), FolderError> {
        match self {
            Folder::Dir(dir) => match tokio::fs::remove_file(dir.join(name)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(self.error(e)),
            },
            Folder::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}{name}");
                object::delete(client, bucket, &key)
                    .await
                    .map_err(|e| self.error(e))
            }
        }
    }
}
