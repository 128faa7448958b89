//! The `earshot` command line (DESIGN §8). Parses arguments, loads the config, runs a command, and
//! maps the outcome to an exit code: 0 ok, 1 runtime failure, 2 usage or config error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use earshot::config::{Config, EngineConfig, Scene};
use earshot::engines::local::{Entry, LibraryStore, sha256_file};
use earshot::job::Job;
use earshot::pipeline::{CallbackOutcome, Outcome, Pipeline};
use earshot::{audio, callback, state, storage};

#[derive(Parser)]
#[command(
    name = "earshot",
    version,
    about = "Automatic moderation of audio uploaded to S3-compatible storage"
)]
struct Cli {
    /// Config file [default: config/earshot.toml if it exists]
    #[arg(long, global = true, env = "EARSHOT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the configured sources until SIGTERM or Ctrl-C (jobs in flight are finished first).
    Serve,
    /// Moderate one local file or s3://bucket/key and print the verdict as callback JSON.
    Moderate {
        /// A file path or s3://bucket/key
        target: String,
        /// For s3:// targets: judge only, do not block or call back.
        #[arg(long)]
        dry_run: bool,
        /// For local files: the engine to use.
        #[arg(long, default_value = "local")]
        engine: String,
        /// For local files: the scenes to judge (repeatable).
        #[arg(long = "scene", value_parser = parse_scene, default_values = ["porn", "ads", "illegal"])]
        scenes: Vec<Scene>,
    },
    /// Manage the local engine's reference library.
    Library {
        /// The engine whose library to manage.
        #[arg(long, default_value = "local", global = true)]
        engine: String,
        #[command(subcommand)]
        action: LibraryAction,
    },
    /// Undelivered callbacks.
    Callbacks {
        #[command(subcommand)]
        action: CallbacksAction,
    },
    /// Validate the config and print it, secrets redacted.
    CheckConfig,
}

#[derive(Subcommand)]
enum LibraryAction {
    /// Add recordings as known non-compliant audio: files, or every audio object under an
    /// s3://bucket/prefix.
    Add {
        #[arg(long, value_parser = parse_scene)]
        scene: Scene,
        #[arg(long)]
        label: String,
        #[arg(required = true)]
        sources: Vec<String>,
    },
    /// List the library's entries.
    List,
    /// Find library entries inside a recording and print where (JSON, strongest first).
    Match { file: PathBuf },
    /// Remove entries by id (or a unique prefix of one).
    Remove {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Subcommand)]
enum CallbacksAction {
    /// Re-send every dead-lettered callback in a bucket; delivered ones are removed.
    Replay {
        /// s3://bucket
        bucket: String,
        /// Send to this URL instead of the one each callback was meant for.
        #[arg(long)]
        to: Option<String>,
    },
}

fn parse_scene(text: &str) -> Result<Scene, String> {
    text.parse()
}

