//! The `tracing` feature with a real `tracing-subscriber` registry: the span
//! tree, events filed by DN (a spawned task's too), the death report's
//! lead-up, the supervisor's structured events, and spans closed however an
//! incarnation ends.
#![cfg(feature = "tracing")]

mod common;

use std::sync::Once;
use std::time::Duration;

use actix_supervisor::tracing::LogTreeLayer;
use actix_supervisor::{Context, Group, LogQuery, Shutdown, Signal, Strategy, Supervisor};
use common::subscriber::*;
use common::*;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(LogTreeLayer::new())
            .with(Recorder);
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// Starts `root` under a span `case` (its `case` field: `name`).
fn start(
    name: &str,
    builder: actix_supervisor::SupervisorBuilder,
    root: impl actix_supervisor::Runnable,
) -> Supervisor {
    install();
    let case = tracing::info_span!("case", case = name);
    let _entered = case.enter();
    builder.start(root)
}

fn lines(sup: &Supervisor, dn: &str) -> Vec<(String, String)> {
    sup.logs()
        .backlog(&LogQuery::dn(dn))
        .iter()
        .filter(|e| &*e.dn == dn)
        .map(|e| {
            (
                e.level.map(|l| l.to_string()).unwrap_or_default(),
                e.message.clone(),
            )
        })
        .collect()
}

/// The supervisor's structured events about `dn`, as recorded so far.
fn supervisor_events(dn: &str) -> Vec<EventRec> {
    seen()
        .lock()
        .unwrap()
        .events
        .iter()
        .filter(|e| {
            e.target == "actix_supervisor" && e.fields.get("dn").map(String::as_str) == Some(dn)
        })
        .cloned()
        .collect()
}

#[actix_rt::test]
async fn the_spans_form_the_supervision_tree() {
    let board = Switchboard::default();
    let b = board.clone();
    let sup = start("tree", builder(), move |ctx: Context| {
        let b = b.clone();
        async move {
            let a = |ctx: Context| async move {
                ctx.run("x", |ctx: Context| async move { serve(&ctx).await })
                    .await?;
                serve(&ctx).await
            };
            let group = Group::new()
                .with("a", a)
                .with("b", b.runnable())
                .strategy(Strategy::OneForOne);
            ctx.run_group(group).await?;
            serve(&ctx).await
        }
    });
    sup.wait_settled().await;
    assert!(board.kill("root.b").await);
    until_back(&sup, "root.b", 1).await;
    let spans = node_spans("tree");
    let find = |dn: &str, inc: &str| {
        spans
            .iter()
            .find(|(_, r)| r.fields["dn"] == dn && r.fields["incarnation"] == inc)
            .unwrap_or_else(|| panic!("no span for {dn} #{inc}: {spans:#?}"))
            .clone()
    };
    let (root, root_rec) = find("root", "1");
    assert_eq!(root_rec.fields["kind"], "runnable");
    let parent = {
        let seen = seen().lock().unwrap();
        root_rec
            .parent
            .and_then(|p| seen.spans.get(&p))
            .cloned()
            .unwrap()
    };
    assert_eq!(
        parent.name, "case",
        "the root's parent is the span current at start"
    );
    let (a, a_rec) = find("root.a", "1");
    assert_eq!(a_rec.parent, Some(root));
    assert_eq!(find("root.a.x", "1").1.parent, Some(a));
    assert_eq!(find("root.b", "1").1.parent, Some(root));
    // The restarted b: a new span, incarnation 2, under the same root.
    let (_, b2) = find("root.b", "2");
    assert_eq!(b2.parent, Some(root));
    assert!(
        !find("root.b", "1").1.open,
        "b's first incarnation's span closed"
    );
    assert_eq!(spans.len(), 5, "{spans:#?}");
    sup.shutdown().await;
    all_closed("tree").await;
}

