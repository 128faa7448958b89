//! `earshot scan`: moderate what is already stored (DESIGN §2, "stock" moderation), under the same
//! rules as uploads: scope, suffix, caps, engines, block and callback, with `"source": "scan"`.
//!
//! The objects come from a listing, an S3 Inventory report or a file of keys ([`input`]), filtered
//! by the rules, by `LastModified` and by a count. An object version judged before (it has a job
//! record) is skipped unless the scan re-judges: all of them, or only those judged with an older
//! library. They are judged here, at most `concurrency` at once, or put on the SQS queue for every
//! daemon to share (never past a backlog ceiling, so live uploads are not starved).
//!
//! A scan is resumable: its checkpoint (how far it got, in input order, and its counts) is kept in
//! the bucket under `scans/<id>/`, where the id is derived from what the scan reads, so the same
//! command started again continues where it stopped. Objects are judged concurrently but the
//! checkpoint only moves past an object once it and every object before it are done, and a job
//! record is written for every judged object, so nothing is judged or called back twice. At the
//! end a report (counts by outcome, failures with reasons) is printed and kept beside it.

mod enqueue;
mod held;
pub mod input;
mod progress;

use self::enqueue::send_batch;
use self::progress::Progress;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::job::{Job, Origin};
use crate::layout;
use crate::pipeline::{Ack, Outcome, Pipeline};
use crate::rules::key_suffix;
use crate::state::{self, StateError};
pub use input::{Candidate, Input};

/// Which judged objects a scan judges again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rescan {
    /// None: what has a job record is skipped.
    No,
    /// Every object.
    All,
    /// Objects judged before the newest reference of their rule's library was added.
    LibraryChanged,
}

/// What a scan reads and how it runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub bucket: String,
    pub prefix: String,
    pub input: Input,
    /// Only objects last modified at or after this (seconds since the epoch).
    pub since: Option<u64>,
    /// Only objects last modified before this.
    pub until: Option<u64>,
    /// Stop after judging (or enqueueing) this many objects.
    pub max_objects: Option<u64>,
    pub rescan: Rescan,
    /// Jobs at once when judging here.
    pub concurrency: usize,
    /// Put the jobs on this SQS queue instead of judging here.
    pub enqueue: Option<Enqueue>,
    /// Count what would be judged; judge nothing.
    pub dry_run: bool,
    /// Draw a progress bar (on a terminal) instead of periodic log lines.
    pub progress_bar: bool,
}

impl Options {
    /// A scan of everything listed under `prefix`, judged here, four at a time, skipping what was
    /// judged before: `earshot scan s3://bucket/prefix` with no options.
    pub fn listing(bucket: &str, prefix: &str) -> Options {
        Options {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            input: Input::Listing,
            since: None,
            until: None,
            max_objects: None,
            rescan: Rescan::No,
            concurrency: 4,
            enqueue: None,
            dry_run: false,
            progress_bar: false,
        }
    }
}

/// `--enqueue`: the queue and its backlog ceiling.
#[derive(Debug, Clone)]
pub struct Enqueue {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    /// Wait while the queue holds this many messages or more.
    pub max_backlog: u64,
}

/// A scan's counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Records read from the input.
    pub read: u64,
    /// Keys no rule covers (prefix, exclusions, suffix, or earshot's own).
    pub out_of_scope: u64,
    /// Outside `--since`/`--until`.
    pub out_of_window: u64,
    /// Judged before and not re-judged.
    pub already_judged: u64,
    /// Judged by this scan, by outcome (`blocked`, `passed`, `suspicious`, `unjudged`, …).
    pub judged: BTreeMap<String, u64>,
    /// Put on the queue (`--enqueue`).
    pub enqueued: u64,
    /// Could not be judged now; see the failures.
    pub failed: u64,
    /// Bytes of the objects judged or enqueued (or, in a dry run, to be judged).
    pub bytes: u64,
    /// Audio hours of those bytes, estimated from each format's typical bitrate.
    pub est_audio_hours: f64,
    /// Objects to be judged, by suffix (a dry run).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_suffix: BTreeMap<String, u64>,
}

