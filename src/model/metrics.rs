//! The sinks' trait: [`Metrics`], told of what happens in the tree.

use std::sync::Arc;
use std::time::Duration;

use crate::model::queues::QueueDepths;
use crate::model::records::{Counts, ExitKind, NodeState};

/// Told of what happens in the tree: every state transition, and (with
/// default no-op methods, so that a sink implements only what it needs)
/// exits by kind, restarts with their backoff, escalations, repairs, and a
/// summary every second.
///
/// Called from the processor, in order, for the whole tree: it must not
/// block. A panic in a sink is caught and logged; it never stops supervision.
/// [`prometheus::PrometheusMetrics`](crate::prometheus::PrometheusMetrics)
/// implements all of it.
pub trait Metrics: Send + Sync + 'static {
    /// `dn` has moved to `state`: NEW when its runnable starts (a restart
    /// that waits out a backoff is NEW only once the wait is over), then
    /// HEALTHY, DONE, CANCELLED or DEAD.
    fn node_state(&self, dn: &str, state: NodeState);

    /// An incarnation of `dn` ended, as `kind`.
    fn node_exited(&self, dn: &str, kind: ExitKind) {
        let _ = (dn, kind);
    }

    /// `dn` is restarted, after `delay` (zero unless it died).
    fn node_restarted(&self, dn: &str, delay: Duration) {
        let _ = (dn, delay);
    }

    /// `dn` gave up (its restart intensity was exceeded); `None`: the
    /// supervisor gave up on the root.
    fn escalated(&self, dn: Option<&str>) {
        let _ = dn;
    }

    /// A group came back after a death: from the death to its last
    /// restarted member signalling Healthy, less the backoff it waited.
    fn repaired(&self, latency: Duration) {
        let _ = latency;
    }

    /// Every second: the tree's summary, and how late the processor ran this
    /// tick (a sign of a long mailbox).
    fn tick(&self, counts: &Counts, lag: Duration) {
        let _ = (counts, lag);
    }

    /// The supervisor has begun to shut down.
    fn stopping(&self) {}

    /// An actor node's queue alarm ([`Child::queue_alarm`](crate::Child::queue_alarm))
    /// went on (`on`: `depth` reached its high threshold) or off (`depth`
    /// fell below its low one).
    fn queue_alarm(&self, dn: &str, depth: usize, on: bool) {
        let _ = (dn, depth, on);
    }

    /// Every second: how the backlogs of all actor nodes spread, and the
    /// nodes whose queue alarm is on with their current depth (at most
    /// 1,000 of them per second, in no particular order).
    fn queue_depths(&self, depths: &QueueDepths, overloaded: &[(&str, usize)]) {
        let _ = (depths, overloaded);
    }
}

impl<M: Metrics> Metrics for Arc<M> {
    fn node_state(&self, dn: &str, state: NodeState) {
        (**self).node_state(dn, state)
    }
    fn node_exited(&self, dn: &str, kind: ExitKind) {
        (**self).node_exited(dn, kind)
    }
    fn node_restarted(&self, dn: &str, delay: Duration) {
        (**self).node_restarted(dn, delay)
    }
    fn escalated(&self, dn: Option<&str>) {
        (**self).escalated(dn)
    }
    fn repaired(&self, latency: Duration) {
        (**self).repaired(latency)
    }
    fn tick(&self, counts: &Counts, lag: Duration) {
        (**self).tick(counts, lag)
    }
    fn stopping(&self) {
        (**self).stopping()
    }
    fn queue_alarm(&self, dn: &str, depth: usize, on: bool) {
        (**self).queue_alarm(dn, depth, on)
    }
    fn queue_depths(&self, depths: &QueueDepths, overloaded: &[(&str, usize)]) {
        (**self).queue_depths(depths, overloaded)
    }
}