/// An error that is the user's to fix in arguments or config: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging();
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let usage = e.downcast_ref::<UsageError>().is_some()
                || e.downcast_ref::<earshot::config::ConfigError>().is_some();
            eprintln!("earshot: {e:#}");
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match std::env::var("EARSHOT_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("human" | "text") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::CheckConfig => {
            let text = toml::to_string_pretty(&config.redacted()).context("printing the config")?;
            print!("{text}");
            eprintln!("Config is valid.");
            Ok(())
        }
        Command::Serve => serve(config).await,
        Command::Moderate {
            target,
            dry_run,
            engine,
            scenes,
        } => moderate(config, &target, dry_run, &engine, &scenes).await,
        Command::Library { engine, action } => library(config, &engine, action).await,
        Command::Callbacks {
            action: CallbacksAction::Replay { bucket, to },
        } => replay(config, &bucket, to).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let sqs_config = config.sources.sqs.clone();
    let webhook_config = config.sources.webhook.clone();
    if sqs_config.is_none() && webhook_config.is_none() {
        return Err(UsageError(
            "no source configured: add a [sources.sqs] or [sources.webhook] section".to_owned(),
        )
        .into());
    }
    let admin_listen = config.admin.listen.clone();
    let refresh_every = config.refresh_every();
    let asynchronous = config.async_jobs.token_key.is_some();
    let sweep_every = std::time::Duration::from_secs(config.async_jobs.sweep_secs);
    let pipeline = Arc::new(Pipeline::new(config).await?);
    let shutdown = tokio_util::sync::CancellationToken::new();
    if let Some(every) = refresh_every {
        // Library entries added or removed while serving take effect without a restart.
        let (pipeline, stop) = (pipeline.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => pipeline.refresh_engines().await,
                    () = stop.cancelled() => return,
                }
            }
        });
    }
    if asynchronous {
        // Jobs waiting on a provider: late results polled for, overdue ones called back, complete
        // ones finished (also those another replica, or a process before a restart, submitted).
        let (pipeline, stop) = (pipeline.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => pipeline.sweep().await,
                    () = stop.cancelled() => return,
                }
            }
        });
    }
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Signal received; finishing jobs in flight.");
        signals.cancel();
    });

    let mut tasks: tokio::task::JoinSet<anyhow::Result<()>> = tokio::task::JoinSet::new();
    if let Some(sqs_config) = sqs_config {
        let (pipeline, stop) = (pipeline.clone(), shutdown.clone());
        tasks.spawn(async move {
            let sqs =
                storage::sqs_client(&pipeline.config.s3, sqs_config.endpoint_url.as_deref()).await;
            earshot::sources::sqs::run(pipeline, sqs, sqs_config, stop).await;
            Ok(())
        });
    }
    if let Some(webhook_config) = webhook_config {
        let (pipeline, stop) = (pipeline.clone(), shutdown.clone());
        tasks.spawn(async move {
            let listen = webhook_config.listen.clone();
            earshot::sources::webhook::run(pipeline, webhook_config, stop)
                .await
                .with_context(|| format!("webhook listener on {listen}"))
        });
    }
    if let Some(listen) = admin_listen {
        let (router, stop) = (earshot::admin::router(pipeline.clone()), shutdown.clone());
        tasks.spawn(async move {
            earshot::admin::serve(&listen, router, stop)
                .await
                .with_context(|| format!("admin listener on {listen}"))
        });
    }
    // A source that cannot start (its address is taken) stops the others: a daemon running with
    // half its sources would look healthy and miss events.
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.context("a source task panicked")?;
        if let Err(e) = result {
            tracing::error!(error = %format!("{e:#}"), "A source failed; stopping.");
            shutdown.cancel();
            failure.get_or_insert(e);
        }
    }
    failure.map_or(Ok(()), Err)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Splits `s3://bucket/key` (the key may be empty).
fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_owned(), key.to_owned()))
}

