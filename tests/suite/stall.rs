//! The stall watch: a runnable that blocks its worker thread.

use crate::common;

use std::time::Duration;

use actix_supervisor::{Context, LogQuery, Signal};
use common::*;

#[actix_rt::test]
async fn a_runnable_that_blocks_its_worker_is_flagged_then_cleared() {
    let (tx, mut rx) = events();
    let sup = builder()
        .workers(2)
        .stall_watch(Some(Duration::from_millis(200)))
        .start(move |ctx: Context| {
            let tx = tx.clone();
            async move {
                ctx.run("hog", move |ctx: Context| {
                    let tx = tx.clone();
                    async move {
                        ctx.signal(Signal::Healthy)?;
                        let _ = tx.send("blocking".to_string());
                        // Never do this in a runnable: it holds the thread.
                        std::thread::sleep(Duration::from_millis(1200));
                        let _ = tx.send("awake".to_string());
                        ctx.cancelled().await;
                        Ok(())
                    }
                })
                .await?;
                serve(&ctx).await
            }
        });
    let mut log = sup.logs().subscribe(LogQuery::dn("supervisor"));
    assert_eq!(next(&mut rx).await, "blocking");
    let warning = said(&mut log, "has blocked worker").await;
    assert!(
        warning.starts_with("root.hog has blocked worker "),
        "{warning}"
    );
    // The worker is blocked until "awake": the flag is visible meanwhile.
    let hog = info(&sup, "root.hog").await;
    assert!(hog.stalled_since.is_some(), "{hog:?}");
    assert_eq!(sup.counts().await.stalled, 1);
    assert!(sup.render_text().await.contains("STALLED"));
    assert_eq!(next(&mut rx).await, "awake");
    said(&mut log, "root.hog lets worker").await;
    assert!(info(&sup, "root.hog").await.stalled_since.is_none());
    assert_eq!(sup.counts().await.stalled, 0);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn the_watch_can_be_turned_off() {
    let (tx, mut rx) = events();
    let sup = builder()
        .workers(1)
        .stall_watch(None)
        .start(move |ctx: Context| {
            let tx = tx.clone();
            async move {
                ctx.signal(Signal::Healthy)?;
                // Past the default threshold (1 s), which would flag it.
                std::thread::sleep(Duration::from_millis(1300));
                let _ = tx.send("awake".to_string());
                ctx.cancelled().await;
                Ok(())
            }
        });
    assert_eq!(next(&mut rx).await, "awake");
    sup.wait_settled().await;
    let lines = sup.logs().backlog(&LogQuery::dn("supervisor"));
    assert!(!lines.iter().any(|e| e.message.contains("blocked worker")));
    sup.shutdown().await;
}
