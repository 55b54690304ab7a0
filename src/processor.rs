//! The processor: the actor that owns the tree and applies every change to it.
//!
//! Everything that changes the tree arrives here as a message, in order:
//! a node's exit ([`Exited`]), an accepted signal ([`SignalMsg`]), a request
//! for children ([`StartGroup`]). After each change the processor runs the
//! restart sweep over the groups the change touched and restarts what it
//! returns, so a repair never waits for a timer. A slow timer runs the full
//! sweep as a safety net. Node hosts run the runnables; the processor only
//! decides and sends them [`Start`].

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use actix::fut::ActorFutureExt;
use actix::{Actor, AsyncContext, Handler, SpawnHandle, StreamHandler};
use futures::channel::oneshot;
use log::Level;
use slotmap::SecondaryMap;
use tokio::time::Instant;

use crate::context::{Link, StartGroup};
use crate::error::RunError;
use crate::exit::{classify, kind_of, Exit, Outcome, Verdict};
use crate::hosts::Hosts;
use crate::inbox::{Began, Inbox, Pid, Report};
use crate::logger::Voice;
use crate::logtree::LogTree;
use crate::metrics::Metrics;
use crate::node::NodeHost;
use crate::panics::PanicSlot;
use crate::policy::{Backoff, Spec};
use crate::protocol::{Incarnation, Request, Start};
use crate::restart::{plan, Jitter, Plan};
use crate::runnable::Runnable;
use crate::settle::{Settle, Starting};
use crate::stall::Watch;
use crate::state::{Counts, Ended, ExitKind, NodeInfo, NodeKind, NodeState, Signal};
use crate::sweep::{full_sweep, sweep, Unit};
use crate::tree::{self, Defaults, GroupKey, NodeKey, Tree};
use crate::view::{RestartRate, View};
use crate::workers::Workers;

/// How many consecutive members of a group share a worker. Siblings on one
/// worker stop and restart together without a thread crossing between them
/// (a death cancels them on the dying member's thread, and the processor
/// starts them with one message); a wide group is still spread over the
/// workers, in runs of this many, so that its runnables use every core.
const PLACEMENT_RUN: usize = 64;

/// The full sweep runs at most once per this many times its own duration.
const FULL_SWEEP_SHARE: u32 = 50;

/// How often the full sweep double-checks the incremental one.
const SAFETY_SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// The supervisor's settings, fixed at start.
pub(crate) struct Config {
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
}

/// Where the supervisor is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Life {
    Running,
    /// Shutting down: everything is cancelled, nothing restarts.
    Draining,
    /// Nothing is live and nothing will be.
    Finished,
}

pub(crate) struct Processor {
    tree: Tree,
    /// The hosts, and what goes to the workers once the current message
    /// is handled (see [`Hosts::flush`]).
    hosts: Hosts,
    config: Config,
    voice: Voice,
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
    restart_rate: RestartRate,
    /// Repairs under way, by group, for the repair-latency metric.
    repairs: SecondaryMap<GroupKey, Repair>,
    /// When the safety tick last ran, for the processor's lag.
    last_tick: Instant,
    /// The clock as read for the message being handled (see `tick`).
    clock: Instant,
    /// The closed gates of ordered-start members waiting for their predecessor.
    gates: SecondaryMap<NodeKey, oneshot::Sender<Starting>>,
    /// A propagated panic, for the handles to re-raise.
    panic: PanicSlot,
    changed_since_full_sweep: bool,
    /// The full sweep is O(nodes): it waits until then, so that it takes at
    /// most 1/[`FULL_SWEEP_SHARE`] of the processor's time however large
    /// the tree (a million nodes take tens of milliseconds to sweep).
    full_sweep_due: Instant,
    /// The safety sweep's timer. Cancelled when the life is Finished: a
    /// spawned future keeps an actix actor alive, and the processor must
    /// stop (and stop its arbiter) once the last handle is dropped.
    safety_timer: Option<SpawnHandle>,
    /// The stall watch's timer, likewise cancelled when Finished.
    watch_timer: Option<SpawnHandle>,
    /// Per worker: the node the stall watch flagged on it, and since when.
    /// The one record of stalls: a snapshot reads it too.
    blocked_by: Vec<Option<(NodeKey, Instant)>>,
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
}

