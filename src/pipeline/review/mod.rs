//! Human review (`review = "human"`, DESIGN §5): scores from `min_score` to 90 wait for a person.
//!
//! Judging opens an item ([`Pipeline::open_review`]): the object is held (blocked by the rule's
//! mode, its prior state recorded) or left published and tagged `earshot-review=pending`, per
//! `block.hold_for_review`; the callback
//! goes at once with `result = 2` and `review.state = "pending"`. A decision
//! ([`Pipeline::decide_review`]) is claimed in the bucket so that exactly one wins, then carried
//! out: a block blocks (or keeps the hold), a pass leaves the object alone (or puts it back
//! exactly, through the restore). The second callback carries the same `trace_id`, the decision,
//! who, when and why; the audit log gets the decision with its user. Nobody deciding by
//! `due_at` lets `on_review_timeout` decide ([`Pipeline::expire_reviews`]).
//!
//! Exactly once: the claim names its holder (this process) and a lease (`block.review_lease_secs`).
//! While the lease runs, every other attempt to decide the item is refused with the claimed
//! decision and changes nothing, even if the decision is not carried out yet: its holder is
//! carrying it out. A claim whose lease ran out unapplied (its holder stopped) is finished by the
//! next attempt to decide the item or by the sweep ([`Pipeline::expire_reviews`]), through a
//! takeover that is itself claimed once ([`review::take_over`]): the claim, not the attempt, is
//! what counts, and of several finishers one carries it out.

mod sweep;

use std::collections::BTreeMap;

use super::report::Report;
use super::settle::OwnedTarget;
use super::undo::{RestoreRequest, Restored, UndoError};
use super::{CallbackOutcome, JobError, Pipeline};
use crate::callback::{ActionInfo, Body, Code, ReviewInfo};
use crate::config::{Review, ReviewVerdict};
use crate::decision::{Decision, SceneResult};
use crate::job::Job;
use crate::model::{ForbiddenStatus, HitFlag, SceneScore, Severity};
use crate::rules::Rule;
use crate::state::blocks::{self, AuditEntry};
use crate::state::pending::EngineOutcome;
use crate::state::review::{self, Claim, ResultRow, ReviewDecision, ReviewItem};
use crate::state::{self, JobRecord, StateError};

/// A decision as a person (or the CLI) gives it.
#[derive(Debug, Clone)]
pub struct DecideRequest {
    pub verdict: ReviewVerdict,
    pub by: String,
    pub reason: String,
}

