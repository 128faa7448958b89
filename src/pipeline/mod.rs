//! One job through the flow of DESIGN §1. [`Pipeline::process`] reads like the flow:
//!
//! ```text
//! rule ─▶ identify ─▶ claim ─▶ judge (fetch ─▶ decode ─▶ engines ─▶ decide ─▶ block) ─▶ conclude (callback ─▶ record)
//! ```
//!
//! - [`judge`]: fetch, decode, ask the engines, settle (decision, failure policy, block);
//! - [`waiting`]: jobs handed to a provider that answers later (hand-over, receiving a result,
//!   finishing, the sweep), kept in the bucket by [`crate::state::pending`];
//! - [`combine`]: several engines' answers as one (pure);
//! - [`report`]: the callback body (pure);
//! - [`undo`]: restores, and what keeps restored or allow-listed audio from being blocked again;
//! - [`review`]: human review (`review = "human"`): items held for a person, their decisions and
//!   timeouts;
//! - [`outcome`]: how a job ends, and the one place that classifies what a source does about it
//!   ([`Pipeline::handle`]).
//!
//! Bad input (not audio, corrupt, empty, too large, too long, gone, changed) is not an error here:
//! it is judged, called back with its code, and recorded like any other finished job.

mod combine;
mod judge;
mod outcome;
mod report;
mod review;
mod settle;
mod undo;
pub mod waiting;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use tracing::Instrument;

pub use judge::Judgement;
pub use outcome::{Ack, CallbackOutcome, Disposition, Handled, JobError, Outcome};
pub use review::{DecideRequest, Decided, ReviewError, ReviewPage};
pub use undo::{RestoreRequest, Restored, UndoError};
pub use waiting::{Received, Rejection};

use crate::callback::{Body, Delivery, Notifier, Request};
use crate::clock::Clock;
use crate::config::Config;
use crate::engines::{self, Engine, Engines};
use crate::fetch;
use crate::job::Job;
use crate::layout;
use crate::metrics::Metrics;
use crate::rules::{Rule, Rules};
use crate::state::lease::{self, Taken};
use crate::state::{self, DeadJob, DeadLetter, JobRecord};
use crate::storage;
use crate::token;
use report::Report;

/// How long a called-back job keeps trying to write its record while S3 refuses it, by default,
/// before it is left for its retry (its lease renewed meanwhile).
const RECORD_PATIENCE: Duration = Duration::from_secs(120);

/// Everything a job needs, built once.
pub struct Pipeline {
    pub config: Arc<Config>,
    pub s3: Client,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    /// Work that outlives the request that started it (finishing a job after its provider was
    /// answered); `earshot serve` waits for it at shutdown.
    pub tasks: tokio_util::task::TaskTracker,
    rules: Rules,
    engines: Engines,
    notifier: Notifier,
    spool_dir: PathBuf,
    in_flight: Mutex<HashSet<String>>,
    tokens: Option<token::Signer>,
    /// This process as the holder of the review decisions it claims.
    holder: String,
    /// Jobs called back whose record S3 would not take: the body and how its callback went, so
    /// that the job's retry in this process writes the record and does not call back again.
    unrecorded: Mutex<HashMap<String, (Body, CallbackOutcome)>>,
    record_patience: Duration,
}

/// Holds a trace id in the in-flight set; removes it when the job ends, however it ends.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<String>>,
    trace_id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .expect("the in-flight set is never poisoned: no code panics while holding it")
            .remove(&self.trace_id);
    }
}

