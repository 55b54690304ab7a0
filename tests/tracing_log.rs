//! With the `log` bridge (`tracing-log`'s `LogTracer`, here behind the
//! `CaptureLogger`) and the `LogTreeLayer` both on, every line is filed at
//! its node exactly once, whichever way it was made, and a death report
//! printed through the bridge does not claim lines were shown that a
//! filtered printer dropped. Its own test binary:
//! it installs the process's `log` logger and tracing subscriber.
#![cfg(feature = "tracing")]

mod common;

use actix_supervisor::tracing::LogTreeLayer;
use actix_supervisor::{node_debug, node_info, CaptureLogger, Context, LogQuery, RunResult};
use common::subscriber::{seen, Recorder};
use common::*;
use tracing_subscriber::layer::{Layer, SubscriberExt};

#[actix_rt::test]
async fn nothing_is_filed_twice_with_the_log_bridge() {
    // LogTracer is a `log::Log`: the CaptureLogger wraps it.
    let bridge = tracing_log::LogTracer::new();
    CaptureLogger::install(Box::new(bridge), log::LevelFilter::Trace).unwrap();
    // The Recorder stands for a printer filtered at INFO (a fmt layer):
    // it drops the DEBUG lines the LogTreeLayer files.
    let printer = Recorder.with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let subscriber = tracing_subscriber::registry()
        .with(LogTreeLayer::new())
        .with(printer);
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

    // A death's report through the bridge: the printer dropped the DEBUG
    // lead-up, so the report must not claim it was shown above; in doubt
    // (a tracing subscriber behind the facade) it prints the lines.
    let sup = actix_supervisor::Supervisor::builder().start(|ctx: Context| async move {
        ctx.run("dies", |ctx: Context| async move {
            node_debug!(ctx, "debug one");
            node_debug!(ctx, "debug two");
            node_info!(ctx, "info three");
            RunResult::Err("down".into())
        })
        .await?;
        serve(&ctx).await
    });
    // The report reaches the printer twice: as the structured event (its
    // first line), and as the facade's record, bridged (the whole report,
    // its target in the `log.target` field).
    let reports = async {
        loop {
            let found: Vec<String> = seen()
                .lock()
                .unwrap()
                .events
                .iter()
                .filter(|e| {
                    e.fields.get("log.target").map(String::as_str) == Some("actix_supervisor")
                })
                .filter_map(|e| e.fields.get("message").cloned())
                .filter(|m| m.starts_with("root.dies died"))
                .collect();
            if !found.is_empty() {
                return found;
            }
            tokio::task::yield_now().await;
        }
    };
    let reports = tokio::time::timeout(std::time::Duration::from_secs(10), reports)
        .await
        .expect("the death report was printed");
    assert!(reports.iter().all(|r| !r.contains("above")), "{reports:#?}");
    assert!(
        reports
            .iter()
            .any(|r| r.contains("debug one") && r.contains("debug two")),
        "{reports:#?}"
    );
    sup.shutdown().await;
}