/// What deciding came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub decision: ReviewDecision,
    pub callback: Option<CallbackOutcome>,
    pub body: Body,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no review item {trace_id} in any rule's bucket")]
    NotFound { trace_id: String },
    /// Someone decided first; theirs stands.
    #[error(
        "review item {} was decided already: {} by {} at {} ({})",
        .0.trace_id, .0.verdict.as_str(), .0.by, crate::clock::display(.0.at), .0.reason
    )]
    Conflict(ReviewDecision),
    #[error("a decision needs a reason")]
    NoReason,
    #[error("no rule covers s3://{bucket}/{key} any more; its review cannot be carried out")]
    NoRule { bucket: String, key: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Undo(#[from] UndoError),
}

/// A page of the review queue.
#[derive(Debug)]
pub struct ReviewPage {
    pub items: Vec<ReviewItem>,
    /// Open items in every reviewed bucket (one listing of the markers).
    pub total: usize,
    /// The cursor of the next page, when items follow.
    pub next: Option<String>,
}

impl Pipeline {
    /// Holds an object for a person: blocks it first when the rule holds, writes the item, and
    /// returns the pending callback body. Run again after an interruption, it keeps the item
    /// (and its place in the queue) as first written.
    pub(super) async fn open_review(
        &self,
        job: &Job,
        rule: &Rule,
        report: &Report,
        decision: &Decision,
        target: &OwnedTarget,
        answered: &[EngineOutcome],
    ) -> Result<Body, JobError> {
        let trace_id = report.trace_id.as_str();
        let now = self.clock.now_secs();
        let existing = review::item(&self.s3, &job.bucket, trace_id).await?;
        if existing.is_some()
            && let Some(decided) = review::decision(&self.s3, &job.bucket, trace_id).await?
            && let Some(record) = state::finished_job(&self.s3, &job.bucket, trace_id).await?
        {
            // Judged again (a rescan, a retro-hunt): a person's decision on this very version
            // stands.
            let mut body = record.body;
            body.message = format!(
                "{}; a person decided this version before: {} by {} ({})",
                body.message,
                decided.verdict.as_str(),
                decided.by,
                decided.reason
            );
            return Ok(body);
        }
        let (status, backup, failure) = if rule.block.hold_for_review {
            let enforced = self
                .block_now(job, rule, target, decision, trace_id)
                .await?;
            (enforced.status, enforced.backup, enforced.failure)
        } else {
            (ForbiddenStatus::NotBlocked, None, None)
        };
        if let Some((code, _)) = &failure
            && matches!(code, Code::ObjectGone | Code::ObjectChanged)
        {
            // Nothing left to review: the object went away, or was replaced (the new version
            // is judged on its own event).
            return Ok(report.judged(decision, status, None, failure));
        }
        // A hold that could not be done (the bucket refuses ACLs) leaves the object published
        // for the person to decide; the message says why.
        let held = status != ForbiddenStatus::NotBlocked;
        let created_at = existing.as_ref().map_or(now, |item| item.created_at);
        let due_at = created_at + rule.block.review_timeout_secs;
        let mut body = report.judged(decision, status, backup, failure);
        body.data.result = Severity::Suspicious;
        body.data.review = Some(ReviewInfo {
            state: "pending".to_owned(),
            held,
            due_at,
            timeout: false,
        });
        let top = decision.top_scene.unwrap_or(rule.scenes[0]);
        let item = ReviewItem {
            trace_id: trace_id.to_owned(),
            rule: rule.id.clone(),
            bucket: job.bucket.clone(),
            key: job.key.clone(),
            version_id: target.version_id.clone(),
            etag: target.etag.clone(),
            size: target.size,
            sha256: hex::encode(target.sha256),
            created_at,
            due_at,
            on_timeout: rule.block.on_review_timeout,
            held,
            mode: rule.block.mode,
            scene: top,
            score: decision.top_score(),
            scenes: decision
                .scenes
                .iter()
                .map(|(scene, r)| {
                    let score = SceneScore {
                        score: r.score,
                        label: r.label.clone(),
                        segments: r.segments.clone(),
                    };
                    (*scene, score)
                })
                .collect(),
            body: body.clone(),
            engines: answered.to_vec(),
        };
        review::open(&self.s3, &item).await?;
        if !held {
            // Published while it waits: tagged, so the user's own listings can tell.
            let tagged = crate::block::mark_review(
                &self.s3,
                &job.bucket,
                &job.key,
                target.version_id.as_deref(),
                Some("pending"),
            )
            .await;
            if let Err(e) = tagged {
                tracing::warn!(error = %e, "Could not tag the object as waiting for review.");
            }
        }
        self.metrics.review(&rule.id, "opened");
        tracing::info!(held, due_at, score = item.score, "Held for human review.");
        let entry = AuditEntry {
            at: now,
            by: "earshot".to_owned(),
            action: "hold-for-review".to_owned(),
            bucket: job.bucket.clone(),
            key: Some(job.key.clone()),
            trace_id: Some(trace_id.to_owned()),
            reason: format!(
                "rule {}: {} scored {} (from min_score {} to 90 a person decides)",
                rule.id,
                top.as_str(),
                item.score,
                rule.block.min_score
            ),
            detail: serde_json::json!({ "held": held, "due_at": due_at }),
        };
        if let Err(e) = blocks::append_audit(&self.s3, &entry).await {
            tracing::error!(error = %e, "Could not append the hold to the audit log.");
        }
        Ok(body)
    }

    /// The item and its decision, from whichever rule bucket holds it.
    ///
    /// # Errors
    /// S3 failed, or no bucket has the item.
    pub async fn review_item(
        &self,
        trace_id: &str,
    ) -> Result<(ReviewItem, Option<ReviewDecision>), ReviewError> {
        for bucket in self.review_buckets() {
            if let Some(item) = review::item(&self.s3, &bucket, trace_id).await? {
                let decision = review::decision(&self.s3, &bucket, trace_id).await?;
                return Ok((item, decision));
            }
        }
        Err(ReviewError::NotFound {
            trace_id: trace_id.to_owned(),
        })
    }

    /// The buckets of rules under human review.
    pub fn review_buckets(&self) -> Vec<String> {
        let mut buckets: Vec<String> = self
            .rules
            .all()
            .iter()
            .filter(|r| r.block.review == Review::Human)
            .map(|r| r.bucket.clone())
            .collect();
        buckets.sort();
        buckets.dedup();
        buckets
    }

    /// The ids of the open items of every reviewed bucket, oldest first: listings only.
    ///
    /// # Errors
    /// S3 failed.
    pub async fn review_ids(&self) -> Result<Vec<(String, review::Queued)>, ReviewError> {
        let mut queued = Vec::new();
        for bucket in self.review_buckets() {
            for q in review::queue(&self.s3, &bucket).await? {
                queued.push((bucket.clone(), q));
            }
        }
        queued
            .sort_by(|a, b| (a.1.created_at, &a.1.trace_id).cmp(&(b.1.created_at, &b.1.trace_id)));
        Ok(queued)
    }

    /// The open items of every reviewed bucket, oldest first.
    ///
    /// # Errors
    /// S3 failed or an item is not valid.
    pub async fn review_queue(&self) -> Result<Vec<ReviewItem>, ReviewError> {
        use futures::{StreamExt, TryStreamExt};
        let queued = self.review_ids().await?;
        let items: Vec<Option<ReviewItem>> = futures::stream::iter(queued)
            .map(|(bucket, q)| async move { review::item(&self.s3, &bucket, &q.trace_id).await })
            .buffered(16)
            .try_collect()
            .await?;
        Ok(items.into_iter().flatten().collect())
    }

    /// Packs the results of today and yesterday (UTC) in every rule's bucket, where enough rows
    /// were added since their last pack (see [`review::results_of_day`]).
    pub async fn pack_recent_results(&self) {
        let now = self.clock.now_secs();
        let days = [
            crate::clock::day(now.saturating_sub(86_400)),
            crate::clock::day(now),
        ];
        for bucket in self.rules.buckets() {
            for day in &days {
                if let Err(e) = review::results_of_day(&self.s3, bucket, day).await {
                    tracing::warn!(%bucket, %day, error = %e, "Results not packed; trying later.");
                }
            }
        }
    }

    /// One page of the open items, oldest first: those after the marker `after`
    /// (`<created_at>-<trace_id>`, as [`ReviewPage::next`] gives it) that `keeps` keeps, at most
    /// `size`. One listing of the markers, and only as many items read as the page needs (all of
    /// the rest when a filter keeps few).
    ///
    /// # Errors
    /// S3 failed or an item is not valid.
    pub async fn review_page(
        &self,
        after: Option<&str>,
        size: usize,
        keeps: impl Fn(&ReviewItem) -> bool,
    ) -> Result<ReviewPage, ReviewError> {
        use futures::{StreamExt, TryStreamExt};
        let size = size.max(1);
        let queued = self.review_ids().await?;
        let cursor = after.and_then(|after| {
            let (at, id) = after.split_once('-')?;
            Some((at.parse::<u64>().ok()?, id.to_owned()))
        });
        let start = cursor.map_or(0, |(at, id)| {
            queued.partition_point(|(_, q)| (q.created_at, q.trace_id.as_str()) <= (at, &id))
        });
        let mut items = Vec::new();
        let mut consumed = start;
        'pages: for chunk in queued[start..].chunks(size) {
            let read: Vec<Option<ReviewItem>> = futures::stream::iter(chunk.to_vec())
                .map(
                    |(bucket, q)| async move { review::item(&self.s3, &bucket, &q.trace_id).await },
                )
                .buffered(16)
                .try_collect()
                .await?;
            for item in read {
                consumed += 1;
                if let Some(item) = item.filter(|item| keeps(item)) {
                    items.push(item);
                    if items.len() == size {
                        break 'pages;
                    }
                }
            }
        }
        let next = (consumed < queued.len()).then(|| {
            let (_, q) = &queued[consumed - 1];
            format!("{}-{}", q.created_at, q.trace_id)
        });
        Ok(ReviewPage {
            items,
            total: queued.len(),
            next,
        })
    }

    /// Decides an item: the first decision wins; a second gets [`ReviewError::Conflict`] (unless
    /// it is the same person giving the same verdict again, which finishes the first).
    ///
    /// # Errors
    /// No such item, no reason given, decided already, or S3 failed (deciding again finishes).
    pub async fn decide_review(
        &self,
        trace_id: &str,
        request: &DecideRequest,
    ) -> Result<Decided, ReviewError> {
        if request.reason.trim().is_empty() {
            return Err(ReviewError::NoReason);
        }
        let (item, _) = self.review_item(trace_id).await?;
        let decision = ReviewDecision {
            trace_id: trace_id.to_owned(),
            verdict: request.verdict,
            by: request.by.clone(),
            at: self.clock.now_secs(),
            reason: request.reason.trim().to_owned(),
            timeout: false,
            applied_at: None,
            holder: self.holder.clone(),
            lease_until: 0,
            takeover: 0,
        };
        self.claim_and_apply(&item, decision).await
    }

    /// The end of a lease taken now on an item of `bucket`/`key`'s rule.
    fn lease_until(&self, item: &ReviewItem) -> u64 {
        let lease = self.rules.find(&item.bucket, &item.key).map_or(
            crate::config::BlockConfig::default().review_lease_secs,
            |r| r.block.review_lease_secs,
        );
        self.clock.now_secs().saturating_add(lease)
    }

    async fn claim_and_apply(
        &self,
        item: &ReviewItem,
        mut decision: ReviewDecision,
    ) -> Result<Decided, ReviewError> {
        decision.lease_until = self.lease_until(item);
        match review::claim(&self.s3, &item.bucket, &decision).await? {
            Claim::Won => {
                crate::faults::point("review-claimed");
                self.apply_review(item, decision).await
            }
            Claim::Taken(theirs) => {
                let same = theirs.by == decision.by && theirs.verdict == decision.verdict;
                // Finishing an abandoned claim carries out theirs; it answers this request only
                // when it was the same decision.
                if let Some(done) = self.finish_abandoned(item, &theirs).await?
                    && same
                {
                    return Ok(done);
                }
                Err(ReviewError::Conflict(theirs))
            }
        }
    }

    /// Carries out a claimed decision whose holder's lease ran out before it was applied, if this
    /// process wins its takeover; None when it is not abandoned or another process took it over.
    async fn finish_abandoned(
        &self,
        item: &ReviewItem,
        theirs: &ReviewDecision,
    ) -> Result<Option<Decided>, ReviewError> {
        if !theirs.abandoned(self.clock.now_secs()) {
            return Ok(None);
        }
        let lease_until = self.lease_until(item);
        let Some(mine) =
            review::take_over(&self.s3, &item.bucket, theirs, &self.holder, lease_until).await?
        else {
            return Ok(None);
        };
        tracing::warn!(
            trace_id = %item.trace_id, holder = %theirs.holder, takeover = mine.takeover,
            "A review decision was claimed but not carried out before its lease ran out; carrying it out."
        );
        crate::faults::point("review-taken-over");
        Ok(Some(self.apply_review(item, mine).await?))
    }

    /// Carries out a claimed decision: the object, the callback, the job record, the history,
    /// the audit log, and last the queue.
    async fn apply_review(
        &self,
        item: &ReviewItem,
        mut decision: ReviewDecision,
    ) -> Result<Decided, ReviewError> {
        let rule = self
            .rules
            .find(&item.bucket, &item.key)
            .map_err(|_| ReviewError::NoRule {
                bucket: item.bucket.clone(),
                key: item.key.clone(),
            })?;
        let mut body = item.body.clone();
        body.data.terms.clear();
        body.data
            .note_terms(item.scenes.values().flat_map(|s| &s.segments));
        body.data.review = Some(ReviewInfo {
            state: decision.verdict.as_str().to_owned(),
            held: item.held,
            due_at: item.due_at,
            timeout: decision.timeout,
        });
        body.data.action = Some(ActionInfo {
            action: decision.verdict.as_str().to_owned(),
            by: decision.by.clone(),
            at: decision.at,
            reason: decision.reason.clone(),
        });
        let job = Job {
            version_id: item.version_id.clone(),
            etag: Some(item.etag.clone()),
            ..Job::new(item.bucket.clone(), item.key.clone())
        };
        let judged = item_decision(item);
        if !item.held {
            // Untagged before anything else, so a block records (and a restore puts back) the
            // object's own tags only. Gone is fine: the decision goes on and says so.
            let untagged = crate::block::mark_review(
                &self.s3,
                &item.bucket,
                &item.key,
                item.version_id.as_deref(),
                None,
            )
            .await;
            match untagged {
                Ok(()) | Err(crate::block::BlockError::Gone { .. }) => {}
                Err(e) if e.is_transient() => return Err(JobError::from(e).into()),
                Err(e) => tracing::warn!(error = %e, "Could not remove the review tag."),
            }
        }
        let callback = match (decision.verdict, item.held) {
            (ReviewVerdict::Pass, true) => {
                body.data.result = Severity::Normal;
                let record = self.block_of(&item.bucket, &item.key).await?;
                let request = RestoreRequest {
                    by: decision.by.clone(),
                    reason: decision.reason.clone(),
                    mark_normal: false,
                };
                let restored = self.undo(record, &request, Some(body.clone())).await?;
                body.data.forbidden_status = ForbiddenStatus::NotBlocked;
                body.data.backup_key = None;
                match restored {
                    Restored::Done { callback, .. } => callback,
                    Restored::Already { .. } => None,
                }
            }
            (verdict, held) => {
                if verdict == ReviewVerdict::Block {
                    body.data.result = Severity::Sensitive;
                    if !held {
                        let target = OwnedTarget {
                            version_id: item.version_id.clone(),
                            etag: item.etag.clone(),
                            size: item.size,
                            sha256: sha256_of(item),
                        };
                        let enforced = self
                            .block_now(&job, rule, &target, &judged, &item.trace_id)
                            .await?;
                        body.data.forbidden_status = enforced.status;
                        body.data.backup_key = enforced.backup;
                        if let Some((code, message)) = enforced.failure {
                            body.code = code.as_i32();
                            body.message = message;
                        }
                    }
                    if rule.block.learn && body.code == 0 {
                        match self.reload_clip(&job, rule).await {
                            Some(clip) => self.learn(rule, &clip, &judged, &job).await,
                            None => tracing::warn!(
                                "block.learn: the audio could not be decoded again; not added to the library"
                            ),
                        }
                    }
                } else {
                    body.data.result = Severity::Normal;
                }
                let callback = self
                    .call_back(&item.bucket, rule, &item.trace_id, &body)
                    .await?;
                state::record_job(
                    &self.s3,
                    &item.bucket,
                    &JobRecord {
                        trace_id: item.trace_id.clone(),
                        finished_at: decision.at,
                        callback: callback.label().to_owned(),
                        body: body.clone(),
                        library: self.library_as_of(rule),
                    },
                )
                .await?;
                let entry = AuditEntry {
                    at: decision.at,
                    by: decision.by.clone(),
                    action: format!("review-{}", decision.verdict.as_str()),
                    bucket: item.bucket.clone(),
                    key: Some(item.key.clone()),
                    trace_id: Some(item.trace_id.clone()),
                    reason: decision.reason.clone(),
                    detail: serde_json::json!({
                        "held": item.held,
                        "timeout": decision.timeout,
                        "forbidden_status": body.data.forbidden_status.as_u8(),
                        "code": body.code,
                    }),
                };
                blocks::append_audit(&self.s3, &entry).await?;
                Some(callback)
            }
        };
        self.record_result(&item.bucket, rule, item.created_at, &body)
            .await;
        decision.applied_at = Some(self.clock.now_secs());
        review::close(&self.s3, item, &decision).await?;
        let event = match decision.timeout {
            true => format!("timeout-{}", decision.verdict.as_str()),
            false => decision.verdict.as_str().to_owned(),
        };
        self.metrics.review(&rule.id, &event);
        tracing::info!(
            trace_id = %item.trace_id, verdict = decision.verdict.as_str(), by = %decision.by,
            timeout = decision.timeout, "Review decided."
        );
        Ok(Decided {
            decision,
            callback,
            body,
        })
    }

    /// Files a result in the history (a failure is logged: the history is for people).
    pub(super) async fn record_result(
        &self,
        bucket: &str,
        rule: &Rule,
        judged_at: u64,
        body: &Body,
    ) {
        let data = &body.data;
        let scenes = rule
            .scenes
            .iter()
            .filter_map(|scene| {
                let info = match scene {
                    crate::model::Scene::Porn => Some(&data.porn_info),
                    crate::model::Scene::Ads => Some(&data.ads_info),
                    crate::model::Scene::Illegal => data.illegal_info.as_ref(),
                    crate::model::Scene::Abuse => data.abuse_info.as_ref(),
                }?;
                Some((*scene, info.score, info.label.clone()))
            })
            .collect();
        let row = ResultRow {
            judged_at,
            trace_id: data.trace_id.clone(),
            bucket: bucket.to_owned(),
            key: data.key.clone(),
            rule: rule.id.clone(),
            source: data.source.clone().unwrap_or_default(),
            code: body.code,
            message: body.message.clone(),
            result: data.result.as_u8(),
            forbidden_status: data.forbidden_status.as_u8(),
            scenes,
            review: data.review.as_ref().map(|r| r.state.clone()),
            terms: data.terms.clone(),
        };
        if let Err(e) = review::record_result(&self.s3, &row).await {
            tracing::warn!(error = %e, "Could not file the result in the history.");
        }
    }
}

/// The decision an item was opened with, as judging made it (for the block record's references
/// and `block.learn`'s label).
fn item_decision(item: &ReviewItem) -> Decision {
    let scenes: BTreeMap<_, _> = item
        .scenes
        .iter()
        .map(|(scene, s)| {
            let result = SceneResult {
                hit_flag: HitFlag::for_score(s.score),
                score: s.score,
                label: s.label.clone(),
                segments: s.segments.clone(),
            };
            (*scene, result)
        })
        .collect();
    Decision {
        top_scene: Some(item.scene),
        result: Severity::for_score(item.score),
        scenes,
        block: true,
    }
}

fn sha256_of(item: &ReviewItem) -> [u8; 32] {
    let mut out = [0u8; 32];
    // Written by earshot from a digest; a damaged item blocks nothing it cannot verify.
    let _ = hex::decode_to_slice(&item.sha256, &mut out);
    out
}
