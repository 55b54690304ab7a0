//! A start acknowledged to its caller is a runnable that runs: for every way
//! a node is started, an incarnation whose start was acknowledged is polled
//! at least once and sees its context cancelled, whatever stops it next
//! (a termination, a shutdown, its parent's restart) and however soon.
//!
//! Each runnable here records its first poll and its sight of the
//! cancellation in a [`Seen`] book. The stops are sent so that the processor
//! handles them in the same turn as the start (its mailbox holds both), so
//! that the host gets the start with the token already cancelled: the case
//! where a start used to be dropped unpolled.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_supervisor::{
    Child, Context as Node, DynamicGroup, Group, RunError, RunResult, Signal, Strategy,
};
use common::*;

/// How many incarnations began (were polled) and how many saw their
/// cancellation.
#[derive(Clone, Default)]
struct Seen {
    polled: Arc<AtomicUsize>,
    saw_cancel: Arc<AtomicUsize>,
}

impl Seen {
    fn polled(&self) -> usize {
        self.polled.load(Ordering::SeqCst)
    }

    fn saw_cancel(&self) -> usize {
        self.saw_cancel.load(Ordering::SeqCst)
    }

    /// A runnable that records its first poll, serves until cancelled and
    /// records that it saw the cancellation.
    fn runnable(
        &self,
    ) -> impl FnMut(Node) -> futures::future::LocalBoxFuture<'static, RunResult> + Send {
        let seen = self.clone();
        move |ctx: Node| {
            let seen = seen.clone();
            Box::pin(async move {
                seen.polled.fetch_add(1, Ordering::SeqCst);
                if !ctx.is_cancelled() {
                    ctx.signal(Signal::Healthy)?;
                }
                ctx.cancelled().await;
                seen.saw_cancel.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        }
    }
}

/// A supervisor on the test's own arbiter (one thread: the interleaving
/// below is the same every run) whose root runs a dynamic node `jobs`.
fn with_jobs() -> actix_supervisor::Supervisor {
    builder().current_arbiter().start(|ctx: Node| async move {
        ctx.run_dynamic("jobs", DynamicGroup::new()).await?;
        serve(&ctx).await
    })
}

#[actix_rt::test]
async fn a_child_started_then_terminated_at_once_runs_and_sees_its_cancellation_1000_times() {
    let sup = with_jobs();
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    let seen = Seen::default();
    for i in 0..1000 {
        let name = format!("job_{i}");
        // Both requests are in the processor's mailbox before it runs: the
        // termination is handled in the same turn as the start.
        let (started, terminated) = futures::join!(
            jobs.start_child(Child::new(name.clone(), seen.runnable())),
            jobs.terminate_child(&name)
        );
        assert_eq!(started, Ok(format!("root.jobs.{name}")));
        assert_eq!(terminated, Ok(()));
        assert_eq!(seen.polled(), i + 1, "job {i} was never polled");
        assert_eq!(
            seen.saw_cancel(),
            i + 1,
            "job {i} never saw its cancellation"
        );
    }
    sup.shutdown().await;
}

#[actix_rt::test]
async fn children_started_then_shut_down_all_run_and_see_the_cancellation() {
    let sup = with_jobs();
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    let seen = Seen::default();
    let starts: Vec<_> = (0..200)
        .map(|i| jobs.start_child(Child::new(format!("job_{i}"), seen.runnable())))
        .collect();
    let (started, ()) = futures::join!(futures::future::join_all(starts), sup.shutdown());
    let acknowledged = started.iter().filter(|s| s.is_ok()).count();
    assert_eq!(acknowledged, 200, "{started:?}");
    assert_eq!(seen.polled(), 200);
    assert_eq!(seen.saw_cancel(), 200);
}

#[actix_rt::test]
async fn a_child_started_as_its_dynamic_nodes_parent_restarts_runs_and_sees_it() {
    let sup = builder().current_arbiter().start(|ctx: Node| async move {
        ctx.run("mid", |ctx: Node| async move {
            ctx.run_dynamic("jobs", DynamicGroup::new()).await?;
            serve(&ctx).await
        })
        .await?;
        serve(&ctx).await
    });
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.mid.jobs");
    let seen = Seen::default();
    let (started, restarted) = futures::join!(
        jobs.start_child(Child::new("job", seen.runnable())),
        sup.restart("root.mid")
    );
    assert_eq!(started, Ok("root.mid.jobs.job".to_string()));
    assert_eq!(restarted, Ok(()));
    until_back(&sup, "root.mid", 1).await;
    assert_eq!((seen.polled(), seen.saw_cancel()), (1, 1));
    // The dynamic node came back empty, as it should.
    assert_eq!(jobs.count().await, Ok(0));
    sup.shutdown().await;
}

/// An actor child: its `started` runs, and so does its `stopping`.
struct Job(Seen);

impl Actor for Job {
    type Context = actix::Context<Self>;
    fn started(&mut self, _: &mut Self::Context) {
        self.0.polled.fetch_add(1, Ordering::SeqCst);
    }
    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.0.saw_cancel.fetch_add(1, Ordering::SeqCst);
        Running::Stop
    }
}

