//! The domain model every stage speaks (DESIGN §4–6): scenes, an engine's [`Verdict`] with its
//! [`SceneScore`]s and [`Segment`]s, and the three numbers a COS callback reports — [`Severity`]
//! (`result`), [`HitFlag`] and [`ForbiddenStatus`] — as typed values that serialise to COS's
//! integers. A leaf: it imports nothing of the crate.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What a rule moderates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scene {
    Porn,
    Ads,
    Illegal,
    Abuse,
}

impl Scene {
    pub const ALL: [Scene; 4] = [Scene::Porn, Scene::Ads, Scene::Illegal, Scene::Abuse];

    pub fn as_str(self) -> &'static str {
        match self {
            Scene::Porn => "porn",
            Scene::Ads => "ads",
            Scene::Illegal => "illegal",
            Scene::Abuse => "abuse",
        }
    }
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scene {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scene::ALL
            .into_iter()
            .find(|scene| scene.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown scene {s:?}; expected one of porn, ads, illegal, abuse")
            })
    }
}

/// One scene's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneScore {
    /// 0–100.
    pub score: u8,
    pub label: String,
    /// Where in the upload the finding is, when the engine knows.
    pub segments: Vec<Segment>,
}

/// A stretch of the upload an engine found something in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// What was said there, for the speech engine (COS's `Section.Text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The dictionary term it matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    /// What was said around it: the recognised words from about 5 s before to 5 s after, for a
    /// person to read the term in its sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The dictionary's example sentence that `text` says in other words, for the speech
    /// engine's phrases by meaning …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// … and how close in meaning they are (cosine similarity of their embeddings, 0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
}

/// An engine's answer: a score per scene it has an opinion on. Missing scenes score 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub scenes: BTreeMap<Scene, SceneScore>,
}

impl Verdict {
    pub fn score(&self, scene: Scene) -> Option<&SceneScore> {
        self.scenes.get(&scene)
    }

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

#[cfg(test)]
impl Verdict {
    /// A verdict of `(scene, score)` pairs labelled by `label`, for table tests.
    pub(crate) fn of(scores: &[(Scene, u8)], label: impl Fn(Scene) -> String) -> Verdict {
        let mut verdict = Verdict::default();
        for &(scene, score) in scores {
            let score = SceneScore {
                score,
                label: label(scene),
                segments: Vec::new(),
            };
            verdict.scenes.insert(scene, score);
        }
        verdict
    }
}

/// Declares a COS enum that travels as an integer.
macro_rules! cos_integer {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub enum $name {
            #[default]
            $($(#[$vdoc])* $variant = $value,)+
        }

        impl $name {
            pub fn as_u8(self) -> u8 {
                self as u8
            }
        }

        impl TryFrom<u8> for $name {
            type Error = String;

            fn try_from(value: u8) -> Result<Self, Self::Error> {
                match value {
                    $($value => Ok($name::$variant),)+
                    other => Err(format!(concat!("{} is not a valid ", stringify!($name)), other)),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_u8(self.as_u8())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = u8::deserialize(deserializer)?;
                $name::try_from(value).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.as_u8())
            }
        }
    };
}

cos_integer! {
    /// The callback's overall `result`.
    Severity {
        Normal = 0,
        Sensitive = 1,
        Suspicious = 2,
    }
}

cos_integer! {
    /// A scene's `hit_flag`.
    HitFlag {
        Miss = 0,
        Hit = 1,
        Suspected = 2,
    }
}

cos_integer! {
    /// The callback's `forbidden_status`: what was done to the object.
    ForbiddenStatus {
        NotBlocked = 0,
        /// Made private (`PutObjectAcl private`).
        Acl = 1,
        /// Moved to the backup directory.
        Moved = 2,
    }
}

/// The COS score bands: 0–60 normal, (60, 90] suspicious, (90, 100] sensitive.
impl HitFlag {
    pub fn for_score(score: u8) -> HitFlag {
        match score {
            91.. => HitFlag::Hit,
            61..=90 => HitFlag::Suspected,
            _ => HitFlag::Miss,
        }
    }
}

impl Severity {
    /// The overall result for the highest score of a job.
    pub fn for_score(score: u8) -> Severity {
        match HitFlag::for_score(score) {
            HitFlag::Hit => Severity::Sensitive,
            HitFlag::Suspected => Severity::Suspicious,
            HitFlag::Miss => Severity::Normal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cos_enums_travel_as_their_integers() {
        let table = [
            (serde_json::to_value(Severity::Suspicious), 2),
            (serde_json::to_value(HitFlag::Hit), 1),
            (serde_json::to_value(ForbiddenStatus::Moved), 2),
            (serde_json::to_value(ForbiddenStatus::NotBlocked), 0),
        ];
        for (value, expected) in table {
            assert_eq!(value.expect("serialises"), serde_json::json!(expected));
        }
        let back: ForbiddenStatus = serde_json::from_str("1").expect("1 is Acl");
        assert_eq!(back, ForbiddenStatus::Acl);
        assert!(serde_json::from_str::<HitFlag>("3").is_err());
    }

    #[test]
    fn bands_at_every_boundary() {
        // (score, hit_flag, result)
        let table = [
            (0, HitFlag::Miss, Severity::Normal),
            (60, HitFlag::Miss, Severity::Normal),
            (61, HitFlag::Suspected, Severity::Suspicious),
            (90, HitFlag::Suspected, Severity::Suspicious),
            (91, HitFlag::Hit, Severity::Sensitive),
            (100, HitFlag::Hit, Severity::Sensitive),
        ];
        for (score, flag, result) in table {
            assert_eq!(HitFlag::for_score(score), flag, "score {score}");
            assert_eq!(Severity::for_score(score), result, "score {score}");
        }
    }

    #[test]
    fn raise_keeps_the_higher_score_and_every_segment() {
        let score = |score: u8, offset: f64| SceneScore {
            score,
            label: format!("l{score}"),
            segments: vec![Segment {
                offset_secs: offset,
                duration_secs: 1.0,
                score,
                label: String::new(),
                ..Segment::default()
            }],
        };
        let mut verdict = Verdict::default();
        verdict.raise(Scene::Porn, score(70, 1.0));
        verdict.raise(Scene::Porn, score(95, 2.0));
        verdict.raise(Scene::Porn, score(40, 3.0));
        let held = &verdict.scenes[&Scene::Porn];
        assert_eq!((held.score, held.label.as_str()), (95, "l95"));
        assert_eq!(held.segments.len(), 3);
    }
}
