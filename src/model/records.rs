//! The observable vocabulary of the tree: node states, signals, and the
//! per-node record returned by [`Supervisor::snapshot`](crate::Supervisor::snapshot).

use std::fmt;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::model::policy::{Restart, Strategy};

/// The state of a node, as the processor records it.
///
/// ```text
///            signal(Healthy)          signal(Done), then Ok(())
///   NEW ─────────────────────▶ HEALTHY ─────────────────────────▶ DONE
///    │                            │
///    │ returns after cancellation │ (any state: returns after cancellation)
///    ├────────────────────────────┴──────────────────────────────▶ CANCELLED
///    │ error, panic, Ok(()) without Done, signal misuse
///    └───────────────────────────────────────────────────────────▶ DEAD
/// ```
///
/// DONE, CANCELLED and DEAD are *exited*: the runnable is not running. An
/// exited node whose context is cancelled is restarted by the sweep (back to
/// NEW) once its whole subtree has exited too.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "SCREAMING_SNAKE_CASE"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Created or restarted; the runnable is scheduled or running and has not
    /// signalled Healthy yet.
    New,
    /// The runnable signalled [`Signal::Healthy`]: set-up is done, it is serving.
    Healthy,
    /// The runnable returned an error, panicked, returned `Ok(())` without
    /// signalling Done, or misused a signal.
    Dead,
    /// The runnable signalled [`Signal::Done`] and then returned `Ok(())`.
    Done,
    /// The runnable returned (or was aborted) after its context was cancelled.
    Cancelled,
    /// A singleton node (see the `fleet` module) waiting for its lease:
    /// another replica holds it, or this one is campaigning. Its runnable
    /// does not run here. Live, and not a reason to be unready.
    Standby,
}

impl NodeState {
    /// `true` for DONE, CANCELLED and DEAD: the runnable is not running (nor
    /// waiting for its lease, as a STANDBY node is).
    pub fn is_exited(self) -> bool {
        matches!(
            self,
            NodeState::Dead | NodeState::Done | NodeState::Cancelled
        )
    }

    /// `true` for NEW, HEALTHY and STANDBY: the runnable is scheduled or
    /// running, or campaigning for its lease.
    pub fn is_live(self) -> bool {
        !self.is_exited()
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            NodeState::New => "NEW",
            NodeState::Healthy => "HEALTHY",
            NodeState::Dead => "DEAD",
            NodeState::Done => "DONE",
            NodeState::Cancelled => "CANCELLED",
            NodeState::Standby => "STANDBY",
        })
    }
}

/// What a runnable tells the supervisor about itself, with
/// [`Context::signal`](crate::Context::signal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Set-up is done and the runnable is serving. Allowed once, in NEW.
    /// Resets the node's backoff. Children can no longer be started after it.
    Healthy,
    /// The runnable's work is finished; it will return `Ok(())` next.
    /// Allowed once, in HEALTHY. The node becomes DONE only when the runnable
    /// actually returns `Ok(())`. Resets the node's backoff.
    Done,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Signal::Healthy => "Healthy",
            Signal::Done => "Done",
        })
    }
}

/// A node's breaker (see [`Exceeded::Park`](crate::Exceeded::Park)).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Breaker {
    /// Not tripped (or closed again): the node restarts by its policy.
    #[default]
    Closed,
    /// Tripped: the node waits out a cool-down before it is tried again.
    Open {
        /// When it is tried again (on tokio's clock).
        #[cfg_attr(feature = "serde", serde(skip))]
        until: Instant,
        /// Its trips since the breaker last closed.
        trips: u16,
    },
    /// Tried again after its cool-down, on probation: HEALTHY for its
    /// parent's intensity window closes the breaker, a death opens it again.
    HalfOpen {
        /// Its trips since the breaker last closed.
        trips: u16,
    },
}

impl Breaker {
    /// Not tripped.
    pub fn is_closed(&self) -> bool {
        *self == Breaker::Closed
    }
}

