//! The callback (DESIGN §6): the COS "Simple" body, its `X-Signature`, and delivery with bounded
//! retries and backoff. What still fails is handed back as [`Delivery::Failed`] for the pipeline
//! to dead-letter; nothing is dropped silently.
//!
//! `code` is 0 when the object was moderated. A job that could not be moderated still calls back,
//! with one of the [`Code`]s below and a `message` saying why.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::config::CallbackConfig;
use crate::model::{ForbiddenStatus, HitFlag, Scene, Segment, Severity};
use crate::signing::x_signature;

/// The callback's `code`. Stable: users branch on these numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Moderated; `data` holds the result.
    Success = 0,
    /// Not an audio file earshot recognises (e.g. text named `.mp3`).
    UnrecognisedFormat = 1001,
    /// An audio format or codec earshot cannot decode yet.
    UnsupportedCodec = 1002,
    /// The audio is damaged: nothing, or too little, decodes.
    CorruptAudio = 1003,
    /// The object has 0 bytes.
    EmptyObject = 1004,
    /// Over `limits.max_object_bytes`.
    TooLarge = 1005,
    /// Over `limits.max_duration_secs`.
    TooLong = 1006,
    /// The object was deleted before it could be fetched.
    ObjectGone = 1101,
    /// The object was overwritten since its event; the new version is judged on its own event.
    ObjectChanged = 1102,
    /// The engine could not judge the object.
    EngineFailure = 1201,
    /// An asynchronous engine (AMS, Shumei) sent no result by its deadline, even when asked.
    EngineTimeout = 1202,
    /// Moderated and due to be blocked, but the block cannot be done (e.g. the bucket refuses
    /// ACLs). `data` holds the scores; `forbidden_status` is 0.
    BlockFailed = 1301,
}

impl Code {
    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

/// The body POSTed to the callback URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Body {
    pub code: i32,
    pub message: String,
    pub data: Data,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Data {
    pub url: String,
    /// 0 normal, 1 sensitive, 2 suspicious.
    pub result: Severity,
    /// 0 not blocked, 1 blocked by ACL, 2 moved to the backup directory.
    pub forbidden_status: ForbiddenStatus,
    pub trace_id: String,
    pub porn_info: SceneInfo,
    pub ads_info: SceneInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub illegal_info: Option<SceneInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abuse_info: Option<SceneInfo>,
    // Fields earshot adds to the COS body.
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The rule that governed the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Where a moved object now is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_key: Option<String>,
    /// With `callback.detail = true`: where in the upload each finding is, like COS's "Detail".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentInfo>,
    /// The dictionary terms heard, whatever `callback.detail` says: for the history, never sent
    /// (with `callback.detail` the segments carry them).
    #[serde(skip)]
    pub terms: Vec<String>,
    /// Engines of the rule that could not judge, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engine_errors: Vec<EngineErrorInfo>,
    /// How the job came: `upload`, `scan`, `batch`, `retro`, `manual`, or `restore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What a person did to the object (a restore, a review decision), with who, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionInfo>,
    /// With `review = "human"`: the object waits for a person, or a person decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewInfo>,
}

/// Where a human review stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewInfo {
    /// `pending`, then the decision: `block` or `pass`.
    pub state: String,
    /// The object was held (blocked) while it waited, rather than left published.
    pub held: bool,
    /// When `on_review_timeout` decides if nobody has (seconds since the Unix epoch).
    pub due_at: u64,
    /// The decision was `on_review_timeout`'s, not a person's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timeout: bool,
}

/// A person's action on an object, as the callback and the audit log report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionInfo {
    /// `restore`, or a review's `block` or `pass`.
    pub action: String,
    pub by: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
    pub reason: String,
}

/// An engine that could not judge the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineErrorInfo {
    pub engine: String,
    pub message: String,
}

impl Data {
    /// Adds the terms of `segments` to [`Data::terms`], each once, in the order heard.
    pub fn note_terms<'a>(&mut self, segments: impl IntoIterator<Item = &'a Segment>) {
        for term in segments.into_iter().filter_map(|s| s.term.as_ref()) {
            if !self.terms.contains(term) {
                self.terms.push(term.clone());
            }
        }
    }
}

