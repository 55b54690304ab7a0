//! Telling systemd how the service is (the `systemd` feature): a
//! [`Metrics`] sink that sends `READY=1` once the root is HEALTHY, a one-line
//! `STATUS=` when the summary changes (at most once a second), `WATCHDOG=1`
//! from the processor's one-second tick when the unit has `WatchdogSec=`
//! (so a wedged processor gets the process restarted; use `WatchdogSec=3` or
//! more), and `STOPPING=1` when the shutdown begins.
//!
//! ```no_run
//! use actix_supervisor::{systemd::SystemdNotifier, Supervisor};
//! # async fn root(ctx: actix_supervisor::Context) -> actix_supervisor::RunResult { Ok(()) }
//! # actix_rt::System::new().block_on(async {
//! let sup = Supervisor::builder().metrics(SystemdNotifier::new()).start(root);
//! # });
//! ```
//!
//! Outside systemd (no `NOTIFY_SOCKET`) it does nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sd_notify::NotifyState;

use crate::model::metrics::Metrics;
use crate::model::records::{Counts, NodeState};

/// The systemd notifier; see the [module docs](self).
#[derive(Debug, Default)]
pub struct SystemdNotifier {
    ready: AtomicBool,
    /// The last STATUS= sent, to send only changes.
    status: Mutex<String>,
}

impl SystemdNotifier {
    /// A notifier for the unit this process runs in.
    pub fn new() -> SystemdNotifier {
        SystemdNotifier::default()
    }

    fn send(&self, state: &[NotifyState]) {
        // Best effort: systemd being away is not the tree's problem.
        let _ = sd_notify::notify(false, state);
    }
}

/// The one-line summary systemd shows in `systemctl status`.
fn summary(c: &Counts) -> String {
    let mut s = format!("{} nodes: {} healthy", c.nodes, c.healthy);
    for (n, what) in [
        (c.new, "starting"),
        (c.waiting, "waiting to restart"),
        (c.dead - c.waiting.min(c.dead), "dead"),
        (c.stalled, "stalled"),
    ] {
        if n > 0 {
            s.push_str(&format!(", {n} {what}"));
        }
    }
    s.push_str(&format!(
        "; {} restarts in the last minute",
        c.restarts_last_minute
    ));
    s
}

impl Metrics for SystemdNotifier {
    fn node_state(&self, dn: &str, state: NodeState) {
        if dn == "root" && state == NodeState::Healthy && !self.ready.swap(true, Ordering::AcqRel) {
            self.send(&[NotifyState::Ready]);
        }
    }

    fn tick(&self, counts: &Counts, _lag: Duration) {
        let mut usec = 0;
        // Not fed while a node whose heartbeat affects liveness is hung:
        // systemd then restarts the service.
        if counts.hung == 0 && sd_notify::watchdog_enabled(false, &mut usec) {
            self.send(&[NotifyState::Watchdog]);
        }
        let line = summary(counts);
        let mut last = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if *last != line {
            self.send(&[NotifyState::Status(&line)]);
            *last = line;
        }
    }

    fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }
}