/// One node of the tree as seen by [`Supervisor::snapshot`](crate::Supervisor::snapshot).
///
/// Times are on tokio's clock (`Instant`), with a wall-clock copy
/// (`SystemTime`) for display.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeInfo {
    /// The node's distinguished name, e.g. `root.http.listener`.
    pub dn: String,
    /// Its current state. A node waiting out its backoff before a restart
    /// keeps the state it exited in (DEAD) until its runnable starts, and
    /// then is NEW: see [`restart_at`](Self::restart_at).
    pub state: NodeState,
    /// When it entered `state`.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub since: Instant,
    /// `since` on the wall clock.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::model::serde_time::unix_ms")
    )]
    pub since_wall: SystemTime,
    /// What runs in it.
    pub kind: NodeKind,
    /// Whether its parent is a dynamic node: it was started with
    /// [`Dynamic::start_child`](crate::Dynamic::start_child) and can be
    /// terminated with `terminate_child`.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "std::ops::Not::not"))]
    pub dynamic_child: bool,
    /// A process node's pid while its process runs.
    pub pid: Option<u32>,
    /// For an actor node: the messages sent through its
    /// [`SupervisedAddr`](crate::SupervisedAddr) and not handled yet
    /// (queued, or being handled); `None` for other nodes.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub queued: Option<usize>,
    /// How long the oldest of those has waited.
    #[cfg_attr(
        feature = "serde",
        serde(
            serialize_with = "crate::model::serde_time::opt_secs",
            skip_serializing_if = "Option::is_none"
        )
    )]
    pub oldest_queued: Option<Duration>,
    /// Its queue alarm is on ([`Child::queue_alarm`](crate::Child::queue_alarm)).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "std::ops::Not::not"))]
    pub overloaded: bool,
    /// Its breaker, when its parent parks it rather than give up
    /// ([`Exceeded::Park`](crate::Exceeded::Park)).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Breaker::is_closed"))]
    pub breaker: Breaker,
    /// The addresses a server node ([`web::server`](crate::web)) listens on
    /// while it runs: with port 0, where it actually listens.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub addrs: Vec<std::net::SocketAddr>,
    /// Which incarnation of this DN is current: 1 for the first start,
    /// `restarts + 1` after that.
    pub incarnation: u64,
    /// How long the current incarnation's runnable has been running; `None`
    /// when it is not running (exited, or waiting to start).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::model::serde_time::opt_secs")
    )]
    pub uptime: Option<Duration>,
    /// When it is restarted (its [`Restart`] type).
    pub restart: Restart,
    /// How many times this DN has been started again after its first start.
    pub restarts: u64,
    /// The restarts its parent performed within the parent's intensity
    /// window (what decides when the parent gives up); `None` when the
    /// parent has no intensity limit.
    pub restarts_in_window: Option<u32>,
    /// The reason of its last death (error, panic message, signal misuse), if it ever died.
    pub last_error: Option<String>,
    /// How its last incarnation ended, of whatever kind.
    pub last_exit: Option<LastExit>,
    /// While the node waits out its backoff: when its runnable is due to
    /// start again (on tokio's clock).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "waiting",
            serialize_with = "crate::model::serde_time::is_some"
        )
    )]
    pub restart_at: Option<Instant>,
    /// Its group; `None` for the root.
    pub group: Option<GroupInfo>,
    /// How many of its children are running.
    pub children_live: u32,
    /// How many children it has.
    pub children_total: u32,
    /// Since when it has kept its worker thread from running anything else,
    /// if the stall watch flagged it.
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "stalled",
            serialize_with = "crate::model::serde_time::is_some"
        )
    )]
    pub stalled_since: Option<Instant>,
    /// For a dynamic node, when asked for ([`Query::finished`](crate::Query::finished),
    /// `/tree.json?finished=true`): its children that ended for good lately
    /// (terminated, DONE, a temporary one's exit), oldest first, at most
    /// 1,024. Empty otherwise.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub finished: Vec<FinishedChild>,
    /// For a singleton node (see the `fleet` module): who holds its lease
    /// and with which fencing token, as this replica last learnt it.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lease: Option<LeaseInfo>,
}

