//! OS processes as tree nodes.

use crate::common;

use std::time::Duration;

use actix_supervisor::process::{Command, ProcessSignals};
use actix_supervisor::{Child, Context, Group, LogQuery, NodeState, Shutdown};
use common::*;
use tokio::sync::mpsc;

fn alive(pid: u32) -> bool {
    // SAFETY: kill(pid, 0) only checks for existence.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

fn raw(sup: &actix_supervisor::Supervisor, dn: &str) -> Vec<String> {
    sup.logs()
        .backlog(&LogQuery::dn(dn).raw_only())
        .iter()
        .map(|e| e.message.clone())
        .collect()
}

type Feed = mpsc::UnboundedReceiver<(String, NodeState)>;

/// Starts `cmd` as `root.p` with a 50 ms backoff; hands out its signal
/// handle and the transitions.
fn start(cmd: Command) -> (actix_supervisor::Supervisor, ProcessSignals, Feed) {
    start_with(builder().backoff(backoff_ms(50)), cmd)
}

fn start_with(
    builder: actix_supervisor::SupervisorBuilder,
    cmd: Command,
) -> (actix_supervisor::Supervisor, ProcessSignals, Feed) {
    let signals = cmd.signals();
    let (sink, feed) = transitions();
    let sup = builder.metrics(sink).start(move |ctx: Context| {
        let cmd = cmd.clone();
        async move {
            ctx.run("p", cmd).await?;
            serve(&ctx).await
        }
    });
    (sup, signals, feed)
}

/// Waits until a raw line at `dn` passes `pred` and returns it (the stream
/// is subscribed before the backlog is read, so no line is missed).
async fn wait_for(
    sup: &actix_supervisor::Supervisor,
    dn: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    use futures::StreamExt;
    let mut stream = sup.logs().subscribe(LogQuery::dn(dn).raw_only());
    if let Some(l) = raw(sup, dn).into_iter().find(|l| pred(l)) {
        return l;
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = stream.next().await {
            if let actix_supervisor::LogEvent::Entry(e) = ev {
                if pred(&e.message) {
                    return e.message.clone();
                }
            }
        }
        panic!("log stream ended")
    })
    .await
    .unwrap_or_else(|_| panic!("no such line at {dn}"))
}

