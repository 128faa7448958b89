//! What the speech benches share: running a tool, listing files, decoding and gating a file into
//! the clip the speech engine judges, precision and recall, and peak RSS.

#![allow(dead_code)] // each bench uses what it needs

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use earshot::audio::DecodeLimits;
use earshot::config::{EngineConfig, S3Config, SpeechEngineConfig};
use earshot::engines::Clip;
use earshot::engines::speech::SpeechEngine;
use earshot::engines::speech::dictionary::{Dictionary, MatchMode, Suggestion, Term};
use earshot::engines::speech::gate::{Collector, Speech};
use earshot::model::Scene;

/// Term-free music: Debian game soundtracks (none of the held-out packages).
pub const TERM_FREE_MUSIC: &[&str] = &[
    "/usr/share/games/etr/music",
    "/usr/share/games/frozen-bubble/snd",
    "/usr/share/games/warzone2100/music/albums/aftermath_soundtrack",
];
/// Term-free speech: the LibriVox excerpts of pocketsphinx-testdata.
pub const LIBRIVOX: &str = "/usr/share/pocketsphinx/test/data/librivox";

/// The speech benches' keyword set: 40 terms, each planted in its own English sentence.
pub const TERMS: [&str; 40] = [
    "car insurance",
    "free money",
    "lottery ticket",
    "casino bonus",
    "weight loss pills",
    "cheap loans",
    "crypto investment",
    "phone number",
    "credit card",
    "bank account",
    "online pharmacy",
    "sports betting",
    "dating site",
    "gift card",
    "wire transfer",
    "password",
    "discount code",
    "miracle cure",
    "work from home",
    "limited offer",
    "private message",
    "secret recipe",
    "luxury watches",
    "diet plan",
    "energy drink",
    "mortgage rates",
    "payday loan",
    "bitcoin wallet",
    "hot singles",
    "prize draw",
    "cash reward",
    "instant approval",
    "debt relief",
    "cheap flights",
    "hair growth",
    "poker tournament",
    "fake passport",
    "stolen goods",
    "adult videos",
    "gun sale",
];

/// Each of [`TERMS`] in a sentence of its own, in four shapes of sentence.
pub fn planted() -> Vec<String> {
    TERMS
        .iter()
        .enumerate()
        .map(|(i, t)| match i % 4 {
            0 => format!("I think we should talk about {t} later today."),
            1 => format!("She told me that {t} was the reason."),
            2 => format!("Have you ever heard about {t} from your neighbours?"),
            _ => format!("Yesterday the man on the radio mentioned {t} twice."),
        })
        .collect()
}

/// [`TERMS`] as one `block` dictionary of exact terms for the ads scene.
pub fn terms_dictionary(name: &str) -> Dictionary {
    Dictionary {
        name: name.to_owned(),
        scene: Scene::Ads,
        label: None,
        suggestion: Suggestion::Block,
        mode: MatchMode::Exact,
        terms: TERMS
            .iter()
            .map(|t| Term::words((*t).to_owned(), None))
            .collect(),
    }
}

/// A speech engine on `model` (checked against the pinned hash in `sha_file`) and the
/// dictionaries in `dictionaries`, with `more` added to its config table (TOML); and its config.
pub async fn speech_engine(
    model: &Path,
    sha_file: &Path,
    dictionaries: &Path,
    more: &str,
) -> (SpeechEngineConfig, SpeechEngine) {
    let sha = std::fs::read_to_string(sha_file).expect("the pinned hash");
    let config = format!(
        "type = \"speech\"\nmodel = \"{}\"\nmodel_sha256 = \"{}\"\ndictionaries = \"{}\"\n{more}",
        model.display(),
        sha.trim(),
        dictionaries.display()
    );
    let EngineConfig::Speech(config) = toml::from_str(&config).expect("engine config") else {
        unreachable!("a speech engine's table")
    };
    let s3 = earshot::storage::s3_client(&S3Config::default()).await;
    let engine = SpeechEngine::load("speech", &config, &s3)
        .await
        .expect("loads");
    (config, engine)
}

pub fn run(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(status.success(), "{command:?}");
}

/// Decodes and gates a file: the clip the engine judges, and the seconds that took.
pub fn clip(path: &Path) -> (Clip, f64) {
    let started = Instant::now();
    let mut collector = Collector::new(3600);
    let info = earshot::audio::decode_file(
        path,
        None,
        DecodeLimits {
            max_duration_secs: 3600,
        },
        &mut |samples, rate| collector.push(samples, rate),
    )
    .expect("decodes");
    let speech: Speech = collector.finish();
    let took = started.elapsed().as_secs_f64();
    let mut sha256 = [0u8; 32];
    for (i, b) in path.to_string_lossy().bytes().enumerate() {
        sha256[i % 32] ^= b.rotate_left(i as u32 % 8);
    }
    let clip = Clip {
        sha256,
        size: 0,
        audio: info,
        fingerprint: Default::default(),
        speech: Some(Arc::new(speech)),
    };
    (clip, took)
}

pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The files of `dir` with one of `suffixes`, sorted.
pub fn files_in(dir: &str, suffixes: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| {
        p.extension()
            .is_some_and(|e| suffixes.iter().any(|s| e == *s))
    });
    out.sort();
    out
}

/// Precision and recall of `caught` against `labels` (true: positive).
pub fn precision_recall(labels: &[bool], caught: &[bool]) -> String {
    let tp = labels
        .iter()
        .zip(caught)
        .filter(|(l, c)| **l && **c)
        .count();
    let fp = labels
        .iter()
        .zip(caught)
        .filter(|(l, c)| !**l && **c)
        .count();
    let positives = labels.iter().filter(|l| **l).count();
    format!(
        "precision {:.3} ({tp} of {}), recall {:.3} ({tp} of {positives})",
        tp as f64 / (tp + fp).max(1) as f64,
        tp + fp,
        tp as f64 / positives.max(1) as f64
    )
}