#[actix_rt::test]
async fn events_are_filed_at_the_node_even_from_spawned_tasks() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let sup = start("filed", builder(), move |ctx: Context| {
        let tx = tx.clone();
        async move {
            ctx.run("worker", move |ctx: Context| {
                let tx = tx.clone();
                async move {
                    tracing::info!(user = 7, "hello from the runnable");
                    let t1 = actix_rt::spawn(
                        async { tracing::warn!("from a task carrying the span") }.in_current_span(),
                    );
                    let _ = t1.await;
                    let t2 = ctx.spawn(async { tracing::debug!(n = 2, "from ctx.spawn") });
                    let _ = t2.await;
                    // Not carrying the span: not filed at the node.
                    let t3 = actix_rt::spawn(async { tracing::error!("from a bare task") });
                    let _ = t3.await;
                    let _ = tx.send(());
                    serve(&ctx).await
                }
            })
            .await?;
            serve(&ctx).await
        }
    });
    rx.recv().await.unwrap();
    sup.wait_settled().await;
    let got = lines(&sup, "root.worker");
    assert_eq!(
        got,
        [
            ("INFO".into(), "hello from the runnable user=7".into()),
            ("WARN".into(), "from a task carrying the span".into()),
            ("DEBUG".into(), "from ctx.spawn n=2".into()),
        ],
        "{got:#?}"
    );
    let entry = sup.logs().backlog(&LogQuery::dn("root.worker"))[0].clone();
    assert!(entry
        .location
        .as_deref()
        .unwrap()
        .starts_with("tests/tracing.rs:"));
    sup.shutdown().await;
    all_closed("filed").await;
}

#[actix_rt::test]
async fn the_death_report_holds_tracing_events_and_the_events_are_structured() {
    let sup = start(
        "death",
        builder().backoff(backoff_ms(3_600_000)),
        |ctx: Context| async move {
            ctx.run("dying_one", |_ctx: Context| async move {
                tracing::info!(attempt = 1, "opening the ledger");
                Err("the ledger is locked".into())
            })
            .await?;
            serve(&ctx).await
        },
    );
    sup.wait_settled().await;
    let report = sup
        .logs()
        .backlog(&LogQuery::dn("supervisor"))
        .iter()
        .map(|e| e.message.clone())
        .find(|m| m.contains("root.dying_one died"))
        .expect("a death report");
    assert!(report.contains("opening the ledger attempt=1"), "{report}");

    let events = supervisor_events("root.dying_one");
    let died = events
        .iter()
        .find(|e| e.fields["event"] == "died")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(died.level, "ERROR");
    assert_eq!(
        died.fields["reason"],
        "returned error: the ledger is locked"
    );
    assert_eq!(died.fields["exit_kind"], "error");
    assert_eq!(died.fields["incarnation"], "1");
    let restarting = events
        .iter()
        .find(|e| e.fields["event"] == "restarting")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(restarting.fields["restarts"], "1");
    assert_eq!(restarting.fields["incarnation"], "2");
    let backoff: u64 = restarting.fields["backoff_ms"].parse().unwrap();
    assert!(backoff >= 1_000_000, "{backoff}");
    // Not filed a second time at the node: the log tree has them at
    // `supervisor`.
    assert!(lines(&sup, "root.dying_one")
        .iter()
        .all(|(_, m)| !m.contains("died")));
    sup.shutdown().await;
    let shut = seen()
        .lock()
        .unwrap()
        .events
        .iter()
        .any(|e| e.target == "actix_supervisor" && e.fields["event"] == "shut_down");
    assert!(shut);
    all_closed("death").await;
}

#[actix_rt::test]
async fn spans_close_however_an_incarnation_ends() {
    let sup = start(
        "ends",
        builder().shutdown_timeout(Duration::from_millis(200)),
        |ctx: Context| async move {
            let group = Group::new()
                .child(actix_supervisor::Child::new(
                    "done",
                    |ctx: Context| async move {
                        ctx.signal(Signal::Healthy)?;
                        ctx.signal(Signal::Done)?;
                        Ok(())
                    },
                ))
                .child(
                    actix_supervisor::Child::new("panics", |_ctx: Context| async move {
                        panic!("on purpose")
                    })
                    .restart(actix_supervisor::Restart::Temporary),
                )
                .child(
                    actix_supervisor::Child::new("deaf", |ctx: Context| async move {
                        ctx.signal(Signal::Healthy)?;
                        // Ignores cancellation: aborted at its stop deadline.
                        std::future::pending::<()>().await;
                        Ok(())
                    })
                    .shutdown(Shutdown::Timeout(Duration::from_millis(100))),
                )
                .with("serving", |ctx: Context| async move { serve(&ctx).await })
                .strategy(Strategy::OneForOne);
            ctx.run_group(group).await?;
            serve(&ctx).await
        },
    );
    sup.wait_settled().await;
    assert!(node_spans("ends").len() >= 5);
    sup.shutdown().await;
    all_closed("ends").await;
}