async fn moderate(
    config: Config,
    target: &str,
    dry_run: bool,
    engine: &str,
    scenes: &[Scene],
) -> anyhow::Result<()> {
    let pipeline = Pipeline::new(config).await?;
    let body = match parse_s3_url(target) {
        None => {
            let path = PathBuf::from(target);
            if !path.is_file() {
                return Err(
                    UsageError(format!("{target}: no such file (or use s3://bucket/key)")).into(),
                );
            }
            pipeline.moderate_file(&path, engine, scenes).await?
        }
        Some((bucket, key)) => {
            let job = Job::new(bucket, key);
            let rule = pipeline
                .rules()
                .find(&job.bucket, &job.key)
                .map_err(|skip| UsageError(format!("{target}: {skip}")))?
                .clone();
            if dry_run {
                match pipeline.judge(&job, &rule, &job.trace_id(), false).await? {
                    earshot::pipeline::Judgement::Done { body, .. } => *body,
                    earshot::pipeline::Judgement::Waiting => {
                        bail!("{target}: a dry run cannot wait for an asynchronous engine")
                    }
                }
            } else {
                match pipeline.process(&job).await? {
                    Outcome::Finished { body, callback, .. } => {
                        if let CallbackOutcome::DeadLettered { key, error } = callback {
                            eprintln!(
                                "Callback undeliverable ({error}); kept at s3://{}/{key}",
                                job.bucket
                            );
                        }
                        *body
                    }
                    Outcome::InProgress { .. } => {
                        bail!("{target} is being judged by this process already")
                    }
                    Outcome::Waiting { trace_id } => {
                        eprintln!(
                            "Handed to an asynchronous engine (trace id {trace_id}); `earshot serve` \
                             receives its result and calls back."
                        );
                        return Ok(());
                    }
                    Outcome::Duplicate { trace_id } => {
                        let record = state::finished_job(&pipeline.s3, &job.bucket, &trace_id)
                            .await?
                            .context("the job record vanished")?;
                        eprintln!("Already judged; printing the recorded verdict.");
                        record.body
                    }
                    Outcome::Skipped(skip) => bail!("{target}: {skip}"),
                }
            }
        }
    };
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

async fn library(config: Config, engine: &str, action: LibraryAction) -> anyhow::Result<()> {
    let Some(EngineConfig::Local(local)) = config.engines.get(engine) else {
        return Err(UsageError(format!("no local engine named {engine:?} in the config")).into());
    };
    let s3 = storage::s3_client(&config.s3).await;
    let store = LibraryStore::open(&local.library, &s3);
    match action {
        LibraryAction::Add {
            scene,
            label,
            sources,
        } => {
            let items = library_sources(&s3, &sources).await?;
            let progress = indicatif::ProgressBar::new(items.len() as u64);
            progress.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
                    .expect("the template is valid"),
            );
            if items.len() < 2 {
                progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let max_duration_secs = config.limits.max_duration_secs;
            for item in items {
                progress.set_message(item.display());
                let (path, _spool) = item.local_copy(&s3, config.limits.max_object_bytes).await?;
                let (mut entry, fingerprint) =
                    reference_entry(&path, scene, &label, max_duration_secs)
                        .await
                        .with_context(|| format!("adding {}", item.display()))?;
                entry.source = item.display();
                // The fingerprint first: an entry is only listed once it is complete.
                store.put_fingerprint(&entry.id, &fingerprint).await?;
                store.put(&entry).await?;
                progress.suspend(|| {
                    println!(
                        "{}  {}  {}  {}",
                        entry.id, entry.scene, entry.label, entry.source
                    )
                });
                progress.inc(1);
            }
            progress.finish_and_clear();
            Ok(())
        }
        LibraryAction::List => {
            let entries = store.list().await?;
            for entry in &entries {
                println!(
                    "{}  {:<7}  {:>8.1}s  {}  {}",
                    entry.id, entry.scene, entry.duration_secs, entry.label, entry.source
                );
            }
            eprintln!("{} entries in {}", entries.len(), store.location());
            Ok(())
        }
        LibraryAction::Match { file } => {
            let engine =
                earshot::engines::local::LocalEngine::load(engine, &local.library, &s3).await?;
            let suffix = earshot::rules::key_suffix(&file.to_string_lossy());
            let limits = audio::DecodeLimits {
                max_duration_secs: config.limits.max_duration_secs,
            };
            let (_, fingerprint) = tokio::task::spawn_blocking(move || {
                earshot::fingerprint::fingerprint_file(&file, suffix.as_deref(), limits)
            })
            .await??;
            let found: Vec<serde_json::Value> = engine
                .matches(&fingerprint)
                .into_iter()
                .map(|(entry, segment)| {
                    serde_json::json!({
                        "id": entry.id,
                        "scene": entry.scene,
                        "label": entry.label,
                        "source": entry.source,
                        "score": segment.score,
                        "offset_secs": segment.offset_secs,
                        "duration_secs": segment.duration_secs,
                        "reference_offset_secs": segment.reference_offset_secs,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&found)?);
            Ok(())
        }
        LibraryAction::Remove { ids } => {
            let entries = store.list().await?;
            for id in ids {
                let matching: Vec<&Entry> =
                    entries.iter().filter(|e| e.id.starts_with(&id)).collect();
                match matching.as_slice() {
                    [] => bail!("no entry with id {id}"),
                    [entry] => {
                        store.remove(&entry.id).await?;
                        println!("removed {}", entry.id);
                    }
                    many => bail!(
                        "id prefix {id} matches {} entries; give more of it",
                        many.len()
                    ),
                }
            }
            Ok(())
        }
    }
}

/// A recording to add to the library.
enum LibrarySource {
    File(PathBuf),
    Object(Job),
}

impl LibrarySource {
    fn display(&self) -> String {
        match self {
            LibrarySource::File(path) => path.display().to_string(),
            LibrarySource::Object(job) => format!("s3://{}/{}", job.bucket, job.key),
        }
    }

    /// A local path to the recording (an S3 object is downloaded to a spool file, kept alive by
    /// the second value).
    async fn local_copy(
        &self,
        s3: &aws_sdk_s3::Client,
        max_bytes: u64,
    ) -> anyhow::Result<(PathBuf, Option<tempfile::NamedTempFile>)> {
        match self {
            LibrarySource::File(path) => Ok((path.clone(), None)),
            LibrarySource::Object(job) => {
                let head = earshot::fetch::head(s3, job).await?;
                let spooled =
                    earshot::fetch::download(s3, job, head, max_bytes, &std::env::temp_dir())
                        .await?;
                Ok((spooled.file.path().to_owned(), Some(spooled.file)))
            }
        }
    }
}

/// Expands the arguments of `library add`: files as given; `s3://bucket/prefix` into every object
/// under it with a supported audio suffix.
async fn library_sources(
    s3: &aws_sdk_s3::Client,
    sources: &[String],
) -> anyhow::Result<Vec<LibrarySource>> {
    let mut items = Vec::new();
    for source in sources {
        let Some((bucket, prefix)) = parse_s3_url(source) else {
            items.push(LibrarySource::File(PathBuf::from(source)));
            continue;
        };
        let mut pages = s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        let before = items.len();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                anyhow::anyhow!("listing {source}: {}", storage::S3Failure::from_sdk(&e))
            })?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let audio = earshot::rules::key_suffix(key)
                    .is_some_and(|s| earshot::config::SUPPORTED_SUFFIXES.contains(&s.as_str()));
                if audio && !key.starts_with(earshot::rules::BACKUP_ROOT) {
                    items.push(LibrarySource::Object(Job::new(bucket.clone(), key)));
                }
            }
        }
        if items.len() == before {
            bail!("{source}: no audio objects under this prefix");
        }
    }
    Ok(items)
}

