//! The operator's view, built from the tree: the snapshot's records, who is
//! not ready, the summary, and the count behind "restarts in the last minute". Read only; the processor builds a [`View`] over its state to
//! answer a message (the walks that read many nodes are in `read/walk.rs`).

use std::time::{Duration, SystemTime};

use slotmap::SecondaryMap;
use tokio::time::Instant;

use crate::model::queues::QueueProbe;
use crate::model::read::query::Keep;
use crate::model::records::{Breaker, Counts, GroupInfo, LastExit, LeaseInfo, NodeInfo, NodeState};
use crate::model::tree::{self, NodeKey, Tree};

/// The processor's state a snapshot reads.
pub(crate) struct View<'a> {
    pub tree: &'a Tree,
    /// The pids of running process nodes.
    pub pids: &'a SecondaryMap<NodeKey, u32>,
    /// Where running server nodes listen.
    pub addrs: &'a SecondaryMap<NodeKey, Vec<std::net::SocketAddr>>,
    /// Who holds each singleton's lease.
    pub leases: &'a SecondaryMap<NodeKey, LeaseInfo>,
    /// Where each actor node's backlog is read.
    pub queues: &'a SecondaryMap<NodeKey, QueueProbe>,
    /// Actor nodes whose queue alarm is on (and whether that keeps the
    /// service from being ready).
    pub overloaded: &'a SecondaryMap<NodeKey, bool>,
    /// Per worker: the node the stall watch flagged on it, and since when.
    pub blocked_by: &'a [Option<(NodeKey, Instant)>],
}

impl View<'_> {
    /// The record of one node, for a snapshot; `group` as its parent's walk
    /// found it.
    pub fn info(
        &self,
        key: NodeKey,
        n: &tree::Node,
        group: Option<GroupInfo>,
        now: Instant,
        wall: SystemTime,
    ) -> NodeInfo {
        let tree = self.tree;
        let wall_of = |t: Instant| wall - now.saturating_duration_since(t);
        let since = tree.at(n.since_ms);
        let owner = tree.group(n.group).and_then(|g| g.owner);
        let restarts_in_window = tree.intensity_of(owner).map(|i| {
            crate::model::plan::window(tree, owner).map_or(0, |w| {
                w.iter()
                    .filter(|t| now.saturating_duration_since(**t) < i.within)
                    .count() as u32
            })
        });
        let (queued, oldest) = self.queued(key).unzip();
        let children_live = n
            .children
            .values()
            .filter(|c| tree.node(**c).is_some_and(|c| c.is_running()))
            .count() as u32;
        NodeInfo {
            dn: n.dn.to_string(),
            state: n.reported_state(),
            since,
            since_wall: wall_of(since),
            kind: n.kind,
            dynamic_child: n.parent.is_some_and(|p| tree.is_dynamic(p)),
            pid: self.pids.get(key).copied(),
            queued,
            oldest_queued: oldest
                .flatten()
                .map(|sent| now.saturating_duration_since(sent)),
            overloaded: self.overloaded.contains_key(key),
            breaker: match (n.trips, n.half_open) {
                (0, _) => Breaker::Closed,
                (trips, true) => Breaker::HalfOpen { trips },
                (trips, false) => Breaker::Open {
                    until: n.waiting().map_or(now, |w| tree.at(w.until_ms)),
                    trips,
                },
            },
            addrs: self.addrs.get(key).cloned().unwrap_or_default(),
            incarnation: n.restarts + 1,
            uptime: n
                .started_ms
                .filter(|_| n.is_running())
                .map(|ms| now.saturating_duration_since(tree.at(ms))),
            restart: tree.restart_of(key),
            restarts: n.restarts,
            restarts_in_window,
            last_error: n.last_error.as_deref().map(str::to_string),
            last_exit: n.last_exit.as_ref().map(|e| {
                let at = tree.at(e.at_ms);
                LastExit::new(e.kind, e.reason.to_string(), at, wall_of(at))
            }),
            restart_at: n.waiting().map(|w| tree.at(w.until_ms)),
            group,
            children_live,
            children_total: n.children.len() as u32,
            stalled_since: self
                .blocked_by
                .iter()
                .flatten()
                .find(|(k, _)| *k == key)
                .map(|(_, since)| *since),
            finished: Vec::new(),
            lease: self.leases.get(key).cloned(),
        }
    }

    /// An actor node's backlog: how many messages wait, and when the
    /// oldest was sent.
    pub fn queued(&self, key: NodeKey) -> Option<(usize, Option<Instant>)> {
        self.queues.get(key).map(|probe| probe())
    }

    /// Whether `key`'s queue alarm is on and keeps the service from being
    /// ready ([`Child::overload_affects_readiness`](crate::Child::overload_affects_readiness)).
    pub fn overload_unready(&self, key: NodeKey) -> bool {
        self.overloaded.get(key).copied().unwrap_or(false)
    }

    /// How long the node has held up readiness (see
    /// [`Node::holds_up_readiness`](tree::Node::holds_up_readiness)),
    /// counted from its last exit; `Some(Duration::MAX)` for a node that
    /// has never been up (HEALTHY or DONE) since the supervisor started,
    /// which no grace covers, whatever its restarts; `None` when it does not.
    pub fn unready_for(&self, n: &tree::Node, now_ms: u32) -> Option<Duration> {
        if !n.holds_up_readiness(self.tree.defaults.restart) {
            return None;
        }
        if !n.been_up {
            return Some(Duration::MAX);
        }
        let since = match (&n.last_exit, n.state()) {
            (Some(e), NodeState::New) => e.at_ms,
            _ => n.since_ms,
        };
        Some(Duration::from_millis(u64::from(
            now_ms.saturating_sub(since),
        )))
    }

    /// Whether the walk keeps a record of the node `key`, `n`.
    pub fn keeps(&self, keep: Keep, key: NodeKey, n: &tree::Node, now_ms: u32) -> bool {
        match keep {
            Keep::Unready { grace } => {
                self.unready_for(n, now_ms).is_some_and(|d| d > grace) || self.overload_unready(key)
            }
            Keep::Overloaded => self.overloaded.contains_key(key),
            other => other.state(n.reported_state()),
        }
    }

    /// The records of `k`'s children (not their descendants), sorted by DN.
    pub fn children(&self, k: NodeKey) -> Vec<NodeInfo> {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let tree = self.tree;
        let Some(n) = tree.node(k) else {
            return Vec::new();
        };
        let mut place = std::collections::HashMap::new();
        for (ordinal, g) in n.groups.iter().enumerate() {
            let Some(g) = tree.group(*g) else { continue };
            for (index, m) in g.members.iter().enumerate() {
                let info = GroupInfo::new(ordinal, g.options.strategy, index, g.members.len());
                place.insert(*m, info);
            }
        }
        n.children
            .values()
            .filter_map(|c| Some(self.info(*c, tree.node(*c)?, place.get(c).copied(), now, wall)))
            .collect()
    }

    /// The node whose DN is `dn`, walking down from the root by name.
    pub fn find(&self, dn: &str) -> Option<NodeKey> {
        let mut parts = dn.split('.');
        if parts.next() != Some(tree::ROOT_NAME) {
            return None;
        }
        parts.try_fold(self.tree.root(), |k, name| {
            self.tree.node(k)?.children.get(name).copied()
        })
    }

    /// The summary: O(1), from the tree's running tally.
    pub fn counts(&self, restarts_last_minute: u64) -> Counts {
        let mut c = Counts {
            stalled: self.blocked_by.iter().flatten().count(),
            restarts_last_minute,
            ..Counts::default()
        };
        self.tree.tally().fill(&mut c);
        c
    }
}

