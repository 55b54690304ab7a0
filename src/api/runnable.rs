//! What the tree runs: the [`Runnable`] trait, [`Child`] specs and
//! [`Group`]s of them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::Message;
use futures::channel::oneshot;
use futures::future::LocalBoxFuture;

use crate::api::context::Context;
use crate::api::lease::Lessor;
use crate::model::error::{RunError, RunResult};
use crate::model::policy::{
    AutoShutdown, Exceeded, GroupOptions, Intensity, Restart, Shutdown, Spec, Strategy,
};
use crate::model::records::{FinishedChild, NodeInfo, NodeKind};

/// A unit of supervised work.
///
/// `run` is called again from the start after every restart, so a runnable is
/// a factory of futures rather than a future. The future need not be `Send`:
/// it is created and polled on the worker arbiter that hosts the node. The
/// runnable itself moves to that arbiter, hence `Send`.
///
/// Any `FnMut(Context) -> impl Future<Output = RunResult>` is a runnable:
///
/// ```
/// use actix_supervisor::{Context, RunResult, Signal};
///
/// async fn worker(ctx: Context) -> RunResult {
///     ctx.signal(Signal::Healthy)?;
///     ctx.cancelled().await;
///     Ok(())
/// }
/// # fn assert_runnable(_: impl actix_supervisor::Runnable) {}
/// # assert_runnable(worker);
/// ```
pub trait Runnable: Send + 'static {
    /// Starts one incarnation. `ctx` is cancelled when the node must stop;
    /// after that, whatever the future returns counts as CANCELLED.
    fn run(&mut self, ctx: Context) -> LocalBoxFuture<'static, RunResult>;

    /// How this runnable is stopped, given the mode configured for its node
    /// (the supervisor's `shutdown_timeout` unless the child asked for
    /// another). The default keeps it; a runnable that needs longer to stop
    /// cleanly widens it, as a [`process::Command`](crate::process::Command)
    /// does to fit its grace period.
    fn shutdown(&self, configured: Shutdown) -> Shutdown {
        configured
    }

    /// What kind of node this is, for snapshots: the crate's actors and
    /// processes say so. Sealed: nothing outside the crate can name
    /// [`Sealed`], so no runnable of a user's can claim a kind (or a pid).
    #[doc(hidden)]
    fn kind(&self, _: Sealed) -> NodeKind {
        NodeKind::Runnable
    }
}

pub(crate) use sealed::Sealed;

mod sealed {
    /// The argument of [`Runnable::kind`](super::Runnable::kind), which only
    /// the crate can make.
    #[derive(Debug)]
    pub struct Sealed(pub(crate) ());
}

impl<F, Fut> Runnable for F
where
    F: FnMut(Context) -> Fut + Send + 'static,
    Fut: Future<Output = RunResult> + 'static,
{
    fn run(&mut self, ctx: Context) -> LocalBoxFuture<'static, RunResult> {
        Box::pin(self(ctx))
    }
}

impl Runnable for Box<dyn Runnable> {
    fn run(&mut self, ctx: Context) -> LocalBoxFuture<'static, RunResult> {
        (**self).run(ctx)
    }

    fn shutdown(&self, configured: Shutdown) -> Shutdown {
        (**self).shutdown(configured)
    }

    fn kind(&self, sealed: Sealed) -> NodeKind {
        (**self).kind(sealed)
    }
}

/// One child to start: its name, its runnable and its policy. Whatever is
/// not set here takes the supervisor's default
/// ([`SupervisorBuilder`](crate::SupervisorBuilder)).
///
/// ```
/// use std::time::Duration;
/// use actix_supervisor::{Child, Context, Restart, RunResult, Shutdown};
///
/// async fn job(ctx: Context) -> RunResult { Ok(()) }
///
/// let child = Child::new("migrate", job)
///     .restart(Restart::Transient)
///     .shutdown(Shutdown::Brutal)
///     .max_restarts(3, Duration::from_secs(10));
/// assert_eq!(child.name(), "migrate");
/// ```
pub struct Child {
    pub(crate) name: String,
    pub(crate) runnable: Box<dyn Runnable>,
    pub(crate) spec: Spec,
    /// For a singleton: the fleet it campaigns in (see the `fleet` module).
    pub(crate) lease: Option<Arc<dyn Lessor>>,
}

