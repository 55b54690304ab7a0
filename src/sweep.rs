//! The restart sweep ("the necromancer"): which groups can be restarted now.
//!
//! A pure function over [`Tree`]: it decides, the processor acts. A group is
//! restarted when
//! - its members were cancelled (one died, or the group was stopped),
//! - every member and everything below them has exited (the group is *ready*),
//! - and its owner's context is still live (or, for the root, the supervisor's):
//!   under a cancelled owner, the owner's own restart brings the group back.
//!
//! This is the reference's three-phase walk folded into one local test. The
//! reference walks top-down and restarts the highest node that is exited,
//! cancelled and ready under a live parent; since cancellation flows down the
//! tree, any node below such a node has a cancelled parent, so "highest" is
//! implied by "under a live parent" and no walk is needed. Groups restart as a
//! unit, so that a dead member's siblings come back together with it.
//!
//! [`sweep`] looks only at the groups the tree marked dirty (O(changes));
//! [`full_sweep`] recomputes readiness from scratch over the whole tree
//! (O(tree)). The processor runs the first after every change and the second
//! on a slow timer as a safety net; tests check they always agree.

use std::collections::HashSet;

use crate::tree::{GroupKey, Tree};

/// The dirty groups that can be restarted now, each once. Reuses the dirty
/// list: this runs after every change, so it must not allocate.
pub(crate) fn sweep(tree: &Tree, mut dirty: Vec<GroupKey>) -> Vec<GroupKey> {
    dirty.sort_unstable();
    dirty.dedup();
    dirty.retain(|g| {
        tree.group(*g)
            .is_some_and(|group| group.is_ready() && wants_restart(tree, *g))
    });
    dirty
}

/// Every group that can be restarted now, computing readiness from the
/// states alone (not from the tree's counters).
pub(crate) fn full_sweep(tree: &Tree) -> Vec<GroupKey> {
    // Post-order over an explicit stack: deep trees must not overflow.
    let mut order = Vec::with_capacity(tree.len());
    let mut stack = vec![tree.root()];
    while let Some(k) = stack.pop() {
        order.push(k);
        if let Some(n) = tree.node(k) {
            stack.extend(n.children.values().copied());
        }
    }
    let mut ready = HashSet::new();
    for k in order.into_iter().rev() {
        let Some(n) = tree.node(k) else { continue };
        if n.state().is_exited() && n.children.values().all(|c| ready.contains(c)) {
            ready.insert(k);
        }
    }
    let mut out: Vec<GroupKey> = tree
        .groups()
        .filter(|(g, group)| {
            group.members.iter().all(|m| ready.contains(m)) && wants_restart(tree, *g)
        })
        .map(|(g, _)| g)
        .collect();
    out.sort();
    out
}

