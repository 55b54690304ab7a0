//! Shutting down on SIGTERM: drain, then a graceful shutdown; a second
//! signal forces the way out; handlers installed at start keep an early
//! signal. Signals are process-wide: one test raises them, in its own
//! binary (the other test here sends none to this process).
#![cfg(unix)]

mod common;

use std::time::Duration;

use actix_supervisor::{Context, Ended, LogQuery, TerminationSignals};
use common::*;

fn raise(signal: i32) {
    // SAFETY: kill(2) on our own pid; a handler is installed for `signal`.
    let r = unsafe { libc::kill(libc::getpid(), signal) };
    assert_eq!(r, 0);
}

#[actix_rt::test]
async fn sigterm_drains_then_shuts_down_and_a_second_one_forces() {
    init_log();
    // One SIGTERM: ready no more, then a clean shutdown, exit code 0.
    let sup = builder().start(|ctx: Context| async move {
        ctx.run("worker", server()).await?;
        serve(&ctx).await
    });
    sup.wait_settled().await;
    assert!(!sup.is_draining().await);
    let signals = TerminationSignals::new().unwrap();
    let run = actix_rt::spawn({
        let sup = sup.clone();
        async move { sup.run_until(signals, Duration::ZERO).await }
    });
    raise(libc::SIGTERM);
    let ended = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("shut down within 10 s")
        .unwrap();
    assert_eq!(ended, Ended::ShutDown);
    assert_eq!(ended.exit_code(), 0);
    assert!(sup.live_runnables().await.is_empty());
    let lines: Vec<String> = sup
        .logs()
        .backlog(&LogQuery::dn("supervisor"))
        .iter()
        .map(|e| e.message.clone())
        .collect();
    let drained = lines
        .iter()
        .position(|l| l.starts_with("SIGTERM: draining"))
        .unwrap();
    let shut = lines
        .iter()
        .position(|l| l.starts_with("shutting down"))
        .unwrap();
    assert!(drained < shut, "{lines:#?}");

    // A long drain, cut short by a second signal.
    let sup = builder().start(|ctx: Context| async move {
        ctx.run("worker", server()).await?;
        serve(&ctx).await
    });
    sup.wait_settled().await;
    let mut log = sup.logs().subscribe(LogQuery::dn("supervisor"));
    let signals = TerminationSignals::new().unwrap();
    let run = actix_rt::spawn({
        let sup = sup.clone();
        async move { sup.run_until(signals, Duration::from_secs(3600)).await }
    });
    raise(libc::SIGINT);
    said(&mut log, "SIGINT: draining").await;
    assert!(sup.is_draining().await, "not ready any more");
    assert_eq!(
        sup.live_runnables().await.len(),
        2,
        "still serving while it drains"
    );
    raise(libc::SIGTERM);
    let ended = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("forced within 10 s")
        .unwrap();
    assert_eq!((ended.clone(), ended.exit_code()), (Ended::Forced, 5));
    sup.shutdown().await;

    // With `termination_signals()` the handlers are installed as the
    // supervisor starts: a SIGTERM that comes before `run_until_signal` is
    // called (while `main` awaits its readiness, say) is drained as any
    // other, the moment `run_until_signal` runs. (In this test: signals
    // are process-wide, and every test's handlers would see them.)
    let sup = builder()
        .termination_signals()
        .start(|ctx: Context| async move {
            ctx.run("worker", server()).await?;
            serve(&ctx).await
        });
    raise(libc::SIGTERM);
    sup.wait_ready(Duration::from_secs(10)).await.unwrap();
    let ended = tokio::time::timeout(
        Duration::from_secs(10),
        sup.run_until_signal(Duration::ZERO),
    )
    .await
    .expect("the early signal was seen")
    .unwrap();
    assert_eq!(ended, Ended::ShutDown);
    let drained = sup
        .logs()
        .backlog(&LogQuery::dn("supervisor"))
        .iter()
        .any(|e| e.message.starts_with("SIGTERM: draining"));
    assert!(drained);
}

/// A process node's child gets every signal's default disposition, even
/// where the supervisor's own process ignores a signal (as under `nohup`):
/// a reload signal forwarded to it is not lost.
#[actix_rt::test]
async fn a_process_node_gets_default_signal_dispositions() {
    use actix_supervisor::process::Command;
    use actix_supervisor::NodeState;
    init_log();
    // SAFETY: SIG_IGN for SIGHUP in this process; nothing here relies on it.
    unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
    let script = "trap 'echo got hup' HUP; echo ready; while true; do sleep 0.02; done";
    let cmd = Command::new("sh")
        .args(["-c", script])
        .ready_when(|l| l == "ready");
    let signals = cmd.signals();
    let (seen, mut states) = transitions();
    let sup = builder().metrics(seen).start(move |ctx: Context| {
        let cmd = cmd.clone();
        async move {
            ctx.run("p", cmd).await?;
            serve(&ctx).await
        }
    });
    await_state(&mut states, "root.p", NodeState::Healthy, 1).await;
    signals.send(libc::SIGHUP).unwrap();
    let mut lines = sup.logs().subscribe(LogQuery::dn("root.p").raw_only());
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        use futures::StreamExt;
        loop {
            let seen = sup
                .logs()
                .backlog(&LogQuery::dn("root.p").raw_only())
                .iter()
                .any(|e| e.message == "got hup");
            if seen {
                return;
            }
            lines.next().await;
        }
    })
    .await;
    assert!(got.is_ok(), "the child ignored the SIGHUP it inherited");
    sup.shutdown().await;
}
