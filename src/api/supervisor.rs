//! [`Supervisor`], the handle on a running tree. It reaches the processor
//! through [`Request`]s only; the builder that starts a tree is in
//! `src/builder.rs`.

#[cfg(feature = "prometheus")]
use std::sync::Mutex;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use actix::Recipient;
use futures::channel::oneshot;

use crate::api::context::Context;
use crate::api::context::HandleParts;
use crate::api::panics::PanicSlot;
use crate::api::runnable::DynamicRequest;
#[cfg(unix)]
use crate::api::signals::TerminationSignals;
use crate::api::wire::protocol::{Extras, Request};
use crate::model::error::{NotReady, RunError};
use crate::model::health::{Liveness, Readiness};
use crate::model::logtree::LogTree;
use crate::model::read::query::{Query, Selection};
use crate::model::records::{Counts, Ended, NodeInfo};
use crate::model::tree::ROOT_NAME;
use crate::model::voice::{Said, Voice};

/// A handle on a running supervision tree. Cheap to clone.
///
/// Dropping every handle does not stop the tree: a service keeps running
/// until [`shutdown`](Self::shutdown) is called or its actix System stops.
///
/// ```
/// use actix_supervisor::{Context, NodeState, RunResult, Signal, Supervisor};
///
/// async fn root(ctx: Context) -> RunResult {
///     ctx.signal(Signal::Healthy)?;
///     ctx.cancelled().await;
///     Ok(())
/// }
///
/// actix_rt::System::new().block_on(async {
///     let sup = Supervisor::start(root);
///     sup.wait_settled().await;
///     assert_eq!(sup.snapshot().await[0].state, NodeState::Healthy);
///     sup.shutdown().await;
///     assert!(sup.live_runnables().await.is_empty());
/// });
/// ```
#[derive(Clone)]
pub struct Supervisor {
    processor: Recipient<Request>,
    /// Where [`Dynamic`](crate::Dynamic) handles made from this one send.
    pub(crate) dynamic: Recipient<DynamicRequest>,
    panic: PanicSlot,
    logs: LogTree,
    extras: Arc<Extras>,
    /// Made inside the tree (`Context::supervisor`): see [`shutdown`](Self::shutdown).
    inside: bool,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("connected", &self.processor.connected())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    pub(crate) fn from_parts(parts: HandleParts, logs: LogTree, inside: bool) -> Supervisor {
        Supervisor {
            processor: parts.requests,
            dynamic: parts.dynamic,
            panic: parts.panic,
            logs,
            extras: parts.extras,
            inside,
        }
    }

    /// The Prometheus registry the supervisor records in, when it was built
    /// with [`prometheus()`](crate::SupervisorBuilder::prometheus): add your
    /// own families to it, or serve it yourself.
    #[cfg(feature = "prometheus")]
    pub fn registry(&self) -> Option<Arc<Mutex<prometheus_client::registry::Registry>>> {
        self.extras.registry.clone()
    }

    /// Asks the processor, after delivering what this thread holds (see
    /// `api/wire/inbox.rs`): the answer reflects every report made before it. `None`
    /// when the processor is gone.
    async fn ask<T>(&self, request: impl FnOnce(oneshot::Sender<T>) -> Request) -> Option<T> {
        crate::api::wire::inbox::release_held();
        let (tx, rx) = oneshot::channel();
        self.processor.do_send(request(tx));
        rx.await.ok()
    }

    /// The tree's logs: every node's entries by DN, and the supervisor's own
    /// at `supervisor`.
    pub fn logs(&self) -> &LogTree {
        &self.logs
    }

    /// Resolves once the tree has been quiet for the settle window (20 ms by
    /// default), every started runnable has been polled at least once, and
    /// every `run_group` caller has resumed after its answer. Pending backoff
    /// timers do not hold it. Meant for tests (the `test-util` feature).
    #[cfg(feature = "test-util")]
    pub async fn wait_settled(&self) {
        let _ = self.ask(Request::WaitSettled).await;
        self.raise_panic();
    }

