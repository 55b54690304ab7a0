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

use actix::fut::ActorFutureExt;
use actix::{Actor, AsyncContext, Handler, SpawnHandle, StreamHandler};
use futures::channel::oneshot;
use log::Level;
use slotmap::SecondaryMap;
use tokio::time::Instant;

use crate::context::{Link, StartGroup};
use crate::error::RunError;
use crate::hosts::Hosts;
use crate::inbox::{Inbox, Report};
use crate::logger::Voice;
use crate::logtree::LogTree;
use crate::metrics::Metrics;
use crate::panics::PanicSlot;
use crate::policy::Backoff;
use crate::protocol::Extras;
use crate::repairs::Repairs;
use crate::restart::{self, plan, Jitter, Plan};
use crate::runnable::Runnable;
use crate::said::Said;
use crate::settle::{Settle, Starting};
use crate::sinks::Sinks;
use crate::stall::{Stalls, Watch};
use crate::state::{Counts, Ended, ExitKind, NodeState};
use crate::sweep::{sweep, Unit};
use crate::tree::{Defaults, NodeKey, Tree};
use crate::view::{RestartRate, View};
use crate::workers::Workers;

mod dynamic;
mod intake;
mod launch;
mod requests;
mod walks;

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
    /// is handled (see [`Hosts::flush`]).
    hosts: Hosts,
    config: Config,
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
    /// The pids of running process nodes.
    pids: SecondaryMap<NodeKey, u32>,
    /// Where running server nodes listen.
    addrs: SecondaryMap<NodeKey, Vec<std::net::SocketAddr>>,
    /// Each node's current incarnation's span: its children's parent.
    #[cfg(feature = "tracing")]
    spans: SecondaryMap<NodeKey, ::tracing::Span>,
    restart_rate: RestartRate,
    repairs: Repairs,
    /// When the safety tick last ran, for the processor's lag.
    last_tick: Instant,
    /// The clock as read for the message being handled (see `tick`).
    clock: Instant,
    /// The closed gates of ordered-start members waiting for their predecessor.
    gates: SecondaryMap<NodeKey, oneshot::Sender<Starting>>,
    /// Callers of `terminate_child` waiting for their child to be gone.
    leaving: dynamic::Leaving,
    /// The DNs of removed dynamic children whose logs are kept, oldest first.
    removed_logs: std::collections::VecDeque<std::sync::Arc<str>>,
    /// A propagated panic, for the handles to re-raise.
    panic: PanicSlot,
    changed_since_safety_sweep: bool,
    /// The safety sweep visits every node (in slices): it waits until then,
    /// so that it takes at most 1/[`SAFETY_SWEEP_SHARE`] of the processor's
    /// time however large the tree.
    safety_sweep_due: Instant,
    /// Snapshots, queries and the safety sweep under way (see `walks.rs`).
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
    /// A [`FlushHosts`] is queued.
    flush_due: bool,
}

/// Sends what the workers have queued; see [`Processor::flush_soon`].
struct FlushHosts;

impl actix::Message for FlushHosts {
    type Result = ();
}

