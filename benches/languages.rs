//! Which speech model: Whisper base (multilingual, scripts/speech-model/fetch-base.sh) against
//! tiny.en (scripts/speech-model/fetch.sh), in one run. English: the speech bench's 40 planted
//! terms as voice messages (espeak-ng and flite), keyword recall and seconds of recognising per
//! minute of speech for each model. Mandarin (base only; tiny.en hears English alone):
//! tests/data/mandarin/sentences.tsv, 40 sentences each with one keyword, spoken by espeak-ng's
//! Mandarin voice `cmn-latn-pinyin` (its plain `cmn` voice reads many characters as English
//! words, and Whisper then hears English), with `language = "zh"` and `"auto"`: character error
//! rate, keyword recall (a fuzzy dictionary of the keywords, as a user would set one up), the
//! language `auto` detected, and speed. One thread per transcription. See bench/README.md ("Mandarin, and which model").

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use earshot::config::S3Config;
use earshot::engines::speech::SpeechEngine;
use earshot::engines::speech::dictionary::{
    Dictionary, DictionaryStore, MatchMode, Suggestion, Term,
};
use earshot::engines::speech::matcher::Matcher;
use earshot::engines::speech::normalise;
use earshot::model::Scene;
use support::{TERMS, clip, peak_rss_mb, planted, run, speech_engine, terms_dictionary};

/// The characters a transcript is scored on: Chinese characters (simplified), as the dictionaries
/// compare them; punctuation, spaces and anything else dropped.
fn characters(text: &str) -> Vec<String> {
    normalise::tokens(text)
        .into_iter()
        .filter(|t| t.chars().all(normalise::is_cjk))
        .collect()
}

/// Levenshtein distance.
fn distance(a: &[String], b: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(x != y))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// One file heard: (words as text, language, speech secs, recognising secs, terms found).
async fn hear(
    engine: &SpeechEngine,
    matcher: &Matcher,
    file: &Path,
) -> (String, String, f64, f64, Vec<String>) {
    let (clip, _) = clip(file);
    let started = Instant::now();
    let transcript = engine.transcribe(&clip).await.expect("transcribes");
    let secs = started.elapsed().as_secs_f64();
    let text: String = transcript.words.iter().map(|w| w.text.as_str()).collect();
    let terms = matcher
        .find(&transcript.words)
        .into_iter()
        .map(|h| h.term)
        .collect();
    (
        text,
        transcript.language.clone(),
        transcript.speech_secs,
        secs,
        terms,
    )
}

async fn put(dir: &Path, dictionary: &Dictionary) -> PathBuf {
    let path = dir.join(&dictionary.name);
    let s3 = earshot::storage::s3_client(&S3Config::default()).await;
    DictionaryStore::open(&path.display().to_string(), &s3)
        .put(dictionary)
        .await
        .expect("dictionary");
    path
}

