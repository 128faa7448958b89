//! `[engines.NAME]`: one moderation engine each, told apart by `type`.

use serde::{Deserialize, Serialize};

/// A moderation engine, by `type`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineConfig {
    Local(LocalEngineConfig),
    Speech(SpeechEngineConfig),
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalEngineConfig {
    /// A directory, or `s3://bucket/prefix/`.
    pub library: String,
    /// How often `earshot serve` looks for added or removed entries.
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
}

pub(super) fn default_refresh() -> u64 {
    30
}

/// The offline speech engine: whisper.cpp and keyword dictionaries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechEngineConfig {
    /// A whisper.cpp model file (ggml), e.g. `ggml-base.en-q8_0.bin`.
    pub model: String,
    /// The model file's SHA-256 in hex, checked when the config loads.
    pub model_sha256: String,
    /// `en`, `zh`, or `auto` (detected per upload; needs a multilingual model).
    #[serde(default = "default_speech_language")]
    pub language: String,
    /// Cores one transcription uses.
    #[serde(default = "default_speech_threads")]
    pub threads: usize,
    /// Transcriptions at once.
    #[serde(default = "default_speech_concurrent")]
    pub max_concurrent: usize,
    /// Speech transcribed per object at most; the rest is not heard (the transcript says so).
    #[serde(default = "default_max_speech")]
    pub max_speech_secs: u64,
    /// The dictionaries: a directory, or `s3://bucket/prefix/`, of `<name>.json` files.
    pub dictionaries: String,
    /// How often `earshot serve` looks for changed dictionaries.
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    /// Give the recogniser the dictionaries' terms as its prompt, so it spells them as they are
    /// written (measured: more terms found, none invented on music, noise or silence).
    #[serde(default = "default_true")]
    pub prompt_terms: bool,
    /// The abuse classifier on each sentence of the transcript (`[engines.<name>.abuse]`);
    /// none when absent.
    #[serde(default)]
    pub abuse: Option<AbuseClassifierConfig>,
    /// Dictionaries' example sentences matched by meaning (`[engines.<name>.meaning]`); none
    /// when absent, and then examples are not heard.
    #[serde(default)]
    pub meaning: Option<MeaningConfig>,
}

/// The speech engine's sentence embedder (src/engines/speech/meaning/): all-MiniLM-L6-v2, so that
/// a dictionary's example sentence is heard in other words.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeaningConfig {
    /// false: examples are not matched (the model may stay).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The model's weights, `model.safetensors` (`scripts/meaning-model/fetch.sh` fetches it).
    pub model: String,
    pub model_sha256: String,
    /// Its `tokenizer.json`.
    pub tokenizer: String,
    pub tokenizer_sha256: String,
    /// The cosine similarity from which a sentence says what an example says (calibrated in
    /// bench/README.md, "Phrases by meaning").
    #[serde(default = "default_meaning_threshold")]
    pub threshold: f64,
}

fn default_meaning_threshold() -> f64 {
    0.5
}

/// The speech engine's abuse classifier (src/engines/speech/abuse.rs): a model that judges a
/// sentence by its words, so that abuse in words no dictionary lists is heard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbuseClassifierConfig {
    /// false: the sentences are not judged (the table may stay).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The converted model (`scripts/abuse-model/fetch.sh` makes it).
    pub model: String,
    /// The model file's SHA-256 in hex, checked when the config loads.
    pub model_sha256: String,
    /// The scene its scores go to.
    #[serde(default = "default_abuse_scene")]
    pub scene: crate::model::Scene,
    /// The probability from which a sentence is suspicious (score 61) …
    #[serde(default = "default_abuse_suspicious")]
    pub suspicious_from: f64,
    /// … and sensitive (score 91).
    #[serde(default = "default_abuse_sensitive")]
    pub sensitive_from: f64,
}

fn default_abuse_scene() -> crate::model::Scene {
    crate::model::Scene::Abuse
}

fn default_abuse_suspicious() -> f64 {
    0.5
}

fn default_abuse_sensitive() -> f64 {
    0.8
}

fn default_speech_language() -> String {
    "en".to_owned()
}

fn default_speech_threads() -> usize {
    2
}

fn default_speech_concurrent() -> usize {
    1
}

fn default_max_speech() -> u64 {
    600
}

fn default_true() -> bool {
    true
}
