//! [`Matcher`] compiles every term of every dictionary into Aho–Corasick automata (one pass over
//! a transcript finds all of thousands of terms), and [`Matcher::verdict`] maps the hits onto
//! COS's score bands: see [`hit_score`] and [`scene_score`].

use std::collections::{BTreeMap, HashMap};

use aho_corasick::{AhoCorasick, MatchKind};

use super::dictionary::{Dictionary, MatchMode};
use super::normalise::{self, is_cjk};
use super::transcript::{Transcript, Word};
use crate::model::{Scene, SceneScore, Segment, Verdict};

/// How a term was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HitKind {
    Fuzzy,
    Exact,
}

/// Below this mean word probability, the recogniser was not sure it heard the term.
pub const CONFIDENT: f32 = 0.5;

/// Each further distinct term of a scene raises its score by this much.
pub const PER_EXTRA_TERM: u8 = 3;

/// One hit's score: a confident exact hit keeps its term's score (95 for a `block` dictionary:
/// sensitive); an exact hit the recogniser was unsure of is at most 80, a fuzzy hit at most 85,
/// both suspicious, so a person sees them.
pub fn hit_score(term_score: u8, kind: HitKind, confidence: f32) -> u8 {
    match kind {
        HitKind::Exact if confidence >= CONFIDENT => term_score,
        HitKind::Exact => term_score.min(80),
        HitKind::Fuzzy => term_score.min(85),
    }
}

/// A scene's score from its hits' best score per distinct term: the best, raised by
/// [`PER_EXTRA_TERM`] per other term; it stays in the suspicious band (at most 90) unless a hit
/// alone was sensitive.
pub fn scene_score(per_term: &[u8]) -> u8 {
    let Some(&best) = per_term.iter().max() else {
        return 0;
    };
    let extra = u8::try_from(per_term.len() - 1).unwrap_or(u8::MAX);
    let cap = if best > 90 { 100 } else { 90.max(best) };
    best.saturating_add(extra.saturating_mul(PER_EXTRA_TERM))
        .min(cap)
}

struct Compiled {
    scene: Scene,
    label: String,
    text: String,
    score: u8,
}

/// Every term of every dictionary, compiled for one pass over a transcript.
pub struct Matcher {
    terms: Vec<Compiled>,
    exact: Automaton,
    compact: Automaton,
    sound: Automaton,
}

/// An automaton and, per pattern, the term it belongs to.
struct Automaton {
    automaton: Option<AhoCorasick>,
    owners: Vec<usize>,
}

impl Automaton {
    fn build(patterns: Vec<(String, usize)>) -> Automaton {
        let owners = patterns.iter().map(|(_, owner)| *owner).collect();
        let automaton = (!patterns.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(patterns.iter().map(|(p, _)| p))
                .expect("patterns of a few hundred bytes build")
        });
        Automaton { automaton, owners }
    }

    /// (term, first token, last token) of every match in `text`, whose tokens start at `starts`
    /// (a spaced rendering's patterns begin with the separator before their first token: `lead`
    /// is 1 there).
    fn find(&self, text: &str, starts: &[usize], lead: usize) -> Vec<(usize, usize, usize)> {
        let Some(automaton) = &self.automaton else {
            return Vec::new();
        };
        let token_at = |pos: usize| starts.partition_point(|&s| s <= pos).checked_sub(1);
        automaton
            .find_overlapping_iter(text)
            .filter_map(|m| {
                let first = token_at(m.start() + lead)?;
                let last = token_at(m.end() - 1)?.max(first);
                Some((self.owners[m.pattern().as_usize()], first, last))
            })
            .collect()
    }
}

/// Seconds of transcript kept either side of a hit, for a person to read it in its sentence.
pub const CONTEXT_SECS: f64 = 5.0;

/// A term found in a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub scene: Scene,
    pub label: String,
    pub term: String,
    pub kind: HitKind,
    pub score: u8,
    /// The recognised words that matched, with their times.
    pub text: String,
    /// The recognised words around them ([`CONTEXT_SECS`] either side).
    pub context: String,
    pub start_secs: f64,
    pub end_secs: f64,
    pub confidence: f32,
}

/// A transcript's tokens, each with the word it came from, in the three renderings.
struct Rendered {
    word_of: Vec<usize>,
    spaced: String,
    spaced_starts: Vec<usize>,
    compact: String,
    compact_starts: Vec<usize>,
    sounded: String,
    sounded_starts: Vec<usize>,
}

