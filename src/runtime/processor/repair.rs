//! Repairs: how the processor applies the planner's decision for a unit the
//! sweep found. Restart its members (DEAD ones after their next backoff, the
//! others at once), or, when the owner's restart intensity is exceeded, give
//! up: the owner dies, and its own parent's policy takes over.

use log::Level;

use super::Processor;
use crate::model::plan::{self, Plan};
use crate::model::records::{Ended, ExitKind};
use crate::model::sweep::Unit;
use crate::model::tree::NodeKey;
use crate::model::voice::Said;

impl Processor {
    /// Restarts a unit as the planner decides: DEAD members after their next
    /// backoff, the others at once; or gives up when the owner's restart
    /// intensity is exceeded.
    pub(super) fn repair(&mut self, unit: Unit) {
        let now = self.clock;
        let jitter = &mut self.jitter;
        let starts = match plan::decide(&self.tree, &unit, &self.config.backoff, now, &mut || {
            jitter.next()
        }) {
            Plan::Restart(starts) => starts,
            Plan::Escalate { owner, reason } => return self.give_up(owner, reason),
        };
        let owner = self.tree.group(unit.group).and_then(|g| g.owner);
        if !plan::on_request(&self.tree, &unit) {
            plan::record(&mut self.tree, owner, now);
        }
        self.restarts_last_minute.add(now, starts.len() as u64);
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
        for said in plan::log_lines(&self.tree, &starts) {
            self.voice.say(said);
        }
        let mut launch = Vec::with_capacity(starts.len());
        for s in starts {
            let until = (!s.delay.is_zero()).then(|| now + s.delay);
            for gone in self.tree.reset(s.node, until) {
                self.forget(gone);
            }
            if let Some(n) = self.tree.node_mut(s.node) {
                n.backoff = s.backoff;
                n.handover = s.handover;
                if s.parked {
                    n.trips = n.trips.saturating_add(1);
                    n.half_open = false;
                    self.beside.breakers.insert(s.node, ());
                }
            }
            launch.push((s.node, s.delay));
        }
        self.launch(unit.group, launch);
    }

    /// Closes the breakers whose node, started once after its cool-down,
    /// has been HEALTHY for its owner's intensity window (its deaths there
    /// are forgotten by then). Called every second; only tripped nodes are
    /// looked at.
    pub(super) fn close_breakers(&mut self) {
        let now = self.clock;
        let closed: Vec<_> = self
            .beside
            .breakers
            .keys()
            .filter_map(|k| Some((k, plan::breaker_closes(&self.tree, k, now)?)))
            .collect();
        for (k, within) in closed {
            self.beside.breakers.remove(k);
            let Some(n) = self.tree.node_mut(k) else {
                continue;
            };
            n.trips = 0;
            n.half_open = false;
            let message = format!(
                "{}: HEALTHY for {within:?} after its breaker's trial start: breaker closed",
                n.dn
            );
            let said = Said::new(Level::Info, "breaker_closed", message).dn(&n.dn);
            self.voice.say(said);
        }
    }

    /// The owner's restart intensity is exceeded: it gives up and dies (its
    /// children are stopped with it), so that its own parent's policy takes
    /// over. `None`: the supervisor gives up on the root and shuts down.
    pub(super) fn give_up(&mut self, owner: Option<NodeKey>, reason: String) {
        let dn = owner.and_then(|p| self.tree.node(p)).map(|n| n.dn.clone());
        let name = dn.as_deref().unwrap_or("the supervisor");
        self.sinks.tell(format_args!("escalated({name})"), |m| {
            m.escalated(dn.as_deref())
        });
        let Some(p) = owner else {
            let message = format!("the supervisor gives up: {reason}; shutting down");
            let said = Said::new(Level::Error, "gave_up", message).reason(reason.as_str());
            self.voice.say(said);
            return self.begin_shutdown(Ended::GaveUp { reason });
        };
        if let Some(dn) = &dn {
            let message = format!("{dn} gives up: {reason}");
            let said = Said::new(Level::Error, "escalated", message).dn(dn);
            self.voice.say(said.reason(reason.as_str()));
        }
        let Some(parent) = self.tree.node_mut(p) else {
            return;
        };
        if parent.state().is_live() {
            // Its exit, whatever it returns, will be this death.
            parent.doom = Some(reason.into());
            self.tree.take_down(p);
        } else {
            self.die(p, reason, ExitKind::GaveUp, &[]);
        }
    }
}
