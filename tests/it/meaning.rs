//! Phrases by meaning (src/engines/speech/meaning/): the Rust embedder computes what the model's
//! reference computes (scripts/meaning-model/fetch.sh embeds tests/data/meaning/ with Hugging
//! Face's tokenizer and numpy), and the speech engine hears a dictionary's example sentence said
//! in other words, while term-free speech and music raise nothing.

use std::path::PathBuf;

use crate::common::*;
use crate::speech::{
    add_terms, moderate, pinned_model, say, segments_of, speech_config, term_free_uploads,
};
use earshot::config::{EngineConfig, MeaningConfig};
use earshot::engines::speech::meaning::{Embedder, similarity};

/// The model's weights and tokenizer, each with its pinned SHA-256.
pub fn meaning_model() -> ((PathBuf, String), (PathBuf, String)) {
    let script = "scripts/meaning-model/fetch.sh";
    (
        pinned_model(
            "all-minilm-l6-v2/model.safetensors",
            "scripts/meaning-model/model.safetensors.sha256",
            script,
        ),
        pinned_model(
            "all-minilm-l6-v2/tokenizer.json",
            "scripts/meaning-model/tokenizer.json.sha256",
            script,
        ),
    )
}

#[test]
fn the_rust_embedder_matches_the_reference() {
    let ((model, _), (tokenizer, _)) = meaning_model();
    let embedder = Embedder::load(&model, &tokenizer).expect("loads");
    let expected = model.with_file_name("../meaning-expected.tsv");
    let expected = std::fs::read_to_string(&expected).expect("the reference embeddings");
    let (mut compared, mut worst) = (0, 0.0f32);
    for line in expected.lines() {
        let mut fields = line.split('\t');
        let (sentence, ids, vector) = (
            fields.next().expect("sentence"),
            fields.next().expect("ids"),
            fields.next().expect("vector"),
        );
        let ids: Vec<u32> = ids.split(' ').map(|i| i.parse().expect("an id")).collect();
        let vector: Vec<f32> = vector
            .split(' ')
            .map(|v| v.parse().expect("a float"))
            .collect();
        assert_eq!(embedder.tokens(sentence), ids, "{sentence:?}");
        let rust = embedder.embed(sentence);
        let difference = rust
            .iter()
            .zip(&vector)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(difference < 1e-4, "{sentence:?}: off by {difference}");
        worst = worst.max(difference);
        compared += 1;
    }
    assert!(compared >= 200, "only {compared} sentences compared");
    eprintln!("{compared} sentences, largest difference {worst:e}");
    // And what it is for: a paraphrase is near, a sentence sharing the words is not.
    let example = embedder.embed("send your bank details to claim your prize");
    let same = embedder.embed("to receive the prize money just tell us your card details");
    let other = embedder.embed("I updated my bank details with my employer last week");
    assert!(similarity(&example, &same) > 0.55);
    assert!(similarity(&example, &other) < 0.45);
}

/// A config for local files whose speech engine matches examples by meaning (or not).
fn setup(enabled: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = speech_config(dir.path(), "unused", "http://127.0.0.1:9/hook");
    let Some(EngineConfig::Speech(speech)) = config.engines.get_mut("speech") else {
        unreachable!("speech_config has a speech engine")
    };
    let ((model, model_sha256), (tokenizer, tokenizer_sha256)) = meaning_model();
    speech.meaning = Some(MeaningConfig {
        enabled,
        model: model.display().to_string(),
        model_sha256,
        tokenizer: tokenizer.display().to_string(),
        tokenizer_sha256,
        threshold: 0.5,
    });
    let path = dir.path().join("earshot.toml");
    std::fs::write(&path, config_toml(&config)).expect("write");
    (dir, path)
}

fn score(verdict: &serde_json::Value, scene: &str) -> u64 {
    verdict["data"][format!("{scene}_info")]["score"]
        .as_u64()
        .unwrap_or_else(|| panic!("no {scene} score: {verdict}"))
}

