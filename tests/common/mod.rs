//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod heap;
#[cfg(unix)]
pub mod storm;
#[cfg(all(unix, feature = "tracing"))]
pub mod subscriber;

use std::time::Duration;

use actix_supervisor::{
    Backoff, Context, Group, NodeInfo, NodeState, RunResult, Signal, Supervisor, SupervisorBuilder,
};
use tokio::sync::mpsc;

pub fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A deterministic backoff: `ms`, doubling, capped at 8 × `ms`, no jitter.
pub fn backoff_ms(ms: u64) -> Backoff {
    Backoff::default()
        .initial(Duration::from_millis(ms))
        .multiplier(2.0)
        .max(Duration::from_millis(8 * ms))
        .jitter(0.0)
}

/// A builder with a 1 ms backoff, so restarts are quick in real time.
pub fn builder() -> SupervisorBuilder {
    init_log();
    Supervisor::builder()
        .backoff(backoff_ms(1))
        .shutdown_timeout(Duration::from_secs(2))
        .workers(2)
}

/// For the deterministic tests: everything on the test's one arbiter (the
/// test pauses its clock first), a 1 ms backoff without jitter.
pub fn virtual_builder() -> SupervisorBuilder {
    init_log();
    Supervisor::builder()
        .current_arbiter()
        .backoff(backoff_ms(1))
        .shutdown_timeout(Duration::from_secs(2))
}

/// Signals Healthy and serves until cancelled.
/// A supervisor whose root starts `group` on its first incarnation only,
/// then serves.
pub fn root_with(builder: SupervisorBuilder, group: Group) -> Supervisor {
    let group = std::sync::Arc::new(std::sync::Mutex::new(Some(group)));
    builder.start(move |ctx: Context| {
        let group = group.lock().unwrap().take();
        async move {
            if let Some(g) = group {
                ctx.run_group(g).await?;
            }
            serve(&ctx).await
        }
    })
}

pub async fn serve(ctx: &Context) -> RunResult {
    ctx.signal(Signal::Healthy)?;
    ctx.cancelled().await;
    Ok(())
}

/// Waits for cancellation, then returns `Ok(())`: the rest of a runnable
/// that has signalled already (after Done, a runnable may still wait).
pub async fn until_cancelled(ctx: &Context) -> RunResult {
    ctx.cancelled().await;
    Ok(())
}

/// Settles the tree until `dn` shows `n` restarts and is Healthy again (a
/// restart after a backoff, which `wait_settled` does not wait for; 10 s
/// hang guard).
pub async fn until_back(sup: &Supervisor, dn: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        sup.wait_settled().await;
        let node = info(sup, dn).await;
        if (node.state, node.restarts) == (NodeState::Healthy, n) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{node:?}");
        // Let the clock move (a paused one too), so that the hang guard
        // above can fire rather than spin.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits (10 s hang guard) for a log line containing `text`; returns it.
pub async fn said(
    stream: &mut (impl futures::Stream<Item = actix_supervisor::LogEvent> + Unpin),
    text: &str,
) -> String {
    use futures::StreamExt;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap_or_else(|_| panic!("no log line with {text:?} within 10 s"))
            .expect("the log stream ended");
        if let actix_supervisor::LogEvent::Entry(e) = event {
            if e.message.contains(text) {
                return e.message.clone();
            }
        }
    }
}

/// A runnable that signals Healthy and serves until cancelled.
pub fn server() -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send
{
    |ctx: Context| Box::pin(async move { serve(&ctx).await })
}

/// The record of `dn`, which must exist.
pub async fn info(sup: &Supervisor, dn: &str) -> NodeInfo {
    sup.snapshot()
        .await
        .into_iter()
        .find(|n| n.dn == dn)
        .unwrap_or_else(|| panic!("no node {dn}"))
}

pub async fn state(sup: &Supervisor, dn: &str) -> NodeState {
    info(sup, dn).await.state
}

/// A channel of events (`"start root.a"`, ...) that runnables report to.
pub fn events() -> (
    mpsc::UnboundedSender<String>,
    mpsc::UnboundedReceiver<String>,
) {
    mpsc::unbounded_channel()
}

/// Receives the next event, failing the test if none comes within 10 s
/// (a hang guard, not a synchronisation point).
pub async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no event within 10 s")
        .expect("event channel closed")
}

