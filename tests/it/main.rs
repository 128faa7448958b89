//! earshot's integration tests, one binary: the helpers in [`common`] are compiled once and
//! shared, and the suites below run in parallel against the real LocalStack (and moto server)
//! that `scripts/test.sh` starts.

mod common;

mod abuse;
mod audio;
mod cli;
mod cloud_engines;
mod console;
mod console_scale;
mod console_speech;
mod events;
mod fingerprint;
mod fingerprint_whole;
mod infra;
mod lambda;
mod layers;
mod leases;
mod local_engine;
mod mandarin;
mod meaning;
mod monitoring;
mod moto_acl;
mod outage;
mod package;
mod pipeline;
mod restore;
mod retro;
mod review;
mod review_race;
mod scan;
mod serve;
mod servers;
mod speech;
mod webhook;
