//! One job through the flow of DESIGN §1: rule → fetch → decode → engine → decision → block →
//! callback, and the classification of what can go wrong.
//!
//! Bad input (not audio, corrupt, empty, too large, too long, gone, changed) is not an error here:
//! it is judged, called back with its [`Code`], and recorded like any other finished job. Only a
//! passing failure (S3 unreachable, throttled, a block or state write that failed) is a
//! [`JobError`], and every one of those is [`Disposition::Retry`]: the source leaves the event for
//! redelivery and the next attempt resumes where this one stopped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_s3::Client;
use tracing::Instrument;

use crate::audio::{AudioError, DecodeLimits};
use crate::block::{self, BlockError, Blocked, Target};
use crate::callback::{
    Body, Code, Data, Delivery, EngineErrorInfo, Notifier, Request, SceneInfo, SegmentInfo,
};
use crate::config::{BlockMode, Config, OnEngineError, RuleConfig, Scene};
use crate::decision::{self, Decision};
use crate::engines::{self, Answer, Clip, Engine, Engines, Kind, Submission, Verdict};
use crate::fetch::{self, FetchError};
use crate::fingerprint;
use crate::job::Job;
use crate::metrics::Metrics;
use crate::pending::{self, EngineOutcome, Found, Waiting};
use crate::rules::{Rules, Skip, key_suffix};
use crate::state::{self, DeadLetter, JobRecord, StateError};
use crate::storage;
use crate::token;

/// What a source does with an event whose job failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Leave it for redelivery (SQS), report it failed (Lambda), answer 5xx (webhook).
    Retry,
    /// It can never succeed: park it where a person will see it.
    DeadLetter,
    /// Acknowledge and forget.
    Skip,
}

/// A job that could not finish for a passing reason.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("spooling or decoding could not run: {0}")]
    Local(String),
    /// An engine could not judge and the rule says `on_engine_error = "retry"`.
    #[error("{0}")]
    Engine(String),
}

impl JobError {
    pub fn disposition(&self) -> Disposition {
        Disposition::Retry
    }
}

/// How a job ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// No rule applies; nothing was done.
    Skipped(Skip),
    /// This object version was already judged and called back.
    Duplicate { trace_id: String },
    /// This object version is being judged right now by this process (the same event delivered
    /// twice). The event must not be acknowledged: if the running job fails, it is this event's
    /// redelivery that will retry it.
    InProgress { trace_id: String },
    /// Handed to an asynchronous engine; the job is kept in the bucket (see [`crate::pending`])
    /// and finished when the provider's result arrives, or by the sweep.
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
    fn label(&self) -> &'static str {
        match self {
            Outcome::Duplicate { .. } | Outcome::InProgress { .. } => "duplicate",
            Outcome::Waiting { .. } => "waiting",
            Outcome::Skipped(_) => "skipped",
            Outcome::Finished { body, .. } if body.code != 0 => "unjudged",
            Outcome::Finished { body, .. } if body.data.forbidden_status != 0 => "blocked",
            Outcome::Finished { body, .. } if body.data.result == 2 => "suspicious",
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

/// Everything a job needs, built once.
pub struct Pipeline {
    pub config: Arc<Config>,
    pub s3: Client,
    rules: Rules,
    engines: Engines,
    notifier: Notifier,
    spool_dir: PathBuf,
    in_flight: Mutex<HashSet<String>>,
    pub metrics: Arc<Metrics>,
    tokens: Option<token::Signer>,
}

/// What judging came to.
#[derive(Debug)]
pub enum Judgement {
    /// The callback body; `waited` when the job went through [`crate::pending`] (to be cleared
    /// once it is recorded).
    Done { body: Box<Body>, waited: bool },
    /// Handed to asynchronous engines.
    Waiting,
}

/// A provider result's reception, as the listener answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// 200 taken (or harmlessly ignored), 400 unreadable, 401 not authentic, 404 no such engine.
    pub status: u16,
    pub message: String,
    /// The bucket and trace id of the job to try to finish once the provider has been answered
    /// (stored results are safe; the provider need not wait for the block and the callback).
    pub finish: Option<(String, String)>,
}

