//! A service with its status page: an actix-web server supervised in the
//! tree, serving `/` and the supervisor's status under `/status/`, beside a
//! database client and a worker that crashes every few seconds.
//!
//! ```text
//! cargo run --example web --features web           # until Ctrl-C
//! cargo run --example web --features web -- 30     # for 30 seconds
//! ```
//!
//! Then open <http://127.0.0.1:8080/status/>.

use std::time::Duration;

use actix_supervisor::web::{server, Status};
use actix_supervisor::{node_info, Backoff, Context, Group, RunResult, Signal, Supervisor};
use actix_web::{web, App, HttpResponse};

/// Serves until cancelled.
async fn worker(ctx: Context) -> RunResult {
    ctx.signal(Signal::Healthy)?;
    ctx.cancelled().await;
    Ok(())
}

/// Works for four seconds, then loses its upstream.
async fn flaky(ctx: Context) -> RunResult {
    node_info!(ctx, "connected to upstream");
    ctx.signal(Signal::Healthy)?;
    tokio::select! {
        _ = ctx.cancelled() => Ok(()),
        _ = tokio::time::sleep(Duration::from_secs(4)) => Err("lost its upstream".into()),
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let seconds: Option<u64> = std::env::args().nth(1).and_then(|a| a.parse().ok());
    actix_rt::System::new().block_on(async move {
        let sup = Supervisor::builder()
            // Long enough to see a node wait on the page.
            .backoff(
                Backoff::default()
                    .initial(Duration::from_secs(2))
                    .jitter(0.0),
            )
            .prometheus()
            .start(move |ctx: Context| async move {
                let status = Status::new(ctx.supervisor());
                ctx.run(
                    "http",
                    server("127.0.0.1:8080", move || {
                        App::new()
                            .service(web::scope("/status").configure(status.config()))
                            .route(
                                "/",
                                web::get().to(|| async { HttpResponse::Ok().body("hello\n") }),
                            )
                    }),
                )
                .await?;
                ctx.run_group(
                    Group::new()
                        .with("db", worker)
                        .with("cache", worker)
                        .with("feed", flaky),
                )
                .await?;
                worker(ctx).await
            });
        println!("status page: http://127.0.0.1:8080/status/");
        match seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        sup.shutdown().await;
        println!("shut down");
    });
}