/// Who holds a singleton node's lease, as a snapshot shows it.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseInfo {
    /// The holder's member id (`FleetOptions::new(id)`), if anyone holds it.
    pub holder: Option<String>,
    /// Its fencing token: grows with every new tenure, across the fleet.
    pub token: Option<u64>,
    /// This replica holds it (and its runnable runs here).
    pub held_here: bool,
}

/// A dynamic node's child that ended for good and left the tree (see
/// [`Dynamic::finished`](crate::Dynamic::finished)): what a job service
/// lists as its finished jobs.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FinishedChild {
    /// Its DN.
    pub dn: String,
    /// The state it ended in: DONE, CANCELLED (terminated), or DEAD (a
    /// temporary child's death).
    pub state: NodeState,
    /// How many times it had been restarted.
    pub restarts: u64,
    /// How its last incarnation ended.
    pub last_exit: Option<LastExit>,
    /// When it left the tree.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::model::serde_time::unix_ms")
    )]
    pub removed_at: SystemTime,
}

impl FinishedChild {
    pub(crate) fn new(
        dn: String,
        state: NodeState,
        restarts: u64,
        last_exit: Option<LastExit>,
        removed_at: SystemTime,
    ) -> FinishedChild {
        FinishedChild {
            dn,
            state,
            restarts,
            last_exit,
            removed_at,
        }
    }
}

/// What runs in a node.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeKind {
    /// A plain runnable (a closure or a [`Runnable`](crate::Runnable)).
    #[default]
    Runnable,
    /// An actix actor ([`Context::run_actor`](crate::Context::run_actor)).
    Actor,
    /// An OS process ([`process::Command`](crate::process::Command)); its
    /// pid is [`NodeInfo::pid`].
    Process,
    /// A dynamic node ([`Context::run_dynamic`](crate::Context::run_dynamic)):
    /// no runnable of its own, children started and stopped at run time.
    Dynamic,
}

impl NodeKind {
    /// `runnable`, `actor`, `process` or `dynamic`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Runnable => "runnable",
            NodeKind::Actor => "actor",
            NodeKind::Process => "process",
            NodeKind::Dynamic => "dynamic",
        }
    }
}

/// How an incarnation ended.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitKind {
    /// It signalled Done (or was transient or temporary) and returned `Ok(())`.
    Done,
    /// It returned an error (or `Ok(())` without Done when permanent).
    Error,
    /// It panicked.
    Panic,
    /// It misused a signal.
    Misuse,
    /// It gave up: its restart intensity was exceeded.
    GaveUp,
    /// It returned after its context was cancelled.
    Cancelled,
    /// It did not return within its stop deadline after cancellation, and
    /// its future was dropped.
    Aborted,
    /// It was stopped to be started again on request
    /// ([`Supervisor::restart`](crate::Supervisor::restart)).
    Restarted,
    /// A singleton lost its lease (a renewal failed, the store was
    /// unreachable, its fence passed): stopped before another replica could
    /// start it, and back to STANDBY, campaigning again.
    LeaseLost,
}

impl ExitKind {
    /// A short lowercase name, for labels: `done`, `error`, `panic`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ExitKind::Done => "done",
            ExitKind::Error => "error",
            ExitKind::Panic => "panic",
            ExitKind::Misuse => "misuse",
            ExitKind::GaveUp => "gave_up",
            ExitKind::Cancelled => "cancelled",
            ExitKind::Aborted => "aborted",
            ExitKind::Restarted => "restarted",
            ExitKind::LeaseLost => "lease_lost",
        }
    }
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The last exit of a node.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastExit {
    /// What kind of exit.
    pub kind: ExitKind,
    /// What it returned or why it died, in one line where possible.
    pub reason: String,
    /// When.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub at: Instant,
    /// `at` on the wall clock.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::model::serde_time::unix_ms")
    )]
    pub at_wall: SystemTime,
}

impl LastExit {
    pub(crate) fn new(
        kind: ExitKind,
        reason: String,
        at: Instant,
        at_wall: SystemTime,
    ) -> LastExit {
        LastExit {
            kind,
            reason,
            at,
            at_wall,
        }
    }
}

