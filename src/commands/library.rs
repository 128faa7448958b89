//! `earshot library add|list|match|remove`: the local engine's reference library.

use std::path::{Path, PathBuf};

use super::{CommandError, parse_s3_url};
use crate::audio::DecodeLimits;
use crate::config::{Config, EngineConfig, SUPPORTED_SUFFIXES};
use crate::engines::local::{Entry, LibraryStore, LocalEngine, sha256_file};
use crate::fingerprint::{self, Fingerprint};
use crate::job::Job;
use crate::model::Scene;
use crate::rules::key_suffix;
use crate::{fetch, layout, storage};

/// What to do with the library.
#[derive(Debug, Clone)]
pub enum Action {
    /// Add recordings (files, or every audio object under `s3://bucket/prefix`).
    Add {
        scene: Scene,
        label: String,
        sources: Vec<String>,
    },
    List,
    /// Find library entries inside a recording.
    Match {
        file: PathBuf,
    },
    /// Remove entries by id (or a unique prefix of one).
    Remove {
        ids: Vec<String>,
    },
}

/// Runs `action` on the library of the local engine named `engine`, printing as it goes.
///
/// # Errors
/// No such local engine, or the library or a recording could not be read or written.
pub async fn run(config: Config, engine: &str, action: Action) -> Result<(), CommandError> {
    let Some(EngineConfig::Local(local)) = config.engines.get(engine) else {
        return Err(CommandError::Usage(format!(
            "no local engine named {engine:?} in the config"
        )));
    };
    let s3 = storage::s3_client(&config.s3).await;
    let store = LibraryStore::open(&local.library, &s3);
    let limits = DecodeLimits {
        max_duration_secs: config.limits.max_duration_secs,
    };
    match action {
        Action::Add {
            scene,
            label,
            sources,
        } => {
            let items = expand(&s3, &sources).await?;
            let progress = indicatif::ProgressBar::new(items.len() as u64);
            progress.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
                    .expect("the template is valid"),
            );
            if items.len() < 2 {
                progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            for item in items {
                progress.set_message(item.display());
                let (path, _spool) = item.local_copy(&s3, config.limits.max_object_bytes).await?;
                let (mut entry, fingerprint) = reference_entry(&path, scene, &label, limits)
                    .await
                    .map_err(|e| CommandError::failed(format!("adding {}", item.display()), e))?;
                entry.source = item.display();
                // The fingerprint first: an entry is only listed once it is complete.
                store.put_fingerprint(&entry.id, &fingerprint).await?;
                store
                    .put_recording(&entry.id, tokio::fs::read(&path).await?)
                    .await?;
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
            // Brings the library's index up to date with what was added (reading only that).
            LocalEngine::load(engine, &local.library, &s3).await?;
        }
        Action::List => {
            let entries = store.list().await?;
            for entry in &entries {
                println!(
                    "{}  {:<7}  {:>8.1}s  {}  {}",
                    entry.id, entry.scene, entry.duration_secs, entry.label, entry.source
                );
            }
            eprintln!("{} entries in {}", entries.len(), store.location());
        }
        Action::Match { file } => {
            let engine = LocalEngine::load(engine, &local.library, &s3).await?;
            let suffix = key_suffix(&file.to_string_lossy());
            let (_, fingerprint) = tokio::task::spawn_blocking(move || {
                fingerprint::fingerprint_file(&file, suffix.as_deref(), limits)
            })
            .await
            .map_err(|e| CommandError::failed("fingerprinting", e))??;
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
        }
        Action::Remove { ids } => {
            let entries = store.list().await?;
            for id in ids {
                let matching: Vec<&Entry> =
                    entries.iter().filter(|e| e.id.starts_with(&id)).collect();
                match matching.as_slice() {
                    [] => return Err(CommandError::Failed(format!("no entry with id {id}"))),
                    [entry] => {
                        store.remove(&entry.id).await?;
                        println!("removed {}", entry.id);
                    }
                    many => {
                        return Err(CommandError::Failed(format!(
                            "id prefix {id} matches {} entries; give more of it",
                            many.len()
                        )));
                    }
                }
            }
            LocalEngine::load(engine, &local.library, &s3).await?;
        }
    }
    Ok(())
}

/// A recording to add to the library.
enum Source {
    File(PathBuf),
    Object(Job),
}

impl Source {
    fn display(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Object(job) => format!("s3://{}/{}", job.bucket, job.key),
        }
    }

    /// A local path to the recording (an S3 object is downloaded to a spool file, kept alive by
    /// the second value).
    async fn local_copy(
        &self,
        s3: &aws_sdk_s3::Client,
        max_bytes: u64,
    ) -> Result<(PathBuf, Option<tempfile::NamedTempFile>), CommandError> {
        match self {
            Source::File(path) => Ok((path.clone(), None)),
            Source::Object(job) => {
                let head = fetch::head(s3, job).await?;
                let spooled =
                    fetch::download(s3, job, head, max_bytes, &std::env::temp_dir()).await?;
                Ok((spooled.file.path().to_owned(), Some(spooled.file)))
            }
        }
    }
}

/// Expands the arguments of `library add`: files as given; `s3://bucket/prefix` into every object
/// under it with a supported audio suffix.
async fn expand(s3: &aws_sdk_s3::Client, sources: &[String]) -> Result<Vec<Source>, CommandError> {
    let mut items = Vec::new();
    for source in sources {
        let Some((bucket, prefix)) = parse_s3_url(source) else {
            items.push(Source::File(PathBuf::from(source)));
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
                CommandError::failed(
                    format!("listing {source}"),
                    storage::S3Failure::from_sdk(&e),
                )
            })?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let audio =
                    key_suffix(key).is_some_and(|s| SUPPORTED_SUFFIXES.contains(&s.as_str()));
                if audio && !layout::is_reserved(key) {
                    items.push(Source::Object(Job::new(bucket.clone(), key)));
                }
            }
        }
        if items.len() == before {
            return Err(CommandError::Failed(format!(
                "{source}: no audio objects under this prefix"
            )));
        }
    }
    Ok(items)
}

/// Hashes, decodes and fingerprints a reference recording (it must be audio earshot can decode).
async fn reference_entry(
    file: &Path,
    scene: Scene,
    label: &str,
    limits: DecodeLimits,
) -> Result<(Entry, Fingerprint), CommandError> {
    let path = file.to_owned();
    let (sha, bytes, info, fingerprint) =
        tokio::task::spawn_blocking(move || -> Result<_, CommandError> {
            let bytes = std::fs::metadata(&path)?.len();
            let sha = sha256_file(&path)?;
            let suffix = key_suffix(&path.to_string_lossy());
            let (info, fingerprint) =
                fingerprint::fingerprint_file(&path, suffix.as_deref(), limits)?;
            Ok((sha, bytes, info, fingerprint))
        })
        .await
        .map_err(|e| CommandError::failed("fingerprinting", e))??;
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
        added_at: crate::clock::system_secs(),
    };
    Ok((entry, fingerprint))
}
