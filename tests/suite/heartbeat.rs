//! Heartbeats (`Child::heartbeat`, `Context::beat`): a node HEALTHY that
//! has not beaten for its period is hung, dies with "no heartbeat within
//! ..." and its policy applies; not before; not while NEW; an actor node
//! beats by answering, and a handler stuck with messages waiting is named;
//! a node marked `heartbeat_affects_liveness` fails liveness until it is
//! HEALTHY again.
//!
//! Deterministic: one arbiter and the paused clock; a runnable hangs by
//! awaiting a future that never resolves.

use crate::common;

use std::time::Duration;

use actix::prelude::*;
use actix_supervisor::{
    actor, Child, Context, ExitKind, Group, Liveness, LogQuery, NodeState, RunResult, Signal,
    Supervisor, SupervisorBuilder,
};
use common::*;

const EVERY: Duration = Duration::from_secs(5);

/// Beats every second for `beats` seconds, then hangs on an await that
/// never ends (but still sees its cancellation: its stop mode is honoured).
fn beats_then_hangs(
    beats: u32,
) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send {
    move |ctx: Context| {
        Box::pin(async move {
            ctx.signal(Signal::Healthy)?;
            for _ in 0..beats {
                tokio::time::sleep(Duration::from_secs(1)).await;
                ctx.beat();
            }
            actix_supervisor::node_info!(ctx, "waiting on the queue");
            ctx.cancelled().await; // "hangs", as far as its work goes
            Ok(())
        })
    }
}

fn with(builder: SupervisorBuilder, child: Child) -> Supervisor {
    root_with(builder, Group::new().child(child))
}