fn render(words: &[Word]) -> Rendered {
    let mut out = Rendered {
        word_of: Vec::new(),
        spaced: " ".to_owned(),
        spaced_starts: Vec::new(),
        compact: String::new(),
        compact_starts: Vec::new(),
        sounded: " ".to_owned(),
        sounded_starts: Vec::new(),
    };
    for (w, word) in words.iter().enumerate() {
        for token in normalise::tokens(&word.text) {
            out.word_of.push(w);
            out.spaced_starts.push(out.spaced.len());
            out.spaced.push_str(&token);
            out.spaced.push(' ');
            out.compact_starts.push(out.compact.len());
            out.compact.push_str(&token);
            out.sounded_starts.push(out.sounded.len());
            out.sounded.push_str(&normalise::sound(&token));
            out.sounded.push(' ');
        }
    }
    out
}

fn spaced(tokens: &[String]) -> String {
    format!(" {} ", tokens.join(" "))
}

impl Matcher {
    /// Compiles every term of `dictionaries`.
    pub fn build(dictionaries: &[Dictionary]) -> Matcher {
        let mut terms = Vec::new();
        let (mut exact, mut compact, mut sound) = (Vec::new(), Vec::new(), Vec::new());
        for dictionary in dictionaries {
            for term in dictionary.terms.iter().filter(|t| !t.example) {
                let tokens = normalise::tokens(&term.text);
                if tokens.is_empty() {
                    continue;
                }
                let id = terms.len();
                terms.push(Compiled {
                    scene: dictionary.scene,
                    label: dictionary.label().to_owned(),
                    text: term.text.clone(),
                    score: dictionary.score_of(term),
                });
                exact.push((spaced(&tokens), id));
                if dictionary.mode != MatchMode::Fuzzy {
                    continue;
                }
                let chinese = tokens.iter().any(|t| t.chars().any(is_cjk));
                let joined: String = tokens.concat();
                // Run-together or split Latin words; short ones would be found inside others.
                if !chinese && joined.chars().count() >= 6 {
                    compact.push((joined, id));
                }
                let sounds: Vec<String> = tokens.iter().map(|t| normalise::sound(t)).collect();
                let sound_chars: usize = sounds.iter().map(String::len).sum();
                if (chinese && tokens.len() >= 2) || (!chinese && sound_chars >= 4) {
                    sound.push((spaced(&sounds), id));
                }
            }
        }
        Matcher {
            terms,
            exact: Automaton::build(exact),
            compact: Automaton::build(compact),
            sound: Automaton::build(sound),
        }
    }

    pub fn term_count(&self) -> usize {
        self.terms.len()
    }

    /// Up to `max_chars` of terms to prime the recogniser with (Whisper's initial prompt): it then
    /// spells them as the dictionaries do.
    pub fn prompt(&self, max_chars: usize) -> String {
        let mut prompt = String::new();
        for term in &self.terms {
            if prompt.len() + term.text.len() + 2 > max_chars {
                break;
            }
            if !prompt.is_empty() {
                prompt.push_str(", ");
            }
            prompt.push_str(&term.text);
        }
        prompt
    }

    /// Every term found in `words`, the best hit per term and place.
    pub fn find(&self, words: &[Word]) -> Vec<Hit> {
        let rendered = render(words);
        let mut found: BTreeMap<(usize, usize), (HitKind, usize)> = BTreeMap::new();
        let passes = [
            (
                &self.exact,
                &rendered.spaced,
                &rendered.spaced_starts,
                1,
                HitKind::Exact,
            ),
            (
                &self.compact,
                &rendered.compact,
                &rendered.compact_starts,
                0,
                HitKind::Fuzzy,
            ),
            (
                &self.sound,
                &rendered.sounded,
                &rendered.sounded_starts,
                1,
                HitKind::Fuzzy,
            ),
        ];
        for (automaton, text, starts, lead, kind) in passes {
            for (term, first, last) in automaton.find(text, starts, lead) {
                let (first, last) = (rendered.word_of[first], rendered.word_of[last]);
                let held = found.entry((term, first)).or_insert((kind, last));
                if kind > held.0 {
                    *held = (kind, last);
                }
            }
        }
        found
            .into_iter()
            .map(|((term, first), (kind, last))| {
                let compiled = &self.terms[term];
                let matched = &words[first..=last];
                let confidence =
                    matched.iter().map(|w| w.confidence).sum::<f32>() / matched.len() as f32;
                let text: Vec<&str> = matched.iter().map(|w| w.text.trim()).collect();
                let (from, to) = (matched[0].start_secs, matched[matched.len() - 1].end_secs);
                let context: Vec<&str> = words
                    .iter()
                    .filter(|w| {
                        w.end_secs > from - CONTEXT_SECS && w.start_secs < to + CONTEXT_SECS
                    })
                    .map(|w| w.text.trim())
                    .filter(|w| !w.is_empty())
                    .collect();
                Hit {
                    scene: compiled.scene,
                    label: compiled.label.clone(),
                    term: compiled.text.clone(),
                    kind,
                    score: hit_score(compiled.score, kind, confidence),
                    text: text.join(" "),
                    context: context.join(" "),
                    start_secs: matched[0].start_secs,
                    end_secs: matched[matched.len() - 1].end_secs,
                    confidence,
                }
            })
            .collect()
    }

