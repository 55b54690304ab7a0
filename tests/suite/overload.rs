//! Queue depth of actor nodes (`NodeInfo::queued`), the queue alarm with
//! its hysteresis (`Child::queue_alarm`), readiness under overload, and the
//! Prometheus families that stay bounded.
//!
//! Deterministic: one arbiter and the paused clock. The actor holds each
//! `Hold` message until the test releases it (an atomic response waits on
//! a oneshot), so the test decides exactly how many messages wait.

use crate::common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use actix_supervisor::{
    actor, Child, DeliveryError, Group, Metrics, NodeState, Query, RunError, SupervisedAddr,
    Supervisor,
};
use common::*;
use futures::channel::oneshot;

/// Handles `Hold` one at a time, each until released; counts `Tick`s.
pub(crate) struct Desk {
    pub ticks: Arc<AtomicUsize>,
}

impl Actor for Desk {
    type Context = actix::Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Hold(pub oneshot::Receiver<()>);

impl Handler<Hold> for Desk {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, m: Hold, _: &mut Self::Context) -> Self::Result {
        AtomicResponse::new(Box::pin(fut::wrap_future(async move {
            let _ = m.0.await;
        })))
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

impl Handler<Tick> for Desk {
    type Result = ();
    fn handle(&mut self, _: Tick, _: &mut Self::Context) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the metrics hook was told of the queue alarm.
#[derive(Clone, Default)]
struct Alarms(Arc<Mutex<Vec<(String, usize, bool)>>>);

impl Metrics for Alarms {
    fn node_state(&self, _: &str, _: NodeState) {}
    fn queue_alarm(&self, dn: &str, depth: usize, on: bool) {
        self.0.lock().unwrap().push((dn.to_string(), depth, on));
    }
}

impl Alarms {
    fn told(&self) -> Vec<(String, usize, bool)> {
        self.0.lock().unwrap().clone()
    }
}

fn desk(child: impl FnOnce(Child) -> Child) -> (Group, SupervisedAddr<Desk>, Arc<AtomicUsize>) {
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let (runnable, addr) = actor(move || Desk { ticks: t.clone() });
    let group = Group::new().child(child(Child::new("desk", runnable)));
    (group, addr, ticks)
}

async fn queued(sup: &Supervisor) -> usize {
    sup.wait_settled().await;
    info(sup, "root.desk").await.queued.expect("an actor node")
}

/// Lets the actor and its reaper run until `want` messages wait (a
/// released message is handled, and its answer taken out, in a few turns).
async fn until_queued(sup: &Supervisor, want: usize) {
    for _ in 0..1_000 {
        if queued(sup).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("root.desk never had {want} messages waiting");
}

/// Queues a `Hold` with `do_send`; its release handle.
pub(crate) fn hold(addr: &SupervisedAddr<Desk>) -> oneshot::Sender<()> {
    let (tx, rx) = oneshot::channel();
    assert!(addr.do_send(Hold(rx)).is_ok());
    tx
}

#[actix_rt::test]
async fn a_do_send_flood_is_counted_with_its_age_and_drains() {
    tokio::time::pause();
    let (group, addr, ticks) = desk(|c| c);
    let sup = root_with(virtual_builder(), group);
    sup.wait_settled().await;
    assert_eq!(queued(&sup).await, 0);
    let gate = hold(&addr);
    for _ in 0..10_000 {
        assert!(addr.do_send(Tick).is_ok());
    }
    assert_eq!(queued(&sup).await, 10_001);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = info(&sup, "root.desk").await;
    assert!(n.oldest_queued >= Some(Duration::from_secs(3)), "{n:?}");
    let text = actix_supervisor::render::TextTree::new(&[n]).to_string();
    assert!(text.contains("10001 queued, oldest 3"), "{text}");
    // Non-actor nodes have no queue.
    assert_eq!(info(&sup, "root").await.queued, None);
    let _ = gate.send(());
    until_queued(&sup, 0).await;
    assert_eq!(ticks.load(Ordering::Relaxed), 10_000);
    assert_eq!(info(&sup, "root.desk").await.oldest_queued, None);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn the_alarm_goes_on_at_high_and_off_only_below_low_without_flapping() {
    tokio::time::pause();
    let alarms = Alarms::default();
    let (group, addr, _) = desk(|c| c.queue_alarm(100, 20));
    let sup = root_with(virtual_builder().metrics(alarms.clone()), group);
    sup.wait_settled().await;
    let mut gates: VecDeque<_> = (0..99).map(|_| hold(&addr)).collect();
    assert_eq!(queued(&sup).await, 99);
    assert!(alarms.told().is_empty(), "not below high");
    gates.push_back(hold(&addr));
    assert_eq!(queued(&sup).await, 100);
    assert_eq!(alarms.told(), [("root.desk".to_string(), 100, true)]);
    let n = info(&sup, "root.desk").await;
    assert!(n.overloaded);
    // 10,000 messages oscillating around `high`: 99, 100, 99, 100, ...
    for _ in 0..10_000 {
        let _ = gates.pop_front().expect("held").send(());
        until_queued(&sup, 99).await;
        gates.push_back(hold(&addr));
        assert_eq!(queued(&sup).await, 100);
    }
    assert_eq!(alarms.told().len(), 1, "no flapping at high");
    // Down to `low`: still on; below it: off.
    while gates.len() > 20 {
        let _ = gates.pop_front().expect("held").send(());
    }
    until_queued(&sup, 20).await;
    assert_eq!(alarms.told().len(), 1, "still on at low");
    let _ = gates.pop_front().expect("held").send(());
    until_queued(&sup, 19).await;
    assert_eq!(
        alarms.told(),
        [
            ("root.desk".to_string(), 100, true),
            ("root.desk".to_string(), 19, false)
        ]
    );
    assert!(!info(&sup, "root.desk").await.overloaded);
    let said: Vec<String> = messages(&sup, actix_supervisor::LogQuery::dn("supervisor"))
        .into_iter()
        .filter(|m| m.contains("queue alarm"))
        .collect();
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].contains("root.desk: 100 messages waiting"),
        "{said:?}"
    );
    drop(gates);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_dead_incarnations_lost_messages_are_counted_out() {
    tokio::time::pause();
    let (group, addr, _) = desk(|c| c);
    let sup = root_with(virtual_builder().backoff(backoff_ms(60_000)), group);
    sup.wait_settled().await;
    let _gate = hold(&addr);
    for _ in 0..50 {
        assert!(addr.do_send(Tick).is_ok());
    }
    let sends: Vec<_> = (0..5)
        .map(|_| {
            let a = addr.clone();
            actix_rt::spawn(async move { a.send(Tick).await })
        })
        .collect();
    assert_eq!(queued(&sup).await, 56);
    sup.restart("root.desk").await.expect("restarted");
    for send in sends {
        let lost = send.await.expect("joined");
        assert!(matches!(lost, Err(DeliveryError::Lost { .. })), "{lost:?}");
    }
    assert_eq!(queued(&sup).await, 0);
    let n = info(&sup, "root.desk").await;
    assert_eq!((n.state, n.incarnation), (NodeState::Healthy, 2));
    sup.shutdown().await;
}

#[actix_rt::test]
async fn an_overloaded_node_is_unready_only_when_marked() {
    tokio::time::pause();
    for marked in [false, true] {
        let (group, addr, _) = desk(|c| c.queue_alarm(3, 1).overload_affects_readiness(marked));
        let sup = root_with(virtual_builder(), group);
        sup.wait_settled().await;
        let gates: Vec<_> = (0..3).map(|_| hold(&addr)).collect();
        sup.wait_settled().await;
        assert_eq!(sup.counts().await.overloaded, 1);
        let r = sup.readiness(Duration::ZERO).await;
        assert_eq!(r.ready, !marked, "marked: {marked}");
        if marked {
            let dns: Vec<_> = r.not_ready.iter().map(|n| n.dn.as_str()).collect();
            assert_eq!(dns, ["root.desk"]);
            let why = sup
                .wait_ready(Duration::from_millis(10))
                .await
                .expect_err("not ready")
                .to_string();
            assert!(
                why.contains("root.desk (HEALTHY, overloaded: 3 queued)"),
                "{why}"
            );
        }
        drop(gates);
        until_queued(&sup, 0).await;
        assert!(sup.readiness(Duration::ZERO).await.ready);
        sup.shutdown().await;
    }
}

#[actix_rt::test]
async fn a_query_selects_the_nodes_with_a_backlog() {
    tokio::time::pause();
    let (a, a_addr) = actor(|| Desk {
        ticks: Arc::default(),
    });
    let (b, _b_addr) = actor(|| Desk {
        ticks: Arc::default(),
    });
    let sup = root_with(
        virtual_builder(),
        Group::new()
            .child(Child::new("a", a))
            .child(Child::new("b", b)),
    );
    sup.wait_settled().await;
    let _gates: Vec<_> = (0..5).map(|_| hold(&a_addr)).collect();
    sup.wait_settled().await;
    let dns = |q: Query| {
        let sup = &sup;
        async move {
            let s = sup.query(&q).await.expect("a selection");
            s.nodes.into_iter().map(|n| n.dn).collect::<Vec<_>>()
        }
    };
    assert_eq!(dns(Query::new().queued(5)).await, ["root.a"]);
    assert_eq!(dns(Query::new().queued(6)).await, Vec::<String>::new());
    assert_eq!(dns(Query::new().queued(0)).await, ["root.a", "root.b"]);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn thresholds_without_hysteresis_are_refused_naming_the_child() {
    tokio::time::pause();
    let (runnable, _) = actor(|| Desk {
        ticks: Arc::default(),
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let runnable = Arc::new(Mutex::new(Some(runnable)));
    let sup = virtual_builder().start(move |ctx: actix_supervisor::Context| {
        let (tx, runnable) = (tx.clone(), runnable.clone());
        async move {
            let first = runnable.lock().unwrap().take();
            if let Some(r) = first {
                let child = Child::new("desk", r).queue_alarm(10, 10);
                let res = ctx.run_group(Group::new().child(child)).await;
                let _ = tx.lock().unwrap().take().expect("once").send(res);
            }
            serve(&ctx).await
        }
    });
    let err = rx.recv().await.expect("answered").expect_err("refused");
    assert!(
        matches!(&err, RunError::InvalidQueueAlarm { dn, high: 10, low: 10 } if dn == "root.desk"),
        "{err:?}"
    );
    assert!(err.to_string().contains("0 < low < high"), "{err}");
    sup.shutdown().await;
}

/// The histogram and the gauge of the nodes in alarm, as Prometheus reads
/// them: the gauge holds only nodes in alarm, at most `queue_top`.
#[cfg(feature = "prometheus")]
#[actix_rt::test]
async fn prometheus_shows_the_spread_and_only_the_deepest_nodes_in_alarm() {
    use actix_supervisor::prometheus::PrometheusMetrics;
    use actix_supervisor::prometheus_client::{encoding::text::encode, registry::Registry};

    tokio::time::pause();
    let mut registry = Registry::default();
    let metrics = PrometheusMetrics::new(&mut registry).queue_top(2);
    let mut group = Group::new();
    let mut addrs = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let (r, addr) = actor(|| Desk {
            ticks: Arc::default(),
        });
        group = group.child(Child::new(name, r).queue_alarm(2, 1));
        addrs.push(addr);
    }
    let sup = root_with(virtual_builder().metrics(metrics), group);
    sup.wait_settled().await;
    // a: 1 (no alarm), b: 2, c: 4, d: 3.
    let mut gates = Vec::new();
    for (addr, n) in addrs.iter().zip([1, 2, 4, 3]) {
        gates.extend((0..n).map(|_| hold(addr)));
    }
    sup.wait_settled().await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    sup.wait_settled().await;
    let mut text = String::new();
    encode(&mut text, &registry).expect("encoded");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("queue") && !l.starts_with('#'))
        .collect();
    let want = [
        "actix_supervisor_queues_overloaded 3",
        "actix_supervisor_queue_depth_sum 10.0",
        "actix_supervisor_queue_depth_count 4",
        "actix_supervisor_queue_depth_bucket{le=\"0.0\"} 0",
        "actix_supervisor_queue_depth_bucket{le=\"1.0\"} 1",
        "actix_supervisor_queue_depth_bucket{le=\"4.0\"} 4",
        "actix_supervisor_queue_depth_bucket{le=\"+Inf\"} 4",
        "actix_supervisor_overloaded_queue_depth{dn=\"root.c\"} 4",
        "actix_supervisor_overloaded_queue_depth{dn=\"root.d\"} 3",
    ];
    for w in want {
        assert!(lines.contains(&w), "{w} not in {lines:#?}");
    }
    assert!(!text.contains("dn=\"root.b\""), "only the top 2: {text}");
    drop(gates);
    sup.shutdown().await;
}
