//! What the `earshot` command runs (DESIGN §8), callable from tests and from the binary alike;
//! `main.rs` only parses arguments, calls these and maps a [`CommandError`] to an exit code.
//!
//! - [`serve`]: the configured sources, the admin listener, library refresh and the sweep, until
//!   SIGTERM (graceful drain);
//! - [`moderate`]: one local file or `s3://bucket/key`;
//! - [`library`]: the local engine's reference library (add, list, match, remove);
//! - [`replay`]: dead-lettered callbacks and parked jobs, run again;
//! - [`restore`]: undo blocks exactly;
//! - [`scan`]: moderate what is already stored;
//! - [`retro`]: search kept fingerprints for newly added references;
//! - [`review`]: human review from the command line;
//! - [`console`]: the review console alone, and `hash-password`.

pub mod console;
pub mod dictionary;
pub mod library;
pub mod moderate;
pub mod replay;
pub mod restore;
pub mod retro;
pub mod review;
pub mod scan;
pub mod serve;

use crate::config::ConfigError;

/// Why a command failed, as the exit code tells it.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The user's to fix in the arguments: exit code 2.
    #[error("{0}")]
    Usage(String),
    /// The user's to fix in the config: exit code 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The command ran and failed: exit code 1.
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Usage(_) | CommandError::Config(_) => 2,
            CommandError::Failed(_) => 1,
        }
    }

    /// A runtime failure, with what was being done.
    pub fn failed(doing: impl std::fmt::Display, error: impl std::fmt::Display) -> CommandError {
        CommandError::Failed(format!("{doing}: {error}"))
    }
}

/// Runtime failures of the stages, as command failures.
macro_rules! failed_from {
    ($($error:ty),+) => {
        $(impl From<$error> for CommandError {
            fn from(error: $error) -> CommandError {
                CommandError::Failed(error.to_string())
            }
        })+
    };
}

failed_from!(
    crate::pipeline::JobError,
    crate::state::StateError,
    crate::engines::EngineError,
    crate::engines::local::LibraryError,
    crate::fetch::FetchError,
    crate::audio::AudioError,
    std::io::Error,
    serde_json::Error
);

/// A point in time given on the command line: seconds since the epoch, an RFC 3339 time
/// (`2026-12-01T00:00:00Z`), or an age (`90s`, `30m`, `6h`, `7d`) before `now`.
///
/// # Errors
/// None of those.
pub fn parse_time(text: &str, now: u64) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    if let Some(unit) = text.chars().last().filter(char::is_ascii_alphabetic)
        && let Ok(n) = text[..text.len() - 1].parse::<u64>()
    {
        let scale = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("{text:?}: unknown unit {unit:?} (s, m, h, d)")),
        };
        return Ok(now.saturating_sub(n * scale));
    }
    aws_smithy_types::DateTime::from_str(text, aws_smithy_types::date_time::Format::DateTime)
        .map(|t| t.secs().max(0) as u64)
        .map_err(|_| {
            format!(
                "{text:?} is not a time: give seconds since 1970, RFC 3339, or an age like 6h or 7d"
            )
        })
}

/// Splits `s3://bucket/key` (the key may be empty).
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_owned(), key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_seconds_dates_or_ages() {
        let now = 1_800_000_000;
        let table = [
            ("1700000000", Ok(1_700_000_000)),
            ("2026-12-01T00:00:00Z", Ok(1_796_083_200)),
            ("90s", Ok(now - 90)),
            ("6h", Ok(now - 6 * 3600)),
            ("7d", Ok(now - 7 * 86_400)),
        ];
        for (text, want) in table {
            assert_eq!(parse_time(text, now), want, "{text}");
        }
        for bad in ["yesterday", "5w", ""] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn s3_urls_split_into_bucket_and_key() {
        let table = [
            ("s3://b/k.mp3", Some(("b", "k.mp3"))),
            ("s3://b/a/b c.mp3", Some(("b", "a/b c.mp3"))),
            ("s3://b", Some(("b", ""))),
            ("s3:///k", None),
            ("/tmp/x.mp3", None),
        ];
        for (url, expected) in table {
            let parsed = parse_s3_url(url);
            assert_eq!(
                parsed.as_ref().map(|(b, k)| (b.as_str(), k.as_str())),
                expected,
                "{url}"
            );
        }
    }
}
