//! What a snapshot selects: a subtree, how many levels of it, which states,
//! and how many records at most ([`Query`]); and what comes back
//! ([`Selection`]). `/tree.json` takes the same four as URL parameters.

use std::time::Duration;

use crate::model::records::{NodeInfo, NodeState};

/// Which nodes [`Supervisor::query`](crate::Supervisor::query) returns. By
/// default: the whole tree, every state, no limit (like
/// [`snapshot`](crate::Supervisor::snapshot)).
///
/// Each setter has a field of the same name to read it back (the states by
/// [`wants`](Self::wants)).
///
/// ```
/// use actix_supervisor::{NodeState, Query};
///
/// // The two levels under root.http, and only what is not HEALTHY.
/// let q = Query::new().dn("root.http").depth(2).not_healthy().limit(500);
/// assert_eq!(q.dn.as_deref(), Some("root.http"));
/// assert_eq!((q.depth, q.limit), (Some(2), Some(500)));
/// assert!(q.wants(NodeState::Dead) && !q.wants(NodeState::Healthy));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Query {
    /// The subtree's top (`None`: the whole tree).
    pub dn: Option<String>,
    /// Levels below the top (`None`: all of them).
    pub depth: Option<u32>,
    /// At most this many records (`None`: no limit).
    pub limit: Option<usize>,
    /// Dynamic nodes' records carry their finished children
    /// ([`NodeInfo::finished`]).
    pub finished: bool,
    /// Only actor nodes with at least this many messages waiting
    /// ([`NodeInfo::queued`]).
    pub queued: Option<usize>,
    /// Which of the nodes visited get a record.
    pub(crate) keep: Keep,
}

/// A state's bit in [`Query`]'s set.
fn bit(s: NodeState) -> u8 {
    1 << match s {
        NodeState::New => 0,
        NodeState::Healthy => 1,
        NodeState::Dead => 2,
        NodeState::Done => 3,
        NodeState::Cancelled => 4,
        NodeState::Standby => 5,
    }
}

impl Query {
    /// The whole tree.
    pub fn new() -> Query {
        Query::default()
    }

    /// Only the subtree at `dn` (that node included).
    pub fn dn(mut self, dn: impl Into<String>) -> Query {
        self.dn = Some(dn.into());
        self
    }

    /// Only `levels` levels below the top (0: the top alone). A node whose
    /// children are left out still tells how many it has
    /// ([`NodeInfo::children_total`]).
    pub fn depth(mut self, levels: u32) -> Query {
        self.depth = Some(levels);
        self
    }

    /// Only nodes in one of `states` (as reported: a node waiting out its
    /// backoff is in the state it exited in). The walk still covers the
    /// whole subtree.
    pub fn states(mut self, states: &[NodeState]) -> Query {
        self.keep = Keep::States(states.iter().fold(0, |m, s| m | bit(*s)));
        self
    }

    /// Only nodes that are not HEALTHY: what an operator looks for first.
    pub fn not_healthy(self) -> Query {
        self.states(&[
            NodeState::New,
            NodeState::Dead,
            NodeState::Done,
            NodeState::Cancelled,
        ])
    }

    /// At most `n` records; [`Selection::truncated`] tells when more nodes
    /// matched (narrow the query with [`dn`](Self::dn) or
    /// [`depth`](Self::depth) to see them).
    pub fn limit(mut self, n: usize) -> Query {
        self.limit = Some(n);
        self
    }

    /// Dynamic nodes' records carry their children that ended for good
    /// lately ([`NodeInfo::finished`]).
    pub fn finished(mut self, with: bool) -> Query {
        self.finished = with;
        self
    }

    /// Only actor nodes whose queue alarm is on
    /// ([`NodeInfo::overloaded`]). Replaces a choice of states.
    pub fn overloaded(mut self) -> Query {
        self.keep = Keep::Overloaded;
        self
    }

    /// Only actor nodes with at least `at_least` messages waiting
    /// ([`NodeInfo::queued`]): where a backlog builds up.
    ///
    /// ```
    /// use actix_supervisor::Query;
    ///
    /// let q = Query::new().queued(1_000);
    /// assert_eq!(q.queued, Some(1_000));
    /// ```
    pub fn queued(mut self, at_least: usize) -> Query {
        self.queued = Some(at_least);
        self
    }

    /// Whether a node in state `s` is selected.
    pub fn wants(&self, s: NodeState) -> bool {
        self.keep.state(s)
    }

    /// The nodes that keep the service from being ready for longer than
    /// `grace` (what `/readyz` lists).
    pub(crate) fn unready(grace: Duration) -> Query {
        Query {
            keep: Keep::Unready { grace },
            ..Query::default()
        }
    }
}

/// What a [`Query`] returned.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Selection {
    /// The selected nodes, sorted by DN.
    pub nodes: Vec<NodeInfo>,
    /// More nodes matched than the query's limit allowed.
    pub truncated: bool,
}

/// Which of the nodes a walk visits get a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Keep {
    #[default]
    All,
    /// A bit per state, as in [`Query`].
    States(u8),
    /// The nodes keeping the service from being ready (see
    /// `View::is_unready`) for longer than `grace`.
    Unready { grace: Duration },
    /// Actor nodes whose queue alarm is on.
    Overloaded,
}

impl Keep {
    /// Whether a node reported in `s` may be kept (the unready test needs
    /// the tree: see `View::keeps`).
    pub fn state(self, s: NodeState) -> bool {
        match self {
            Keep::All | Keep::Unready { .. } | Keep::Overloaded => true,
            Keep::States(mask) => mask & bit(s) != 0,
        }
    }
}
