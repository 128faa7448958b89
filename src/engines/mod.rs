//! Moderation engines (DESIGN §4). An engine scores a decoded [`Clip`] per scene; the pipeline
//! asks the one its rule names. Engines are built once from `[engines.NAME]`.
//!
//! - [`local`]: the offline engine over a reference library of known non-compliant audio.
//! - [`speech`]: the offline engine that transcribes speech and matches keyword dictionaries.
//! - [`ams`]: Tencent Cloud AMS, asynchronous (a task per upload, the result to earshot's
//!   callback endpoint or by polling), signed with [`tc3`].
//! - [`shumei`]: Shumei's audio API, asynchronous the same way.
//! - [`http`]: a user's own classifier behind the contract in `openapi/http-engine.yaml`.
//!
//! An engine has one of three roles, each a small trait: an [`Analyser`] judges a decoded [`Clip`]
//! here; a [`Classifier`] is handed a presigned URL of the object ([`Submission`]) and answers at
//! once; a [`Provider`] is handed the URL and creates a task ([`Answer::Submitted`]) whose result
//! later reaches [`Provider::read_result`] (a provider callback) or [`Provider::poll`].

pub mod ams;
pub mod folder;
pub mod http;
pub mod limit;
pub mod local;
pub mod shumei;
pub mod speech;
pub mod tc3;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::audio::AudioInfo;
use crate::config::{Config, EngineConfig};
use crate::fingerprint::Fingerprint;
use crate::model::{Scene, Verdict};

/// What an engine is given: the recording's identity, what decoding learned of it, and its
/// acoustic fingerprint (computed in the same decoding pass).
#[derive(Debug, Clone)]
pub struct Clip {
    pub sha256: [u8; 32],
    pub size: u64,
    pub audio: AudioInfo,
    pub fingerprint: Fingerprint,
    /// The upload's speech, gathered in the same pass when a speech engine will judge it.
    pub speech: Option<Arc<speech::gate::Speech>>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("engine {engine}: {message}")]
    Failed { engine: String, message: String },
    #[error("engine {engine}: {source}")]
    Vendor {
        engine: String,
        #[source]
        source: VendorError,
    },
}

/// A call to a provider's API that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VendorError {
    /// No answer (connection refused, timed out).
    #[error("{call}: {message}")]
    Unreachable { call: String, message: String },
    /// An answer that is not the API's JSON.
    #[error("{call}: unreadable answer: {message}")]
    Unreadable { call: String, message: String },
    /// The API answered with an error code.
    #[error("{call}: {code}: {message}")]
    Refused {
        call: String,
        code: String,
        message: String,
    },
    /// Throttled or unreachable on every try.
    #[error("{last} (gave up after {attempts} tries)")]
    GaveUp {
        attempts: u32,
        last: Box<VendorError>,
    },
}

impl VendorError {
    /// The reqwest failure of `call`: no answer, or an answer that is not JSON.
    fn from_http(call: &str, error: &reqwest::Error) -> VendorError {
        let message = error.to_string();
        if error.is_decode() {
            VendorError::Unreadable {
                call: call.to_owned(),
                message,
            }
        } else {
            VendorError::Unreachable {
                call: call.to_owned(),
                message,
            }
        }
    }
}

impl EngineError {
    pub fn failed(engine: &str, message: impl std::fmt::Display) -> EngineError {
        EngineError::Failed {
            engine: engine.to_owned(),
            message: message.to_string(),
        }
    }

    pub fn vendor(engine: &str, source: VendorError) -> EngineError {
        EngineError::Vendor {
            engine: engine.to_owned(),
            source,
        }
    }
}

/// The first and the longest pause of a provider that throttles (seconds).
pub const THROTTLED_FIRST_SECS: u64 = 1;
pub const THROTTLED_MAX_SECS: u64 = 16;

/// How long a provider's result token is taken after the engine's `deadline_secs`: a result on
/// its way at the deadline still finishes its job.
pub const TOKEN_GRACE_SECS: u64 = 3600;

