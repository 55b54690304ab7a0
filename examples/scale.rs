//! Scale figures: how long a tree of N nodes (fan-out 10, groups of 10) takes
//! to come up healthy, how long a death takes to restart its group sibling,
//! how long a snapshot of the whole tree and shutdown take, and the memory
//! per node.
//!
//! ```text
//! cargo run --release --example scale            # N = 1,111 / 11,111 / 111,111
//! cargo run --release --example scale -- 1111    # one size (up to 1111111)
//! cargo run --release --example scale -- linear  # 111,111 then 1,111,111 in one run
//! ```
//!
//! The restart latency is measured from the moment the dying member returns
//! its error to the moment its cancelled sibling's next incarnation starts
//! running. Both members live at the deepest level of the tree. It is
//! measured twice, 600 restarts 5 ms apart each: with nothing watching the
//! tree, and while a task takes a snapshot of the whole tree once a second
//! (p50, p99, p99.9 and the worst of each).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_supervisor::{Context, Group, RunResult, Signal, Supervisor};
use futures::future::LocalBoxFuture;
use tokio::sync::{mpsc, oneshot, Notify};

type Boxed = LocalBoxFuture<'static, RunResult>;

/// Counts live heap bytes, so that memory per node is exact rather than
/// read off the resident set (which the allocator's arenas blur).
struct Counting;

static LIVE_BYTES: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Shared {
    healthy: AtomicUsize,
    target: usize,
    all_up: Mutex<Option<oneshot::Sender<()>>>,
    kill: Notify,
    died_at: Mutex<Option<Instant>>,
    samples: mpsc::UnboundedSender<Duration>,
    victim_up: mpsc::UnboundedSender<()>,
}

impl Shared {
    fn up(&self) {
        if self.healthy.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            if let Some(tx) = self.all_up.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
    }
}

async fn serve(ctx: Context, s: Arc<Shared>) -> RunResult {
    ctx.signal(Signal::Healthy)?;
    s.up();
    ctx.cancelled().await;
    Ok(())
}

/// A node `depth` levels above the leaves; the first path also hosts the pair.
fn fan_out(depth: u32, first: bool, s: Arc<Shared>) -> impl FnMut(Context) -> Boxed + Send {
    move |ctx: Context| {
        let s = s.clone();
        Box::pin(async move {
            if depth > 0 {
                let mut g = Group::new();
                for i in 0..10 {
                    g = g.with(
                        format!("n{i}"),
                        fan_out(depth - 1, first && i == 0, s.clone()),
                    );
                }
                ctx.run_group(g).await?;
                if depth == 1 && first {
                    let pair = Group::new()
                        .with("victim", victim(s.clone()))
                        .with("peer", peer(s.clone()));
                    ctx.run_group(pair).await?;
                }
            }
            serve(ctx, s).await
        })
    }
}

fn victim(s: Arc<Shared>) -> impl FnMut(Context) -> Boxed + Send {
    move |ctx: Context| {
        let s = s.clone();
        Box::pin(async move {
            ctx.signal(Signal::Healthy)?;
            s.up();
            let _ = s.victim_up.send(());
            tokio::select! {
                _ = s.kill.notified() => {
                    *s.died_at.lock().unwrap() = Some(Instant::now());
                    Err("killed for the benchmark".into())
                }
                _ = ctx.cancelled() => Ok(()),
            }
        })
    }
}

