//! Fetch: HEAD the object (the size cap applies before any byte is downloaded), then stream it,
//! pinned to the event's version or ETag, into a spool file while hashing it. Nothing larger than
//! one network chunk is held in memory.

use std::path::Path;

use aws_sdk_s3::Client;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use crate::job::{Job, unquote};
use crate::storage::S3Failure;

/// What HEAD said about the object.
#[derive(Debug, Clone)]
pub struct Head {
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    pub version_id: Option<String>,
    pub content_type: Option<String>,
}

/// A downloaded object: the spool file (deleted on drop), its size and SHA-256.
#[derive(Debug)]
pub struct Spooled {
    pub file: NamedTempFile,
    pub size: u64,
    pub sha256: [u8; 32],
    pub head: Head,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("object s3://{bucket}/{key} does not exist (deleted before it could be fetched)")]
    Gone { bucket: String, key: String },
    #[error(
        "bucket {bucket} does not exist or cannot be reached (s3://{bucket}/{key}); the event is kept for a retry"
    )]
    NoBucket { bucket: String, key: String },
    #[error(
        "object s3://{bucket}/{key} changed since its event (ETag or version no longer matches)"
    )]
    Changed { bucket: String, key: String },
    #[error("object s3://{bucket}/{key} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        bucket: String,
        key: String,
        size: u64,
        limit: u64,
    },
    #[error("S3 refused or failed on s3://{bucket}/{key}: {failure}")]
    S3 {
        bucket: String,
        key: String,
        failure: S3Failure,
    },
    #[error("reading s3://{bucket}/{key} failed mid-stream: {message}")]
    Stream {
        bucket: String,
        key: String,
        message: String,
    },
    #[error("writing the spool file failed: {0}")]
    Spool(#[from] std::io::Error),
}

impl FetchError {
    /// True when trying again later may succeed (network, throttling, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::S3 { failure, .. } => failure.is_transient(),
            FetchError::Stream { .. } | FetchError::Spool(_) | FetchError::NoBucket { .. } => true,
            FetchError::Gone { .. } | FetchError::Changed { .. } | FetchError::TooLarge { .. } => {
                false
            }
        }
    }
}

/// HEADs the object, pinned to the job's version (or ETag when unversioned).
///
/// # Errors
/// Gone (404), Changed (412), or an S3 failure.
pub async fn head(s3: &Client, job: &Job) -> Result<Head, FetchError> {
    let request = s3
        .head_object()
        .bucket(&job.bucket)
        .key(&job.key)
        .set_version_id(job.version_id.clone())
        .set_if_match(pinned_etag(job));
    let out = match request.send().await {
        Ok(out) => out,
        Err(e) => {
            let error = classify(job, S3Failure::from_sdk(&e));
            // HEAD has no body, so a missing bucket looks like a missing key: ask. A bucket that
            // is gone is a deployment problem, not an upload to judge as deleted.
            if matches!(error, FetchError::Gone { .. })
                && let Err(e) = s3.head_bucket().bucket(&job.bucket).send().await
                && S3Failure::from_sdk(&e).is_not_found()
            {
                return Err(FetchError::NoBucket {
                    bucket: job.bucket.clone(),
                    key: job.key.clone(),
                });
            }
            return Err(error);
        }
    };
    Ok(Head::from_headers(
        out.content_length(),
        out.e_tag(),
        out.version_id(),
        out.content_type(),
    ))
}

/// The `If-Match` that pins an unversioned job to the upload its event named.
fn pinned_etag(job: &Job) -> Option<String> {
    job.version_id
        .is_none()
        .then(|| job.etag.as_ref().map(|e| format!("\"{e}\"")))
        .flatten()
}

impl Head {
    /// From a HEAD's or a GET's response headers.
    fn from_headers(
        length: Option<i64>,
        etag: Option<&str>,
        version_id: Option<&str>,
        content_type: Option<&str>,
    ) -> Head {
        Head {
            size: length.unwrap_or(0).max(0) as u64,
            etag: etag.map(unquote).unwrap_or_default(),
            version_id: version_id.map(str::to_owned).filter(|v| v != "null"),
            content_type: content_type.map(str::to_owned),
        }
    }
}

