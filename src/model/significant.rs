//! Significant children and auto-shutdown (OTP's `auto_shutdown`, EEP 56):
//! after a child's exit, whether its parent is to end with it. A pure
//! decision over the tree; the processor applies it (cancels the parent
//! and records its exit as DONE).

use crate::model::policy::{AutoShutdown, Restart};
use crate::model::records::NodeState;
use crate::model::tree::{NodeKey, Tree};

/// Whether `k` has ended by itself for good: DONE (a transient or temporary
/// child that returned `Ok(())` or signalled Done), or a temporary child
/// that exited in any other way. A child the supervisor stopped is
/// CANCELLED, and a dead permanent or transient child is restarted: neither
/// has ended.
pub(crate) fn ended(tree: &Tree, k: NodeKey) -> bool {
    let Some(n) = tree.node(k) else {
        return true; // removed: a dynamic child that ended for good
    };
    match n.state() {
        NodeState::Done => true,
        NodeState::Dead => tree.restart_of(k) == Restart::Temporary,
        _ => false,
    }
}

/// After `k`'s exit: the parent to end, if `k` is significant, ended by
/// itself, and its group's auto-shutdown says so (any significant member
/// ended; or all of them). `None` when the parent is already stopping or
/// exited: its end is under way, or it is someone else's to decide.
pub(crate) fn parent_to_end(tree: &Tree, k: NodeKey) -> Option<NodeKey> {
    if !tree.is_significant(k) || !ended(tree, k) {
        return None;
    }
    let node = tree.node(k)?;
    let parent = node.parent?;
    let p = tree.node(parent)?;
    if p.state().is_exited() || p.token.is_cancelled() {
        return None;
    }
    let group = tree.group(node.group)?;
    let end = match group.options.auto_shutdown {
        AutoShutdown::Never => false,
        AutoShutdown::AnySignificant => true,
        AutoShutdown::AllSignificant => group
            .members
            .iter()
            .filter(|m| tree.is_significant(**m))
            .all(|m| ended(tree, *m)),
    };
    end.then_some(parent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::{GroupOptions, Intensity, Shutdown, Spec, Strategy};
    use crate::model::tree::Defaults;
    use tokio::time::Instant;
    use tokio_util::sync::CancellationToken;

    /// root → {a, b, c}, with `auto` and the given members' restart types
    /// and significance; everything HEALTHY.
    fn tree(auto: AutoShutdown, members: [(Restart, bool); 3]) -> (Tree, Vec<NodeKey>) {
        let defaults = Defaults {
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(std::time::Duration::from_secs(5)),
            intensity: Some(Intensity::new(3, std::time::Duration::from_secs(5))),
            start_timeout: None,
            queue_alarm: None,
        };
        let mut t = Tree::new(CancellationToken::new(), defaults);
        t.set_now(Instant::now());
        let root = t.root();
        t.set_state(root, NodeState::Healthy);
        let options = GroupOptions {
            strategy: Strategy::OneForOne,
            auto_shutdown: auto,
            ..GroupOptions::default()
        };
        let keys = t
            .add_group(root, ["a", "b", "c"].into_iter(), options)
            .expect("valid names");
        for (k, (restart, significant)) in keys.iter().zip(members) {
            let spec = Spec {
                restart: Some(restart),
                significant,
                ..Spec::default()
            };
            t.set_spec(*k, spec);
            t.set_state(*k, NodeState::Healthy);
        }
        (t, keys)
    }

    use Restart::{Permanent, Temporary, Transient};

    #[test]
    fn any_significant_ends_the_parent_when_one_ends() {
        let (mut t, k) = tree(
            AutoShutdown::AnySignificant,
            [(Transient, true), (Transient, true), (Permanent, false)],
        );
        t.set_state(k[0], NodeState::Done);
        assert_eq!(parent_to_end(&t, k[0]), Some(t.root()));
    }

    #[test]
    fn all_significant_waits_for_the_last_one() {
        let (mut t, k) = tree(
            AutoShutdown::AllSignificant,
            [(Transient, true), (Temporary, true), (Permanent, false)],
        );
        t.set_state(k[0], NodeState::Done);
        assert_eq!(parent_to_end(&t, k[0]), None, "b still runs");
        // A temporary child ends by dying too.
        t.set_state(k[1], NodeState::Dead);
        assert_eq!(parent_to_end(&t, k[1]), Some(t.root()));
    }

    #[test]
    fn a_dead_transient_is_restarted_not_ended() {
        let (mut t, k) = tree(
            AutoShutdown::AnySignificant,
            [(Transient, true), (Permanent, false), (Permanent, false)],
        );
        t.set_state(k[0], NodeState::Dead);
        assert_eq!(parent_to_end(&t, k[0]), None);
    }

    #[test]
    fn a_stopped_child_has_not_ended_and_never_is_never() {
        let (mut t, k) = tree(
            AutoShutdown::AnySignificant,
            [(Transient, true), (Permanent, false), (Permanent, false)],
        );
        t.set_state(k[0], NodeState::Cancelled);
        assert_eq!(parent_to_end(&t, k[0]), None, "stopped by the supervisor");
        let (mut t, k) = tree(
            AutoShutdown::Never,
            [(Transient, true), (Permanent, false), (Permanent, false)],
        );
        t.set_state(k[0], NodeState::Done);
        assert_eq!(parent_to_end(&t, k[0]), None);
    }

    #[test]
    fn a_non_significant_child_ends_nothing() {
        let (mut t, k) = tree(
            AutoShutdown::AnySignificant,
            [(Transient, false), (Temporary, true), (Permanent, false)],
        );
        t.set_state(k[0], NodeState::Done);
        assert_eq!(parent_to_end(&t, k[0]), None);
    }

    #[test]
    fn a_parent_already_stopping_is_left_alone() {
        let (mut t, k) = tree(
            AutoShutdown::AnySignificant,
            [(Transient, true), (Permanent, false), (Permanent, false)],
        );
        t.top().cancel();
        t.set_state(k[0], NodeState::Done);
        assert_eq!(parent_to_end(&t, k[0]), None);
    }
}
