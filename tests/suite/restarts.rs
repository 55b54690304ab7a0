//! Restarts: groups, subtrees, backoff, panics (escalation is in `policy.rs`).

use crate::common;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_supervisor::{Context, Group, NodeState, RunResult, Signal, Supervisor};
use common::*;
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

/// Fails on its first start once `trigger` is notified (so that the test
/// decides when, e.g. after its siblings are up), serves afterwards; reports
/// every start.
fn fails_once(
    name: &'static str,
    tx: mpsc::UnboundedSender<String>,
    trigger: Arc<Notify>,
) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send {
    let starts = Arc::new(AtomicUsize::new(0));
    move |ctx: Context| {
        let n = starts.fetch_add(1, Ordering::SeqCst);
        let (tx, trigger) = (tx.clone(), trigger.clone());
        Box::pin(async move {
            let _ = tx.send(format!("start {name} {n}"));
            ctx.signal(Signal::Healthy)?;
            if n == 0 {
                trigger.notified().await;
                return Err(format!("{name} failed").into());
            }
            ctx.cancelled().await;
            Ok(())
        })
    }
}

/// Serves; reports every start and every cancellation.
fn reporter(
    name: &'static str,
    tx: mpsc::UnboundedSender<String>,
) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send {
    let starts = Arc::new(AtomicUsize::new(0));
    move |ctx: Context| {
        let n = starts.fetch_add(1, Ordering::SeqCst);
        let tx = tx.clone();
        Box::pin(async move {
            let _ = tx.send(format!("start {name} {n}"));
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            let _ = tx.send(format!("stop {name} {n}"));
            Ok(())
        })
    }
}