/// A request served by the supervised server is served in the server
/// node's span: a handler's events are filed at the node.
#[cfg(feature = "web")]
#[actix_rt::test]
async fn a_request_is_served_in_its_server_nodes_span() {
    use actix_supervisor::web::server;
    use actix_web::{web, App, HttpResponse};

    let sup = start("request", builder(), |ctx: Context| async move {
        let http = server("127.0.0.1:0", || {
            App::new().route(
                "/hello",
                web::get().to(|| async {
                    tracing::info!(path = "/hello", "serving hello");
                    HttpResponse::Ok().body("hi")
                }),
            )
        })
        .workers(1);
        ctx.run("http", http).await?;
        serve(&ctx).await
    });
    sup.wait_settled().await;
    let addr = sup.addrs("root.http").await[0];
    let (code, body) = fetch(addr, "GET", "/hello").await.unwrap();
    assert_eq!((code, body.as_str()), (200, "hi"));
    let got = lines(&sup, "root.http");
    assert!(
        got.contains(&("INFO".into(), "serving hello path=/hello".into())),
        "{got:#?}"
    );
    sup.shutdown().await;
    all_closed("request").await;
}

/// An actor that holds each message until its sender is dropped.
struct Desk;

impl actix::Actor for Desk {
    type Context = actix::Context<Self>;
}

#[derive(actix::Message)]
#[rtype(result = "()")]
struct Hold(futures::channel::oneshot::Receiver<()>);

impl actix::Handler<Hold> for Desk {
    type Result = actix::AtomicResponse<Self, ()>;
    fn handle(&mut self, m: Hold, _: &mut Self::Context) -> Self::Result {
        use actix::fut::wrap_future;
        actix::AtomicResponse::new(Box::pin(wrap_future(async move {
            let _ = m.0.await;
        })))
    }
}

#[actix_rt::test]
async fn a_queue_alarm_is_a_structured_event_on_and_off() {
    let (runnable, desk) = actix_supervisor::actor(|| Desk);
    let group =
        Group::new().child(actix_supervisor::Child::new("desk", runnable).queue_alarm(3, 1));
    let group = std::sync::Mutex::new(Some(group));
    let sup = start("overload", builder(), move |ctx: Context| {
        let group = group.lock().unwrap().take();
        async move {
            if let Some(g) = group {
                ctx.run_group(g).await?;
            }
            serve(&ctx).await
        }
    });
    sup.wait_settled().await;
    let gates: Vec<_> = (0..3)
        .map(|_| {
            let (tx, rx) = futures::channel::oneshot::channel();
            assert!(desk.do_send(Hold(rx)).is_ok());
            tx
        })
        .collect();
    sup.wait_settled().await;
    drop(gates);
    // The actor works through its backlog on a worker: wait for the clear.
    for _ in 0..1_000 {
        sup.wait_settled().await;
        let n = sup.snapshot_of("root.desk").await.expect("the node");
        if n.first()
            .is_some_and(|n| !n.overloaded && n.queued == Some(0))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sup.wait_settled().await;
    let events: Vec<(String, String, String)> = supervisor_events("root.desk")
        .iter()
        .map(|e| {
            let message = e.fields.get("message").cloned().unwrap_or_default();
            (e.fields["event"].clone(), e.level.clone(), message)
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(kinds, ["overloaded", "overload_cleared"], "{events:#?}");
    assert_eq!(events[0].1, "WARN");
    assert!(
        events[0].2.contains("root.desk: 3 messages waiting"),
        "{events:#?}"
    );
    sup.shutdown().await;
    all_closed("overload").await;
}
