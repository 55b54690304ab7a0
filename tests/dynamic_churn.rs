//! Churning dynamic children leaves memory flat: thousands of start + terminate pairs with unique names end within the heap slack of where they began.
//!
//! One test in its own binary: the global allocator's count is process-wide.

mod common;

use actix_supervisor::{Child, Context, DynamicGroup};
use common::heap::{live_heap, settle_to, Counting, SLACK};
use common::*;

#[global_allocator]
static ALLOC: Counting = Counting;

#[actix_rt::test]
async fn churning_unique_names_leaves_the_heap_flat() {
    // Small log rings: the supervisor says every child's removal, and its
    // ring must be full (bounded) before the baseline is taken.
    let sup = builder()
        .workers(2)
        .log_capacity(1024)
        .start(|ctx: Context| async move {
            ctx.run_dynamic("jobs", DynamicGroup::new()).await?;
            serve(&ctx).await
        });
    sup.wait_settled().await;
    let jobs = sup.dynamic("root.jobs");
    let churn = |from: usize, to: usize| {
        let jobs = jobs.clone();
        async move {
            // At most 100 live at once, as a pool of sessions would be.
            for batch in (from..to).step_by(100) {
                for i in batch..batch + 100 {
                    jobs.start_child(Child::new(format!("s{i}"), server()))
                        .await
                        .unwrap();
                }
                for i in batch..batch + 100 {
                    jobs.terminate_child(&format!("s{i}")).await.unwrap();
                }
            }
        }
    };
    // The first rounds pay for what stays (arenas, maps and mailboxes at
    // their working size).
    churn(0, 2_000).await;
    sup.wait_settled().await;
    let threads = thread_count();
    let before = live_heap();
    churn(2_000, 22_000).await;
    sup.wait_settled().await;
    assert_eq!(jobs.count().await, Ok(0));
    let (_, after, within) = settle_to(threads, before, SLACK, "after 20,000 pairs").await;
    eprintln!(
        "dynamic churn: live heap {before} B before, {after} B after 20,000 start+terminate pairs"
    );
    within.unwrap_or_else(|e| panic!("{e}"));
    sup.shutdown().await;
}
