//! The supervision tree as plain data: the one source of truth, owned by the
//! processor.
//!
//! Nodes and groups live in generational arenas and are addressed by key, so
//! a message about a node that has since been removed (or restarted: see
//! [`Node::incarnation`]) can never alias another node. No actor, future or
//! timer lives here; that is what lets the restart sweep be a pure function
//! over this data, tested without a runtime.
//!
//! Besides the structure, every node keeps `not_ready`: one if it is live
//! (NEW or HEALTHY), plus one for each child whose subtree has not fully
//! exited; and every group keeps `unready`, the number of members whose
//! `not_ready` is not zero. A change moves up the path to the root only as
//! far as some subtree's readiness flips, so "is this subtree fully
//! exited?" is answered in O(1) and a change costs O(1) unless it completes
//! (or reopens) subtrees, never O(tree). (A count of live nodes would cost
//! O(depth) on every change: a million-node tree is a level deeper.) A node whose subtree has just fully exited is queued as *dirty*
//! for the sweep, which looks at it and its group.
//!
//! The policy lives here too, as data: each node's [`Spec`] (boxed, and only
//! when it differs from the supervisor's defaults), each group's strategy,
//! each parent's window of recent restarts, and each node's backoff interval.

use std::sync::Arc;

use slotmap::{new_key_type, SlotMap};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::model::error::RunError;
use crate::model::name::is_valid_name;
use crate::model::policy::{Exceeded, Intensity, Restart, Shutdown, Strategy};
use crate::model::policy::{GroupOptions, Spec};
use crate::model::queues::QueueAlarm;
use crate::model::records::{NodeKind, NodeState};

new_key_type! {
    /// A node of the tree.
    pub(crate) struct NodeKey;
    /// A group of sibling nodes.
    pub(crate) struct GroupKey;
}

/// The DN of the root node.
pub(crate) const ROOT_NAME: &str = "root";

/// Siblings started together. The root is alone in a group without owner.
#[derive(Debug)]
pub(crate) struct GroupRecord {
    pub owner: Option<NodeKey>,
    pub members: Vec<NodeKey>,
    pub options: GroupOptions,
    unready: u32,
    /// With ordered stop: the members still to stop, in group order; the
    /// last is cancelled first, the next only once its subtree has exited.
    pub stopping: Vec<NodeKey>,
    /// For a one-for-all group of several members without ordered stop: the
    /// parent of the members' tokens, itself derived from the owner's. A
    /// member's host cancels it when the member dies, which takes the
    /// siblings down at once, on the member's thread, before the processor
    /// has heard of the death (see `runtime/host.rs`). Replaced once cancelled, when
    /// the group restarts.
    token: Option<CancellationToken>,
}

impl GroupRecord {
    /// Every member's subtree has exited.
    pub fn is_ready(&self) -> bool {
        self.unready == 0
    }
}

#[derive(Debug)]
pub(crate) struct Tree {
    nodes: SlotMap<NodeKey, Node>,
    groups: SlotMap<GroupKey, GroupRecord>,
    root: NodeKey,
    /// The supervisor's own token: the root's parent. Cancelled at shutdown.
    top: CancellationToken,
    dirty: Vec<NodeKey>,
    next_incarnation: u64,
    /// The supervisor's defaults for what a [`Spec`] leaves unset.
    pub defaults: Defaults,
    /// The supervisor's own restarts of the root, for the top intensity.
    pub top_window: std::collections::VecDeque<Instant>,
    /// Groups with an ordered stop under way.
    stopping: Vec<GroupKey>,
    /// Nodes by reported state (see [`Tally`]).
    tally: Tally,
    /// Where the nodes' millisecond times count from.
    epoch: Instant,
    /// "Now" for the change being applied, in ms since the epoch: the
    /// processor reads the clock once per message (clock reads are not free
    /// on every machine, and a message's changes happen at one instant).
    now_ms: u32,
}

/// What a child gets when its [`Spec`] says nothing. The intensity also
/// applies to the supervisor's restarts of the root.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Defaults {
    pub restart: Restart,
    pub shutdown: Shutdown,
    pub intensity: Option<Intensity>,
    pub start_timeout: Option<std::time::Duration>,
    /// The queue alarm of actor nodes that do not set their own.
    pub queue_alarm: Option<QueueAlarm>,
}

