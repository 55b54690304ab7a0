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
use crate::api::context::{Context, Duties, Link};
use crate::api::lease::Tenure;
use crate::api::runnable::Runnable;
use crate::api::wire::inbox::{Began, Exited};
use crate::api::wire::protocol::{Incarnation, Start};
use crate::api::wire::settle::Starting;
use crate::model::error::RunResult;
use crate::model::exit::{is_death, panic_message, Hung, Outcome};
use crate::model::lease::Loss;
use crate::model::logtree::LogTree;
use crate::model::policy::{Restart, Shutdown};
use crate::model::voice::{Said, Voice};
use crate::runtime::seat::{Campaign, Seat, Watch};
use crate::runtime::stall::Watched;

pub(crate) struct Host {
    runnable: Box<dyn Runnable>,
    processor: Link,
    logs: LogTree,
    /// A singleton's lease (see `seat.rs`); `None` for every other node.
    seat: Option<Box<Seat>>,
    /// The node's DN, once known: what a singleton's lease is named.
    dn: Option<Arc<str>>,
}

impl Host {
    pub fn new(
        runnable: Box<dyn Runnable>,
        processor: Link,
        logs: LogTree,
        seat: Option<Box<Seat>>,
    ) -> Host {
        Host {
            runnable,
            processor,
            logs,
            seat,
            dn: None,
        }
    }
}

impl Actor for Host {
    type Context = actix::Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        // The node left the tree (its parent restarts, or it was removed)
        // while it held a lease: hand it over now rather than at its TTL.
        if let (Some(seat), Some(dn)) = (self.seat.as_mut(), self.dn.take()) {
            seat.abandon(dn);
        }
    }
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
            heartbeat,
            queue_alarm,
            handover,
            starting,
            polled,
        } = msg;
        if self.dn.is_none() {
            self.dn = Some(dn.clone());
        }
        let campaign = self.seat.as_mut().map(|seat| {
            let campaign = Campaign {
                lessor: seat.lessor.clone(),
                name: dn.clone(),
                token: token.clone(),
                link: self.processor.clone(),
                node,
                incarnation,
            };
            (campaign, seat.tenure.take())
        });
        let prepared = prepare(
            delay,
            gate,
            token.clone(),
            campaign,
            handover,
            starting,
            polled,
        );
        let incarnation = wrap_future::<_, Self>(prepared)
            .then(move |prepared, host, _| {
                let tenure = prepared.tenure();
                // Made here rather than by the processor: the context is
                // used and dropped on this thread, and so are the shared
                // handles it clones.
                let ctx = Context::new(
                    host.logs.clone(),
                    dn,
                    node,
                    incarnation,
                    token.clone(),
                    host.processor.clone(),
                    Duties {
                        lease: tenure.clone(),
                        heartbeat,
                        queue_alarm,
                    },
                );
                let Prepared::Run {
                    starting, polled, ..
                } = prepared
                else {
                    let outcome = Outcome::CancelledBeforeStart;
                    return Either::Left(ready((outcome, None, tenure, ctx)));
                };
                if !delay.is_zero() {
                    host.processor.began(Began { node, incarnation });
                }
                let shutdown = host.runnable.shutdown(shutdown);
                #[cfg(feature = "tracing")]
                let called = host.call(&ctx, starting, polled, span);
                #[cfg(not(feature = "tracing"))]
                let called = host.call(&ctx, starting, polled);
                let fut = match called {
                    Ok(fut) => fut,
                    Err(outcome) => return Either::Left(ready((outcome, None, tenure, ctx))),
                };
                let limits = Limits {
                    shutdown,
                    start_deadline: start_timeout,
                    heartbeat,
                };
                let guarded = guard(fut, token, limits, ctx.clone(), tenure.clone())
                    .map(move |(outcome, lost)| (outcome, lost, tenure, ctx));
                Either::Right(wrap_future(guarded))
            })
            .then(move |(outcome, lost, tenure, ctx), host, _| {
                host.ended(ctx, outcome, lost, tenure, restart, takes_down)
            });
        actx.spawn(incarnation);
    }
}

