//! The processor: the actor that owns the tree and applies every change to it.
//!
//! Everything that changes the tree arrives here as a message, in order:
//! a node's exit ([`Exited`]), an accepted signal ([`SignalMsg`]), a request
//! for children ([`StartGroup`]). After each change the processor runs the
//! restart sweep over the groups the change touched and restarts what it
//! returns, so a repair never waits for a timer. A slow timer runs the full
//! sweep as a safety net. Node hosts run the runnables; the processor only
//! decides and sends them [`Start`].

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Handler, SpawnHandle, StreamHandler};
use futures::channel::oneshot;
use log::Level;
use tokio::time::Instant;

use crate::api::context::{Link, StartGroup};
use crate::api::panics::PanicSlot;
use crate::api::runnable::Runnable;
use crate::api::wire::inbox::{Inbox, Report};
use crate::api::wire::protocol::Extras;
use crate::api::wire::settle::{Settle, Starting};
use crate::model::error::RunError;
use crate::model::logtree::LogTree;
use crate::model::metrics::Metrics;
use crate::model::plan::Jitter;
use crate::model::policy::Backoff;
use crate::model::read::view::{LastMinute, View};
use crate::model::records::{Counts, Ended};
use crate::model::repairs::Repairs;
use crate::model::sweep::sweep;
use crate::model::tree::{Defaults, Tree};
use crate::model::voice::{Said, Voice};
use crate::runtime::outbox::Outbox;
use crate::runtime::sinks::Sinks;
use crate::runtime::stall::{Stalls, Watch};
use crate::runtime::workers::Workers;

mod beside;
mod dynamic;
mod intake;
mod launch;
mod lease;
mod lifecycle;
mod queues;
mod repair;
mod requests;
mod waiters;
mod walks;

use beside::Beside;

/// The safety sweep runs at most once per this many times the processor
/// time its last run took.
const SAFETY_SWEEP_SHARE: u32 = 50;

/// How often the safety sweep double-checks the incremental one.
const SAFETY_SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// The supervisor's settings, fixed at start.
pub(crate) struct Config {
    /// What every handle shares (see [`Extras`]).
    pub extras: Arc<Extras>,
    pub backoff: Backoff,
    /// What a child's spec leaves unset.
    pub defaults: Defaults,
    pub propagate_panics: bool,
    pub settle_window: Duration,
    pub metrics: Vec<Box<dyn Metrics>>,
    pub logs: LogTree,
    /// How many of a node's last log lines go with its death report.
    pub lead_up: usize,
    /// The stall watch, when on.
    pub watch: Option<Arc<Watch>>,
    /// The span current where the supervisor was started: the root
    /// incarnations' parent.
    #[cfg(feature = "tracing")]
    pub span: ::tracing::Span,
}

/// Where the supervisor is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Life {
    Running,
    /// Shutting down: everything is cancelled, nothing restarts.
    Stopping,
    /// Nothing is live and nothing will be.
    Finished,
}

pub(crate) struct Processor {
    tree: Tree,
    /// The hosts, and what goes to the workers once the current message
    /// is handled (see [`Outbox::flush`]).
    outbox: Outbox,
    config: Config,
    /// What the supervisor says (see `model/voice.rs`).
    voice: Voice,
    /// Who is told what happens.
    sinks: Sinks,
    workers: Workers,
    /// Our own address, handed to contexts and hosts. Dropped when finished
    /// so that the processor can stop once nobody else holds it.
    /// Shared rather than cloned: every clone of an actix address allocates.
    me: Option<Link>,
    root_runnable: Option<Box<dyn Runnable>>,
    settle: Settle,
    life: Life,
    /// Why the supervisor is ending, once it is.
    ending: Option<Ended>,
    /// Resolved when the life is Finished.
    finish_waiters: Vec<oneshot::Sender<Ended>>,
    jitter: Jitter,
    /// What it keeps about a few nodes beside the tree (pids, addresses,
    /// gates, terminations waited for, spans).
    beside: Beside,
    /// Restarts per second over the last minute, for the summary.
    restarts_last_minute: LastMinute,
    repairs: Repairs,
    /// When the one-second timer last ran, for the processor's lag.
    last_second: Instant,
    /// The clock as read for the message being handled (see `read_clock`).
    clock: Instant,
    /// The DNs of removed dynamic children whose logs are kept, oldest first.
    removed: dynamic::Removed,
    /// A propagated panic, for the handles to re-raise.
    panic: PanicSlot,
    changed_since_safety_sweep: bool,
    /// The safety sweep visits every node (in slices): it waits until then,
    /// so that it takes at most 1/[`SAFETY_SWEEP_SHARE`] of the processor's
    /// time however large the tree.
    safety_sweep_due: Instant,
    /// Callers waiting for the service to be ready or a node to listen.
    waiters: waiters::Waiters,
    /// Snapshots, queries and the safety sweep under way (see `processor/walks.rs`).
    walks: walks::Walks,
    /// The safety sweep's timer. Cancelled when the life is Finished: a
    /// spawned future keeps an actix actor alive, and the processor must
    /// stop (and stop its arbiter) once the last handle is dropped.
    safety_timer: Option<SpawnHandle>,
    /// The stall watch's timer, likewise cancelled when Finished.
    watch_timer: Option<SpawnHandle>,
    stalls: Stalls,
    /// Not ready for traffic any more because a shutdown is coming (once it
    /// is under way, `life` says so).
    draining: bool,
    /// Nodes aborted at their stop deadline during the shutdown.
    stragglers: Vec<String>,
    /// Where the tree's reports wait (see [`Inbox`]).
    inbox: Arc<Inbox>,
    /// The batch being handled; kept for its capacity.
    batch: Vec<Report>,
    /// The inbox's doorbell, like the timers cancelled when Finished.
    doorbell: Option<SpawnHandle>,
    /// A [`FlushOutbox`] is queued.
    flush_due: bool,
}

