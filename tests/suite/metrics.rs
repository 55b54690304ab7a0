//! Metrics sinks see every transition, in order, and cannot hurt the processor.

use crate::common;

use std::sync::Arc;

use actix_supervisor::testing::InMemoryMetrics;
use actix_supervisor::{Context, Metrics, NodeState, Signal};
use common::*;

struct Panicky;

impl Metrics for Panicky {
    fn node_state(&self, _: &str, _: NodeState) {
        panic!("a broken metrics sink");
    }
}

#[actix_rt::test]
async fn every_transition_is_reported_in_order() {
    let mem = Arc::new(InMemoryMetrics::default());
    let (tx, mut rx) = events();
    let sup = builder()
        .metrics(Panicky)
        .metrics(mem.clone())
        .start(move |ctx: Context| {
            let tx = tx.clone();
            async move {
                let mut first = true;
                ctx.run("w", move |ctx: Context| {
                    let fail = std::mem::take(&mut first);
                    let tx = tx.clone();
                    async move {
                        ctx.signal(Signal::Healthy)?;
                        if fail {
                            return Err("once".into());
                        }
                        ctx.signal(Signal::Done)?;
                        let _ = tx.send("done".into());
                        Ok(())
                    }
                })
                .await?;
                serve(&ctx).await
            }
        });
    assert_eq!(next(&mut rx).await, "done");
    sup.wait_settled().await;
    sup.shutdown().await;
    let of = |dn: &str| -> Vec<NodeState> {
        mem.transitions()
            .iter()
            .filter(|(d, _)| d == dn)
            .map(|(_, s)| *s)
            .collect()
    };
    use NodeState::*;
    assert_eq!(of("root.w"), [New, Healthy, Dead, New, Healthy, Done]);
    assert_eq!(of("root"), [New, Healthy, Cancelled]);
    let table = mem.dns();
    assert_eq!(table["root.w"].state, Done);
    assert_eq!(table["root"].state, Cancelled);
    assert!(table["root"].transition >= table["root.w"].transition);
}

/// Panics on every transition of `root.bad`.
struct PanicsOnBad;

impl Metrics for PanicsOnBad {
    fn node_state(&self, dn: &str, _: NodeState) {
        if dn == "root.bad" {
            panic!("the sink's own bug");
        }
    }
}

#[actix_rt::test]
async fn a_panicking_sink_is_named_with_the_event_and_the_panic_once_a_minute() {
    let board = Switchboard::default();
    let sup = actix_supervisor::Supervisor::builder()
        .backoff(backoff_ms(1))
        .metrics(PanicsOnBad)
        .start({
            let b = board.clone();
            move |ctx: actix_supervisor::Context| {
                let b = b.clone();
                async move {
                    ctx.run("bad", b.runnable()).await?;
                    serve(&ctx).await
                }
            }
        });
    sup.wait_settled().await;
    // More events of the same sink: a death, a restart, HEALTHY again.
    assert!(board.kill("root.bad").await);
    sup.wait_settled().await;
    let said: Vec<String> = sup
        .logs()
        .backlog(&actix_supervisor::LogQuery::dn("supervisor"))
        .iter()
        .map(|e| e.message.clone())
        .filter(|m| m.contains("metrics sink"))
        .collect();
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(
        said[0]
            .contains("metrics sink #0 panicked on node_state(root.bad, NEW): the sink's own bug"),
        "{said:#?}"
    );
    sup.shutdown().await;
}
