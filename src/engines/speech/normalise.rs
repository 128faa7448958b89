//! Text as the dictionaries compare it: a word becomes tokens (Latin words, each Chinese
//! character apart) after traditional Chinese becomes simplified, case is folded, punctuation
//! separates, and numbers are spelled out ("50%" is "fifty percent"), so a term matches however
//! the recogniser wrote it. Fuzzy matching adds two renderings: [`sound`] (toneless pinyin for
//! Chinese, a consonant skeleton for Latin words) and the tokens run together (split words).

use pinyin::ToPinyin;

/// The tokens of one recognised word (or of a dictionary term).
pub fn tokens(text: &str) -> Vec<String> {
    let simplified = fast2s::convert(text).to_lowercase();
    let chars: Vec<char> = simplified.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut digits = String::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(std::mem::take(word));
        }
    };
    let flush_digits = |digits: &mut String, out: &mut Vec<String>| {
        if !digits.is_empty() {
            spell_number(digits, out);
            digits.clear();
        }
    };
    for (i, &c) in chars.iter().enumerate() {
        let between_digits = |c: char| {
            i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                && (c == ',' || c == '.')
        };
        if c.is_ascii_digit() {
            flush_word(&mut word, &mut out);
            digits.push(c);
        } else if between_digits(c) {
            // 1,000 is one number; 3.5 is "three point five".
            if c == '.' {
                flush_digits(&mut digits, &mut out);
                out.push("point".to_owned());
            }
        } else if is_cjk(c) {
            flush_word(&mut word, &mut out);
            flush_digits(&mut digits, &mut out);
            out.push(c.to_string());
        } else if c.is_alphanumeric() {
            flush_digits(&mut digits, &mut out);
            word.push(c);
        } else if c == '\'' || c == '’' {
            // don't = dont
        } else {
            flush_word(&mut word, &mut out);
            flush_digits(&mut digits, &mut out);
            match c {
                '%' => out.push("percent".to_owned()),
                '&' => out.push("and".to_owned()),
                _ => {}
            }
        }
    }
    flush_word(&mut word, &mut out);
    flush_digits(&mut digits, &mut out);
    out
}

pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2EBEF)
}

/// A token as it sounds: toneless pinyin for a Chinese character, for a Latin word its first
/// letter and then its consonants with look-alike spellings merged ("insurence" and "insurance"
/// sound the same).
pub fn sound(token: &str) -> String {
    let mut chars = token.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    if chars.as_str().is_empty() && is_cjk(first) {
        return first
            .to_pinyin()
            .map_or_else(|| token.to_owned(), |p| p.plain().to_owned());
    }
    let spelled = token
        .replace("ph", "f")
        .replace("ck", "k")
        .replace(['c', 'q'], "k")
        .replace('z', "s")
        .replace('x', "ks");
    let mut out = String::new();
    for (i, c) in spelled.chars().enumerate() {
        let vowel = matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y' | 'h' | 'w');
        if i > 0 && vowel {
            continue;
        }
        if out.ends_with(c) {
            continue;
        }
        out.push(c);
    }
    out
}

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// Spells a run of digits in English words; past the billions, or with a leading zero (a phone
/// number, a code), digit by digit.
fn spell_number(digits: &str, out: &mut Vec<String>) {
    let value = digits
        .parse::<u64>()
        .ok()
        .filter(|v| *v < 1_000_000_000_000);
    match value {
        Some(value) if !(digits.len() > 1 && digits.starts_with('0')) => {
            if value == 0 {
                out.push("zero".to_owned());
            } else {
                spell_below_trillion(value, out);
            }
        }
        _ => {
            for d in digits.bytes() {
                out.push(ONES[usize::from(d - b'0')].to_owned());
            }
        }
    }
}

fn spell_below_trillion(value: u64, out: &mut Vec<String>) {
    let groups = [
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ];
    let mut rest = value;
    for (size, name) in groups {
        if rest >= size {
            spell_below_thousand(rest / size, out);
            out.push(name.to_owned());
            rest %= size;
        }
    }
    if rest > 0 {
        spell_below_thousand(rest, out);
    }
}

fn spell_below_thousand(value: u64, out: &mut Vec<String>) {
    let hundreds = value / 100;
    let rest = usize::try_from(value % 100).expect("below 100");
    if hundreds > 0 {
        out.push(ONES[usize::try_from(hundreds).expect("below 10")].to_owned());
        out.push("hundred".to_owned());
    }
    if rest >= 20 {
        out.push(TENS[rest / 10].to_owned());
        if rest % 10 > 0 {
            out.push(ONES[rest % 10].to_owned());
        }
    } else if rest > 0 {
        out.push(ONES[rest].to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_comparable_tokens() {
        let table = [
            ("Call NOW!", vec!["call", "now"]),
            ("50%", vec!["fifty", "percent"]),
            ("1,250", vec!["one", "thousand", "two", "hundred", "fifty"]),
            ("3.5", vec!["three", "point", "five"]),
            ("007", vec!["zero", "zero", "seven"]),
            ("don't", vec!["dont"]),
            ("car-insurance", vec!["car", "insurance"]),
            ("網上賭博", vec!["网", "上", "赌", "博"]),
            (
                "加V信123",
                vec!["加", "v", "信", "one", "hundred", "twenty", "three"],
            ),
        ];
        for (text, expected) in table {
            assert_eq!(tokens(text), expected, "{text}");
        }
    }

    #[test]
    fn sounds_merge_homophones_and_misspellings() {
        let same = [
            ("微", "薇"),
            ("insurance", "insurence"),
            ("phone", "fone"),
            ("casino", "kasino"),
        ];
        for (a, b) in same {
            assert_eq!(sound(a), sound(b), "{a} / {b}");
        }
        assert_eq!(sound("微"), "wei");
        assert_ne!(sound("casino"), sound("cinema"));
    }
}
