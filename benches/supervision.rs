//! Our crate at scale: spawn, restart latency, a restart storm, a wide group,
//! and shutdown. `cargo bench --bench supervision`; see docs/performance.md.
//!
//! Each scenario builds its tree inside one actix System; timings are wall
//! clock from the bench's thread. Restart latency percentiles are printed
//! besides criterion's estimate of the mean.

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_supervisor::{Context, Signal, Supervisor};
use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tokio::sync::{mpsc, Notify};

fn spawn(c: &mut Criterion) {
    let sys = actix_rt::System::new();
    let mut g = quick(c, "spawn");
    for depth in [3, 4, 5] {
        let n = tree_size(depth);
        g.bench_with_input(BenchmarkId::from_parameter(n), &depth, |b, &depth| {
            b.iter_custom(|iters| {
                sys.block_on(async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += spawn_once(depth).await;
                    }
                    total
                })
            })
        });
    }
}

fn restart(c: &mut Criterion) {
    let sys = actix_rt::System::new();
    let mut g = quick(c, "restart");
    for depth in [3, 5] {
        let n = tree_size(depth) + 2;
        let (s, samples, mut victim_up) = Shared::new();
        let sup = sys.block_on(async {
            s.healthy.arm(n);
            let sup = no_backoff().start(fan_out(depth, true, Leaves::Serve, true, s.clone()));
            s.healthy.wait().await;
            victim_up.recv().await;
            sup
        });
        let mut killer = Killer {
            shared: s,
            samples,
            victim_up,
        };
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| sys.block_on(killer.kills(iters)).iter().sum())
        });
        report(
            &format!("restart/{n} (ours)"),
            sys.block_on(killer.kills(500)),
        );
        sys.block_on(sup.shutdown());
    }
}

fn storm(c: &mut Criterion) {
    let sys = actix_rt::System::new();
    let mut g = quick(c, "storm");
    let depth = 4;
    let (s, _, _) = Shared::new();
    let sup = sys.block_on(async {
        s.healthy.arm(tree_size(depth));
        let sup = no_backoff().start(fan_out(depth, false, Leaves::Storm, true, s.clone()));
        s.healthy.wait().await;
        sup
    });
    g.bench_function("1000_of_11111", |b| {
        b.iter_custom(|iters| {
            sys.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // 1,000 groups of 10 leaves come back.
                    s.healthy.arm(10_000);
                    let t = Instant::now();
                    s.storm.send_modify(|v| *v += 1);
                    s.healthy.wait().await;
                    total += t.elapsed();
                }
                total
            })
        })
    });
    sys.block_on(sup.shutdown());
}

fn wide_group(c: &mut Criterion) {
    let sys = actix_rt::System::new();
    let mut g = quick(c, "wide");
    // The last case runs everything on the bench's arbiter: no thread hops.
    for (width, one_arbiter) in [(10_000, false), (50_000, false), (50_000, true)] {
        let (s, _, _) = Shared::new();
        let sup = sys.block_on(async {
            s.healthy.arm(width);
            let builder = if one_arbiter {
                no_backoff().current_arbiter()
            } else {
                no_backoff()
            };
            let sup = builder.start(wide(width, s.clone()));
            s.healthy.wait().await;
            sup
        });
        let id = if one_arbiter {
            format!("{width}_one_arbiter")
        } else {
            width.to_string()
        };
        g.bench_with_input(BenchmarkId::from_parameter(id), &width, |b, &width| {
            b.iter_custom(|iters| {
                sys.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        s.healthy.arm(width);
                        let t = Instant::now();
                        s.kill.notify_one();
                        s.healthy.wait().await;
                        total += t.elapsed();
                    }
                    total
                })
            })
        });
        sys.block_on(sup.shutdown());
    }
}

fn shutdown(c: &mut Criterion) {
    let sys = actix_rt::System::new();
    let mut g = quick(c, "shutdown");
    let depth = 5;
    g.bench_function(BenchmarkId::from_parameter(tree_size(depth)), |b| {
        b.iter_custom(|iters| {
            sys.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (s, _, _) = Shared::new();
                    s.healthy.arm(tree_size(depth));
                    let sup: Supervisor =
                        no_backoff().start(fan_out(depth, false, Leaves::Serve, true, s.clone()));
                    s.healthy.wait().await;
                    let t = Instant::now();
                    sup.shutdown().await;
                    total += t.elapsed();
                }
                total
            })
        })
    });
}

