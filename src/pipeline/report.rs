//! The callback body of one job (DESIGN §6), built from what was decided: a pure builder with
//! table tests.

use crate::callback::{Body, Code, Data, SceneInfo, SegmentInfo};
use crate::decision::Decision;
use crate::model::{ForbiddenStatus, Scene, Severity};

/// What a body says about its job besides the verdict.
#[derive(Debug, Clone)]
pub struct Report {
    pub url: String,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub trace_id: String,
    pub rule_id: Option<String>,
    pub scenes: Vec<Scene>,
    /// Segments in the body (`callback.detail`).
    pub detail: bool,
    /// How the job came (the body's `source`).
    pub source: &'static str,
}

impl Report {
    /// A job that could not be judged: its code and why.
    pub fn unjudged(&self, code: Code, message: String) -> Body {
        let has = |scene| self.scenes.contains(&scene);
        Body {
            code: code.as_i32(),
            message,
            data: Data {
                url: self.url.clone(),
                result: Severity::Normal,
                forbidden_status: ForbiddenStatus::NotBlocked,
                trace_id: self.trace_id.clone(),
                porn_info: SceneInfo::default(),
                ads_info: SceneInfo::default(),
                illegal_info: has(Scene::Illegal).then(SceneInfo::default),
                abuse_info: has(Scene::Abuse).then(SceneInfo::default),
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                version_id: self.version_id.clone(),
                rule_id: self.rule_id.clone(),
                backup_key: None,
                segments: Vec::new(),
                terms: Vec::new(),
                engine_errors: Vec::new(),
                source: Some(self.source.to_owned()),
                action: None,
                review: None,
            },
        }
    }

    /// A judged job: scores per scene, what was done to the object, and (with `failure`) why the
    /// job still ended with a non-zero code.
    pub fn judged(
        &self,
        decision: &Decision,
        forbidden_status: ForbiddenStatus,
        backup_key: Option<String>,
        failure: Option<(Code, String)>,
    ) -> Body {
        let (code, message) = failure.unwrap_or((Code::Success, "success".to_owned()));
        let mut body = self.unjudged(code, message);
        body.data.result = decision.result;
        body.data.forbidden_status = forbidden_status;
        body.data.backup_key = backup_key;
        for (scene, result) in &decision.scenes {
            body.data.note_terms(&result.segments);
            if self.detail {
                body.data
                    .segments
                    .extend(result.segments.iter().map(|segment| SegmentInfo {
                        scene: *scene,
                        segment: segment.clone(),
                    }));
            }
            let info = SceneInfo {
                hit_flag: result.hit_flag,
                score: result.score,
                label: result.label.clone(),
                engine: None,
            };
            match scene {
                Scene::Porn => body.data.porn_info = info,
                Scene::Ads => body.data.ads_info = info,
                Scene::Illegal => body.data.illegal_info = Some(info),
                Scene::Abuse => body.data.abuse_info = Some(info),
            }
        }
        body
    }
}

/// The `<scene>_info` of a body, when the body reports that scene.
pub fn scene_info(body: &mut Body, scene: Scene) -> Option<&mut SceneInfo> {
    let data = &mut body.data;
    match scene {
        Scene::Porn => Some(&mut data.porn_info),
        Scene::Ads => Some(&mut data.ads_info),
        Scene::Illegal => data.illegal_info.as_mut(),
        Scene::Abuse => data.abuse_info.as_mut(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BlockConfig;
    use crate::decision::decide;
    use crate::model::{HitFlag, SceneScore, Segment, Verdict};

    fn report(scenes: &[Scene], detail: bool) -> Report {
        Report {
            url: "http://h/b/k.mp3".into(),
            bucket: "b".into(),
            key: "k.mp3".into(),
            version_id: None,
            trace_id: "t".into(),
            rule_id: Some("r".into()),
            scenes: scenes.to_vec(),
            detail,
            source: "upload",
        }
    }

    fn decision(scenes: &[Scene], scores: &[(Scene, u8)]) -> Decision {
        let mut verdict = Verdict::default();
        for &(scene, score) in scores {
            let segment = Segment {
                offset_secs: 1.0,
                duration_secs: 2.0,
                score,
                label: "seg".into(),
                ..Segment::default()
            };
            verdict.raise(
                scene,
                SceneScore {
                    score,
                    label: format!("{scene}!"),
                    segments: vec![segment],
                },
            );
        }
        decide(&verdict, scenes, &BlockConfig::default())
    }

    #[test]
    fn porn_and_ads_are_always_present_and_other_scenes_only_when_configured() {
        // (scenes, has illegal_info, has abuse_info)
        let table: [(&[Scene], bool, bool); 3] = [
            (&[Scene::Porn], false, false),
            (&[Scene::Ads, Scene::Illegal], true, false),
            (&Scene::ALL, true, true),
        ];
        for (scenes, illegal, abuse) in table {
            let body = report(scenes, false).unjudged(Code::CorruptAudio, "bad".into());
            let value = serde_json::to_value(&body).expect("serialises");
            assert!(value.pointer("/data/porn_info/hit_flag").is_some());
            assert!(value.pointer("/data/ads_info/hit_flag").is_some());
            assert_eq!(
                value.pointer("/data/illegal_info").is_some(),
                illegal,
                "{scenes:?}"
            );
            assert_eq!(
                value.pointer("/data/abuse_info").is_some(),
                abuse,
                "{scenes:?}"
            );
            assert_eq!(value["code"], 1003);
        }
    }

    #[test]
    fn judged_bodies_carry_scores_status_and_segments_only_with_detail() {
        let scenes = [Scene::Porn, Scene::Ads];
        let decided = decision(&scenes, &[(Scene::Porn, 95), (Scene::Ads, 70)]);
        // (detail, forbidden_status, failure, code, segments)
        let table = [
            (false, ForbiddenStatus::Moved, None, 0, 0),
            (true, ForbiddenStatus::Acl, None, 0, 2),
            (
                false,
                ForbiddenStatus::NotBlocked,
                Some((Code::BlockFailed, "refused".to_owned())),
                1301,
                0,
            ),
        ];
        for (detail, status, failure, code, segments) in table {
            let body = report(&scenes, detail).judged(&decided, status, None, failure);
            assert_eq!(body.code, code);
            assert_eq!(body.data.forbidden_status, status);
            assert_eq!(body.data.result, Severity::Sensitive);
            assert_eq!(body.data.porn_info.hit_flag, HitFlag::Hit);
            assert_eq!(body.data.ads_info.hit_flag, HitFlag::Suspected);
            assert_eq!(body.data.porn_info.label, "porn!");
            assert_eq!(body.data.segments.len(), segments, "detail {detail}");
        }
    }
}
