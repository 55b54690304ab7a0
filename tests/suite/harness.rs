//! The test harness, tested: it passes a well-behaved runnable and fails a
//! test whose runnable errors. Each case runs in a thread of its own, with its
//! own actix System, so that the failure can be observed.

use std::time::Duration;

use actix_supervisor::testing::TestHarness;
use actix_supervisor::{node_info, Context, RunResult, Signal};

fn run_harness<R, F>(make: F) -> std::thread::Result<()>
where
    F: FnOnce() -> R + Send + 'static,
    R: actix_supervisor::Runnable,
{
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let h = TestHarness::start(make());
            h.supervisor().wait_settled().await;
            h.finish().await;
        })
    })
    .join()
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_good_runnable_passes() {
    let res = run_harness(|| {
        |ctx: Context| async move {
            node_info!(ctx, "serving");
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            Ok(())
        }
    });
    assert!(res.is_ok());
}

#[test]
fn an_erroring_runnable_fails_the_test() {
    let res =
        run_harness(|| |_ctx: Context| async move { Err::<(), _>("broken on purpose".into()) });
    let msg = panic_text(&*res.expect_err("the harness must fail the test"));
    assert!(
        msg.contains("runnable under test (root) failed: broken on purpose"),
        "{msg}"
    );
}

#[test]
fn a_panic_deep_in_the_tree_fails_the_test() {
    let res = run_harness(|| {
        |ctx: Context| async move {
            ctx.run(
                "child",
                |_ctx: Context| async move { panic!("child exploded") },
            )
            .await?;
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            Ok(())
        }
    });
    let msg = panic_text(&*res.expect_err("the harness must fail the test"));
    assert!(
        msg.contains("root.child") && msg.contains("child exploded"),
        "{msg}"
    );
}

#[test]
fn an_error_after_cancellation_is_fine() {
    let res = run_harness(|| {
        |ctx: Context| async move {
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
            RunResult::Err("stopping".into())
        }
    });
    assert!(res.is_ok());
}

/// A runnable that ignores cancellation keeps `finish` waiting; the harness
/// names it every 3 s until the shutdown timeout drops it. Virtual time.
#[actix_rt::test]
async fn finish_names_the_stragglers() {
    tokio::time::pause();
    let builder = actix_supervisor::Supervisor::builder()
        .current_arbiter()
        .shutdown_timeout(Duration::from_secs(10));
    let h = TestHarness::start_with(builder, |ctx: Context| async move {
        ctx.run("deaf", |ctx: Context| async move {
            ctx.signal(Signal::Healthy)?;
            futures::future::pending::<()>().await;
            Ok(())
        })
        .await?;
        ctx.signal(Signal::Healthy)?;
        ctx.cancelled().await;
        Ok(())
    });
    let sup = h.supervisor().clone();
    sup.wait_settled().await;
    let t = tokio::time::Instant::now();
    h.finish().await;
    assert!(
        t.elapsed() >= Duration::from_secs(10),
        "waited for the shutdown timeout"
    );
    let reports: Vec<String> = sup
        .logs()
        .backlog(&actix_supervisor::LogQuery::dn(
            actix_supervisor::testing::HARNESS_DN,
        ))
        .iter()
        .map(|e| e.message.clone())
        .collect();
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(
        reports
            .iter()
            .all(|r| r == "still waiting for 1 live runnables: root.deaf"),
        "{reports:?}"
    );
}

/// A runnable meant to fail: its deaths are awaited, and fail nothing.
#[actix_rt::test]
async fn a_harness_can_expect_deaths() {
    let backoff = actix_supervisor::Backoff::default()
        .initial(Duration::from_millis(1))
        .jitter(0.0);
    let h = TestHarness::start_expecting_deaths(
        actix_supervisor::Supervisor::builder().backoff(backoff),
        |ctx: Context| async move {
            ctx.run("fragile", |ctx: Context| async move {
                ctx.signal(Signal::Healthy)?;
                Err::<(), _>("meant to fail".into())
            })
            .await?;
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            Ok(())
        },
    );
    assert_eq!(
        h.await_death("root.fragile").await,
        "returned error: meant to fail"
    );
    // Restarted, and dies again.
    assert_eq!(
        h.await_death("root.fragile").await,
        "returned error: meant to fail"
    );
    h.finish().await;
}
