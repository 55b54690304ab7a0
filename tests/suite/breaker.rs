//! The breaker (`Exceeded::Park`): a child whose restarts exceed its
//! parent's intensity is parked for a cool-down instead of taking the
//! parent down; tried again once (half-open); HEALTHY for the intensity's
//! window closes the breaker, a death while half-open opens it again with
//! a longer cool-down. Beside the same faults under the default
//! (escalate). Deterministic: one arbiter, the paused clock.

use crate::common;

use std::time::Duration;

use actix_supervisor::{
    Breaker, Child, Context, Exceeded, ExitKind, Group, LogQuery, NodeState, Park, Strategy,
    Supervisor,
};
use common::*;

const WITHIN: Duration = Duration::from_secs(10);

/// root → clients (at most 2 restarts in 10 s, `exceeded`) → {flaky, steady}.
fn tree(board: &Switchboard, exceeded: Exceeded) -> Supervisor {
    let b = board.clone();
    virtual_builder().start(move |ctx: Context| {
        let b = b.clone();
        async move {
            let b2 = b.clone();
            let clients = Child::new("clients", move |ctx: Context| {
                let g = Group::new()
                    .with("flaky", b2.runnable())
                    .with("steady", b2.runnable())
                    .strategy(Strategy::OneForOne);
                async move {
                    ctx.run_group(g).await?;
                    serve(&ctx).await
                }
            })
            .max_restarts(2, WITHIN)
            .on_intensity_exceeded(exceeded);
            ctx.run_child(clients).await?;
            serve(&ctx).await
        }
    })
}

/// Kills root.clients.flaky three times in a row (the third restart
/// exceeds the intensity).
async fn three_deaths(sup: &Supervisor, board: &Switchboard) {
    let before = info(sup, "root.clients.flaky").await.restarts;
    for n in 1..=2 {
        assert!(board.kill("root.clients.flaky").await);
        until_back(sup, "root.clients.flaky", before + n).await;
    }
    assert!(board.kill("root.clients.flaky").await);
    sup.wait_settled().await;
}

fn said(sup: &Supervisor) -> Vec<String> {
    messages(sup, LogQuery::dn("supervisor"))
}

#[actix_rt::test]
async fn a_breaker_opens_half_opens_reopens_and_closes() {
    tokio::time::pause();
    let board = Switchboard::default();
    let park = Park::new(Duration::from_secs(30)).max(Duration::from_secs(300));
    let sup = tree(&board, Exceeded::Park(park));
    sup.wait_settled().await;
    three_deaths(&sup, &board).await;

    // Open: flaky waits 30 s, DEAD; its parent and sibling are untouched.
    let flaky = info(&sup, "root.clients.flaky").await;
    assert_eq!(flaky.state, NodeState::Dead);
    assert!(
        matches!(flaky.breaker, Breaker::Open { trips: 1, .. }),
        "{:?}",
        flaky.breaker
    );
    let wait = flaky.restart_at.expect("waiting") - tokio::time::Instant::now();
    assert!(
        wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
        "{wait:?}"
    );
    for dn in ["root.clients", "root.clients.steady"] {
        let n = info(&sup, dn).await;
        assert_eq!((n.state, n.restarts), (NodeState::Healthy, 0), "{dn}");
    }
    assert!(said(&sup).iter().any(|l| l.contains("root.clients.flaky exceeded root.clients's restart intensity: breaker open (trip 1), next try in 30s")), "{:?}", said(&sup));

    // Half-open after the cool-down.
    tokio::time::sleep(Duration::from_secs(30)).await;
    until_back(&sup, "root.clients.flaky", 3).await;
    assert_eq!(
        info(&sup, "root.clients.flaky").await.breaker,
        Breaker::HalfOpen { trips: 1 }
    );

    // A death on probation opens it again at once, for twice as long.
    assert!(board.kill("root.clients.flaky").await);
    sup.wait_settled().await;
    let flaky = info(&sup, "root.clients.flaky").await;
    assert!(
        matches!(flaky.breaker, Breaker::Open { trips: 2, .. }),
        "{:?}",
        flaky.breaker
    );
    let wait = flaky.restart_at.expect("waiting") - tokio::time::Instant::now();
    assert!(
        wait > Duration::from_secs(59) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );

    // Tried again, and HEALTHY for the intensity's window: closed.
    tokio::time::sleep(Duration::from_secs(60)).await;
    until_back(&sup, "root.clients.flaky", 4).await;
    tokio::time::sleep(WITHIN + Duration::from_secs(2)).await;
    sup.wait_settled().await;
    assert_eq!(
        info(&sup, "root.clients.flaky").await.breaker,
        Breaker::Closed
    );
    assert!(
        said(&sup).iter().any(|l| l.contains(
            "root.clients.flaky: HEALTHY for 10s after its breaker's trial start: breaker closed"
        )),
        "{:?}",
        said(&sup)
    );
    // Closed means the cool-downs start over.
    three_deaths(&sup, &board).await;
    assert!(matches!(
        info(&sup, "root.clients.flaky").await.breaker,
        Breaker::Open { trips: 1, .. }
    ));
    assert_eq!(
        info(&sup, "root.clients").await.restarts,
        0,
        "never escalated"
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn the_same_faults_under_escalate_take_the_parent_down() {
    tokio::time::pause();
    let board = Switchboard::default();
    let sup = tree(&board, Exceeded::Escalate);
    sup.wait_settled().await;
    three_deaths(&sup, &board).await;
    until_back(&sup, "root.clients", 1).await;
    let clients = info(&sup, "root.clients").await;
    assert_eq!(clients.last_exit.expect("an exit").kind, ExitKind::GaveUp);
    // Its children came back with it, the sibling too.
    assert_eq!(
        info(&sup, "root.clients.steady").await.state,
        NodeState::Healthy
    );
    assert_eq!(
        info(&sup, "root.clients.flaky").await.breaker,
        Breaker::Closed
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn cool_downs_grow_to_their_cap() {
    tokio::time::pause();
    let board = Switchboard::default();
    let park = Park::new(Duration::from_secs(30)).max(Duration::from_secs(100));
    let sup = tree(&board, Exceeded::Park(park));
    sup.wait_settled().await;
    three_deaths(&sup, &board).await;
    let mut waits = Vec::new();
    for restarts in 3..=5 {
        let flaky = info(&sup, "root.clients.flaky").await;
        let wait = flaky.restart_at.expect("waiting") - tokio::time::Instant::now();
        waits.push(wait.as_secs_f64().ceil() as u64);
        tokio::time::sleep(wait).await;
        until_back(&sup, "root.clients.flaky", restarts).await;
        assert!(board.kill("root.clients.flaky").await);
        sup.wait_settled().await;
    }
    assert_eq!(waits, [30, 60, 100]);
    sup.shutdown().await;
}
