//! The `tencent_ams` engine: Tencent Cloud Audio Moderation (API version 2020-12-29).
//!
//! - Jobs arriving together are batched into one `CreateAudioModerationTask` call (`Type = AUDIO`,
//!   at most `max_batch` ≤ 10 `Tasks`, each `DataId` = earshot's trace id and `Input.Url` = a
//!   presigned GET URL), with `Seed` and a `CallbackUrl` carrying a signed job token (see
//!   [`crate::token`]) that names every job of the call.
//! - Every request is signed with TC3-HMAC-SHA256 ([`super::tc3`]), spaced to `rate_per_sec`
//!   (AMS: 20/s), and at most `max_concurrent` tasks (AMS: 10 for files) are in progress at once.
//!   `RequestLimitExceeded` is answered by pausing every request of this engine, doubling from 1 s.
//! - A result POSTed by AMS is trusted only when `X-Signature` = hex(sha256(seed + body)); its body
//!   is `DescribeTaskDetail`'s, which is also what polling returns.
//!
//! Mapping onto earshot's scenes (per entry of `Labels`, the highest score per scene wins):
//!
//! | AMS `Label` | scene |
//! |---|---|
//! | `Porn`, `Sexy`, `Moan` | porn |
//! | `Ad` | ads |
//! | `Polity`, `Illegal`, `Terror` | illegal |
//! | `Abuse` | abuse |
//! | `Normal` | — |
//! | anything else (`Custom`, new labels) | — (logged, label kept in the segments) |
//!
//! The score is AMS's `Score`, raised to at least 91 when AMS's `Suggestion` is `Block` and to 61
//! when it is `Review`, so AMS's own decision survives earshot's bands. The label is
//! `Label/SubLabel`. Segments come from `AudioSegments` (offset, duration, text).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::limit::Limiter;
use super::{
    Answer, EngineError, Headers, Provider, ResultError, Submission, TaskResult, Timing,
    VendorError, tc3,
};
use crate::config::AmsEngineConfig;
use crate::model::{Scene, SceneScore, Segment, Verdict};
use crate::token::{Claims, Signer, TokenJob};

pub const VERSION: &str = "2020-12-29";
const SERVICE: &str = "ams";
/// Tries of one request while AMS answers `RequestLimitExceeded` or cannot be reached.
const ATTEMPTS: u32 = 6;

pub struct AmsEngine {
    inner: Arc<Inner>,
    queue: mpsc::UnboundedSender<Queued>,
}

struct Inner {
    name: String,
    config: AmsEngineConfig,
    /// `Host` as sent (and signed): host, and port when not the scheme's default.
    host: String,
    http: reqwest::Client,
    limiter: Limiter,
    tokens: Signer,
}

struct Queued {
    submission: Submission,
    reply: oneshot::Sender<Result<String, EngineError>>,
}

impl AmsEngine {
    /// # Errors
    /// The endpoint is not a URL with a host.
    pub fn new(
        name: &str,
        config: AmsEngineConfig,
        tokens: Signer,
    ) -> Result<AmsEngine, EngineError> {
        let url = url::Url::parse(&config.endpoint)
            .map_err(|e| EngineError::failed(name, format!("endpoint: {e}")))?;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(EngineError::failed(name, "endpoint has no host")),
        };
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            host,
            http: super::http_client(name, Duration::from_secs(15))?,
            limiter: Limiter::new(config.rate_per_sec, config.max_concurrent),
            tokens,
            config,
        });
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(batch(inner.clone(), receiver));
        Ok(AmsEngine { inner, queue })
    }
}