/// A member was cancelled and the owner's context is live. Readiness is
/// checked by the caller.
fn wants_restart(tree: &Tree, g: GroupKey) -> bool {
    let Some(group) = tree.group(g) else {
        return false;
    };
    let owner_live = match group.owner {
        Some(o) => tree.node(o).is_some_and(|n| !n.token.is_cancelled()),
        None => !tree.top().is_cancelled(),
    };
    owner_live
        && group
            .members
            .iter()
            .any(|m| tree.node(*m).is_some_and(|n| n.token.is_cancelled()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::NodeState;
    use crate::tree::NodeKey;
    use tokio_util::sync::CancellationToken;

    /// What the processor does on a death: DEAD, own subtree and group cancelled.
    fn die(t: &mut Tree, k: NodeKey) {
        t.set_state(k, NodeState::Dead);
        t.cancel_group_of(k);
    }

    fn restart(t: &mut Tree, g: GroupKey) {
        let members = t.group(g).map(|g| g.members.clone()).unwrap_or_default();
        for m in members {
            t.reset(m, None);
        }
    }

    fn step(t: &mut Tree) -> Vec<GroupKey> {
        let dirty = t.take_dirty();
        sweep(t, dirty)
    }

    fn child(t: &Tree, parent: NodeKey, name: &str) -> NodeKey {
        t.node(parent).unwrap().children[name]
    }

    /// root → group {a, b}; a → group {x}.
    fn sample() -> (Tree, NodeKey, NodeKey, NodeKey) {
        let mut t = Tree::new(CancellationToken::new());
        let root = t.root();
        t.add_group(root, ["a", "b"].into_iter()).unwrap();
        let (a, b) = (child(&t, root, "a"), child(&t, root, "b"));
        t.add_group(a, ["x"].into_iter()).unwrap();
        let x = child(&t, a, "x");
        t.take_dirty();
        (t, a, b, x)
    }

    #[test]
    fn group_restarts_only_when_every_member_has_exited() {
        let (mut t, a, b, x) = sample();
        die(&mut t, b);
        assert!(step(&mut t).is_empty(), "a and x still run");
        t.set_state(x, NodeState::Canceled);
        assert!(step(&mut t).is_empty(), "a still runs");
        t.set_state(a, NodeState::Canceled);
        let g = t.node(a).unwrap().group;
        assert_eq!(step(&mut t), vec![g]);
        assert_eq!(full_sweep(&t), vec![g]);
    }

    #[test]
    fn a_dead_node_restarts_after_its_subtree_and_alone() {
        let (mut t, a, _b, x) = sample();
        // x dies alone in its group: its parent is live, so x restarts.
        die(&mut t, x);
        let gx = t.node(x).unwrap().group;
        assert_eq!(step(&mut t), vec![gx]);
        restart(&mut t, gx);
        // Now a dies: b and x are cancelled; nothing restarts until x exits.
        die(&mut t, a);
        assert!(t.node(x).unwrap().token.is_cancelled(), "subtree cancelled");
        t.take_dirty();
        t.set_state(child(&t, t.root(), "b"), NodeState::Canceled);
        assert!(step(&mut t).is_empty());
        // x exits under a cancelled parent: not restartable itself.
        t.set_state(x, NodeState::Canceled);
        let ga = t.node(a).unwrap().group;
        assert_eq!(step(&mut t), vec![ga]);
        let removed = t.reset(a, None);
        assert_eq!(removed, vec![x], "a's restart drops its old children");
        assert!(t.node(x).is_none());
    }

    #[test]
    fn done_sibling_restarts_with_a_dead_one() {
        let (mut t, a, b, x) = sample();
        t.set_state(b, NodeState::Healthy);
        t.set_state(b, NodeState::Done);
        assert!(step(&mut t).is_empty(), "DONE alone is not a restart");
        die(&mut t, x);
        let gx = step(&mut t)[0];
        restart(&mut t, gx);
        assert_eq!(t.node(x).unwrap().state(), NodeState::New);
        // a dies: DONE b is cancelled and comes back with it.
        die(&mut t, a);
        t.set_state(x, NodeState::Canceled);
        let g = t.node(a).unwrap().group;
        assert_eq!(step(&mut t), vec![g]);
        restart(&mut t, g);
        assert_eq!(t.node(b).unwrap().state(), NodeState::New);
        assert!(!t.node(b).unwrap().token.is_cancelled());
    }

    #[test]
    fn nothing_restarts_under_a_cancelled_top() {
        let (mut t, a, _b, _x) = sample();
        t.top().cancel();
        let _ = a;
        for k in t.nodes().map(|(k, _)| k).collect::<Vec<_>>() {
            if t.node(k).is_some_and(|n| n.state().is_live()) {
                t.set_state(k, NodeState::Canceled);
            }
        }
        assert!(step(&mut t).is_empty());
        assert!(full_sweep(&t).is_empty());
        assert_eq!(t.live_count(), 0);
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Random lifecycles: after every step the counters match a recount and
    /// the incremental sweep finds exactly what the full sweep finds.
    #[test]
    fn incremental_sweep_agrees_with_full_sweep() {
        let mut restarts = 0;
        for seed in 1..=200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut t = Tree::new(CancellationToken::new());
            let mut names = 0u64;
            for step in 0..300 {
                let keys: Vec<NodeKey> = t.nodes().map(|(k, _)| k).collect();
                let k = keys[rng.below(keys.len())];
                let n = t.node(k).unwrap();
                let (state, cancelled) = (n.state(), n.token.is_cancelled());
                match (rng.below(4), state) {
                    (0, NodeState::New) if !cancelled && t.len() < 60 => {
                        let count = 1 + rng.below(3);
                        let fresh: Vec<String> = (0..count)
                            .map(|_| {
                                names += 1;
                                format!("n{names}")
                            })
                            .collect();
                        t.add_group(k, fresh.iter().map(String::as_str)).unwrap();
                    }
                    (1, NodeState::New) if !cancelled => {
                        t.set_state(k, NodeState::Healthy);
                    }
                    (2, NodeState::Healthy) if !cancelled => {
                        t.set_state(k, NodeState::Done);
                    }
                    (_, s) if s.is_live() && cancelled => {
                        t.set_state(k, NodeState::Canceled);
                    }
                    (3, s) if s.is_live() => die(&mut t, k),
                    _ => continue,
                }
                t.check_counts()
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
                let dirty = t.take_dirty();
                let mut found = sweep(&t, dirty);
                found.sort();
                assert_eq!(found, full_sweep(&t), "seed {seed} step {step}");
                for g in found {
                    restarts += 1;
                    restart(&mut t, g);
                }
                t.check_counts()
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
                assert!(
                    full_sweep(&t).is_empty(),
                    "seed {seed} step {step}: left behind"
                );
            }
        }
        assert!(
            restarts > 1000,
            "the walk must exercise restarts, saw {restarts}"
        );
    }
}
