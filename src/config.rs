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
}

impl Default for Config {
    fn default() -> Self {
        let mut engines = BTreeMap::new();
        engines.insert(
            "local".to_owned(),
            EngineConfig::Local(LocalEngineConfig {
                library: "./library".to_owned(),
                refresh_secs: default_refresh(),
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
    /// Key prefix in scope; `""` is the whole bucket.
    #[serde(default)]
    pub prefix: String,
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

/// A moderation engine, by `type`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineConfig {
    Local(LocalEngineConfig),
    TencentAms(AmsEngineConfig),
    Shumei(ShumeiEngineConfig),
    Http(HttpEngineConfig),
}

/// Tencent Cloud AMS (`CreateAudioModerationTask` / `DescribeTaskDetail`, API 2020-12-29).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmsEngineConfig {
    pub secret_id: String,
    pub secret_key: String,
    /// `https://ams.tencentcloudapi.com`, or a regional endpoint.
    #[serde(default = "default_ams_endpoint")]
    pub endpoint: String,
    /// `X-TC-Region`; AMS does not need one.
    pub region: Option<String>,
    /// The console policy (3–32 letters, digits, `_`); AMS's default policy when absent.
    pub biz_type: Option<String>,
    /// Sent as `Seed`: AMS signs its results with it (`X-Signature` = hex(sha256(seed + body))).
    pub seed: String,
    /// The public base URL of this earshot's listener (webhook or admin), e.g.
    /// `https://earshot.example.com`: results arrive at `<base>/engines/<name>/results/<token>`.
    pub callback_base_url: String,
    #[serde(default = "default_ams_rate")]
    pub rate_per_sec: f64,
    #[serde(default = "default_ams_concurrent")]
    pub max_concurrent: usize,
    /// Tasks per `CreateAudioModerationTask` call (AMS allows 10).
    #[serde(default = "default_ams_batch")]
    pub max_batch: usize,
    /// How long AMS may collect concurrent jobs into one call.
    #[serde(default = "default_batch_window")]
    pub batch_window_ms: u64,
    /// Expiry of the presigned GET URL the provider downloads from.
    #[serde(default = "default_url_expiry")]
    pub url_expiry_secs: u64,
    /// No result by then: ask the provider (`DescribeTaskDetail`, `query_audio`).
    #[serde(default = "default_poll_after")]
    pub poll_after_secs: u64,
    /// No result by then: call back with code 1202 (engine timeout).
    #[serde(default = "default_deadline")]
    pub deadline_secs: u64,
}

/// Shumei's audio file API (`/audio/v4`, results to a callback, `/query_audio/v4` to poll).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShumeiEngineConfig {
    pub access_key: String,
    pub app_id: String,
    pub event_id: String,
    /// Shumei's `type`: risk types joined by `_`.
    #[serde(default = "default_shumei_types")]
    pub risk_types: String,
    /// Cluster: `sh` (Shanghai), `xjp` (Singapore) or `gg` (Silicon Valley).
    #[serde(default = "default_shumei_region")]
    pub region: String,
    /// Overrides the cluster URL (`http://api-audio-<region>.fengkongcloud.com`).
    pub endpoint: Option<String>,
    /// `data.lang`: `zh`, `en`, …
    #[serde(default = "default_shumei_lang")]
    pub lang: String,
    /// `data.tokenId` (Shumei's user id; uploads carry none).
    #[serde(default = "default_shumei_token_id")]
    pub token_id: String,
    /// As for `tencent_ams`.
    pub callback_base_url: String,
    #[serde(default = "default_shumei_rate")]
    pub rate_per_sec: f64,
    #[serde(default = "default_ams_concurrent")]
    pub max_concurrent: usize,
    /// Expiry of the presigned GET URL the provider downloads from.
    #[serde(default = "default_url_expiry")]
    pub url_expiry_secs: u64,
    /// No result by then: ask the provider (`DescribeTaskDetail`, `query_audio`).
    #[serde(default = "default_poll_after")]
    pub poll_after_secs: u64,
    /// No result by then: call back with code 1202 (engine timeout).
    #[serde(default = "default_deadline")]
    pub deadline_secs: u64,
}

/// A user's own classifier; the contract is `openapi/http-engine.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpEngineConfig {
    pub url: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub bearer_token: Option<String>,
    #[serde(default = "default_http_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_http_url_expiry")]
    pub url_expiry_secs: u64,
    #[serde(default = "default_http_concurrent")]
    pub max_concurrent: usize,
}

fn default_ams_endpoint() -> String {
    "https://ams.tencentcloudapi.com".to_owned()
}

fn default_ams_rate() -> f64 {
    20.0
}

fn default_ams_concurrent() -> usize {
    10
}

fn default_ams_batch() -> usize {
    10
}

fn default_batch_window() -> u64 {
    50
}

fn default_shumei_types() -> String {
    "EROTIC_ADVERT_POLITY_DIRTY".to_owned()
}

fn default_shumei_region() -> String {
    "sh".to_owned()
}

fn default_shumei_lang() -> String {
    "zh".to_owned()
}

fn default_shumei_token_id() -> String {
    "earshot".to_owned()
}

fn default_shumei_rate() -> f64 {
    10.0
}

fn default_url_expiry() -> u64 {
    3600
}

fn default_poll_after() -> u64 {
    300
}

fn default_deadline() -> u64 {
    3600
}

fn default_http_timeout() -> u64 {
    30
}

fn default_http_url_expiry() -> u64 {
    900
}

fn default_http_concurrent() -> usize {
    8
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
pub struct LocalEngineConfig {
    /// A directory, or `s3://bucket/prefix/`.
    pub library: String,
    /// How often `earshot serve` looks for added or removed entries.
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
}

fn default_refresh() -> u64 {
    30
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    pub sqs: Option<SqsConfig>,
    pub webhook: Option<WebhookConfig>,
}

/// The HTTP source of `earshot serve`: MinIO bucket notifications and SNS HTTP(S) subscriptions.
/// Its listener also answers `/healthz`, `/readyz` and `/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `host:port` to listen on.
    pub listen: String,
    /// Jobs run at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Jobs accepted and waiting for a worker; a request that does not fit is answered 503.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// The `Retry-After` of a 503.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u32,
    /// Runs of a job that fails for a passing reason before it is parked in the bucket's
    /// dead-job area (the sender was answered 2xx and will not send it again).
    #[serde(default = "default_job_attempts")]
    pub max_attempts: u32,
    /// The first pause between runs; it doubles (with jitter) up to 60 s.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// `POST /minio`: MinIO's webhook notification target.
    pub minio: Option<MinioWebhookConfig>,
    /// `POST /sns`: an SNS HTTP(S) subscription.
    pub sns: Option<SnsWebhookConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinioWebhookConfig {
    /// The `auth_token` of MinIO's webhook target; MinIO sends it as `Authorization: Bearer …`.
    pub auth_token: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsWebhookConfig {
    /// Topics whose messages are accepted; empty accepts any topic (signatures are checked anyway).
    #[serde(default)]
    pub topic_arns: Vec<String>,
    /// Origins (`scheme://host:port`) trusted to serve signing certificates besides AWS's
    /// `https://sns.<region>.amazonaws.com[.cn]`, e.g. `http://127.0.0.1:4566` for LocalStack.
    #[serde(default)]
    pub trusted_cert_origins: Vec<String>,
}

fn default_job_attempts() -> u32 {
    8
}

fn default_retry_initial_ms() -> u64 {
    1000
}

fn default_queue_capacity() -> usize {
    256
}

fn default_retry_after() -> u32 {
    5
}

/// `/healthz`, `/readyz` and `/metrics` on a listener of their own (for the SQS source, which has
/// no listener; the webhook source serves them on its own listener as well).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `host:port`; omit for no admin listener.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqsConfig {
    pub queue_url: String,
    /// Omit for AWS.
    pub endpoint_url: Option<String>,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    #[serde(default = "default_wait")]
    pub wait_time_secs: u32,
    /// How long a received message stays hidden; extended while its job runs.
    #[serde(default = "default_visibility")]
    pub visibility_timeout_secs: u32,
}

fn default_concurrency() -> usize {
    8
}

fn default_wait() -> u32 {
    20
}

fn default_visibility() -> u32 {
    60
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default = "default_max_bytes")]
    pub max_object_bytes: u64,
    #[serde(default = "default_max_duration")]
    pub max_duration_secs: u64,
}

