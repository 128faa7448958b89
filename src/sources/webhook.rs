//! The webhook source: an HTTP listener (axum) for MinIO bucket notifications (`POST /minio`,
//! bearer token) and SNS HTTP(S) subscriptions (`POST /sns`, signature verified), plus the
//! operational endpoints of [`crate::admin`].
//!
//! A request is answered 2xx only once all its jobs are in a bounded in-memory queue; when the
//! queue cannot take them all, it is answered 503 with `Retry-After` and nothing is queued (MinIO
//! and SNS both retry). `max_concurrency` workers take jobs from the queue. A job that fails for a
//! passing reason is run again by its worker with backoff (the sender was already answered and
//! will not redeliver); after `max_attempts` runs it is parked in the bucket's dead-job area, with
//! the reason, for `earshot jobs replay` — retrying the write until the bucket answers. An accepted
//! job is never dropped. On shutdown the listener stops, the queue is drained, and a job still
//! failing is parked at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::sns::{self, SnsError, Verifier};
use crate::backoff::Backoff;
use crate::config::WebhookConfig;
use crate::job::{Job, Parsed, parse_event};
use crate::pipeline::{Ack, Outcome, Pipeline};
use crate::signing::constant_time_eq;

/// The longest pause between runs of a failing job.
const MAX_PAUSE: Duration = Duration::from_secs(60);

struct Queued {
    job: Job,
    /// Frees the job's place in the queue when a worker takes it.
    slot: OwnedSemaphorePermit,
}

/// What the workers share. It holds no sender of the queue, so the queue ends when the listener
/// (which holds the only one) is gone.
struct Workers {
    pipeline: Arc<Pipeline>,
    slots: Arc<Semaphore>,
    capacity: usize,
    max_attempts: u32,
    first_pause: Duration,
    shutdown: CancellationToken,
}

impl Workers {
    fn report_depth(&self) {
        let depth = self.capacity - self.slots.available_permits();
        self.pipeline.metrics.queue_depth("webhook", depth);
    }
}

/// What the request handlers share.
struct Hook {
    workers: Arc<Workers>,
    config: WebhookConfig,
    queue: mpsc::UnboundedSender<Queued>,
    verifier: Verifier,
    /// Fetches SNS certificates (in `verifier`) and visits subscription URLs.
    http: reqwest::Client,
}

