//! The dynamic churn, ours and the peers': `pairs` starts and stops of
//! children under one parent, at most `LIVE` alive at once, started in
//! batches of `LIVE` and stopped the same way.
//!
//! - ours: `Dynamic::start_child` (resolves at the child's first poll) and
//!   `terminate_child` (resolves once it has exited);
//! - kameo: a supervised spawn under one parent actor (`RestartPolicy::Never`,
//!   as a terminated dynamic child is never restarted) and a graceful stop,
//!   awaited;
//! - ractor: `spawn_linked` under one parent actor and `stop`, its join
//!   handle awaited.

use std::time::{Duration, Instant};

use actix_supervisor::{Child, Context, DynamicGroup, RunResult, Signal};

/// At most this many children are alive at once.
pub const LIVE: usize = 1_000;

async fn serve(ctx: Context) -> RunResult {
    ctx.signal(Signal::Healthy)?;
    ctx.cancelled().await;
    Ok(())
}

/// Ours, on the current actix system.
pub async fn ours(pairs: usize) -> Duration {
    let sup = super::no_backoff().start(|ctx: Context| async move {
        ctx.run_dynamic("d", DynamicGroup::new()).await?;
        serve(ctx).await
    });
    sup.wait_settled().await;
    let d = sup.dynamic("root.d");
    let t = Instant::now();
    let mut next = 0usize;
    while next < pairs {
        let batch = LIVE.min(pairs - next);
        let names: Vec<String> = (next..next + batch).map(|i| format!("c{i}")).collect();
        let starts = names.iter().map(|n| d.start_child(Child::new(n, serve)));
        for r in futures::future::join_all(starts).await {
            r.expect("start_child");
        }
        let stops = names.iter().map(|n| d.terminate_child(n));
        for r in futures::future::join_all(stops).await {
            r.expect("terminate_child");
        }
        next += batch;
    }
    let took = t.elapsed();
    sup.shutdown().await;
    took
}

pub mod kameo_churn {
    use super::*;
    use kameo::actor::{Actor, ActorRef, Spawn};
    use kameo::error::Infallible;
    use kameo::supervision::RestartPolicy;

    pub struct Worker;

    impl Actor for Worker {
        type Args = ();
        type Error = Infallible;
        async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(Worker)
        }
    }

    pub struct Pool;

    impl Actor for Pool {
        type Args = ();
        type Error = Infallible;
        async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(Pool)
        }
    }

    /// kameo's churn, on the current tokio runtime.
    pub async fn churn(pairs: usize) -> Duration {
        let pool = Pool::spawn(());
        let t = Instant::now();
        let mut next = 0usize;
        while next < pairs {
            let batch = LIVE.min(pairs - next);
            let spawns = (0..batch).map(|_| {
                Worker::supervise(&pool, ())
                    .restart_policy(RestartPolicy::Never)
                    .spawn()
            });
            let workers = futures::future::join_all(spawns).await;
            let stops = workers.iter().map(|w| async move {
                let _ = w.stop_gracefully().await;
                w.wait_for_shutdown().await;
            });
            futures::future::join_all(stops).await;
            next += batch;
        }
        let took = t.elapsed();
        let _ = pool.stop_gracefully().await;
        pool.wait_for_shutdown().await;
        took
    }
}

pub mod ractor_churn {
    use super::*;
    use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

    pub struct Worker;

    #[ractor::async_trait]
    impl Actor for Worker {
        type Msg = ();
        type State = ();
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    /// The parent: it only supervises. A linked child's stop is reported
    /// to it and ignored (ractor's default stops the parent).
    pub struct Pool;

    #[ractor::async_trait]
    impl Actor for Pool {
        type Msg = ();
        type State = ();
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
        async fn handle_supervisor_evt(
            &self,
            _: ActorRef<()>,
            _: SupervisionEvent,
            _: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    /// ractor's churn, on the current tokio runtime.
    pub async fn churn(pairs: usize) -> Duration {
        let (pool, pool_done) = Actor::spawn(None, Pool, ()).await.expect("spawn the pool");
        let t = Instant::now();
        let mut next = 0usize;
        while next < pairs {
            let batch = LIVE.min(pairs - next);
            let spawns = (0..batch).map(|_| Actor::spawn_linked(None, Worker, (), pool.get_cell()));
            let workers: Vec<_> = futures::future::join_all(spawns)
                .await
                .into_iter()
                .map(|w| w.expect("spawn_linked"))
                .collect();
            let stops = workers.into_iter().map(|(w, done)| async move {
                w.stop(None);
                let _ = done.await;
            });
            futures::future::join_all(stops).await;
            next += batch;
        }
        let took = t.elapsed();
        pool.stop(None);
        let _ = pool_done.await;
        took
    }
}
