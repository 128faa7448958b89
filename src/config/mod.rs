//! Configuration (DESIGN §7): built-in defaults → a TOML file → `EARSHOT_…` environment variables
//! (nested keys joined by `__`), merged by figment, then validated into a [`Config`].
//!
//! Parse errors come from figment and name the key and the file; the checks serde cannot express
//! (score range, suffix list, engine references, overlapping rules) are made in [`Config::validate`]
//! and name the key and the file the same way.

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::model::Scene;

mod console;
mod engines;
mod sources;
mod validate;

pub use console::{ConsoleConfig, ConsoleUserConfig, ProxyAuthConfig, Role};
pub use sources::{
    AdminConfig, MinioWebhookConfig, SnsWebhookConfig, SourcesConfig, SqsConfig, WebhookConfig,
};

pub use engines::{
    AbuseClassifierConfig, AmsEngineConfig, EngineConfig, HttpEngineConfig, LocalEngineConfig,
    MeaningConfig, ShumeiEngineConfig, SpeechEngineConfig,
};

/// Where a config file is looked for when neither `--config` nor `EARSHOT_CONFIG` names one.
pub const DEFAULT_CONFIG_PATH: &str = "config/earshot.toml";

/// The audio suffixes a rule may name (COS's list).
pub const SUPPORTED_SUFFIXES: [&str; 10] = [
    "mp3", "wav", "aac", "flac", "amr", "3gp", "m4a", "wma", "ogg", "ape",
];

/// What a secret is replaced with when the config is printed.
const REDACTED: &str = "<redacted>";

/// The whole configuration as parsed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub s3: S3Config,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub engines: BTreeMap<String, EngineConfig>,
    #[serde(default)]
    pub sources: SourcesConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub async_jobs: AsyncJobsConfig,
    /// The review console (`earshot serve`, or `earshot console` alone).
    pub console: Option<ConsoleConfig>,
}

impl Default for Config {
    fn default() -> Self {
        let mut engines = BTreeMap::new();
        engines.insert(
            "local".to_owned(),
            EngineConfig::Local(LocalEngineConfig {
                library: "./library".to_owned(),
                refresh_secs: engines::default_refresh(),
            }),
        );
        Config {
            s3: S3Config::default(),
            rules: Vec::new(),
            engines,
            sources: SourcesConfig::default(),
            limits: LimitsConfig::default(),
            admin: AdminConfig::default(),
            async_jobs: AsyncJobsConfig::default(),
            console: None,
        }
    }
}

/// How S3 is reached. Omit `endpoint_url` for AWS; credentials come from the AWS default chain
/// unless given here (MinIO, LocalStack).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    #[serde(default)]
    pub force_path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// One moderation rule (DESIGN §3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub id: String,
    pub bucket: String,
    /// Key prefix in scope; `""` is the whole bucket. May hold wildcards: `?` and `*` within a
    /// path segment, `**` across segments ([`crate::scope`]).
    #[serde(default)]
    pub prefix: String,
    /// Key prefixes (wildcards allowed) within the scope that this rule leaves alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Case-insensitive suffixes without the dot; empty means all supported formats.
    #[serde(default)]
    pub suffixes: Vec<String>,
    #[serde(default = "default_scenes")]
    pub scenes: Vec<Scene>,
    /// One engine's name, or several (`["local", "ams"]`): per scene the highest score wins.
    #[serde(default = "default_engine")]
    pub engine: EngineNames,
    /// What happens when an engine cannot judge (down, throttled past its retries, no result by
    /// its deadline).
    #[serde(default)]
    pub on_engine_error: OnEngineError,
    #[serde(default)]
    pub block: BlockConfig,
    pub callback: Option<CallbackConfig>,
    /// Retro-hunt: keep the fingerprint of every object judged, so that references added later
    /// find earlier uploads without reading them again.
    #[serde(default, skip_serializing_if = "RetroConfig::is_off")]
    pub retro: RetroConfig,
}

/// `retro = { keep = true, auto = true }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetroConfig {
    /// Keep the landmark fingerprint of every object this rule judges (about 8 kB per minute of
    /// audio, packed under `audit_freeze_backup/earshot/prints/<rule>/`).
    #[serde(default)]
    pub keep: bool,
    /// `earshot serve` hunts by itself when the library gains references.
    #[serde(default)]
    pub auto: bool,
}

impl RetroConfig {
    pub fn is_off(&self) -> bool {
        !self.keep && !self.auto
    }
}

impl RuleConfig {
    /// The suffixes in scope, lowercase and without the dot: every supported one when the rule
    /// names none. The one place suffixes are normalised.
    pub fn suffix_set(&self) -> std::collections::BTreeSet<String> {
        if self.suffixes.is_empty() {
            return SUPPORTED_SUFFIXES.iter().map(|s| (*s).to_owned()).collect();
        }
        self.suffixes.iter().map(|s| bare_suffix(s)).collect()
    }
}

