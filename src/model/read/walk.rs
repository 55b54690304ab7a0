//! A walk over a subtree in DN order, taken a bounded number of steps at a
//! time, so that reading a large tree never holds the processor for long.
//!
//! The processor serves snapshots, `/readyz`'s question and the safety sweep
//! with walks: each turn takes at most [`SLICE`] steps of one walk, then the
//! reports queued meanwhile are handled before the next slice. A step is one
//! visited node, or one member of a visited node's groups placed (its
//! position in its group); so a node with a hundred thousand children costs
//! a hundred slices, never one long turn.
//!
//! The walk keeps keys and the name of the last child it visited, never a
//! borrow: between slices the tree may change. A removed node is skipped
//! (keys are generational), a node added behind the walk's position is not
//! visited, and each visit reads the node as it is in that turn.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::model::records::GroupInfo;
use crate::model::tree::{Node, NodeKey, Tree};

/// The steps one processor turn takes of a walk. At about a microsecond a
/// node (a snapshot record), a slice is about a millisecond of processor time.
pub(crate) const SLICE: usize = 1024;

/// A walk in progress: see the module docs.
#[derive(Debug)]
pub(crate) struct Walk {
    /// The top node while it is still to be visited.
    top: Option<(NodeKey, Option<GroupInfo>)>,
    frames: Vec<Frame>,
    /// Levels below the top to visit (0: the top alone).
    max_depth: u32,
}

/// A visited node whose children are being walked.
#[derive(Debug)]
struct Frame {
    parent: NodeKey,
    /// The children's depth below the top.
    depth: u32,
    /// Each member's place in its group, filled before the first child is
    /// visited.
    place: HashMap<NodeKey, GroupInfo>,
    /// The next member to place, `(group ordinal, index)`, until all are.
    placing: Option<(usize, usize)>,
    /// The DN of the child visited last (the walk goes on after its name).
    after: Option<Arc<str>>,
}

/// One node, as a walk visits it.
pub(crate) struct Visit<'a> {
    pub key: NodeKey,
    pub node: &'a Node,
    /// Its place in its parent's groups, as the walk found it.
    pub group: Option<GroupInfo>,
}

impl Walk {
    /// A walk over the subtree at `top`, at most `max_depth` levels below it
    /// (`None`: all of them).
    pub fn new(tree: &Tree, top: NodeKey, max_depth: Option<u32>) -> Walk {
        Walk {
            top: Some((top, place_of(tree, top))),
            frames: Vec::new(),
            max_depth: max_depth.unwrap_or(u32::MAX),
        }
    }

