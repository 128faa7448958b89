//! The abuse classifier (src/engines/speech/abuse.rs), on its own and behind the recogniser:
//! precision and recall on tests/data/abuse/sentences.tsv (100 abusive, 100 clean sentences), as
//! text and as voice messages (espeak-ng and flite in turn, Whisper tiny.en); false alarms per
//! hour in term-free speech and music (LibriVox from pocketsphinx-testdata, the clean sentences
//! read back to back, and Debian game music); the classifier's cost per minute of speech beside
//! the recogniser's; peak RSS with both models loaded. See bench/README.md ("The abuse
//! classifier"). Needs scripts/speech-model/fetch.sh and scripts/abuse-model/fetch.sh.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use earshot::config::AbuseClassifierConfig;
use earshot::engines::Analyser;
use earshot::engines::speech::SpeechEngine;
use earshot::engines::speech::abuse::{self, AbuseModel};
use earshot::model::{Scene, Segment, Verdict};
use support::{
    LIBRIVOX, TERM_FREE_MUSIC, clip, files_in, peak_rss_mb, precision_recall, run, speech_engine,
};

/// What one file gives: (speech secs, audio secs, recogniser secs, classifier secs, the engine's
/// abuse segments).
async fn judge(
    engine: &SpeechEngine,
    model: &AbuseModel,
    settings: &AbuseClassifierConfig,
    file: &Path,
) -> (f64, f64, f64, f64, Vec<Segment>) {
    let (clip, _) = clip(file);
    let started = Instant::now();
    let transcript = engine.transcribe(&clip).await.expect("transcribes");
    let recognised = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut verdict = Verdict::default();
    abuse::judge(model, settings, &transcript, &mut verdict);
    let classified = started.elapsed().as_secs_f64();
    // The engine's own verdict (the transcript is kept, so this does not transcribe again).
    let full = engine
        .moderate(&clip, &[Scene::Abuse])
        .await
        .expect("judges");
    let segments = full
        .scenes
        .get(&Scene::Abuse)
        .map(|s| s.segments.clone())
        .unwrap_or_default();
    (
        transcript.speech_secs,
        transcript.audio_secs,
        recognised,
        classified,
        segments,
    )
}

