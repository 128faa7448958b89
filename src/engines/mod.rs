//! Moderation engines (DESIGN §4). An engine scores a decoded [`Clip`] per scene; the pipeline
//! asks the one its rule names. Engines are built once from `[engines.NAME]`.
//!
//! - [`local`]: the offline engine over a reference library of known non-compliant audio.
//! - [`ams`]: Tencent Cloud AMS, asynchronous (a task per upload, the result to earshot's
//!   callback endpoint or by polling), signed with [`tc3`].
//! - [`shumei`]: Shumei's audio API, asynchronous the same way.
//! - [`http`]: a user's own classifier behind the contract in `openapi/http-engine.yaml`.
//!
//! Local engines judge a decoded [`Clip`]; remote engines are handed a presigned URL of the object
//! ([`Submission`]) and either answer at once or say a task was created ([`Answer::Submitted`]);
//! its result later reaches [`Engine::read_result`] (a provider callback) or [`Engine::poll`].

pub mod ams;
pub mod http;
pub mod limit;
pub mod local;
pub mod shumei;
pub mod tc3;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::audio::AudioInfo;
use crate::config::{Config, EngineConfig, Scene};
use crate::fingerprint::Fingerprint;

/// What an engine is given: the recording's identity, what decoding learned of it, and its
/// acoustic fingerprint (computed in the same decoding pass).
#[derive(Debug, Clone)]
pub struct Clip {
    pub sha256: [u8; 32],
    pub size: u64,
    pub audio: AudioInfo,
    pub fingerprint: Fingerprint,
}

/// One scene's score.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SceneScore {
    /// 0–100.
    pub score: u8,
    pub label: String,
    /// Where in the upload the finding is, when the engine knows.
    pub segments: Vec<Segment>,
}

/// A stretch of the upload an engine found something in.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// Seconds into the upload.
    pub offset_secs: f64,
    pub duration_secs: f64,
    pub score: u8,
    pub label: String,
    /// The library entry matched, for the local engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    /// Seconds into the reference that line up with `offset_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_offset_secs: Option<f64>,
}

/// An engine's answer: a score per scene it has an opinion on. Missing scenes score 0.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    pub scenes: BTreeMap<Scene, SceneScore>,
}

impl Verdict {
    pub fn score(&self, scene: Scene) -> Option<&SceneScore> {
        self.scenes.get(&scene)
    }
}

impl Verdict {
    /// Keeps the higher score per scene (and its label and segments).
    pub fn raise(&mut self, scene: Scene, score: SceneScore) {
        match self.scenes.get_mut(&scene) {
            Some(held) if held.score >= score.score => held.segments.extend(score.segments),
            Some(held) => {
                let mut segments = std::mem::take(&mut held.segments);
                segments.extend(score.segments);
                *held = SceneScore { segments, ..score };
            }
            None => {
                self.scenes.insert(scene, score);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("engine {engine}: {message}")]
    Failed { engine: String, message: String },
}

impl EngineError {
    pub fn failed(engine: &str, message: impl std::fmt::Display) -> EngineError {
        EngineError::Failed {
            engine: engine.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Whether an engine judges decoded audio here, or the object by URL elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Local,
    Remote,
}

/// What a remote engine is given for one job.
#[derive(Debug, Clone)]
pub struct Submission {
    pub rule: String,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub etag: Option<String>,
    pub trace_id: String,
    /// A presigned GET URL of the object version, valid for [`Engine::url_expiry`].
    pub url: String,
    pub scenes: Vec<Scene>,
}

/// A remote engine's answer to a submission.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Judged at once.
    Verdict(Verdict),
    /// A task was created; its result comes later.
    Submitted { task_id: String },
}

/// A provider's result for one task, read from its callback or a poll.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskResult {
    /// earshot's trace id, which earshot sent as the provider's data id.
    pub trace_id: String,
    /// The verdict, or why the provider could not judge.
    pub outcome: Result<Verdict, String>,
}

/// A provider result earshot refuses or cannot read.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// Not from the provider, or altered on the way: answered 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// Not a result this engine can read: answered 400.
    #[error("{0}")]
    Malformed(String),
}

/// When a remote engine's missing result is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub poll_after: std::time::Duration,
    pub deadline: std::time::Duration,
}