impl Tree {
    /// A tree holding only the root node, NEW, with its first incarnation.
    pub fn new(top: CancellationToken, defaults: Defaults) -> Tree {
        let mut nodes = SlotMap::with_key();
        let mut groups = SlotMap::with_key();
        let group = groups.insert(GroupRecord {
            owner: None,
            members: Vec::new(),
            options: GroupOptions::default(),
            unready: 1,
            stopping: Vec::new(),
            token: None,
        });
        let root = nodes.insert(Node::new(
            ROOT_NAME.into(),
            None,
            group,
            top.child_token(),
            0,
        ));
        groups[group].members.push(root);
        let mut tally = Tally::new(defaults.restart);
        tally.add(&nodes[root]);
        Tree {
            tally,
            nodes,
            groups,
            root,
            top,
            dirty: Vec::new(),
            next_incarnation: 1,
            defaults,
            top_window: std::collections::VecDeque::new(),
            stopping: Vec::new(),
            epoch: Instant::now(),
            now_ms: 0,
        }
    }

    /// `t` in ms since the tree's epoch (saturating).
    pub fn ms(&self, t: Instant) -> u32 {
        u32::try_from(t.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u32::MAX)
    }

    /// Sets "now" for the changes that follow.
    pub fn set_now(&mut self, now: Instant) {
        self.now_ms = self.ms(now);
    }

    /// "Now", as last set, in ms since the epoch.
    pub fn now_ms(&self) -> u32 {
        self.now_ms
    }

    /// The instant `ms` after the tree's epoch.
    pub fn at(&self, ms: u32) -> Instant {
        self.epoch + std::time::Duration::from_millis(u64::from(ms))
    }

    /// When `k` is restarted.
    pub fn restart_of(&self, k: NodeKey) -> Restart {
        self.spec_of(k)
            .and_then(|s| s.restart)
            .unwrap_or(self.defaults.restart)
    }

    /// Gives `k` its own policy (`Spec::default()`: the defaults).
    pub fn set_spec(&mut self, k: NodeKey, spec: Spec) {
        let spec = (spec != Spec::default()).then(|| Box::new(spec));
        self.retally(k, |n| n.spec = spec);
    }

    /// Whether `k` is a singleton across replicas (see the `fleet` module).
    pub fn is_singleton(&self, k: NodeKey) -> bool {
        self.spec_of(k).is_some_and(|s| s.singleton)
    }

    /// A child with `spec` would be permanent (its own restart type, or
    /// the supervisor's default) and significant: refused, as OTP does.
    fn permanent_significant(&self, spec: &Spec) -> bool {
        spec.significant && spec.restart.unwrap_or(self.defaults.restart) == Restart::Permanent
    }

    /// Refuses a child's policy that makes no sense, naming the child by
    /// the DN `dn` it would have: a permanent significant child, or queue
    /// alarm thresholds without hysteresis.
    pub fn check_spec(&self, spec: &Spec, dn: impl FnOnce() -> String) -> Result<(), RunError> {
        if self.permanent_significant(spec) {
            return Err(RunError::PermanentSignificant { dn: dn() });
        }
        if let Some((high, low)) = spec.queue_alarm {
            if QueueAlarm::new(high, low).is_none() {
                return Err(RunError::InvalidQueueAlarm {
                    dn: dn(),
                    high,
                    low,
                });
            }
        }
        Ok(())
    }

    /// Whether `k` is significant (see [`AutoShutdown`](crate::AutoShutdown)).
    pub fn is_significant(&self, k: NodeKey) -> bool {
        self.spec_of(k).is_some_and(|s| s.significant)
    }

    /// How often `k` must beat once HEALTHY (see `Child::heartbeat`).
    pub fn heartbeat_of(&self, k: NodeKey) -> Option<std::time::Duration> {
        self.spec_of(k).and_then(|s| s.heartbeat)
    }

    /// What the owner of a group does when its intensity is exceeded (the
    /// supervisor, for the root's: escalate).
    pub fn exceeded_of(&self, owner: Option<NodeKey>) -> Exceeded {
        owner
            .and_then(|o| self.spec_of(o))
            .map_or(Exceeded::Escalate, |s| s.exceeded)
    }

    /// Whether `k`'s missed heartbeat fails the process's liveness.
    pub fn heartbeat_affects_liveness(&self, k: NodeKey) -> bool {
        self.spec_of(k)
            .is_some_and(|s| s.heartbeat_affects_liveness)
    }

