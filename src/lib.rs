//! earshot: automatic moderation of audio uploaded to S3-compatible object storage.
//!
//! The flow of one upload (DESIGN §1), one module per stage:
//!
//! 1. [`sources`] receive S3/SQS/SNS/MinIO/EventBridge events, and [`job`] turns them into jobs;
//! 2. [`rules`] decide whether a key is in scope, and with which scenes, engines, block and callback;
//! 3. [`fetch`] HEADs the object (size cap) and streams it to a spool file, pinned to its ETag;
//! 4. [`audio`] probes and decodes it to mono PCM (duration cap), [`fingerprint`] fingerprints it;
//! 5. [`engines`] score it per scene (the offline `local` engine by default);
//! 6. [`decision`] turns scores into `result`, `hit_flag` and whether to block;
//! 7. [`block`] makes the object private or moves it to `audit_freeze_backup/increment_audit/`;
//! 8. [`callback`] POSTs the COS-format, signed result, retrying; what fails is dead-lettered.
//!
//! [`pipeline`] runs these stages for one job (and, in [`pipeline::waiting`], jobs handed to a
//! provider that answers later); [`state`] keeps what earshot remembers in the bucket itself.
//!
//! Layers, bottom first; a module imports only from its own layer and those listed before it
//! (`tests/it/layers.rs` fails on any other import, and on an import cycle):
//!
//! | layer | modules |
//! |---|---|
//! | leaves | [`model`] (scenes, verdicts, COS enums), [`signing`], [`clock`], [`layout`] (every `audit_freeze_backup/…` key), [`scope`] (key prefixes with wildcards), [`backoff`], [`metrics`], [`token`], [`faults`] (points where a test crashes the process) |
//! | config | [`config`] |
//! | storage and audio | [`storage`], [`audio`], [`fingerprint`], [`job`], [`rules`], [`decision`] |
//! | stages | [`engines`], [`fetch`], [`block`], [`callback`], [`state`] |
//! | flow | [`pipeline`] |
//! | edges | [`sources`], [`scan`] (existing objects, resumable), [`retro`] (kept fingerprints searched for new references), [`admin`] (`/healthz`, `/readyz`, `/metrics`, provider results over HTTP), [`console`] (the review console) |
//! | commands | [`commands`] (what `earshot` runs: serve, moderate, library, replay, scan, retro, restore, review, console) |

#![deny(unsafe_code)]

pub mod admin;
pub mod audio;
pub mod backoff;
pub mod block;
pub mod callback;
pub mod clock;
pub mod commands;
pub mod config;
pub mod console;
pub mod decision;
pub mod engines;
pub mod faults;
pub mod fetch;
pub mod fingerprint;
pub mod job;
pub mod layout;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod retro;
pub mod rules;
pub mod scan;
pub mod scope;
pub mod signing;
pub mod sources;
pub mod state;
pub mod storage;
pub mod token;
