//! The decision (DESIGN §4–5): a pure function of an engine's scores and the rule.
//!
//! Score bands follow COS: 0–60 normal, (60, 90] suspicious, (90, 100] sensitive.
//! `hit_flag`: 0 miss, 1 hit, 2 suspected. `result`: 0 normal, 1 sensitive, 2 suspicious.
//! With `review = "machine"`, block when the highest configured-scene score ≥ `min_score`.

use std::collections::BTreeMap;

use crate::config::BlockConfig;
use crate::model::{HitFlag, Scene, SceneScore, Segment, Severity, Verdict};

/// One scene as the callback reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneResult {
    pub hit_flag: HitFlag,
    pub score: u8,
    pub label: String,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The scene with the highest score (ties: the first configured), for labelling.
    pub top_scene: Option<Scene>,
    pub result: Severity,
    /// Every configured scene, scored (0 when the engine had nothing to say).
    pub scenes: BTreeMap<Scene, SceneResult>,
    pub block: bool,
}

pub fn decide(verdict: &Verdict, scenes: &[Scene], block: &BlockConfig) -> Decision {
    let mut results = BTreeMap::new();
    let mut top: u8 = 0;
    let mut top_scene = None;
    for &scene in scenes {
        let SceneScore {
            score,
            label,
            segments,
        } = verdict.score(scene).cloned().unwrap_or(SceneScore {
            score: 0,
            label: String::new(),
            segments: Vec::new(),
        });
        let score = score.min(100);
        if score > top || top_scene.is_none() {
            top_scene = Some(scene);
        }
        top = top.max(score);
        results.insert(
            scene,
            SceneResult {
                hit_flag: HitFlag::for_score(score),
                score,
                label,
                segments,
            },
        );
    }
    Decision {
        top_scene,
        result: Severity::for_score(top),
        scenes: results,
        block: block.enabled && top >= block.min_score,
    }
}

impl Decision {
    /// The highest score of any configured scene.
    pub fn top_score(&self) -> u8 {
        self.scenes.values().map(|s| s.score).max().unwrap_or(0)
    }

    /// An engine of the rule could not judge and the rule says `on_engine_error = "review"`: what
    /// the other engines called normal becomes suspicious (a person should listen); a sensitive
    /// result, and a block, stand.
    pub fn hold_for_review(&mut self) {
        if self.result == Severity::Normal {
            self.result = Severity::Suspicious;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BlockMode, Review};

    fn verdict(scores: &[(Scene, u8)]) -> Verdict {
        Verdict::of(scores, |scene| format!("{scene}-label"))
    }

    fn block(min_score: u8) -> BlockConfig {
        BlockConfig {
            enabled: true,
            mode: BlockMode::Move,
            review: Review::Machine,
            min_score,
            ..BlockConfig::default()
        }
    }

    #[test]
    fn bands_at_every_boundary() {
        // (score, hit_flag, result)
        let table = [
            (0, 0, 0),
            (59, 0, 0),
            (60, 0, 0),
            (61, 2, 2),
            (89, 2, 2),
            (90, 2, 2),
            (91, 1, 1),
            (100, 1, 1),
        ];
        for (score, flag, result) in table {
            let d = decide(
                &verdict(&[(Scene::Porn, score)]),
                &[Scene::Porn],
                &block(100),
            );
            assert_eq!(
                d.scenes[&Scene::Porn].hit_flag.as_u8(),
                flag,
                "score {score}"
            );
            assert_eq!(d.result.as_u8(), result, "score {score}");
        }
    }

    #[test]
    fn block_at_and_above_min_score() {
        // (min_score, score, blocks)
        let table = [
            (60, 59, false),
            (60, 60, true),
            (60, 61, true),
            (90, 89, false),
            (90, 90, true),
            (90, 91, true),
            (91, 90, false),
            (91, 91, true),
            (100, 99, false),
            (100, 100, true),
        ];
        for (min_score, score, blocks) in table {
            let d = decide(
                &verdict(&[(Scene::Ads, score)]),
                &[Scene::Ads],
                &block(min_score),
            );
            assert_eq!(d.block, blocks, "min_score {min_score}, score {score}");
        }
    }

    #[test]
    fn disabled_block_never_blocks() {
        let mut b = block(60);
        b.enabled = false;
        let d = decide(&verdict(&[(Scene::Porn, 100)]), &[Scene::Porn], &b);
        assert!(!d.block);
        assert_eq!(d.result, Severity::Sensitive);
    }

    #[test]
    fn only_configured_scenes_count_and_all_are_reported() {
        let v = verdict(&[(Scene::Illegal, 100), (Scene::Porn, 30)]);
        let d = decide(&v, &[Scene::Porn, Scene::Ads], &block(90));
        assert!(!d.block);
        assert_eq!(d.result, Severity::Normal);
        assert_eq!(d.scenes.len(), 2);
        assert_eq!(d.scenes[&Scene::Ads].score, 0);
        assert_eq!(d.scenes[&Scene::Porn].label, "porn-label");
    }

    #[test]
    fn held_for_review_normal_turns_suspicious_and_nothing_is_lowered() {
        // (score, blocks at 95, result after hold_for_review)
        let table = [(0, false, 2), (75, false, 2), (92, false, 1), (96, true, 1)];
        for (score, blocks, result) in table {
            let mut d = decide(&verdict(&[(Scene::Ads, score)]), &[Scene::Ads], &block(95));
            d.hold_for_review();
            assert_eq!(
                (d.block, d.result.as_u8()),
                (blocks, result),
                "score {score}"
            );
        }
    }

    #[test]
    fn the_highest_scene_decides() {
        let v = verdict(&[(Scene::Porn, 70), (Scene::Ads, 95)]);
        let d = decide(&v, &[Scene::Porn, Scene::Ads], &block(90));
        assert!(d.block);
        assert_eq!(d.result, Severity::Sensitive);
        assert_eq!(d.scenes[&Scene::Porn].hit_flag, HitFlag::Suspected);
        assert_eq!(d.scenes[&Scene::Ads].hit_flag, HitFlag::Hit);
    }
}
