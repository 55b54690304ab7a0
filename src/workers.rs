//! Where actors run: the processor's arbiter and the pool of worker arbiters
//! that host the nodes.
//!
//! The processor gets an arbiter of its own so that a runnable hogging its
//! thread can delay only the nodes that share that worker, never supervision
//! itself. Nodes are placed on the workers round-robin.

use actix::{Arbiter, ArbiterHandle};

pub(crate) struct Workers {
    handles: Vec<ArbiterHandle>,
    next: usize,
    /// Arbiters this supervisor made (and so stops), the processor's first.
    owned: Vec<Arbiter>,
}

impl Workers {
    /// The processor's arbiter and `count` (at least one) worker arbiters,
    /// each a new thread.
    pub fn spawn(count: usize) -> (ArbiterHandle, Workers) {
        let processor = Arbiter::new();
        let handle = processor.handle();
        let mut owned = vec![processor];
        owned.extend((0..count.max(1)).map(|_| Arbiter::new()));
        let handles = owned[1..].iter().map(Arbiter::handle).collect();
        (
            handle,
            Workers {
                handles,
                next: 0,
                owned,
            },
        )
    }

    /// Everything on the calling thread's arbiter: no isolation, but
    /// deterministic under `tokio::time::pause`.
    pub fn current() -> (ArbiterHandle, Workers) {
        let handle = Arbiter::current();
        (
            handle.clone(),
            Workers {
                handles: vec![handle],
                next: 0,
                owned: Vec::new(),
            },
        )
    }

    /// The arbiter for the next node.
    pub fn pick(&mut self) -> &ArbiterHandle {
        let i = self.next % self.handles.len();
        self.next = self.next.wrapping_add(1);
        &self.handles[i]
    }

    /// Stops the worker arbiters this supervisor made.
    pub fn stop_workers(&self) {
        for a in self.owned.iter().skip(1) {
            a.stop();
        }
    }

    /// Stops every arbiter this supervisor made, the processor's included.
    pub fn stop_all(&self) {
        for a in &self.owned {
            a.stop();
        }
    }
}