/// Downloads the object HEAD described into a spool file in `dir`, hashing it on the way.
///
/// # Errors
/// Gone, Changed, TooLarge (if it grew past the cap), S3, stream or spool failures.
pub async fn download(
    s3: &Client,
    job: &Job,
    head: Head,
    max_bytes: u64,
    dir: &Path,
) -> Result<Spooled, FetchError> {
    let out = s3
        .get_object()
        .bucket(&job.bucket)
        .key(&job.key)
        .set_version_id(head.version_id.clone())
        .if_match(format!("\"{}\"", head.etag))
        .send()
        .await
        .map_err(|e| classify(job, S3Failure::from_sdk(&e)))?;
    spool(job, head, out.body, max_bytes, dir).await
}

/// Downloads the job's object version (its ETag must still match when the job has no version)
/// into a spool file in `dir`, hashing it on the way: one GET, whose response headers say what a
/// HEAD would have (size, ETag, version, type). An object over `max_bytes` is refused from its
/// `Content-Length` before its body is read.
///
/// # Errors
/// Gone, changed, too large, or S3 failed (see [`FetchError`]).
pub async fn get(
    s3: &Client,
    job: &Job,
    max_bytes: u64,
    dir: &Path,
) -> Result<Spooled, FetchError> {
    let request = s3
        .get_object()
        .bucket(&job.bucket)
        .key(&job.key)
        .set_version_id(job.version_id.clone())
        .set_if_match(pinned_etag(job));
    let out = match request.send().await {
        Ok(out) => out,
        Err(e) => {
            let failure = S3Failure::from_sdk(&e);
            // A GET's error body names a missing bucket, unlike a HEAD's.
            if failure.code.as_deref() == Some("NoSuchBucket") {
                return Err(FetchError::NoBucket {
                    bucket: job.bucket.clone(),
                    key: job.key.clone(),
                });
            }
            return Err(classify(job, failure));
        }
    };
    let head = Head::from_headers(
        out.content_length(),
        out.e_tag(),
        out.version_id(),
        out.content_type(),
    );
    if head.size > max_bytes {
        return Err(FetchError::TooLarge {
            bucket: job.bucket.clone(),
            key: job.key.clone(),
            size: head.size,
            limit: max_bytes,
        });
    }
    spool(job, head, out.body, max_bytes, dir).await
}

async fn spool(
    job: &Job,
    head: Head,
    mut body: aws_sdk_s3::primitives::ByteStream,
    max_bytes: u64,
    dir: &Path,
) -> Result<Spooled, FetchError> {
    let file = NamedTempFile::new_in(dir)?;
    let mut writer = tokio::io::BufWriter::new(tokio::fs::File::from_std(file.reopen()?));
    let mut hash = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = body.try_next().await.map_err(|e| FetchError::Stream {
        bucket: job.bucket.clone(),
        key: job.key.clone(),
        message: e.to_string(),
    })? {
        size += chunk.len() as u64;
        if size > max_bytes {
            return Err(FetchError::TooLarge {
                bucket: job.bucket.clone(),
                key: job.key.clone(),
                size,
                limit: max_bytes,
            });
        }
        hash.update(&chunk);
        writer.write_all(&chunk).await?;
    }
    writer.flush().await?;
    if size != head.size {
        return Err(FetchError::Stream {
            bucket: job.bucket.clone(),
            key: job.key.clone(),
            message: format!("received {size} bytes of {}", head.size),
        });
    }
    Ok(Spooled {
        file,
        size,
        sha256: hash.finalize().into(),
        head,
    })
}

fn classify(job: &Job, failure: S3Failure) -> FetchError {
    let (bucket, key) = (job.bucket.clone(), job.key.clone());
    if failure.is_not_found() {
        FetchError::Gone { bucket, key }
    } else if failure.is_precondition_failed() {
        FetchError::Changed { bucket, key }
    } else {
        FetchError::S3 {
            bucket,
            key,
            failure,
        }
    }
}