    /// The DNs of every NEW or HEALTHY node, sorted.
    pub async fn live_runnables(&self) -> Vec<String> {
        let live = self.ask(Request::LiveRunnables).await.unwrap_or_default();
        self.raise_panic();
        live
    }

    /// Every node of the tree, sorted by DN. See [`query`](Self::query)
    /// for what a snapshot of a large tree promises, and for a part of it.
    pub async fn snapshot(&self) -> Vec<NodeInfo> {
        let nodes = self.ask_query(Query::new()).await;
        self.raise_panic();
        nodes.map(|s| s.nodes).unwrap_or_default()
    }

    /// Whether the supervisor is alive: its processor answers within
    /// `within` and is not shutting down. What a liveness probe (`/healthz`)
    /// should ask: the processor answers from its mailbox in O(1), so no
    /// answer in time means it is wedged. A node being down does not make
    /// it unalive (an orchestrator restarting the process would not help),
    /// except a node marked
    /// [`heartbeat_affects_liveness`](crate::Child::heartbeat_affects_liveness)
    /// that missed its heartbeat and has not been HEALTHY since
    /// ([`Liveness::Hung`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use actix_supervisor::{Context, Liveness, RunResult, Signal, Supervisor};
    /// # #[actix_rt::main] async fn main() {
    /// let sup = Supervisor::start(|ctx: Context| async move {
    ///     ctx.signal(Signal::Healthy)?;
    ///     ctx.cancelled().await;
    ///     RunResult::Ok(())
    /// });
    /// assert_eq!(sup.liveness(Duration::from_millis(500)).await, Liveness::Alive);
    /// sup.shutdown().await;
    /// assert_eq!(sup.liveness(Duration::from_millis(500)).await, Liveness::ShuttingDown);
    /// # }
    /// ```
    pub async fn liveness(&self, within: Duration) -> Liveness {
        match tokio::time::timeout(within, self.ask(Request::Running)).await {
            Ok(Some(alive)) => alive,
            Ok(None) => Liveness::Stopped,
            Err(_) => Liveness::Wedged,
        }
    }

    /// Whether the service is ready for traffic, and if not, why: what a
    /// readiness probe (`/readyz`) should ask. Not while draining or
    /// shutting down; not while a node that affects readiness
    /// ([`Child::affects_readiness`](crate::Child::affects_readiness)) is
    /// not HEALTHY (or DONE), or waits out a backoff, for longer than
    /// `grace` (a node that has never been up is never graced). O(1) while
    /// the service is ready; otherwise it walks the tree to list what is
    /// not (in slices: see [`query`](Self::query)).
    pub async fn readiness(&self, grace: Duration) -> Readiness {
        let mut r = Readiness::default();
        if self.is_draining().await {
            r.draining = true;
            return r;
        }
        match self.ask_query(Query::unready(grace)).await {
            Ok(s) => {
                r.ready = s.nodes.is_empty();
                r.not_ready = s.nodes;
            }
            // Gone: not ready, and nothing to list.
            Err(_) => r.draining = true,
        }
        r
    }

    /// Resolves once the service is ready, as `/readyz` means it (no
    /// grace): running, not draining, the root HEALTHY and every node that
    /// affects readiness HEALTHY or DONE and not waiting out a backoff. For
    /// `main` to wait before it announces the service, and for tests.
    /// Waits without polling (the processor answers when its tally says
    /// so). After `within`, an error naming every node that is not ready,
    /// with its state and last error.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use actix_supervisor::{Context, RunResult, Signal, Supervisor};
    /// # #[actix_rt::main] async fn main() {
    /// let sup = Supervisor::start(|ctx: Context| async move {
    ///     ctx.signal(Signal::Healthy)?;
    ///     ctx.cancelled().await;
    ///     RunResult::Ok(())
    /// });
    /// sup.wait_ready(Duration::from_secs(10)).await.expect("up");
    /// # sup.shutdown().await;
    /// # }
    /// ```
    pub async fn wait_ready(&self, within: Duration) -> Result<(), NotReady> {
        let answered = tokio::time::timeout(within, self.ask(Request::WhenReady)).await;
        self.raise_panic();
        if let Ok(Some(())) = answered {
            return Ok(());
        }
        let readiness = self.readiness(Duration::ZERO).await;
        match readiness.ready {
            true => Ok(()),
            false => Err(NotReady {
                waited: within,
                readiness,
            }),
        }
    }

