//! `[engines.NAME]`: one moderation engine each, told apart by `type`.

use serde::{Deserialize, Serialize};

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
