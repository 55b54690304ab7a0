//! Pieces shared by the benches: a fan-out tree for our crate, a kill switch
//! for one member of a two-member group, and percentiles.

#![allow(dead_code)]

pub mod churn;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_supervisor::{Context, Group, RunResult, Signal, Supervisor};
use futures::future::LocalBoxFuture;
use tokio::sync::{mpsc, watch, Notify};

pub type Boxed = LocalBoxFuture<'static, RunResult>;

/// Counts up to a target and wakes whoever waits for it.
#[derive(Default)]
pub struct Countdown {
    count: AtomicUsize,
    target: AtomicUsize,
    done: Notify,
}

impl Countdown {
    pub fn arm(&self, target: usize) {
        self.count.store(0, Ordering::SeqCst);
        self.target.store(target, Ordering::SeqCst);
    }

    pub fn tick(&self) {
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.target.load(Ordering::Acquire) {
            self.done.notify_one();
        }
    }

    pub async fn wait(&self) {
        self.done.notified().await;
    }
}

/// What the runnables of a bench tree share with the bench.
pub struct Shared {
    pub healthy: Countdown,
    /// Members that die when notified (one per storm group, or the victim).
    pub kill: Notify,
    pub died_at: Mutex<Option<Instant>>,
    pub samples: mpsc::UnboundedSender<Duration>,
    pub victim_up: mpsc::UnboundedSender<()>,
    /// Bumped to make every storm leaf die at once.
    pub storm: watch::Sender<u64>,
    /// The thread the peer's last incarnation ran on.
    pub peer_thread: Mutex<Option<std::thread::ThreadId>>,
}

impl Shared {
    pub fn new() -> (
        Arc<Shared>,
        mpsc::UnboundedReceiver<Duration>,
        mpsc::UnboundedReceiver<()>,
    ) {
        let (samples, s_rx) = mpsc::unbounded_channel();
        let (victim_up, v_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            healthy: Countdown::default(),
            kill: Notify::new(),
            died_at: Mutex::new(None),
            samples,
            victim_up,
            storm: watch::channel(0).0,
            peer_thread: Mutex::new(None),
        });
        (shared, s_rx, v_rx)
    }
}

/// Nodes in a fan-out-10 tree `depth` levels deep.
pub fn tree_size(depth: u32) -> usize {
    (0..=depth).map(|d| 10usize.pow(d)).sum()
}

/// How the tree's leaves behave.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Leaves {
    /// Serve until cancelled.
    Serve,
    /// The first leaf of every leaf group dies when `kill` is notified (storm).
    Storm,
}

/// A node `depth` levels above the leaves. With `pair`, the first node one
/// level above the leaves also starts a `{victim, peer}` group.
pub fn fan_out(
    depth: u32,
    pair: bool,
    leaves: Leaves,
    first: bool,
    s: Arc<Shared>,
) -> impl FnMut(Context) -> Boxed + Send {
    move |ctx: Context| {
        let s = s.clone();
        Box::pin(async move {
            if depth > 0 {
                let mut g = Group::new();
                for i in 0..10 {
                    g = g.with(
                        format!("n{i}"),
                        fan_out(depth - 1, pair && i == 0, leaves, i == 0, s.clone()),
                    );
                }
                ctx.run_group(g).await?;
                if depth == 1 && pair {
                    ctx.run_group(
                        Group::new()
                            .with("victim", victim(s.clone()))
                            .with("peer", peer(s.clone())),
                    )
                    .await?;
                }
            }
            // Subscribed before reporting healthy, so no storm can be missed.
            let mut storm = s.storm.subscribe();
            ctx.signal(Signal::Healthy)?;
            s.healthy.tick();
            if depth == 0 && first && leaves == Leaves::Storm {
                tokio::select! {
                    _ = storm.changed() => return Err("storm".into()),
                    _ = ctx.cancelled() => return Ok(()),
                }
            }
            ctx.cancelled().await;
            Ok(())
        })
    }
}

