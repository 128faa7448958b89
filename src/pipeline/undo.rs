//! Blocks that can be undone: the prior state recorded before every block ([`Pipeline::guard`]),
//! the exemptions that keep restored or allow-listed audio from being blocked again
//! ([`Pipeline::exemption`]), and the restore itself ([`Pipeline::restore`]).
//!
//! A restore runs in four recorded steps, so that running it again after an interruption
//! finishes it and never does anything twice: (1) the block record is marked "restore begun"
//! (from then on, the same bytes at that key are never blocked again, whatever event arrives);
//! (2) the object is put back (grants, or the move undone, see [`crate::block::prior`]); (3) the
//! restored version gets a job record, so its own event is a duplicate; (4) the record is marked
//! done, the audit log gets an entry and the rule's callback is sent with `forbidden_status` 0.

use super::settle::OwnedTarget;
use super::{CallbackOutcome, JobError, Pipeline};
use crate::block::prior::{self, Moved, RestoreError};
use crate::block::{BlockError, Target};
use crate::callback::{ActionInfo, Body};
use crate::config::BlockMode;
use crate::decision::Decision;
use crate::engines::Clip;
use crate::fetch;
use crate::fingerprint::Index;
use crate::job::Job;
use crate::layout;
use crate::model::ForbiddenStatus;
use crate::rules::Rule;
use crate::state::blocks::{self, Allowed, AuditEntry, BlockRecord, Restore};
use crate::state::lease::{self, Taken};
use crate::state::{self, JobRecord, StateError};

/// Score of an allow-listed fingerprint's match above which the upload counts as that audio.
const ALLOW_MATCH_SCORE: u8 = 91;

/// Who restores, and why.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub by: String,
    pub reason: String,
    /// Also add the audio to the allow-list (by SHA-256 and fingerprint).
    pub mark_normal: bool,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// Put back now.
    Done {
        trace_id: String,
        callback: Option<CallbackOutcome>,
    },
    /// Restored before; nothing to do.
    Already { trace_id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("s3://{bucket}/{key} holds no blocked object earshot recorded")]
    NotBlocked { bucket: String, key: String },
    #[error(
        "s3://{bucket}/{key} is being restored by {holder} (its lease runs until {until}); \
         run it again after that if it does not finish"
    )]
    Busy {
        bucket: String,
        key: String,
        holder: String,
        until: u64,
    },
}

/// A restore's lease: long enough to put back the largest object and call back.
const RESTORE_LEASE_SECS: u64 = 600;

impl From<BlockError> for UndoError {
    fn from(error: BlockError) -> UndoError {
        UndoError::Restore(error.into())
    }
}

impl Pipeline {
    /// Why this object must not be blocked although its scores say so: a person restored these
    /// bytes at this key, or marked this audio normal (exact bytes, or a fingerprint match).
    pub(super) async fn exemption(
        &self,
        job: &Job,
        target: &OwnedTarget,
        clip: Option<&Clip>,
    ) -> Result<Option<String>, JobError> {
        let sha256 = hex::encode(target.sha256);
        if let Some(restore) = blocks::restored(&self.s3, &job.bucket, &job.key, &sha256).await? {
            return Ok(Some(format!(
                "not blocked: restored by {} at {} ({})",
                restore.by, restore.at, restore.reason
            )));
        }
        if let Some(allowed) = blocks::allowed(&self.s3, &job.bucket, &sha256).await? {
            return Ok(Some(allowed_note(&allowed, "the same bytes")));
        }
        let Some(clip) = clip else { return Ok(None) };
        let prints = blocks::allowed_prints(&self.s3, &job.bucket).await?;
        if prints.is_empty() {
            return Ok(None);
        }
        let mut entries = Vec::new();
        let mut refs = Vec::new();
        for (entry, bytes) in prints {
            if let Ok(print) = crate::fingerprint::Fingerprint::from_bytes(&bytes) {
                refs.push((entry.sha256.clone(), print));
                entries.push(entry);
            }
        }
        let index = Index::build(refs);
        let found = index
            .query(&clip.fingerprint)
            .into_iter()
            .find(|m| m.score >= ALLOW_MATCH_SCORE);
        Ok(found.map(|m| allowed_note(&entries[m.reference], "a fingerprint match")))
    }

