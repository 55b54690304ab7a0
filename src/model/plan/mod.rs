//! The restart planner: what to do with a unit the sweep found.
//!
//! A pure function beside [`sweep`](crate::model::sweep): given the tree, a unit,
//! the backoff settings, "now" and a source of randomness for the jitter, it
//! returns a [`Plan`]: start each member after a delay, or give up and let
//! the owner (or the supervisor, for the root) escalate. The processor only
//! applies plans.
//!
//! Rules, in OTP's terms:
//! - DEAD members wait out their next backoff; the others (cancelled because
//!   of a sibling or an ancestor) start at once.
//! - A backoff resets when the node signalled Healthy or Done, or, with
//!   `reset_after`, once it has stayed healthy that long.
//! - The unit's restart counts once against its owner's intensity; if that
//!   makes more than `max_restarts` within `within`, the owner gives up.
//! - Except for a singleton alone in its unit (see the `fleet` module): it
//!   hands its lease over instead, and waits at least `within` before it
//!   campaigns again, so that a replica that cannot run the job lets
//!   another one run it.
//! - A restart on request, or a singleton's after a lost lease, does not
//!   count, and nobody waits.
//!
//! Beside the planner: the intensity window's bookkeeping ([`record`],
//! [`window`]), what a signal does to a backoff ([`reset_on_signal`]), and
//! the log lines a restart is announced with ([`log_lines`]).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::policy::{Backoff, Exceeded, Park};
use crate::model::records::{NodeState, Signal};
use crate::model::sweep::Unit;
use crate::model::tree::{Node, NodeKey, Tree};

mod lines;
#[cfg(test)]
mod tests;

pub(crate) use lines::log_lines;

/// What the processor is to do with a unit.
#[derive(Debug, PartialEq)]
pub(crate) enum Plan {
    /// Restart every member of the unit, in order.
    Restart(Vec<Launch>),
    /// The owner (`None`: the supervisor itself) gives up, with this reason.
    Escalate {
        owner: Option<NodeKey>,
        reason: String,
    },
}

/// One member's restart.
#[derive(Debug, PartialEq)]
pub(crate) struct Launch {
    pub node: NodeKey,
    /// How long to wait before the runnable starts.
    pub delay: Duration,
    /// The backoff interval to keep for the member's next death.
    pub backoff: Option<Duration>,
    /// A singleton gives its lease up before it waits (see the module docs).
    pub handover: bool,
    /// Its owner parks it behind a breaker (`Exceeded::Park`): the delay
    /// is the breaker's cool-down, and this member is the one that tripped it.
    pub parked: bool,
}

/// Decides a unit's restart. `random` yields values in `0.0..1.0`.
pub(crate) fn decide(
    tree: &Tree,
    unit: &Unit,
    backoff: &Backoff,
    now: Instant,
    random: &mut dyn FnMut() -> f64,
) -> Plan {
    let owner = tree.group(unit.group).and_then(|g| g.owner);
    let counted = !on_request(tree, unit);
    let park = match tree.exceeded_of(owner) {
        Exceeded::Park(park) => Some(park),
        Exceeded::Escalate => None,
    };
    // A death while on probation opens the breaker again at once.
    let reopened = unit
        .members
        .iter()
        .filter_map(|m| tree.node(*m))
        .any(|n| n.half_open && n.state() == NodeState::Dead);
    if let Some(park) = park.filter(|_| reopened && counted) {
        return Plan::Restart(park_unit(tree, unit, park));
    }
    if let Some(intensity) = tree.intensity_of(owner).filter(|_| counted) {
        let recent = window(tree, owner).map_or(0, |w| {
            w.iter()
                .filter(|t| now.duration_since(**t) < intensity.within)
                .count()
        });
        let count = recent + 1;
        if count > intensity.max_restarts as usize {
            if let Some(handover) = hand_over(tree, unit, intensity.within, backoff, random) {
                return Plan::Restart(vec![handover]);
            }
            if let Some(park) = park {
                return Plan::Restart(park_unit(tree, unit, park));
            }
            let culprit = unit
                .members
                .iter()
                .filter_map(|m| tree.node(*m))
                .find(|n| n.state() == NodeState::Dead)
                .or_else(|| unit.members.first().and_then(|m| tree.node(*m)));
            let last = culprit.map_or_else(
                || "none".to_string(),
                |n| {
                    let error = n.last_error.as_deref().unwrap_or("cancelled");
                    format!("{}: {error}", n.dn)
                },
            );
            return Plan::Escalate {
                owner,
                reason: format!(
                    "restart intensity exceeded: {count} restarts in {:?}, last {last}",
                    intensity.within
                ),
            };
        }
    }
    let starts = unit
        .members
        .iter()
        .filter_map(|m| Some((*m, tree.node(*m)?)))
        .map(|(m, n)| {
            if n.state() != NodeState::Dead {
                return Launch {
                    node: m,
                    delay: Duration::ZERO,
                    backoff: n.backoff,
                    handover: false,
                    parked: false,
                };
            }
            let healthy_long_enough = backoff.reset_after_of().is_some_and(|d| {
                n.healthy_ms
                    .is_some_and(|ms| now.saturating_duration_since(tree.at(ms)) >= d)
            });
            let current = if healthy_long_enough { None } else { n.backoff };
            let (delay, next) = backoff.delay(current, random());
            Launch {
                node: m,
                delay,
                backoff: Some(next),
                handover: false,
                parked: false,
            }
        })
        .collect();
    Plan::Restart(starts)
}

