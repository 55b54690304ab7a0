//! The same restart and spawn scenarios for the Rust peers, in the same run:
//! actix's own `Supervisor`, kameo's supervision, and ractor with
//! ractor-supervisor. `cargo bench --bench peers`; see docs/performance.md.
//!
//! **restart**: a two-member one-for-all group; one member fails (returns an
//! error from a message handler); measured from the failure until the other
//! member's next incarnation starts. actix's `Supervisor` restarts a single
//! actor and has no groups: it is measured from the actor stopping itself to
//! its restarted `started()`, which is less work than a group restart.
//!
//! **spawn**: a fan-out-10 tree of N nodes, from the first spawn until every
//! leaf has started. kameo: every node is an actor supervising its ten
//! children. ractor: every inner node is a ractor-supervisor `Supervisor`, the
//! leaves are actors. actix has no supervision tree: it spawns N supervised
//! actors, flat, over two arbiters.
//!
//! **churn** (after the criterion scenarios, one timed run each): dynamic
//! children started and stopped under one parent, at most 1,000 alive, as
//! `common/churn.rs` says; `PEERS_CHURN_PAIRS` sets the count (200,000).
//!
//! kameo and ractor run on a tokio multi-thread runtime with two workers; our
//! supervisor runs its processor and two workers on arbiters of their own.

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use criterion::{criterion_group, BenchmarkId, Criterion};

use tokio::sync::mpsc;

/// What every peer's actors share with the bench.
struct Probe {
    died_at: Mutex<Option<Instant>>,
    samples: mpsc::UnboundedSender<Duration>,
    started: Countdown,
}

impl Probe {
    fn new() -> (Arc<Probe>, mpsc::UnboundedReceiver<Duration>) {
        let (samples, rx) = mpsc::unbounded_channel();
        let p = Arc::new(Probe {
            died_at: Mutex::new(None),
            samples,
            started: Countdown::default(),
        });
        (p, rx)
    }

    fn die(&self) {
        *self.died_at.lock().unwrap() = Some(Instant::now());
    }

    fn reborn(&self) {
        if let Some(t0) = self.died_at.lock().unwrap().take() {
            let _ = self.samples.send(t0.elapsed());
        }
    }
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `rounds` kills through `kill` and returns the latencies.
/// Like [`latencies`], for peers whose victim is a new reference after each
/// restart: each round takes the victim its `on_start` sent on `up`, kills
/// it, and waits for the sample.
async fn victim_rounds<V, F, Fut>(
    rounds: u64,
    samples: &mut mpsc::UnboundedReceiver<Duration>,
    up: &mut mpsc::UnboundedReceiver<V>,
    mut kill: F,
) -> Vec<Duration>
where
    F: FnMut(V) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut out = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let victim = up.recv().await.expect("the victim is up");
        kill(victim).await;
        out.push(samples.recv().await.expect("a sample"));
    }
    out
}

async fn latencies<F, Fut>(
    rounds: u64,
    samples: &mut mpsc::UnboundedReceiver<Duration>,
    mut kill: F,
) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut out = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        kill().await;
        out.push(samples.recv().await.expect("a sample"));
    }
    out
}

// ------------------------------------------------------------------ actix

mod actix_peer;

// ------------------------------------------------------------------ kameo

mod kameo_peer;

// ------------------------------------------------------------------ ractor

mod ractor_peer;

// ------------------------------------------------------------------ send

mod send;

// ------------------------------------------------------------------ ratios