/// Removes a trace id from the in-flight set when the job ends, however it ends.
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
        let s3 = storage::s3_client(&config.s3).await;
        let engines = engines::build(&config, &s3).await?;
        let tokens = config
            .async_jobs
            .token_key
            .as_deref()
            .map(token::Signer::new);
        Ok(Pipeline {
            rules: Rules::new(config.rules.clone()),
            config: Arc::new(config),
            s3,
            engines,
            notifier: Notifier::default(),
            spool_dir: std::env::temp_dir(),
            in_flight: Mutex::new(HashSet::new()),
            metrics: Arc::new(Metrics::default()),
            tokens,
        })
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Runs one job to its end: judged, blocked if due, called back, recorded.
    ///
    /// # Errors
    /// A passing failure; see [`JobError`].
    pub async fn process(&self, job: &Job) -> Result<Outcome, JobError> {
        let rule = match self.rules.find(&job.bucket, &job.key) {
            Ok(rule) => rule,
            Err(skip) => {
                tracing::debug!(bucket = %job.bucket, key = %job.key, reason = %skip, "Skipped.");
                self.count_job("", "skipped");
                return Ok(Outcome::Skipped(skip));
            }
        };
        let started = Instant::now();
        self.metrics.add("earshot_jobs_in_flight", &[], 1.0);
        let result = async {
            let job = self.identify(job).await?;
            let trace_id = job.trace_id();
            let span = tracing::info_span!("job", %trace_id, bucket = %job.bucket, key = %job.key, rule = %rule.id);
            self.process_in_rule(&job, rule, trace_id)
                .instrument(span)
                .await
        }
        .await;
        self.metrics.add("earshot_jobs_in_flight", &[], -1.0);
        let outcome = result.as_ref().map_or("failed", Outcome::label);
        self.count_job(&rule.id, outcome);
        if matches!(result, Ok(Outcome::Finished { .. })) {
            self.stage("job", started);
        }
        result
    }

    fn count_job(&self, rule: &str, outcome: &str) {
        self.metrics.inc(
            "earshot_jobs_total",
            &[("rule", rule), ("outcome", outcome)],
        );
    }

    fn stage(&self, stage: &str, started: Instant) {
        self.metrics.observe(
            "earshot_stage_seconds",
            &[("stage", stage)],
            started.elapsed(),
        );
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

    async fn process_in_rule(
        &self,
        job: &Job,
        rule: &RuleConfig,
        trace_id: String,
    ) -> Result<Outcome, JobError> {
        let newly_in_flight = self
            .in_flight
            .lock()
            .expect("the in-flight set is never poisoned")
            .insert(trace_id.clone());
        if !newly_in_flight {
            tracing::info!(
                "Same object version is being judged already; this delivery is left for later."
            );
            return Ok(Outcome::InProgress { trace_id });
        }
        let _guard = InFlight {
            set: &self.in_flight,
            trace_id: trace_id.clone(),
        };
        if state::finished_job(&self.s3, &job.bucket, &trace_id)
            .await?
            .is_some()
        {
            tracing::info!("Object version was judged before; duplicate event ignored.");
            return Ok(Outcome::Duplicate { trace_id });
        }

        let asynchronous = rule
            .engine
            .names()
            .iter()
            .any(|name| self.engine(name).timing().is_some());
        if asynchronous && pending::exists(&self.s3, &job.bucket, &trace_id).await? {
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

    /// Calls back and records a judged job.
    async fn conclude(
        &self,
        job: &Job,
        rule: &RuleConfig,
        trace_id: String,
        body: Body,
    ) -> Result<Outcome, JobError> {
        let callback = match &rule.callback {
            None => CallbackOutcome::None,
            Some(config) => {
                let request = Request::new(config, &body);
                let started = Instant::now();
                let delivery = self.notifier.deliver(config, &request).await;
                self.stage("callback", started);
                let (result, attempts) = match &delivery {
                    Delivery::Delivered { attempts, .. } => ("delivered", *attempts),
                    Delivery::Failed { attempts, .. } => ("failed", *attempts),
                };
                self.metrics
                    .inc("earshot_callback_deliveries_total", &[("result", result)]);
                self.metrics
                    .add("earshot_callback_attempts_total", &[], f64::from(attempts));
                match delivery {
                    Delivery::Delivered { attempts, .. } => CallbackOutcome::Delivered { attempts },
                    Delivery::Failed { attempts, error } => {
                        let letter = DeadLetter {
                            trace_id: trace_id.clone(),
                            failed_at: state::now_secs(),
                            attempts,
                            error: error.clone(),
                            request,
                        };
                        let key = state::dead_letter(&self.s3, &job.bucket, &letter).await?;
                        tracing::error!(
                            attempts,
                            %error,
                            dead_letter = %key,
                            "Callback undeliverable; kept for `earshot callbacks replay`."
                        );
                        CallbackOutcome::DeadLettered { key, error }
                    }
                }
            }
        };
        let record = JobRecord {
            trace_id: trace_id.clone(),
            finished_at: state::now_secs(),
            callback: match &callback {
                CallbackOutcome::Delivered { .. } => "delivered",
                CallbackOutcome::DeadLettered { .. } => "dead-lettered",
                CallbackOutcome::None => "no-callback",
            }
            .to_owned(),
            body: body.clone(),
        };
        state::record_job(&self.s3, &job.bucket, &record).await?;
        tracing::info!(
            code = body.code,
            result = body.data.result,
            forbidden_status = body.data.forbidden_status,
            message = %body.message,
            "Job finished."
        );
        Ok(Outcome::Finished {
            trace_id,
            body: Box::new(body),
            callback,
        })
    }

    /// Judges one object per its rule and, when `enforce`, blocks it if due: the callback body, or
    /// [`Judgement::Waiting`] when an asynchronous engine has the job. Used by
    /// [`Pipeline::process`] and by `earshot moderate s3://… --dry-run`.
    ///
    /// # Errors
    /// A passing failure; see [`JobError`].
    pub async fn judge(
        &self,
        job: &Job,
        rule: &RuleConfig,
        trace_id: &str,
        enforce: bool,
    ) -> Result<Judgement, JobError> {
        let done = |body: Body| {
            Ok(Judgement::Done {
                body: Box::new(body),
                waited: false,
            })
        };
        let report = Report {
            config: &self.config,
            job,
            rule,
            trace_id,
        };
        // `source` is where the bytes are read from: the object itself, or its backup when an
        // earlier run of this job moved it and was interrupted before calling back.
        let (head, source) = match fetch::head(&self.s3, job).await {
            Ok(head) => (head, job.clone()),
            Err(FetchError::Gone { .. }) if enforce => match self.already_moved(job, rule).await? {
                Some(found) => found,
                None => {
                    return done(report.unjudged_or_retry(FetchError::Gone {
                        bucket: job.bucket.clone(),
                        key: job.key.clone(),
                    })?);
                }
            },
            Err(e) => return done(report.unjudged_or_retry(e)?),
        };
        if head.size == 0 {
            return done(report.unjudged(Code::EmptyObject, AudioError::Empty.to_string()));
        }
        let max_bytes = self.config.limits.max_object_bytes;
        if head.size > max_bytes {
            let e = FetchError::TooLarge {
                bucket: job.bucket.clone(),
                key: job.key.clone(),
                size: head.size,
                limit: max_bytes,
            };
            return done(report.unjudged(Code::TooLarge, e.to_string()));
        }
        let started = Instant::now();
        let spooled =
            match fetch::download(&self.s3, &source, head, max_bytes, &self.spool_dir).await {
                Ok(spooled) => spooled,
                Err(e) => return done(report.unjudged_or_retry(e)?),
            };
        self.stage("fetch", started);
        self.metrics
            .add("earshot_fetched_bytes_total", &[], spooled.size as f64);
        // Every upload is decoded here, whatever judges it: corrupt, truncated, overlong or
        // mislabelled audio gets its own code before a provider is paid to look at it.
        let started = Instant::now();
        let decoded = decode(
            spooled.file.path(),
            key_suffix(&job.key),
            spooled.sha256,
            spooled.size,
            self.config.limits.max_duration_secs,
        )
        .await?;
        let clip = match decoded {
            Ok(clip) => clip,
            Err((code, message)) => return done(report.unjudged(code, message)),
        };
        let moved_before = source.key != job.key;
        let version_id = if moved_before {
            job.version_id.clone()
        } else {
            spooled.head.version_id.clone()
        };
        let (answered, asynchronous) = self.consult(&source, rule, &clip, trace_id).await?;
        self.stage("analyse", started);
        if !asynchronous.is_empty() {
            if !enforce {
                return Err(JobError::Local(format!(
                    "a dry run cannot wait for the asynchronous engine(s) {}",
                    asynchronous
                        .iter()
                        .map(|e| e.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let waiting = Waiting {
                trace_id: trace_id.to_owned(),
                rule: rule.id.clone(),
                bucket: job.bucket.clone(),
                key: job.key.clone(),
                version_id,
                etag: spooled.head.etag.clone(),
                size: spooled.size,
                sha256: hex::encode(spooled.sha256),
                created_at: state::now_secs(),
                awaiting: asynchronous.iter().map(|e| e.name().to_owned()).collect(),
                answered,
            };
            return self.hand_over(&source, rule, waiting, &asynchronous).await;
        }
        let target = OwnedTarget {
            version_id,
            etag: spooled.head.etag.clone(),
            size: spooled.size,
            sha256: spooled.sha256,
        };
        let body = self
            .settle(&report, &answered, &target, Some(&clip), enforce)
            .await?;
        done(body)
    }

    /// Asks the rule's synchronous engines; returns what they said and the asynchronous engines
    /// still to be asked. With `on_engine_error = "retry"`, a failure is a [`JobError`].
    async fn consult(
        &self,
        source: &Job,
        rule: &RuleConfig,
        clip: &Clip,
        trace_id: &str,
    ) -> Result<(Vec<EngineOutcome>, Vec<Arc<dyn Engine>>), JobError> {
        let mut answered = Vec::new();
        let mut asynchronous = Vec::new();
        for name in rule.engine.names() {
            let engine = self.engine(name);
            if engine.timing().is_some() {
                asynchronous.push(engine);
                continue;
            }
            let result = match engine.kind() {
                Kind::Local => engine
                    .moderate(clip, &rule.scenes)
                    .await
                    .map_err(|e| e.to_string()),
                Kind::Remote => match self
                    .submission(source, rule, trace_id, engine.as_ref())
                    .await
                {
                    Ok(submission) => match engine.submit(&submission).await {
                        Ok(Answer::Verdict(verdict)) => Ok(verdict),
                        Ok(Answer::Submitted { .. }) => {
                            Err(format!("engine {name} created a task instead of answering"))
                        }
                        Err(e) => Err(e.to_string()),
                    },
                    Err(e) => Err(e),
                },
            };
            answered.push(outcome(name, result, "submit"));
        }
        let failures: Vec<&str> = answered.iter().filter_map(|o| o.error.as_deref()).collect();
        if !failures.is_empty() {
            tracing::error!(?failures, policy = ?rule.on_engine_error, "Engine failed.");
            if rule.on_engine_error == OnEngineError::Retry {
                return Err(JobError::Engine(failures.join("; ")));
            }
        }
        Ok((answered, asynchronous))
    }

    /// What a remote engine is given: a presigned URL of the bytes being judged.
    async fn submission(
        &self,
        source: &Job,
        rule: &RuleConfig,
        trace_id: &str,
        engine: &dyn Engine,
    ) -> Result<Submission, String> {
        let url = storage::presigned_get(
            &self.s3,
            &source.bucket,
            &source.key,
            source.version_id.as_deref(),
            engine.url_expiry(),
        )
        .await?;
        Ok(Submission {
            rule: rule.id.clone(),
            bucket: source.bucket.clone(),
            key: source.key.clone(),
            version_id: source.version_id.clone(),
            etag: source.etag.clone(),
            trace_id: trace_id.to_owned(),
            url,
            scenes: rule.scenes.clone(),
        })
    }

    /// Stores the waiting job, then submits it to each asynchronous engine. The job is finished
    /// here only when every result is in already.
    async fn hand_over(
        &self,
        source: &Job,
        rule: &RuleConfig,
        waiting: Waiting,
        engines: &[Arc<dyn Engine>],
    ) -> Result<Judgement, JobError> {
        let (bucket, trace_id) = (waiting.bucket.clone(), waiting.trace_id.clone());
        pending::put_job(&self.s3, &waiting).await?;
        let trace = trace_id.as_str();
        let submitted = futures::future::join_all(engines.iter().map(|engine| async move {
            let answer = match self.submission(source, rule, trace, engine.as_ref()).await {
                Ok(submission) => engine.submit(&submission).await,
                Err(e) => Err(engines::EngineError::failed(engine.name(), e)),
            };
            (engine, answer)
        }))
        .await;
        let now = state::now_secs();
        let mut retry = Vec::new();
        for (engine, answer) in submitted {
            let name = engine.name();
            match answer {
                Ok(Answer::Submitted { task_id }) => {
                    let timing = engine.timing().expect("asynchronous engines have a timing");
                    let task = pending::Task {
                        engine: name.to_owned(),
                        task_id: task_id.clone(),
                        submitted_at: now,
                        poll_at: now + timing.poll_after.as_secs(),
                        deadline_at: now + timing.deadline.as_secs(),
                    };
                    pending::put_task(&self.s3, &bucket, &trace_id, &task).await?;
                    tracing::info!(engine = %name, %task_id, "Submitted; waiting for the engine's result.");
                }
                Ok(Answer::Verdict(verdict)) => {
                    let result = outcome(name, Ok(verdict), "submit");
                    pending::put_result(&self.s3, &bucket, &trace_id, &result).await?;
                }
                Err(e) if rule.on_engine_error == OnEngineError::Retry => retry.push(e.to_string()),
                Err(e) => {
                    tracing::error!(error = %e, policy = ?rule.on_engine_error, "Engine failed.");
                    let result = outcome(name, Err(e.to_string()), "submit");
                    pending::put_result(&self.s3, &bucket, &trace_id, &result).await?;
                }
            }
        }
        if !retry.is_empty() {
            // The source delivers the job again. Tasks created meanwhile are abandoned: a result
            // for them finds no waiting job and is ignored.
            tracing::error!(failures = ?retry, "Engine failed; the job will be retried.");
            self.clear_waiting(&bucket, &trace_id).await;
            for engine in engines {
                engine.task_done(&trace_id);
            }
            return Err(JobError::Engine(retry.join("; ")));
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

    /// Applies the rule to what its engines said: decision, failure policy, block, callback body.
    async fn settle(
        &self,
        report: &Report<'_>,
        answered: &[EngineOutcome],
        target: &OwnedTarget,
        clip: Option<&Clip>,
        enforce: bool,
    ) -> Result<Body, JobError> {
        let rule = report.rule;
        let job = report.job;
        let combined = combine(answered, &rule.scenes, &rule.block);
        let mut decision = combined.decision.clone();
        let mut note = None;
        if !combined.failures.is_empty() {
            let failed = combined
                .failures
                .iter()
                .map(|f| format!("engine {} failed: {}", f.engine, f.message))
                .collect::<Vec<_>>()
                .join("; ");
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
                    let mut body = report.judged(&decision, 0, None, Some((code, failed)));
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
        if !(decision.block && enforce) {
            return Ok(finish(report.judged(&decision, 0, None, None)));
        }
        let target = Target {
            bucket: &job.bucket,
            key: &job.key,
            version_id: target.version_id.as_deref(),
            etag: &target.etag,
            size: target.size,
            sha256: target.sha256,
        };
        let started = Instant::now();
        let blocked = block::block(&self.s3, rule.block.mode, &target).await;
        self.stage("block", started);
        match blocked {
            Ok(blocked) => {
                let backup = (blocked == Blocked::Moved).then(|| block::backup_key(&job.key));
                tracing::info!(?blocked, backup_key = ?backup, "Blocked.");
                if rule.block.learn {
                    match clip {
                        Some(clip) => self.learn(rule, clip, &decision, job).await,
                        None => tracing::warn!(
                            "block.learn: the clip's fingerprint is gone once a job waited for a \
                             provider; not added to the library"
                        ),
                    }
                }
                Ok(finish(report.judged(
                    &decision,
                    blocked as u8,
                    backup,
                    None,
                )))
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                let code = match e {
                    BlockError::Gone { .. } => Code::ObjectGone,
                    BlockError::Changed { .. } => Code::ObjectChanged,
                    _ => Code::BlockFailed,
                };
                tracing::error!(error = %e, "Block failed; calling back with the scores and the reason.");
                Ok(finish(report.judged(
                    &decision,
                    0,
                    None,
                    Some((code, e.to_string())),
                )))
            }
        }
    }

    /// Adds a blocked clip to the references of the rule's local engines (`block.learn`). A
    /// failure is logged: the block stands either way.
    async fn learn(&self, rule: &RuleConfig, clip: &Clip, decision: &Decision, job: &Job) {
        let Some(scene) = decision.top_scene else {
            return;
        };
        let label = decision.scenes.get(&scene).map_or("", |s| s.label.as_str());
        let label = format!("learned: {label}");
        let source = format!("s3://{}/{}", job.bucket, job.key);
        for name in rule.engine.names() {
            let engine = self.engine(name);
            match engine.learn(clip, scene, &label, &source).await {
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

    /// What keeps this process from doing its work: every rule's bucket must answer HEAD, and
    /// every engine must say it is ready. Empty when ready.
    pub async fn readiness(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let buckets: std::collections::BTreeSet<&str> = self
            .config
            .rules
            .iter()
            .map(|r| r.bucket.as_str())
            .collect();
        for bucket in buckets {
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
        for (name, engine) in &self.engines {
            if let Err(e) = engine.ready().await {
                problems.push(format!("engine {name}: {e}"));
            }
        }
        problems
    }

    /// Asks every engine to pick up changes to its reference data.
    pub async fn refresh_engines(&self) {
        for (name, engine) in &self.engines {
            if let Err(e) = engine.refresh().await {
                tracing::warn!(engine = %name, error = %e, "Reference refresh failed; keeping the loaded references.");
            }
        }
    }

    /// Removes what is stored for a waiting job; a failure is logged (the sweep finds the job
    /// recorded as finished and clears it then).
    async fn clear_waiting(&self, bucket: &str, trace_id: &str) {
        if let Err(e) = pending::clear(&self.s3, bucket, trace_id).await {
            tracing::warn!(error = %e, %trace_id, "Could not clear the waiting job's files.");
        }
    }

    /// Finishes a waiting job when every result is in, taking the job's in-flight mark: the
    /// outcome, or None when it is still waiting (or another task of this process has it).
    ///
    /// # Errors
    /// A passing failure; the job stays waiting and the sweep tries again.
    pub async fn finish(&self, bucket: &str, trace_id: &str) -> Result<Option<Outcome>, JobError> {
        let newly_in_flight = self
            .in_flight
            .lock()
            .expect("the in-flight set is never poisoned")
            .insert(trace_id.to_owned());
        if !newly_in_flight {
            return Ok(None);
        }
        let _guard = InFlight {
            set: &self.in_flight,
            trace_id: trace_id.to_owned(),
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
        let Some(rule) = self.config.rules.iter().find(|r| r.id == waiting.rule) else {
            tracing::error!(rule = %waiting.rule, %trace_id, "A waiting job's rule is no longer configured; left waiting.");
            return Ok(None);
        };
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
            self.count_job(&rule.id, outcome.label());
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
        let Some(rule) = self.config.rules.iter().find(|r| r.id == waiting.rule) else {
            return Ok(None);
        };
        let job = waiting_job(waiting);
        let report = Report {
            config: &self.config,
            job: &job,
            rule,
            trace_id,
        };
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(&waiting.sha256, &mut sha256)
            .map_err(|e| JobError::Local(format!("waiting job {trace_id}: bad sha256: {e}")))?;
        let target = OwnedTarget {
            version_id: waiting.version_id.clone(),
            etag: waiting.etag.clone(),
            size: waiting.size,
            sha256,
        };
        let mut answered = waiting.answered.clone();
        answered.extend(found.results.iter().cloned());
        for name in &waiting.awaiting {
            if let Some(engine) = self.engines.get(name) {
                engine.task_done(trace_id);
            }
        }
        let body = self.settle(&report, &answered, &target, None, true).await?;
        Ok(Some(body))
    }

    /// A result POSTed by a provider to `/engines/<engine>/results/<token>`: the token is checked
    /// (signature, expiry, engine), then the engine checks the body (AMS: `X-Signature`), then the
    /// result must be for a job the token names. It is stored beside the waiting job, which is
    /// finished when it was the last one awaited.
    pub async fn receive_result(
        &self,
        engine_name: &str,
        token: &str,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Receipt {
        let refuse = |status: u16, message: String| {
            tracing::warn!(engine = %engine_name, status, %message, "Provider result refused.");
            Receipt {
                status,
                message,
                finish: None,
            }
        };
        let Some(engine) = self.engines.get(engine_name) else {
            return refuse(404, format!("no engine named {engine_name:?}"));
        };
        let Some(tokens) = &self.tokens else {
            return refuse(
                404,
                "no [async_jobs] token_key: results are not taken".to_owned(),
            );
        };
        let claims = match tokens.verify(token, state::now_secs()) {
            Ok(claims) if claims.engine == engine_name => claims,
            Ok(_) => return refuse(401, "token is for another engine".to_owned()),
            Err(e) => return refuse(401, e.to_string()),
        };
        let result = match engine.read_result(headers, body) {
            Ok(Some(result)) => result,
            Ok(None) => {
                return Receipt {
                    status: 200,
                    message: "noted: not a final result".to_owned(),
                    finish: None,
                };
            }
            Err(engines::ResultError::Unauthenticated(e)) => return refuse(401, e),
            Err(engines::ResultError::Malformed(e)) => return refuse(400, e),
        };
        let Some(job) = claims.jobs.iter().find(|j| j.trace_id == result.trace_id) else {
            return refuse(
                401,
                format!(
                    "result for {:?}, which the token does not name",
                    result.trace_id
                ),
            );
        };
        let (bucket, trace_id) = (claims.bucket.as_str(), job.trace_id.as_str());
        engine.task_done(trace_id);
        self.metrics.inc(
            "earshot_engine_results_total",
            &[("engine", engine_name), ("via", "callback")],
        );
        let stored = async {
            if !pending::exists(&self.s3, bucket, trace_id).await? {
                return Ok::<_, JobError>(false);
            }
            let outcome = outcome(engine_name, result.outcome, "callback");
            pending::put_result(&self.s3, bucket, trace_id, &outcome).await?;
            Ok(true)
        }
        .await;
        match stored {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(%trace_id, key = %job.key, "Result for a job that no longer waits (finished or abandoned); ignored.");
                return Receipt {
                    status: 200,
                    message: "ignored: no job waits for this result".to_owned(),
                    finish: None,
                };
            }
            // The provider will send it again.
            Err(e) => return refuse(503, format!("result not stored: {e}")),
        }
        tracing::info!(%trace_id, key = %job.key, engine = %engine_name, "Provider result received.");
        Receipt {
            status: 200,
            message: "ok".to_owned(),
            finish: Some((bucket.to_owned(), trace_id.to_owned())),
        }
    }

    /// Finishes the job a stored result may have completed (see [`Receipt::finish`]); a failure
    /// is logged and left to the sweep.
    pub async fn finish_after(&self, receipt: &Receipt) {
        let Some((bucket, trace_id)) = &receipt.finish else {
            return;
        };
        if let Err(e) = self.finish(bucket, trace_id).await {
            tracing::warn!(error = %e, %trace_id, "Result stored; finishing the job failed and is left to the sweep.");
        }
    }

    /// Looks at every waiting job in the rules' buckets: polls for results that are late, gives up
    /// on those past their deadline, finishes the complete ones, counts the tasks still
    /// outstanding against the engines' task slots (also those created before a restart or by
    /// another replica), and frees task slots held for jobs that no longer wait. `earshot serve`
    /// runs this every `async_jobs.sweep_secs`.
    pub async fn sweep(&self) {
        let now = state::now_secs();
        let buckets: std::collections::BTreeSet<&str> = self
            .config
            .rules
            .iter()
            .map(|r| r.bucket.as_str())
            .collect();
        // Only slots held before the listing may be freed: a job is stored as waiting before its
        // slot is taken, so such a job, if it still waits, is in the listing. A slot taken since
        // may belong to a job the listing missed.
        let held_before: Vec<(&String, Vec<String>)> = self
            .engines
            .iter()
            .map(|(name, engine)| (name, engine.tasks_held()))
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
                if let Err(e) = self.sweep_one(bucket, &trace_id, now, &mut awaited).await {
                    tracing::warn!(error = %e, %trace_id, "Sweeping a waiting job failed; next sweep retries.");
                    unsure.insert(trace_id);
                }
            }
        }
        if !listed {
            return;
        }
        for (name, held) in held_before {
            for trace_id in held {
                if !unsure.contains(&trace_id)
                    && !awaited.contains(&(name.clone(), trace_id.clone()))
                {
                    self.engines[name].task_done(&trace_id);
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
            let Some(engine) = self.engines.get(&name) else {
                let gone = outcome(
                    &name,
                    Err(format!("engine {name} is no longer configured")),
                    "deadline",
                );
                pending::put_result(&self.s3, bucket, trace_id, &gone).await?;
                continue;
            };
            let timing = engine.timing().unwrap_or(engines::Timing {
                poll_after: std::time::Duration::ZERO,
                deadline: std::time::Duration::ZERO,
            });
            let task = found.tasks.iter().find(|t| t.engine == name);
            let deadline_at = task.map_or(waiting.created_at + timing.deadline.as_secs(), |t| {
                t.deadline_at
            });
            if now >= deadline_at {
                let mut late = outcome(
                    &name,
                    Err(format!(
                        "no result from engine {name} within {} s (task {})",
                        timing.deadline.as_secs(),
                        task.map_or("never created", |t| t.task_id.as_str())
                    )),
                    "deadline",
                );
                late.timed_out = true;
                tracing::error!(%trace_id, key = %waiting.key, engine = %name, "Engine result overdue; giving up.");
                pending::put_result(&self.s3, bucket, trace_id, &late).await?;
                engine.task_done(trace_id);
                continue;
            }
            let polled = match task {
                Some(task) if now >= task.poll_at => {
                    match engine.poll(&task.task_id, trace_id).await {
                        Ok(polled) => polled,
                        Err(e) => {
                            tracing::warn!(error = %e, %trace_id, "Polling for a late result failed.");
                            None
                        }
                    }
                }
                _ => None,
            };
            match polled {
                Some(result) => {
                    tracing::info!(%trace_id, engine = %name, "No callback in time; result fetched by polling.");
                    self.metrics.inc(
                        "earshot_engine_results_total",
                        &[("engine", name.as_str()), ("via", "poll")],
                    );
                    let polled = outcome(&name, result.outcome, "poll");
                    pending::put_result(&self.s3, bucket, trace_id, &polled).await?;
                    engine.task_done(trace_id);
                }
                None => {
                    complete = false;
                    if task.is_some() {
                        engine.task_outstanding(trace_id);
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

    /// When the object is gone and the rule moves blocked objects, the backup may hold it: an
    /// earlier run of this job moved it and stopped before it called back. Returns the backup's
    /// HEAD and a job reading from it.
    async fn already_moved(
        &self,
        job: &Job,
        rule: &RuleConfig,
    ) -> Result<Option<(fetch::Head, Job)>, JobError> {
        if rule.block.mode != BlockMode::Move {
            return Ok(None);
        }
        let mut backup = Job::new(job.bucket.clone(), block::backup_key(&job.key));
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

    fn engine(&self, name: &str) -> Arc<dyn Engine> {
        self.engines
            .get(name)
            .cloned()
            .expect("config validation guarantees every rule names a configured engine")
    }

    /// Judges a local file with the named engine: no S3, no block, no callback.
    ///
    /// # Errors
    /// The file cannot be read.
    pub async fn moderate_file(
        &self,
        path: &Path,
        engine: &str,
        scenes: &[Scene],
    ) -> Result<Body, JobError> {
        let engine =
            self.engines.get(engine).cloned().ok_or_else(|| {
                JobError::Local(format!("no engine named {engine:?} is configured"))
            })?;
        let owned = path.to_owned();
        let (sha256, size) = tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(&owned)?.len();
            engines::local::sha256_file(&owned).map(|sha| (sha, size))
        })
        .await
        .map_err(|e| JobError::Local(e.to_string()))?
        .map_err(|e| JobError::Local(format!("{}: {e}", path.display())))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rule = RuleConfig {
            id: "local-file".to_owned(),
            bucket: String::new(),
            prefix: String::new(),
            suffixes: Vec::new(),
            scenes: scenes.to_vec(),
            engine: crate::config::EngineNames::One(engine.name().to_owned()),
            on_engine_error: OnEngineError::Retry,
            block: crate::config::BlockConfig {
                enabled: false,
                ..Default::default()
            },
            callback: None,
        };
        let job = Job::new("", name.as_str());
        let trace_id = hex::encode(&sha256[..16]);
        let report = Report {
            config: &self.config,
            job: &job,
            rule: &rule,
            trace_id: &trace_id,
        };
        let decoded = decode(
            path,
            key_suffix(&name),
            sha256,
            size,
            self.config.limits.max_duration_secs,
        )
        .await?;
        let mut body = match decoded {
            Ok(clip) => {
                let result = engine
                    .moderate(&clip, scenes)
                    .await
                    .map_err(|e| e.to_string());
                let combined = combine(
                    &[outcome(engine.name(), result, "submit")],
                    scenes,
                    &rule.block,
                );
                match combined.failures.first() {
                    Some(failure) => report.unjudged(Code::EngineFailure, failure.message.clone()),
                    None => {
                        let mut body = report.judged(&combined.decision, 0, None, None);
                        combined.annotate(&mut body);
                        body
                    }
                }
            }
            Err((code, message)) => report.unjudged(code, message),
        };
        body.data.url = format!(
            "file://{}",
            std::path::absolute(path)
                .unwrap_or_else(|_| path.to_owned())
                .display()
        );
        body.data.rule_id = None;
        Ok(body)
    }
}

/// Decodes the file into a [`Clip`]; `Ok(Err((code, message)))` when it cannot be judged.
async fn decode(
    path: &Path,
    suffix: Option<String>,
    sha256: [u8; 32],
    size: u64,
    max_duration_secs: u64,
) -> Result<Result<Clip, (Code, String)>, JobError> {
    let owned = path.to_owned();
    let decoded = tokio::task::spawn_blocking(move || {
        fingerprint::fingerprint_file(
            &owned,
            suffix.as_deref(),
            DecodeLimits { max_duration_secs },
        )
    })
    .await
    .map_err(|e| JobError::Local(format!("decoder task failed: {e}")))?;
    let (info, fingerprint) = match decoded {
        Ok(decoded) => decoded,
        Err(AudioError::Io(e)) => {
            return Err(JobError::Local(format!("reading the spool file: {e}")));
        }
        Err(e) => {
            let code = match e {
                AudioError::Empty => Code::EmptyObject,
                AudioError::UnrecognisedFormat(_) => Code::UnrecognisedFormat,
                AudioError::UnsupportedCodec(_) => Code::UnsupportedCodec,
                AudioError::Corrupt(_) => Code::CorruptAudio,
                AudioError::TooLong { .. } => Code::TooLong,
                AudioError::Io(_) => unreachable!("handled above"),
            };
            tracing::warn!(error = %e, code = code.as_i32(), "Audio cannot be judged.");
            return Ok(Err((code, e.to_string())));
        }
    };
    if info.truncated {
        tracing::warn!(
            decoded_secs = info.duration_secs(),
            "Audio ends mid-packet; judged what decoded."
        );
    }
    let clip = Clip {
        sha256,
        size,
        audio: info,
        fingerprint,
    };
    Ok(Ok(clip))
}

/// The job a waiting record describes.
fn waiting_job(waiting: &Waiting) -> Job {
    let mut job = Job::new(waiting.bucket.clone(), waiting.key.clone());
    job.version_id = waiting.version_id.clone();
    job.etag = Some(waiting.etag.clone());
    job.size = Some(waiting.size);
    job
}

/// The bytes a block acts on, as judged.
#[derive(Debug, Clone)]
struct OwnedTarget {
    version_id: Option<String>,
    etag: String,
    size: u64,
    sha256: [u8; 32],
}

fn outcome(engine: &str, result: Result<Verdict, String>, via: &str) -> EngineOutcome {
    let (verdict, error) = match result {
        Ok(verdict) => (Some(verdict), None),
        Err(error) => (None, Some(error)),
    };
    EngineOutcome {
        engine: engine.to_owned(),
        verdict,
        error,
        timed_out: false,
        via: via.to_owned(),
        at: state::now_secs(),
    }
}

/// Several engines' verdicts as one: per scene the highest score, and which engine gave it.
#[derive(Debug, Clone)]
struct Combined {
    decision: Decision,
    decided_by: std::collections::BTreeMap<Scene, String>,
    failures: Vec<EngineErrorInfo>,
    /// Every failure is a deadline that passed.
    timed_out: bool,
}

fn combine(
    answered: &[EngineOutcome],
    scenes: &[Scene],
    block: &crate::config::BlockConfig,
) -> Combined {
    let mut verdict = Verdict::default();
    let mut decided_by = std::collections::BTreeMap::new();
    for outcome in answered {
        for (scene, score) in outcome.verdict.iter().flat_map(|v| &v.scenes) {
            let higher = verdict
                .scenes
                .get(scene)
                .is_none_or(|held| score.score > held.score);
            if higher && score.score > 0 {
                decided_by.insert(*scene, outcome.engine.clone());
            }
            verdict.raise(*scene, score.clone());
        }
    }
    let failed: Vec<&EngineOutcome> = answered.iter().filter(|o| o.error.is_some()).collect();
    Combined {
        decision: decision::decide(&verdict, scenes, block),
        decided_by,
        timed_out: !failed.is_empty() && failed.iter().all(|o| o.timed_out),
        failures: failed
            .iter()
            .map(|o| EngineErrorInfo {
                engine: o.engine.clone(),
                message: o.error.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

impl Combined {
    /// Names the deciding engine of each scene and the engines that failed.
    fn annotate(&self, body: &mut Body) {
        let data = &mut body.data;
        for (scene, engine) in &self.decided_by {
            let info = match scene {
                Scene::Porn => Some(&mut data.porn_info),
                Scene::Ads => Some(&mut data.ads_info),
                Scene::Illegal => data.illegal_info.as_mut(),
                Scene::Abuse => data.abuse_info.as_mut(),
            };
            if let Some(info) = info {
                info.engine = Some(engine.clone());
            }
        }
        data.engine_errors = self.failures.clone();
    }
}

/// Builds callback bodies for one job.
struct Report<'a> {
    config: &'a Config,
    job: &'a Job,
    rule: &'a RuleConfig,
    trace_id: &'a str,
}

impl Report<'_> {
    fn base(&self, code: Code, message: String) -> Body {
        let has = |scene| self.rule.scenes.contains(&scene);
        Body {
            code: code.as_i32(),
            message,
            data: Data {
                url: storage::object_url(&self.config.s3, &self.job.bucket, &self.job.key),
                result: 0,
                forbidden_status: 0,
                trace_id: self.trace_id.to_owned(),
                porn_info: SceneInfo::default(),
                ads_info: SceneInfo::default(),
                illegal_info: has(Scene::Illegal).then(SceneInfo::default),
                abuse_info: has(Scene::Abuse).then(SceneInfo::default),
                bucket: self.job.bucket.clone(),
                key: self.job.key.clone(),
                version_id: self.job.version_id.clone(),
                rule_id: Some(self.rule.id.clone()),
                backup_key: None,
                segments: Vec::new(),
                engine_errors: Vec::new(),
            },
        }
    }

    fn unjudged(&self, code: Code, message: String) -> Body {
        self.base(code, message)
    }

    fn unjudged_or_retry(&self, error: FetchError) -> Result<Body, JobError> {
        match error {
            FetchError::Gone { .. } => Ok(self.unjudged(Code::ObjectGone, error.to_string())),
            FetchError::Changed { .. } => Ok(self.unjudged(Code::ObjectChanged, error.to_string())),
            FetchError::TooLarge { .. } => Ok(self.unjudged(Code::TooLarge, error.to_string())),
            other => Err(other.into()),
        }
    }

    fn judged(
        &self,
        decision: &Decision,
        forbidden_status: u8,
        backup_key: Option<String>,
        failure: Option<(Code, String)>,
    ) -> Body {
        let (code, message) = failure.unwrap_or((Code::Success, "success".to_owned()));
        let mut body = self.base(code, message);
        body.data.result = decision.result;
        body.data.forbidden_status = forbidden_status;
        body.data.backup_key = backup_key;
        let detail = self.rule.callback.as_ref().is_some_and(|c| c.detail);
        for (scene, result) in &decision.scenes {
            if detail {
                body.data
                    .segments
                    .extend(result.segments.iter().map(|segment| SegmentInfo {
                        scene: *scene,
                        segment: segment.clone(),
                    }));
            }
            let info = SceneInfo {
                hit_flag: result.hit_flag,
                score: result.score,
                label: result.label.clone(),
                engine: None,
            };
            match scene {
                Scene::Porn => body.data.porn_info = info,
                Scene::Ads => body.data.ads_info = info,
                Scene::Illegal => body.data.illegal_info = Some(info),
                Scene::Abuse => body.data.abuse_info = Some(info),
            }
        }
        body
    }
}