    /// Records the object's state before it is blocked, so the block can be undone exactly.
    pub(super) async fn guard(
        &self,
        job: &Job,
        rule: &Rule,
        target: &Target<'_>,
        decision: &Decision,
        trace_id: &str,
    ) -> Result<(), JobError> {
        let key = layout::block_record_key(&job.key, trace_id);
        if state::exists(&self.s3, &job.bucket, &key).await? {
            return Ok(());
        }
        let prior = match prior::capture(&self.s3, target.bucket, target.key, target.version_id)
            .await
        {
            // Moved by an earlier run that kept no record (an earshot from before records were
            // kept): the backup holds the headers, metadata and tags; the grants are lost.
            Err(BlockError::Gone { .. }) if rule.block.mode == BlockMode::Move => {
                let backup = layout::backup_key(target.key);
                let mut prior = prior::capture(&self.s3, target.bucket, &backup, None).await?;
                prior.acl = None;
                tracing::warn!(%backup, "Prior state read from the backup; the original grants are unknown.");
                prior
            }
            other => other?,
        };
        let mut references: Vec<String> = decision
            .scenes
            .values()
            .flat_map(|s| s.segments.iter())
            .filter_map(|segment| segment.reference_id.clone())
            .collect();
        references.sort();
        references.dedup();
        let record = BlockRecord {
            trace_id: trace_id.to_owned(),
            bucket: job.bucket.clone(),
            key: job.key.clone(),
            version_id: target.version_id.map(str::to_owned),
            etag: target.etag.to_owned(),
            size: target.size,
            sha256: hex::encode(target.sha256),
            rule: rule.id.clone(),
            mode: rule.block.mode,
            blocked_at: self.clock.now_secs(),
            prior,
            references,
            restore: None,
        };
        if !blocks::create_block(&self.s3, &record).await? {
            tracing::info!(%trace_id, "Another process recorded this block first; its record stands.");
        }
        Ok(())
    }

    /// Appends what earshot decided to the audit log; a failure is logged, the block stands.
    pub(super) async fn audit_block(&self, job: &Job, rule: &Rule, trace_id: &str, body: &Body) {
        let entry = AuditEntry {
            at: self.clock.now_secs(),
            by: "earshot".to_owned(),
            action: "block".to_owned(),
            bucket: job.bucket.clone(),
            key: Some(job.key.clone()),
            trace_id: Some(trace_id.to_owned()),
            reason: format!(
                "rule {} ({}), result {}",
                rule.id,
                job.origin.as_str(),
                body.data.result.as_u8()
            ),
            detail: serde_json::json!({
                "forbidden_status": body.data.forbidden_status.as_u8(),
                "porn": body.data.porn_info.score,
                "ads": body.data.ads_info.score,
            }),
        };
        if let Err(e) = blocks::append_audit(&self.s3, &entry).await {
            tracing::error!(error = %e, "Could not append the block to the audit log.");
        }
    }

    /// The newest block record of `bucket`/`key` that a restore would undo.
    ///
    /// # Errors
    /// S3 failed, or the key has no block record.
    pub async fn block_of(&self, bucket: &str, key: &str) -> Result<BlockRecord, UndoError> {
        blocks::blocks_of_key(&self.s3, bucket, key)
            .await?
            .pop()
            .ok_or_else(|| UndoError::NotBlocked {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            })
    }

    /// Undoes one block exactly; see the module documentation for the steps.
    ///
    /// # Errors
    /// The key holds a newer upload ([`RestoreError::KeyReused`]), the blocked object is lost,
    /// or S3 failed (run it again).
    pub async fn restore(
        &self,
        record: BlockRecord,
        request: &RestoreRequest,
    ) -> Result<Restored, UndoError> {
        self.undo(record, request, None).await
    }

