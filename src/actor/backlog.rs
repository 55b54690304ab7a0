//! An actor node's backlog, as its address sees it: every message sent
//! through [`SupervisedAddr`](super::SupervisedAddr) and not handled yet
//! (queued, or being handled), when it was sent and of which type.
//!
//! actix does not tell a mailbox's length, so the address counts: a `send`
//! leaves the backlog when its answer arrives (or is lost, or its caller
//! gives up: actix then skips it); a `do_send` is sent as a request whose
//! answer nobody reads but the node's own runnable, which awaits these
//! answers beside the actor ([`Backlog::poll_reap`]) and takes each one out.
//! An incarnation's end takes out what it left unhandled: its mailbox went
//! with it. From the backlog come the node's depth for snapshots, the
//! queue alarm (with its hysteresis, `model/queues.rs`), the spread of
//! depths for Prometheus, and the heartbeat's view of an actor's progress.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::task::AtomicWaker;
use tokio::time::Instant;

use crate::api::context::Link;
use crate::api::wire::inbox::{QueueMsg, QueueNews};
use crate::model::queues::{bucket, Depths, QueueAlarm};
use crate::model::tree::NodeKey;

/// How many answers one poll of the reaper takes out before it yields.
const REAP_BUDGET: usize = 1024;

#[derive(Default)]
pub(super) struct Backlog {
    state: Mutex<State>,
    /// The answers of `do_send`s, awaited by the node's runnable. Made on
    /// the first `do_send`: most actor nodes never need it.
    detached: Mutex<Option<FuturesUnordered<BoxFuture<'static, u64>>>>,
    /// The runnable's reaper, woken when a `do_send` adds an answer to await.
    reaper: AtomicWaker,
}

#[derive(Default)]
struct State {
    next: u64,
    /// What waits, oldest first.
    pending: BTreeMap<u64, Pending>,
    /// When a message last left, for a heartbeat's view of progress
    /// (read off the clock only for a node with a heartbeat).
    last_answer: Option<Instant>,
    timed: bool,
    /// Set once the node runs: where news goes.
    watch: Option<Watch>,
    /// Its bucket in `Depths`, and the part of the sum it adds to.
    bucket: usize,
    part: usize,
    alarm_on: bool,
}

#[derive(Clone, Copy)]
struct Pending {
    sent: Instant,
    what: &'static str,
    /// A `do_send`'s, whose answer the reaper awaits.
    detached: bool,
}

/// Where a running node's backlog news goes.
pub(super) struct Watch {
    pub link: Link,
    pub node: NodeKey,
    pub alarm: Option<QueueAlarm>,
    pub depths: Arc<Depths>,
    /// The node has a heartbeat, which reads the backlog's progress.
    pub heartbeat: bool,
}

impl Backlog {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node runs (again): news goes to `watch`. The first time, the
    /// node joins the spread of depths.
    pub fn attach(&self, watch: Watch) {
        let mut s = self.state();
        if s.watch.is_none() {
            s.part = watch.depths.enter(s.bucket, s.pending.len());
        }
        s.timed = watch.heartbeat;
        s.watch = Some(watch);
        s.changed();
    }

    /// The node has left the tree: it leaves the spread of depths.
    pub fn detach(&self) {
        let mut s = self.state();
        if let Some(w) = s.watch.take() {
            w.depths.leave(s.part, s.bucket, s.pending.len());
        }
    }

    /// A send of an `M` begins; the returned guard takes it out (answered,
    /// lost or abandoned), however the send ends.
    pub fn begin<M>(self: &Arc<Self>) -> Sending {
        let id = self.state().add(std::any::type_name::<M>(), false);
        Sending {
            backlog: self.clone(),
            id,
        }
    }