/// Sends what the workers have queued; see [`Processor::flush_soon`].
struct FlushOutbox;

impl actix::Message for FlushOutbox {
    type Result = ();
}

impl Handler<FlushOutbox> for Processor {
    type Result = ();
    fn handle(&mut self, _: FlushOutbox, _: &mut Self::Context) {
        self.flush_due = false;
        self.outbox.flush(&self.workers);
    }
}

impl Processor {
    pub fn new(
        root: Box<dyn Runnable>,
        mut config: Config,
        workers: Workers,
        panic: PanicSlot,
    ) -> Processor {
        let settle_window = config.settle_window;
        Processor {
            tree: Tree::new(Default::default(), config.defaults),
            outbox: Outbox::default(),
            voice: Voice::new(config.logs.clone()),
            sinks: Sinks::new(
                std::mem::take(&mut config.metrics),
                Voice::new(config.logs.clone()),
            ),
            config,
            workers,
            me: None,
            root_runnable: Some(root),
            settle: Settle::new(settle_window),
            life: Life::Running,
            ending: None,
            finish_waiters: Vec::new(),
            jitter: Jitter::seeded(),
            beside: Beside::default(),
            removed: dynamic::Removed::default(),
            restarts_last_minute: LastMinute::new(),
            repairs: Repairs::default(),
            last_second: Instant::now(),
            clock: Instant::now(),
            panic,
            changed_since_safety_sweep: false,
            safety_sweep_due: Instant::now(),
            waiters: waiters::Waiters::default(),
            walks: walks::Walks::default(),
            safety_timer: None,
            watch_timer: None,
            stalls: Stalls::default(),
            draining: false,
            stragglers: Vec::new(),
            inbox: Arc::new(Inbox::default()),
            batch: Vec::new(),
            doorbell: None,
            flush_due: false,
        }
    }

