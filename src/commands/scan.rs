//! `earshot scan`: moderate what is already stored ([`crate::scan`]), and `--status` to list the
//! bucket's scans with their progress. SIGTERM or Ctrl-C stops taking new objects, lets the jobs
//! in flight finish and saves the checkpoint; the same command continues from there.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{CommandError, parse_s3_url};
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::scan::{self, Checkpoint, Enqueue, Input, Options, Rescan};

/// `earshot scan`'s arguments.
#[derive(Debug, Clone)]
pub struct Scan {
    /// `s3://bucket[/prefix]`.
    pub target: String,
    pub inventory: Option<String>,
    pub keys: Option<std::path::PathBuf>,
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub max_objects: Option<u64>,
    pub rescan: Rescan,
    pub concurrency: usize,
    pub enqueue: bool,
    pub max_backlog: u64,
    pub dry_run: bool,
}

/// Runs the scan and prints its report (JSON on stdout, a summary on stderr).
///
/// # Errors
/// Usage errors; the scan could not read its input or the bucket; objects failed (the report
/// lists them); the scan was stopped before its end.
pub async fn run(config: Config, args: &Scan) -> Result<Checkpoint, CommandError> {
    let (bucket, prefix) = parse_s3_url(&args.target).ok_or_else(|| {
        CommandError::Usage(format!("{}: expected s3://bucket/prefix", args.target))
    })?;
    let input = match (&args.inventory, &args.keys) {
        (Some(_), Some(_)) => {
            return Err(CommandError::Usage(
                "--inventory and --keys are two inputs; give one".to_owned(),
            ));
        }
        (Some(manifest), None) => Input::Inventory(manifest.clone()),
        (None, Some(path)) => Input::Keys(path.clone()),
        (None, None) => Input::Listing,
    };
    let enqueue = if args.enqueue {
        let Some(sqs) = &config.sources.sqs else {
            return Err(CommandError::Usage(
                "--enqueue puts the jobs on [sources.sqs] queue_url, and the config has none"
                    .to_owned(),
            ));
        };
        Some(Enqueue {
            sqs: crate::storage::sqs_client(&config.s3, sqs.endpoint_url.as_deref()).await,
            queue_url: sqs.queue_url.clone(),
            max_backlog: args.max_backlog,
        })
    } else {
        None
    };
    let options = Options {
        bucket,
        prefix,
        input,
        since: args.since,
        until: args.until,
        max_objects: args.max_objects,
        rescan: args.rescan,
        concurrency: args.concurrency,
        enqueue,
        dry_run: args.dry_run,
        progress_bar: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let pipeline = Arc::new(
        Pipeline::new(config)
            .await
            .map_err(|e| CommandError::failed("loading the engines", e))?,
    );
    let stop = CancellationToken::new();
    let signals = stop.clone();
    tokio::spawn(async move {
        super::serve::wait_for_signal().await;
        tracing::warn!(
            "Stopping the scan: no new objects; the jobs in flight finish and the checkpoint is saved."
        );
        signals.cancel();
    });
    let checkpoint = scan::run(pipeline, options, stop.clone())
        .await
        .map_err(|e| CommandError::failed("scan", e))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&checkpoint).expect("a checkpoint serialises")
    );
    let c = &checkpoint.counts;
    eprintln!(
        "scan {}: {} read, {} judged {:?}, {} enqueued, {} already judged, {} out of scope, {} out of the time window, {} failed; {:.1} MB, ≈{:.2} h of audio",
        checkpoint.id,
        c.read,
        c.judged.values().sum::<u64>(),
        c.judged,
        c.enqueued,
        c.already_judged,
        c.out_of_scope,
        c.out_of_window,
        c.failed,
        c.bytes as f64 / 1e6,
        c.est_audio_hours
    );
    if args.dry_run {
        eprintln!("dry run: nothing was judged; by suffix: {:?}", c.by_suffix);
        return Ok(checkpoint);
    }
    if checkpoint.finished_at.is_none() {
        return Err(CommandError::Failed(format!(
            "scan {} stopped at input record {}; run the same command to continue",
            checkpoint.id, checkpoint.position
        )));
    }
    if c.failed > 0 {
        return Err(CommandError::Failed(format!(
            "scan {} finished, but {} object(s) could not be judged (listed in its report, s3://{}/{})",
            checkpoint.id,
            c.failed,
            checkpoint.bucket,
            crate::layout::scan_report_key(&checkpoint.id)
        )));
    }
    Ok(checkpoint)
}

/// `earshot scan --status`: every scan in the bucket with its progress.
///
/// # Errors
/// The bucket could not be read.
pub async fn status(config: Config, target: &str) -> Result<Vec<Checkpoint>, CommandError> {
    let (bucket, _) = parse_s3_url(target)
        .ok_or_else(|| CommandError::Usage(format!("{target}: expected s3://bucket")))?;
    let s3 = crate::storage::s3_client(&config.s3).await;
    let scans = scan::scans(&s3, &bucket)
        .await
        .map_err(|e| CommandError::failed("listing scans", e))?;
    for scan in &scans {
        let c = &scan.counts;
        println!(
            "{}  {}  s3://{}/{}  {}  at record {}  judged {}  enqueued {}  skipped {}  failed {}",
            scan.id,
            if scan.finished_at.is_some() {
                "finished"
            } else {
                "unfinished"
            },
            scan.bucket,
            scan.prefix,
            scan.input,
            scan.position,
            c.judged.values().sum::<u64>(),
            c.enqueued,
            c.already_judged + c.out_of_scope + c.out_of_window,
            c.failed
        );
    }
    if scans.is_empty() {
        eprintln!("no scans in s3://{bucket}");
    }
    Ok(scans)
}
