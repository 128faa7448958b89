//! Judging one object per its rule: fetch (size cap, pinned to the version), decode (duration cap,
//! fingerprint), ask the rule's engines, then settle — decision, failure policy, block. A rule
//! whose engines include a [`crate::engines::Provider`] hands the job over to
//! [`super::waiting`] instead of settling here.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::combine::{Combined, combine, engine_outcome, failures};
use super::report::Report;
use super::settle::OwnedTarget;
use super::{JobError, Pipeline};
use crate::audio::{AudioError, DecodeLimits};
use crate::callback::{Body, Code};
use crate::config::{BlockConfig, OnEngineError};
use crate::engines::speech::transcript::Transcript;
use crate::engines::{Clip, Engine, Provider, Submission};
use crate::fetch::{self, FetchError};
use crate::fingerprint;
use crate::job::Job;
use crate::model::{ForbiddenStatus, Scene};
use crate::rules::{Rule, key_suffix};
use crate::state::pending::{EngineOutcome, Waiting};
use crate::state::prints::{self, Print};

/// What judging came to.
#[derive(Debug)]
pub enum Judgement {
    /// The callback body; `waited` when the job went through [`super::waiting`] (to be cleared
    /// once it is recorded).
    Done { body: Box<Body>, waited: bool },
    /// Handed to asynchronous engines.
    Waiting,
}

/// Scores above this are blocked at once under `review = "human"`; from `min_score` to this a
/// person decides.
pub const HUMAN_REVIEW_ABOVE: u8 = 90;