    /// `k`'s queue alarm, for an actor node: its own, else the
    /// supervisor's default. Its own was checked when it was started.
    pub fn queue_alarm_of(&self, k: NodeKey) -> Option<QueueAlarm> {
        match self.spec_of(k).and_then(|s| s.queue_alarm) {
            Some((high, low)) => QueueAlarm::new(high, low),
            None => self.defaults.queue_alarm,
        }
    }

    /// Whether `k`'s queue alarm keeps the service from being ready.
    pub fn overload_affects_readiness(&self, k: NodeKey) -> bool {
        self.spec_of(k)
            .is_some_and(|s| s.overload_affects_readiness)
    }

    /// How long `k` may stay NEW once its runnable runs.
    pub fn start_timeout_of(&self, k: NodeKey) -> Option<std::time::Duration> {
        self.spec_of(k)
            .and_then(|s| s.start_timeout)
            .or(self.defaults.start_timeout)
    }

    /// How `k` is stopped, before its runnable's own say.
    pub fn shutdown_of(&self, k: NodeKey) -> Shutdown {
        self.spec_of(k)
            .and_then(|s| s.shutdown)
            .unwrap_or(self.defaults.shutdown)
    }

    /// The restart intensity of a group's owner (the supervisor's for the root's).
    pub fn intensity_of(&self, owner: Option<NodeKey>) -> Option<Intensity> {
        match owner {
            Some(o) => self
                .spec_of(o)
                .and_then(|s| s.intensity)
                .or(self.defaults.intensity),
            None => self.defaults.intensity,
        }
    }

    fn spec_of(&self, k: NodeKey) -> Option<&Spec> {
        self.nodes.get(k)?.spec.as_deref()
    }

    pub fn root(&self) -> NodeKey {
        self.root
    }

    pub fn top(&self) -> &CancellationToken {
        &self.top
    }

    pub fn node(&self, k: NodeKey) -> Option<&Node> {
        self.nodes.get(k)
    }

    pub fn node_mut(&mut self, k: NodeKey) -> Option<&mut Node> {
        self.nodes.get_mut(k)
    }

    pub fn group(&self, g: GroupKey) -> Option<&GroupRecord> {
        self.groups.get(g)
    }

    #[cfg(test)]
    pub fn nodes(&self) -> impl Iterator<Item = (NodeKey, &Node)> {
        self.nodes.iter()
    }

    #[cfg(test)]
    pub fn groups(&self) -> impl Iterator<Item = (GroupKey, &GroupRecord)> {
        self.groups.iter()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// How many runnables are live (NEW or HEALTHY) in the whole tree.
    pub fn all_exited(&self) -> bool {
        self.nodes[self.root].not_ready == 0
    }

    /// What `k`'s host cancels when `k` dies, besides `k`'s own token: its
    /// group's shared token, unless `k` is temporary (it takes nobody down).
    pub fn takes_down(&self, k: NodeKey) -> Option<CancellationToken> {
        let group = self.groups.get(self.nodes.get(k)?.group)?;
        if self.restart_of(k) == Restart::Temporary {
            return None;
        }
        group.token.clone()
    }

    /// The token a node's parent hands down: the parent's, or the top one for the root.
    pub fn parent_token(&self, k: NodeKey) -> Option<&CancellationToken> {
        let node = self.nodes.get(k)?;
        Some(match node.parent {
            Some(p) => &self.nodes[p].token,
            None => &self.top,
        })
    }

    /// The dirty list without taking it.
    #[cfg(test)]
    pub fn clone_dirty(&self) -> Vec<NodeKey> {
        self.dirty.clone()
    }

    /// Nodes whose subtree fully exited, or that died, since the last call.
    pub fn take_dirty(&mut self) -> Vec<NodeKey> {
        std::mem::take(&mut self.dirty)
    }

    /// Creates a group of NEW children under `parent`, in the given order,
    /// after checking every name. Nothing is created when a name is refused.
    pub fn add_group<'a>(
        &mut self,
        parent: NodeKey,
        names: impl Iterator<Item = &'a str> + Clone,
        options: GroupOptions,
    ) -> Result<Vec<NodeKey>, RunError> {
        let p = &self.nodes[parent];
        let mut seen = std::collections::HashSet::new();
        for name in names.clone() {
            let err = |dn: &str| (dn.to_string(), name.to_string());
            if !is_valid_name(name) {
                let (dn, name) = err(&p.dn);
                return Err(RunError::InvalidName { dn, name });
            }
            if p.children.contains_key(name) || !seen.insert(name) {
                let (dn, name) = err(&p.dn);
                return Err(RunError::DuplicateName { dn, name });
            }
        }
        if seen.is_empty() {
            return Err(RunError::EmptyGroup {
                dn: p.dn.to_string(),
            });
        }
        let count = seen.len() as u32;
        let shared = options.strategy == Strategy::OneForAll && !options.ordered_stop && count > 1;
        let group = self.groups.insert(GroupRecord {
            owner: Some(parent),
            members: Vec::with_capacity(seen.len()),
            options,
            unready: count,
            stopping: Vec::new(),
            token: shared.then(|| p.token.child_token()),
        });
        let mut keys = Vec::with_capacity(seen.len());
        for name in names {
            let p = &self.nodes[parent];
            let dn: Arc<str> = format!("{}.{}", p.dn, name).into();
            let token = match &self.groups[group].token {
                Some(t) => t.child_token(),
                None => member_token(&p.token, options),
            };
            let incarnation = self.take_incarnation();
            let mut node = Node::new(dn, Some(parent), group, token, incarnation);
            let retired = self.nodes[parent].retired.as_mut();
            if let Some(old) = retired.and_then(|r| r.remove(name)) {
                node.restarts = old.restarts + 1;
                node.last_error = old.last_error;
                node.been_up = old.been_up;
                node.retired = old.children;
            }
            self.tally.add(&node);
            let k = self.nodes.insert(node);
            self.nodes[parent].children.insert(name.into(), k);
            keys.push(k);
        }
        self.groups[group].members.extend_from_slice(&keys);
        self.nodes[parent].groups.push(group);
        self.adjust_live(parent, count as i64);
        Ok(keys)
    }