    /// Takes at most `budget` steps, calling `visit` for each node visited,
    /// in DN order; `true` once the walk is over.
    pub fn step(&mut self, tree: &Tree, budget: usize, mut visit: impl FnMut(Visit<'_>)) -> bool {
        let mut left = budget;
        if let Some((k, group)) = self.top.take() {
            let Some(node) = tree.node(k) else {
                return true;
            };
            visit(Visit {
                key: k,
                node,
                group,
            });
            left = left.saturating_sub(1);
            self.descend(k, node, 0);
        }
        while left > 0 {
            let Some(frame) = self.frames.last_mut() else {
                return true;
            };
            let Some(parent) = tree.node(frame.parent) else {
                self.frames.pop();
                continue;
            };
            if let Some((ordinal, index)) = frame.placing {
                left -= 1;
                frame.placing = place_next(tree, parent, &mut frame.place, ordinal, index);
                continue;
            }
            let next = match &frame.after {
                None => parent.children.iter().next(),
                Some(dn) => {
                    let name = &dn[dn.rfind('.').map_or(0, |i| i + 1)..];
                    let mut after = parent
                        .children
                        .range::<str, _>((Bound::Excluded(name), Bound::Unbounded));
                    after.next()
                }
            };
            let Some((_, &k)) = next else {
                self.frames.pop();
                continue;
            };
            left -= 1;
            let depth = frame.depth;
            let group = frame.place.get(&k).copied();
            let Some(node) = tree.node(k) else {
                continue; // not reached: a child's key is live with its parent
            };
            frame.after = Some(node.dn.clone());
            visit(Visit {
                key: k,
                node,
                group,
            });
            self.descend(k, node, depth);
        }
        self.top.is_none() && self.frames.is_empty()
    }

    /// Queues `node`'s children, when it has some and the depth allows.
    fn descend(&mut self, k: NodeKey, node: &Node, depth: u32) {
        if depth < self.max_depth && !node.children.is_empty() {
            self.frames.push(Frame {
                parent: k,
                depth: depth + 1,
                place: HashMap::new(),
                placing: Some((0, 0)),
                after: None,
            });
        }
    }
}

/// Places member `(ordinal, index)` of `parent`'s groups; the next one to
/// place, or `None` when all are.
fn place_next(
    tree: &Tree,
    parent: &Node,
    place: &mut HashMap<NodeKey, GroupInfo>,
    mut ordinal: usize,
    mut index: usize,
) -> Option<(usize, usize)> {
    loop {
        let g = tree.group(*parent.groups.get(ordinal)?);
        match g.and_then(|g| Some((g, *g.members.get(index)?))) {
            Some((g, m)) => {
                let info = GroupInfo::new(ordinal, g.options.strategy, index, g.members.len());
                place.insert(m, info);
                return Some((ordinal, index + 1));
            }
            None => (ordinal, index) = (ordinal + 1, 0),
        }
    }
}

/// `k`'s place in its parent's groups.
fn place_of(tree: &Tree, k: NodeKey) -> Option<GroupInfo> {
    let n = tree.node(k)?;
    let parent = tree.node(n.parent?)?;
    let ordinal = parent.groups.iter().position(|g| *g == n.group)?;
    let g = tree.group(n.group)?;
    let index = g.members.iter().position(|m| *m == k)?;
    Some(GroupInfo::new(
        ordinal,
        g.options.strategy,
        index,
        g.members.len(),
    ))
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::model::policy::GroupOptions;
    use crate::model::tree::Defaults;

    fn tree_of(fanout: usize, depth: u32) -> Tree {
        let mut t = Tree::new(CancellationToken::new(), Defaults::default());
        let mut level = vec![t.root()];
        for _ in 0..depth {
            let mut next = Vec::new();
            for p in level {
                let names: Vec<String> = (0..fanout).rev().map(|i| format!("c{i}")).collect();
                let keys = t
                    .add_group(p, names.iter().map(String::as_str), GroupOptions::default())
                    .unwrap();
                next.extend(keys);
            }
            level = next;
        }
        t
    }

    fn walk_all(t: &Tree, top: NodeKey, depth: Option<u32>, budget: usize) -> Vec<String> {
        let mut w = Walk::new(t, top, depth);
        let mut seen = Vec::new();
        let mut slices = 0;
        while !w.step(t, budget, |v| seen.push(v.node.dn.to_string())) {
            slices += 1;
            assert!(slices < 100_000, "the walk must end");
        }
        seen
    }

    #[test]
    fn a_walk_in_slices_visits_every_node_once_in_dn_order() {
        let t = tree_of(4, 3);
        let whole = walk_all(&t, t.root(), None, usize::MAX);
        assert_eq!(whole.len(), t.len());
        let mut sorted = whole.clone();
        sorted.sort();
        assert_eq!(whole, sorted);
        for budget in [1, 2, 3, 7, 64] {
            assert_eq!(
                walk_all(&t, t.root(), None, budget),
                whole,
                "budget {budget}"
            );
        }
    }

    #[test]
    fn a_slice_takes_at_most_its_budget_of_steps() {
        let t = tree_of(300, 1);
        let mut w = Walk::new(&t, t.root(), None);
        let mut visits = Vec::new();
        loop {
            let mut n = 0;
            let done = w.step(&t, 10, |_| n += 1);
            visits.push(n);
            if done {
                break;
            }
        }
        assert!(visits.iter().all(|n| *n <= 10), "{visits:?}");
        // The root, then 300 members placed, then 300 children visited.
        assert_eq!(visits.iter().sum::<usize>(), 301);
        assert!(visits.len() >= 60, "{} slices", visits.len());
    }

    #[test]
    fn group_places_are_start_order_while_the_walk_is_name_order() {
        let t = tree_of(3, 1);
        let mut w = Walk::new(&t, t.root(), None);
        let mut got = Vec::new();
        w.step(&t, usize::MAX, |v| {
            got.push((v.node.dn.to_string(), v.group.map(|g| g.index)))
        });
        // Started as c2, c1, c0.
        assert_eq!(
            got,
            vec![
                ("root".to_string(), None),
                ("root.c0".to_string(), Some(2)),
                ("root.c1".to_string(), Some(1)),
                ("root.c2".to_string(), Some(0)),
            ]
        );
    }

    #[test]
    fn depth_and_subtree_bound_the_walk() {
        let t = tree_of(3, 3);
        let top: Vec<String> = walk_all(&t, t.root(), Some(1), 5);
        assert_eq!(top, ["root", "root.c0", "root.c1", "root.c2"]);
        let c1 = t.node(t.root()).unwrap().children["c1"];
        let sub = walk_all(&t, c1, Some(1), 2);
        assert_eq!(sub, ["root.c1", "root.c1.c0", "root.c1.c1", "root.c1.c2"]);
        assert_eq!(walk_all(&t, c1, None, 3).len(), 1 + 3 + 9);
    }

    #[test]
    fn a_walk_survives_the_tree_changing_between_slices() {
        let mut t = tree_of(3, 2);
        let mut w = Walk::new(&t, t.root(), None);
        let mut seen = Vec::new();
        assert!(!w.step(&t, 6, |v| seen.push(v.node.dn.to_string())));
        // Everything exits; root.c2 restarts, which removes its children.
        let root = t.root();
        for (k, _) in t
            .nodes()
            .map(|(k, n)| (k, n.dn.clone()))
            .collect::<Vec<_>>()
        {
            t.set_state(k, crate::model::records::NodeState::Cancelled);
        }
        let c2 = t.node(root).unwrap().children["c2"];
        t.reset(c2, None);
        while !w.step(&t, 2, |v| seen.push(v.node.dn.to_string())) {}
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(seen, sorted, "still in DN order, nothing twice");
        assert!(seen.contains(&"root.c2".to_string()));
        assert!(!seen.iter().any(|dn| dn.starts_with("root.c2.")));
    }
}
