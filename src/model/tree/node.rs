//! One node of the tree: a runnable's place and its supervision record
//! ([`Node`]), and what a node keeps of its last exit, its pending start
//! and its removed children.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{GroupKey, NodeKey};
use crate::model::policy::{Restart, Spec};
use crate::model::records::{ExitKind, NodeKind, NodeState};

/// One node: a runnable's place in the tree and its supervision record.
#[derive(Debug)]
pub(crate) struct Node {
    pub dn: Arc<str>,
    pub parent: Option<NodeKey>,
    pub group: GroupKey,
    /// Children by name (sorted, which keeps snapshots cheap to sort).
    pub children: BTreeMap<Box<str>, NodeKey>,
    /// Groups this node's current incarnation started, in start order.
    pub groups: Vec<GroupKey>,
    pub(super) state: NodeState,
    /// Derived from the parent's token: cancelling a node cancels its subtree.
    pub token: CancellationToken,
    pub(super) not_ready: u32,
    /// Unique across the tree for every start; reports carry it so that a
    /// late report from a previous incarnation is recognised and dropped.
    pub incarnation: u64,
    pub restarts: u64,
    pub last_error: Option<Box<str>>,
    /// The backoff interval kept after the last death; `None` after a reset
    /// (Healthy or Done, or long enough healthy with `reset_after`).
    pub backoff: Option<std::time::Duration>,
    /// When this incarnation signalled Healthy, in ms since the epoch.
    pub healthy_ms: Option<u32>,
    /// Its policy where it differs from the defaults (most nodes: none).
    /// Set through [`Tree::set_spec`], which keeps the tally right.
    pub(super) spec: Option<Box<Spec>>,
    /// When it restarted its children lately: only while it has an
    /// [`Intensity`], and at most `max_restarts + 1` entries. Boxed: 8 bytes
    /// on every node instead of 32, for what few nodes ever fill.
    #[allow(clippy::box_collection)]
    pub window: Option<Box<std::collections::VecDeque<Instant>>>,
    /// A death decided for this node while its runnable still runs (a child
    /// exhausted its restart budget): the exit will be DEAD with this reason.
    pub doom: Option<Box<str>>,
    /// The records of the children this node had before its last restart, so
    /// that a re-created child keeps counting restarts under its DN. Boxed:
    /// only nodes whose children were removed have any.
    pub(super) retired: Option<Box<Retirees>>,
    /// When it entered its reported state, in ms since the tree's epoch
    /// (4 bytes instead of 16: 49 days of range, saturating).
    pub since_ms: u32,
    /// When the current incarnation's runnable started, in ms since the epoch.
    pub started_ms: Option<u32>,
    /// What runs in it.
    pub kind: NodeKind,
    /// How its last incarnation ended, of whatever kind.
    pub last_exit: Option<Box<ExitRecord>>,
    /// The log tree's sequence number when this incarnation started: a death
    /// report marks where earlier incarnations' lines begin.
    pub log_mark: u64,
    /// A dynamic node's child being terminated: removed, not restarted,
    /// once its subtree has exited.
    pub removing: bool,
    /// Stopped to be restarted on request: its unit's restart neither waits
    /// nor counts against the owner's intensity.
    pub requested: bool,
    /// A singleton that lost its lease: it comes back alone and at once,
    /// campaigning again, whatever its group's strategy, and its restart
    /// does not count against its owner's intensity (losing a lease is not
    /// a failure of its own).
    pub relaunch: bool,
    /// Breaker trips since it last closed (see `Exceeded::Park`): 0 is
    /// closed.
    pub trips: u16,
    /// Started once after a cool-down, on probation (its breaker is
    /// half-open): a death opens it again.
    pub half_open: bool,
    /// Ending because its significant children ended (see
    /// [`AutoShutdown`](crate::AutoShutdown)): its exit, once cancelled, is
    /// DONE, an orderly end.
    pub auto_shut: bool,
    /// A singleton whose restarts exceeded its owner's intensity: its next
    /// start gives its lease up first (another replica takes over).
    pub handover: bool,
    /// It has been ready (HEALTHY or DONE) at least once since the
    /// supervisor started, in any incarnation of its DN: a readiness grace
    /// covers only such a node (one never up is unready from the start).
    pub been_up: bool,
    /// Set while a restarted node waits out its backoff. Internally it is
    /// NEW (its start is pending: live, so that nothing plans it twice and a
    /// parent's failure cancels the start), but until its host starts the
    /// runnable it is reported in the state it exited in.
    pub(super) waiting: Option<Waiting>,
}