/// The retry schedule of provider calls: doubling from [`THROTTLED_FIRST_SECS`] to
/// [`THROTTLED_MAX_SECS`], each pause drawn from the upper half of its step (see
/// [`crate::backoff`]).
fn vendor_backoff() -> crate::backoff::Backoff {
    crate::backoff::Backoff::new(
        std::time::Duration::from_secs(THROTTLED_FIRST_SECS),
        std::time::Duration::from_secs(THROTTLED_MAX_SECS),
    )
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

/// The headers of a provider's POST, looked up case-insensitively (the HTTP adapters fill it).
#[derive(Debug, Clone, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn insert(&mut self, name: &str, value: &str) {
        self.0.push((name.to_ascii_lowercase(), value.to_owned()));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An engine that judges decoded audio on this machine (the local reference library).
#[async_trait::async_trait]
pub trait Analyser: Send + Sync {
    fn name(&self) -> &str;

    /// Scores the clip on `scenes`.
    ///
    /// # Errors
    /// The engine could not judge the clip.
    async fn moderate(&self, clip: &Clip, scenes: &[Scene]) -> Result<Verdict, EngineError>;

    /// Picks up changes to the engine's reference data; true when something changed.
    ///
    /// # Errors
    /// The reference data could not be read; the engine keeps what it had.
    async fn refresh(&self) -> Result<bool, EngineError>;

    /// Adds a blocked clip to the engine's references, so a re-upload (even altered) is caught at
    /// once; false when the engine has nowhere to keep it.
    ///
    /// # Errors
    /// The reference could not be stored.
    async fn learn(
        &self,
        clip: &Clip,
        scene: Scene,
        label: &str,
        source: &str,
    ) -> Result<bool, EngineError>;

    /// When the newest reference was added (seconds since the epoch); None for an engine without
    /// references. Job records keep it, so `earshot scan --rescan=library-changed` re-judges
    /// only what an older library judged.
    fn references_as_of(&self) -> Option<u64> {
        None
    }

    /// The references added at or after `since`, with their fingerprints, for a retro-hunt.
    ///
    /// # Errors
    /// The references cannot be read.
    async fn references_since(&self, since: u64) -> Result<Vec<Reference>, EngineError> {
        let _ = since;
        Ok(Vec::new())
    }

    /// Seconds of speech to gather while decoding for this engine; None when it needs none.
    fn speech_cap_secs(&self) -> Option<u64> {
        None
    }

    /// What the engine heard in the clip, for an engine that listens to speech.
    async fn transcript(
        &self,
        clip: &Clip,
    ) -> Option<Result<Arc<speech::transcript::Transcript>, EngineError>> {
        let _ = clip;
        None
    }
}

/// A reference recording an analyser matches against.
#[derive(Debug, Clone)]
pub struct Reference {
    pub id: String,
    pub scene: Scene,
    pub label: String,
    pub added_at: u64,
    pub fingerprint: Arc<crate::fingerprint::Fingerprint>,
}

/// An engine that judges an object by URL and answers at once (a user's own HTTP classifier).
#[async_trait::async_trait]
pub trait Classifier: Send + Sync {
    fn name(&self) -> &str;

    /// How long the presigned URL in a [`Submission`] must stay valid.
    fn url_expiry(&self) -> std::time::Duration;

    /// Judges the object.
    ///
    /// # Errors
    /// The classifier could not judge it (down, refusing, an unreadable answer).
    async fn classify(&self, submission: &Submission) -> Result<Verdict, EngineError>;
}

/// An engine that takes an object by URL and answers later (AMS, Shumei): a task per upload,
/// its result POSTed back to earshot or fetched by polling, within task slots and a deadline.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &str;

    /// How long the presigned URL in a [`Submission`] must stay valid.
    fn url_expiry(&self) -> std::time::Duration;

    /// When a missing result is polled for and when it is given up.
    fn timing(&self) -> Timing;

    /// Creates a task for the object (or judges it at once).
    ///
    /// # Errors
    /// The provider could not take the job (down, refusing, throttling past the retries).
    async fn submit(&self, submission: &Submission) -> Result<Answer, EngineError>;

    /// Checks and reads a result the provider POSTed to earshot. Ok(None): a notification that is
    /// not a final result (a task still running).
    ///
    /// # Errors
    /// The result is not authentic or not readable.
    fn read_result(
        &self,
        headers: &Headers,
        body: &[u8],
    ) -> Result<Option<TaskResult>, ResultError>;

    /// Asks the provider for a task's result; Ok(None) while it is still running.
    ///
    /// # Errors
    /// The provider could not be asked.
    async fn poll(&self, task_id: &str, trace_id: &str) -> Result<Option<TaskResult>, EngineError>;

    /// The job no longer needs its task slot (result seen, job finished elsewhere, deadline).
    fn task_done(&self, trace_id: &str);

    /// Trace ids holding a task slot in this process.
    fn tasks_held(&self) -> Vec<String>;

    /// A task of this engine is outstanding at the provider though this process may not have
    /// created it (the sweep found it waiting): count it against the task slots while one is free.
    fn task_outstanding(&self, trace_id: &str);
}

