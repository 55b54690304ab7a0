//! The per-node log tree: loggers, sub-loggers, raw output, death reports and their lead-up.

use crate::common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_supervisor::{
    node_debug, node_info, node_warn, Context, LogEvent, LogQuery, RunError, Signal, Supervisor,
};
use common::*;
use futures::StreamExt;
use log::Level;
use tokio::sync::mpsc;

#[actix_rt::test]
async fn entries_land_at_the_dn_and_can_be_read_by_subtree_and_level() {
    let sup = builder().start(|ctx: Context| async move {
        node_info!(ctx, "root says {}", 1);
        ctx.run("a", |ctx: Context| async move {
            node_debug!(ctx, "a debug");
            node_warn!(ctx, "a warn");
            ctx.run("b", |ctx: Context| async move {
                ctx.logger().error(format_args!("b error"));
                serve(&ctx).await
            })
            .await?;
            serve(&ctx).await
        })
        .await?;
        serve(&ctx).await
    });
    sup.wait_settled().await;
    assert_eq!(messages(&sup, LogQuery::dn("root")), ["root says 1"]);
    assert_eq!(
        messages(&sup, LogQuery::dn("root.a")),
        ["a debug", "a warn"]
    );
    let mut below = messages(&sup, LogQuery::dn("root.a").subtree());
    below.sort();
    assert_eq!(below, ["a debug", "a warn", "b error"]);
    let mut warn_up = messages(&sup, LogQuery::dn("root").subtree().min_level(Level::Warn));
    warn_up.sort();
    assert_eq!(warn_up, ["a warn", "b error"]);
    let e = &sup.logs().backlog(&LogQuery::dn("root"))[0];
    assert_eq!(e.level, Some(Level::Info));
    assert!(
        e.location
            .as_deref()
            .is_some_and(|l| l.starts_with("tests/suite/logging.rs:")),
        "{e:?}"
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn sub_logger_and_child_names_collide_both_ways() {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let starts = Arc::new(AtomicUsize::new(0));
    let sup = builder().start(move |ctx: Context| {
        let (tx, starts) = (tx.clone(), starts.clone());
        async move {
            let n = starts.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                let access = ctx.sub_logger("access")?;
                node_info!(access, "GET /");
                let r = ctx.run("access", server()).await;
                let _ = tx.send(format!("{r:?}"));
                ctx.run("worker", server()).await?;
                let r = ctx.sub_logger("worker").map(|_| ());
                let _ = tx.send(format!("{r:?}"));
                let r = ctx.sub_logger("Bad.Name").map(|_| ());
                let _ = tx.send(format!("{r:?}"));
                // The same sub-logger again is fine.
                let again = ctx.sub_logger("access").map(|l| l.dn().to_string());
                let _ = tx.send(format!("{again:?}"));
                return Err("restart me".into());
            }
            // After the restart, the reservation is gone.
            let r = ctx.run("access", server()).await;
            let _ = tx.send(format!("{r:?}"));
            serve(&ctx).await
        }
    });
    let reserved = RunError::ReservedName {
        dn: "root".into(),
        name: "access".into(),
    };
    assert_eq!(next(&mut rx).await, format!("{:?}", Err::<(), _>(reserved)));
    let dup = RunError::DuplicateName {
        dn: "root".into(),
        name: "worker".into(),
    };
    assert_eq!(next(&mut rx).await, format!("{:?}", Err::<(), _>(dup)));
    assert!(next(&mut rx).await.contains("InvalidName"));
    assert_eq!(next(&mut rx).await, "Ok(\"root.access\")");
    assert_eq!(next(&mut rx).await, "Ok(())");
    sup.wait_settled().await;
    assert_eq!(messages(&sup, LogQuery::dn("root.access")), ["GET /"]);
    assert_eq!(
        state(&sup, "root.access").await,
        actix_supervisor::NodeState::Healthy
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn raw_output_is_kept_apart_and_never_refused() {
    let sup = builder().start(|ctx: Context| async move {
        node_info!(ctx, "leveled");
        let mut out = ctx.logger().raw();
        out.write_all(b"line one\nline \xff two\npartial")?;
        drop(out); // flushes "partial"
        ctx.logger().raw_line(b"crlf\r\n");
        serve(&ctx).await
    });
    sup.wait_settled().await;
    assert_eq!(messages(&sup, LogQuery::dn("root")), ["leveled"]);
    assert_eq!(
        messages(&sup, LogQuery::dn("root").raw_only()),
        ["line one", "line \u{fffd} two", "partial", "crlf"]
    );
    assert_eq!(messages(&sup, LogQuery::dn("root").with_raw()).len(), 5);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_death_report_carries_the_lead_up() {
    let sup = builder().death_lead_up(2).start(|ctx: Context| async move {
        let mut first = true;
        ctx.run("doomed", move |ctx: Context| {
            let fail = std::mem::take(&mut first);
            async move {
                for step in 1..=3 {
                    node_info!(ctx, "step {step}");
                }
                ctx.signal(Signal::Healthy)?;
                if fail {
                    return Err("out of steps".into());
                }
                ctx.cancelled().await;
                Ok(())
            }
        })
        .await?;
        serve(&ctx).await
    });
    sup.wait_settled().await;
    let reports = messages(&sup, LogQuery::dn("supervisor").min_level(Level::Error));
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert!(
        r.starts_with("root.doomed died: returned error: out of steps"),
        "{r}"
    );
    assert!(
        r.contains("step 2") && r.contains("step 3") && !r.contains("step 1"),
        "{r}"
    );
    let restarts = messages(&sup, LogQuery::dn("supervisor").min_level(Level::Info));
    assert!(
        restarts
            .iter()
            .any(|m| m.starts_with("restarting root.doomed")),
        "{restarts:?}"
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn memory_stays_bounded_under_sustained_logging() {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let sup = builder().log_capacity(64).start(move |ctx: Context| {
        let tx = tx.clone();
        async move {
            let long = "x".repeat(actix_supervisor::MAX_MESSAGE_LEN * 2);
            node_info!(ctx, "{long}");
            for i in 0..50_000 {
                node_info!(ctx, "chatter {i}");
                ctx.logger().raw_line(format!("raw {i}").as_bytes());
            }
            let _ = tx.send(());
            serve(&ctx).await
        }
    });
    rx.recv().await.unwrap();
    sup.wait_settled().await;
    let logs = sup.logs();
    // 64 leveled + 64 raw for root, plus the supervisor's own few.
    let root = logs.backlog(&LogQuery::dn("root").with_raw());
    assert_eq!(root.len(), 128);
    assert_eq!(root.last().unwrap().message, "raw 49999");
    assert!(logs.stored() <= 128 + 64);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_live_stream_follows_a_subtree() {
    init_log();
    // On the current arbiter nothing runs before the test yields, so the
    // stream is subscribed before the first entry.
    let sup = actix_supervisor::Supervisor::builder()
        .current_arbiter()
        .start(|ctx: Context| async move {
            node_info!(ctx, "not below root.a");
            ctx.run("a", |ctx: Context| async move {
                for i in 0..3 {
                    node_info!(ctx, "tick {i}");
                    tokio::task::yield_now().await;
                }
                ctx.sub_logger("access")?
                    .info(format_args!("a sub-logger is below it"));
                serve(&ctx).await
            })
            .await?;
            serve(&ctx).await
        });
    let mut stream = sup.logs().subscribe(LogQuery::dn("root.a").subtree());
    let mut got = Vec::new();
    while got.len() < 4 {
        match stream.next().await {
            Some(LogEvent::Entry(e)) => got.push(format!("{}: {}", e.dn, e.message)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        got,
        [
            "root.a: tick 0",
            "root.a: tick 1",
            "root.a: tick 2",
            "root.a.access: a sub-logger is below it"
        ]
    );
    sup.shutdown().await;
}

/// The death report shows the dying incarnation's lines, its sub-logger's
/// included, and marks where an earlier incarnation's lines begin.
#[actix_rt::test]
async fn a_death_report_marks_the_incarnations_in_its_lead_up() {
    tokio::time::pause();
    init_log();
    let lives = Arc::new(Mutex::new(0));
    let l = lives.clone();
    let sup = Supervisor::builder()
        .current_arbiter()
        .backoff(backoff_ms(1))
        .start(move |ctx: Context| {
            let l = l.clone();
            async move {
                ctx.run("w", move |ctx: Context| {
                    let life = {
                        let mut n = l.lock().unwrap();
                        *n += 1;
                        *n
                    };
                    async move {
                        node_info!(ctx, "life {life} begins");
                        if life == 2 {
                            let sub = ctx.sub_logger("db")?;
                            sub.info(format_args!("life {life}: query failed"));
                        }
                        ctx.signal(Signal::Healthy)?;
                        if life <= 2 {
                            return Err(format!("life {life} ends").into());
                        }
                        ctx.cancelled().await;
                        Ok(())
                    }
                })
                .await?;
                serve(&ctx).await
            }
        });
    sup.wait_settled().await;
    let reports: Vec<String> = sup
        .logs()
        .backlog(&LogQuery::dn("supervisor"))
        .iter()
        .map(|e| e.message.clone())
        .filter(|m| m.starts_with("root.w died"))
        .collect();
    assert_eq!(reports.len(), 2, "{reports:#?}");
    assert!(!reports[0].contains("-- from"), "{}", reports[0]);
    let second = &reports[1];
    let earlier = second.find("-- from earlier incarnations:").expect(second);
    let first_life = second.find("life 1 begins").expect(second);
    let died = second
        .find("-- from the incarnation that died:")
        .expect(second);
    let second_life = second.find("life 2 begins").expect(second);
    let sub = second
        .find("root.w.db: life 2: query failed")
        .expect(second);
    assert!(earlier < first_life && first_life < died && died < second_life && second_life < sub);
    sup.shutdown().await;
}
