//! The processor's report intake: what each report from the tree's side
//! (an exit, a begun start, a signal, a pid) changes in the tree, and what
//! the sinks and the log are told of it. The change pipeline then runs once
//! per batch (`after_change`).

use std::borrow::Cow;
use std::sync::PoisonError;

use log::Level;

use super::{Life, Processor};
use crate::api::wire::inbox::{Addrs, Began, HungMsg, Pid, Report};
use crate::model::exit::{classify, kind_of, ExitReport, Outcome, Verdict};
use crate::model::logtree::Entry;
use crate::model::plan;
use crate::model::records::{Ended, ExitKind, NodeState, Signal};
use crate::model::significant;
use crate::model::tree::{self, NodeKey};
use crate::model::voice::{death_report, Said};

impl Processor {
    /// Handles every pending report, in order, at one instant, then runs the
    /// sweep once for all of them. Called when the doorbell rings and before
    /// every request, so that a request sees the reports sent before it.
    pub(super) fn take_reports(&mut self, ctx: &mut actix::Context<Self>) {
        let mut batch = std::mem::take(&mut self.batch);
        loop {
            self.inbox.take(&mut batch);
            if batch.is_empty() {
                break;
            }
            self.read_clock();
            for report in batch.drain(..) {
                match report {
                    Report::Exited(m) => self.on_exit(m.node, m.incarnation, m.exit),
                    Report::Began(m) => self.on_began(m),
                    Report::Signal(m) => self.on_signal(m.node, m.incarnation, m.signal),
                    Report::Pid(m) => self.on_pid(m),
                    Report::Addrs(m) => self.on_addrs(m),
                    Report::Lease(m) => self.on_lease(m),
                    Report::Hung(m) => self.on_hung(m),
                    Report::Queue(m) => self.on_queue(m),
                }
            }
            self.after_change(ctx);
        }
        self.batch = batch;
    }

    pub(super) fn on_began(&mut self, msg: Began) {
        if !self.tree.begin(msg.node, msg.incarnation) {
            return; // a late message, or the start was cancelled meanwhile
        }
        if let Some(node) = self.tree.node_mut(msg.node) {
            // Started after its breaker's cool-down: on probation.
            node.half_open = node.trips > 0;
            self.sinks.state(&node.dn, NodeState::New);
        }
        self.mark_started(msg.node);
    }

    pub(super) fn on_pid(&mut self, msg: Pid) {
        let current = self
            .tree
            .node(msg.node)
            .is_some_and(|n| n.incarnation == msg.incarnation && n.state().is_live());
        match msg.pid {
            Some(pid) if current => {
                self.beside.pids.insert(msg.node, pid);
            }
            _ => {
                self.beside.pids.remove(msg.node);
            }
        }
    }

    pub(super) fn on_addrs(&mut self, msg: Addrs) {
        let current = self
            .tree
            .node(msg.node)
            .is_some_and(|n| n.incarnation == msg.incarnation && n.state().is_live());
        if current && !msg.addrs.is_empty() {
            self.beside.addrs.insert(msg.node, msg.addrs);
        } else {
            self.beside.addrs.remove(msg.node);
        }
    }

    /// `k`'s runnable starts now: for its uptime.
    pub(super) fn mark_started(&mut self, k: NodeKey) {
        let now = self.tree.now_ms();
        if let Some(n) = self.tree.node_mut(k) {
            n.started_ms = Some(now);
        }
    }

    /// Moves `k` to an exited state, records how, and tells the sinks.
    pub(super) fn exit(
        &mut self,
        k: NodeKey,
        state: NodeState,
        kind: ExitKind,
        reason: Cow<'static, str>,
    ) {
        self.tree.set_state(k, state);
        self.beside.exited(k);
        let at_ms = self.tree.now_ms();
        if let Some(n) = self.tree.node_mut(k) {
            n.started_ms = None;
            let record = tree::ExitRecord {
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
            self.sinks.state(&n.dn, state);
            let dn = &*n.dn;
            self.sinks
                .tell(format_args!("node_exited({dn}, {kind})"), |m| {
                    m.node_exited(dn, kind)
                });
        }
        if state == NodeState::Done {
            self.repair_progress(k);
        }
    }

    /// A death: report it with its lead-up, record it, cancel the node's
    /// subtree and the siblings its strategy takes down.
    pub(super) fn die(
        &mut self,
        k: NodeKey,
        reason: String,
        kind: ExitKind,
        sub_loggers: &[String],
    ) {
        let Some(node) = self.tree.node_mut(k) else {
            return;
        };
        let logs = &self.config.logs;
        let (lead_up, mark) = (self.config.lead_up, node.log_mark);
        let report = |shown: &dyn Fn(&Entry) -> bool| {
            death_report(logs, &node.dn, &reason, sub_loggers, lead_up, mark, shown)
        };
        // The log facade has printed the node's leveled lines already (see
        // `Logger::log_at`): its copy of the report does not repeat them.
        // The log tree's keeps the whole lead-up.
        let for_facade = report(&|e| e.level.is_some_and(|l| facade_showed(l, &e.dn)));
        let whole = report(&|_| false);
        let said = Said::new(Level::Error, "died", for_facade)
            .in_tree(whole)
            .dn(&node.dn)
            .reason(reason.as_str())
            .exit_kind(kind)
            .restarts(node.restarts)
            .incarnation(node.restarts + 1);
        self.voice.say(said);
        node.last_error = Some(reason.as_str().into());
        self.repairs.death(node.group, self.clock);
        self.exit(k, NodeState::Dead, kind, reason.into());
        self.tree.take_down(k);
    }

    pub(super) fn on_exit(&mut self, k: NodeKey, incarnation: u64, exit: ExitReport) {
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
            Verdict::Cancelled(note) if node.auto_shut => {
                if let Some(note) = note {
                    self.voice
                        .say(Said::note(Level::Warn, format!("{}: {note}", node.dn)));
                }
                let reason = Cow::Borrowed("auto-shutdown: its significant children ended");
                self.exit(k, NodeState::Done, ExitKind::Done, reason);
            }
            Verdict::Cancelled(None) if node.requested => self.exit(
                k,
                NodeState::Cancelled,
                ExitKind::Restarted,
                Cow::Borrowed("restarted on request"),
            ),
            Verdict::Cancelled(note) => {
                let reason = match note {
                    Some(note) => {
                        let line = format!("{}: {}", node.dn, note);
                        self.voice.say(Said::note(Level::Warn, line));
                        Cow::Owned(note)
                    }
                    None => Cow::Borrowed("cancelled"),
                };
                if kind == ExitKind::Aborted && self.life != Life::Running {
                    self.stragglers.push(node.dn.to_string());
                }
                self.exit(k, NodeState::Cancelled, kind, reason);
            }
            Verdict::Dead(reason) => self.die(k, reason, kind, &exit.sub_loggers),
            Verdict::LeaseLost(why) => self.lease_lost(k, why),
        }
        if self.life == Life::Running {
            if let Some(parent) = significant::parent_to_end(&self.tree, k) {
                self.end_parent(parent, k);
            }
        }
        if let Some(message) = propagate {
            self.begin_shutdown(Ended::Panicked { message });
        }
    }

