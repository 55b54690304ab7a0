//! What the processor makes of a singleton's lease (see `runtime/seat.rs`):
//! STANDBY while its host campaigns, NEW once it holds the lease, and after
//! a lost lease a relaunch of the node alone, at once, campaigning again
//! (the sweep's `relaunch` unit). Each change is said (`standby`,
//! `acquired`, `released`, `lost`) and kept for snapshots (who holds it,
//! with which fencing token).

use std::borrow::Cow;

use log::Level;

use super::Processor;
use crate::api::wire::inbox::{LeaseChange, LeaseMsg};
use crate::model::lease::Loss;
use crate::model::records::{ExitKind, LeaseInfo, NodeState};
use crate::model::tree::NodeKey;
use crate::model::voice::Said;

impl Processor {
    pub(super) fn on_lease(&mut self, msg: LeaseMsg) {
        let LeaseMsg {
            node: k,
            incarnation,
            change,
        } = msg;
        let Some(n) = self.tree.node(k) else { return };
        let dn = n.dn.clone();
        let current = n.incarnation == incarnation && n.state().is_live();
        // A release comes after the incarnation's exit may have been
        // handled: it is said whatever the state.
        if let LeaseChange::Released { token, why } = change {
            self.beside.leases.insert(k, LeaseInfo::default());
            let message = format!("{dn}: released its lease (fencing token {token}): {why}");
            let said = Said::new(Level::Info, "released", message).dn(&dn);
            self.voice.say(said.reason(why).fencing_token(Some(token)));
            return;
        }
        if !current {
            return; // a previous incarnation's late report
        }
        match change {
            LeaseChange::Standby { holder, failed } => {
                if self.tree.set_state(k, NodeState::Standby) != NodeState::Standby {
                    self.sinks.state(&dn, NodeState::Standby);
                }
                if let Some(n) = self.tree.node_mut(k) {
                    n.started_ms = None;
                }
                let token = holder.as_ref().map(|h| h.1);
                let message = match (&holder, &failed) {
                    (Some((by, token)), _) => {
                        format!("{dn}: standby, its lease is held by {by} (fencing token {token})")
                    }
                    (None, Some(why)) => format!("{dn}: standby, campaigning: {why}"),
                    (None, None) => format!("{dn}: standby, campaigning"),
                };
                let level = if failed.is_some() {
                    Level::Warn
                } else {
                    Level::Info
                };
                let said = Said::new(level, "standby", message).dn(&dn);
                self.voice.say(said.fencing_token(token));
                let info = LeaseInfo {
                    holder: holder.as_ref().map(|h| h.0.clone()),
                    token,
                    held_here: false,
                };
                self.beside.leases.insert(k, info);
            }
            LeaseChange::Acquired { token, holder } => {
                if self.tree.set_state(k, NodeState::New) != NodeState::New {
                    self.sinks.state(&dn, NodeState::New);
                }
                self.mark_started(k);
                let message =
                    format!("{dn}: acquired its lease as {holder} (fencing token {token})");
                let said = Said::new(Level::Info, "acquired", message).dn(&dn);
                self.voice.say(said.fencing_token(Some(token)));
                let info = LeaseInfo {
                    holder: Some(holder),
                    token: Some(token),
                    held_here: true,
                };
                self.beside.leases.insert(k, info);
            }
            LeaseChange::Released { .. } => {}
        }
    }

    /// `k` was stopped because its lease fell: it is CANCELLED (of kind
    /// `lease_lost`), and comes back alone once its subtree has exited.
    pub(super) fn lease_lost(&mut self, k: NodeKey, why: Loss) {
        let token = self.beside.leases.get(k).and_then(|l| l.token);
        if let Some(n) = self.tree.node(k) {
            let message = format!(
                "{}: lost its lease{}: {why}; stopped, campaigning again",
                n.dn,
                token.map_or_else(String::new, |t| format!(" (fencing token {t})")),
            );
            let said = Said::new(Level::Warn, "lost", message)
                .dn(&n.dn)
                .reason(why.as_str())
                .exit_kind(ExitKind::LeaseLost)
                .incarnation(n.restarts + 1);
            self.voice.say(said.fencing_token(token));
        }
        self.beside.leases.insert(k, LeaseInfo::default());
        self.exit(
            k,
            NodeState::Cancelled,
            ExitKind::LeaseLost,
            Cow::Borrowed(why.as_str()),
        );
        if let Some(n) = self.tree.node_mut(k) {
            n.relaunch = true;
        }
    }
}