    /// Moves a node to `state`, keeping the liveness counts on its path to
    /// the root up to date. Returns the previous state. A pending start is
    /// over with any transition: it began, or it was cancelled.
    pub fn set_state(&mut self, k: NodeKey, state: NodeState) -> NodeState {
        let now = self.now_ms;
        let before = self.retally(k, |node| {
            node.waiting = None;
            node.since_ms = now;
            node.been_up |= matches!(state, NodeState::Healthy | NodeState::Done);
            std::mem::replace(&mut node.state, state)
        });
        match (before.is_live(), state.is_live()) {
            (true, false) => self.adjust_live(k, -1),
            (false, true) => self.adjust_live(k, 1),
            _ => {}
        }
        before
    }

    /// Cancels `k` (and so its subtree) and the siblings its group's
    /// strategy takes down with it (one by one, in reverse, with ordered
    /// stop), and queues it for the sweep: what a death does, and what a
    /// restart on request does without one. A temporary node takes nobody
    /// down.
    pub fn take_down(&mut self, k: NodeKey) {
        self.nodes[k].token.cancel();
        self.dirty.push(k);
        if self.restart_of(k) == Restart::Temporary {
            return;
        }
        let g = self.nodes[k].group;
        let group = &self.groups[g];
        let from = match group.options.strategy {
            Strategy::OneForOne => return,
            Strategy::OneForAll => 0,
            Strategy::RestForOne => group.members.iter().position(|m| *m == k).unwrap_or(0),
        };
        let victims: Vec<NodeKey> = group.members[from..].to_vec();
        for m in &victims {
            // A singleton relaunching after a lost lease comes back with
            // the unit now; so does a node that had ended with its
            // significant children, as any DONE member.
            self.nodes[*m].relaunch = false;
            self.nodes[*m].auto_shut = false;
        }
        if group.options.ordered_stop {
            self.stop_in_order(g, &victims);
        } else {
            for m in victims {
                self.nodes[m].token.cancel();
            }
        }
    }