/// What this run measured, by name: restart percentiles, and every spawn
/// timing criterion took (total, iterations), for the ratios at the end.
#[derive(Default)]
struct Results {
    restart: BTreeMap<&'static str, (Duration, Duration)>,
    spawn: BTreeMap<(&'static str, usize), (Duration, u64)>,
}

static RESULTS: Mutex<Option<Results>> = Mutex::new(None);

fn record_restart(name: &'static str, p50_p99: (Duration, Duration)) {
    let mut r = RESULTS.lock().unwrap();
    r.get_or_insert_with(Results::default)
        .restart
        .insert(name, p50_p99);
}

/// Adds criterion's timing of `iters` spawns of `n` nodes and passes it on.
fn record_spawn(name: &'static str, n: usize, iters: u64, total: Duration) -> Duration {
    let mut r = RESULTS.lock().unwrap();
    let e = r
        .get_or_insert_with(Results::default)
        .spawn
        .entry((name, n))
        .or_default();
    e.0 += total;
    e.1 += iters;
    total
}

/// Prints our figures over kameo's, measured in this run, beside the
/// targets of docs/performance.md.
fn print_ratios() {
    let r = RESULTS.lock().unwrap();
    let Some(r) = r.as_ref() else { return };
    println!("\nratios, this run (actix-supervisor / kameo; lower is better):");
    let line = |what: &str, ours: Option<Duration>, theirs: Option<Duration>, target: f64| {
        if let (Some(a), Some(b)) = (ours, theirs) {
            let ratio = a.as_secs_f64() / b.as_secs_f64();
            let ok = if ratio <= target { "met" } else { "NOT met" };
            println!(
                "  {what:<44} {:>9.1} µs / {:>9.1} µs = {ratio:>5.2}x  (target <= {target}x: {ok})",
                a.as_secs_f64() * 1e6,
                b.as_secs_f64() * 1e6,
            );
        }
    };
    let restart = |name: &str, p99: bool| {
        r.restart
            .get(name)
            .map(|(p50, p_99)| if p99 { *p_99 } else { *p50 })
    };
    let (ours, one_arbiter, kameo) = (
        "peers_restart/actix_supervisor",
        "peers_restart/actix_supervisor_one_arbiter",
        "peers_restart/kameo",
    );
    let (p50, p99) = (false, true);
    line(
        "restart p50, default placement",
        restart(ours, p50),
        restart(kameo, p50),
        2.0,
    );
    line(
        "restart p50, one arbiter",
        restart(one_arbiter, p50),
        restart(kameo, p50),
        1.0,
    );
    line(
        "restart p99, default placement",
        restart(ours, p99),
        restart(kameo, p99),
        3.0,
    );
    if let Some(hop) = restart("thread_round_trip", false) {
        println!(
            "  (a ping-pong between two idle arbiters in this run: p50 {:.1} µs per round trip; our default placement crosses threads twice per restart, kameo's restart usually not at all)",
            hop.as_secs_f64() * 1e6
        );
    }
    let mean = |name: &'static str, n: usize| {
        r.spawn
            .get(&(name, n))
            .filter(|(_, iters)| *iters > 0)
            .map(|(t, iters)| *t / *iters as u32)
    };
    for n in [tree_size(3), tree_size(4)] {
        line(
            &format!("spawn {n} nodes (mean)"),
            mean("actix_supervisor", n),
            mean("kameo", n),
            1.0,
        );
    }
}

// ------------------------------------------------------------------ benches

const ROUNDS: u64 = 300;

/// Our two-member group directly under the root, the victim up: its System,
/// supervisor and killer (`one_thread`: everything on one arbiter).
fn our_pair(one_thread: bool) -> (actix_rt::SystemRunner, actix_supervisor::Supervisor, Killer) {
    let sys = actix_rt::System::new();
    let (s, samples, mut victim_up) = Shared::new();
    let sup = sys.block_on(async {
        let s2 = s.clone();
        let builder = if one_thread {
            no_backoff().current_arbiter()
        } else {
            no_backoff()
        };
        let sup = builder.start(move |ctx: actix_supervisor::Context| {
            let s = s2.clone();
            async move {
                let pair = actix_supervisor::Group::new()
                    .with("victim", victim(s.clone()))
                    .with("peer", peer(s));
                ctx.run_group(pair).await?;
                ctx.signal(actix_supervisor::Signal::Healthy)?;
                ctx.cancelled().await;
                Ok(())
            }
        });
        victim_up.recv().await;
        sup
    });
    let killer = Killer {
        shared: s,
        samples,
        victim_up,
    };
    (sys, sup, killer)
}

/// Our restart scenario as `name` (`one_thread`: everything on one arbiter):
/// the criterion estimate, then ROUNDS kills for p50 and p99.
fn ours(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &'static str,
    one_thread: bool,
) -> (Duration, Duration) {
    let (sys, sup, mut killer) = our_pair(one_thread);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| sys.block_on(killer.kills(iters)).iter().sum())
    });
    let full: &'static str = Box::leak(format!("peers_restart/{name}").into_boxed_str());
    let p50_p99 = report(full, sys.block_on(killer.kills(ROUNDS)));
    record_restart(full, p50_p99);
    sys.block_on(sup.shutdown());
    p50_p99
}