/// Hashes, decodes and fingerprints a reference recording (it must be audio earshot can decode).
async fn reference_entry(
    file: &std::path::Path,
    scene: Scene,
    label: &str,
    max_duration_secs: u64,
) -> anyhow::Result<(Entry, earshot::fingerprint::Fingerprint)> {
    let path = file.to_owned();
    let (sha, bytes, info, fingerprint) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let bytes = std::fs::metadata(&path)?.len();
            let sha = sha256_file(&path)?;
            let suffix = earshot::rules::key_suffix(&path.to_string_lossy());
            let (info, fingerprint) = earshot::fingerprint::fingerprint_file(
                &path,
                suffix.as_deref(),
                audio::DecodeLimits { max_duration_secs },
            )?;
            Ok((sha, bytes, info, fingerprint))
        })
        .await??;
    let entry = Entry {
        id: hex::encode(sha),
        scene,
        label: label.to_owned(),
        source: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes,
        duration_secs: info.duration_secs(),
        added_at: state::now_secs(),
    };
    Ok((entry, fingerprint))
}

async fn replay(config: Config, bucket_url: &str, to: Option<String>) -> anyhow::Result<()> {
    let Some((bucket, _)) = parse_s3_url(bucket_url) else {
        return Err(UsageError(format!("{bucket_url}: expected s3://bucket")).into());
    };
    let s3 = storage::s3_client(&config.s3).await;
    let notifier = callback::Notifier::default();
    let letters = state::dead_letters(&s3, &bucket).await?;
    let (mut delivered, mut failed) = (0, 0);
    for (key, letter) in letters {
        let mut request = letter.request.clone();
        if let Some(url) = &to {
            request.url = url.clone();
        }
        let settings = earshot::config::CallbackConfig {
            url: request.url.clone(),
            seed: None,
            max_attempts: 3,
            initial_backoff_ms: 500,
            timeout_secs: 10,
            detail: false,
        };
        match notifier.deliver(&settings, &request).await {
            callback::Delivery::Delivered { .. } => {
                state::delete(&s3, &bucket, &key).await?;
                println!("delivered {} to {}", letter.trace_id, request.url);
                delivered += 1;
            }
            callback::Delivery::Failed { error, .. } => {
                println!("still failing {}: {error}", letter.trace_id);
                failed += 1;
            }
        }
    }
    eprintln!("{delivered} delivered, {failed} still failing");
    if failed > 0 {
        bail!("{failed} callbacks could not be delivered");
    }
    Ok(())
}
