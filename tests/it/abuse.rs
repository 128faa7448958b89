//! The abuse classifier (src/engines/speech/abuse.rs) computes what the Python package it is
//! converted from computes: scripts/abuse-model/fetch.sh scores tests/data/abuse/sentences.tsv
//! with alt-profanity-check itself, and the Rust classifier must give the same probabilities to
//! the third decimal. And the speech engine hears abuse in words no dictionary lists.

use std::path::PathBuf;

use crate::common::*;
use crate::speech::{moderate, pinned_model, say, segments_of, speech_config, term_free_uploads};
use earshot::config::{AbuseClassifierConfig, EngineConfig};
use earshot::engines::speech::abuse::AbuseModel;
use earshot::model::Scene;

/// The converted model and its pinned SHA-256.
pub fn abuse_model() -> (PathBuf, String) {
    pinned_model(
        "abuse-alt-profanity-check-1.9.1.tsv",
        "scripts/abuse-model/abuse-alt-profanity-check-1.9.1.sha256",
        "scripts/abuse-model/fetch.sh",
    )
}

#[test]
fn the_rust_classifier_scores_as_the_python_package_does() {
    let (path, _) = abuse_model();
    let model = AbuseModel::load(&path).expect("loads");
    assert!(model.words() > 10_000, "{} words", model.words());
    let scores = path.with_file_name("abuse-expected-scores.tsv");
    let expected = std::fs::read_to_string(&scores).expect("the package's scores");
    let mut compared = 0;
    let mut worst = 0.0f64;
    for line in expected.lines() {
        let (python, sentence) = line.split_once('\t').expect("score<TAB>sentence");
        let python: f64 = python.parse().expect("a number");
        let rust = model.probability(sentence);
        assert!(
            (rust - python).abs() < 5e-4,
            "{sentence:?}: Rust {rust}, the package {python}"
        );
        worst = worst.max((rust - python).abs());
        compared += 1;
    }
    assert!(compared >= 200, "only {compared} sentences compared");
    eprintln!("{compared} sentences, largest difference {worst:e}");
}

/// A config for local files whose speech engine judges sentences with the classifier (or has it
/// switched off).
fn setup(enabled: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = speech_config(dir.path(), "unused", "http://127.0.0.1:9/hook");
    let Some(EngineConfig::Speech(speech)) = config.engines.get_mut("speech") else {
        unreachable!("speech_config has a speech engine")
    };
    let (model, model_sha256) = abuse_model();
    speech.abuse = Some(AbuseClassifierConfig {
        enabled,
        model: model.display().to_string(),
        model_sha256,
        scene: Scene::Abuse,
        suspicious_from: 0.5,
        sensitive_from: 0.8,
    });
    let path = dir.path().join("earshot.toml");
    std::fs::write(&path, config_toml(&config)).expect("write");
    (dir, path)
}

fn abuse_score(verdict: &serde_json::Value) -> u64 {
    verdict["data"]["abuse_info"]["score"]
        .as_u64()
        .unwrap_or_else(|| panic!("no abuse score: {verdict}"))
}

#[test]
fn abuse_in_words_no_dictionary_lists_is_heard_and_clean_speech_is_not() {
    let (dir, config) = setup(true);
    // No dictionary at all: only the classifier can hear these.
    for (i, text) in [
        "That was pathetic, you spineless worm.",
        "Shut up you moron, nobody likes you.",
        "What a bloody fool.",
    ]
    .into_iter()
    .enumerate()
    {
        let voice = if i == 0 { "espeak-ng" } else { "flite" };
        let file = say(dir.path(), &format!("abusive{i}"), voice, text);
        let (lines, verdict) = moderate(&config, &file);
        assert!(
            abuse_score(&verdict) > 60,
            "{text:?} heard as {lines:?}: {verdict}"
        );
        let segments = segments_of(&verdict, "abuse");
        let first = segments.first().unwrap_or_else(|| panic!("{verdict}"));
        assert_eq!(first["label"], "abuse classifier", "{verdict}");
        assert!(
            first["text"].as_str().is_some_and(|t| t.len() > 10),
            "the segment carries the sentence: {verdict}"
        );
    }
    // A term-free reading (LibriVox) and music raise nothing.
    for (file, _) in term_free_uploads(dir.path()) {
        let (lines, verdict) = moderate(&config, &file);
        assert!(
            abuse_score(&verdict) <= 60,
            "{}: {lines:?}: {verdict}",
            file.display()
        );
        assert!(segments_of(&verdict, "abuse").is_empty(), "{verdict}");
    }
}

#[test]
fn the_classifier_can_be_switched_off_and_a_wrong_model_is_refused() {
    let (dir, config) = setup(false);
    let file = say(
        dir.path(),
        "abusive",
        "espeak-ng",
        "Shut up you moron, nobody likes you.",
    );
    let (_, verdict) = moderate(&config, &file);
    assert_eq!(abuse_score(&verdict), 0, "{verdict}");

    let text = std::fs::read_to_string(&config).expect("config");
    let (_, sha) = abuse_model();
    std::fs::write(
        &config,
        text.replace("enabled = false", "enabled = true")
            .replace(&sha, &"0".repeat(64)),
    )
    .expect("write");
    let out = earshot(&config, &["check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("engines.speech.abuse.model_sha256"),
        "{stderr}"
    );
}
