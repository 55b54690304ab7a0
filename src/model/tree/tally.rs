//! The tree's running count of nodes by reported state, kept up to date on
//! every change so that a summary ([`Counts`]) costs O(1) however large the
//! tree: the processor never walks a million nodes to answer `/healthz` or
//! the sinks' tick.

use super::{Node, NodeKey, Tree, Waiting};
use crate::model::policy::Restart;
use crate::model::records::{Counts, NodeState};

/// Nodes by reported state, how many wait out a backoff, and how many hold
/// up readiness (see [`Node::holds_up_readiness`]: when none does, `/readyz`
/// answers without a walk).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    by_state: [usize; 6],
    waiting: usize,
    unready: usize,
    /// The supervisor's default restart type, which readiness depends on.
    restart: Restart,
}

fn index(s: NodeState) -> usize {
    match s {
        NodeState::New => 0,
        NodeState::Healthy => 1,
        NodeState::Dead => 2,
        NodeState::Done => 3,
        NodeState::Cancelled => 4,
        NodeState::Standby => 5,
    }
}

impl Tally {
    pub fn new(restart: Restart) -> Tally {
        Tally {
            restart,
            ..Tally::default()
        }
    }

    pub fn add(&mut self, n: &Node) {
        self.by_state[index(n.reported_state())] += 1;
        self.waiting += usize::from(n.waiting.is_some());
        self.unready += usize::from(n.holds_up_readiness(self.restart));
    }

    pub fn remove(&mut self, n: &Node) {
        let slot = &mut self.by_state[index(n.reported_state())];
        *slot = slot.saturating_sub(1);
        let waiting = usize::from(n.waiting.is_some());
        self.waiting = self.waiting.saturating_sub(waiting);
        let unready = usize::from(n.holds_up_readiness(self.restart));
        self.unready = self.unready.saturating_sub(unready);
    }

    /// How many nodes hold up readiness now.
    pub fn unready(&self) -> usize {
        self.unready
    }

    /// The summary's node counts (the rest of [`Counts`] is left as is).
    pub fn fill(&self, c: &mut Counts) {
        let [new, healthy, dead, done, cancelled, standby] = self.by_state;
        (c.new, c.healthy, c.dead, c.done, c.cancelled) = (new, healthy, dead, done, cancelled);
        c.standby = standby;
        c.nodes = self.by_state.iter().sum();
        c.waiting = self.waiting;
    }

    /// Counted from scratch, for the tests that check the running count.
    #[cfg(test)]
    pub fn of(tree: &Tree) -> Tally {
        let mut t = Tally::new(tree.defaults.restart);
        for (_, n) in tree.nodes() {
            t.add(n);
        }
        t
    }
}

impl Tree {
    /// The running count (see [`Tally`]).
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// Applies `change` to `k`'s record, keeping the tally right.
    pub(super) fn retally<R>(&mut self, k: NodeKey, change: impl FnOnce(&mut Node) -> R) -> R {
        let node = &mut self.nodes[k];
        self.tally.remove(node);
        let r = change(node);
        self.tally.add(node);
        r
    }

    /// The pending start of `k`'s incarnation `incarnation` begins: it no
    /// longer waits, and is reported NEW from now on. `false` for a late
    /// message (another incarnation, or the start was cancelled meanwhile).
    pub fn begin(&mut self, k: NodeKey, incarnation: u64) -> bool {
        let Some(node) = self.nodes.get(k) else {
            return false;
        };
        if node.incarnation != incarnation || node.waiting.is_none() {
            return false;
        }
        let now = self.now_ms;
        self.retally(k, |n| {
            n.waiting = None;
            n.since_ms = now;
        });
        true
    }

    /// The start of `k` waits (see [`Node::waiting`]).
    pub(super) fn set_waiting(&mut self, k: NodeKey, waiting: Waiting) {
        self.retally(k, |n| n.waiting = Some(waiting));
    }
}