/// A node with one group of `width` members; member `m0` dies on `kill`.
pub fn wide(width: usize, s: Arc<Shared>) -> impl FnMut(Context) -> Boxed + Send {
    move |ctx: Context| {
        let s = s.clone();
        Box::pin(async move {
            let mut g = Group::new();
            for i in 0..width {
                let s = s.clone();
                g = g.with(format!("m{i}"), move |ctx: Context| {
                    let s = s.clone();
                    async move {
                        ctx.signal(Signal::Healthy)?;
                        s.healthy.tick();
                        if i == 0 {
                            tokio::select! {
                                _ = s.kill.notified() => return Err("killed".into()),
                                _ = ctx.cancelled() => return Ok(()),
                            }
                        }
                        ctx.cancelled().await;
                        Ok(())
                    }
                });
            }
            ctx.run_group(g).await?;
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            Ok(())
        })
    }
}

/// Dies when `kill` is notified, recording when.
pub fn victim(s: Arc<Shared>) -> impl FnMut(Context) -> Boxed + Send {
    move |ctx: Context| {
        let s = s.clone();
        Box::pin(async move {
            ctx.signal(Signal::Healthy)?;
            s.healthy.tick();
            let _ = s.victim_up.send(());
            tokio::select! {
                _ = s.kill.notified() => {
                    *s.died_at.lock().unwrap() = Some(Instant::now());
                    Err("killed".into())
                }
                _ = ctx.cancelled() => Ok(()),
            }
        })
    }
}

/// Reports how long after the victim's death each new incarnation started.
pub fn peer(s: Arc<Shared>) -> impl FnMut(Context) -> Boxed + Send {
    move |ctx: Context| {
        let s = s.clone();
        Box::pin(async move {
            if let Some(t0) = s.died_at.lock().unwrap().take() {
                let _ = s.samples.send(t0.elapsed());
            }
            *s.peer_thread.lock().unwrap() = Some(std::thread::current().id());
            ctx.signal(Signal::Healthy)?;
            s.healthy.tick();
            ctx.cancelled().await;
            Ok(())
        })
    }
}

/// A supervisor whose backoff is zero: the benches measure supervision, not waiting.
pub fn no_backoff() -> actix_supervisor::SupervisorBuilder {
    Supervisor::builder().backoff(actix_supervisor::Backoff::default().initial(Duration::ZERO))
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Prints p50/p99 (and the spread) of latency samples; returns p50 and p99.
pub fn report(name: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name}: n={} p50={:.1}µs p99={:.1}µs min={:.1}µs max={:.1}µs",
        samples.len(),
        us(percentile(&samples, 0.5)),
        us(percentile(&samples, 0.99)),
        us(samples[0]),
        us(samples[samples.len() - 1]),
    );
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// Kills the victim and measures until its peer's next incarnation runs.
pub struct Killer {
    pub shared: Arc<Shared>,
    pub samples: mpsc::UnboundedReceiver<Duration>,
    pub victim_up: mpsc::UnboundedReceiver<()>,
}

impl Killer {
    pub async fn kill_once(&mut self) -> Duration {
        self.shared.kill.notify_one();
        let d = self.samples.recv().await.expect("a sample");
        // The victim is back and waiting again before the next round.
        self.victim_up.recv().await;
        d
    }

    /// `n` kills, one after the other.
    pub async fn kills(&mut self, n: u64) -> Vec<Duration> {
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            out.push(self.kill_once().await);
        }
        out
    }
}

/// A criterion group sized so that the whole suite takes minutes, not hours.
pub fn quick<'a>(
    c: &'a mut criterion::Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g
}

/// Builds a fan-out tree `depth` levels deep and returns how long it took
/// until every node was Healthy; shuts it down untimed.
pub async fn spawn_once(depth: u32) -> Duration {
    let (s, _, _) = Shared::new();
    s.healthy.arm(tree_size(depth));
    let t = Instant::now();
    let sup = no_backoff().start(fan_out(depth, false, Leaves::Serve, true, s.clone()));
    s.healthy.wait().await;
    let took = t.elapsed();
    sup.shutdown().await;
    took
}
