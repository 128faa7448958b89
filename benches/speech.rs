//! The speech engine: × realtime per core on speech and on music (the gate should make music
//! nearly free), peak RSS, and keyword recall, placement and false alarms per hour. See
//! bench/README.md.
//!
//! The keyword set: 40 terms, each planted in its own sentence ("... {term} ..."), spoken by three
//! voices (espeak-ng's default and a female variant, flite), heard in four shapes: as 40 voice
//! messages of one sentence each, and as one recording of all 40 (a second between sentences,
//! back to back, and a second apart over a music bed 20 dB down): 480 planted terms. A term counts
//! as found when a hit of it starts within a second of its sentence; a hit elsewhere is misplaced.
//! Hits are counted from the matcher over the whole transcript (a verdict lists at most 20
//! segments per scene). `SPEECH_DETAIL=1` prints what was heard where a term was missed or
//! misplaced. False alarms: hits anywhere in audio with no term in it — Debian's music (13 game
//! tracks of extremetuxracer-data and frozen-bubble-data), 5 minutes of noise, the LibriVox
//! reading of pocketsphinx-testdata, and the same sentences with their terms replaced by
//! harmless words. Every figure is measured twice: with the dictionary's terms given to the
//! recogniser as its prompt (the default) and without.
//!
//! Needs the test model (scripts/speech-model/fetch.sh) and the Debian packages of
//! scripts/install-deps.sh. One thread per transcription, so "per core" holds.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use std::sync::Arc;
use std::time::Instant;
use support::{TERMS, clip, peak_rss_mb, planted, run, speech_engine, terms_dictionary};

use earshot::config::S3Config;
use earshot::engines::speech::SpeechEngine;
use earshot::engines::speech::dictionary::DictionaryStore;

use earshot::engines::speech::matcher::Matcher;
use earshot::engines::speech::transcript::Transcript;

const HARMLESS: [&str; 8] = [
    "the garden",
    "my sister",
    "the weather",
    "a good book",
    "the river",
    "our kitchen",
    "the football match",
    "an old friend",
];

const MUSIC: &[&str] = &[
    "/usr/share/games/etr/music/calmrace-ks.ogg",
    "/usr/share/games/etr/music/credits1-cp.ogg",
    "/usr/share/games/etr/music/freezingpoint.ogg",
    "/usr/share/games/etr/music/lostrace-ks.ogg",
    "/usr/share/games/etr/music/options1-jt.ogg",
    "/usr/share/games/etr/music/race1-jt.ogg",
    "/usr/share/games/etr/music/raceintro-ks.ogg",
    "/usr/share/games/etr/music/spunkyrace-ks.ogg",
    "/usr/share/games/etr/music/start1-jt.ogg",
    "/usr/share/games/etr/music/wonrace1-jt.ogg",
    "/usr/share/games/frozen-bubble/snd/frozen-mainzik-1p.ogg",
    "/usr/share/games/frozen-bubble/snd/frozen-mainzik-2p.ogg",
    "/usr/share/games/frozen-bubble/snd/introzik.ogg",
];

const LIBRIVOX: &str = "/usr/share/pocketsphinx/test/data/librivox";

/// One recording of `sentences` by `voice`, with `pause` seconds of silence after each; where
/// each sentence starts and ends.
fn spoken(
    dir: &Path,
    name: &str,
    voice: &str,
    sentences: &[String],
    pause: f64,
) -> (PathBuf, Vec<(f64, f64)>) {
    let mut parts = Vec::new();
    let mut spans = Vec::new();
    let mut at = 0.0;
    for (i, sentence) in sentences.iter().enumerate() {
        let wav = dir.join(format!("{name}-{i}.wav"));
        match voice {
            "flite" => run(Command::new("flite").args(["-t", sentence, "-o"]).arg(&wav)),
            voice => run(Command::new("espeak-ng")
                .args(["-v", voice, "-w"])
                .arg(&wav)
                .arg(sentence)),
        }
        let resampled = dir.join(format!("{name}-{i}-16k.wav"));
        run(Command::new("sox")
            .arg(&wav)
            .args(["-r", "16000", "-c", "1"])
            .arg(&resampled)
            .args(["pad", "0", &pause.to_string()]));
        let secs = duration(&resampled);
        spans.push((at, at + secs - pause));
        at += secs;
        parts.push(resampled);
    }
    let out = dir.join(format!("{name}.wav"));
    run(Command::new("sox").args(&parts).arg(&out));
    (out, spans)
}