/// `".MP3"` → `"mp3"`.
fn bare_suffix(suffix: &str) -> String {
    suffix.trim_start_matches('.').to_ascii_lowercase()
}

/// `engine = "local"` or `engine = ["local", "ams"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EngineNames {
    One(String),
    Many(Vec<String>),
}

impl EngineNames {
    pub fn names(&self) -> &[String] {
        match self {
            EngineNames::One(name) => std::slice::from_ref(name),
            EngineNames::Many(names) => names,
        }
    }
}

impl PartialEq<&str> for EngineNames {
    fn eq(&self, other: &&str) -> bool {
        self.names() == [*other]
    }
}

/// A rule's answer to an engine that cannot judge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnEngineError {
    /// The job fails for now and its source delivers it again (SQS, Lambda, webhook retries); a
    /// result that never arrives is polled for, then called back with code 1202 at its deadline.
    #[default]
    Retry,
    /// Judge on the engines that answered (nothing blocked on the failed one's account); the
    /// callback's message and `engine_errors` name what failed.
    Pass,
    /// Call back `result = 2` (suspicious: a person should listen), block nothing.
    Review,
}

fn default_scenes() -> Vec<Scene> {
    vec![Scene::Porn, Scene::Ads, Scene::Illegal]
}

fn default_engine() -> EngineNames {
    EngineNames::One("local".to_owned())
}

/// What happens to a non-compliant object (DESIGN §5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub mode: BlockMode,
    #[serde(default)]
    pub review: Review,
    /// Block when the highest configured-scene score is at least this (60–100).
    #[serde(default = "default_min_score")]
    pub min_score: u8,
    /// Add every object this rule blocks to its engine's reference library, so a re-upload, even
    /// re-encoded or cut, is caught at once.
    #[serde(default)]
    pub learn: bool,
    /// With `review = "human"`: hold an object while it waits for a person (blocked by `mode`,
    /// put back exactly when passed) instead of leaving it published.
    #[serde(default)]
    pub hold_for_review: bool,
    /// With `review = "human"`: how long an item waits for a person before `on_review_timeout`
    /// decides it.
    #[serde(default = "default_review_timeout")]
    pub review_timeout_secs: u64,
    #[serde(default)]
    pub on_review_timeout: ReviewVerdict,
    /// With `review = "human"`: how long the process that claimed a decision has to carry it out
    /// before another process (the next decision, the sweep) may take it over, taking its holder
    /// for stopped. Longer than any one decision takes (a callback's retries included).
    #[serde(default = "default_review_lease")]
    pub review_lease_secs: u64,
}

/// What a review decides (and what `on_review_timeout` decides when nobody did).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewVerdict {
    /// Blocked: what `review = "machine"` would have done at this score.
    #[default]
    Block,
    /// Left published (or put back, when held).
    Pass,
}

impl ReviewVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewVerdict::Block => "block",
            ReviewVerdict::Pass => "pass",
        }
    }
}

fn default_review_timeout() -> u64 {
    3 * 24 * 3600
}

fn default_review_lease() -> u64 {
    15 * 60
}

fn yes() -> bool {
    true
}

fn default_min_score() -> u8 {
    90
}

impl Default for BlockConfig {
    fn default() -> Self {
        BlockConfig {
            enabled: true,
            mode: BlockMode::default(),
            review: Review::default(),
            min_score: default_min_score(),
            learn: false,
            hold_for_review: false,
            review_timeout_secs: default_review_timeout(),
            on_review_timeout: ReviewVerdict::default(),
            review_lease_secs: default_review_lease(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockMode {
    /// `PutObjectAcl private`: anonymous reads answer 403.
    #[default]
    AclPrivate,
    /// Copy to `audit_freeze_backup/increment_audit/<key>`, verify, delete: reads answer 404.
    Move,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Review {
    #[default]
    Machine,
    Human,
}

/// Where and how a rule's results are POSTed (DESIGN §6).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackConfig {
    pub url: String,
    /// With a seed, `X-Signature` = hex(sha256(seed + body)).
    pub seed: Option<String>,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff_ms")]
    pub initial_backoff_ms: u64,
    #[serde(default = "default_callback_timeout")]
    pub timeout_secs: u64,
    /// Add `data.segments`: where in the upload each finding is (offset, duration, label, score).
    #[serde(default)]
    pub detail: bool,
}

fn default_attempts() -> u32 {
    5
}

fn default_backoff_ms() -> u64 {
    500
}

fn default_callback_timeout() -> u64 {
    10
}

/// Jobs waiting on a provider: the key that signs their callback tokens, and how often waiting
/// jobs are checked (polled, timed out, finished).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsyncJobsConfig {
    /// HMAC-SHA256 key (at least 32 characters) for the tokens in provider callback URLs. Every
    /// replica that may receive a result needs the same key.
    pub token_key: Option<String>,
    #[serde(default = "default_sweep")]
    pub sweep_secs: u64,
}

impl Default for AsyncJobsConfig {
    fn default() -> Self {
        AsyncJobsConfig {
            token_key: None,
            sweep_secs: default_sweep(),
        }
    }
}

fn default_sweep() -> u64 {
    15
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default = "default_max_bytes")]
    pub max_object_bytes: u64,
    #[serde(default = "default_max_duration")]
    pub max_duration_secs: u64,
    /// How long a job stays with the daemon judging it unless renewed (it is renewed every third
    /// of this while the job runs): a daemon that stopped has its jobs taken over this long after
    /// its last renewal. An outage of S3 longer than this (for that daemon alone) may let another
    /// daemon start the same job.
    #[serde(default = "default_job_lease")]
    pub job_lease_secs: u64,
}

fn default_max_bytes() -> u64 {
    600 * 1024 * 1024
}

fn default_max_duration() -> u64 {
    3 * 60 * 60
}

fn default_job_lease() -> u64 {
    120
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_object_bytes: default_max_bytes(),
            max_duration_secs: default_max_duration(),
            job_lease_secs: default_job_lease(),
        }
    }
}

