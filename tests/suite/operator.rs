//! The operator's view: the snapshot's records, subtrees, counts, renders.

use crate::common;

use std::time::Duration;

use actix_supervisor::process::Command;
use actix_supervisor::{
    Context, ExitKind, Group, NodeKind, NodeState, Query, RunError, RunResult, Signal, Strategy,
    Supervisor,
};
use common::*;

struct Pinger;
impl actix::Actor for Pinger {
    type Context = actix::Context<Self>;
}

#[actix_rt::test]
async fn the_snapshot_tells_kinds_groups_children_and_times() {
    tokio::time::pause();
    init_log();
    let board = Switchboard::default();
    let b = board.clone();
    let (sink, mut feed) = transitions();
    let sup = Supervisor::builder()
        .current_arbiter()
        .metrics(sink)
        .backoff(backoff_ms(1000))
        .start(move |ctx: Context| {
            let b = b.clone();
            async move {
                ctx.run_group(
                    Group::new()
                        .with("a", b.runnable())
                        .with("b", b.runnable())
                        .strategy(Strategy::OneForOne),
                )
                .await?;
                ctx.run_actor("pinger", || Pinger).await?;
                serve(&ctx).await
            }
        });
    sup.wait_settled().await;
    let started = tokio::time::Instant::now();
    tokio::time::advance(Duration::from_secs(5)).await;
    let root = info(&sup, "root").await;
    assert_eq!((root.kind, root.incarnation), (NodeKind::Runnable, 1));
    assert_eq!((root.children_live, root.children_total), (3, 3));
    assert!(root.group.is_none());
    assert!(root.uptime.unwrap() >= Duration::from_secs(5));
    assert_eq!(info(&sup, "root.pinger").await.kind, NodeKind::Actor);
    let a = info(&sup, "root.a").await;
    let g = a.group.unwrap();
    assert_eq!((g.strategy, g.index, g.size), (Strategy::OneForOne, 0, 2));
    assert_eq!(info(&sup, "root.b").await.group.unwrap().index, 1);
    assert!(a.since <= started && a.last_exit.is_none());

    // b dies: DEAD, waiting 1 s, its exit recorded; the root sees one child fewer.
    assert!(board.kill("root.b").await);
    await_state(&mut feed, "root.b", NodeState::Dead, 1).await;
    let b_info = info(&sup, "root.b").await;
    let exit = b_info.last_exit.clone().unwrap();
    assert_eq!(
        (exit.kind, exit.reason.as_str()),
        (ExitKind::Error, "returned error: killed")
    );
    assert!(b_info.uptime.is_none() && b_info.restart_at.is_some());
    assert_eq!(info(&sup, "root").await.children_live, 2);
    let counts = sup.counts().await;
    assert_eq!(
        (counts.nodes, counts.healthy, counts.dead, counts.waiting),
        (4, 3, 1, 1)
    );
    assert_eq!(counts.restarts_last_minute, 1);
    // The backoff runs out: b is back, in its second incarnation.
    await_state(&mut feed, "root.b", NodeState::Healthy, 1).await;
    sup.wait_settled().await;
    let b_info = info(&sup, "root.b").await;
    assert_eq!((b_info.state, b_info.incarnation), (NodeState::Healthy, 2));
    assert_eq!(b_info.last_exit.unwrap().kind, ExitKind::Error);

    // Subtrees.
    let sub = sup.snapshot_of("root.a").await.unwrap();
    assert_eq!(
        sub.iter().map(|n| n.dn.as_str()).collect::<Vec<_>>(),
        ["root.a"]
    );
    assert_eq!(sup.snapshot_of("root").await.unwrap().len(), 4);
    assert!(sup.snapshot_of("root.nope").await.is_none());
    assert!(sup.snapshot_of("elsewhere").await.is_none());
    sup.shutdown().await;
    let a = info(&sup, "root.a").await;
    assert_eq!(a.last_exit.unwrap().kind, ExitKind::Cancelled);
}

