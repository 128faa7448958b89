//! The SQS source: long polling, at most `max_concurrency` jobs at once, visibility extended while
//! a job runs, and a message deleted only when every job in it finished (or it holds nothing to
//! do). A message whose job failed for a passing reason is left to reappear after its visibility
//! timeout (and to reach the queue's dead-letter queue after its redrive count); a job that can
//! never succeed is parked in the bucket by [`Pipeline::handle`] and its message deleted; a
//! message that is not an event at all is logged with its body and left for the dead-letter
//! queue.
//!
//! Several daemons may share one queue: SQS hands each message to one of them at a time, and the
//! job markers of [`crate::state`] make a redelivered message harmless.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::Message;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::SqsConfig;
use crate::job::parse_event;
use crate::pipeline::{Ack, Pipeline};
use crate::storage::S3Failure;

/// Runs until `shutdown` is cancelled, then waits for the jobs in flight and returns.
pub async fn run(
    pipeline: Arc<Pipeline>,
    sqs: Client,
    config: SqsConfig,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(config.max_concurrency));
    let mut tasks = JoinSet::new();
    let mut receive_backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    tracing::info!(queue_url = %config.queue_url, max_concurrency = config.max_concurrency, "Polling SQS.");
    let depth = tokio::spawn(report_depth(
        pipeline.clone(),
        sqs.clone(),
        config.queue_url.clone(),
        shutdown.clone(),
    ));
    loop {
        // Wait for a free slot before asking for work, so received messages never wait in memory.
        let first = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let wanted = (1 + permits.available_permits()).min(10) as i32;
        let receive = sqs
            .receive_message()
            .queue_url(&config.queue_url)
            .max_number_of_messages(wanted)
            .wait_time_seconds(config.wait_time_secs as i32)
            .visibility_timeout(config.visibility_timeout_secs as i32)
            .send();
        let received = tokio::select! {
            received = receive => received,
            () = shutdown.cancelled() => break,
        };
        let messages = match received {
            Ok(out) => {
                receive_backoff.reset();
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                let failure = S3Failure::from_sdk(&e);
                let pause = receive_backoff.next_delay();
                tracing::warn!(queue_url = %config.queue_url, error = %failure, retry_in_ms = pause.as_millis() as u64, "ReceiveMessage failed; retrying.");
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = shutdown.cancelled() => break,
                }
            }
        };
        let mut first = Some(first);
        for message in messages {
            let permit = match first.take() {
                Some(permit) => permit,
                None => permits
                    .clone()
                    .try_acquire_owned()
                    .expect("no more messages were asked for than there were free slots"),
            };
            let (pipeline, sqs, config) = (pipeline.clone(), sqs.clone(), config.clone());
            tasks.spawn(async move {
                handle(&pipeline, &sqs, &config, message).await;
                drop(permit);
            });
        }
        while let Some(joined) = tasks.try_join_next() {
            report_panic(joined);
        }
    }
    let in_flight = tasks.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "Shutting down: draining jobs in flight.");
    }
    while let Some(joined) = tasks.join_next().await {
        report_panic(joined);
    }
    depth.abort();
    tracing::info!("SQS source stopped.");
}

/// How often the queue's backlog is sampled for `earshot_queue_depth{source="sqs"}`.
const DEPTH_EVERY: Duration = Duration::from_secs(30);