impl EngineErrorInfo {
    /// `engine A failed: …; engine B failed: …`, for a message or a log line.
    pub fn describe(failures: &[EngineErrorInfo]) -> String {
        failures
            .iter()
            .map(|f| format!("engine {} failed: {}", f.engine, f.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One finding's place in the upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub scene: Scene,
    #[serde(flatten)]
    pub segment: Segment,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneInfo {
    pub hit_flag: HitFlag,
    pub score: u8,
    pub label: String,
    /// The engine whose score this is (the highest among the rule's engines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered { attempts: u32, status: u16 },
    Failed { attempts: u32, error: String },
}

/// A callback ready to send: the URL, the exact body bytes, and the signature over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The body exactly as sent (and signed).
    pub body: String,
}

impl Request {
    pub fn new(config: &CallbackConfig, body: &Body) -> Request {
        let body = serde_json::to_string(body).expect("a callback body always serialises");
        Request {
            url: config.url.clone(),
            signature: config
                .seed
                .as_deref()
                .map(|seed| x_signature(seed, body.as_bytes())),
            body,
        }
    }
}

/// Sends callbacks.
#[derive(Debug, Clone)]
pub struct Notifier {
    http: reqwest::Client,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier {
            http: reqwest::Client::builder()
                .user_agent(concat!("earshot/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the HTTP client builds with static settings"),
        }
    }
}

impl Notifier {
    /// POSTs `request`, retrying with exponential backoff (with jitter, up to 60 s apart) up to
    /// `config.max_attempts` times. A 2xx answer is delivery; 4xx answers other than 408 and 429
    /// are not retried.
    pub async fn deliver(&self, config: &CallbackConfig, request: &Request) -> Delivery {
        let mut backoff = Backoff::new(
            Duration::from_millis(config.initial_backoff_ms),
            Duration::from_secs(60),
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (retryable, error) = match self.send_once(config, request).await {
                Ok(status) if (200..300).contains(&status) => {
                    return Delivery::Delivered {
                        attempts: attempt,
                        status,
                    };
                }
                Ok(status) => (
                    status >= 500 || status == 408 || status == 429,
                    format!("callback URL answered HTTP {status}"),
                ),
                Err(e) => (true, format!("callback request failed: {e}")),
            };
            if !retryable || attempt >= config.max_attempts {
                return Delivery::Failed {
                    attempts: attempt,
                    error,
                };
            }
            tracing::warn!(url = %request.url, attempt, %error, "Callback failed; will retry.");
            backoff.wait().await;
        }
    }

    async fn send_once(&self, config: &CallbackConfig, request: &Request) -> Result<u16, String> {
        let mut post = self
            .http
            .post(&request.url)
            .timeout(Duration::from_secs(config.timeout_secs))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body.clone());
        if let Some(signature) = &request.signature {
            post = post.header("X-Signature", signature);
        }
        let response = post.send().await.map_err(|e| {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                text.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            text
        })?;
        Ok(response.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_cos_shape() {
        let body = Body {
            code: 0,
            message: "success".into(),
            data: Data {
                url: "http://h/b/k.mp3".into(),
                result: Severity::Sensitive,
                forbidden_status: ForbiddenStatus::Moved,
                trace_id: "t".into(),
                porn_info: SceneInfo {
                    hit_flag: HitFlag::Hit,
                    score: 100,
                    label: "x".into(),
                    engine: None,
                },
                ads_info: SceneInfo::default(),
                illegal_info: None,
                abuse_info: None,
                bucket: "b".into(),
                key: "k.mp3".into(),
                version_id: None,
                rule_id: Some("r".into()),
                backup_key: None,
                segments: Vec::new(),
                terms: Vec::new(),
                engine_errors: Vec::new(),
                source: Some("upload".into()),
                action: None,
                review: None,
            },
        };
        let value: serde_json::Value = serde_json::to_value(&body).expect("serialises");
        for pointer in [
            "/code",
            "/message",
            "/data/url",
            "/data/result",
            "/data/forbidden_status",
            "/data/trace_id",
            "/data/porn_info/hit_flag",
            "/data/porn_info/score",
            "/data/porn_info/label",
            "/data/ads_info/hit_flag",
        ] {
            assert!(value.pointer(pointer).is_some(), "{pointer} missing");
        }
        assert!(value.pointer("/data/illegal_info").is_none());
    }
}
