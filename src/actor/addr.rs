//! [`SupervisedAddr`]: an actor node's address that always reaches its
//! current incarnation, waits while it restarts, and reports a message its
//! incarnation did not answer as lost; and [`SupervisedRecipient`], the same
//! for one message type.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message};
use tokio::sync::watch;

use super::backlog::Backlog;

/// How long [`SupervisedAddr::send`] waits for an incarnation to be up, by default.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a message sent through a [`SupervisedAddr`] address was not answered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryError {
    /// No incarnation was up within the timeout (the node is restarting, or
    /// waiting out its backoff).
    Timeout {
        /// The actor node's DN.
        dn: String,
        /// How long the send waited.
        waited: Duration,
    },
    /// The node has left the tree for good (its parent restarted, or the
    /// supervisor shut down): nothing will answer any more.
    Gone {
        /// The actor node's DN.
        dn: String,
    },
    /// The incarnation that had the message stopped (died, was restarted or
    /// stopped) before answering it. The message may not have been handled.
    Lost {
        /// The actor node's DN.
        dn: String,
    },
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::Timeout { dn, waited } => {
                write!(
                    f,
                    "{dn}: no incarnation of the actor was up within {waited:?}"
                )
            }
            DeliveryError::Gone { dn } => write!(f, "{dn}: the actor node is gone for good"),
            DeliveryError::Lost { dn } => write!(
                f,
                "{dn}: the actor stopped before answering; the message may not have been handled"
            ),
        }
    }
}

impl std::error::Error for DeliveryError {}

/// Where the current incarnation of an actor node is.
pub(super) enum AddrState<A: Actor> {
    /// Not started yet, or between two incarnations.
    Starting,
    Up(Addr<A>),
    /// The node left the tree.
    Gone,
}

pub(super) struct Slot<A: Actor> {
    pub(super) state: watch::Sender<AddrState<A>>,
    pub(super) dn: Mutex<String>,
    /// The messages sent and not handled yet.
    pub(super) backlog: Arc<Backlog>,
}

impl<A: Actor> Slot<A> {
    pub(super) fn dn(&self) -> String {
        self.dn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A cloneable address of an actor node that always reaches its current
/// incarnation. See [`Context::run_actor`](crate::Context::run_actor).
pub struct SupervisedAddr<A: Actor> {
    pub(super) slot: Arc<Slot<A>>,
    pub(super) timeout: Duration,
}

impl<A: Actor> Clone for SupervisedAddr<A> {
    fn clone(&self) -> Self {
        SupervisedAddr {
            slot: self.slot.clone(),
            timeout: self.timeout,
        }
    }
}

impl<A: Actor> fmt::Debug for SupervisedAddr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisedAddr")
            .field("dn", &self.slot.dn())
            .finish()
    }
}

impl<A> SupervisedAddr<A>
where
    A: Actor<Context = actix::Context<A>>,
{
    /// The node's DN (empty until the node first ran).
    pub fn dn(&self) -> String {
        self.slot.dn()
    }

    /// The same address, waiting at most `timeout` in [`send`](Self::send)
    /// and [`current`](Self::current) (default [`DEFAULT_SEND_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The current incarnation's address, if one is up.
    pub fn addr(&self) -> Option<Addr<A>> {
        match &*self.slot.state.borrow() {
            AddrState::Up(addr) => Some(addr.clone()),
            _ => None,
        }
    }

    /// The current incarnation's address, waiting up to the timeout for one
    /// to come up.
    pub async fn current(&self) -> Result<Addr<A>, DeliveryError> {
        let mut rx = self.slot.state.subscribe();
        let wait = async {
            loop {
                match &*rx.borrow_and_update() {
                    AddrState::Up(addr) => return Ok(addr.clone()),
                    AddrState::Gone => return Err(DeliveryError::Gone { dn: self.dn() }),
                    AddrState::Starting => {}
                }
                if rx.changed().await.is_err() {
                    return Err(DeliveryError::Gone { dn: self.dn() });
                }
            }
        };
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(res) => res,
            Err(_) => Err(DeliveryError::Timeout {
                dn: self.dn(),
                waited: self.timeout,
            }),
        }
    }

    /// Sends `msg` to the current incarnation and waits for the answer. Waits
    /// (up to the timeout) for an incarnation when the node is between two.
    /// A message the incarnation did not answer before it stopped is reported
    /// as [`DeliveryError::Lost`], never silently dropped; by then that
    /// incarnation is marked down, so a following `send` reaches the next one.
    pub async fn send<M>(&self, msg: M) -> Result<M::Result, DeliveryError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        let addr = self.current().await?;
        let _sending = self.slot.backlog.begin::<M>();
        match addr.send(msg).await {
            Ok(answer) => Ok(answer),
            Err(_) => {
                // The answer can be lost (the handler panicked, say) before the
                // host has marked that incarnation down. Report it only once
                // it is, so that the next send goes to the next incarnation.
                let mut rx = self.slot.state.subscribe();
                let down = rx.wait_for(|s| !matches!(s, AddrState::Up(a) if *a == addr));
                let _ = tokio::time::timeout(self.timeout, down).await;
                Err(DeliveryError::Lost { dn: self.dn() })
            }
        }
    }

    /// `Addr::do_send` on the current incarnation: no answer, no waiting,
    /// queued whatever the mailbox's capacity. Returns the message back
    /// when no incarnation is up, rather than dropping it unseen. A message
    /// queued in an incarnation that then stops is dropped, as with actix,
    /// and leaves the node's backlog ([`NodeInfo::queued`](crate::NodeInfo::queued)).
    pub fn do_send<M>(&self, msg: M) -> Result<(), M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        match self.addr() {
            Some(addr) => {
                self.queue(&addr, msg);
                Ok(())
            }
            None => Err(msg),
        }
    }

    /// Queues `msg` on `addr` as `do_send` does, and counts it in the
    /// backlog until it is handled. `addr` is a fresh clone (see
    /// [`addr`](Self::addr)): a sender of its own is never parked, so
    /// actix queues the request at once whatever the mailbox's capacity,
    /// as `do_send` would; the request's answer tells when it was handled.
    fn queue<M>(&self, addr: &Addr<A>, msg: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.slot.backlog.detach_send::<M, _>(addr.send(msg));
    }

    /// A handle for one message type that, like this address, always
    /// reaches the current incarnation: actix's `Addr::recipient`, for code
    /// that should not name the actor. See [`SupervisedRecipient`].
    pub fn recipient<M>(&self) -> SupervisedRecipient<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        SupervisedRecipient {
            inner: Arc::new(self.clone()),
        }
    }

    /// `Addr::try_send` on the current incarnation; `Closed` when none is
    /// up or its mailbox is closed. Like [`do_send`](Self::do_send) it is
    /// counted in the node's backlog; like it, it never finds the mailbox
    /// full (each call sends from a fresh sender, which actix never parks).
    pub fn try_send<M>(&self, msg: M) -> Result<(), actix::prelude::SendError<M>>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        match self.addr() {
            Some(addr) if addr.connected() => {
                self.queue(&addr, msg);
                Ok(())
            }
            _ => Err(actix::prelude::SendError::Closed(msg)),
        }
    }
}