#[actix_rt::test]
async fn an_actor_started_then_terminated_at_once_starts_and_stops() {
    let sup = with_jobs();
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    let seen = Seen::default();
    for i in 0..100 {
        let name = format!("actor_{i}");
        let factory = {
            let seen = seen.clone();
            move || Job(seen.clone())
        };
        let (started, terminated) = futures::join!(
            jobs.start_actor(&name, factory),
            jobs.terminate_child(&name)
        );
        assert!(started.is_ok(), "{i}: {:?}", started.err());
        assert_eq!(terminated, Ok(()));
        assert_eq!(
            (seen.polled(), seen.saw_cancel()),
            (i + 1, i + 1),
            "actor {i}"
        );
    }
    sup.shutdown().await;
}

/// `run_group` (and `run`, a group of one): the caller's answer is the
/// acknowledgement; a shutdown right behind it in the mailbox still finds
/// every child polled and seeing the cancellation.
#[actix_rt::test]
async fn children_of_run_group_and_run_shut_down_at_once_run_and_see_it() {
    let seen = Seen::default();
    let in_root = seen.clone();
    let sup = builder().current_arbiter().start(move |ctx: Node| {
        let seen = in_root.clone();
        async move {
            let group = Group::new()
                .with("a", seen.runnable())
                .with("b", seen.runnable())
                .with("c", seen.runnable());
            let inside = ctx.supervisor();
            let (grouped, ()) = futures::join!(ctx.run_group(group), inside.shutdown());
            grouped?;
            // Too late for more children: refused, not dropped unseen.
            let more = ctx.run("d", seen.runnable()).await;
            assert!(
                matches!(
                    more,
                    Err(RunError::ShutDown { .. } | RunError::Cancelled { .. })
                ),
                "{more:?}"
            );
            ctx.cancelled().await;
            Ok(())
        }
    });
    sup.join().await;
    assert_eq!((seen.polled(), seen.saw_cancel()), (3, 3));
}

/// A restart without a backoff is an acknowledged start too. Both members
/// of a one-for-all group die (their exits in the inbox), and a shutdown
/// request is behind them: the processor takes the exits first, restarts
/// the group at once (a zero backoff), then shuts down in the same turn,
/// before the hosts have the new incarnations. They run, and see it.
#[actix_rt::test]
async fn a_restart_without_backoff_then_a_shutdown_in_the_same_turn_runs_them() {
    let seen = Seen::default();
    // Each member's first incarnation hands the test the order to die.
    let (orders_tx, mut orders) = tokio::sync::mpsc::unbounded_channel();
    let member = || {
        let (seen, orders) = (seen.clone(), orders_tx.clone());
        let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
        move |ctx: Node| {
            let (seen, orders, first) = (seen.clone(), orders.clone(), first.clone());
            async move {
                seen.polled.fetch_add(1, Ordering::SeqCst);
                if first.swap(false, Ordering::SeqCst) {
                    let (order, die) = tokio::sync::oneshot::channel::<()>();
                    let _ = orders.send(order);
                    let _ = die.await;
                    return Err("told to die".into());
                }
                ctx.cancelled().await;
                seen.saw_cancel.fetch_add(1, Ordering::SeqCst);
                RunResult::Ok(())
            }
        }
    };
    let group = Group::new()
        .with("a", member())
        .with("b", member())
        .strategy(Strategy::OneForAll);
    let no_backoff = backoff_ms(0);
    let sup = root_with(builder().current_arbiter().backoff(no_backoff), group);
    let (a, b) = (orders.recv().await.unwrap(), orders.recv().await.unwrap());
    // Both die, and the shutdown request is sent before the processor runs.
    a.send(()).unwrap();
    b.send(()).unwrap();
    sup.shutdown().await;
    // Two first incarnations that died, two restarted ones that saw the
    // shutdown's cancellation.
    assert_eq!((seen.polled(), seen.saw_cancel()), (4, 2));
}

/// A restart on request is an acknowledged start: a shutdown right after it
/// finds the new incarnations polled and seeing it.
#[actix_rt::test]
async fn a_restart_on_request_then_a_shutdown_at_once_runs_the_new_incarnations() {
    let seen = Seen::default();
    let group = Group::new()
        .with("a", seen.runnable())
        .with("b", seen.runnable())
        .strategy(Strategy::OneForAll);
    let sup = root_with(builder().current_arbiter(), group);
    sup.wait_settled().await;
    assert_eq!(seen.polled(), 2);
    sup.restart("root.a").await.unwrap();
    sup.shutdown().await;
    // First incarnations: cancelled by the restart. Second ones: by the
    // shutdown, before their hosts had them.
    assert_eq!((seen.polled(), seen.saw_cancel()), (4, 4));
}

/// The exception: a restart still waiting out its backoff was told to
/// nobody, and a shutdown may drop it unpolled.
#[actix_rt::test]
async fn a_restart_waiting_out_its_backoff_may_be_dropped_unpolled() {
    tokio::time::pause();
    let polled = Arc::new(AtomicUsize::new(0));
    let counted = polled.clone();
    let sup = builder()
        .current_arbiter()
        .backoff(backoff_ms(1000))
        .start(move |ctx: Node| {
            let counted = counted.clone();
            async move {
                ctx.run("flaky", move |_: Node| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    async { Err::<(), _>("down".into()) }
                })
                .await?;
                serve(&ctx).await
            }
        });
    sup.wait_settled().await;
    assert_eq!(polled.load(Ordering::SeqCst), 1);
    assert!(info(&sup, "root.flaky").await.restart_at.is_some());
    sup.shutdown().await;
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        polled.load(Ordering::SeqCst),
        1,
        "the pending restart never ran"
    );
}
