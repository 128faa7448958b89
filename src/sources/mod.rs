//! Sources: where events come from. Each is thin: receive → [`crate::job::parse_event`] → jobs →
//! [`crate::pipeline::Pipeline::handle`] → acknowledge or leave for redelivery, as its
//! [`crate::pipeline::Ack`] says (the one place that decides what a failure means).
//!
//! - [`sqs`]: an SQS queue fed by S3 notifications (directly, via SNS, or via EventBridge);
//! - [`webhook`]: an HTTP listener for MinIO bucket notifications and SNS HTTP(S) subscriptions
//!   ([`sns`] verifies the latter);
//! - [`lambda`]: the invocations of the `earshot-lambda` binary (S3, SQS batch, SNS, EventBridge).

pub mod lambda;
pub mod sns;
pub mod sqs;
pub mod webhook;
