//! Test-only helpers over the tree: a recount of every counter against the
//! running ones, and the processor's record of a death, for the unit tests
//! of the tree, the sweep and the planner.

use super::{NodeKey, Tally, Tree};
use crate::model::records::NodeState;

impl Tree {
    /// Recomputes every count from scratch and reports the first mismatch.
    pub fn check_counts(&self) -> Result<(), String> {
        fn want(t: &Tree, k: NodeKey) -> u32 {
            let n = &t.nodes[k];
            let children = n.children.values().filter(|c| want(t, **c) > 0).count();
            u32::from(n.state.is_live()) + children as u32
        }
        for (k, n) in self.nodes.iter() {
            let want = want(self, k);
            if n.not_ready != want {
                return Err(format!("{}: not_ready {} != {}", n.dn, n.not_ready, want));
            }
        }
        for (_, g) in self.groups.iter() {
            let want = g
                .members
                .iter()
                .filter(|m| self.nodes[**m].not_ready > 0)
                .count() as u32;
            if g.unready != want {
                return Err(format!(
                    "group {:?}: unready {} != {}",
                    g.members, g.unready, want
                ));
            }
        }
        let counted = Tally::of(self);
        if self.tally != counted {
            return Err(format!("tally {:?} != {counted:?}", self.tally));
        }
        Ok(())
    }

    /// What the processor records on a death: the reason, DEAD, and the
    /// cancellations (its subtree, and the siblings its strategy takes down).
    pub fn die(&mut self, k: NodeKey, reason: &str) {
        self.nodes[k].last_error = Some(reason.into());
        self.set_state(k, NodeState::Dead);
        self.take_down(k);
    }
}
