//! Everything a supervisor starts ends with it: after `shutdown()` (or an
//! escalation at the root) and dropping the handles, the process's thread
//! count and live heap return to where they were.
//!
//! One test in its own binary: the thread count and the global allocator are
//! process-wide, so nothing else may run beside it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use actix_supervisor::{Context, Group, RunResult};
use common::*;

/// Counts the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live_heap() -> isize {
    LIVE.load(Ordering::Relaxed)
}

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

/// Waits (bounded) until the thread count and live heap are back within
/// `slack` bytes of the baseline: threads end and free their memory after
/// the handles are dropped, on their own schedule.
async fn back_to(threads: usize, heap: isize, slack: isize, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (t, h) = (thread_count(), live_heap());
        if t <= threads && h - heap <= slack {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {t} threads (baseline {threads}), live heap {h} B (baseline {heap} B, slack {slack} B)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const SLACK: isize = 256 * 1024;

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

    // Ending by escalation: the root keeps dying and its restart budget is
    // spent, so the supervisor shuts itself down.
    for round in 0..5 {
        let sup = builder()
            .backoff(backoff::ExponentialBackoff {
                max_elapsed_time: Some(Duration::ZERO),
                ..backoff_ms(1)
            })
            .start(|ctx: Context| async move {
                ctx.run_group(Group::new().with("a", server()).with("b", server()))
                    .await?;
                Err("the root fails".into())
            });
        sup.join().await;
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
}
