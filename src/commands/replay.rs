//! `earshot callbacks replay` and `earshot jobs replay`: what could not be finished, run again.
//! Callbacks that were dead-lettered are re-sent; jobs that were parked (a source gave up on them,
//! or they could not succeed as they stood) are run through the pipeline again. What succeeds is
//! removed from the dead-letter area; what still fails stays, with its newest reason.

use super::{CommandError, parse_s3_url};
use crate::callback::{self, Notifier};
use crate::config::{CallbackConfig, Config};
use crate::pipeline::{Ack, Pipeline};
use crate::state;

fn bucket_of(url: &str) -> Result<String, CommandError> {
    match parse_s3_url(url) {
        Some((bucket, _)) => Ok(bucket),
        None => Err(CommandError::Usage(format!("{url}: expected s3://bucket"))),
    }
}

/// Re-sends every dead-lettered callback in a bucket (to `to` instead when given).
///
/// # Errors
/// The bucket could not be read, or some callbacks still cannot be delivered.
pub async fn callbacks(
    config: Config,
    bucket_url: &str,
    to: Option<String>,
) -> Result<(), CommandError> {
    let bucket = bucket_of(bucket_url)?;
    let s3 = crate::storage::s3_client(&config.s3).await;
    let notifier = Notifier::default();
    let letters = state::dead_letters(&s3, &bucket).await?;
    let (mut delivered, mut failed) = (0, 0);
    for (key, letter) in letters {
        let mut request = letter.request.clone();
        if let Some(url) = &to {
            request.url = url.clone();
        }
        let settings = CallbackConfig {
            url: request.url.clone(),
            seed: None,
            max_attempts: 3,
            initial_backoff_ms: 500,
            timeout_secs: 10,
            detail: false,
        };
        match notifier.deliver(&settings, &request).await {
            callback::Delivery::Delivered { .. } => {
                state::delete(&s3, &bucket, &key).await?;
                println!("delivered {} to {}", letter.trace_id, request.url);
                delivered += 1;
            }
            callback::Delivery::Failed { error, .. } => {
                println!("still failing {}: {error}", letter.trace_id);
                failed += 1;
            }
        }
    }
    eprintln!("{delivered} delivered, {failed} still failing");
    if failed > 0 {
        return Err(CommandError::Failed(format!(
            "{failed} callbacks could not be delivered"
        )));
    }
    Ok(())
}

/// Runs every parked job in a bucket again.
///
/// # Errors
/// The bucket could not be read, or some jobs still cannot be run.
pub async fn jobs(config: Config, bucket_url: &str) -> Result<(), CommandError> {
    let bucket = bucket_of(bucket_url)?;
    let pipeline = Pipeline::new(config).await?;
    let parked = state::dead_jobs(&pipeline.s3, &bucket).await?;
    let (mut done, mut failed) = (0, 0);
    for (key, dead) in parked {
        let job = &dead.job;
        let handled = pipeline.handle(job, "replay").await;
        match (&handled.result, handled.ack) {
            (Ok(outcome), Ack::Done) => {
                // Parking again (a job that can never succeed) wrote a fresh record at this key.
                if handled.parked.is_none() {
                    state::delete(&pipeline.s3, &bucket, &key).await?;
                }
                println!("{} s3://{}/{}", outcome.label(), job.bucket, job.key);
                done += 1;
            }
            (Err(e), Ack::Done) => {
                println!("parked again s3://{}/{}: {e}", job.bucket, job.key);
                failed += 1;
            }
            (result, Ack::Retry) => {
                let error = result.as_ref().map_or_else(
                    |e| e.to_string(),
                    |o| format!("left unfinished ({})", o.label()),
                );
                println!("still failing s3://{}/{}: {error}", job.bucket, job.key);
                failed += 1;
            }
        }
    }
    eprintln!("{done} run, {failed} still failing");
    if failed > 0 {
        return Err(CommandError::Failed(format!(
            "{failed} parked jobs could not be run"
        )));
    }
    Ok(())
}
