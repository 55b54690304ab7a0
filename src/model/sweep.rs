//! The restart sweep ("the necromancer"): what can be restarted now.
//!
//! A pure function over [`Tree`]: it decides, the processor acts. What it
//! finds are *units*: the members of one group that restart together. A
//! unit is restarted when
//! - its members were cancelled (one died and the group's strategy took
//!   them down, or the group was stopped),
//! - every cancelled member of the group and everything below them has
//!   exited (for one-for-all: the whole group; for rest-for-one: the dead
//!   member and those after it; for one-for-one: the member alone),
//! - and the group's owner is still live (or, for the root, the supervisor):
//!   under a cancelled owner, the owner's own restart brings the group back.
//!
//! Temporary members are never part of a unit: they stay exited, and so
//! does a node that ended because its significant children did
//! (`auto_shut`), until a sibling's death takes its group down again. A
//! singleton that lost its lease (`relaunch`) is a unit of its own once it
//! and its subtree have exited, whatever its group's strategy: its siblings
//! did not go down with it.
//!
//! This is the reference's three-phase walk folded into one local test. The
//! reference walks top-down and restarts the highest node that is exited,
//! cancelled and ready under a live parent; since cancellation flows down the
//! tree, any node below such a node has a cancelled parent, so "highest" is
//! implied by "under a live parent" and no walk is needed.
//!
//! [`sweep`] looks only at the nodes it is given (O(changes), a rest-for-one
//! group costing O(members)). The processor runs it after every change over
//! the nodes the tree marked dirty, and, as a safety net on a slow timer,
//! over every node, a slice at a time (`runtime/processor/walks.rs`). The tests'
//! `full_sweep` recomputes readiness from scratch over the whole tree, and
//! checks the incremental sweep always agrees with it.

use crate::model::policy::{Restart, Strategy};
use crate::model::tree::{GroupKey, NodeKey, Tree};

/// Members of one group that restart together, in the group's order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Unit {
    pub group: GroupKey,
    pub members: Vec<NodeKey>,
}

/// The units the dirty nodes make restartable now, each once.
pub(crate) fn sweep(tree: &Tree, mut dirty: Vec<NodeKey>) -> Vec<Unit> {
    dirty.sort_unstable();
    dirty.dedup();
    let mut units = Vec::new();
    let mut groups = Vec::new();
    for k in dirty {
        let Some(node) = tree.node(k) else { continue };
        let Some(group) = tree.group(node.group) else {
            continue;
        };
        if node.relaunch {
            if let Some(unit) = relaunch(tree, k, &|m| tree.node(m).is_some_and(|n| n.is_ready())) {
                units.push(unit);
            }
            continue;
        }
        match group.options.strategy {
            Strategy::OneForOne => {
                if node.is_ready() && restartable(tree, k) && owner_live(tree, node.group) {
                    units.push(Unit {
                        group: node.group,
                        members: vec![k],
                    });
                }
            }
            // One-for-all waits for the whole group: O(1) to rule out.
            Strategy::OneForAll if !group.is_ready() => {}
            _ => groups.push(node.group),
        }
    }
    groups.sort_unstable();
    groups.dedup();
    units.extend(
        groups
            .into_iter()
            .filter_map(|g| group_unit(tree, g, &|m| tree.node(m).is_some_and(|n| n.is_ready()))),
    );
    units
}

/// Every unit that can be restarted now, computing readiness from the
/// states alone (not from the tree's counters).
#[cfg(test)]
pub(crate) fn full_sweep(tree: &Tree) -> Vec<Unit> {
    // Post-order over an explicit stack: deep trees must not overflow.
    let mut order = Vec::with_capacity(tree.len());
    let mut stack = vec![tree.root()];
    while let Some(k) = stack.pop() {
        order.push(k);
        if let Some(n) = tree.node(k) {
            stack.extend(n.children.values().copied());
        }
    }
    let mut ready = std::collections::HashSet::new();
    for k in order.into_iter().rev() {
        let Some(n) = tree.node(k) else { continue };
        if n.state().is_exited() && n.children.values().all(|c| ready.contains(c)) {
            ready.insert(k);
        }
    }
    let is_ready = |m: NodeKey| ready.contains(&m);
    let mut out = Vec::new();
    for (k, n) in tree.nodes() {
        if n.relaunch {
            out.extend(relaunch(tree, k, &is_ready));
        }
    }
    for (g, group) in tree.groups() {
        if group.options.strategy == Strategy::OneForOne {
            if owner_live(tree, g) {
                out.extend(
                    group
                        .members
                        .iter()
                        .filter(|m| is_ready(**m) && restartable(tree, **m))
                        .filter(|m| tree.node(**m).is_some_and(|n| !n.relaunch))
                        .map(|m| Unit {
                            group: g,
                            members: vec![*m],
                        }),
                );
            }
        } else if let Some(u) = group_unit(tree, g, &is_ready) {
            out.push(u);
        }
    }
    out.sort();
    out
}

