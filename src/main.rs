//! The `earshot` command line (DESIGN §8). Parses arguments, loads the config, runs a command, and
//! maps the outcome to an exit code: 0 ok, 1 runtime failure, 2 usage or config error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use earshot::commands::{self, CommandError, dictionary, library, moderate};
use earshot::config::Config;
use earshot::engines::speech::dictionary::{MatchMode, Suggestion};
use earshot::model::Scene;

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
        /// For local files: the scenes to judge (repeatable; by default every scene: porn, ads,
        /// illegal, abuse). The verdict's `scenes` lists those judged. An `s3://` object is judged
        /// on its rule's scenes.
        #[arg(long = "scene", value_parser = parse_scene)]
        scenes: Vec<Scene>,
        /// For local files and a speech engine: print what it heard, with times, before the
        /// verdict.
        #[arg(long)]
        transcript: bool,
    },
    /// Manage the speech engine's keyword dictionaries.
    Dictionary {
        /// The speech engine whose dictionaries to manage.
        #[arg(long, default_value = "speech", global = true)]
        engine: String,
        #[command(subcommand)]
        action: DictionaryAction,
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
    /// Jobs parked because they could not be run (a source gave up retrying them).
    Jobs {
        #[command(subcommand)]
        action: JobsAction,
    },
    /// Moderate objects already stored, under the same rules as uploads (resumable).
    Scan {
        /// s3://bucket/prefix (the prefix may be empty).
        target: String,
        /// List the bucket's scans with their progress instead.
        #[arg(long)]
        status: bool,
        /// Read the objects from an S3 Inventory report (CSV): s3://bucket/…/manifest.json.
        #[arg(long, conflicts_with = "keys")]
        inventory: Option<String>,
        /// Read the keys from a file, one per line.
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Only objects last modified at or after this (seconds, RFC 3339, or an age such as 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only objects last modified before this.
        #[arg(long)]
        until: Option<String>,
        /// Judge (or enqueue) at most this many objects.
        #[arg(long = "max")]
        max_objects: Option<u64>,
        /// Judge objects judged before: all of them, or only those judged with an older library.
        #[arg(long, num_args = 0..=1, default_missing_value = "all", value_parser = ["all", "library-changed"])]
        rescan: Option<String>,
        /// Jobs at once in this process.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Put the jobs on the [sources.sqs] queue for every running daemon to share.
        #[arg(long)]
        enqueue: bool,
        /// With --enqueue: wait while the queue holds this many messages.
        #[arg(long, default_value_t = 1000)]
        max_backlog: u64,
        /// Count what would be judged (by suffix, bytes, estimated audio hours); judge nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Search the kept fingerprints (rules with retro.keep) for references added since the last
    /// hunt, and judge what now matches.
    Retro {
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Search for references added at or after this instead (seconds, RFC 3339, or an age).
        #[arg(long)]
        since: Option<String>,
        /// Report the matches; judge nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Undo blocks exactly: the object's grants, or its key, headers, metadata, tags and storage
    /// class, as they were before the block.
    Restore {
        /// s3://bucket/key; or s3://bucket[/prefix] with --reference, --since or --until.
        target: String,
        /// Restore every object this library entry (id or unique prefix) caused to be blocked.
        #[arg(long)]
        reference: Option<String>,
        /// Only blocks made at or after this time (seconds, RFC 3339, or an age such as 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only blocks made before this time.
        #[arg(long)]
        until: Option<String>,
        /// Why (kept in the audit log and sent in the callback).
        #[arg(long)]
        reason: String,
        /// Who restores [default: $USER].
        #[arg(long, env = "USER", default_value = "earshot")]
        by: String,
        /// Also keep this audio from being blocked again (by SHA-256 and fingerprint).
        #[arg(long)]
        mark_normal: bool,
    },
    /// Human review (rules with block.review = "human"): the queue, one item, a decision.
    Review {
        #[command(subcommand)]
        action: ReviewAction,
    },
    /// Serve the review console ([console] listen) alone, with the review timeouts.
    Console,
    /// Print an argon2 hash of a password read from stdin, for [[console.users]] password_hash.
    HashPassword,
    /// Validate the config and print it, secrets redacted.
    CheckConfig,
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print earshot's man page, or with --dir write one page per command there
    /// (earshot.1, earshot-serve.1, …).
    Man {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ReviewAction {
    /// The items waiting for a person, oldest first.
    List,
    /// One item, and its decision if it has one, as JSON.
    Show { id: String },
    /// Decide an item: block or pass. The first decision wins; a later one is refused.
    Decide {
        id: String,
        #[arg(value_parser = commands::review::parse_verdict)]
        verdict: earshot::config::ReviewVerdict,
        /// Why (kept in the audit log and sent in the callback).
        #[arg(long)]
        reason: String,
        /// Who decides [default: $USER].
        #[arg(long, env = "USER", default_value = "earshot")]
        by: String,
    },
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
enum DictionaryAction {
    /// Add terms to a dictionary (created if new: then --scene is needed). Settings given replace
    /// the dictionary's.
    Add {
        name: String,
        #[arg(long, value_parser = parse_scene)]
        scene: Option<Scene>,
        /// The label hits report [default: the dictionary's name]
        #[arg(long)]
        label: Option<String>,
        /// `block` (non-compliant) or `review` (suspected: a person decides)
        #[arg(long, value_parser = parse_suggestion)]
        suggestion: Option<Suggestion>,
        /// `exact`, or `fuzzy` (split words, homophones, look-alike spellings)
        #[arg(long = "match", value_parser = parse_match)]
        mode: Option<MatchMode>,
        /// The terms' score, 1-100 [default: 95 for block, 75 for review]
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
        score: Option<u8>,
        /// A file of terms, one per line
        #[arg(long)]
        file: Option<PathBuf>,
        /// The terms are example sentences, heard by meaning (needs the engine's `meaning`)
        #[arg(long)]
        examples: bool,
        terms: Vec<String>,
    },
    /// List the dictionaries, or one dictionary's terms.
    List { name: Option<String> },
    /// Remove a dictionary, or some of its terms.
    Remove { name: String, terms: Vec<String> },
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

#[derive(Subcommand)]
enum JobsAction {
    /// Run every parked job in a bucket again; those that finish are removed.
    Replay {
        /// s3://bucket
        bucket: String,
    },
}

/// A `--since`/`--until` argument as seconds since the epoch.
fn time(text: Option<String>) -> Result<Option<u64>, CommandError> {
    let now = earshot::clock::system_secs();
    text.map(|t| commands::parse_time(&t, now))
        .transpose()
        .map_err(CommandError::Usage)
}

fn parse_scene(text: &str) -> Result<Scene, String> {
    text.parse()
}

fn parse_suggestion(text: &str) -> Result<Suggestion, String> {
    serde_json::from_value(serde_json::json!(text)).map_err(|_| "block or review".to_owned())
}

fn parse_match(text: &str) -> Result<MatchMode, String> {
    serde_json::from_value(serde_json::json!(text)).map_err(|_| "exact or fuzzy".to_owned())
}

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
            eprintln!("earshot: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The man page on stdout, or every command's page written to `dir`.
fn man_pages(dir: Option<&std::path::Path>) -> Result<(), CommandError> {
    let command = Cli::command();
    match dir {
        None => clap_mangen::Man::new(command)
            .render(&mut std::io::stdout())
            .map_err(|e| CommandError::failed("writing the man page", e)),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| CommandError::failed(format!("creating {}", dir.display()), e))?;
            clap_mangen::generate_to(command, dir)
                .map_err(|e| CommandError::failed(format!("writing to {}", dir.display()), e))
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

async fn run(cli: Cli) -> Result<(), CommandError> {
    match &cli.command {
        Command::HashPassword => return commands::console::hash_password_from_stdin(),
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "earshot",
                &mut std::io::stdout(),
            );
            return Ok(());
        }
        Command::Man { dir } => return man_pages(dir.as_deref()),
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::CheckConfig => {
            let text = toml::to_string_pretty(&config.redacted())
                .map_err(|e| CommandError::failed("printing the config", e))?;
            print!("{text}");
            eprintln!("Config is valid.");
            Ok(())
        }
        Command::Serve => commands::serve::run(config).await,
        Command::Console => commands::console::run(config).await,
        Command::HashPassword | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("answered before the config is loaded")
        }
        Command::Review { action } => {
            let action = match action {
                ReviewAction::List => commands::review::Action::List,
                ReviewAction::Show { id } => commands::review::Action::Show { id },
                ReviewAction::Decide {
                    id,
                    verdict,
                    reason,
                    by,
                } => commands::review::Action::Decide {
                    id,
                    request: earshot::pipeline::DecideRequest {
                        verdict,
                        by,
                        reason,
                    },
                },
            };
            commands::review::run(config, action).await
        }
        Command::Moderate {
            target,
            dry_run,
            engine,
            scenes,
            transcript,
        } => {
            let args = moderate::Moderate {
                target,
                dry_run,
                engine,
                scenes,
                transcript,
            };
            if let Some(body) = moderate::run(config, &args).await? {
                let text = serde_json::to_string_pretty(&body)
                    .map_err(|e| CommandError::failed("printing the verdict", e))?;
                println!("{text}");
            }
            Ok(())
        }
        Command::Library { engine, action } => {
            let action = match action {
                LibraryAction::Add {
                    scene,
                    label,
                    sources,
                } => library::Action::Add {
                    scene,
                    label,
                    sources,
                },
                LibraryAction::List => library::Action::List,
                LibraryAction::Match { file } => library::Action::Match { file },
                LibraryAction::Remove { ids } => library::Action::Remove { ids },
            };
            library::run(config, &engine, action).await
        }
        Command::Dictionary { engine, action } => {
            let action = match action {
                DictionaryAction::Add {
                    name,
                    scene,
                    label,
                    suggestion,
                    mode,
                    score,
                    file,
                    examples,
                    terms,
                } => dictionary::Action::Add {
                    name,
                    scene,
                    label,
                    suggestion,
                    mode,
                    score,
                    terms,
                    file,
                    examples,
                },
                DictionaryAction::List { name } => dictionary::Action::List { name },
                DictionaryAction::Remove { name, terms } => {
                    dictionary::Action::Remove { name, terms }
                }
            };
            dictionary::run(config, &engine, action).await
        }
        Command::Callbacks {
            action: CallbacksAction::Replay { bucket, to },
        } => commands::replay::callbacks(config, &bucket, to).await,
        Command::Jobs {
            action: JobsAction::Replay { bucket },
        } => commands::replay::jobs(config, &bucket).await,
        Command::Scan { target, status, .. } if status => {
            commands::scan::status(config, &target).await.map(|_| ())
        }
        Command::Scan {
            target,
            status: _,
            inventory,
            keys,
            since,
            until,
            max_objects,
            rescan,
            concurrency,
            enqueue,
            max_backlog,
            dry_run,
        } => {
            let args = commands::scan::Scan {
                target,
                inventory,
                keys,
                since: time(since)?,
                until: time(until)?,
                max_objects,
                rescan: match rescan.as_deref() {
                    None => earshot::scan::Rescan::No,
                    Some("library-changed") => earshot::scan::Rescan::LibraryChanged,
                    Some(_) => earshot::scan::Rescan::All,
                },
                concurrency,
                enqueue,
                max_backlog,
                dry_run,
            };
            commands::scan::run(config, &args).await.map(|_| ())
        }
        Command::Retro {
            rule,
            since,
            dry_run,
        } => commands::retro::run(config, rule.as_deref(), time(since)?, dry_run)
            .await
            .map(|_| ()),
        Command::Restore {
            target,
            reference,
            since,
            until,
            reason,
            by,
            mark_normal,
        } => {
            let args = commands::restore::Restore {
                target,
                reference,
                since: time(since)?,
                until: time(until)?,
                request: earshot::pipeline::RestoreRequest {
                    by,
                    reason,
                    mark_normal,
                },
            };
            commands::restore::run(config, &args).await.map(|_| ())
        }
    }
}
