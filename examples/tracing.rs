//! The `tracing` feature: `tracing-subscriber`'s fmt layer prints every
//! event, with the crate's `NodeFormat` naming its node once by its DN
//! (`INFO root.db: connecting pool=4`; the default format would print the
//! whole span ancestry, `service{..}:node{dn="root" ..}:node{dn="root.db"
//! ..}:`); the crate's `LogTreeLayer` files the same events in the log
//! tree, where the death report's lead-up finds them.
//!
//! ```text
//! cargo run --example tracing --features tracing
//! cargo run --example tracing --features tracing -- --full   # the default format, to compare
//! ```

use std::time::Duration;

use actix_supervisor::tracing::{LogTreeLayer, NodeFormat};
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
    let full = std::env::args().any(|a| a == "--full");
    let printer = tracing_subscriber::fmt::layer().with_target(false);
    let subscriber = tracing_subscriber::registry().with(LogTreeLayer::new());
    if full {
        tracing::subscriber::set_global_default(subscriber.with(printer))
    } else {
        let printer = printer.event_format(NodeFormat::new());
        tracing::subscriber::set_global_default(subscriber.with(printer))
    }
    .expect("no other subscriber");
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
        sup.wait_ready(Duration::from_secs(10))
            .await
            .expect("ready");
        println!("\nroot.db's lines in the log tree:");
        for e in sup.logs().backlog(&LogQuery::dn("root.db")) {
            println!("  {e}");
        }
        sup.shutdown().await;
    });
}
