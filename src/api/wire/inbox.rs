//! The processor's inbox for the tree's reports: exits, begun starts,
//! signals and pids.
//!
//! These arrive in bursts (a group of 50,000 reports 50,000 exits at once)
//! and need no reply, so they bypass the actor's mailbox: a sender appends to
//! one vector under a lock, and only the sender that finds it empty wakes the
//! processor. The processor takes the whole batch at once, reads the clock
//! once for it and runs the restart sweep once after it. A report costs no
//! allocation of its own (the processor's two vectors are swapped, not
//! freed; a worker's held batch is one vector per round).
//!
//! On a worker arbiter, reports are held on the thread until the tasks the
//! worker had queued when the first was held have run (or [`HOLD_LIMIT`]
//! are held), then delivered together: a wide group's members exit and
//! signal one after the other on the same thread, and each delivery that
//! finds the processor idle costs a system call to wake it. A death and the
//! exits of the siblings it took down on that worker also arrive as one
//! batch. A worker that never idles still delivers every round.
//!
//! Ordering: reports from one thread are handled in the order sent. The
//! processor drains the inbox before it handles any request from its mailbox,
//! so a request sees every report its sender made before it (the requests
//! deliver what their thread holds first). A settle guard dropped on a worker
//! that holds reports is released only after them ([`defer_release`]), so
//! `wait_settled` cannot resolve before the processor can see what the
//! guarded poll reported.

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use futures::Stream;

use crate::model::exit::{ExitReport, Hung};
use crate::model::queues::QueueProbe;
use crate::model::records::Signal;
use crate::model::tree::NodeKey;

/// A report from the tree's side.
pub(crate) enum Report {
    Exited(Exited),
    Began(Began),
    Signal(SignalMsg),
    Pid(Pid),
    Addrs(Addrs),
    Lease(LeaseMsg),
    Hung(HungMsg),
    Queue(QueueMsg),
}

/// News of an actor node's backlog, from its address or its runnable.
pub(crate) struct QueueMsg {
    pub node: NodeKey,
    pub news: QueueNews,
}

pub(crate) enum QueueNews {
    /// Where to read its backlog (once per incarnation).
    Probe(QueueProbe),
    /// Its queue alarm went on or off, at `depth` messages.
    Alarm { depth: usize, on: bool },
}

/// A node with a heartbeat missed it: its host is stopping it. Told at
/// once (its exit may be a stop deadline away, or never, with
/// `Shutdown::Infinity`).
pub(crate) struct HungMsg {
    pub node: NodeKey,
    pub incarnation: u64,
    pub hung: Hung,
}

/// A node's incarnation ended. From its host.
pub(crate) struct Exited {
    pub node: NodeKey,
    pub incarnation: u64,
    pub exit: ExitReport,
}

/// A delayed start's backoff is over and its host is starting the runnable.
pub(crate) struct Began {
    pub node: NodeKey,
    pub incarnation: u64,
}

/// A signal the context accepted.
pub(crate) struct SignalMsg {
    pub node: NodeKey,
    pub incarnation: u64,
    pub signal: Signal,
}

/// A process node's pid (`None`: its process ended).
pub(crate) struct Pid {
    pub node: NodeKey,
    pub incarnation: u64,
    pub pid: Option<u32>,
}

/// The addresses a server node listens on (empty: it stopped listening).
pub(crate) struct Addrs {
    pub node: NodeKey,
    pub incarnation: u64,
    pub addrs: Vec<std::net::SocketAddr>,
}

/// A singleton's lease changed, as its host saw it.
pub(crate) struct LeaseMsg {
    pub node: NodeKey,
    pub incarnation: u64,
    pub change: LeaseChange,
}

