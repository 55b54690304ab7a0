//! Soak: a million restarts (or as many as asked), then the resident memory
//! and the live heap (a counting allocator) at 10% and at 100% of them.
//! Nothing may grow with the number of restarts: the run fails (exit code 1)
//! if the resident set grew by 1 MiB or more between the two readings.
//!
//! ```text
//! cargo run --release --example soak                # 1,000,000 restarts
//! cargo run --release --example soak -- 200000      # another count
//! ```
//!
//! Eight nodes, each alone in its group, die as soon as they are healthy;
//! their backoff is zero, so every death is restarted at once (the death
//! report, its log lines and the restart all happen each time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_supervisor::{Context, RunResult, Signal, Supervisor};
use tokio::sync::mpsc;

#[path = "../tests/common/mod.rs"]
#[allow(unused)]
mod common;

use common::heap::{live_heap, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

const FLAPPERS: usize = 8;
const LIMIT_KIB: u64 = 1024;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let target: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let tenth = target / 10;
    let starts = Arc::new(AtomicU64::new(0));
    let (milestone, mut milestones) = mpsc::unbounded_channel::<u64>();
    let backoff = actix_supervisor::Backoff::default().initial(Duration::ZERO);
    let ok = actix_rt::System::new().block_on(async move {
        let counter = starts.clone();
        let sup = Supervisor::builder()
            .backoff(backoff)
            .start(move |ctx: Context| {
                let counter = counter.clone();
                let milestone = milestone.clone();
                async move {
                    for i in 0..FLAPPERS {
                        let (counter, milestone) = (counter.clone(), milestone.clone());
                        ctx.run(&format!("flapper{i}"), move |ctx: Context| {
                            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                            if n == tenth || n == target {
                                let _ = milestone.send(n);
                            }
                            async move {
                                ctx.signal(Signal::Healthy)?;
                                tokio::task::yield_now().await;
                                RunResult::Err("flapping".into())
                            }
                        })
                        .await?;
                    }
                    ctx.signal(Signal::Healthy)?;
                    ctx.cancelled().await;
                    Ok(())
                }
            });
        let t = Instant::now();
        milestones.recv().await;
        let (rss_tenth, heap_tenth, at_tenth) = (rss_kib(), live_heap(), t.elapsed());
        milestones.recv().await;
        let (rss_end, heap_end, at_end) = (rss_kib(), live_heap(), t.elapsed());
        sup.shutdown().await;
        let restarts: u64 = sup.snapshot().await.iter().map(|n| n.restarts).sum();
        let growth = rss_end.saturating_sub(rss_tenth);
        println!(
            "{target} starts ({restarts} restarts recorded) in {:.1} s, {:.1} µs each",
            at_end.as_secs_f64(),
            at_end.as_secs_f64() * 1e6 / target as f64
        );
        println!(
            "resident: {rss_tenth} KiB at 10% ({:.1} s), {rss_end} KiB at 100%: +{growth} KiB",
            at_tenth.as_secs_f64()
        );
        println!(
            "live heap: {heap_tenth} B at 10%, {heap_end} B at 100%: {:+} B",
            heap_end - heap_tenth
        );
        growth < LIMIT_KIB
    });
    if !ok {
        eprintln!("FAIL: the resident set grew by {LIMIT_KIB} KiB or more");
        std::process::exit(1);
    }
}