/// Collects concurrent submissions into calls of up to `max_batch` tasks (one rule per call: the
/// token in the shared callback URL names one rule and bucket).
async fn batch(inner: Arc<Inner>, mut receiver: mpsc::UnboundedReceiver<Queued>) {
    let window = Duration::from_millis(inner.config.batch_window_ms);
    while let Some(first) = receiver.recv().await {
        let mut group = vec![first];
        let until = tokio::time::Instant::now() + window;
        while group.len() < inner.config.max_batch {
            match tokio::time::timeout_at(until, receiver.recv()).await {
                Ok(Some(queued)) => group.push(queued),
                _ => break,
            }
        }
        while !group.is_empty() {
            let (rule, bucket) = (
                group[0].submission.rule.clone(),
                group[0].submission.bucket.clone(),
            );
            let (same, rest): (Vec<_>, Vec<_>) = group
                .into_iter()
                .partition(|q| q.submission.rule == rule && q.submission.bucket == bucket);
            group = rest;
            tokio::spawn(create_tasks(inner.clone(), same));
        }
    }
}

async fn create_tasks(inner: Arc<Inner>, group: Vec<Queued>) {
    let first = &group[0].submission;
    let claims = Claims {
        engine: inner.name.clone(),
        rule: first.rule.clone(),
        bucket: first.bucket.clone(),
        expires: crate::clock::system_secs() + inner.config.deadline_secs + super::TOKEN_GRACE_SECS,
        jobs: group
            .iter()
            .map(|q| TokenJob {
                trace_id: q.submission.trace_id.clone(),
                key: q.submission.key.clone(),
                version_id: q.submission.version_id.clone(),
                etag: q.submission.etag.clone(),
            })
            .collect(),
    };
    let callback = super::result_url(
        &inner.config.callback_base_url,
        &inner.name,
        &inner.tokens.sign(&claims),
    );
    let tasks: Vec<Value> = group
        .iter()
        .map(|q| {
            json!({
                "DataId": q.submission.trace_id,
                "Name": q.submission.key.chars().take(64).collect::<String>(),
                "Input": {"Type": "URL", "Url": q.submission.url},
            })
        })
        .collect();
    let mut body = json!({
        "Type": "AUDIO",
        "Seed": inner.config.seed,
        "CallbackUrl": callback,
        "Tasks": tasks,
    });
    if let Some(biz_type) = &inner.config.biz_type {
        body["BizType"] = json!(biz_type);
    }
    tracing::debug!(engine = %inner.name, tasks = group.len(), "CreateAudioModerationTask.");
    let answer = inner.call("CreateAudioModerationTask", &body).await;
    for queued in group {
        let trace_id = queued.submission.trace_id;
        let result = match &answer {
            Err(e) => Err(EngineError::vendor(&inner.name, e.clone())),
            Ok(response) => task_id_for(response, &trace_id)
                .map_err(|message| EngineError::failed(&inner.name, message)),
        };
        let _ = queued.reply.send(result);
    }
}

/// The `TaskId` AMS created for `trace_id`, or why it created none.
fn task_id_for(response: &Value, trace_id: &str) -> Result<String, String> {
    let results = response["Results"].as_array().cloned().unwrap_or_default();
    let Some(result) = results.iter().find(|r| r["DataId"] == trace_id) else {
        return Err(format!(
            "CreateAudioModerationTask returned no result for DataId {trace_id}"
        ));
    };
    match (result["Code"].as_str(), result["TaskId"].as_str()) {
        (Some("OK"), Some(task_id)) if !task_id.is_empty() => Ok(task_id.to_owned()),
        (code, _) => Err(format!(
            "task not created: {} {}",
            code.unwrap_or("no Code"),
            result["Message"].as_str().unwrap_or("")
        )),
    }
}

