//! The Prometheus sink against a scripted scenario, read back through a strict parser of the text exposition.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_supervisor::prometheus::PrometheusMetrics;
use actix_supervisor::prometheus_client::{encoding::text::encode, registry::Registry};
use actix_supervisor::{Child, Context, Group, NodeState, Signal, Strategy, Supervisor};
use common::*;

/// One sample of the exposition: its name, its labels (sorted), its value.
type Sample = (String, Vec<(String, String)>, f64);

/// Every sample of the exposition, read by a strict parser of the
/// OpenMetrics text format: `# HELP` and `# TYPE` lines with a known type,
/// every sample inside the family typed last (its name, or the name with a
/// suffix its type allows), labels as `key="value"` pairs with escapes,
/// values as floats, and `# EOF` last. Anything else fails the test.
fn samples(registry: &Registry) -> Vec<Sample> {
    let mut text = String::new();
    encode(&mut text, registry).unwrap();
    let mut out = Vec::new();
    let mut family: Option<(String, String)> = None;
    let mut ended = false;
    for line in text.lines() {
        assert!(!ended, "a line after # EOF: {line:?}");
        if line == "# EOF" {
            ended = true;
        } else if let Some(help) = line.strip_prefix("# HELP ") {
            assert!(
                is_metric_name(help.split(' ').next().unwrap_or("")),
                "{line:?}"
            );
        } else if let Some(typed) = line.strip_prefix("# TYPE ") {
            let (name, kind) = typed.split_once(' ').expect("# TYPE name type");
            let known = [
                "counter",
                "gauge",
                "histogram",
                "info",
                "unknown",
                "summary",
                "stateset",
            ];
            assert!(is_metric_name(name) && known.contains(&kind), "{line:?}");
            family = Some((name.to_string(), kind.to_string()));
        } else {
            assert!(!line.starts_with('#'), "an unknown comment: {line:?}");
            let (series, value) = line.rsplit_once(' ').expect("a sample: series value");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("a float value: {line:?}"));
            let (name, mut labels) = match series.split_once('{') {
                Some((name, rest)) => (name, labels_of(rest.strip_suffix('}').expect("closing }"))),
                None => (series, Vec::new()),
            };
            let (fam, kind) = family.as_ref().expect("a sample before any # TYPE");
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            let rest = name.strip_prefix(fam.as_str());
            assert!(
                rest.is_some_and(|r| r.is_empty() || suffixes.contains(&r)),
                "{name} is outside its family {fam} ({kind})"
            );
            labels.sort();
            out.push((name.to_string(), labels, value));
        }
    }
    assert!(ended, "the exposition ends with # EOF");
    out
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `k="v",k2="v2"`, with `\\`, `\"` and `\n` escapes in the values.
fn labels_of(body: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("key=\"value\"");
        assert!(
            is_metric_name(key) && !key.contains(':'),
            "a label name: {key:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("a closing quote") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("an escaped character").1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => panic!("an unknown escape \\{c}"),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_string(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
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
        assert!(board.kill(dn).await);
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

/// The nodes-by-state gauge is there from the first scrape (the summary is
/// told at start), with every state, and its series keep one order from
/// scrape to scrape; so do the exits by kind.
#[actix_rt::test]
async fn every_series_is_there_from_the_start_in_one_order() {
    let sup = builder()
        .prometheus()
        .start(|ctx: Context| async move { serve(&ctx).await });
    sup.wait_ready(Duration::from_secs(10)).await.unwrap();
    let registry = sup.registry().unwrap();
    let scrape = || {
        let mut text = String::new();
        encode(&mut text, &registry.lock().unwrap()).unwrap();
        text
    };
    let order = |text: &str, family: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(family) && l.contains('{'))
            .map(|l| l.split('}').next().unwrap_or_default().to_string())
            .collect()
    };
    let first = scrape();
    let states = order(&first, "actix_supervisor_nodes{");
    assert_eq!(states.len(), 6, "{first}");
    for state in ["NEW", "HEALTHY", "DEAD", "DONE", "CANCELLED", "STANDBY"] {
        assert!(
            states.iter().any(|s| s.contains(&format!("\"{state}\""))),
            "{first}"
        );
    }
    assert_eq!(
        order(&first, "actix_supervisor_exits_total{").len(),
        9,
        "{first}"
    );
    // Within the first second (the tick has not run yet): the root is counted.
    assert!(
        first.contains("actix_supervisor_nodes{state=\"HEALTHY\"} 1")
            || first.contains("actix_supervisor_nodes{state=\"NEW\"} 1"),
        "{first}"
    );
    // Things happen; the order of the series does not change.
    sup.restart("root").await.unwrap();
    sup.wait_ready(Duration::from_secs(10)).await.unwrap();
    let second = scrape();
    assert_eq!(order(&second, "actix_supervisor_nodes{"), states);
    assert_eq!(
        order(&second, "actix_supervisor_exits_total{"),
        order(&first, "actix_supervisor_exits_total{")
    );
    sup.shutdown().await;
}
