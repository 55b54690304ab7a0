//! The `tracing` feature: `tracing-subscriber`'s fmt layer prints every
//! event with the spans it happened in (`node{dn=root.db incarnation=2
//! kind=runnable}`), so the supervision tree shows in each line; the
//! crate's `LogTreeLayer` files the same events in the log tree, where the
//! death report's lead-up finds them.
//!
//! ```text
//! cargo run --example tracing --features tracing
//! ```

use std::time::Duration;

use actix_supervisor::tracing::LogTreeLayer;
use actix_supervisor::{Backoff, Context, Group, LogQuery, RunResult, Signal, Supervisor};
use tracing_subscriber::layer::SubscriberExt;

async fn db(ctx: Context) -> RunResult {
    static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    tracing::info!(pool = 4, "connecting");
    if start == 0 {
        tracing::warn!("the primary does not answer");
        return Err("connection refused".into());
    }
    ctx.signal(Signal::Healthy)?;
    tracing::info!("connected");
    ctx.cancelled().await;
    Ok(())
}

async fn api(ctx: Context) -> RunResult {
    ctx.signal(Signal::Healthy)?;
    // A task carrying the span: its events are the node's too.
    let _ = ctx
        .spawn(async { tracing::info!(port = 8080, "listening") })
        .await;
    ctx.cancelled().await;
    Ok(())
}

fn main() {
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .with(LogTreeLayer::new());
    tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
    actix_rt::System::new().block_on(async {
        let service = tracing::info_span!("service", name = "example");
        let sup = {
            let _entered = service.enter();
            Supervisor::builder()
                .backoff(Backoff::default().initial(Duration::from_millis(200)))
                .start(|ctx: Context| async move {
                    ctx.run_group(Group::new().with("db", db).with("api", api))
                        .await?;
                    ctx.signal(Signal::Healthy)?;
                    ctx.cancelled().await;
                    Ok(())
                })
        };
        tokio::time::sleep(Duration::from_millis(600)).await;
        sup.wait_settled().await;
        println!("\nroot.db's lines in the log tree:");
        for e in sup.logs().backlog(&LogQuery::dn("root.db")) {
            println!("  {e}");
        }
        sup.shutdown().await;
    });
}
