//! What the tree runs: the [`Runnable`] trait and [`Group`]s of them.

use std::future::Future;

use futures::future::LocalBoxFuture;

use crate::context::Context;
use crate::error::RunResult;
use crate::policy::Shutdown;

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
    /// after that, whatever the future returns counts as CANCELED.
    fn run(&mut self, ctx: Context) -> LocalBoxFuture<'static, RunResult>;

    /// How this runnable is stopped, given the mode configured for its node
    /// (the supervisor's `shutdown_timeout` unless the child asked for
    /// another). The default keeps it; a runnable that needs longer to stop
    /// cleanly widens it, as a [`process::Command`](crate::process::Command)
    /// does to fit its grace period.
    fn shutdown(&self, configured: Shutdown) -> Shutdown {
        configured
    }
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
}

/// Sibling runnables started together by [`Context::run_group`]: when one of
/// them dies, the others are cancelled, and they all restart together once
/// every one of them (and their subtrees) has exited. Members start in the
/// order they were added.
///
/// ```
/// use actix_supervisor::{Context, Group, RunResult};
///
/// async fn reader(ctx: Context) -> RunResult { ctx.cancelled().await; Ok(()) }
/// async fn writer(ctx: Context) -> RunResult { ctx.cancelled().await; Ok(()) }
///
/// let group = Group::new().with("reader", reader).with("writer", writer);
/// assert_eq!(group.names().collect::<Vec<_>>(), ["reader", "writer"]);
/// ```
#[derive(Default)]
pub struct Group {
    pub(crate) members: Vec<(String, Box<dyn Runnable>)>,
}

impl Group {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a member named `name`. Names are checked when the group is started.
    pub fn with(mut self, name: impl Into<String>, r: impl Runnable) -> Self {
        self.members.push((name.into(), Box::new(r)));
        self
    }

    /// The members' names, in start order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(n, _)| n.as_str())
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
