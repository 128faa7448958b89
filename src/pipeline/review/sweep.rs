//! The review sweep, run by `earshot serve` every so often: abandoned claims finished, overdue
//! items decided by `on_review_timeout`.

use super::{Pipeline, ReviewError};
use crate::config::Review;
use crate::state::review::{self, ReviewDecision};

impl Pipeline {
    /// Finishes the decisions whose holder stopped before carrying them out (their lease ran
    /// out), then lets `on_review_timeout` decide the items nobody decided by their `due_at`;
    /// returns how many it decided or finished.
    pub async fn expire_reviews(&self) -> usize {
        let now = self.clock.now_secs();
        let shortest = self
            .rules
            .all()
            .iter()
            .filter(|r| r.block.review == Review::Human)
            .map(|r| r.block.review_timeout_secs)
            .min()
            .unwrap_or(u64::MAX);
        let mut decided = 0;
        for bucket in self.review_buckets() {
            decided += self.finish_claims(&bucket).await;
            let queued = match review::queue(&self.s3, &bucket).await {
                Ok(queued) => queued,
                Err(e) => {
                    tracing::warn!(%bucket, error = %e, "Review queue cannot be read; trying later.");
                    continue;
                }
            };
            let mut settled = std::collections::HashSet::new();
            // Markers sort oldest first: once one is too young to be due under any rule, so
            // are the rest.
            for q in queued
                .iter()
                .take_while(|q| q.created_at.saturating_add(shortest) <= now)
            {
                let item = match review::item(&self.s3, &bucket, &q.trace_id).await {
                    Ok(Some(item)) if item.due_at <= now => item,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(trace_id = %q.trace_id, error = %e, "Review item cannot be read.");
                        continue;
                    }
                };
                let decision = ReviewDecision {
                    trace_id: item.trace_id.clone(),
                    verdict: item.on_timeout,
                    by: "earshot".to_owned(),
                    at: now,
                    reason: format!(
                        "no decision within {} s (on_review_timeout = \"{}\")",
                        item.due_at - item.created_at,
                        item.on_timeout.as_str()
                    ),
                    timeout: true,
                    applied_at: None,
                    holder: self.holder.clone(),
                    lease_until: 0,
                    takeover: 0,
                };
                match self.claim_and_apply(&item, decision).await {
                    Ok(_) | Err(ReviewError::Conflict(_)) => {
                        decided += 1;
                        settled.insert(q.trace_id.as_str());
                    }
                    Err(e) => {
                        tracing::warn!(trace_id = %item.trace_id, error = %e, "Review timeout not carried out; trying later.")
                    }
                }
            }
            let longest = self
                .rules
                .all()
                .iter()
                .filter(|r| r.block.review == Review::Human && r.bucket == bucket)
                .map(|r| r.block.review_timeout_secs)
                .max()
                .unwrap_or(0);
            let oldest = queued
                .iter()
                .filter(|q| !settled.contains(q.trace_id.as_str()))
                .map(|q| now.saturating_sub(q.created_at))
                .max()
                .unwrap_or(0);
            self.metrics
                .review_backlog(&bucket, queued.len() - settled.len(), oldest, longest);
        }
        decided
    }

    /// Finishes the claimed decisions of `bucket` whose lease ran out unapplied (one listing of
    /// the claim markers; a marker of a decision already applied is removed). Returns how many it
    /// carried out.
    async fn finish_claims(&self, bucket: &str) -> usize {
        let claimed = match review::claimed(&self.s3, bucket).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(%bucket, error = %e, "Review claims cannot be listed; trying later.");
                return 0;
            }
        };
        let mut finished = 0;
        for trace_id in claimed {
            let current = match review::current(&self.s3, bucket, &trace_id).await {
                Ok(current) => current,
                Err(e) => {
                    tracing::warn!(%trace_id, error = %e, "Review decision cannot be read.");
                    continue;
                }
            };
            let Some(theirs) = current.filter(|d| d.applied_at.is_none()) else {
                if let Err(e) = review::unmark_claimed(&self.s3, bucket, &trace_id).await {
                    tracing::warn!(%trace_id, error = %e, "Review claim marker not removed.");
                }
                continue;
            };
            if !theirs.abandoned(self.clock.now_secs()) {
                continue;
            }
            let item = match review::item(&self.s3, bucket, &trace_id).await {
                Ok(Some(item)) => item,
                Ok(None) => {
                    tracing::warn!(%trace_id, "A claimed review decision has no item; left alone.");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(%trace_id, error = %e, "Review item cannot be read.");
                    continue;
                }
            };
            match self.finish_abandoned(&item, &theirs).await {
                Ok(Some(_)) => finished += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%trace_id, error = %e, "Abandoned review decision not carried out; trying later.")
                }
            }
        }
        finished
    }
}
