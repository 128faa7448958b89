//! BERT's uncased WordPiece tokenizer, as all-MiniLM-L6-v2's `tokenizer.json` describes it
//! (Hugging Face's `BertNormalizer`, `BertPreTokenizer` and `WordPiece`): clean the text,
//! space out CJK ideographs, lower-case and strip accents, split on whitespace and punctuation,
//! then cut each word into the longest pieces the vocabulary knows (`##` marks a piece that
//! continues a word). `tests/it/meaning.rs` checks the ids against the `tokenizers` package.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

/// A vocabulary and the ids of its special tokens.
pub struct Tokenizer {
    vocab: HashMap<String, u32>,
    unknown: u32,
    start: u32,
    end: u32,
}

/// Words longer than this are one unknown token, as WordPiece's `max_input_chars_per_word`.
const MAX_WORD_CHARS: usize = 100;

impl Tokenizer {
    /// Reads the vocabulary from a Hugging Face `tokenizer.json` of WordPiece type.
    ///
    /// # Errors
    /// The file is not such a tokenizer, or lacks `[UNK]`, `[CLS]` or `[SEP]`.
    pub fn from_json(json: &str) -> Result<Tokenizer, String> {
        #[derive(serde::Deserialize)]
        struct File {
            model: Model,
        }
        #[derive(serde::Deserialize)]
        struct Model {
            #[serde(rename = "type")]
            kind: String,
            vocab: HashMap<String, u32>,
        }
        let file: File = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if file.model.kind != "WordPiece" {
            return Err(format!("a {} tokenizer, not WordPiece", file.model.kind));
        }
        let vocab = file.model.vocab;
        let id = |token: &str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| format!("the vocabulary has no {token}"))
        };
        Ok(Tokenizer {
            unknown: id("[UNK]")?,
            start: id("[CLS]")?,
            end: id("[SEP]")?,
            vocab,
        })
    }

    /// The ids of `text` between `[CLS]` and `[SEP]`, at most `max` in all.
    pub fn encode(&self, text: &str, max: usize) -> Vec<u32> {
        let mut ids = vec![self.start];
        for word in words(&normalise(text)) {
            self.pieces(&word, &mut ids);
        }
        ids.truncate(max.max(2) - 1);
        ids.push(self.end);
        ids
    }

    fn pieces(&self, word: &str, ids: &mut Vec<u32>) {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        if chars.len() > MAX_WORD_CHARS {
            ids.push(self.unknown);
            return;
        }
        let mut found = Vec::new();
        let mut start = 0;
        let mut piece = String::new();
        while start < chars.len() {
            let begin = chars[start].0;
            let hit = (start + 1..=chars.len()).rev().find_map(|end| {
                let stop = chars.get(end).map_or(word.len(), |c| c.0);
                piece.clear();
                if start > 0 {
                    piece.push_str("##");
                }
                piece.push_str(&word[begin..stop]);
                self.vocab.get(&piece).map(|&id| (id, end))
            });
            let Some((id, end)) = hit else {
                ids.push(self.unknown);
                return;
            };
            found.push(id);
            start = end;
        }
        ids.extend(found);
    }
}

/// `BertNormalizer` with `clean_text`, `handle_chinese_chars` and `lowercase` (which strips
/// accents too when, as here, `strip_accents` is unset).
fn normalise(text: &str) -> String {
    let mut spaced = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\0' || c == '\u{fffd}' || is_control(c) {
            continue;
        }
        if c.is_whitespace() {
            spaced.push(' ');
        } else if is_ideograph(c) {
            spaced.push(' ');
            spaced.push(c);
            spaced.push(' ');
        } else {
            spaced.push(c);
        }
    }
    spaced
        .nfd()
        .filter(|&c| !unicode_normalization::char::is_combining_mark(c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `BertPreTokenizer`: words split at whitespace, each punctuation mark a word of its own.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for chunk in text.split(char::is_whitespace).filter(|w| !w.is_empty()) {
        let mut word = String::new();
        for c in chunk.chars() {
            if is_punctuation(c) {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                words.push(c.to_string());
            } else {
                word.push(c);
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
    }
    words
}

/// Unicode's "other" characters that speech transcripts can carry: controls (but tab and line
/// breaks, which are whitespace) and the invisible format characters.
fn is_control(c: char) -> bool {
    if matches!(c, '\t' | '\n' | '\r') {
        return false;
    }
    c.is_control()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}')
}

/// The CJK ideograph blocks BERT spaces out.
fn is_ideograph(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// ASCII's non-alphanumeric symbols (as BERT counts them) and Unicode's punctuation blocks:
/// general punctuation, CJK punctuation and the full-width forms of ASCII's.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c as u32, 0xA1 | 0xA7 | 0xAB | 0xB6 | 0xB7 | 0xBB | 0xBF
            | 0x2010..=0x2027 | 0x2030..=0x205E | 0x3001..=0x3003 | 0x3008..=0x3011
            | 0x3014..=0x301F | 0xFF01..=0xFF03 | 0xFF05..=0xFF0A | 0xFF0C..=0xFF0F
            | 0xFF1A | 0xFF1B | 0xFF1F | 0xFF20 | 0xFF3B..=0xFF3D | 0xFF3F | 0xFF5B | 0xFF5D
            | 0xFF5F..=0xFF65)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "cafe", ",", "中",
        ];
        let vocab: HashMap<String, u32> = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| ((*t).to_owned(), i as u32))
            .collect();
        let json = serde_json::json!({"model": {"type": "WordPiece", "vocab": vocab}});
        Tokenizer::from_json(&json.to_string()).expect("a tokenizer")
    }

    #[test]
    fn words_are_cut_into_the_longest_known_pieces() {
        let t = tiny();
        // [CLS] un ##aff ##able , cafe [UNK] 中 [SEP]: accents and case go, punctuation and each
        // ideograph stand alone, an unknown word is one [UNK].
        assert_eq!(
            t.encode("UnAffable, Café xyz中", 64),
            [2, 4, 5, 6, 8, 7, 1, 9, 3]
        );
        assert_eq!(t.encode("unaffable cafe cafe", 4), [2, 4, 5, 3]);
        assert_eq!(t.encode("", 8), [2, 3]);
    }
}
