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

use log::Level;

use crate::model::policy::Backoff;
use crate::model::records::{NodeState, Signal};
use crate::model::sweep::Unit;
use crate::model::tree::{Node, NodeKey, Tree};
use crate::model::voice::Said;

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
            }
        })
        .collect();
    Plan::Restart(starts)
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
    })
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

/// How a restart is announced: one line per dead member, one for all the
/// siblings that come back with them (a group of 50,000 must not mean
/// 50,000 lines, nor 50,000 names copied to show five).
pub(crate) fn log_lines(tree: &Tree, launches: &[Launch]) -> Vec<Said> {
    let mut lines = Vec::new();
    let mut shown: Vec<&str> = Vec::new();
    let mut at_once = 0usize;
    let mut cause: Option<&std::sync::Arc<str>> = None;
    let mut requested: Option<&std::sync::Arc<str>> = None;
    let mut relaunched = false;
    let mut first: Option<&std::sync::Arc<str>> = None;
    for l in launches {
        let Some(n) = tree.node(l.node) else {
            continue;
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::{GroupOptions, Spec};
    use crate::model::policy::{Intensity, Strategy};
    use crate::model::sweep::sweep;
    use crate::model::tree::Defaults;
    use tokio_util::sync::CancellationToken;

    const MS: Duration = Duration::from_millis(1);

    fn backoff() -> Backoff {
        Backoff::default()
            .initial(100 * MS)
            .multiplier(2.0)
            .max(400 * MS)
            .jitter(0.0)
    }

    /// root → {a, b} (one-for-all) with the given intensity on root.
    fn tree(intensity: Option<Intensity>) -> (Tree, NodeKey, NodeKey) {
        let mut t = Tree::new(CancellationToken::new(), Defaults::default());
        let root = t.root();
        t.set_spec(
            root,
            Spec {
                intensity,
                ..Spec::default()
            },
        );
        let options = GroupOptions {
            strategy: Strategy::OneForAll,
            ..GroupOptions::default()
        };
        let m = t.add_group(root, ["a", "b"].into_iter(), options).unwrap();
        t.take_dirty();
        (t, m[0], m[1])
    }

    /// `a` dies with `error`; `b` is cancelled and exits: the unit.
    fn kill(t: &mut Tree, a: NodeKey, b: NodeKey, error: &str) -> Unit {
        t.die(a, error);
        t.set_state(b, NodeState::Cancelled);
        let dirty = t.take_dirty();
        let mut units = sweep(t, dirty);
        assert_eq!(units.len(), 1);
        units.remove(0)
    }

    fn apply(t: &mut Tree, unit: &Unit, plan: &Plan, now: Instant) {
        let Plan::Restart(starts) = plan else {
            panic!("expected a restart, got {plan:?}")
        };
        let owner = t.group(unit.group).and_then(|g| g.owner);
        record(t, owner, now);
        for s in starts {
            t.reset(s.node, None);
            t.node_mut(s.node).unwrap().backoff = s.backoff;
        }
    }

    fn half() -> impl FnMut() -> f64 {
        || 0.5
    }

    #[test]
    fn the_dead_member_backs_off_and_its_sibling_starts_at_once() {
        let (mut t, a, b) = tree(None);
        let now = Instant::now();
        // (death number, delay of a): 100, 200, 400, then capped at 400.
        for (i, want) in [100, 200, 400, 400].into_iter().enumerate() {
            let unit = kill(&mut t, a, b, "boom");
            let plan = decide(&t, &unit, &backoff(), now, &mut half());
            let Plan::Restart(starts) = &plan else {
                panic!()
            };
            assert_eq!(starts[0].delay, want * MS, "death {i}");
            assert_eq!(starts[1].delay, Duration::ZERO);
            apply(&mut t, &unit, &plan, now);
        }
    }

    #[test]
    fn jitter_spreads_the_delay() {
        let (mut t, a, b) = tree(None);
        let unit = kill(&mut t, a, b, "boom");
        let b50 = backoff().jitter(0.5);
        let now = Instant::now();
        for (random, want) in [(0.0, 50), (0.5, 100), (0.999_999, 150)] {
            let Plan::Restart(s) = decide(&t, &unit, &b50, now, &mut || random) else {
                panic!()
            };
            assert!(
                s[0].delay.abs_diff(want * MS) < MS,
                "{random}: {:?}",
                s[0].delay
            );
        }
    }

    #[test]
    fn reset_after_healthy_for_long_enough() {
        let (mut t, a, b) = tree(None);
        let now = Instant::now();
        let slow = backoff().reset_after(Duration::from_secs(10));
        let unit = kill(&mut t, a, b, "boom");
        let plan1 = decide(&t, &unit, &slow, now, &mut half());
        apply(&mut t, &unit, &plan1, now);
        // Healthy for 1 s only: keeps backing off (200 ms).
        t.set_state(a, NodeState::Healthy);
        let ms = t.ms(now);
        t.node_mut(a).unwrap().healthy_ms = Some(ms);
        t.set_state(b, NodeState::Healthy);
        let unit = kill(&mut t, a, b, "boom");
        let Plan::Restart(s) = decide(&t, &unit, &slow, now + Duration::from_secs(1), &mut half())
        else {
            panic!()
        };
        assert_eq!(s[0].delay, 200 * MS);
        // Healthy for 10 s: back to the initial 100 ms.
        let Plan::Restart(s) = decide(&t, &unit, &slow, now + Duration::from_secs(10), &mut half())
        else {
            panic!()
        };
        assert_eq!(s[0].delay, 100 * MS);
    }

    /// (max_restarts, within, restarts at these ms, the last one escalates?)
    #[test]
    fn intensity_counts_restarts_within_the_window() {
        let cases: [(u32, u64, &[u64], bool); 6] = [
            (2, 1000, &[0, 10, 20], true),
            (2, 1000, &[0, 10], false),
            (2, 1000, &[0, 10, 1020], false),
            (0, 1000, &[0], true),
            (3, 100, &[0, 50, 99, 100], false),
            (3, 100, &[0, 50, 99, 100, 149], true),
        ];
        for (max, within, at, escalates) in cases {
            let intensity = Intensity {
                max_restarts: max,
                within: Duration::from_millis(within),
            };
            let (mut t, a, b) = tree(Some(intensity));
            let start = Instant::now();
            let mut last = None;
            for ms in at {
                let unit = kill(&mut t, a, b, "connection reset");
                let now = start + Duration::from_millis(*ms);
                let p = decide(&t, &unit, &backoff(), now, &mut half());
                if let Plan::Restart(_) = p {
                    apply(&mut t, &unit, &p, now);
                }
                last = Some(p);
            }
            let case = format!("max {max} within {within} ms at {at:?}");
            match last.unwrap() {
                Plan::Escalate { owner, reason } => {
                    assert!(escalates, "{case}: escalated: {reason}");
                    assert_eq!(owner, Some(t.root()));
                    assert!(reason.starts_with("restart intensity exceeded"), "{reason}");
                    assert!(reason.contains("last root.a: connection reset"), "{reason}");
                }
                Plan::Restart(_) => assert!(!escalates, "{case}: did not escalate"),
            }
        }
    }

    /// root → {s} (one-for-one), `s` a singleton, root allowing 1 restart
    /// in 10 s.
    fn singleton_tree() -> (Tree, NodeKey) {
        let mut t = Tree::new(CancellationToken::new(), Defaults::default());
        let root = t.root();
        let intensity = Some(Intensity::new(1, Duration::from_secs(10)));
        t.set_spec(
            root,
            Spec {
                intensity,
                ..Spec::default()
            },
        );
        let s = t
            .add_group(root, ["s"].into_iter(), GroupOptions::default())
            .unwrap()[0];
        t.set_spec(
            s,
            Spec {
                singleton: true,
                ..Spec::default()
            },
        );
        t.take_dirty();
        (t, s)
    }

    fn unit_of(t: &mut Tree) -> Unit {
        let dirty = t.take_dirty();
        let mut units = sweep(t, dirty);
        assert_eq!(units.len(), 1, "{units:?}");
        units.remove(0)
    }

    #[test]
    fn a_singleton_over_its_intensity_hands_over_instead_of_escalating() {
        let (mut t, s) = singleton_tree();
        let now = Instant::now();
        t.die(s, "boom");
        let unit = unit_of(&mut t);
        let first = decide(&t, &unit, &backoff(), now, &mut half());
        let Plan::Restart(starts) = &first else {
            panic!("{first:?}")
        };
        assert!(!starts[0].handover, "within its intensity: restarted here");
        apply(&mut t, &unit, &first, now);
        t.die(s, "boom");
        let unit = unit_of(&mut t);
        let Plan::Restart(starts) = decide(&t, &unit, &backoff(), now, &mut half()) else {
            panic!("a lone singleton does not take its owner down")
        };
        assert!(starts[0].handover);
        assert_eq!(
            starts[0].delay,
            Duration::from_secs(10),
            "waits out the window"
        );
        let lines = log_lines(&t, &starts);
        assert_eq!(lines[0].event, "handing_over");
        assert!(lines[0]
            .message
            .contains("root.s exceeded its restart intensity"));
        // Not a singleton: the owner gives up, as before.
        t.set_spec(s, Spec::default());
        assert!(matches!(
            decide(&t, &unit, &backoff(), now, &mut half()),
            Plan::Escalate { .. }
        ));
    }

    #[test]
    fn a_lost_lease_restarts_at_once_and_counts_for_nothing() {
        let (mut t, a, b) = tree(Some(Intensity::new(0, Duration::from_secs(10))));
        t.node(a).unwrap().token.cancel();
        t.node_mut(a).unwrap().relaunch = true;
        t.set_state(a, NodeState::Cancelled);
        let unit = unit_of(&mut t);
        assert_eq!(
            unit.members,
            vec![a],
            "alone, though its group is one-for-all"
        );
        assert!(on_request(&t, &unit));
        let now = Instant::now();
        let Plan::Restart(starts) = decide(&t, &unit, &backoff(), now, &mut half()) else {
            panic!("a relaunch is never an escalation, even with no restarts allowed")
        };
        assert_eq!(starts[0].delay, Duration::ZERO);
        let lines = log_lines(&t, &starts);
        assert!(
            lines[0].message.contains("its lease was lost"),
            "{}",
            lines[0].message
        );
        assert_eq!(
            t.node(b).unwrap().state(),
            NodeState::New,
            "its sibling never stopped"
        );
    }

    #[test]
    fn the_supervisor_counts_restarts_of_the_root() {
        let mut t = Tree::new(
            CancellationToken::new(),
            Defaults {
                intensity: Some(Intensity {
                    max_restarts: 1,
                    within: Duration::from_secs(5),
                }),
                ..Defaults::default()
            },
        );
        let root = t.root();
        let now = Instant::now();
        for round in 0..2 {
            t.node_mut(root).unwrap().last_error = Some("root broke".into());
            t.set_state(root, NodeState::Dead);
            t.take_down(root);
            let dirty = t.take_dirty();
            let unit = sweep(&t, dirty).remove(0);
            match decide(&t, &unit, &backoff(), now, &mut half()) {
                Plan::Restart(starts) if round == 0 => {
                    record(&mut t, None, now);
                    t.reset(starts[0].node, None);
                }
                Plan::Escalate {
                    owner: None,
                    reason,
                } if round == 1 => {
                    assert_eq!(
                        reason,
                        "restart intensity exceeded: 2 restarts in 5s, last root: root broke"
                    );
                }
                other => panic!("round {round}: {other:?}"),
            }
        }
    }

    #[test]
    fn jitter_values_stay_in_range() {
        let mut j = Jitter::seeded();
        for _ in 0..10_000 {
            let v = j.next();
            assert!((0.0..1.0).contains(&v), "{v}");
        }
    }
}
