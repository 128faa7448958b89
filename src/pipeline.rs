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
use crate::callback::{Body, Code, Data, Delivery, Notifier, Request, SceneInfo, SegmentInfo};
use crate::config::{BlockMode, Config, RuleConfig, Scene};
use crate::decision::{self, Decision};
use crate::engines::{self, Clip, Engine, Engines};
use crate::fetch::{self, FetchError};
use crate::fingerprint;
use crate::job::Job;
use crate::metrics::Metrics;
use crate::rules::{Rules, Skip, key_suffix};
use crate::state::{self, DeadLetter, JobRecord, StateError};
use crate::storage;

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
    /// Judged, blocked if due, called back.
    Finished {
        trace_id: String,
        body: Box<Body>,
        callback: CallbackOutcome,
    },
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
        Ok(Pipeline {
            rules: Rules::new(config.rules.clone()),
            config: Arc::new(config),
            s3,
            engines,
            notifier: Notifier::default(),
            spool_dir: std::env::temp_dir(),
            in_flight: Mutex::new(HashSet::new()),
            metrics: Arc::new(Metrics::default()),
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
        let outcome = match &result {
            Err(_) => "failed",
            Ok(Outcome::Duplicate { .. } | Outcome::InProgress { .. }) => "duplicate",
            Ok(Outcome::Skipped(_)) => "skipped",
            Ok(Outcome::Finished { body, .. }) if body.code != 0 => "unjudged",
            Ok(Outcome::Finished { body, .. }) if body.data.forbidden_status != 0 => "blocked",
            Ok(Outcome::Finished { body, .. }) if body.data.result == 2 => "suspicious",
            Ok(Outcome::Finished { .. }) => "passed",
        };
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

        let body = self.judge(job, rule, &trace_id, true).await?;
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

    /// Judges one object per its rule and, when `enforce`, blocks it if due. Returns the callback
    /// body. Used by [`Pipeline::process`] and by `earshot moderate s3://… --dry-run`.
    ///
    /// # Errors
    /// A passing failure; see [`JobError`].
    pub async fn judge(
        &self,
        job: &Job,
        rule: &RuleConfig,
        trace_id: &str,
        enforce: bool,
    ) -> Result<Body, JobError> {
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
                    return report.unjudged_or_retry(FetchError::Gone {
                        bucket: job.bucket.clone(),
                        key: job.key.clone(),
                    });
                }
            },
            Err(e) => return report.unjudged_or_retry(e),
        };
        if head.size == 0 {
            return Ok(report.unjudged(Code::EmptyObject, AudioError::Empty.to_string()));
        }
        let max_bytes = self.config.limits.max_object_bytes;
        if head.size > max_bytes {
            let e = FetchError::TooLarge {
                bucket: job.bucket.clone(),
                key: job.key.clone(),
                size: head.size,
                limit: max_bytes,
            };
            return Ok(report.unjudged(Code::TooLarge, e.to_string()));
        }
        let started = Instant::now();
        let spooled =
            match fetch::download(&self.s3, &source, head, max_bytes, &self.spool_dir).await {
                Ok(spooled) => spooled,
                Err(e) => return report.unjudged_or_retry(e),
            };
        self.stage("fetch", started);
        self.metrics
            .add("earshot_fetched_bytes_total", &[], spooled.size as f64);
        let engine = self.engine_for(rule);
        let started = Instant::now();
        let assessed = assess(
            engine.clone(),
            spooled.file.path(),
            key_suffix(&job.key),
            spooled.sha256,
            spooled.size,
            &rule.scenes,
            &rule.block,
            self.config.limits.max_duration_secs,
        )
        .await?;
        self.stage("analyse", started);
        let (decision, clip) = match assessed {
            Ok(assessed) => assessed,
            Err((code, message)) => return Ok(report.unjudged(code, message)),
        };
        if !(decision.block && enforce) {
            return Ok(report.judged(&decision, 0, None, None));
        }
        let moved_before = source.key != job.key;
        let target = Target {
            bucket: &job.bucket,
            key: &job.key,
            version_id: if moved_before {
                job.version_id.as_deref()
            } else {
                spooled.head.version_id.as_deref()
            },
            etag: &spooled.head.etag,
            size: spooled.size,
            sha256: spooled.sha256,
        };
        let started = Instant::now();
        let blocked = block::block(&self.s3, rule.block.mode, &target).await;
        self.stage("block", started);
        match blocked {
            Ok(blocked) => {
                let backup = (blocked == Blocked::Moved).then(|| block::backup_key(&job.key));
                tracing::info!(?blocked, backup_key = ?backup, "Blocked.");
                if rule.block.learn {
                    self.learn(engine.as_ref(), &clip, &decision, job).await;
                }
                Ok(report.judged(&decision, blocked as u8, backup, None))
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                let code = match e {
                    BlockError::Gone { .. } => Code::ObjectGone,
                    BlockError::Changed { .. } => Code::ObjectChanged,
                    _ => Code::BlockFailed,
                };
                tracing::error!(error = %e, "Block failed; calling back with the scores and the reason.");
                Ok(report.judged(&decision, 0, None, Some((code, e.to_string()))))
            }
        }
    }

    /// Adds a blocked clip to the rule's engine references (`block.learn`). A failure is logged:
    /// the block stands either way.
    async fn learn(&self, engine: &dyn Engine, clip: &Clip, decision: &Decision, job: &Job) {
        let Some(scene) = decision.top_scene else {
            return;
        };
        let label = decision.scenes.get(&scene).map_or("", |s| s.label.as_str());
        let label = format!("learned: {label}");
        let source = format!("s3://{}/{}", job.bucket, job.key);
        match engine.learn(clip, scene, &label, &source).await {
            Ok(true) => tracing::info!(%scene, "Blocked upload added to the reference library."),
            Ok(false) => tracing::debug!("The rule's engine keeps no references to learn into."),
            Err(e) => {
                tracing::warn!(error = %e, "Could not add the blocked upload to the library.")
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

    fn engine_for(&self, rule: &RuleConfig) -> Arc<dyn Engine> {
        self.engines
            .get(&rule.engine)
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
            engine: engine.name().to_owned(),
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
        let assessed = assess(
            engine,
            path,
            key_suffix(&name),
            sha256,
            size,
            scenes,
            &rule.block,
            self.config.limits.max_duration_secs,
        )
        .await?;
        let mut body = match assessed {
            Ok((decision, _)) => report.judged(&decision, 0, None, None),
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

/// Decodes the file and asks the engine; `Ok(Err((code, message)))` when the file cannot be judged.
#[allow(clippy::too_many_arguments)]
async fn assess(
    engine: Arc<dyn Engine>,
    path: &Path,
    suffix: Option<String>,
    sha256: [u8; 32],
    size: u64,
    scenes: &[Scene],
    block: &crate::config::BlockConfig,
    max_duration_secs: u64,
) -> Result<Result<(Decision, Clip), (Code, String)>, JobError> {
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
    match engine.moderate(&clip, scenes).await {
        Ok(verdict) => Ok(Ok((decision::decide(&verdict, scenes, block), clip))),
        Err(e) => {
            tracing::error!(error = %e, "Engine failed.");
            Ok(Err((Code::EngineFailure, e.to_string())))
        }
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