impl Handler<FlushHosts> for Processor {
    type Result = ();
    fn handle(&mut self, _: FlushHosts, _: &mut Self::Context) {
        self.flush_due = false;
        self.hosts.flush(&self.workers);
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
            hosts: Hosts::default(),
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
            gates: SecondaryMap::new(),
            leaving: SecondaryMap::new(),
            removed_logs: Default::default(),
            pids: SecondaryMap::new(),
            addrs: SecondaryMap::new(),
            #[cfg(feature = "tracing")]
            spans: SecondaryMap::new(),
            restart_rate: RestartRate::new(),
            repairs: Repairs::default(),
            last_tick: Instant::now(),
            clock: Instant::now(),
            panic,
            changed_since_safety_sweep: false,
            safety_sweep_due: Instant::now(),
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
            pids: &self.pids,
            addrs: &self.addrs,
            blocked_by: self.stalls.blocked_by(),
        }
    }

    fn counts(&self) -> Counts {
        let minute = self.restart_rate.last_minute(Instant::now());
        self.view().counts(minute)
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
            self.sinks
                .announce(said.dn(&n.dn).incarnation(n.restarts + 1));
        }
    }

    /// Reads the clock once for the message being handled: every change it
    /// makes happens at that instant.
    fn tick(&mut self) -> Instant {
        self.clock = Instant::now();
        self.tree.set_now(self.clock);
        self.clock
    }

    fn on_start_group(
        &mut self,
        msg: StartGroup,
        ctx: &mut actix::Context<Self>,
    ) -> Result<(), RunError> {
        let StartGroup {
            node: k,
            dn,
            incarnation,
            group,
        } = msg;
        let dn = || dn.to_string();
        let Some(node) = self.tree.node(k) else {
            return Err(RunError::Stale { dn: dn() });
        };
        if self.life != Life::Running {
            return Err(RunError::ShutDown { dn: dn() });
        }
        if node.incarnation != incarnation || node.state().is_exited() {
            return Err(RunError::Stale { dn: dn() });
        }
        if node.state() != NodeState::New {
            return Err(RunError::NotNew {
                dn: dn(),
                state: node.state(),
            });
        }
        if node.token.is_cancelled() {
            return Err(RunError::Cancelled { dn: dn() });
        }
        let names = group.members.iter().map(|c| c.name.as_str());
        let owner_token = node.token.clone();
        let keys = self.tree.add_group(k, names, group.options)?;
        let Some(g) = keys
            .first()
            .and_then(|m| self.tree.node(*m))
            .map(|n| n.group)
        else {
            return Ok(());
        };
        let workers = self.workers.place(keys.len());
        for ((key, child), worker) in keys.iter().zip(group.members).zip(workers) {
            self.tree.set_spec(*key, child.spec);
            self.host(*key, child.runnable, worker);
        }
        self.launch(g, keys.into_iter().map(|k| (k, Duration::ZERO)));
        if group.options.ordered_stop {
            // The members' tokens do not follow the owner's: when it is
            // cancelled, stop them one by one, last first.
            let watch = actix::fut::wrap_future::<_, Self>(owner_token.cancelled_owned());
            ctx.spawn(watch.map(move |(), act, ctx| {
                let members = act.tree.group(g).map(|g| g.members.clone());
                if let Some(members) = members {
                    act.tree.stop_in_order(g, &members);
                    act.after_change(ctx);
                }
            }));
        }
        Ok(())
    }

    /// Restarts a unit as the planner decides: DEAD members after their next
    /// backoff, the others at once; or gives up when the owner's restart
    /// intensity is exceeded.
    fn restart_unit(&mut self, unit: Unit) {
        let now = self.clock;
        let jitter = &mut self.jitter;
        let starts = match plan(&self.tree, &unit, &self.config.backoff, now, &mut || {
            jitter.next()
        }) {
            Plan::Restart(starts) => starts,
            Plan::Escalate { owner, reason } => return self.give_up(owner, reason),
        };
        let owner = self.tree.group(unit.group).and_then(|g| g.owner);
        if !restart::on_request(&self.tree, &unit) {
            restart::record(&mut self.tree, owner, now);
        }
        self.restart_rate.add(now, starts.len() as u64);
        let backoff = starts.iter().map(|s| s.delay).max().unwrap_or_default();
        self.repairs.restarting(unit.group, starts.len(), backoff);
        for s in &starts {
            if let Some(n) = self.tree.node(s.node) {
                let (dn, delay) = (&*n.dn, s.delay);
                self.sinks
                    .tell(format_args!("node_restarted({dn}, {delay:?})"), |m| {
                        m.node_restarted(dn, delay)
                    });
            }
        }
        for said in restart::log_lines(&self.tree, &starts) {
            self.sinks.announce(said);
        }
        let mut launch = Vec::with_capacity(starts.len());
        for s in starts {
            let until = (!s.delay.is_zero()).then(|| now + s.delay);
            for gone in self.tree.reset(s.node, until) {
                self.forget(gone);
            }
            if let Some(n) = self.tree.node_mut(s.node) {
                n.backoff = s.backoff;
            }
            launch.push((s.node, s.delay));
        }
        self.launch(unit.group, launch);
    }

    /// The owner's restart intensity is exceeded: it gives up and dies (its
    /// children are stopped with it), so that its own parent's policy takes
    /// over. `None`: the supervisor gives up on the root and shuts down.
    fn give_up(&mut self, owner: Option<NodeKey>, reason: String) {
        let dn = owner.and_then(|p| self.tree.node(p)).map(|n| n.dn.clone());
        let name = dn.as_deref().unwrap_or("the supervisor");
        self.sinks.tell(format_args!("escalated({name})"), |m| {
            m.escalated(dn.as_deref())
        });
        let Some(p) = owner else {
            let message = format!("the supervisor gives up: {reason}; shutting down");
            let said = Said::new(Level::Error, "gave_up", message).reason(reason.as_str());
            self.sinks.announce(said);
            return self.begin_shutdown(Ended::GaveUp { reason });
        };
        if let Some(dn) = &dn {
            let message = format!("{dn} gives up: {reason}");
            let said = Said::new(Level::Error, "escalated", message).dn(dn);
            self.sinks.announce(said.reason(reason.as_str()));
        }
        let Some(parent) = self.tree.node_mut(p) else {
            return;
        };
        if parent.state().is_live() {
            // Its exit, whatever it returns, will be this death.
            parent.doom = Some(reason.into());
            self.tree.cancel_for_death(p);
        } else {
            self.die(p, reason, ExitKind::GaveUp, &[]);
        }
    }

    /// Runs the sweep over what changed, restarts what it finds, and checks
    /// whether a shutdown has drained.
    fn after_change(&mut self, ctx: &mut actix::Context<Self>) {
        self.propagate();
        self.hosts.flush(&self.workers);
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
                self.restart_unit(unit);
            }
        }
    }

    /// Sends what is queued for the workers once the requests already in
    /// the mailbox have been handled: concurrent `start_child` calls then
    /// reach each worker as one batch rather than one message each.
    fn flush_soon(&mut self, ctx: &mut actix::Context<Self>) {
        if !self.flush_due {
            self.flush_due = true;
            ctx.notify(FlushHosts);
        }
    }

    /// Every second: the sinks' summary, then the safety sweep if anything
    /// changed (and its share of the time allows).
    fn safety_sweep(&mut self, ctx: &mut actix::Context<Self>) {
        let now = self.tick();
        let lag = now
            .saturating_duration_since(self.last_tick)
            .saturating_sub(SAFETY_SWEEP_PERIOD);
        self.last_tick = now;
        if !self.sinks.is_empty() {
            let counts = self.counts();
            self.sinks
                .tell(format_args!("tick"), |m| m.tick(&counts, lag));
        }
        if !self.changed_since_safety_sweep || now < self.safety_sweep_due {
            return;
        }
        self.changed_since_safety_sweep = false;
        self.begin_sweep(ctx);
    }

    fn begin_shutdown(&mut self, why: Ended) {
        self.ending.get_or_insert(why);
        if self.life == Life::Running {
            let message = "shutting down: cancelling the tree".to_string();
            self.sinks
                .announce(Said::new(Level::Info, "shutting_down", message));
            self.life = Life::Stopping;
            self.sinks.tell(format_args!("stopping"), |m| m.stopping());
            self.tree.top().cancel();
        }
    }

    fn check_drained(&mut self, ctx: &mut actix::Context<Self>) {
        if self.life != Life::Stopping || !self.tree.all_exited() {
            return;
        }
        let message = "shut down: nothing is live".to_string();
        self.sinks
            .announce(Said::new(Level::Info, "shut_down", message));
        self.life = Life::Finished;
        self.hosts.clear();
        #[cfg(feature = "tracing")]
        self.spans.clear();
        // Nothing runs any more: whoever waits for a termination is done.
        for (_, replies) in self.leaving.drain() {
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
        self.me = None;
        self.workers.stop_workers();
        self.inbox.close();
        let spawned = [
            self.safety_timer.take(),
            self.watch_timer.take(),
            self.doorbell.take(),
        ];
        for timer in spawned.into_iter().flatten() {
            ctx.cancel_future(timer);
        }
        if !self.stragglers.is_empty() && self.ending == Some(Ended::ShutDown) {
            self.ending = Some(Ended::Stragglers {
                dns: std::mem::take(&mut self.stragglers),
            });
        }
        let ended = self.ending.clone().unwrap_or(Ended::ShutDown);
        for w in self.finish_waiters.drain(..) {
            let _ = w.send(ended.clone());
        }
    }

    /// Answers `reply` with why, once the life is Finished.
    fn when_finished(&mut self, reply: oneshot::Sender<Ended>) {
        if self.life == Life::Finished {
            let _ = reply.send(self.ending.clone().unwrap_or(Ended::ShutDown));
        } else {
            self.finish_waiters.push(reply);
        }
    }

    /// Answers the settle waiters if the tree is settled, else looks again
    /// when it may be.
    fn poll_settled(&mut self, ctx: &mut actix::Context<Self>) {
        // Guards first, then the reports made under them (see `settle.rs`).
        let unguarded = self.settle.unguarded();
        self.take_reports(ctx);
        if let Some(wait) = self.settle.poll(unguarded) {
            ctx.run_later(wait, |act, ctx| {
                act.settle.timer_fired();
                act.poll_settled(ctx);
            });
        }
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
        self.tick();
        let root = self.tree.root();
        if let Some(r) = self.root_runnable.take() {
            let worker = self.workers.pick();
            self.host(root, r, worker);
            self.schedule(root, Duration::ZERO, false);
            self.hosts.flush(&self.workers);
        }
        self.safety_timer =
            Some(ctx.run_interval(SAFETY_SWEEP_PERIOD, |act, ctx| act.safety_sweep(ctx)));
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
        self.tick();
        let res = self.on_start_group(msg, ctx);
        self.after_change(ctx);
        // The caller resumes after this reply, usually to signal Healthy:
        // the tree is not settled until it has (it drops the guard then).
        res.map(|()| self.settle.guard())
    }
}