    /// Resolves once the server node at `dn` ([`web::server`](crate::web))
    /// listens, with where (with port 0, the port it got): how `main` or a
    /// test learns the port without polling. [`RunError::NotFound`] when no
    /// such node will be started: a name missing under a node that is past
    /// its set-up (it signalled Healthy), or a DN not under `root`;
    /// [`RunError::ShutDown`] once the supervisor shuts down. A node that
    /// is there but never listens keeps it waiting: bound it with
    /// `tokio::time::timeout`.
    pub async fn wait_addrs(&self, dn: &str) -> Result<Vec<std::net::SocketAddr>, RunError> {
        let dn = dn.to_string();
        let gone = RunError::ShutDown { dn: dn.clone() };
        let res = self
            .ask(|reply| Request::WhenListening { dn, reply })
            .await
            .unwrap_or(Err(gone));
        self.raise_panic();
        res
    }

    /// Every node of the subtree at `dn` (that node included), sorted by DN;
    /// `None` when no node has that DN.
    pub async fn snapshot_of(&self, dn: &str) -> Option<Vec<NodeInfo>> {
        let nodes = self.ask_query(Query::new().dn(dn)).await;
        self.raise_panic();
        nodes.ok().map(|s| s.nodes)
    }

    /// Where the server node at `dn` listens now (see
    /// [`NodeInfo::addrs`]): empty while it does not, or when no node has
    /// that DN. With port 0, this is how a test learns the port.
    pub async fn addrs(&self, dn: &str) -> Vec<std::net::SocketAddr> {
        let top = self.ask_query(Query::new().dn(dn).depth(0).limit(1)).await;
        top.ok()
            .and_then(|s| s.nodes.into_iter().next())
            .map(|n| n.addrs)
            .unwrap_or_default()
    }

    /// The nodes `q` selects (a subtree, some levels, some states, a
    /// limit), sorted by DN. Errors: [`RunError::NotFound`] when no node
    /// has the query's DN, [`RunError::ShutDown`] when the supervisor has
    /// ended.
    ///
    /// **Consistency.** The processor reads the tree a slice of about a
    /// thousand nodes at a time and serves the tree's reports between
    /// slices, so that a large snapshot never delays a repair for long. A
    /// tree that fits in one slice is read in one turn: its snapshot is
    /// exact, one instant. For a larger one each record is consistent (read
    /// in one turn), and the records are in DN order, each node once, but
    /// they are not all of the same instant: a node added or removed while
    /// the walk is under way may be missing or present.
    ///
    /// ```
    /// # use actix_supervisor::{Context, Query, RunResult, Signal, Supervisor};
    /// # #[actix_rt::main] async fn main() {
    /// # let sup = Supervisor::start(|ctx: Context| async move {
    /// #     ctx.signal(Signal::Healthy)?; ctx.cancelled().await; RunResult::Ok(()) });
    /// # sup.wait_settled().await;
    /// let troubled = sup.query(&Query::new().not_healthy().limit(1000)).await.unwrap();
    /// assert!(troubled.nodes.is_empty() && !troubled.truncated);
    /// # sup.shutdown().await;
    /// # }
    /// ```
    pub async fn query(&self, q: &Query) -> Result<Selection, RunError> {
        let res = self.ask_query(q.clone()).await;
        self.raise_panic();
        res
    }

