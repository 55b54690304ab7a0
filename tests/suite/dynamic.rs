//! Dynamic nodes: children started and terminated at run time, their errors, one-for-one isolation, intensity and the empty restart, removal, actors, concurrency, shutdown.

use crate::common;

use std::time::Duration;

use actix::prelude::*;
use actix_supervisor::{
    Child, Context, DeliveryError, Dynamic, DynamicGroup, NodeKind, NodeState, Restart, RunError,
    RunResult, Signal, Supervisor, SupervisorBuilder,
};
use common::*;

/// A root that starts the dynamic node `jobs` (with `group`) on every
/// incarnation, then serves.
fn with_jobs(builder: SupervisorBuilder, group: DynamicGroup) -> Supervisor {
    builder.start(move |ctx: Context| async move {
        ctx.run_dynamic("jobs", group).await?;
        serve(&ctx).await
    })
}

/// Signals Done and returns: ends for good.
async fn finish(ctx: Context) -> RunResult {
    ctx.signal(Signal::Healthy)?;
    ctx.signal(Signal::Done)?;
    Ok(())
}

#[actix_rt::test]
async fn children_start_count_list_and_terminate() {
    let sup = with_jobs(builder(), DynamicGroup::new());
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    for name in ["b", "a", "c"] {
        let dn = jobs.start_child(Child::new(name, server())).await.unwrap();
        assert_eq!(dn, format!("root.jobs.{name}"));
    }
    sup.wait_settled().await;
    assert_eq!(jobs.count().await, Ok(3));
    let children = jobs.children().await.unwrap();
    let dns: Vec<&str> = children.iter().map(|n| n.dn.as_str()).collect();
    assert_eq!(dns, ["root.jobs.a", "root.jobs.b", "root.jobs.c"]);
    assert!(children.iter().all(|n| n.state == NodeState::Healthy));
    let node = info(&sup, "root.jobs").await;
    assert_eq!(
        (node.kind, node.state),
        (NodeKind::Dynamic, NodeState::Healthy)
    );
    assert_eq!((node.children_live, node.children_total), (3, 3));
    assert!(sup
        .render_text()
        .await
        .contains("dynamic: 3 of 3 children live"));

    jobs.terminate_child("b").await.unwrap();
    assert_eq!(jobs.count().await, Ok(2));
    assert!(
        sup.snapshot().await.iter().all(|n| n.dn != "root.jobs.b"),
        "a terminated child leaves no record"
    );
    // Its name is free again, and the new one starts from scratch.
    jobs.start_child(Child::new("b", server())).await.unwrap();
    sup.wait_settled().await;
    assert_eq!(info(&sup, "root.jobs.b").await.restarts, 0);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn bad_requests_get_errors_naming_the_dn() {
    let sup = with_jobs(builder(), DynamicGroup::new().max_children(2));
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    let err = jobs.start_child(Child::new("Bad Name", server())).await;
    assert_eq!(
        err,
        Err(RunError::InvalidName {
            dn: "root.jobs".into(),
            name: "Bad Name".into()
        })
    );
    jobs.start_child(Child::new("a", server())).await.unwrap();
    let err = jobs.start_child(Child::new("a", server())).await;
    assert_eq!(
        err,
        Err(RunError::DuplicateName {
            dn: "root.jobs".into(),
            name: "a".into()
        })
    );
    jobs.start_child(Child::new("b", server())).await.unwrap();
    let err = jobs.start_child(Child::new("c", server())).await;
    assert_eq!(
        err,
        Err(RunError::Full {
            dn: "root.jobs".into(),
            max: 2
        })
    );
    assert_eq!(
        jobs.terminate_child("nope").await,
        Err(RunError::NotFound {
            dn: "root.jobs.nope".into()
        })
    );
    for not_dynamic in ["root", "root.jobs.a", "root.nothing", "elsewhere"] {
        assert_eq!(
            sup.dynamic(not_dynamic).count().await,
            Err(RunError::NotFound {
                dn: not_dynamic.into()
            })
        );
    }
    let err = RunError::Full {
        dn: "root.jobs".into(),
        max: 2,
    };
    assert_eq!(
        err.to_string(),
        "root.jobs: the dynamic node is full (2 children)"
    );
    sup.shutdown().await;
    assert_eq!(
        jobs.start_child(Child::new("d", server())).await,
        Err(RunError::NotRunning {
            dn: "root.jobs".into()
        })
    );
}

#[actix_rt::test]
async fn a_death_restarts_that_child_alone() {
    let board = Switchboard::default();
    let sup = with_jobs(builder(), DynamicGroup::new());
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    for name in ["a", "b"] {
        jobs.start_child(Child::new(name, board.runnable()))
            .await
            .unwrap();
    }
    sup.wait_settled().await;
    assert!(board.kill("root.jobs.a").await);
    until_back(&sup, "root.jobs.a", 1).await;
    let (a, b) = (
        info(&sup, "root.jobs.a").await,
        info(&sup, "root.jobs.b").await,
    );
    assert_eq!((a.state, a.restarts), (NodeState::Healthy, 1));
    assert_eq!(
        (b.state, b.restarts, b.last_exit),
        (NodeState::Healthy, 0, None),
        "the sibling is untouched"
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn an_exceeded_intensity_kills_the_dynamic_node_which_comes_back_empty() {
    let board = Switchboard::default();
    let sup = with_jobs(
        builder(),
        DynamicGroup::new().max_restarts(0, Duration::from_secs(60)),
    );
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    jobs.start_child(Child::new("a", board.runnable()))
        .await
        .unwrap();
    jobs.start_child(Child::new("b", server())).await.unwrap();
    sup.wait_settled().await;
    assert!(board.kill("root.jobs.a").await);
    until_back(&sup, "root.jobs", 1).await;
    let node = info(&sup, "root.jobs").await;
    assert_eq!(node.children_total, 0, "restarted empty");
    assert_eq!(jobs.count().await, Ok(0));
    let reason = node.last_error.unwrap();
    assert!(reason.starts_with("restart intensity exceeded"), "{reason}");
    // The same handle reaches the new incarnation.
    jobs.start_child(Child::new("a", server())).await.unwrap();
    assert_eq!(jobs.count().await, Ok(1));
    sup.shutdown().await;
}

#[actix_rt::test]
async fn children_that_end_for_good_are_removed() {
    let sup = with_jobs(builder(), DynamicGroup::new());
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    jobs.start_child(Child::new("done", finish)).await.unwrap();
    let ok = |_: Context| async { RunResult::Ok(()) };
    let err = |_: Context| async { RunResult::Err("fails".into()) };
    jobs.start_child(Child::new("transient", ok).restart(Restart::Transient))
        .await
        .unwrap();
    jobs.start_child(Child::new("temporary", err).restart(Restart::Temporary))
        .await
        .unwrap();
    jobs.start_child(Child::new("stays", server()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while jobs.count().await != Ok(1) {
        sup.wait_settled().await;
        assert!(tokio::time::Instant::now() < deadline, "not removed");
    }
    let dns: Vec<String> = jobs
        .children()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.dn)
        .collect();
    assert_eq!(dns, ["root.jobs.stays"]);
    assert_eq!(sup.snapshot().await.len(), 3, "root, jobs, stays");
    sup.shutdown().await;
}

struct Echo;
impl Actor for Echo {
    type Context = actix::Context<Self>;
}

#[derive(Message)]
#[rtype(result = "u32")]
struct Ping(u32);

impl Handler<Ping> for Echo {
    type Result = u32;
    fn handle(&mut self, msg: Ping, _: &mut Self::Context) -> u32 {
        msg.0
    }
}

#[actix_rt::test]
async fn a_dynamic_actor_answers_until_removed_then_says_gone_at_once() {
    let sup = with_jobs(builder(), DynamicGroup::new());
    sup.wait_settled().await;
    let jobs: Dynamic = sup.dynamic("root.jobs");
    let echo = jobs.start_actor("echo", || Echo).await.unwrap();
    assert_eq!(echo.send(Ping(7)).await, Ok(7));
    jobs.terminate_child("echo").await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(1), echo.send(Ping(8)))
        .await
        .expect("answers at once, not after the send timeout");
    assert!(
        matches!(answer, Err(DeliveryError::Gone { .. })),
        "{answer:?}"
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn many_tasks_start_children_concurrently() {
    let sup = with_jobs(builder(), DynamicGroup::new());
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    let tasks: Vec<_> = (0..50)
        .map(|t| {
            let jobs = jobs.clone();
            actix_rt::spawn(async move {
                for i in 0..20 {
                    let name = format!("t{t}_{i}");
                    jobs.start_child(Child::new(name, server())).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(jobs.count().await, Ok(1000));
    sup.wait_settled().await;
    let live = sup.live_runnables().await;
    assert_eq!(live.len(), 1002, "root, jobs and every child run");
    sup.shutdown().await;
    assert!(sup.live_runnables().await.is_empty());
}

#[actix_rt::test]
async fn shutdown_stops_children_mid_start_and_a_termination_in_flight_resolves() {
    let sup = with_jobs(builder(), DynamicGroup::new());
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    for i in 0..200 {
        jobs.start_child(Child::new(format!("c{i}"), server()))
            .await
            .unwrap();
    }
    // Not waiting for them to run: shut down while they start.
    let terminating = jobs.terminate_child("c0");
    let (terminated, ()) = futures::join!(terminating, sup.shutdown());
    assert_eq!(terminated, Ok(()));
    assert!(sup.live_runnables().await.is_empty());
    assert_eq!(sup.join().await, actix_supervisor::Ended::ShutDown);
}

/// Removed children keep their log rings for a while (the last 1,024), then
/// release them: a churn of unique names that log does not grow the log tree.
#[actix_rt::test]
async fn the_logs_of_removed_children_are_kept_for_a_while_then_released() {
    let sup = with_jobs(builder(), DynamicGroup::new());
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    let logging = |ctx: Context| async move {
        actix_supervisor::node_info!(ctx, "job ran");
        finish(ctx).await
    };
    // In batches of 100: each batch logs, finishes and is removed before
    // the next starts, so removal order follows the batches.
    for batch in 0..12 {
        for i in batch * 100..(batch + 1) * 100 {
            jobs.start_child(Child::new(format!("j{i}"), logging))
                .await
                .unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while jobs.count().await != Ok(0) {
            sup.wait_settled().await;
            assert!(
                tokio::time::Instant::now() < deadline,
                "batch {batch} stays"
            );
        }
    }
    let logs = sup.logs();
    assert!(
        logs.dn_count() <= 1_024 + 2,
        "{} DNs keep logs",
        logs.dn_count()
    );
    assert_eq!(
        logs.tail("root.jobs.j1199", 1)[0].message,
        "job ran",
        "the last ones are kept"
    );
    assert!(
        logs.tail("root.jobs.j0", 1).is_empty(),
        "the first ones are released"
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_child_restarts_on_request_alone_and_uncounted() {
    let sup = with_jobs(
        builder(),
        DynamicGroup::new().max_restarts(0, Duration::from_secs(60)),
    );
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    for name in ["a", "b"] {
        jobs.start_child(Child::new(name, server())).await.unwrap();
    }
    sup.wait_settled().await;
    jobs.restart_child("a").await.unwrap();
    until_back(&sup, "root.jobs.a", 1).await;
    let (b, node) = (
        info(&sup, "root.jobs.b").await,
        info(&sup, "root.jobs").await,
    );
    assert_eq!(
        (b.restarts, node.restarts),
        (0, 0),
        "b untouched, nobody gave up"
    );
    assert_eq!(
        jobs.restart_child("nope").await,
        Err(RunError::NotFound {
            dn: "root.jobs.nope".into()
        })
    );
    sup.shutdown().await;
}

/// The children that ended for good are remembered (state, last exit,
/// when), readable from the handle and a query; the supervisor says when
/// one is terminated, leaves, or is restarted on request.
#[actix_rt::test]
async fn finished_children_are_remembered_and_said() {
    let sup = with_jobs(builder(), DynamicGroup::new());
    sup.wait_ready(Duration::from_secs(10)).await.unwrap();
    let jobs = sup.dynamic("root.jobs");
    jobs.start_child(Child::new("done", finish)).await.unwrap();
    jobs.start_child(Child::new("stopped", server()))
        .await
        .unwrap();
    jobs.start_child(Child::new("beta", server()))
        .await
        .unwrap();
    jobs.terminate_child("stopped").await.unwrap();
    jobs.restart_child("beta").await.unwrap();
    until_back(&sup, "root.jobs.beta", 1).await;
    sup.wait_settled().await;
    let finished = jobs.finished().await.unwrap();
    let seen: Vec<(&str, NodeState)> = finished.iter().map(|f| (f.dn.as_str(), f.state)).collect();
    assert!(
        seen.contains(&("root.jobs.done", NodeState::Done)),
        "{finished:?}"
    );
    assert!(
        seen.contains(&("root.jobs.stopped", NodeState::Cancelled)),
        "{finished:?}"
    );
    assert_eq!(seen.len(), 2, "{finished:?}");
    assert!(finished.iter().all(|f| f.last_exit.is_some()));
    // From a query (and so `/tree.json?finished=true`), on the dynamic node.
    let q = actix_supervisor::Query::new()
        .dn("root.jobs")
        .depth(0)
        .finished(true);
    let node = sup.query(&q).await.unwrap().nodes.remove(0);
    assert_eq!(node.finished, finished);
    let plain = sup
        .query(&actix_supervisor::Query::new().dn("root.jobs").depth(0))
        .await
        .unwrap();
    assert!(plain.nodes[0].finished.is_empty(), "only when asked");
    // Said: the termination, the removals, the restart on request (and no
    // "siblings" for a child restarted alone).
    let said = messages(&sup, actix_supervisor::LogQuery::dn("supervisor"));
    for line in [
        "root.jobs.stopped: terminated on request, removed",
        "root.jobs.done: ended for good (DONE, done), removed",
        "restarting root.jobs.beta at once, on request",
    ] {
        assert!(said.iter().any(|l| l == line), "{line:?} not in {said:#?}");
    }
    assert!(!said.iter().any(|l| l.contains("siblings")), "{said:#?}");
    sup.shutdown().await;
}
