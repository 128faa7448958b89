//! The abuse classifier: judges each sentence of a transcript by its words, not by a list.
//!
//! The model is PyPI `alt-profanity-check`'s (MIT): a TF-IDF of the sentence's words and five
//! linear SVMs, each calibrated to a probability by a sigmoid, trained on a large labelled set of
//! abusive and clean comments. `scripts/abuse-model/fetch.sh` converts the pinned package to a
//! plain-text file (format in `scripts/abuse-model/convert.py`) whose SHA-256 the config names;
//! this module computes what the package's `predict_prob` does, in Rust:
//! words = runs of two or more word characters of the lower-cased sentence; x = their counts ×
//! idf, scaled to unit length; per fold f = w·x + intercept and p = 1 / (1 + exp(a·f + b)); the
//! probability is the folds' mean.

use std::collections::HashMap;

use super::transcript::Transcript;
use crate::config::AbuseClassifierConfig;
use crate::model::{SceneScore, Segment, Verdict};

/// Most sentences a verdict lists (the strongest).
const MAX_SEGMENTS: usize = 20;
/// The label of the classifier's findings.
pub const LABEL: &str = "abuse classifier";

/// A loaded classifier.
#[derive(Debug)]
pub struct AbuseModel {
    columns: HashMap<String, usize>,
    idf: Vec<f64>,
    /// Per fold: (intercept, a, b) and its weights by column.
    folds: Vec<((f64, f64, f64), Vec<f64>)>,
}

impl AbuseModel {
    /// Reads a model file.
    ///
    /// # Errors
    /// The file cannot be read or is not a model of this format.
    pub fn load(path: &std::path::Path) -> Result<AbuseModel, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        AbuseModel::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of a model file.
    ///
    /// # Errors
    /// Not a model of this format (the line that is not is named).
    pub fn parse(text: &str) -> Result<AbuseModel, String> {
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, l)| l) != Some("earshot-abuse 1") {
            return Err("not an earshot abuse model (version 1)".to_owned());
        }
        let number = |field: &str, line: usize| {
            field
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("line {}: {field:?} is not a number", line + 1))
        };
        let mut model = AbuseModel {
            columns: HashMap::new(),
            idf: Vec::new(),
            folds: Vec::new(),
        };
        for (n, line) in lines {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields[0] {
                "pattern" if fields.get(1) == Some(&r"\b\w\w+\b") => {}
                "fold" if fields.len() == 4 && model.idf.is_empty() => {
                    let calibration = (
                        number(fields[1], n)?,
                        number(fields[2], n)?,
                        number(fields[3], n)?,
                    );
                    model.folds.push((calibration, Vec::new()));
                }
                "word" if fields.len() == 3 + model.folds.len() && !model.folds.is_empty() => {
                    model
                        .columns
                        .insert(fields[1].to_owned(), model.columns.len());
                    model.idf.push(number(fields[2], n)?);
                    for (fold, weight) in model.folds.iter_mut().zip(&fields[3..]) {
                        fold.1.push(number(weight, n)?);
                    }
                }
                _ => return Err(format!("line {}: unexpected {:?}", n + 1, fields[0])),
            }
        }
        if model.idf.is_empty() || model.columns.len() != model.idf.len() {
            return Err("no vocabulary, or a word listed twice".to_owned());
        }
        Ok(model)
    }

    /// Words in the vocabulary.
    pub fn words(&self) -> usize {
        self.idf.len()
    }

    /// The probability that `sentence` is abusive, 0–1.
    pub fn probability(&self, sentence: &str) -> f64 {
        let lower = sentence.to_lowercase();
        let mut counts: HashMap<usize, f64> = HashMap::new();
        for word in words_of(&lower) {
            if let Some(&column) = self.columns.get(word) {
                *counts.entry(column).or_default() += 1.0;
            }
        }
        let x: Vec<(usize, f64)> = counts
            .into_iter()
            .map(|(column, count)| (column, count * self.idf[column]))
            .collect();
        let norm = x.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        let total: f64 = self
            .folds
            .iter()
            .map(|((intercept, a, b), weights)| {
                let dot: f64 = x.iter().map(|&(c, v)| weights[c] * v).sum();
                let f = if norm > 0.0 { dot / norm } else { 0.0 } + intercept;
                1.0 / (1.0 + (a * f + b).exp())
            })
            .sum();
        total / self.folds.len() as f64
    }
}

/// Runs of two or more word characters (letters, digits, `_`): the tokens of the regex
/// `(?u)\b\w\w+\b`.
fn words_of(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().nth(1).is_some())
}

/// The 0–100 score of a probability: under `suspicious_from` normal (0–59, rising with it), up
/// to `sensitive_from` suspicious (61–90), above that sensitive (91–100).
pub fn score_of(p: f64, settings: &AbuseClassifierConfig) -> u8 {
    let (low, high) = (settings.suspicious_from, settings.sensitive_from);
    let p = p.clamp(0.0, 1.0);
    if p < low {
        (59.0 * p / low).floor() as u8
    } else if p < high {
        (61.0 + 29.0 * (p - low) / (high - low)).round() as u8
    } else {
        (91.0 + 9.0 * (p - high) / (1.0 - high)).round().min(100.0) as u8
    }
}

