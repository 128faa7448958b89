//! Keyword dictionaries, as the vendors' consoles define them (Tencent AMS/IMS "custom
//! dictionary"): a named list of terms for one scene, with a handling suggestion (`block`:
//! non-compliant, `review`: suspected) and a match mode (`exact`, or `fuzzy`: split words,
//! homophones, look-alike spellings, case and numbers). Each dictionary is one JSON file,
//! `<name>.json`, in a directory or under an S3 prefix, reloaded like the library.
//!
//! [`super::matcher::Matcher`] compiles them for one pass over a transcript.

use serde::{Deserialize, Serialize};

use super::normalise::{self};
use crate::engines::folder::{Folder, FolderError};
use crate::model::Scene;

/// What a hit on a dictionary's terms means, as the vendors' consoles name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Suggestion {
    /// Non-compliant: a confident exact hit blocks (terms score 95 unless they say otherwise).
    #[default]
    Block,
    /// Suspected: a hit asks for a person (terms score 75 unless they say otherwise).
    Review,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    /// The term's words, in order, as whole words (after normalisation).
    #[default]
    Exact,
    /// Also split or run-together words, homophones (toneless pinyin), look-alike spellings.
    Fuzzy,
}

/// One term; in a file, a plain string, `{ "text": …, "score": … }`, or an example sentence,
/// `{ "example": …, "score": … }`, heard by what it means rather than by its words (when the
/// speech engine has `[engines.<name>.meaning]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TermSpec", into = "TermSpec")]
pub struct Term {
    pub text: String,
    /// 1–100: how sure a hit of this term is non-compliant; the suggestion's default when absent.
    pub score: Option<u8>,
    /// An example sentence, matched by meaning, not a term matched by its words.
    pub example: bool,
}

impl Term {
    /// A term matched by its words.
    pub fn words(text: String, score: Option<u8>) -> Term {
        Term {
            text,
            score,
            example: false,
        }
    }

