//! Retro-hunt: when references are added to the library, search the fingerprints kept of earlier
//! uploads (`retro.keep`, see [`crate::state::prints`]) for them, without downloading or decoding
//! any audio, and judge every object that now matches under its rule: blocked and called back like
//! an upload, with `"source": "retro"`.
//!
//! Per rule, a hunt takes the references added since the last hunt (kept in
//! `prints/<rule>/hunt.json`; `--since` overrides it), packs loose prints, then reads every print
//! once. A print is first screened with a bitmap of the new references' landmark hashes (one bit
//! test per landmark); only prints with enough shared hashes are aligned, with the same index as
//! the local engine. An object with [`RETRO_MIN_HITS`] agreeing landmarks is judged again in full (fetched, decoded, every engine of its rule), so the new reference decides
//! nothing alone; one already blocked is left as it is.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::engines::Engine;
use crate::fingerprint::Index;
use crate::job::{Job, Origin};
use crate::layout;
use crate::model::ForbiddenStatus;
use crate::pipeline::{Ack, Pipeline};
use crate::rules::Rule;
use crate::state::{self, StateError, lease, prints};

/// A print whose landmarks agree with a new reference on one alignment this many times is judged
/// again. Prints keep one landmark in eight ([`prints::SAMPLE`]): a true 8 s excerpt agrees on
/// 80 or more of all its landmarks (so about 10 kept), a wrong reference on at most 27 (about 3).
pub const RETRO_MIN_HITS: u32 = 8;

/// Where a rule's hunts have got to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct HuntState {
    /// References added at or before this were searched for.
    searched_through: u64,
}

/// What one rule's hunt found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hunt {
    pub rule: String,
    pub bucket: String,
    /// The new references searched for.
    pub references: Vec<String>,
    /// Prints searched.
    pub searched: u64,
    /// Bytes of prints read.
    pub bytes: u64,
    /// Objects that matched a new reference: (key, agreeing kept landmarks).
    pub matched: Vec<(String, u32)>,
    /// Matched objects judged again, by outcome.
    pub judged: std::collections::BTreeMap<String, u64>,
    /// Matched objects blocked before: left as they are.
    pub already_blocked: u64,
    /// Matched objects that could not be judged now, with why.
    pub failed: Vec<(String, String)>,
    pub search_secs: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RetroError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Engine(#[from] crate::engines::EngineError),
}

/// What `earshot serve` runs after each library refresh for rules with `retro.auto`: a hunt when
/// the library gained references, under a lease in the bucket so that one daemon of several
/// hunts. Failures are logged; the next refresh tries again.
pub async fn hunt_automatically(pipeline: &Arc<Pipeline>) {
    let rules: Vec<Rule> = pipeline
        .rules()
        .all()
        .iter()
        .filter(|r| r.retro.auto)
        .cloned()
        .collect();
    for rule in rules {
        let prefix = layout::hunt_lease_prefix(&rule.id);
        let now = pipeline.clock.now_secs();
        let held = match lease::take(
            &pipeline.s3,
            &rule.bucket,
            &prefix,
            pipeline.holder(),
            now,
            LEASE_SECS,
        )
        .await
        {
            Ok(lease::Taken::Held(held)) => held,
            Ok(lease::Taken::Busy(holder)) => {
                tracing::debug!(rule = %rule.id, holder = %holder.holder, "Another process is hunting.");
                continue;
            }
            Err(e) => {
                tracing::warn!(rule = %rule.id, error = %e, "Could not take the retro-hunt lease.");
                continue;
            }
        };
        match hunt(pipeline, Some(&rule.id), None, false).await {
            Ok(hunts) => {
                for hunt in hunts {
                    tracing::info!(rule = %hunt.rule, references = hunt.references.len(), searched = hunt.searched, matched = hunt.matched.len(), judged = ?hunt.judged, "Retro-hunt done.");
                }
            }
            Err(e) => {
                tracing::error!(rule = %rule.id, error = %e, "Retro-hunt failed; the next refresh tries again.")
            }
        }
        if let Err(e) = held.release(&pipeline.s3, pipeline.clock.now_secs()).await {
            tracing::warn!(error = %e, "Could not release the retro-hunt lease; it expires by itself.");
        }
    }
}

/// A hunt's lease runs out after this (its holder died).
const LEASE_SECS: u64 = 900;

/// The references a rule's analysers hold that were added at or after `since`.
///
/// # Errors
/// An engine's references cannot be read.
async fn new_references(
    pipeline: &Pipeline,
    rule: &Rule,
    since: u64,
) -> Result<Vec<crate::engines::Reference>, RetroError> {
    let mut references = Vec::new();
    for name in &rule.engines {
        if let Some(Engine::Analyser(analyser)) = pipeline.engines().get(name) {
            references.extend(analyser.references_since(since).await?);
        }
    }
    Ok(references)
}

