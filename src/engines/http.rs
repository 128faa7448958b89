//! The `http` engine: a user's own classifier, called synchronously. The contract is
//! `openapi/http-engine.yaml`:
//!
//! `POST <url>` `{"url": <presigned GET URL>, "bucket", "key", "version_id", "trace_id", "scenes"}`
//! → `200 {"<scene>": {"score": 0–100, "label": "…", "segments": [{"offset_secs", "duration_secs",
//! "score", "label"}]}, …}`. Scenes left out score 0; a non-2xx answer, a timeout or a body that
//! breaks the contract is an engine failure (the rule's `on_engine_error` decides what follows).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

use super::{Classifier, EngineError, Submission};
use crate::config::HttpEngineConfig;
use crate::model::{Scene, SceneScore, Segment, Verdict};

pub struct HttpEngine {
    name: String,
    config: HttpEngineConfig,
    http: reqwest::Client,
    slots: Semaphore,
}

impl HttpEngine {
    /// # Errors
    /// The HTTP client could not be built.
    pub fn new(name: &str, config: HttpEngineConfig) -> Result<HttpEngine, EngineError> {
        Ok(HttpEngine {
            name: name.to_owned(),
            http: super::http_client(name, Duration::from_secs(config.timeout_secs))?,
            slots: Semaphore::new(config.max_concurrent),
            config,
        })
    }
}

#[derive(Debug, Deserialize)]
struct SceneAnswer {
    score: f64,
    #[serde(default)]
    label: String,
    #[serde(default)]
    segments: Vec<SegmentAnswer>,
}

#[derive(Debug, Deserialize)]
struct SegmentAnswer {
    offset_secs: f64,
    #[serde(default)]
    duration_secs: f64,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    label: String,
}

fn score(value: f64) -> Result<u8, String> {
    if (0.0..=100.0).contains(&value) {
        Ok(value.round() as u8)
    } else {
        Err(format!("score {value} is outside 0–100"))
    }
}

/// The verdict in an engine's answer (a JSON object of scene answers) for the scenes asked.
///
/// # Errors
/// The answer is not JSON of that shape, or breaks the contract (a score out of range, a scene
/// asked for and not answered).
pub fn verdict_of(body: &[u8], scenes: &[Scene]) -> Result<Verdict, String> {
    let answer: BTreeMap<String, SceneAnswer> =
        serde_json::from_slice(body).map_err(|e| e.to_string())?;
    verdict(answer, scenes)
}

/// The verdict in a classifier's answer, for the scenes asked about.
fn verdict(answer: BTreeMap<String, SceneAnswer>, scenes: &[Scene]) -> Result<Verdict, String> {
    let mut verdict = Verdict::default();
    for (name, answer) in answer {
        let Ok(scene) = name.parse::<Scene>() else {
            tracing::debug!(scene = %name, "Classifier answered a scene earshot does not know; ignored.");
            continue;
        };
        if !scenes.contains(&scene) {
            continue;
        }
        let scene_score = score(answer.score)?;
        let mut segments = Vec::new();
        for segment in answer.segments {
            segments.push(Segment {
                offset_secs: segment.offset_secs,
                duration_secs: segment.duration_secs,
                score: score(segment.score.unwrap_or(answer.score))?,
                label: segment.label,
                reference_id: None,
                reference_offset_secs: None,
                text: None,
                term: None,
                context: None,
                ..Segment::default()
            });
        }
        verdict.raise(
            scene,
            SceneScore {
                score: scene_score,
                label: answer.label,
                segments,
            },
        );
    }
    Ok(verdict)
}

#[async_trait::async_trait]
impl Classifier for HttpEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn url_expiry(&self) -> Duration {
        Duration::from_secs(self.config.url_expiry_secs)
    }

    async fn classify(&self, submission: &Submission) -> Result<Verdict, EngineError> {
        let _slot = self.slots.acquire().await.expect("never closed");
        let failed = |message: String| EngineError::failed(&self.name, message);
        let mut request = self.http.post(&self.config.url).json(&json!({
            "url": submission.url,
            "bucket": submission.bucket,
            "key": submission.key,
            "version_id": submission.version_id,
            "trace_id": submission.trace_id,
            "scenes": submission.scenes,
        }));
        if let Some(token) = &self.config.bearer_token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| {
            failed(if e.is_timeout() {
                format!("no answer within {} s", self.config.timeout_secs)
            } else {
                e.to_string()
            })
        })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let text: String = text.chars().take(200).collect();
            return Err(failed(format!("answered {status}: {text}")));
        }
        let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        verdict_of(&body, &submission.scenes)
            .map_err(|e| failed(format!("answer breaks the contract: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_for_the_scenes_asked() {
        let answer: BTreeMap<String, SceneAnswer> = serde_json::from_value(json!({
            "porn": {"score": 96.4, "label": "explicit", "segments": [
                {"offset_secs": 3.5, "duration_secs": 2, "score": 97, "label": "moan"}]},
            "ads": {"score": 10},
            "abuse": {"score": 99},
            "weather": {"score": 50}
        }))
        .unwrap();
        let verdict = verdict(answer, &[Scene::Porn, Scene::Ads]).unwrap();
        assert_eq!(verdict.score(Scene::Porn).unwrap().score, 96);
        assert_eq!(verdict.score(Scene::Porn).unwrap().segments[0].score, 97);
        assert_eq!(verdict.score(Scene::Ads).unwrap().score, 10);
        assert!(verdict.score(Scene::Abuse).is_none(), "not asked");
    }

    #[test]
    fn out_of_range_scores_break_the_contract() {
        let answer: BTreeMap<String, SceneAnswer> =
            serde_json::from_value(json!({"porn": {"score": 140}})).unwrap();
        assert!(verdict(answer, &[Scene::Porn]).is_err());
    }
}