/// What happened to a singleton's lease.
#[derive(Debug)]
pub(crate) enum LeaseChange {
    /// Campaigning: the lease is held elsewhere (`holder`), or the store
    /// could not be asked (`failed`, why).
    Standby {
        holder: Option<(String, u64)>,
        failed: Option<String>,
    },
    /// This replica (member `holder`) holds it, with this fencing token;
    /// its runnable starts.
    Acquired { token: u64, holder: String },
    /// Given up on purpose (a stop, or a handover after too many restarts).
    Released { token: u64, why: &'static str },
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

    /// Delivers a report: held if this thread holds reports (a worker),
    /// otherwise at once.
    pub fn send(self: &Arc<Self>, report: Report) {
        let kept = HELD.with(|held| {
            // Busy only if a release re-entered us: deliver directly then.
            let Ok(mut held) = held.try_borrow_mut() else {
                return Err(report);
            };
            let Some(held) = held.as_mut() else {
                return Err(report);
            };
            // The first report held schedules the release, behind the
            // tasks this worker has queued already.
            if held.is_empty() && !schedule_release() {
                return Err(report);
            }
            let i = match held.iter().position(|(i, _)| Arc::ptr_eq(i, self)) {
                Some(i) => i,
                None => {
                    held.push((self.clone(), Vec::new()));
                    held.len() - 1
                }
            };
            let batch = &mut held[i].1;
            batch.push(report);
            Ok(batch.len() >= HOLD_LIMIT)
        });
        match kept {
            Err(report) => self.push(report),
            Ok(true) => release_held(),
            Ok(false) => {}
        }
    }

    /// Appends a report; wakes the processor if the inbox was empty.
    fn push(&self, report: Report) {
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

    /// Appends held reports, in order; wakes the processor if the inbox was
    /// empty.
    fn push_all(&self, reports: &mut Vec<Report>) {
        let was_empty = {
            let mut q = self.queue();
            if q.closed {
                reports.clear();
                return;
            }
            let was_empty = q.reports.is_empty();
            q.reports.append(reports);
            was_empty
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
    pub fn doorbell(self: &Arc<Self>) -> Doorbell {
        Doorbell(self.clone())
    }
}

pub(crate) struct Doorbell(Arc<Inbox>);

/// How many reports a worker holds at most for one inbox before it
/// delivers them.
const HOLD_LIMIT: usize = 256;

/// Reports a worker holds, by inbox (one per supervisor using the thread).
type Held = Vec<(Arc<Inbox>, Vec<Report>)>;

thread_local! {
    /// `Some` on a worker arbiter's thread: see the module docs.
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
    /// Settle guards dropped on this worker, released after its held reports.
    static DEFERRED: RefCell<Vec<Arc<AtomicUsize>>> = const { RefCell::new(Vec::new()) };
}

/// Called as a settle guard drops: on a worker, keeps its release (the
/// decrement of `counter`) until the reports this thread holds, and any it
/// makes before the next release, have been delivered. Elsewhere (nothing is
/// held there: reports go out at once) it releases at once.
pub(crate) fn defer_release(counter: Arc<AtomicUsize>) {
    let kept = HELD.with(|held| {
        let Ok(held) = held.try_borrow() else {
            return Err(counter);
        };
        let Some(held) = held.as_ref() else {
            return Err(counter);
        };
        DEFERRED.with(|deferred| {
            let Ok(mut deferred) = deferred.try_borrow_mut() else {
                return Err(counter);
            };
            // A release is scheduled once something is held or deferred.
            if held.is_empty() && deferred.is_empty() && !schedule_release() {
                return Err(counter);
            }
            deferred.push(counter);
            Ok(())
        })
    });
    if let Err(counter) = kept {
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Makes the calling thread, a worker arbiter's, hold reports: see the
/// module docs.
pub(crate) fn hold_on_this_thread() {
    HELD.with(|h| *h.borrow_mut() = Some(Held::new()));
}

/// Spawns [`release_held`] on this thread's arbiter: it runs once the tasks
/// queued before it have run. `false` if there is no arbiter to run it.
fn schedule_release() -> bool {
    actix_rt::Arbiter::try_current().is_some_and(|a| a.spawn(async { release_held() }))
}

/// Delivers every report this thread holds, in order, then releases the
/// settle guards dropped meanwhile.
pub(crate) fn release_held() {
    let batches = HELD.with(|h| h.borrow_mut().as_mut().map(std::mem::take));
    for (inbox, mut reports) in batches.into_iter().flatten() {
        inbox.push_all(&mut reports);
    }
    let deferred = DEFERRED.with(|d| d.try_borrow_mut().map(|mut d| std::mem::take(&mut *d)));
    for counter in deferred.into_iter().flatten() {
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

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

    /// On a worker, a report waits until the tasks queued before it have
    /// run (or until a request releases it), then arrives in order.
    #[test]
    fn a_worker_holds_reports_until_released() {
        actix_rt::System::new().block_on(async {
            let inbox = Arc::new(Inbox::default());
            hold_on_this_thread();
            inbox.send(pid(1));
            inbox.send(pid(2));
            let mut batch = Vec::new();
            inbox.take(&mut batch);
            assert!(batch.is_empty(), "held on the worker");
            release_held();
            inbox.take(&mut batch);
            assert_eq!(batch.len(), 2, "released together");
            batch.clear();
            // Held again, and released by the task scheduled with the first.
            inbox.send(pid(3));
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            inbox.take(&mut batch);
            assert_eq!(batch.len(), 1, "the scheduled release ran");
            HELD.with(|h| *h.borrow_mut() = None);
        });
    }
}
