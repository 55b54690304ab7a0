//! Significant children and auto-shutdown (OTP 24's `auto_shutdown`,
//! EEP 56), after the cases of OTP's `supervisor_SUITE` (`significant`
//! group): non-significant children end nothing; a significant temporary
//! or transient child ending by itself ends its parent (any / all); one
//! stopped by the supervisor (a sibling's death, a restart on request) or
//! restarted after a death does not; a permanent one is refused; a
//! significant child that keeps dying escalates as any other; the same in
//! a rest-for-one and a one-for-all group, and in a dynamic node.
//!
//! Deterministic: one arbiter, the paused clock, switchboard runnables
//! that end when told.

use crate::common;

use std::time::Duration;

use actix_supervisor::{
    AutoShutdown, Child, Context, DynamicGroup, ExitKind, Group, NodeState, Restart, RunError,
    Strategy, Supervisor, SupervisorBuilder,
};
use common::*;

/// The root runs `conn`, whose every incarnation starts `group()` and
/// serves: `conn` is the parent that auto-shuts down.
fn conn(
    builder: SupervisorBuilder,
    group: impl Fn() -> Group + Send + Clone + 'static,
) -> Supervisor {
    builder.start(move |ctx: Context| {
        let group = group.clone();
        async move {
            ctx.run("conn", move |ctx: Context| {
                let g = group();
                async move {
                    ctx.run_group(g).await?;
                    serve(&ctx).await
                }
            })
            .await?;
            serve(&ctx).await
        }
    })
}

/// OTP's cases run under each strategy.
const STRATEGIES: [Strategy; 3] = [
    Strategy::OneForOne,
    Strategy::OneForAll,
    Strategy::RestForOne,
];

fn member(board: &Switchboard, name: &str, restart: Restart, significant: bool) -> Child {
    Child::new(name, board.runnable())
        .restart(restart)
        .significant(significant)
}

/// A switchboard, and a supervisor whose `root.conn` starts `members`
/// (name, restart type, significant) as one group under `strategy` and
/// `auto`, on every incarnation.
fn conn_of(
    members: &'static [(&'static str, Restart, bool)],
    strategy: Strategy,
    auto: AutoShutdown,
) -> (Switchboard, Supervisor) {
    let board = Switchboard::default();
    let b = board.clone();
    let sup = conn(virtual_builder(), move || {
        members
            .iter()
            .fold(Group::new(), |g, (name, restart, significant)| {
                g.child(member(&b, name, *restart, *significant))
            })
            .strategy(strategy)
            .auto_shutdown(auto)
    });
    (board, sup)
}

async fn state_of(sup: &Supervisor, dn: &str) -> (NodeState, u64) {
    let n = info(sup, dn).await;
    (n.state, n.restarts)
}

#[actix_rt::test]
async fn non_significant_temporary_and_transient_children_end_nothing() {
    tokio::time::pause();
    let (board, sup) = conn_of(
        &[
            ("temp", Restart::Temporary, false),
            ("trans", Restart::Transient, false),
        ],
        Strategy::OneForOne,
        AutoShutdown::AnySignificant,
    );
    sup.wait_settled().await;
    assert!(board.finish("root.conn.temp").await);
    assert!(board.finish("root.conn.trans").await);
    sup.wait_settled().await;
    assert_eq!(state_of(&sup, "root.conn.temp").await, (NodeState::Done, 0));
    assert_eq!(
        state_of(&sup, "root.conn.trans").await,
        (NodeState::Done, 0)
    );
    assert_eq!(state_of(&sup, "root.conn").await, (NodeState::Healthy, 0));
    sup.shutdown().await;
}

