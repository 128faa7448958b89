//! Test inputs that take long to make (hundreds of transformed excerpts, speech), made once per
//! checkout into `target/test-cache/` (ignored by git) and reused while their inputs are unchanged.
//!
//! A set is keyed by a hash of everything it is made from: the recipe the caller names (the source
//! of the code that makes it), the size and modification time of every input file, and the
//! versions of ffmpeg, sox and espeak-ng. Anything changed makes a new set; nothing is ever read
//! from a set whose key differs. A set is made in a directory of its own and renamed into place
//! whole, so a test process killed halfway leaves no half set behind; processes that need a set
//! being made wait for it (a lock per set name) instead of making it again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// `target/test-cache/` of this checkout.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-cache")
}

/// The versions of the tools that make test audio.
fn tools() -> &'static str {
    static TOOLS: OnceLock<String> = OnceLock::new();
    TOOLS.get_or_init(|| {
        [
            ("ffmpeg", "-version"),
            ("sox", "--version"),
            ("espeak-ng", "--version"),
        ]
        .iter()
        .map(|(tool, flag)| {
            let out = Command::new(tool)
                .arg(flag)
                .output()
                .unwrap_or_else(|e| panic!("{tool}: {e} (scripts/install-deps.sh installs it)"));
            let text = String::from_utf8_lossy(&out.stdout);
            format!("{tool}: {}\n", text.lines().next().unwrap_or(""))
        })
        .collect()
    })
}

/// What identifies an input file's content for the key.
pub fn stamp(path: &Path) -> String {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{} {} {modified}\n", path.display(), meta.len())
}

/// The key of a set: the recipe, the inputs and the tools, hashed.
fn key(recipe: &str, inputs: &[PathBuf]) -> String {
    let mut hash = Sha256::new();
    hash.update(recipe.as_bytes());
    for input in inputs {
        hash.update(stamp(input).as_bytes());
    }
    hash.update(tools().as_bytes());
    hex::encode(&hash.finalize()[..12])
}

/// A set of labelled files: made by `make` into the directory it is given (returning each file's
/// label and path, inside that directory or elsewhere), or read back from the cache when a set
/// with the same `name`, `recipe` and `inputs` was made before. Paths come back as `make` gave
/// them, relocated to the set's place in the cache.
pub fn labelled_files(
    name: &str,
    recipe: &str,
    inputs: &[PathBuf],
    make: impl FnOnce(&Path) -> Vec<(String, PathBuf)>,
) -> Vec<(String, PathBuf)> {
    let dir = root().join(format!("{name}-{}", key(recipe, inputs)));
    let manifest = dir.join("manifest.json");
    if let Some(files) = read_manifest(&dir, &manifest) {
        return files;
    }
    std::fs::create_dir_all(root()).expect("target/test-cache");
    // One process makes a set while the others that need it wait (nextest runs every test in a
    // process of its own, several at once), then read what it made.
    let lock = std::fs::File::create(root().join(format!(".{name}.lock"))).expect("a lock file");
    lock.lock().expect("the set's lock");
    if let Some(files) = read_manifest(&dir, &manifest) {
        return files;
    }
    let partial = root().join(format!(
        ".{name}.{}-{}.partial",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&partial).expect("a partial set");
    let made = make(&partial);
    let entries: Vec<(String, String)> = made
        .iter()
        .map(|(label, path)| {
            let stored = match path.strip_prefix(&partial) {
                Ok(inside) => format!("./{}", inside.display()),
                Err(_) => path.display().to_string(),
            };
            (label.clone(), stored)
        })
        .collect();
    std::fs::write(
        partial.join("manifest.json"),
        serde_json::to_vec_pretty(&entries).expect("serialises"),
    )
    .expect("the manifest");
    if std::fs::rename(&partial, &dir).is_err() {
        // Another process made the same set first: use its copy.
        let _ = std::fs::remove_dir_all(&partial);
    }
    prune(name, &dir);
    read_manifest(&dir, &manifest).expect("the set just made")
}

/// Removes the sets named `name` other than `keep`: made from inputs that have since changed.
fn prune(name: &str, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(root()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix(name)?.strip_prefix('-'))
            .is_some_and(|key| key.len() == 24 && key.bytes().all(|b| b.is_ascii_hexdigit()));
        if stale && path != keep {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// A set's files, or None when it has not been made (or a file of it is missing).
fn read_manifest(dir: &Path, manifest: &Path) -> Option<Vec<(String, PathBuf)>> {
    let bytes = std::fs::read(manifest).ok()?;
    let entries: Vec<(String, String)> = serde_json::from_slice(&bytes).ok()?;
    let files: Vec<(String, PathBuf)> = entries
        .into_iter()
        .map(|(label, stored)| {
            let path = match stored.strip_prefix("./") {
                Some(inside) => dir.join(inside),
                None => PathBuf::from(stored),
            };
            (label, path)
        })
        .collect();
    files
        .iter()
        .all(|(_, path)| path.is_file())
        .then_some(files)
}

#[test]
fn a_set_is_made_once_and_read_back_while_its_inputs_are_unchanged() {
    let input = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(input.path(), b"one").expect("writes");
    let recipe = format!("cache self-test {}", fastrand::u64(..));
    let made = std::cell::Cell::new(0);
    let make = |dir: &Path| {
        made.set(made.get() + 1);
        let file = dir.join("a.txt");
        std::fs::write(&file, b"made").expect("writes");
        vec![
            ("a".to_owned(), file),
            ("input".to_owned(), input.path().to_owned()),
        ]
    };
    let inputs = [input.path().to_owned()];
    let first = labelled_files("self-test", &recipe, &inputs, make);
    let second = labelled_files("self-test", &recipe, &inputs, make);
    assert_eq!(made.get(), 1, "made again with unchanged inputs");
    assert_eq!(first, second);
    assert_eq!(std::fs::read(&first[0].1).expect("reads"), b"made");
    assert_eq!(first[1].1, input.path());
    assert!(first[0].1.starts_with(root()));
    // A changed input makes a new set.
    std::fs::write(input.path(), b"changed").expect("writes");
    let third = labelled_files("self-test", &recipe, &inputs, make);
    assert_eq!(made.get(), 2);
    assert_ne!(third[0].1, first[0].1);
    // The set made from the old input is gone.
    assert!(!first[0].1.exists());
    let _ = std::fs::remove_dir_all(third[0].1.parent().expect("a set dir"));
}
