//! Bad input gets a clear error naming the DN and what was wrong; the
//! supervisor never panics on it.

use crate::common;

use actix_supervisor::{Context, Group, NodeState, RunError, Signal};
use common::*;
use tokio::sync::mpsc;

/// Runs `attempt` inside a NEW child `root.t` and returns what it produced.
async fn attempt_in_child(
    attempt: fn(Context) -> futures::future::LocalBoxFuture<'static, Result<(), RunError>>,
) -> Result<(), RunError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sup = builder().start(move |ctx: Context| {
        let tx = tx.clone();
        async move {
            ctx.run("t", move |ctx: Context| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(attempt(ctx.clone()).await);
                    serve(&ctx).await
                }
            })
            .await?;
            serve(&ctx).await
        }
    });
    let res = rx.recv().await.expect("the attempt ran");
    sup.wait_settled().await;
    // Whatever the input, the tree is fine.
    assert_eq!(state(&sup, "root").await, NodeState::Healthy);
    assert_eq!(state(&sup, "root.t").await, NodeState::Healthy);
    sup.shutdown().await;
    res
}

#[actix_rt::test]
async fn invalid_names_are_refused() {
    for bad in [
        "",
        "Upper",
        "dot.ted",
        "dash-ed",
        "spa ce",
        "ünï",
        &"x".repeat(65),
    ] {
        let want = bad.to_string();
        let bad = want.clone();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sup = builder().start(move |ctx: Context| {
            let (tx, bad) = (tx.clone(), bad.clone());
            async move {
                let _ = tx.send(ctx.run(&bad, server()).await);
                serve(&ctx).await
            }
        });
        let err = rx.recv().await.unwrap().unwrap_err();
        match &err {
            RunError::InvalidName { dn, name } => {
                assert_eq!(dn, "root");
                assert_eq!(name, &want, "the error names the refused name");
                assert!(err.to_string().contains("root") && err.to_string().contains("[a-z0-9_]"));
            }
            other => panic!("{other:?}"),
        }
        sup.wait_settled().await;
        assert_eq!(sup.live_runnables().await, ["root"], "nothing was started");
        sup.shutdown().await;
    }
}

#[actix_rt::test]
async fn duplicate_names_are_refused_and_nothing_starts() {
    let err = attempt_in_child(|ctx| {
        Box::pin(async move {
            ctx.run("a", server()).await?;
            ctx.run_group(Group::new().with("b", server()).with("a", server()))
                .await
        })
    })
    .await
    .unwrap_err();
    assert_eq!(
        err,
        RunError::DuplicateName {
            dn: "root.t".into(),
            name: "a".into()
        }
    );
    assert!(err.to_string().contains("root.t") && err.to_string().contains("\"a\""));

    let err = attempt_in_child(|ctx| {
        Box::pin(async move {
            ctx.run_group(Group::new().with("x", server()).with("x", server()))
                .await
        })
    })
    .await
    .unwrap_err();
    assert_eq!(
        err,
        RunError::DuplicateName {
            dn: "root.t".into(),
            name: "x".into()
        }
    );
}

#[actix_rt::test]
async fn a_refused_group_starts_none_of_its_members() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sup = builder().start(move |ctx: Context| {
        let tx = tx.clone();
        async move {
            let g = Group::new()
                .with("fine", server())
                .with("Not_Fine", server());
            let _ = tx.send(ctx.run_group(g).await);
            serve(&ctx).await
        }
    });
    assert!(matches!(
        rx.recv().await.unwrap(),
        Err(RunError::InvalidName { .. })
    ));
    sup.wait_settled().await;
    assert_eq!(sup.live_runnables().await, ["root"]);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn an_empty_group_is_refused() {
    let err = attempt_in_child(|ctx| Box::pin(async move { ctx.run_group(Group::new()).await }))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RunError::EmptyGroup {
            dn: "root.t".into()
        }
    );
}

#[actix_rt::test]
async fn children_after_healthy_are_refused() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sup = builder().start(move |ctx: Context| {
        let tx = tx.clone();
        async move {
            ctx.signal(Signal::Healthy)?;
            let _ = tx.send(ctx.run("late", server()).await);
            ctx.cancelled().await;
            Ok(())
        }
    });
    let err = rx.recv().await.unwrap().unwrap_err();
    assert_eq!(
        err,
        RunError::NotNew {
            dn: "root".into(),
            state: NodeState::Healthy
        }
    );
    assert!(err.to_string().contains("NEW"));
    sup.wait_settled().await;
    assert_eq!(sup.live_runnables().await, ["root"]);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn children_after_shutdown_are_refused() {
    let (ctx_tx, mut ctx_rx) = mpsc::unbounded_channel::<Context>();
    let (res_tx, mut res_rx) = mpsc::unbounded_channel();
    let sup = builder().start(move |ctx: Context| {
        let _ = ctx_tx.send(ctx.clone());
        let res_tx = res_tx.clone();
        async move {
            ctx.cancelled().await;
            // Starting children while being cancelled is refused.
            let _ = res_tx.send(ctx.run("late", server()).await);
            Ok(())
        }
    });
    let kept = ctx_rx.recv().await.unwrap();
    sup.shutdown().await;
    let err = kept.run("after", server()).await.unwrap_err();
    assert!(
        matches!(&err, RunError::Stale { dn } | RunError::ShutDown { dn } if dn == "root"),
        "{err:?}"
    );
    let while_cancelled = res_rx.recv().await.unwrap();
    assert_eq!(
        while_cancelled,
        Err(RunError::Cancelled { dn: "root".into() })
    );
    assert_eq!(state(&sup, "root").await, NodeState::Cancelled);
}

#[actix_rt::test]
async fn a_runnable_that_keeps_adding_children_disturbs_nobody() {
    let (tx, mut rx) = mpsc::unbounded_channel::<usize>();
    let sup = builder().start(move |ctx: Context| {
        let tx = tx.clone();
        async move {
            ctx.run("steady", server()).await?;
            ctx.run("greedy", move |ctx: Context| {
                let tx = tx.clone();
                async move {
                    let mut n = 0;
                    while n < 2_000 {
                        ctx.run(&format!("c{n}"), server()).await?;
                        n += 1;
                    }
                    let _ = tx.send(n);
                    serve(&ctx).await
                }
            })
            .await?;
            serve(&ctx).await
        }
    });
    assert_eq!(rx.recv().await, Some(2_000));
    sup.wait_settled().await;
    assert_eq!(state(&sup, "root.steady").await, NodeState::Healthy);
    assert_eq!(sup.live_runnables().await.len(), 2_003);
    sup.shutdown().await;
    assert!(sup.live_runnables().await.is_empty());
}