/// OTP's `significant_temporary`: any exit of a significant temporary
/// child (here an error) ends the parent, which stops its other children
/// and ends DONE, and is not restarted.
#[actix_rt::test]
async fn a_significant_temporary_child_ends_its_parent_whatever_its_exit() {
    tokio::time::pause();
    for strategy in STRATEGIES {
        let (board, sup) = conn_of(
            &[
                ("reader", Restart::Temporary, true),
                ("writer", Restart::Permanent, false),
            ],
            strategy,
            AutoShutdown::AnySignificant,
        );
        sup.wait_settled().await;
        assert!(board.kill("root.conn.reader").await);
        sup.wait_settled().await;
        let parent = info(&sup, "root.conn").await;
        assert_eq!(
            (parent.state, parent.restarts),
            (NodeState::Done, 0),
            "{strategy:?}"
        );
        let exit = parent.last_exit.expect("an exit");
        assert_eq!(exit.kind, ExitKind::Done, "an orderly end: {}", exit.reason);
        assert!(exit.reason.contains("auto-shutdown"), "{}", exit.reason);
        assert_eq!(
            state_of(&sup, "root.conn.writer").await,
            (NodeState::Cancelled, 0),
            "{strategy:?}"
        );
        assert_eq!(state_of(&sup, "root").await, (NodeState::Healthy, 0));
        // Said, with the cause.
        let lines = messages(&sup, actix_supervisor::LogQuery::dn("supervisor"));
        assert!(
            lines.iter().any(|l| l.contains(
                "root.conn: its significant children ended (root.conn.reader last): shutting down"
            )),
            "{lines:?}"
        );
        sup.shutdown().await;
    }
}

/// OTP's `significant_transient`: a normal exit ends the parent, an
/// abnormal one is restarted and ends nothing.
#[actix_rt::test]
async fn a_significant_transient_child_ends_its_parent_only_by_a_normal_exit() {
    tokio::time::pause();
    for strategy in STRATEGIES {
        let (board, sup) = conn_of(
            &[
                ("reader", Restart::Transient, true),
                ("writer", Restart::Permanent, false),
            ],
            strategy,
            AutoShutdown::AnySignificant,
        );
        sup.wait_settled().await;
        assert!(board.kill("root.conn.reader").await);
        // One-for-all and rest-for-one take the writer down with it: both back.
        until_back(&sup, "root.conn.reader", 1).await;
        until_back(
            &sup,
            "root.conn.writer",
            u64::from(strategy != Strategy::OneForOne),
        )
        .await;
        assert_eq!(state_of(&sup, "root.conn").await, (NodeState::Healthy, 0));
        assert!(board.finish("root.conn.reader").await);
        sup.wait_settled().await;
        assert_eq!(state_of(&sup, "root.conn").await, (NodeState::Done, 0));
        let writer = state_of(&sup, "root.conn.writer").await;
        assert_eq!(writer.0, NodeState::Cancelled, "{strategy:?}");
        sup.shutdown().await;
    }
}

/// `all_significant`: the parent ends with the last significant child,
/// not the first.
#[actix_rt::test]
async fn all_significant_ends_the_parent_with_the_last_one() {
    tokio::time::pause();
    let (board, sup) = conn_of(
        &[
            ("a", Restart::Transient, true),
            ("b", Restart::Temporary, true),
            ("c", Restart::Permanent, false),
        ],
        Strategy::OneForOne,
        AutoShutdown::AllSignificant,
    );
    sup.wait_settled().await;
    assert!(board.finish("root.conn.a").await);
    sup.wait_settled().await;
    assert_eq!(state_of(&sup, "root.conn").await, (NodeState::Healthy, 0));
    assert!(board.kill("root.conn.b").await);
    sup.wait_settled().await;
    assert_eq!(state_of(&sup, "root.conn").await, (NodeState::Done, 0));
    assert_eq!(
        state_of(&sup, "root.conn.c").await,
        (NodeState::Cancelled, 0)
    );
    sup.shutdown().await;
}

