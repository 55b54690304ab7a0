//! The status page of a large tree, to look at (and time) in a browser:
//! builds a tree of N nodes (fan-out 10; 1,111,111 by default), fails
//! the leaves `n3.n7.n4.n2` (100 of them at the default size) with an
//! hour's backoff, and serves the status on 127.0.0.1:8089 until Ctrl-C.
//! `-- ready` fails none, for timing `/readyz` on a ready tree.
//!
//! ```text
//! cargo run --release --example big_page            # 1,111,111 nodes
//! cargo run --release --example big_page -- 111111  # or 1111, 11111, 111111
//! time chromium --headless ... --dump-dom http://127.0.0.1:8089/ > /dev/null
//! ```

use std::time::{Duration, Instant};

use actix_supervisor::web::Status;
use actix_supervisor::{Backoff, Context, Group, RunResult, Signal, Strategy, Supervisor};
use futures::future::LocalBoxFuture;

fn level(
    depth: u32,
    fail: bool,
) -> impl FnMut(Context) -> LocalBoxFuture<'static, RunResult> + Send + Clone {
    move |ctx: Context| {
        Box::pin(async move {
            if depth > 0 {
                let mut g = Group::new().strategy(Strategy::OneForOne);
                for i in 0..10 {
                    g = g.with(format!("n{i}"), level(depth - 1, fail));
                }
                ctx.run_group(g).await?;
            } else if fail && ctx.dn().ends_with("n3.n7.n4.n2") {
                return Err("the disk is full".into());
            }
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            Ok(())
        })
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    let ready = std::env::args().any(|a| a == "ready");
    let depth = match std::env::args().nth(1).filter(|a| a != "ready").as_deref() {
        None | Some("1111111") => 6,
        Some("111111") => 5,
        Some("11111") => 4,
        Some("1111") => 3,
        Some(other) => {
            eprintln!("unknown size {other:?}: 1111, 11111, 111111 or 1111111");
            std::process::exit(2);
        }
    };
    actix_rt::System::new().block_on(async move {
        let t = Instant::now();
        let sup = Supervisor::builder()
            .backoff(Backoff::default().initial(Duration::from_secs(3600)))
            .start(move |ctx: Context| async move {
                ctx.run("tree", level(depth, !ready)).await?;
                let status = Status::new(ctx.supervisor());
                ctx.run("admin", status.server("127.0.0.1:8089")).await?;
                ctx.signal(Signal::Healthy)?;
                ctx.cancelled().await;
                Ok(())
            });
        sup.wait_settled().await;
        let c = sup.counts().await;
        println!(
            "{} nodes up in {:.1} s; status page: http://127.0.0.1:8089/ (Ctrl-C to stop)",
            c.nodes,
            t.elapsed().as_secs_f64()
        );
        let _ = tokio::signal::ctrl_c().await;
        sup.shutdown().await;
    });
}
