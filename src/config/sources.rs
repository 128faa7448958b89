//! `[sources]`: the SQS queue, the webhook (MinIO and SNS) and the admin listener.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    pub sqs: Option<SqsConfig>,
    pub webhook: Option<WebhookConfig>,
}

/// The HTTP source of `earshot serve`: MinIO bucket notifications and SNS HTTP(S) subscriptions.
/// Its listener also answers `/healthz`, `/readyz` and `/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `host:port` to listen on.
    pub listen: String,
    /// Jobs run at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Jobs accepted and waiting for a worker; a request that does not fit is answered 503.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// The `Retry-After` of a 503.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u32,
    /// Runs of a job that fails for a passing reason before it is parked in the bucket's
    /// dead-job area (the sender was answered 2xx and will not send it again).
    #[serde(default = "default_job_attempts")]
    pub max_attempts: u32,
    /// The first pause between runs; it doubles (with jitter) up to 60 s.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// `POST /minio`: MinIO's webhook notification target.
    pub minio: Option<MinioWebhookConfig>,
    /// `POST /sns`: an SNS HTTP(S) subscription.
    pub sns: Option<SnsWebhookConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinioWebhookConfig {
    /// The `auth_token` of MinIO's webhook target; MinIO sends it as `Authorization: Bearer …`.
    pub auth_token: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsWebhookConfig {
    /// Topics whose messages are accepted; empty accepts any topic (signatures are checked anyway).
    #[serde(default)]
    pub topic_arns: Vec<String>,
    /// Origins (`scheme://host:port`) trusted to serve signing certificates besides AWS's
    /// `https://sns.<region>.amazonaws.com[.cn]`, e.g. `http://127.0.0.1:4566` for LocalStack.
    #[serde(default)]
    pub trusted_cert_origins: Vec<String>,
}

fn default_job_attempts() -> u32 {
    8
}

fn default_retry_initial_ms() -> u64 {
    1000
}

fn default_queue_capacity() -> usize {
    256
}

fn default_retry_after() -> u32 {
    5
}

/// `/healthz`, `/readyz` and `/metrics` on a listener of their own (for the SQS source, which has
/// no listener; the webhook source serves them on its own listener as well).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `host:port`; omit for no admin listener.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqsConfig {
    pub queue_url: String,
    /// Omit for AWS.
    pub endpoint_url: Option<String>,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    #[serde(default = "default_wait")]
    pub wait_time_secs: u32,
    /// How long a received message stays hidden; extended while its job runs.
    #[serde(default = "default_visibility")]
    pub visibility_timeout_secs: u32,
}

fn default_concurrency() -> usize {
    8
}

fn default_wait() -> u32 {
    20
}

fn default_visibility() -> u32 {
    60
}
