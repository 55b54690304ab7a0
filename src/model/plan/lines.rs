//! How a restart is announced: the supervisor's lines for a plan's launches.

use std::sync::Arc;

use log::Level;

use super::Launch;
use crate::model::records::NodeState;
use crate::model::tree::Tree;
use crate::model::voice::Said;

/// How a restart is announced: one line per dead member, one for all the
/// siblings that come back with them (a group of 50,000 must not mean
/// 50,000 lines, nor 50,000 names copied to show five).
pub(crate) fn log_lines(tree: &Tree, launches: &[Launch]) -> Vec<Said> {
    let mut lines = Vec::new();
    let mut shown: Vec<&str> = Vec::new();
    let mut at_once = 0usize;
    let mut cause: Option<&Arc<str>> = None;
    let mut requested: Option<&Arc<str>> = None;
    let mut relaunched = false;
    let mut first: Option<&Arc<str>> = None;
    for l in launches {
        let Some(n) = tree.node(l.node) else {
            continue;
        };
        if l.parked {
            let owner = n
                .parent
                .and_then(|p| tree.node(p))
                .map_or("the supervisor", |p| &*p.dn);
            let message = format!(
                "{} exceeded {owner}'s restart intensity: breaker open (trip {}), next try in {:?}",
                n.dn,
                n.trips.saturating_add(1),
                l.delay
            );
            let said = Said::new(Level::Warn, "breaker_opened", message)
                .dn(&n.dn)
                .backoff(l.delay);
            lines.push(said);
            continue;
        }
        if l.handover {
            let message = format!(
                "{} exceeded its restart intensity: handing its lease over, campaigning again in {:?}",
                n.dn, l.delay
            );
            let said = Said::new(Level::Warn, "handing_over", message)
                .dn(&n.dn)
                .backoff(l.delay);
            lines.push(said);
            continue;
        }
        if n.state() == NodeState::Dead {
            let restart = n.restarts + 1;
            let message = format!("restarting {} (restart {restart}) in {:?}", n.dn, l.delay);
            let said = Said::new(Level::Info, "restarting", message)
                .dn(&n.dn)
                .restarts(restart)
                .backoff(l.delay)
                .incarnation(restart + 1);
            lines.push(said);
            cause.get_or_insert(&n.dn);
        } else if !l.delay.is_zero() {
            // A sibling of a parked member: it waits out the breaker's
            // cool-down with the unit, which the breaker line says.
            continue;
        } else {
            at_once += 1;
            first.get_or_insert(&n.dn);
            if n.requested {
                requested.get_or_insert(&n.dn);
            }
            relaunched |= n.relaunch;
            if shown.len() < 5 {
                shown.push(&n.dn);
            }
        }
    }
    if at_once > 0 {
        let more = match at_once - shown.len() {
            0 => String::new(),
            more => format!(" and {more} more"),
        };
        let names = format!("{}{more}", shown.join(", "));
        // Siblings only of a member that died; otherwise the unit's own
        // restart (on request, or after its owner's stop).
        let (event, message, dn) = match (cause, requested) {
            (Some(dead), _) => (
                "restarting_siblings",
                format!("restarting the group siblings of {dead} at once: {names}"),
                dead,
            ),
            (None, Some(by)) => (
                "restarting",
                format!("restarting {names} at once, on request"),
                by,
            ),
            (None, None) if relaunched => match first {
                Some(first) => (
                    "restarting",
                    format!("restarting {names} at once: its lease was lost, it campaigns again"),
                    first,
                ),
                None => return lines,
            },
            (None, None) => match first {
                Some(first) => ("restarting", format!("restarting {names} at once"), first),
                None => return lines,
            },
        };
        lines.push(Said::new(Level::Info, event, message).dn(dn));
    }
    lines
}
