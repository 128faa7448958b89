//! earshot's own small objects in a bucket (state records, library and dictionary files, prints,
//! leases), one set of helpers for all of them: read, write, create unless present, check,
//! delete and list. A missing object is an answer (`None`, `false`), not an error; every error
//! names the object.

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use super::S3Failure;

/// An object that could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ObjectError {
    #[error("s3://{bucket}/{key}: {failure}")]
    S3 {
        bucket: String,
        key: String,
        failure: S3Failure,
    },
    #[error("s3://{bucket}/{key}: reading it failed mid-stream: {message}")]
    Stream {
        bucket: String,
        key: String,
        message: String,
    },
}

impl ObjectError {
    fn s3(bucket: &str, key: &str, failure: S3Failure) -> ObjectError {
        ObjectError::S3 {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            failure,
        }
    }

    fn stream(bucket: &str, key: &str, message: impl std::fmt::Display) -> ObjectError {
        ObjectError::Stream {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message: message.to_string(),
        }
    }

    /// True when trying again later may succeed (network, throttling, 5xx, a cut-off body).
    pub fn is_transient(&self) -> bool {
        match self {
            ObjectError::S3 { failure, .. } => failure.is_transient(),
            ObjectError::Stream { .. } => true,
        }
    }

    /// The S3 failure, when S3 answered (or could not be reached).
    pub fn failure(&self) -> Option<&S3Failure> {
        match self {
            ObjectError::S3 { failure, .. } => Some(failure),
            ObjectError::Stream { .. } => None,
        }
    }
}

/// One listed object.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub etag: String,
}

/// The object's body as a stream, or None when it does not exist.
///
/// # Errors
/// S3 failed (not a 404).
pub async fn open(s3: &Client, bucket: &str, key: &str) -> Result<Option<ByteStream>, ObjectError> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(Some(out.body)),
        Err(e) => {
            let failure = S3Failure::from_sdk(&e);
            if failure.is_not_found() {
                Ok(None)
            } else {
                Err(ObjectError::s3(bucket, key, failure))
            }
        }
    }
}

/// The object's bytes, or None when it does not exist.
///
/// # Errors
/// S3 failed (not a 404) or the body broke off.
pub async fn get(s3: &Client, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, ObjectError> {
    let Some(body) = open(s3, bucket, key).await? else {
        return Ok(None);
    };
    let bytes = body
        .collect()
        .await
        .map_err(|e| ObjectError::stream(bucket, key, e))?;
    Ok(Some(bytes.into_bytes().to_vec()))
}

/// Writes the object whole (one PUT), replacing any.
///
/// # Errors
/// S3 failed.
pub async fn put(
    s3: &Client,
    bucket: &str,
    key: &str,
    body: ByteStream,
    content_type: Option<&str>,
) -> Result<(), ObjectError> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .set_content_type(content_type.map(str::to_owned))
        .body(body)
        .send()
        .await
        .map_err(|e| ObjectError::s3(bucket, key, S3Failure::from_sdk(&e)))?;
    Ok(())
}

/// Creates the object unless one exists at `key` (`If-None-Match: *`): true when this call
/// created it, false when another writer had.
///
/// # Errors
/// S3 failed (a 409 for a concurrent conditional write included: the caller decides).
pub async fn create(
    s3: &Client,
    bucket: &str,
    key: &str,
    body: ByteStream,
    content_type: Option<&str>,
) -> Result<bool, ObjectError> {
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .set_content_type(content_type.map(str::to_owned))
        .if_none_match("*")
        .body(body)
        .send()
        .await;
    match put {
        Ok(_) => Ok(true),
        Err(e) => {
            let failure = S3Failure::from_sdk(&e);
            if failure.is_precondition_failed() {
                Ok(false)
            } else {
                Err(ObjectError::s3(bucket, key, failure))
            }
        }
    }
}

/// Whether the object exists (a HEAD: a GET racing the object's deletion may read a cut-off
/// body).
///
/// # Errors
/// S3 failed (not a 404).
pub async fn exists(s3: &Client, bucket: &str, key: &str) -> Result<bool, ObjectError> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let failure = S3Failure::from_sdk(&e);
            if failure.is_not_found() {
                Ok(false)
            } else {
                Err(ObjectError::s3(bucket, key, failure))
            }
        }
    }
}

/// Deletes the object; deleting what is not there succeeds.
///
/// # Errors
/// S3 failed.
pub async fn delete(s3: &Client, bucket: &str, key: &str) -> Result<(), ObjectError> {
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| ObjectError::s3(bucket, key, S3Failure::from_sdk(&e)))?;
    Ok(())
}

/// Every object under `prefix` with its ETag, in key order (a listing, no reads).
///
/// # Errors
/// S3 failed.
pub async fn list(s3: &Client, bucket: &str, prefix: &str) -> Result<Vec<Listed>, ObjectError> {
    let mut listed = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ObjectError::s3(bucket, prefix, S3Failure::from_sdk(&e)))?;
        listed.extend(page.contents().iter().filter_map(|o| {
            Some(Listed {
                key: o.key()?.to_owned(),
                etag: o.e_tag().unwrap_or_default().to_owned(),
            })
        }));
    }
    Ok(listed)
}

/// A body read from a local file, streamed.
///
/// # Errors
/// The file cannot be opened.
pub async fn file_body(path: &Path) -> Result<ByteStream, std::io::Error> {
    ByteStream::from_path(path)
        .await
        .map_err(std::io::Error::other)
}

/// The folders directly under `prefix` (the common prefixes of a listing with delimiter `/`),
/// each ending in `/`.
///
/// # Errors
/// S3 failed.
pub async fn folders(s3: &Client, bucket: &str, prefix: &str) -> Result<Vec<String>, ObjectError> {
    let mut found = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ObjectError::s3(bucket, prefix, S3Failure::from_sdk(&e)))?;
        found.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
    }
    Ok(found)
}
