//! The fleet's API inside one process: two supervisors, each with its own
//! [`Fleet`] handle on the same real store, stand for two replicas. What a
//! user sees: STANDBY in snapshots with the holder and token, readiness,
//! members, a graceful handover, the handover after too many restarts,
//! the metrics, and the errors for bad input.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_supervisor::fleet::{EtcdStore, Fleet, FleetError, FleetOptions, PostgresStore};
use actix_supervisor::{Child, Context, NodeInfo, NodeState, RunResult, Signal, Supervisor};

use crate::servers::{Backend, Server};
use crate::{store, turn, TTL};

async fn join(server: &Server, id: &str) -> Result<Fleet, FleetError> {
    let options = FleetOptions::new(id).ttl(TTL);
    join_with(server, options).await
}

async fn join_with(server: &Server, options: FleetOptions) -> Result<Fleet, FleetError> {
    match server.backend {
        Backend::Etcd => Fleet::join(EtcdStore::new(&server.url())?, options).await,
        Backend::Postgres => Fleet::join(PostgresStore::new(&server.url())?, options).await,
    }
}

/// A tree whose root runs `child`.
fn tree(child: impl Fn() -> Child + Send + 'static) -> Supervisor {
    Supervisor::builder()
        .backoff(actix_supervisor::Backoff::default().initial(Duration::from_millis(50)))
        .start(move |ctx: Context| {
            let child = child();
            async move {
                ctx.run_child(child).await?;
                ctx.signal(Signal::Healthy)?;
                ctx.cancelled().await;
                Ok(())
            }
        })
}

/// Serves until cancelled, counting its starts and keeping its token.
fn billing(
    starts: Arc<AtomicU32>,
) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send {
    move |ctx: Context| {
        starts.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            assert!(
                ctx.fencing_token().is_some(),
                "a singleton runs with a token"
            );
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            Ok(())
        })
    }
}

async fn node(sup: &Supervisor, dn: &str) -> Option<NodeInfo> {
    sup.snapshot().await.into_iter().find(|n| n.dn == dn)
}

