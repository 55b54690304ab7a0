//! Overload figures (#29): a tree of 100,000 actor nodes (100 parents of
//! 1,000 actors each), 1,000 of them in queue alarm with 10 messages
//! waiting each. Prints the size of the Prometheus text a scrape returns,
//! its series, and the time to encode it (p50, p99, p99.9 and the worst of
//! 1,000 scrapes), taken while a snapshot of the whole tree runs once a
//! second; and the processor's lag meanwhile.
//!
//! ```text
//! cargo run --release --example overload            # 100,000 actors, 1,000 in alarm
//! cargo run --release --example overload -- 10000   # 10,000 actors, 1,000 in alarm
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_supervisor::prometheus::PrometheusMetrics;
use actix_supervisor::prometheus_client::{encoding::text::encode, registry::Registry};
use actix_supervisor::{actor, Child, Context, Group, Signal, SupervisedAddr, Supervisor};
use futures::channel::oneshot;

/// Holds each `Hold` until its sender is dropped.
struct Desk;

impl Actor for Desk {
    type Context = actix::Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Hold(oneshot::Receiver<()>);

impl Handler<Hold> for Desk {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, m: Hold, _: &mut Self::Context) -> Self::Result {
        AtomicResponse::new(Box::pin(fut::wrap_future(async move {
            let _ = m.0.await;
        })))
    }
}

const PER_PARENT: usize = 1_000;
const HOT: usize = 1_000;
const WAITING: usize = 10;

type Addrs = Arc<Mutex<Vec<SupervisedAddr<Desk>>>>;

/// A parent of `PER_PARENT` actors, each with a queue alarm at 8 (off below 4).
fn parent(
    addrs: Addrs,
) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, actix_supervisor::RunResult> + Send
{
    move |ctx: Context| {
        let addrs = addrs.clone();
        Box::pin(async move {
            let mut group = Group::new();
            let mut mine = Vec::with_capacity(PER_PARENT);
            for i in 0..PER_PARENT {
                let (r, a) = actor(|| Desk);
                group = group.child(Child::new(format!("a{i}"), r).queue_alarm(8, 4));
                mine.push(a);
            }
            ctx.run_group(group).await?;
            addrs.lock().expect("not poisoned").extend(mine);
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            Ok(())
        })
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[actix_rt::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let parents = n.div_ceil(PER_PARENT);
    let mut registry = Registry::default();
    let metrics = PrometheusMetrics::new(&mut registry);
    let addrs: Addrs = Arc::default();
    let a = addrs.clone();
    let took = Instant::now();
    let sup = Supervisor::builder()
        .metrics(metrics)
        .start(move |ctx: Context| {
            let a = a.clone();
            async move {
                let mut group = Group::new();
                for p in 0..parents {
                    group = group.child(Child::new(format!("p{p}"), parent(a.clone())));
                }
                ctx.run_group(group).await?;
                ctx.signal(Signal::Healthy)?;
                ctx.cancelled().await;
                Ok(())
            }
        });
    while sup.counts().await.healthy < 1 + parents + parents * PER_PARENT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{} actor nodes under {parents} parents up in {:.2?}",
        parents * PER_PARENT,
        took.elapsed()
    );
    // 1,000 actors in alarm, 10 messages waiting each.
    let hot: Vec<SupervisedAddr<Desk>> = addrs.lock().expect("not poisoned")[..HOT].to_vec();
    let mut gates = Vec::with_capacity(HOT * WAITING);
    for addr in &hot {
        for _ in 0..WAITING {
            let (tx, rx) = oneshot::channel();
            if addr.do_send(Hold(rx)).is_ok() {
                gates.push(tx);
            }
        }
    }
    // Let the alarms reach the processor and its tick tell the sink.
    while sup.counts().await.overloaded < HOT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    println!("{} nodes in alarm", sup.counts().await.overloaded);

    // Scrapes, while a snapshot of the whole tree runs once a second.
    let scraping = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (sup, scraping) = (sup.clone(), scraping.clone());
        actix_rt::spawn(async move {
            let mut worst = Duration::ZERO;
            while scraping.load(Ordering::Relaxed) {
                let t = Instant::now();
                let _ = sup.snapshot().await.len();
                worst = worst.max(t.elapsed());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            worst
        })
    };
    let mut times = Vec::with_capacity(1_000);
    let mut text = String::new();
    let mut lags = Vec::new();
    for i in 0..1_000 {
        text.clear();
        let t = Instant::now();
        encode(&mut text, &registry).expect("encoded");
        times.push(t.elapsed());
        if i % 100 == 0 {
            let lag = text
                .lines()
                .find_map(|l| l.strip_prefix("actix_supervisor_processor_lag_seconds "))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_default();
            lags.push(lag);
        }
        // A scrape every 5 ms: 5 s in all, five snapshots meanwhile.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    times.sort();
    let series = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    let gauges = text
        .lines()
        .filter(|l| l.starts_with("actix_supervisor_overloaded_queue_depth{"))
        .count();
    println!(
        "/metrics: {} bytes, {series} series ({gauges} overloaded_queue_depth gauges)",
        text.len()
    );
    println!(
        "encode (a scrape), 1,000 times: p50 {:.1?}, p99 {:.1?}, p99.9 {:.1?}, worst {:.1?}",
        pct(&times, 0.5),
        pct(&times, 0.99),
        pct(&times, 0.999),
        times[times.len() - 1]
    );
    let worst_lag = lags.iter().cloned().fold(0.0f64, f64::max);
    println!("processor lag meanwhile: worst {:.1} ms", worst_lag * 1e3);
    for line in text
        .lines()
        .filter(|l| l.starts_with("actix_supervisor_queue_depth"))
    {
        println!("  {line}");
    }
    scraping.store(false, Ordering::Relaxed);
    let worst_snapshot = watcher.await.unwrap_or_default();
    drop(gates);
    sup.shutdown().await;
    println!("snapshot of the whole tree meanwhile: worst {worst_snapshot:.2?}");
}