/// Hunts for every rule that keeps prints (`only_rule` to limit it to one); `since` overrides
/// where each rule's last hunt got to. With `dry_run`, finds matches and judges nothing.
///
/// # Errors
/// The prints could not be read.
pub async fn hunt(
    pipeline: &Arc<Pipeline>,
    only_rule: Option<&str>,
    since: Option<u64>,
    dry_run: bool,
) -> Result<Vec<Hunt>, RetroError> {
    let mut hunts = Vec::new();
    let rules: Vec<Rule> = pipeline
        .rules()
        .all()
        .iter()
        .filter(|r| r.retro.keep && only_rule.is_none_or(|id| r.id == id))
        .cloned()
        .collect();
    for rule in rules {
        let state_key = format!("{}hunt.json", layout::prints_prefix(&rule.id));
        let kept: Option<HuntState> =
            state::get_json(&pipeline.s3, &rule.bucket, &state_key).await?;
        let from = since.unwrap_or_else(|| kept.map_or(0, |k| k.searched_through + 1));
        let references = new_references(pipeline, &rule, from).await?;
        if references.is_empty() {
            continue;
        }
        let newest = references.iter().map(|r| r.added_at).max().unwrap_or(from);
        let hunt = hunt_rule(pipeline, &rule, &references, dry_run).await?;
        if !dry_run && hunt.failed.is_empty() {
            let done = HuntState {
                searched_through: newest,
            };
            state::put_json(&pipeline.s3, &rule.bucket, &state_key, &done).await?;
        }
        if !dry_run {
            let entry = state::blocks::AuditEntry {
                at: pipeline.clock.now_secs(),
                by: "earshot".to_owned(),
                action: "retro-hunt".to_owned(),
                bucket: rule.bucket.clone(),
                key: None,
                trace_id: None,
                reason: format!(
                    "rule {}: {} new reference(s), {} print(s) searched, {} matched",
                    rule.id,
                    hunt.references.len(),
                    hunt.searched,
                    hunt.matched.len()
                ),
                detail: serde_json::to_value(&hunt.judged).unwrap_or_default(),
            };
            state::blocks::append_audit(&pipeline.s3, &entry).await?;
        }
        hunts.push(hunt);
    }
    Ok(hunts)
}

async fn hunt_rule(
    pipeline: &Arc<Pipeline>,
    rule: &Rule,
    references: &[crate::engines::Reference],
    dry_run: bool,
) -> Result<Hunt, RetroError> {
    let started = Instant::now();
    let mut hunt = Hunt {
        rule: rule.id.clone(),
        bucket: rule.bucket.clone(),
        references: references.iter().map(|r| r.id.clone()).collect(),
        ..Hunt::default()
    };
    let index = Index::build(
        references
            .iter()
            .map(|r| {
                (
                    r.id.clone(),
                    crate::fingerprint::Fingerprint::clone(&r.fingerprint),
                )
            })
            .collect(),
    );
    let screen = Screen::new(references.iter().map(|r| r.fingerprint.as_ref()));
    if !dry_run {
        let packed = prints::compact(&pipeline.s3, &rule.bucket, &rule.id).await?;
        tracing::debug!(rule = %rule.id, packed, "Loose prints packed.");
    }
    let mut matched: Vec<(prints::Print, u32)> = Vec::new();
    hunt.bytes = prints::for_each(&pipeline.s3, &rule.bucket, &rule.id, |print| {
        hunt.searched += 1;
        if screen.shared(&print.fingerprint) < RETRO_MIN_HITS as usize {
            return;
        }
        let best = index
            .query(&print.fingerprint)
            .iter()
            .map(|m| m.hits)
            .max()
            .unwrap_or(0);
        tracing::debug!(key = %print.key, best, "Retro-hunt candidate.");
        if best >= RETRO_MIN_HITS {
            matched.push((print, best));
        }
    })
    .await?;
    hunt.search_secs = started.elapsed().as_secs_f64();
    tracing::info!(rule = %rule.id, searched = hunt.searched, matched = matched.len(), secs = hunt.search_secs, "Retro-hunt searched the kept prints.");
    for (print, score) in matched {
        hunt.matched.push((print.key.clone(), score));
        if dry_run {
            continue;
        }
        if let Some(record) =
            state::finished_job(&pipeline.s3, &rule.bucket, &print.trace_id).await?
            && record.body.data.forbidden_status != ForbiddenStatus::NotBlocked
        {
            hunt.already_blocked += 1;
            continue;
        }
        let job = Job {
            version_id: print.version_id.clone(),
            etag: Some(print.etag.clone()),
            rejudge: true,
            ..Job::new(rule.bucket.clone(), print.key.clone()).with_origin(Origin::Retro)
        };
        let handled = pipeline.handle(&job, "retro").await;
        match (handled.result, handled.ack) {
            (Ok(outcome), Ack::Done) => {
                *hunt.judged.entry(outcome.label().to_owned()).or_default() += 1;
            }
            (Ok(outcome), Ack::Retry) => hunt
                .failed
                .push((print.key, format!("not finished ({})", outcome.label()))),
            (Err(e), _) => hunt.failed.push((print.key, e.to_string())),
        }
    }
    Ok(hunt)
}

/// A bitmap of landmark hashes (21 bits: 256 KiB), to screen prints with one test per landmark.
struct Screen {
    bits: Vec<u64>,
}

impl Screen {
    fn new<'a>(fingerprints: impl Iterator<Item = &'a crate::fingerprint::Fingerprint>) -> Screen {
        let mut bits = vec![0u64; (1 << 21) / 64];
        for fingerprint in fingerprints {
            for landmark in &fingerprint.landmarks {
                let h = (landmark.hash & 0x1f_ffff) as usize;
                bits[h / 64] |= 1 << (h % 64);
            }
        }
        Screen { bits }
    }

    /// Landmarks of `fingerprint` whose hash a reference has.
    fn shared(&self, fingerprint: &crate::fingerprint::Fingerprint) -> usize {
        fingerprint
            .landmarks
            .iter()
            .filter(|l| {
                let h = (l.hash & 0x1f_ffff) as usize;
                self.bits[h / 64] & (1 << (h % 64)) != 0
            })
            .count()
    }
}
