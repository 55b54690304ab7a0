//! The stall watch: finds a runnable whose future does not yield, and so
//! keeps its worker thread (and every node on it) from running.
//!
//! Each worker thread has a [`Beat`]: while a node's future is polled it
//! holds the node and when the poll began, read from a coarse clock that
//! the watchdog advances. That is the whole cost on the poll path: a load and
//! two stores before, one store after. The watchdog runs on the processor's
//! own arbiter, so a blocked worker cannot hold it up: it flags a poll that
//! has run past the threshold, and clears the flag once the worker moves.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use slotmap::{Key, KeyData};
use tokio::time::Instant;

use crate::model::tree::NodeKey;

/// One worker thread's poll record.
#[derive(Debug, Default)]
pub(crate) struct Beat {
    /// When the current poll began, in coarse ms + 1; 0 while idle.
    since: AtomicU64,
    /// The node being polled (its key's FFI form).
    node: AtomicU64,
}

/// The watch shared by the workers and the watchdog.
#[derive(Debug)]
pub(crate) struct Watch {
    pub threshold: Duration,
    epoch: Instant,
    /// Coarse ms since `epoch`, advanced by the watchdog.
    clock: AtomicU64,
    pub beats: Vec<Arc<Beat>>,
}

thread_local! {
    /// This worker thread's beat and the clock it reads.
    static BEAT: RefCell<Option<(Arc<Beat>, Arc<Watch>)>> = const { RefCell::new(None) };
}

impl Watch {
    pub fn new(threshold: Duration, workers: usize) -> Arc<Watch> {
        Arc::new(Watch {
            threshold,
            epoch: Instant::now(),
            clock: AtomicU64::new(0),
            beats: (0..workers).map(|_| Arc::default()).collect(),
        })
    }

    /// Marks the calling thread as worker `i` (run on that worker).
    pub fn register(self: &Arc<Self>, i: usize) {
        if let Some(beat) = self.beats.get(i) {
            let entry = (beat.clone(), self.clone());
            BEAT.with(|b| *b.borrow_mut() = Some(entry));
        }
    }

    /// Advances the coarse clock; returns it.
    pub fn advance_clock(&self) -> u64 {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.clock.store(ms, Ordering::Relaxed);
        ms
    }

    /// The node worker `i` has been polling for longer than the threshold,
    /// and for how long, as of `now` (from [`advance_clock`](Self::advance_clock)).
    pub fn stalled(&self, i: usize, now: u64) -> Option<(NodeKey, Duration)> {
        let beat = self.beats.get(i)?;
        let since = beat.since.load(Ordering::Relaxed);
        if since == 0 {
            return None;
        }
        let ran = Duration::from_millis(now.saturating_sub(since - 1));
        let node = NodeKey::from(KeyData::from_ffi(beat.node.load(Ordering::Relaxed)));
        (ran > self.threshold).then_some((node, ran))
    }
}

/// What the watch has flagged: per worker, the node that blocks it and
/// since when. The one record of stalls: a snapshot reads it too.
#[derive(Debug, Default)]
pub(crate) struct Stalls {
    blocked_by: Vec<Option<(NodeKey, Instant)>>,
}

/// A worker's stall began or ended: what the processor tells the workers
/// (skip it for new nodes, or not) and says in its log.
pub(crate) struct Flip {
    pub worker: usize,
    pub blocked: bool,
    /// The node that blocked the worker.
    pub node: NodeKey,
    /// `None` when the node has left the tree meanwhile.
    pub message: Option<String>,
}

impl Stalls {
    pub fn new(workers: usize) -> Stalls {
        Stalls {
            blocked_by: vec![None; workers],
        }
    }

    /// Per worker: the node the watch flagged on it, and since when.
    pub fn blocked_by(&self) -> &[Option<(NodeKey, Instant)>] {
        &self.blocked_by
    }

    /// Reads every worker's beat: flags a node (still in the tree: `dn_of`
    /// names it) that has blocked its worker past the threshold, and clears
    /// the flag once the worker moves. Returns the flips, oldest first.
    pub fn update<'a>(
        &mut self,
        watch: &Watch,
        dn_of: impl Fn(NodeKey) -> Option<&'a str>,
    ) -> Vec<Flip> {
        let now = watch.advance_clock();
        let mut flips = Vec::new();
        for (i, slot) in self.blocked_by.iter_mut().enumerate() {
            let stalled = watch.stalled(i, now).filter(|(k, _)| dn_of(*k).is_some());
            let before = slot.map(|(k, _)| k);
            if before.is_some() && before == stalled.map(|(k, _)| k) {
                continue; // still the same
            }
            *slot = stalled.map(|(k, ran)| (k, Instant::now() - ran));
            if let Some(k) = before {
                flips.push(Flip {
                    worker: i,
                    blocked: false,
                    node: k,
                    message: dn_of(k).map(|dn| format!("{dn} lets worker {i} run again")),
                });
            }
            if let Some((k, ran)) = stalled {
                flips.push(Flip {
                    worker: i,
                    blocked: true,
                    node: k,
                    message: dn_of(k).map(|dn| format!(
                        "{dn} has blocked worker {i} for {:.1} s (its future does not yield); new nodes go to other workers",
                        ran.as_secs_f64()
                    )),
                });
            }
        }
        flips
    }
}

/// Polls `inner` with this worker's beat set to `node`.
pub(crate) struct Watched<F> {
    pub inner: F,
    pub node: NodeKey,
}

impl<F: Future + Unpin> Future for Watched<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let node = self.node.data().as_ffi();
        let watched = BEAT.with(|b| match &*b.borrow() {
            Some((beat, watch)) => {
                beat.node.store(node, Ordering::Relaxed);
                let now = watch.clock.load(Ordering::Relaxed);
                beat.since.store(now + 1, Ordering::Relaxed);
                true
            }
            None => false,
        });
        // Cleared even if the poll panics (the host catches the panic).
        struct Idle(bool);
        impl Drop for Idle {
            fn drop(&mut self) {
                if self.0 {
                    BEAT.with(|b| {
                        if let Some((beat, _)) = &*b.borrow() {
                            beat.since.store(0, Ordering::Relaxed);
                        }
                    });
                }
            }
        }
        let _idle = Idle(watched);
        let _inside = crate::api::panics::Inside::enter();
        Pin::new(&mut self.inner).poll(cx)
    }
}
