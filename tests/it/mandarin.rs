//! Mandarin: the multilingual speech model (Whisper base, scripts/speech-model/fetch-base.sh)
//! hears a spoken Mandarin message with `language = "zh"`, and with `"auto"` tells it from an
//! English one; fuzzy dictionaries find the keywords in both. espeak-ng's `cmn-latn-pinyin` voice
//! speaks (its `cmn` voice reads many characters as English words, which Whisper then hears as
//! English). Recall and error rates over 40 sentences are in bench/README.md ("Mandarin, and
//! which model").

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::speech::{add_terms, moderate, pinned_model, segments_of, speech_config};
use earshot::config::EngineConfig;

/// Whisper base, multilingual, and its SHA-256.
fn base_model() -> (PathBuf, String) {
    pinned_model(
        "ggml-base-q8_0.bin",
        "scripts/speech-model/ggml-base-q8_0.sha256",
        "scripts/speech-model/fetch-base.sh",
    )
}

/// A config for local files whose speech engine runs Whisper base in `language`, with Mandarin
/// and English keywords.
fn setup(language: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = speech_config(dir.path(), "unused", "http://127.0.0.1:9/hook");
    let Some(EngineConfig::Speech(speech)) = config.engines.get_mut("speech") else {
        unreachable!("speech_config has a speech engine")
    };
    let (model, sha) = base_model();
    speech.model = model.display().to_string();
    speech.model_sha256 = sha;
    speech.language = language.to_owned();
    let path = dir.path().join("earshot.toml");
    std::fs::write(&path, config_toml(&config)).expect("write");
    add_terms(
        &path,
        &[
            "zh_ads",
            "--scene",
            "ads",
            "--match",
            "fuzzy",
            "加微信",
            "car insurance",
        ],
    );
    add_terms(
        &path,
        &[
            "zh_illegal",
            "--scene",
            "illegal",
            "--match",
            "fuzzy",
            "赌博",
        ],
    );
    (dir, path)
}

fn say_mandarin(dir: &Path, name: &str, text: &str) -> PathBuf {
    let out = dir.join(format!("{name}.wav"));
    run(Command::new("espeak-ng")
        .args(["-v", "cmn-latn-pinyin", "-w"])
        .arg(&out)
        .arg(text));
    out
}

fn terms(verdict: &serde_json::Value, scene: &str) -> Vec<String> {
    segments_of(verdict, scene)
        .iter()
        .filter_map(|s| s["term"].as_str().map(str::to_owned))
        .collect()
}

fn cjk(lines: &[String]) -> usize {
    lines
        .iter()
        .flat_map(|l| l.chars())
        .filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c))
        .count()
}

#[test]
fn mandarin_keywords_are_heard_with_language_zh_and_auto() {
    for language in ["zh", "auto"] {
        let (dir, config) = setup(language);
        let file = say_mandarin(
            dir.path(),
            "message",
            "他说网上赌博可以赚很多钱。想要优惠的朋友请加微信联系我。",
        );
        let (lines, verdict) = moderate(&config, &file);
        assert!(cjk(&lines) >= 15, "{language}: heard in Chinese: {lines:?}");
        assert_eq!(
            terms(&verdict, "illegal"),
            ["赌博"],
            "{language}: {lines:?}: {verdict}"
        );
        assert_eq!(
            terms(&verdict, "ads"),
            ["加微信"],
            "{language}: {lines:?}: {verdict}"
        );
        assert!(
            verdict["data"]["illegal_info"]["score"].as_u64() > Some(60),
            "{verdict}"
        );
    }
}

#[test]
fn auto_hears_english_as_english_with_the_same_model() {
    let (dir, config) = setup("auto");
    let file = crate::speech::say(
        dir.path(),
        "english",
        "espeak-ng",
        "I think we should talk about car insurance later today.",
    );
    let (lines, verdict) = moderate(&config, &file);
    assert_eq!(cjk(&lines), 0, "heard in English: {lines:?}");
    assert_eq!(
        terms(&verdict, "ads"),
        ["car insurance"],
        "{lines:?}: {verdict}"
    );
}
