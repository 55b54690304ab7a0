//! A singleton node's seat in its host: the lease it campaigns for, holds
//! across restarts, and gives up.
//!
//! The host asks the seat before each incarnation runs (`claim`): a tenure
//! still standing is kept (a singleton's policy applies within a tenure,
//! restarts and backoff included); otherwise the node is reported STANDBY
//! and campaigns until it wins the lease or is cancelled. While the
//! runnable runs, [`Watch`] stops it when the tenure falls: cancelled at
//! once, dropped at the fence whatever its stop mode, and never polled
//! again once the fence has passed (a replica that was paused past it
//! resumes without running the work a single time more).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::channel::oneshot;
use tokio_util::sync::CancellationToken;

use crate::api::context::Link;
use crate::api::lease::{Attempt, Lessor, Tenure};
use crate::api::wire::inbox::{LeaseChange, LeaseMsg};
use crate::api::wire::settle::Starting;
use crate::model::lease::Loss;
use crate::model::tree::NodeKey;

/// What a singleton's host keeps between incarnations.
#[derive(Debug)]
pub(crate) struct Seat {
    pub lessor: Arc<dyn Lessor>,
    /// The tree's top token: cancelled once the supervisor stops, when an
    /// exit gives the lease up (a rolling deploy hands over at once).
    pub top: CancellationToken,
    /// The tenure won, while it stands.
    pub tenure: Option<Tenure>,
}

impl Seat {
    /// Gives a held tenure up, in the background: the host is stopping
    /// (its node left the tree). A lease not released expires on its own.
    pub fn abandon(&mut self, name: Arc<str>) {
        if let Some(tenure) = self.tenure.take() {
            if tenure.doomed().is_none() {
                actix_rt::spawn(self.lessor.release(name, tenure.token()));
            }
        }
    }
}

/// Which incarnation a campaign is for, and where to report.
pub(crate) struct Campaign {
    pub lessor: Arc<dyn Lessor>,
    pub name: Arc<str>,
    pub token: CancellationToken,
    pub link: Link,
    pub node: NodeKey,
    pub incarnation: u64,
}

impl Campaign {
    fn tell(&self, change: LeaseChange) {
        self.link.lease(LeaseMsg {
            node: self.node,
            incarnation: self.incarnation,
            change,
        });
    }

    /// Gives `tenure` up and says so.
    pub async fn release(&self, tenure: Tenure, why: &'static str) {
        self.lessor.release(self.name.clone(), tenure.token()).await;
        self.tell(LeaseChange::Released {
            token: tenure.token(),
            why,
        });
    }

    /// The tenure to run under: `held` if it still stands, else one won
    /// now. `None`: cancelled first. Entering STANDBY releases the start's
    /// settle guard and answers whoever waits for its first poll (the
    /// start is acknowledged: the node is in the tree, campaigning).
    pub async fn claim(
        &self,
        held: Option<Tenure>,
        starting: &mut Option<Starting>,
        polled: &mut Option<oneshot::Sender<()>>,
    ) -> Option<Tenure> {
        if let Some(t) = held.filter(|t| t.doomed().is_none()) {
            return Some(t);
        }
        let mut told: Option<Standby> = None;
        loop {
            let attempt = tokio::select! {
                biased;
                _ = self.token.cancelled() => return None,
                a = self.lessor.attempt(self.name.clone()) => a,
            };
            let standby = match attempt {
                Attempt::Won(t) if t.doomed().is_none() && !self.token.is_cancelled() => {
                    self.tell(LeaseChange::Acquired {
                        token: t.token(),
                        holder: self.lessor.member().to_string(),
                    });
                    return Some(t);
                }
                Attempt::Won(t) if self.token.is_cancelled() => {
                    // Won in the same instant as the stop: give it back.
                    self.lessor.release(self.name.clone(), t.token()).await;
                    return None;
                }
                Attempt::Won(_) => (None, Some("the session fell as the lease was won".into())),
                Attempt::HeldBy { holder, token } => (Some((holder, token)), None),
                Attempt::Failed(why) => (None, Some(why)),
            };
            let held_with = standby.0.as_ref().map(|h| h.1);
            if told.as_ref() != Some(&standby) {
                *starting = None;
                if let Some(polled) = polled.take() {
                    let _ = polled.send(());
                }
                let (holder, failed) = standby.clone();
                self.tell(LeaseChange::Standby { holder, failed });
                told = Some(standby);
            }
            let wait = match held_with {
                Some(token) => self.lessor.wait_turn(self.name.clone(), token),
                None => Box::pin(tokio::time::sleep(self.lessor.retry_every())),
            };
            tokio::select! {
                biased;
                _ = self.token.cancelled() => return None,
                _ = wait => {}
            }
        }
    }
}

/// What a standby node last told: who holds its lease (and with which
/// token), or why the store could not say.
type Standby = (Option<(String, u64)>, Option<String>);

/// What stops a singleton's incarnation when its tenure falls.
pub(crate) struct Watch {
    pub tenure: Tenure,
    /// Set once the tenure was found doomed (the token is cancelled then).
    pub lost: Rc<Cell<Option<Loss>>>,
}

impl Watch {
    pub fn new(tenure: Tenure) -> Watch {
        Watch {
            tenure,
            lost: Rc::new(Cell::new(None)),
        }
    }

    /// Ready once the fence has passed: checked before the runnable is
    /// polled, it wakes nobody by itself (the fence timer of
    /// [`fenced`](Tenure::fenced) in the stop deadline does).
    pub fn past_fence(&self) -> FenceCheck<'_> {
        FenceCheck(self)
    }

    /// Never resolves: cancels `token` once the tenure is doomed, and
    /// records why.
    pub async fn cancel_when_doomed(&self, token: &CancellationToken) {
        let why = self.tenure.doomed_at().await;
        self.lost.set(Some(why));
        token.cancel();
        std::future::pending::<()>().await
    }
}

/// See [`Watch::past_fence`].
pub(crate) struct FenceCheck<'a>(&'a Watch);

impl Future for FenceCheck<'_> {
    type Output = Loss;

    fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Loss> {
        match self.0.tenure.gone() {
            Some(why) => {
                self.0.lost.set(Some(self.0.lost.get().unwrap_or(why)));
                Poll::Ready(why)
            }
            None => Poll::Pending,
        }
    }
}
