//! The simulated tree's shape, drawn from the seed: which nodes there are,
//! each with its policy, and which groups each node starts on every
//! incarnation. Shared by the world (the runnables start these groups) and
//! the model (which creates the same children when a node starts).

use std::collections::BTreeMap;

use actix_supervisor::{Restart, Strategy};

/// Milliseconds of virtual time since the supervisor started.
pub type Ms = u64;

/// How a node is stopped once cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Timeout(Ms),
    Brutal,
    Infinity,
}

/// One node's policy.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub restart: Restart,
    pub stop: Stop,
    pub start_timeout: Option<Ms>,
    /// Its restart intensity as a parent: at most this many within.
    pub intensity: Option<(u32, Ms)>,
}

/// A group a node starts on every incarnation.
#[derive(Clone, Debug)]
pub struct GroupShape {
    pub members: Vec<String>,
    pub strategy: Strategy,
    pub ordered_start: bool,
    pub ordered_stop: bool,
    /// A dynamic node (one member, no runnable of the world's): its
    /// children come and go by the driver's requests.
    pub dynamic: bool,
}

/// The whole shape.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Each static DN's policy (the root's is the builder's).
    pub specs: BTreeMap<String, Spec>,
    /// Each DN's groups, in start order.
    pub groups: BTreeMap<String, Vec<GroupShape>>,
    /// The dynamic node, if any, with its children's policy.
    pub dynamic: Option<(String, usize, Spec)>,
    /// The builder's restart intensity (every parent without its own, and
    /// the supervisor's restarts of the root).
    pub default_intensity: Option<(u32, Ms)>,
}

/// The builder's stop mode (`shutdown_timeout`).
pub const DEFAULT_STOP: Ms = 200;
/// The backoff: 100 ms, ×2, at most 1.6 s, no jitter.
pub const BACKOFF_INITIAL: Ms = 100;
pub const BACKOFF_MAX: Ms = 1600;

impl Shape {
    pub fn random(rng: &mut fastrand::Rng) -> Shape {
        let mut shape = Shape {
            specs: BTreeMap::new(),
            groups: BTreeMap::new(),
            dynamic: None,
            default_intensity: rng.bool().then(|| (rng.u32(1..4), 1000 * rng.u64(1..6))),
        };
        let root = Spec {
            restart: Restart::Permanent,
            stop: Stop::Timeout(DEFAULT_STOP),
            start_timeout: None,
            intensity: shape.default_intensity,
        };
        shape.specs.insert("root".into(), root);
        let mut budget = rng.usize(3..16);
        let mut queue = vec![("root".to_string(), 0u32)];
        while let Some((dn, depth)) = queue.pop() {
            if depth >= 3 || budget == 0 {
                continue;
            }
            let groups = rng.usize(1..3);
            for g in 0..groups {
                let size = rng.usize(1..4).min(budget);
                if size == 0 {
                    break;
                }
                budget -= size;
                let members: Vec<String> =
                    (0..size).map(|i| format!("{dn}.n{depth}{g}{i}")).collect();
                for m in &members {
                    let k = shape.specs.len() as u64;
                    shape.specs.insert(m.clone(), random_spec(rng, k));
                    if rng.u8(0..3) > 0 {
                        queue.push((m.clone(), depth + 1));
                    }
                }
                let strategy = match rng.u8(0..3) {
                    0 => Strategy::OneForAll,
                    1 => Strategy::OneForOne,
                    _ => Strategy::RestForOne,
                };
                let group = GroupShape {
                    members,
                    strategy,
                    ordered_start: rng.u8(0..5) == 0,
                    ordered_stop: rng.u8(0..5) == 0,
                    dynamic: false,
                };
                shape.groups.entry(dn.clone()).or_default().push(group);
            }
        }
        if rng.bool() {
            // A dynamic node under a random static node.
            let owners: Vec<String> = shape.specs.keys().cloned().collect();
            let owner = owners[rng.usize(0..owners.len())].clone();
            let dn = format!("{owner}.dyn");
            // The dynamic node takes the builder's defaults but its
            // intensity (`DynamicGroup::max_restarts`).
            let spec = Spec {
                restart: Restart::Permanent,
                stop: Stop::Timeout(DEFAULT_STOP),
                start_timeout: None,
                intensity: random_spec(rng, 0).intensity,
            };
            shape.specs.insert(dn.clone(), spec);
            let group = GroupShape {
                members: vec![dn.clone()],
                strategy: Strategy::OneForAll,
                ordered_start: false,
                ordered_stop: false,
                dynamic: true,
            };
            shape.groups.entry(owner).or_default().push(group);
            let k = shape.specs.len() as u64;
            let mut child = random_spec(rng, k);
            child.intensity = None;
            shape.dynamic = Some((dn, rng.usize(2..5), child));
        }
        shape
    }

    /// The groups `dn` starts on every incarnation.
    pub fn groups_of(&self, dn: &str) -> &[GroupShape] {
        self.groups.get(dn).map_or(&[], Vec::as_slice)
    }

    /// The policy of `dn`. A dynamic child's is the dynamic children's,
    /// its deadlines offset by its name (`a`, `b`, ...) like a static
    /// node's by its index.
    pub fn spec_of(&self, dn: &str) -> Spec {
        if let Some(s) = self.specs.get(dn) {
            return *s;
        }
        match &self.dynamic {
            Some((d, _, child)) if dn.starts_with(&format!("{d}.")) => {
                let name = dn.rsplit('.').next().unwrap_or_default();
                let k = name.bytes().next().map_or(0, |b| u64::from(b - b'a') + 1);
                let mut spec = *child;
                spec.start_timeout = spec.start_timeout.map(|d| d + 11 * k);
                if let Stop::Timeout(d) = spec.stop {
                    spec.stop = Stop::Timeout(d + 5 * k);
                }
                spec
            }
            _ => panic!("no spec for {dn}"),
        }
    }

    /// The intensity `dn` applies to its children's restarts.
    pub fn intensity_of(&self, dn: Option<&str>) -> Option<(u32, Ms)> {
        match dn {
            Some(dn) => self.spec_of(dn).intensity.or(self.default_intensity),
            None => self.default_intensity,
        }
    }
}

/// A policy for the `k`th node. Its stop and start deadlines are its own
/// (offset by `k`): two nodes started at one instant never reach a deadline
/// at one instant, where the order the timers fire in would decide.
fn random_spec(rng: &mut fastrand::Rng, k: u64) -> Spec {
    Spec {
        restart: match rng.u8(0..10) {
            0 | 1 => Restart::Transient,
            2 => Restart::Temporary,
            _ => Restart::Permanent,
        },
        stop: match rng.u8(0..10) {
            0 | 1 => Stop::Brutal,
            2 => Stop::Infinity,
            _ => Stop::Timeout([50, 100, 200, 500][rng.usize(0..4)] + 3 * k),
        },
        start_timeout: (rng.u8(0..5) == 0).then(|| [300, 800, 1500][rng.usize(0..3)] + 7 * k),
        intensity: (rng.u8(0..3) == 0).then(|| (rng.u32(1..5), 1000 * rng.u64(1..6))),
    }
}
