//! The tree's records across restarts.
use super::*;

/// Starts `name` alone under `parent`.
fn start(t: &mut Tree, parent: NodeKey, name: &str) -> NodeKey {
    t.add_group(parent, [name].into_iter(), GroupOptions::default())
        .unwrap()[0]
}

/// Exits every live node below and including `k` (post-order is not
/// needed: only the counts matter here).
fn exit_subtree(t: &mut Tree, k: NodeKey) {
    let mut stack = vec![k];
    while let Some(n) = stack.pop() {
        stack.extend(t.node(n).unwrap().children.values().copied());
        if t.node(n).unwrap().state().is_live() {
            t.set_state(n, NodeState::Cancelled);
        }
    }
}

/// A death of `k` recorded and its subtree exited, then its reset.
fn die_and_reset(t: &mut Tree, k: NodeKey, reason: &str) {
    let below: Vec<NodeKey> = t.node(k).unwrap().children.values().copied().collect();
    for c in below {
        exit_subtree(t, c);
    }
    t.die(k, reason);
    t.reset(k, None);
}

/// The smallest case: p starts c, dies; p's second incarnation
/// dies before starting c; the third starts c, which keeps its record.
#[test]
fn a_child_keeps_its_record_when_its_parent_restarts_twice_before_recreating_it() {
    let mut t = Tree::new(CancellationToken::new(), Defaults::default());
    let root = t.root();
    let p = start(&mut t, root, "p");
    let c = start(&mut t, p, "c");
    die_and_reset(&mut t, c, "c broke");
    assert_eq!(t.node(c).unwrap().restarts, 1);

    die_and_reset(&mut t, p, "p broke once");
    die_and_reset(&mut t, p, "p broke during set-up");
    let c = start(&mut t, p, "c");
    let n = t.node(c).unwrap();
    assert_eq!(n.restarts, 2, "one restart of its own, one with p");
    assert_eq!(n.last_error.as_deref(), Some("c broke"));
}

/// The same one level down: a grandchild's record survives when its
/// parent is re-created without re-creating it, and then both are removed.
#[test]
fn a_grandchild_keeps_its_record_across_an_incarnation_that_skipped_it() {
    let mut t = Tree::new(CancellationToken::new(), Defaults::default());
    let root = t.root();
    let p = start(&mut t, root, "p");
    let c = start(&mut t, p, "c");
    let g = start(&mut t, c, "g");
    die_and_reset(&mut t, g, "g broke");
    // c restarts and, this time, does not start g.
    die_and_reset(&mut t, c, "c broke");
    // p restarts: c is removed while it holds g's record as retired.
    die_and_reset(&mut t, p, "p broke");
    let c = start(&mut t, p, "c");
    let g = start(&mut t, c, "g");
    let n = t.node(g).unwrap();
    assert_eq!(n.last_error.as_deref(), Some("g broke"));
    assert_eq!(n.restarts, 2);
}
