//! `earshot moderate FILE|s3://B/K`: one object judged, the verdict printed as the callback body.

use std::path::PathBuf;

use super::{CommandError, parse_s3_url};
use crate::config::Config;
use crate::job::Job;
use crate::model::Scene;
use crate::pipeline::{CallbackOutcome, Judgement, Outcome, Pipeline};
use crate::state;

/// What to moderate and how.
#[derive(Debug, Clone)]
pub struct Moderate {
    /// A file path or `s3://bucket/key`.
    pub target: String,
    /// For `s3://` targets: judge only, neither block nor call back.
    pub dry_run: bool,
    /// For local files: the engine to use.
    pub engine: String,
    /// For local files: the scenes to judge; empty for every scene.
    pub scenes: Vec<Scene>,
    /// For local files and a speech engine: print the transcript before the verdict.
    pub transcript: bool,
}

/// Judges the target and returns the callback body to print; `None` when the job was handed to an
/// asynchronous engine (its result is called back by `earshot serve`).
///
/// # Errors
/// A missing file, a key no rule covers, or a job that could not run.
pub async fn run(
    config: Config,
    args: &Moderate,
) -> Result<Option<serde_json::Value>, CommandError> {
    let pipeline = Pipeline::new(config).await?;
    let target = &args.target;
    // The scenes a local file is judged on (an object's are its rule's).
    let mut judged = None;
    let body = match parse_s3_url(target) {
        None => {
            let path = PathBuf::from(target);
            if !path.is_file() {
                return Err(CommandError::Usage(format!(
                    "{target}: no such file (or use s3://bucket/key)"
                )));
            }
            let scenes = judged.insert(if args.scenes.is_empty() {
                Scene::ALL.to_vec()
            } else {
                args.scenes.clone()
            });
            let (body, transcript) = pipeline
                .moderate_file(&path, &args.engine, scenes, args.transcript)
                .await?;
            if let Some(transcript) = transcript {
                for line in transcript.lines() {
                    println!("{line}");
                }
                if transcript.capped {
                    println!("(speech past max_speech_secs was not transcribed)");
                }
            }
            body
        }
        Some((bucket, key)) => {
            let job = Job::new(bucket, key).with_origin(crate::job::Origin::Manual);
            let rule = pipeline
                .rules()
                .find(&job.bucket, &job.key)
                .map_err(|skip| CommandError::Usage(format!("{target}: {skip}")))?
                .clone();
            if args.dry_run {
                match pipeline.judge(&job, &rule, &job.trace_id(), false).await? {
                    Judgement::Done { body, .. } => *body,
                    Judgement::Waiting => {
                        return Err(CommandError::Failed(format!(
                            "{target}: a dry run cannot wait for an asynchronous engine"
                        )));
                    }
                }
            } else {
                match pipeline.process(&job).await? {
                    Outcome::Finished { body, callback, .. } => {
                        if let CallbackOutcome::DeadLettered { key, error } = callback {
                            eprintln!(
                                "Callback undeliverable ({error}); kept at s3://{}/{key}",
                                job.bucket
                            );
                        }
                        *body
                    }
                    Outcome::InProgress { .. } => {
                        return Err(CommandError::Failed(format!(
                            "{target} is being judged by another process; run it again when that is done"
                        )));
                    }
                    Outcome::Waiting { trace_id } => {
                        eprintln!(
                            "Handed to an asynchronous engine (trace id {trace_id}); `earshot serve` \
                             receives its result and calls back."
                        );
                        return Ok(None);
                    }
                    Outcome::Duplicate { trace_id } => {
                        let record = state::finished_job(&pipeline.s3, &job.bucket, &trace_id)
                            .await?
                            .ok_or_else(|| {
                                CommandError::Failed("the job record vanished".to_owned())
                            })?;
                        eprintln!("Already judged; printing the recorded verdict.");
                        record.body
                    }
                    Outcome::Skipped(skip) => {
                        return Err(CommandError::Failed(format!("{target}: {skip}")));
                    }
                }
            }
        }
    };
    // The callback body; for a local file, with the scenes judged (COS's body always has porn,
    // ads and illegal: a scene not judged scores 0 there). An object's verdict is exactly the
    // callback its rule sent.
    let mut verdict = serde_json::to_value(&body)?;
    if let Some(scenes) = judged {
        verdict["scenes"] =
            serde_json::json!(scenes.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    }
    Ok(Some(verdict))
}