#[tokio::main]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let models = root.join(".earshot/models");
    let pinned = |file: &str, sha: &str| {
        let model = models.join(file);
        assert!(
            model.is_file(),
            "{} missing: run scripts/speech-model/",
            model.display()
        );
        (model, root.join("scripts/speech-model").join(sha))
    };
    let tiny = pinned("ggml-tiny.en-q8_0.bin", "ggml-tiny.en-q8_0.sha256");
    let base = pinned("ggml-base-q8_0.bin", "ggml-base-q8_0.sha256");
    let dir = tempfile::tempdir().expect("tempdir");

    // English.
    let english = terms_dictionary("english");
    let english_dir = put(dir.path(), &english).await;
    let english_matcher = Matcher::build(std::slice::from_ref(&english));
    let mut messages = Vec::new();
    for (i, sentence) in planted().iter().enumerate() {
        for voice in ["espeak-ng", "flite"] {
            let wav = dir.path().join(format!("en-{voice}-{i}.wav"));
            match voice {
                "flite" => run(Command::new("flite").args(["-t", sentence, "-o"]).arg(&wav)),
                _ => run(Command::new("espeak-ng").arg("-w").arg(&wav).arg(sentence)),
            }
            messages.push((TERMS[i], wav));
        }
    }
    println!(
        "English: {} voice messages (40 planted terms, espeak-ng and flite), one thread",
        messages.len()
    );
    for (name, (model, sha)) in [("tiny.en", &tiny), ("base", &base)] {
        let (_, engine) = speech_engine(model, sha, &english_dir, "threads = 1").await;
        let (mut found, mut speech, mut secs) = (0, 0.0, 0.0);
        for (term, wav) in &messages {
            let (_, _, s, t, terms) = hear(&engine, &english_matcher, wav).await;
            found += usize::from(terms.iter().any(|h| h == term));
            speech += s;
            secs += t;
        }
        println!(
            "  {name}: recall {:.3} ({found} of {}), {:.1} s of recognising per minute of speech",
            found as f64 / messages.len() as f64,
            messages.len(),
            secs / (speech / 60.0)
        );
    }

    // Mandarin.
    let rows: Vec<(String, String)> =
        std::fs::read_to_string(root.join("tests/data/mandarin/sentences.tsv"))
            .expect("sentences")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (k, s) = l.split_once('\t').expect("keyword<TAB>sentence");
                (k.to_owned(), s.to_owned())
            })
            .collect();
    let mut keywords: Vec<String> = rows.iter().map(|(k, _)| k.clone()).collect();
    keywords.dedup();
    let mandarin = Dictionary {
        name: "mandarin".to_owned(),
        scene: Scene::Illegal,
        label: None,
        suggestion: Suggestion::Block,
        mode: MatchMode::Fuzzy,
        terms: keywords
            .iter()
            .map(|k| Term::words(k.clone(), None))
            .collect(),
    };
    let mandarin_dir = put(dir.path(), &mandarin).await;
    let mandarin_matcher = Matcher::build(std::slice::from_ref(&mandarin));
    let mut spoken = Vec::new();
    for (i, (keyword, sentence)) in rows.iter().enumerate() {
        let wav = dir.path().join(format!("zh-{i}.wav"));
        run(Command::new("espeak-ng")
            .args(["-v", "cmn-latn-pinyin", "-w"])
            .arg(&wav)
            .arg(sentence));
        spoken.push((keyword, sentence, wav));
    }
    println!(
        "Mandarin: {} voice messages (espeak-ng cmn-latn-pinyin), Whisper base, one thread",
        spoken.len()
    );
    for language in ["zh", "auto"] {
        let more = format!("threads = 1\nlanguage = \"{language}\"");
        let (_, engine) = speech_engine(&base.0, &base.1, &mandarin_dir, &more).await;
        let (mut errors, mut chars, mut found, mut as_zh, mut speech, mut secs) =
            (0, 0, 0, 0, 0.0, 0.0);
        let mut detected = std::collections::BTreeMap::<String, usize>::new();
        for (keyword, sentence, wav) in &spoken {
            let (text, lang, s, t, terms) = hear(&engine, &mandarin_matcher, wav).await;
            let reference = characters(sentence);
            errors += distance(&reference, &characters(&text));
            chars += reference.len();
            found += usize::from(terms.iter().any(|h| h == *keyword));
            as_zh += usize::from(lang == "zh");
            *detected.entry(lang).or_default() += 1;
            speech += s;
            secs += t;
            if std::env::var_os("SPEECH_DETAIL").is_some() {
                println!("    {sentence} → {text}");
            }
        }
        println!(
            "  language = {language:?}: character error rate {:.3} ({errors} edits in {chars} \
             characters), keyword recall {:.3} ({found} of {}), transcribed as zh {as_zh} of {} \
             (languages: {detected:?}), {:.1} s of recognising per minute of speech",
            errors as f64 / chars as f64,
            found as f64 / spoken.len() as f64,
            spoken.len(),
            spoken.len(),
            secs / (speech / 60.0)
        );
    }
    println!("  peak RSS: {:.0} MB", peak_rss_mb());
}