impl Child {
    /// A child named `name` running `r`, with the supervisor's defaults.
    pub fn new(name: impl Into<String>, r: impl Runnable) -> Child {
        Child {
            name: name.into(),
            runnable: Box::new(r),
            spec: Spec::default(),
            lease: None,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When it is restarted. See [`Restart`].
    pub fn restart(mut self, r: Restart) -> Self {
        self.spec.restart = Some(r);
        self
    }

    /// How it is stopped. See [`Shutdown`].
    pub fn shutdown(mut self, s: Shutdown) -> Self {
        self.spec.shutdown = Some(s);
        self
    }

    /// How long it may stay NEW once its runnable runs: still not Healthy
    /// (nor Done) then, its future is dropped and it dies with "did not
    /// become Healthy within 30s" (its last log lines in the report), and its
    /// policy applies. Default: the builder's
    /// [`start_timeout`](crate::SupervisorBuilder::start_timeout), none
    /// unless set. The wait for a backoff or an ordered start does not count.
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.spec.start_timeout = Some(d);
        self
    }

    /// Whether `/readyz` waits for it. By default a permanent node does (the
    /// service is not ready while it is not HEALTHY or DONE, or waits out a
    /// backoff) and a transient or temporary one does not. Say `false` for
    /// a permanent background job whose failures should not take the pod
    /// out of the load balancer (a poller, a cache warmer), `true` for a
    /// transient one that must be up to serve. The root always counts.
    pub fn affects_readiness(mut self, yes: bool) -> Self {
        self.spec.affects_readiness = Some(yes);
        self
    }

    /// Its restart intensity as the parent of its own children: if it has to
    /// restart them more than `n` times within `within`, it gives up and
    /// dies. See [`Intensity`].
    pub fn max_restarts(mut self, n: u32, within: Duration) -> Self {
        self.spec.intensity = Some(Intensity::new(n, within));
        self
    }

    /// Requires a heartbeat: once it has signalled Healthy, its runnable
    /// must call [`Context::beat`] at least every `every` (a loop's turn, a
    /// request served). A node that has not beaten for `every` is hung: it
    /// dies with "no heartbeat within 5s", its last log lines in the death
    /// report, and its policy applies, as a start deadline does. It is
    /// cancelled first and its stop mode honoured (a runnable stuck on an
    /// await is dropped at its stop deadline). Signalling Healthy counts as
    /// a beat; DONE ends the requirement.
    ///
    /// For an actor node ([`actor`](crate::actor)) no call is needed: it
    /// beats whenever it is idle or finishes a message, so a handler still
    /// running after `every` with messages waiting counts as missing the
    /// beat, and the report names the message type being handled.
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_supervisor::{Child, Context, RunResult, Signal};
    ///
    /// async fn poller(ctx: Context) -> RunResult {
    ///     ctx.signal(Signal::Healthy)?;
    ///     loop {
    ///         tokio::select! {
    ///             _ = ctx.cancelled() => return Ok(()),
    ///             _ = tokio::time::sleep(Duration::from_secs(1)) => {
    ///                 // ... poll the queue: an await that may hang ...
    ///                 ctx.beat();
    ///             }
    ///         }
    ///     }
    /// }
    /// let child = Child::new("poller", poller).heartbeat(Duration::from_secs(5));
    /// # let _ = child;
    /// ```
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.spec.heartbeat = Some(every);
        self
    }

    /// Whether a missed heartbeat of this node fails the process's
    /// liveness (`/healthz`, [`Supervisor::liveness`](crate::Supervisor::liveness),
    /// the systemd watchdog) until it is HEALTHY again: for a node without
    /// which the process is useless, so that the orchestrator restarts the
    /// process when the node hangs beyond what its own restart mends.
    /// Default `false`.
    pub fn heartbeat_affects_liveness(mut self, yes: bool) -> Self {
        self.spec.heartbeat_affects_liveness = yes;
        self
    }