#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    fn name(&self) -> &str;

    fn kind(&self) -> Kind {
        Kind::Local
    }

    /// Scores the clip on `scenes` (local engines).
    ///
    /// # Errors
    /// The engine could not judge the clip.
    async fn moderate(&self, clip: &Clip, scenes: &[Scene]) -> Result<Verdict, EngineError> {
        let _ = (clip, scenes);
        Err(EngineError::failed(
            self.name(),
            "judges objects by URL, not decoded audio",
        ))
    }

    /// How long the presigned URL in a [`Submission`] must stay valid.
    fn url_expiry(&self) -> std::time::Duration {
        std::time::Duration::from_secs(900)
    }

    /// Judges an object by URL (remote engines): at once, or by creating a task.
    ///
    /// # Errors
    /// The provider could not take the job (down, refusing, throttling past the retries).
    async fn submit(&self, submission: &Submission) -> Result<Answer, EngineError> {
        let _ = submission;
        Err(EngineError::failed(
            self.name(),
            "judges decoded audio, not URLs",
        ))
    }

    /// Checks and reads a result the provider POSTed to earshot. Ok(None): a notification that is
    /// not a final result (a task still running).
    ///
    /// # Errors
    /// The result is not authentic or not readable.
    fn read_result(
        &self,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Result<Option<TaskResult>, ResultError> {
        let _ = (headers, body);
        Err(ResultError::Malformed(format!(
            "engine {} receives no results",
            self.name()
        )))
    }

    /// Asks the provider for a task's result; Ok(None) while it is still running.
    ///
    /// # Errors
    /// The provider could not be asked.
    async fn poll(&self, task_id: &str, trace_id: &str) -> Result<Option<TaskResult>, EngineError> {
        let _ = (task_id, trace_id);
        Ok(None)
    }

    /// For asynchronous engines, when a missing result is polled for and when it is given up.
    fn timing(&self) -> Option<Timing> {
        None
    }

    /// The job no longer needs its task slot (result seen, job finished elsewhere, deadline).
    fn task_done(&self, trace_id: &str) {
        let _ = trace_id;
    }

    /// Trace ids holding a task slot in this process.
    fn tasks_held(&self) -> Vec<String> {
        Vec::new()
    }

    /// A task of this engine is outstanding at the provider though this process may not have
    /// created it (the sweep found it waiting): count it against the task slots while one is free.
    fn task_outstanding(&self, trace_id: &str) {
        let _ = trace_id;
    }

    /// Whether the engine can judge now (its service answers, its references are loaded).
    ///
    /// # Errors
    /// What keeps it from judging.
    async fn ready(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Picks up changes to the engine's reference data; true when something changed.
    ///
    /// # Errors
    /// The reference data could not be read; the engine keeps what it had.
    async fn refresh(&self) -> Result<bool, EngineError> {
        Ok(false)
    }

    /// Adds a blocked clip to the engine's references, so a re-upload (even altered) is caught at
    /// once; false when the engine has no references to add to.
    ///
    /// # Errors
    /// The reference could not be stored.
    async fn learn(
        &self,
        clip: &Clip,
        scene: Scene,
        label: &str,
        source: &str,
    ) -> Result<bool, EngineError> {
        let _ = (clip, scene, label, source);
        Ok(false)
    }
}

/// The engines of a config, by name.
pub type Engines = BTreeMap<String, Arc<dyn Engine>>;

/// Builds every configured engine.
///
/// # Errors
/// An engine's reference data could not be loaded.
pub async fn build(config: &Config, s3: &aws_sdk_s3::Client) -> Result<Engines, EngineError> {
    let tokens = config
        .async_jobs
        .token_key
        .as_deref()
        .map(crate::token::Signer::new);
    let signer = |name: &str| {
        tokens.clone().ok_or_else(|| {
            EngineError::failed(
                name,
                "needs [async_jobs] token_key to sign its callback URLs",
            )
        })
    };
    let mut engines = Engines::new();
    for (name, engine) in &config.engines {
        let built: Arc<dyn Engine> = match engine {
            EngineConfig::Local(local) => {
                Arc::new(local::LocalEngine::load(name, &local.library, s3).await?)
            }
            EngineConfig::TencentAms(ams) => {
                Arc::new(ams::AmsEngine::new(name, ams.clone(), signer(name)?)?)
            }
            EngineConfig::Shumei(shumei) => Arc::new(shumei::ShumeiEngine::new(
                name,
                shumei.clone(),
                signer(name)?,
            )?),
            EngineConfig::Http(http) => Arc::new(http::HttpEngine::new(name, http.clone())?),
        };
        engines.insert(name.clone(), built);
    }
    Ok(engines)
}

/// Where a provider POSTs a result: `<base>/engines/<engine>/results/<token>`.
pub fn result_url(base: &str, engine: &str, token: &str) -> String {
    format!(
        "{}/engines/{engine}/results/{token}",
        base.trim_end_matches('/')
    )
}

/// The HTTP client remote engines share a configuration of.
fn http_client(engine: &str, timeout: std::time::Duration) -> Result<reqwest::Client, EngineError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| EngineError::failed(engine, format!("HTTP client: {e}")))
}

/// Unix seconds now.
fn now_secs() -> u64 {
    crate::state::now_secs()
}
