//! Our crate at scale: spawn, restart latency, a restart storm, a wide group,
//! and shutdown. `cargo bench --bench supervision`; see docs/performance.md.
//!
//! Each scenario builds its tree inside one actix System; timings are wall
//! clock from the bench's thread. Restart latency percentiles are printed
//! besides criterion's estimate of the mean.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use actix_supervisor::Supervisor;
use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

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

criterion_group!(benches, spawn, restart, storm, wide_group, shutdown);
criterion_main!(benches);