/// A node's group, as a snapshot shows it.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupInfo {
    /// Which of its parent's groups this is, in start order, from 0.
    pub ordinal: usize,
    /// The group's strategy.
    pub strategy: Strategy,
    /// The node's place in the group (start order), from 0.
    pub index: usize,
    /// How many members the group has.
    pub size: usize,
}

impl GroupInfo {
    pub(crate) fn new(ordinal: usize, strategy: Strategy, index: usize, size: usize) -> GroupInfo {
        GroupInfo {
            ordinal,
            strategy,
            index,
            size,
        }
    }
}

/// A summary of the tree, from [`Supervisor::counts`](crate::Supervisor::counts).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// How many nodes the tree has.
    pub nodes: usize,
    /// Nodes by (reported) state: NEW, HEALTHY, DEAD, DONE, CANCELLED.
    pub new: usize,
    /// HEALTHY nodes.
    pub healthy: usize,
    /// DEAD nodes (including those waiting out a backoff).
    pub dead: usize,
    /// DONE nodes.
    pub done: usize,
    /// CANCELLED nodes.
    pub cancelled: usize,
    /// STANDBY nodes: singletons whose lease another replica holds.
    pub standby: usize,
    /// Nodes waiting out a backoff before a restart.
    pub waiting: usize,
    /// Nodes the stall watch has flagged.
    pub stalled: usize,
    /// Nodes whose missed heartbeat fails liveness
    /// ([`Child::heartbeat_affects_liveness`](crate::Child::heartbeat_affects_liveness)),
    /// not HEALTHY again yet. The systemd watchdog is not fed while any is.
    pub hung: usize,
    /// Actor nodes whose queue alarm is on ([`Child::queue_alarm`](crate::Child::queue_alarm)).
    pub overloaded: usize,
    /// Restarts in the last 60 seconds.
    pub restarts_last_minute: u64,
}

/// Why a supervisor ended, as [`Supervisor::join`](crate::Supervisor::join)
/// tells.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// [`Supervisor::shutdown`](crate::Supervisor::shutdown) was called.
    ShutDown,
    /// The supervisor gave up on the root: restarting it again would have
    /// exceeded the restart intensity
    /// ([`SupervisorBuilder::max_restarts`](crate::SupervisorBuilder::max_restarts)).
    GaveUp {
        /// The count, the window and the last failure, e.g. "restart
        /// intensity exceeded: 4 restarts in 5s, last root: ...".
        reason: String,
    },
    /// A runnable panicked and the supervisor was built to propagate panics.
    Panicked {
        /// The DN and the panic message.
        message: String,
    },
    /// Shut down, but these nodes did not return within their stop deadline
    /// and were aborted.
    Stragglers {
        /// Their DNs.
        dns: Vec<String>,
    },
    /// A second signal forced the process out before the graceful shutdown
    /// finished ([`Supervisor::run_until_signal`](crate::Supervisor::run_until_signal)).
    Forced,
}

impl Ended {
    /// The process exit code that says how it ended: 0 for a clean
    /// shutdown, 2 when the supervisor gave up on the root, 3 when the
    /// shutdown left stragglers, 4 for a propagated panic, 5 when a second
    /// signal forced it.
    pub fn exit_code(&self) -> u8 {
        match self {
            Ended::ShutDown => 0,
            Ended::GaveUp { .. } => 2,
            Ended::Stragglers { .. } => 3,
            Ended::Panicked { .. } => 4,
            Ended::Forced => 5,
        }
    }
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::ShutDown => f.write_str("shut down"),
            Ended::GaveUp { reason } => write!(f, "gave up: {reason}"),
            Ended::Panicked { message } => write!(f, "propagated a panic: {message}"),
            Ended::Stragglers { dns } => write!(
                f,
                "shut down, aborting {} that did not stop in time: {}",
                dns.len(),
                dns.join(", ")
            ),
            Ended::Forced => f.write_str("forced out by a second signal"),
        }
    }
}