/// With the `tracing` feature (`cargo bench -p actix-supervisor-benches
/// --bench peers --features tracing`): our restart, on one supervisor, with
/// no subscriber, then with a registry whose `LogTreeLayer` is switched off
/// and on in turn, 300 kills each, five times: the medians of the p50s. In
/// turn, on one tree, so that drift between runs (this machine's noise is
/// larger than the layer) does not pass for the layer's cost. Last, since
/// the global subscriber stays for the rest of the process.
#[cfg(feature = "tracing")]
fn tracing_cost(_: &mut Criterion) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};

    static LAYER_ON: AtomicBool = AtomicBool::new(false);
    let (sys, sup, mut killer) = our_pair(false);
    let mut p50 = |label: &str| {
        let (p50, _) = report(label, sys.block_on(killer.kills(ROUNDS)));
        p50
    };
    let bare = p50("peers_restart_tracing/no_subscriber");
    let layer = actix_supervisor::tracing::LogTreeLayer::new().with_filter(
        tracing_subscriber::filter::filter_fn(|_| LAYER_ON.load(Ordering::Relaxed)),
    );
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        LAYER_ON.store(false, Ordering::Relaxed);
        off.push(p50("peers_restart_tracing/registry"));
        LAYER_ON.store(true, Ordering::Relaxed);
        on.push(p50("peers_restart_tracing/registry_and_log_tree_layer"));
    }
    off.sort();
    on.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "tracing: restart p50 {:.1} µs with no subscriber; medians of five in turn: {:.1} µs with a registry, {:.1} µs with the LogTreeLayer too ({:+.1}%)",
        us(bare),
        us(off[2]),
        us(on[2]),
        (on[2].as_secs_f64() / off[2].as_secs_f64() - 1.0) * 100.0
    );
    sys.block_on(sup.shutdown());
}

#[cfg(not(feature = "tracing"))]
fn tracing_cost(_: &mut Criterion) {}

fn restart(c: &mut Criterion) {
    let mut g = quick(c, "peers_restart");

    // Ours: the same two-member group, directly under the root; with the
    // default placement (processor and nodes on threads of their own) and
    // with everything on one arbiter.
    ours(&mut g, "actix_supervisor", false);
    ours(&mut g, "actix_supervisor_one_arbiter", true);

    // For reference, what a thread crossing costs on this machine: a
    // ping-pong between two arbiters that are not the bench's own, timed on
    // the first one. Both sides go idle between messages, so every message
    // wakes a parked thread.
    {
        use actix::prelude::*;
        let sys = actix_rt::System::new();
        let rounds = sys.block_on(async {
            let echo =
                actix_peer::Echo::start_in_arbiter(&Arbiter::new().handle(), |_| actix_peer::Echo);
            let pinger = actix_peer::Pinger::start_in_arbiter(&Arbiter::new().handle(), |_| {
                actix_peer::Pinger
            });
            pinger
                .send(actix_peer::Rounds(echo, ROUNDS as usize))
                .await
                .expect("the pinger answers")
        });
        record_restart(
            "thread_round_trip",
            report("peers_restart/thread_round_trip (reference)", rounds),
        );
    }

    // actix's Supervisor: one actor.
    {
        use actix::prelude::*;
        let sys = actix_rt::System::new();
        let (probe, mut samples) = Probe::new();
        let addr = sys.block_on(async {
            let p = probe.clone();
            actix::Supervisor::start_in_arbiter(&Arbiter::new().handle(), move |_| {
                actix_peer::Worker(p)
            })
        });
        let mut run = |n: u64| {
            sys.block_on(latencies(n, &mut samples, || {
                let addr = addr.clone();
                async move { addr.do_send(actix_peer::Die) }
            }))
        };
        g.bench_function("actix_Supervisor", |b| {
            b.iter_custom(|iters| run(iters).iter().sum())
        });
        report("peers_restart/actix_Supervisor", run(ROUNDS));
    }

    // kameo: a OneForAll supervisor of two.
    {
        use kameo::actor::Spawn;
        let rt = tokio_rt();
        let (probe, mut samples) = Probe::new();
        let (up, mut up_rx) = mpsc::unbounded_channel();
        let member = kameo_peer::Member {
            probe: probe.clone(),
            victim: false,
            up,
        };
        let sup = rt.block_on(async { kameo_peer::Group::spawn(member) });
        let mut run = |n: u64| {
            rt.block_on(victim_rounds(n, &mut samples, &mut up_rx, |v| async move {
                let _ = v.tell(kameo_peer::Die).await;
            }))
        };
        g.bench_function("kameo", |b| b.iter_custom(|iters| run(iters).iter().sum()));
        record_restart(
            "peers_restart/kameo",
            report("peers_restart/kameo", run(ROUNDS)),
        );
        rt.block_on(async {
            sup.kill();
            sup.wait_for_shutdown().await;
        });
    }

    // ractor + ractor-supervisor: a OneForAll supervisor of two.
    {
        let rt = tokio_rt();
        let (probe, mut samples) = Probe::new();
        let (up, mut up_rx) = mpsc::unbounded_channel();
        let (sup, _) = rt
            .block_on(ractor_supervisor::Supervisor::spawn(
                "pair".into(),
                ractor_peer::pair(probe.clone(), up),
            ))
            .expect("spawn");
        let mut run = |n: u64| {
            rt.block_on(victim_rounds(n, &mut samples, &mut up_rx, |v| async move {
                let _ = v.send_message(());
            }))
        };
        g.bench_function("ractor_supervisor", |b| {
            b.iter_custom(|iters| run(iters).iter().sum())
        });
        report("peers_restart/ractor_supervisor", run(ROUNDS));
        sup.stop(None);
    }
}

