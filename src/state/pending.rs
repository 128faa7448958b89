//! Jobs waiting on an asynchronous engine (AMS, Shumei), kept in the moderated bucket beside the
//! other state, so that no process has to hold them while a provider works:
//!
//! ```text
//! audit_freeze_backup/earshot/pending/<trace_id>/job.json            the job, the engines awaited,
//!                                                                    verdicts of the engines that
//!                                                                    already answered
//! audit_freeze_backup/earshot/pending/<trace_id>/task-<engine>.json  the provider's task id
//! audit_freeze_backup/earshot/pending/<trace_id>/result-<engine>.json a provider's result
//! ```
//!
//! Each file is written once by one writer (the submitter, or whoever receives that engine's
//! result), so replicas never overwrite each other's findings. The job is finished by whoever sees
//! every awaited result present: the receiver of the last result, or the periodic sweep, which
//! also polls for results that are late and gives up at the deadline.

use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use crate::layout::{self, PENDING_PREFIX};
use crate::model::Verdict;
use crate::state::{self, StateError};
use crate::storage::object;

/// An engine that answered, or that could not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineOutcome {
    pub engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Why there is no verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error is the deadline passing with no result.
    #[serde(default)]
    pub timed_out: bool,
    /// `submit`, `callback`, `poll` or `deadline`.
    pub via: String,
    pub at: u64,
}

/// A job waiting for results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    pub trace_id: String,
    pub rule: String,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub etag: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes judged (what a move verifies its copy against).
    pub sha256: String,
    pub created_at: u64,
    /// The engines whose results are awaited.
    pub awaiting: Vec<String>,
    /// What the other engines of the rule said at submission.
    pub answered: Vec<EngineOutcome>,
    /// How the job came (its callback's `source`); records from before it was kept are uploads.
    #[serde(default)]
    pub origin: crate::job::Origin,
}

/// A provider task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub engine: String,
    pub task_id: String,
    pub submitted_at: u64,
    pub poll_at: u64,
    pub deadline_at: u64,
}

/// Everything stored for one waiting job.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub job: Option<Waiting>,
    pub tasks: Vec<Task>,
    pub results: Vec<EngineOutcome>,
}

impl Found {
    /// The awaited engines with no result yet.
    pub fn missing(&self) -> Vec<String> {
        let Some(job) = &self.job else {
            return Vec::new();
        };
        job.awaiting
            .iter()
            .filter(|e| !self.results.iter().any(|r| &r.engine == *e))
            .cloned()
            .collect()
    }
}

/// # Errors
/// S3 failed.
pub async fn put_job(s3: &Client, job: &Waiting) -> Result<(), StateError> {
    let key = layout::pending_job_key(&job.trace_id);
    state::put_json(s3, &job.bucket, &key, job).await
}

/// # Errors
/// S3 failed.
pub async fn put_task(
    s3: &Client,
    bucket: &str,
    trace_id: &str,
    task: &Task,
) -> Result<(), StateError> {
    let key = layout::pending_task_key(trace_id, &task.engine);
    state::put_json(s3, bucket, &key, task).await
}

/// # Errors
/// S3 failed.
pub async fn put_result(
    s3: &Client,
    bucket: &str,
    trace_id: &str,
    result: &EngineOutcome,
) -> Result<(), StateError> {
    let key = layout::pending_result_key(trace_id, &result.engine);
    state::put_json(s3, bucket, &key, result).await
}

/// Whether a job is waiting under this trace id.
///
/// # Errors
/// S3 failed.
pub async fn exists(s3: &Client, bucket: &str, trace_id: &str) -> Result<bool, StateError> {
    let key = layout::pending_job_key(trace_id);
    state::exists(s3, bucket, &key).await
}

/// Everything stored for a job.
///
/// # Errors
/// S3 failed or a file is not valid JSON.
pub async fn load(s3: &Client, bucket: &str, trace_id: &str) -> Result<Found, StateError> {
    let prefix = layout::pending_prefix(trace_id);
    let mut found = Found::default();
    for key in state::keys_under(s3, bucket, &prefix).await? {
        let name = &key[prefix.len()..];
        if name == "job.json" {
            found.job = state::get_json(s3, bucket, &key).await?;
        } else if name.starts_with("task-") {
            found
                .tasks
                .extend(state::get_json::<Task>(s3, bucket, &key).await?);
        } else if name.starts_with("result-") {
            found
                .results
                .extend(state::get_json::<EngineOutcome>(s3, bucket, &key).await?);
        }
    }
    Ok(found)
}

/// The trace ids of the jobs waiting in a bucket.
///
/// # Errors
/// S3 failed.
pub async fn waiting_in(s3: &Client, bucket: &str) -> Result<Vec<String>, StateError> {
    let prefixes = object::folders(s3, bucket, PENDING_PREFIX).await?;
    Ok(prefixes
        .iter()
        .filter_map(|p| p.strip_prefix(PENDING_PREFIX))
        .map(|p| p.trim_end_matches('/').to_owned())
        .filter(|p| !p.is_empty())
        .collect())
}

/// Removes everything stored for a job.
///
/// # Errors
/// S3 failed.
pub async fn clear(s3: &Client, bucket: &str, trace_id: &str) -> Result<(), StateError> {
    for key in state::keys_under(s3, bucket, &layout::pending_prefix(trace_id)).await? {
        state::delete(s3, bucket, &key).await?;
    }
    Ok(())
}
