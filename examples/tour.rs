//! A small service under supervision, served over HTTP: an actix-web server
//! with the status page, its Prometheus metrics and an API, an actor
//! counting the API's calls, a worker that crashes now and then, a child
//! process, a batch job that finishes, and jobs started and stopped over the
//! API as dynamic children of `root.jobs`. Prints the tree every three
//! seconds and stops by itself after about 15 s (`--forever`: until Ctrl-C
//! or SIGTERM, which drain first).
//!
//! ```text
//! curl -s -X POST http://127.0.0.1:8080/api/jobs                # root.jobs.job_1
//! curl -s http://127.0.0.1:8080/api/jobs                        # running and finished
//! curl -s -X POST http://127.0.0.1:8080/api/jobs/job_1/restart  # starts it over
//! curl -s -X DELETE http://127.0.0.1:8080/api/jobs/job_1        # stops it early
//! curl -s -X POST http://127.0.0.1:8080/api/naps/200            # overloads root.counter
//! ```
//!
//! ```text
//! cargo run --example tour
//! cargo run --example tour -- --forever
//! TOUR_PORT=9000 cargo run --example tour      # default 8080, else a free port
//! RUST_LOG=actix_supervisor=info cargo run --example tour   # every restart
//! ```

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Handler, Message};
use actix_supervisor::process::Command;
use actix_supervisor::render::TextTree;
use actix_supervisor::web::{server, Status};
use actix_supervisor::{
    node_info, node_warn, Child, Context, Dynamic, DynamicGroup, Group, RunError, RunResult,
    Signal, SupervisedAddr, Supervisor,
};
use actix_web::{web, App, HttpResponse};

/// Counts the API's calls; a restart starts it from zero.
struct Counter(u64);

impl Actor for Counter {
    type Context = actix::Context<Self>;
}

#[derive(Message)]
#[rtype(result = "u64")]
struct Hit;

impl Handler<Hit> for Counter {
    type Result = u64;
    fn handle(&mut self, _: Hit, _: &mut Self::Context) -> u64 {
        self.0 += 1;
        self.0
    }
}

/// 50 ms of slow work, one at a time: a burst of these is a backlog.
#[derive(Message)]
#[rtype(result = "()")]
struct Nap;

impl Handler<Nap> for Counter {
    type Result = actix::AtomicResponse<Self, ()>;
    fn handle(&mut self, _: Nap, _: &mut Self::Context) -> Self::Result {
        let nap = tokio::time::sleep(Duration::from_millis(50));
        actix::AtomicResponse::new(Box::pin(actix::fut::wrap_future(nap)))
    }
}

/// Serves until cancelled.
async fn worker(ctx: Context) -> RunResult {
    ctx.signal(Signal::Healthy)?;
    ctx.cancelled().await;
    Ok(())
}

/// Crashes 4 s into every incarnation. What it logged on the way goes with
/// the supervisor's report of its death.
fn flaky(
    starts: Arc<AtomicU32>,
) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send {
    move |ctx: Context| {
        let n = starts.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            node_info!(ctx, "connecting to upstream (incarnation {n})");
            ctx.signal(Signal::Healthy)?;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(4)) => {
                    node_warn!(ctx, "upstream silent for 4 s");
                    Err("lost its upstream".into())
                }
                _ = ctx.cancelled() => Ok(()),
            }
        })
    }
}

/// Does some work, then is DONE.
async fn batch(ctx: Context) -> RunResult {
    ctx.signal(Signal::Healthy)?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ctx.signal(Signal::Done)?;
    Ok(())
}

/// A job started over the API: logs, works a few seconds, then is DONE
/// (and leaves the tree).
async fn job(ctx: Context) -> RunResult {
    node_info!(ctx, "working");
    ctx.signal(Signal::Healthy)?;
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(5)) => {
            node_info!(ctx, "finished");
            ctx.signal(Signal::Done)?;
        }
        _ = ctx.cancelled() => node_info!(ctx, "stopped early"),
    }
    Ok(())
}

/// The API's handle on `root.jobs`, and the number of the next job.
struct Jobs {
    node: Dynamic,
    next: AtomicU64,
}

