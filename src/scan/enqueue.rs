//! `earshot scan --enqueue`: jobs put on the `[sources.sqs]` queue in batches, waiting while its
//! backlog is at the ceiling.

use std::time::Duration;

use super::{Candidate, Enqueue, ScanError};
use crate::job::{Job, job_message};

/// Sends up to 10 jobs in one `SendMessageBatch`, first waiting while the queue's backlog is at
/// its ceiling; returns the candidates sent.
pub(super) async fn send_batch(
    enqueue: &Enqueue,
    batch: &mut Vec<(Candidate, Job)>,
) -> Result<Vec<Candidate>, ScanError> {
    let failed = |message: String| ScanError::Enqueue {
        queue_url: enqueue.queue_url.clone(),
        message,
    };
    let mut waited = false;
    loop {
        let attributes = enqueue
            .sqs
            .get_queue_attributes()
            .queue_url(&enqueue.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| failed(format!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e))))?;
        let backlog: u64 = attributes
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if backlog + batch.len() as u64 <= enqueue.max_backlog {
            break;
        }
        if !waited {
            tracing::info!(
                backlog,
                max_backlog = enqueue.max_backlog,
                "Queue backlog at its ceiling; waiting for the daemons."
            );
            waited = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let entries: Vec<_> = batch
        .iter()
        .enumerate()
        .map(|(i, (_, job))| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(job_message(job))
                .build()
                .expect("id and body are set")
        })
        .collect();
    let sent = enqueue
        .sqs
        .send_message_batch()
        .queue_url(&enqueue.queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| failed(format!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e))))?;
    if let Some(first) = sent.failed().first() {
        return Err(failed(format!(
            "{} of {} messages refused, e.g. {}",
            sent.failed().len(),
            batch.len(),
            first.message().unwrap_or(first.code())
        )));
    }
    Ok(batch.drain(..).map(|(candidate, _)| candidate).collect())
}