/// A runnable that blocks its worker's thread for a second whenever told.
struct Hog {
    block: Notify,
    /// True while it blocks.
    blocking: AtomicBool,
    /// Told `true` when a block starts and `false` when it ends.
    started: mpsc::UnboundedSender<bool>,
    thread: std::sync::Mutex<Option<std::thread::ThreadId>>,
}

fn hog_runnable(h: Arc<Hog>) -> impl FnMut(Context) -> Boxed + Send {
    move |ctx: Context| {
        let h = h.clone();
        Box::pin(async move {
            *h.thread.lock().unwrap() = Some(std::thread::current().id());
            ctx.signal(Signal::Healthy)?;
            loop {
                tokio::select! {
                    _ = h.block.notified() => {
                        h.blocking.store(true, Ordering::SeqCst);
                        let _ = h.started.send(true);
                        // The hog: its future does not yield for a second.
                        std::thread::sleep(Duration::from_secs(1));
                        h.blocking.store(false, Ordering::SeqCst);
                        let _ = h.started.send(false);
                    }
                    _ = ctx.cancelled() => return Ok(()),
                }
            }
        })
    }
}

/// The hog guarantee: while a runnable blocks one worker's thread, a group
/// on another worker restarts as fast as it does otherwise. The same
/// two-member restart as `restart`, in rounds alternating kills while the
/// hog is idle and kills while it blocks its worker (a second at a time),
/// so that both sets see the same machine.
fn hog(c: &mut Criterion) {
    let sys = actix_rt::System::new();
    let mut g = quick(c, "hog");
    let (s, samples, mut victim_up) = Shared::new();
    let (started, mut hog_started) = mpsc::unbounded_channel();
    let h = Arc::new(Hog {
        block: Notify::new(),
        blocking: AtomicBool::new(false),
        started,
        thread: std::sync::Mutex::new(None),
    });
    let sup = sys.block_on(async {
        let (s2, h2) = (s.clone(), h.clone());
        // The root's first group (the hog) and its second (the pair) go to
        // different workers: groups are placed round-robin.
        let sup = no_backoff().start(move |ctx: Context| {
            let (s, h) = (s2.clone(), h2.clone());
            Box::pin(async move {
                ctx.run("hog", hog_runnable(h)).await?;
                ctx.run_group(
                    actix_supervisor::Group::new()
                        .with("victim", victim(s.clone()))
                        .with("peer", peer(s)),
                )
                .await?;
                ctx.signal(Signal::Healthy)?;
                ctx.cancelled().await;
                Ok(())
            }) as Boxed
        });
        victim_up.recv().await;
        sup
    });
    let mut killer = Killer {
        shared: s.clone(),
        samples,
        victim_up,
    };
    // A first restart, so that the peer has said where it runs.
    sys.block_on(killer.kill_once());
    let hog_thread = *h.thread.lock().unwrap();
    let peer_thread = *s.peer_thread.lock().unwrap();
    assert!(
        hog_thread.is_some() && hog_thread != peer_thread,
        "the hog and the pair must run on different workers"
    );
    // Kills while the hog blocks its worker; a block is started when none
    // is under way, and its end is awaited by the next round.
    let blocked_kills = |killer: &mut Killer, hog_said: &mut mpsc::UnboundedReceiver<bool>, n| {
        sys.block_on(async {
            let mut out = Vec::with_capacity(n as usize);
            for _ in 0..n {
                if !h.blocking.load(Ordering::SeqCst) {
                    h.block.notify_one();
                    while !hog_said.recv().await.expect("the hog reports") {}
                }
                out.push(killer.kill_once().await);
            }
            out
        })
    };
    let (mut free, mut blocked) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        sys.block_on(async {
            while h.blocking.load(Ordering::SeqCst) {
                hog_started.recv().await;
            }
        });
        free.extend(sys.block_on(killer.kills(100)));
        blocked.extend(blocked_kills(&mut killer, &mut hog_started, 100));
    }
    g.bench_function("restart_while_another_worker_is_blocked", |b| {
        b.iter_custom(|iters| {
            blocked_kills(&mut killer, &mut hog_started, iters)
                .iter()
                .sum()
        })
    });
    let free = report("hog/restart, no worker blocked", free);
    let blocked = report("hog/restart, another worker blocked", blocked);
    println!(
        "hog: restart p50 with another worker blocked / without: {:.2}x (p99: {:.2}x)",
        blocked.0.as_secs_f64() / free.0.as_secs_f64(),
        blocked.1.as_secs_f64() / free.1.as_secs_f64(),
    );
    sys.block_on(sup.shutdown());
}

criterion_group!(benches, spawn, restart, storm, wide_group, shutdown, hog);
criterion_main!(benches);