impl Inner {
    /// One signed API call; the `Response` object. Throttling and unreachable endpoints are
    /// retried with backoff.
    async fn call(&self, action: &str, body: &Value) -> Result<Value, VendorError> {
        let payload = serde_json::to_vec(body).expect("JSON serialises");
        let mut backoff = super::vendor_backoff();
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            self.limiter.request_slot().await;
            let timestamp = i64::try_from(crate::clock::system_secs()).unwrap_or(i64::MAX);
            let request = tc3::Request {
                service: SERVICE,
                host: &self.host,
                content_type: tc3::CONTENT_TYPE,
                payload: &payload,
                timestamp,
            };
            let authorization =
                tc3::authorization(&self.config.secret_id, &self.config.secret_key, &request);
            let mut http = self
                .http
                .post(&self.config.endpoint)
                .header("Authorization", authorization)
                .header("Content-Type", tc3::CONTENT_TYPE)
                .header("Host", &self.host)
                .header("X-TC-Action", action)
                .header("X-TC-Version", VERSION)
                .header("X-TC-Timestamp", timestamp.to_string());
            if let Some(region) = &self.config.region {
                http = http.header("X-TC-Region", region);
            }
            let sent = http.body(payload.clone()).send().await;
            let reply = match sent {
                Ok(response) => response.json::<Value>().await,
                Err(e) => Err(e),
            };
            let response = match reply {
                Ok(mut value) => value["Response"].take(),
                Err(e) => {
                    let error = VendorError::from_http(action, &e);
                    tracing::warn!(engine = %self.name, attempt, %error, "AMS unreachable; retrying.");
                    last = Some(error);
                    backoff.wait().await;
                    continue;
                }
            };
            let Some(error) = response.get("Error") else {
                return Ok(response);
            };
            let refused = VendorError::Refused {
                call: action.to_owned(),
                code: error["Code"].as_str().unwrap_or("").to_owned(),
                message: error["Message"].as_str().unwrap_or("").to_owned(),
            };
            let throttled = matches!(&refused, VendorError::Refused { code, .. } if code.starts_with("RequestLimitExceeded"));
            if !throttled {
                return Err(refused);
            }
            let pause = backoff.next_delay();
            tracing::warn!(engine = %self.name, attempt, pause_ms = pause.as_millis() as u64, "AMS is throttling; backing off.");
            self.limiter.back_off(pause).await;
            last = Some(refused);
        }
        Err(VendorError::GaveUp {
            attempts: ATTEMPTS,
            last: Box::new(last.expect("every try that did not return set `last`")),
        })
    }
}

#[async_trait::async_trait]
impl Provider for AmsEngine {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn url_expiry(&self) -> Duration {
        Duration::from_secs(self.inner.config.url_expiry_secs)
    }

    async fn submit(&self, submission: &Submission) -> Result<Answer, EngineError> {
        let inner = &self.inner;
        inner.limiter.acquire_task(&submission.trace_id).await;
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            submission: submission.clone(),
            reply,
        };
        let result = match self.queue.send(queued) {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err(EngineError::failed(&inner.name, "batcher stopped"))),
            Err(_) => Err(EngineError::failed(&inner.name, "batcher stopped")),
        };
        match result {
            Ok(task_id) => Ok(Answer::Submitted { task_id }),
            Err(e) => {
                inner.limiter.release(&submission.trace_id);
                Err(e)
            }
        }
    }

    fn read_result(
        &self,
        headers: &Headers,
        body: &[u8],
    ) -> Result<Option<TaskResult>, ResultError> {
        let given = headers
            .get("x-signature")
            .ok_or_else(|| ResultError::Unauthenticated("no X-Signature header".to_owned()))?;
        let given = given.to_ascii_lowercase();
        if !crate::signing::x_signature_matches(&self.inner.config.seed, body, &given) {
            return Err(ResultError::Unauthenticated(
                "X-Signature does not match the body".to_owned(),
            ));
        }
        result_of(body, &self.inner.name).map_err(ResultError::Malformed)
    }

    async fn poll(&self, task_id: &str, trace_id: &str) -> Result<Option<TaskResult>, EngineError> {
        let inner = &self.inner;
        let response = inner
            .call("DescribeTaskDetail", &json!({"TaskId": task_id}))
            .await
            .map_err(|e| EngineError::vendor(&inner.name, e))?;
        let mut detail: TaskDetail = serde_json::from_value(response)
            .map_err(|e| EngineError::failed(&inner.name, format!("DescribeTaskDetail: {e}")))?;
        detail.data_id.get_or_insert_with(|| trace_id.to_owned());
        Ok(detail.into_result(&inner.name))
    }

    fn timing(&self) -> Timing {
        Timing {
            poll_after: Duration::from_secs(self.inner.config.poll_after_secs),
            deadline: Duration::from_secs(self.inner.config.deadline_secs),
        }
    }

    fn task_done(&self, trace_id: &str) {
        self.inner.limiter.release(trace_id);
    }

    fn tasks_held(&self) -> Vec<String> {
        self.inner.limiter.holders()
    }

    fn task_outstanding(&self, trace_id: &str) {
        self.inner.limiter.adopt(trace_id);
    }
}

