//! What the processor keeps about a few nodes beside the tree: the pids of
//! process nodes, where server nodes listen, the closed gates of an ordered
//! start, who holds a singleton's lease, the callers waiting for a dynamic
//! child to be gone, and (with the
//! `tracing` feature) each incarnation's span. Few nodes have any of it, so
//! it costs the others nothing; one struct, so that a node leaving the tree
//! or ending an incarnation leaves nothing behind here.

use futures::channel::oneshot;
use slotmap::SecondaryMap;

use crate::api::wire::settle::Starting;
use crate::model::error::RunError;
use crate::model::queues::QueueProbe;
use crate::model::records::LeaseInfo;
use crate::model::tree::NodeKey;

/// A caller of `terminate_child`, answered once the child is gone.
pub(super) type Leaving = oneshot::Sender<Result<(), RunError>>;

#[derive(Default)]
pub(crate) struct Beside {
    /// The pids of running process nodes.
    pub pids: SecondaryMap<NodeKey, u32>,
    /// Where running server nodes listen.
    pub addrs: SecondaryMap<NodeKey, Vec<std::net::SocketAddr>>,
    /// The closed gates of ordered-start members waiting for their predecessor.
    pub gates: SecondaryMap<NodeKey, oneshot::Sender<Starting>>,
    /// Who holds each singleton's lease, as its host last told: kept
    /// across its incarnations, until it leaves the tree.
    pub leases: SecondaryMap<NodeKey, LeaseInfo>,
    /// Callers of `terminate_child` waiting for their child to be gone.
    pub leaving: SecondaryMap<NodeKey, Vec<Leaving>>,
    /// Nodes whose missed heartbeat fails liveness
    /// (`Child::heartbeat_affects_liveness`), until they are HEALTHY again.
    pub hung: SecondaryMap<NodeKey, ()>,
    /// Nodes whose breaker has tripped and not closed yet.
    pub breakers: SecondaryMap<NodeKey, ()>,
    /// Where each actor node's backlog is read: kept across its
    /// incarnations (its address outlives them), until it leaves the tree.
    pub queues: SecondaryMap<NodeKey, QueueProbe>,
    /// Actor nodes whose queue alarm is on: whether that keeps the
    /// service from being ready (`Child::overload_affects_readiness`).
    pub overloaded: SecondaryMap<NodeKey, bool>,
    /// How many of those keep it from being ready.
    pub overload_unready: usize,
    /// Each node's current incarnation's span: its children's parent.
    #[cfg(feature = "tracing")]
    pub spans: SecondaryMap<NodeKey, ::tracing::Span>,
}

impl Beside {
    /// `k`'s incarnation ended: what belonged to it goes (a caller waiting
    /// for `k` to be gone waits on).
    pub fn exited(&mut self, k: NodeKey) {
        self.gates.remove(k);
        self.pids.remove(k);
        self.addrs.remove(k);
        #[cfg(feature = "tracing")]
        self.spans.remove(k);
    }

    /// `k` has left the tree: everything goes, and whoever waited for it to
    /// be gone is answered.
    pub fn forget(&mut self, k: NodeKey) {
        self.exited(k);
        self.leases.remove(k);
        self.hung.remove(k);
        self.breakers.remove(k);
        self.queues.remove(k);
        self.set_overloaded(k, None);
        for reply in self.leaving.remove(k).into_iter().flatten() {
            let _ = reply.send(Ok(()));
        }
    }

    /// `k`'s queue alarm is on (`Some(affects readiness)`) or off; whether
    /// that changed anything.
    pub fn set_overloaded(&mut self, k: NodeKey, on: Option<bool>) -> bool {
        let was = match on {
            Some(unready) => self.overloaded.insert(k, unready),
            None => self.overloaded.remove(k),
        };
        self.overload_unready -= usize::from(was == Some(true));
        self.overload_unready += usize::from(on == Some(true));
        was.is_some() != on.is_some()
    }

    /// Nothing runs any more: everyone waiting is answered, and the spans
    /// close.
    pub fn finish(&mut self) {
        for (_, replies) in self.leaving.drain() {
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
        #[cfg(feature = "tracing")]
        self.spans.clear();
    }
}
