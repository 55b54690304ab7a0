//! Actix actors as tree nodes, reached through a `SupervisedAddr` address.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_supervisor::{Context as Node, DeliveryError, NodeState, Signal, SupervisedAddr};
use common::*;
use tokio::sync::mpsc;

/// Counts its incarnations; panics on `Boom`; reports stop.
struct Worker {
    incarnation: usize,
    events: mpsc::UnboundedSender<String>,
}

impl Actor for Worker {
    type Context = actix::Context<Self>;
    fn started(&mut self, _: &mut Self::Context) {
        let _ = self.events.send(format!("started {}", self.incarnation));
    }
    fn stopped(&mut self, _: &mut Self::Context) {
        let _ = self.events.send(format!("stopped {}", self.incarnation));
    }
}

#[derive(Message)]
#[rtype(result = "usize")]
struct Which;

impl Handler<Which> for Worker {
    type Result = usize;
    fn handle(&mut self, _: Which, _: &mut Self::Context) -> usize {
        self.incarnation
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Boom;

impl Handler<Boom> for Worker {
    type Result = ();
    fn handle(&mut self, _: Boom, _: &mut Self::Context) {
        panic!("handler exploded");
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Quit;

impl Handler<Quit> for Worker {
    type Result = ();
    fn handle(&mut self, _: Quit, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

fn worker_factory(
    events: mpsc::UnboundedSender<String>,
) -> impl FnMut() -> Worker + Send + 'static {
    let n = Arc::new(AtomicUsize::new(0));
    move || Worker {
        incarnation: n.fetch_add(1, Ordering::SeqCst),
        events: events.clone(),
    }
}

/// A root that starts one actor node `w` and hands its address out.
fn start_with_worker(
    events: mpsc::UnboundedSender<String>,
) -> (
    actix_supervisor::Supervisor,
    mpsc::UnboundedReceiver<SupervisedAddr<Worker>>,
) {
    let (addr_tx, addr_rx) = mpsc::unbounded_channel();
    let factory = Arc::new(std::sync::Mutex::new(Some(worker_factory(events))));
    let sup = builder().start(move |ctx: Node| {
        let (factory, addr_tx) = (factory.lock().unwrap().take(), addr_tx.clone());
        async move {
            if let Some(f) = factory {
                let w = ctx.run_actor("w", f).await?;
                let _ = addr_tx.send(w);
            }
            serve(&ctx).await
        }
    });
    (sup, addr_rx)
}

#[actix_rt::test]
async fn a_handler_panic_restarts_the_actor_behind_the_same_address() {
    let (tx, mut events) = events();
    let (sup, mut addr) = start_with_worker(tx);
    let w = addr.recv().await.unwrap();
    assert_eq!(next(&mut events).await, "started 0");
    assert_eq!(w.send(Which).await, Ok(0));
    sup.wait_settled().await;
    assert_eq!(state(&sup, "root.w").await, NodeState::Healthy);
    assert_eq!(
        w.send(Boom).await,
        Err(DeliveryError::Lost {
            dn: "root.w".into()
        })
    );
    // The same handle reaches the next incarnation, waiting out the restart.
    assert_eq!(w.send(Which).await, Ok(1));
    let info = info(&sup, "root.w").await;
    assert_eq!(info.restarts, 1);
    assert!(info.last_error.unwrap().contains("handler exploded"));
    sup.shutdown().await;
}

#[actix_rt::test]
async fn messages_queued_in_a_dying_incarnation_are_reported() {
    let (tx, _events) = events();
    let (sup, mut addr) = start_with_worker(tx);
    let w = addr.recv().await.unwrap();
    let addr0 = w.current().await.unwrap();
    // Queue a panic and, behind it, a question on the same incarnation.
    let boom = addr0.send(Boom);
    let which = addr0.send(Which);
    let (boom, which) = futures::join!(boom, which);
    assert!(
        boom.is_err() && which.is_err(),
        "both must fail, not vanish"
    );
    assert_eq!(w.send(Which).await, Ok(1));
    sup.shutdown().await;
}

#[actix_rt::test]
async fn cancellation_stops_the_actor_and_counts_as_cancelled() {
    let (tx, mut events) = events();
    let (sup, mut addr) = start_with_worker(tx);
    let w = addr.recv().await.unwrap();
    assert_eq!(next(&mut events).await, "started 0");
    sup.wait_settled().await;
    sup.shutdown().await;
    assert_eq!(next(&mut events).await, "stopped 0", "stopped() ran");
    assert_eq!(state(&sup, "root.w").await, NodeState::Cancelled);
    assert_eq!(
        w.send(Which).await,
        Err(DeliveryError::Gone {
            dn: "root.w".into()
        })
    );
    assert!(w.addr().is_none());
}

#[actix_rt::test]
async fn an_actor_that_stops_itself_is_a_death() {
    let (tx, mut events) = events();
    let (sup, mut addr) = start_with_worker(tx);
    let w = addr.recv().await.unwrap();
    until(&mut events, "started 0").await;
    assert!(w.do_send(Quit).is_ok());
    until(&mut events, "started 1").await;
    let info = info(&sup, "root.w").await;
    assert!(info
        .last_error
        .unwrap()
        .contains("root.w: the actor stopped by itself"));
    assert_eq!(info.restarts, 1);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_send_waits_for_the_next_incarnation_within_its_timeout() {
    let (tx, _events) = events();
    let (addr_tx, mut addr) = mpsc::unbounded_channel();
    let factory = Arc::new(std::sync::Mutex::new(Some(worker_factory(tx))));
    // A long backoff: the restart takes 300 ms.
    let sup = builder().backoff(backoff_ms(300)).start(move |ctx: Node| {
        let (factory, addr_tx) = (factory.lock().unwrap().take(), addr_tx.clone());
        async move {
            if let Some(f) = factory {
                let _ = addr_tx.send(ctx.run_actor("w", f).await?);
            }
            serve(&ctx).await
        }
    });
    let w = addr.recv().await.unwrap();
    assert!(w.send(Boom).await.is_err());
    let impatient = w.clone().with_timeout(Duration::from_millis(10));
    assert!(matches!(
        impatient.send(Which).await,
        Err(DeliveryError::Timeout { .. })
    ));
    assert!(
        matches!(impatient.do_send(Which), Err(Which)),
        "no incarnation: the message comes back"
    );
    assert_eq!(w.send(Which).await, Ok(1));
    sup.shutdown().await;
}

/// An actor that supervises a pool of worker actors through the tree, and
/// signals Healthy itself once they are started.
struct Pool {
    node: Node,
    workers: Vec<SupervisedAddr<Worker>>,
    events: mpsc::UnboundedSender<String>,
}

impl Actor for Pool {
    type Context = actix::Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        let node = self.node.clone();
        let events = self.events.clone();
        let set_up = async move {
            let mut workers = Vec::new();
            for i in 0..3 {
                workers.push(
                    node.run_actor(&format!("w{i}"), worker_factory(events.clone()))
                        .await?,
                );
            }
            node.signal(Signal::Healthy)?;
            Ok::<_, actix_supervisor::BoxError>(workers)
        };
        ctx.wait(actix::fut::wrap_future(set_up).map(
            |res, pool: &mut Pool, ctx: &mut actix::Context<Pool>| match res {
                Ok(w) => pool.workers = w,
                Err(_) => ctx.stop(),
            },
        ));
    }
}

#[derive(Message)]
#[rtype(result = "Vec<usize>")]
struct AskAll;

impl Handler<AskAll> for Pool {
    type Result = ResponseFuture<Vec<usize>>;
    fn handle(&mut self, _: AskAll, _: &mut Self::Context) -> Self::Result {
        let workers = self.workers.clone();
        Box::pin(async move {
            let mut out = Vec::new();
            for w in workers {
                out.push(w.send(Which).await.unwrap_or(usize::MAX));
            }
            out
        })
    }
}

#[actix_rt::test]
async fn an_actor_node_supervises_actor_children() {
    let (tx, _events) = events();
    let (addr_tx, mut addr) = mpsc::unbounded_channel();
    let sup = builder().start(move |ctx: Node| {
        let (tx, addr_tx) = (tx.clone(), addr_tx.clone());
        async move {
            let pool = ctx
                .run_actor_with("pool", move |node| Pool {
                    node,
                    workers: Vec::new(),
                    events: tx.clone(),
                })
                .await?;
            let _ = addr_tx.send(pool);
            serve(&ctx).await
        }
    });
    let pool = addr.recv().await.unwrap();
    sup.wait_settled().await;
    assert_eq!(state(&sup, "root.pool").await, NodeState::Healthy);
    for i in 0..3 {
        assert_eq!(
            state(&sup, &format!("root.pool.w{i}")).await,
            NodeState::Healthy
        );
    }
    assert_eq!(pool.send(AskAll).await, Ok(vec![0, 0, 0]));
    sup.shutdown().await;
    assert!(sup.live_runnables().await.is_empty());
}

#[actix_rt::test]
async fn a_panicking_factory_is_a_death_and_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let (tx, mut events) = events();
    let sup = builder().start(move |ctx: Node| {
        let (c, tx) = (c.clone(), tx.clone());
        async move {
            ctx.run_actor("w", move || {
                if c.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("factory failed");
                }
                Worker {
                    incarnation: 1,
                    events: tx.clone(),
                }
            })
            .await?;
            serve(&ctx).await
        }
    });
    assert_eq!(next(&mut events).await, "started 1");
    let info = info(&sup, "root.w").await;
    assert!(info.last_error.unwrap().contains("factory failed"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    sup.shutdown().await;
}

/// A recipient for one message type follows the incarnations as the
/// address does, and reports a lost answer the same way.
#[actix_rt::test]
async fn a_recipient_reaches_the_current_incarnation() {
    let (tx, mut events) = events();
    let (sup, mut addr) = start_with_worker(tx);
    let w = addr.recv().await.unwrap();
    let which: actix_supervisor::SupervisedRecipient<Which> = w.recipient();
    let boom = w.recipient::<Boom>();
    assert_eq!(next(&mut events).await, "started 0");
    assert_eq!(which.send(Which).await, Ok(0));
    assert_eq!(
        boom.send(Boom).await,
        Err(DeliveryError::Lost {
            dn: "root.w".into()
        })
    );
    assert_eq!(
        which.send(Which).await,
        Ok(1),
        "the next incarnation answers"
    );
    assert_eq!(which.dn(), "root.w");
    sup.shutdown().await;
    assert_eq!(
        which.do_send(Which).map_err(|_| "returned"),
        Err("returned"),
        "no incarnation: the message comes back"
    );
}
