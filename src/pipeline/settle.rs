//! Settling a judged object: the decision, the failure policy, the block, and learning what was
//! blocked.

use std::time::Instant;

use super::combine::combine;
use super::judge::{HUMAN_REVIEW_ABOVE, decode};
use super::report::Report;
use super::{JobError, Pipeline};
use crate::block::{self, BlockError, Blocked, Target};
use crate::callback::{Body, Code, EngineErrorInfo};
use crate::config::{BlockMode, OnEngineError, Review};
use crate::decision::Decision;
use crate::engines::{Clip, Engine};
use crate::fetch::{self, FetchError};
use crate::job::Job;
use crate::layout;
use crate::model::ForbiddenStatus;
use crate::rules::{Rule, key_suffix};
use crate::state::pending::EngineOutcome;

/// What a block did to the object, for the callback.
pub(super) struct Enforced {
    pub status: ForbiddenStatus,
    pub backup: Option<String>,
    /// Why the block could not be done.
    pub failure: Option<(Code, String)>,
}

/// The bytes a block acts on, as judged.
#[derive(Debug, Clone)]
pub(super) struct OwnedTarget {
    pub version_id: Option<String>,
    pub etag: String,
    pub size: u64,
    pub sha256: [u8; 32],
}
impl Pipeline {
    /// Applies the rule to what its engines said: decision, failure policy, block, callback body.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn settle(
        &self,
        job: &Job,
        rule: &Rule,
        report: &Report,
        answered: &[EngineOutcome],
        target: &OwnedTarget,
        clip: Option<&Clip>,
        enforce: bool,
    ) -> Result<Body, JobError> {
        let combined = combine(answered, &rule.scenes, &rule.block);
        let mut decision = combined.decision.clone();
        let mut note = None;
        if !combined.failures.is_empty() {
            let failed = EngineErrorInfo::describe(&combined.failures);
            match rule.on_engine_error {
                OnEngineError::Retry => {
                    // Only results that never came (or came as failures) reach here: the job
                    // cannot be retried any further, so it is called back unjudged, scores of
                    // the engines that did answer included, nothing blocked.
                    let code = if combined.timed_out {
                        Code::EngineTimeout
                    } else {
                        Code::EngineFailure
                    };
                    decision.block = false;
                    let mut body = report.judged(
                        &decision,
                        ForbiddenStatus::NotBlocked,
                        None,
                        Some((code, failed)),
                    );
                    combined.annotate(&mut body);
                    return Ok(body);
                }
                OnEngineError::Pass => {
                    note = Some(format!(
                        "{failed}; judged without it (on_engine_error = \"pass\")"
                    ));
                }
                OnEngineError::Review => {
                    decision.hold_for_review();
                    note = Some(format!(
                        "{failed}; held for review (on_engine_error = \"review\")"
                    ));
                }
            }
        }
        let finish = |mut body: Body| {
            combined.annotate(&mut body);
            if let Some(note) = &note
                && body.code == 0
            {
                body.message = format!("success; {note}");
            }
            body
        };
        if decision.block
            && enforce
            && let Some(exempt) = self.exemption(job, target, clip).await?
        {
            tracing::info!(reason = %exempt, "Due to be blocked, but exempt.");
            decision.block = false;
            let mut body =
                finish(report.judged(&decision, ForbiddenStatus::NotBlocked, None, None));
            body.message = format!("{}; {exempt}", body.message);
            return Ok(body);
        }
        if !(decision.block && enforce) {
            return Ok(finish(report.judged(
                &decision,
                ForbiddenStatus::NotBlocked,
                None,
                None,
            )));
        }
        if rule.block.review == Review::Human && decision.top_score() <= HUMAN_REVIEW_ABOVE {
            let body = self
                .open_review(job, rule, report, &decision, target, answered)
                .await?;
            return Ok(finish(body));
        }
        let trace_id = report.trace_id.as_str();
        let enforced = self
            .block_now(job, rule, target, &decision, trace_id)
            .await?;
        if enforced.failure.is_none() && rule.block.learn {
            match clip {
                Some(clip) => self.learn(rule, clip, &decision, job).await,
                None => match self.reload_clip(job, rule).await {
                    Some(clip) => self.learn(rule, &clip, &decision, job).await,
                    None => tracing::warn!(
                        "block.learn: the blocked audio could not be decoded again; not added to the library"
                    ),
                },
            }
        }
        let failed = enforced.failure.is_some();
        let body = finish(report.judged(
            &decision,
            enforced.status,
            enforced.backup,
            enforced.failure,
        ));
        if !failed {
            self.audit_block(job, rule, trace_id, &body).await;
        }
        Ok(body)
    }

    /// Blocks the object by the rule's mode, its prior state recorded first: what the callback
    /// says about the object. A block that cannot be done (gone, changed, refused) is reported as
    /// a failure to call back, not an error; only a passing failure is an error.
    pub(super) async fn block_now(
        &self,
        job: &Job,
        rule: &Rule,
        target: &OwnedTarget,
        decision: &Decision,
        trace_id: &str,
    ) -> Result<Enforced, JobError> {
        let target = Target {
            bucket: &job.bucket,
            key: &job.key,
            version_id: target.version_id.as_deref(),
            etag: &target.etag,
            size: target.size,
            sha256: target.sha256,
        };
        let started = Instant::now();
        let blocked = match self.guard(job, rule, &target, decision, trace_id).await {
            Ok(()) => block::block(&self.s3, rule.block.mode, &target).await,
            Err(JobError::Block(e)) => Err(e),
            Err(e) => return Err(e),
        };
        self.metrics.stage("block", started);
        match blocked {
            Ok(blocked) => {
                let backup = (blocked == Blocked::Moved).then(|| layout::backup_key(&job.key));
                tracing::info!(?blocked, backup_key = ?backup, "Blocked.");
                let status = match blocked {
                    Blocked::Acl => ForbiddenStatus::Acl,
                    Blocked::Moved => ForbiddenStatus::Moved,
                };
                Ok(Enforced {
                    status,
                    backup,
                    failure: None,
                })
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                let code = match e {
                    BlockError::Gone { .. } => Code::ObjectGone,
                    BlockError::Changed { .. } => Code::ObjectChanged,
                    _ => Code::BlockFailed,
                };
                tracing::error!(error = %e, "Block failed; calling back with the scores and the reason.");
                Ok(Enforced {
                    status: ForbiddenStatus::NotBlocked,
                    backup: None,
                    failure: Some((code, e.to_string())),
                })
            }
        }
    }

    /// The audio of a job decoded again (for `block.learn` once the first decode is gone): from
    /// the object, or from its backup when it was moved. None, logged, when it cannot be.
    pub(super) async fn reload_clip(&self, job: &Job, rule: &Rule) -> Option<Clip> {
        let mut source = Job {
            etag: None,
            ..job.clone()
        };
        let head = match fetch::head(&self.s3, &source).await {
            Ok(head) => head,
            Err(FetchError::Gone { .. }) if rule.block.mode == BlockMode::Move => {
                source.key = layout::backup_key(&job.key);
                source.version_id = None;
                fetch::head(&self.s3, &source)
                    .await
                    .inspect_err(|e| tracing::warn!(error = %e, "The backup cannot be read."))
                    .ok()?
            }
            Err(e) => {
                tracing::warn!(error = %e, "The object cannot be read again.");
                return None;
            }
        };
        let max_bytes = self.config.limits.max_object_bytes;
        let spooled = fetch::download(&self.s3, &source, head, max_bytes, &self.spool_dir)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "The object cannot be read again."))
            .ok()?;
        let decoded = decode(
            spooled.file.path(),
            key_suffix(&job.key),
            spooled.sha256,
            spooled.size,
            self.config.limits.max_duration_secs,
            None,
        )
        .await
        .ok()?;
        decoded.ok()
    }

    /// Adds a blocked clip to the references of the rule's analysers (`block.learn`). A failure
    /// is logged: the block stands either way.
    pub(super) async fn learn(&self, rule: &Rule, clip: &Clip, decision: &Decision, job: &Job) {
        let Some(scene) = decision.top_scene else {
            return;
        };
        let label = decision.scenes.get(&scene).map_or("", |s| s.label.as_str());
        let label = format!("learned: {label}");
        let source = format!("s3://{}/{}", job.bucket, job.key);
        for name in &rule.engines {
            let Engine::Analyser(analyser) = self.engine(name) else {
                continue;
            };
            match analyser.learn(clip, scene, &label, &source).await {
                Ok(true) => {
                    tracing::info!(%scene, engine = %name, "Blocked upload added to the reference library.")
                }
                Ok(false) => {
                    tracing::debug!(engine = %name, "Engine keeps no references to learn into.")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Could not add the blocked upload to the library.")
                }
            }
        }
    }

    /// When the object is gone and the rule moves blocked objects, the backup may hold it: an
    /// earlier run of this job moved it and stopped before it called back. Returns the backup's
    /// HEAD and a job reading from it.
    pub(super) async fn already_moved(
        &self,
        job: &Job,
        rule: &Rule,
    ) -> Result<Option<(fetch::Head, Job)>, JobError> {
        if rule.block.mode != BlockMode::Move {
            return Ok(None);
        }
        let mut backup = Job::new(job.bucket.clone(), layout::backup_key(&job.key));
        // A copy keeps a single-part ETag (the MD5 of the bytes); a multipart one changes.
        backup.etag = job.etag.clone().filter(|etag| !etag.contains('-'));
        match fetch::head(&self.s3, &backup).await {
            Ok(head) => {
                tracing::info!(backup_key = %backup.key, "Object already moved by an earlier run; finishing that job.");
                Ok(Some((head, backup)))
            }
            Err(FetchError::Gone { .. } | FetchError::Changed { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
