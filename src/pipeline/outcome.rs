//! How a job ends, and the one place that says what a source does about it: [`Outcome`] for a job
//! that ran to an end, [`JobError`] for one that could not, [`JobError::disposition`] to tell a
//! passing failure (retry) from one that can never succeed (dead-letter), and [`Ack`] for the
//! source.

use crate::block::BlockError;
use crate::callback::{Body, EngineErrorInfo};
use crate::fetch::FetchError;
use crate::model::{ForbiddenStatus, Severity};
use crate::rules::Skip;
use crate::state::StateError;

/// How a job ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// No rule applies; nothing was done.
    Skipped(Skip),
    /// This object version was already judged and called back.
    Duplicate { trace_id: String },
    /// This object version is being judged right now, by this process (the same event delivered
    /// twice) or by another (`elsewhere_until`: when that process's lease on it runs out unless
    /// renewed, in seconds since the epoch). The event must not be acknowledged: if the running
    /// job fails, or its process stopped, it is this event's redelivery that will retry it.
    InProgress {
        trace_id: String,
        elsewhere_until: Option<u64>,
    },
    /// Handed to an asynchronous engine; the job is kept in the bucket (see
    /// [`crate::state::pending`]) and finished when the provider's result arrives, or by the
    /// sweep.
    Waiting { trace_id: String },
    /// Judged, blocked if due, called back.
    Finished {
        trace_id: String,
        body: Box<Body>,
        callback: CallbackOutcome,
    },
}

impl Outcome {
    /// The `outcome` label of `earshot_jobs_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Duplicate { .. } | Outcome::InProgress { .. } => "duplicate",
            Outcome::Waiting { .. } => "waiting",
            Outcome::Skipped(_) => "skipped",
            Outcome::Finished { body, .. } if body.code != 0 => "unjudged",
            Outcome::Finished { body, .. }
                if body.data.forbidden_status != ForbiddenStatus::NotBlocked =>
            {
                "blocked"
            }
            Outcome::Finished { body, .. } if body.data.result == Severity::Suspicious => {
                "suspicious"
            }
            Outcome::Finished { .. } => "passed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    Delivered {
        attempts: u32,
    },
    /// Delivery failed; the request is kept at this key for replay.
    DeadLettered {
        key: String,
        error: String,
    },
    /// The rule has no callback.
    None,
}

impl CallbackOutcome {
    /// How delivery ended, as job records say it.
    pub fn label(&self) -> &'static str {
        match self {
            CallbackOutcome::Delivered { .. } => "delivered",
            CallbackOutcome::DeadLettered { .. } => "dead-lettered",
            CallbackOutcome::None => "no-callback",
        }
    }
}

/// What to do with a job that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A passing failure: run it again later (SQS redelivers, Lambda reports it failed, the
    /// webhook retries it).
    Retry,
    /// It can never succeed as it stands: park it where a person will see it, with the reason.
    DeadLetter,
}

/// A job that could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("reading the spool file failed: {0}")]
    Spool(#[source] std::io::Error),
    #[error("the decoder stopped unexpectedly: {0}")]
    Decoder(String),
    /// Engines could not judge and the rule says `on_engine_error = "retry"`.
    #[error("{}", EngineErrorInfo::describe(.0))]
    Engines(Vec<EngineErrorInfo>),
    #[error("waiting job {trace_id}: its rule {rule:?} is no longer configured")]
    RuleGone { trace_id: String, rule: String },
    #[error("waiting job {trace_id} is not valid: {detail}")]
    CorruptWaiting { trace_id: String, detail: String },
    #[error("a dry run cannot wait for the asynchronous engine(s) {0}")]
    DryRunCannotWait(String),
    #[error("no engine named {0:?} is configured")]
    NoEngine(String),
}

impl JobError {
    /// Whether running the job again can succeed.
    pub fn disposition(&self) -> Disposition {
        let transient = match self {
            JobError::Fetch(e) => e.is_transient(),
            JobError::Block(e) => e.is_transient(),
            JobError::State(e) => e.is_transient(),
            JobError::Spool(_) | JobError::Engines(_) => true,
            JobError::Decoder(_)
            | JobError::RuleGone { .. }
            | JobError::CorruptWaiting { .. }
            | JobError::DryRunCannotWait(_)
            | JobError::NoEngine(_) => false,
        };
        if transient {
            Disposition::Retry
        } else {
            Disposition::DeadLetter
        }
    }
}

/// What a source does with the event that carried a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Done with: acknowledge it (delete the message, answer success).
    Done,
    /// Leave it to come back (SQS visibility, Lambda `batchItemFailures`, the webhook's retry).
    Retry,
}

/// A job run by [`crate::pipeline::Pipeline::handle`]: how it ended, and what its source does.
#[derive(Debug)]
pub struct Handled {
    pub result: Result<Outcome, JobError>,
    pub ack: Ack,
    /// Where the job was parked, when it can never succeed as it stands.
    pub parked: Option<String>,
}

impl Handled {
    /// For a job another process holds: not before this (seconds since the epoch) can a retry do
    /// more than find it still held.
    pub fn retry_not_before(&self) -> Option<u64> {
        match &self.result {
            Ok(Outcome::InProgress {
                elsewhere_until, ..
            }) => *elsewhere_until,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passing_failures_are_retried() {
        let s3 = |status: Option<u16>| crate::storage::S3Failure {
            status,
            code: None,
            message: String::new(),
        };
        let state = |status| {
            JobError::State(StateError::S3 {
                bucket: "b".into(),
                key: "k".into(),
                failure: s3(status),
            })
        };
        let table = [
            (state(None), Disposition::Retry),
            (state(Some(503)), Disposition::Retry),
            (state(Some(403)), Disposition::DeadLetter),
            (
                JobError::State(StateError::Corrupt {
                    bucket: "b".into(),
                    key: "k".into(),
                    detail: "not JSON".into(),
                }),
                Disposition::DeadLetter,
            ),
            (JobError::Engines(Vec::new()), Disposition::Retry),
            (
                JobError::RuleGone {
                    trace_id: "t".into(),
                    rule: "r".into(),
                },
                Disposition::DeadLetter,
            ),
            (
                JobError::Decoder("panicked".into()),
                Disposition::DeadLetter,
            ),
            (JobError::NoEngine("x".into()), Disposition::DeadLetter),
        ];
        for (error, disposition) in table {
            assert_eq!(error.disposition(), disposition, "{error}");
        }
    }
}