#[actix_rt::test]
async fn exit_kinds_are_told_apart() {
    tokio::time::pause();
    init_log();
    let sup = Supervisor::builder()
        .current_arbiter()
        .backoff(backoff_ms(3_600_000))
        .shutdown_timeout(Duration::from_millis(10))
        .start(|ctx: Context| async move {
            ctx.run_group(
                Group::new()
                    .with("panics", |_ctx: Context| async move {
                        panic!("kaput");
                        #[allow(unreachable_code)]
                        Ok(())
                    })
                    .with("misuses", |ctx: Context| async move {
                        let _ = ctx.signal(Signal::Done);
                        ctx.cancelled().await;
                        Ok(())
                    })
                    .with("deaf", |ctx: Context| async move {
                        ctx.signal(Signal::Healthy)?;
                        futures::future::pending::<()>().await;
                        Ok(())
                    })
                    .strategy(Strategy::OneForOne),
            )
            .await?;
            serve(&ctx).await
        });
    sup.wait_settled().await;
    let kind = |n: actix_supervisor::NodeInfo| n.last_exit.map(|e| e.kind);
    assert_eq!(kind(info(&sup, "root.panics").await), Some(ExitKind::Panic));
    sup.shutdown().await;
    assert_eq!(
        kind(info(&sup, "root.misuses").await),
        Some(ExitKind::Misuse)
    );
    assert_eq!(kind(info(&sup, "root.deaf").await), Some(ExitKind::Aborted));
}

#[actix_rt::test]
async fn a_process_node_shows_its_pid() {
    let (sink, mut feed) = transitions();
    let cmd = Command::new("sleep").arg("300");
    let signals = cmd.signals();
    let sup = builder().metrics(sink).start(move |ctx: Context| {
        let cmd = cmd.clone();
        async move {
            ctx.run("p", cmd).await?;
            serve(&ctx).await
        }
    });
    await_state(&mut feed, "root.p", NodeState::Healthy, 1).await;
    sup.wait_settled().await;
    let pid = signals.pid().unwrap();
    let p = info(&sup, "root.p").await;
    assert_eq!((p.kind, p.pid), (NodeKind::Process, Some(pid)));
    sup.shutdown().await;
    let p = info(&sup, "root.p").await;
    assert_eq!((p.kind, p.pid), (NodeKind::Process, None));
}

/// root → http {listener, acceptor} (rest-for-one) and db; acceptor killed
/// and waiting out a one-minute backoff.
async fn rendered_tree() -> (Supervisor, Switchboard) {
    tokio::time::pause();
    init_log();
    let board = Switchboard::default();
    let b = board.clone();
    let (sink, mut feed) = transitions();
    let sup = Supervisor::builder()
        .current_arbiter()
        .metrics(sink)
        .backoff(backoff_ms(60_000))
        .start(move |ctx: Context| {
            let b = b.clone();
            async move {
                let http = {
                    let b = b.clone();
                    move |ctx: Context| {
                        let b = b.clone();
                        async move {
                            ctx.run_group(
                                Group::new()
                                    .with("listener", b.runnable())
                                    .with("acceptor", b.runnable())
                                    .strategy(Strategy::RestForOne),
                            )
                            .await?;
                            serve(&ctx).await
                        }
                    }
                };
                ctx.run("http", http).await?;
                ctx.run("db", b.runnable()).await?;
                serve(&ctx).await
            }
        });
    sup.wait_settled().await;
    tokio::time::advance(Duration::from_secs(90)).await;
    assert!(board.kill("root.http.acceptor").await);
    await_state(&mut feed, "root.http.acceptor", NodeState::Dead, 1).await;
    sup.wait_settled().await;
    (sup, board)
}

#[actix_rt::test]
async fn the_tree_renders_as_text() {
    let (sup, _board) = rendered_tree().await;
    let text = sup.render_text().await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with("● root "), "{text}");
    assert!(
        lines[0].contains("HEALTHY") && lines[0].contains("up 1m30s"),
        "{text}"
    );
    assert!(lines[1].starts_with("├─● db "), "{text}");
    assert!(lines[2].starts_with("└─● http "), "{text}");
    assert!(lines[3].starts_with("  ├─↻ acceptor "), "{text}");
    assert!(
        lines[3].contains("DEAD")
            && lines[3].contains("restart in 60.0s")
            && lines[3].contains("restarts 1")
            && lines[3].contains("last: returned error: killed"),
        "{text}"
    );
    assert!(lines[4].starts_with("  └─● listener "), "{text}");
    let colored = actix_supervisor::render::TextTree::new(&sup.snapshot().await)
        .color(true)
        .to_string();
    assert!(colored.contains("\x1b[31m↻\x1b[0m"), "{colored}");
    sup.shutdown().await;
}