/// One message type's way to the current incarnation of an actor node, from
/// [`SupervisedAddr::recipient`]: the same delivery rules as [`SupervisedAddr`]
/// (waits for an incarnation up to the timeout, reports a lost answer),
/// without naming the actor.
///
/// ```no_run
/// # use actix::prelude::*;
/// # use actix_supervisor::{SupervisedAddr, SupervisedRecipient};
/// # #[derive(Message)] #[rtype(result = "u64")] struct Add(u64);
/// # struct Counter; impl Actor for Counter { type Context = actix::Context<Self>; }
/// # impl Handler<Add> for Counter { type Result = u64; fn handle(&mut self, m: Add, _: &mut Self::Context) -> u64 { m.0 } }
/// # async fn f(counter: SupervisedAddr<Counter>) -> Result<(), actix_supervisor::DeliveryError> {
/// let adder: SupervisedRecipient<Add> = counter.recipient();
/// assert_eq!(adder.send(Add(2)).await?, 2);
/// # Ok(()) }
/// ```
pub struct SupervisedRecipient<M: Message> {
    inner: Arc<dyn Deliver<M>>,
}

impl<M: Message> Clone for SupervisedRecipient<M> {
    fn clone(&self) -> Self {
        SupervisedRecipient {
            inner: self.inner.clone(),
        }
    }
}

impl<M: Message> fmt::Debug for SupervisedRecipient<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisedRecipient")
            .field("dn", &self.inner.dn())
            .finish()
    }
}

impl<M: Message + Send + 'static> SupervisedRecipient<M>
where
    M::Result: Send,
{
    /// The node's DN (empty until the node first ran).
    pub fn dn(&self) -> String {
        self.inner.dn()
    }

    /// As [`SupervisedAddr::send`].
    pub async fn send(&self, msg: M) -> Result<M::Result, DeliveryError> {
        self.inner.send(msg).await
    }

    /// As [`SupervisedAddr::do_send`]: the message back when no incarnation is up.
    pub fn do_send(&self, msg: M) -> Result<(), M> {
        self.inner.do_send(msg)
    }
}

/// A [`SupervisedAddr`] address with its actor type erased, for one message type.
trait Deliver<M: Message>: Send + Sync {
    fn dn(&self) -> String;
    fn send(&self, msg: M)
        -> futures::future::BoxFuture<'static, Result<M::Result, DeliveryError>>;
    fn do_send(&self, msg: M) -> Result<(), M>;
}

impl<A, M> Deliver<M> for SupervisedAddr<A>
where
    A: Actor<Context = actix::Context<A>> + Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    fn dn(&self) -> String {
        SupervisedAddr::dn(self)
    }

    fn send(
        &self,
        msg: M,
    ) -> futures::future::BoxFuture<'static, Result<M::Result, DeliveryError>> {
        let this = self.clone();
        Box::pin(async move { SupervisedAddr::send(&this, msg).await })
    }

    fn do_send(&self, msg: M) -> Result<(), M> {
        SupervisedAddr::do_send(self, msg)
    }
}
