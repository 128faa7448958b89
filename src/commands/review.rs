//! `earshot review list | show ID | decide ID block|pass --reason TEXT`: human review from the
//! command line, through the same claim as the console (see [`crate::pipeline::Pipeline::decide_review`]).

use super::CommandError;
use crate::config::{Config, ReviewVerdict};
use crate::pipeline::{DecideRequest, Pipeline, ReviewError};

/// What `earshot review` does.
#[derive(Debug, Clone)]
pub enum Action {
    /// The open items, oldest first, one line each.
    List,
    /// One item (and its decision, if any) as JSON.
    Show {
        id: String,
    },
    Decide {
        id: String,
        request: DecideRequest,
    },
}

/// Runs one review action; prints what it found or did.
///
/// # Errors
/// The item does not exist, someone decided first (exit code 1, with their decision), no
/// reason was given (exit code 2), or S3 failed.
pub async fn run(config: Config, action: Action) -> Result<(), CommandError> {
    if config
        .rules
        .iter()
        .all(|r| r.block.review != crate::config::Review::Human)
    {
        return Err(CommandError::Usage(
            "no rule has block.review = \"human\": there is nothing to review".to_owned(),
        ));
    }
    let pipeline = Pipeline::new(config)
        .await
        .map_err(|e| CommandError::failed("loading the engines", e))?;
    match action {
        Action::List => {
            let items = pipeline.review_queue().await.map_err(failed)?;
            for item in &items {
                println!(
                    "{}  {}  {:<7} {:>3}  {}  {}  s3://{}/{}",
                    item.trace_id,
                    crate::clock::display(item.created_at),
                    item.scene.as_str(),
                    item.score,
                    item.rule,
                    if item.held { "held" } else { "published" },
                    item.bucket,
                    item.key
                );
            }
            eprintln!("{} item(s) waiting for review", items.len());
        }
        Action::Show { id } => {
            let (item, decision) = pipeline.review_item(&id).await.map_err(failed)?;
            let shown = serde_json::json!({ "item": item, "decision": decision });
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
        Action::Decide { id, request } => {
            let decided = pipeline
                .decide_review(&id, &request)
                .await
                .map_err(failed)?;
            let callback = decided
                .callback
                .as_ref()
                .map_or("no-callback", |c| c.label());
            println!(
                "{} {} by {} (forbidden_status {}, callback {callback})",
                id,
                decided.decision.verdict.as_str(),
                decided.decision.by,
                decided.body.data.forbidden_status.as_u8()
            );
        }
    }
    Ok(())
}

fn failed(error: ReviewError) -> CommandError {
    match error {
        ReviewError::NoReason => CommandError::Usage("--reason must say why".to_owned()),
        other => CommandError::Failed(other.to_string()),
    }
}

/// `block` or `pass`.
///
/// # Errors
/// Anything else.
pub fn parse_verdict(text: &str) -> Result<ReviewVerdict, String> {
    match text {
        "block" => Ok(ReviewVerdict::Block),
        "pass" => Ok(ReviewVerdict::Pass),
        other => Err(format!("{other:?}: expected block or pass")),
    }
}
