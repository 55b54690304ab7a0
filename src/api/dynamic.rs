//! Dynamic nodes: children started and stopped at run time, under
//! supervision (a worker per session, tenant, job, device): their limits
//! ([`DynamicGroup`]) and their handle ([`Dynamic`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use futures::channel::oneshot;
use futures::future::LocalBoxFuture;

use crate::api::context::Context;
use crate::api::runnable::{Child, DynamicRequest, Group, Runnable, Sealed};
use crate::api::supervisor::Supervisor;
use crate::model::error::{RunError, RunResult};
use crate::model::policy::{AutoShutdown, Exceeded, Intensity};
use crate::model::records::{FinishedChild, NodeInfo, NodeKind, Signal};

/// How a dynamic node behaves: how many children it may have at once, and
/// its restart intensity (as for any parent: see
/// [`Child::max_restarts`](crate::Child::max_restarts)).
#[derive(Clone, Copy, Debug, Default)]
pub struct DynamicGroup {
    max_children: Option<usize>,
    intensity: Option<Intensity>,
    auto_shutdown: AutoShutdown,
    exceeded: Exceeded,
}

impl DynamicGroup {
    /// No limit on children; the supervisor's default intensity.
    pub fn new() -> DynamicGroup {
        DynamicGroup::default()
    }

    /// At most `n` children at once: [`Dynamic::start_child`] answers
    /// [`RunError::Full`] beyond. Default: no limit.
    pub fn max_children(mut self, n: usize) -> Self {
        self.max_children = Some(n);
        self
    }

    /// More than `n` restarts of its children within `within` and the
    /// dynamic node gives up: it dies, its children stop, and its parent's
    /// policy applies.
    pub fn max_restarts(mut self, n: u32, within: Duration) -> Self {
        self.intensity = Some(Intensity::new(n, within));
        self
    }

    /// What it does when a child's restart would exceed its intensity:
    /// give up (the default) or park that child behind a breaker (see
    /// [`Exceeded`]): a tenant whose database is down waits, the others
    /// run on.
    pub fn on_intensity_exceeded(mut self, e: Exceeded) -> Self {
        self.exceeded = e;
        self
    }

    /// Whether the dynamic node ends when its
    /// [significant](crate::Child::significant) children end by
    /// themselves: with [`AnySignificant`](AutoShutdown::AnySignificant)
    /// once one has, with [`AllSignificant`](AutoShutdown::AllSignificant)
    /// once none that is significant is left running. It then ends DONE,
    /// its other children stopped. Default [`AutoShutdown::Never`].
    pub fn auto_shutdown(mut self, a: AutoShutdown) -> Self {
        self.auto_shutdown = a;
        self
    }
}

/// The dynamic node's own runnable: Healthy at once, then it only waits to
/// be stopped. Its work is its children's.
struct DynamicNode;

impl Runnable for DynamicNode {
    fn run(&mut self, ctx: Context) -> LocalBoxFuture<'static, RunResult> {
        Box::pin(async move {
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            Ok(())
        })
    }

    fn kind(&self, _: Sealed) -> NodeKind {
        NodeKind::Dynamic
    }
}

impl Context {
    /// Starts a child named `name` whose own children are started and
    /// stopped at run time through the returned [`Dynamic`] handle. Only while
    /// this node is NEW, like [`run`](Self::run). See [`Dynamic`].
    pub async fn run_dynamic(&self, name: &str, group: DynamicGroup) -> Result<Dynamic, RunError> {
        let mut child = Child::new(name, DynamicNode);
        child.spec.intensity = group.intensity;
        child.spec.max_children = group.max_children;
        child.spec.auto_shutdown = group.auto_shutdown;
        child.spec.exceeded = group.exceeded;
        self.run_group(Group::new().child(child)).await?;
        Ok(Dynamic {
            at: format!("{}.{name}", self.dn()).into(),
            to: self.link().handle_parts().dynamic,
        })
    }
}

impl Supervisor {
    /// A handle on the dynamic node at `dn`, resolved at each call: it stays
    /// valid across the node's restarts, and answers
    /// [`RunError::NotFound`] while no dynamic node has that DN.
    pub fn dynamic(&self, dn: &str) -> Dynamic {
        Dynamic {
            at: dn.into(),
            to: self.dynamic.clone(),
        }
    }
}

