//! The node host: one actix actor per tree node, on a worker arbiter. It owns
//! the node's runnable and runs one incarnation at a time.
//!
//! The host decides nothing: it waits out the start delay, calls the
//! runnable, catches panics, enforces the shutdown timeout, and reports how
//! the incarnation ended. It carries out one consequence itself: when the
//! incarnation dies, it cancels the node's token and, in a one-for-all group,
//! the group's shared token, exactly what the processor will cancel for that
//! death. Done on this thread, the siblings placed with it stop in the same
//! turn and their exits reach the processor with the death, instead of two
//! thread crossings later. Stopping the host (the processor drops its address
//! when the node leaves the tree) drops the runnable.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use actix::fut::{ready, wrap_future, ActorFutureExt};
use actix::{Actor, AsyncContext, Handler};
use futures::channel::oneshot;
use futures::future::{Either, FutureExt, LocalBoxFuture};
use log::Level;
use tokio_util::sync::CancellationToken;

use crate::api::capture::Scoped;
use crate::api::context::{Context, Link};
use crate::api::runnable::Runnable;
use crate::api::wire::inbox::{Began, Exited};
use crate::api::wire::protocol::{Incarnation, Start};
use crate::api::wire::settle::Starting;
use crate::model::error::RunResult;
use crate::model::exit::{is_death, panic_message, Outcome};
use crate::model::logtree::LogTree;
use crate::model::policy::Shutdown;
use crate::model::voice::{Said, Voice};
use crate::runtime::stall::Watched;

pub(crate) struct Host {
    runnable: Box<dyn Runnable>,
    processor: Link,
    logs: LogTree,
}

impl Host {
    pub fn new(runnable: Box<dyn Runnable>, processor: Link, logs: LogTree) -> Host {
        Host {
            runnable,
            processor,
            logs,
        }
    }
}

impl Actor for Host {
    type Context = actix::Context<Self>;
}

impl Handler<Start> for Host {
    type Result = ();

    fn handle(&mut self, msg: Start, actx: &mut Self::Context) {
        let Start {
            ctx:
                Incarnation {
                    dn,
                    node,
                    incarnation,
                    token,
                    #[cfg(feature = "tracing")]
                    span,
                },
            delay,
            gate,
            shutdown,
            restart,
            takes_down,
            start_timeout,
            mut starting,
            mut polled,
        } = msg;
        // Made here rather than by the processor: the context is used and
        // dropped on this thread, and so are the shared handles it clones.
        let ctx = Context::new(
            self.logs.clone(),
            dn,
            node,
            incarnation,
            token.clone(),
            self.processor.clone(),
        );
        let run_ctx = ctx.clone();
        let guard_ctx = ctx.clone();
        let logger = ctx.logger();
        let run_ctx_node = ctx.node();
        let incarnation = wrap_future::<_, Self>(wait_out(delay, gate, token.clone()))
            .then(move |go, host, _| {
                let Go::Start(opened) = go else {
                    return Either::Left(ready(Outcome::CancelledBeforeStart));
                };
                starting = starting.or(opened);
                if !delay.is_zero() {
                    host.processor.began(Began {
                        node: run_ctx.node(),
                        incarnation: run_ctx.incarnation(),
                    });
                }
                let shutdown = host.runnable.shutdown(shutdown);
                let called = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let _inside = crate::api::panics::Inside::enter();
                    crate::api::capture::scoped_call(
                        &logger,
                        #[cfg(feature = "tracing")]
                        &span,
                        || host.runnable.run(run_ctx),
                    )
                }));
                match called {
                    Ok(fut) => {
                        let fut = Watched {
                            inner: Scoped {
                                inner: FirstPoll {
                                    inner: fut,
                                    starting: starting.take(),
                                    polled: polled.take(),
                                },
                                logger,
                                #[cfg(feature = "tracing")]
                                span,
                            },
                            node: run_ctx_node,
                        };
                        let guarded = guard(fut, token, shutdown, start_timeout, guard_ctx);
                        Either::Right(wrap_future(guarded))
                    }
                    Err(payload) => {
                        // Its incarnation began (and ended) in `run`.
                        if let Some(polled) = polled.take() {
                            let _ = polled.send(());
                        }
                        Either::Left(ready(Outcome::Panicked(panicked(&*payload))))
                    }
                }
            })
            .map(move |outcome, host, _| {
                let exit = ctx.finish(outcome);
                if !exit.cancelled && is_death(&exit, restart) {
                    // What the processor will cancel for this death anyway:
                    // done here, the siblings on this worker stop in this
                    // very turn, and their exits reach the processor in
                    // the same batch as this one.
                    ctx.token().cancel();
                    if let Some(group) = takes_down {
                        group.cancel();
                    }
                }
                host.processor.exited(Exited {
                    node: ctx.node(),
                    incarnation: ctx.incarnation(),
                    exit,
                });
            });
        actx.spawn(incarnation);
    }
}

/// Whether to start, after the gate and the delay.
enum Go {
    /// Start, holding the gate's settle guard if there was a gate.
    Start(Option<Starting>),
    /// Cancelled (or the gate was dropped) first.
    Stop,
}

