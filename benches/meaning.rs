//! Phrases by meaning (src/engines/speech/meaning/) beside the abuse classifier, the two layers
//! that judge the transcript's text: the threshold's calibration and precision and recall on
//! tests/data/meaning/sentences.tsv (120 paraphrases of examples.tsv's ten examples, 120 other
//! sentences, many sharing an example's words) as text and as voice messages (espeak-ng and flite
//! in turn, Whisper tiny.en); false alarms per hour of both layers in more than an hour of
//! term-free speech (four licences from /usr/share/common-licenses read by espeak-ng and flite,
//! and LibriVox) and in Debian game music; each layer's cost per minute of speech beside the
//! recogniser's; peak RSS with every model loaded. See bench/README.md ("Phrases by meaning").
//! Needs scripts/speech-model/fetch.sh, scripts/abuse-model/fetch.sh and
//! scripts/meaning-model/fetch.sh.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use earshot::engines::speech::abuse::{self, AbuseModel};
use earshot::engines::speech::dictionary::{Dictionary, MatchMode, Suggestion, Term};
use earshot::engines::speech::meaning::{self, Embedder, Examples};
use earshot::engines::speech::transcript::{Transcript, Word};
use earshot::model::{Scene, Verdict};
use support::{
    LIBRIVOX, TERM_FREE_MUSIC, clip, files_in, peak_rss_mb, precision_recall, run, speech_engine,
};

/// The configured threshold (config/earshot.toml).
const THRESHOLD: f64 = 0.50;
/// Licences read aloud as term-free speech, and the voice that reads each.
const LICENCES: &[(&str, &str)] = &[
    ("GPL-3", "espeak-ng"),
    ("MPL-2.0", "flite"),
    ("Apache-2.0", "flite"),
    ("GFDL-1.3", "espeak-ng"),
];

struct Labelled {
    example: Option<String>,
    text: String,
}

fn read_tsv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// One dictionary per scene holding its examples (suggestion `review`: a hit scores 75).
fn dictionaries(examples: &[Vec<String>]) -> Vec<Dictionary> {
    Scene::ALL
        .iter()
        .map(|&scene| Dictionary {
            name: format!("{scene}_examples"),
            scene,
            label: None,
            suggestion: Suggestion::Review,
            mode: MatchMode::Exact,
            terms: examples
                .iter()
                .filter(|e| e[1] == scene.as_str())
                .map(|e| Term::example(e[2].clone(), None))
                .collect(),
        })
        .filter(|d| !d.terms.is_empty())
        .collect()
}

/// (precision, recall, F1) of "best similarity ≥ t" over `rows` of (is a paraphrase, best).
fn at(rows: &[(bool, f64)], t: f64) -> (f64, f64, f64) {
    let tp = rows.iter().filter(|(p, s)| *p && *s >= t).count() as f64;
    let fp = rows.iter().filter(|(p, s)| !*p && *s >= t).count() as f64;
    let positives = rows.iter().filter(|(p, _)| *p).count() as f64;
    let (precision, recall) = (tp / (tp + fp).max(1.0), tp / positives.max(1.0));
    let f1 = 2.0 * precision * recall / (precision + recall).max(1e-9);
    (precision, recall, f1)
}

/// The threshold of best F1 on `rows` (the highest of equals), from 0.30 to 0.90 by 0.01.
fn calibrate(rows: &[(bool, f64)]) -> f64 {
    (30..=90)
        .map(|t| f64::from(t) / 100.0)
        .fold((0.0, -1.0), |best, t| {
            let f1 = at(rows, t).2;
            if f1 >= best.1 { (t, f1) } else { best }
        })
        .0
}

/// Thresholds the heard and term-free figures are given at.
const THRESHOLDS: [f64; 4] = [0.45, 0.50, 0.55, 0.60];

/// Each sentence's closest example: (words, example, similarity).
type Closest = Vec<(String, String, f64)>;

/// Both layers on one transcript: (abuse classifier secs, embedder secs, the abuse classifier's
/// findings, each sentence's closest example, whatever its similarity: what `meaning::judge`
/// then keeps at or above its threshold).
fn layers(
    model: &AbuseModel,
    settings: &earshot::config::AbuseClassifierConfig,
    embedder: &Embedder,
    examples: &Examples,
    transcript: &Transcript,
) -> (f64, f64, Vec<String>, Closest) {
    let mut verdict = Verdict::default();
    let started = Instant::now();
    abuse::judge(model, settings, transcript, &mut verdict);
    let classified = started.elapsed().as_secs_f64();
    let judged = verdict
        .scenes
        .values()
        .flat_map(|s| &s.segments)
        .map(|s| {
            format!(
                "at {:.1} s, score {}: {:?}",
                s.offset_secs,
                s.score,
                s.text.clone().unwrap_or_default()
            )
        })
        .collect();
    let started = Instant::now();
    let closest = meaning::nearest(embedder, examples, transcript, &Scene::ALL)
        .into_iter()
        .map(|n| {
            (
                n.sentence.text,
                examples.text(n.example).to_owned(),
                n.similarity,
            )
        })
        .collect();
    (classified, started.elapsed().as_secs_f64(), judged, closest)
}