impl Pipeline {
    /// Builds the S3 client and the engines.
    ///
    /// # Errors
    /// An engine could not load its reference data.
    pub async fn new(config: Config) -> Result<Pipeline, engines::EngineError> {
        let metrics = Arc::new(Metrics::default());
        let s3 = storage::s3_client_counted(&config.s3, metrics.s3_counters()).await;
        let engines = engines::build(&config, &s3).await?;
        let tokens = config
            .async_jobs
            .token_key
            .as_deref()
            .map(token::Signer::new);
        Ok(Pipeline {
            rules: Rules::new(&config.rules),
            config: Arc::new(config),
            s3,
            metrics,
            clock: Clock::system(),
            tasks: tokio_util::task::TaskTracker::new(),
            engines,
            notifier: Notifier::default(),
            spool_dir: std::env::temp_dir(),
            in_flight: Mutex::new(HashSet::new()),
            tokens,
            holder: crate::state::review::holder_id(),
            unrecorded: Mutex::new(HashMap::new()),
            record_patience: RECORD_PATIENCE,
        })
    }

    /// How long a called-back job keeps trying to write its record while S3 refuses it before it
    /// is left for its retry (which then only writes the record); 120 s unless set.
    pub fn with_record_patience(mut self, patience: Duration) -> Pipeline {
        self.record_patience = patience;
        self
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The configured engines, by name.
    pub fn engines(&self) -> &Engines {
        &self.engines
    }

    /// Runs one job to its end: judged, blocked if due, called back, recorded.
    ///
    /// # Errors
    /// The job could not run to its end; [`JobError::disposition`] says whether it can.
    pub async fn process(&self, job: &Job) -> Result<Outcome, JobError> {
        let rule = match self.rules.find(&job.bucket, &job.key) {
            Ok(rule) => rule,
            Err(skip) => {
                tracing::debug!(bucket = %job.bucket, key = %job.key, reason = %skip, "Skipped.");
                self.metrics.job("", "skipped");
                return Ok(Outcome::Skipped(skip));
            }
        };
        let started = Instant::now();
        let _in_flight = self.metrics.job_started();
        let result = async {
            let job = self.identify(job).await?;
            let trace_id = job.trace_id();
            let span = tracing::info_span!("job", %trace_id, bucket = %job.bucket, key = %job.key, rule = %rule.id);
            self.run(&job, rule, trace_id).instrument(span).await
        }
        .await;
        self.metrics
            .job(&rule.id, result.as_ref().map_or("failed", Outcome::label));
        if matches!(result, Ok(Outcome::Finished { .. })) {
            self.metrics.stage("job", started);
        }
        result
    }

    /// Runs one job for a source and says what the source does with its event: the one place
    /// that classifies outcomes and errors for every source. A job that can never succeed as it
    /// stands is parked in the bucket's dead-job area, with the reason, and acknowledged.
    pub async fn handle(&self, job: &Job, source: &str) -> Handled {
        let result = self.process(job).await;
        let (ack, parked) = match &result {
            Ok(Outcome::InProgress { .. }) => (Ack::Retry, None),
            Ok(_) => (Ack::Done, None),
            Err(e) if e.disposition() == Disposition::Retry => (Ack::Retry, None),
            Err(e) => match self.park(job, source, 1, &e.to_string()).await {
                Ok(key) => (Ack::Done, Some(key)),
                Err(park) => {
                    tracing::error!(error = %park, "Could not park a failed job; its event is left for a retry.");
                    (Ack::Retry, None)
                }
            },
        };
        Handled {
            result,
            ack,
            parked,
        }
    }

    /// Parks a job that could not be run, with the reason, where a person sees it and
    /// `earshot jobs replay` finds it; returns its key.
    ///
    /// # Errors
    /// The record could not be written.
    pub async fn park(
        &self,
        job: &Job,
        source: &str,
        attempts: u32,
        reason: &str,
    ) -> Result<String, state::StateError> {
        let dead = DeadJob {
            job: job.clone(),
            parked_at: self.clock.now_secs(),
            source: source.to_owned(),
            attempts,
            reason: reason.to_owned(),
        };
        let key = state::park(&self.s3, &dead).await?;
        self.metrics.parked(source);
        tracing::error!(bucket = %job.bucket, key = %job.key, dead_job = %key, %reason, "Job parked; `earshot jobs replay` runs it again.");
        Ok(key)
    }

    /// The job with its object version pinned. Events carry the ETag (and version); a job without
    /// either (`earshot moderate s3://…`) takes them from HEAD, so that its trace id names this
    /// version and a later upload to the same key is never mistaken for a duplicate.
    async fn identify(&self, job: &Job) -> Result<Job, JobError> {
        let mut job = job.clone();
        if job.etag.is_some() || job.version_id.is_some() {
            return Ok(job);
        }
        match fetch::head(&self.s3, &job).await {
            Ok(head) => {
                job.etag = Some(head.etag);
                job.version_id = head.version_id;
            }
            Err(e) if e.is_transient() => return Err(e.into()),
            // Gone or refused: judged (and called back) as such under the key-only identity.
            Err(_) => {}
        }
        Ok(job)
    }

    /// Claims the object version, skips what was done before, judges, concludes.
    async fn run(&self, job: &Job, rule: &Rule, trace_id: String) -> Result<Outcome, JobError> {
        let Some(_claim) = self.claim(&trace_id) else {
            tracing::info!(
                "Same object version is being judged already; this delivery is left for later."
            );
            return Ok(Outcome::InProgress {
                trace_id,
                elsewhere_until: None,
            });
        };
        // Across processes (two daemons given the same event, a scan and an upload's event): one
        // judges, the other leaves its delivery for later and then finds the job record. A lease
        // of this process's own is one an earlier run could not release (S3 refused): taken over,
        // as the claim above says no task here runs the job.
        //
        // The lease is renewed while the job runs, so a holder that stopped (a crash, SIGKILL)
        // has its job taken over soon after; a delivery that finds it held comes back when the
        // lease would run out, not sooner (each return spends one of the queue's redrives).
        let now = self.clock.now_secs();
        let lease_secs = self.config.limits.job_lease_secs;
        let prefix = layout::job_lease_prefix(&trace_id);
        let mut held = match lease::take_own(
            &self.s3,
            &job.bucket,
            &prefix,
            &self.holder,
            now,
            lease_secs,
        )
        .await?
        {
            Taken::Held(held) => held,
            Taken::Busy(theirs) => {
                tracing::info!(holder = %theirs.holder, until = theirs.until, "Same object version is being judged by another process; this delivery is left for later.");
                return Ok(Outcome::InProgress {
                    trace_id,
                    elsewhere_until: Some(theirs.until),
                });
            }
        };
        let outcome = {
            let run = async {
                crate::faults::pause("job-leased").await;
                self.run_held(job, rule, trace_id).await
            };
            let renew = self.keep_lease(&mut held, lease_secs);
            tokio::pin!(run, renew);
            tokio::select! {
                outcome = &mut run => outcome,
                () = &mut renew => run.await,
            }
        };
        if let Err(e) = held.end(&self.s3).await {
            tracing::warn!(error = %e, "Could not end the job's lease; it runs out by itself.");
        }
        outcome
    }

    /// Renews the job's lease every third of `secs` while it runs; returns only if another
    /// process took it over (this one could not renew it in time: S3 was out of its reach), and
    /// then the job goes on without it.
    async fn keep_lease(&self, held: &mut lease::Held, secs: u64) {
        let period = Duration::from_secs((secs / 3).max(1));
        loop {
            tokio::time::sleep(period).await;
            match held.renew(&self.s3, self.clock.now_secs(), secs).await {
                Ok(true) => tracing::debug!("Job lease renewed."),
                Ok(false) => {
                    tracing::warn!(
                        "Another process took this job's lease over (it could not be renewed in time); both may finish the job."
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Could not renew the job's lease; trying again.")
                }
            }
        }
    }

    /// [`Pipeline::run`] under the job's lease.
    async fn run_held(
        &self,
        job: &Job,
        rule: &Rule,
        trace_id: String,
    ) -> Result<Outcome, JobError> {
        if let Some((body, callback)) = self.take_unrecorded(&trace_id) {
            tracing::info!("Called back before; now writing the job record S3 refused then.");
            return self.record(job, rule, trace_id, body, callback).await;
        }
        if !job.rejudge
            && state::finished_job(&self.s3, &job.bucket, &trace_id)
                .await?
                .is_some()
        {
            tracing::info!("Object version was judged before; duplicate event ignored.");
            return Ok(Outcome::Duplicate { trace_id });
        }
        if self.waits_on_providers(rule)
            && state::pending::exists(&self.s3, &job.bucket, &trace_id).await?
        {
            tracing::info!("Object version is waiting for an engine's result already.");
            return Ok(Outcome::Waiting { trace_id });
        }
        match self.judge(job, rule, &trace_id, true).await? {
            Judgement::Waiting => Ok(Outcome::Waiting { trace_id }),
            Judgement::Done { body, waited } => {
                let outcome = self.conclude(job, rule, trace_id.clone(), *body).await?;
                if waited {
                    self.clear_waiting(&job.bucket, &trace_id).await;
                }
                Ok(outcome)
            }
        }
    }

    /// Marks a trace id in flight in this process; None when it already is.
    fn claim(&self, trace_id: &str) -> Option<InFlight<'_>> {
        let newly = self
            .in_flight
            .lock()
            .expect("the in-flight set is never poisoned")
            .insert(trace_id.to_owned());
        newly.then(|| InFlight {
            set: &self.in_flight,
            trace_id: trace_id.to_owned(),
        })
    }

    /// This process, as the holder of the claims and leases it takes in the bucket.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Whether a task of this process is running the job right now.
    fn in_flight_here(&self, trace_id: &str) -> bool {
        self.in_flight
            .lock()
            .expect("the in-flight set is never poisoned")
            .contains(trace_id)
    }

    /// Calls back and records a judged job.
    async fn conclude(
        &self,
        job: &Job,
        rule: &Rule,
        trace_id: String,
        body: Body,
    ) -> Result<Outcome, JobError> {
        let (body, callback) = match self.take_unrecorded(&trace_id) {
            Some(done) => done,
            None => {
                let callback = self.call_back(&job.bucket, rule, &trace_id, &body).await?;
                (body, callback)
            }
        };
        self.record(job, rule, trace_id, body, callback).await
    }

    /// The body and callback outcome of a job called back whose record S3 refused, if any.
    fn take_unrecorded(&self, trace_id: &str) -> Option<(Body, CallbackOutcome)> {
        self.unrecorded
            .lock()
            .expect("never poisoned")
            .remove(trace_id)
    }

    /// Writes the record of a job called back (or whose callback was dead-lettered): a step of its
    /// own, so that S3 refusing it never sends the callback again. While S3 refuses, it tries
    /// again for `record_patience`; then the job is left for its retry, which resumes here.
    async fn record(
        &self,
        job: &Job,
        rule: &Rule,
        trace_id: String,
        body: Body,
        callback: CallbackOutcome,
    ) -> Result<Outcome, JobError> {
        let record = JobRecord {
            trace_id: trace_id.clone(),
            finished_at: self.clock.now_secs(),
            callback: callback.label().to_owned(),
            body: body.clone(),
            library: self.library_as_of(rule),
        };
        crate::faults::pause("called-back").await;
        let give_up = Instant::now() + self.record_patience;
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
        loop {
            match state::record_job(&self.s3, &job.bucket, &record).await {
                Ok(()) => break,
                Err(e) if e.is_transient() && Instant::now() < give_up => {
                    tracing::warn!(error = %e, "Job record not written; trying again (the callback is not sent again).");
                    backoff.wait().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Job record not written; the job's retry writes it and does not call back again.");
                    self.unrecorded
                        .lock()
                        .expect("never poisoned")
                        .insert(trace_id, (body, callback));
                    return Err(e.into());
                }
            }
        }
        // An item under review is filed under the time it was opened, so its decision updates
        // the same row.
        let judged_at = match &body.data.review {
            Some(review) => review.due_at.saturating_sub(rule.block.review_timeout_secs),
            None => record.finished_at,
        };
        self.record_result(&job.bucket, rule, judged_at, &body)
            .await;
        tracing::info!(
            code = body.code,
            result = body.data.result.as_u8(),
            forbidden_status = body.data.forbidden_status.as_u8(),
            body_message = %body.message,
            "Job finished."
        );
        Ok(Outcome::Finished {
            trace_id,
            body: Box::new(body),
            callback,
        })
    }

    /// Sends the rule's callback; what cannot be delivered is dead-lettered.
    async fn call_back(
        &self,
        bucket: &str,
        rule: &Rule,
        trace_id: &str,
        body: &Body,
    ) -> Result<CallbackOutcome, JobError> {
        let Some(config) = &rule.callback else {
            return Ok(CallbackOutcome::None);
        };
        let request = Request::new(config, body);
        let started = Instant::now();
        let delivery = self.notifier.deliver(config, &request).await;
        self.metrics.stage("callback", started);
        let (delivered, attempts) = match &delivery {
            Delivery::Delivered { attempts, .. } => (true, *attempts),
            Delivery::Failed { attempts, .. } => (false, *attempts),
        };
        self.metrics.callback(delivered, attempts);
        Ok(match delivery {
            Delivery::Delivered { attempts, .. } => CallbackOutcome::Delivered { attempts },
            Delivery::Failed { attempts, error } => {
                let letter = DeadLetter {
                    trace_id: trace_id.to_owned(),
                    failed_at: self.clock.now_secs(),
                    attempts,
                    error: error.clone(),
                    request,
                };
                let key = state::dead_letter(&self.s3, bucket, &letter).await?;
                tracing::error!(
                    attempts,
                    %error,
                    dead_letter = %key,
                    "Callback undeliverable; kept for `earshot callbacks replay`."
                );
                CallbackOutcome::DeadLettered { key, error }
            }
        })
    }

    /// What a callback body says about this job besides the verdict.
    fn report(&self, job: &Job, rule: &Rule, trace_id: &str) -> Report {
        Report {
            url: storage::object_url(&self.config.s3, &job.bucket, &job.key),
            bucket: job.bucket.clone(),
            key: job.key.clone(),
            version_id: job.version_id.clone(),
            trace_id: trace_id.to_owned(),
            rule_id: Some(rule.id.clone()),
            scenes: rule.scenes.clone(),
            detail: rule.detail(),
            source: job.origin.as_str(),
        }
    }

    fn engine(&self, name: &str) -> &Engine {
        self.engines
            .get(name)
            .expect("config validation guarantees every rule names a configured engine")
    }

    /// When the newest reference of the rule's analysers was added.
    pub fn library_as_of(&self, rule: &Rule) -> Option<u64> {
        rule.engines
            .iter()
            .filter_map(|name| match self.engine(name) {
                Engine::Analyser(analyser) => analyser.references_as_of(),
                _ => None,
            })
            .max()
    }

    /// Whether any engine of the rule answers later.
    fn waits_on_providers(&self, rule: &Rule) -> bool {
        rule.engines
            .iter()
            .any(|name| self.engine(name).provider().is_some())
    }

    /// What keeps this process from doing its work: every rule's bucket must answer HEAD. Empty
    /// when ready.
    pub async fn readiness(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for bucket in self.rules.buckets() {
            let head = self.s3.head_bucket().bucket(bucket).send();
            match tokio::time::timeout(std::time::Duration::from_secs(5), head).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => problems.push(format!(
                    "bucket {bucket}: {}",
                    storage::S3Failure::from_sdk(&e)
                )),
                Err(_) => problems.push(format!("bucket {bucket}: no answer within 5 s")),
            }
        }
        problems
    }

    /// Asks every engine to pick up changes to its reference data.
    pub async fn refresh_engines(&self) {
        for (name, engine) in &self.engines {
            let result = match engine.refresh().await {
                Ok(true) => "changed",
                Ok(false) => "unchanged",
                Err(e) => {
                    tracing::warn!(engine = %name, error = %e, "Reference refresh failed; keeping the loaded references.");
                    "failed"
                }
            };
            self.metrics.reference_reload(name, result);
        }
    }
}
