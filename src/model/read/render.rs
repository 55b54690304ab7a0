//! The tree drawn for people: an indented text tree like `systemctl
//! status` ([`TextTree`]), and Graphviz DOT ([`dot`]). Both work on a
//! snapshot, so they never reach into the processor.
//!
//! ```
//! use actix_supervisor::{render::TextTree, Context, RunResult, Signal, Supervisor};
//!
//! async fn root(ctx: Context) -> RunResult {
//!     ctx.run("worker", |ctx: Context| async move {
//!         ctx.signal(Signal::Healthy)?;
//!         ctx.cancelled().await;
//!         Ok(())
//!     })
//!     .await?;
//!     ctx.signal(Signal::Healthy)?;
//!     ctx.cancelled().await;
//!     Ok(())
//! }
//!
//! actix_rt::System::new().block_on(async {
//!     let sup = Supervisor::start(root);
//!     sup.wait_settled().await;
//!     let text = TextTree::new(&sup.snapshot().await).to_string();
//!     assert!(text.starts_with("● root"));
//!     assert!(text.contains("└─● worker"));
//!     sup.shutdown().await;
//! });
//! ```

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::policy::Strategy;
use crate::model::records::{NodeInfo, NodeKind, NodeState};

/// A snapshot drawn as an indented tree, one node a line: a glyph for its
/// state, its name, state, uptime or restart countdown, restarts, and its
/// last error cut to one line. Plain text unless [`color`](Self::color)
/// asks for ANSI colours.
#[derive(Debug, Clone, Copy)]
pub struct TextTree<'a> {
    nodes: &'a [NodeInfo],
    color: bool,
}

/// How long an error may be on its line before it is cut.
const ERROR_WIDTH: usize = 80;

impl<'a> TextTree<'a> {
    /// The tree of `nodes` (a snapshot, or a subtree's).
    pub fn new(nodes: &'a [NodeInfo]) -> TextTree<'a> {
        TextTree {
            nodes,
            color: false,
        }
    }

    /// With ANSI colours, for a terminal.
    pub fn color(mut self, on: bool) -> Self {
        self.color = on;
        self
    }
}

/// The glyph of a node's state (`↻` while it waits out a backoff).
pub(crate) fn glyph(n: &NodeInfo) -> &'static str {
    if n.restart_at.is_some() {
        return "↻";
    }
    match n.state {
        NodeState::New => "◌",
        NodeState::Healthy => "●",
        NodeState::Dead => "✗",
        NodeState::Done => "✓",
        NodeState::Cancelled => "○",
        NodeState::Standby => "◇",
    }
}

fn ansi(state: NodeState) -> &'static str {
    match state {
        NodeState::New => "\x1b[33m",
        NodeState::Healthy => "\x1b[32m",
        NodeState::Dead => "\x1b[31m",
        NodeState::Done => "\x1b[34m",
        NodeState::Cancelled => "\x1b[90m",
        NodeState::Standby => "\x1b[36m",
    }
}

/// A duration the way people read it: `850ms`, `4.2s`, `5m12s`, `3h04m`, `2d05h`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..=59 => format!("{:.1}s", d.as_secs_f64()),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The last segment of a DN.
fn name(dn: &str) -> &str {
    dn.rsplit('.').next().unwrap_or(dn)
}

/// Parent index → child indices, in DN order; and the nodes without a
/// parent in the list (the tops).
fn structure(nodes: &[NodeInfo]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.dn.as_str(), i))
        .collect();
    let mut children = vec![Vec::new(); nodes.len()];
    let mut tops = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        match n.dn.rsplit_once('.').and_then(|(p, _)| index.get(p)) {
            Some(&p) => children[p].push(i),
            None => tops.push(i),
        }
    }
    (children, tops)
}

/// The details after a node's state, e.g. `up 4.2s · restarts 2 · last: boom`.
fn details(n: &NodeInfo, now: Instant) -> String {
    let mut parts = Vec::new();
    if let Some(at) = n.restart_at {
        parts.push(format!(
            "restart in {}",
            human(at.saturating_duration_since(now))
        ));
    } else if let Some(up) = n.uptime {
        parts.push(format!("up {}", human(up)));
    }
    if let (NodeKind::Process, Some(pid)) = (n.kind, n.pid) {
        parts.push(format!("pid {pid}"));
    }
    if let Some(queued) = n.queued.filter(|q| *q > 0 || n.overloaded) {
        let oldest = n.oldest_queued.map(human).unwrap_or_default();
        let alarm = if n.overloaded { "OVERLOADED: " } else { "" };
        parts.push(format!("{alarm}{queued} queued, oldest {oldest}"));
    }
    if n.kind == NodeKind::Dynamic {
        parts.push(format!(
            "dynamic: {} of {} children live",
            n.children_live, n.children_total
        ));
    }
    if n.restarts > 0 {
        parts.push(format!("restarts {}", n.restarts));
    }
    if let Some(since) = n.stalled_since {
        parts.push(format!(
            "STALLED {}",
            human(now.saturating_duration_since(since))
        ));
    }
    if let Some(e) = &n.last_error {
        let line = e.lines().next().unwrap_or_default();
        let mut cut: String = line.chars().take(ERROR_WIDTH).collect();
        if cut.len() < line.len() || e.lines().nth(1).is_some() {
            cut.push('…');
        }
        parts.push(format!("last: {cut}"));
    }
    parts.join(" · ")
}

