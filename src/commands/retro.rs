//! `earshot retro`: search the kept fingerprints for references added since the last hunt, and
//! judge what now matches ([`crate::retro`]).

use std::sync::Arc;

use super::CommandError;
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::retro::{self, Hunt};

/// Hunts, prints each rule's hunt as JSON, and fails when a matched object could not be judged.
///
/// # Errors
/// No rule keeps prints; the prints could not be read; a matched object could not be judged.
pub async fn run(
    config: Config,
    rule: Option<&str>,
    since: Option<u64>,
    dry_run: bool,
) -> Result<Vec<Hunt>, CommandError> {
    if !config
        .rules
        .iter()
        .any(|r| r.retro.keep && rule.is_none_or(|id| r.id == id))
    {
        return Err(CommandError::Usage(
            "no rule keeps fingerprints: set retro = { keep = true } on the rules to hunt in"
                .to_owned(),
        ));
    }
    let pipeline = Arc::new(
        Pipeline::new(config)
            .await
            .map_err(|e| CommandError::failed("loading the engines", e))?,
    );
    let hunts = retro::hunt(&pipeline, rule, since, dry_run)
        .await
        .map_err(|e| CommandError::failed("retro-hunt", e))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&hunts).expect("hunts serialise")
    );
    if hunts.is_empty() {
        eprintln!("no references were added since the last hunt");
    }
    let failed: usize = hunts.iter().map(|h| h.failed.len()).sum();
    if failed > 0 {
        return Err(CommandError::Failed(format!(
            "{failed} matched object(s) could not be judged now; run `earshot retro` again"
        )));
    }
    Ok(hunts)
}
