//! Restart policy in OTP's vocabulary: how a child is stopped.
//!
//! Each knob is explained by its consequence, as OTP's `supervisor` docs do.

use std::time::Duration;

/// How a node's runnable is stopped once its context is cancelled (OTP's
/// `shutdown` of a child spec).
///
/// ```
/// use std::time::Duration;
/// use actix_supervisor::Shutdown;
///
/// assert_eq!(Shutdown::default(), Shutdown::Timeout(Duration::from_secs(5)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// Asked to stop (its context is cancelled), waited for up to this long,
    /// then its future is dropped. The default, with the supervisor's
    /// `shutdown_timeout` (5 s).
    Timeout(Duration),
    /// Its future is dropped at once, without waiting: no cleanup runs. For
    /// a process node, SIGKILL at once.
    Brutal,
    /// Waited for as long as it takes. Meant for nodes that supervise
    /// children of their own, so that a subtree stops completely; a runnable
    /// that never returns then holds its restart (and shutdown) forever.
    Infinity,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::Timeout(Duration::from_secs(5))
    }
}