impl fmt::Display for TextTree<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = Instant::now();
        let (children, tops) = structure(self.nodes);
        // (index, prefix for its line, prefix for its children's lines)
        let mut stack: Vec<(usize, String, String)> = tops
            .into_iter()
            .rev()
            .map(|i| (i, String::new(), String::new()))
            .collect();
        while let Some((i, lead, inherit)) = stack.pop() {
            let n = &self.nodes[i];
            let label = if lead.is_empty() {
                n.dn.as_str()
            } else {
                name(&n.dn)
            };
            let (on, off) = if self.color {
                (ansi(n.state), "\x1b[0m")
            } else {
                ("", "")
            };
            let width = 28usize.saturating_sub(lead.chars().count() + 2);
            let line = format!(
                "{lead}{on}{}{off} {label:<width$} {on}{:<9}{off} {}",
                glyph(n),
                n.state,
                details(n, now)
            );
            writeln!(f, "{}", line.trim_end())?;
            let kids = &children[i];
            for (j, &c) in kids.iter().enumerate().rev() {
                let last = j + 1 == kids.len();
                let lead = format!("{inherit}{}", if last { "└─" } else { "├─" });
                let next = format!("{inherit}{}", if last { "  " } else { "│ " });
                stack.push((c, lead, next));
            }
        }
        Ok(())
    }
}

fn dot_color(n: &NodeInfo) -> &'static str {
    if n.restart_at.is_some() {
        return "orange";
    }
    match n.state {
        NodeState::New => "khaki1",
        NodeState::Healthy => "palegreen",
        NodeState::Dead => "salmon",
        NodeState::Done => "lightblue",
        NodeState::Cancelled => "gray85",
        NodeState::Standby => "lightcyan",
    }
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::OneForAll => "one-for-all",
        Strategy::OneForOne => "one-for-one",
        Strategy::RestForOne => "rest-for-one",
    }
}

/// Escapes a string for a DOT quoted id.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A snapshot as a Graphviz digraph: a box per node filled by state
/// (orange while it waits out a backoff), edges from parents to children,
/// and each group of two or more members as a cluster labelled with its
/// strategy. `dot -Tsvg` draws it.
pub fn dot(nodes: &[NodeInfo]) -> String {
    let mut out = String::from(
        "digraph supervisor {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"monospace\"];\n",
    );
    let (children, _) = structure(nodes);
    let mut clusters = 0;
    for (p, kids) in children.iter().enumerate() {
        // Children by their group (ordinal among the parent's groups).
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for &c in kids {
            let ordinal = nodes[c].group.map_or(0, |g| g.ordinal);
            match groups.iter_mut().find(|(o, _)| *o == ordinal) {
                Some((_, members)) => members.push(c),
                None => groups.push((ordinal, vec![c])),
            }
        }
        for (_, members) in groups {
            let cluster = members.len() > 1;
            if cluster {
                clusters += 1;
                let strategy = nodes[members[0]]
                    .group
                    .map_or(Strategy::OneForAll, |g| g.strategy);
                let _ = writeln!(
                    out,
                    "  subgraph cluster_{clusters} {{\n    label={};\n    style=dashed;",
                    quoted(strategy_name(strategy))
                );
            }
            for &c in &members {
                let _ = writeln!(out, "    {};", quoted(&nodes[c].dn));
            }
            if cluster {
                out.push_str("  }\n");
            }
        }
        for &c in kids {
            let _ = writeln!(
                out,
                "  {} -> {};",
                quoted(&nodes[p].dn),
                quoted(&nodes[c].dn)
            );
        }
    }
    for n in nodes {
        let mut label = format!("{}\\n{}", name(&n.dn), n.state);
        if n.restarts > 0 {
            let _ = write!(label, " ({} restarts)", n.restarts);
        }
        let _ = writeln!(
            out,
            "  {} [label=\"{}\", fillcolor={}];",
            quoted(&n.dn),
            label.replace('"', "\\\""),
            dot_color(n)
        );
    }
    out.push_str("}\n");
    out
}
