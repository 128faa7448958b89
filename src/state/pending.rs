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
    /// When the sweep next asks the provider for its result (moved on after every poll that
    /// found it still running: [`Task::after_poll`]).
    pub poll_at: u64,
    pub deadline_at: u64,
    /// How often the provider was asked.
    #[serde(default)]
    pub polls: u32,
}

/// The longest pause between two polls of one task.
pub const POLL_INTERVAL_MAX_SECS: u64 = 900;

impl Task {
    /// The task after a poll at `now` that found no result: counted, and its next poll one
    /// interval later, the interval doubling from `poll_after_secs` (the wait before the first
    /// poll) up to [`POLL_INTERVAL_MAX_SECS`], each drawn from 50–100 % of its step so that tasks
    /// submitted together are not polled in step. A task is thus asked about a dozen times at
    /// most before any deadline under a day, not at every sweep.
    pub fn after_poll(&self, now: u64, poll_after_secs: u64) -> Task {
        let polls = self.polls.saturating_add(1);
        let step = poll_after_secs
            .max(1)
            .saturating_mul(1u64 << polls.min(20))
            .min(POLL_INTERVAL_MAX_SECS.max(poll_after_secs));
        let interval = step / 2 + fastrand::u64(0..=step - step / 2);
        Task {
            polls,
            poll_at: now.saturating_add(interval.max(1)),
            ..self.clone()
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// With the AMS defaults (asked after 300 s, deadline 3600 s, a sweep every 15 s) a task that
    /// never answers is polled 4 to 8 times, not at every sweep (220 times).
    #[test]
    fn a_silent_task_is_polled_a_bounded_number_of_times() {
        let (poll_after, deadline, sweep) = (300, 3600, 15);
        for _ in 0..1000 {
            let mut task = Task {
                engine: "ams".to_owned(),
                task_id: "t".to_owned(),
                submitted_at: 0,
                poll_at: poll_after,
                deadline_at: deadline,
                polls: 0,
            };
            let mut now = 0;
            while now < task.deadline_at {
                if now >= task.poll_at {
                    task = task.after_poll(now, poll_after);
                }
                now += sweep;
            }
            assert!((4..=8).contains(&task.polls), "{} polls", task.polls);
        }
    }
}
