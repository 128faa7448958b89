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

/// A sentence of a transcript, for the models that judge text.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    pub text: String,
    /// Seconds into the upload.
    pub offset_secs: f64,
    pub duration_secs: f64,
    /// Its clauses (words up to a comma, semicolon or colon), when it has more than one: the
    /// recogniser often runs sentences together with commas.
    pub clauses: Vec<Sentence>,
}

impl Sentence {
    fn of(words: &[Word]) -> Sentence {
        let (first, last) = (&words[0], &words[words.len() - 1]);
        Sentence {
            text: words
                .iter()
                .map(|w| w.text.as_str())
                .collect::<String>()
                .trim()
                .to_owned(),
            offset_secs: first.start_secs,
            duration_secs: (last.end_secs - first.start_secs).max(0.0),
            clauses: Vec::new(),
        }
    }
}

/// The most words a sentence runs to before it is cut.
const MAX_SENTENCE_WORDS: usize = 40;

impl Transcript {
    /// The sentences: words up to one that ends a sentence (`.`, `?`, `!` or their CJK forms),
    /// a pause of more than a second, or 40 words.
    pub fn sentences(&self) -> Vec<Sentence> {
        let words = &self.words;
        let mut out = Vec::new();
        let mut start = 0;
        for (i, word) in words.iter().enumerate() {
            let ends = word
                .text
                .trim_end()
                .ends_with(['.', '?', '!', '。', '？', '！'])
                || words
                    .get(i + 1)
                    .is_some_and(|next| next.start_secs - word.end_secs > 1.0)
                || i + 1 - start >= MAX_SENTENCE_WORDS;
            if ends || i + 1 == words.len() {
                let span = &words[start..=i];
                let mut sentence = Sentence::of(span);
                let clauses: Vec<Sentence> = span
                    .split_inclusive(|w| {
                        w.text
                            .trim_end()
                            .ends_with([',', ';', ':', '，', '；', '：'])
                    })
                    .map(Sentence::of)
                    .collect();
                if clauses.len() > 1 {
                    sentence.clauses = clauses;
                }
                out.push(sentence);
                start = i + 1;
            }
        }
        out
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_end_at_stops_pauses_and_forty_words() {
        let word = |text: &str, start: f64| Word {
            text: text.to_owned(),
            start_secs: start,
            end_secs: start + 0.3,
            confidence: 0.9,
        };
        let transcript = |words: Vec<Word>| Transcript {
            words,
            ..Transcript::default()
        };
        let texts = |t: &Transcript| {
            t.sentences()
                .into_iter()
                .map(|s| s.text)
                .collect::<Vec<_>>()
        };
        let heard = transcript(vec![
            word(" Hello", 0.0),
            word(" there.", 0.4),
            word(" You", 0.8),
            word(" fool", 1.2),
            word(" again", 3.0),
            word("赌博。", 3.4),
            word("加微信", 3.8),
        ]);
        assert_eq!(
            texts(&heard),
            ["Hello there.", "You fool", "again赌博。", "加微信"]
        );
        let second = &heard.sentences()[1];
        assert_eq!((second.offset_secs, second.duration_secs), (0.8, 0.7));
        assert!(second.clauses.is_empty());
        let run_on = transcript(vec![
            word(" Doors open at eight,", 0.0),
            word(" to receive the prize,", 0.4),
            word(" call.", 0.8),
        ]);
        let clauses: Vec<String> = run_on.sentences()[0]
            .clauses
            .iter()
            .map(|c| c.text.clone())
            .collect();
        assert_eq!(
            clauses,
            ["Doors open at eight,", "to receive the prize,", "call."]
        );
        assert_eq!(run_on.sentences()[0].clauses[1].offset_secs, 0.4);
        let long = transcript((0..85).map(|i| word(" la", f64::from(i) * 0.4)).collect());
        let lengths: Vec<usize> = texts(&long).iter().map(|s| s.split(' ').count()).collect();
        assert_eq!(lengths, [40, 40, 5]);
    }
}