/// OTP's `significant_bystander`: a significant child stopped because a
/// sibling died (one-for-all, rest-for-one) has not ended by itself: the
/// group restarts, the parent stays.
#[actix_rt::test]
async fn a_significant_child_stopped_by_a_siblings_death_ends_nothing() {
    tokio::time::pause();
    for strategy in [Strategy::OneForAll, Strategy::RestForOne] {
        let (board, sup) = conn_of(
            &[
                ("first", Restart::Permanent, false),
                ("sig", Restart::Transient, true),
            ],
            strategy,
            AutoShutdown::AnySignificant,
        );
        sup.wait_settled().await;
        assert!(board.kill("root.conn.first").await);
        until_back(&sup, "root.conn.first", 1).await;
        assert_eq!(
            state_of(&sup, "root.conn.sig").await,
            (NodeState::Healthy, 1),
            "{strategy:?}"
        );
        assert_eq!(
            state_of(&sup, "root.conn").await,
            (NodeState::Healthy, 0),
            "{strategy:?}"
        );
        sup.shutdown().await;
    }
}

/// A restart on request stops a significant child without its ending.
#[actix_rt::test]
async fn a_restart_on_request_of_a_significant_child_ends_nothing() {
    tokio::time::pause();
    let (_board, sup) = conn_of(
        &[("sig", Restart::Transient, true)],
        Strategy::OneForAll,
        AutoShutdown::AnySignificant,
    );
    sup.wait_settled().await;
    sup.restart("root.conn.sig").await.expect("restarted");
    sup.wait_settled().await;
    assert_eq!(
        state_of(&sup, "root.conn.sig").await,
        (NodeState::Healthy, 1)
    );
    assert_eq!(state_of(&sup, "root.conn").await, (NodeState::Healthy, 0));
    sup.shutdown().await;
}

/// OTP's `significant_escalation`: a significant child that keeps dying
/// exceeds its parent's intensity as any child does: the parent dies (not
/// DONE) and is restarted by its own parent.
#[actix_rt::test]
async fn a_significant_child_that_keeps_dying_escalates() {
    tokio::time::pause();
    let board = Switchboard::default();
    let b = board.clone();
    let sup = virtual_builder().start(move |ctx: Context| {
        let b = b.clone();
        async move {
            let conn = Child::new("conn", move |ctx: Context| {
                let g = Group::new()
                    .child(member(&b, "sig", Restart::Transient, true))
                    .auto_shutdown(AutoShutdown::AnySignificant);
                async move {
                    ctx.run_group(g).await?;
                    serve(&ctx).await
                }
            })
            .max_restarts(1, Duration::from_secs(60));
            ctx.run_child(conn).await?;
            serve(&ctx).await
        }
    });
    sup.wait_settled().await;
    assert!(board.kill("root.conn.sig").await);
    until_back(&sup, "root.conn.sig", 1).await;
    assert!(board.kill("root.conn.sig").await);
    until_back(&sup, "root.conn", 1).await;
    let conn = info(&sup, "root.conn").await;
    let exit = conn.last_exit.expect("an exit");
    assert_eq!(exit.kind, ExitKind::GaveUp, "{}", exit.reason);
    sup.shutdown().await;
}

/// Marking a permanent child significant is refused at `run_group` (and
/// `start_child`) time, naming the DN, and nothing starts.
#[actix_rt::test]
async fn a_permanent_significant_child_is_refused() {
    tokio::time::pause();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sup = virtual_builder().start(move |ctx: Context| {
        let tx = tx.clone();
        async move {
            let g = Group::new()
                .with("ok", server())
                .child(Child::new("bad", server()).significant(true));
            let _ = tx.send(ctx.run_group(g).await);
            let jobs = ctx.run_dynamic("jobs", DynamicGroup::new()).await?;
            serve_with(&ctx, jobs, tx).await
        }
    });
    let refused = rx.recv().await.expect("an answer");
    assert_eq!(
        refused,
        Err(RunError::PermanentSignificant {
            dn: "root.bad".into()
        })
    );
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("root.bad") && message.contains("transient or temporary"),
        "{message}"
    );
    let dynamic = rx.recv().await.expect("an answer");
    assert_eq!(
        dynamic,
        Err(RunError::PermanentSignificant {
            dn: "root.jobs.job".into()
        })
    );
    sup.wait_settled().await;
    let dns: Vec<String> = sup.snapshot().await.into_iter().map(|n| n.dn).collect();
    assert_eq!(
        dns,
        ["root", "root.jobs"],
        "nothing of the refused group started"
    );
    sup.shutdown().await;
}

