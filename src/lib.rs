//! earshot: automatic moderation of audio uploaded to S3-compatible object storage.
//!
//! The flow of one upload (DESIGN §1), one module per stage:
//!
//! 1. [`sources`] receive S3/SQS/SNS/MinIO/EventBridge events, and [`job`] turns them into jobs;
//! 2. [`rules`] decide whether a key is in scope, and with which scenes, engine, block and callback;
//! 3. [`fetch`] HEADs the object (size cap) and streams it to a spool file, pinned to its ETag;
//! 4. [`audio`] probes and decodes it to mono PCM (duration cap enforced while decoding);
//! 5. [`engines`] score it per scene (the offline `local` engine by default);
//! 6. [`decision`] turns scores into `result`, `hit_flag` and whether to block;
//! 7. [`block`] makes the object private or moves it to `audit_freeze_backup/increment_audit/`;
//! 8. [`callback`] POSTs the COS-format, signed result, retrying, and dead-letters what fails.
//!
//! [`pipeline`] runs these stages for one job; [`state`] keeps per-job markers so a duplicate event
//! does nothing twice; [`metrics`] counts what happened for `/metrics` ([`admin`] serves it with
//! `/healthz` and `/readyz`); [`config`] loads and validates everything above.

#![forbid(unsafe_code)]

pub mod admin;
pub mod audio;
pub mod block;
pub mod callback;
pub mod config;
pub mod decision;
pub mod engines;
pub mod fetch;
pub mod fingerprint;
pub mod job;
pub mod metrics;
pub mod pending;
pub mod pipeline;
pub mod rules;
pub mod sources;
pub mod state;
pub mod storage;
pub mod token;
