//! The observable vocabulary of the tree: node states, signals, and the
//! per-node record returned by [`Supervisor::snapshot`](crate::Supervisor::snapshot).

use std::fmt;

/// The state of a node, as the processor records it.
///
/// ```text
///            signal(Healthy)          signal(Done), then Ok(())
///   NEW ─────────────────────▶ HEALTHY ─────────────────────────▶ DONE
///    │                            │
///    │ returns after cancellation │ (any state: returns after cancellation)
///    ├────────────────────────────┴──────────────────────────────▶ CANCELED
///    │ error, panic, Ok(()) without Done, signal misuse
///    └───────────────────────────────────────────────────────────▶ DEAD
/// ```
///
/// DONE, CANCELED and DEAD are *exited*: the runnable is not running. An
/// exited node whose context is cancelled is restarted by the sweep (back to
/// NEW) once its whole subtree has exited too.
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
    Canceled,
}

impl NodeState {
    /// `true` for DONE, CANCELED and DEAD: the runnable is not running.
    pub fn is_exited(self) -> bool {
        matches!(
            self,
            NodeState::Dead | NodeState::Done | NodeState::Canceled
        )
    }

    /// `true` for NEW and HEALTHY: the runnable is scheduled or running.
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
            NodeState::Canceled => "CANCELED",
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

/// One node of the tree as seen by [`Supervisor::snapshot`](crate::Supervisor::snapshot).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeInfo {
    /// The node's distinguished name, e.g. `root.http.listener`.
    pub dn: String,
    /// Its current state. A node waiting out its backoff before a restart
    /// keeps the state it exited in (DEAD) until its runnable starts, and
    /// then is NEW: see [`restart_at`](Self::restart_at).
    pub state: NodeState,
    /// How many times this DN has been started again after its first start.
    pub restarts: u64,
    /// The reason of its last death (error, panic message, signal misuse), if it ever died.
    pub last_error: Option<String>,
    /// While the node waits out its backoff: when its runnable is due to
    /// start again (on tokio's clock).
    pub restart_at: Option<tokio::time::Instant>,
}

/// Why a supervisor ended, as [`Supervisor::join`](crate::Supervisor::join)
/// tells.
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
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::ShutDown => f.write_str("shut down"),
            Ended::GaveUp { reason } => write!(f, "gave up: {reason}"),
            Ended::Panicked { message } => write!(f, "propagated a panic: {message}"),
        }
    }
}
