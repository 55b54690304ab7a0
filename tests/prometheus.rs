//! The Prometheus sink against a scripted scenario, read back through a
//! real parser of the text exposition.
#![cfg(feature = "prometheus")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_supervisor::prometheus::PrometheusMetrics;
use actix_supervisor::prometheus_client::{encoding::text::encode, registry::Registry};
use actix_supervisor::{Child, Context, Group, NodeState, Signal, Strategy, Supervisor};
use common::*;

/// One sample of the exposition: its name, its labels (sorted), its value.
type Sample = (String, Vec<(String, String)>, f64);

/// Every sample of the exposition.
fn samples(registry: &Registry) -> Vec<Sample> {
    let mut text = String::new();
    encode(&mut text, registry).unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("a valid exposition");
    scrape
        .samples
        .into_iter()
        .flat_map(|s| {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => vec![(s.metric, labels, v)],
                prometheus_parse::Value::Histogram(buckets) => buckets
                    .into_iter()
                    .map(|b| {
                        let mut l = labels.clone();
                        l.push(("le".into(), b.less_than.to_string()));
                        (format!("{}_bucket", s.metric), l, b.count)
                    })
                    .collect(),
                prometheus_parse::Value::Summary(_) => vec![],
            }
        })
        .collect()
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| *v)
        .unwrap_or_else(|| panic!("no sample {name} {labels:?} in {samples:#?}"))
}

#[actix_rt::test]
async fn the_exposition_counts_what_happened() {
    tokio::time::pause();
    init_log();
    let mut registry = Registry::default();
    let metrics = PrometheusMetrics::with_per_dn(&mut registry, 2);
    let board = Switchboard::default();
    let b = board.clone();
    let (sink, mut feed) = transitions();
    let leaf_lives = Arc::new(Mutex::new(0));
    let sup = Supervisor::builder()
        .current_arbiter()
        .backoff(backoff_ms(100))
        .metrics(metrics)
        .metrics(sink)
        .start(move |ctx: Context| {
            let (b, leaf_lives) = (b.clone(), leaf_lives.clone());
            async move {
                let mid = move |ctx: Context| {
                    let leaf_lives = leaf_lives.clone();
                    async move {
                        ctx.run("leaf", move |ctx: Context| {
                            let life = {
                                let mut n = leaf_lives.lock().unwrap();
                                *n += 1;
                                *n
                            };
                            async move {
                                ctx.signal(Signal::Healthy)?;
                                if life == 1 {
                                    return Err::<(), _>("leaf fails once".into());
                                }
                                ctx.cancelled().await;
                                Ok(())
                            }
                        })
                        .await?;
                        serve(&ctx).await
                    }
                };
                ctx.run_group(
                    Group::new()
                        .with("a", b.runnable())
                        .with("b", b.runnable())
                        .with("c", b.runnable())
                        .child(Child::new("mid", mid).max_restarts(0, Duration::from_secs(60)))
                        .strategy(Strategy::OneForOne),
                )
                .await?;
                serve(&ctx).await
            }
        });
    // mid gives up on its leaf's first failure (no restarts allowed) and is
    // restarted by root: 1 escalation, leaf and mid each exit once as errors.
    await_state(&mut feed, "root.mid", NodeState::Healthy, 2).await;
    for dn in ["root.a", "root.a", "root.b", "root.c"] {
        assert!(board.kill(dn));
        await_state(&mut feed, dn, NodeState::Dead, 1).await;
        await_state(&mut feed, dn, NodeState::Healthy, 1).await;
    }
    sup.wait_settled().await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // one tick of the summary
    let s = samples(&registry);
    // 4 kills + mid's restart + leaf's re-creation is not a restart of a
    // running node: restarts are a, a, b, c and mid.
    assert_eq!(value(&s, "actix_supervisor_restarts_total", &[]), 5.0);
    assert_eq!(
        value(&s, "actix_supervisor_exits_total", &[("kind", "error")]),
        5.0
    );
    assert_eq!(
        value(&s, "actix_supervisor_exits_total", &[("kind", "gave_up")]),
        1.0
    );
    assert_eq!(value(&s, "actix_supervisor_escalations_total", &[]), 1.0);
    assert_eq!(
        value(&s, "actix_supervisor_nodes", &[("state", "HEALTHY")]),
        6.0
    );
    assert_eq!(
        value(&s, "actix_supervisor_nodes", &[("state", "DEAD")]),
        0.0
    );
    assert_eq!(value(&s, "actix_supervisor_nodes_waiting", &[]), 0.0);
    // Per DN, capped at two: the first two DNs to restart (mid, then a) have
    // their own series; b and c are counted under _other.
    assert_eq!(
        value(
            &s,
            "actix_supervisor_node_restarts_total",
            &[("dn", "root.mid")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "actix_supervisor_node_restarts_total",
            &[("dn", "root.a")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "actix_supervisor_node_restarts_total",
            &[("dn", "_other")]
        ),
        2.0
    );
    assert!(!s
        .iter()
        .any(|(_, l, _)| l.iter().any(|(_, v)| v == "root.b")));
    // Backoffs: every restart waited 100 ms (Healthy resets a's backoff
    // between its two deaths).
    assert_eq!(
        value(
            &s,
            "actix_supervisor_backoff_seconds_bucket",
            &[("le", "0.08")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &s,
            "actix_supervisor_backoff_seconds_bucket",
            &[("le", "0.16")]
        ),
        5.0
    );
    // Every repair finished, in (virtual) no time beyond the backoff.
    assert_eq!(
        value(
            &s,
            "actix_supervisor_repair_seconds_bucket",
            &[("le", "0.001")]
        ),
        5.0
    );
    sup.shutdown().await;
}
