//! The architecture, checked: no module of `src/` names a module of a layer above its own, and the only import cycle is `Runnable` ↔ `Context`.
//!
//! The layers (bottom first) are the ones `docs/design.md` lists. A module
//! "names" another when a code line (not a comment) says `crate::other`,
//! whether in a `use` or inline; a submodule (`processor/intake.rs`) counts as
//! its parent. A new module must be placed in a layer here, or the test fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Bottom first. Within a layer, modules may name each other (without cycles).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "data: the tree as plain data and the pure decisions over it",
        &[
            "name",
            "policy",
            "state",
            "query",
            "error",
            "exit",
            "logtree",
            "said",
            "metrics",
            "serde_time",
            "render",
            "tree",
            "sweep",
            "restart",
            "repairs",
            "view",
            "walk",
        ],
    ),
    (
        "handles: what runnables and users hold, and the messages they send",
        &[
            "panics",
            "logger",
            "capture",
            "inbox",
            "settle",
            "protocol",
            "runnable",
            "context",
            "supervisor",
            "dynamic",
            "tasks",
        ],
    ),
    (
        "actors: the processor, the node hosts and what runs them",
        &["stall", "workers", "sinks", "node", "hosts", "processor"],
    ),
    (
        "face: starting a tree, and the features built on the handles",
        &[
            "builder",
            "actor",
            "process",
            "testing",
            "web",
            "tracing",
            "systemd",
            "prometheus",
            "lib",
        ],
    ),
];

/// The one cycle the design allows: the domain's own pair, as actix's
/// `Actor` ↔ `Context`.
const ALLOWED_CYCLE: [&str; 2] = ["context", "runnable"];

/// Every module's source, by module name (submodules folded into their parent).
fn sources() -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src/") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src/");
            let module = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .map(|m| m.trim_end_matches(".rs").to_string())
                .expect("a module name");
            let text = std::fs::read_to_string(&path).expect("read a source file");
            out.entry(module).or_default().push_str(&text);
        }
    }
    out
}

/// The modules `source` names, with the first line that names each.
fn names(source: &str) -> BTreeMap<String, String> {
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
            let module: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `crate::{a, b}` or a re-exported item (`crate::Supervisor`)
            // name no module by this path; the grouped form is not used.
            if module.is_empty() || module.starts_with(char::is_uppercase) {
                continue;
            }
            out.entry(module).or_insert_with(|| line.trim().to_string());
        }
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

#[test]
fn no_module_imports_a_layer_above_its_own_and_the_only_cycle_is_runnable_context() {
    let sources = sources();
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in &sources {
        let Some(mine) = layer_of(module) else {
            problems.push(format!("src/{module}: in no layer of tests/layers.rs"));
            continue;
        };
        for (other, line) in names(source) {
            if other == *module || other.starts_with("__") {
                continue;
            }
            match layer_of(&other) {
                Some(theirs) if theirs > mine => problems.push(format!(
                    "src/{module} ({}) imports {other} ({}), a layer above: {line}",
                    LAYERS[mine].0, LAYERS[theirs].0
                )),
                Some(_) => {}
                None if sources.contains_key(&other) => {} // reported above
                None => continue,                          // a macro or a crate item
            }
            graph.entry(module.clone()).or_default().insert(other);
        }
    }
    // Cycles: every pair of modules that reach each other.
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
    let mut in_cycles = BTreeSet::new();
    for module in sources.keys() {
        if reach(module).contains(module) {
            in_cycles.insert(module.clone());
        }
    }
    let allowed: BTreeSet<String> = ALLOWED_CYCLE.iter().map(|m| m.to_string()).collect();
    if !in_cycles.is_empty() && in_cycles != allowed {
        problems.push(format!(
            "modules in import cycles: {in_cycles:?}; only {allowed:?} may be"
        ));
    }
    assert!(
        problems.is_empty(),
        "the layers of docs/design.md are broken:\n  {}",
        problems.join("\n  ")
    );
    // The check itself can fail: a known upward import is caught.
    let names =
        names("    use crate::processor::Processor; // x\n/// crate::web\n$crate::node_log");
    assert_eq!(names.keys().collect::<Vec<_>>(), ["processor"]);
}
