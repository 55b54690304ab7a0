//! Ordered stop: a group's members stopped one by one, last first, each
//! awaited (its whole subtree exited) before the one before it is cancelled.

use super::{GroupKey, NodeKey, Tree};

impl Tree {
    /// Adds `members` to `g`'s ordered stop; see [`advance_stops`](Self::advance_stops).
    pub fn stop_in_order(&mut self, g: GroupKey, members: &[NodeKey]) {
        let Some(group) = self.groups.get_mut(g) else {
            return;
        };
        if group.stopping.is_empty() {
            self.stopping.push(g);
        }
        let order = &group.members;
        let mut all: Vec<NodeKey> = group.stopping.iter().chain(members).copied().collect();
        all.sort_by_key(|m| order.iter().position(|o| o == m));
        all.dedup();
        group.stopping = all;
    }

    /// Moves every ordered stop along: the last member still to stop is
    /// cancelled, and once its subtree has exited, the one before it. A
    /// group whose stop is complete is queued for the sweep.
    pub fn advance_stops(&mut self) {
        let mut i = 0;
        while i < self.stopping.len() {
            let g = self.stopping[i];
            let Some(group) = self.groups.get_mut(g) else {
                self.stopping.swap_remove(i);
                continue;
            };
            while let Some(&m) = group.stopping.last() {
                let Some(node) = self.nodes.get(m) else {
                    group.stopping.pop();
                    continue;
                };
                node.token.cancel();
                if !node.is_ready() {
                    break;
                }
                group.stopping.pop();
            }
            if group.stopping.is_empty() {
                if let Some(&m) = group.members.first() {
                    self.dirty.push(m);
                }
                self.stopping.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Whether a group has an ordered stop under way (the sweep waits).
    pub fn is_stopping(&self, g: GroupKey) -> bool {
        self.groups.get(g).is_some_and(|g| !g.stopping.is_empty())
    }
}
