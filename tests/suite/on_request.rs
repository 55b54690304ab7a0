//! An incarnation's life on request and by deadline: `Supervisor::restart` restarts a node as its group's unit without backoff or intensity; `start_timeout` kills a node stuck in its set-up.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_supervisor::testing::InMemoryMetrics;
use actix_supervisor::{
    Child, Context, ExitKind, Group, NodeState, RunError, Strategy, Supervisor,
};
use common::*;

/// root → one group of `names` with `strategy`; no restart may be counted
/// (intensity 0): a restart on request must not make anyone give up.
fn tree(strategy: Strategy, names: &[&str], exits: Arc<InMemoryMetrics>) -> Supervisor {
    let mut group = Group::new().strategy(strategy);
    for name in names {
        group = group.with(*name, server());
    }
    root_with(
        builder()
            .max_restarts(0, Duration::from_secs(60))
            .metrics(exits),
        group,
    )
}

async fn restarts(sup: &Supervisor, dns: &[&str]) -> Vec<(NodeState, u64)> {
    let mut out = Vec::new();
    for dn in dns {
        let n = info(sup, dn).await;
        out.push((n.state, n.restarts));
    }
    out
}

#[actix_rt::test]
async fn a_restart_on_request_restarts_the_unit_its_strategy_defines() {
    const H: NodeState = NodeState::Healthy;
    // One-for-all: the whole group.
    let exits = Arc::new(InMemoryMetrics::default());
    let sup = tree(Strategy::OneForAll, &["a", "b"], exits.clone());
    sup.wait_settled().await;
    sup.restart("root.a").await.unwrap();
    until_back(&sup, "root.a", 1).await;
    until_back(&sup, "root.b", 1).await;
    assert_eq!(restarts(&sup, &["root"]).await, [(H, 0)], "nobody gave up");
    let seen = exits.exits();
    assert!(
        seen.contains(&("root.a".into(), ExitKind::Restarted)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("root.b".into(), ExitKind::Cancelled)),
        "{seen:?}"
    );
    let a = info(&sup, "root.a").await;
    assert_eq!(a.last_exit.unwrap().reason, "restarted on request");
    assert_eq!(a.last_error, None, "not a death");
    sup.shutdown().await;

    // One-for-one: that node alone.
    let sup = tree(Strategy::OneForOne, &["a", "b"], Arc::default());
    sup.wait_settled().await;
    sup.restart("root.b").await.unwrap();
    until_back(&sup, "root.b", 1).await;
    assert_eq!(restarts(&sup, &["root", "root.a"]).await, [(H, 0), (H, 0)]);
    sup.shutdown().await;

    // Rest-for-one: the node and those after it.
    let sup = tree(Strategy::RestForOne, &["a", "b", "c"], Arc::default());
    sup.wait_settled().await;
    sup.restart("root.b").await.unwrap();
    until_back(&sup, "root.b", 1).await;
    until_back(&sup, "root.c", 1).await;
    assert_eq!(restarts(&sup, &["root", "root.a"]).await, [(H, 0), (H, 0)]);
    // Twice more: still never counted against the intensity of 0.
    for n in 2..=3 {
        sup.restart("root.b").await.unwrap();
        until_back(&sup, "root.c", n).await;
    }
    assert_eq!(restarts(&sup, &["root"]).await, [(H, 0)]);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_restart_on_request_of_what_is_not_running_is_an_error() {
    let board = Switchboard::default();
    let sup = root_with(
        builder().backoff(backoff_ms(60_000)),
        Group::new().with("w", board.runnable()),
    );
    sup.wait_settled().await;
    assert_eq!(
        sup.restart("root.nope").await,
        Err(RunError::NotFound {
            dn: "root.nope".into()
        })
    );
    // Dead and waiting out a minute of backoff.
    assert!(board.kill("root.w").await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while info(&sup, "root.w").await.restart_at.is_none() {
        sup.wait_settled().await;
        assert!(tokio::time::Instant::now() < deadline);
    }
    assert_eq!(
        sup.restart("root.w").await,
        Err(RunError::NotRunning {
            dn: "root.w".into()
        })
    );
    sup.shutdown().await;
    assert_eq!(
        sup.restart("root").await,
        Err(RunError::NotRunning { dn: "root".into() })
    );
}

/// Virtual time: a member stuck in its set-up dies at its deadline, with
/// the reason; restarted, it comes up, and the ordered group moves on.
#[actix_rt::test]
async fn a_node_stuck_in_set_up_dies_at_its_start_deadline_and_the_group_moves_on() {
    tokio::time::pause();
    init_log();
    let (sink, mut feed) = transitions();
    let first = Arc::new(AtomicBool::new(true));
    let db = move |ctx: Context| {
        let stuck = first.swap(false, Ordering::SeqCst);
        async move {
            if stuck {
                actix_supervisor::node_info!(ctx, "connecting to a database that never answers");
                std::future::pending::<()>().await;
            }
            serve(&ctx).await
        }
    };
    let group = Group::new()
        .ordered_start(true)
        .child(Child::new("db", db).start_timeout(Duration::from_secs(5)))
        .with("api", server());
    let began = tokio::time::Instant::now();
    let sup = root_with(
        Supervisor::builder()
            .current_arbiter()
            .backoff(backoff_ms(100))
            .metrics(sink),
        group,
    );
    await_state(&mut feed, "root.db", NodeState::Dead, 1).await;
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    let db = info(&sup, "root.db").await;
    assert_eq!(
        db.last_error.as_deref(),
        Some("did not become Healthy within 5s")
    );
    assert_eq!(db.last_exit.unwrap().kind, ExitKind::Error);
    let report = sup.logs().tail("supervisor", 20);
    assert!(
        report.iter().any(|e| e
            .message
            .contains("root.db died: did not become Healthy within 5s")
            && e.message
                .contains("connecting to a database that never answers")),
        "the death report carries the lead-up"
    );
    await_state(&mut feed, "root.api", NodeState::Healthy, 1).await;
    assert_eq!(info(&sup, "root.db").await.restarts, 1);
    sup.shutdown().await;
}
