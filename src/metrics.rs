//! State-transition sinks: [`Metrics`] and the in-memory [`InMemoryMetrics`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::state::NodeState;

/// Told `(dn, state)` on every transition: NEW when a node's runnable starts
/// (a restart that waits out a backoff is NEW only once the wait is over), then
/// HEALTHY, DONE, CANCELED or DEAD.
///
/// Called from the processor, in order, for the whole tree: it must not block.
/// A panic in a sink is caught and logged; it never stops supervision.
pub trait Metrics: Send + Sync + 'static {
    /// `dn` has moved to `state`.
    fn node_state(&self, dn: &str, state: NodeState);
}

impl<M: Metrics> Metrics for Arc<M> {
    fn node_state(&self, dn: &str, state: NodeState) {
        (**self).node_state(dn, state)
    }
}

/// The last state of a DN and when it was entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnState {
    /// The state entered last.
    pub state: NodeState,
    /// When it was entered.
    pub transition: Instant,
}

/// Keeps the last state and transition time of every DN ever seen.
///
/// ```
/// use std::sync::Arc;
/// use actix_supervisor::{InMemoryMetrics, Metrics, NodeState};
///
/// let m = Arc::new(InMemoryMetrics::default());
/// m.node_state("root", NodeState::Healthy);
/// assert_eq!(m.dns()["root"].state, NodeState::Healthy);
/// ```
#[derive(Default, Debug)]
pub struct InMemoryMetrics {
    dns: Mutex<HashMap<String, DnState>>,
}

impl InMemoryMetrics {
    /// A copy of the current table.
    pub fn dns(&self) -> HashMap<String, DnState> {
        self.dns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Metrics for InMemoryMetrics {
    fn node_state(&self, dn: &str, state: NodeState) {
        let entry = DnState {
            state,
            transition: Instant::now(),
        };
        let mut dns = self.dns.lock().unwrap_or_else(PoisonError::into_inner);
        match dns.get_mut(dn) {
            Some(e) => *e = entry,
            None => {
                dns.insert(dn.to_string(), entry);
            }
        }
    }
}