#[actix_rt::test]
async fn a_group_member_death_restarts_the_group() {
    let (tx, mut rx) = events();
    let trigger = Arc::new(Notify::new());
    let (a, b) = (
        fails_once("a", tx.clone(), trigger.clone()),
        reporter("b", tx.clone()),
    );
    let sup = root_with(builder(), Group::new().with("a", a).with("b", b));
    assert_eq!(next_sorted(&mut rx, 2).await, ["start a 0", "start b 0"]);
    trigger.notify_one();
    until(&mut rx, "stop b 0").await;
    assert_eq!(next_sorted(&mut rx, 2).await, ["start a 1", "start b 1"]);
    sup.wait_settled().await;
    let (a, b) = (info(&sup, "root.a").await, info(&sup, "root.b").await);
    assert_eq!((a.state, a.restarts), (NodeState::Healthy, 1));
    assert_eq!((b.state, b.restarts), (NodeState::Healthy, 1));
    assert!(
        a.last_error
            .as_deref()
            .is_some_and(|e| e.contains("a failed")),
        "{a:?}"
    );
    assert_eq!(b.last_error, None, "b was cancelled, not dead");
    assert_eq!(
        info(&sup, "root").await.restarts,
        0,
        "the parent is untouched"
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn members_start_in_the_order_they_were_added() {
    let (tx, mut rx) = events();
    let names = ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"];
    let sup = Supervisor::builder()
        .current_arbiter()
        .start(move |ctx: Context| {
            let tx = tx.clone();
            async move {
                let mut g = Group::new();
                for name in names {
                    g = g.with(name, reporter(name, tx.clone()));
                }
                ctx.run_group(g).await?;
                serve(&ctx).await
            }
        });
    for name in names {
        assert_eq!(next(&mut rx).await, format!("start {name} 0"));
    }
    sup.shutdown().await;
}

#[actix_rt::test]
async fn the_group_waits_for_its_slowest_member() {
    let (tx, mut rx) = events();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release = Arc::new(Mutex::new(Some(release_rx)));
    let trigger = Arc::new(Notify::new());
    let a = fails_once("a", tx.clone(), trigger.clone());
    let slow = {
        let tx = tx.clone();
        move |ctx: Context| {
            let release = release.lock().unwrap().take();
            let tx = tx.clone();
            async move {
                ctx.signal(Signal::Healthy)?;
                let _ = tx.send("slow up".into());
                ctx.cancelled().await;
                let _ = tx.send("slow cancelled".into());
                if let Some(r) = release {
                    let _ = r.await;
                }
                ctx.cancelled().await;
                Ok(())
            }
        }
    };
    let sup = root_with(builder(), Group::new().with("a", a).with("slow", slow));
    assert_eq!(next_sorted(&mut rx, 2).await, ["slow up", "start a 0"]);
    trigger.notify_one();
    until(&mut rx, "slow cancelled").await;
    sup.wait_settled().await;
    assert_eq!(state(&sup, "root.a").await, NodeState::Dead);
    assert_eq!(
        info(&sup, "root.a").await.restarts,
        0,
        "a must wait for slow"
    );
    release_tx.send(()).unwrap();
    until(&mut rx, "start a 1").await;
    sup.wait_settled().await;
    assert_eq!(info(&sup, "root.slow").await.restarts, 1);
    sup.shutdown().await;
}

/// root → a → b → c; `a` dies after its subtree is up.
#[actix_rt::test]
async fn a_death_restarts_the_whole_subtree_and_keeps_counting_by_dn() {
    let (tx, mut rx) = events();
    let a_starts = Arc::new(AtomicUsize::new(0));
    let tx2 = tx.clone();
    let sup = builder().start(move |ctx: Context| {
        let (tx, a_starts) = (tx2.clone(), a_starts.clone());
        async move {
            ctx.run("a", move |ctx: Context| {
                let n = a_starts.fetch_add(1, Ordering::SeqCst);
                let tx = tx.clone();
                async move {
                    let (up_tx, up_rx) = oneshot::channel::<()>();
                    let up = Arc::new(Mutex::new(Some(up_tx)));
                    let tx_b = tx.clone();
                    ctx.run("b", move |ctx: Context| {
                        let (up, tx) = (up.clone(), tx_b.clone());
                        async move {
                            let tx_c = tx.clone();
                            ctx.run("c", move |ctx: Context| {
                                let (up, tx) = (up.clone(), tx_c.clone());
                                async move {
                                    let _ = tx.send("start c".into());
                                    ctx.signal(Signal::Healthy)?;
                                    if let Some(up) = up.lock().unwrap().take() {
                                        let _ = up.send(());
                                    }
                                    ctx.cancelled().await;
                                    Ok(())
                                }
                            })
                            .await?;
                            let _ = tx.send("start b".into());
                            serve(&ctx).await
                        }
                    })
                    .await?;
                    ctx.signal(Signal::Healthy)?;
                    let _ = up_rx.await;
                    if n == 0 {
                        return Err("a gives up".into());
                    }
                    let _ = tx.send("a back".into());
                    ctx.cancelled().await;
                    Ok(())
                }
            })
            .await?;
            serve(&ctx).await
        }
    });
    until(&mut rx, "a back").await;
    sup.wait_settled().await;
    for dn in ["root.a", "root.a.b", "root.a.b.c"] {
        let n = info(&sup, dn).await;
        assert_eq!((n.state, n.restarts), (NodeState::Healthy, 1), "{n:?}");
    }
    assert!(info(&sup, "root.a")
        .await
        .last_error
        .unwrap()
        .contains("a gives up"));
    assert_eq!(info(&sup, "root").await.restarts, 0);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_done_node_restarts_when_a_sibling_dies() {
    let (tx, mut rx) = events();
    let job_starts = Arc::new(AtomicUsize::new(0));
    let js = job_starts.clone();
    let (die_tx, die_rx) = oneshot::channel::<()>();
    let die = Arc::new(Mutex::new(Some(die_rx)));
    let tx2 = tx.clone();
    let sup = builder().start(move |ctx: Context| {
        let (js, die, tx) = (js.clone(), die.clone(), tx2.clone());
        async move {
            let job = move |ctx: Context| {
                js.fetch_add(1, Ordering::SeqCst);
                let tx = tx.clone();
                async move {
                    ctx.signal(Signal::Healthy)?;
                    ctx.signal(Signal::Done)?;
                    let _ = tx.send("job done".into());
                    Ok(())
                }
            };
            let doomed = move |ctx: Context| {
                let die = die.lock().unwrap().take();
                async move {
                    ctx.signal(Signal::Healthy)?;
                    match die {
                        Some(d) => {
                            let _ = d.await;
                            Err("sibling failed".into())
                        }
                        None => until_cancelled(&ctx).await,
                    }
                }
            };
            ctx.run_group(Group::new().with("job", job).with("doomed", doomed))
                .await?;
            serve(&ctx).await
        }
    });
    assert_eq!(next(&mut rx).await, "job done");
    sup.wait_settled().await;
    assert_eq!(state(&sup, "root.job").await, NodeState::Done);
    die_tx.send(()).unwrap();
    assert_eq!(next(&mut rx).await, "job done", "the DONE job ran again");
    sup.wait_settled().await;
    assert_eq!(job_starts.load(Ordering::SeqCst), 2);
    assert_eq!(info(&sup, "root.job").await.restarts, 1);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_panic_is_caught_as_a_death() {
    let (tx, mut rx) = events();
    let starts = Arc::new(AtomicUsize::new(0));
    let sup = builder().start(move |ctx: Context| {
        let (starts, tx) = (starts.clone(), tx.clone());
        async move {
            ctx.run("p", move |ctx: Context| {
                let n = starts.fetch_add(1, Ordering::SeqCst);
                let tx = tx.clone();
                async move {
                    ctx.signal(Signal::Healthy)?;
                    if n == 0 {
                        panic!("kaboom in the runnable");
                    }
                    let _ = tx.send("back".into());
                    ctx.cancelled().await;
                    Ok(())
                }
            })
            .await?;
            // A panic while creating the future counts too.
            let mut first = true;
            ctx.run("q", move |ctx: Context| {
                if std::mem::take(&mut first) {
                    panic!("kaboom in run()");
                }
                async move { serve(&ctx).await }
            })
            .await?;
            serve(&ctx).await
        }
    });
    assert_eq!(next(&mut rx).await, "back");
    sup.wait_settled().await;
    let p = info(&sup, "root.p").await;
    assert_eq!((p.state, p.restarts), (NodeState::Healthy, 1));
    assert!(p.last_error.unwrap().contains("kaboom in the runnable"));
    let q = info(&sup, "root.q").await;
    assert_eq!((q.state, q.restarts), (NodeState::Healthy, 1));
    assert!(q.last_error.unwrap().contains("kaboom in run()"));
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_propagated_panic_is_raised_on_the_handle() {
    let sup = builder()
        .propagate_panics(true)
        .start(|ctx: Context| async move {
            ctx.run("p", |ctx: Context| async move {
                ctx.signal(Signal::Healthy)?;
                panic!("propagate me");
            })
            .await?;
            serve(&ctx).await
        });
    let raised = AssertUnwindSafe(sup.wait_settled()).catch_unwind().await;
    let payload = raised.expect_err("the panic must reach the caller");
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        msg.contains("root.p") && msg.contains("propagate me"),
        "{msg}"
    );
    // The tree was shut down, and the panic is raised once.
    sup.shutdown().await;
    assert!(sup.live_runnables().await.is_empty());
}

/// Virtual time: the whole tree runs on the test's arbiter.
#[actix_rt::test]
async fn backoff_grows_and_resets_on_healthy() {
    tokio::time::pause();
    init_log();
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let starts = Arc::new(AtomicUsize::new(0));
    let sup = Supervisor::builder()
        .current_arbiter()
        .backoff(backoff_ms(100))
        .start(move |ctx: Context| {
            let (starts, tx) = (starts.clone(), tx.clone());
            async move {
                ctx.run("flaky", move |ctx: Context| {
                    let n = starts.fetch_add(1, Ordering::SeqCst);
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send((n, Instant::now()));
                        // Starts 0..5 die before Healthy; start 5 becomes
                        // healthy and then dies, which must reset the backoff.
                        if n == 5 {
                            ctx.signal(Signal::Healthy)?;
                        }
                        if n <= 6 {
                            return Err("flaky".into());
                        }
                        serve(&ctx).await
                    }
                })
                .await?;
                serve(&ctx).await
            }
        });
    let mut times = Vec::new();
    for _ in 0..8 {
        times.push(rx.recv().await.unwrap().1);
    }
    let gaps: Vec<u128> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    // 100, 200, 400, 800 (the cap), 800, then Healthy resets: 100, 200.
    // tokio's timer rounds a sleep up to its next millisecond tick.
    let want = [100, 200, 400, 800, 800, 100, 200];
    for (gap, want) in gaps.iter().zip(want) {
        assert!(
            (want..=want + 1).contains(gap),
            "gaps {gaps:?}, want {want:?}"
        );
    }
    sup.shutdown().await;
}

/// root → p → c. `c` dies and waits out a long backoff; meanwhile `p` dies.
/// The pending restart of `c` must not linger: it is reported CANCELLED at
/// once, so that `p` can restart (and start a fresh `c`).
#[actix_rt::test]
async fn a_parent_failure_cancels_a_pending_child_restart() {
    tokio::time::pause();
    init_log();
    let (tx, mut rx) = events();
    let (kill_tx, kill_rx) = oneshot::channel::<()>();
    let kill = Arc::new(Mutex::new(Some(kill_rx)));
    let c_starts = Arc::new(AtomicUsize::new(0));
    let cs = c_starts.clone();
    let sup = Supervisor::builder()
        .current_arbiter()
        .backoff(backoff_ms(3_600_000))
        .start(move |ctx: Context| {
            let (kill, cs, tx) = (kill.clone(), cs.clone(), tx.clone());
            async move {
                ctx.run("p", move |ctx: Context| {
                    let kill = kill.lock().unwrap().take();
                    let (cs, tx) = (cs.clone(), tx.clone());
                    async move {
                        let tx_c = tx.clone();
                        ctx.run("c", move |ctx: Context| {
                            let n = cs.fetch_add(1, Ordering::SeqCst);
                            let tx = tx_c.clone();
                            async move {
                                let _ = tx.send(format!("c {n}"));
                                if n == 0 {
                                    return Err("c dies".into());
                                }
                                serve(&ctx).await
                            }
                        })
                        .await?;
                        ctx.signal(Signal::Healthy)?;
                        if let Some(kill) = kill {
                            let _ = kill.await;
                            return Err("p dies".into());
                        }
                        ctx.cancelled().await;
                        Ok(())
                    }
                })
                .await?;
                serve(&ctx).await
            }
        });
    assert_eq!(next(&mut rx).await, "c 0");
    sup.wait_settled().await;
    let c = info(&sup, "root.p.c").await;
    assert_eq!(
        (c.state, c.restarts),
        (NodeState::Dead, 1),
        "c waits out its backoff, down"
    );
    assert!(c.restart_at.is_some());
    let before = Instant::now();
    kill_tx.send(()).unwrap();
    // p restarts after its own hour of backoff; c's stale timer must not fire
    // first (it would be "c 1" from the old incarnation's schedule).
    let virtual_day = Duration::from_secs(86_400);
    let c1 = tokio::time::timeout(virtual_day, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c1, "c 1");
    // Exactly p's hour (plus timer rounding): a lingering child timer would
    // have held p's restart back until it fired.
    let waited = Instant::now() - before;
    assert!(waited >= Duration::from_secs(3600), "{waited:?}");
    assert!(waited <= Duration::from_millis(3_600_010), "{waited:?}");
    sup.wait_settled().await;
    assert_eq!(info(&sup, "root.p").await.restarts, 1);
    assert_eq!(c_starts.load(Ordering::SeqCst), 2);
    sup.shutdown().await;
}

/// While a restart waits out its backoff the node is down: DEAD in the
/// snapshot with the time it is due, absent from the live runnables, and
/// the sinks hear NEW only when the runnable actually starts.
#[actix_rt::test]
async fn a_node_waiting_out_its_backoff_is_reported_down_until_it_starts() {
    tokio::time::pause();
    init_log();
    let (sink, mut seen) = transitions();
    let mut first = true;
    let sup = Supervisor::builder()
        .current_arbiter()
        // Below the 10 s hang guard of `await_state`, which runs on the
        // same virtual clock.
        .backoff(backoff_ms(5_000))
        .metrics(sink)
        .start(move |ctx: Context| {
            let fail = std::mem::take(&mut first);
            async move {
                ctx.run("w", move |ctx: Context| async move {
                    ctx.signal(Signal::Healthy)?;
                    ctx.cancelled().await;
                    Ok(())
                })
                .await?;
                ctx.signal(Signal::Healthy)?;
                if fail {
                    return Err("root fails once".into());
                }
                ctx.cancelled().await;
                Ok(())
            }
        });
    await_state(&mut seen, "root", NodeState::Dead, 1).await;
    let died_at = Instant::now();
    sup.wait_settled().await;
    let root = info(&sup, "root").await;
    assert_eq!((root.state, root.restarts), (NodeState::Dead, 1));
    let due = root.restart_at.expect("a restart is due");
    assert_eq!(due - died_at, Duration::from_secs(5), "its backoff");
    assert!(sup.live_runnables().await.is_empty(), "nothing runs");
    // Nothing was reported NEW for root after its death.
    while let Ok((dn, state)) = seen.try_recv() {
        assert!(!(dn == "root" && state == NodeState::New), "NEW too early");
    }
    // The backoff runs out: NEW when the runnable starts, then HEALTHY.
    await_state(&mut seen, "root", NodeState::New, 1).await;
    assert!(Instant::now() >= due);
    await_state(&mut seen, "root", NodeState::Healthy, 1).await;
    sup.wait_settled().await;
    let root = info(&sup, "root").await;
    assert_eq!((root.state, root.restart_at), (NodeState::Healthy, None));
    assert_eq!(sup.live_runnables().await, ["root", "root.w"]);
    sup.shutdown().await;
}