/// Polls `sup`'s node `dn` until `pred` holds (up to `within`).
async fn until(
    sup: &Supervisor,
    dn: &str,
    within: Duration,
    pred: impl Fn(&NodeInfo) -> bool,
) -> NodeInfo {
    let deadline = Instant::now() + within;
    loop {
        let n = node(sup, dn).await;
        if let Some(n) = n.as_ref().filter(|n| pred(n)) {
            return n.clone();
        }
        assert!(Instant::now() < deadline, "{dn} never got there: {n:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn held_here(n: &NodeInfo) -> bool {
    n.state == NodeState::Healthy && n.lease.as_ref().is_some_and(|l| l.held_here)
}

fn in_log(sup: &Supervisor, needle: &str) -> bool {
    sup.logs()
        .tail("supervisor", 500)
        .iter()
        .any(|e| e.message.contains(needle))
}

fn one_runs_the_other_stands_by(backend: Backend) {
    let _turn = turn();
    let Some(server) = store(backend) else { return };
    actix_rt::System::new().block_on(async {
        let a = join(&server, "a").await.expect("a joins");
        let b = join(&server, "b").await.expect("b joins");
        let (ran_a, ran_b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let (fa, ra) = (a.clone(), ran_a.clone());
        let sup_a = tree(move || Child::new("billing", billing(ra.clone())).singleton(&fa));
        let first = until(&sup_a, "root.billing", TTL * 5, held_here).await;
        let token = first.lease.as_ref().and_then(|l| l.token).expect("a token");
        let (fb, rb) = (b.clone(), ran_b.clone());
        let sup_b = tree(move || Child::new("billing", billing(rb.clone())).singleton(&fb));
        let standby = until(&sup_b, "root.billing", TTL * 5, |n| {
            n.state == NodeState::Standby
        })
        .await;
        let lease = standby.lease.expect("a standby node shows the holder");
        assert_eq!(lease.holder.as_deref(), Some("a"));
        assert_eq!(lease.token, Some(token));
        assert!(!lease.held_here);
        assert_eq!(ran_b.load(Ordering::SeqCst), 0, "b's runnable never ran");
        // A standby singleton does not make its replica unready.
        let ready = sup_b.readiness(Duration::ZERO).await;
        assert!(ready.ready, "{:?}", ready.not_ready);
        assert_eq!(sup_b.counts().await.standby, 1);
        let members: Vec<String> = a
            .members()
            .await
            .expect("members")
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(members, ["a", "b"]);
        assert_eq!(
            a.holder("root.billing")
                .await
                .expect("holder")
                .map(|h| h.member)
                .as_deref(),
            Some("a")
        );
        assert!(in_log(&sup_a, "root.billing: acquired its lease as a"));

        // A graceful stop of a hands over at once.
        let stopping = Instant::now();
        sup_a.shutdown().await;
        assert!(in_log(&sup_a, "root.billing: released its lease"));
        let taken = until(&sup_b, "root.billing", TTL * 2, held_here).await;
        let handover = stopping.elapsed();
        let next = taken.lease.and_then(|l| l.token).expect("b's token");
        assert!(next > token, "tokens grow: {token} then {next}");
        assert!(
            handover < Duration::from_secs(1),
            "handover took {handover:?}"
        );
        println!("{backend:?}: graceful handover in {handover:?}, tokens {token} → {next}");
        assert_eq!(ran_a.load(Ordering::SeqCst), 1);
        assert_eq!(ran_b.load(Ordering::SeqCst), 1);

        // The metrics, registered into a registry of the user's.
        let mut registry = actix_supervisor::prometheus_client::registry::Registry::default();
        b.register_metrics(&mut registry);
        let mut text = String::new();
        actix_supervisor::prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("encode");
        assert!(
            text.contains("actix_supervisor_singleton_held{name=\"root.billing\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("actix_supervisor_singleton_acquisitions_total{name=\"root.billing\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("actix_supervisor_fleet_renewal_seconds_count"),
            "{text}"
        );
        sup_b.shutdown().await;
        a.leave().await.expect("a leaves");
        b.leave().await.expect("b leaves");
    });
}

#[test]
fn one_runs_the_other_stands_by_on_etcd() {
    one_runs_the_other_stands_by(Backend::Etcd);
}

#[test]
fn one_runs_the_other_stands_by_on_postgres() {
    one_runs_the_other_stands_by(Backend::Postgres);
}

/// A replica that cannot run the job hands it over instead of taking its
/// parent down.
fn hands_over_after_too_many_restarts(backend: Backend) {
    let _turn = turn();
    let Some(server) = store(backend) else { return };
    actix_rt::System::new().block_on(async {
        let a = join(&server, "a").await.expect("a joins");
        let b = join(&server, "b").await.expect("b joins");
        let fa = a.clone();
        let failing =
            move |_: Context| async move { Err::<(), _>("cannot reach the billing API".into()) };
        let sup_a = Supervisor::builder()
            .backoff(actix_supervisor::Backoff::default().initial(Duration::from_millis(20)))
            // More than 3 restarts in 10 s: OTP would take the root down.
            .max_restarts(3, Duration::from_secs(10))
            .start(move |ctx: Context| {
                let child = Child::new("billing", failing).singleton(&fa);
                async move {
                    ctx.run_child(child).await?;
                    ctx.signal(Signal::Healthy)?;
                    ctx.cancelled().await;
                    Ok(())
                }
            });
        // a holds it (and fails with it) before b exists.
        let deadline = Instant::now() + TTL * 5;
        while a.held().is_empty() && !in_log(&sup_a, "handing its lease over") {
            assert!(Instant::now() < deadline, "a never acquired");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ran_b = Arc::new(AtomicU32::new(0));
        let (fb, rb) = (b.clone(), ran_b.clone());
        let sup_b = tree(move || Child::new("billing", billing(rb.clone())).singleton(&fb));
        until(&sup_b, "root.billing", TTL * 10, held_here).await;
        assert!(in_log(
            &sup_a,
            "root.billing exceeded its restart intensity: handing its lease over"
        ));
        // a's root did not give up: only the lease moved.
        let root = node(&sup_a, "root").await.expect("root");
        assert_eq!(root.state, NodeState::Healthy);
        assert_eq!(root.restarts, 0);
        sup_a.shutdown().await;
        sup_b.shutdown().await;
        let _ = (a.leave().await, b.leave().await);
    });
}

#[test]
fn hands_over_after_too_many_restarts_on_etcd() {
    hands_over_after_too_many_restarts(Backend::Etcd);
}

#[test]
fn hands_over_after_too_many_restarts_on_postgres() {
    hands_over_after_too_many_restarts(Backend::Postgres);
}

fn bad_input(backend: Backend) {
    let _turn = turn();
    let Some(server) = store(backend) else { return };
    actix_rt::System::new().block_on(async {
        let a = join(&server, "a").await.expect("a joins");
        match join(&server, "a").await {
            Err(FleetError::DuplicateId { id, .. }) => assert_eq!(id, "a"),
            other => panic!("a second a was not refused: {other:?}"),
        }
        let short = join_with(
            &server,
            FleetOptions::new("b").ttl(Duration::from_millis(300)),
        )
        .await;
        assert!(
            matches!(short, Err(FleetError::InvalidTtl { .. })),
            "{short:?}"
        );
        let bad_id = join(&server, "replica a").await;
        assert!(
            matches!(bad_id, Err(FleetError::InvalidId { .. })),
            "{bad_id:?}"
        );
        let holder = a.holder("root.Billing").await;
        assert!(
            matches!(holder, Err(FleetError::InvalidLeaseName { .. })),
            "{holder:?}"
        );
        // Nothing listens there: the error names where it looked.
        let port = crate::servers::free_port();
        let nowhere = match backend {
            Backend::Etcd => {
                Fleet::join(
                    EtcdStore::new(&format!("http://127.0.0.1:{port}")).expect("url"),
                    FleetOptions::new("z").ttl(TTL),
                )
                .await
            }
            Backend::Postgres => {
                Fleet::join(
                    PostgresStore::new(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
                        .expect("url"),
                    FleetOptions::new("z").ttl(TTL),
                )
                .await
            }
        };
        match nowhere {
            Err(e @ FleetError::Unreachable { .. }) => {
                assert!(e.to_string().contains(&port.to_string()), "{e}");
            }
            other => panic!("an unreachable store: {other:?}"),
        }
        let url = match backend {
            Backend::Etcd => EtcdStore::new("127.0.0.1:2379").map(|_| ()),
            Backend::Postgres => PostgresStore::new("postgres://[::1").map(|_| ()),
        };
        assert!(matches!(url, Err(FleetError::InvalidUrl { .. })), "{url:?}");
        a.leave().await.expect("a leaves");
    });
}

#[test]
fn bad_input_on_etcd() {
    bad_input(Backend::Etcd);
}

#[test]
fn bad_input_on_postgres() {
    bad_input(Backend::Postgres);
}

/// What the issue promises of the handle's type.
#[test]
fn a_fleet_is_clone_send_sync_and_debug() {
    fn check<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    check::<Fleet>();
}

/// The last handle dropped (no `leave`): the keeper ends and takes the
/// session with it, so the other replicas see the member gone at once,
/// not a TTL later.
fn the_last_handle_ends_the_session(backend: Backend) {
    let _turn = turn();
    let Some(server) = store(backend) else { return };
    actix_rt::System::new().block_on(async {
        let a = join(&server, "a").await.expect("a joins");
        let b = join(&server, "b").await.expect("b joins");
        let ids = |m: Vec<actix_supervisor::fleet::Member>| -> Vec<String> {
            m.into_iter().map(|m| m.id).collect()
        };
        assert_eq!(ids(b.members().await.expect("members")), ["a", "b"]);
        let dropped = Instant::now();
        drop(a);
        loop {
            let members = ids(b.members().await.expect("members"));
            if members == ["b"] {
                break;
            }
            assert!(
                dropped.elapsed() < TTL / 2,
                "a's session outlived its last handle: {members:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!(
            "{backend:?}: a's session ended {:?} after its last handle",
            dropped.elapsed()
        );
        b.leave().await.expect("b leaves");
    });
}

#[test]
fn the_last_handle_ends_the_session_on_etcd() {
    the_last_handle_ends_the_session(Backend::Etcd);
}

#[test]
fn the_last_handle_ends_the_session_on_postgres() {
    the_last_handle_ends_the_session(Backend::Postgres);
}
