//! The `shumei` engine: Shumei's (数美) audio file API.
//!
//! One request per upload to `<cluster>/audio/v4` with `accessKey`, `appId`, `eventId`, `type`
//! (risk types such as `EROTIC_ADVERT_POLITY_DIRTY`), `data` (`btId` = earshot's trace id, `url` =
//! a presigned GET URL, `lang`, `tokenId`, `returnAllText`, `returnFinishInfo = 1`) and `callback`
//! = earshot's result URL with a signed job token. Shumei does not sign its callbacks: the token in
//! the URL (HMAC, expiring, naming the one job whose `btId` it accepts) is what authenticates one.
//! A missing result is polled with `<cluster>/query_audio/v4`.
//!
//! Cluster by `region`: `sh` Shanghai, `xjp` Singapore, `gg` Silicon Valley
//! (`http://api-audio-<region>.fengkongcloud.com`). Code 1100 is success; 1901 (QPS over the
//! limit) is answered with backoff like AMS's `RequestLimitExceeded`.
//!
//! Mapping onto earshot's scenes, per `audioDetail` entry by `riskLabel1` (or the risk type that
//! found it), the highest per scene winning:
//!
//! | Shumei | scene |
//! |---|---|
//! | `porn`, `EROTIC`, `MOAN`, `moan` | porn |
//! | `ad`, `ADVERT`, `ADLAW`, `adlaw` | ads |
//! | `politics`, `POLITY`, `AUDIOPOLITICAL`, `violence`, `VIOLENT`, `ban`, `BAN`, `BANEDAUDIO`, `ANTHEN` | illegal |
//! | `abuse`, `DIRTY` | abuse |
//! | anything else | — (logged, not scored) |
//!
//! Scores: `riskLevel` `REJECT` → 99, `REVIEW` → 75, `PASS` → 0. The label passes Shumei's own
//! words through: `riskLabel1/riskLabel2/riskLabel3: riskDescription`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::VendorError;
use super::limit::Limiter;
use super::{Answer, EngineError, Headers, Provider, ResultError, Submission, TaskResult, Timing};
use crate::config::ShumeiEngineConfig;
use crate::model::{Scene, SceneScore, Segment, Verdict};
use crate::token::{Claims, Signer, TokenJob};

const SUCCESS: i64 = 1100;
const QPS_EXCEEDED: i64 = 1901;
const ATTEMPTS: u32 = 6;

pub struct ShumeiEngine {
    name: String,
    config: ShumeiEngineConfig,
    base: String,
    http: reqwest::Client,
    limiter: Limiter,
    tokens: Signer,
}

impl ShumeiEngine {
    /// # Errors
    /// Never today; kept fallible like the other engines' constructors.
    pub fn new(
        name: &str,
        config: ShumeiEngineConfig,
        tokens: Signer,
    ) -> Result<ShumeiEngine, EngineError> {
        let base = config
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("http://api-audio-{}.fengkongcloud.com", config.region));
        Ok(ShumeiEngine {
            name: name.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            http: super::http_client(name, Duration::from_secs(10))?,
            limiter: Limiter::new(config.rate_per_sec, config.max_concurrent),
            tokens,
            config,
        })
    }

    /// POSTs `body` to `path`; the answer when its `code` is 1100 (or, for a query, anything but
    /// an error). QPS refusals and unreachable clusters are retried with backoff.
    async fn call(&self, path: &str, body: &Value) -> Result<Value, VendorError> {
        let mut backoff = super::vendor_backoff();
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            self.limiter.request_slot().await;
            let sent = self
                .http
                .post(format!("{}{path}", self.base))
                .json(body)
                .send()
                .await;
            let answer = match sent {
                Ok(response) => response.json::<Value>().await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(value) if value["code"].as_i64() == Some(QPS_EXCEEDED) => {
                    tracing::warn!(engine = %self.name, attempt, "Shumei refused: QPS over the limit; backing off.");
                    last = Some(VendorError::Refused {
                        call: path.to_owned(),
                        code: QPS_EXCEEDED.to_string(),
                        message: value["message"].as_str().unwrap_or("").to_owned(),
                    });
                    self.limiter.back_off(backoff.next_delay()).await;
                }
                Ok(value) => return Ok(value),
                Err(e) => {
                    let error = VendorError::from_http(path, &e);
                    tracing::warn!(engine = %self.name, attempt, %error, "Shumei unreachable; retrying.");
                    last = Some(error);
                    backoff.wait().await;
                }
            }
        }
        Err(VendorError::GaveUp {
            attempts: ATTEMPTS,
            last: Box::new(last.expect("every try that did not return set `last`")),
        })
    }
}

