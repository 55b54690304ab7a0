//! The architecture, checked: a file's layer is its folder under `src/`,
//! no file names a layer above its own (also not through the root's
//! re-exports, `crate::Context`), and the only import cycle between
//! modules is `Runnable` ↔ `Context`.
//!
//! The layers, bottom first: `src/model/` (data and pure decisions),
//! `src/api/` (what runnables and users hold), `src/runtime/` (the actors),
//! and on top everything else (the builder and the features, and `lib.rs`).
//! There is no list to keep: a new file is in the layer of its folder.
//!
//! A file "names" a module when a code line (not a comment) says
//! `crate::layer::module`, or `crate::Item` for an item `lib.rs` re-exports
//! from one (whose `pub use` says where it lives).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layer folders, bottom first; everything else is the top layer.
const LAYERS: [&str; 3] = ["model", "api", "runtime"];
const TOP: usize = LAYERS.len();

/// The one cycle the design allows: the domain's own pair, as actix's
/// `Actor` ↔ `Context`.
const ALLOWED_CYCLE: [&str; 2] = ["api::context", "api::runnable"];

/// A module: `model::tree` in a layer folder (its submodules folded in),
/// the file or folder name on top (`web`, `builder`, `lib`).
fn module_of(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .collect();
    match parts.as_slice() {
        [layer, module, ..] if LAYERS.contains(&layer.as_str()) => format!("{layer}::{module}"),
        [one, ..] => one.clone(),
        [] => unreachable!("a file has a name"),
    }
}

fn layer_of(module: &str) -> usize {
    let first = module.split("::").next().unwrap_or_default();
    LAYERS.iter().position(|l| *l == first).unwrap_or(TOP)
}

fn layer_name(l: usize) -> &'static str {
    ["model", "api", "runtime", "the top (builder and features)"][l]
}

/// Every module's source, by module (see [`module_of`]).
fn sources(src: &Path) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src/") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).expect("under src/");
                let text = std::fs::read_to_string(&path).expect("read a source file");
                // `mod.rs` of a layer folder is the layer's own docs.
                let module = match module_of(rel).as_str() {
                    m if LAYERS.contains(&m) => continue,
                    m => m.to_string(),
                };
                out.entry(module).or_default().push_str(&text);
            }
        }
    }
    out
}

/// Where `lib.rs` re-exports each item from: `Context` → `api::context`.
fn re_exports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // Statements may span lines: join them first.
    let code: String = lib
        .lines()
        .filter(|l| !l.trim_start().starts_with("//") && !l.trim_start().starts_with("#["))
        .collect::<Vec<_>>()
        .join(" ");
    for stmt in code.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let (path, items) = match rest.split_once("::{") {
            Some((path, items)) => (path, items.trim_end_matches('}').to_string()),
            None => match rest.rsplit_once("::") {
                Some((path, item)) => (path, item.to_string()),
                None => continue, // an external crate (`prometheus_client`)
            },
        };
        let module = module_of(Path::new(&path.replace("::", "/")));
        for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            out.insert(item.to_string(), module.clone());
        }
    }
    out
}

/// The modules `source` names, with the first line that names each.
fn names(source: &str, exports: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in source.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let before = rest[..i].chars().last();
            let after = &rest[i + "crate::".len()..];
            rest = after;
            // `$crate::` in a macro names the crate's root for its users.
            if before == Some('$') || before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let ident = |s: &str| -> String {
                s.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            };
            let first = ident(after);
            let module = if LAYERS.contains(&first.as_str()) {
                let second = ident(after[first.len()..].trim_start_matches("::"));
                format!("{first}::{second}")
            } else if first.starts_with(char::is_uppercase) {
                match exports.get(&first) {
                    Some(m) => m.clone(),
                    None => continue, // a derive's path, or not an item of ours
                }
            } else {
                first
            };
            if module.is_empty() || module.ends_with("::") || module.starts_with("__") {
                continue;
            }
            out.entry(module).or_insert_with(|| line.trim().to_string());
        }
    }
    out
}

/// The problems of the sources in `src`: upward imports and cycles.
fn problems(src: &Path) -> Vec<String> {
    let sources = sources(src);
    let exports = re_exports(sources.get("lib").map_or("", String::as_str));
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in &sources {
        let mine = layer_of(module);
        for (other, line) in names(source, &exports) {
            if other == *module || !sources.contains_key(&other) {
                continue;
            }
            let theirs = layer_of(&other);
            if theirs > mine {
                problems.push(format!(
                    "{module} ({}) names {other} ({}), a layer above: {line}",
                    layer_name(mine),
                    layer_name(theirs)
                ));
            }
            graph.entry(module.clone()).or_default().insert(other);
        }
    }
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let in_cycles: BTreeSet<String> = sources
        .keys()
        .filter(|m| reach(m).contains(*m))
        .cloned()
        .collect();
    let allowed: BTreeSet<String> = ALLOWED_CYCLE.iter().map(|m| m.to_string()).collect();
    if !in_cycles.is_empty() && in_cycles != allowed {
        problems.push(format!(
            "modules in import cycles: {in_cycles:?}; only {allowed:?} may be"
        ));
    }
    problems
}

#[test]
fn no_file_names_a_layer_above_its_own_and_the_only_cycle_is_runnable_context() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = problems(&src);
    assert!(
        problems.is_empty(),
        "the layers of docs/design.md are broken:\n  {}",
        problems.join("\n  ")
    );
}

/// The check can fail: a copy of `src/` with an upward import planted, once
/// by path and once through a root re-export, is caught both times.
#[test]
fn a_planted_upward_import_is_caught() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let exports = re_exports(&std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs"));
    assert_eq!(
        exports.get("Context").map(String::as_str),
        Some("api::context")
    );
    assert_eq!(
        exports.get("Supervisor").map(String::as_str),
        Some("api::supervisor")
    );
    for planted in [
        "use crate::runtime::processor::Processor;",
        "fn f(_: crate::SupervisorBuilder) {}",
    ] {
        let copy = std::env::temp_dir().join(format!("layers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&copy);
        copy_dir(&src, &copy);
        let victim = copy.join("model/name.rs");
        let text = std::fs::read_to_string(&victim).expect("model/name.rs");
        std::fs::write(&victim, format!("{text}\n{planted}\n")).expect("plant");
        let found = problems(&copy);
        let _ = std::fs::remove_dir_all(&copy);
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("model::name (model) names")),
            "{planted:?} not caught: {found:?}"
        );
    }
    // Comments and `$crate::` name nothing.
    let names = names(
        "    use crate::runtime::processor::Processor; // x\n/// crate::web\n$crate::node_log",
        &exports,
    );
    assert_eq!(names.keys().collect::<Vec<_>>(), ["runtime::processor"]);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("a name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}