    async fn ask_query(&self, query: Query) -> Result<Selection, RunError> {
        let gone = RunError::ShutDown {
            dn: query.dn.clone().unwrap_or_else(|| ROOT_NAME.into()),
        };
        let selected = self
            .ask(|reply| Request::Query { query, reply })
            .await
            .ok_or(gone)??;
        // Joined here, on the caller's thread rather than the processor's.
        let mut nodes = Vec::with_capacity(selected.chunks.iter().map(Vec::len).sum());
        for chunk in selected.chunks {
            nodes.extend(chunk);
        }
        let mut out = Selection::default();
        (out.nodes, out.truncated) = (nodes, selected.truncated);
        Ok(out)
    }

    /// The tree as indented text, like `systemctl status`: see
    /// [`render::TextTree`](crate::model::read::render::TextTree).
    pub async fn render_text(&self) -> String {
        crate::model::read::render::TextTree::new(&self.snapshot().await).to_string()
    }

    /// A summary: nodes by state, how many wait out a backoff or are
    /// stalled, restarts in the last minute.
    pub async fn counts(&self) -> Counts {
        let counts = self.ask(Request::Counts).await.unwrap_or_default();
        self.raise_panic();
        counts
    }

    /// Restarts the node at `dn` on purpose (to reload its configuration,
    /// say): its current incarnation is cancelled and it is started again at
    /// once, as the unit its group's strategy defines (a one-for-all group
    /// restarts whole). No backoff, not counted against any restart
    /// intensity; logged as "restarted on request" and reported to the sinks
    /// as an exit of kind [`ExitKind::Restarted`](crate::ExitKind::Restarted).
    /// Resolves once the node is stopping. Errors: [`RunError::NotFound`]
    /// (no node has that DN), [`RunError::NotRunning`] (it is not running:
    /// waiting out a backoff, exited, or the supervisor is shutting down).
    /// A temporary node is stopped and, being temporary, not started again.
    pub async fn restart(&self, dn: &str) -> Result<(), RunError> {
        let dn = dn.to_string();
        let not_running = RunError::NotRunning { dn: dn.clone() };
        let res = self.ask(|reply| Request::Restart { dn, reply }).await;
        self.raise_panic();
        res.unwrap_or(Err(not_running))
    }

    /// Has the supervisor say `said` (an operator's action from the status
    /// page): its log line, its log tree at `supervisor`, its tracing event.
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn say(&self, said: Said) {
        self.processor.do_send(Request::Say(said));
    }