impl Counts {
    /// Objects judged (any outcome) or enqueued.
    pub fn taken(&self) -> u64 {
        self.judged.values().sum::<u64>() + self.enqueued
    }
}

/// An object a scan could not judge, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub key: String,
    pub reason: String,
}

/// What a scan keeps in the bucket while it runs and when it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub id: String,
    pub bucket: String,
    pub prefix: String,
    pub input: String,
    pub started_at: u64,
    pub updated_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    /// Every input record up to this one is done.
    pub position: u64,
    /// The key of that record (a listing resumes after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_key: Option<String>,
    pub counts: Counts,
    /// The first failures (up to [`MAX_FAILURES_KEPT`]).
    #[serde(default)]
    pub failures: Vec<Failure>,
}

/// Failures listed in a checkpoint or report; the count covers all of them.
pub const MAX_FAILURES_KEPT: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Input(#[from] input::InputError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("enqueueing on {queue_url}: {message}")]
    Enqueue { queue_url: String, message: String },
    #[error(
        "scan {id} is running in another process ({holder}, its lease runs until {until}); \
         start it again after that to resume it"
    )]
    Busy {
        id: String,
        holder: String,
        until: u64,
    },
}

/// The id of the scan `options` describes: the same command gives the same id, so it resumes.
pub fn scan_id(options: &Options) -> String {
    use sha2::{Digest, Sha256};
    let text = format!(
        "{}\n{}\n{}\n{:?}\n{:?}\n{:?}\n{:?}\n{}",
        options.bucket,
        options.prefix,
        options.input.describe(),
        options.since,
        options.until,
        options.max_objects,
        options.rescan,
        options.enqueue.is_some()
    );
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// Typical bitrate per format (bits per second), for estimating audio hours from bytes.
fn typical_bitrate(suffix: &str) -> f64 {
    match suffix {
        "wav" => 1_411_200.0,
        "flac" => 800_000.0,
        "ape" => 700_000.0,
        "amr" | "3gp" => 12_200.0,
        _ => 128_000.0,
    }
}

fn est_hours(key: &str, bytes: u64) -> f64 {
    let suffix = key_suffix(key).unwrap_or_default();
    bytes as f64 * 8.0 / typical_bitrate(&suffix) / 3600.0
}

/// What to do with one candidate.
enum Step {
    Skip(fn(&mut Counts)),
    Take(Job),
}

/// Runs a scan to its end (or until `stop`), keeping its checkpoint; returns the final state.
/// One process runs a scan at a time (under its lease, see [`held`]).
///
/// # Errors
/// The scan runs in another process, the input or the bucket could not be read, or the queue
/// refused the jobs.
pub async fn run(
    pipeline: Arc<Pipeline>,
    options: Options,
    stop: CancellationToken,
) -> Result<Checkpoint, ScanError> {
    if options.dry_run {
        return run_held(pipeline, options, stop).await;
    }
    held::run(pipeline, options, stop).await
}

async fn run_held(
    pipeline: Arc<Pipeline>,
    options: Options,
    stop: CancellationToken,
) -> Result<Checkpoint, ScanError> {
    let id = scan_id(&options);
    let key = layout::scan_checkpoint_key(&id);
    let now = pipeline.clock.now_secs();
    let mut checkpoint: Checkpoint =
        match state::get_json::<Checkpoint>(&pipeline.s3, &options.bucket, &key).await? {
            // An unfinished scan of the same objects continues; a finished one is followed by a new
            // one (cheap: what the first judged has job records now).
            Some(found) if !options.dry_run && found.finished_at.is_none() => found,
            _ => Checkpoint {
                id: id.clone(),
                bucket: options.bucket.clone(),
                prefix: options.prefix.clone(),
                input: options.input.describe(),
                started_at: now,
                updated_at: now,
                finished_at: None,
                position: 0,
                position_key: None,
                counts: Counts::default(),
                failures: Vec::new(),
            },
        };
    if checkpoint.position > 0 {
        tracing::info!(scan = %id, position = checkpoint.position, "Resuming the scan where it stopped.");
    }
    let judged = judged_trace_ids(&pipeline, &options.bucket).await?;
    let (tx, rx) = mpsc::channel::<Candidate>(1024);
    let reader = {
        let s3 = pipeline.s3.clone();
        let (bucket, prefix, input) = (
            options.bucket.clone(),
            options.prefix.clone(),
            options.input.clone(),
        );
        let (skip, start_after) = (checkpoint.position, checkpoint.position_key.clone());
        let start_after = matches!(input, Input::Listing)
            .then_some(start_after)
            .flatten();
        tokio::spawn(async move {
            input::read(&s3, &bucket, &prefix, &input, skip, start_after, tx).await
        })
    };
    let candidates = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|candidate| (candidate, rx))
    });
    let mut progress = Progress::new(options.progress_bar, &id);
    let scan_started = checkpoint.started_at;
    let budget = options
        .max_objects
        .map(|max| max.saturating_sub(checkpoint.counts.taken()));
    let taken = std::sync::atomic::AtomicU64::new(0);
    let mut last_saved = Instant::now();
    let mut batch: Vec<(Candidate, Job)> = Vec::new();
    // Decide each candidate in order; judged ones run `concurrency` at once, and results come
    // back in input order, so the checkpoint can move past every record before the current one.
    let planned = candidates
        .take_while(|_| futures::future::ready(!stop.is_cancelled()))
        .then(|candidate| {
            let pipeline = pipeline.clone();
            let options = &options;
            let judged = &judged;
            async move {
                let step = plan(&pipeline, options, judged, &candidate, scan_started).await;
                (candidate, step)
            }
        })
        .take_while(|(_, step)| {
            // A skipped record costs nothing against `--max`; the first one over it ends the input.
            let over = matches!(step, Ok(Step::Take(_)))
                && budget.is_some_and(|b| taken.load(std::sync::atomic::Ordering::Relaxed) >= b);
            futures::future::ready(!over)
        });
    futures::pin_mut!(planned);
    let concurrency = options.concurrency.max(1);
    let mut running = futures::stream::FuturesOrdered::new();
    loop {
        // Keep up to `concurrency` jobs running; collect results in order.
        let next = if running.len() < concurrency {
            tokio::select! {
                biased;
                item = planned.next() => Some(item),
                done = running.next(), if !running.is_empty() => {
                    if let Some(done) = done { settle(&mut checkpoint, &mut progress, done); }
                    None
                }
            }
        } else if let Some(done) = running.next().await {
            settle(&mut checkpoint, &mut progress, done);
            None
        } else {
            None
        };
        match next {
            Some(Some((candidate, step))) => {
                checkpoint.counts.read += 1;
                match step? {
                    Step::Skip(count) => {
                        count(&mut checkpoint.counts);
                        running.push_back(
                            Box::pin(futures::future::ready((candidate, None))) as Pending
                        );
                    }
                    Step::Take(job) => {
                        taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let bytes = candidate.size;
                        checkpoint.counts.bytes += bytes;
                        checkpoint.counts.est_audio_hours += est_hours(&candidate.key, bytes);
                        if options.dry_run {
                            let suffix = key_suffix(&candidate.key).unwrap_or_default();
                            *checkpoint.counts.by_suffix.entry(suffix).or_default() += 1;
                            running.push_back(
                                Box::pin(futures::future::ready((candidate, None))) as Pending
                            );
                        } else if let Some(enqueue) = &options.enqueue {
                            batch.push((candidate, job));
                            if batch.len() >= 10 {
                                let sent = send_batch(enqueue, &mut batch).await?;
                                for candidate in sent {
                                    checkpoint.counts.enqueued += 1;
                                    running.push_back(Box::pin(futures::future::ready((
                                        candidate, None,
                                    )))
                                        as Pending);
                                }
                            }
                        } else {
                            let pipeline = pipeline.clone();
                            running.push_back(Box::pin(async move {
                                let handled = pipeline.handle(&job, "scan").await;
                                let result = match (handled.result, handled.ack) {
                                    (Ok(outcome), Ack::Done) => Ok(outcome),
                                    (Ok(outcome), Ack::Retry) => {
                                        Err(format!("not finished ({})", outcome.label()))
                                    }
                                    (Err(e), _) => Err(match handled.parked {
                                        Some(parked) => format!("{e} (parked at {parked})"),
                                        None => e.to_string(),
                                    }),
                                };
                                (candidate, Some(result))
                            }) as Pending);
                        }
                    }
                }
            }
            Some(None) => {
                // The input is exhausted (or the scan was stopped): send what is batched, then
                // let the running jobs finish.
                if let Some(enqueue) = &options.enqueue
                    && !batch.is_empty()
                {
                    for candidate in send_batch(enqueue, &mut batch).await? {
                        checkpoint.counts.enqueued += 1;
                        running.push_back(
                            Box::pin(futures::future::ready((candidate, None))) as Pending
                        );
                    }
                }
                while let Some(done) = running.next().await {
                    settle(&mut checkpoint, &mut progress, done);
                }
                break;
            }
            None => {}
        }
        if !options.dry_run && last_saved.elapsed() >= Duration::from_secs(2) {
            save(&pipeline, &mut checkpoint).await?;
            progress.log(&checkpoint);
            last_saved = Instant::now();
        }
    }
    let exhausted = !stop.is_cancelled();
    match reader.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            if !options.dry_run {
                save(&pipeline, &mut checkpoint).await?;
            }
            return Err(e.into());
        }
        Err(e) => tracing::error!(error = %e, "The scan's reader stopped."),
    }
    progress.finish(&checkpoint);
    if options.dry_run {
        return Ok(checkpoint);
    }
    if exhausted {
        checkpoint.finished_at = Some(pipeline.clock.now_secs());
        state::put_json(
            &pipeline.s3,
            &options.bucket,
            &layout::scan_report_key(&id),
            &checkpoint,
        )
        .await?;
        let entry = state::blocks::AuditEntry {
            at: pipeline.clock.now_secs(),
            by: std::env::var("USER").unwrap_or_else(|_| "earshot".to_owned()),
            action: "scan".to_owned(),
            bucket: options.bucket.clone(),
            key: None,
            trace_id: None,
            reason: format!("scan {id} of {} ({})", options.prefix, checkpoint.input),
            detail: serde_json::to_value(&checkpoint.counts).unwrap_or_default(),
        };
        state::blocks::append_audit(&pipeline.s3, &entry).await?;
    }
    save(&pipeline, &mut checkpoint).await?;
    Ok(checkpoint)
}

