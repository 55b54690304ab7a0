//! Actors and a process under supervision.
//!
//! Three worker actors handle jobs sent through their stable `SupervisedAddr`
//! addresses; one of them panics now and then and is restarted behind the
//! same address. A `sh -c` process prints a few ticks and exits, and is
//! restarted with backoff; its output lands in the log tree. At the end, the
//! job count shows that every message was either answered or reported lost
//! (and then resent): none vanished.
//!
//! ```text
//! cargo run --example services
//! ```

use std::time::Duration;

use actix::prelude::*;
use actix_supervisor::process::Command;
use actix_supervisor::{
    Backoff, Context as Node, DeliveryError, LogQuery, RunResult, Signal, SupervisedAddr,
    Supervisor,
};
use tokio::sync::mpsc;

struct Worker {
    id: usize,
    handled: u64,
}

impl Actor for Worker {
    type Context = actix::Context<Self>;
}

#[derive(Message)]
#[rtype(result = "u64")]
struct Job(u64);

impl Handler<Job> for Worker {
    type Result = u64;
    fn handle(&mut self, job: Job, _: &mut Self::Context) -> u64 {
        self.handled += 1;
        if self.id == 1 && job.0.is_multiple_of(13) {
            panic!("worker 1 choked on job {}", job.0);
        }
        job.0 * 2
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    actix_rt::System::new().block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<SupervisedAddr<Worker>>>();
        let sup = Supervisor::builder()
            .backoff(Backoff::default().initial(Duration::from_millis(100)))
            .start(move |ctx: Node| {
                let tx = tx.clone();
                async move {
                    let mut workers = Vec::new();
                    for id in 0..3 {
                        workers.push(
                            ctx.run_actor(&format!("w{id}"), move || Worker { id, handled: 0 })
                                .await?,
                        );
                    }
                    let ticker = Command::new("sh").args([
                        "-c",
                        "for i in 1 2 3; do echo tick $i; sleep 0.4; done; exit 1",
                    ]);
                    ctx.run("ticker", ticker).await?;
                    let _ = tx.send(workers);
                    ctx.signal(Signal::Healthy)?;
                    ctx.cancelled().await;
                    RunResult::Ok(())
                }
            });
        let workers = rx.recv().await.expect("the root starts the workers");

        // Every job ends answered, or reported lost: a lost job is resent once,
        // unless it is one that makes the worker panic (it would again).
        let (mut answered, mut lost, mut poison) = (0u64, 0u64, 0u64);
        for job in 1..=120u64 {
            let w = &workers[job as usize % workers.len()];
            loop {
                match w.send(Job(job)).await {
                    Ok(doubled) => {
                        assert_eq!(doubled, job * 2);
                        answered += 1;
                        break;
                    }
                    Err(DeliveryError::Lost { dn }) => {
                        println!("job {job} lost by {dn} (its incarnation died); resending");
                        lost += 1;
                        if job % 13 == 0 {
                            poison += 1;
                            break;
                        }
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            if job % 40 == 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                for n in sup.snapshot().await {
                    println!("   {:<16} {:<8} restarts {}", n.dn, n.state, n.restarts);
                }
            }
        }
        let ticks = sup.logs().backlog(&LogQuery::dn("root.ticker").raw_only());
        println!(
            "ticker said {} lines, e.g. {:?}",
            ticks.len(),
            ticks.first().map(|e| &e.message)
        );
        println!(
            "jobs: 120 sent; {answered} answered; {lost} reported lost ({poison} of them poison, \
             dropped; the rest resent and answered); unaccounted: {}",
            120 - answered - poison
        );
        sup.shutdown().await;
    });
}
