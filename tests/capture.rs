//! Plain `log` calls inside a runnable are filed at its DN once the crate's
//! capturing wrapper is installed. (Its own test binary: the global logger
//! can be installed once per process.)

mod common;

use std::sync::{Arc, Mutex};

use actix_supervisor::{CaptureLogger, Context, LogQuery, Supervisor};
use common::{messages, serve};
use log::{LevelFilter, Log, Metadata, Record};

#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<String>>>);

impl Log for Recording {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", record.target(), record.args()));
    }
    fn flush(&self) {}
}

async fn helper() {
    log::warn!("from a helper the runnable awaits");
}

#[actix_rt::test]
async fn plain_log_calls_are_attributed_to_the_node() {
    let seen = Recording::default();
    CaptureLogger::install(Box::new(seen.clone()), LevelFilter::Info).unwrap();
    log::info!("outside any runnable");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let sup = Supervisor::builder().workers(1).start(move |ctx: Context| {
        let tx = tx.clone();
        async move {
            ctx.run("worker", move |ctx: Context| {
                let tx = tx.clone();
                async move {
                    assert_eq!(
                        actix_supervisor::current_logger()
                            .map(|l| l.dn().to_string())
                            .as_deref(),
                        Some("root.worker")
                    );
                    log::info!("plain info");
                    log::debug!("below the facade's level: neither printed nor captured");
                    helper().await;
                    actix_supervisor::node_info!(ctx, "through the node logger");
                    let _ = tx.send(());
                    serve(&ctx).await
                }
            })
            .await?;
            serve(&ctx).await
        }
    });
    rx.recv().await.unwrap();
    let filed = messages(&sup, LogQuery::dn("root.worker"));
    assert_eq!(
        filed,
        [
            "plain info",
            "from a helper the runnable awaits",
            "through the node logger"
        ]
    );
    let printed = seen.0.lock().unwrap().clone();
    assert!(printed.iter().any(|l| l.ends_with("outside any runnable")));
    assert!(
        printed
            .iter()
            .any(|l| l == "root.worker through the node logger"),
        "{printed:?}"
    );
    assert_eq!(
        printed
            .iter()
            .filter(|l| l.contains("through the node logger"))
            .count(),
        1
    );
    assert!(sup
        .logs()
        .backlog(&LogQuery::everything())
        .iter()
        .all(|e| e.message != "outside any runnable"));
    sup.shutdown().await;
}