fn default_max_bytes() -> u64 {
    600 * 1024 * 1024
}

fn default_max_duration() -> u64 {
    3 * 60 * 60
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_object_bytes: default_max_bytes(),
            max_duration_secs: default_max_duration(),
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
        figment = figment.merge(
            Env::prefixed("EARSHOT_")
                .split("__")
                .filter(|key| key != "config" && key != "log_format"),
        );
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

    fn validate(&self, figment: &Figment) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| {
            let source_name = figment
                .find_metadata(&key)
                .or_else(|| figment.find_metadata(key.split('.').next().unwrap_or(&key)))
                .map(|meta| match &meta.source {
                    Some(source) => format!("{} ({source})", meta.name),
                    None => meta.name.to_string(),
                })
                .unwrap_or_else(|| "the configuration".to_owned());
            ConfigError::Invalid {
                key,
                source_name,
                message,
            }
        };
        let mut seen_ids = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let key = |field: &str| format!("rules.{i}.{field}");
            if rule.id.is_empty() {
                return Err(invalid(key("id"), "must not be empty".to_owned()));
            }
            if !seen_ids.insert(rule.id.as_str()) {
                return Err(invalid(
                    key("id"),
                    format!("duplicate rule id {:?}", rule.id),
                ));
            }
            if rule.bucket.is_empty() {
                return Err(invalid(key("bucket"), "must not be empty".to_owned()));
            }
            for suffix in &rule.suffixes {
                if !SUPPORTED_SUFFIXES.contains(&bare_suffix(suffix).as_str()) {
                    return Err(invalid(
                        key("suffixes"),
                        format!(
                            "unknown suffix {suffix:?}; supported: {}",
                            SUPPORTED_SUFFIXES.join(" ")
                        ),
                    ));
                }
            }
            if rule.scenes.is_empty() {
                return Err(invalid(
                    key("scenes"),
                    "must name at least one scene".to_owned(),
                ));
            }
            let names = rule.engine.names();
            if names.is_empty() {
                return Err(invalid(
                    key("engine"),
                    "must name at least one engine".to_owned(),
                ));
            }
            for (n, name) in names.iter().enumerate() {
                if !self.engines.contains_key(name) {
                    return Err(invalid(
                        key("engine"),
                        format!("names engine {name:?}, which no [engines.{name}] section defines"),
                    ));
                }
                if names[..n].contains(name) {
                    return Err(invalid(
                        key("engine"),
                        format!("names engine {name:?} twice"),
                    ));
                }
            }
            if !(60..=100).contains(&rule.block.min_score) {
                return Err(invalid(
                    key("block.min_score"),
                    format!(
                        "must be an integer from 60 to 100, got {}",
                        rule.block.min_score
                    ),
                ));
            }
            if rule.block.review == Review::Human {
                return Err(invalid(
                    key("block.review"),
                    "\"human\" review is not available yet; use \"machine\"".to_owned(),
                ));
            }
            if let Some(callback) = &rule.callback {
                let parsed = url::Url::parse(&callback.url);
                if !matches!(parsed.as_ref().map(|u| u.scheme()), Ok("http" | "https")) {
                    return Err(invalid(
                        key("callback.url"),
                        format!("must be an http(s) URL, got {:?}", callback.url),
                    ));
                }
                if callback.max_attempts == 0 {
                    return Err(invalid(
                        key("callback.max_attempts"),
                        "must be at least 1".to_owned(),
                    ));
                }
            }
        }
        for (i, a) in self.rules.iter().enumerate() {
            for (j, b) in self.rules.iter().enumerate().skip(i + 1) {
                if rules_overlap(a, b) {
                    return Err(invalid(
                        format!("rules.{j}.prefix"),
                        format!(
                            "rule {:?} overlaps rule {:?}: same bucket {:?}, prefixes {:?} and {:?} \
                             nest, and their suffixes share a format; a key must match one rule",
                            b.id, a.id, a.bucket, b.prefix, a.prefix
                        ),
                    ));
                }
            }
        }
        for (name, engine) in &self.engines {
            match engine {
                EngineConfig::Local(local) if local.library.is_empty() => {
                    return Err(invalid(
                        format!("engines.{name}.library"),
                        "must name a directory or an s3:// prefix".to_owned(),
                    ));
                }
                EngineConfig::Local(_) => {}
                EngineConfig::TencentAms(ams) => {
                    let key = |field: &str| format!("engines.{name}.{field}");
                    for (field, value) in [
                        ("secret_id", &ams.secret_id),
                        ("secret_key", &ams.secret_key),
                        ("seed", &ams.seed),
                    ] {
                        if value.is_empty() {
                            return Err(invalid(key(field), "must not be empty".to_owned()));
                        }
                    }
                    check_http_url(&ams.endpoint).map_err(|m| invalid(key("endpoint"), m))?;
                    check_http_url(&ams.callback_base_url)
                        .map_err(|m| invalid(key("callback_base_url"), m))?;
                    if ams.biz_type.as_ref().is_some_and(|b| {
                        !(3..=32).contains(&b.len())
                            || !b.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    }) {
                        return Err(invalid(
                            key("biz_type"),
                            "must be 3–32 letters, digits or underscores".to_owned(),
                        ));
                    }
                    if !(1..=10).contains(&ams.max_batch) {
                        return Err(invalid(
                            key("max_batch"),
                            format!("AMS takes 1 to 10 tasks per call, got {}", ams.max_batch),
                        ));
                    }
                    check_async(
                        ams.rate_per_sec,
                        ams.max_concurrent,
                        ams.poll_after_secs,
                        ams.deadline_secs,
                    )
                    .map_err(|(field, m)| invalid(key(field), m))?;
                }
                EngineConfig::Shumei(shumei) => {
                    let key = |field: &str| format!("engines.{name}.{field}");
                    for (field, value) in [
                        ("access_key", &shumei.access_key),
                        ("app_id", &shumei.app_id),
                        ("event_id", &shumei.event_id),
                        ("risk_types", &shumei.risk_types),
                    ] {
                        if value.is_empty() {
                            return Err(invalid(key(field), "must not be empty".to_owned()));
                        }
                    }
                    match &shumei.endpoint {
                        Some(endpoint) => {
                            check_http_url(endpoint).map_err(|m| invalid(key("endpoint"), m))?;
                        }
                        None if !["sh", "xjp", "gg"].contains(&shumei.region.as_str()) => {
                            return Err(invalid(
                                key("region"),
                                format!(
                                    "must be sh, xjp or gg (or set endpoint), got {:?}",
                                    shumei.region
                                ),
                            ));
                        }
                        None => {}
                    }
                    check_http_url(&shumei.callback_base_url)
                        .map_err(|m| invalid(key("callback_base_url"), m))?;
                    check_async(
                        shumei.rate_per_sec,
                        shumei.max_concurrent,
                        shumei.poll_after_secs,
                        shumei.deadline_secs,
                    )
                    .map_err(|(field, m)| invalid(key(field), m))?;
                }
                EngineConfig::Http(http) => {
                    let key = |field: &str| format!("engines.{name}.{field}");
                    check_http_url(&http.url).map_err(|m| invalid(key("url"), m))?;
                    if http.timeout_secs == 0 || http.max_concurrent == 0 {
                        return Err(invalid(
                            key("timeout_secs"),
                            "timeout_secs and max_concurrent must be at least 1".to_owned(),
                        ));
                    }
                }
            }
        }
        let asynchronous = self
            .engines
            .values()
            .any(|e| matches!(e, EngineConfig::TencentAms(_) | EngineConfig::Shumei(_)));
        if asynchronous
            && self
                .async_jobs
                .token_key
                .as_ref()
                .is_none_or(|k| k.len() < 32)
        {
            return Err(invalid(
                "async_jobs.token_key".to_owned(),
                "an asynchronous engine (tencent_ams, shumei) needs a token key of at least 32 \
                 characters to sign its callback URLs"
                    .to_owned(),
            ));
        }
        if self.async_jobs.sweep_secs == 0 {
            return Err(invalid(
                "async_jobs.sweep_secs".to_owned(),
                "must be positive".to_owned(),
            ));
        }
        if self.limits.max_object_bytes == 0 {
            return Err(invalid(
                "limits.max_object_bytes".to_owned(),
                "must be positive".to_owned(),
            ));
        }
        if self.limits.max_duration_secs == 0 {
            return Err(invalid(
                "limits.max_duration_secs".to_owned(),
                "must be positive".to_owned(),
            ));
        }
        if let Some(webhook) = &self.sources.webhook {
            if webhook.listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(
                    "sources.webhook.listen".to_owned(),
                    format!("`{}` is not an address like 127.0.0.1:8080", webhook.listen),
                ));
            }
            if webhook.max_concurrency == 0 || webhook.queue_capacity == 0 {
                return Err(invalid(
                    "sources.webhook".to_owned(),
                    "max_concurrency and queue_capacity must be at least 1".to_owned(),
                ));
            }
            if webhook.minio.is_none() && webhook.sns.is_none() {
                return Err(invalid(
                    "sources.webhook".to_owned(),
                    "enable [sources.webhook.minio] or [sources.webhook.sns] (or both)".to_owned(),
                ));
            }
            if webhook
                .minio
                .as_ref()
                .is_some_and(|m| m.auth_token.len() < 16)
            {
                return Err(invalid(
                    "sources.webhook.minio.auth_token".to_owned(),
                    "must be at least 16 characters".to_owned(),
                ));
            }
            for origin in webhook.sns.iter().flat_map(|s| &s.trusted_cert_origins) {
                let parsed = url::Url::parse(origin);
                if !parsed.is_ok_and(|u| u.path() == "/" && !origin.ends_with('/')) {
                    return Err(invalid(
                        "sources.webhook.sns.trusted_cert_origins".to_owned(),
                        format!("`{origin}` is not an origin like http://127.0.0.1:4566"),
                    ));
                }
            }
        }
        if let Some(listen) = &self.admin.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(invalid(
                "admin.listen".to_owned(),
                format!("`{listen}` is not an address like 127.0.0.1:9090"),
            ));
        }
        if let Some(sqs) = &self.sources.sqs {
            if sqs.max_concurrency == 0 {
                return Err(invalid(
                    "sources.sqs.max_concurrency".to_owned(),
                    "must be at least 1".to_owned(),
                ));
            }
            if sqs.wait_time_secs > 20 {
                return Err(invalid(
                    "sources.sqs.wait_time_secs".to_owned(),
                    format!("SQS allows at most 20, got {}", sqs.wait_time_secs),
                ));
            }
            if !(10..=43_200).contains(&sqs.visibility_timeout_secs) {
                return Err(invalid(
                    "sources.sqs.visibility_timeout_secs".to_owned(),
                    format!(
                        "must be from 10 to 43200, got {}",
                        sqs.visibility_timeout_secs
                    ),
                ));
            }
        }
        Ok(())
    }

    /// How often engines re-read their reference data while running: the shortest positive
    /// `refresh_secs` of any engine, or None when none refreshes.
    pub fn refresh_every(&self) -> Option<std::time::Duration> {
        self.engines
            .values()
            .map(|engine| match engine {
                EngineConfig::Local(local) => local.refresh_secs,
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
                EngineConfig::Local(_) => {}
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

fn check_http_url(text: &str) -> Result<(), String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(()),
        _ => Err(format!("must be an http(s) URL, got {text:?}")),
    }
}

fn check_async(
    rate_per_sec: f64,
    max_concurrent: usize,
    poll_after_secs: u64,
    deadline_secs: u64,
) -> Result<(), (&'static str, String)> {
    if !(rate_per_sec > 0.0 && rate_per_sec.is_finite()) {
        return Err((
            "rate_per_sec",
            format!("must be positive, got {rate_per_sec}"),
        ));
    }
    if max_concurrent == 0 {
        return Err(("max_concurrent", "must be at least 1".to_owned()));
    }
    if poll_after_secs == 0 || poll_after_secs > deadline_secs {
        return Err((
            "poll_after_secs",
            format!("must be from 1 to deadline_secs ({deadline_secs}), got {poll_after_secs}"),
        ));
    }
    Ok(())
}

/// Two rules overlap when a key could match both: same bucket, one prefix contains the other, and
/// their suffix sets intersect (an empty set is all suffixes).
fn rules_overlap(a: &RuleConfig, b: &RuleConfig) -> bool {
    if a.bucket != b.bucket {
        return false;
    }
    if !(a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix)) {
        return false;
    }
    !a.suffix_set().is_disjoint(&b.suffix_set())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [[rules]]
        id = "podcasts"
        bucket = "media"
        prefix = "audio/"
        suffixes = ["MP3", "wav"]
        callback = { url = "http://127.0.0.1:9000/hook", seed = "s3cret" }
    "#;

    #[test]
    fn a_minimal_rule_gets_the_documented_defaults() {
        let config = Config::from_toml_str(BASE).expect("valid");
        let rule = &config.rules[0];
        assert_eq!(rule.engine, "local");
        assert_eq!(rule.scenes, vec![Scene::Porn, Scene::Ads, Scene::Illegal]);
        assert_eq!(rule.block.min_score, 90);
        assert_eq!(rule.block.mode, BlockMode::AclPrivate);
        assert_eq!(config.limits.max_object_bytes, 629_145_600);
        assert_eq!(config.limits.max_duration_secs, 10_800);
    }

    #[test]
    fn errors_name_the_key() {
        let cases: &[(&str, &str)] = &[
            (
                "[[rules]]\nid='a'\nbucket='b'\nblock={min_score=50}",
                "rules.0.block.min_score",
            ),
            (
                "[[rules]]\nid='a'\nbucket='b'\nblock={min_score=101}",
                "rules.0.block.min_score",
            ),
            (
                "[[rules]]\nid='a'\nbucket='b'\nsuffixes=['mp4']",
                "rules.0.suffixes",
            ),
            (
                "[[rules]]\nid='a'\nbucket='b'\nscenes=['violence']",
                "scenes",
            ),
            (
                "[[rules]]\nid='a'\nbucket='b'\nengine='ams'",
                "rules.0.engine",
            ),
            ("[[rules]]\nid='a'\nbucket='b'\ncolour='red'", "colour"),
            ("[limits]\nmax_object_bytes=0", "limits.max_object_bytes"),
            (
                "[[rules]]\nid='a'\nbucket='b'\n[[rules]]\nid='c'\nbucket='b'\nprefix='x/'",
                "rules.1.prefix",
            ),
        ];
        for (text, key) in cases {
            let error = Config::from_toml_str(text).expect_err(text).to_string();
            assert!(
                error.contains(key),
                "{text:?}: {error:?} does not name {key}"
            );
        }
    }

    #[test]
    fn rules_that_differ_in_prefix_or_suffix_do_not_overlap() {
        let text = r#"
            [[rules]]
            id = "a"
            bucket = "media"
            prefix = "audio/"
            suffixes = ["mp3"]
            [[rules]]
            id = "b"
            bucket = "media"
            prefix = "audio/"
            suffixes = ["wav"]
            [[rules]]
            id = "c"
            bucket = "media"
            prefix = "voice/"
        "#;
        Config::from_toml_str(text).expect("no overlap");
    }

    #[test]
    fn redaction_hides_seeds_and_keys() {
        let text = format!(
            "{BASE}\n[sources.webhook]\nlisten = \"127.0.0.1:8080\"\n\
             [sources.webhook.minio]\nauth_token = \"minio-token-0123456789\"\n"
        );
        let mut config = Config::from_toml_str(&text).expect("valid");
        config.s3.secret_access_key = Some("hunter2".to_owned());
        let printed = toml::to_string(&config.redacted()).expect("serialises");
        assert!(!printed.contains("s3cret"));
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains("minio-token-0123456789"));
        assert!(printed.contains(REDACTED));
    }

    const CLOUD: &str = r#"
        [[rules]]
        id = "voice"
        bucket = "media"
        engine = ["local", "ams", "sm", "mine"]
        on_engine_error = "review"

        [engines.local]
        type = "local"
        library = "./library"

        [engines.ams]
        type = "tencent_ams"
        secret_id = "AKIDsecretid"
        secret_key = "tc-secret-key"
        seed = "ams-seed-value"
        callback_base_url = "https://earshot.example.com"

        [engines.sm]
        type = "shumei"
        access_key = "shumei-access-key"
        app_id = "default"
        event_id = "audio"
        callback_base_url = "https://earshot.example.com"

        [engines.mine]
        type = "http"
        url = "http://classifier.internal/judge"
        bearer_token = "classifier-bearer"

        [async_jobs]
        token_key = "token-key-0123456789abcdef0123456789"
    "#;

    #[test]
    fn cloud_engines_parse_with_their_defaults_and_print_redacted() {
        let config = Config::from_toml_str(CLOUD).expect("valid");
        let rule = &config.rules[0];
        assert_eq!(rule.engine.names(), ["local", "ams", "sm", "mine"]);
        assert_eq!(rule.on_engine_error, OnEngineError::Review);
        let Some(EngineConfig::TencentAms(ams)) = config.engines.get("ams") else {
            panic!("ams engine");
        };
        assert_eq!(
            (ams.rate_per_sec, ams.max_concurrent, ams.max_batch),
            (20.0, 10, 10)
        );
        assert_eq!(ams.endpoint, "https://ams.tencentcloudapi.com");
        let printed = toml::to_string(&config.redacted()).expect("serialises");
        for secret in [
            "AKIDsecretid",
            "tc-secret-key",
            "ams-seed-value",
            "shumei-access-key",
            "classifier-bearer",
            "token-key-0123456789abcdef0123456789",
        ] {
            assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
        }
    }

    #[test]
    fn cloud_engine_errors_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "token_key = \"token-key-0123456789abcdef0123456789\"",
                "token_key = \"short\"",
                "async_jobs.token_key",
            ),
            (
                "callback_base_url = \"https://earshot.example.com\"\n\n        [engines.sm]",
                "callback_base_url = \"earshot\"\n\n        [engines.sm]",
                "engines.ams.callback_base_url",
            ),
            (
                "type = \"shumei\"",
                "type = \"shumei\"\n        region = \"mars\"",
                "engines.sm.region",
            ),
            (
                "engine = [\"local\", \"ams\", \"sm\", \"mine\"]",
                "engine = [\"local\", \"local\"]",
                "rules.0.engine",
            ),
            (
                "seed = \"ams-seed-value\"",
                "seed = \"ams-seed-value\"\n        max_batch = 11",
                "engines.ams.max_batch",
            ),
        ];
        for (from, to, key) in cases {
            assert!(CLOUD.contains(from), "{from}");
            let text = CLOUD.replacen(from, to, 1);
            let error = Config::from_toml_str(&text).expect_err(key).to_string();
            assert!(error.contains(key), "{error:?} does not name {key}");
        }
    }

    #[test]
    fn the_shipped_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH);
        let text = std::fs::read_to_string(path).expect("config/earshot.toml exists");
        Config::from_toml_str(&text).expect("config/earshot.toml is valid");
    }
}
