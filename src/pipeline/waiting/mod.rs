//! Jobs waiting on a provider that answers later (AMS, Shumei): a subsystem of its own.
//!
//! ```text
//! hand_over ─▶ state::pending (job, task per provider) ─▶ result POSTed (receive) or polled (sweep) ─▶ finish ─▶ conclude
//! ```
//!
//! - here: [`Pipeline::hand_over`] stores the waiting job and submits it to each provider;
//!   [`Pipeline::finish`] settles and concludes it once every result is in;
//! - [`receive`]: a result POSTed to `/engines/<engine>/results/<token>`, checked and stored; a
//!   [`Rejection`] says why one was refused (the HTTP adapters map it to a status);
//! - [`sweep`]: the periodic look at every waiting job (poll late results, give up at the
//!   deadline, finish complete ones, keep task slots honest);
//! - elsewhere: [`crate::state::pending`] (the store), [`crate::token`] (the signed callback URL
//!   that lets any replica finish any job), [`crate::engines::limit`] (rate and task slots).

mod receive;
mod sweep;

use std::sync::Arc;

pub use receive::{Received, Rejection};

use super::combine::engine_outcome;
use super::judge::Judgement;
use super::settle::OwnedTarget;
use super::{JobError, Outcome, Pipeline};
use crate::callback::Body;
use crate::config::OnEngineError;
use crate::engines::{Answer, EngineError, Provider};
use crate::job::Job;
use crate::rules::Rule;
use crate::state::pending::{Found, Waiting};
use crate::state::{self, pending};
use tracing::Instrument;

impl Pipeline {
    /// Stores the waiting job, then submits it to each provider. The job is finished here only
    /// when every result is in already.
    pub(super) async fn hand_over(
        &self,
        source: &Job,
        rule: &Rule,
        waiting: Waiting,
        providers: &[Arc<dyn Provider>],
    ) -> Result<Judgement, JobError> {
        let (bucket, trace_id) = (waiting.bucket.clone(), waiting.trace_id.clone());
        pending::put_job(&self.s3, &waiting).await?;
        let trace = trace_id.as_str();
        let submitted = futures::future::join_all(providers.iter().map(|provider| async move {
            let answer = match self
                .submission(source, rule, trace, provider.url_expiry())
                .await
            {
                Ok(submission) => provider.submit(&submission).await,
                Err(e) => Err(EngineError::failed(provider.name(), e)),
            };
            (provider, answer)
        }))
        .await;
        let now = self.clock.now_secs();
        let mut retry = Vec::new();
        for (provider, answer) in submitted {
            let name = provider.name();
            match answer {
                Ok(Answer::Submitted { task_id }) => {
                    let timing = provider.timing();
                    let task = pending::Task {
                        engine: name.to_owned(),
                        task_id: task_id.clone(),
                        submitted_at: now,
                        poll_at: now + timing.poll_after.as_secs(),
                        deadline_at: now + timing.deadline.as_secs(),
                        polls: 0,
                    };
                    pending::put_task(&self.s3, &bucket, &trace_id, &task).await?;
                    tracing::info!(engine = %name, %task_id, "Submitted; waiting for the engine's result.");
                }
                Ok(Answer::Verdict(verdict)) => {
                    let result = engine_outcome(name, Ok(verdict), "submit", now);
                    pending::put_result(&self.s3, &bucket, &trace_id, &result).await?;
                }
                Err(e) if rule.on_engine_error == OnEngineError::Retry => {
                    retry.push(crate::callback::EngineErrorInfo {
                        engine: name.to_owned(),
                        message: e.to_string(),
                    });
                }
                Err(e) => {
                    tracing::error!(error = %e, policy = ?rule.on_engine_error, "Engine failed.");
                    let result = engine_outcome(name, Err(e.to_string()), "submit", now);
                    pending::put_result(&self.s3, &bucket, &trace_id, &result).await?;
                }
            }
        }
        if !retry.is_empty() {
            // The source delivers the job again. Tasks created meanwhile are abandoned: a result
            // for them finds no waiting job and is ignored.
            tracing::error!(failures = ?retry, "Engine failed; the job will be retried.");
            self.clear_waiting(&bucket, &trace_id).await;
            for provider in providers {
                provider.task_done(&trace_id);
            }
            return Err(JobError::Engines(retry));
        }
        let found = pending::load(&self.s3, &bucket, &trace_id).await?;
        match self.finish_held(&found, &trace_id).await? {
            Some(body) => Ok(Judgement::Done {
                body: Box::new(body),
                waited: true,
            }),
            None => Ok(Judgement::Waiting),
        }
    }