/// A configuration error: the key it concerns, where that key came from, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Parse(Box<figment::Error>),
    #[error("`{key}` in {source_name}: {message}")]
    Invalid {
        key: String,
        source_name: String,
        message: String,
    },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
}

/// Where the config was read from, for error messages.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A file, possibly overridden by the environment.
    File(PathBuf),
    /// Built-in defaults and the environment only.
    Defaults,
}

impl Config {
    /// Loads defaults → `path` (if given, or `config/earshot.toml` if it exists) → `EARSHOT_…`.
    ///
    /// # Errors
    /// A named file that does not exist, a parse error, or a failed validation.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) if !path.is_file() => {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    message: "no such file".to_owned(),
                });
            }
            Some(path) => Some(path.to_owned()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.is_file()),
        };
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = &file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("EARSHOT_").split("__").filter(|key| {
            key != "config" && key != "log_format" && key != "crash_at" && key != "pause_at"
        }));
        Self::from_figment(figment)
    }

    /// Parses a TOML text over the built-in defaults (no file, no environment).
    ///
    /// # Errors
    /// A parse error or a failed validation.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::from_figment(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)),
        )
    }

    fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        config.validate(&figment)?;
        Ok(config)
    }

    /// How often engines re-read their reference data while running: the shortest positive
    /// `refresh_secs` of any engine, or None when none refreshes.
    pub fn refresh_every(&self) -> Option<std::time::Duration> {
        self.engines
            .values()
            .map(|engine| match engine {
                EngineConfig::Local(local) => local.refresh_secs,
                EngineConfig::Speech(speech) => speech.refresh_secs,
                _ => 0,
            })
            .filter(|&secs| secs > 0)
            .min()
            .map(std::time::Duration::from_secs)
    }

    /// A copy with every secret replaced, for printing.
    pub fn redacted(&self) -> Config {
        let mut config = self.clone();
        if config.s3.secret_access_key.is_some() {
            config.s3.secret_access_key = Some(REDACTED.to_owned());
        }
        for rule in &mut config.rules {
            if let Some(seed) = rule.callback.as_mut().and_then(|c| c.seed.as_mut()) {
                *seed = REDACTED.to_owned();
            }
        }
        for engine in config.engines.values_mut() {
            match engine {
                EngineConfig::Local(_) | EngineConfig::Speech(_) => {}
                EngineConfig::TencentAms(ams) => {
                    ams.secret_id = REDACTED.to_owned();
                    ams.secret_key = REDACTED.to_owned();
                    ams.seed = REDACTED.to_owned();
                }
                EngineConfig::Shumei(shumei) => shumei.access_key = REDACTED.to_owned(),
                EngineConfig::Http(http) => {
                    if http.bearer_token.is_some() {
                        http.bearer_token = Some(REDACTED.to_owned());
                    }
                }
            }
        }
        if let Some(console) = config.console.as_mut() {
            console.session_key = REDACTED.to_owned();
            for user in &mut console.users {
                if user.password_hash.is_some() {
                    user.password_hash = Some(REDACTED.to_owned());
                }
            }
        }
        if config.async_jobs.token_key.is_some() {
            config.async_jobs.token_key = Some(REDACTED.to_owned());
        }
        if let Some(minio) = config
            .sources
            .webhook
            .as_mut()
            .and_then(|w| w.minio.as_mut())
        {
            minio.auth_token = REDACTED.to_owned();
        }
        config
    }
}

#[cfg(test)]
mod tests;