#[actix_rt::test]
async fn a_node_that_stops_beating_dies_after_its_period_and_not_before() {
    tokio::time::pause();
    let child = Child::new("poller", beats_then_hangs(3)).heartbeat(EVERY);
    let sup = with(virtual_builder().backoff(backoff_ms(3_600_000)), child);
    sup.wait_settled().await;
    // Last beat at 3 s: still fine at 7.9 s.
    tokio::time::sleep(Duration::from_millis(7_900)).await;
    sup.wait_settled().await;
    let n = info(&sup, "root.poller").await;
    assert_eq!((n.state, n.incarnation), (NodeState::Healthy, 1));
    // Missed at 8 s: dead, waiting out its (long) backoff.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sup.wait_settled().await;
    let n = info(&sup, "root.poller").await;
    assert_eq!(n.state, NodeState::Dead);
    let exit = n.last_exit.expect("an exit");
    assert_eq!(exit.kind, ExitKind::Error);
    assert_eq!(exit.reason, "no heartbeat within 5s");
    let said = messages(&sup, LogQuery::dn("supervisor"));
    assert!(
        said.iter()
            .any(|l| l.contains("root.poller: no heartbeat within 5s; stopping it")),
        "{said:?}"
    );
    // The death report has its lead-up.
    let report = said
        .iter()
        .find(|l| l.contains("root.poller died"))
        .expect("a death report");
    assert!(report.contains("waiting on the queue"), "{report}");
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_beating_node_lives_and_new_does_not_count() {
    tokio::time::pause();
    // NEW for 12 s (past two periods), then beats every 4 s.
    let slow_start = |ctx: Context| async move {
        tokio::time::sleep(Duration::from_secs(12)).await;
        ctx.signal(Signal::Healthy)?;
        loop {
            tokio::select! {
                _ = ctx.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_secs(4)) => ctx.beat(),
            }
        }
    };
    let sup = with(
        virtual_builder(),
        Child::new("steady", slow_start).heartbeat(EVERY),
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    sup.wait_settled().await;
    let n = info(&sup, "root.steady").await;
    assert_eq!((n.state, n.incarnation), (NodeState::Healthy, 1));
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_hung_node_restarts_by_its_policy() {
    tokio::time::pause();
    let sup = with(
        virtual_builder(),
        Child::new("poller", beats_then_hangs(0)).heartbeat(EVERY),
    );
    sup.wait_settled().await;
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    until_back(&sup, "root.poller", 1).await;
    assert_eq!(info(&sup, "root.poller").await.incarnation, 2);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn liveness_fails_while_a_critical_node_is_hung() {
    tokio::time::pause();
    let child = Child::new("core", beats_then_hangs(0))
        .heartbeat(EVERY)
        .heartbeat_affects_liveness(true);
    let (sink, mut feed) = transitions();
    let sup = with(
        virtual_builder().backoff(backoff_ms(100)).metrics(sink),
        child,
    );
    sup.wait_settled().await;
    assert_eq!(sup.liveness(Duration::from_secs(1)).await, Liveness::Alive);
    await_state(&mut feed, "root.core", NodeState::Dead, 1).await;
    // Dead and waiting out its backoff: still hung as far as liveness goes.
    assert_eq!(sup.liveness(Duration::from_secs(1)).await, Liveness::Hung);
    assert_eq!(sup.counts().await.hung, 1);
    // Back and HEALTHY: alive again.
    await_state(&mut feed, "root.core", NodeState::Healthy, 1).await;
    sup.wait_settled().await;
    assert_eq!(sup.liveness(Duration::from_secs(1)).await, Liveness::Alive);
    sup.shutdown().await;
    // A node without the mark does not touch liveness.
    let sup = with(
        virtual_builder().backoff(backoff_ms(3_600_000)),
        Child::new("side", beats_then_hangs(0)).heartbeat(EVERY),
    );
    sup.wait_settled().await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    sup.wait_settled().await;
    assert_eq!(info(&sup, "root.side").await.state, NodeState::Dead);
    assert_eq!(sup.liveness(Duration::from_secs(1)).await, Liveness::Alive);
    sup.shutdown().await;
}

/// An actor whose `Stuck` handler awaits forever (holding the actor).
struct Desk;

impl Actor for Desk {
    type Context = actix::Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Stuck;

impl Handler<Stuck> for Desk {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, _: Stuck, _: &mut Self::Context) -> Self::Result {
        AtomicResponse::new(Box::pin(fut::wrap_future(std::future::pending::<()>())))
    }
}

#[derive(Message)]
#[rtype(result = "u32")]
struct Ping;

impl Handler<Ping> for Desk {
    type Result = u32;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> u32 {
        7
    }
}

#[actix_rt::test]
async fn an_actor_stuck_in_a_handler_misses_its_beat_and_is_named() {
    tokio::time::pause();
    let (runnable, desk) = actor(|| Desk);
    let child = Child::new("desk", runnable).heartbeat(EVERY);
    let sup = with(virtual_builder().backoff(backoff_ms(3_600_000)), child);
    sup.wait_settled().await;
    // Idle for a minute, answering now and then: no beat needed.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(desk.send(Ping).await, Ok(7));
    }
    assert_eq!(info(&sup, "root.desk").await.state, NodeState::Healthy);
    // Stuck on a message: dead after the period, the message named.
    let stuck = desk.clone();
    let _pending = actix_rt::spawn(async move { stuck.send(Stuck).await });
    dies_at_its_period_naming_stuck(&sup).await;
}

#[actix_rt::test]
async fn an_actor_stuck_on_a_do_send_misses_its_beat_and_is_named() {
    tokio::time::pause();
    let (runnable, desk) = actor(|| Desk);
    let child = Child::new("desk", runnable).heartbeat(EVERY);
    let sup = with(virtual_builder().backoff(backoff_ms(3_600_000)), child);
    sup.wait_settled().await;
    // Fire and forget: no caller waits, yet the backlog knows it is there.
    assert!(desk.do_send(Stuck).is_ok());
    dies_at_its_period_naming_stuck(&sup).await;
}

/// `root.desk`, stuck on a `Stuck` from now on: HEALTHY at 4.9 s of
/// virtual time, DEAD by 5.2 s with the message named; then shut down.
async fn dies_at_its_period_naming_stuck(sup: &Supervisor) {
    tokio::time::sleep(Duration::from_millis(4_900)).await;
    sup.wait_settled().await;
    assert_eq!(
        info(sup, "root.desk").await.state,
        NodeState::Healthy,
        "not before"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    sup.wait_settled().await;
    let n = info(sup, "root.desk").await;
    assert_eq!(n.state, NodeState::Dead);
    let reason = n.last_exit.expect("an exit").reason;
    assert!(
        reason.starts_with("no heartbeat within 5s (handling ") && reason.contains("Stuck"),
        "{reason}"
    );
    sup.shutdown().await;
}