    /// For an actor node ([`actor`](crate::actor)): raises an alarm when
    /// `high` messages wait for it (sent through its
    /// [`SupervisedAddr`](crate::SupervisedAddr), queued or being handled),
    /// and clears it only once fewer than `low` do, so that a queue
    /// hovering around `high` does not flap. Raising and clearing are
    /// supervisor events (`overloaded`, `overload_cleared`: a log line, a
    /// `tracing` event, [`Metrics::queue_alarm`](crate::Metrics::queue_alarm));
    /// while on, the node is marked overloaded in snapshots and on the
    /// status page. Thresholds must satisfy `0 < low < high`, else starting
    /// the child fails with [`RunError::InvalidQueueAlarm`](crate::RunError::InvalidQueueAlarm).
    /// Default: the supervisor's
    /// ([`SupervisorBuilder::queue_alarm`](crate::SupervisorBuilder::queue_alarm)),
    /// else none. Other nodes ignore it.
    ///
    /// ```
    /// use actix::prelude::*;
    /// use actix_supervisor::{actor, Child};
    ///
    /// struct Indexer;
    /// impl Actor for Indexer {
    ///     type Context = actix::Context<Self>;
    /// }
    ///
    /// let (runnable, _addr) = actor(|| Indexer);
    /// let child = Child::new("indexer", runnable)
    ///     .queue_alarm(1_000, 100)
    ///     .overload_affects_readiness(true);
    /// # let _ = child;
    /// ```
    pub fn queue_alarm(mut self, high: usize, low: usize) -> Self {
        self.spec.queue_alarm = Some((high, low));
        self
    }

    /// Whether this node's [queue alarm](Self::queue_alarm), while on,
    /// keeps the service from being ready (`/readyz`,
    /// [`Supervisor::readiness`](crate::Supervisor::readiness)): for a node
    /// whose backlog means requests will time out, so that the load
    /// balancer sends them elsewhere until it drains. Default `false`.
    pub fn overload_affects_readiness(mut self, yes: bool) -> Self {
        self.spec.overload_affects_readiness = yes;
        self
    }

    /// What it does, as a parent, when restarting a child would exceed its
    /// [restart intensity](Self::max_restarts): give up and escalate (the
    /// default), or park that child behind a breaker. See [`Exceeded`].
    pub fn on_intensity_exceeded(mut self, e: Exceeded) -> Self {
        self.spec.exceeded = e;
        self
    }

    /// Marks it significant: when it ends by itself, its parent may end
    /// too, as its group's (or dynamic node's)
    /// [`auto_shutdown`](Group::auto_shutdown) says. Only a transient or
    /// temporary child may be: starting a permanent significant child is
    /// refused with [`RunError::PermanentSignificant`](crate::RunError::PermanentSignificant),
    /// as OTP refuses it (a permanent child never ends by itself).
    ///
    /// ```
    /// use actix_supervisor::{AutoShutdown, Child, Context, Group, Restart, RunResult};
    ///
    /// async fn reader(ctx: Context) -> RunResult { Ok(()) } // the peer hung up
    /// async fn writer(ctx: Context) -> RunResult { ctx.cancelled().await; Ok(()) }
    ///
    /// // One connection: when its reader ends, the whole connection ends.
    /// let connection = Group::new()
    ///     .child(Child::new("reader", reader).restart(Restart::Transient).significant(true))
    ///     .child(Child::new("writer", writer).restart(Restart::Transient))
    ///     .auto_shutdown(AutoShutdown::AnySignificant);
    /// # let _ = connection;
    /// ```
    pub fn significant(mut self, yes: bool) -> Self {
        self.spec.significant = yes;
        self
    }
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("name", &self.name)
            .field("restart", &self.spec.restart)
            .field("shutdown", &self.spec.shutdown)
            .field("intensity", &self.spec.intensity)
            .field("start_timeout", &self.spec.start_timeout)
            .field("affects_readiness", &self.spec.affects_readiness)
            .field("significant", &self.spec.significant)
            .field("singleton", &self.lease.as_ref().map(|l| l.member()))
            .finish_non_exhaustive()
    }
}

