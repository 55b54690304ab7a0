//! Everything a supervisor starts ends with it: after `shutdown()` (or an
//! escalation at the root) and dropping the handles, the process's thread
//! count and live heap return to where they were; tasks spawned by
//! incarnations too.
//!
//! One test in its own binary: the thread count and the global allocator are
//! process-wide, so nothing else may run beside it.

mod common;

use std::time::Duration;

use actix_supervisor::{Context, Ended, Group, RunResult};
use common::heap::{back_to, live_heap, Counting, SLACK};
use common::*;

#[global_allocator]
static ALLOC: Counting = Counting;

/// 10 groups of 10 members, each with 10 children: 1,111 nodes, a couple
/// of megabytes, so that one leaked tree stands far above the slack.
async fn root(ctx: Context) -> RunResult {
    let mut g = Group::new();
    for i in 0..10 {
        g = g.with(format!("m{i}"), |ctx: Context| async move {
            let mut g = Group::new();
            for j in 0..10 {
                g = g.with(format!("w{j}"), |ctx: Context| async move {
                    let mut g = Group::new();
                    for k in 0..10 {
                        g = g.with(format!("l{k}"), server());
                    }
                    ctx.run_group(g).await?;
                    serve(&ctx).await
                });
            }
            ctx.run_group(g).await?;
            serve(&ctx).await
        });
    }
    ctx.run_group(g).await?;
    serve(&ctx).await
}

#[actix_rt::test]
async fn supervisors_release_their_threads_and_memory() {
    init_log();
    // A first cycle pays for what stays for the process's life (the
    // runtime's and logger's lazy statics).
    let cycle = || async {
        let sup = builder().workers(2).start(root);
        sup.wait_settled().await;
        assert_eq!(sup.live_runnables().await.len(), 1111);
        sup.shutdown().await;
        drop(sup);
    };
    let threads = thread_count();
    cycle().await;
    back_to(threads, isize::MAX / 2, 0, "after the warm-up").await;
    let heap = live_heap();
    for round in 0..20 {
        cycle().await;
        back_to(
            threads,
            heap,
            SLACK,
            &format!("after shutdown round {round}"),
        )
        .await;
    }

    // Ending by escalation: the root keeps dying and the supervisor's
    // restart intensity is exceeded, so it shuts itself down.
    for round in 0..5 {
        let sup =
            builder()
                .max_restarts(3, Duration::from_secs(60))
                .start(|ctx: Context| async move {
                    ctx.run_group(Group::new().with("a", server()).with("b", server()))
                        .await?;
                    Err("the root fails".into())
                });
        assert!(matches!(sup.join().await, Ended::GaveUp { .. }));
        assert!(sup.live_runnables().await.is_empty());
        drop(sup);
        back_to(
            threads,
            heap,
            SLACK,
            &format!("after escalation round {round}"),
        )
        .await;
    }

    // Tasks tied to incarnations (`Context::spawn`): 200 incarnations that
    // each spawn a looping task and die, then a shutdown.
    for round in 0..3 {
        let starts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let s = starts.clone();
        let sup = builder()
            .backoff(actix_supervisor::Backoff::default().initial(Duration::ZERO))
            .start(move |ctx: Context| {
                let n = s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    ctx.spawn(async {
                        loop {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    });
                    ctx.signal(actix_supervisor::Signal::Healthy)?;
                    if n < 200 {
                        return Err("flapping".into());
                    }
                    ctx.cancelled().await;
                    Ok(())
                }
            });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while starts.load(std::sync::atomic::Ordering::SeqCst) <= 200 {
            sup.wait_settled().await;
            assert!(tokio::time::Instant::now() < deadline, "200 restarts");
        }
        sup.shutdown().await;
        drop(sup);
        back_to(threads, heap, SLACK, &format!("after task round {round}")).await;
    }
}