    /// A restore; `decided` is the callback body of a review that passed a held object (sent
    /// instead of the restore's own, and logged as the review's decision).
    pub(super) async fn undo(
        &self,
        record: BlockRecord,
        request: &RestoreRequest,
        decided: Option<Body>,
    ) -> Result<Restored, UndoError> {
        let trace_id = record.trace_id.clone();
        if record.restore.as_ref().is_some_and(|r| r.done) {
            return Ok(Restored::Already { trace_id });
        }
        // One restorer at a time (two people, a person and a review, a crash and its retry): the
        // others are refused while its lease runs; after that the next one finishes its steps.
        let at = self.clock.now_secs();
        let prefix = layout::restore_lease_prefix(&trace_id);
        let held = match lease::take(
            &self.s3,
            &record.bucket,
            &prefix,
            &self.holder,
            at,
            RESTORE_LEASE_SECS,
        )
        .await?
        {
            Taken::Held(held) => held,
            Taken::Busy(theirs) => {
                return Err(UndoError::Busy {
                    bucket: record.bucket,
                    key: record.key,
                    holder: theirs.holder,
                    until: theirs.until,
                });
            }
        };
        crate::faults::pause("restore-leased").await;
        let restored = self.undo_held(record, request, decided, at).await;
        if let Err(e) = held.release(&self.s3, self.clock.now_secs()).await {
            tracing::warn!(%trace_id, error = %e, "Could not release the restore's lease; it runs out by itself.");
        }
        restored
    }

    /// [`Pipeline::undo`] under its lease, from the record as it is now (a restore that held the
    /// lease before may have done some steps, or all).
    async fn undo_held(
        &self,
        record: BlockRecord,
        request: &RestoreRequest,
        decided: Option<Body>,
        at: u64,
    ) -> Result<Restored, UndoError> {
        let trace_id = record.trace_id.clone();
        let mut record = blocks::block_record(&self.s3, &record.bucket, &record.key, &trace_id)
            .await?
            .unwrap_or(record);
        if record.restore.as_ref().is_some_and(|r| r.done) {
            return Ok(Restored::Already { trace_id });
        }
        let restore = Restore {
            by: request.by.clone(),
            at,
            reason: request.reason.clone(),
            done: false,
            mark_normal: request.mark_normal,
        };
        let previous = record.restore.replace(restore.clone());
        blocks::update_block(&self.s3, &record).await?;
        let put_back = self.put_back(&record).await;
        let (version_id, etag) = match put_back {
            Ok(found) => found,
            Err(e) => {
                // Nothing was put back: the record must not exempt anything.
                if matches!(e, UndoError::Restore(RestoreError::KeyReused { .. })) {
                    record.restore = previous;
                    blocks::update_block(&self.s3, &record).await?;
                }
                return Err(e);
            }
        };
        let rule = self.rules.find(&record.bucket, &record.key).ok();
        let action = ActionInfo {
            action: "restore".to_owned(),
            by: request.by.clone(),
            at,
            reason: request.reason.clone(),
        };
        let audit_action = match (&decided, request.mark_normal) {
            (Some(_), _) => "review-pass",
            (None, true) => "restore+mark-normal",
            (None, false) => "restore",
        };
        let review = decided.is_some();
        let mut body = match decided {
            Some(body) => body,
            None => match state::finished_job(&self.s3, &record.bucket, &trace_id).await? {
                Some(job) => job.body,
                None => {
                    let job = Job::new(record.bucket.clone(), record.key.clone());
                    let report = match rule {
                        Some(rule) => self.report(&job, rule, &trace_id),
                        None => {
                            return Err(UndoError::NotBlocked {
                                bucket: record.bucket.clone(),
                                key: record.key.clone(),
                            });
                        }
                    };
                    report.unjudged(crate::callback::Code::Success, "success".to_owned())
                }
            },
        };
        body.data.forbidden_status = ForbiddenStatus::NotBlocked;
        body.data.backup_key = None;
        if !review {
            body.data.source = Some("restore".to_owned());
            body.data.action = Some(action);
        }
        body.data.version_id = version_id.clone();
        // The restored version's own event is a duplicate of this record.
        let mut restored_job = Job::new(record.bucket.clone(), record.key.clone());
        restored_job.version_id = version_id;
        restored_job.etag = Some(etag);
        let restored_trace = restored_job.trace_id();
        if restored_trace != trace_id {
            let marker = JobRecord {
                trace_id: restored_trace,
                finished_at: at,
                callback: "restored".to_owned(),
                body: body.clone(),
                library: None,
            };
            state::record_job(&self.s3, &record.bucket, &marker).await?;
        }
        if request.mark_normal {
            self.mark_normal(&record, request, &restored_job).await?;
        }
        let callback = match rule {
            Some(rule) => Some(
                self.call_back(&record.bucket, rule, &trace_id, &body)
                    .await?,
            ),
            None => None,
        };
        state::record_job(
            &self.s3,
            &record.bucket,
            &JobRecord {
                trace_id: trace_id.clone(),
                finished_at: at,
                callback: callback
                    .as_ref()
                    .map_or("no-callback", CallbackOutcome::label)
                    .to_owned(),
                body,
                library: None,
            },
        )
        .await?;
        record.restore = Some(Restore {
            done: true,
            ..restore
        });
        blocks::update_block(&self.s3, &record).await?;
        let entry = AuditEntry {
            at,
            by: request.by.clone(),
            action: audit_action.to_owned(),
            bucket: record.bucket.clone(),
            key: Some(record.key.clone()),
            trace_id: Some(trace_id.clone()),
            reason: request.reason.clone(),
            detail: serde_json::json!({ "mode": record.mode, "prior": record.prior }),
        };
        blocks::append_audit(&self.s3, &entry).await?;
        tracing::info!(bucket = %record.bucket, key = %record.key, %trace_id, by = %request.by, "Restored.");
        Ok(Restored::Done { trace_id, callback })
    }