/// Samples the queue's visible messages (SQS's approximate count) into the queue depth gauge,
/// so a backlog that grows shows on the daemon's own `/metrics`.
async fn report_depth(
    pipeline: Arc<Pipeline>,
    sqs: Client,
    queue_url: String,
    shutdown: CancellationToken,
) {
    use aws_sdk_sqs::types::QueueAttributeName;
    loop {
        let asked = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await;
        match asked {
            Ok(out) => {
                let visible = out
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
                    .and_then(|n| n.parse::<usize>().ok());
                if let Some(visible) = visible {
                    pipeline.metrics.queue_depth("sqs", visible);
                }
            }
            Err(e) => {
                tracing::debug!(%queue_url, error = %S3Failure::from_sdk(&e), "Queue depth not read.");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(DEPTH_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// A job task that panicked is logged: its message was not deleted, so it comes back (and reaches
/// the queue's dead-letter queue if it keeps failing).
fn report_panic(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined {
        tracing::error!(error = %e, "A job task panicked; its message is left for redelivery.");
    }
}

async fn handle(pipeline: &Pipeline, sqs: &Client, config: &SqsConfig, message: Message) {
    let Some(receipt) = message.receipt_handle().map(str::to_owned) else {
        return;
    };
    let message_id = message.message_id().unwrap_or_default().to_owned();
    let body = message.body().unwrap_or_default();
    let parsed = match parse_event(body.as_bytes()) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::error!(%message_id, error = %e, body, "Malformed event; left for the queue's dead-letter queue.");
            return;
        }
    };
    for ignored in &parsed.ignored {
        tracing::info!(%message_id, reason = %ignored.reason, "Event acknowledged and ignored.");
    }

    // Keep the message hidden while its jobs run, however long they take; the guard stops the
    // extender however this ends (a panic included).
    let keeper = extend_visibility(sqs.clone(), config.clone(), receipt.clone()).drop_guard();
    let mut ack = Ack::Done;
    let mut not_before = None;
    for job in &parsed.jobs {
        let handled = pipeline.handle(job, "sqs").await;
        if let Err(e) = &handled.result {
            tracing::warn!(%message_id, bucket = %job.bucket, key = %job.key, error = %e, ack = ?handled.ack, "Job failed.");
        }
        if handled.ack == Ack::Retry {
            ack = Ack::Retry;
            not_before = not_before.max(handled.retry_not_before());
        }
    }
    drop(keeper);
    if ack == Ack::Retry {
        // A job another daemon holds is worth retrying only once that daemon's lease would run
        // out: the message stays hidden till then rather than spending a redrive every visibility
        // timeout (a daemon killed holding it would otherwise send it to the dead-letter queue).
        if let Some(at) = not_before {
            let secs = at
                .saturating_sub(pipeline.clock.now_secs())
                .saturating_add(1)
                .min(MAX_VISIBILITY_SECS);
            if let Err(e) = sqs
                .change_message_visibility()
                .queue_url(&config.queue_url)
                .receipt_handle(&receipt)
                .visibility_timeout(secs as i32)
                .send()
                .await
            {
                tracing::warn!(%message_id, error = %S3Failure::from_sdk(&e), "Could not hide the message until the job's lease runs out; it comes back sooner.");
            }
            tracing::info!(%message_id, secs, "Message left for redelivery when the other daemon's lease on its job runs out.");
            return;
        }
        tracing::info!(%message_id, "Message left for redelivery.");
        return;
    }
    if let Err(e) = sqs
        .delete_message()
        .queue_url(&config.queue_url)
        .receipt_handle(&receipt)
        .send()
        .await
    {
        // The jobs are recorded as finished, so a redelivery is a harmless duplicate.
        tracing::warn!(%message_id, error = %S3Failure::from_sdk(&e), "DeleteMessage failed; the message will come back as a duplicate.");
    }
}

/// SQS's longest visibility timeout: 12 hours.
const MAX_VISIBILITY_SECS: u64 = 12 * 60 * 60;

/// Extends the message's visibility every half timeout until cancelled.
fn extend_visibility(sqs: Client, config: SqsConfig, receipt: String) -> CancellationToken {
    let token = CancellationToken::new();
    let stop = token.clone();
    let period = Duration::from_secs(u64::from(config.visibility_timeout_secs / 2).max(1));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = stop.cancelled() => return,
            }
            let result = sqs
                .change_message_visibility()
                .queue_url(&config.queue_url)
                .receipt_handle(&receipt)
                .visibility_timeout(config.visibility_timeout_secs as i32)
                .send()
                .await;
            match result {
                Ok(_) => tracing::debug!("Message visibility extended."),
                Err(e) => {
                    tracing::warn!(error = %S3Failure::from_sdk(&e), "Could not extend message visibility.")
                }
            }
        }
    });
    token
}
