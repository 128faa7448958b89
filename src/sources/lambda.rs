//! The Lambda source: one invocation's payload → jobs → pipeline → the invocation's answer. The
//! `earshot-lambda` binary wraps [`handle`] in `lambda_runtime`.
//!
//! What is retried, by trigger:
//!
//! | trigger | a job failing for a passing reason (S3 unreachable, bucket missing, state write failed) | a job that can never succeed as it stands | bad input (corrupt, oversize, gone) | a malformed body |
//! |---|---|---|---|---|
//! | SQS (event source mapping with `ReportBatchItemFailures`) | its message in `batchItemFailures`: redelivered, then the queue's DLQ | parked in the bucket, done | judged, called back, deleted | its message in `batchItemFailures`, logged with the body: reaches the DLQ |
//! | S3 Batch Operations (`LambdaInvoke`, schema 1.0 or 2.0) | `TemporaryFailure` for its task: S3 retries it | `PermanentFailure` with the reason, parked | `Succeeded`, called back with its code | the invocation fails |
//! | S3, SNS, EventBridge (asynchronous invocation) | the invocation fails: Lambda retries it (twice by default), then its on-failure destination | parked, the invocation succeeds | judged, called back | the invocation fails with an error naming the problem |
//!
//! Bad input is never retried: it is a finished job whose callback says what was wrong. Which
//! failures are passing is decided in one place, [`Pipeline::handle`].
//!
//! With asynchronous engines (AMS, Shumei) the same function also takes their results behind a
//! function URL or an API Gateway HTTP API (payload format 2.0): `POST
//! /engines/<engine>/results/<token>` is answered like `earshot serve` answers it. A scheduled
//! rule invoking it with `{"earshot": "sweep"}` (the SAM template's `Sweep` schedule) does what
//! `earshot serve`'s sweeps do: poll late results, call back overdue ones with 1202, and let
//! `on_review_timeout` decide the review items nobody decided in time.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::engines::Headers;
use crate::job::{EventError, Job, parse_event, parse_event_value};
use crate::pipeline::{Ack, Outcome, Pipeline};

/// SQS records of one batch judged at once.
const BATCH_CONCURRENCY: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("malformed invocation payload: {0}")]
    Malformed(#[from] EventError),
    #[error(
        "{failed} of {jobs} jobs failed for a passing reason (first: {first}); the invocation is to be retried"
    )]
    Retry {
        failed: usize,
        jobs: usize,
        first: String,
    },
}

/// Handles one invocation.
///
/// # Errors
/// A malformed payload, or (outside SQS batches) a job that must be retried.
pub async fn handle(pipeline: &Pipeline, payload: Value) -> Result<Value, LambdaError> {
    let is_sqs = payload
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        == Some("aws:sqs");
    if is_sqs {
        let batch: SqsEvent = serde_json::from_value(payload).map_err(EventError::NotJson)?;
        let response = sqs_batch(pipeline, batch).await;
        return Ok(serde_json::to_value(response).expect("a batch response serialises"));
    }
    if let Some(path) = payload.get("rawPath").and_then(Value::as_str) {
        return Ok(http_request(pipeline, path, &payload).await);
    }
    if let Some(version) = payload
        .get("invocationSchemaVersion")
        .and_then(Value::as_str)
    {
        return batch_operations(pipeline, version, &payload).await;
    }
    if payload.get("earshot").and_then(Value::as_str) == Some("sweep") {
        pipeline.sweep().await;
        let reviews_decided = pipeline.expire_reviews().await;
        return Ok(json!({"swept": true, "reviews_decided": reviews_decided}));
    }
    let parsed = parse_event_value(&payload)?;
    for ignored in &parsed.ignored {
        tracing::info!(reason = %ignored.reason, "Event acknowledged and ignored.");
    }
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for job in &parsed.jobs {
        let handled = pipeline.handle(job, "lambda").await;
        match (handled.result, handled.ack) {
            (Ok(outcome), Ack::Done) => results.push(summary(job, &outcome)),
            (Err(e), Ack::Done) => results.push(json!({
                "outcome": "parked", "bucket": job.bucket, "key": job.key,
                "reason": e.to_string(), "dead_job": handled.parked,
            })),
            (result, Ack::Retry) => {
                let error = result.map_or_else(
                    |e| e.to_string(),
                    |o| format!("left unfinished ({})", o.label()),
                );
                tracing::warn!(bucket = %job.bucket, key = %job.key, %error, "Job failed; the invocation will be retried.");
                failures.push(error);
            }
        }
    }
    if let Some(first) = failures.first() {
        return Err(LambdaError::Retry {
            failed: failures.len(),
            jobs: parsed.jobs.len(),
            first: first.clone(),
        });
    }
    Ok(json!({"jobs": results, "ignored": parsed.ignored.len()}))
}

