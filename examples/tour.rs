//! A small service under supervision: a group of two HTTP-ish workers, a
//! database client, a worker that crashes now and then, and a batch job that
//! finishes. Prints the tree every second for about ten seconds, then shuts
//! down cleanly. Deaths are reported on stderr with the dying node's last log
//! lines.
//!
//! ```text
//! cargo run --example tour
//! RUST_LOG=actix_supervisor=info cargo run --example tour   # see every restart
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_supervisor::render::TextTree;
use actix_supervisor::{node_info, node_warn, Context, Group, RunResult, Signal, Supervisor};

/// Serves until cancelled.
async fn worker(ctx: Context) -> RunResult {
    ctx.signal(Signal::Healthy)?;
    ctx.cancelled().await;
    Ok(())
}

/// Accepts "connections"; crashes on every third incarnation's seventh tick.
fn listener(
    starts: Arc<AtomicU32>,
) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send {
    move |ctx: Context| {
        let n = starts.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            ctx.signal(Signal::Healthy)?;
            let mut tick = tokio::time::interval(Duration::from_millis(350));
            for i in 0.. {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = ctx.cancelled() => return Ok(()),
                }
                if n % 3 == 0 && i == 7 {
                    return Err(format!("connection reset (incarnation {n})").into());
                }
            }
            Ok(())
        })
    }
}

/// Crashes after 2.5 s, every time: its backoff grows. What it logged on the
/// way goes with the supervisor's report of its death.
async fn flaky(ctx: Context) -> RunResult {
    node_info!(ctx, "connecting to upstream");
    ctx.signal(Signal::Healthy)?;
    node_info!(ctx, "streaming from upstream");
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(2500)) => {
            node_warn!(ctx, "upstream silent for 2.5 s");
            Err("lost its upstream".into())
        }
        _ = ctx.cancelled() => Ok(()),
    }
}

/// Does some work, then is DONE.
async fn batch(ctx: Context) -> RunResult {
    ctx.signal(Signal::Healthy)?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ctx.signal(Signal::Done)?;
    Ok(())
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    actix_rt::System::new().block_on(async {
        let starts = Arc::new(AtomicU32::new(0));
        let sup = Supervisor::builder()
            .backoff(backoff::ExponentialBackoff {
                initial_interval: Duration::from_millis(300),
                current_interval: Duration::from_millis(300),
                ..actix_supervisor::default_backoff()
            })
            .start(move |ctx: Context| {
                let starts = starts.clone();
                async move {
                    ctx.run("http", move |ctx: Context| {
                        let starts = starts.clone();
                        async move {
                            let g = Group::new()
                                .with("listener", listener(starts))
                                .with("acceptor", worker);
                            ctx.run_group(g).await?;
                            worker(ctx).await
                        }
                    })
                    .await?;
                    ctx.run("db", worker).await?;
                    ctx.run("flaky", flaky).await?;
                    ctx.run("batch", batch).await?;
                    worker(ctx).await
                }
            });
        // Colours when a person is watching, plain text when piped.
        let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
        for second in 1..=10 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let snapshot = sup.snapshot().await;
            let counts = sup.counts().await;
            println!(
                "-- t={second}s: {} healthy, {} waiting to restart, {} restarts in the last minute",
                counts.healthy, counts.waiting, counts.restarts_last_minute
            );
            print!("{}", TextTree::new(&snapshot).color(color));
        }
        sup.shutdown().await;
        println!("-- shut down; live: {:?}", sup.live_runnables().await);
    });
}