#[async_trait::async_trait]
impl Provider for ShumeiEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn url_expiry(&self) -> Duration {
        Duration::from_secs(self.config.url_expiry_secs)
    }

    async fn submit(&self, submission: &Submission) -> Result<Answer, EngineError> {
        self.limiter.acquire_task(&submission.trace_id).await;
        let claims = Claims {
            engine: self.name.clone(),
            rule: submission.rule.clone(),
            bucket: submission.bucket.clone(),
            expires: crate::clock::system_secs()
                + self.config.deadline_secs
                + super::TOKEN_GRACE_SECS,
            jobs: vec![TokenJob {
                trace_id: submission.trace_id.clone(),
                key: submission.key.clone(),
                version_id: submission.version_id.clone(),
                etag: submission.etag.clone(),
            }],
        };
        let callback = super::result_url(
            &self.config.callback_base_url,
            &self.name,
            &self.tokens.sign(&claims),
        );
        let body = json!({
            "accessKey": self.config.access_key,
            "appId": self.config.app_id,
            "eventId": self.config.event_id,
            "type": self.config.risk_types,
            "callback": callback,
            "data": {
                "btId": submission.trace_id,
                "url": submission.url,
                "lang": self.config.lang,
                "tokenId": self.config.token_id,
                "returnAllText": 1,
                "returnFinishInfo": 1,
            },
        });
        let answer = self.call("/audio/v4", &body).await;
        let result = match answer {
            Ok(value) if value["code"].as_i64() == Some(SUCCESS) => Ok(Answer::Submitted {
                task_id: value["requestId"]
                    .as_str()
                    .unwrap_or(&submission.trace_id)
                    .to_owned(),
            }),
            Ok(value) => Err(VendorError::Refused {
                call: "/audio/v4".to_owned(),
                code: value["code"].to_string(),
                message: value["message"].as_str().unwrap_or("").to_owned(),
            }),
            Err(e) => Err(e),
        };
        result.map_err(|error| {
            self.limiter.release(&submission.trace_id);
            EngineError::vendor(&self.name, error)
        })
    }

    fn read_result(
        &self,
        _headers: &Headers,
        body: &[u8],
    ) -> Result<Option<TaskResult>, ResultError> {
        result_of(body, &self.name).map_err(ResultError::Malformed)
    }

    async fn poll(
        &self,
        _task_id: &str,
        trace_id: &str,
    ) -> Result<Option<TaskResult>, EngineError> {
        let body = json!({"accessKey": self.config.access_key, "btId": trace_id});
        let value = self
            .call("/query_audio/v4", &body)
            .await
            .map_err(|e| EngineError::vendor(&self.name, e))?;
        let mut result: AudioResult = serde_json::from_value(value)
            .map_err(|e| EngineError::failed(&self.name, format!("/query_audio/v4: {e}")))?;
        result.bt_id.get_or_insert_with(|| trace_id.to_owned());
        Ok(result.into_result(&self.name))
    }

    fn timing(&self) -> Timing {
        Timing {
            poll_after: Duration::from_secs(self.config.poll_after_secs),
            deadline: Duration::from_secs(self.config.deadline_secs),
        }
    }

    fn task_done(&self, trace_id: &str) {
        self.limiter.release(trace_id);
    }

    fn tasks_held(&self) -> Vec<String> {
        self.limiter.holders()
    }

    fn task_outstanding(&self, trace_id: &str) {
        self.limiter.adopt(trace_id);
    }
}

/// A callback body, or a `query_audio` answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AudioResult {
    code: Option<i64>,
    message: Option<String>,
    bt_id: Option<String>,
    risk_level: Option<String>,
    #[serde(default)]
    audio_detail: Vec<Detail>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    #[serde(default)]
    audio_starttime: f64,
    #[serde(default)]
    audio_endtime: f64,
    audio_text: Option<String>,
    risk_level: Option<String>,
    #[serde(default)]
    risk_label1: String,
    #[serde(default)]
    risk_label2: String,
    #[serde(default)]
    risk_label3: String,
    #[serde(default)]
    risk_description: String,
    /// Which of the requested risk types found it, when Shumei says.
    #[serde(default)]
    risk_type: Option<String>,
}

/// The result in the body of a Shumei audio callback or query; None while it has not finished.
///
/// # Errors
/// The body is not a Shumei audio result.
pub fn result_of(body: &[u8], engine: &str) -> Result<Option<TaskResult>, String> {
    let result: AudioResult =
        serde_json::from_slice(body).map_err(|e| format!("not a Shumei audio result: {e}"))?;
    Ok(result.into_result(engine))
}

/// The scene of a Shumei label or risk type.
pub fn scene_of(label: &str) -> Option<Scene> {
    match label.to_ascii_lowercase().as_str() {
        "porn" | "erotic" | "moan" | "sexy" => Some(Scene::Porn),
        "ad" | "advert" | "adlaw" => Some(Scene::Ads),
        "politics" | "polity" | "audiopolitical" | "violence" | "violent" | "ban"
        | "banedaudio" | "anthen" => Some(Scene::Illegal),
        "abuse" | "dirty" => Some(Scene::Abuse),
        _ => None,
    }
}