fn duration(path: &Path) -> f64 {
    let out = Command::new("soxi")
        .arg("-D")
        .arg(path)
        .output()
        .expect("soxi");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a duration")
}

struct Tally {
    audio_secs: f64,
    gate_secs: f64,
    speech_secs: f64,
    recognise_secs: f64,
    hits: usize,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            audio_secs: 0.0,
            gate_secs: 0.0,
            speech_secs: 0.0,
            recognise_secs: 0.0,
            hits: 0,
        }
    }

    fn realtime(&self) -> f64 {
        self.audio_secs / (self.gate_secs + self.recognise_secs)
    }
}

/// Transcribes a file as the engine does for an upload (counting the time).
async fn transcript(engine: &SpeechEngine, path: &Path, tally: &mut Tally) -> Arc<Transcript> {
    let (clip, gate_secs) = clip(path);
    let started = Instant::now();
    let transcript = engine.transcribe(&clip).await.expect("transcribes");
    tally.recognise_secs += started.elapsed().as_secs_f64();
    tally.gate_secs += gate_secs;
    tally.audio_secs += clip.audio.duration_secs();
    tally.speech_secs += clip.speech.as_ref().map_or(0.0, |s| s.speech_secs());
    transcript
}

/// Hits in a file with no term in it.
async fn judge(engine: &SpeechEngine, matcher: &Matcher, path: &Path, tally: &mut Tally) {
    let transcript = transcript(engine, path, tally).await;
    let hits = matcher.find(&transcript.words);
    if std::env::var_os("SPEECH_DETAIL").is_some() {
        if !hits.is_empty() {
            for line in transcript.lines() {
                println!("      {line}");
            }
        }
        for hit in &hits {
            println!(
                "    false alarm in {}: {} at {:.1} s, score {}, confidence {:.2}: {}",
                path.display(),
                hit.term,
                hit.start_secs,
                hit.score,
                hit.confidence,
                hit.context
            );
        }
    }
    tally.hits += hits.len();
}

/// How the planted sentences are heard: as voice messages of one sentence each, or as one
/// recording of all 40 (a second apart, back to back, or a second apart over a music bed).
const SHAPES: [&str; 4] = [
    "messages (one sentence each)",
    "one recording, 1 s between sentences",
    "one recording, back to back",
    "one recording over a music bed",
];

/// A recording and where its sentences are: (term, (start, end) in seconds).
struct Recording {
    path: PathBuf,
    spans: Vec<(usize, (f64, f64))>,
}

/// `speech` over `bed` looped, 20 dB down, as a podcast lays music under its voice.
fn under_music(dir: &Path, speech: &Path, bed: &Path) -> PathBuf {
    let out = dir.join(format!(
        "{}-bed.wav",
        speech.file_stem().expect("a name").to_string_lossy()
    ));
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(speech)
        .args(["-stream_loop", "-1", "-i"])
        .arg(bed)
        .args([
            "-filter_complex",
            "[1:a]aresample=16000,pan=mono|c0=0.5*c0+0.5*c1,volume=0.1[b];[0:a][b]amix=inputs=2:duration=first:normalize=0",
            "-ar",
            "16000",
            "-ac",
            "1",
        ])
        .arg(&out));
    out
}

/// Planted terms found, and where.
#[derive(Default)]
struct Heard {
    /// Terms with a hit that starts within 1 s of their sentence.
    found: usize,
    /// Hits of planted terms, and those that start within 1 s of the term's sentence.
    hits: usize,
    placed: usize,
    /// What was heard where a term was missed or misplaced.
    missed: Vec<String>,
}