/// `TOUR_PORT` or 8080 if free, else port 0: the server node then takes a
/// free port, and `wait_addrs` says which.
fn address() -> String {
    let wanted = std::env::var("TOUR_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080u16);
    let free = std::net::TcpListener::bind(("127.0.0.1", wanted)).is_ok();
    format!("127.0.0.1:{}", if free { wanted } else { 0 })
}

/// The application: the status page under `/status/`, and the API. A
/// handler's `RunError` answers its own status (400, 404, 409, 503) with
/// its message.
fn app(
    status: Status,
    counter: SupervisedAddr<Counter>,
    jobs: web::Data<Jobs>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(counter))
        .app_data(jobs)
        .service(web::scope("/status").configure(status.config()))
        .route(
            "/api/jobs",
            web::post().to(|jobs: web::Data<Jobs>| async move {
                let name = format!("job_{}", jobs.next.fetch_add(1, Ordering::Relaxed) + 1);
                let dn = jobs.node.start_child(Child::new(name, job)).await?;
                Ok::<_, RunError>(HttpResponse::Created().body(format!("{dn}\n")))
            }),
        )
        .route(
            "/api/jobs",
            web::get().to(|jobs: web::Data<Jobs>| async move {
                let running: Vec<String> = jobs
                    .node
                    .children()
                    .await?
                    .into_iter()
                    .map(|n| n.dn)
                    .collect();
                let finished: Vec<String> = jobs
                    .node
                    .finished()
                    .await?
                    .into_iter()
                    .map(|f| f.dn)
                    .collect();
                Ok::<_, RunError>(
                    HttpResponse::Ok()
                        .body(format!("running: {running:?}\nfinished: {finished:?}\n")),
                )
            }),
        )
        .route(
            "/api/jobs/{name}/restart",
            web::post().to(
                |jobs: web::Data<Jobs>, name: web::Path<String>| async move {
                    jobs.node.restart_child(&name).await?;
                    Ok::<_, RunError>(HttpResponse::Ok().body(format!("restarted {name}\n")))
                },
            ),
        )
        .route(
            "/api/jobs/{name}",
            web::delete().to(
                |jobs: web::Data<Jobs>, name: web::Path<String>| async move {
                    jobs.node.terminate_child(&name).await?;
                    Ok::<_, RunError>(HttpResponse::Ok().body(format!("stopped {name}\n")))
                },
            ),
        )
        .route(
            "/api/naps/{n}",
            web::post().to(
                |counter: web::Data<SupervisedAddr<Counter>>, n: web::Path<u32>| async move {
                    // Fire and forget: counted in root.counter's backlog
                    // until handled; over 50 waiting, its queue alarm is on.
                    let n = n.into_inner().min(10_000);
                    let sent = (0..n).filter(|_| counter.do_send(Nap).is_ok()).count();
                    HttpResponse::Ok().body(format!("{sent} naps queued for root.counter\n"))
                },
            ),
        )
        .route(
            "/api/hello",
            web::get().to(|counter: web::Data<SupervisedAddr<Counter>>| async move {
                match counter.send(Hit).await {
                    Ok(n) => HttpResponse::Ok().body(format!("hello #{n}\n")),
                    Err(e) => HttpResponse::ServiceUnavailable().body(format!("{e}\n")),
                }
            }),
        )
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let forever = std::env::args().any(|a| a == "--forever");
    let addr = address();
    actix_rt::System::new().block_on(async move {
        let starts = Arc::new(AtomicU32::new(0));
        let sup = Supervisor::builder()
            .backoff(actix_supervisor::Backoff::default().initial(Duration::from_millis(300)))
            // Metrics: the status serves them at /status/metrics.
            .prometheus()
            // SIGTERM and Ctrl-C are handled from this instant on.
            .termination_signals()
            .start(move |ctx: Context| {
                let addr = addr.clone();
                let starts = starts.clone();
                async move {
                    let (runnable, counter) = actix_supervisor::actor(|| Counter(0));
                    // Overloaded at 50 messages waiting, clear below 10.
                    ctx.run_child(Child::new("counter", runnable).queue_alarm(50, 10))
                        .await?;
                    let jobs = ctx
                        .run_dynamic("jobs", DynamicGroup::new().max_children(100))
                        .await?;
                    let jobs = web::Data::new(Jobs {
                        node: jobs,
                        next: AtomicU64::new(0),
                    });
                    // On loopback only: the page may offer its restart and
                    // terminate buttons.
                    let status = Status::new(ctx.supervisor()).allow_actions(true);
                    ctx.run(
                        "http",
                        server(addr, move || {
                            app(status.clone(), counter.clone(), jobs.clone())
                        }),
                    )
                    .await?;
                    let clock =
                        Command::new("sh").args(["-c", "while true; do date; sleep 2; done"]);
                    ctx.run_group(
                        Group::new()
                            .with("db", worker)
                            .with("flaky", flaky(starts))
                            .with("clock", clock),
                    )
                    .await?;
                    ctx.run("batch", batch).await?;
                    worker(ctx).await
                }
            });
        // Where the server listens (with port 0, the port it got).
        let Ok(addrs) = sup.wait_addrs("root.http").await else {
            return println!("-- the server never listened");
        };
        let url = format!("http://{}", addrs[0]);
        println!("status page: {url}/status/");
        println!("try: curl -s {url}/api/hello");
        println!("     curl -s {url}/status/readyz");
        println!("     curl -s -X POST {url}/api/jobs");
        println!("     curl -s -X POST {url}/api/naps/200   # then look at the page");
        println!("     curl -s {url}/status/metrics");
        // Colours when a person is watching, plain text when piped.
        let color = std::io::stdout().is_terminal();
        let print = |sup: Supervisor| async move {
            let snapshot = sup.snapshot().await;
            let counts = sup.counts().await;
            println!(
                "-- {} healthy, {} waiting to restart, {} restarts in the last minute",
                counts.healthy, counts.waiting, counts.restarts_last_minute
            );
            print!("{}", TextTree::new(&snapshot).color(color));
        };
        let ticker = {
            let sup = sup.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    print(sup.clone()).await;
                }
            }
        };
        let ended = if forever {
            tokio::select! {
                ended = sup.run_until_signal(Duration::ZERO) => ended.ok(),
                _ = ticker => None,
            }
        } else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(15)) => {}
                _ = ticker => {}
            }
            sup.shutdown().await;
            Some(sup.join().await)
        };
        match ended {
            Some(ended) => println!("-- {ended}; live: {:?}", sup.live_runnables().await),
            None => println!("-- could not listen for signals"),
        }
    });
}