/// Restarts in the last minute, counted per second in 60 buckets.
#[derive(Debug)]
pub(crate) struct LastMinute {
    start: Instant,
    buckets: [u64; 60],
    /// The second (since `start`) the newest bucket counts.
    newest: u64,
}

impl LastMinute {
    pub fn new() -> LastMinute {
        LastMinute {
            start: Instant::now(),
            buckets: [0; 60],
            newest: 0,
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs()
    }

    /// Forgets the buckets older than a minute before `now`.
    fn roll(&mut self, now: Instant) {
        let sec = self.second(now);
        for s in (self.newest + 1..=sec).take(60) {
            self.buckets[(s % 60) as usize] = 0;
        }
        self.newest = self.newest.max(sec);
    }

    pub fn add(&mut self, now: Instant, n: u64) {
        self.roll(now);
        self.buckets[(self.second(now) % 60) as usize] += n;
    }

    pub fn count(&self, now: Instant) -> u64 {
        let sec = self.second(now);
        let stale = sec.saturating_sub(self.newest);
        if stale >= 60 {
            return 0;
        }
        // Buckets newer than `newest` are zero; those older than a minute
        // before `now` have not been cleared yet: skip them.
        (0..60 - stale)
            .map(|back| self.buckets[((self.newest + 60 - back) % 60) as usize])
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_minute_forgets_what_is_older_than_a_minute() {
        let mut r = LastMinute::new();
        let t0 = r.start;
        let at = |s: u64| t0 + Duration::from_secs(s);
        r.add(at(0), 2);
        r.add(at(30), 3);
        assert_eq!(r.count(at(30)), 5);
        assert_eq!(r.count(at(59)), 5);
        // At 60 s the first second has left the window.
        assert_eq!(r.count(at(60)), 3);
        r.add(at(61), 1);
        assert_eq!(r.count(at(61)), 4);
        assert_eq!(r.count(at(90)), 1);
        // Long quiet: nothing left, and the buckets are reused cleanly.
        assert_eq!(r.count(at(500)), 0);
        r.add(at(500), 7);
        assert_eq!(r.count(at(500)), 7);
    }
}
