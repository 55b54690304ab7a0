//! One replica of a service whose `root.billing` runs on exactly one
//! replica at a time, fenced by etcd or PostgreSQL. Start three with
//! different ids against the same store and kill, pause or partition them:
//! exactly one prints WORK at any time.
//!
//! ```text
//! cargo run --release --example fleet --features etcd,postgres -- \
//!     --store etcd://127.0.0.1:2379 --id a --ttl-ms 2000 --http 127.0.0.1:0
//! cargo run --release --example fleet --features etcd,postgres -- \
//!     --store postgres://postgres@127.0.0.1:5432/postgres --id b
//! ```
//!
//! Its stdout, one line each, flushed at once (a checker reads it):
//!
//! ```text
//! LISTENING <addr>                        its HTTP server is up; the status is under /status
//! ACQUIRED billing <token> <id> <unix_ms> the singleton's incarnation starts
//! WORK billing <token> <id> <unix_ms>     every 50 ms while it runs
//! STOPPED billing <token> <id> <unix_ms>  after its incarnation ended
//! ```
//!
//! SIGTERM or Ctrl-C stops it gracefully: the singleton stops, its lease is
//! released, and another replica takes over at once.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_supervisor::fleet::{EtcdStore, Fleet, FleetError, FleetOptions, PostgresStore};
use actix_supervisor::web::{server, Status};
use actix_supervisor::{Child, Context, RunResult, Signal, Supervisor};
use actix_web::App;

/// One line of the contract, flushed at once.
fn say(what: &str, token: u64, id: &str) {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{what} billing {token} {id} {ms}");
    let _ = out.flush();
}

/// Says STOPPED when the incarnation's future goes, however it goes
/// (returned, or dropped at the fence).
struct Stopped(u64, String);

impl Drop for Stopped {
    fn drop(&mut self) {
        say("STOPPED", self.0, &self.1);
    }
}

/// The singleton: works every 50 ms under its fencing token.
async fn billing(ctx: Context, id: String) -> RunResult {
    let token = ctx.fencing_token().unwrap_or(0);
    say("ACQUIRED", token, &id);
    let _stopped = Stopped(token, id.clone());
    ctx.signal(Signal::Healthy)?;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = ctx.cancelled() => return Ok(()),
            _ = tick.tick() => say("WORK", token, &id),
        }
    }
}

struct Args {
    store: String,
    id: String,
    ttl: Duration,
    http: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        store: String::new(),
        id: String::new(),
        ttl: Duration::from_secs(2),
        http: "127.0.0.1:0".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--store" => a.store = value()?,
            "--id" => a.id = value()?,
            "--ttl-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--ttl-ms: {e}"))?;
                a.ttl = Duration::from_millis(ms);
            }
            "--http" => a.http = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.store.is_empty() || a.id.is_empty() {
        return Err("usage: fleet --store etcd://HOST:PORT|postgres://... --id ID [--ttl-ms N] [--http ADDR]".into());
    }
    Ok(a)
}

/// Joins, waiting out a previous run of this replica whose session is
/// still live (killed without leaving: it expires within a TTL).
async fn join(a: &Args) -> Result<Fleet, FleetError> {
    let options = FleetOptions::new(a.id.clone())
        .ttl(a.ttl)
        .address(a.http.clone());
    let deadline = tokio::time::Instant::now() + a.ttl * 3;
    loop {
        let joined = if a.store.starts_with("postgres") {
            Fleet::join(PostgresStore::new(&a.store)?, options.clone()).await
        } else {
            Fleet::join(EtcdStore::new(&a.store)?, options.clone()).await
        };
        match joined {
            Err(FleetError::DuplicateId { .. }) if tokio::time::Instant::now() < deadline => {
                eprintln!(
                    "fleet: a previous session of {} is still live; waiting",
                    a.id
                );
                tokio::time::sleep(a.ttl / 4).await;
            }
            other => return other,
        }
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let a = match args() {
        Ok(a) => a,
        Err(why) => {
            eprintln!("{why}");
            std::process::exit(2);
        }
    };
    let code = actix_rt::System::new().block_on(async move {
        let fleet = match join(&a).await {
            Ok(fleet) => fleet,
            Err(e) => {
                eprintln!("fleet: {e}");
                return 1;
            }
        };
        let (id, addr, f) = (a.id.clone(), a.http.clone(), fleet.clone());
        let sup = Supervisor::builder()
            .prometheus()
            .termination_signals()
            .start(move |ctx: Context| {
                let (id, addr, fleet) = (id.clone(), addr.clone(), f.clone());
                async move {
                    let status = Status::new(ctx.supervisor()).fleet(&fleet);
                    ctx.run(
                        "http",
                        server(addr, move || {
                            let status = status.clone();
                            App::new().service(
                                actix_web::web::scope("/status").configure(status.config()),
                            )
                        }),
                    )
                    .await?;
                    let run = move |ctx: Context| billing(ctx, id.clone());
                    ctx.run_child(Child::new("billing", run).singleton(&fleet))
                        .await?;
                    ctx.signal(Signal::Healthy)?;
                    ctx.cancelled().await;
                    Ok(())
                }
            });
        if let Some(registry) = sup.registry() {
            let mut registry = registry.lock().unwrap_or_else(|e| e.into_inner());
            fleet.register_metrics(&mut registry);
        }
        if let Ok(addrs) = sup.wait_addrs("root.http").await {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "LISTENING {}", addrs[0]);
            let _ = out.flush();
        }
        let ended = sup.run_until_signal(Duration::ZERO).await;
        // The singleton has stopped and released its lease; the session
        // goes too.
        if let Err(e) = fleet.leave().await {
            eprintln!("fleet: leaving: {e}");
        }
        match ended {
            Ok(ended) => {
                eprintln!("fleet: {ended}");
                0
            }
            Err(e) => {
                eprintln!("fleet: {e}");
                1
            }
        }
    });
    std::process::exit(code);
}