async fn serve_with(
    ctx: &Context,
    jobs: actix_supervisor::Dynamic,
    tx: tokio::sync::mpsc::UnboundedSender<Result<(), RunError>>,
) -> actix_supervisor::RunResult {
    ctx.signal(actix_supervisor::Signal::Healthy)?;
    let started = jobs
        .start_child(Child::new("job", server()).significant(true))
        .await
        .map(|_| ());
    let _ = tx.send(started);
    ctx.cancelled().await;
    Ok(())
}

/// A dynamic node with `auto_shutdown`: with `AllSignificant` it ends DONE
/// once no significant child is left running; a non-significant child is
/// stopped with it.
#[actix_rt::test]
async fn a_dynamic_node_ends_when_its_significant_children_have() {
    tokio::time::pause();
    for auto in [AutoShutdown::AnySignificant, AutoShutdown::AllSignificant] {
        let board = Switchboard::default();
        let sup = virtual_builder().start(move |ctx: Context| async move {
            ctx.run_dynamic("jobs", DynamicGroup::new().auto_shutdown(auto))
                .await?;
            serve(&ctx).await
        });
        sup.wait_settled().await;
        let jobs = sup.dynamic("root.jobs");
        for (name, significant) in [("a", true), ("b", true), ("side", false)] {
            let child = member(&board, name, Restart::Temporary, significant);
            jobs.start_child(child).await.expect("started");
        }
        sup.wait_settled().await;
        assert!(board.finish("root.jobs.a").await);
        sup.wait_settled().await;
        let after_a = state_of(&sup, "root.jobs").await;
        match auto {
            AutoShutdown::AnySignificant => assert_eq!(after_a, (NodeState::Done, 0)),
            _ => {
                assert_eq!(after_a, (NodeState::Healthy, 0), "b still runs");
                assert!(board.finish("root.jobs.b").await);
                sup.wait_settled().await;
                assert_eq!(state_of(&sup, "root.jobs").await, (NodeState::Done, 0));
            }
        }
        assert_eq!(state_of(&sup, "root").await, (NodeState::Healthy, 0));
        sup.shutdown().await;
    }
}

/// A parent that ended with its significant children is DONE: nothing
/// restarts it, until a related failure restarts its unit (here its
/// one-for-all sibling's death), as any DONE node; it then comes back with
/// its children.
#[actix_rt::test]
async fn an_auto_shut_down_parent_comes_back_with_its_unit() {
    tokio::time::pause();
    let board = Switchboard::default();
    let b = board.clone();
    let sup = virtual_builder().start(move |ctx: Context| {
        let b = b.clone();
        async move {
            let b2 = b.clone();
            let conn = Child::new("conn", move |ctx: Context| {
                let g = Group::new()
                    .child(member(&b2, "sig", Restart::Transient, true))
                    .auto_shutdown(AutoShutdown::AnySignificant);
                async move {
                    ctx.run_group(g).await?;
                    serve(&ctx).await
                }
            });
            let group = Group::new()
                .child(conn)
                .child(Child::new("other", b.runnable()))
                .strategy(Strategy::OneForAll);
            ctx.run_group(group).await?;
            serve(&ctx).await
        }
    });
    sup.wait_settled().await;
    assert!(board.finish("root.conn.sig").await);
    sup.wait_settled().await;
    assert_eq!(state_of(&sup, "root.conn").await, (NodeState::Done, 0));
    assert_eq!(state_of(&sup, "root.other").await, (NodeState::Healthy, 0));
    assert!(board.kill("root.other").await);
    until_back(&sup, "root.other", 1).await;
    until_back(&sup, "root.conn", 1).await;
    // Re-created with its parent (a re-created DN counts that as a restart).
    assert_eq!(state_of(&sup, "root.conn.sig").await.0, NodeState::Healthy);
    sup.shutdown().await;
}