/// A configured engine, by role.
#[derive(Clone)]
pub enum Engine {
    Analyser(Arc<dyn Analyser>),
    Classifier(Arc<dyn Classifier>),
    Provider(Arc<dyn Provider>),
}

impl Engine {
    pub fn name(&self) -> &str {
        match self {
            Engine::Analyser(e) => e.name(),
            Engine::Classifier(e) => e.name(),
            Engine::Provider(e) => e.name(),
        }
    }

    /// The engine as a provider, when it answers later.
    pub fn provider(&self) -> Option<&Arc<dyn Provider>> {
        match self {
            Engine::Provider(provider) => Some(provider),
            _ => None,
        }
    }

    /// Picks up changes to reference data (analysers); true when something changed.
    ///
    /// # Errors
    /// The reference data could not be read; the engine keeps what it had.
    pub async fn refresh(&self) -> Result<bool, EngineError> {
        match self {
            Engine::Analyser(e) => e.refresh().await,
            _ => Ok(false),
        }
    }
}

/// The engines of a config, by name.
pub type Engines = BTreeMap<String, Engine>;

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
        let built =
            match engine {
                EngineConfig::Local(local) => Engine::Analyser(Arc::new(
                    local::LocalEngine::load(name, &local.library, s3).await?,
                )),
                EngineConfig::Speech(speech) => Engine::Analyser(Arc::new(
                    speech::SpeechEngine::load(name, speech, s3).await?,
                )),
                EngineConfig::TencentAms(ams) => Engine::Provider(Arc::new(ams::AmsEngine::new(
                    name,
                    ams.clone(),
                    signer(name)?,
                )?)),
                EngineConfig::Shumei(shumei) => Engine::Provider(Arc::new(
                    shumei::ShumeiEngine::new(name, shumei.clone(), signer(name)?)?,
                )),
                EngineConfig::Http(http) => {
                    Engine::Classifier(Arc::new(http::HttpEngine::new(name, http.clone())?))
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The README gives these figures to users: they must be the code's.
    #[test]
    fn the_readme_states_the_throttling_pauses_and_the_token_grace_the_code_uses() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        for stated in [
            format!(
                "doubling from {THROTTLED_FIRST_SECS} s up to {THROTTLED_MAX_SECS} s, each pause drawn from 50–100 % of its step"
            ),
            format!("expires {TOKEN_GRACE_SECS} s after the deadline"),
        ] {
            assert!(readme.contains(&stated), "the README lacks {stated:?}");
        }
        let mut backoff = vendor_backoff();
        let first = backoff.next_delay();
        assert!(
            (Duration::from_millis(500)..=Duration::from_secs(1)).contains(&first),
            "{first:?}"
        );
        for _ in 0..10 {
            backoff.next_delay();
        }
        let capped = backoff.next_delay();
        assert!(
            (Duration::from_secs(8)..=Duration::from_secs(16)).contains(&capped),
            "{capped:?}"
        );
    }
}
