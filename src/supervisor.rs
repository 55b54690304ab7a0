//! [`Supervisor`], the handle on a running tree, and its [`SupervisorBuilder`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix::{Actor, Addr};
use backoff::ExponentialBackoff;

use crate::logger::Voice;
use crate::logtree::LogTree;
use crate::metrics::Metrics;
use crate::policy::{Backoff, Intensity, Restart, Shutdown};
use crate::processor::{Config, Processor};
use crate::protocol::{CountsMsg, Drain, Join, LiveRunnables, Snapshot, Stop, WaitSettled};
use crate::runnable::Runnable;
use crate::stall::Watch;
use crate::state::{Counts, Ended, NodeInfo};
use crate::tree::Defaults;
use crate::workers::Workers;

/// The backoff of the reference as a `backoff` crate value: 500 ms initial
/// interval, ×1.5, randomisation factor 0.5, capped at 60 s. The builder
/// takes the crate's own [`Backoff`] (whose default is the same) and converts
/// this one.
///
/// ```
/// let b = actix_supervisor::default_backoff();
/// assert_eq!(b.initial_interval, std::time::Duration::from_millis(500));
/// assert_eq!(b.max_elapsed_time, None);
/// ```
pub fn default_backoff() -> ExponentialBackoff {
    ExponentialBackoff {
        initial_interval: Duration::from_millis(500),
        current_interval: Duration::from_millis(500),
        multiplier: 1.5,
        randomization_factor: 0.5,
        max_interval: Duration::from_secs(60),
        max_elapsed_time: None,
        ..ExponentialBackoff::default()
    }
}

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
    processor: Addr<Processor>,
    panic: Arc<Mutex<Option<String>>>,
    logs: LogTree,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("connected", &self.processor.connected())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    pub(crate) fn from_parts(
        processor: Addr<Processor>,
        panic: Arc<Mutex<Option<String>>>,
        logs: LogTree,
    ) -> Supervisor {
        Supervisor {
            processor,
            panic,
            logs,
        }
    }

    /// A builder, to change the defaults.
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder::default()
    }

    /// Starts a tree whose root node (`root`) runs `root`, with the defaults.
    /// See [`SupervisorBuilder::start`].
    pub fn start(root: impl Runnable) -> Supervisor {
        Self::builder().start(root)
    }

    /// A request to the processor, after delivering what this thread holds
    /// (see `inbox.rs`): the answer reflects every report made before it.
    fn ask<M>(&self, msg: M) -> actix::dev::Request<Processor, M>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        Processor: actix::Handler<M>,
    {
        crate::inbox::release_held();
        self.processor.send(msg)
    }

    /// The tree's logs: every node's entries by DN, and the supervisor's own
    /// at `supervisor`.
    pub fn logs(&self) -> &LogTree {
        &self.logs
    }

    /// Resolves once the tree has been quiet for the settle window (20 ms by
    /// default), every started runnable has been polled at least once, and
    /// every `run_group` caller has resumed after its answer. Pending backoff
    /// timers do not hold it. Meant for tests.
    pub async fn wait_settled(&self) {
        let _ = self.ask(WaitSettled).await;
        self.raise_panic();
    }

    /// The DNs of every NEW or HEALTHY node, sorted.
    pub async fn live_runnables(&self) -> Vec<String> {
        let live = self.ask(LiveRunnables).await.unwrap_or_default();
        self.raise_panic();
        live
    }

    /// Every node of the tree, sorted by DN. One message to the processor:
    /// it never holds up repairs for longer than building the list.
    pub async fn snapshot(&self) -> Vec<NodeInfo> {
        let nodes = self
            .ask(Snapshot {
                of: None,
                unready_only: false,
            })
            .await;
        self.raise_panic();
        nodes.ok().flatten().unwrap_or_default()
    }

    /// The nodes that keep the service from being ready, for `/readyz`;
    /// `None` if the processor does not answer.
    #[cfg(feature = "web")]
    pub(crate) async fn unready(&self) -> Option<Vec<NodeInfo>> {
        let of = None;
        let nodes = self.ask(Snapshot {
            of,
            unready_only: true,
        });
        nodes.await.ok().flatten()
    }

    /// Every node of the subtree at `dn` (that node included), sorted by DN;
    /// `None` when no node has that DN.
    pub async fn snapshot_of(&self, dn: &str) -> Option<Vec<NodeInfo>> {
        let of = Some(dn.to_string());
        let nodes = self
            .ask(Snapshot {
                of,
                unready_only: false,
            })
            .await;
        self.raise_panic();
        nodes.ok().flatten()
    }

    /// The tree as indented text, like `systemctl status`: see
    /// [`render::TextTree`](crate::render::TextTree).
    pub async fn render_text(&self) -> String {
        crate::render::TextTree::new(&self.snapshot().await).to_string()
    }

    /// A summary: nodes by state, how many wait out a backoff or are
    /// stalled, restarts in the last minute.
    pub async fn counts(&self) -> Counts {
        let counts = self.ask(CountsMsg).await.unwrap_or_default();
        self.raise_panic();
        counts
    }

    /// Cancels the whole tree and resolves once nothing is live. Nothing is
    /// restarted any more. A runnable still running `shutdown_timeout` after
    /// its cancellation is aborted. Calling it again is harmless.
    pub async fn shutdown(&self) {
        let _ = self.ask(Stop).await;
        self.raise_panic();
    }

    /// Resolves once the supervisor has shut down, with why: through
    /// [`shutdown`](Self::shutdown), because it gave up on the root (restart
    /// intensity exceeded), or because a panic was propagated. A service's
    /// `main` can await it to exit when supervision has failed for good.
    pub async fn join(&self) -> Ended {
        let ended = self.ask(Join).await.unwrap_or(Ended::ShutDown);
        self.raise_panic();
        ended
    }

    /// Stops being ready (the status's `/readyz` answers 503) without
    /// stopping anything yet: the first step of a graceful shutdown, so that
    /// load balancers stop sending traffic. See
    /// [`run_until_signal`](Self::run_until_signal).
    pub async fn drain(&self) {
        let _ = self.ask(Drain { start: true }).await;
    }

    /// Whether the supervisor is draining or shutting down.
    pub async fn is_draining(&self) -> bool {
        self.ask(Drain { start: false }).await.unwrap_or(true)
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
    /// Fails only when the signal handlers cannot be installed.
    #[cfg(unix)]
    pub async fn run_until_signal(&self, drain_delay: Duration) -> std::io::Result<Ended> {
        let signals = TerminationSignals::new()?;
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
        Voice::new(self.logs.clone()).say(
            log::Level::Info,
            format!("{first}: draining for {drain_delay:?}, then shutting down"),
        );
        self.drain().await;
        let graceful = async {
            tokio::time::sleep(drain_delay).await;
            self.shutdown().await;
            self.join().await
        };
        tokio::select! {
            ended = graceful => ended,
            again = signals.recv() => {
                Voice::new(self.logs.clone()).say(
                    log::Level::Warn,
                    format!("{again} again: giving up on the graceful shutdown"),
                );
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

/// SIGTERM and SIGINT, listened for from [`new`](Self::new) on (Unix).
#[cfg(unix)]
#[derive(Debug)]
pub struct TerminationSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl TerminationSignals {
    /// Installs the handlers: from now on these signals no longer end the
    /// process by themselves. Needs a running tokio (actix) runtime.
    pub fn new() -> std::io::Result<TerminationSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(TerminationSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal's name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// How a [`Supervisor`] is set up.
///
/// ```
/// use std::time::Duration;
/// use actix_supervisor::{default_backoff, Context, RunResult, Signal, Supervisor};
///
/// async fn root(ctx: Context) -> RunResult {
///     ctx.signal(Signal::Healthy)?;
///     ctx.cancelled().await;
///     Ok(())
/// }
///
/// actix_rt::System::new().block_on(async {
///     let sup = Supervisor::builder()
///         .backoff(backoff::ExponentialBackoff {
///             initial_interval: Duration::from_millis(10),
///             ..default_backoff()
///         })
///         .shutdown_timeout(Duration::from_secs(1))
///         .workers(2)
///         .start(root);
///     sup.shutdown().await;
/// });
/// ```
pub struct SupervisorBuilder {
    propagate_panics: bool,
    backoff: Backoff,
    restart: Restart,
    intensity: Option<Intensity>,
    metrics: Vec<Box<dyn Metrics>>,
    shutdown_timeout: Duration,
    settle_window: Duration,
    placement: Placement,
    log_capacity: usize,
    lead_up: usize,
    stall: Option<Duration>,
}

impl std::fmt::Debug for SupervisorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorBuilder")
            .field("propagate_panics", &self.propagate_panics)
            .field("backoff", &self.backoff)
            .field("restart", &self.restart)
            .field("intensity", &self.intensity)
            .field("metrics", &self.metrics.len())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("settle_window", &self.settle_window)
            .field("log_capacity", &self.log_capacity)
            .field("lead_up", &self.lead_up)
            .field("stall", &self.stall)
            .finish_non_exhaustive()
    }
}

enum Placement {
    Workers(usize),
    Current,
}

impl Default for SupervisorBuilder {
    fn default() -> Self {
        SupervisorBuilder {
            propagate_panics: false,
            backoff: Backoff::default(),
            restart: Restart::Permanent,
            intensity: None,
            metrics: Vec::new(),
            shutdown_timeout: Duration::from_secs(5),
            settle_window: Duration::from_millis(20),
            placement: Placement::Workers(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            log_capacity: 8192,
            lead_up: 10,
            stall: Some(Duration::from_secs(1)),
        }
    }
}

impl SupervisorBuilder {
    /// `false` (the default): a panic in a runnable is caught and is a death
    /// like any other. `true`: it is still a death, but the supervisor then
    /// shuts the tree down and re-raises the panic from the next call on a
    /// [`Supervisor`] handle that completes (`wait_settled`, `snapshot`, ...),
    /// so that a test fails where it awaits the supervisor.
    pub fn propagate_panics(mut self, on: bool) -> Self {
        self.propagate_panics = on;
        self
    }

    /// The backoff DEAD nodes wait out before a restart. Takes a
    /// [`Backoff`], or a `backoff::ExponentialBackoff` (its
    /// `max_elapsed_time` is ignored: bound restarts with
    /// [`max_restarts`](Self::max_restarts)).
    pub fn backoff(mut self, b: impl Into<Backoff>) -> Self {
        self.backoff = b.into();
        self
    }

    /// The restart type of every child that does not choose its own
    /// ([`Child::restart`](crate::Child::restart)). Default
    /// [`Restart::Permanent`].
    pub fn default_restart(mut self, r: Restart) -> Self {
        self.restart = r;
        self
    }

    /// The restart intensity of every node that does not choose its own
    /// ([`Child::max_restarts`](crate::Child::max_restarts)), and of the
    /// supervisor itself for its restarts of the root: more than `n` restarts
    /// within `within` and the parent gives up (see [`Intensity`]). When the
    /// supervisor gives up, it shuts down and [`Supervisor::join`] returns
    /// [`Ended::GaveUp`]. Default: no limit, as in the reference.
    pub fn max_restarts(mut self, n: u32, within: Duration) -> Self {
        self.intensity = Some(Intensity {
            max_restarts: n,
            within,
        });
        self
    }

    /// Adds a sink told of every state transition. May be called several times.
    pub fn metrics(mut self, m: impl Metrics) -> Self {
        self.metrics.push(Box::new(m));
        self
    }

    /// How long a runnable may take to return after its context is cancelled
    /// before its future is dropped (and it counts as CANCELED). Default 5 s.
    /// This is [`Shutdown::Timeout`] for every child that does not choose its
    /// own stop mode ([`Child::shutdown`](crate::Child::shutdown)).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// How long the tree must be quiet for [`Supervisor::wait_settled`].
    /// Default 20 ms.
    pub fn settle_window(mut self, d: Duration) -> Self {
        self.settle_window = d;
        self
    }

    /// Hosts the nodes on `n` worker arbiters (threads), at least one. The
    /// default is one per core. The processor always has an arbiter of its own.
    ///
    /// Groups are placed round-robin, a group's members together in runs of
    /// 64: siblings stop and restart without crossing threads, and a wide
    /// group still uses every worker. Work that should run in parallel goes
    /// in separate groups (or a group wider than 64).
    pub fn workers(mut self, n: usize) -> Self {
        self.placement = Placement::Workers(n.max(1));
        self
    }

    /// Runs the processor and every node on the arbiter that calls
    /// [`start`](Self::start) instead of on threads of their own. Nothing then
    /// isolates supervision from a runnable that hogs the thread, but the whole
    /// tree follows that runtime's clock, so tests can use
    /// `tokio::time::pause` and virtual time.
    pub fn current_arbiter(mut self) -> Self {
        self.placement = Placement::Current;
        self
    }

    /// How many leveled entries (and, apart, raw lines) the log tree keeps per
    /// DN. Default 8192.
    pub fn log_capacity(mut self, entries: usize) -> Self {
        self.log_capacity = entries.max(1);
        self
    }

    /// How many of a node's last log lines the supervisor adds to the report
    /// of its death. Default 10.
    pub fn death_lead_up(mut self, lines: usize) -> Self {
        self.lead_up = lines;
        self
    }

    /// The stall watch: a runnable whose future runs longer than `threshold`
    /// without yielding blocks its worker thread and every node on it. The
    /// supervisor logs a warning naming it ("root.db has blocked worker 1
    /// for 1.4 s"), marks it in the snapshot (`stalled_since`), counts it,
    /// places new nodes on other workers meanwhile, and clears all that once
    /// the worker moves again. Default 1 s; `None` turns it off. (Not with
    /// [`current_arbiter`](Self::current_arbiter), where the watch would be
    /// blocked too.)
    pub fn stall_watch(mut self, threshold: Option<Duration>) -> Self {
        self.stall = threshold;
        self
    }

    /// Starts the tree: the root node, named `root`, runs `root`.
    ///
    /// # Panics
    /// When called outside a running actix `System` (as `Actor::start` does).
    pub fn start(self, root: impl Runnable) -> Supervisor {
        let (arbiter, workers, watch) = match self.placement {
            Placement::Workers(n) => {
                let watch = self.stall.map(|t| Watch::new(t, n.max(1)));
                let (arbiter, workers) = Workers::spawn(n, watch.as_ref());
                (arbiter, workers, watch)
            }
            Placement::Current => {
                let (arbiter, workers) = Workers::current();
                (arbiter, workers, None)
            }
        };
        let panic = Arc::new(Mutex::new(None));
        let logs = LogTree::new(self.log_capacity);
        let config = Config {
            logs: logs.clone(),
            lead_up: self.lead_up,
            backoff: self.backoff,
            defaults: Defaults {
                restart: self.restart,
                shutdown: Shutdown::Timeout(self.shutdown_timeout),
                intensity: self.intensity,
            },
            propagate_panics: self.propagate_panics,
            settle_window: self.settle_window,
            metrics: self.metrics,
            watch,
        };
        let root: Box<dyn Runnable> = Box::new(root);
        let shared = panic.clone();
        let processor = Processor::start_in_arbiter(&arbiter, move |_| {
            Processor::new(root, config, workers, shared)
        });
        Supervisor {
            processor,
            panic,
            logs,
        }
    }
}
