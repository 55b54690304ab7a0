//! Actix actors as tree nodes, reached through a [`Supervised`] address that
//! survives restarts.
//!
//! The node's runnable makes a fresh actor with the factory on every
//! (re)start and runs it *inside* the node's future on the node's worker
//! arbiter. So:
//! - the node is HEALTHY once the actor's `started` has run (or, with
//!   [`Context::run_actor_with`], when the actor signals it through the
//!   node's [`Context`], which its factory receives);
//! - cancelling the node stops the actor (`Context::stop`: `stopping` and
//!   `stopped` run), which counts as CANCELED;
//! - the actor stopping by itself is a death, or DONE if it signalled Done;
//! - a panic in a handler or lifecycle method unwinds into the node's host,
//!   which catches it: a death, and the worker arbiter and its other actors
//!   carry on.
//!
//! An actor node is a message-driven runnable: its work is handling messages
//! until it is stopped, and no `async` loop needs to be written for it.
//!
//! ```no_run
//! use actix::prelude::*;
//! use actix_supervisor::{Context as Node, RunResult, Signal, Supervised};
//!
//! #[derive(Default)]
//! struct Counter(u64);
//! impl Actor for Counter {
//!     type Context = actix::Context<Self>;
//! }
//!
//! #[derive(Message)]
//! #[rtype(result = "u64")]
//! struct Add(u64);
//!
//! impl Handler<Add> for Counter {
//!     type Result = u64;
//!     fn handle(&mut self, msg: Add, _: &mut Self::Context) -> u64 {
//!         self.0 += msg.0;
//!         self.0
//!     }
//! }
//!
//! async fn root(ctx: Node) -> RunResult {
//!     let counter: Supervised<Counter> = ctx.run_actor("counter", Counter::default).await?;
//!     ctx.signal(Signal::Healthy)?;
//!     // Whatever incarnation is current answers; a restart in between is waited out.
//!     let total = counter.send(Add(2)).await?;
//!     assert_eq!(total, 2);
//!     ctx.cancelled().await;
//!     Ok(())
//! }
//! ```

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix::dev::{ContextFut, ToEnvelope};
use actix::{Actor, ActorContext, Addr, Handler, Message};
use futures::future::LocalBoxFuture;
use tokio::sync::watch;

use crate::api::context::Context;
use crate::api::runnable::Runnable;
use crate::model::error::{RunError, RunResult};
use crate::model::records::Signal;

/// How long [`Supervised::send`] waits for an incarnation to be up, by default.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a message sent through a [`Supervised`] address was not answered.
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
enum AddrState<A: Actor> {
    /// Not started yet, or between two incarnations.
    Starting,
    Up(Addr<A>),
    /// The node left the tree.
    Gone,
}

struct Slot<A: Actor> {
    state: watch::Sender<AddrState<A>>,
    dn: Mutex<String>,
}

impl<A: Actor> Slot<A> {
    fn dn(&self) -> String {
        self.dn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A cloneable address of an actor node that always reaches its current
/// incarnation. See the [module docs](mod@crate::actor).
pub struct Supervised<A: Actor> {
    slot: Arc<Slot<A>>,
    timeout: Duration,
}

impl<A: Actor> Clone for Supervised<A> {
    fn clone(&self) -> Self {
        Supervised {
            slot: self.slot.clone(),
            timeout: self.timeout,
        }
    }
}

impl<A: Actor> fmt::Debug for Supervised<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervised")
            .field("dn", &self.slot.dn())
            .finish()
    }
}

impl<A> Supervised<A>
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

    /// `Addr::do_send` on the current incarnation: no answer, no waiting.
    /// Returns the message back when no incarnation is up, rather than
    /// dropping it unseen. A message queued in an incarnation that then
    /// stops is dropped, as with actix.
    pub fn do_send<M>(&self, msg: M) -> Result<(), M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        match self.addr() {
            Some(addr) => {
                addr.do_send(msg);
                Ok(())
            }
            None => Err(msg),
        }
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

    /// `Addr::try_send` on the current incarnation; `Closed` when none is up.
    pub fn try_send<M>(&self, msg: M) -> Result<(), actix::prelude::SendError<M>>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        match self.addr() {
            Some(addr) => addr.try_send(msg),
            None => Err(actix::prelude::SendError::Closed(msg)),
        }
    }
}

