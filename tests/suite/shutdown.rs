//! Shutdown, runaway runnables, and a large tree.

use crate::common;

use std::time::Duration;

use actix_supervisor::{Context, Ended, Group, NodeState, RunResult, Signal, Supervisor};
use common::*;

#[actix_rt::test]
async fn shutdown_aborts_a_runnable_that_ignores_cancellation() {
    let sup =
        builder()
            .shutdown_timeout(Duration::from_millis(50))
            .start(|ctx: Context| async move {
                ctx.run("deaf", |ctx: Context| async move {
                    ctx.signal(Signal::Healthy)?;
                    futures::future::pending::<()>().await;
                    Ok(())
                })
                .await?;
                ctx.run("polite", server()).await?;
                serve(&ctx).await
            });
    sup.wait_settled().await;
    sup.shutdown().await;
    assert!(sup.live_runnables().await.is_empty());
    for n in sup.snapshot().await {
        assert_eq!(n.state, NodeState::Cancelled, "{}", n.dn);
    }
    let ended = sup.join().await;
    assert_eq!(
        ended,
        Ended::Stragglers {
            dns: vec!["root.deaf".into()]
        }
    );
    assert_eq!(ended.exit_code(), 3);
}

#[actix_rt::test]
async fn a_restart_waits_for_the_shutdown_timeout_of_a_deaf_sibling() {
    tokio::time::pause();
    init_log();
    let (tx, mut rx) = events();
    let sup = Supervisor::builder()
        .current_arbiter()
        .backoff(backoff_ms(1))
        .shutdown_timeout(Duration::from_secs(30))
        .start(move |ctx: Context| {
            let tx = tx.clone();
            async move {
                let deaf = move |ctx: Context| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send("deaf start".to_string());
                        ctx.signal(Signal::Healthy)?;
                        futures::future::pending::<()>().await;
                        Ok(())
                    }
                };
                let mut first = true;
                let fragile = move |ctx: Context| {
                    let fail = std::mem::take(&mut first);
                    async move {
                        ctx.signal(Signal::Healthy)?;
                        if fail {
                            return Err("fragile".into());
                        }
                        ctx.cancelled().await;
                        Ok(())
                    }
                };
                ctx.run_group(Group::new().with("deaf", deaf).with("fragile", fragile))
                    .await?;
                serve(&ctx).await
            }
        });
    assert_eq!(next_virtual(&mut rx).await, "deaf start");
    let t0 = tokio::time::Instant::now();
    assert_eq!(next_virtual(&mut rx).await, "deaf start");
    let waited = tokio::time::Instant::now() - t0;
    assert!(waited >= Duration::from_secs(30), "{waited:?}");
    sup.wait_settled().await;
    assert_eq!(info(&sup, "root.deaf").await.restarts, 1);
    assert_eq!(info(&sup, "root.fragile").await.restarts, 1);
    sup.shutdown().await;
}

async fn next_virtual(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(3600), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

#[actix_rt::test]
async fn a_busy_runnable_that_yields_does_not_stop_supervision() {
    let (tx, mut rx) = events();
    let sup = builder()
        .shutdown_timeout(Duration::from_millis(100))
        .start(move |ctx: Context| {
            let tx = tx.clone();
            async move {
                ctx.run("spinner", |ctx: Context| async move {
                    ctx.signal(Signal::Healthy)?;
                    loop {
                        tokio::task::yield_now().await;
                    }
                })
                .await?;
                let mut n = 0;
                ctx.run("flaky", move |ctx: Context| {
                    n += 1;
                    let (tx, n) = (tx.clone(), n);
                    async move {
                        ctx.signal(Signal::Healthy)?;
                        let _ = tx.send(format!("flaky {n}"));
                        if n < 5 {
                            return Err("again".into());
                        }
                        ctx.cancelled().await;
                        Ok(())
                    }
                })
                .await?;
                serve(&ctx).await
            }
        });
    until(&mut rx, "flaky 5").await;
    sup.wait_settled().await;
    assert_eq!(info(&sup, "root.flaky").await.restarts, 4);
    assert_eq!(state(&sup, "root.spinner").await, NodeState::Healthy);
    sup.shutdown().await;
    assert!(sup.live_runnables().await.is_empty());
}

#[actix_rt::test]
async fn shutdown_twice_and_join_after_shutdown_resolve() {
    let sup = builder().start(|ctx: Context| async move { serve(&ctx).await });
    sup.wait_settled().await;
    let (a, b) = (sup.clone(), sup.clone());
    futures::join!(a.shutdown(), b.shutdown());
    sup.shutdown().await;
    assert_eq!(sup.join().await, actix_supervisor::Ended::ShutDown);
    assert_eq!(state(&sup, "root").await, NodeState::Cancelled);
}

/// Fan-out 10, `depth` levels below the root, groups of 10.
fn fan_out(
    depth: u32,
) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send {
    move |ctx: Context| {
        Box::pin(async move {
            if depth > 0 {
                let mut g = Group::new();
                for i in 0..10 {
                    g = g.with(format!("n{i}"), fan_out(depth - 1));
                }
                ctx.run_group(g).await?;
            }
            serve(&ctx).await
        })
    }
}

#[actix_rt::test]
async fn a_tree_of_11111_nodes_comes_up_and_shuts_down() {
    let sup = builder().start(fan_out(4));
    sup.wait_settled().await;
    let nodes = sup.snapshot().await;
    assert_eq!(nodes.len(), 11_111);
    assert!(nodes.iter().all(|n| n.state == NodeState::Healthy));
    assert_eq!(sup.live_runnables().await.len(), 11_111);
    sup.shutdown().await;
    assert!(sup.live_runnables().await.is_empty());
    assert!(sup
        .snapshot()
        .await
        .iter()
        .all(|n| n.state == NodeState::Cancelled));
}
