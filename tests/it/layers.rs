//! The module layers of `src/lib.rs`, checked: every `crate::…` path in a module names a module of
//! its own layer or of a layer below, and no modules import each other in a circle. A new module
//! must be placed in [`LAYERS`] (and in the table of `src/lib.rs`) before it compiles into a green
//! suite.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. A module may import from its own layer and the layers below it.
const LAYERS: &[&[&str]] = &[
    &[
        "model", "signing", "clock", "layout", "scope", "backoff", "metrics", "token", "faults",
    ],
    &["config"],
    &[
        "storage",
        "audio",
        "fingerprint",
        "job",
        "rules",
        "decision",
    ],
    &["engines", "fetch", "block", "callback", "state"],
    &["pipeline"],
    &["sources", "scan", "retro", "admin", "console"],
    &["commands"],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file under `src/` belongs to (None for the crate root and binaries).
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" | "bin" => None,
        file => Some(file.trim_end_matches(".rs").to_owned()),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file's code names through `crate::` (comments are not code).
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(inner.split(',').map(ident).filter(|s| !s.is_empty()));
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

/// The module graph: module → the modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(imports(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn every_module_is_placed_in_a_layer_and_named_in_the_lib_map() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    for module in graph().keys() {
        assert!(
            layer_of(module).is_some(),
            "module `{module}` is in no layer of tests/it/layers.rs"
        );
        assert!(
            lib.contains(&format!("pub mod {module};")) && lib.contains(&format!("[`{module}`]")),
            "module `{module}` is not declared and named in the module map of src/lib.rs"
        );
    }
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let mut upward = Vec::new();
    for (module, imported) in graph() {
        let own = layer_of(&module).unwrap_or(usize::MAX);
        for target in imported {
            match layer_of(&target) {
                Some(layer) if layer <= own => {}
                Some(layer) => upward.push(format!(
                    "{module} (layer {own}) imports {target} (layer {layer})"
                )),
                None => upward.push(format!("{module} imports {target}, which is in no layer")),
            }
        }
    }
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
}

#[test]
fn no_modules_import_each_other_in_a_circle() {
    let graph = graph();
    // Depth-first search for a back edge; reports the circle it closes.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut circle = path[start..].to_vec();
            circle.push(module.to_owned());
            return Some(circle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(circle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", circle.join(" → "));
        }
    }
}

#[test]
fn the_leaves_import_nothing_of_the_crate() {
    let graph = graph();
    for leaf in LAYERS[0] {
        let imported = graph.get(*leaf).cloned().unwrap_or_default();
        assert!(imported.is_empty(), "leaf `{leaf}` imports {imported:?}");
    }
}

#[test]
fn the_checker_sees_grouped_and_nested_paths() {
    let text = "use crate::{config::Config, model};\nlet x = crate::layout::backup_key(k);\n// crate::pipeline in a comment\n";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["config", "layout", "model"]);
}

/// Past this a file is doing more than one thing: split it by what each part is for.
const MAX_FILE_LINES: usize = 750;

#[test]
fn no_source_file_is_over_750_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "only {} source files found", files.len());
    let oversized: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let text = std::fs::read_to_string(file).expect("a source file is readable");
            let lines = text.lines().count();
            (lines > MAX_FILE_LINES).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(
        oversized.is_empty(),
        "over {MAX_FILE_LINES} lines:\n{}",
        oversized.join("\n")
    );
}