#[tokio::main]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let models = root.join(".earshot/models");
    let hash = |name: &str| {
        std::fs::read_to_string(root.join(name))
            .expect("pinned hash")
            .trim()
            .to_owned()
    };
    let examples = read_tsv(&root.join("tests/data/meaning/examples.tsv"));
    let labelled: Vec<Labelled> = read_tsv(&root.join("tests/data/meaning/sentences.tsv"))
        .into_iter()
        .map(|row| Labelled {
            example: (row[1] == "same").then(|| {
                let id = &row[0];
                let found = examples.iter().find(|e| &e[0] == id).expect("a known id");
                found[2].clone()
            }),
            text: row[2].clone(),
        })
        .collect();
    let labels: Vec<bool> = labelled.iter().map(|l| l.example.is_some()).collect();

    // Text: every sentence's closest example.
    let embedder = Embedder::load(
        &models.join("all-minilm-l6-v2/model.safetensors"),
        &models.join("all-minilm-l6-v2/tokenizer.json"),
    )
    .expect("run scripts/meaning-model/fetch.sh first");
    // The engine embeds the examples as it loads the dictionaries; timed here once.
    let started = Instant::now();
    let compiled = Examples::build(&embedder, &dictionaries(&examples), &Examples::default());
    let build_ms = started.elapsed().as_secs_f64() * 1e3;
    // One embedding per sentence: the cost.
    let started = Instant::now();
    let mut tokens = 0;
    for l in &labelled {
        tokens += embedder.tokens(&l.text).len();
        std::hint::black_box(embedder.embed(&l.text));
    }
    let per_sentence_ms = started.elapsed().as_secs_f64() * 1e3 / labelled.len() as f64;
    // What the engine does with the sentence as a transcript (its clauses too): the closest
    // example and its similarity.
    let best: Vec<(String, f64)> = labelled
        .iter()
        .map(|l| {
            let words = l
                .text
                .split_whitespace()
                .enumerate()
                .map(|(i, w)| Word {
                    text: format!(" {w}"),
                    start_secs: i as f64 * 0.3,
                    end_secs: i as f64 * 0.3 + 0.25,
                    confidence: 1.0,
                })
                .collect();
            let transcript = Transcript {
                words,
                ..Transcript::default()
            };
            meaning::nearest(&embedder, &compiled, &transcript, &Scene::ALL)
                .into_iter()
                .map(|n| (compiled.text(n.example).to_owned(), n.similarity))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or_default()
        })
        .collect();
    let rows: Vec<(bool, f64)> = labels.iter().zip(&best).map(|(l, b)| (*l, b.1)).collect();
    println!(
        "phrases by meaning, {} sentences ({} paraphrases) against {} examples:",
        labelled.len(),
        labels.iter().filter(|l| **l).count(),
        examples.len()
    );
    println!("  threshold  precision  recall");
    for t in (40..=75).step_by(5) {
        let t = f64::from(t) / 100.0;
        let (p, r, _) = at(&rows, t);
        println!("  {t:.2}       {p:.3}      {r:.3}");
    }
    let halves: [Vec<(bool, f64)>; 2] = [0, 1].map(|half| {
        rows.iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == half)
            .map(|(_, r)| *r)
            .collect()
    });
    for (fit, test) in [(0, 1), (1, 0)] {
        let t = calibrate(&halves[fit]);
        let (p, r, _) = at(&halves[test], t);
        println!(
            "  best F1 on half {fit}: threshold {t:.2}; on half {test}: precision {p:.3}, recall {r:.3}"
        );
    }
    let caught: Vec<bool> = best.iter().map(|b| b.1 >= THRESHOLD).collect();
    let wrong = labelled
        .iter()
        .zip(&best)
        .filter(|(l, b)| b.1 >= THRESHOLD && l.example.as_ref().is_some_and(|e| *e != b.0))
        .count();
    println!(
        "  text, threshold {THRESHOLD}: {} ({wrong} caught under another example)",
        precision_recall(&labels, &caught)
    );
    println!(
        "  {per_sentence_ms:.1} ms per sentence ({:.1} tokens on average), one core; {} examples \
         embedded at load in {build_ms:.0} ms",
        tokens as f64 / labelled.len() as f64,
        compiled.len()
    );

    // The recogniser alone; both layers run on its transcripts here, as the engine runs them.
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, engine) = speech_engine(
        &models.join("ggml-tiny.en-q8_0.bin"),
        &root.join("scripts/speech-model/ggml-tiny.en-q8_0.sha256"),
        dir.path(),
        "threads = 2",
    )
    .await;
    let model = AbuseModel::load(&models.join("abuse-alt-profanity-check-1.9.1.tsv"))
        .expect("run scripts/abuse-model/fetch.sh first");
    let settings: earshot::config::AbuseClassifierConfig = toml::from_str(&format!(
        "model = \"\"\nmodel_sha256 = \"{}\"",
        hash("scripts/abuse-model/abuse-alt-profanity-check-1.9.1.sha256")
    ))
    .expect("abuse settings");
    let mut costs = [0.0f64; 4]; // speech secs, recogniser, classifier, embedder
    let hear = async |file: &Path, costs: &mut [f64; 4]| {
        let (clip, _) = clip(file);
        let started = Instant::now();
        let transcript = engine.transcribe(&clip).await.expect("transcribes");
        let recognised = started.elapsed().as_secs_f64();
        let (classified, embedded, judged, closest) =
            layers(&model, &settings, &embedder, &compiled, &transcript);
        for (c, v) in
            costs
                .iter_mut()
                .zip([transcript.speech_secs, recognised, classified, embedded])
        {
            *c += v;
        }
        (transcript, judged, closest)
    };

    // Heard: each sentence a voice message; its best similarity to any example, and whether
    // that is the example it paraphrases.
    let mut heard: Vec<(bool, f64, bool)> = Vec::new();
    for (i, l) in labelled.iter().enumerate() {
        let wav = dir.path().join(format!("s{i}.wav"));
        if i % 2 == 0 {
            run(Command::new("espeak-ng").arg("-w").arg(&wav).arg(&l.text));
        } else {
            run(Command::new("flite").args(["-t", &l.text, "-o"]).arg(&wav));
        }
        let (_, _, closest) = hear(&wav, &mut costs).await;
        let best = closest
            .iter()
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .map_or((String::new(), 0.0), |c| (c.1.clone(), c.2));
        heard.push((
            l.example.is_some(),
            best.1,
            l.example.as_deref() == Some(best.0.as_str()),
        ));
    }
    println!("  heard (espeak-ng and flite in turn, tiny.en):");
    for t in THRESHOLDS {
        let caught: Vec<bool> = heard.iter().map(|h| h.1 >= t).collect();
        let own = heard.iter().filter(|h| h.0 && h.1 >= t && h.2).count();
        println!(
            "    threshold {t:.2}: {} ({own} under their own example)",
            precision_recall(&labels, &caught)
        );
    }

    // Term-free speech and music.
    let mut speech = Vec::new();
    for (licence, voice) in LICENCES {
        let text = Path::new("/usr/share/common-licenses").join(licence);
        let wav = dir.path().join(format!("{licence}.wav"));
        match *voice {
            "flite" => run(Command::new("flite")
                .arg("-f")
                .arg(&text)
                .arg("-o")
                .arg(&wav)),
            _ => run(Command::new("espeak-ng")
                .arg("-f")
                .arg(&text)
                .arg("-w")
                .arg(&wav)),
        }
        speech.push(wav);
    }
    speech.extend(files_in(LIBRIVOX, &["wav"]));
    let music: Vec<_> = TERM_FREE_MUSIC
        .iter()
        .flat_map(|d| files_in(d, &["ogg", "opus"]))
        .collect();
    for (kind, files) in [("term-free speech", &speech), ("music", &music)] {
        let (mut audio_secs, mut heard_secs, mut sentences) = (0.0, 0.0, 0);
        let (mut judged, mut near) = (Vec::new(), Vec::new());
        for file in files {
            let (transcript, j, closest) = hear(file, &mut costs).await;
            audio_secs += transcript.audio_secs;
            heard_secs += transcript.speech_secs;
            sentences += transcript.sentences().len();
            let name = file.file_name().expect("a name").to_string_lossy();
            judged.extend(j.into_iter().map(|f| format!("{name} {f}")));
            near.extend(
                closest
                    .into_iter()
                    .filter(|c| c.2 >= THRESHOLDS[0])
                    .map(|(text, example, s)| (s, format!("{name}: {text:?} ~ {example:?}"))),
            );
        }
        let hours = audio_secs / 3600.0;
        let alarms: Vec<String> = THRESHOLDS
            .iter()
            .map(|t| {
                let n = near.iter().filter(|(s, _)| s >= t).count();
                format!("{n} at {t:.2} ({:.1} per hour)", n as f64 / hours)
            })
            .collect();
        println!(
            "  {kind}: {hours:.2} h in {} files ({:.1} min transcribed, {sentences} sentences): \
             examples' false alarms {}; abuse classifier {} ({:.1} per hour)",
            files.len(),
            heard_secs / 60.0,
            alarms.join(", "),
            judged.len(),
            judged.len() as f64 / hours
        );
        near.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (s, alarm) in &near {
            println!("    similarity {s:.3}: {alarm}");
        }
        for alarm in &judged {
            println!("    abuse classifier: {alarm}");
        }
    }
    let minutes = costs[0] / 60.0;
    println!(
        "  cost per minute of speech ({minutes:.1} min in all): recogniser {:.2} s (two threads), \
         abuse classifier {:.2} ms, embedder {:.0} ms (one core)",
        costs[1] / minutes,
        costs[2] * 1e3 / minutes,
        costs[3] * 1e3 / minutes
    );
    println!(
        "  peak RSS with the recogniser, the classifier and the embedder loaded: {:.0} MB",
        peak_rss_mb()
    );
}
