//! Which rule, if any, governs a key (DESIGN §3): bucket, prefix scope, case-insensitive suffix.
//! Keys under the backup directory are never moderated, so blocking never loops. A validated
//! [`RuleConfig`] becomes a [`Rule`], what the pipeline runs by.

use std::collections::BTreeSet;

use crate::config::{BlockConfig, CallbackConfig, OnEngineError, RetroConfig, RuleConfig};
use crate::layout;
use crate::model::Scene;
use crate::scope::Pattern;

/// One rule, as the pipeline runs it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub bucket: String,
    /// Key prefix in scope; `""` is the whole bucket (wildcards allowed).
    pub prefix: String,
    scope: Pattern,
    /// Prefixes within the scope that the rule leaves alone.
    exclude: Vec<Pattern>,
    /// Lowercase, without the dot.
    pub suffixes: BTreeSet<String>,
    pub scenes: Vec<Scene>,
    /// The engines asked, in order; per scene the highest score wins.
    pub engines: Vec<String>,
    pub on_engine_error: OnEngineError,
    pub block: BlockConfig,
    pub callback: Option<CallbackConfig>,
    pub retro: RetroConfig,
}

impl From<&RuleConfig> for Rule {
    fn from(config: &RuleConfig) -> Rule {
        Rule {
            id: config.id.clone(),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            scope: Pattern::new(&config.prefix),
            exclude: config.exclude.iter().map(|e| Pattern::new(e)).collect(),
            suffixes: config.suffix_set(),
            scenes: config.scenes.clone(),
            engines: config.engine.names().to_vec(),
            on_engine_error: config.on_engine_error,
            block: config.block.clone(),
            callback: config.callback.clone(),
            retro: config.retro,
        }
    }
}

impl Rule {
    /// Whether `key` is in the rule's scope (prefix and exclusions; the suffix aside).
    pub fn covers(&self, key: &str) -> bool {
        self.scope.covers(key) && !self.exclude.iter().any(|e| e.covers(key))
    }

    /// Whether the rule's callback asks for segments (`callback.detail`).
    pub fn detail(&self) -> bool {
        self.callback.as_ref().is_some_and(|c| c.detail)
    }
}

/// Why a key is not moderated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    BackupDirectory,
    NoRule,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::BackupDirectory => {
                write!(
                    f,
                    "key is under {}, which is never moderated",
                    layout::BACKUP_ROOT
                )
            }
            Skip::NoRule => write!(f, "no rule covers this bucket, prefix and suffix"),
        }
    }
}

/// The configured rules, in order.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    pub fn new(rules: &[RuleConfig]) -> Rules {
        Rules {
            rules: rules.iter().map(Rule::from).collect(),
        }
    }

    /// The rule for `bucket`/`key`. Validation guarantees at most one matches.
    pub fn find(&self, bucket: &str, key: &str) -> Result<&Rule, Skip> {
        if layout::is_reserved(key) {
            return Err(Skip::BackupDirectory);
        }
        let suffix = key_suffix(key);
        self.rules
            .iter()
            .find(|rule| {
                rule.bucket == bucket
                    && rule.covers(key)
                    && suffix.as_ref().is_some_and(|s| rule.suffixes.contains(s))
            })
            .ok_or(Skip::NoRule)
    }

    pub fn by_id(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.id == id)
    }

    /// Every rule, in order.
    pub fn all(&self) -> &[Rule] {
        &self.rules
    }

    /// The buckets the rules watch, each once.
    pub fn buckets(&self) -> BTreeSet<&str> {
        self.rules.iter().map(|rule| rule.bucket.as_str()).collect()
    }
}

/// The lowercase suffix of a key's last path segment, if it has one.
pub fn key_suffix(key: &str) -> Option<String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let (stem, suffix) = name.rsplit_once('.')?;
    (!stem.is_empty() && !suffix.is_empty()).then(|| suffix.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn rules() -> Rules {
        let config = Config::from_toml_str(
            r#"
            [[rules]]
            id = "podcasts"
            bucket = "media"
            prefix = "audio/"
            suffixes = ["mp3", "WAV"]
            [[rules]]
            id = "all-of-voice"
            bucket = "voice"
            exclude = ["drafts/", "users/*/private/"]
        "#,
        )
        .expect("valid");
        Rules::new(&config.rules)
    }

    #[test]
    fn keys_find_their_rule() {
        let rules = rules();
        let cases: &[(&str, &str, Result<&str, Skip>)] = &[
            ("media", "audio/a.mp3", Ok("podcasts")),
            ("media", "audio/A.MP3", Ok("podcasts")),
            ("media", "audio/deep/x.wav", Ok("podcasts")),
            ("media", "audio/a.flac", Err(Skip::NoRule)),
            ("media", "video/a.mp3", Err(Skip::NoRule)),
            ("media", "audio/mp3", Err(Skip::NoRule)),
            ("media", "audio/.mp3", Err(Skip::NoRule)),
            ("other", "audio/a.mp3", Err(Skip::NoRule)),
            ("voice", "x/y/z.ogg", Ok("all-of-voice")),
            ("voice", "x/y/z.txt", Err(Skip::NoRule)),
            ("voice", "notes.Ape", Ok("all-of-voice")),
            ("voice", "drafts/a.mp3", Err(Skip::NoRule)),
            ("voice", "users/7/private/a.mp3", Err(Skip::NoRule)),
            ("voice", "users/7/public/a.mp3", Ok("all-of-voice")),
            (
                "voice",
                "audit_freeze_backup/increment_audit/a.mp3",
                Err(Skip::BackupDirectory),
            ),
        ];
        for (bucket, key, want) in cases {
            let got = rules.find(bucket, key).map(|rule| rule.id.as_str());
            assert_eq!(&got, want, "{bucket}/{key}");
        }
    }
}