    /// Restarts a node's record: removes its whole (exited) subtree, gives it
    /// a fresh token from its parent's, a new incarnation, and makes it NEW.
    /// With `until`, its start waits until then (see [`Node::waiting`]).
    /// Returns the removed descendants so that their hosts can be dropped.
    /// Their records are kept, so that the DNs the new incarnation re-creates
    /// go on counting restarts.
    ///
    /// The caller guarantees the node and its subtree have exited.
    pub fn reset(&mut self, k: NodeKey, until: Option<Instant>) -> Vec<NodeKey> {
        debug_assert!(self.nodes[k].is_ready(), "reset of a live subtree");
        // Pre-order, then reversed: every node is retired after its children.
        let mut removed = Vec::new();
        let mut stack: Vec<NodeKey> = self.nodes[k].children.values().copied().collect();
        while let Some(c) = stack.pop() {
            removed.push(c);
            stack.extend(self.nodes[c].children.values().copied());
        }
        // Every removed node hands its record to its parent's `retired`.
        // Children are removed before their parent, so a node's own map is
        // complete when it goes: the records its earlier incarnations left
        // (children not re-created since) overlaid with its current children.
        for &c in removed.iter().rev() {
            let Some(child) = self.nodes.remove(c) else {
                continue;
            };
            self.tally.remove(&child);
            for g in child.groups {
                self.groups.remove(g);
            }
            let record = Retired {
                restarts: child.restarts,
                last_error: child.last_error,
                been_up: child.been_up,
                children: child.retired,
            };
            let name = child.dn.rsplit('.').next().unwrap_or_default().into();
            // A dynamic node's children are not restored, so nothing of
            // theirs is kept: churning unique names must leave memory flat.
            let parent = child.parent.and_then(|p| self.nodes.get_mut(p));
            if let Some(parent) = parent.filter(|p| p.kind != NodeKind::Dynamic) {
                parent.retired.get_or_insert_default().insert(name, record);
            }
        }
        let Some(owner_token) = self.parent_token(k).cloned() else {
            return removed;
        };
        let group = &mut self.groups[self.nodes[k].group];
        let token = match &mut group.token {
            Some(t) => {
                if t.is_cancelled() {
                    *t = owner_token.child_token();
                }
                t.child_token()
            }
            None => member_token(&owner_token, group.options),
        };
        let incarnation = self.take_incarnation();
        let node = &mut self.nodes[k];
        let groups = std::mem::take(&mut node.groups);
        node.children.clear();
        node.token = token;
        node.incarnation = incarnation;
        node.restarts += 1;
        node.doom = None;
        node.requested = false;
        node.relaunch = false;
        node.auto_shut = false;
        // A new incarnation is a new supervisor of its children: OTP starts
        // it with an empty restart history.
        node.window = None;
        node.healthy_ms = None;
        let was = node.state;
        for g in groups {
            self.groups.remove(g);
        }
        let since = self.nodes[k].since_ms;
        let until_ms = until.map(|t| self.ms(t));
        self.set_state(k, NodeState::New);
        self.nodes[k].started_ms = None;
        if let Some(until_ms) = until_ms {
            // Still reported as it exited, since it exited.
            self.set_waiting(k, Waiting { was, until_ms });
            self.nodes[k].since_ms = since;
        }
        removed
    }

    fn take_incarnation(&mut self) -> u64 {
        let i = self.next_incarnation;
        self.next_incarnation += 1;
        i
    }

    /// Adds `delta` to `from`'s `not_ready`; when that flips its subtree
    /// between ready and not, moves its group's count, queues it for the
    /// sweep if it became ready, and carries the flip to its parent.
    fn adjust_live(&mut self, from: NodeKey, delta: i64) {
        let mut cur = Some(from);
        let mut delta = delta;
        while let Some(k) = cur {
            let node = &mut self.nodes[k];
            let before = node.not_ready;
            node.not_ready = (i64::from(before) + delta) as u32;
            let after = node.not_ready;
            let group = &mut self.groups[node.group];
            if before == 0 && after > 0 {
                group.unready += 1;
                delta = 1;
            } else if before > 0 && after == 0 {
                group.unready -= 1;
                self.dirty.push(k);
                delta = -1;
            } else {
                return; // its subtree's readiness is unchanged: nothing above moves
            }
            cur = node.parent;
        }
    }
}

/// A member's token: derived from its owner's, so that cancelling the
/// owner cancels it; with ordered stop, its own, which the processor cancels
/// in order once the owner's is (see [`Tree::stop_in_order`]).
fn member_token(owner: &CancellationToken, options: GroupOptions) -> CancellationToken {
    if options.ordered_stop {
        CancellationToken::new()
    } else {
        owner.child_token()
    }
}

#[cfg(test)]
mod check;
mod dynamic;
mod node;
mod stops;
mod tally;
#[cfg(test)]
mod tests;

use node::Retired;
pub(crate) use node::{ExitRecord, Node, Waiting};
pub(crate) use tally::Tally;