#[test]
fn paraphrases_of_examples_are_heard_and_term_free_speech_is_not() {
    let (dir, config) = setup(true);
    // The case: the dictionary lists "lottery", the caller says something else.
    add_terms(
        &config,
        &[
            "scams",
            "--scene",
            "ads",
            "--suggestion",
            "review",
            "lottery",
        ],
    );
    add_terms(
        &config,
        &[
            "scams",
            "--examples",
            "send your bank details to claim your prize",
            "earn thousands of dollars a week working from home",
        ],
    );
    add_terms(
        &config,
        &[
            "threats",
            "--scene",
            "abuse",
            "--examples",
            "I know where you live and I will hurt you",
        ],
    );
    for (scene, voice, text, example) in [
        (
            "ads",
            "espeak-ng",
            "To receive the prize money, just tell us your card details.",
            "send your bank details to claim your prize",
        ),
        (
            "ads",
            "flite",
            "Stay at home and get paid thousands every single week.",
            "earn thousands of dollars a week working from home",
        ),
        (
            "abuse",
            "espeak-ng",
            "I found out where your house is, and you will get hurt.",
            "I know where you live and I will hurt you",
        ),
    ] {
        let file = say(dir.path(), scene, voice, text);
        let (lines, verdict) = moderate(&config, &file);
        let segments = segments_of(&verdict, scene);
        let hit = segments
            .iter()
            .find(|s| s["example"] == example)
            .unwrap_or_else(|| panic!("{text:?} heard as {lines:?}: {verdict}"));
        let expected = if scene == "ads" { 75 } else { 95 };
        assert_eq!(score(&verdict, scene), expected, "{verdict}");
        assert!(
            hit["similarity"]
                .as_f64()
                .is_some_and(|s| (0.5..=1.0).contains(&s)),
            "{hit}"
        );
        assert!(
            hit["text"].as_str().is_some_and(|t| t.len() > 10),
            "the sentence: {hit}"
        );
    }
    // A term-free reading (LibriVox) and music raise nothing.
    for (file, speech) in term_free_uploads(dir.path()) {
        let (lines, verdict) = moderate(&config, &file);
        assert!(
            !speech || !lines.is_empty(),
            "the reading was heard: {lines:?}"
        );
        for scene in ["ads", "abuse"] {
            assert_eq!(
                score(&verdict, scene),
                0,
                "{}: {lines:?}: {verdict}",
                file.display()
            );
        }
    }
}

#[test]
fn examples_can_be_switched_off_and_a_wrong_model_is_refused() {
    let (dir, config) = setup(false);
    add_terms(
        &config,
        &[
            "scams",
            "--scene",
            "ads",
            "--examples",
            "send your bank details to claim your prize",
        ],
    );
    let file = say(
        dir.path(),
        "pitch",
        "espeak-ng",
        "To receive the prize money, just tell us your card details.",
    );
    let (lines, verdict) = moderate(&config, &file);
    assert!(
        lines.iter().any(|l| l.contains("prize")),
        "heard: {lines:?}"
    );
    assert_eq!(score(&verdict, "ads"), 0, "{verdict}");

    let text = std::fs::read_to_string(&config).expect("config");
    let ((model, _), (_, tokenizer_sha)) = meaning_model();
    for (changed, key) in [
        (
            text.replace(&tokenizer_sha, &"0".repeat(64)),
            "engines.speech.meaning.tokenizer_sha256",
        ),
        (
            text.replace(
                &model.display().to_string(),
                "/nonexistent/model.safetensors",
            ),
            "engines.speech.meaning.model",
        ),
    ] {
        std::fs::write(
            &config,
            changed.replace("enabled = false", "enabled = true"),
        )
        .expect("write");
        let out = earshot(&config, &["check-config"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(key), "names {key}: {stderr}");
    }
}
