//! Which rule, if any, governs a key (DESIGN §3): bucket, prefix scope, case-insensitive suffix.
//! Keys under the backup directory are never moderated, so blocking never loops.

use crate::config::{RuleConfig, SUPPORTED_SUFFIXES};

/// Everything earshot writes into a bucket lives under this prefix.
pub const BACKUP_ROOT: &str = "audit_freeze_backup/";

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
                write!(f, "key is under {BACKUP_ROOT}, which is never moderated")
            }
            Skip::NoRule => write!(f, "no rule covers this bucket, prefix and suffix"),
        }
    }
}

/// The configured rules, in order.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<RuleConfig>,
}

impl Rules {
    pub fn new(rules: Vec<RuleConfig>) -> Rules {
        Rules { rules }
    }

    /// The rule for `bucket`/`key`. Validation guarantees at most one matches.
    pub fn find(&self, bucket: &str, key: &str) -> Result<&RuleConfig, Skip> {
        if key.starts_with(BACKUP_ROOT) {
            return Err(Skip::BackupDirectory);
        }
        let suffix = key_suffix(key);
        self.rules
            .iter()
            .find(|rule| {
                rule.bucket == bucket
                    && key.starts_with(&rule.prefix)
                    && suffix.as_deref().is_some_and(|s| suffix_allowed(rule, s))
            })
            .ok_or(Skip::NoRule)
    }

    pub fn by_id(&self, id: &str) -> Option<&RuleConfig> {
        self.rules.iter().find(|rule| rule.id == id)
    }
}

/// The lowercase suffix of a key's last path segment, if it has one.
pub fn key_suffix(key: &str) -> Option<String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let (stem, suffix) = name.rsplit_once('.')?;
    (!stem.is_empty() && !suffix.is_empty()).then(|| suffix.to_ascii_lowercase())
}

fn suffix_allowed(rule: &RuleConfig, suffix: &str) -> bool {
    if rule.suffixes.is_empty() {
        return SUPPORTED_SUFFIXES.contains(&suffix);
    }
    rule.suffixes
        .iter()
        .any(|s| s.trim_start_matches('.').eq_ignore_ascii_case(suffix))
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
        "#,
        )
        .expect("valid");
        Rules::new(config.rules)
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
