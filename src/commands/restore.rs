//! `earshot restore`: undo blocks exactly (DESIGN §5). One object (`s3://bucket/key`), every
//! object one library entry caused to be blocked (`--reference ID`), or every block in a time
//! window (`--since`/`--until`), in a bucket or under a prefix. Each restore is recorded, called
//! back and appended to the audit log; see [`crate::pipeline::Pipeline::restore`].

use super::{CommandError, parse_s3_url};
use crate::config::Config;
use crate::pipeline::{Pipeline, RestoreRequest, Restored};
use crate::state::blocks::{self, BlockRecord};

/// What to restore, by whom and why.
#[derive(Debug, Clone)]
pub struct Restore {
    /// `s3://bucket/key`, or `s3://bucket[/prefix]` with a filter.
    pub target: String,
    /// Only blocks this library entry (id or unique prefix) caused.
    pub reference: Option<String>,
    /// Only blocks made at or after this time (seconds since the epoch).
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub request: RestoreRequest,
}

/// What a run restored.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub restored: Vec<String>,
    pub already: Vec<String>,
    pub failed: Vec<(String, String)>,
}

/// Restores what `args` selects; prints one line per object.
///
/// # Errors
/// Usage errors; a restore that failed (the others are still done).
pub async fn run(config: Config, args: &Restore) -> Result<Summary, CommandError> {
    let (bucket, key) = parse_s3_url(&args.target)
        .ok_or_else(|| CommandError::Usage(format!("{}: expected s3://bucket/key", args.target)))?;
    let filtered = args.reference.is_some() || args.since.is_some() || args.until.is_some();
    if key.is_empty() && !filtered {
        return Err(CommandError::Usage(
            "name one object (s3://bucket/key), or select blocks with --reference, --since or --until"
                .to_owned(),
        ));
    }
    if args.request.reason.trim().is_empty() {
        return Err(CommandError::Usage("--reason must say why".to_owned()));
    }
    let pipeline = Pipeline::new(config)
        .await
        .map_err(|e| CommandError::failed("loading the engines", e))?;
    let records: Vec<BlockRecord> = if filtered {
        blocks::all_blocks(&pipeline.s3, &bucket)
            .await?
            .into_iter()
            .filter(|r| r.key.starts_with(&key))
            .filter(|r| {
                args.reference.as_deref().is_none_or(|id| {
                    r.references
                        .iter()
                        .any(|reference| reference.starts_with(id))
                })
            })
            .filter(|r| args.since.is_none_or(|t| r.blocked_at >= t))
            .filter(|r| args.until.is_none_or(|t| r.blocked_at < t))
            .collect()
    } else {
        vec![
            pipeline
                .block_of(&bucket, &key)
                .await
                .map_err(|e| CommandError::Failed(e.to_string()))?,
        ]
    };
    let mut summary = Summary::default();
    for record in records {
        let url = format!("s3://{}/{}", record.bucket, record.key);
        match pipeline.restore(record, &args.request).await {
            Ok(Restored::Done { .. }) => {
                println!("restored {url}");
                summary.restored.push(url);
            }
            Ok(Restored::Already { .. }) => {
                println!("already restored {url}");
                summary.already.push(url);
            }
            Err(e) => {
                println!("failed {url}: {e}");
                summary.failed.push((url, e.to_string()));
            }
        }
    }
    eprintln!(
        "{} restored, {} restored before, {} failed",
        summary.restored.len(),
        summary.already.len(),
        summary.failed.len()
    );
    if let Some((url, error)) = summary.failed.first() {
        return Err(CommandError::Failed(format!(
            "{} restore(s) failed; first: {url}: {error}",
            summary.failed.len()
        )));
    }
    Ok(summary)
}
