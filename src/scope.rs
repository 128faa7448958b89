//! Key scopes as COS has them (DESIGN §3): a rule's `prefix` and its `exclude` entries are key
//! prefixes that may hold wildcards. `?` is one character and `*` any run of characters, neither
//! crossing a `/`; `**` is any run, `/` included. A scope covers a key when the pattern matches the
//! key's beginning: `users/*/voice/` covers `users/42/voice/a.mp3`, not `users/42/music/a.mp3`.
//!
//! [`Pattern::may_share_key`] decides whether two scopes can cover one key (for the overlap check
//! of the config): a product of the two patterns' automata, searched to the end of either.
//! A leaf: it imports nothing of the crate.

use std::collections::{BTreeSet, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Segment,
    /// `**`
    Any,
}

/// A key-prefix pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    tokens: Vec<Token>,
}

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '?' => Token::One,
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    Token::Any
                }
                '*' => Token::Segment,
                c => Token::Char(c),
            });
        }
        Pattern {
            text: text.to_owned(),
            tokens,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern has wildcards (else it is a plain prefix).
    pub fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Char(_)))
    }

    /// The characters before the first wildcard: every covered key starts with them.
    pub fn literal_prefix(&self) -> String {
        self.tokens
            .iter()
            .map_while(|t| match t {
                Token::Char(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// Whether the pattern matches the beginning of `key`.
    pub fn covers(&self, key: &str) -> bool {
        if self.is_literal() {
            return key.starts_with(&self.text);
        }
        let mut states = self.closure(BTreeSet::from([0]));
        for c in key.chars() {
            if states.contains(&self.tokens.len()) {
                return true;
            }
            states = self.closure(
                states
                    .iter()
                    .flat_map(|&i| self.step(i, c))
                    .collect::<BTreeSet<_>>(),
            );
            if states.is_empty() {
                return false;
            }
        }
        states.contains(&self.tokens.len())
    }

    /// Whether some key is covered by both patterns.
    pub fn may_share_key(&self, other: &Pattern) -> bool {
        // Characters that can tell the patterns apart: theirs, `/`, and one neither names.
        let mut alphabet: BTreeSet<char> = [&self.tokens, &other.tokens]
            .into_iter()
            .flatten()
            .filter_map(|t| match t {
                Token::Char(c) => Some(*c),
                _ => None,
            })
            .collect();
        alphabet.insert('/');
        alphabet.insert('\u{E000}');
        let start = (
            self.closure(BTreeSet::from([0])),
            other.closure(BTreeSet::from([0])),
        );
        let mut seen = BTreeSet::from([start.clone()]);
        let mut queue = VecDeque::from([start]);
        while let Some((a, b)) = queue.pop_front() {
            if a.contains(&self.tokens.len()) || b.contains(&other.tokens.len()) {
                return true;
            }
            for &c in &alphabet {
                let next_a = self.closure(a.iter().flat_map(|&i| self.step(i, c)).collect());
                let next_b = other.closure(b.iter().flat_map(|&i| other.step(i, c)).collect());
                if next_a.is_empty() || next_b.is_empty() {
                    continue;
                }
                let pair = (next_a, next_b);
                if seen.insert(pair.clone()) {
                    queue.push_back(pair);
                }
            }
        }
        false
    }

    /// The positions reached from position `i` by reading `c`.
    fn step(&self, i: usize, c: char) -> Vec<usize> {
        match self.tokens.get(i) {
            None => Vec::new(),
            Some(Token::Char(t)) if *t == c => vec![i + 1],
            Some(Token::Char(_)) => Vec::new(),
            Some(Token::One) if c != '/' => vec![i + 1],
            Some(Token::One) => Vec::new(),
            Some(Token::Segment) if c != '/' => vec![i],
            Some(Token::Segment) => Vec::new(),
            Some(Token::Any) => vec![i],
        }
    }

    /// The positions reachable without reading (a `*` or `**` may match nothing).
    fn closure(&self, mut states: BTreeSet<usize>) -> BTreeSet<usize> {
        let mut stack: Vec<usize> = states.iter().copied().collect();
        while let Some(i) = stack.pop() {
            if matches!(self.tokens.get(i), Some(Token::Segment | Token::Any))
                && states.insert(i + 1)
            {
                stack.push(i + 1);
            }
        }
        states
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_cover_the_keys_they_should() {
        let table: &[(&str, &str, bool)] = &[
            ("", "a.mp3", true),
            ("audio/", "audio/a.mp3", true),
            ("audio/", "audios/a.mp3", false),
            ("users/*/voice/", "users/42/voice/a.mp3", true),
            ("users/*/voice/", "users/42/music/a.mp3", false),
            ("users/*/voice/", "users/4/2/voice/a.mp3", false),
            ("users/**/voice/", "users/4/2/voice/a.mp3", true),
            ("users/*/voice/", "users//voice/a.mp3", true),
            ("clip-??/", "clip-07/a.mp3", true),
            ("clip-??/", "clip-7/a.mp3", false),
            ("*.tmp/", "x.tmp/a.mp3", true),
            ("a*", "b", false),
        ];
        for (pattern, key, want) in table {
            assert_eq!(Pattern::new(pattern).covers(key), *want, "{pattern} {key}");
        }
    }

    #[test]
    fn two_patterns_share_a_key_only_when_one_key_matches_both() {
        let table: &[(&str, &str, bool)] = &[
            ("audio/", "audio/kids/", true),
            ("audio/", "video/", false),
            ("", "anything/", true),
            ("users/*/voice/", "users/*/music/", false),
            ("users/*/voice/", "users/42/", true),
            ("users/*/voice/", "users/42/music/", false),
            ("users/**/voice/", "users/*/music/", true),
            ("users/?/", "users/ab/", false),
            ("users/?/", "users/a", true),
            ("*/voice/", "audio/", true),
        ];
        for (a, b, want) in table {
            let (a, b) = (Pattern::new(a), Pattern::new(b));
            assert_eq!(a.may_share_key(&b), *want, "{a:?} {b:?}");
            assert_eq!(b.may_share_key(&a), *want, "symmetric: {a:?} {b:?}");
        }
    }
}