/// A node's last exit, as recorded.
#[derive(Clone, Debug)]
pub(crate) struct ExitRecord {
    pub kind: ExitKind,
    pub reason: std::borrow::Cow<'static, str>,
    pub at_ms: u32,
}

/// A restart decided but not started yet: see [`Node::waiting`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Waiting {
    /// The state the node exited in, which is what it reports meanwhile.
    pub was: NodeState,
    /// When its runnable is due to start, in ms since the epoch.
    pub until_ms: u32,
}

/// The records of removed children, by name.
pub(super) type Retirees = BTreeMap<Box<str>, Retired>;

/// What survives of a removed node: its record, and its children's.
#[derive(Debug, Default)]
pub(super) struct Retired {
    pub(super) restarts: u64,
    pub(super) last_error: Option<Box<str>>,
    pub(super) been_up: bool,
    pub(super) children: Option<Box<Retirees>>,
}

impl Node {
    pub fn state(&self) -> NodeState {
        self.state
    }

    /// Whether the node keeps the service from being ready now, backoffs
    /// and grace aside: it counts (the root; else as its spec says, by
    /// default if and only if it is permanent) and is not HEALTHY (nor DONE,
    /// for a node other than the root), or waits out a backoff. A DONE root
    /// has returned, and its whole subtree with it. `default_restart`: the
    /// supervisor's, for a node whose spec leaves it unset.
    pub fn holds_up_readiness(&self, default_restart: Restart) -> bool {
        let root = self.parent.is_none();
        let spec = self.spec.as_deref();
        let restart = spec.and_then(|s| s.restart).unwrap_or(default_restart);
        let counts = root
            || spec
                .and_then(|s| s.affects_readiness)
                .unwrap_or(restart == Restart::Permanent);
        let state = self.reported_state();
        // STANDBY: another replica runs it, as it should.
        let fine = state == NodeState::Healthy
            || (!root && matches!(state, NodeState::Done | NodeState::Standby));
        counts && (!fine || self.waiting.is_some())
    }

    /// The state operators and sinks see: while a restart waits out its
    /// backoff, the state the node exited in.
    pub fn reported_state(&self) -> NodeState {
        self.waiting.map_or(self.state, |w| w.was)
    }

    /// The pending restart it waits for, if any (see [`Node::waiting`]).
    pub fn waiting(&self) -> Option<Waiting> {
        self.waiting
    }

    /// Its runnable is running (NEW or HEALTHY and not waiting to start;
    /// or STANDBY: its host campaigns for its lease).
    pub fn is_running(&self) -> bool {
        self.state.is_live() && self.waiting.is_none()
    }

    /// No live runnable in this subtree (this node included).
    pub fn is_ready(&self) -> bool {
        self.not_ready == 0
    }
}

impl Node {
    pub(super) fn new(
        dn: Arc<str>,
        parent: Option<NodeKey>,
        group: GroupKey,
        token: CancellationToken,
        incarnation: u64,
    ) -> Node {
        Node {
            dn,
            parent,
            group,
            children: BTreeMap::new(),
            groups: Vec::new(),
            state: NodeState::New,
            token,
            not_ready: 1,
            incarnation,
            restarts: 0,
            last_error: None,
            backoff: None,
            healthy_ms: None,
            spec: None,
            window: None,
            doom: None,
            retired: None,
            waiting: None,
            removing: false,
            requested: false,
            auto_shut: false,
            trips: 0,
            half_open: false,
            relaunch: false,
            handover: false,
            been_up: false,
            since_ms: 0,
            started_ms: None,
            kind: NodeKind::Runnable,
            last_exit: None,
            log_mark: 0,
        }
    }
}