impl Processor {
    pub fn new(
        root: Box<dyn Runnable>,
        config: Config,
        workers: Workers,
        panic: PanicSlot,
    ) -> Processor {
        let settle_window = config.settle_window;
        Processor {
            tree: Tree::new(Default::default(), config.defaults),
            hosts: Hosts::default(),
            voice: Voice::new(config.logs.clone()),
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
            pids: SecondaryMap::new(),
            restart_rate: RestartRate::new(),
            repairs: SecondaryMap::new(),
            last_tick: Instant::now(),
            clock: Instant::now(),
            panic,
            changed_since_full_sweep: false,
            full_sweep_due: Instant::now(),
            safety_timer: None,
            watch_timer: None,
            blocked_by: Vec::new(),
            draining: false,
            stragglers: Vec::new(),
            inbox: Arc::new(Inbox::default()),
            batch: Vec::new(),
            doorbell: None,
        }
    }

    /// Handles every pending report, in order, at one instant, then runs the
    /// sweep once for all of them. Called when the doorbell rings and before
    /// every request, so that a request sees the reports sent before it.
    fn take_reports(&mut self, ctx: &mut actix::Context<Self>) {
        let mut batch = std::mem::take(&mut self.batch);
        loop {
            self.inbox.take(&mut batch);
            if batch.is_empty() {
                break;
            }
            self.tick();
            for report in batch.drain(..) {
                match report {
                    Report::Exited(m) => self.on_exit(m.node, m.incarnation, m.exit),
                    Report::Began(m) => self.on_began(m),
                    Report::Signal(m) => self.on_signal(m.node, m.incarnation, m.signal),
                    Report::Pid(m) => self.on_pid(m),
                }
            }
            self.after_change(ctx);
        }
        self.batch = batch;
    }

    fn on_began(&mut self, msg: Began) {
        let Some(node) = self.tree.node_mut(msg.node) else {
            return;
        };
        if node.incarnation != msg.incarnation || node.waiting.take().is_none() {
            return; // a late message, or the start was cancelled meanwhile
        }
        notify(&self.config.metrics, &self.voice, &node.dn, NodeState::New);
        let now = self.tree.now_ms();
        if let Some(node) = self.tree.node_mut(msg.node) {
            node.since_ms = now;
        }
        self.mark_started(msg.node);
    }

    fn on_pid(&mut self, msg: Pid) {
        let current = self
            .tree
            .node(msg.node)
            .is_some_and(|n| n.incarnation == msg.incarnation && n.state().is_live());
        match msg.pid {
            Some(pid) if current => {
                self.pids.insert(msg.node, pid);
            }
            _ => {
                self.pids.remove(msg.node);
            }
        }
    }

    /// Starts a host for `node` on worker `worker`.
    fn host(&mut self, node: NodeKey, runnable: Box<dyn Runnable>, worker: usize) {
        let Some(me) = self.me.clone() else { return };
        if let Some(n) = self.tree.node_mut(node) {
            n.kind = match runnable.kind() {
                NodeKind::Actor => tree::Kind::Actor,
                NodeKind::Process { .. } => tree::Kind::Process,
                _ => tree::Kind::Runnable,
            };
        }
        let host = NodeHost::new(runnable, me, self.config.logs.clone());
        self.hosts.create(node, host, worker);
    }

    /// Sends the node's current incarnation to its host, to start after
    /// `delay`; `gated`: only once its predecessor in an ordered-start group
    /// has signalled Healthy (see [`open_next`](Self::open_next)).
    fn schedule(&mut self, k: NodeKey, delay: Duration, gated: bool) {
        // Finished: nothing is started any more.
        let (Some(_), Some(node)) = (&self.me, self.tree.node(k)) else {
            return;
        };
        if !self.hosts.contains(k) {
            return;
        }
        let ctx = Incarnation {
            dn: node.dn.clone(),
            node: k,
            incarnation: node.incarnation,
            token: node.token.clone(),
        };
        // A delayed start is reported NEW when the host begins it (`Began`).
        if delay.is_zero() {
            notify(&self.config.metrics, &self.voice, &node.dn, NodeState::New);
        }

        let gate = gated.then(|| {
            let (tx, rx) = oneshot::channel();
            self.gates.insert(k, tx);
            rx
        });
        let start = Start {
            ctx,
            delay,
            gate,
            shutdown: self.tree.shutdown_of(k),
            restart: self.tree.restart_of(k),
            takes_down: self.tree.takes_down(k),
            // Pending backoff timers and closed gates must not hold
            // `wait_settled`; an opened gate brings its own guard.
            starting: (delay.is_zero() && !gated).then(|| self.settle.guard()),
        };
        self.hosts.start(k, start);
        // The previous incarnation has exited and this one has not run yet:
        // the log lines after this mark are the new incarnation's.
        let mark = self.config.logs.seq();
        if let Some(n) = self.tree.node_mut(k) {
            n.log_mark = mark;
        }
        if delay.is_zero() && !gated {
            self.mark_started(k);
        }
    }