#[tokio::main]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hash = |name: &str| {
        std::fs::read_to_string(root.join(name))
            .expect("pinned hash")
            .trim()
            .to_owned()
    };
    let speech_model = root.join(".earshot/models/ggml-tiny.en-q8_0.bin");
    let abuse_model = root.join(".earshot/models/abuse-alt-profanity-check-1.9.1.tsv");
    assert!(
        speech_model.is_file() && abuse_model.is_file(),
        "run scripts/speech-model/fetch.sh and scripts/abuse-model/fetch.sh first"
    );
    let labelled: Vec<(bool, String)> =
        std::fs::read_to_string(root.join("tests/data/abuse/sentences.tsv"))
            .expect("sentences")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (label, text) = l.split_once('\t').expect("label<TAB>sentence");
                (label == "abusive", text.to_owned())
            })
            .collect();
    let labels: Vec<bool> = labelled.iter().map(|(l, _)| *l).collect();

    // Text.
    let model = AbuseModel::load(&abuse_model).expect("model");
    let started = Instant::now();
    let probabilities: Vec<f64> = labelled.iter().map(|(_, t)| model.probability(t)).collect();
    let per_sentence_us = started.elapsed().as_secs_f64() * 1e6 / labelled.len() as f64;
    println!("abuse classifier, {} sentences:", labelled.len());
    for (name, from) in [("suspicious (p ≥ 0.5)", 0.5), ("sensitive (p ≥ 0.8)", 0.8)] {
        let caught: Vec<bool> = probabilities.iter().map(|p| *p >= from).collect();
        println!("  text, {name}: {}", precision_recall(&labels, &caught));
    }
    println!("  {per_sentence_us:.1} µs per sentence");

    // Heard: each sentence a voice message, through the speech engine with the classifier on.
    let dir = tempfile::tempdir().expect("tempdir");
    let dictionaries = dir.path().join("dictionaries");
    std::fs::create_dir_all(&dictionaries).expect("dir");
    let (config, engine) = speech_engine(
        &speech_model,
        &root.join("scripts/speech-model/ggml-tiny.en-q8_0.sha256"),
        &dictionaries,
        &format!(
            "threads = 1
[abuse]
model = \"{}\"
model_sha256 = \"{}\"",
            abuse_model.display(),
            hash("scripts/abuse-model/abuse-alt-profanity-check-1.9.1.sha256"),
        ),
    )
    .await;
    let settings = config.abuse.clone().expect("abuse settings");
    let (mut speech_secs, mut recognise_secs, mut classify_secs) = (0.0, 0.0, 0.0);
    let mut caught = Vec::new();
    for (i, (_, text)) in labelled.iter().enumerate() {
        let wav = dir.path().join(format!("s{i}.wav"));
        if i % 2 == 0 {
            run(Command::new("espeak-ng").arg("-w").arg(&wav).arg(text));
        } else {
            run(Command::new("flite").args(["-t", text, "-o"]).arg(&wav));
        }
        let (speech, _, recognised, classified, segments) =
            judge(&engine, &model, &settings, &wav).await;
        speech_secs += speech;
        recognise_secs += recognised;
        classify_secs += classified;
        caught.push(!segments.is_empty());
    }
    println!(
        "  heard (espeak-ng and flite in turn, tiny.en), score > 60: {}",
        precision_recall(&labels, &caught)
    );
    println!(
        "  cost per minute of speech: recogniser {:.2} s, classifier {:.2} ms ({:.1} min of speech)",
        recognise_secs / (speech_secs / 60.0),
        classify_secs * 1e3 / (speech_secs / 60.0),
        speech_secs / 60.0
    );

    // Term-free speech and music.
    let clean: Vec<&String> = labelled
        .iter()
        .filter(|(l, _)| !l)
        .map(|(_, t)| t)
        .collect();
    let mut parts = Vec::new();
    for (i, text) in clean.iter().enumerate() {
        let wav = dir.path().join(format!("c{i}.wav"));
        run(Command::new("espeak-ng").arg("-w").arg(&wav).arg(text));
        let padded = dir.path().join(format!("c{i}-16k.wav"));
        run(Command::new("sox")
            .arg(&wav)
            .args(["-r", "16000", "-c", "1"])
            .arg(&padded)
            .args(["pad", "0", "1"]));
        parts.push(padded);
    }
    let reading = dir.path().join("clean-reading.wav");
    run(Command::new("sox").args(&parts).arg(&reading));
    let mut term_free = vec![reading];
    term_free.extend(files_in(LIBRIVOX, &["wav"]));
    for music in TERM_FREE_MUSIC {
        term_free.extend(files_in(music, &["ogg", "opus"]));
    }
    let (mut audio_secs, mut heard_secs, mut alarms) = (0.0, 0.0, Vec::new());
    for file in &term_free {
        let (speech, audio, _, _, segments) = judge(&engine, &model, &settings, file).await;
        audio_secs += audio;
        heard_secs += speech;
        for s in segments {
            alarms.push(format!(
                "{} at {:.1} s, score {}: {:?}",
                file.display(),
                s.offset_secs,
                s.score,
                s.text.unwrap_or_default()
            ));
        }
    }
    println!(
        "  false alarms: {} in {:.2} h of term-free speech and music ({} files; {:.1} min let \
         through by the gate and transcribed): {:.1} per hour",
        alarms.len(),
        audio_secs / 3600.0,
        term_free.len(),
        heard_secs / 60.0,
        alarms.len() as f64 / (audio_secs / 3600.0)
    );
    for alarm in &alarms {
        println!("    {alarm}");
    }
    println!(
        "  peak RSS with both models loaded: {:.0} MB",
        peak_rss_mb()
    );
}