    /// A `do_send` of an `M` whose answer `answered` resolves: it waits
    /// until the node's reaper has seen it resolve.
    pub fn detach_send<M, F>(&self, answered: F)
    where
        F: Future + Send + 'static,
    {
        let id = self.state().add(std::any::type_name::<M>(), true);
        let mut detached = self.detached.lock().unwrap_or_else(PoisonError::into_inner);
        let answers = detached.get_or_insert_with(FuturesUnordered::new);
        // Only a reaper with nothing to await needs waking: otherwise an
        // earlier answer (first in, first out) wakes it, and it then polls
        // this one too.
        let idle = answers.is_empty();
        answers.push(Box::pin(async move {
            let _ = answered.await;
            id
        }));
        drop(detached);
        if idle {
            self.reaper.wake();
        }
    }

    /// The reaper: takes out the `do_send`s whose answers have come (at
    /// most [`REAP_BUDGET`] per poll). Never ready; the node's runnable
    /// polls it beside its actor.
    pub fn poll_reap(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.reaper.register(cx.waker());
        let mut done = Vec::new();
        {
            let mut detached = self.detached.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(answers) = detached.as_mut() else {
                return Poll::Pending;
            };
            while done.len() < REAP_BUDGET {
                match answers.poll_next_unpin(cx) {
                    Poll::Ready(Some(id)) => done.push(id),
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
        }
        if done.len() == REAP_BUDGET {
            cx.waker().wake_by_ref();
        }
        if !done.is_empty() {
            let mut s = self.state();
            for id in done {
                s.remove(id);
            }
            s.changed();
        }
        Poll::Pending
    }

    /// An incarnation ended: its mailbox went with it, and so do the
    /// `do_send`s it had not handled. (Unanswered `send`s leave as their
    /// callers learn that the message was lost.)
    pub fn incarnation_ended(&self) {
        let answers = self
            .detached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut s = self.state();
        let gone: Vec<u64> = s
            .pending
            .iter()
            .filter(|(_, p)| p.detached)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            s.remove(id);
        }
        s.changed();
        drop(s);
        drop(answers);
    }

    /// How many messages wait, and when the oldest was sent.
    pub fn depth(&self) -> (usize, Option<Instant>) {
        let s = self.state();
        (s.pending.len(), s.pending.values().next().map(|p| p.sent))
    }

    /// When the actor last showed progress, and what it is handling: idle
    /// (nothing waiting) is progress now; otherwise the later of the oldest
    /// waiting message's send and the last answer, and that message's type
    /// (the mailbox is first in, first out).
    pub fn progress(&self) -> (Instant, Option<&'static str>) {
        let s = self.state();
        match s.pending.values().next() {
            None => (Instant::now(), None),
            Some(p) => (
                s.last_answer.map_or(p.sent, |a| a.max(p.sent)),
                Some(p.what),
            ),
        }
    }
}

impl State {
    fn add(&mut self, what: &'static str, detached: bool) -> u64 {
        let id = self.next;
        self.next += 1;
        let sent = Instant::now();
        self.pending.insert(
            id,
            Pending {
                sent,
                what,
                detached,
            },
        );
        if let Some(w) = &self.watch {
            w.depths.step(self.part, true);
        }
        self.changed();
        id
    }

    fn remove(&mut self, id: u64) {
        if self.pending.remove(&id).is_some() {
            if self.timed {
                self.last_answer = Some(Instant::now());
            }
            if let Some(w) = &self.watch {
                w.depths.step(self.part, false);
            }
        }
    }

    /// After the depth changed: moves the node between buckets, and flips
    /// the alarm where its thresholds say. Told under the lock, so that
    /// the processor hears the flips in the order they happened.
    fn changed(&mut self) {
        let Some(w) = &self.watch else { return };
        let depth = self.pending.len();
        let b = bucket(depth);
        if b != self.bucket {
            w.depths.moved(self.bucket, b);
            self.bucket = b;
        }
        let on = w.alarm.is_some_and(|a| a.next(self.alarm_on, depth));
        if on != self.alarm_on {
            self.alarm_on = on;
            w.link.queue(QueueMsg {
                node: w.node,
                news: QueueNews::Alarm { depth, on },
            });
        }
    }
}

/// One `send` under way.
pub(super) struct Sending {
    backlog: Arc<Backlog>,
    id: u64,
}

impl Drop for Sending {
    fn drop(&mut self) {
        let mut s = self.backlog.state();
        s.remove(self.id);
        s.changed();
    }
}
