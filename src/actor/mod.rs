//! Actix actors as tree nodes, reached through a [`SupervisedAddr`] that
//! survives restarts. This file is the runnable half (an actor per
//! incarnation, run inside the node's future); `addr.rs` is the address.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use actix::dev::ContextFut;
use actix::{Actor, ActorContext};
use futures::future::LocalBoxFuture;
use tokio::sync::watch;

use crate::api::context::Context;
use crate::api::runnable::Runnable;
use crate::api::wire::inbox::{QueueMsg, QueueNews};
use crate::model::error::{RunError, RunResult};
use crate::model::records::Signal;

mod addr;
mod backlog;

use addr::{AddrState, Slot};
pub use addr::{DeliveryError, SupervisedAddr, SupervisedRecipient, DEFAULT_SEND_TIMEOUT};
use backlog::Watch;

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
        self.slot.backlog.detach();
    }
}

fn make<A: Actor>(
    factory: Box<dyn FnMut(&Context) -> A + Send>,
    healthy_on_start: bool,
) -> (ActorRunnable<A>, SupervisedAddr<A>) {
    let slot = Arc::new(Slot {
        state: watch::Sender::new(AddrState::Starting),
        dn: Mutex::new(String::new()),
        backlog: Arc::default(),
    });
    let handle = SupervisedAddr {
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
pub fn actor<A, F>(mut factory: F) -> (ActorRunnable<A>, SupervisedAddr<A>)
where
    A: Actor<Context = actix::Context<A>>,
    F: FnMut() -> A + Send + 'static,
{
    make(Box::new(move |_: &Context| factory()), true)
}

/// Like [`actor`], but the factory receives the node's [`Context`] and the
/// actor signals Healthy itself (for asynchronous set-up); it can also log
/// through it, start children while NEW, and signal Done before stopping.
pub fn actor_with<A, F>(mut factory: F) -> (ActorRunnable<A>, SupervisedAddr<A>)
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
        // The address keeps the backlog; the processor reads its depth,
        // and a heartbeat reads its progress: idle or answering is a beat.
        let backlog = slot.backlog.clone();
        backlog.attach(Watch {
            link: ctx.link().clone(),
            node: ctx.node(),
            alarm: ctx.queue_alarm(),
            depths: ctx.link().depths().clone(),
            heartbeat: ctx.heart().is_some(),
        });
        let probe = backlog.clone();
        ctx.link().queue(QueueMsg {
            node: ctx.node(),
            news: QueueNews::Probe(Arc::new(move || probe.depth())),
        });
        if let Some(heart) = ctx.heart() {
            let backlog = backlog.clone();
            heart.set_probe(Box::new(move || backlog.progress()));
        }
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
                // Beside the actor: taking out the `do_send`s it handled.
                let reap = std::future::poll_fn(|cx| backlog.poll_reap(cx));
                tokio::select! {
                    _ = reap => {}
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

/// Sets the slot back to Starting when an incarnation ends, however it
/// ends, and takes what it left unhandled out of the backlog.
struct MarkDown<'a, A: Actor>(&'a Slot<A>);

impl<A: Actor> Drop for MarkDown<'_, A> {
    fn drop(&mut self) {
        self.0.backlog.incarnation_ended();
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
    ///
    /// The node's runnable makes a fresh actor with the factory on every
    /// (re)start and runs it *inside* the node's future on the node's worker
    /// arbiter. So:
    /// - the node is HEALTHY once the actor's `started` has run (or, with
    ///   [`Context::run_actor_with`], when the actor signals it through the
    ///   node's [`Context`], which its factory receives);
    /// - cancelling the node stops the actor (`Context::stop`: `stopping` and
    ///   `stopped` run), which counts as CANCELLED;
    /// - the actor stopping by itself is a death, or DONE if it signalled Done;
    /// - a panic in a handler or lifecycle method unwinds into the node's host,
    ///   which catches it: a death, and the worker arbiter and its other actors
    ///   carry on.
    ///
    /// An actor node is a message-driven runnable: its work is handling messages
    /// until it is stopped, and no `async` loop needs to be written for it.
    ///
    /// ```no_run
    /// use actix::prelude::*;
    /// use actix_supervisor::{Context as Node, RunResult, Signal, SupervisedAddr};
    ///
    /// #[derive(Default)]
    /// struct Counter(u64);
    /// impl Actor for Counter {
    ///     type Context = actix::Context<Self>;
    /// }
    ///
    /// #[derive(Message)]
    /// #[rtype(result = "u64")]
    /// struct Add(u64);
    ///
    /// impl Handler<Add> for Counter {
    ///     type Result = u64;
    ///     fn handle(&mut self, msg: Add, _: &mut Self::Context) -> u64 {
    ///         self.0 += msg.0;
    ///         self.0
    ///     }
    /// }
    ///
    /// async fn root(ctx: Node) -> RunResult {
    ///     let counter: SupervisedAddr<Counter> = ctx.run_actor("counter", Counter::default).await?;
    ///     ctx.signal(Signal::Healthy)?;
    ///     // Whatever incarnation is current answers; a restart in between is waited out.
    ///     let total = counter.send(Add(2)).await?;
    ///     assert_eq!(total, 2);
    ///     ctx.cancelled().await;
    ///     Ok(())
    /// }
    /// ```
    pub async fn run_actor<A, F>(
        &self,
        name: &str,
        factory: F,
    ) -> Result<SupervisedAddr<A>, RunError>
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
    ) -> Result<SupervisedAddr<A>, RunError>
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
    /// `factory` on every (re)start, and returns its [`SupervisedAddr`] address.
    /// Once the child is removed (terminated, or ended for good), the
    /// address answers [`DeliveryError::Gone`] at once.
    pub async fn start_actor<A, F>(
        &self,
        name: &str,
        factory: F,
    ) -> Result<SupervisedAddr<A>, RunError>
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