/// One message type's way to the current incarnation of an actor node, from
/// [`Supervised::recipient`]: the same delivery rules as [`Supervised`]
/// (waits for an incarnation up to the timeout, reports a lost answer),
/// without naming the actor.
///
/// ```no_run
/// # use actix::prelude::*;
/// # use actix_supervisor::{Supervised, SupervisedRecipient};
/// # #[derive(Message)] #[rtype(result = "u64")] struct Add(u64);
/// # struct Counter; impl Actor for Counter { type Context = actix::Context<Self>; }
/// # impl Handler<Add> for Counter { type Result = u64; fn handle(&mut self, m: Add, _: &mut Self::Context) -> u64 { m.0 } }
/// # async fn f(counter: Supervised<Counter>) -> Result<(), actix_supervisor::DeliveryError> {
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

    /// As [`Supervised::send`].
    pub async fn send(&self, msg: M) -> Result<M::Result, DeliveryError> {
        self.inner.send(msg).await
    }

    /// As [`Supervised::do_send`]: the message back when no incarnation is up.
    pub fn do_send(&self, msg: M) -> Result<(), M> {
        self.inner.do_send(msg)
    }
}

/// A [`Supervised`] address with its actor type erased, for one message type.
trait Deliver<M: Message>: Send + Sync {
    fn dn(&self) -> String;
    fn send(&self, msg: M)
        -> futures::future::BoxFuture<'static, Result<M::Result, DeliveryError>>;
    fn do_send(&self, msg: M) -> Result<(), M>;
}

impl<A, M> Deliver<M> for Supervised<A>
where
    A: Actor<Context = actix::Context<A>> + Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    fn dn(&self) -> String {
        Supervised::dn(self)
    }

    fn send(
        &self,
        msg: M,
    ) -> futures::future::BoxFuture<'static, Result<M::Result, DeliveryError>> {
        let this = self.clone();
        Box::pin(async move { Supervised::send(&this, msg).await })
    }

    fn do_send(&self, msg: M) -> Result<(), M> {
        Supervised::do_send(self, msg)
    }
}

/// The runnable of an actor node: makes an actor per incarnation and runs it.
/// Made by [`actor`] / [`actor_with`], or used by [`Context::run_actor`].
pub struct ActorRunnable<A: Actor> {
    factory: Box<dyn FnMut(&Context) -> A + Send>,
    /// `true`: HEALTHY once `started` ran; `false`: the actor signals it.
    healthy_on_start: bool,
    slot: Arc<Slot<A>>,
}

impl<A: Actor> fmt::Debug for ActorRunnable<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRunnable")
            .field("dn", &self.slot.dn())
            .field("healthy_on_start", &self.healthy_on_start)
            .finish_non_exhaustive()
    }
}

impl<A: Actor> Drop for ActorRunnable<A> {
    fn drop(&mut self) {
        // The node left the tree: nothing will answer through this slot again.
        self.slot.state.send_replace(AddrState::Gone);
    }
}

fn make<A: Actor>(
    factory: Box<dyn FnMut(&Context) -> A + Send>,
    healthy_on_start: bool,
) -> (ActorRunnable<A>, Supervised<A>) {
    let slot = Arc::new(Slot {
        state: watch::Sender::new(AddrState::Starting),
        dn: Mutex::new(String::new()),
    });
    let handle = Supervised {
        slot: slot.clone(),
        timeout: DEFAULT_SEND_TIMEOUT,
    };
    (
        ActorRunnable {
            factory,
            healthy_on_start,
            slot,
        },
        handle,
    )
}

/// An actor node's runnable and its stable address, for use in a [`Group`](crate::Group).
/// The node is HEALTHY once the actor has started.
pub fn actor<A, F>(mut factory: F) -> (ActorRunnable<A>, Supervised<A>)
where
    A: Actor<Context = actix::Context<A>>,
    F: FnMut() -> A + Send + 'static,
{
    make(Box::new(move |_: &Context| factory()), true)
}

/// Like [`actor`], but the factory receives the node's [`Context`] and the
/// actor signals Healthy itself (for asynchronous set-up); it can also log
/// through it, start children while NEW, and signal Done before stopping.
pub fn actor_with<A, F>(mut factory: F) -> (ActorRunnable<A>, Supervised<A>)
where
    A: Actor<Context = actix::Context<A>>,
    F: FnMut(Context) -> A + Send + 'static,
{
    make(Box::new(move |ctx: &Context| factory(ctx.clone())), false)
}