/// A one-for-all or rest-for-one group's unit: its cancelled, restartable
/// members, once every cancelled member (one-for-all: every member) is ready.
fn group_unit(tree: &Tree, g: GroupKey, ready: &dyn Fn(NodeKey) -> bool) -> Option<Unit> {
    let group = tree.group(g)?;
    if !owner_live(tree, g) || tree.is_stopping(g) {
        return None;
    }
    let cancelled = |m: &&NodeKey| {
        tree.node(**m)
            .is_some_and(|n| n.token.is_cancelled() && !n.relaunch && !n.auto_shut)
    };
    let waits_for_all = group.options.strategy == Strategy::OneForAll;
    let all_ready = if waits_for_all {
        group.members.iter().all(|m| ready(*m))
    } else {
        group.members.iter().filter(cancelled).all(|m| ready(*m))
    };
    if !all_ready {
        return None;
    }
    let members: Vec<NodeKey> = group
        .members
        .iter()
        .filter(|m| cancelled(m) && tree.restart_of(**m) != Restart::Temporary)
        .copied()
        .collect();
    (!members.is_empty()).then_some(Unit { group: g, members })
}

/// A singleton's relaunch after a lost lease, once it (and its subtree) has
/// exited, under a live owner and outside an ordered stop.
fn relaunch(tree: &Tree, k: NodeKey, ready: &dyn Fn(NodeKey) -> bool) -> Option<Unit> {
    let n = tree.node(k)?;
    let due = n.relaunch
        && ready(k)
        && !n.removing
        && owner_live(tree, n.group)
        && !tree.is_stopping(n.group);
    due.then(|| Unit {
        group: n.group,
        members: vec![k],
    })
}

/// A member whose own restart is due: cancelled (not to end: an
/// auto-shutdown is an orderly end), and not temporary.
fn restartable(tree: &Tree, k: NodeKey) -> bool {
    tree.node(k)
        .is_some_and(|n| n.token.is_cancelled() && !n.removing && !n.auto_shut)
        && tree.restart_of(k) != Restart::Temporary
}

