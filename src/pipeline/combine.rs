//! Several engines' answers as one (a rule may name several engines): per scene the highest score
//! wins and names the engine that gave it; engines that could not judge are listed. Pure, with
//! table tests.

use std::collections::BTreeMap;

use crate::callback::{Body, EngineErrorInfo};
use crate::config::BlockConfig;
use crate::decision::{self, Decision};
use crate::model::{Scene, Verdict};
use crate::state::pending::EngineOutcome;

use super::report::scene_info;

/// What the engines of a rule came to.
#[derive(Debug, Clone)]
pub struct Combined {
    pub decision: Decision,
    pub decided_by: BTreeMap<Scene, String>,
    pub failures: Vec<EngineErrorInfo>,
    /// Every failure is a deadline that passed.
    pub timed_out: bool,
}

/// One engine's answer (or failure), stamped with how it arrived (`submit`, `callback`, `poll`,
/// `deadline`) and when.
pub fn engine_outcome(
    engine: &str,
    result: Result<Verdict, String>,
    via: &str,
    at: u64,
) -> EngineOutcome {
    let (verdict, error) = match result {
        Ok(verdict) => (Some(verdict), None),
        Err(error) => (None, Some(error)),
    };
    EngineOutcome {
        engine: engine.to_owned(),
        verdict,
        error,
        timed_out: false,
        via: via.to_owned(),
        at,
    }
}

pub fn combine(answered: &[EngineOutcome], scenes: &[Scene], block: &BlockConfig) -> Combined {
    let mut verdict = Verdict::default();
    let mut decided_by = BTreeMap::new();
    for outcome in answered {
        for (scene, score) in outcome.verdict.iter().flat_map(|v| &v.scenes) {
            let higher = verdict
                .scenes
                .get(scene)
                .is_none_or(|held| score.score > held.score);
            if higher && score.score > 0 {
                decided_by.insert(*scene, outcome.engine.clone());
            }
            verdict.raise(*scene, score.clone());
        }
    }
    let failed: Vec<&EngineOutcome> = answered.iter().filter(|o| o.error.is_some()).collect();
    Combined {
        decision: decision::decide(&verdict, scenes, block),
        decided_by,
        timed_out: !failed.is_empty() && failed.iter().all(|o| o.timed_out),
        failures: failures(answered),
    }
}

/// The engines that could not judge, and why.
pub fn failures(answered: &[EngineOutcome]) -> Vec<EngineErrorInfo> {
    answered
        .iter()
        .filter_map(|o| {
            Some(EngineErrorInfo {
                engine: o.engine.clone(),
                message: o.error.clone()?,
            })
        })
        .collect()
}

impl Combined {
    /// Names the deciding engine of each scene and the engines that failed.
    pub fn annotate(&self, body: &mut Body) {
        for (scene, engine) in &self.decided_by {
            if let Some(info) = scene_info(body, *scene) {
                info.engine = Some(engine.clone());
            }
        }
        body.data.engine_errors = self.failures.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(engine: &str, scores: &[(Scene, u8)]) -> EngineOutcome {
        let verdict = Verdict::of(scores, |scene| format!("{engine}:{scene}"));
        engine_outcome(engine, Ok(verdict), "submit", 0)
    }

    fn failed(engine: &str, timed_out: bool) -> EngineOutcome {
        let mut outcome = engine_outcome(engine, Err("down".into()), "submit", 0);
        outcome.timed_out = timed_out;
        outcome
    }

    #[test]
    fn the_highest_score_per_scene_wins_and_names_its_engine() {
        let scenes = [Scene::Porn, Scene::Ads];
        // (answers, porn score, porn decided by, ads decided by, blocks at 90)
        let table = [
            (
                vec![
                    said("local", &[(Scene::Porn, 40)]),
                    said("ams", &[(Scene::Porn, 95)]),
                ],
                95,
                Some("ams"),
                None,
                true,
            ),
            (
                vec![
                    said("local", &[(Scene::Porn, 100), (Scene::Ads, 10)]),
                    said("ams", &[(Scene::Porn, 100), (Scene::Ads, 70)]),
                ],
                100,
                Some("local"),
                Some("ams"),
                true,
            ),
            (
                vec![said("local", &[]), said("ams", &[])],
                0,
                None,
                None,
                false,
            ),
        ];
        for (answers, porn, porn_by, ads_by, blocks) in table {
            let combined = combine(&answers, &scenes, &BlockConfig::default());
            let decision = &combined.decision;
            assert_eq!(decision.scenes[&Scene::Porn].score, porn);
            assert_eq!(
                combined.decided_by.get(&Scene::Porn).map(String::as_str),
                porn_by
            );
            assert_eq!(
                combined.decided_by.get(&Scene::Ads).map(String::as_str),
                ads_by
            );
            assert_eq!(decision.block, blocks);
            assert!(combined.failures.is_empty());
        }
    }

    #[test]
    fn failures_are_listed_and_timed_out_only_when_every_failure_is_a_deadline() {
        // (answers, failures, timed_out)
        let table = [
            (vec![said("local", &[]), failed("ams", true)], 1, true),
            (vec![failed("shumei", false), failed("ams", true)], 2, false),
            (vec![failed("ams", false)], 1, false),
            (vec![said("local", &[])], 0, false),
        ];
        for (answers, failures, timed_out) in table {
            let combined = combine(&answers, &[Scene::Porn], &BlockConfig::default());
            assert_eq!(combined.failures.len(), failures);
            assert_eq!(combined.timed_out, timed_out);
        }
    }
}