/// The next `n` events, sorted: for events from threads that race each other.
pub async fn next_sorted(rx: &mut mpsc::UnboundedReceiver<String>, n: usize) -> Vec<String> {
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(next(rx).await);
    }
    events.sort();
    events
}

/// Receives events until `want` arrives; returns those seen before it.
pub async fn until(rx: &mut mpsc::UnboundedReceiver<String>, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let e = next(rx).await;
        if e == want {
            return seen;
        }
        seen.push(e);
    }
}

/// A metrics sink that forwards every transition, for tests to wait on.
pub struct Transitions(mpsc::UnboundedSender<(String, NodeState)>);

impl actix_supervisor::Metrics for Transitions {
    fn node_state(&self, dn: &str, state: NodeState) {
        let _ = self.0.send((dn.to_string(), state));
    }
}

pub fn transitions() -> (Transitions, mpsc::UnboundedReceiver<(String, NodeState)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Transitions(tx), rx)
}

/// Waits for `dn` to enter `state` the `nth` time (1-based), with a 10 s hang guard.
pub async fn await_state(
    rx: &mut mpsc::UnboundedReceiver<(String, NodeState)>,
    dn: &str,
    state: NodeState,
    nth: usize,
) {
    let mut seen = 0;
    while seen < nth {
        let (d, s) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{dn} did not become {state} within 10 s"))
            .expect("transitions closed");
        if d == dn && s == state {
            seen += 1;
        }
    }
}

/// The number of threads of this process (Linux: `/proc/self/status`).
pub fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Threads: line")
}

/// Runnables that serve until the test kills them by DN (`kill`: the
/// current incarnation returns an error) or lets them finish (`finish`: it
/// returns `Ok(())`).
#[derive(Clone, Default)]
pub struct Switchboard(
    std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, mpsc::UnboundedSender<Order>>>,
    >,
);

/// What a switchboard runnable is told: how to end, and whom to tell it
/// took the order.
pub struct Order {
    ok: bool,
    ack: tokio::sync::oneshot::Sender<()>,
}

impl Switchboard {
    /// A runnable that registers each incarnation, signals Healthy and
    /// serves until cancelled, killed or finished.
    pub fn runnable(
        &self,
    ) -> impl FnMut(Context) -> futures::future::LocalBoxFuture<'static, RunResult> + Send + Clone
    {
        let board = self.clone();
        move |ctx: Context| {
            let board = board.clone();
            Box::pin(async move {
                let (tx, mut rx) = mpsc::unbounded_channel::<Order>();
                board.0.lock().unwrap().insert(ctx.dn().to_string(), tx);
                ctx.signal(Signal::Healthy)?;
                tokio::select! {
                    _ = ctx.cancelled() => Ok(()),
                    Some(order) = rx.recv() => {
                        // Returned in this same poll: the exit is reported
                        // before the caller's `wait_settled` can see quiet.
                        let _ = order.ack.send(());
                        if order.ok { Ok(()) } else { Err("killed".into()) }
                    }
                }
            })
        }
    }

    /// Kills the running incarnation of `dn` (it returns an error) and
    /// resolves once it has taken the order; `false` if none is registered
    /// or it ended first.
    pub async fn kill(&self, dn: &str) -> bool {
        self.order(dn, false).await
    }

    /// Lets the running incarnation of `dn` finish: it returns `Ok(())`
    /// (DONE for a transient or temporary node). As [`kill`](Self::kill).
    pub async fn finish(&self, dn: &str) -> bool {
        self.order(dn, true).await
    }

    async fn order(&self, dn: &str, ok: bool) -> bool {
        let Some(tx) = self.0.lock().unwrap().remove(dn) else {
            return false;
        };
        let (ack, taken) = tokio::sync::oneshot::channel();
        tx.send(Order { ok, ack }).is_ok() && taken.await.is_ok()
    }
}

/// `METHOD path` over HTTP/1.0 to `addr`: the status code and the body.
pub async fn fetch(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("{method} {path} HTTP/1.0\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok((code, body))
}

/// The messages of the log entries `q` selects, oldest first.
pub fn messages(sup: &Supervisor, q: actix_supervisor::LogQuery) -> Vec<String> {
    sup.logs()
        .backlog(&q)
        .iter()
        .map(|e| e.message.clone())
        .collect()
}