/// The group's owner is live (for the root's group: the supervisor).
fn owner_live(tree: &Tree, g: GroupKey) -> bool {
    match tree.group(g).and_then(|group| group.owner) {
        Some(o) => tree.node(o).is_some_and(|n| !n.token.is_cancelled()),
        None => !tree.top().is_cancelled(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::{GroupOptions, Spec};
    use crate::model::records::NodeState;
    use crate::model::tree::{Defaults, NodeKey};
    use tokio_util::sync::CancellationToken;

    fn die(t: &mut Tree, k: NodeKey) {
        t.die(k, "died");
    }

    fn restart(t: &mut Tree, g: GroupKey) {
        let members = t.group(g).map(|g| g.members.clone()).unwrap_or_default();
        for m in members {
            t.reset(m, None);
        }
    }

    /// Every other member waits out a backoff, so that the tally's
    /// waiting count is exercised too.
    fn restart_unit(t: &mut Tree, u: &Unit) {
        let later = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        for (i, m) in u.members.iter().enumerate() {
            t.reset(*m, (i % 2 == 1).then_some(later));
        }
    }

    fn step(t: &mut Tree) -> Vec<GroupKey> {
        let dirty = t.take_dirty();
        groups(sweep(t, dirty))
    }

    fn groups(units: Vec<Unit>) -> Vec<GroupKey> {
        units.into_iter().map(|u| u.group).collect()
    }

    fn new_tree() -> Tree {
        Tree::new(CancellationToken::new(), Defaults::default())
    }

    fn add(t: &mut Tree, parent: NodeKey, names: &[&str], strategy: Strategy) -> Vec<NodeKey> {
        let options = GroupOptions {
            strategy,
            ..GroupOptions::default()
        };
        t.add_group(parent, names.iter().copied(), options).unwrap()
    }

    fn child(t: &Tree, parent: NodeKey, name: &str) -> NodeKey {
        t.node(parent).unwrap().children[name]
    }

    /// root → group {a, b}; a → group {x}.
    fn sample() -> (Tree, NodeKey, NodeKey, NodeKey) {
        let mut t = new_tree();
        let root = t.root();
        add(&mut t, root, &["a", "b"], Strategy::OneForAll);
        let (a, b) = (child(&t, root, "a"), child(&t, root, "b"));
        add(&mut t, a, &["x"], Strategy::OneForAll);
        let x = child(&t, a, "x");
        t.take_dirty();
        (t, a, b, x)
    }

    /// `k` lost its lease: cancelled (its host did it), flagged.
    fn lose_lease(t: &mut Tree, k: NodeKey) {
        t.node(k).unwrap().token.cancel();
        t.node_mut(k).unwrap().relaunch = true;
    }

    #[test]
    fn a_lost_lease_relaunches_the_node_alone_once_its_subtree_exited() {
        let (mut t, a, b, x) = sample();
        lose_lease(&mut t, a);
        t.set_state(a, NodeState::Cancelled);
        assert!(step(&mut t).is_empty(), "x still runs under a");
        assert!(full_sweep(&t).is_empty());
        t.set_state(x, NodeState::Cancelled);
        let ga = t.node(a).unwrap().group;
        let dirty = t.take_dirty();
        let units = sweep(&t, dirty);
        assert_eq!(
            units,
            vec![Unit {
                group: ga,
                members: vec![a]
            }]
        );
        assert_eq!(full_sweep(&t), units, "the oracle agrees");
        assert!(
            !t.node(b).unwrap().token.is_cancelled(),
            "b never went down"
        );
    }

    #[test]
    fn a_death_in_the_group_takes_a_relaunching_node_along() {
        let (mut t, a, b, x) = sample();
        lose_lease(&mut t, a);
        die(&mut t, b);
        assert!(
            !t.node(a).unwrap().relaunch,
            "a comes back with the group now"
        );
        t.set_state(x, NodeState::Cancelled);
        t.set_state(a, NodeState::Cancelled);
        let ga = t.node(a).unwrap().group;
        let dirty = t.take_dirty();
        let units = sweep(&t, dirty);
        assert_eq!(
            units,
            vec![Unit {
                group: ga,
                members: vec![a, b]
            }]
        );
        assert_eq!(full_sweep(&t), units);
    }

    #[test]
    fn group_restarts_only_when_every_member_has_exited() {
        let (mut t, a, b, x) = sample();
        die(&mut t, b);
        assert!(step(&mut t).is_empty(), "a and x still run");
        t.set_state(x, NodeState::Cancelled);
        assert!(step(&mut t).is_empty(), "a still runs");
        t.set_state(a, NodeState::Cancelled);
        let g = t.node(a).unwrap().group;
        assert_eq!(step(&mut t), vec![g]);
        assert_eq!(groups(full_sweep(&t)), vec![g]);
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
        t.set_state(child(&t, t.root(), "b"), NodeState::Cancelled);
        assert!(step(&mut t).is_empty());
        // x exits under a cancelled parent: not restartable itself.
        t.set_state(x, NodeState::Cancelled);
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
        t.set_state(x, NodeState::Cancelled);
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
                t.set_state(k, NodeState::Cancelled);
            }
        }
        assert!(step(&mut t).is_empty());
        assert!(full_sweep(&t).is_empty());
        assert!(t.all_exited());
    }

    /// Kills each of four rest-for-one members in turn: it and those after
    /// it form the unit, in order; those before it are not cancelled.
    #[test]
    fn rest_for_one_takes_down_the_dead_member_and_those_after_it() {
        for k in 0..4 {
            let mut t = new_tree();
            let root = t.root();
            let m = add(&mut t, root, &["a", "b", "c", "d"], Strategy::RestForOne);
            t.take_dirty();
            die(&mut t, m[k]);
            for (i, key) in m.iter().enumerate() {
                let cancelled = t.node(*key).unwrap().token.is_cancelled();
                assert_eq!(cancelled, i >= k, "member {i} after killing {k}");
            }
            // The unit waits for every cancelled member, not for the others.
            for key in &m[k + 1..] {
                assert!(step(&mut t).is_empty());
                t.set_state(*key, NodeState::Cancelled);
            }
            let units = sweep(&t, t.clone_dirty());
            assert_eq!(units.len(), 1, "killing {k}");
            assert_eq!(units[0].members, m[k..].to_vec(), "in start order");
            assert_eq!(full_sweep(&t), units);
        }
    }

    #[test]
    fn one_for_one_restarts_members_alone() {
        let mut t = new_tree();
        let root = t.root();
        let m = add(&mut t, root, &["a", "b", "c"], Strategy::OneForOne);
        t.take_dirty();
        die(&mut t, m[1]);
        assert!(!t.node(m[0]).unwrap().token.is_cancelled());
        assert!(!t.node(m[2]).unwrap().token.is_cancelled());
        let dirty = t.take_dirty();
        let units = sweep(&t, dirty);
        assert_eq!(
            units,
            vec![Unit {
                group: t.node(m[1]).unwrap().group,
                members: vec![m[1]]
            }]
        );
        assert_eq!(full_sweep(&t), units);
    }

    #[test]
    fn temporary_members_never_restart_nor_take_siblings_down() {
        let mut t = new_tree();
        let root = t.root();
        let m = add(&mut t, root, &["temp", "perm"], Strategy::OneForAll);
        t.set_spec(
            m[0],
            Spec {
                restart: Some(Restart::Temporary),
                ..Spec::default()
            },
        );
        t.take_dirty();
        die(&mut t, m[0]);
        assert!(
            !t.node(m[1]).unwrap().token.is_cancelled(),
            "sibling undisturbed"
        );
        assert!(step(&mut t).is_empty());
        // The permanent one dies: the temporary one is not brought back.
        die(&mut t, m[1]);
        let dirty = t.take_dirty();
        let units = sweep(&t, dirty);
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].members, vec![m[1]]);
        assert_eq!(full_sweep(&t), units);
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
            let mut t = new_tree();
            let mut names = 0u64;
            for step in 0..300 {
                let keys: Vec<NodeKey> = t.nodes().map(|(k, _)| k).collect();
                let k = keys[rng.below(keys.len())];
                let n = t.node(k).unwrap();
                let (state, cancelled) = (n.state(), n.token.is_cancelled());
                if n.waiting().is_some() && rng.below(2) == 0 {
                    let incarnation = n.incarnation;
                    assert!(t.begin(k, incarnation));
                    assert!(!t.begin(k, incarnation), "a start begins once");
                    continue;
                }
                match (rng.below(4), state) {
                    (0, NodeState::New) if !cancelled && t.len() < 60 => {
                        let count = 1 + rng.below(3);
                        let fresh: Vec<String> = (0..count)
                            .map(|_| {
                                names += 1;
                                format!("n{names}")
                            })
                            .collect();
                        let strategy = [
                            Strategy::OneForAll,
                            Strategy::OneForOne,
                            Strategy::RestForOne,
                        ][rng.below(3)];
                        let options = GroupOptions {
                            strategy,
                            ..GroupOptions::default()
                        };
                        let keys = t
                            .add_group(k, fresh.iter().map(String::as_str), options)
                            .unwrap();
                        for key in keys {
                            let restart =
                                [Restart::Permanent, Restart::Transient, Restart::Temporary]
                                    [rng.below(3)];
                            t.set_spec(
                                key,
                                Spec {
                                    restart: Some(restart),
                                    ..Spec::default()
                                },
                            );
                        }
                    }
                    (1, NodeState::New) if !cancelled => {
                        t.set_state(k, NodeState::Healthy);
                    }
                    (2, NodeState::Healthy) if !cancelled => {
                        t.set_state(k, NodeState::Done);
                    }
                    (_, s) if s.is_live() && cancelled => {
                        t.set_state(k, NodeState::Cancelled);
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
                // The processor's safety sweep: the same check over every
                // node (in slices) finds the same.
                let mut everywhere = sweep(&t, t.nodes().map(|(k, _)| k).collect());
                everywhere.sort();
                assert_eq!(everywhere, found, "seed {seed} step {step}: safety sweep");
                for u in &found {
                    restarts += 1;
                    restart_unit(&mut t, u);
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