fn peer(s: Arc<Shared>) -> impl FnMut(Context) -> Boxed + Send {
    move |ctx: Context| {
        let s = s.clone();
        Box::pin(async move {
            if let Some(t0) = s.died_at.lock().unwrap().take() {
                let _ = s.samples.send(t0.elapsed());
            }
            ctx.signal(Signal::Healthy)?;
            s.up();
            ctx.cancelled().await;
            Ok(())
        })
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(depth: u32) {
    let nodes: usize = (0..=depth).map(|d| 10usize.pow(d)).sum();
    let (all_tx, all_rx) = oneshot::channel();
    let (sample_tx, mut samples) = mpsc::unbounded_channel();
    let (up_tx, mut victim_up) = mpsc::unbounded_channel();
    let s = Arc::new(Shared {
        healthy: AtomicUsize::new(0),
        target: nodes + 2,
        all_up: Mutex::new(Some(all_tx)),
        kill: Notify::new(),
        died_at: Mutex::new(None),
        samples: sample_tx,
        victim_up: up_tx,
    });
    let rss0 = rss_kib();
    let heap0 = LIVE_BYTES.load(Ordering::Relaxed);
    let t = Instant::now();
    let sup = Supervisor::builder()
        .backoff(actix_supervisor::Backoff::default().initial(Duration::ZERO))
        .start(fan_out(depth, true, s.clone()));
    let _ = all_rx.await;
    let spawn = t.elapsed();
    sup.wait_settled().await;
    let rss = rss_kib().saturating_sub(rss0);
    let heap = LIVE_BYTES.load(Ordering::Relaxed) - heap0;

    victim_up.recv().await;
    // Restarts 5 ms apart, first with nothing watching the tree, then while
    // a task takes a snapshot of the whole tree (what `/tree.json` without
    // parameters did) once a second.
    let alone = restarts(&s, &mut samples, &mut victim_up, ROUNDS).await;
    let watching = Rc::new(Cell::new(true));
    let snaps: Rc<RefCell<Vec<Duration>>> = Rc::default();
    let watcher = {
        let (sup, watching, snaps) = (sup.clone(), watching.clone(), snaps.clone());
        actix_rt::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            while watching.get() {
                every.tick().await;
                let t = Instant::now();
                let snapshot = sup.snapshot().await;
                snaps.borrow_mut().push(t.elapsed());
                assert_eq!(snapshot.len(), nodes + 2);
            }
        })
    };
    let watched = restarts(&s, &mut samples, &mut victim_up, ROUNDS).await;
    watching.set(false);
    let _ = watcher.await;
    let mut snaps = snaps.take();
    snaps.sort();

    // The operator's view of the whole tree, alone.
    let t = Instant::now();
    let snapshot = sup.snapshot().await;
    let snap = t.elapsed();
    assert_eq!(snapshot.len(), nodes + 2);
    drop(snapshot);

    let t = Instant::now();
    sup.shutdown().await;
    let shutdown = t.elapsed();
    println!(
        "nodes {:>7}  spawn-to-healthy {:>9.1} ms  restart p50 {:>7.1} µs  p99 {:>7.1} µs  \
         snapshot {:>6.1} ms  shutdown {:>8.1} ms  heap/node {:>5} B  rss/node {:>5} B",
        nodes + 2,
        spawn.as_secs_f64() * 1e3,
        percentile(&alone, 0.5).as_secs_f64() * 1e6,
        percentile(&alone, 0.99).as_secs_f64() * 1e6,
        snap.as_secs_f64() * 1e3,
        shutdown.as_secs_f64() * 1e3,
        heap / (nodes as isize + 2),
        rss * 1024 / (nodes as u64 + 2),
    );
    for (what, lat) in [("alone", &alone), ("watched", &watched)] {
        println!(
            "    {ROUNDS} restarts {what:<8} p50 {:>8.1} µs  p99 {:>8.1} µs  p99.9 {:>8.1} µs  worst {:>8.1} µs",
            percentile(lat, 0.5).as_secs_f64() * 1e6,
            percentile(lat, 0.99).as_secs_f64() * 1e6,
            percentile(lat, 0.999).as_secs_f64() * 1e6,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
        );
    }
    if !snaps.is_empty() {
        println!(
            "    {} snapshots while restarting: p50 {:.1} ms  worst {:.1} ms",
            snaps.len(),
            percentile(&snaps, 0.5).as_secs_f64() * 1e3,
            snaps.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
}

const ROUNDS: usize = 600;

/// `n` deaths of the victim, 5 ms apart: the restart latencies, sorted.
async fn restarts(
    s: &Shared,
    samples: &mut mpsc::UnboundedReceiver<Duration>,
    victim_up: &mut mpsc::UnboundedReceiver<()>,
    n: usize,
) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        s.kill.notify_one();
        lat.push(samples.recv().await.expect("sample"));
        victim_up.recv().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lat.sort();
    lat
}

fn main() {
    // Deaths are the point of this benchmark: do not print them unless asked.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    let sizes: Vec<u32> = match std::env::args().nth(1).as_deref() {
        None => vec![3, 4, 5],
        Some("1111") => vec![3],
        Some("11111") => vec![4],
        Some("111111") => vec![5],
        Some("1111111") => vec![6],
        Some("linear") => vec![5, 6],
        Some(other) => {
            eprintln!(
                "unknown size {other:?}: 1111, 11111, 111111, 1111111, or linear (both large ones)"
            );
            std::process::exit(2);
        }
    };
    actix_rt::System::new().block_on(async {
        for depth in sizes {
            measure(depth).await;
        }
    });
}