#[cfg(feature = "serde")]
#[actix_rt::test]
async fn the_snapshot_serializes_to_json_and_dot() {
    let (sup, _board) = rendered_tree().await;
    let snap = sup.snapshot().await;
    let json = serde_json::to_value(&snap).unwrap();
    let acceptor = json
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["dn"] == "root.http.acceptor")
        .unwrap();
    assert_eq!(acceptor["state"], "DEAD");
    assert_eq!(acceptor["restarts"], 1);
    assert_eq!(acceptor["last_exit"]["kind"], "error");
    assert_eq!(acceptor["group"]["strategy"], "rest_for_one");
    assert_eq!(acceptor["kind"], "runnable");
    assert!(acceptor["pid"].is_null(), "no process, no pid");
    assert!(acceptor["since_wall"].as_u64().unwrap() > 1_600_000_000_000);
    let counts = serde_json::to_value(sup.counts().await).unwrap();
    assert_eq!(counts["waiting"], 1);

    let dot = actix_supervisor::render::dot(&snap);
    assert!(dot.starts_with("digraph supervisor {"));
    assert!(
        dot.contains("\"root.http\" -> \"root.http.acceptor\";"),
        "{dot}"
    );
    assert!(dot.contains("label=\"rest-for-one\""), "{dot}");
    assert!(
        dot.contains(
            "\"root.http.acceptor\" [label=\"acceptor\\nDEAD (1 restarts)\", fillcolor=orange];"
        ),
        "{dot}"
    );
    sup.shutdown().await;
}

/// 3 groups of 40, each member with 40 children: 4,921 nodes, several of
/// the processor's slices.
async fn wide(ctx: Context) -> RunResult {
    let mut g = Group::new();
    for i in 0..3 {
        g = g.with(format!("g{i}"), |ctx: Context| async move {
            let mut g = Group::new();
            for j in 0..40 {
                g = g.with(format!("m{j}"), |ctx: Context| async move {
                    let mut g = Group::new();
                    for k in 0..40 {
                        g = g.with(format!("l{k}"), |ctx: Context| async move {
                            if ctx.dn() == "root.g0.m0.l0" {
                                ctx.signal(Signal::Healthy)?;
                                ctx.signal(Signal::Done)?;
                                return Ok(());
                            }
                            serve(&ctx).await
                        });
                    }
                    ctx.run_group(g).await?;
                    serve(&ctx).await
                });
            }
            ctx.run_group(g).await?;
            serve(&ctx).await
        });
    }
    ctx.run_group(g).await?;
    serve(&ctx).await
}

#[actix_rt::test]
async fn queries_over_a_tree_larger_than_a_slice_are_exact_when_it_is_quiet() {
    let sup = Supervisor::start(wide);
    sup.wait_settled().await;
    let all = sup.snapshot().await;
    assert_eq!(all.len(), 1 + 3 + 120 + 4800);
    let dns: Vec<&str> = all.iter().map(|n| n.dn.as_str()).collect();
    let mut sorted = dns.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(dns, sorted, "DN order, each node once");
    let m7 = all.iter().find(|n| n.dn == "root.g1.m7").unwrap();
    assert_eq!((m7.group.unwrap().index, m7.group.unwrap().size), (7, 40));
    assert_eq!((m7.children_total, m7.children_live), (40, 40));

    // Two levels: the root, its groups, their members.
    let top = sup.query(&Query::new().depth(2)).await.unwrap();
    assert_eq!(top.nodes.len(), 1 + 3 + 120);
    assert!(!top.truncated);
    // A subtree, one level deep.
    let sub = sup
        .query(&Query::new().dn("root.g2").depth(1))
        .await
        .unwrap();
    assert_eq!(sub.nodes.len(), 41);
    assert_eq!(sub.nodes[0].dn, "root.g2");
    // By state: the one DONE leaf alone.
    let done = sup.query(&Query::new().not_healthy()).await.unwrap();
    let done: Vec<_> = done
        .nodes
        .iter()
        .map(|n| (n.dn.as_str(), n.state))
        .collect();
    assert_eq!(done, [("root.g0.m0.l0", NodeState::Done)]);
    // A limit: the first records in DN order, and the flag.
    let first = sup.query(&Query::new().limit(10)).await.unwrap();
    assert!(first.truncated);
    assert_eq!(first.nodes.len(), 10);
    assert!(first.nodes.iter().zip(&all).all(|(a, b)| a.dn == b.dn));
    let exact = sup.query(&Query::new().limit(all.len())).await.unwrap();
    assert!(!exact.truncated && exact.nodes.len() == all.len());
    // No such node: the error names it.
    let err = sup.query(&Query::new().dn("root.g9")).await.unwrap_err();
    assert!(
        matches!(&err, RunError::NotFound { dn } if dn == "root.g9"),
        "{err}"
    );
    // The summary agrees with the walk, and costs no walk.
    let c = sup.counts().await;
    assert_eq!((c.nodes, c.healthy, c.done), (all.len(), all.len() - 1, 1));
    sup.shutdown().await;
    // After the shutdown the last tree is still there to look at.
    let after = sup.query(&Query::new().states(&[NodeState::Healthy])).await;
    assert!(after.is_ok_and(|s| s.nodes.is_empty()));
}