#[actix_rt::test]
async fn output_lands_in_the_log_and_an_exit_is_a_death_with_the_reason() {
    let cmd = Command::new("sh").args([
        "-c",
        "echo out line; echo err line >&2; printf 'bad \\377 byte\\n'; exit 3",
    ]);
    let (sup, _, mut feed) = start(cmd);
    await_state(&mut feed, "root.p", NodeState::Dead, 1).await;
    let lines = raw(&sup, "root.p");
    assert!(
        lines.contains(&"out line".to_string()) && lines.contains(&"bad \u{fffd} byte".to_string()),
        "{lines:?}"
    );
    let reason = info(&sup, "root.p").await.last_error.unwrap();
    assert!(reason.contains("exit status: 3"), "{reason}");
    assert!(reason.contains("err line"), "{reason}");
    assert!(raw(&sup, "root.p").contains(&"err line".to_string()));
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_missing_binary_is_a_clean_death_retried_with_backoff() {
    let (sup, _, mut feed) = start(Command::new("/nonexistent/definitely-not-here"));
    await_state(&mut feed, "root.p", NodeState::Dead, 3).await;
    let i = info(&sup, "root.p").await;
    assert!(i.restarts >= 2, "{i:?}");
    let reason = i.last_error.unwrap();
    assert!(
        reason.contains("cannot start") && reason.contains("definitely-not-here"),
        "{reason}"
    );
    assert_eq!(state(&sup, "root").await, NodeState::Healthy);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn readiness_waits_for_a_line_and_signals_are_forwarded() {
    let script = "trap 'echo got hup' HUP; echo warming up; sleep 0.1; echo ready now; while true; do sleep 0.02; done";
    let cmd = Command::new("sh")
        .args(["-c", script])
        .ready_when(|l| l == "ready now")
        .grace(Duration::from_millis(500));
    let (sup, signals, mut feed) = start(cmd);
    await_state(&mut feed, "root.p", NodeState::Healthy, 1).await;
    // Healthy came only after the line, not at spawn.
    assert_eq!(raw(&sup, "root.p"), ["warming up", "ready now"]);
    signals.send(libc::SIGHUP).unwrap();
    wait_for(&sup, "root.p", |l| l == "got hup").await;
    let pid = signals.pid().unwrap();
    sup.shutdown().await;
    assert_eq!(state(&sup, "root.p").await, NodeState::Cancelled);
    assert!(!alive(pid), "the process is gone and reaped");
    assert!(signals.pid().is_none());
}

#[actix_rt::test]
async fn a_process_ignoring_the_stop_signal_is_killed_after_grace_with_its_group() {
    // The shell ignores SIGTERM and has a child; it prints the child's pid.
    let script = "trap '' TERM; sleep 300 & echo child $!; wait";
    let cmd = Command::new("sh")
        .args(["-c", script])
        .grace(Duration::from_millis(200))
        .kill_process_group(true);
    let (sup, signals, _feed) = start(cmd);
    let line = wait_for(&sup, "root.p", |l| l.starts_with("child ")).await;
    let child: u32 = line["child ".len()..].parse().unwrap();
    let leader = signals.pid().unwrap();
    assert!(alive(leader) && alive(child));
    let t = std::time::Instant::now();
    sup.shutdown().await;
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "SIGTERM was ignored, SIGKILL came after grace"
    );
    assert_eq!(state(&sup, "root.p").await, NodeState::Cancelled);
    assert!(!alive(leader), "leader killed");
    // The group's other member got SIGKILL too; init reaps it.
    assert!(eventually(|| not_running(child)), "no orphan left behind");
}

#[actix_rt::test]
async fn a_zero_exit_can_mean_done() {
    let cmd = Command::new("true").done_on_success(true);
    let (sup, _, mut feed) = start(cmd);
    await_state(&mut feed, "root.p", NodeState::Done, 1).await;
    sup.wait_settled().await;
    let p = info(&sup, "root.p").await;
    assert_eq!((p.state, p.restarts), (NodeState::Done, 0));
    sup.shutdown().await;
}

/// Polls an OS-side condition (signal delivery is asynchronous) for up to 5 s.
fn eventually(cond: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

/// Not running: gone, or a zombie waiting to be reaped.
fn not_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[actix_rt::test]
async fn an_aborted_node_still_kills_its_process() {
    // Brutal: the host drops the node's future at once, without the stop
    // signal or its grace period, and the drop guard must kill the process.
    let cmd = Command::new("sh")
        .args([
            "-c",
            "trap '' TERM; echo up; while true; do sleep 0.05; done",
        ])
        .grace(Duration::from_secs(30));
    let signals = cmd.signals();
    let (sink, mut feed) = transitions();
    let sup = builder().metrics(sink).start(move |ctx: Context| {
        let child = Child::new("p", cmd.clone()).shutdown(Shutdown::Brutal);
        async move {
            ctx.run_group(Group::new().child(child)).await?;
            serve(&ctx).await
        }
    });
    await_state(&mut feed, "root.p", NodeState::Healthy, 1).await;
    let pid = signals.pid().unwrap();
    assert!(alive(pid));
    let t = std::time::Instant::now();
    sup.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "aborted, not waited for the grace period"
    );
    assert_eq!(state(&sup, "root.p").await, NodeState::Cancelled);
    assert!(
        eventually(|| not_running(pid)),
        "the process was killed when its node was aborted"
    );
}

#[actix_rt::test]
async fn an_exit_is_reported_even_if_a_grandchild_keeps_the_pipes_open() {
    // The shell exits at once; its background child inherits stdout.
    let cmd = Command::new("sh").args(["-c", "sleep 3 & echo bye; exit 4"]);
    let (sup, _, mut feed) = start(cmd);
    await_state(&mut feed, "root.p", NodeState::Dead, 1).await;
    let reason = info(&sup, "root.p").await.last_error.unwrap();
    assert!(reason.contains("exit status: 4"), "{reason}");
    assert!(raw(&sup, "root.p").contains(&"bye".to_string()));
    sup.shutdown().await;
}

/// Clones of one command run under two nodes: each node has its own process
/// and its own entry in the shared signal handle, and one node's exit does
/// not forget the other's process.
#[actix_rt::test]
async fn clones_under_two_nodes_keep_their_own_processes() {
    let cmd = Command::new("sleep").arg("300");
    let signals = cmd.signals();
    let (sink, mut feed) = transitions();
    let sup = builder()
        .backoff(backoff_ms(50))
        .metrics(sink)
        .start(move |ctx: Context| {
            let cmd = cmd.clone();
            async move {
                ctx.run("a", cmd.clone()).await?;
                ctx.run("b", cmd).await?;
                serve(&ctx).await
            }
        });
    // Both are Healthy once spawned, in their first poll.
    sup.wait_settled().await;
    let (a, b) = (signals.node("root.a"), signals.node("root.b"));
    let (pa, pb) = (a.pid().unwrap(), b.pid().unwrap());
    assert_ne!(pa, pb);
    assert!(alive(pa) && alive(pb));
    assert_eq!(
        signals.pid(),
        None,
        "two run: the unnarrowed pid is ambiguous"
    );
    assert_eq!(
        signals.pids(),
        [("root.a".to_string(), pa), ("root.b".to_string(), pb)]
    );
    // b's process is killed: b dies and restarts; a keeps its process.
    b.send(libc::SIGKILL).unwrap();
    await_state(&mut feed, "root.b", NodeState::Dead, 1).await;
    assert_eq!(a.pid(), Some(pa), "b's exit left a's entry alone");
    await_state(&mut feed, "root.b", NodeState::Healthy, 1).await;
    let pb2 = b.pid().unwrap();
    assert_ne!(pb2, pb);
    assert!(alive(pa) && alive(pb2));
    sup.shutdown().await;
    assert!(signals.pids().is_empty());
}

/// A grace period longer than the supervisor's shutdown timeout is honoured:
/// the process's SIGTERM handler gets to finish its cleanup.
#[actix_rt::test]
async fn a_grace_beyond_the_shutdown_timeout_is_honoured() {
    let marker = std::env::temp_dir().join(format!(
        "actix-supervisor-grace-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    let script = format!(
        "trap 'sleep 0.3; echo cleaned > \"{}\"; exit 0' TERM; echo up; while true; do sleep 0.05; done",
        marker.display()
    );
    let cmd = Command::new("sh")
        .args(["-c", &script])
        .ready_when(|l| l == "up")
        .grace(Duration::from_secs(10));
    let short = builder().shutdown_timeout(Duration::from_millis(100));
    let (sup, _signals, mut feed) = start_with(short, cmd);
    await_state(&mut feed, "root.p", NodeState::Healthy, 1).await;
    sup.shutdown().await;
    assert_eq!(state(&sup, "root.p").await, NodeState::Cancelled);
    let cleaned = std::fs::read_to_string(&marker);
    let _ = std::fs::remove_file(&marker);
    assert_eq!(cleaned.unwrap_or_default().trim(), "cleaned");
}

/// The fault storm's orphan check finds a live process by the mark in its
/// environment, and stops finding it once it is gone (not by pid, which a
/// long run may see reused).
#[test]
fn the_storm_orphan_check_finds_marked_processes_and_forgets_dead_ones() {
    use common::storm::{orphans, MARK};
    let mark = format!("orphan-check-{}", std::process::id());
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .env(MARK, &mark)
        .spawn()
        .expect("spawn sleep");
    let pid = child.id().to_string();
    let mine = |found: &[String]| found.iter().any(|f| f.starts_with(&format!("{pid}:")));
    assert!(
        mine(&orphans(&mark, Duration::ZERO)),
        "a live marked process is an orphan"
    );
    child.kill().expect("kill sleep");
    child.wait().expect("reap sleep");
    assert!(
        !mine(&orphans(&mark, Duration::ZERO)),
        "a reaped process is not"
    );
}