fn spawn(c: &mut Criterion) {
    let mut g = quick(c, "peers_spawn");
    for depth in [3u32, 4] {
        let leaves = 10usize.pow(depth);
        let n = tree_size(depth);

        g.bench_with_input(
            BenchmarkId::new("actix_supervisor", n),
            &depth,
            |b, &depth| {
                let sys = actix_rt::System::new();
                b.iter_custom(|iters| {
                    let t = sys.block_on(async {
                        let mut t = Duration::ZERO;
                        for _ in 0..iters {
                            t += spawn_once(depth).await;
                        }
                        t
                    });
                    record_spawn("actix_supervisor", tree_size(depth), iters, t)
                })
            },
        );

        g.bench_with_input(BenchmarkId::new("actix_Supervisor_flat", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut t = Duration::ZERO;
                for _ in 0..iters {
                    let sys = actix_rt::System::new();
                    t += sys.block_on(async {
                        use actix::prelude::*;
                        let (probe, _) = Probe::new();
                        probe.started.arm(n);
                        let arbiters = [Arbiter::new(), Arbiter::new()];
                        let t0 = Instant::now();
                        let addrs: Vec<_> = (0..n)
                            .map(|i| {
                                let p = probe.clone();
                                actix::Supervisor::start_in_arbiter(
                                    &arbiters[i % 2].handle(),
                                    move |_| actix_peer::Worker(p),
                                )
                            })
                            .collect();
                        probe.started.wait().await;
                        let d = t0.elapsed();
                        drop(addrs);
                        for a in &arbiters {
                            a.stop();
                        }
                        d
                    });
                }
                t
            })
        });

        g.bench_with_input(BenchmarkId::new("kameo", n), &depth, |b, &depth| {
            use kameo::actor::Spawn;
            let rt = tokio_rt();
            b.iter_custom(|iters| {
                let t = rt.block_on(async {
                    let mut t = Duration::ZERO;
                    for _ in 0..iters {
                        let (probe, _) = Probe::new();
                        probe.started.arm(leaves);
                        let t0 = Instant::now();
                        let root = kameo_peer::Node::spawn(kameo_peer::Node {
                            depth,
                            probe: probe.clone(),
                        });
                        probe.started.wait().await;
                        t += t0.elapsed();
                        root.kill();
                        root.wait_for_shutdown().await;
                    }
                    t
                });
                record_spawn("kameo", tree_size(depth), iters, t)
            })
        });

        g.bench_with_input(
            BenchmarkId::new("ractor_supervisor", n),
            &depth,
            |b, &depth| {
                let rt = tokio_rt();
                let mut round = 0u64;
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut t = Duration::ZERO;
                        for _ in 0..iters {
                            round += 1;
                            let (probe, _) = Probe::new();
                            probe.started.arm(leaves);
                            let name = format!("t{round}");
                            let t0 = Instant::now();
                            let args = ractor_peer::tree(name.clone(), depth, probe.clone());
                            let (root, handle) = ractor_supervisor::Supervisor::spawn(name, args)
                                .await
                                .expect("spawn");
                            probe.started.wait().await;
                            t += t0.elapsed();
                            root.stop(None);
                            let _ = handle.await;
                        }
                        t
                    })
                })
            },
        );
    }
}

criterion_group!(
    benches,
    restart,
    spawn,
    send::send,
    send::send_local,
    tracing_cost
);

/// The dynamic churn (see `common/churn.rs`) for us, kameo and ractor in
/// this run, outside criterion (one timed run each, the pairs from
/// `PEERS_CHURN_PAIRS`, default 200,000), with its ratios.
fn churn_beside_peers() {
    let pairs: usize = std::env::var("PEERS_CHURN_PAIRS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let ours = actix_rt::System::new().block_on(churn::ours(pairs));
    let tokio_rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime for the peers")
    };
    let kameo = tokio_rt().block_on(churn::kameo_churn::churn(pairs));
    let ractor = tokio_rt().block_on(churn::ractor_churn::churn(pairs));
    let rate = |d: Duration| pairs as f64 / d.as_secs_f64();
    println!(
        "\nchurn, this run ({pairs} start + stop pairs, at most {} live; higher is better):",
        churn::LIVE
    );
    for (name, took) in [
        ("actix-supervisor", ours),
        ("kameo", kameo),
        ("ractor", ractor),
    ] {
        println!(
            "  {name:<18} {:>7.2} s  {:>9.0} pairs/s",
            took.as_secs_f64(),
            rate(took)
        );
    }
    println!(
        "  ours over kameo's throughput {:.2}x, over ractor's {:.2}x",
        rate(ours) / rate(kameo),
        rate(ours) / rate(ractor)
    );
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratios();
    churn_beside_peers();
}
