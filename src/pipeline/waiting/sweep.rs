//! The sweep: every `async_jobs.sweep_secs` (`earshot serve`) or on a schedule (Lambda), a look
//! at every waiting job in the rules' buckets.

use std::collections::HashSet;

use super::super::combine::engine_outcome;
use super::super::{Disposition, JobError, Pipeline};
use crate::state::pending;

impl Pipeline {
    /// Polls for results that are late, gives up on those past their deadline, finishes the
    /// complete ones, counts the tasks still outstanding against the providers' task slots (also
    /// those created before a restart or by another replica), and frees task slots held for jobs
    /// that no longer wait. A job that can never finish (its rule is gone, its record is corrupt)
    /// is parked in the dead-job area with the reason.
    pub async fn sweep(&self) {
        let now = self.clock.now_secs();
        let buckets = self.rules.buckets();
        // Only slots held before the listing may be freed: a job is stored as waiting before its
        // slot is taken, so such a job, if it still waits, is in the listing. A slot taken since
        // may belong to a job the listing missed.
        let held_before: Vec<(&String, Vec<String>)> = self
            .engines
            .iter()
            .filter_map(|(name, engine)| Some((name, engine.provider()?.tasks_held())))
            .collect();
        let mut awaited = HashSet::new();
        let mut unsure = HashSet::new();
        let mut listed = true;
        for bucket in buckets {
            let waiting = match pending::waiting_in(&self.s3, bucket).await {
                Ok(waiting) => waiting,
                Err(e) => {
                    tracing::warn!(error = %e, "Could not list waiting jobs.");
                    listed = false;
                    continue;
                }
            };
            for trace_id in waiting {
                match self.sweep_one(bucket, &trace_id, now, &mut awaited).await {
                    Ok(()) => {}
                    Err(e) if e.disposition() == Disposition::DeadLetter => {
                        self.park_waiting(bucket, &trace_id, &e).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, %trace_id, "Sweeping a waiting job failed; next sweep retries.");
                        unsure.insert(trace_id);
                    }
                }
            }
        }
        if !listed {
            return;
        }
        for (name, held) in held_before {
            let Some(provider) = self.engines[name].provider() else {
                continue;
            };
            for trace_id in held {
                if !unsure.contains(&trace_id)
                    && !awaited.contains(&(name.clone(), trace_id.clone()))
                {
                    provider.task_done(&trace_id);
                }
            }
        }
    }

    async fn sweep_one(
        &self,
        bucket: &str,
        trace_id: &str,
        now: u64,
        awaited: &mut HashSet<(String, String)>,
    ) -> Result<(), JobError> {
        let found = pending::load(&self.s3, bucket, trace_id).await?;
        let Some(waiting) = &found.job else {
            // Leftovers of a job cleared while a result was being stored.
            pending::clear(&self.s3, bucket, trace_id).await?;
            return Ok(());
        };
        let mut complete = true;
        for name in found.missing() {
            let Some(provider) = self.engines.get(&name).and_then(|e| e.provider()) else {
                let gone = engine_outcome(
                    &name,
                    Err(format!("engine {name} is no longer configured")),
                    "deadline",
                    now,
                );
                pending::put_result(&self.s3, bucket, trace_id, &gone).await?;
                continue;
            };
            let timing = provider.timing();
            let task = found.tasks.iter().find(|t| t.engine == name);
            if task.is_none() && self.in_flight_here(trace_id) {
                // Still being submitted by this process (waiting for a task slot, which may take
                // up to the deadline of the tasks ahead of it): its deadline starts with its task.
                complete = false;
                awaited.insert((name.clone(), trace_id.to_owned()));
                continue;
            }
            let deadline_at = task.map_or(waiting.created_at + timing.deadline.as_secs(), |t| {
                t.deadline_at
            });
            if now >= deadline_at {
                if let Some(task) = task {
                    self.metrics.task_polls(&name, task.polls);
                }
                let mut late = engine_outcome(
                    &name,
                    Err(format!(
                        "no result from engine {name} within {} s (task {})",
                        timing.deadline.as_secs(),
                        task.map_or("never created", |t| t.task_id.as_str())
                    )),
                    "deadline",
                    now,
                );
                late.timed_out = true;
                tracing::error!(%trace_id, key = %waiting.key, engine = %name, "Engine result overdue; giving up.");
                pending::put_result(&self.s3, bucket, trace_id, &late).await?;
                provider.task_done(trace_id);
                continue;
            }
            let polled = match task {
                Some(task) if now >= task.poll_at => {
                    let answer = provider.poll(&task.task_id, trace_id).await;
                    let (polled, said) = match answer {
                        Ok(Some(result)) => (Some(result), "result"),
                        Ok(None) => (None, "running"),
                        Err(e) => {
                            tracing::warn!(error = %e, %trace_id, "Polling for a late result failed.");
                            (None, "failed")
                        }
                    };
                    self.metrics.engine_poll(&name, said);
                    let asked = task.after_poll(now, timing.poll_after.as_secs());
                    if polled.is_some() {
                        self.metrics.task_polls(&name, asked.polls);
                    } else {
                        // Asked again one (growing) interval later, not at every sweep.
                        pending::put_task(&self.s3, bucket, trace_id, &asked).await?;
                    }
                    polled
                }
                _ => None,
            };
            match polled {
                Some(result) => {
                    tracing::info!(%trace_id, engine = %name, "No callback in time; result fetched by polling.");
                    self.metrics.engine_result(&name, "poll");
                    let polled = engine_outcome(&name, result.outcome, "poll", now);
                    pending::put_result(&self.s3, bucket, trace_id, &polled).await?;
                    provider.task_done(trace_id);
                }
                None => {
                    complete = false;
                    if task.is_some() {
                        provider.task_outstanding(trace_id);
                    }
                    awaited.insert((name.clone(), trace_id.to_owned()));
                }
            }
        }
        if complete {
            self.finish(bucket, trace_id).await?;
        }
        Ok(())
    }

    /// Parks a waiting job that can never finish and clears its files; a failure is logged and
    /// the next sweep tries again.
    async fn park_waiting(&self, bucket: &str, trace_id: &str, error: &JobError) {
        let job = match pending::load(&self.s3, bucket, trace_id).await {
            Ok(found) => found.job.map(|w| super::waiting_job(&w)),
            Err(e) => {
                tracing::warn!(error = %e, %trace_id, "Could not read a waiting job to park it.");
                return;
            }
        };
        let job = job.unwrap_or_else(|| crate::job::Job::new(bucket, trace_id));
        if self
            .park(&job, "sweep", 1, &error.to_string())
            .await
            .is_ok()
        {
            self.clear_waiting(bucket, trace_id).await;
        }
    }
}