    /// Cancels the whole tree and resolves once nothing is live. Nothing is
    /// restarted any more. A runnable still running `shutdown_timeout` after
    /// its cancellation is aborted. Calling it again is harmless.
    ///
    /// **From inside the tree** (a handle from
    /// [`Context::supervisor`](crate::Context::supervisor), as a runnable or
    /// a handler of a supervised server holds), it resolves as soon as the
    /// shutdown has begun: waiting for the tree to drain would wait for the
    /// caller itself. The caller's node is cancelled with the rest; a
    /// runnable returns on [`ctx.cancelled()`](crate::Context::cancelled),
    /// and the shutdown ends promptly and clean. Await
    /// [`join`](Self::join) on an outside handle for the end.
    ///
    /// ```
    /// # use actix_supervisor::{Context, Ended, RunResult, Signal, Supervisor};
    /// # #[actix_rt::main] async fn main() {
    /// let sup = Supervisor::start(|ctx: Context| async move {
    ///     ctx.signal(Signal::Healthy)?;
    ///     // The work is over: stop the whole service from inside.
    ///     ctx.supervisor().shutdown().await;
    ///     ctx.cancelled().await;
    ///     RunResult::Ok(())
    /// });
    /// assert_eq!(sup.join().await, Ended::ShutDown);
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        if self.inside {
            let _ = self.ask(Request::BeginStop).await;
            return self.raise_panic();
        }
        let _ = self.ask(Request::Stop).await;
        self.raise_panic();
    }

    /// Resolves once the supervisor has shut down, with why: through
    /// [`shutdown`](Self::shutdown), because it gave up on the root (restart
    /// intensity exceeded), or because a panic was propagated. A service's
    /// `main` can await it to exit when supervision has failed for good.
    pub async fn join(&self) -> Ended {
        let ended = self.ask(Request::Join).await.unwrap_or(Ended::ShutDown);
        self.raise_panic();
        ended
    }

    /// Stops being ready (the status's `/readyz` answers 503) without
    /// stopping anything yet: the first step of a graceful shutdown, so that
    /// load balancers stop sending traffic. See
    /// [`run_until_signal`](Self::run_until_signal).
    pub async fn drain(&self) {
        let _ = self
            .ask(|reply| Request::Drain { start: true, reply })
            .await;
    }

    /// Whether the supervisor is draining or shutting down.
    pub async fn is_draining(&self) -> bool {
        self.ask(|reply| Request::Drain {
            start: false,
            reply,
        })
        .await
        .unwrap_or(true)
    }

    /// Serves until SIGTERM or SIGINT (Unix), then shuts down gracefully:
    /// readiness goes at once ([`drain`](Self::drain)), `drain_delay` passes
    /// (zero is fine under systemd; under Kubernetes a few seconds let the
    /// endpoints be removed before connections close), then
    /// [`shutdown`](Self::shutdown) runs within the stop deadlines. A second
    /// signal meanwhile returns [`Ended::Forced`] at once, for `main` to exit.
    /// If the supervisor ends by itself first (it gave up), that is returned.
    ///
    /// `main` can end with `std::process::exit(ended.exit_code().into())`.
    ///
    /// **Install the handlers first.** Until they are, SIGTERM ends the
    /// process at once, undrained (exit 143): a `main` that awaits its
    /// ports (`wait_addrs`) or readiness before it calls this would lose a
    /// signal sent meanwhile. Build the supervisor with
    /// [`SupervisorBuilder::termination_signals`](crate::SupervisorBuilder::termination_signals)
    /// and the handlers are installed as it starts; this then uses them, so
    /// a signal that came before is acted on at once. Without it, this
    /// installs them when called. Fails only when they cannot be installed.
    #[cfg(unix)]
    pub async fn run_until_signal(&self, drain_delay: Duration) -> std::io::Result<Ended> {
        let installed = self
            .extras
            .signals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let signals = match installed {
            Some(signals) => signals,
            None => TerminationSignals::new()?,
        };
        Ok(self.run_until(signals, drain_delay).await)
    }

    /// [`run_until_signal`](Self::run_until_signal) with signal handlers
    /// installed beforehand (so that no signal sent after
    /// [`TerminationSignals::new`] returns can be missed).
    #[cfg(unix)]
    pub async fn run_until(&self, mut signals: TerminationSignals, drain_delay: Duration) -> Ended {
        let first = tokio::select! {
            name = signals.recv() => name,
            ended = self.join() => return ended,
        };
        let line = format!("{first}: draining for {drain_delay:?}, then shutting down");
        Voice::new(self.logs.clone()).say(Said::note(log::Level::Info, line));
        self.drain().await;
        let graceful = async {
            tokio::time::sleep(drain_delay).await;
            self.shutdown().await;
            self.join().await
        };
        tokio::select! {
            ended = graceful => ended,
            again = signals.recv() => {
                let line = format!("{again} again: giving up on the graceful shutdown");
                Voice::new(self.logs.clone()).say(Said::note(log::Level::Warn, line));
                Ended::Forced
            }
        }
    }

    /// With [`SupervisorBuilder::propagate_panics`], re-raises a runnable's
    /// panic here, on the caller's task.
    fn raise_panic(&self) {
        let msg = self
            .panic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(msg) = msg {
            panic!("{msg}");
        }
    }
}

impl Context {
    /// A handle on the supervisor that runs this node (a cheap clone), for
    /// example to serve its status from inside the tree. Like any handle it
    /// keeps the processor reachable; the tree drops it with the node.
    pub fn supervisor(&self) -> Supervisor {
        Supervisor::from_parts(self.link().handle_parts(), self.logs().clone(), true)
    }
}