/// Sibling runnables started together by [`Context::run_group`]. By default
/// (one-for-all) when one of them dies the others are cancelled, and they
/// all restart together once every one of them (and their subtrees) has
/// exited; [`strategy`](Self::strategy) changes that. Members start in the
/// order they were added.
///
/// ```
/// use actix_supervisor::{Context, Group, RunResult, Strategy};
///
/// async fn reader(ctx: Context) -> RunResult { ctx.cancelled().await; Ok(()) }
/// async fn writer(ctx: Context) -> RunResult { ctx.cancelled().await; Ok(()) }
///
/// let group = Group::new()
///     .with("reader", reader)
///     .with("writer", writer)
///     .strategy(Strategy::RestForOne)
///     .ordered_start(true);
/// assert_eq!(group.names().collect::<Vec<_>>(), ["reader", "writer"]);
/// ```
#[derive(Default)]
pub struct Group {
    pub(crate) members: Vec<Child>,
    pub(crate) options: GroupOptions,
}

impl Group {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a member named `name` with the supervisor's default policy.
    /// Names are checked when the group is started.
    pub fn with(self, name: impl Into<String>, r: impl Runnable) -> Self {
        self.child(Child::new(name, r))
    }

    /// Adds a member with a policy of its own.
    pub fn child(mut self, child: Child) -> Self {
        self.members.push(child);
        self
    }

    /// Which siblings go down and come back with a dead member. Default
    /// [`Strategy::OneForAll`].
    pub fn strategy(mut self, s: Strategy) -> Self {
        self.options.strategy = s;
        self
    }

    /// Starts member k+1 only once member k has signalled Healthy, as OTP
    /// starts a child after the previous one's `init` returned. A member that
    /// dies before Healthy stops the sequence, and the group's strategy
    /// applies. Also on every restart of the group.
    pub fn ordered_start(mut self, on: bool) -> Self {
        self.options.ordered_start = on;
        self
    }

    /// Stops the members in reverse order, each awaited (up to its stop
    /// deadline, its subtree included) before the next is cancelled: on
    /// shutdown, when the parent stops, and when the strategy cancels them.
    pub fn ordered_stop(mut self, on: bool) -> Self {
        self.options.ordered_stop = on;
        self
    }

    /// Whether the group's parent ends when its
    /// [significant](Child::significant) members end by themselves: see
    /// [`AutoShutdown`]. Default [`AutoShutdown::Never`].
    pub fn auto_shutdown(mut self, a: AutoShutdown) -> Self {
        self.options.auto_shutdown = a;
        self
    }

    /// The members' names, in start order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|c| c.name.as_str())
    }
    /// How many members the group has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// `true` when the group has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// A request about a dynamic node's children, from a
/// [`Dynamic`](crate::Dynamic) handle. Defined beside [`Child`], which it
/// carries, so that the handles that send it need not name the processor.
/// The dynamic node is named by its DN, resolved at each request.
pub(crate) enum DynamicRequest {
    /// Answered with the child's DN and a receiver told once its runnable
    /// has been polled for the first time.
    Start {
        at: Arc<str>,
        child: Child,
        reply: oneshot::Sender<Result<(String, oneshot::Receiver<()>), RunError>>,
    },
    Terminate {
        at: Arc<str>,
        name: String,
        reply: oneshot::Sender<Result<(), RunError>>,
    },
    Restart {
        at: Arc<str>,
        name: String,
        reply: oneshot::Sender<Result<(), RunError>>,
    },
    Children {
        at: Arc<str>,
        reply: oneshot::Sender<Result<Vec<NodeInfo>, RunError>>,
    },
    Count {
        at: Arc<str>,
        reply: oneshot::Sender<Result<usize, RunError>>,
    },
    Finished {
        at: Arc<str>,
        reply: oneshot::Sender<Result<Vec<FinishedChild>, RunError>>,
    },
}

impl Message for DynamicRequest {
    type Result = ();
}
