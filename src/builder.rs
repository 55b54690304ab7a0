//! [`SupervisorBuilder`]: how a tree is set up and started. Starting one
//! makes the worker arbiters, the stall watch and the processor.

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;

use crate::api::context::HandleParts;
use crate::api::runnable::Runnable;
use crate::api::supervisor::Supervisor;
use crate::api::wire::protocol::Extras;
use crate::model::logtree::LogTree;
use crate::model::metrics::Metrics;
use crate::model::policy::{Backoff, Intensity, Restart, Shutdown};
use crate::model::queues::QueueAlarm;
use crate::model::tree::Defaults;
use crate::runtime::processor::{Config, Processor};
use crate::runtime::stall::Watch;
use crate::runtime::workers::Workers;

impl Supervisor {
    /// A builder, to change the defaults.
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder::default()
    }

    /// Starts a tree whose root node (`root`) runs `root`, with the defaults.
    /// See [`SupervisorBuilder::start`].
    pub fn start(root: impl Runnable) -> Supervisor {
        Self::builder().start(root)
    }
}

/// How a [`Supervisor`] is set up.
///
/// ```
/// use std::time::Duration;
/// use actix_supervisor::{Backoff, Context, RunResult, Signal, Supervisor};
///
/// async fn root(ctx: Context) -> RunResult {
///     ctx.signal(Signal::Healthy)?;
///     ctx.cancelled().await;
///     Ok(())
/// }
///
/// actix_rt::System::new().block_on(async {
///     let sup = Supervisor::builder()
///         .backoff(Backoff::default().initial(Duration::from_millis(10)))
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
    start_timeout: Option<Duration>,
    /// The default queue alarm of actor nodes, as asked for.
    queue_alarm: Option<(usize, usize)>,
    extras: Extras,
    /// Install the termination signals' handlers at start.
    install_signals: bool,
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
            .field("start_timeout", &self.start_timeout)
            .field("queue_alarm", &self.queue_alarm)
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
            start_timeout: None,
            queue_alarm: None,
            extras: Extras::default(),
            install_signals: false,
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
    /// [`Ended::GaveUp`](crate::Ended::GaveUp). Default: no limit, as in the reference.
    pub fn max_restarts(mut self, n: u32, within: Duration) -> Self {
        self.intensity = Some(Intensity::new(n, within));
        self
    }

    /// Adds a sink told of every state transition. May be called several times.
    pub fn metrics(mut self, m: impl Metrics) -> Self {
        self.metrics.push(Box::new(m));
        self
    }

    /// How long a runnable may take to return after its context is cancelled
    /// before its future is dropped (and it counts as CANCELLED). Default 5 s.
    /// This is [`Shutdown::Timeout`] for every child that does not choose its
    /// own stop mode ([`Child::shutdown`](crate::Child::shutdown)).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// How long the tree must be quiet for [`Supervisor::wait_settled`].
    /// Default 20 ms. For tests (the `test-util` feature).
    #[cfg(feature = "test-util")]
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

    /// How long a node may stay NEW once its runnable runs, for every child
    /// that does not choose its own ([`Child::start_timeout`](crate::Child::start_timeout)):
    /// a set-up stuck on a connection that never answers then dies, is
    /// reported, and restarts by its policy. Default: none.
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = Some(d);
        self
    }

    /// The queue alarm of every actor node that does not set its own
    /// ([`Child::queue_alarm`](crate::Child::queue_alarm)): on when `high`
    /// messages wait for it, off once fewer than `low` do. Thresholds that
    /// do not satisfy `0 < low < high` are refused when the supervisor
    /// starts: it says so (an error line) and runs without a default.
    /// Default: none.
    pub fn queue_alarm(mut self, high: usize, low: usize) -> Self {
        self.queue_alarm = Some((high, low));
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

    /// Records the supervisor's metrics in a Prometheus registry of its own,
    /// which [`Supervisor::registry`] hands out and the
    /// [`Status`](crate::web::Status) page serves at `/metrics` with no
    /// more wiring: the one line metrics take.
    ///
    /// ```
    /// # use actix_supervisor::{Context, RunResult, Signal, Supervisor};
    /// # #[actix_rt::main] async fn main() {
    /// let sup = Supervisor::builder().prometheus().start(|ctx: Context| async move {
    ///     ctx.signal(Signal::Healthy)?;
    ///     ctx.cancelled().await;
    ///     RunResult::Ok(())
    /// });
    /// assert!(sup.registry().is_some());
    /// # sup.shutdown().await;
    /// # }
    /// ```
    #[cfg(feature = "prometheus")]
    pub fn prometheus(mut self) -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        let sink = crate::prometheus::PrometheusMetrics::new(&mut registry);
        self.extras.registry = Some(Arc::new(std::sync::Mutex::new(registry)));
        self.metrics(sink)
    }

    /// Installs the SIGTERM and SIGINT handlers as the supervisor starts
    /// (Unix), for [`Supervisor::run_until_signal`] to use: a signal that
    /// comes while `main` still awaits its ports or readiness is then
    /// drained as any other, instead of ending the process undrained. The
    /// recommended set-up for a service (see `docs/deploy.md`). A failure
    /// to install them is said in the log, and `run_until_signal` tries
    /// again.
    #[cfg(unix)]
    pub fn termination_signals(mut self) -> Self {
        self.install_signals = true;
        self
    }

    /// Starts the tree: the root node, named `root`, runs `root`.
    ///
    /// # Panics
    /// When called outside a running actix `System` (as `Actor::start` does).
    pub fn start(mut self, root: impl Runnable) -> Supervisor {
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
        let panic: crate::api::panics::PanicSlot = Arc::default();
        let logs = LogTree::new(self.log_capacity);
        #[cfg(unix)]
        if self.install_signals {
            match crate::api::signals::TerminationSignals::new() {
                Ok(signals) => {
                    *self
                        .extras
                        .signals
                        .get_mut()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(signals)
                }
                Err(e) => {
                    let line = format!("cannot install the termination signals' handlers: {e}");
                    crate::model::voice::Voice::new(logs.clone())
                        .say(crate::model::voice::Said::note(log::Level::Error, line));
                }
            }
        }
        let extras = Arc::new(self.extras);
        let config = Config {
            extras: extras.clone(),
            logs: logs.clone(),
            lead_up: self.lead_up,
            backoff: self.backoff,
            defaults: Defaults {
                restart: self.restart,
                shutdown: Shutdown::Timeout(self.shutdown_timeout),
                intensity: self.intensity,
                start_timeout: self.start_timeout,
                queue_alarm: self.queue_alarm.and_then(|(high, low)| {
                    let alarm = QueueAlarm::new(high, low);
                    if alarm.is_none() {
                        let line = format!(
                            "the default queue alarm (high {high}, low {low}) is refused: \
                             the thresholds must satisfy 0 < low < high"
                        );
                        crate::model::voice::Voice::new(logs.clone())
                            .say(crate::model::voice::Said::note(log::Level::Error, line));
                    }
                    alarm
                }),
            },
            propagate_panics: self.propagate_panics,
            settle_window: self.settle_window,
            metrics: self.metrics,
            watch,
            #[cfg(feature = "tracing")]
            span: ::tracing::Span::current(),
        };
        let root: Box<dyn Runnable> = Box::new(root);
        let shared = panic.clone();
        let processor = Processor::start_in_arbiter(&arbiter, move |_| {
            Processor::new(root, config, workers, shared)
        });
        let parts = HandleParts {
            requests: processor.clone().recipient(),
            dynamic: processor.recipient(),
            panic,
            extras,
        };
        Supervisor::from_parts(parts, logs, false)
    }
}