    /// The transcript's verdict on `scenes`: per scene, [`scene_score`] of its hits, labelled by
    /// the best hit's dictionary, with a segment per hit (time, recognised text, term).
    pub fn verdict(&self, transcript: &Transcript, scenes: &[Scene]) -> Verdict {
        let mut verdict = Verdict::default();
        let hits = self.find(&transcript.words);
        for scene in scenes {
            let mut of_scene: Vec<&Hit> = hits.iter().filter(|h| h.scene == *scene).collect();
            if of_scene.is_empty() {
                continue;
            }
            of_scene.sort_by(|a, b| {
                b.score
                    .cmp(&a.score)
                    .then(a.start_secs.total_cmp(&b.start_secs))
            });
            let mut per_term: HashMap<&str, u8> = HashMap::new();
            for hit in &of_scene {
                let best = per_term.entry(hit.term.as_str()).or_default();
                *best = (*best).max(hit.score);
            }
            let scores: Vec<u8> = per_term.values().copied().collect();
            let segments = of_scene
                .iter()
                .take(20)
                .map(|hit| Segment {
                    offset_secs: hit.start_secs,
                    duration_secs: (hit.end_secs - hit.start_secs).max(0.0),
                    score: hit.score,
                    label: hit.label.clone(),
                    text: Some(hit.text.clone()),
                    term: Some(hit.term.clone()),
                    context: Some(hit.context.clone()),
                    ..Segment::default()
                })
                .collect();
            verdict.scenes.insert(
                *scene,
                SceneScore {
                    score: scene_score(&scores),
                    label: of_scene[0].label.clone(),
                    segments,
                },
            );
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::speech::dictionary::{Suggestion, Term};

    fn words(text: &str) -> Vec<Word> {
        text.split(' ')
            .enumerate()
            .map(|(i, w)| Word {
                text: w.to_owned(),
                start_secs: i as f64,
                end_secs: i as f64 + 0.8,
                confidence: 0.9,
            })
            .collect()
    }

    fn dictionary(name: &str, scene: Scene, mode: MatchMode, terms: &[&str]) -> Dictionary {
        Dictionary {
            name: name.to_owned(),
            scene,
            label: None,
            suggestion: Suggestion::Block,
            mode,
            terms: terms
                .iter()
                .map(|t| Term::words((*t).to_owned(), None))
                .collect(),
        }
    }

    #[test]
    fn bands_of_hits_and_scenes() {
        // (term score, kind, confidence, hit score)
        let hits = [
            (95, HitKind::Exact, 0.9, 95),
            (95, HitKind::Exact, 0.3, 80),
            (95, HitKind::Fuzzy, 0.9, 85),
            (75, HitKind::Exact, 0.9, 75),
            (75, HitKind::Fuzzy, 0.9, 75),
            (70, HitKind::Exact, 0.2, 70),
        ];
        for (term, kind, confidence, expected) in hits {
            assert_eq!(
                hit_score(term, kind, confidence),
                expected,
                "{term} {kind:?} {confidence}"
            );
        }
        // (best score per distinct term, scene score)
        let scenes: [(&[u8], u8); 7] = [
            (&[], 0),
            (&[95], 95),
            (&[95, 85], 98),
            (&[95, 95, 95], 100),
            (&[85], 85),
            (&[85, 80, 75], 90),
            (&[75, 70], 78),
        ];
        for (per_term, expected) in scenes {
            assert_eq!(scene_score(per_term), expected, "{per_term:?}");
        }
    }

    #[test]
    fn exact_terms_match_whole_words_at_their_time() {
        let matcher = Matcher::build(&[dictionary(
            "ads",
            Scene::Ads,
            MatchMode::Exact,
            &["car insurance", "50% off", "ass"],
        )]);
        let heard = words("Get fifty percent off your Car-Insurance today, class dismissed.");
        let hits = matcher.find(&heard);
        let found: Vec<(&str, HitKind, f64)> = hits
            .iter()
            .map(|h| (h.term.as_str(), h.kind, h.start_secs))
            .collect();
        assert_eq!(
            found,
            vec![
                ("car insurance", HitKind::Exact, 5.0),
                ("50% off", HitKind::Exact, 1.0),
            ]
        );
        let verdict = matcher.verdict(
            &Transcript {
                words: heard,
                ..Transcript::default()
            },
            &[Scene::Ads, Scene::Porn],
        );
        let ads = &verdict.scenes[&Scene::Ads];
        assert_eq!((ads.score, ads.label.as_str()), (98, "ads"));
        assert_eq!(ads.segments[0].text.as_deref(), Some("fifty percent off"));
        assert_eq!(ads.segments[0].term.as_deref(), Some("50% off"));
        assert!(!verdict.scenes.contains_key(&Scene::Porn));
    }

    #[test]
    fn fuzzy_terms_catch_split_words_and_misspellings_in_the_suspicious_band() {
        let exact = Matcher::build(&[dictionary(
            "a",
            Scene::Ads,
            MatchMode::Exact,
            &["insurance", "carinsurance"],
        )]);
        let fuzzy = Matcher::build(&[dictionary(
            "a",
            Scene::Ads,
            MatchMode::Fuzzy,
            &["insurance", "carinsurance"],
        )]);
        assert!(exact.find(&words("cheap insurence")).is_empty());
        let hits = exact.find(&words("car insurance deals"));
        assert!(hits.iter().all(|h| h.term == "insurance"), "{hits:?}");
        let hits = fuzzy.find(&words("cheap insurence"));
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].kind, hits[0].score), (HitKind::Fuzzy, 85));
        let hits = fuzzy.find(&words("car insurance deals"));
        let kinds: Vec<(&str, HitKind)> = hits.iter().map(|h| (h.term.as_str(), h.kind)).collect();
        assert!(
            kinds.contains(&("carinsurance", HitKind::Fuzzy)),
            "{kinds:?}"
        );
        assert!(kinds.contains(&("insurance", HitKind::Exact)), "{kinds:?}");
    }

    #[test]
    fn chinese_terms_match_traditional_text_and_homophones() {
        let matcher = Matcher::build(&[
            dictionary("gamble", Scene::Illegal, MatchMode::Exact, &["网上赌博"]),
            dictionary("wechat", Scene::Ads, MatchMode::Fuzzy, &["加微信"]),
        ]);
        // Traditional characters, as a recogniser may write them.
        let hits = matcher.find(&words("歡迎 來到 網上賭博 平台"));
        assert_eq!(hits.len(), 1);
        assert_eq!(
            (hits[0].term.as_str(), hits[0].kind, hits[0].start_secs),
            ("网上赌博", HitKind::Exact, 2.0)
        );
        // 薇 (wēi, rose) for 微 (wēi): the same toneless pinyin, "jia wei xin".
        let hits = matcher.find(&words("请 加薇信 咨询"));
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].kind, hits[0].score), (HitKind::Fuzzy, 85));
        assert_eq!(hits[0].text, "加薇信");
        // Exact mode does not hear homophones.
        let strict = Matcher::build(&[dictionary("w", Scene::Ads, MatchMode::Exact, &["加微信"])]);
        assert!(strict.find(&words("请 加薇信 咨询")).is_empty());
        assert_eq!(strict.find(&words("请 加微信 咨询")).len(), 1);
    }

    #[test]
    fn thousands_of_terms_in_one_pass() {
        let terms: Vec<String> = (0..5000).map(|i| format!("term{i} word")).collect();
        let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
        let matcher = Matcher::build(&[dictionary("big", Scene::Ads, MatchMode::Fuzzy, &refs)]);
        assert_eq!(matcher.term_count(), 5000);
        let hits = matcher.find(&words("say term4321 word now"));
        assert!(
            hits.iter()
                .any(|h| h.term == "term4321 word" && h.kind == HitKind::Exact)
        );
    }
}