type Pending = std::pin::Pin<
    Box<dyn std::future::Future<Output = (Candidate, Option<Result<Outcome, String>>)> + Send>,
>;

/// Counts one finished record and moves the checkpoint past it (records finish in input order).
fn settle(
    checkpoint: &mut Checkpoint,
    progress: &mut Progress,
    (candidate, result): (Candidate, Option<Result<Outcome, String>>),
) {
    match result {
        None => {}
        Some(Ok(outcome)) => {
            *checkpoint
                .counts
                .judged
                .entry(outcome.label().to_owned())
                .or_default() += 1;
        }
        Some(Err(reason)) => {
            tracing::warn!(key = %candidate.key, %reason, "Scan could not judge an object.");
            checkpoint.counts.failed += 1;
            if checkpoint.failures.len() < MAX_FAILURES_KEPT {
                checkpoint.failures.push(Failure {
                    key: candidate.key.clone(),
                    reason,
                });
            }
        }
    }
    checkpoint.position = candidate.seq;
    checkpoint.position_key = Some(candidate.key);
    progress.tick(checkpoint);
}

/// Decides what a scan does with one candidate.
async fn plan(
    pipeline: &Pipeline,
    options: &Options,
    judged: &HashSet<String>,
    candidate: &Candidate,
    scan_started: u64,
) -> Result<Step, ScanError> {
    if crate::layout::is_reserved(&candidate.key) {
        // earshot's own objects (an inventory lists them too): not the user's, not counted.
        return Ok(Step::Skip(|_| {}));
    }
    let Ok(rule) = pipeline.rules().find(&options.bucket, &candidate.key) else {
        return Ok(Step::Skip(|c| c.out_of_scope += 1));
    };
    if !candidate.key.starts_with(&options.prefix) {
        return Ok(Step::Skip(|c| c.out_of_scope += 1));
    }
    if let Some(modified) = candidate.last_modified
        && (options.since.is_some_and(|t| modified < t)
            || options.until.is_some_and(|t| modified >= t))
    {
        return Ok(Step::Skip(|c| c.out_of_window += 1));
    }
    let mut job = Job::new(options.bucket.clone(), candidate.key.clone()).with_origin(Origin::Scan);
    job.etag = candidate.etag.clone();
    job.version_id = candidate.version_id.clone();
    job.size = (candidate.size > 0).then_some(candidate.size);
    let trace_id = job.trace_id();
    let seen = job.etag.is_some() && judged.contains(&trace_id);
    match options.rescan {
        Rescan::No if seen => return Ok(Step::Skip(|c| c.already_judged += 1)),
        Rescan::No => {}
        Rescan::All | Rescan::LibraryChanged if !seen => {}
        Rescan::All | Rescan::LibraryChanged => {
            let record = state::finished_job(&pipeline.s3, &options.bucket, &trace_id).await?;
            if let Some(record) = record {
                // Judged again by this very scan before it was interrupted.
                let this_scan = record.finished_at >= scan_started
                    && record.body.data.source.as_deref() == Some("scan");
                let current =
                    options.rescan == Rescan::All || record.library >= pipeline.library_as_of(rule);
                if this_scan || current {
                    return Ok(Step::Skip(|c| c.already_judged += 1));
                }
            }
            job.rejudge = true;
        }
    }
    Ok(Step::Take(job))
}

