//! SQS queues on LocalStack for the tests.

use super::{LOCALSTACK, s3_config, unique};

/// A fresh SQS queue on LocalStack; with `notify_from`, that bucket's ObjectCreated events feed it.
pub async fn fresh_queue(
    s3: &aws_sdk_s3::Client,
    notify_from: Option<&str>,
) -> (aws_sdk_sqs::Client, String) {
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
    let sqs = earshot::storage::sqs_client(&s3_config(LOCALSTACK), Some(LOCALSTACK)).await;
    let url = sqs
        .create_queue()
        .queue_name(unique("q"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    if let Some(bucket) = notify_from {
        let queue = QueueConfiguration::builder()
            .queue_arn(queue_arn(&sqs, &url).await)
            .events(Event::from("s3:ObjectCreated:*"))
            .build()
            .expect("queue configuration");
        s3.put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(queue)
                    .build(),
            )
            .send()
            .await
            .expect("bucket notification");
    }
    (sqs, url)
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    use aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes()
        .and_then(|a| a.get(&QueueArn))
        .expect("queue ARN")
        .clone()
}