/// Waits for the gate, then `delay`, unless the token is cancelled first.
///
/// A start with neither (a first start, a restart without backoff, a
/// restart on request) was acknowledged to whoever asked for it: it starts
/// even if its token is cancelled meanwhile, so that its runnable is polled
/// at least once and sees the cancellation (a job handed to it is never
/// lost unseen). Only a start nobody was told of yet may be dropped
/// unpolled: one waiting out its backoff, or an ordered start's member whose
/// predecessor never became Healthy (as OTP never starts the children after
/// a failed `init`).
async fn wait_out(
    delay: Duration,
    gate: Option<oneshot::Receiver<Starting>>,
    token: CancellationToken,
) -> Go {
    if delay.is_zero() && gate.is_none() {
        return Go::Start(None);
    }
    if token.is_cancelled() {
        return Go::Stop;
    }
    let mut opened = None;
    if let Some(gate) = gate {
        // Biased: a gate opened in the same turn as the cancellation does
        // not start the member, whatever order the two are seen in.
        tokio::select! {
            biased;
            _ = token.cancelled() => return Go::Stop,
            g = gate => match g {
                Ok(guard) => opened = Some(guard),
                Err(_) => return Go::Stop,
            },
        }
    }
    if delay.is_zero() {
        return Go::Start(opened);
    }
    // Boxed: the timer exists only while a backoff is waited out, and the
    // incarnation future of every node would otherwise carry its size.
    tokio::select! {
        biased;
        _ = token.cancelled() => Go::Stop,
        _ = Box::pin(tokio::time::sleep(delay)) => {
            if token.is_cancelled() { Go::Stop } else { Go::Start(opened) }
        }
    }
}

/// Runs the runnable's future, catching its panics, and drops it if it is
/// still running when its stop mode says so after the token was cancelled.
async fn guard(
    fut: impl Future<Output = RunResult>,
    token: CancellationToken,
    shutdown: Shutdown,
    start_deadline: Option<Duration>,
    ctx: Context,
) -> Outcome {
    let deadline = async move {
        token.cancelled().await;
        match shutdown {
            // Boxed, so that the timer is only allocated once cancellation came.
            Shutdown::Timeout(d) => Box::pin(tokio::time::sleep(d)).await,
            Shutdown::Brutal => {}
            Shutdown::Infinity => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    // Still NEW at the start deadline: a death. Boxed, and only when a
    // deadline is set: this future lives as long as the node, in every node.
    let late = match start_deadline {
        Some(d) => {
            let probe = ctx.clone();
            Either::Right(Box::pin(async move {
                tokio::time::sleep(d).await;
                if probe.is_new() {
                    return d;
                }
                std::future::pending().await
            }))
        }
        None => Either::Left(std::future::pending()),
    };
    let outcome = tokio::select! {
        biased;
        res = AssertUnwindSafe(fut).catch_unwind() => match res {
            Ok(result) => Outcome::Returned(result),
            Err(payload) => Outcome::Panicked(panicked(&*payload)),
        },
        _ = &mut deadline => Outcome::Aborted,
        d = late => Outcome::StartTimedOut(d),
    };
    // Its tasks end with it: a stopping node's get the rest of its stop
    // deadline, then are aborted (and said, and counted); otherwise they
    // are aborted at once.
    // (Boxed, likewise: few nodes have tasks.)
    if let Some(tasks) = ctx.tasks() {
        let stopping = ctx.is_cancelled();
        if stopping {
            let waiting = !tasks.running().is_empty() && !matches!(outcome, Outcome::Aborted);
            let since = tokio::time::Instant::now();
            Box::pin(async {
                tokio::select! {
                    biased;
                    _ = tasks.join() => {}
                    _ = deadline.as_mut() => {}
                }
            })
            .await;
            let left = tasks.running();
            if waiting && !left.is_empty() {
                say_tasks_held_the_stop(&ctx, &left, since.elapsed());
            }
        }
        tasks.abort(stopping);
    }
    outcome
}

/// A stopping node's runnable returned, but tasks of its incarnation were
/// still running at the stop deadline: they held the stop all that time
/// (a task that ignores `ctx.cancelled()` lengthens every stop of its
/// node) and are aborted now. Said naming the node and the tasks.
fn say_tasks_held_the_stop(ctx: &Context, tasks: &[u32], held: Duration) {
    let names: Vec<String> = tasks.iter().map(|n| format!("task {n}")).collect();
    let message = format!(
        "{} returned after its cancellation, but its {} held its stop for {held:?} \
         and {} aborted at the stop deadline: a task should end when ctx.cancelled() resolves",
        ctx.dn(),
        names.join(", "),
        if names.len() == 1 { "was" } else { "were" }
    );
    let said = Said::new(Level::Warn, "tasks_held_stop", message);
    Voice::new(ctx.logs().clone()).say(said.dn(&Arc::from(ctx.dn())));
}

/// A caught panic's message, with the backtrace the panic hook kept, if any.
fn panicked(payload: &(dyn std::any::Any + Send)) -> String {
    let message = panic_message(payload);
    match crate::api::panics::take_backtrace() {
        Some(bt) => format!("{message}\nstack backtrace:\n{bt}"),
        None => message,
    }
}

/// After the first poll of the inner future: releases its [`Starting`],
/// and tells whoever waits for the start (`start_child`) that it began.
struct FirstPoll {
    inner: LocalBoxFuture<'static, RunResult>,
    starting: Option<Starting>,
    polled: Option<oneshot::Sender<()>>,
}

impl Future for FirstPoll {
    type Output = RunResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<RunResult> {
        let res = self.inner.as_mut().poll(cx);
        self.starting = None;
        if let Some(polled) = self.polled.take() {
            let _ = polled.send(());
        }
        res
    }
}