impl Heard {
    fn add(&mut self, matcher: &Matcher, transcript: &Transcript, spans: &[(usize, (f64, f64))]) {
        let hits = matcher.find(&transcript.words);
        for &(term, (from, to)) in spans {
            let within = |at: f64| at >= from - 1.0 && at <= to + 1.0;
            let of_term: Vec<f64> = hits
                .iter()
                .filter(|h| h.term == TERMS[term])
                .map(|h| h.start_secs)
                .collect();
            self.hits += of_term.len();
            let placed = of_term.iter().filter(|&&at| within(at)).count();
            self.placed += placed;
            if placed > 0 {
                self.found += 1;
            }
            if placed < of_term.len() || placed == 0 {
                let said: Vec<String> = transcript
                    .words
                    .iter()
                    .filter(|w| within(w.start_secs))
                    .map(|w| format!("{}@{:.1}", w.text.trim(), w.start_secs))
                    .collect();
                self.missed.push(format!(
                    "[{from:.1}-{to:.1}] {}: hits at {of_term:.1?}; heard: {}",
                    TERMS[term],
                    said.join(" ")
                ));
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join(".earshot/models/ggml-tiny.en-q8_0.bin");
    assert!(model.is_file(), "run scripts/speech-model/fetch.sh first");
    let dir = tempfile::tempdir().expect("tempdir");
    let dictionaries = dir.path().join("dictionaries");
    let s3 = earshot::storage::s3_client(&S3Config::default()).await;
    let dictionary = terms_dictionary("bench");
    DictionaryStore::open(&dictionaries.display().to_string(), &s3)
        .put(&dictionary)
        .await
        .expect("dictionary");
    let matcher = Matcher::build(std::slice::from_ref(&dictionary));

    let planted = planted();
    let harmless: Vec<String> = planted
        .iter()
        .zip(TERMS.iter())
        .enumerate()
        .map(|(i, (s, t))| s.replace(t, HARMLESS[i % HARMLESS.len()]))
        .collect();
    let voices = ["en", "en-us+f3", "flite"];
    let bed = Path::new(MUSIC[4]);
    let mut sets = Vec::new();
    for voice in voices {
        let name = voice.replace('+', "-");
        let messages: Vec<Recording> = planted
            .iter()
            .enumerate()
            .map(|(i, sentence)| {
                let (path, spans) = spoken(
                    dir.path(),
                    &format!("message-{name}-{i}"),
                    voice,
                    std::slice::from_ref(sentence),
                    0.5,
                );
                Recording {
                    path,
                    spans: vec![(i, spans[0])],
                }
            })
            .collect();
        let long = |tag: &str, pause: f64| {
            let (path, spans) =
                spoken(dir.path(), &format!("{tag}-{name}"), voice, &planted, pause);
            Recording {
                path,
                spans: spans.into_iter().enumerate().collect(),
            }
        };
        let paused = long("paused", 1.0);
        let joined = long("joined", 0.1);
        let bedded = Recording {
            path: under_music(dir.path(), &paused.path, bed),
            spans: paused.spans.clone(),
        };
        sets.push((
            voice,
            vec![messages, vec![paused], vec![joined], vec![bedded]],
        ));
    }
    let (clean, _) = spoken(dir.path(), "harmless", "en", &harmless, 1.0);
    let noise = dir.path().join("noise.wav");
    run(Command::new("sox")
        .args(["-n", "-r", "16000", "-c", "1"])
        .arg(&noise)
        .args(["synth", "150", "pinknoise", "vol", "0.3"]));
    let white = dir.path().join("white.wav");
    run(Command::new("sox")
        .args(["-n", "-r", "16000", "-c", "1"])
        .arg(&white)
        .args(["synth", "150", "whitenoise", "vol", "0.2"]));
    let mut reading: Vec<PathBuf> = std::fs::read_dir(LIBRIVOX)
        .expect("pocketsphinx-testdata")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    reading.sort();

    println!(
        "speech engine, Whisper tiny.en q8_0, 1 thread; {} planted terms",
        TERMS.len() * voices.len()
    );
    for prompt in [true, false] {
        let (_, engine) = speech_engine(
            &model,
            &root.join("scripts/speech-model/ggml-tiny.en-q8_0.sha256"),
            &dictionaries,
            &format!(
                "threads = 1
prompt_terms = {prompt}"
            ),
        )
        .await;
        let mut speech = Tally::new();
        let mut table = String::new();
        let (mut found, mut placed, mut hits_of_planted) = (0, 0, 0);
        let only_false_alarms = std::env::var_os("SPEECH_FALSE_ALARMS_ONLY").is_some();
        for (voice, shapes) in sets.iter().filter(|_| !only_false_alarms) {
            let mut cells = Vec::new();
            for recordings in shapes {
                let mut heard = Heard::default();
                for recording in recordings {
                    let transcript = transcript(&engine, &recording.path, &mut speech).await;
                    heard.add(&matcher, &transcript, &recording.spans);
                }
                found += heard.found;
                placed += heard.placed;
                hits_of_planted += heard.hits;
                cells.push(format!(
                    "{}/{} ({} of {} hits placed)",
                    heard.found,
                    TERMS.len(),
                    heard.placed,
                    heard.hits
                ));
                for line in &heard.missed {
                    if std::env::var_os("SPEECH_DETAIL").is_some() {
                        println!("    {voice} {line}");
                    }
                }
            }
            table.push_str(&format!("| {prompt} | {voice} | {} |\n", cells.join(" | ")));
        }
        println!(
            "prompt={prompt}: recall {found}/{} ({:.1} %); hits placed within 1 s of their sentence: {placed}/{hits_of_planted} ({:.1} %)",
            TERMS.len() * voices.len() * SHAPES.len(),
            100.0 * found as f64 / (TERMS.len() * voices.len() * SHAPES.len()) as f64,
            100.0 * placed as f64 / hits_of_planted.max(1) as f64
        );
        println!(
            "\n| prompt | voice | {} |\n|---|---|{}\n{table}",
            SHAPES.join(" | "),
            "---|".repeat(SHAPES.len())
        );
        let mut music = Tally::new();
        for track in MUSIC {
            judge(&engine, &matcher, Path::new(track), &mut music).await;
        }
        let mut quiet = Tally::new();
        for path in [&noise, &white] {
            judge(&engine, &matcher, path, &mut quiet).await;
        }
        for path in reading.iter().chain([&clean]) {
            judge(&engine, &matcher, path, &mut quiet).await;
        }
        let false_hours = (music.audio_secs + quiet.audio_secs) / 3600.0;
        let false_alarms = music.hits + quiet.hits;
        println!(
            "prompt={prompt}: false alarms {false_alarms} in {:.2} h of term-free audio ({:.1} per hour; music {}, noise/speech {})",
            false_hours,
            false_alarms as f64 / false_hours,
            music.hits,
            quiet.hits
        );
        println!(
            "prompt={prompt}: speech {:.0} s at {:.1}x realtime per core (gate {:.2} s, recogniser {:.1} s, {:.0} s let through)",
            speech.audio_secs,
            speech.realtime(),
            speech.gate_secs,
            speech.recognise_secs,
            speech.speech_secs
        );
        println!(
            "prompt={prompt}: music {:.0} s at {:.1}x realtime per core (gate {:.2} s, recogniser {:.1} s, {:.0} s let through = {:.1} %)",
            music.audio_secs,
            music.realtime(),
            music.gate_secs,
            music.recognise_secs,
            music.speech_secs,
            100.0 * music.speech_secs / music.audio_secs
        );
    }
    println!("peak RSS {:.0} MB", peak_rss_mb());
}