impl<A> Runnable for ActorRunnable<A>
where
    A: Actor<Context = actix::Context<A>>,
{
    fn kind(&self, _: crate::api::runnable::Sealed) -> crate::model::records::NodeKind {
        crate::model::records::NodeKind::Actor
    }

    fn run(&mut self, ctx: Context) -> LocalBoxFuture<'static, RunResult> {
        *self.slot.dn.lock().unwrap_or_else(PoisonError::into_inner) = ctx.dn().to_string();
        // A panicking factory unwinds out of `run`: the host makes it a death.
        let actor = (self.factory)(&ctx);
        let slot = self.slot.clone();
        let healthy_on_start = self.healthy_on_start;
        Box::pin(async move {
            let running = actix::Context::<A>::new().into_future(actor);
            slot.state.send_replace(AddrState::Up(running.address()));
            let mut running = Contained(Some(running));
            let _down = MarkDown(&slot);
            // Let `started` run first: HEALTHY means the actor is up.
            let stopped = futures::poll!(&mut running).is_ready();
            if healthy_on_start && !stopped {
                ctx.signal(Signal::Healthy)?;
            }
            if !stopped {
                tokio::select! {
                    _ = &mut running => {}
                    _ = ctx.cancelled() => {
                        running.stop();
                        // `stopping` may keep it alive; the shutdown timeout bounds that.
                        (&mut running).await;
                        return Ok(());
                    }
                }
            }
            if ctx.is_cancelled() || ctx.done_signalled() {
                Ok(())
            } else {
                Err(format!("{}: the actor stopped by itself", ctx.dn()).into())
            }
        })
    }
}

/// Sets the slot back to Starting when an incarnation ends, however it ends.
struct MarkDown<'a, A: Actor>(&'a Slot<A>);

impl<A: Actor> Drop for MarkDown<'_, A> {
    fn drop(&mut self) {
        self.0.state.send_if_modified(|s| {
            if matches!(s, AddrState::Up(_)) {
                *s = AddrState::Starting;
                true
            } else {
                false
            }
        });
    }
}

/// The running actor. Dropping it stops the actor; a panic in the actor's
/// `stopping`/`stopped` during that drop is contained.
struct Contained<A: Actor<Context = actix::Context<A>>>(Option<ContextFut<A, actix::Context<A>>>);

impl<A: Actor<Context = actix::Context<A>>> Contained<A> {
    fn stop(&mut self) {
        if let Some(f) = &mut self.0 {
            f.ctx().stop();
        }
    }
}

impl<A: Actor<Context = actix::Context<A>>> std::future::Future for Contained<A> {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        match &mut self.0 {
            Some(f) => std::pin::Pin::new(f).poll(cx),
            None => std::task::Poll::Ready(()),
        }
    }
}

impl<A: Actor<Context = actix::Context<A>>> Drop for Contained<A> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(move || drop(f)));
        }
    }
}

impl Context {
    /// Starts an actor node named `name`: a fresh actor from `factory` on
    /// every (re)start, HEALTHY once started. Returns its stable address.
    /// Only while this node is NEW, like [`run`](Self::run).
    pub async fn run_actor<A, F>(&self, name: &str, factory: F) -> Result<Supervised<A>, RunError>
    where
        A: Actor<Context = actix::Context<A>>,
        F: FnMut() -> A + Send + 'static,
    {
        let (runnable, handle) = actor(factory);
        self.run(name, runnable).await?;
        Ok(handle)
    }

    /// Like [`run_actor`](Self::run_actor), with the node's context handed to
    /// the factory: the actor signals Healthy itself (see [`actor_with`]).
    pub async fn run_actor_with<A, F>(
        &self,
        name: &str,
        factory: F,
    ) -> Result<Supervised<A>, RunError>
    where
        A: Actor<Context = actix::Context<A>>,
        F: FnMut(Context) -> A + Send + 'static,
    {
        let (runnable, handle) = actor_with(factory);
        self.run(name, runnable).await?;
        Ok(handle)
    }
}

impl crate::api::dynamic::Dynamic {
    /// Starts an actor node named `name` under the dynamic node, made by
    /// `factory` on every (re)start, and returns its [`Supervised`] address.
    /// Once the child is removed (terminated, or ended for good), the
    /// address answers [`DeliveryError::Gone`] at once.
    pub async fn start_actor<A, F>(&self, name: &str, factory: F) -> Result<Supervised<A>, RunError>
    where
        A: Actor<Context = actix::Context<A>>,
        F: FnMut() -> A + Send + 'static,
    {
        let (runnable, handle) = actor(factory);
        self.start_child(crate::api::runnable::Child::new(name, runnable))
            .await?;
        Ok(handle)
    }
}
