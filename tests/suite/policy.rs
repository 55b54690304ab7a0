//! Restart policy: restart types, intensity and escalation, strategies, ordered start and stop, stop modes.
//!
//! Deterministic: most run on one arbiter and virtual time.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_supervisor::{
    Child, Context, Ended, Group, NodeState, Restart, RunResult, Shutdown, Signal, Strategy,
    Supervisor,
};
use common::*;

/// A runnable that signals Healthy and then returns `result` on its first
/// incarnation; later incarnations serve.
fn once(
    result: fn() -> RunResult,
) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send {
    let mut first = true;
    move |ctx: Context| {
        let now = std::mem::take(&mut first);
        Box::pin(async move {
            ctx.signal(Signal::Healthy)?;
            if now {
                return result();
            }
            ctx.cancelled().await;
            Ok(())
        })
    }
}

#[actix_rt::test]
async fn a_transient_child_ends_on_ok_and_restarts_on_error() {
    tokio::time::pause();
    let board = Switchboard::default();
    let group = Group::new()
        .child(Child::new("ok", once(|| Ok(()))).restart(Restart::Transient))
        .child(Child::new("err", once(|| Err("boom".into()))).restart(Restart::Transient))
        .strategy(Strategy::OneForOne)
        .with("sibling", board.runnable());
    let sup = root_with(virtual_builder(), group);
    sup.wait_settled().await;
    let ok = info(&sup, "root.ok").await;
    assert_eq!(
        (ok.state, ok.restarts),
        (NodeState::Done, 0),
        "a normal exit ends it"
    );
    let err = info(&sup, "root.err").await;
    assert_eq!((err.state, err.restarts), (NodeState::Healthy, 1));
    let sibling = info(&sup, "root.sibling").await;
    assert_eq!((sibling.state, sibling.restarts), (NodeState::Healthy, 0));
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_temporary_child_is_never_restarted_and_disturbs_nobody() {
    tokio::time::pause();
    let board = Switchboard::default();
    let group = Group::new()
        .child(Child::new("temp", board.runnable()).restart(Restart::Temporary))
        .child(Child::new("temp2", board.runnable()).restart(Restart::Temporary))
        .with("a", board.runnable())
        .with("b", board.runnable());
    let (sink, mut feed) = transitions();
    let sup = root_with(virtual_builder().metrics(sink), group);
    sup.wait_settled().await;
    // Its death cancels nobody, and it stays DEAD.
    assert!(board.kill("root.temp").await);
    await_state(&mut feed, "root.temp", NodeState::Dead, 1).await;
    sup.wait_settled().await;
    let temp = info(&sup, "root.temp").await;
    assert_eq!((temp.state, temp.restarts), (NodeState::Dead, 0));
    for dn in ["root.a", "root.b", "root.temp2"] {
        let n = info(&sup, dn).await;
        assert_eq!((n.state, n.restarts), (NodeState::Healthy, 0), "{dn}");
    }
    // A permanent sibling dies: one-for-all cancels everyone; the temporary
    // one that was running stays CANCELLED, the others come back.
    assert!(board.kill("root.a").await);
    await_state(&mut feed, "root.a", NodeState::Dead, 1).await;
    sup.wait_settled().await;
    let temp2 = info(&sup, "root.temp2").await;
    assert_eq!((temp2.state, temp2.restarts), (NodeState::Cancelled, 0));
    assert_eq!(info(&sup, "root.temp").await.state, NodeState::Dead);
    for dn in ["root.a", "root.b"] {
        let n = info(&sup, dn).await;
        assert_eq!((n.state, n.restarts), (NodeState::Healthy, 1), "{dn}");
    }
    sup.shutdown().await;
}

/// Kills each of four rest-for-one members in turn: it and the members after
/// it restart; the members before it keep running.
#[actix_rt::test]
async fn rest_for_one_restarts_the_dead_member_and_those_after_it() {
    tokio::time::pause();
    for k in 0..4 {
        let board = Switchboard::default();
        let mut group = Group::new().strategy(Strategy::RestForOne);
        for i in 0..4 {
            group = group.with(format!("m{i}"), board.runnable());
        }
        let (sink, mut feed) = transitions();
        let sup = root_with(virtual_builder().metrics(sink), group);
        sup.wait_settled().await;
        let victim = format!("root.m{k}");
        assert!(board.kill(&victim).await);
        // The kill travels outside the supervisor: wait for its effect.
        await_state(&mut feed, &victim, NodeState::Dead, 1).await;
        sup.wait_settled().await;
        for i in 0..4 {
            let n = info(&sup, &format!("root.m{i}")).await;
            let want = u64::from(i >= k);
            assert_eq!(
                (n.state, n.restarts),
                (NodeState::Healthy, want),
                "m{i} after killing m{k}"
            );
        }
        sup.shutdown().await;
    }
}

/// root (no limit) → mid (at most 2 restarts a minute) → leaf, which fails
/// in mid's first incarnation: mid gives up once, root restarts mid, and
/// nothing above mid is disturbed.
#[actix_rt::test]
async fn an_exceeded_intensity_at_a_middle_node_escalates_exactly_one_level() {
    tokio::time::pause();
    let mid_starts = Arc::new(Mutex::new(0));
    let starts = mid_starts.clone();
    let mid = move |ctx: Context| {
        let first = {
            let mut n = starts.lock().unwrap();
            *n += 1;
            *n == 1
        };
        async move {
            ctx.run("leaf", move |ctx: Context| async move {
                ctx.signal(Signal::Healthy)?;
                if first {
                    return Err::<(), _>("connection reset".into());
                }
                ctx.cancelled().await;
                Ok(())
            })
            .await?;
            serve(&ctx).await
        }
    };
    let group = Group::new()
        .child(Child::new("mid", mid).max_restarts(2, Duration::from_secs(60)))
        .strategy(Strategy::OneForOne);
    let sup = root_with(virtual_builder(), group);
    sup.wait_settled().await;
    let mid = info(&sup, "root.mid").await;
    assert_eq!(
        (mid.state, mid.restarts),
        (NodeState::Healthy, 1),
        "{mid:?}"
    );
    assert_eq!(
        mid.last_error.as_deref(),
        Some("restart intensity exceeded: 3 restarts in 60s, last root.mid.leaf: returned error: connection reset")
    );
    let root = info(&sup, "root").await;
    assert_eq!((root.state, root.restarts), (NodeState::Healthy, 0));
    // The leaf's history is kept across mid's restart: 2 restarts, then one with mid.
    assert_eq!(info(&sup, "root.mid.leaf").await.restarts, 3);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn intensity_at_the_root_ends_join_with_the_reason() {
    tokio::time::pause();
    let sup = virtual_builder()
        .max_restarts(2, Duration::from_secs(10))
        .start(|ctx: Context| async move {
            ctx.signal(Signal::Healthy)?;
            Err::<(), _>("the root fails".into())
        });
    let ended = sup.join().await;
    assert_eq!(
        ended,
        Ended::GaveUp {
            reason: "restart intensity exceeded: 3 restarts in 10s, last root: returned error: the root fails".into()
        }
    );
    assert_eq!(ended.to_string(), "gave up: restart intensity exceeded: 3 restarts in 10s, last root: returned error: the root fails");
    let root = info(&sup, "root").await;
    assert_eq!((root.state, root.restarts), (NodeState::Dead, 2));
}

/// Every node of a three-level tree always fails: under limits, the storm
/// ends with the supervisor giving up after a bounded number of restarts.
#[actix_rt::test]
async fn a_restart_storm_under_intensity_limits_ends() {
    tokio::time::pause();
    fn failing(
        depth: u8,
    ) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send {
        move |ctx: Context| {
            Box::pin(async move {
                if depth < 2 {
                    ctx.run_group(
                        Group::new()
                            .with("a", failing(depth + 1))
                            .with("b", failing(depth + 1)),
                    )
                    .await?;
                }
                ctx.signal(Signal::Healthy)?;
                if depth == 2 {
                    return Err("leaf fails".into());
                }
                ctx.cancelled().await;
                Ok(())
            })
        }
    }
    let sup = virtual_builder()
        .max_restarts(3, Duration::from_secs(60))
        .start(failing(0));
    let ended = sup.join().await;
    assert!(matches!(ended, Ended::GaveUp { .. }), "{ended:?}");
    let total: u64 = sup.snapshot().await.iter().map(|n| n.restarts).sum();
    // Each parent allows 3 restarts before dying: 4 incarnations per level.
    assert!(total > 0 && total <= 4 * 4 * 4 * 7, "{total} restarts");
    assert!(sup.live_runnables().await.is_empty());
}

/// Ordered start: b starts only once a is healthy; c never starts while b
/// (which never becomes healthy) blocks the sequence, and that does not hold
/// `wait_settled`. b's death then takes the group down (one-for-all), c
/// included without ever having run, and the sequence starts over.
#[actix_rt::test]
async fn ordered_start_waits_for_each_member_to_be_healthy() {
    tokio::time::pause();
    let (tx, mut rx) = events();
    let a_ready = Arc::new(tokio::sync::Notify::new());
    let b_dies = Arc::new(tokio::sync::Notify::new());
    let member = |name: &'static str| {
        let (tx, a_ready, b_dies) = (tx.clone(), a_ready.clone(), b_dies.clone());
        move |ctx: Context| {
            let (tx, a_ready, b_dies) = (tx.clone(), a_ready.clone(), b_dies.clone());
            async move {
                let _ = tx.send(format!("start {name}"));
                match name {
                    "a" => a_ready.notified().await,
                    "b" => {
                        b_dies.notified().await;
                        return Err("b failed its set-up".into());
                    }
                    _ => {}
                }
                ctx.signal(Signal::Healthy)?;
                ctx.cancelled().await;
                Ok(())
            }
        }
    };
    let group = Group::new()
        .with("a", member("a"))
        .with("b", member("b"))
        .with("c", member("c"))
        .ordered_start(true);
    let sup = root_with(virtual_builder(), group);
    assert_eq!(next(&mut rx).await, "start a");
    sup.wait_settled().await;
    assert!(rx.try_recv().is_err(), "b waits for a");
    a_ready.notify_one();
    assert_eq!(next(&mut rx).await, "start b");
    sup.wait_settled().await;
    assert!(
        rx.try_recv().is_err(),
        "c waits for b, which never gets healthy"
    );
    assert_eq!(state(&sup, "root.c").await, NodeState::New);
    b_dies.notify_one();
    // The group restarts in order: a first, and b only after a is healthy.
    assert_eq!(next(&mut rx).await, "start a");
    sup.wait_settled().await;
    assert!(rx.try_recv().is_err());
    let c = info(&sup, "root.c").await;
    assert_eq!(c.restarts, 1, "c was taken down without having run");
    assert_eq!(
        info(&sup, "root.b").await.last_error.as_deref(),
        Some("returned error: b failed its set-up")
    );
    a_ready.notify_one();
    assert_eq!(next(&mut rx).await, "start b");
    sup.shutdown().await;
}

/// A member that records its stop, taking 10 ms (virtual) to clean up.
fn stopper(
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    fail: Option<Arc<tokio::sync::Notify>>,
) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send {
    move |ctx: Context| {
        let (log, fail) = (log.clone(), fail.clone());
        Box::pin(async move {
            ctx.signal(Signal::Healthy)?;
            let failed = async {
                match &fail {
                    Some(f) => f.notified().await,
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                _ = ctx.cancelled() => {}
                _ = failed => return Err("a fails".into()),
            }
            log.lock().unwrap().push(format!("stopping {name}"));
            tokio::time::sleep(Duration::from_millis(10)).await;
            log.lock().unwrap().push(format!("stopped {name}"));
            Ok(())
        })
    }
}

#[actix_rt::test]
async fn ordered_stop_stops_members_in_reverse_one_at_a_time() {
    tokio::time::pause();
    let log = Arc::new(Mutex::new(Vec::new()));
    let a_fails = Arc::new(tokio::sync::Notify::new());
    let group = Group::new()
        .with("a", stopper("a", log.clone(), Some(a_fails.clone())))
        .with("b", stopper("b", log.clone(), None))
        .with("c", stopper("c", log.clone(), None))
        .ordered_stop(true);
    let (sink, mut feed) = transitions();
    let sup = root_with(virtual_builder().metrics(sink), group);
    sup.wait_settled().await;
    // The strategy takes b and c down after a's death: c first, then b.
    a_fails.notify_one();
    await_state(&mut feed, "root.a", NodeState::Dead, 1).await;
    sup.wait_settled().await;
    assert_eq!(
        std::mem::take(&mut *log.lock().unwrap()),
        ["stopping c", "stopped c", "stopping b", "stopped b"]
    );
    for dn in ["root.a", "root.b", "root.c"] {
        let n = info(&sup, dn).await;
        assert_eq!((n.state, n.restarts), (NodeState::Healthy, 1), "{dn}");
    }
    // Shutdown: c, b, a, each awaited before the next.
    sup.shutdown().await;
    assert_eq!(
        *log.lock().unwrap(),
        [
            "stopping c",
            "stopped c",
            "stopping b",
            "stopped b",
            "stopping a",
            "stopped a"
        ]
    );
}

/// `Infinity` waits as long as it takes, past the supervisor's
/// `shutdown_timeout`; the default `Timeout` drops the future at it.
#[actix_rt::test]
async fn infinity_waits_for_the_runnable_and_timeout_does_not() {
    tokio::time::pause();
    let log = Arc::new(Mutex::new(Vec::new()));
    let slow = |name: &'static str, log: Arc<Mutex<Vec<String>>>| {
        move |ctx: Context| {
            let log = log.clone();
            async move {
                ctx.signal(Signal::Healthy)?;
                ctx.cancelled().await;
                tokio::time::sleep(Duration::from_secs(60)).await;
                log.lock().unwrap().push(format!("{name} cleaned up"));
                Ok(())
            }
        }
    };
    let group = Group::new()
        .child(Child::new("patient", slow("patient", log.clone())).shutdown(Shutdown::Infinity))
        .with("hasty", slow("hasty", log.clone()));
    let sup = root_with(virtual_builder(), group);
    sup.wait_settled().await;
    let t = tokio::time::Instant::now();
    sup.shutdown().await;
    assert!(
        t.elapsed() >= Duration::from_secs(60),
        "waited for the patient one"
    );
    assert_eq!(*log.lock().unwrap(), ["patient cleaned up"]);
    for dn in ["root.patient", "root.hasty"] {
        assert_eq!(state(&sup, dn).await, NodeState::Cancelled, "{dn}");
    }
}

/// A restart budget: with no restarts allowed, a failing child makes its
/// parent give up, the parent's death makes the root give up, and the
/// supervisor then gives up on the root and stops, saying why.
#[actix_rt::test]
async fn an_exceeded_intensity_escalates_up_to_the_supervisor() {
    init_log();
    let sup = Supervisor::builder()
        .backoff(backoff_ms(1))
        .max_restarts(0, Duration::from_secs(5))
        .workers(1)
        .start(|ctx: Context| async move {
            ctx.run("p", |ctx: Context| async move {
                ctx.run(
                    "c",
                    |_ctx: Context| async move { Err::<(), _>("always".into()) },
                )
                .await?;
                serve(&ctx).await
            })
            .await?;
            serve(&ctx).await
        });
    // The supervisor shuts itself down.
    let ended = sup.join().await;
    assert!(sup.live_runnables().await.is_empty());
    let c = info(&sup, "root.p.c").await;
    assert_eq!((c.state, c.restarts), (NodeState::Dead, 0));
    let p = info(&sup, "root.p").await;
    assert_eq!(p.state, NodeState::Dead);
    assert_eq!(
        p.last_error.unwrap(),
        "restart intensity exceeded: 1 restarts in 5s, last root.p.c: returned error: always"
    );
    let root = info(&sup, "root").await;
    assert_eq!(root.state, NodeState::Dead);
    assert!(root
        .last_error
        .unwrap()
        .contains("last root.p: restart intensity exceeded"));
    match ended {
        Ended::GaveUp { reason } => {
            assert!(reason.starts_with("restart intensity exceeded: 1 restarts in 5s, last root: restart intensity exceeded"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}
