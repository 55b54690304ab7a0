//! Dynamic children, measured (#17): 100,000 started from 100 concurrent
//! tasks; a churn of start + terminate pairs with at most 1,000 live, beside
//! kameo's supervised spawn + graceful stop of the same count in the same
//! run; and the restart of one dynamic child among 100,000 beside a group
//! restart in a static tree of the same size. Prints figures; asserts none.
//!
//! ```text
//! cargo bench -p actix-supervisor-benches --bench dynamic            # 1,000,000 pairs
//! cargo bench -p actix-supervisor-benches --bench dynamic -- 200000  # fewer
//! ```

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_supervisor::{Child, Context, DynamicGroup, RunResult, Signal, Supervisor};
use common::*;
use tokio::sync::mpsc;

const CHILDREN: usize = 100_000;
const TASKS: usize = 100;
const RESTARTS: usize = 300;

async fn serve(ctx: Context) -> RunResult {
    ctx.signal(Signal::Healthy)?;
    ctx.cancelled().await;
    Ok(())
}

/// A supervisor whose root runs `root.d`, a dynamic node.
async fn dynamic_tree() -> Supervisor {
    let sup = no_backoff().start(|ctx: Context| async move {
        ctx.run_dynamic("d", DynamicGroup::new()).await?;
        serve(ctx).await
    });
    sup.wait_settled().await;
    sup
}

/// 100,000 children from 100 tasks: until every one is running.
async fn start_many() -> Duration {
    let sup = dynamic_tree().await;
    let d = sup.dynamic("root.d");
    let probe = Arc::new(Countdown::default());
    probe.arm(CHILDREN);
    let t = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (d, probe) = (d.clone(), probe.clone());
            actix_rt::spawn(async move {
                for i in 0..CHILDREN / TASKS {
                    let probe = probe.clone();
                    let child = Child::new(format!("c{task}_{i}"), move |ctx: Context| {
                        let probe = probe.clone();
                        async move {
                            ctx.signal(Signal::Healthy)?;
                            probe.tick();
                            ctx.cancelled().await;
                            Ok(())
                        }
                    });
                    d.start_child(child).await.expect("start_child");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a starting task");
    }
    probe.wait().await;
    let took = t.elapsed();
    sup.shutdown().await;
    took
}

/// Kill one child among 100,000 `RESTARTS` times: the time from the kill
/// until the child is Healthy again.
async fn restart_among_many() -> Vec<Duration> {
    let sup = dynamic_tree().await;
    let d = sup.dynamic("root.d");
    let (up_tx, mut up) = mpsc::unbounded_channel::<Instant>();
    let (kill_tx, kill_rx) = mpsc::unbounded_channel::<()>();
    let kill_rx = Arc::new(tokio::sync::Mutex::new(kill_rx));
    let victim = move |ctx: Context| {
        let (up_tx, kill_rx) = (up_tx.clone(), kill_rx.clone());
        async move {
            ctx.signal(Signal::Healthy)?;
            let _ = up_tx.send(Instant::now());
            let mut kill = kill_rx.lock().await;
            tokio::select! {
                _ = kill.recv() => Err("killed".into()),
                _ = ctx.cancelled() => Ok(()),
            }
        }
    };
    for i in 0..CHILDREN - 1 {
        d.start_child(Child::new(format!("c{i}"), serve))
            .await
            .expect("start_child");
    }
    d.start_child(Child::new("victim", victim))
        .await
        .expect("start_child");
    up.recv().await.expect("the victim is up");
    sup.wait_settled().await;
    let mut samples = Vec::with_capacity(RESTARTS);
    for _ in 0..RESTARTS {
        let t = Instant::now();
        kill_tx.send(()).expect("the victim listens");
        let back = up.recv().await.expect("the victim came back");
        samples.push(back.saturating_duration_since(t));
    }
    sup.shutdown().await;
    samples.sort();
    samples
}

fn main() {
    let pairs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let system = actix_rt::System::new();
    let start = system.block_on(start_many());
    println!(
        "dynamic: {CHILDREN} children started from {TASKS} tasks, all running in {:.3} s",
        start.as_secs_f64()
    );
    let ours = system.block_on(churn::ours(pairs));
    println!(
        "dynamic: churn of {pairs} pairs: {:.2} s (kameo next)",
        ours.as_secs_f64()
    );
    let theirs = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for kameo")
        .block_on(churn::kameo_churn::churn(pairs));
    let rate = |d: Duration| pairs as f64 / d.as_secs_f64();
    println!(
        "dynamic: churn of {pairs} start+terminate pairs (≤{} live): {:.2} s, {:.0} pairs/s; kameo spawn+stop: {:.2} s, {:.0} pairs/s; ours over kameo's throughput {:.2}×",
        churn::LIVE,
        ours.as_secs_f64(),
        rate(ours),
        theirs.as_secs_f64(),
        rate(theirs),
        rate(ours) / rate(theirs)
    );
    let samples = system.block_on(restart_among_many());
    println!(
        "dynamic: restart of one child among {CHILDREN}: p50 {:?}, p99 {:?}, worst {:?} ({RESTARTS} samples)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or_default()
    );
}
