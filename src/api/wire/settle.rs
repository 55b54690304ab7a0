//! Settling: when [`Supervisor::wait_settled`](crate::Supervisor::wait_settled)
//! may resolve.
//!
//! The tree is settled when the processor has seen no change for the settle
//! window *and* nothing is in flight: every started runnable has been polled
//! at least once, and every `run_group` caller has resumed after the
//! processor's answer. Those are the points where a runnable signals and
//! starts children, so a worker thread that is slow to reach them cannot make
//! the tree look settled early. Each of them holds a [`Starting`] guard until
//! it has happened. Pending backoff timers do not count.
//!
//! A guard dropped on a worker is released only after the reports that
//! worker holds have gone out, and the processor reads the guards before it
//! drains its inbox: so when it finds no guard out, it also finds every
//! report made under one (a signal, an exit), and the tree's last change is
//! dated right.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use tokio::time::Instant;

/// Held by a start whose runnable has not been polled yet, or by a
/// `run_group` caller that has not resumed after the processor's answer.
pub(crate) struct Starting(Option<Arc<AtomicUsize>>);

impl Drop for Starting {
    /// Released after what this thread holds for the processor has gone
    /// out (see `inbox::defer_release`).
    fn drop(&mut self) {
        if let Some(counter) = self.0.take() {
            crate::api::wire::inbox::defer_release(counter);
        }
    }
}

/// The processor's settle bookkeeping: the guards out, the last change, and
/// who waits.
pub(crate) struct Settle {
    starting: Arc<AtomicUsize>,
    last_change: Instant,
    window: Duration,
    waiters: Vec<oneshot::Sender<()>>,
    /// A timer to look again is pending.
    timer: bool,
}

impl Settle {
    pub fn new(window: Duration) -> Settle {
        Settle {
            starting: Arc::new(AtomicUsize::new(0)),
            last_change: Instant::now(),
            window,
            waiters: Vec::new(),
            timer: false,
        }
    }

    /// A guard that keeps the tree unsettled until dropped.
    pub fn guard(&self) -> Starting {
        self.starting.fetch_add(1, Ordering::AcqRel);
        Starting(Some(self.starting.clone()))
    }

    /// The tree changed at `at`.
    pub fn changed(&mut self, at: Instant) {
        self.last_change = at;
    }

    /// `reply` is answered once the tree is settled.
    pub fn wait(&mut self, reply: oneshot::Sender<()>) {
        self.waiters.push(reply);
    }

    /// No guard is out. Read *before* draining the inbox: a guard is
    /// released only after the reports made under it were delivered, so
    /// the drain that follows sees them.
    pub fn unguarded(&self) -> bool {
        self.starting.load(Ordering::Acquire) == 0
    }

    /// Answers the waiters if the tree is settled (`unguarded` as read before
    /// the last drain of the inbox). Otherwise returns when to look again,
    /// unless a look is already due or nobody waits: the caller then calls
    /// [`timer_fired`](Self::timer_fired) and this again.
    pub fn poll(&mut self, unguarded: bool) -> Option<Duration> {
        if self.waiters.is_empty() {
            return None;
        }
        if unguarded && self.last_change.elapsed() >= self.window {
            for w in self.waiters.drain(..) {
                let _ = w.send(());
            }
            return None;
        }
        if self.timer {
            return None;
        }
        self.timer = true;
        let wait = self.window.saturating_sub(self.last_change.elapsed());
        Some(wait.max(Duration::from_millis(1)))
    }

    /// The timer [`poll`](Self::poll) asked for has fired.
    pub fn timer_fired(&mut self) {
        self.timer = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settled needs both a quiet window and no guard out.
    #[test]
    fn settled_waits_for_the_window_and_every_guard() {
        let mut settle = Settle::new(Duration::ZERO);
        let guard = settle.guard();
        let (tx, mut rx) = oneshot::channel();
        settle.wait(tx);
        assert!(!settle.unguarded());
        assert!(
            settle.poll(settle.unguarded()).is_some(),
            "a guard is out: look again later"
        );
        assert!(
            settle.poll(settle.unguarded()).is_none(),
            "one timer at a time"
        );
        assert_eq!(rx.try_recv(), Ok(None));
        drop(guard);
        settle.timer_fired();
        assert!(settle.poll(settle.unguarded()).is_none());
        assert_eq!(rx.try_recv(), Ok(Some(())), "answered once settled");
    }

    /// On a worker, a guard dropped after a report is released only once
    /// that report has gone out: whoever sees no guard can see the report.
    #[test]
    fn a_guard_dropped_on_a_worker_is_released_after_its_reports() {
        use crate::api::wire::inbox::{hold_on_this_thread, release_held, Inbox, Pid, Report};
        actix_rt::System::new().block_on(async {
            let inbox = Arc::new(Inbox::default());
            let settle = Settle::new(Duration::ZERO);
            hold_on_this_thread();
            let guard = settle.guard();
            inbox.send(Report::Pid(Pid {
                node: Default::default(),
                incarnation: 1,
                pid: None,
            }));
            drop(guard);
            assert!(!settle.unguarded(), "released after the report, not before");
            release_held();
            assert!(settle.unguarded());
            let mut batch = Vec::new();
            inbox.take(&mut batch);
            assert_eq!(batch.len(), 1, "the report went out first");
            // Nothing held yet: still released by the next release, after
            // whatever the rest of this poll reports.
            drop(settle.guard());
            assert!(!settle.unguarded());
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            assert!(settle.unguarded(), "the scheduled release ran");
        });
    }
}
