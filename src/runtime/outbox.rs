//! Where the processor's decisions leave for the workers: the node hosts'
//! addresses, and what handling one message decided, sent as one batch per
//! worker.
//!
//! A batch creates the new hosts on their worker, then hands each start to
//! its host there: one wake-up of the worker's thread instead of one per
//! host and one per start (each wake-up of a parked thread is a system
//! call). A lone start goes straight to its host's mailbox, and on the
//! processor's own arbiter everything is delivered at once.

use std::sync::Arc;

use actix::dev::channel::{self, AddressReceiver};
use actix::Addr;
use slotmap::SecondaryMap;

use crate::api::wire::protocol::Start;
use crate::model::tree::NodeKey;
use crate::runtime::host::Host;
use crate::runtime::workers::Workers;

/// The mailbox capacity of a host (actix's default; the processor's sends
/// do not wait for room).
const MAILBOX: usize = 16;

/// The hosts by node, and the batches being gathered for the workers.
#[derive(Default)]
pub(crate) struct Outbox {
    by_node: SecondaryMap<NodeKey, Placed>,
    batches: Vec<Batch>,
}

/// A node's host, and the worker it runs on. The address is shared, not
/// cloned, into the batches: every clone of an actix address allocates twice.
struct Placed {
    addr: Arc<Addr<Host>>,
    worker: usize,
}

/// A worker's share of what handling one message decided.
#[derive(Default)]
struct Batch {
    /// New hosts: the receiving end of the address already handed out.
    births: Vec<(AddressReceiver<Host>, Host)>,
    starts: Vec<(Arc<Addr<Host>>, Start)>,
}

impl Outbox {
    /// Gives `node` a host on `worker`, created when the batch is sent:
    /// the address exists now, so starts can be queued for it at once.
    pub fn create(&mut self, node: NodeKey, host: Host, worker: usize) {
        let (tx, rx) = channel::channel(MAILBOX);
        self.batch(worker).births.push((rx, host));
        let addr = Arc::new(Addr::new(tx));
        self.by_node.insert(node, Placed { addr, worker });
    }

    pub fn contains(&self, node: NodeKey) -> bool {
        self.by_node.contains_key(node)
    }

    /// Queues a start for `node`'s host (nothing if it has none).
    pub fn start(&mut self, node: NodeKey, start: Start) {
        if let Some(host) = self.by_node.get(node) {
            let (addr, worker) = (host.addr.clone(), host.worker);
            self.batch(worker).starts.push((addr, start));
        }
    }

    /// Drops `node`'s address: once no batch holds it either, the host
    /// stops and drops its runnable.
    pub fn remove(&mut self, node: NodeKey) {
        self.by_node.remove(node);
    }

    pub fn clear(&mut self) {
        self.by_node.clear();
    }

    /// Sends what was queued, one batch per worker.
    pub fn flush(&mut self, workers: &Workers) {
        let separate = workers.separate();
        for (i, out) in self.batches.iter_mut().enumerate() {
            if out.is_empty() {
                continue; // most workers, most of the time: keep the capacity
            }
            let lone_start = out.births.is_empty() && out.starts.len() == 1;
            match workers.handle(i) {
                Some(worker) if separate && !lone_start => {
                    let batch = std::mem::take(out);
                    worker.spawn_fn(move || batch.deliver());
                }
                // On the processor's own arbiter, or a lone start: at once.
                _ => std::mem::take(out).deliver(),
            }
        }
    }

    fn batch(&mut self, worker: usize) -> &mut Batch {
        if self.batches.len() <= worker {
            self.batches.resize_with(worker + 1, Batch::default);
        }
        &mut self.batches[worker]
    }
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.births.is_empty() && self.starts.is_empty()
    }

    /// Creates the hosts on the calling thread's arbiter, then sends the
    /// starts: a host created in this batch gets its start after it exists.
    fn deliver(self) {
        for (rx, host) in self.births {
            actix_rt::spawn(actix::Context::with_receiver(rx).into_future(host));
        }
        for (host, start) in self.starts {
            host.do_send(start);
        }
    }
}