/// An S3 Batch Operations invocation (`LambdaInvoke`, schema 1.0 or 2.0): each task is judged
/// like an upload (`"source": "batch"`) and answered with a result S3 keeps in the job's
/// completion report:
///
/// - `Succeeded`: judged (bad input included: it is called back with its code), judged before,
///   or handed to an asynchronous engine whose callback follows;
/// - `TemporaryFailure`: a passing failure; S3 Batch Operations retries the task;
/// - `PermanentFailure`, with the reason: no rule covers the key, or the job can never succeed as
///   it stands (it is parked in the bucket for `earshot jobs replay`).
///
/// Keys arrive URL-encoded, as the job's manifest holds them.
async fn batch_operations(
    pipeline: &Pipeline,
    version: &str,
    payload: &Value,
) -> Result<Value, LambdaError> {
    let malformed = |message: &str| {
        LambdaError::Malformed(EventError::BadRecord {
            index: 0,
            message: format!("S3 Batch Operations invocation: {message}"),
        })
    };
    if !matches!(version, "1.0" | "2.0") {
        return Err(malformed(&format!(
            "invocationSchemaVersion {version} is not 1.0 or 2.0"
        )));
    }
    let tasks = payload
        .get("tasks")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no tasks"))?;
    let mut results = Vec::new();
    for task in tasks {
        let task_id = task.get("taskId").and_then(Value::as_str).unwrap_or("");
        let bucket = task.get("s3Bucket").and_then(Value::as_str).or_else(|| {
            task.get("s3BucketArn")
                .and_then(Value::as_str)
                .and_then(|arn| arn.rsplit(":::").next())
        });
        let raw_key = task.get("s3Key").and_then(Value::as_str);
        let (Some(bucket), Some(raw_key)) = (bucket, raw_key) else {
            results.push(json!({"taskId": task_id, "resultCode": "PermanentFailure",
                "resultString": "task without s3Bucket/s3BucketArn or s3Key"}));
            continue;
        };
        let key = percent_encoding::percent_decode_str(&raw_key.replace('+', " "))
            .decode_utf8()
            .map(|k| k.into_owned())
            .unwrap_or_else(|_| raw_key.to_owned());
        let mut job = Job::new(bucket, key).with_origin(crate::job::Origin::Batch);
        job.version_id = task
            .get("s3VersionId")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && *v != "null")
            .map(str::to_owned);
        let handled = pipeline.handle(&job, "batch").await;
        let (code, text) = match (&handled.result, handled.ack) {
            (Ok(Outcome::Skipped(skip)), _) => {
                ("PermanentFailure", format!("not moderated: {skip}"))
            }
            (Ok(Outcome::Finished { body, .. }), Ack::Done) => (
                "Succeeded",
                format!(
                    "code {} result {} forbidden_status {}: {}",
                    body.code,
                    body.data.result.as_u8(),
                    body.data.forbidden_status.as_u8(),
                    body.message
                ),
            ),
            (Ok(outcome), Ack::Done) => ("Succeeded", outcome.label().to_owned()),
            (Ok(outcome), Ack::Retry) => (
                "TemporaryFailure",
                format!("not finished yet ({})", outcome.label()),
            ),
            (Err(e), Ack::Retry) => ("TemporaryFailure", e.to_string()),
            (Err(e), Ack::Done) => (
                "PermanentFailure",
                format!(
                    "{e}; parked at {}",
                    handled.parked.as_deref().unwrap_or("(not parked)")
                ),
            ),
        };
        results.push(json!({"taskId": task_id, "resultCode": code, "resultString": text}));
    }
    Ok(json!({
        "invocationSchemaVersion": version,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": payload.get("invocationId").cloned().unwrap_or(Value::Null),
        "results": results,
    }))
}