/// Judges each sentence of `transcript` and adds the strongest to `verdict`'s scene: the scene
/// scores its most abusive sentence (or what the dictionaries gave, if more), and every
/// suspicious or sensitive sentence is a segment carrying the sentence and its score.
pub fn judge(
    model: &AbuseModel,
    settings: &AbuseClassifierConfig,
    transcript: &Transcript,
    verdict: &mut Verdict,
) {
    let mut judged: Vec<Segment> = transcript
        .sentences()
        .into_iter()
        .map(|sentence| Segment {
            offset_secs: sentence.offset_secs,
            duration_secs: sentence.duration_secs,
            score: score_of(model.probability(&sentence.text), settings),
            label: LABEL.to_owned(),
            context: Some(sentence.text.clone()),
            text: Some(sentence.text),
            ..Segment::default()
        })
        .collect();
    let Some(best) = judged.iter().map(|s| s.score).max() else {
        return;
    };
    judged.retain(|s| s.score > 60);
    let scene = verdict.scenes.entry(settings.scene).or_insert(SceneScore {
        score: 0,
        label: LABEL.to_owned(),
        segments: Vec::new(),
    });
    if best > scene.score {
        scene.score = best;
        scene.label = LABEL.to_owned();
    }
    scene.segments.extend(judged);
    scene.segments.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(a.offset_secs.total_cmp(&b.offset_secs))
    });
    scene.segments.truncate(MAX_SEGMENTS);
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = "earshot-abuse 1\npattern\t\\b\\w\\w+\\b\n\
        fold\t-0.5\t-3.0\t1.0\nfold\t-0.4\t-2.0\t0.5\n\
        word\tidiot\t3.0\t2.0\t1.5\nword\thello\t1.0\t-0.5\t-0.2\n";

    #[test]
    fn scores_like_the_python_package_computes() {
        let model = AbuseModel::parse(TINY).expect("parses");
        assert_eq!(model.words(), 2);
        // "You IDIOT, idiot!": counts {idiot: 2} → x = (1, 0) after scaling.
        let p = model.probability("You IDIOT, idiot!");
        let fold =
            |intercept: f64, a: f64, b: f64, w: f64| 1.0 / (1.0 + (a * (w + intercept) + b).exp());
        let expected = (fold(-0.5, -3.0, 1.0, 2.0) + fold(-0.4, -2.0, 0.5, 1.5)) / 2.0;
        assert!((p - expected).abs() < 1e-12, "{p} vs {expected}");
        // idiot and hello once each: x = (3, 1) / √10.
        let p = model.probability("hello idiot a");
        let (xi, xh) = (3.0 / 10f64.sqrt(), 1.0 / 10f64.sqrt());
        let expected = (fold(-0.5, -3.0, 1.0, 2.0 * xi - 0.5 * xh)
            + fold(-0.4, -2.0, 0.5, 1.5 * xi - 0.2 * xh))
            / 2.0;
        assert!((p - expected).abs() < 1e-12, "{p} vs {expected}");
        // No known word: the intercepts alone.
        let expected = (fold(-0.5, -3.0, 1.0, 0.0) + fold(-0.4, -2.0, 0.5, 0.0)) / 2.0;
        assert!((model.probability("a b c") - expected).abs() < 1e-12);
    }

    fn settings() -> AbuseClassifierConfig {
        AbuseClassifierConfig {
            enabled: true,
            model: String::new(),
            model_sha256: String::new(),
            scene: crate::model::Scene::Abuse,
            suspicious_from: 0.5,
            sensitive_from: 0.8,
        }
    }

    #[test]
    fn probabilities_map_onto_the_bands() {
        let s = settings();
        assert_eq!(score_of(0.0, &s), 0);
        assert_eq!(score_of(0.49, &s), 57);
        assert_eq!(score_of(0.5, &s), 61);
        assert_eq!(score_of(0.79, &s), 89);
        assert_eq!(score_of(0.8, &s), 91);
        assert_eq!(score_of(1.0, &s), 100);
    }

    #[test]
    fn the_most_abusive_sentence_scores_the_scene_beside_the_dictionaries() {
        let model = AbuseModel::parse(TINY).expect("parses");
        let word = |text: &str, start: f64| super::super::transcript::Word {
            text: text.to_owned(),
            start_secs: start,
            end_secs: start + 0.3,
            confidence: 0.9,
        };
        let transcript = Transcript {
            words: vec![
                word(" Hello", 0.0),
                word(" there.", 0.4),
                word(" You", 1.0),
                word(" idiot!", 1.4),
            ],
            ..Transcript::default()
        };
        let mut verdict = Verdict::default();
        judge(&model, &settings(), &transcript, &mut verdict);
        let scene = &verdict.scenes[&crate::model::Scene::Abuse];
        assert!(scene.score > 90, "{scene:?}");
        assert_eq!(scene.label, LABEL);
        assert_eq!(
            scene.segments.len(),
            1,
            "only the abusive sentence: {scene:?}"
        );
        let segment = &scene.segments[0];
        assert_eq!(segment.text.as_deref(), Some("You idiot!"));
        assert_eq!(segment.offset_secs, 1.0);
        assert!((segment.duration_secs - 0.7).abs() < 1e-9);
        // A dictionary's higher score stands, with the sentence added beside its segments.
        verdict
            .scenes
            .get_mut(&crate::model::Scene::Abuse)
            .expect("scene")
            .score = 99;
        judge(&model, &settings(), &transcript, &mut verdict);
        let scene = &verdict.scenes[&crate::model::Scene::Abuse];
        assert_eq!(scene.score, 99);
        assert_eq!(scene.segments.len(), 2);
    }

    #[test]
    fn a_damaged_model_is_refused_naming_the_line() {
        assert!(AbuseModel::parse("hello").is_err());
        let err = AbuseModel::parse(&TINY.replace("3.0\t2.0", "x\t2.0")).unwrap_err();
        assert!(err.contains("line 5"), "{err}");
        let err = AbuseModel::parse(&format!("{TINY}word\tidiot\t1\t1\t1\n")).unwrap_err();
        assert!(err.contains("twice"), "{err}");
    }
}