/// The unit waits out its breaker's cool-down, longer with each trip of
/// its DEAD members since the breaker last closed, and then restarts as
/// a whole; the DEAD members are the ones that tripped it.
fn park_unit(tree: &Tree, unit: &Unit, park: Park) -> Vec<Launch> {
    let members = || {
        unit.members
            .iter()
            .filter_map(|m| Some((*m, tree.node(*m)?)))
    };
    let trips = members()
        .filter(|(_, n)| n.state() == NodeState::Dead)
        .map(|(_, n)| n.trips)
        .max()
        .unwrap_or(0);
    let delay = park.cooldown(trips);
    members()
        .map(|(m, n)| Launch {
            node: m,
            delay,
            backoff: n.backoff,
            handover: false,
            parked: n.state() == NodeState::Dead,
        })
        .collect()
}

/// A singleton alone in its unit that exceeded its owner's intensity: it
/// gives its lease up and waits out its next backoff, but at least the
/// intensity's window (its restarts there are forgotten by then).
fn hand_over(
    tree: &Tree,
    unit: &Unit,
    within: Duration,
    backoff: &Backoff,
    random: &mut dyn FnMut() -> f64,
) -> Option<Launch> {
    let [k] = unit.members[..] else {
        return None;
    };
    let n = tree.node(k)?;
    if !tree.is_singleton(k) {
        return None;
    }
    let (delay, next) = backoff.delay(n.backoff, random());
    Some(Launch {
        node: k,
        delay: delay.max(within),
        backoff: Some(next),
        handover: true,
        parked: false,
    })
}

/// Whether `k`'s breaker closes at `now`: it was started once after its
/// cool-down (half-open) and has been HEALTHY since for its owner's
/// intensity window (its deaths there are forgotten by then). That window,
/// if so.
pub(crate) fn breaker_closes(tree: &Tree, k: NodeKey, now: Instant) -> Option<Duration> {
    let n = tree.node(k)?;
    let owner = tree.group(n.group).and_then(|g| g.owner);
    let within = tree
        .intensity_of(owner)
        .map_or(Duration::ZERO, |i| i.within);
    let healthy_since = n
        .healthy_ms
        .filter(|_| n.trips > 0 && n.half_open && n.state() == NodeState::Healthy)?;
    (now.saturating_duration_since(tree.at(healthy_since)) >= within).then_some(within)
}

/// A restart on request ([`Supervisor::restart`](crate::Supervisor::restart)),
/// or a singleton's after it lost its lease: a member was stopped for it and
/// none died meanwhile. It does not count against the owner's intensity.
pub(crate) fn on_request(tree: &Tree, unit: &Unit) -> bool {
    let nodes = || unit.members.iter().filter_map(|m| tree.node(*m));
    nodes().any(|n| n.requested || n.relaunch) && !nodes().any(|n| n.state() == NodeState::Dead)
}

/// The restart window of a group's owner (the supervisor's for the root's):
/// when it restarted its children lately.
pub(crate) fn window(tree: &Tree, owner: Option<NodeKey>) -> Option<&VecDeque<Instant>> {
    match owner {
        Some(o) => tree.node(o)?.window.as_deref(),
        None => Some(&tree.top_window),
    }
}

/// Records a restart that `owner` performed at `now`, keeping only what
/// its intensity window can still count.
pub(crate) fn record(tree: &mut Tree, owner: Option<NodeKey>, now: Instant) {
    let Some(intensity) = tree.intensity_of(owner) else {
        return;
    };
    let window = match owner {
        Some(o) => match tree.node_mut(o) {
            Some(n) => &mut **n.window.get_or_insert_with(Default::default),
            None => return,
        },
        None => &mut tree.top_window,
    };
    window.push_back(now);
    while window.len() > intensity.max_restarts as usize + 1
        || window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= intensity.within)
    {
        window.pop_front();
    }
}

/// What an accepted signal does to a node's backoff: Done resets it, and so
/// does Healthy unless the backoff asks for a stretch of health first
/// (`reset_after`, which the planner checks at the next death).
pub(crate) fn reset_on_signal(node: &mut Node, signal: Signal, backoff: &Backoff) {
    if signal == Signal::Done || backoff.reset_after_of().is_none() {
        node.backoff = None;
    }
}

/// xorshift64*: the jitter's randomness, seeded once per supervisor.
#[derive(Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub fn seeded() -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x2545_F491, |d| d.as_nanos() as u64);
        Jitter(nanos | 1)
    }

    /// A value in `0.0..1.0`.
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}
