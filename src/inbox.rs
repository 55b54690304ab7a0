//! The processor's inbox for the tree's reports: exits, begun starts,
//! signals and pids.
//!
//! These arrive in bursts (a group of 50,000 reports 50,000 exits at once)
//! and need no reply, so they bypass the actor's mailbox: a sender appends to
//! one vector under a lock, and only the sender that finds it empty wakes the
//! processor. The processor takes the whole batch at once, reads the clock
//! once for it and runs the restart sweep once after it. Steady state, a
//! report costs no allocation (the two vectors are swapped, not freed).
//!
//! Ordering: reports from one sender are handled in the order sent. The
//! processor drains the inbox before it handles any request from its mailbox,
//! so a request sees every report its sender made before it.

use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use futures::Stream;

use crate::protocol::{Began, Exited, Pid, SignalMsg};

/// A report from the tree's side.
pub(crate) enum Report {
    Exited(Exited),
    Began(Began),
    Signal(SignalMsg),
    Pid(Pid),
}

#[derive(Default)]
pub(crate) struct Inbox {
    queue: Mutex<Queue>,
    waker: AtomicWaker,
}

#[derive(Default)]
struct Queue {
    reports: Vec<Report>,
    /// The processor has finished: reports are dropped, not kept.
    closed: bool,
}

impl Inbox {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a report; wakes the processor if the inbox was empty.
    pub fn push(&self, report: Report) {
        let was_empty = {
            let mut q = self.queue();
            if q.closed {
                return;
            }
            q.reports.push(report);
            q.reports.len() == 1
        };
        if was_empty {
            self.waker.wake();
        }
    }

    /// Swaps `into` (empty, with its capacity) for the pending reports.
    pub fn take(&self, into: &mut Vec<Report>) {
        debug_assert!(into.is_empty());
        std::mem::swap(&mut self.queue().reports, into);
    }

    /// Drops what is pending and refuses later reports.
    pub fn close(&self) {
        let dropped = {
            let mut q = self.queue();
            q.closed = true;
            std::mem::take(&mut q.reports)
        };
        drop(dropped); // outside the lock: reports own contexts and tokens
    }

    /// A stream that yields once whenever reports are pending (the
    /// processor then [`take`](Self::take)s them), and ends once closed.
    pub fn doorbell(self: &std::sync::Arc<Self>) -> Doorbell {
        Doorbell(self.clone())
    }
}

pub(crate) struct Doorbell(std::sync::Arc<Inbox>);

impl Stream for Doorbell {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        // Registered before looking, so that a push after the look wakes us.
        self.0.waker.register(cx.waker());
        let q = self.0.queue();
        if q.closed {
            Poll::Ready(None)
        } else if q.reports.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(Some(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::NodeKey;
    use futures::StreamExt;
    use std::sync::Arc;

    fn pid(n: u32) -> Report {
        Report::Pid(Pid {
            node: NodeKey::default(),
            incarnation: n as u64,
            pid: Some(n),
        })
    }

    #[test]
    fn batches_in_order_and_ends_when_closed() {
        futures::executor::block_on(async {
            let inbox = Arc::new(Inbox::default());
            let mut bell = inbox.doorbell();
            for n in 0..3 {
                inbox.push(pid(n));
            }
            assert_eq!(bell.next().await, Some(()));
            let mut batch = Vec::new();
            inbox.take(&mut batch);
            let order: Vec<u64> = batch
                .iter()
                .map(|r| match r {
                    Report::Pid(p) => p.incarnation,
                    _ => u64::MAX,
                })
                .collect();
            assert_eq!(order, [0, 1, 2]);
            inbox.close();
            inbox.push(pid(9));
            assert_eq!(bell.next().await, None, "closed: the stream ends");
            batch.clear();
            inbox.take(&mut batch);
            assert!(batch.is_empty(), "a closed inbox keeps nothing");
        });
    }
}