/// `DescribeTaskDetail`'s answer, which is also the callback body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskDetail {
    data_id: Option<String>,
    task_id: Option<String>,
    status: Option<String>,
    suggestion: Option<String>,
    label: Option<String>,
    #[serde(default)]
    labels: Option<Vec<TaskLabel>>,
    #[serde(default)]
    audio_segments: Option<Vec<AudioSegment>>,
    error_type: Option<String>,
    error_description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskLabel {
    label: Option<String>,
    suggestion: Option<String>,
    score: Option<i64>,
    sub_label: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AudioSegment {
    offset_time: Option<Value>,
    result: Option<AudioResult>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AudioResult {
    label: Option<String>,
    suggestion: Option<String>,
    score: Option<i64>,
    text: Option<String>,
    /// Milliseconds.
    duration: Option<Value>,
}

/// A number AMS may send as a number or a string.
fn number(value: Option<&Value>) -> f64 {
    match value {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// The result in the body of an AMS task (a callback's or `DescribeTaskDetail`'s); None while
/// the task has not finished.
///
/// # Errors
/// The body is not an AMS task result.
pub fn result_of(body: &[u8], engine: &str) -> Result<Option<TaskResult>, String> {
    let detail: TaskDetail =
        serde_json::from_slice(body).map_err(|e| format!("not an AMS task result: {e}"))?;
    Ok(detail.into_result(engine))
}

/// The scene of an AMS label; None for `Normal` and labels earshot does not know.
pub fn scene_of(label: &str) -> Option<Scene> {
    match label.to_ascii_lowercase().as_str() {
        "porn" | "sexy" | "moan" => Some(Scene::Porn),
        "ad" => Some(Scene::Ads),
        "polity" | "illegal" | "terror" => Some(Scene::Illegal),
        "abuse" => Some(Scene::Abuse),
        _ => None,
    }
}

/// AMS's score under earshot's bands: `Block` is at least 91, `Review` at least 61.
fn score(score: Option<i64>, suggestion: Option<&str>) -> u8 {
    let score = u8::try_from(score.unwrap_or(0).clamp(0, 100)).unwrap_or(0);
    match suggestion {
        Some(s) if s.eq_ignore_ascii_case("block") => score.max(91),
        Some(s) if s.eq_ignore_ascii_case("review") => score.max(61),
        _ => score,
    }
}

impl TaskDetail {
    fn into_result(self, engine: &str) -> Option<TaskResult> {
        let trace_id = self.data_id.clone().unwrap_or_default();
        let status = self.status.as_deref().unwrap_or("").to_ascii_uppercase();
        let outcome = match status.as_str() {
            "FINISH" => Ok(self.verdict(engine)),
            "ERROR" | "CANCELLED" => Err(format!(
                "AMS task {} {status}: {} {}",
                self.task_id.as_deref().unwrap_or("?"),
                self.error_type.as_deref().unwrap_or(""),
                self.error_description.as_deref().unwrap_or("")
            )),
            _ => return None,
        };
        Some(TaskResult { trace_id, outcome })
    }

    fn verdict(&self, engine: &str) -> Verdict {
        let mut verdict = Verdict::default();
        let mut labels: Vec<TaskLabel> = self.labels.iter().flatten().cloned().collect();
        if labels.is_empty()
            && let Some(label) = &self.label
        {
            labels.push(TaskLabel {
                label: Some(label.clone()),
                suggestion: self.suggestion.clone(),
                score: None,
                sub_label: None,
            });
        }
        for TaskLabel {
            label,
            suggestion,
            score: raw,
            sub_label,
        } in labels
        {
            let label = label.unwrap_or_default();
            let Some(scene) = scene_of(&label) else {
                if !label.eq_ignore_ascii_case("normal") && !label.is_empty() {
                    tracing::warn!(%engine, %label, "AMS label has no earshot scene; not scored.");
                }
                continue;
            };
            let named = match sub_label.filter(|s| !s.is_empty()) {
                Some(sub) => format!("{label}/{sub}"),
                None => label.clone(),
            };
            verdict.raise(
                scene,
                SceneScore {
                    score: score(raw, suggestion.as_deref()),
                    label: named,
                    segments: Vec::new(),
                },
            );
        }
        for segment in self.audio_segments.iter().flatten() {
            let Some(result) = &segment.result else {
                continue;
            };
            let label = result.label.clone().unwrap_or_default();
            let Some(scene) = scene_of(&label) else {
                continue;
            };
            let score = score(result.score, result.suggestion.as_deref());
            let text = result.text.clone().unwrap_or_default();
            verdict.raise(
                scene,
                SceneScore {
                    score,
                    label: label.clone(),
                    segments: vec![Segment {
                        offset_secs: number(segment.offset_time.as_ref()),
                        duration_secs: number(result.duration.as_ref()) / 1000.0,
                        score,
                        label: if text.is_empty() {
                            label
                        } else {
                            format!("{label}: {text}")
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
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_suggestions_and_segments_map_onto_scenes() {
        let body = json!({
            "TaskId": "t1", "DataId": "d1", "Status": "FINISH", "Suggestion": "Block",
            "Label": "Porn",
            "Labels": [
                {"Label": "Porn", "Suggestion": "Block", "Score": 88, "SubLabel": "SexualAct"},
                {"Label": "Ad", "Suggestion": "Review", "Score": 40},
                {"Label": "Abuse", "Suggestion": "Pass", "Score": 12},
                {"Label": "Custom", "Suggestion": "Block", "Score": 99},
                {"Label": "Normal", "Suggestion": "Pass", "Score": 0}
            ],
            "AudioSegments": [
                {"OffsetTime": "30", "Result": {"Label": "Porn", "Suggestion": "Block", "Score": 97,
                  "Text": "…", "Duration": "15000"}}
            ]
        });
        let detail: TaskDetail = serde_json::from_value(body).unwrap();
        let result = detail.into_result("ams").unwrap();
        assert_eq!(result.trace_id, "d1");
        let verdict = result.outcome.unwrap();
        let porn = verdict.score(Scene::Porn).unwrap();
        assert_eq!(porn.score, 97, "the segment's 97 beats the label's 88 → 91");
        assert_eq!(porn.segments.len(), 1);
        assert_eq!(porn.segments[0].offset_secs, 30.0);
        assert_eq!(porn.segments[0].duration_secs, 15.0);
        assert_eq!(verdict.score(Scene::Ads).unwrap().score, 61);
        assert_eq!(verdict.score(Scene::Abuse).unwrap().score, 12);
        assert!(verdict.score(Scene::Illegal).is_none());
    }

    #[test]
    fn running_tasks_are_not_results_and_errors_say_why() {
        let running: TaskDetail =
            serde_json::from_value(json!({"DataId": "d", "Status": "RUNNING"})).unwrap();
        assert!(running.into_result("ams").is_none());
        let failed: TaskDetail = serde_json::from_value(json!({
            "DataId": "d", "TaskId": "t", "Status": "ERROR",
            "ErrorType": "DECODE_ERROR", "ErrorDescription": "bad file"
        }))
        .unwrap();
        let error = failed.into_result("ams").unwrap().outcome.unwrap_err();
        assert!(
            error.contains("DECODE_ERROR") && error.contains("bad file"),
            "{error}"
        );
    }
}
