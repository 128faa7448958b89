//! `earshot dictionary add|list|remove`: the speech engine's keyword dictionaries.

use std::path::PathBuf;

use super::CommandError;
use crate::config::{Config, EngineConfig};
use crate::engines::speech::dictionary::{
    Dictionary, DictionaryStore, MatchMode, Suggestion, Term, check_name,
};
use crate::engines::speech::normalise;
use crate::model::Scene;
use crate::storage;

/// What to do with the dictionaries.
#[derive(Debug, Clone)]
pub enum Action {
    /// Add terms to a dictionary, creating it (then `scene` is needed); the settings given
    /// replace the dictionary's.
    Add {
        name: String,
        scene: Option<Scene>,
        label: Option<String>,
        suggestion: Option<Suggestion>,
        mode: Option<MatchMode>,
        score: Option<u8>,
        terms: Vec<String>,
        /// A file of terms, one per line.
        file: Option<PathBuf>,
        /// The terms are example sentences, matched by meaning.
        examples: bool,
    },
    /// Every dictionary, or one dictionary's terms.
    List { name: Option<String> },
    /// A whole dictionary, or some of its terms.
    Remove { name: String, terms: Vec<String> },
}

/// Runs `action` on the dictionaries of the speech engine named `engine`, printing as it goes.
///
/// # Errors
/// No such speech engine, bad input, or the dictionaries could not be read or written.
pub async fn run(config: Config, engine: &str, action: Action) -> Result<(), CommandError> {
    let Some(EngineConfig::Speech(speech)) = config.engines.get(engine) else {
        return Err(CommandError::Usage(format!(
            "no speech engine named {engine:?} in the config"
        )));
    };
    let s3 = storage::s3_client(&config.s3).await;
    let store = DictionaryStore::open(&speech.dictionaries, &s3);
    let failed = |e: crate::engines::speech::dictionary::DictionaryError| {
        CommandError::Failed(e.to_string())
    };
    match action {
        Action::Add {
            name,
            scene,
            label,
            suggestion,
            mode,
            score,
            mut terms,
            file,
            examples,
        } => {
            check_name(&name).map_err(CommandError::Usage)?;
            if let Some(file) = file {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| CommandError::Usage(format!("{}: {e}", file.display())))?;
                terms.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                );
            }
            if terms.is_empty() {
                return Err(CommandError::Usage("no terms given".to_owned()));
            }
            let mut dictionary = match store.get(&name).await.map_err(failed)? {
                Some(existing) => existing,
                None => Dictionary {
                    name: name.clone(),
                    scene: scene.ok_or_else(|| {
                        CommandError::Usage(format!("dictionary {name} is new: --scene is needed"))
                    })?,
                    label: None,
                    suggestion: Suggestion::default(),
                    mode: MatchMode::default(),
                    terms: Vec::new(),
                },
            };
            if let Some(scene) = scene {
                dictionary.scene = scene;
            }
            if label.is_some() {
                dictionary.label = label;
            }
            if let Some(suggestion) = suggestion {
                dictionary.suggestion = suggestion;
            }
            if let Some(mode) = mode {
                dictionary.mode = mode;
            }
            let mut added = 0;
            for text in terms {
                let tokens = normalise::tokens(&text);
                let known = dictionary
                    .terms
                    .iter()
                    .position(|t| t.example == examples && normalise::tokens(&t.text) == tokens);
                match known {
                    Some(i) => dictionary.terms[i].score = score.or(dictionary.terms[i].score),
                    None => {
                        dictionary.terms.push(match examples {
                            false => Term::words(text, score),
                            true => Term::example(text, score),
                        });
                        added += 1;
                    }
                }
            }
            store.put(&dictionary).await.map_err(|e| match e {
                crate::engines::speech::dictionary::DictionaryError::Bad { message, .. } => {
                    CommandError::Usage(message)
                }
                other => CommandError::Failed(other.to_string()),
            })?;
            println!(
                "Added {added} terms to {name} ({} in all) at {}",
                dictionary.terms.len(),
                store.location()
            );
        }
        Action::List { name: None } => {
            for d in store.list().await.map_err(failed)? {
                println!(
                    "{}\t{}\t{}\t{}\t{} terms\t{}",
                    d.name,
                    d.scene,
                    serde_json::to_value(d.suggestion)?
                        .as_str()
                        .unwrap_or_default(),
                    serde_json::to_value(d.mode)?.as_str().unwrap_or_default(),
                    d.terms.len(),
                    d.label()
                );
            }
        }
        Action::List { name: Some(name) } => {
            let dictionary = store
                .get(&name)
                .await
                .map_err(failed)?
                .ok_or_else(|| CommandError::Usage(format!("no dictionary named {name}")))?;
            for term in &dictionary.terms {
                let kind = if term.example { "\texample" } else { "" };
                println!("{}\t{}{kind}", term.text, dictionary.score_of(term));
            }
        }
        Action::Remove { name, terms } if terms.is_empty() => {
            if !store.remove(&name).await.map_err(failed)? {
                return Err(CommandError::Usage(format!("no dictionary named {name}")));
            }
            println!("Removed dictionary {name}");
        }
        Action::Remove { name, terms } => {
            let mut dictionary = store
                .get(&name)
                .await
                .map_err(failed)?
                .ok_or_else(|| CommandError::Usage(format!("no dictionary named {name}")))?;
            let gone: Vec<Vec<String>> = terms.iter().map(|t| normalise::tokens(t)).collect();
            let before = dictionary.terms.len();
            dictionary
                .terms
                .retain(|t| !gone.contains(&normalise::tokens(&t.text)));
            store.put(&dictionary).await.map_err(failed)?;
            println!(
                "Removed {} terms from {name} ({} left)",
                before - dictionary.terms.len(),
                dictionary.terms.len()
            );
        }
    }
    Ok(())
}
