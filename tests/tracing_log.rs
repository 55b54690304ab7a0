//! With the `log` bridge (`tracing-log`'s `LogTracer`, here behind the
//! `CaptureLogger`) and the `LogTreeLayer` both on, every line is filed at
//! its node exactly once, whichever way it was made. Its own test binary:
//! it installs the process's `log` logger and tracing subscriber.
#![cfg(feature = "tracing")]

mod common;

use actix_supervisor::tracing::LogTreeLayer;
use actix_supervisor::{node_info, CaptureLogger, Context, LogQuery};
use common::*;
use tracing_subscriber::layer::SubscriberExt;

#[actix_rt::test]
async fn nothing_is_filed_twice_with_the_log_bridge() {
    // LogTracer is a `log::Log`: the CaptureLogger wraps it.
    let bridge = tracing_log::LogTracer::new();
    CaptureLogger::install(Box::new(bridge), log::LevelFilter::Info).unwrap();
    let subscriber = tracing_subscriber::registry().with(LogTreeLayer::new());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let sup = actix_supervisor::Supervisor::builder().start(move |ctx: Context| {
        let tx = tx.clone();
        async move {
            ctx.run("worker", move |ctx: Context| {
                let tx = tx.clone();
                async move {
                    node_info!(ctx, "through the node logger");
                    log::info!("through the log facade");
                    tracing::info!("through tracing");
                    let _ = tx.send(());
                    serve(&ctx).await
                }
            })
            .await?;
            serve(&ctx).await
        }
    });
    rx.recv().await.unwrap();
    sup.wait_settled().await;
    let filed = messages(&sup, LogQuery::dn("root.worker"));
    assert_eq!(
        filed,
        [
            "through the node logger",
            "through the log facade",
            "through tracing"
        ],
        "each once"
    );
    sup.shutdown().await;
}