fn score_of(level: Option<&str>) -> u8 {
    match level.map(str::to_ascii_uppercase).as_deref() {
        Some("REJECT") => 99,
        Some("REVIEW") => 75,
        _ => 0,
    }
}

impl AudioResult {
    fn into_result(self, engine: &str) -> Option<TaskResult> {
        let trace_id = self.bt_id.clone().unwrap_or_default();
        match self.code {
            Some(SUCCESS) if self.risk_level.is_some() => {}
            // A query for a task still running, or a notice that carries no verdict.
            Some(SUCCESS | 1101 | 1102) | None => return None,
            Some(code) => {
                return Some(TaskResult {
                    trace_id,
                    outcome: Err(format!(
                        "Shumei: {code} {}",
                        self.message.as_deref().unwrap_or("")
                    )),
                });
            }
        }
        let mut verdict = Verdict::default();
        for detail in &self.audio_detail {
            let score = score_of(detail.risk_level.as_deref());
            if score == 0 {
                continue;
            }
            let by_label = scene_of(&detail.risk_label1);
            let scene = by_label.or_else(|| detail.risk_type.as_deref().and_then(scene_of));
            let words: Vec<&str> = [
                detail.risk_label1.as_str(),
                detail.risk_label2.as_str(),
                detail.risk_label3.as_str(),
            ]
            .into_iter()
            .filter(|w| !w.is_empty())
            .collect();
            let mut label = words.join("/");
            if !detail.risk_description.is_empty() {
                label = format!("{label}: {}", detail.risk_description);
            }
            let Some(scene) = scene else {
                tracing::warn!(%engine, %label, "Shumei label has no earshot scene; not scored.");
                continue;
            };
            let text = detail.audio_text.clone().unwrap_or_default();
            verdict.raise(
                scene,
                SceneScore {
                    score,
                    label: label.clone(),
                    segments: vec![Segment {
                        offset_secs: detail.audio_starttime,
                        duration_secs: (detail.audio_endtime - detail.audio_starttime).max(0.0),
                        score,
                        label: if text.is_empty() {
                            label
                        } else {
                            format!("{label} ({text})")
                        },
                        reference_id: None,
                        reference_offset_secs: None,
                        text: None,
                        term: None,
                        context: None,
                        ..Segment::default()
                    }],
                },
            );
        }
        // An overall REJECT with no segment earshot can place is still not a pass.
        if verdict.scenes.is_empty() && score_of(self.risk_level.as_deref()) > 0 {
            tracing::warn!(%engine, risk_level = ?self.risk_level, "Shumei flagged the audio without a label earshot can place.");
        }
        Some(TaskResult {
            trace_id,
            outcome: Ok(verdict),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_map_onto_scenes_and_labels_pass_through() {
        let body = json!({
            "code": 1100, "message": "成功", "requestId": "r", "btId": "b1", "riskLevel": "REJECT",
            "audioDetail": [
                {"audioStarttime": 10, "audioEndtime": 20, "riskLevel": "REJECT",
                 "riskLabel1": "porn", "riskLabel2": "sexual", "riskLabel3": "moaning",
                 "riskDescription": "色情:性行为", "audioText": "…"},
                {"audioStarttime": 30, "audioEndtime": 40, "riskLevel": "REVIEW",
                 "riskLabel1": "ad", "riskDescription": "广告"},
                {"audioStarttime": 50, "audioEndtime": 60, "riskLevel": "REJECT",
                 "riskLabel1": "banedaudio", "riskDescription": "违禁歌曲"},
                {"audioStarttime": 70, "audioEndtime": 80, "riskLevel": "PASS", "riskLabel1": "normal"}
            ]
        });
        let result: AudioResult = serde_json::from_value(body).unwrap();
        let result = result.into_result("sm").unwrap();
        assert_eq!(result.trace_id, "b1");
        let verdict = result.outcome.unwrap();
        let porn = verdict.score(Scene::Porn).unwrap();
        assert_eq!(porn.score, 99);
        assert_eq!(porn.label, "porn/sexual/moaning: 色情:性行为");
        assert_eq!(porn.segments[0].offset_secs, 10.0);
        assert_eq!(porn.segments[0].duration_secs, 10.0);
        assert_eq!(verdict.score(Scene::Ads).unwrap().score, 75);
        assert_eq!(verdict.score(Scene::Illegal).unwrap().score, 99);
        assert!(verdict.score(Scene::Abuse).is_none());
    }

    #[test]
    fn errors_and_unfinished_queries() {
        let error: AudioResult =
            serde_json::from_value(json!({"code": 1902, "message": "参数不合法", "btId": "b"}))
                .unwrap();
        let error = error.into_result("sm").unwrap().outcome.unwrap_err();
        assert!(error.contains("1902"), "{error}");
        let running: AudioResult =
            serde_json::from_value(json!({"code": 1100, "btId": "b"})).unwrap();
        assert!(running.into_result("sm").is_none());
    }
}
