//! What earshot remembers, kept in the moderated bucket itself under `audit_freeze_backup/earshot/`
//! (never moderated, see [`crate::layout`]), so that every daemon on a queue, a Lambda
//! invocation and a later `earshot` run all see the same state:
//!
//! - `jobs/<trace_id>.json`: a finished job (its callback body and how delivery ended). A second
//!   event for the same object version finds it and does nothing: no second block, no second
//!   callback.
//! - `dead-letters/<trace_id>.json`: a callback that could not be delivered, with the exact body
//!   and signature, for `earshot callbacks replay s3://BUCKET`.
//! - `dead-jobs/<trace_id>.json`: a job that could not be run (a source gave up retrying it, or it
//!   can never succeed as it stands), with the reason, for `earshot jobs replay s3://BUCKET`.
//! - `pending/<trace_id>/…`: a job waiting on a provider's result ([`pending`]).
//! - `review/…` and `results/<day>/…`: human review and the history of results ([`review`]).
//!
//! Every key comes from [`crate::layout`].

pub mod blocks;
pub mod lease;
pub mod logins;
pub mod pending;
pub mod prints;
pub mod review;

use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use crate::callback::{Body, Request};
use crate::storage::S3Failure;
use crate::storage::object::{self, ObjectError};

use crate::job::Job;
use crate::layout::{self, DEAD_JOB_PREFIX, DEAD_LETTER_PREFIX};

/// A finished job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub trace_id: String,
    pub finished_at: u64,
    /// `delivered`, `dead-lettered`, or `no-callback` (the rule has none).
    pub callback: String,
    pub body: Body,
    /// When the newest reference of the rule's libraries was added, as judged (for
    /// `earshot scan --rescan=library-changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<u64>,
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

/// A job that could not be run: a source gave up retrying it, or it can never succeed as it
/// stands. `earshot jobs replay` runs it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadJob {
    pub job: Job,
    pub parked_at: u64,
    /// The source that gave it up (`webhook`, `sqs`, `lambda`, `pipeline`).
    pub source: String,
    pub attempts: u32,
    /// What went wrong, for the person who reads it.
    pub reason: String,
}

/// A state object could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state s3://{bucket}/{key}: {failure}")]
    S3 {
        bucket: String,
        key: String,
        failure: S3Failure,
    },
    #[error("state s3://{bucket}/{key}: reading it failed mid-stream: {message}")]
    Stream {
        bucket: String,
        key: String,
        message: String,
    },
    /// Not what earshot wrote there: a person must look.
    #[error("state s3://{bucket}/{key} is not valid: {detail}")]
    Corrupt {
        bucket: String,
        key: String,
        detail: String,
    },
}

impl From<ObjectError> for StateError {
    fn from(error: ObjectError) -> StateError {
        match error {
            ObjectError::S3 {
                bucket,
                key,
                failure,
            } => StateError::S3 {
                bucket,
                key,
                failure,
            },
            ObjectError::Stream {
                bucket,
                key,
                message,
            } => StateError::Stream {
                bucket,
                key,
                message,
            },
        }
    }
}

impl StateError {
    /// True when trying again later may succeed (network, throttling, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            StateError::S3 { failure, .. } => failure.is_transient(),
            StateError::Stream { .. } => true,
            StateError::Corrupt { .. } => false,
        }
    }

    pub(crate) fn corrupt(bucket: &str, key: &str, detail: impl std::fmt::Display) -> StateError {
        StateError::Corrupt {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            detail: detail.to_string(),
        }
    }
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
    let key = layout::job_record_key(trace_id);
    get_json(s3, bucket, &key).await
}

/// Records a finished job.
///
/// # Errors
/// S3 failed.
pub async fn record_job(s3: &Client, bucket: &str, record: &JobRecord) -> Result<(), StateError> {
    let key = layout::job_record_key(&record.trace_id);
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
    let key = layout::dead_letter_key(&letter.trace_id);
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
    list_json(s3, bucket, DEAD_LETTER_PREFIX).await
}

/// Parks a job that could not be run, with the reason, for a person and for
/// `earshot jobs replay`; returns its key.
///
/// # Errors
/// S3 failed.
pub async fn park(s3: &Client, dead: &DeadJob) -> Result<String, StateError> {
    let key = layout::dead_job_key(&dead.job.trace_id());
    put_json(s3, &dead.job.bucket, &key, dead).await?;
    Ok(key)
}

/// Every parked job in the bucket, with its key.
///
/// # Errors
/// S3 failed or a record is not valid JSON.
pub async fn dead_jobs(s3: &Client, bucket: &str) -> Result<Vec<(String, DeadJob)>, StateError> {
    list_json(s3, bucket, DEAD_JOB_PREFIX).await
}

/// Every JSON state object under `prefix`, with its key.
pub(crate) async fn list_json<T: serde::de::DeserializeOwned>(
    s3: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<(String, T)>, StateError> {
    let mut found = Vec::new();
    for key in keys_under(s3, bucket, prefix).await? {
        if !key.ends_with(".json") {
            continue;
        }
        if let Some(value) = get_json(s3, bucket, &key).await? {
            found.push((key, value));
        }
    }
    Ok(found)
}

/// Every key under `prefix` (a listing, no reads).
///
/// # Errors
/// S3 failed.
pub async fn keys_under(
    s3: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, StateError> {
    Ok(object::list(s3, bucket, prefix)
        .await?
        .into_iter()
        .map(|listed| listed.key)
        .collect())
}

/// Whether a state object exists.
///
/// # Errors
/// S3 failed.
pub(crate) async fn exists(s3: &Client, bucket: &str, key: &str) -> Result<bool, StateError> {
    Ok(object::exists(s3, bucket, key).await?)
}

/// Deletes one state object.
///
/// # Errors
/// S3 failed.
pub async fn delete(s3: &Client, bucket: &str, key: &str) -> Result<(), StateError> {
    Ok(object::delete(s3, bucket, key).await?)
}

/// The bytes of a state object, or None when it does not exist.
///
/// # Errors
/// S3 failed (not a 404) or the body broke off.
pub(crate) async fn get_bytes(
    s3: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, StateError> {
    Ok(object::get(s3, bucket, key).await?)
}

/// Writes a state object of bytes (no content type).
///
/// # Errors
/// S3 failed.
pub(crate) async fn put_bytes(
    s3: &Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<(), StateError> {
    Ok(object::put(s3, bucket, key, body.into(), None).await?)
}

pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    s3: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<T>, StateError> {
    let Some(bytes) = get_bytes(s3, bucket, key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StateError::corrupt(bucket, key, format!("not valid JSON: {e}")))
}

const JSON: Option<&str> = Some("application/json");

pub(crate) async fn put_json<T: Serialize>(
    s3: &Client,
    bucket: &str,
    key: &str,
    value: &T,
) -> Result<(), StateError> {
    let body = serde_json::to_vec_pretty(value).expect("state records always serialise");
    Ok(object::put(s3, bucket, key, body.into(), JSON).await?)
}

/// Creates a state object unless one exists at `key` (`If-None-Match: *`): true when this call
/// created it, false when another writer had.
///
/// # Errors
/// S3 failed.
pub(crate) async fn create_json<T: Serialize>(
    s3: &Client,
    bucket: &str,
    key: &str,
    value: &T,
) -> Result<bool, StateError> {
    let body = serde_json::to_vec_pretty(value).expect("state records always serialise");
    Ok(object::create(s3, bucket, key, body.into(), JSON).await?)
}
