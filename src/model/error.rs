//! Errors returned to runnables: starting children ([`RunError`]) and
//! signalling ([`SignalError`]). Every variant names the DN it concerns.

use std::fmt;

use crate::model::health::Readiness;
use crate::model::records::NodeState;

/// The boxed error a runnable returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a runnable returns: `Ok(())` after [`Signal::Done`](crate::Signal::Done),
/// or the reason it stopped.
pub type RunResult = Result<(), BoxError>;

/// Why [`Context::run`](crate::Context::run),
/// [`Context::run_group`](crate::Context::run_group) or a
/// [`Dynamic`](crate::Dynamic) handle refused a request. Nothing was started
/// when this is returned: a group starts whole or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunError {
    /// The name does not match `^[a-z0-9_]{1,64}$`.
    InvalidName {
        /// The DN of the node concerned.
        dn: String,
        /// The offending name.
        name: String,
    },
    /// The node already has a child with this name, or the group names it twice.
    DuplicateName {
        /// The DN of the node concerned.
        dn: String,
        /// The offending name.
        name: String,
    },
    /// The name is reserved by a sub-logger of this node
    /// ([`Context::sub_logger`](crate::Context::sub_logger)).
    ReservedName {
        /// The DN of the node concerned.
        dn: String,
        /// The offending name.
        name: String,
    },
    /// The group has no members.
    EmptyGroup {
        /// The DN of the node concerned.
        dn: String,
    },
    /// The node has signalled Healthy (or Done): children can only be started
    /// while it is NEW.
    NotNew {
        /// The DN of the node concerned.
        dn: String,
        /// The node's state at the time.
        state: NodeState,
    },
    /// The node's context is cancelled: it is being stopped or restarted.
    Cancelled {
        /// The DN of the node concerned.
        dn: String,
    },
    /// This context belongs to an incarnation of the node that has already
    /// returned (a context kept after its runnable exited).
    Stale {
        /// The DN of the node concerned.
        dn: String,
    },
    /// The supervisor has shut down.
    ShutDown {
        /// The DN of the node concerned.
        dn: String,
    },
    /// The dynamic node has as many children as its
    /// [`max_children`](crate::DynamicGroup::max_children).
    Full {
        /// The DN of the dynamic node.
        dn: String,
        /// Its limit.
        max: usize,
    },
    /// A child marked [significant](crate::Child::significant) is
    /// permanent: a permanent child never ends by itself, so OTP refuses
    /// the combination, and so do we.
    PermanentSignificant {
        /// The DN the child would have had.
        dn: String,
    },
    /// A child's [queue alarm](crate::Child::queue_alarm) thresholds do
    /// not satisfy `0 < low < high`.
    InvalidQueueAlarm {
        /// The DN the child would have had.
        dn: String,
        /// The threshold that raises the alarm.
        high: usize,
        /// The threshold below which it clears.
        low: usize,
    },
    /// No such live child, or no dynamic node at that DN.
    NotFound {
        /// The DN that was looked for.
        dn: String,
    },
    /// The dynamic node is not live: restarting, dead, or shut down.
    NotRunning {
        /// The DN of the dynamic node.
        dn: String,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::InvalidName { dn, name } => write!(
                f,
                "{dn}: invalid child name {name:?}: names must match ^[a-z0-9_]{{1,64}}$"
            ),
            RunError::DuplicateName { dn, name } => {
                write!(f, "{dn}: a child named {name:?} already exists")
            }
            RunError::ReservedName { dn, name } => write!(
                f,
                "{dn}: the name {name:?} is reserved by a sub-logger of this node"
            ),
            RunError::EmptyGroup { dn } => write!(f, "{dn}: cannot start an empty group"),
            RunError::NotNew { dn, state } => write!(
                f,
                "{dn}: children can only be started while the node is NEW, it is {state}"
            ),
            RunError::Cancelled { dn } => {
                write!(
                    f,
                    "{dn}: cannot start children, the node's context is cancelled"
                )
            }
            RunError::Stale { dn } => write!(
                f,
                "{dn}: this context belongs to an incarnation that has already returned"
            ),
            RunError::ShutDown { dn } => {
                write!(
                    f,
                    "{dn}: cannot start children, the supervisor has shut down"
                )
            }
            RunError::Full { dn, max } => {
                write!(f, "{dn}: the dynamic node is full ({max} children)")
            }
            RunError::NotFound { dn } => write!(f, "{dn}: no such live child or dynamic node"),
            RunError::PermanentSignificant { dn } => write!(
                f,
                "{dn}: a significant child must be transient or temporary, not permanent \
                 (a permanent child never ends by itself)"
            ),
            RunError::InvalidQueueAlarm { dn, high, low } => write!(
                f,
                "{dn}: queue alarm thresholds high {high}, low {low}: they must satisfy \
                 0 < low < high (on at high, off below low)"
            ),
            RunError::NotRunning { dn } => write!(
                f,
                "{dn}: the dynamic node is not running (restarting, dead, or shut down)"
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// Why [`Context::signal`](crate::Context::signal) refused a signal.
///
/// A refused signal is a programming error in the runnable: besides being
/// returned, it makes the runnable's exit a death (DEAD), with this error as
/// the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalError {
    /// `Healthy` was signalled when the node was not NEW (for example twice).
    HealthyNotNew {
        /// The DN of the node concerned.
        dn: String,
        /// The node's state at the time.
        state: NodeState,
    },
    /// `Done` was signalled before `Healthy`.
    DoneNotHealthy {
        /// The DN of the node concerned.
        dn: String,
    },
    /// `Done` was signalled twice.
    DoneTwice {
        /// The DN of the node concerned.
        dn: String,
    },
    /// The incarnation this context belongs to has already returned.
    Stale {
        /// The DN of the node concerned.
        dn: String,
    },
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::HealthyNotNew { dn, state } => {
                write!(
                    f,
                    "{dn}: signalled Healthy when {state}, only allowed when NEW"
                )
            }
            SignalError::DoneNotHealthy { dn } => {
                write!(f, "{dn}: signalled Done before Healthy")
            }
            SignalError::DoneTwice { dn } => write!(f, "{dn}: signalled Done twice"),
            SignalError::Stale { dn } => write!(
                f,
                "{dn}: signal from an incarnation that has already returned"
            ),
        }
    }
}

impl std::error::Error for SignalError {}

/// Why [`Supervisor::wait_ready`](crate::Supervisor::wait_ready) gave up:
/// the service was not ready within the time it was given. Its message
/// names every node keeping it from being ready, with its state and last
/// error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotReady {
    /// How long it waited.
    pub waited: std::time::Duration,
    /// What `/readyz` says at that moment.
    pub readiness: Readiness,
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not ready within {:?}", self.waited)?;
        if self.readiness.draining {
            return f.write_str(": draining or shut down");
        }
        for (i, n) in self.readiness.not_ready.iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}{} ({}", n.dn, n.state)?;
            if n.restart_at.is_some() {
                f.write_str(", waiting to restart")?;
            }
            if n.overloaded {
                write!(f, ", overloaded: {} queued", n.queued.unwrap_or_default())?;
            }
            if let Some(e) = &n.last_error {
                write!(f, ", last error: {e}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for NotReady {}