/// A dynamic node's handle: starts, stops and lists its children from
/// anywhere (an HTTP handler, another node, `main`). Cheap to clone. Made by
/// [`Context::run_dynamic`] or [`Supervisor::dynamic`]; the node is found by
/// its DN at each call, so the handle outlives the node's restarts.
///
/// [`Context::run_dynamic`] starts a child node that has no runnable of its
/// own: it is HEALTHY once started, and its children come and go through a
/// [`Dynamic`] handle, from anywhere. Its children are one-for-one: a child's
/// death restarts that child alone, by its own restart type, backoff and
/// stop mode, and counts against the dynamic node's restart intensity. When
/// that is exceeded the dynamic node dies (its children stop with it) and its
/// parent's policy applies; started again, it is empty, as Elixir's
/// `DynamicSupervisor` is. A child that ends for good (DONE, a transient
/// child's `Ok(())`, any exit of a temporary one, [`Dynamic::terminate_child`])
/// is removed from the tree: no record is kept, and its name is free again.
///
/// ```
/// use std::time::Duration;
/// use actix_supervisor::{Child, Context, Dynamic, DynamicGroup, RunResult, Signal, Supervisor};
///
/// async fn session(ctx: Context) -> RunResult {
///     ctx.signal(Signal::Healthy)?;
///     ctx.cancelled().await;
///     Ok(())
/// }
///
/// async fn root(ctx: Context) -> RunResult {
///     let limits = DynamicGroup::new().max_children(10_000).max_restarts(100, Duration::from_secs(10));
///     let _sessions: Dynamic = ctx.run_dynamic("sessions", limits).await?;
///     ctx.signal(Signal::Healthy)?;
///     ctx.cancelled().await;
///     Ok(())
/// }
///
/// actix_rt::System::new().block_on(async {
///     let sup = Supervisor::start(root);
///     sup.wait_settled().await;
///     let sessions = sup.dynamic("root.sessions");
///     let dn = sessions.start_child(Child::new("conn_42", session)).await.unwrap();
///     assert_eq!(dn, "root.sessions.conn_42");
///     assert_eq!(sessions.count().await, Ok(1));
///     sessions.terminate_child("conn_42").await.unwrap();
///     assert_eq!(sessions.count().await, Ok(0));
///     sup.shutdown().await;
/// });
/// ```
#[derive(Clone)]
pub struct Dynamic {
    at: Arc<str>,
    to: Recipient<DynamicRequest>,
}

impl fmt::Debug for Dynamic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dynamic").field("dn", &self.at).finish()
    }
}

impl Dynamic {
    /// The dynamic node's DN.
    pub fn dn(&self) -> &str {
        &self.at
    }

    async fn ask<T>(
        &self,
        request: impl FnOnce(Arc<str>, oneshot::Sender<Result<T, RunError>>) -> DynamicRequest,
    ) -> Result<T, RunError> {
        // After what this thread holds: the processor sees earlier reports first.
        crate::api::wire::inbox::release_held();
        let (tx, rx) = oneshot::channel();
        self.to.do_send(request(self.at.clone(), tx));
        rx.await.unwrap_or_else(|_| {
            Err(RunError::NotRunning {
                dn: self.at.to_string(),
            })
        })
    }

    /// Starts `child` under the dynamic node, with its own restart type,
    /// stop mode and intensity; resolves with its DN once its runnable has
    /// been polled for the first time: its incarnation began (it is NEW,
    /// not yet Healthy), as OTP's `start_child` returns after the child's
    /// `init`. From then on the child's runnable runs whatever comes next
    /// (a `terminate_child`, a shutdown, its parent's restart): it is polled
    /// at least once and sees its context cancelled, so a job handed to it
    /// is never dropped unseen. Errors: [`RunError::InvalidName`],
    /// [`RunError::DuplicateName`] (a live child has the name),
    /// [`RunError::Full`], [`RunError::NotFound`], [`RunError::NotRunning`].
    pub async fn start_child(&self, child: Child) -> Result<String, RunError> {
        let (dn, polled) = self
            .ask(|at, reply| DynamicRequest::Start { at, child, reply })
            .await?;
        // Dropped unanswered only if the runtime ends first.
        polled.await.map_err(|_| RunError::NotRunning {
            dn: self.at.to_string(),
        })?;
        Ok(dn)
    }

    /// Stops the child `name` by its stop mode; resolves once it (and its
    /// subtree) has exited and it is removed. [`RunError::NotFound`] when no
    /// live child has that name.
    pub async fn terminate_child(&self, name: &str) -> Result<(), RunError> {
        let name = name.to_string();
        self.ask(|at, reply| DynamicRequest::Terminate { at, name, reply })
            .await
    }

    /// Restarts the child `name` on request, as
    /// [`Supervisor::restart`](crate::Supervisor::restart) does: at once, no
    /// backoff, not counted against the dynamic node's intensity.
    pub async fn restart_child(&self, name: &str) -> Result<(), RunError> {
        let name = name.to_string();
        self.ask(|at, reply| DynamicRequest::Restart { at, name, reply })
            .await
    }

    /// The records of the live children (not their descendants), sorted by DN.
    pub async fn children(&self) -> Result<Vec<NodeInfo>, RunError> {
        self.ask(|at, reply| DynamicRequest::Children { at, reply })
            .await
    }

    /// Its children that ended for good lately (terminated, DONE, a
    /// temporary child's exit), oldest first: their DN, the state they
    /// ended in, their last exit and when they left. The last 1,024 per
    /// dynamic node are kept, also across its restarts: what a job service
    /// lists as its finished jobs.
    pub async fn finished(&self) -> Result<Vec<FinishedChild>, RunError> {
        self.ask(|at, reply| DynamicRequest::Finished { at, reply })
            .await
    }

    /// How many children the dynamic node has.
    pub async fn count(&self) -> Result<usize, RunError> {
        self.ask(|at, reply| DynamicRequest::Count { at, reply })
            .await
    }
}