    /// Puts the object back as it was; returns the restored version and ETag.
    async fn put_back(&self, record: &BlockRecord) -> Result<(Option<String>, String), UndoError> {
        let sha256 = record.sha256_bytes().unwrap_or_default();
        match record.mode {
            BlockMode::AclPrivate => {
                let job = Job {
                    version_id: record.version_id.clone(),
                    ..Job::new(record.bucket.clone(), record.key.clone())
                };
                let head = fetch::head(
                    &self.s3,
                    &Job {
                        etag: None,
                        ..job.clone()
                    },
                )
                .await
                .map_err(|e| match e {
                    fetch::FetchError::Gone { .. } => UndoError::Restore(RestoreError::Lost {
                        bucket: record.bucket.clone(),
                        key: record.key.clone(),
                        backup_key: String::new(),
                    }),
                    other => UndoError::Job(other.into()),
                })?;
                if head.etag != record.etag {
                    return Err(RestoreError::KeyReused {
                        bucket: record.bucket.clone(),
                        key: record.key.clone(),
                        backup_key: "(none: the block was an ACL change)".to_owned(),
                        etag: head.etag,
                        size: head.size as i64,
                    }
                    .into());
                }
                if let Some(acl) = &record.prior.acl {
                    prior::put_back_acl(
                        &self.s3,
                        &record.bucket,
                        &record.key,
                        record.version_id.as_deref(),
                        acl,
                    )
                    .await?;
                }
                Ok((head.version_id, head.etag))
            }
            BlockMode::Move => {
                let backup = layout::backup_key(&record.key);
                let moved = Moved {
                    bucket: &record.bucket,
                    key: &record.key,
                    backup_key: &backup,
                    size: record.size,
                    sha256,
                    etag: &record.etag,
                };
                let back = prior::move_back(&self.s3, &moved, &record.prior).await?;
                Ok((back.version_id, back.etag))
            }
        }
    }

    /// Adds restored audio to the allow-list: its SHA-256, and its fingerprint (decoded again
    /// from the restored object).
    async fn mark_normal(
        &self,
        record: &BlockRecord,
        request: &RestoreRequest,
        restored: &Job,
    ) -> Result<(), UndoError> {
        let head = fetch::head(&self.s3, restored)
            .await
            .map_err(JobError::from)?;
        let spooled = fetch::download(
            &self.s3,
            restored,
            head,
            self.config.limits.max_object_bytes,
            &self.spool_dir,
        )
        .await
        .map_err(JobError::from)?;
        let clip = super::judge::decode(
            spooled.file.path(),
            crate::rules::key_suffix(&record.key),
            spooled.sha256,
            spooled.size,
            self.config.limits.max_duration_secs,
            None,
        )
        .await?;
        let print = clip.ok().map(|clip| clip.fingerprint.to_bytes());
        let allowed = Allowed {
            sha256: record.sha256.clone(),
            by: request.by.clone(),
            at: self.clock.now_secs(),
            reason: request.reason.clone(),
            source: format!("s3://{}/{}", record.bucket, record.key),
            fingerprint: print.is_some(),
        };
        blocks::allow(&self.s3, &record.bucket, &allowed, print.as_deref()).await?;
        Ok(())
    }
}

fn allowed_note(allowed: &Allowed, how: &str) -> String {
    format!(
        "not blocked: marked normal by {} at {} ({}), matched by {how}",
        allowed.by, allowed.at, allowed.reason
    )
}