/// Serves until `shutdown` is cancelled, then drains the queue and returns.
///
/// # Errors
/// The listen address could not be bound.
pub async fn run(
    pipeline: Arc<Pipeline>,
    config: WebhookConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (queue, receiver) = mpsc::unbounded_channel();
    let receiver = Arc::new(Mutex::new(receiver));
    let workers = Arc::new(Workers {
        pipeline: pipeline.clone(),
        slots: Arc::new(Semaphore::new(config.queue_capacity)),
        capacity: config.queue_capacity,
        max_attempts: config.max_attempts.max(1),
        first_pause: Duration::from_millis(config.retry_initial_ms),
        shutdown: shutdown.clone(),
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a reqwest client with a timeout builds");
    let trusted_origins = config
        .sns
        .as_ref()
        .map_or(&[][..], |s| &s.trusted_cert_origins);
    let hook = Arc::new(Hook {
        workers: workers.clone(),
        verifier: Verifier::new(http.clone(), trusted_origins),
        http,
        config: config.clone(),
        queue,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..config.max_concurrency {
        let (workers, receiver) = (workers.clone(), receiver.clone());
        tasks.spawn(async move { work(&workers, &receiver).await });
    }

    let mut router = crate::admin::router(pipeline);
    if config.minio.is_some() {
        router = router.route("/minio", post(minio).with_state(hook.clone()));
    }
    if config.sns.is_some() {
        router = router.route("/sns", post(sns_message).with_state(hook.clone()));
    }
    tracing::info!(
        minio = config.minio.is_some(),
        sns = config.sns.is_some(),
        queue_capacity = config.queue_capacity,
        max_concurrency = config.max_concurrency,
        "Webhook source starting."
    );
    let served = crate::admin::serve(&config.listen, router, shutdown).await;
    // The router (and its handles on the queue) is gone: once the workers empty the queue, their
    // receiver ends.
    drop(hook);
    let waiting = receiver.lock().await.len();
    if waiting > 0 {
        tracing::info!(waiting, "Shutting down: finishing the queued jobs.");
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!("Webhook source stopped.");
    served
}

async fn work(workers: &Workers, receiver: &Mutex<mpsc::UnboundedReceiver<Queued>>) {
    loop {
        let Some(Queued { job, slot }) = receiver.lock().await.recv().await else {
            return;
        };
        drop(slot);
        workers.report_depth();
        run_job(workers, &job).await;
    }
}

/// Runs a job until it is done with; after `max_attempts` runs (or at shutdown) it is parked.
async fn run_job(workers: &Workers, job: &Job) {
    let mut backoff = Backoff::new(workers.first_pause, MAX_PAUSE);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let handled = workers.pipeline.handle(job, "webhook").await;
        let error = match handled.result {
            // Another worker or process holds the same object version and finishes it.
            Ok(Outcome::InProgress { trace_id, .. }) => {
                tracing::info!(%trace_id, bucket = %job.bucket, key = %job.key, "Same object version is being judged by another worker or process; this delivery is done.");
                return;
            }
            _ if handled.ack == Ack::Done => return,
            Ok(outcome) => format!("left unfinished ({})", outcome.label()),
            Err(e) => e.to_string(),
        };
        if attempt >= workers.max_attempts || workers.shutdown.is_cancelled() {
            let reason = format!("gave up after {attempt} runs: {error}");
            park_until_written(workers, job, attempt, &reason).await;
            return;
        }
        let pause = backoff.next_delay();
        tracing::warn!(bucket = %job.bucket, key = %job.key, attempt, retry_in_ms = pause.as_millis() as u64, %error, "Job failed; retrying.");
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = workers.shutdown.cancelled() => {}
        }
    }
}

/// Parks a job the webhook gives up on, retrying the write until the bucket answers; at shutdown
/// the last resort is an error log carrying the whole job.
async fn park_until_written(workers: &Workers, job: &Job, attempts: u32, reason: &str) {
    let mut backoff = Backoff::new(workers.first_pause, MAX_PAUSE);
    loop {
        match workers
            .pipeline
            .park(job, "webhook", attempts, reason)
            .await
        {
            Ok(_) => return,
            Err(e) if workers.shutdown.is_cancelled() => {
                let job = serde_json::to_string(job).expect("a job serialises");
                tracing::error!(%job, error = %e, %reason, "Job NOT judged and could not be parked: moderate it with `earshot moderate s3://BUCKET/KEY`.");
                return;
            }
            Err(e) => {
                let pause = backoff.next_delay();
                tracing::warn!(bucket = %job.bucket, key = %job.key, error = %e, retry_in_ms = pause.as_millis() as u64, "Parking the job failed; retrying.");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = workers.shutdown.cancelled() => {}
                }
            }
        }
    }
}

impl Hook {
    /// Queues all of `jobs`, or none of them when the queue cannot take them all.
    fn enqueue(&self, jobs: Vec<Job>) -> Result<(), ()> {
        if jobs.is_empty() {
            return Ok(());
        }
        if self.workers.shutdown.is_cancelled() {
            return Err(());
        }
        let wanted = u32::try_from(jobs.len()).map_err(|_| ())?;
        let mut slots = self
            .workers
            .slots
            .clone()
            .try_acquire_many_owned(wanted)
            .map_err(|_| ())?;
        for job in jobs {
            let slot = slots.split(1).expect("one permit was acquired per job");
            self.queue.send(Queued { job, slot }).map_err(|_| ())?;
        }
        self.workers.report_depth();
        Ok(())
    }

    /// Queues the jobs of a parsed event and answers for them.
    fn accept(&self, endpoint: &str, parsed: Parsed) -> Response {
        for ignored in &parsed.ignored {
            tracing::info!(endpoint, reason = %ignored.reason, "Event acknowledged and ignored.");
        }
        let accepted = parsed.jobs.len();
        match self.enqueue(parsed.jobs) {
            Ok(()) => self.answer(
                endpoint,
                StatusCode::OK,
                json!({"accepted": accepted, "ignored": parsed.ignored.len()}).to_string(),
            ),
            Err(()) => {
                tracing::warn!(
                    endpoint,
                    jobs = accepted,
                    "Queue full; answered 503, the sender will retry."
                );
                let mut response = self.answer(
                    endpoint,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue full, retry later\n".to_owned(),
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(self.config.retry_after_secs),
                );
                response
            }
        }
    }

    fn answer(&self, endpoint: &str, status: StatusCode, body: String) -> Response {
        self.workers
            .pipeline
            .metrics
            .webhook_request(endpoint, status.as_u16());
        (status, body).into_response()
    }
}

async fn minio(State(hook): State<Arc<Hook>>, headers: HeaderMap, body: Bytes) -> Response {
    let token = hook
        .config
        .minio
        .as_ref()
        .map(|m| m.auth_token.as_str())
        .unwrap_or_default();
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
        tracing::warn!(
            with_token = presented.is_some(),
            "MinIO webhook request refused: wrong or missing bearer token."
        );
        let mut response = hook.answer(
            "minio",
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token\n".to_owned(),
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    match parse_event(&body) {
        Ok(parsed) => hook.accept("minio", parsed),
        Err(e) => {
            tracing::error!(error = %e, body = %String::from_utf8_lossy(&body), "Malformed MinIO event refused.");
            hook.answer("minio", StatusCode::BAD_REQUEST, format!("{e}\n"))
        }
    }
}

async fn sns_message(State(hook): State<Arc<Hook>>, body: Bytes) -> Response {
    let message: sns::Message = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(e) => {
            tracing::error!(error = %e, body = %String::from_utf8_lossy(&body), "Malformed SNS message refused.");
            return hook.answer(
                "sns",
                StatusCode::BAD_REQUEST,
                format!("not an SNS message: {e}\n"),
            );
        }
    };
    let topics = hook
        .config
        .sns
        .as_ref()
        .map_or(&[][..], |s| &s.topic_arns[..]);
    if !topics.is_empty() && !topics.contains(&message.topic_arn) {
        tracing::warn!(topic_arn = %message.topic_arn, "SNS message from a topic not in sources.webhook.sns.topic_arns refused.");
        return hook.answer(
            "sns",
            StatusCode::FORBIDDEN,
            "topic not accepted\n".to_owned(),
        );
    }
    match hook.verifier.verify(&message).await {
        Ok(()) => {}
        Err(e @ SnsError::Refused(_)) => {
            tracing::warn!(message_id = %message.message_id, topic_arn = %message.topic_arn, error = %e, "SNS message refused.");
            return hook.answer("sns", StatusCode::FORBIDDEN, format!("{e}\n"));
        }
        Err(e @ SnsError::CertUnavailable(_)) => {
            tracing::warn!(message_id = %message.message_id, error = %e, "SNS message not verifiable now; SNS will retry.");
            return hook.answer("sns", StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"));
        }
    }
    match message.kind.as_str() {
        "SubscriptionConfirmation" => confirm(&hook, &message).await,
        "Notification" => match parse_event(message.message.as_bytes()) {
            Ok(parsed) => hook.accept("sns", parsed),
            Err(e) => {
                // Signed by SNS, so not forged: the topic carries something other than S3
                // events. Refused, and logged with its body.
                tracing::error!(message_id = %message.message_id, topic_arn = %message.topic_arn, error = %e, message = %message.message, "SNS notification is not an S3 event; refused.");
                hook.answer("sns", StatusCode::BAD_REQUEST, format!("{e}\n"))
            }
        },
        other => {
            tracing::info!(kind = other, topic_arn = %message.topic_arn, "SNS message acknowledged.");
            hook.answer("sns", StatusCode::OK, "ok\n".to_owned())
        }
    }
}

/// Confirms a subscription by visiting its (signed) `SubscribeURL`.
async fn confirm(hook: &Hook, message: &sns::Message) -> Response {
    let Some(url) = &message.subscribe_url else {
        return hook.answer(
            "sns",
            StatusCode::BAD_REQUEST,
            "SubscriptionConfirmation without SubscribeURL\n".to_owned(),
        );
    };
    let confirmed = hook
        .http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    match confirmed {
        Ok(_) => {
            tracing::info!(topic_arn = %message.topic_arn, "SNS subscription confirmed.");
            hook.answer("sns", StatusCode::OK, "subscription confirmed\n".to_owned())
        }
        Err(e) => {
            tracing::warn!(topic_arn = %message.topic_arn, error = %e, "SNS subscription confirmation failed; SNS will resend it.");
            hook.answer(
                "sns",
                StatusCode::BAD_GATEWAY,
                format!("confirmation failed: {e}\n"),
            )
        }
    }
}
