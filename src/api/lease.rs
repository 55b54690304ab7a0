//! What a singleton node's host needs of a fleet, without naming it: one
//! attempt at a lease ([`Lessor`]), and a won lease ([`Tenure`]) the host
//! and the incarnation's context watch.
//!
//! The fleet (`src/fleet/`, on top) implements [`Lessor`]; a
//! [`Child::singleton`](crate::Child::singleton) carries it to the node's
//! host, which campaigns, runs the runnable while the tenure stands and
//! stops it when it falls (see `runtime/host.rs`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::model::lease::{Loss, Standing};

/// A fleet, as a singleton's host sees it.
pub(crate) trait Lessor: Send + Sync + fmt::Debug + 'static {
    /// This replica's member id.
    fn member(&self) -> &str;

    /// One attempt at the lease named `name` (the node's DN).
    fn attempt(&self, name: Arc<str>) -> BoxFuture<'static, Attempt>;

    /// How long to wait at most after an attempt that did not win.
    fn retry_every(&self) -> Duration;

    /// Waits after an attempt found the lease held with `token`: until it
    /// may be free, or [`retry_every`](Self::retry_every).
    fn wait_turn(&self, name: Arc<str>, token: u64) -> BoxFuture<'static, ()>;

    /// Gives the tenure up: resolves once the store has deleted the lease,
    /// or could not be reached in time (it then expires on its own).
    fn release(&self, name: Arc<str>, token: u64) -> BoxFuture<'static, ()>;
}

/// How an attempt at a lease went.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// This replica holds it now.
    Won(Tenure),
    /// Another replica (or this one's previous session) holds it.
    HeldBy { holder: String, token: u64 },
    /// The store could not be asked, or this replica is not in the fleet
    /// right now; why.
    Failed(String),
}

/// A lease this replica won: its fencing token, and the standing of the
/// session it belongs to (renewals move its fence; a loss is final).
#[derive(Clone, Debug)]
pub(crate) struct Tenure {
    token: u64,
    standing: watch::Receiver<Standing>,
}

impl Tenure {
    pub fn new(token: u64, standing: watch::Receiver<Standing>) -> Tenure {
        Tenure { token, standing }
    }

    /// The fencing token this tenure was granted with.
    pub fn token(&self) -> u64 {
        self.token
    }

    fn now_standing(&self) -> Standing {
        *self.standing.borrow()
    }

    /// `Some` once the work must not be polled again (see [`Standing::gone`]).
    pub fn gone(&self) -> Option<Loss> {
        self.now_standing().gone(Instant::now())
    }

    /// `Some` once the work must be cancelled (see [`Standing::doomed`]).
    pub fn doomed(&self) -> Option<Loss> {
        self.now_standing().doomed(Instant::now())
    }

    /// Resolves once the work must be cancelled: the session was lost, or
    /// it was not confirmed by its cancel point. Times itself too: a
    /// keeper that cannot run (its thread stalled) does not keep a tenure
    /// alive.
    pub async fn doomed_at(&self) -> Loss {
        let mut standing = self.standing.clone();
        loop {
            let now = *standing.borrow_and_update();
            if let Some(why) = now.doomed(Instant::now()) {
                return why;
            }
            tokio::select! {
                changed = standing.changed() => {
                    if changed.is_err() {
                        // The keeper is gone: nothing renews any more, the
                        // timers alone decide.
                        tokio::time::sleep_until(now.cancel_at).await;
                    }
                }
                _ = tokio::time::sleep_until(now.cancel_at) => {}
            }
        }
    }

    /// Resolves at the fence, however the fence moves meanwhile.
    pub async fn fenced(&self) -> Loss {
        let mut standing = self.standing.clone();
        loop {
            let now = *standing.borrow_and_update();
            if let Some(why) = now.gone(Instant::now()) {
                return why;
            }
            tokio::select! {
                changed = standing.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep_until(now.fence).await;
                    }
                }
                _ = tokio::time::sleep_until(now.fence) => {}
            }
        }
    }
}

/// A future that is not polled once its tenure is gone: it ends with the
/// loss instead. Checked before every poll, so that a replica that was
/// paused past its fence never runs the work again, whatever woke it.
pub(crate) struct Fenced<F> {
    pub inner: F,
    pub tenure: Tenure,
}

impl<F: Future + Unpin> Future for Fenced<F> {
    type Output = Result<F::Output, Loss>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        if let Some(why) = self.tenure.gone() {
            return Poll::Ready(Err(why));
        }
        Pin::new(&mut self.inner).poll(cx).map(Ok)
    }
}