/// The trace ids of every job record in the bucket (one listing, no GETs).
async fn judged_trace_ids(pipeline: &Pipeline, bucket: &str) -> Result<HashSet<String>, ScanError> {
    Ok(state::keys_under(&pipeline.s3, bucket, layout::JOBS_PREFIX)
        .await?
        .iter()
        .filter_map(|k| k.strip_prefix(layout::JOBS_PREFIX)?.strip_suffix(".json"))
        .map(str::to_owned)
        .collect())
}

async fn save(pipeline: &Pipeline, checkpoint: &mut Checkpoint) -> Result<(), ScanError> {
    checkpoint.updated_at = pipeline.clock.now_secs();
    let key = layout::scan_checkpoint_key(&checkpoint.id);
    state::put_json(&pipeline.s3, &checkpoint.bucket, &key, checkpoint).await?;
    Ok(())
}

/// Every scan kept in the bucket, newest first.
///
/// # Errors
/// The bucket could not be read.
pub async fn scans(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Vec<Checkpoint>, ScanError> {
    let mut found: Vec<Checkpoint> = state::list_json(s3, bucket, layout::SCANS_PREFIX)
        .await?
        .into_iter()
        .filter(|(key, _)| key.ends_with("/checkpoint.json"))
        .map(|(_, checkpoint)| checkpoint)
        .collect();
    found.sort_by_key(|c| std::cmp::Reverse(c.started_at));
    Ok(found)
}