/// An HTTP request (function URL / HTTP API payload 2.0): a provider's result.
async fn http_request(pipeline: &Pipeline, path: &str, payload: &Value) -> Value {
    let answer = |status: u16, body: &str| json!({"statusCode": status, "headers": {"content-type": "text/plain"}, "body": body});
    let method = payload
        .pointer("/requestContext/http/method")
        .and_then(Value::as_str)
        .unwrap_or("");
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["engines", engine, "results", token] = parts.as_slice() else {
        return answer(404, "not found");
    };
    if method != "POST" {
        return answer(405, "POST only");
    }
    let raw = payload.get("body").and_then(Value::as_str).unwrap_or("");
    let body = if payload.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        use base64::Engine as _;
        match base64::engine::general_purpose::STANDARD.decode(raw) {
            Ok(bytes) => bytes,
            Err(_) => return answer(400, "body is not base64"),
        }
    } else {
        raw.as_bytes().to_vec()
    };
    let mut headers = Headers::default();
    for (name, value) in payload
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(value) = value.as_str() {
            headers.insert(name, value);
        }
    }
    match pipeline
        .receive_result(engine, token, &headers, &body)
        .await
    {
        Ok(received) => {
            // Lambda may freeze the environment once the invocation is answered: nothing may run
            // after the answer, so the job is finished (blocked, called back) first. A failure is
            // left to the scheduled sweep; the stored result is what the provider needed taken.
            pipeline.finish_after(&received).await;
            answer(200, received.message())
        }
        Err(rejection) => answer(rejection.status(), &rejection.to_string()),
    }
}

async fn sqs_batch(pipeline: &Pipeline, batch: SqsEvent) -> SqsBatchResponse {
    let failed: Vec<Option<String>> = futures::stream::iter(batch.records)
        .map(|record| async move {
            let id = record.message_id.clone().unwrap_or_default();
            (!sqs_record(pipeline, &record).await).then_some(id)
        })
        .buffer_unordered(BATCH_CONCURRENCY)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for id in failed.into_iter().flatten() {
        response.add_failure(id);
    }
    response
}

/// True when the record is done with (judged, skipped or a duplicate); false to have it retried.
async fn sqs_record(pipeline: &Pipeline, record: &SqsMessage) -> bool {
    let message_id = record.message_id.as_deref().unwrap_or_default();
    let body = record.body.as_deref().unwrap_or_default();
    let parsed = match parse_event(body.as_bytes()) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::error!(message_id, error = %e, body, "Malformed event; reported failed so it reaches the queue's dead-letter queue.");
            return false;
        }
    };
    for ignored in &parsed.ignored {
        tracing::info!(message_id, reason = %ignored.reason, "Event acknowledged and ignored.");
    }
    let mut done = true;
    for job in &parsed.jobs {
        let handled = pipeline.handle(job, "lambda").await;
        if handled.ack == Ack::Retry {
            tracing::warn!(message_id, bucket = %job.bucket, key = %job.key, error = ?handled.result.err(), "Job not finished; message reported in batchItemFailures.");
            done = false;
        }
    }
    done
}

fn summary(job: &Job, outcome: &Outcome) -> Value {
    let mut summary = match outcome {
        Outcome::Skipped(skip) => json!({"outcome": "skipped", "reason": skip.to_string()}),
        Outcome::Duplicate { trace_id } | Outcome::InProgress { trace_id, .. } => {
            json!({"outcome": "duplicate", "trace_id": trace_id})
        }
        Outcome::Waiting { trace_id } => json!({"outcome": "waiting", "trace_id": trace_id}),
        Outcome::Finished { trace_id, body, .. } => json!({
            "outcome": "finished",
            "trace_id": trace_id,
            "code": body.code,
            "result": body.data.result,
            "forbidden_status": body.data.forbidden_status,
        }),
    };
    summary["bucket"] = json!(job.bucket);
    summary["key"] = json!(job.key);
    summary
}