    /// Ends `parent` because its significant child `cause` ended (see
    /// [`AutoShutdown`](crate::AutoShutdown)): cancels it, its other
    /// children with it by their stop modes, and marks its exit to come as
    /// DONE.
    fn end_parent(&mut self, parent: NodeKey, cause: NodeKey) {
        let cause = self.tree.node(cause).map(|n| n.dn.clone());
        let Some(p) = self.tree.node_mut(parent) else {
            return;
        };
        p.auto_shut = true;
        p.token.cancel();
        let message = match cause {
            Some(c) => format!(
                "{}: its significant children ended ({c} last): shutting down",
                p.dn
            ),
            None => format!("{}: its significant children ended: shutting down", p.dn),
        };
        let said = Said::new(Level::Info, "auto_shutdown", message).dn(&p.dn);
        self.voice.say(said);
        self.tree.mark_dirty(parent);
    }

    /// A node missed its heartbeat; its host is stopping it (the death
    /// comes with its exit). Said now: the exit may be a stop deadline away.
    fn on_hung(&mut self, m: HungMsg) {
        let Some(n) = self.tree.node(m.node) else {
            return;
        };
        if n.incarnation != m.incarnation || n.state().is_exited() {
            return;
        }
        let message = format!("{}: {}; stopping it", n.dn, m.hung.reason());
        let said = Said::new(Level::Warn, "hung", message).dn(&n.dn);
        self.voice.say(said);
        if self.tree.heartbeat_affects_liveness(m.node) {
            self.beside.hung.insert(m.node, ());
        }
    }

    pub(super) fn on_signal(&mut self, k: NodeKey, incarnation: u64, signal: Signal) {
        let now_ms = self.tree.now_ms();
        let Some(node) = self.tree.node_mut(k) else {
            return;
        };
        if node.incarnation != incarnation || node.state().is_exited() {
            return;
        }
        if signal == Signal::Healthy {
            node.healthy_ms = Some(now_ms);
        }
        plan::reset_on_signal(node, signal, &self.config.backoff);
        if signal == Signal::Healthy {
            // HEALTHY again: its missed heartbeat no longer fails liveness.
            self.beside.hung.remove(k);
        }
        if signal == Signal::Healthy && node.state() == NodeState::New {
            self.tree.set_state(k, NodeState::Healthy);
            if let Some(n) = self.tree.node(k) {
                self.sinks.state(&n.dn, NodeState::Healthy);
            }
            self.open_next(k);
            self.repair_progress(k);
        }
    }

    /// `k` is healthy (or done): one fewer member for its group's repair;
    /// the last one tells the sinks how long the repair took.
    pub(super) fn repair_progress(&mut self, k: NodeKey) {
        let Some(g) = self.tree.node(k).map(|n| n.group) else {
            return;
        };
        if let Some(latency) = self.repairs.progress(g) {
            self.sinks.tell(format_args!("repaired({latency:?})"), |m| {
                m.repaired(latency)
            });
        }
    }
}

/// Whether the log facade printed a node's line at `level` (the node logger
/// forwards its lines to the facade with the DN as the target). When in
/// doubt, no: a line printed twice beats a report that claims a line was
/// shown that was not. With a tracing subscriber set, the facade may be
/// bridged into it (`tracing-log`), where the `LogTreeLayer` says yes to
/// every level while a printer layer filters on its own: doubt.
fn facade_showed(level: Level, dn: &str) -> bool {
    #[cfg(feature = "tracing")]
    if ::tracing::dispatcher::has_been_set() {
        return false;
    }
    level <= log::max_level()
        && log::logger().enabled(&log::Metadata::builder().level(level).target(dn).build())
}