    /// A read-only view of the tree for snapshots and summaries.
    fn view(&self) -> View<'_> {
        View {
            tree: &self.tree,
            pids: &self.beside.pids,
            addrs: &self.beside.addrs,
            leases: &self.beside.leases,
            queues: &self.beside.queues,
            overloaded: &self.beside.overloaded,
            blocked_by: self.stalls.blocked_by(),
        }
    }

    fn counts(&self) -> Counts {
        let minute = self.restarts_last_minute.count(Instant::now());
        let mut counts = self.view().counts(minute);
        counts.hung = self.beside.hung.len();
        counts.overloaded = self.beside.overloaded.len();
        counts
    }

    /// Moves the stall flags along (see [`Stalls::update`]).
    fn watch_stalls(&mut self) {
        let Some(watch) = self.config.watch.clone() else {
            return;
        };
        let tree = &self.tree;
        let flips = self.stalls.update(&watch, |k| tree.node(k).map(|n| &*n.dn));
        for flip in flips {
            self.workers.set_blocked(flip.worker, flip.blocked);
            let (Some(message), Some(n)) = (flip.message, self.tree.node(flip.node)) else {
                continue;
            };
            let said = match flip.blocked {
                true => Said::new(Level::Warn, "stalled", message),
                false => Said::new(Level::Info, "unstalled", message),
            };
            self.voice.say(said.dn(&n.dn).incarnation(n.restarts + 1));
        }
    }

    /// Reads the clock once for the message being handled: every change it
    /// makes happens at that instant.
    fn read_clock(&mut self) -> Instant {
        self.clock = Instant::now();
        self.tree.set_now(self.clock);
        self.clock
    }

    /// Runs the sweep over what changed, restarts what it finds, and checks
    /// whether a shutdown has drained.
    fn after_change(&mut self, ctx: &mut actix::Context<Self>) {
        self.propagate();
        self.outbox.flush(&self.workers);
        self.check_drained(ctx);
    }

    /// The sweep and the planner over what changed, until nothing more does.
    fn propagate(&mut self) {
        self.settle.changed(self.clock);
        self.changed_since_safety_sweep = true;
        loop {
            self.tree.advance_stops();
            let dirty = self.tree.take_dirty();
            if dirty.is_empty() {
                break;
            }
            self.remove_finished(&dirty);
            for unit in sweep(&self.tree, dirty) {
                self.repair(unit);
            }
        }
        self.answer_waiters();
    }

    /// Sends what is queued for the workers once the requests already in
    /// the mailbox have been handled: concurrent `start_child` calls then
    /// reach each worker as one batch rather than one message each.
    fn flush_soon(&mut self, ctx: &mut actix::Context<Self>) {
        if !self.flush_due {
            self.flush_due = true;
            ctx.notify(FlushOutbox);
        }
    }

    /// Every second: the sinks' summary, then the safety sweep if anything
    /// changed (and its share of the time allows).
    /// Tells the sinks the tree's summary (every second, and at start, so
    /// that a gauge by state is right from the first scrape).
    fn tell_summary(&self, lag: Duration) {
        if !self.sinks.is_empty() {
            let counts = self.counts();
            self.sinks
                .tell(format_args!("tick"), |m| m.tick(&counts, lag));
        }
    }

    fn every_second(&mut self, ctx: &mut actix::Context<Self>) {
        let now = self.read_clock();
        let lag = now
            .saturating_duration_since(self.last_second)
            .saturating_sub(SAFETY_SWEEP_PERIOD);
        self.last_second = now;
        self.tell_summary(lag);
        self.tell_depths();
        self.close_breakers();
        if !self.changed_since_safety_sweep || now < self.safety_sweep_due {
            return;
        }
        self.changed_since_safety_sweep = false;
        self.begin_sweep(ctx);
    }
}

impl Actor for Processor {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Hosts and contexts report back through this address.
        let me = ctx.address();
        self.me = Some(Link::new(
            me.clone().recipient(),
            me.clone().recipient(),
            me.recipient(),
            self.panic.clone(),
            self.inbox.clone(),
            self.config.extras.clone(),
        ));
        self.doorbell = Some(ctx.add_stream(self.inbox.doorbell()));
        self.read_clock();
        let root = self.tree.root();
        if let Some(r) = self.root_runnable.take() {
            let worker = self.workers.pick();
            self.host(root, r, None, worker);
            self.schedule(root, Duration::ZERO, false, None);
            self.outbox.flush(&self.workers);
        }
        self.tell_summary(Duration::ZERO);
        self.safety_timer =
            Some(ctx.run_interval(SAFETY_SWEEP_PERIOD, |act, ctx| act.every_second(ctx)));
        if let Some(watch) = &self.config.watch {
            self.stalls = Stalls::new(self.workers.len());
            let every = (watch.threshold / 4).max(Duration::from_millis(10));
            self.watch_timer = Some(ctx.run_interval(every, |act, _| act.watch_stalls()));
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.workers.stop_all();
    }
}

impl StreamHandler<()> for Processor {
    fn handle(&mut self, (): (), ctx: &mut Self::Context) {
        self.take_reports(ctx);
    }

    /// The inbox closes when the processor finishes; nothing to do then.
    fn finished(&mut self, _: &mut Self::Context) {}
}

impl Handler<StartGroup> for Processor {
    type Result = Result<Starting, RunError>;
    fn handle(&mut self, msg: StartGroup, ctx: &mut Self::Context) -> Self::Result {
        self.take_reports(ctx);
        self.read_clock();
        let res = self.on_start_group(msg, ctx);
        self.after_change(ctx);
        // The caller resumes after this reply, usually to signal Healthy:
        // the tree is not settled until it has (it drops the guard then).
        res.map(|()| self.settle.guard())
    }
}