    /// An example sentence, matched by meaning.
    pub fn example(text: String, score: Option<u8>) -> Term {
        Term {
            text,
            score,
            example: true,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum TermSpec {
    Text(String),
    Full {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<u8>,
    },
    Example {
        example: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<u8>,
    },
}

impl From<TermSpec> for Term {
    fn from(spec: TermSpec) -> Self {
        match spec {
            TermSpec::Text(text) => Term::words(text, None),
            TermSpec::Full { text, score } => Term::words(text, score),
            TermSpec::Example { example, score } => Term::example(example, score),
        }
    }
}

impl From<Term> for TermSpec {
    fn from(term: Term) -> Self {
        match term {
            Term {
                text,
                score,
                example: false,
            } => TermSpec::Full { text, score },
            Term {
                text: example,
                score,
                example: true,
            } => TermSpec::Example { example, score },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dictionary {
    /// Up to 32 letters, digits and underscores; the file is `<name>.json`.
    pub name: String,
    pub scene: Scene,
    /// The label hits report; the dictionary's name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default)]
    pub suggestion: Suggestion,
    #[serde(rename = "match", default)]
    pub mode: MatchMode,
    pub terms: Vec<Term>,
}

/// The longest term, in characters.
pub const MAX_TERM_CHARS: usize = 64;
/// The longest example sentence, in characters.
pub const MAX_EXAMPLE_CHARS: usize = 256;

impl Dictionary {
    /// The reasons this dictionary cannot be used, if any.
    ///
    /// # Errors
    /// A bad name, an empty or overlong term, a term of no words, or a score outside 1–100.
    pub fn check(&self) -> Result<(), String> {
        check_name(&self.name)?;
        for term in &self.terms {
            let chars = term.text.chars().count();
            let (what, max) = match term.example {
                false => ("term", MAX_TERM_CHARS),
                true => ("example", MAX_EXAMPLE_CHARS),
            };
            if chars == 0 || chars > max {
                return Err(format!("{what} {:?}: 1 to {max} characters", term.text));
            }
            if normalise::tokens(&term.text).is_empty() {
                return Err(format!("{what} {:?} has no words to match", term.text));
            }
            if term.score.is_some_and(|s| !(1..=100).contains(&s)) {
                return Err(format!("{what} {:?}: score must be 1 to 100", term.text));
            }
        }
        Ok(())
    }

    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// A term's score: its own, or its dictionary's suggestion's.
    pub fn score_of(&self, term: &Term) -> u8 {
        term.score.unwrap_or(match self.suggestion {
            Suggestion::Block => 95,
            Suggestion::Review => 75,
        })
    }
}

/// # Errors
/// The name is empty, longer than 32, or has characters other than letters, digits and `_`.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "dictionary name {name:?}: 1 to 32 letters, digits and underscores"
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DictionaryError {
    #[error("dictionaries {0}")]
    Io(#[from] FolderError),
    #[error("dictionary {location} is not valid: {message}")]
    Bad { location: String, message: String },
}

/// Where dictionaries are kept: `<name>.json` files in a directory or under an S3 prefix.
#[derive(Debug, Clone)]
pub struct DictionaryStore {
    folder: Folder,
}

impl DictionaryStore {
    /// A directory path, or `s3://bucket/prefix/`.
    pub fn open(location: &str, s3: &aws_sdk_s3::Client) -> DictionaryStore {
        DictionaryStore {
            folder: Folder::open(location, "", s3),
        }
    }

    pub fn location(&self) -> String {
        self.folder.location()
    }

    /// Every dictionary, by name.
    ///
    /// # Errors
    /// The store cannot be read, or a file is not a valid dictionary.
    pub async fn list(&self) -> Result<Vec<Dictionary>, DictionaryError> {
        let mut out = Vec::new();
        for (name, _) in self.folder.listing().await? {
            if !name.ends_with(".json") {
                continue;
            }
            if let Some((location, bytes)) = self.folder.read(&name).await? {
                out.push(parse(&location, &bytes)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// # Errors
    /// The store cannot be read, or the file is not a valid dictionary.
    pub async fn get(&self, name: &str) -> Result<Option<Dictionary>, DictionaryError> {
        match self.folder.read(&format!("{name}.json")).await? {
            Some((location, bytes)) => Ok(Some(parse(&location, &bytes)?)),
            None => Ok(None),
        }
    }

    /// A summary that changes when any dictionary does.
    ///
    /// # Errors
    /// The store cannot be listed.
    pub async fn signature(&self) -> Result<Vec<String>, DictionaryError> {
        Ok(self.folder.signature().await?)
    }

    /// # Errors
    /// The dictionary is not valid, or the store cannot be written.
    pub async fn put(&self, dictionary: &Dictionary) -> Result<(), DictionaryError> {
        dictionary.check().map_err(|message| DictionaryError::Bad {
            location: format!("{}{}.json", self.location(), dictionary.name),
            message,
        })?;
        let body = serde_json::to_vec_pretty(dictionary).expect("a dictionary serialises");
        let name = format!("{}.json", dictionary.name);
        Ok(self.folder.write(&name, body, "application/json").await?)
    }

    /// Removes a dictionary; false when there was none.
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn remove(&self, name: &str) -> Result<bool, DictionaryError> {
        let file = format!("{name}.json");
        if !self.folder.exists(&file).await? {
            return Ok(false);
        }
        self.folder.delete(&file).await?;
        Ok(true)
    }
}

fn parse(location: &str, bytes: &[u8]) -> Result<Dictionary, DictionaryError> {
    let bad = |message: String| DictionaryError::Bad {
        location: location.to_owned(),
        message,
    };
    let dictionary: Dictionary = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    dictionary.check().map_err(bad)?;
    Ok(dictionary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_take_plain_strings_or_scored_terms_and_are_checked() {
        let json = r#"{"name": "ads_1", "scene": "ads", "match": "fuzzy", "suggestion": "review",
            "terms": ["call now", {"text": "free money", "score": 92}]}"#;
        let dictionary: Dictionary = serde_json::from_str(json).expect("parses");
        assert_eq!(dictionary.score_of(&dictionary.terms[0]), 75);
        assert_eq!(dictionary.score_of(&dictionary.terms[1]), 92);
        assert!(dictionary.check().is_ok());
        let mut bad = dictionary.clone();
        bad.name = "has space".to_owned();
        assert!(bad.check().is_err());
        let mut bad = dictionary;
        bad.terms[0].text = "!!!".to_owned();
        assert!(bad.check().unwrap_err().contains("no words"));
    }

    #[test]
    fn example_sentences_sit_beside_terms_and_keep_their_form() {
        let json = r#"{"name": "scams", "scene": "ads", "terms": ["lottery",
            {"example": "send your bank details to claim your prize", "score": 80}]}"#;
        let dictionary: Dictionary = serde_json::from_str(json).expect("parses");
        assert!(!dictionary.terms[0].example);
        assert!(dictionary.terms[1].example);
        assert_eq!(dictionary.score_of(&dictionary.terms[1]), 80);
        assert!(dictionary.check().is_ok());
        let written = serde_json::to_value(&dictionary).expect("serialises");
        assert_eq!(written["terms"][0], serde_json::json!({"text": "lottery"}));
        assert_eq!(
            written["terms"][1],
            serde_json::json!({"example": "send your bank details to claim your prize", "score": 80})
        );
        let again: Dictionary = serde_json::from_value(written).expect("reads back");
        assert_eq!(again, dictionary);
        // An example may be longer than a term, but not without bound.
        let mut long = dictionary;
        long.terms[1].text = "word ".repeat(40);
        assert!(long.check().is_ok());
        long.terms[1].text = "word ".repeat(60);
        assert!(long.check().unwrap_err().contains("example"));
    }
}