impl Host {
    /// Calls the runnable for `ctx`'s incarnation, catching a panic in
    /// `run`, and wraps its future: the first poll releases `starting` and
    /// answers `polled`; the stall watch and the log capture see each poll.
    fn call(
        &mut self,
        ctx: &Context,
        starting: Option<Starting>,
        polled: Option<oneshot::Sender<()>>,
        #[cfg(feature = "tracing")] span: ::tracing::Span,
    ) -> Result<Watched<Scoped<FirstPoll>>, Outcome> {
        let logger = ctx.logger();
        let run_ctx = ctx.clone();
        let called = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _inside = crate::api::panics::Inside::enter();
            crate::api::capture::scoped_call(
                &logger,
                #[cfg(feature = "tracing")]
                &span,
                || self.runnable.run(run_ctx),
            )
        }));
        match called {
            Ok(fut) => Ok(Watched {
                inner: Scoped {
                    inner: FirstPoll {
                        inner: fut,
                        starting,
                        polled,
                    },
                    logger,
                    #[cfg(feature = "tracing")]
                    span,
                },
                node: ctx.node(),
            }),
            Err(payload) => {
                // Its incarnation began (and ended) in `run`.
                if let Some(polled) = polled {
                    let _ = polled.send(());
                }
                Err(Outcome::Panicked(panicked(&*payload)))
            }
        }
    }

    /// The incarnation ended: takes down at once what its death takes
    /// down, keeps or gives up a singleton's tenure, and reports the exit.
    fn ended(
        &mut self,
        ctx: Context,
        outcome: Outcome,
        lost: Option<Loss>,
        tenure: Option<Tenure>,
        restart: Restart,
        takes_down: Option<CancellationToken>,
    ) -> impl actix::ActorFuture<Self, Output = ()> {
        let mut exit = ctx.finish(outcome);
        exit.lease_lost = lost;
        let death = !exit.cancelled && is_death(&exit, restart);
        if death {
            // What the processor will cancel for this death anyway: done
            // here, the siblings on this worker stop in this very turn,
            // and their exits reach the processor in the same batch as
            // this one.
            ctx.token().cancel();
            if let Some(group) = takes_down {
                group.cancel();
            }
        }
        // A tenure that fell is gone; one that stands is kept for the next
        // incarnation, unless the supervisor is stopping: then it is given
        // up before the exit is reported, so that the stop completes only
        // once the lease is free (a rolling deploy hands over at once).
        let tenure = tenure.filter(|_| lost.is_none());
        let mut release = None;
        if let Some(seat) = self.seat.as_mut() {
            match tenure {
                Some(t) if !death && seat.top.is_cancelled() => {
                    let campaign = Campaign {
                        lessor: seat.lessor.clone(),
                        name: Arc::from(ctx.dn()),
                        token: ctx.token().clone(),
                        link: self.processor.clone(),
                        node: ctx.node(),
                        incarnation: ctx.incarnation(),
                    };
                    release = Some(async move { campaign.release(t, "stopping").await });
                }
                kept => seat.tenure = kept,
            }
        }
        let released = match release {
            Some(r) => Either::Left(r),
            None => Either::Right(std::future::ready(())),
        };
        wrap_future::<_, Self>(released).map(move |(), host, _| {
            host.processor.exited(Exited {
                node: ctx.node(),
                incarnation: ctx.incarnation(),
                exit,
            });
        })
    }
}

/// Before the runnable runs.
enum Prepared {
    /// Run it, with the gate's settle guard if there was a gate, whoever
    /// waits for its first poll, and a singleton's tenure.
    Run {
        starting: Option<Starting>,
        polled: Option<oneshot::Sender<()>>,
        tenure: Option<Tenure>,
    },
    /// Cancelled first (or the gate was dropped); a tenure still held.
    Stop { tenure: Option<Tenure> },
}

impl Prepared {
    fn tenure(&self) -> Option<Tenure> {
        match self {
            Prepared::Run { tenure, .. } | Prepared::Stop { tenure } => tenure.clone(),
        }
    }
}

