//! Node states, signals and the exit rules.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_supervisor::{Context, Group, NodeState, Signal, SignalError};
use common::*;
use tokio::sync::oneshot;

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Context>();
    check::<actix_supervisor::Supervisor>();
    fn runnable<R: actix_supervisor::Runnable>() {}
    runnable::<Box<dyn actix_supervisor::Runnable>>();
}

#[actix_rt::test]
async fn root_and_children_come_up_healthy() {
    let sup = builder().start(|ctx: Context| async move {
        ctx.run_group(Group::new().with("a", server()).with("b", server()))
            .await?;
        ctx.run("c", server()).await?;
        serve(&ctx).await
    });
    sup.wait_settled().await;
    assert_eq!(
        sup.live_runnables().await,
        ["root", "root.a", "root.b", "root.c"]
    );
    for n in sup.snapshot().await {
        assert_eq!(n.state, NodeState::Healthy, "{}", n.dn);
        assert_eq!(n.restarts, 0);
        assert_eq!(n.last_error, None);
    }
    sup.shutdown().await;
    assert!(sup.live_runnables().await.is_empty());
    for n in sup.snapshot().await {
        assert_eq!(n.state, NodeState::Cancelled, "{}", n.dn);
    }
}

#[actix_rt::test]
async fn context_knows_its_dn() {
    let (tx, mut rx) = events();
    let sup = builder().start(move |ctx: Context| {
        let tx = tx.clone();
        async move {
            let tx2 = tx.clone();
            ctx.run("child", move |ctx: Context| {
                let _ = tx2.send(ctx.dn().to_string());
                async move { serve(&ctx).await }
            })
            .await?;
            let _ = tx.send(ctx.dn().to_string());
            serve(&ctx).await
        }
    });
    assert_eq!(next_sorted(&mut rx, 2).await, ["root", "root.child"]);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn done_then_ok_is_done_and_stays_down() {
    let sup = builder().start(|ctx: Context| async move {
        ctx.run("job", |ctx: Context| async move {
            ctx.signal(Signal::Healthy)?;
            ctx.signal(Signal::Done)?;
            Ok(())
        })
        .await?;
        serve(&ctx).await
    });
    sup.wait_settled().await;
    let job = info(&sup, "root.job").await;
    assert_eq!(job.state, NodeState::Done);
    assert_eq!(job.restarts, 0);
    assert_eq!(sup.live_runnables().await, ["root"]);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn ok_without_done_is_a_death() {
    let starts = Arc::new(AtomicUsize::new(0));
    let s = starts.clone();
    let (tx, mut rx) = events();
    let sup = builder().start(move |ctx: Context| {
        let (s, tx) = (s.clone(), tx.clone());
        async move {
            ctx.run("quitter", move |ctx: Context| {
                let n = s.fetch_add(1, Ordering::SeqCst);
                let tx = tx.clone();
                async move {
                    if n == 0 {
                        ctx.signal(Signal::Healthy)?;
                        return Ok(()); // returned without Done
                    }
                    let _ = tx.send("second".into());
                    serve(&ctx).await
                }
            })
            .await?;
            serve(&ctx).await
        }
    });
    assert_eq!(next(&mut rx).await, "second");
    let q = info(&sup, "root.quitter").await;
    assert_eq!(q.restarts, 1);
    assert!(
        q.last_error
            .as_deref()
            .is_some_and(|e| e.contains("without signalling Done")),
        "{q:?}"
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn done_is_not_exit() {
    // `a` signals Done but keeps running until released; `b` dies. The group
    // may only restart once `a` has actually returned.
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release_rx = Arc::new(std::sync::Mutex::new(Some(release_rx)));
    let b_starts = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = events();
    let bs = b_starts.clone();
    // b fails only once a is up, so that a's first incarnation surely runs.
    let a_up = Arc::new(tokio::sync::Notify::new());
    let sup = builder().start(move |ctx: Context| {
        let (release_rx, bs, tx, a_up) = (release_rx.clone(), bs.clone(), tx.clone(), a_up.clone());
        async move {
            let a_up2 = a_up.clone();
            let a = move |ctx: Context| {
                let release = release_rx.lock().unwrap().take();
                let (tx, a_up) = (tx.clone(), a_up2.clone());
                async move {
                    ctx.signal(Signal::Healthy)?;
                    ctx.signal(Signal::Done)?;
                    let _ = tx.send("a done".into());
                    a_up.notify_one();
                    if let Some(r) = release {
                        let _ = r.await; // ignores cancellation on purpose
                        return Ok(());
                    }
                    until_cancelled(&ctx).await
                }
            };
            let b = move |ctx: Context| {
                let n = bs.fetch_add(1, Ordering::SeqCst);
                let a_up = a_up.clone();
                async move {
                    ctx.signal(Signal::Healthy)?;
                    if n == 0 {
                        a_up.notified().await;
                        return Err("b fails".into());
                    }
                    ctx.cancelled().await;
                    Ok(())
                }
            };
            ctx.run_group(Group::new().with("a", a).with("b", b))
                .await?;
            serve(&ctx).await
        }
    });
    assert_eq!(next(&mut rx).await, "a done");
    sup.wait_settled().await;
    let (a, b) = (info(&sup, "root.a").await, info(&sup, "root.b").await);
    assert_eq!(a.state, NodeState::Healthy, "Done only marks: a still runs");
    assert_eq!(b.state, NodeState::Dead);
    assert_eq!(b.restarts, 0, "b waits for a to return");
    release_tx.send(()).unwrap();
    assert_eq!(next(&mut rx).await, "a done", "a restarted");
    sup.wait_settled().await;
    assert_eq!(info(&sup, "root.a").await.restarts, 1);
    assert_eq!(info(&sup, "root.b").await.restarts, 1);
    assert_eq!(b_starts.load(Ordering::SeqCst), 2);
    sup.shutdown().await;
}

async fn misuse(sig: &[Signal], expect: fn(&SignalError) -> bool) {
    let sigs = sig.to_vec();
    let (tx, mut rx) = events();
    let sup = builder().start(move |ctx: Context| {
        let (sigs, tx) = (sigs.clone(), tx.clone());
        async move {
            ctx.run("bad", move |ctx: Context| {
                let (sigs, tx) = (sigs.clone(), tx.clone());
                async move {
                    for s in sigs {
                        if let Err(e) = ctx.signal(s) {
                            let _ = tx.send(format!("{} {e}", expect(&e)));
                            // Returning Ok does not hide the misuse.
                            ctx.signal(Signal::Done).ok();
                            return Ok(());
                        }
                    }
                    serve(&ctx).await
                }
            })
            .await?;
            serve(&ctx).await
        }
    });
    let first = next(&mut rx).await;
    assert!(
        first.starts_with("true ") && first.contains("root.bad"),
        "{first}"
    );
    let second = next(&mut rx).await;
    assert_eq!(second, first, "restarted, it misbehaves the same way again");
    let bad = info(&sup, "root.bad").await;
    assert!(bad.restarts >= 1);
    let reason = bad.last_error.expect("a death reason");
    assert!(
        reason.contains("root.bad") && reason.contains("signal"),
        "{reason}"
    );
    // The supervisor itself is unharmed.
    assert_eq!(state(&sup, "root").await, NodeState::Healthy);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn healthy_twice_is_refused_and_a_death() {
    misuse(&[Signal::Healthy, Signal::Healthy], |e| {
        matches!(e, SignalError::HealthyNotNew { .. })
    })
    .await;
}

#[actix_rt::test]
async fn done_before_healthy_is_refused_and_a_death() {
    misuse(&[Signal::Done], |e| {
        matches!(e, SignalError::DoneNotHealthy { .. })
    })
    .await;
}

#[actix_rt::test]
async fn done_twice_is_refused_and_a_death() {
    misuse(&[Signal::Healthy, Signal::Done, Signal::Done], |e| {
        matches!(e, SignalError::DoneTwice { .. })
    })
    .await;
}

#[actix_rt::test]
async fn an_error_after_cancellation_is_cancelled() {
    let sup = builder().start(|ctx: Context| async move {
        ctx.run("stubborn", |ctx: Context| async move {
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            Err::<(), _>("I did not want to stop".into())
        })
        .await?;
        serve(&ctx).await
    });
    sup.wait_settled().await;
    sup.shutdown().await;
    let s = info(&sup, "root.stubborn").await;
    assert_eq!(s.state, NodeState::Cancelled);
    assert_eq!(s.last_error, None);
}

#[actix_rt::test]
async fn a_stale_context_is_refused() {
    let (tx, mut rx) = oneshot::channel::<Context>();
    let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
    let sup = builder().start(move |ctx: Context| {
        let tx = tx.clone();
        async move {
            ctx.run("once", move |ctx: Context| {
                let tx = tx.lock().unwrap().take();
                async move {
                    ctx.signal(Signal::Healthy)?;
                    ctx.signal(Signal::Done)?;
                    if let Some(tx) = tx {
                        let _ = tx.send(ctx.clone());
                    }
                    Ok(())
                }
            })
            .await?;
            serve(&ctx).await
        }
    });
    let kept = (&mut rx).await.unwrap();
    sup.wait_settled().await;
    assert_eq!(state(&sup, "root.once").await, NodeState::Done);
    assert!(matches!(
        kept.signal(Signal::Healthy),
        Err(SignalError::Stale { dn }) if dn == "root.once"
    ));
    let err = kept.run("late", server()).await.unwrap_err();
    assert!(
        matches!(err, actix_supervisor::RunError::Stale { .. }),
        "{err:?}"
    );
    // A stale signal is not a death: the node stays DONE.
    sup.wait_settled().await;
    assert_eq!(state(&sup, "root.once").await, NodeState::Done);
    sup.shutdown().await;
}
