//! Where actors run: the processor's arbiter and the pool of worker arbiters
//! that host the nodes.
//!
//! The processor gets an arbiter of its own so that a runnable hogging its
//! thread can delay only the nodes that share that worker, never supervision
//! itself. Groups are placed on the workers round-robin, consecutive members
//! together (see [`PLACEMENT_RUN`]): siblings stop and
//! restart together without a thread crossing between them, and the
//! processor starts them with one message per worker.

use std::sync::Arc;

use actix::{Arbiter, ArbiterHandle};

use crate::runtime::stall::Watch;

/// How many consecutive members of a group share a worker. Siblings on one
/// worker stop and restart together without a thread crossing between them
/// (a death cancels them on the dying member's thread, and the processor
/// starts them with one message); a wide group is still spread over the
/// workers, in runs of this many, so that its runnables use every core.
pub(crate) const PLACEMENT_RUN: usize = 64;

pub(crate) struct Workers {
    handles: Vec<ArbiterHandle>,
    next: usize,
    /// Workers the stall watch found blocked: new nodes go elsewhere.
    blocked: Vec<bool>,
    /// Arbiters this supervisor made (and so stops), the processor's first.
    owned: Vec<Arbiter>,
}

impl Workers {
    /// The processor's arbiter and `count` (at least one) worker arbiters,
    /// each a new thread, registered with the stall watch if there is one.
    pub fn spawn(count: usize, watch: Option<&Arc<Watch>>) -> (ArbiterHandle, Workers) {
        let processor = Arbiter::new();
        let handle = processor.handle();
        let mut owned = vec![processor];
        owned.extend((0..count.max(1)).map(|_| Arbiter::new()));
        let handles: Vec<ArbiterHandle> = owned[1..].iter().map(Arbiter::handle).collect();
        for (i, h) in handles.iter().enumerate() {
            let watch = watch.cloned();
            // Runs before anything placed on the worker later.
            h.spawn_fn(move || {
                crate::api::wire::inbox::hold_on_this_thread();
                if let Some(watch) = watch {
                    watch.register(i);
                }
            });
        }
        (
            handle,
            Workers {
                blocked: vec![false; handles.len()],
                handles,
                next: 0,
                owned,
            },
        )
    }

    /// How many worker arbiters there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Worker `i`'s arbiter.
    pub fn handle(&self, i: usize) -> Option<&ArbiterHandle> {
        self.handles.get(i)
    }

    /// The workers are threads of their own (not the processor's arbiter):
    /// a message to one crosses threads.
    pub fn separate(&self) -> bool {
        !self.owned.is_empty()
    }

    /// Marks worker `i` blocked (or free again).
    pub fn set_blocked(&mut self, i: usize, blocked: bool) {
        if let Some(b) = self.blocked.get_mut(i) {
            *b = blocked;
        }
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
                blocked: vec![false],
                owned: Vec::new(),
            },
        )
    }

    /// The worker for the next group (or run of members): round-robin
    /// over the workers that are not blocked (over all of them when every
    /// one is).
    pub fn pick(&mut self) -> usize {
        let n = self.handles.len();
        let free = (0..n)
            .map(|k| (self.next + k) % n)
            .find(|i| !self.blocked[*i]);
        let i = free.unwrap_or(self.next % n);
        self.next = (i + 1) % n;
        i
    }

    /// The workers of a new group's members, in order: consecutive members
    /// share a worker in runs of [`PLACEMENT_RUN`].
    pub fn place(&mut self, members: usize) -> Vec<usize> {
        let mut worker = 0;
        (0..members)
            .map(|i| {
                if i % PLACEMENT_RUN == 0 {
                    worker = self.pick();
                }
                worker
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_nodes_avoid_blocked_workers() {
        actix_rt::System::new().block_on(async { avoid_blocked() });
    }

    fn avoid_blocked() {
        let (_, mut w) = Workers::current();
        // Three handles to the same arbiter stand for three workers: only
        // the index matters here.
        w.handles = vec![w.handles[0].clone(); 3];
        w.blocked = vec![false; 3];
        let picks =
            |w: &mut Workers, n: usize| -> Vec<usize> { (0..n).map(|_| w.pick()).collect() };
        assert_eq!(picks(&mut w, 4), [0, 1, 2, 0]);
        w.set_blocked(2, true);
        assert_eq!(picks(&mut w, 4), [1, 0, 1, 0]);
        w.set_blocked(0, true);
        w.set_blocked(1, true);
        assert_eq!(picks(&mut w, 2).len(), 2, "all blocked: still placed");
        w.blocked = vec![false; 3];
        w.next = 0;
        let placed = w.place(PLACEMENT_RUN + 1);
        assert_eq!(
            placed[..PLACEMENT_RUN],
            [0; PLACEMENT_RUN],
            "a run shares a worker"
        );
        assert_eq!(
            placed[PLACEMENT_RUN], 1,
            "the next run goes to the next worker"
        );
    }
}
