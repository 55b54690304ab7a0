//! The planner's rules, each on a small tree, without actors.

use super::*;
use crate::model::policy::{Exceeded, Intensity, Park, Strategy};
use crate::model::policy::{GroupOptions, Spec};
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

/// The tree of [`tree`], its root parking instead of giving up.
fn parking_tree(park: Park) -> (Tree, NodeKey, NodeKey) {
    let (mut t, a, b) = tree(Some(Intensity::new(1, 10 * MS * 1000)));
    let root = t.root();
    let spec = Spec {
        intensity: Some(Intensity::new(1, 10 * MS * 1000)),
        exceeded: Exceeded::Park(park),
        ..Spec::default()
    };
    t.set_spec(root, spec);
    (t, a, b)
}

#[test]
fn over_its_intensity_a_parking_owner_parks_the_unit_instead_of_escalating() {
    let park = Park::new(1000 * MS);
    let (mut t, a, b) = parking_tree(park);
    let now = Instant::now();
    let unit = kill(&mut t, a, b, "boom");
    let plan = decide(&t, &unit, &backoff(), now, &mut half());
    apply(&mut t, &unit, &plan, now);
    let unit = kill(&mut t, a, b, "boom");
    let Plan::Restart(starts) = decide(&t, &unit, &backoff(), now, &mut half()) else {
        panic!("parked, not escalated");
    };
    // The whole unit waits the cool-down; the dead member tripped it.
    assert!(starts.iter().all(|l| l.delay == 1000 * MS), "{starts:?}");
    let parked: Vec<bool> = starts.iter().map(|l| l.parked).collect();
    assert_eq!(parked.iter().filter(|p| **p).count(), 1, "{starts:?}");
    // One line says it: the breaker's, not a restart "at once" of the
    // sibling that waits with it.
    let lines = log_lines(&t, &starts);
    let events: Vec<&str> = lines.iter().map(|l| l.event).collect();
    assert_eq!(events, ["breaker_opened"], "{lines:?}");
}

#[test]
fn cool_downs_double_per_trip_up_to_the_cap() {
    let park = Park::new(1000 * MS).max(3000 * MS);
    let cooldowns: Vec<Duration> = (0..4).map(|trips| park.cooldown(trips)).collect();
    assert_eq!(cooldowns, [1000 * MS, 2000 * MS, 3000 * MS, 3000 * MS]);
    assert_eq!(
        Park::new(MS).cooldown(u16::MAX),
        16 * MS,
        "the default cap, no overflow"
    );
}

#[test]
fn a_breaker_closes_after_healthy_for_the_window_on_probation_only() {
    let (mut t, a, _) = parking_tree(Park::new(1000 * MS));
    let start = Instant::now();
    t.set_state(a, NodeState::Healthy);
    let since = t.ms(start);
    let n = t.node_mut(a).unwrap();
    n.healthy_ms = Some(since);
    n.trips = 1;
    let window = 10 * MS * 1000;
    // Tripped, but not yet started after its cool-down: stays open.
    assert_eq!(breaker_closes(&t, a, start + window), None);
    t.node_mut(a).unwrap().half_open = true;
    assert_eq!(
        breaker_closes(&t, a, start + window - MS),
        None,
        "not before"
    );
    assert_eq!(breaker_closes(&t, a, start + window), Some(window));
    // Never tripped: nothing to close.
    t.node_mut(a).unwrap().trips = 0;
    assert_eq!(breaker_closes(&t, a, start + window), None);
}
