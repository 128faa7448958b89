//! Sources: where events come from. Each is thin: receive → [`crate::job::parse_event`] → jobs →
//! [`crate::pipeline::Pipeline::process`] → acknowledge or leave for redelivery.
//!
//! - [`sqs`]: an SQS queue fed by S3 notifications (directly, via SNS, or via EventBridge).

pub mod sqs;