/// What comes before the runnable runs: a singleton's handover (its lease
/// given up after too many restarts), the gate and the backoff
/// ([`wait_out`]), and a singleton's claim to its lease (see `seat.rs`).
async fn prepare(
    delay: Duration,
    gate: Option<oneshot::Receiver<Starting>>,
    token: CancellationToken,
    campaign: Option<(Campaign, Option<Tenure>)>,
    handover: bool,
    starting: Option<Starting>,
    mut polled: Option<oneshot::Sender<()>>,
) -> Prepared {
    let Some((campaign, mut held)) = campaign else {
        return match wait_out(delay, gate, token).await {
            Go::Start(opened) => Prepared::Run {
                starting: starting.or(opened),
                polled,
                tenure: None,
            },
            Go::Stop => Prepared::Stop { tenure: None },
        };
    };
    if handover {
        if let Some(t) = held.take() {
            campaign
                .release(t, "handing over after too many restarts")
                .await;
        }
    }
    let mut starting = match wait_out(delay, gate, token).await {
        Go::Start(opened) => starting.or(opened),
        Go::Stop => return Prepared::Stop { tenure: held },
    };
    match campaign.claim(held, &mut starting, &mut polled).await {
        Some(tenure) => Prepared::Run {
            starting,
            polled,
            tenure: Some(tenure),
        },
        None => Prepared::Stop { tenure: None },
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

/// What bounds an incarnation in time: its stop mode, its start deadline
/// and its heartbeat.
struct Limits {
    shutdown: Shutdown,
    start_deadline: Option<Duration>,
    heartbeat: Option<Duration>,
}

/// Runs the runnable's future, catching its panics, and drops it if it is
/// still running when its stop mode says so after the token was cancelled.
/// A singleton's runnable is also cancelled when its tenure is doomed, and
/// dropped at the fence (never polled past it): the loss is returned. A
/// node with a heartbeat that misses it is cancelled (and reported at once),
/// its stop mode honoured; its exit then carries the missed heartbeat.
async fn guard(
    fut: impl Future<Output = RunResult>,
    token: CancellationToken,
    limits: Limits,
    ctx: Context,
    tenure: Option<Tenure>,
) -> (Outcome, Option<Loss>) {
    let Limits {
        shutdown,
        start_deadline,
        heartbeat,
    } = limits;
    // Boxed, and only for a singleton: the incarnation future of every
    // node would otherwise carry its size.
    let watch = tenure.map(|t| Box::new(Watch::new(t)));
    let watch = watch.as_deref();
    let stop_token = token.clone();
    let deadline = async move {
        let stop = async {
            stop_token.cancelled().await;
            match shutdown {
                // Boxed, so that the timer is only allocated once cancellation came.
                Shutdown::Timeout(d) => Box::pin(tokio::time::sleep(d)).await,
                Shutdown::Brutal => {}
                Shutdown::Infinity => std::future::pending().await,
            }
        };
        match watch {
            // A singleton's stop mode never extends past its fence.
            Some(w) => {
                tokio::select! {
                    _ = stop => {}
                    _ = Box::pin(w.tenure.fenced()) => {}
                }
            }
            None => stop.await,
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
    let (past_fence, doomed) = match watch {
        Some(w) => (
            Either::Left(w.past_fence()),
            Either::Left(Box::pin(w.cancel_when_doomed(&token))),
        ),
        None => (
            Either::Right(std::future::pending()),
            Either::Right(std::future::pending()),
        ),
    };
    // HEALTHY and no beat for a heartbeat period: hung. Boxed, and only
    // with a heartbeat, likewise.
    let hung = match heartbeat {
        Some(every) => Either::Right(Box::pin(missed_beat(ctx.clone(), every))),
        None => Either::Left(std::future::pending()),
    };
    let (mut past_fence, mut doomed) = (past_fence, doomed);
    let fut = AssertUnwindSafe(fut).catch_unwind();
    tokio::pin!(fut);
    let returned = |res: std::thread::Result<RunResult>| match res {
        Ok(result) => Outcome::Returned(result),
        Err(payload) => Outcome::Panicked(panicked(&*payload)),
    };
    // Biased: past the fence, the runnable is not polled again, whatever
    // woke the task.
    let mut missed = None;
    let mut outcome = tokio::select! {
        biased;
        _ = &mut past_fence => Outcome::Aborted,
        () = &mut doomed => Outcome::Aborted,
        res = &mut fut => returned(res),
        _ = &mut deadline => Outcome::Aborted,
        d = late => Outcome::StartTimedOut(d),
        h = hung => {
            missed = Some(h);
            Outcome::Aborted
        }
    };
    if let Some(h) = &missed {
        // Stopped as any cancelled node is, by its stop mode: it may still
        // come unstuck and return.
        ctx.report_hung(h.clone());
        token.cancel();
        outcome = tokio::select! {
            biased;
            _ = &mut past_fence => Outcome::Aborted,
            res = &mut fut => returned(res),
            _ = &mut deadline => Outcome::Aborted,
        };
    }
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
    if let Some(h) = missed {
        ctx.set_hung(h);
    }
    (outcome, watch.and_then(|w| w.lost.get()))
}

/// Resolves once `ctx`'s node, HEALTHY, has not beaten for `every`. NEW
/// does not count (the start deadline covers it), DONE ends the watch.
async fn missed_beat(ctx: Context, every: Duration) -> Hung {
    loop {
        let Some(heart) = ctx.heart() else {
            return std::future::pending().await;
        };
        if ctx.done_signalled() {
            return std::future::pending().await;
        }
        if ctx.is_new() {
            tokio::time::sleep(every).await;
            continue;
        }
        let (since, handling) = heart.since_beat();
        if since >= every {
            return Hung { every, handling };
        }
        tokio::time::sleep(every - since).await;
    }
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
