//! Tasks tied to an incarnation (`Context::spawn`): they end with it however it ends, their panics are its death, and shutdown waits for them up to the stop deadline.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_supervisor::{Backoff, Context, NodeState, RunResult, Signal, TaskError};
use common::*;

/// Counts the tasks alive: one is made in each task, dropped when it ends.
struct Alive(Arc<AtomicUsize>);

impl Alive {
    fn new(count: &Arc<AtomicUsize>) -> Alive {
        count.fetch_add(1, Ordering::SeqCst);
        Alive(count.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits (bounded) until `cond` holds, settling the tree between looks.
async fn until(sup: &actix_supervisor::Supervisor, what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        sup.wait_settled().await;
        assert!(tokio::time::Instant::now() < deadline, "{what}");
    }
}

#[actix_rt::test]
async fn a_thousand_restarts_leave_one_looping_task_alive() {
    let alive = Arc::new(AtomicUsize::new(0));
    let starts = Arc::new(AtomicUsize::new(0));
    let (a, s) = (alive.clone(), starts.clone());
    let sup = root_with(
        builder().backoff(Backoff::default().initial(Duration::ZERO)),
        actix_supervisor::Group::new().with("flapper", move |ctx: Context| {
            let (alive, n) = (a.clone(), s.fetch_add(1, Ordering::SeqCst) + 1);
            async move {
                ctx.spawn(async move {
                    let _alive = Alive::new(&alive);
                    loop {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                });
                ctx.signal(Signal::Healthy)?;
                if n < 1_000 {
                    tokio::task::yield_now().await;
                    return RunResult::Err("flapping".into());
                }
                ctx.cancelled().await;
                Ok(())
            }
        }),
    );
    until(&sup, "1,000 starts", || {
        starts.load(Ordering::SeqCst) >= 1_000
    })
    .await;
    until(&sup, "one task alive", || alive.load(Ordering::SeqCst) == 1).await;
    assert_eq!(info(&sup, "root.flapper").await.restarts, 999);
    sup.shutdown().await;
    until(&sup, "no task alive", || alive.load(Ordering::SeqCst) == 0).await;
}

#[actix_rt::test]
async fn a_tasks_output_and_its_panic_which_is_the_nodes_death_naming_the_task() {
    let (tx, mut rx) = events();
    let first = Arc::new(AtomicBool::new(true));
    let sup = root_with(
        builder(),
        actix_supervisor::Group::new().with("x", move |ctx: Context| {
            let (tx, first) = (tx.clone(), first.swap(false, Ordering::SeqCst));
            async move {
                let answer = ctx.spawn(async { 42 }).await;
                let _ = tx.send(format!("answer {answer:?}"));
                ctx.signal(Signal::Healthy)?;
                if first {
                    let boom = ctx.spawn(async { panic!("boom") });
                    let _ = tx.send(format!("boom {:?}", boom.await));
                }
                ctx.cancelled().await;
                Ok(())
            }
        }),
    );
    assert_eq!(next(&mut rx).await, "answer Ok(42)");
    assert_eq!(
        next(&mut rx).await,
        format!(
            "boom {:?}",
            Err::<(), _>(TaskError::Panicked("boom".into()))
        )
    );
    assert_eq!(next(&mut rx).await, "answer Ok(42)", "restarted");
    sup.wait_settled().await;
    let x = info(&sup, "root.x").await;
    assert_eq!((x.state, x.restarts), (NodeState::Healthy, 1));
    assert_eq!(
        x.last_error.as_deref(),
        Some("panicked: task 2 panicked: boom")
    );
    let reports = sup
        .logs()
        .tail("supervisor", 50)
        .into_iter()
        .filter(|e| e.message.starts_with("root.x died:"))
        .count();
    assert_eq!(reports, 1, "one death report");
    sup.shutdown().await;
}

#[actix_rt::test]
async fn shutdown_waits_for_tasks_and_aborts_a_deaf_one_at_the_deadline() {
    let cleaned = Arc::new(AtomicBool::new(false));
    let c = cleaned.clone();
    let sup = root_with(
        builder().shutdown_timeout(Duration::from_millis(300)),
        actix_supervisor::Group::new()
            .with("tidy", move |ctx: Context| {
                let c = c.clone();
                async move {
                    let on_stop = ctx.clone();
                    ctx.spawn(async move {
                        on_stop.cancelled().await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        c.store(true, Ordering::SeqCst);
                    });
                    serve(&ctx).await
                }
            })
            .with("deaf", |ctx: Context| async move {
                ctx.spawn(std::future::pending::<()>());
                serve(&ctx).await
            }),
    );
    sup.wait_settled().await;
    let t = Instant::now();
    sup.shutdown().await;
    let took = t.elapsed();
    assert!(
        cleaned.load(Ordering::SeqCst),
        "shutdown waited for the task"
    );
    assert!(
        took >= Duration::from_millis(300),
        "the deaf task held its node until the deadline: {took:?}"
    );
    let deaf = info(&sup, "root.deaf").await;
    assert_eq!(deaf.state, NodeState::Cancelled);
    let exit = deaf.last_exit.unwrap();
    assert_eq!(exit.kind, actix_supervisor::ExitKind::Aborted, "{exit:?}");
    assert!(exit.reason.contains("1 task did not end"), "{exit:?}");
    // Said once, naming the node and its task; the tidy one is not.
    let said = messages(&sup, actix_supervisor::LogQuery::dn("supervisor"));
    let held: Vec<&String> = said
        .iter()
        .filter(|m| m.contains("held its stop"))
        .collect();
    assert_eq!(held.len(), 1, "{said:?}");
    assert!(
        held[0].starts_with("root.deaf returned") && held[0].contains("task 1"),
        "{held:?}"
    );
    // A straggler of the shutdown.
    assert_eq!(
        sup.join().await,
        actix_supervisor::Ended::Stragglers {
            dns: vec!["root.deaf".into()]
        }
    );
    assert!(sup.live_runnables().await.is_empty());
}

#[actix_rt::test]
async fn spawning_off_an_arbiter_is_an_error_not_a_panic() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sup = root_with(
        builder(),
        actix_supervisor::Group::new().with("x", move |ctx: Context| {
            let tx = tx.clone();
            async move {
                let elsewhere = ctx.clone();
                let handle = std::thread::spawn(move || elsewhere.spawn(async { 1 }));
                let task = handle.join().expect("no panic on the plain thread");
                let _ = tx.send(task.await);
                serve(&ctx).await
            }
        }),
    );
    assert_eq!(rx.recv().await, Some(Err(TaskError::NotOnArbiter)));
    sup.shutdown().await;
}

/// A task that ignores its node's cancellation is aborted at the stop
/// deadline, not left running detached: after a sibling's death restarts
/// its node three times, one task is alive, the new incarnation's.
#[actix_rt::test]
async fn a_deaf_task_is_aborted_at_the_deadline_when_its_node_restarts() {
    tokio::time::pause();
    let alive = Arc::new(AtomicUsize::new(0));
    let a = alive.clone();
    let (kills, mut kill_orders) = tokio::sync::mpsc::unbounded_channel();
    let group = actix_supervisor::Group::new()
        .with("holder", move |ctx: Context| {
            let alive = a.clone();
            async move {
                ctx.spawn(async move {
                    let _alive = Alive::new(&alive);
                    std::future::pending::<()>().await
                });
                serve(&ctx).await
            }
        })
        .with("killer", move |ctx: Context| {
            let kills = kills.clone();
            async move {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                kills.send(tx).unwrap();
                ctx.signal(Signal::Healthy)?;
                tokio::select! {
                    _ = rx => Err("told to die".into()),
                    _ = ctx.cancelled() => Ok(()),
                }
            }
        });
    let (seen, mut states) = transitions();
    let sup = root_with(
        builder()
            .current_arbiter()
            .metrics(seen)
            .backoff(backoff_ms(10))
            .shutdown_timeout(Duration::from_millis(300)),
        group,
    );
    for _ in 1..=3 {
        await_state(&mut states, "root.holder", NodeState::Healthy, 1).await;
        let order = kill_orders.recv().await.unwrap();
        order.send(()).unwrap();
        // The holder's deaf task holds its stop until the deadline.
        await_state(&mut states, "root.holder", NodeState::Cancelled, 1).await;
    }
    await_state(&mut states, "root.holder", NodeState::Healthy, 1).await;
    assert_eq!(
        alive.load(Ordering::SeqCst),
        1,
        "the old incarnations' tasks were aborted"
    );
    let holder = info(&sup, "root.holder").await;
    assert_eq!(
        holder.last_exit.map(|e| e.kind),
        Some(actix_supervisor::ExitKind::Aborted)
    );
    sup.shutdown().await;
    assert_eq!(alive.load(Ordering::SeqCst), 0);
}