impl Pipeline {
    /// Judges one object per its rule and, when `enforce`, blocks it if due: the callback body, or
    /// [`Judgement::Waiting`] when an asynchronous engine has the job. Used by
    /// [`Pipeline::process`] and by `earshot moderate s3://… --dry-run`.
    ///
    /// # Errors
    /// The job could not run to its end; see [`JobError`].
    pub async fn judge(
        &self,
        job: &Job,
        rule: &Rule,
        trace_id: &str,
        enforce: bool,
    ) -> Result<Judgement, JobError> {
        let done = |body: Body| {
            Ok(Judgement::Done {
                body: Box::new(body),
                waited: false,
            })
        };
        let report = self.report(job, rule, trace_id);
        // `source` is where the bytes are read from: the object itself, or its backup when an
        // earlier run of this job moved it and was interrupted before calling back. One GET
        // answers what a HEAD would (size, version, type) and brings the bytes.
        let max_bytes = self.config.limits.max_object_bytes;
        let started = Instant::now();
        let (spooled, source) = match fetch::get(&self.s3, job, max_bytes, &self.spool_dir).await {
            Ok(spooled) => (spooled, job.clone()),
            Err(FetchError::Gone { .. }) if enforce => match self.already_moved(job, rule).await? {
                Some((head, backup)) => {
                    match fetch::download(&self.s3, &backup, head, max_bytes, &self.spool_dir).await
                    {
                        Ok(spooled) => (spooled, backup),
                        Err(e) => return done(unjudged_or_retry(&report, e)?),
                    }
                }
                None => {
                    return done(unjudged_or_retry(
                        &report,
                        FetchError::Gone {
                            bucket: job.bucket.clone(),
                            key: job.key.clone(),
                        },
                    )?);
                }
            },
            Err(e) => return done(unjudged_or_retry(&report, e)?),
        };
        if spooled.size == 0 {
            return done(report.unjudged(Code::EmptyObject, AudioError::Empty.to_string()));
        }
        self.metrics.stage("fetch", started);
        self.metrics.fetched_bytes(spooled.size);
        // Every upload is decoded here, whatever judges it: corrupt, truncated, overlong or
        // mislabelled audio gets its own code before a provider is paid to look at it.
        let started = Instant::now();
        let decoded = decode(
            spooled.file.path(),
            key_suffix(&job.key),
            spooled.sha256,
            spooled.size,
            self.config.limits.max_duration_secs,
            self.speech_secs(&rule.engines),
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
        // A retro-hunt's own job found the object by its kept print: it is kept already.
        if rule.retro.keep && enforce && job.origin != crate::job::Origin::Retro {
            let print = Print {
                trace_id: trace_id.to_owned(),
                key: job.key.clone(),
                version_id: version_id.clone(),
                etag: spooled.head.etag.clone(),
                fingerprint: Print::sample(&clip.fingerprint),
            };
            if let Err(e) = prints::keep(&self.s3, &job.bucket, &rule.id, &print).await {
                tracing::warn!(error = %e, "Could not keep the fingerprint for retro-hunts; judging goes on.");
            }
        }
        let (answered, providers) = self.consult(&source, rule, &clip, trace_id).await?;
        self.metrics.stage("analyse", started);
        if !providers.is_empty() {
            if !enforce {
                let names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
                return Err(JobError::DryRunCannotWait(names.join(", ")));
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
                created_at: self.clock.now_secs(),
                awaiting: providers.iter().map(|p| p.name().to_owned()).collect(),
                answered,
                origin: job.origin,
            };
            return self.hand_over(&source, rule, waiting, &providers).await;
        }
        let target = OwnedTarget {
            version_id,
            etag: spooled.head.etag.clone(),
            size: spooled.size,
            sha256: spooled.sha256,
        };
        let body = self
            .settle(job, rule, &report, &answered, &target, Some(&clip), enforce)
            .await?;
        done(body)
    }

    /// Seconds of speech to gather while decoding, for the speech engines among `engines`.
    fn speech_secs(&self, engines: &[String]) -> Option<u64> {
        engines
            .iter()
            .filter_map(|name| match self.engines.get(name) {
                Some(Engine::Analyser(analyser)) => analyser.speech_cap_secs(),
                _ => None,
            })
            .max()
    }

    /// Asks the rule's analysers and classifiers; returns what they said and the providers still
    /// to be asked. With `on_engine_error = "retry"`, a failure is a [`JobError`].
    async fn consult(
        &self,
        source: &Job,
        rule: &Rule,
        clip: &Clip,
        trace_id: &str,
    ) -> Result<(Vec<EngineOutcome>, Vec<Arc<dyn Provider>>), JobError> {
        let mut answered = Vec::new();
        let mut providers = Vec::new();
        for name in &rule.engines {
            let result = match self.engine(name) {
                Engine::Provider(provider) => {
                    providers.push(provider.clone());
                    continue;
                }
                Engine::Analyser(analyser) => analyser
                    .moderate(clip, &rule.scenes)
                    .await
                    .map_err(|e| e.to_string()),
                Engine::Classifier(classifier) => {
                    let expiry = classifier.url_expiry();
                    match self.submission(source, rule, trace_id, expiry).await {
                        Ok(submission) => classifier
                            .classify(&submission)
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                }
            };
            answered.push(engine_outcome(
                name,
                result,
                "submit",
                self.clock.now_secs(),
            ));
        }
        let failures = failures(&answered);
        if !failures.is_empty() {
            tracing::error!(?failures, policy = ?rule.on_engine_error, "Engine failed.");
            if rule.on_engine_error == OnEngineError::Retry {
                return Err(JobError::Engines(failures));
            }
        }
        Ok((answered, providers))
    }

    /// What a remote engine is given: a presigned URL of the bytes being judged.
    pub(super) async fn submission(
        &self,
        source: &Job,
        rule: &Rule,
        trace_id: &str,
        url_expiry: std::time::Duration,
    ) -> Result<Submission, crate::storage::PresignError> {
        let url = crate::storage::presigned_get(
            &self.s3,
            &source.bucket,
            &source.key,
            source.version_id.as_deref(),
            url_expiry,
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

    /// Judges a local file with the named analyser: no S3, no block, no callback. With
    /// `transcript`, also what a speech engine heard.
    ///
    /// # Errors
    /// The engine is not an analyser, or the file cannot be read.
    pub async fn moderate_file(
        &self,
        path: &Path,
        engine: &str,
        scenes: &[Scene],
        transcript: bool,
    ) -> Result<(Body, Option<Arc<Transcript>>), JobError> {
        let Some(Engine::Analyser(analyser)) = self.engines.get(engine) else {
            return Err(JobError::NoEngine(format!(
                "{engine} (local files are judged by a local engine)"
            )));
        };
        let owned = path.to_owned();
        let (sha256, size) = tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(&owned)?.len();
            crate::engines::local::sha256_file(&owned).map(|sha| (sha, size))
        })
        .await
        .map_err(|e| JobError::Decoder(e.to_string()))?
        .map_err(JobError::Spool)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let report = Report {
            url: format!(
                "file://{}",
                std::path::absolute(path)
                    .unwrap_or_else(|_| path.to_owned())
                    .display()
            ),
            bucket: String::new(),
            key: name.clone(),
            version_id: None,
            trace_id: hex::encode(&sha256[..16]),
            rule_id: None,
            scenes: scenes.to_vec(),
            detail: true,
            source: "manual",
        };
        let decoded = decode(
            path,
            key_suffix(&name),
            sha256,
            size,
            self.config.limits.max_duration_secs,
            analyser.speech_cap_secs(),
        )
        .await?;
        let clip = match decoded {
            Ok(clip) => clip,
            Err((code, message)) => return Ok((report.unjudged(code, message), None)),
        };
        let heard = match transcript {
            true => analyser.transcript(&clip).await.and_then(Result::ok),
            false => None,
        };
        let result = analyser
            .moderate(&clip, scenes)
            .await
            .map_err(|e| e.to_string());
        let answered = [engine_outcome(
            analyser.name(),
            result,
            "submit",
            self.clock.now_secs(),
        )];
        let block = BlockConfig {
            enabled: false,
            ..BlockConfig::default()
        };
        let combined: Combined = combine(&answered, scenes, &block);
        if let Some(failure) = combined.failures.first() {
            let body = report.unjudged(Code::EngineFailure, failure.message.clone());
            return Ok((body, heard));
        }
        let mut body = report.judged(&combined.decision, ForbiddenStatus::NotBlocked, None, None);
        combined.annotate(&mut body);
        Ok((body, heard))
    }
}

/// A fetch failure as a callback body when it is bad input (gone, changed, too large); a
/// [`JobError`] otherwise.
fn unjudged_or_retry(report: &Report, error: FetchError) -> Result<Body, JobError> {
    let code = match error {
        FetchError::Gone { .. } => Code::ObjectGone,
        FetchError::Changed { .. } => Code::ObjectChanged,
        FetchError::TooLarge { .. } => Code::TooLarge,
        other => return Err(other.into()),
    };
    Ok(report.unjudged(code, error.to_string()))
}

/// Decodes the file into a [`Clip`], gathering up to `speech_secs` of its speech when a speech
/// engine will judge it; `Ok(Err((code, message)))` when it cannot be judged.
pub(super) async fn decode(
    path: &Path,
    suffix: Option<String>,
    sha256: [u8; 32],
    size: u64,
    max_duration_secs: u64,
    speech_secs: Option<u64>,
) -> Result<Result<Clip, (Code, String)>, JobError> {
    let owned = path.to_owned();
    let decoded = tokio::task::spawn_blocking(move || {
        let mut collector = speech_secs.map(crate::engines::speech::gate::Collector::new);
        let (info, fingerprint) = fingerprint::fingerprint_file_and(
            &owned,
            suffix.as_deref(),
            DecodeLimits { max_duration_secs },
            &mut |samples, rate| {
                if let Some(collector) = collector.as_mut() {
                    collector.push(samples, rate);
                }
            },
        )?;
        let speech = collector.map(|c| Arc::new(c.finish()));
        Ok::<_, AudioError>((info, fingerprint, speech))
    })
    .await
    .map_err(|e| JobError::Decoder(e.to_string()))?;
    let (info, fingerprint, speech) = match decoded {
        Ok(decoded) => decoded,
        Err(AudioError::Io(e)) => return Err(JobError::Spool(e)),
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
    Ok(Ok(Clip {
        sha256,
        size,
        audio: info,
        fingerprint,
        speech,
    }))
}
