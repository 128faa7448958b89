//! What the recogniser heard: words with their times in the upload and how sure it was.

use serde::{Deserialize, Serialize};

/// One recognised word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    /// Seconds into the upload.
    pub start_secs: f64,
    pub end_secs: f64,
    /// The recogniser's mean token probability, 0–1.
    pub confidence: f32,
}

/// A transcript of the speech in an upload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub words: Vec<Word>,
    /// The language transcribed (`en`, `zh`, …).
    pub language: String,
    /// Seconds the voice-activity gate let through (what was transcribed).
    pub speech_secs: f64,
    /// Seconds of audio decoded.
    pub audio_secs: f64,
    /// Speech past `max_speech_secs` was not transcribed.
    pub capped: bool,
}

impl Transcript {
    /// The words as lines of text with their times, one line per pause-separated phrase.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut started = 0.0;
        let mut last_end = f64::NEG_INFINITY;
        for word in &self.words {
            if !line.is_empty() && word.start_secs - last_end > 1.0 {
                lines.push(format!(
                    "[{} → {}] {}",
                    clock(started),
                    clock(last_end),
                    line.trim()
                ));
                line.clear();
            }
            if line.is_empty() {
                started = word.start_secs;
            }
            line.push_str(&word.text);
            last_end = word.end_secs;
        }
        if !line.is_empty() {
            lines.push(format!(
                "[{} → {}] {}",
                clock(started),
                clock(last_end),
                line.trim()
            ));
        }
        lines
    }
}

fn clock(secs: f64) -> String {
    let secs = secs.max(0.0);
    let minutes = (secs / 60.0).floor();
    format!("{:02}:{:05.2}", minutes as u64, secs - minutes * 60.0)
}
