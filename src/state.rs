//! What earshot remembers, kept in the moderated bucket itself under `audit_freeze_backup/earshot/`
//! (never moderated, see [`crate::rules::BACKUP_ROOT`]), so that every daemon on a queue, a Lambda
//! invocation and a later `earshot` run all see the same state:
//!
//! - `jobs/<trace_id>.json`: a finished job (its callback body and how delivery ended). A second
//!   event for the same object version finds it and does nothing: no second block, no second
//!   callback.
//! - `dead-letters/<trace_id>.json`: a callback that could not be delivered, with the exact body
//!   and signature, for `earshot callbacks replay s3://BUCKET`.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use crate::callback::{Body, Request};
use crate::storage::S3Failure;

pub const STATE_PREFIX: &str = "audit_freeze_backup/earshot/";
pub const JOBS_PREFIX: &str = "audit_freeze_backup/earshot/jobs/";
pub const DEAD_LETTER_PREFIX: &str = "audit_freeze_backup/earshot/dead-letters/";

/// A finished job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub trace_id: String,
    pub finished_at: u64,
    /// `delivered`, `dead-lettered`, or `no-callback` (the rule has none).
    pub callback: String,
    pub body: Body,
}

/// An undelivered callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub trace_id: String,
    pub failed_at: u64,
    pub attempts: u32,
    pub error: String,
    pub request: Request,
}

#[derive(Debug, thiserror::Error)]
#[error("state s3://{bucket}/{key}: {failure}")]
pub struct StateError {
    pub bucket: String,
    pub key: String,
    pub failure: String,
}

pub(crate) fn error(bucket: &str, key: &str, failure: impl std::fmt::Display) -> StateError {
    StateError {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        failure: failure.to_string(),
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The record of a finished job, if there is one.
///
/// # Errors
/// S3 failed (not a 404).
pub async fn finished_job(
    s3: &Client,
    bucket: &str,
    trace_id: &str,
) -> Result<Option<JobRecord>, StateError> {
    let key = format!("{JOBS_PREFIX}{trace_id}.json");
    get_json(s3, bucket, &key).await
}

/// Records a finished job.
///
/// # Errors
/// S3 failed.
pub async fn record_job(s3: &Client, bucket: &str, record: &JobRecord) -> Result<(), StateError> {
    let key = format!("{JOBS_PREFIX}{}.json", record.trace_id);
    put_json(s3, bucket, &key, record).await
}

/// Keeps an undelivered callback for replay.
///
/// # Errors
/// S3 failed.
pub async fn dead_letter(
    s3: &Client,
    bucket: &str,
    letter: &DeadLetter,
) -> Result<String, StateError> {
    let key = format!("{DEAD_LETTER_PREFIX}{}.json", letter.trace_id);
    put_json(s3, bucket, &key, letter).await?;
    Ok(key)
}

/// Every dead letter in the bucket, with its key.
///
/// # Errors
/// S3 failed or a letter is not valid JSON.
pub async fn dead_letters(
    s3: &Client,
    bucket: &str,
) -> Result<Vec<(String, DeadLetter)>, StateError> {
    let mut letters = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(DEAD_LETTER_PREFIX)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error(bucket, DEAD_LETTER_PREFIX, S3Failure::from_sdk(&e)))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            if let Some(letter) = get_json(s3, bucket, key).await? {
                letters.push((key.to_owned(), letter));
            }
        }
    }
    Ok(letters)
}

/// Whether a state object exists (HEAD: a GET racing the object's deletion may read a cut-off
/// body).
///
/// # Errors
/// S3 failed.
pub(crate) async fn exists(s3: &Client, bucket: &str, key: &str) -> Result<bool, StateError> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let failure = S3Failure::from_sdk(&e);
            if failure.is_not_found() {
                Ok(false)
            } else {
                Err(error(bucket, key, failure))
            }
        }
    }
}

/// Deletes one state object.
///
/// # Errors
/// S3 failed.
pub async fn delete(s3: &Client, bucket: &str, key: &str) -> Result<(), StateError> {
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| error(bucket, key, S3Failure::from_sdk(&e)))?;
    Ok(())
}

pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    s3: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<T>, StateError> {
    let out = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(e) => {
            let failure = S3Failure::from_sdk(&e);
            return if failure.is_not_found() {
                Ok(None)
            } else {
                Err(error(bucket, key, failure))
            };
        }
    };
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| error(bucket, key, e))?
        .into_bytes();
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| error(bucket, key, format!("not valid JSON: {e}")))
}

pub(crate) async fn put_json<T: Serialize>(
    s3: &Client,
    bucket: &str,
    key: &str,
    value: &T,
) -> Result<(), StateError> {
    let body = serde_json::to_vec_pretty(value).expect("state records always serialise");
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| error(bucket, key, S3Failure::from_sdk(&e)))?;
    Ok(())
}
