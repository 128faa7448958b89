//! Moderation engines (DESIGN §4). An engine scores a decoded [`Clip`] per scene; the pipeline
//! asks the one its rule names. Engines are built once from `[engines.NAME]`.
//!
//! - [`local`]: the offline engine over a reference library of known non-compliant audio.

pub mod local;

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
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub scenes: BTreeMap<Scene, SceneScore>,
}

impl Verdict {
    pub fn score(&self, scene: Scene) -> Option<&SceneScore> {
        self.scenes.get(&scene)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("engine {engine}: {message}")]
    Failed { engine: String, message: String },
}

#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    fn name(&self) -> &str;
    /// Scores the clip on `scenes`.
    ///
    /// # Errors
    /// The engine could not judge the clip.
    async fn moderate(&self, clip: &Clip, scenes: &[Scene]) -> Result<Verdict, EngineError>;

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
    let mut engines = Engines::new();
    for (name, engine) in &config.engines {
        let built: Arc<dyn Engine> = match engine {
            EngineConfig::Local(local) => {
                Arc::new(local::LocalEngine::load(name, &local.library, s3).await?)
            }
        };
        engines.insert(name.clone(), built);
    }
    Ok(engines)
}