    /// Finishes a waiting job when every result is in, taking the job's in-flight mark: the
    /// outcome, or None when it is still waiting (or another task of this process has it).
    ///
    /// # Errors
    /// A passing failure leaves the job waiting for the sweep to try again; a job that can never
    /// finish (its rule is gone, its record is corrupt) says so in its
    /// [`JobError::disposition`].
    pub async fn finish(&self, bucket: &str, trace_id: &str) -> Result<Option<Outcome>, JobError> {
        let Some(_claim) = self.claim(trace_id) else {
            return Ok(None);
        };
        if let Some(record) = state::finished_job(&self.s3, bucket, trace_id).await? {
            self.clear_waiting(bucket, trace_id).await;
            return Ok(Some(Outcome::Duplicate {
                trace_id: record.trace_id,
            }));
        }
        let found = pending::load(&self.s3, bucket, trace_id).await?;
        let Some(waiting) = &found.job else {
            return Ok(None);
        };
        let rule = self.waiting_rule(waiting)?;
        let Some(body) = self.finish_held(&found, trace_id).await? else {
            return Ok(None);
        };
        let job = waiting_job(waiting);
        let span = tracing::info_span!("job", %trace_id, bucket = %job.bucket, key = %job.key, rule = %rule.id);
        let outcome = self
            .conclude(&job, rule, trace_id.to_owned(), body)
            .instrument(span)
            .await?;
        self.clear_waiting(bucket, trace_id).await;
        if matches!(outcome, Outcome::Finished { .. }) {
            self.metrics.job(&rule.id, outcome.label());
        }
        Ok(Some(outcome))
    }

    /// The callback body of a waiting job whose every result is in, from what is stored for it
    /// (the caller holds its in-flight mark); None while results are missing.
    async fn finish_held(&self, found: &Found, trace_id: &str) -> Result<Option<Body>, JobError> {
        let Some(waiting) = &found.job else {
            return Ok(None);
        };
        if !found.missing().is_empty() {
            return Ok(None);
        }
        let rule = self.waiting_rule(waiting)?;
        let job = waiting_job(waiting);
        let report = self.report(&job, rule, trace_id);
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(&waiting.sha256, &mut sha256).map_err(|e| {
            JobError::CorruptWaiting {
                trace_id: trace_id.to_owned(),
                detail: format!("bad sha256: {e}"),
            }
        })?;
        let target = OwnedTarget {
            version_id: waiting.version_id.clone(),
            etag: waiting.etag.clone(),
            size: waiting.size,
            sha256,
        };
        let mut answered = waiting.answered.clone();
        answered.extend(found.results.iter().cloned());
        for name in &waiting.awaiting {
            if let Some(provider) = self.engines.get(name).and_then(|e| e.provider()) {
                provider.task_done(trace_id);
            }
        }
        let body = self
            .settle(&job, rule, &report, &answered, &target, None, true)
            .await?;
        Ok(Some(body))
    }

    /// The rule a waiting job was submitted under.
    fn waiting_rule(&self, waiting: &Waiting) -> Result<&Rule, JobError> {
        self.rules
            .by_id(&waiting.rule)
            .ok_or_else(|| JobError::RuleGone {
                trace_id: waiting.trace_id.clone(),
                rule: waiting.rule.clone(),
            })
    }

    /// Removes what is stored for a waiting job; a failure is logged (the sweep finds the job
    /// recorded as finished and clears it then).
    pub(super) async fn clear_waiting(&self, bucket: &str, trace_id: &str) {
        if let Err(e) = pending::clear(&self.s3, bucket, trace_id).await {
            tracing::warn!(error = %e, %trace_id, "Could not clear the waiting job's files.");
        }
    }
}

/// The job a waiting record describes.
fn waiting_job(waiting: &Waiting) -> Job {
    let mut job = Job::new(waiting.bucket.clone(), waiting.key.clone());
    job.version_id = waiting.version_id.clone();
    job.etag = Some(waiting.etag.clone());
    job.size = Some(waiting.size);
    job.origin = waiting.origin;
    job
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Origin;

    #[test]
    fn a_waiting_job_keeps_how_it_came_and_older_records_read_as_uploads() {
        let record = serde_json::json!({
            "trace_id": "t", "rule": "r", "bucket": "b", "key": "audio/a.mp3",
            "version_id": null, "etag": "e", "size": 3, "sha256": "00",
            "created_at": 1, "awaiting": ["ams"], "answered": []
        });
        let mut waiting: Waiting = serde_json::from_value(record).expect("an older record");
        assert_eq!(waiting_job(&waiting).origin, Origin::Upload);
        waiting.origin = Origin::Scan;
        let stored: Waiting =
            serde_json::from_value(serde_json::to_value(&waiting).expect("serialises"))
                .expect("reads back");
        let job = waiting_job(&stored);
        assert_eq!(
            job.origin,
            Origin::Scan,
            "the callback will say source scan"
        );
        assert_eq!(job.etag.as_deref(), Some("e"));
    }
}