    /// Schedules members started together, in order: with ordered start,
    /// each after the one before it has signalled Healthy.
    fn launch(&mut self, group: GroupKey, members: impl IntoIterator<Item = (NodeKey, Duration)>) {
        let ordered = self
            .tree
            .group(group)
            .is_some_and(|g| g.options.ordered_start);
        for (i, (k, delay)) in members.into_iter().enumerate() {
            self.schedule(k, delay, ordered && i > 0);
        }
    }

    /// `k` has signalled Healthy or is DONE: in an ordered-start group, the
    /// member after it may start now.
    fn open_next(&mut self, k: NodeKey) {
        let Some(group) = self.tree.node(k).and_then(|n| self.tree.group(n.group)) else {
            return;
        };
        if !group.options.ordered_start {
            return;
        }
        let next = group
            .members
            .iter()
            .position(|m| *m == k)
            .and_then(|i| group.members.get(i + 1).copied());
        if let Some((n, gate)) = next.and_then(|n| Some((n, self.gates.remove(n)?))) {
            let _ = gate.send(self.settle.guard());
            self.mark_started(n);
        }
    }

    /// A read-only view of the tree for snapshots and summaries.
    fn view(&self) -> View<'_> {
        View {
            tree: &self.tree,
            pids: &self.pids,
            blocked_by: &self.blocked_by,
        }
    }

    /// The records of the subtree at `of` (the whole tree when `None`), or
    /// only its unready nodes; `None` when no node has that DN.
    fn snapshot(&self, of: Option<&str>, unready_only: bool) -> Option<Vec<NodeInfo>> {
        let view = self.view();
        let top = match of {
            Some(dn) => view.find(dn)?,
            None => self.tree.root(),
        };
        Some(match unready_only {
            true => view.collect(top, |k, n| view.is_unready(k, n)),
            false => view.snapshot(top),
        })
    }

    fn counts(&self) -> Counts {
        let minute = self.restart_rate.last_minute(Instant::now());
        self.view().counts(minute)
    }

    /// Reads every worker's beat: flags a node that has blocked its worker
    /// past the threshold, and clears the flag once the worker moves.
    fn watch_stalls(&mut self) {
        let Some(watch) = self.config.watch.clone() else {
            return;
        };
        let now = watch.tick();
        for i in 0..self.blocked_by.len() {
            let stalled = watch
                .stalled(i, now)
                .filter(|(k, _)| self.tree.node(*k).is_some());
            let before = self.blocked_by[i].map(|(k, _)| k);
            if before.is_some() && before == stalled.map(|(k, _)| k) {
                continue; // still the same
            }
            self.blocked_by[i] = stalled.map(|(k, ran)| (k, Instant::now() - ran));
            if let Some(b) = before {
                self.workers.set_blocked(i, false);
                if let Some(n) = self.tree.node(b) {
                    let msg = format!("{} lets worker {i} run again", n.dn);
                    self.voice.say(Level::Info, msg);
                }
            }
            if let Some((k, ran)) = stalled {
                self.workers.set_blocked(i, true);
                if let Some(n) = self.tree.node(k) {
                    let msg = format!(
                        "{} has blocked worker {i} for {:.1} s (its future does not yield); new nodes go to other workers",
                        n.dn,
                        ran.as_secs_f64()
                    );
                    self.voice.say(Level::Warn, msg);
                }
            }
        }
    }

    /// `k` is healthy (or done): one fewer member for its group's repair;
    /// the last one tells the sinks how long the repair took.
    fn repair_progress(&mut self, k: NodeKey) {
        let Some(g) = self.tree.node(k).map(|n| n.group) else {
            return;
        };
        let Some(r) = self.repairs.get_mut(g) else {
            return;
        };
        if r.pending == 0 {
            return; // not restarted yet
        }
        r.pending -= 1;
        if r.pending == 0 {
            let latency = r.since.elapsed().saturating_sub(r.backoff);
            self.repairs.remove(g);
            tell(&self.config.metrics, &self.voice, |m| m.repaired(latency));
        }
    }

    /// Reads the clock once for the message being handled: every change it
    /// makes happens at that instant.
    fn tick(&mut self) -> Instant {
        self.clock = Instant::now();
        self.tree.set_now(self.clock);
        self.clock
    }

    /// `k`'s runnable starts now: for its uptime.
    fn mark_started(&mut self, k: NodeKey) {
        let now = self.tree.now_ms();
        if let Some(n) = self.tree.node_mut(k) {
            n.started_ms = Some(now);
        }
    }

    /// Moves `k` to an exited state, records how, and tells the sinks.
    fn exit(&mut self, k: NodeKey, state: NodeState, kind: ExitKind, reason: Cow<'static, str>) {
        self.tree.set_state(k, state);
        self.gates.remove(k);
        self.pids.remove(k);
        let at_ms = self.tree.now_ms();
        if let Some(n) = self.tree.node_mut(k) {
            n.started_ms = None;
            let record = tree::Exit {
                kind,
                reason,
                at_ms,
            };
            // In place when there is one: a wide group's restart would
            // otherwise free and allocate one record per member.
            match &mut n.last_exit {
                Some(last) => **last = record,
                None => n.last_exit = Some(Box::new(record)),
            }
        }
        if state == NodeState::Done {
            self.open_next(k);
        }
        if let Some(n) = self.tree.node(k) {
            notify(&self.config.metrics, &self.voice, &n.dn, state);
            tell(&self.config.metrics, &self.voice, |m| {
                m.node_exited(&n.dn, kind)
            });
        }
        if state == NodeState::Done {
            self.repair_progress(k);
        }
    }

    /// A death: report it with its lead-up, record it, cancel the node's
    /// subtree and the siblings its strategy takes down.
    fn die(&mut self, k: NodeKey, reason: String, kind: ExitKind, sub_loggers: &[String]) {
        let Some(node) = self.tree.node_mut(k) else {
            return;
        };
        let mut report = format!("{} died: {}", node.dn, reason);
        let mut dns: Vec<&str> = vec![&node.dn];
        dns.extend(sub_loggers.iter().map(String::as_str));
        let lead_up = self.voice.logs().tail_of(&dns, self.config.lead_up);
        if !lead_up.is_empty() {
            report.push_str(&format!("\n  its last {} log lines:", lead_up.len()));
            let mark = node.log_mark;
            let mut earlier = lead_up.first().is_some_and(|e| e.seq <= mark);
            if earlier {
                report.push_str("\n    -- from earlier incarnations:");
            }
            for e in lead_up {
                if earlier && e.seq > mark {
                    earlier = false;
                    report.push_str("\n    -- from the incarnation that died:");
                }
                report.push_str(&format!("\n    {e}"));
            }
        }
        self.voice.say(Level::Error, report);
        node.last_error = Some(reason.as_str().into());
        let group = node.group;
        self.repairs.entry(group).map(|e| {
            e.or_insert(Repair {
                since: self.clock,
                backoff: Duration::ZERO,
                pending: 0,
            })
        });
        self.exit(k, NodeState::Dead, kind, reason.into());
        self.tree.cancel_for_death(k);
    }

    fn on_exit(&mut self, k: NodeKey, incarnation: u64, exit: Exit) {
        let Some(node) = self.tree.node(k) else {
            return;
        };
        if node.incarnation != incarnation || node.state().is_exited() {
            return; // a previous incarnation's late report
        }
        let propagate = match (&exit.outcome, self.config.propagate_panics) {
            (Outcome::Panicked(msg), true) => {
                let message = format!("{} panicked: {}", node.dn, msg);
                let mut slot = self.panic.lock().unwrap_or_else(PoisonError::into_inner);
                slot.get_or_insert_with(|| message.clone());
                Some(message)
            }
            _ => None,
        };
        let restart = self.tree.restart_of(k);
        let doom = node.doom.as_deref();
        let verdict = classify(&exit, exit.cancelled, doom, restart);
        let kind = kind_of(&exit, &verdict, doom.is_some());
        match verdict {
            Verdict::Done => self.exit(k, NodeState::Done, kind, Cow::Borrowed("done")),
            Verdict::Canceled(note) => {
                let reason = match note {
                    Some(note) => {
                        self.voice
                            .say(Level::Warn, format!("{}: {}", node.dn, note));
                        Cow::Owned(note)
                    }
                    None => Cow::Borrowed("cancelled"),
                };
                if kind == ExitKind::Aborted && self.life != Life::Running {
                    self.stragglers.push(node.dn.to_string());
                }
                self.exit(k, NodeState::Canceled, kind, reason);
            }
            Verdict::Dead(reason) => self.die(k, reason, kind, &exit.sub_loggers),
        }
        if let Some(message) = propagate {
            self.begin_shutdown(Ended::Panicked { message });
        }
    }

    fn on_signal(&mut self, k: NodeKey, incarnation: u64, signal: Signal) {
        let now_ms = self.tree.now_ms();
        let Some(node) = self.tree.node_mut(k) else {
            return;
        };
        if node.incarnation != incarnation || node.state().is_exited() {
            return;
        }
        match signal {
            Signal::Healthy => {
                node.healthy_ms = Some(now_ms);
                if self.config.backoff.reset_after_healthy().is_none() {
                    node.backoff = None;
                }
            }
            Signal::Done => node.backoff = None,
        }
        if signal == Signal::Healthy && node.state() == NodeState::New {
            self.tree.set_state(k, NodeState::Healthy);
            if let Some(n) = self.tree.node(k) {
                notify(&self.config.metrics, &self.voice, &n.dn, NodeState::Healthy);
            }
            self.open_next(k);
            self.repair_progress(k);
        }
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
        let mut worker = 0;
        for (i, (key, child)) in keys.iter().zip(group.members).enumerate() {
            if child.spec != Spec::default() {
                if let Some(n) = self.tree.node_mut(*key) {
                    n.spec = Some(Box::new(child.spec));
                }
            }
            if i % PLACEMENT_RUN == 0 {
                worker = self.workers.pick();
            }
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
        self.tree.record_restart(owner, now);
        self.restart_rate.add(now, starts.len() as u64);
        let backoff = starts.iter().map(|s| s.delay).max().unwrap_or_default();
        if let Some(r) = self.repairs.get_mut(unit.group) {
            r.backoff = r.backoff.max(backoff);
            r.pending += starts.len() as u32;
        }
        // One line per dead member, one for all the siblings that come back
        // with them: a group of 50,000 must not mean 50,000 log lines (nor
        // 50,000 names copied to show five).
        let mut shown: Vec<&str> = Vec::new();
        let mut siblings = 0usize;
        for s in &starts {
            let Some(n) = self.tree.node(s.node) else {
                continue;
            };
            tell(&self.config.metrics, &self.voice, |m| {
                m.node_restarted(&n.dn, s.delay)
            });
            if n.state() == NodeState::Dead {
                let msg = format!(
                    "restarting {} (restart {}) in {:?}",
                    n.dn,
                    n.restarts + 1,
                    s.delay
                );
                self.voice.say(Level::Info, msg);
            } else {
                siblings += 1;
                if shown.len() < 5 {
                    shown.push(&n.dn);
                }
            }
        }
        if siblings > 0 {
            let more = siblings - shown.len();
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let msg = format!(
                "restarting their group siblings at once: {}{more}",
                shown.join(", ")
            );
            self.voice.say(Level::Info, msg);
        }
        let mut launch = Vec::with_capacity(starts.len());
        for s in starts {
            let until = (!s.delay.is_zero()).then(|| now + s.delay);
            for gone in self.tree.reset(s.node, until) {
                self.hosts.remove(gone);
                self.gates.remove(gone);
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
        tell(&self.config.metrics, &self.voice, |m| {
            m.escalated(dn.as_deref())
        });
        let Some(p) = owner else {
            self.voice.say(
                Level::Error,
                format!("the supervisor gives up: {reason}; shutting down"),
            );
            return self.begin_shutdown(Ended::GaveUp { reason });
        };
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
        self.settle.changed(self.clock);
        self.changed_since_full_sweep = true;
        loop {
            self.tree.advance_stops();
            let dirty = self.tree.take_dirty();
            if dirty.is_empty() {
                break;
            }
            for unit in sweep(&self.tree, dirty) {
                self.restart_unit(unit);
            }
        }
        self.hosts.flush(&self.workers);
        self.check_drained(ctx);
    }

    /// Every second: the sinks' summary, then the full sweep if anything
    /// changed (and its share of the time allows).
    fn safety_sweep(&mut self, ctx: &mut actix::Context<Self>) {
        let now = self.tick();
        let lag = now
            .saturating_duration_since(self.last_tick)
            .saturating_sub(SAFETY_SWEEP_PERIOD);
        self.last_tick = now;
        if !self.config.metrics.is_empty() {
            let counts = self.counts();
            tell(&self.config.metrics, &self.voice, |m| m.tick(&counts, lag));
        }
        if !self.changed_since_full_sweep || now < self.full_sweep_due {
            return;
        }
        self.changed_since_full_sweep = false;
        let took = std::time::Instant::now();
        let missed = full_sweep(&self.tree);
        self.full_sweep_due = now + took.elapsed() * FULL_SWEEP_SHARE;
        if !missed.is_empty() {
            let msg = format!(
                "the full sweep found {} restartable groups the incremental sweep missed",
                missed.len()
            );
            self.voice.say(Level::Error, msg);
            for unit in missed {
                self.restart_unit(unit);
            }
            self.after_change(ctx);
        }
    }

    fn begin_shutdown(&mut self, why: Ended) {
        self.ending.get_or_insert(why);
        if self.life == Life::Running {
            self.voice
                .say(Level::Info, "shutting down: cancelling the tree".into());
            self.life = Life::Draining;
            tell(&self.config.metrics, &self.voice, |m| m.stopping());
            self.tree.top().cancel();
        }
    }

    fn check_drained(&mut self, ctx: &mut actix::Context<Self>) {
        if self.life != Life::Draining || !self.tree.all_exited() {
            return;
        }
        self.voice
            .say(Level::Info, "shut down: nothing is live".into());
        self.life = Life::Finished;
        self.hosts.clear();
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
        if let Some(wait) = self.settle.poll() {
            ctx.run_later(wait, |act, ctx| {
                act.settle.timer_fired();
                act.poll_settled(ctx);
            });
        }
    }
}

/// A group's repair: since its first death, the longest backoff its
/// restarts waited, and how many restarted members are not healthy yet.
#[derive(Debug)]
struct Repair {
    since: Instant,
    backoff: Duration,
    pending: u32,
}

/// Tells every sink of a transition.
fn notify(sinks: &[Box<dyn Metrics>], voice: &Voice, dn: &str, state: NodeState) {
    tell(sinks, voice, |m| m.node_state(dn, state));
}

/// Calls every sink; a panicking sink is logged and skipped.
fn tell(sinks: &[Box<dyn Metrics>], voice: &Voice, call: impl Fn(&dyn Metrics)) {
    for sink in sinks {
        if std::panic::catch_unwind(AssertUnwindSafe(|| call(&**sink))).is_err() {
            voice.say(Level::Error, "a metrics sink panicked; ignored".into());
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
            me.recipient(),
            self.panic.clone(),
            self.inbox.clone(),
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
            self.blocked_by = vec![None; self.workers.len()];
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

impl Handler<Request> for Processor {
    type Result = ();
    fn handle(&mut self, request: Request, ctx: &mut Self::Context) {
        self.take_reports(ctx);
        match request {
            Request::WaitSettled(reply) => {
                self.settle.wait(reply);
                self.poll_settled(ctx);
            }
            Request::Snapshot {
                of,
                unready_only,
                reply,
            } => {
                let _ = reply.send(self.snapshot(of.as_deref(), unready_only));
            }
            Request::Counts(reply) => {
                let _ = reply.send(self.counts());
            }
            Request::LiveRunnables(reply) => {
                let mut live: Vec<String> = self
                    .tree
                    .nodes()
                    .filter(|(_, n)| n.is_running())
                    .map(|(_, n)| n.dn.to_string())
                    .collect();
                live.sort();
                let _ = reply.send(live);
            }
            Request::Drain { start, reply } => {
                if start && !self.draining && self.life == Life::Running {
                    self.draining = true;
                    self.voice.say(
                        Level::Info,
                        "draining: not ready any more, shutting down soon".into(),
                    );
                }
                let _ = reply.send(self.draining || self.life != Life::Running);
            }
            Request::Stop(reply) => {
                self.tick();
                self.begin_shutdown(Ended::ShutDown);
                self.check_drained(ctx);
                self.when_finished(reply);
            }
            Request::Join(reply) => self.when_finished(reply),
        }
    }
}
