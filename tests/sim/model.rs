//! The reference model of the policy: a plain state machine over the same
//! events the supervisor sees, written from the rules as the docs state them
//! (README, `docs/design.md`'s tables, OTP's supervisor), not from the
//! processor or the planner. After every step of a simulation the
//! supervisor's snapshot must equal what this model says.
//!
//! Time is in whole milliseconds of virtual time. Within one instant the
//! model applies every consequence until nothing changes (a fixed point):
//! the simulation compares only states the supervisor has settled in.

use std::collections::{BTreeMap, HashMap, VecDeque};

use actix_supervisor::{ExitKind, NodeState, Restart, Strategy};

use super::shape::{Ms, Shape, Spec, Stop, BACKOFF_INITIAL, BACKOFF_MAX};

/// What the runnable has signalled in this incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    New,
    Healthy,
    Done,
}

/// How an incarnation ended, as its runnable (or its host) ended it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Err,
    Panic,
    /// Its task panicked before anything cancelled it.
    TaskPanic,
    /// Dropped at its stop deadline.
    Aborted,
    /// Cancelled before its start (a backoff, a gate): never ran.
    NeverStarted,
    StartTimedOut,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    NotRunning,
    Full,
    Duplicate,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub dn: String,
    pub parent: Option<String>,
    /// Which of its parent's groups it is in.
    pub group: usize,
    pub spec: Spec,
    /// The dynamic node (the crate's own runnable: Healthy at once).
    pub dynamic: bool,
    /// A dynamic node's child: removed for good, no record kept.
    pub dyn_child: bool,
    /// Its state inside the supervisor: NEW while a restart is pending.
    pub state: NodeState,
    /// A restart pending: the state it reports meanwhile, and when it is
    /// due (what the snapshot's `restart_at` says).
    pub waiting: Option<(NodeState, Ms)>,
    /// Its delay, counted from when its gate opens (ordered start).
    pub delay: Ms,
    /// Its start waits for its predecessor (ordered start).
    pub gated: bool,
    /// When its host starts it, once known.
    pub start_due: Option<Ms>,
    /// Its runnable was called and has not ended.
    pub running: bool,
    pub phase: Phase,
    /// Its own token was cancelled (its ancestors' count too: see
    /// [`Model::cancelled`]).
    pub cancelled: bool,
    /// When a deaf runnable is dropped (its stop deadline).
    pub abort_at: Option<Ms>,
    pub deaf: bool,
    pub misuse: bool,
    pub doom: bool,
    pub requested: bool,
    pub removing: bool,
    pub restarts: u64,
    pub backoff: Option<Ms>,
    pub started_at: Ms,
    pub groups: Vec<Group>,
    pub window: VecDeque<Ms>,
    pub last_kind: Option<ExitKind>,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub members: Vec<String>,
    pub strategy: Strategy,
    pub ordered_start: bool,
    pub ordered_stop: bool,
    /// With ordered stop: the members still to stop, in group order.
    pub stopping: Vec<String>,
    /// The owner's cancellation has started the ordered stop.
    pub owner_stop_seen: bool,
}

pub struct Model {
    pub shape: Shape,
    pub now: Ms,
    pub nodes: BTreeMap<String, Node>,
    /// Restart counts of removed static nodes, by DN: a re-created node
    /// goes on counting.
    records: HashMap<String, u64>,
    top_window: VecDeque<Ms>,
    /// The shutdown has begun (the top token is cancelled).
    pub stopping: bool,
    pub gave_up: bool,
    /// Nodes aborted at their deadline during the shutdown.
    pub stragglers: u64,
    /// Exits told to the sinks, by DN.
    pub exits: BTreeMap<String, u64>,
    /// Incarnations of the world's runnables that began, by DN.
    pub started: BTreeMap<String, u64>,
    /// Incarnations of the world's runnables that saw their cancellation.
    pub saw_cancel: BTreeMap<String, u64>,
    /// Terminations answered `Ok`.
    pub terminated: u64,
    /// While timers fire at one instant: the deaths their hosts saw, whose
    /// consequences the processor draws once they have all fired.
    deferred: Option<Vec<String>>,
}

impl Model {
    /// The supervisor right after `start`: the root's first incarnation
    /// began and started its groups.
    pub fn new(shape: Shape) -> Model {
        let spec = shape.spec_of("root");
        let mut m = Model {
            shape,
            now: 0,
            nodes: BTreeMap::new(),
            records: HashMap::new(),
            top_window: VecDeque::new(),
            stopping: false,
            gave_up: false,
            stragglers: 0,
            exits: BTreeMap::new(),
            started: BTreeMap::new(),
            saw_cancel: BTreeMap::new(),
            terminated: 0,
            deferred: None,
        };
        m.nodes
            .insert("root".into(), fresh("root", None, 0, spec, 0));
        m.start("root");
        m.settle();
        m
    }

    fn node(&self, dn: &str) -> &Node {
        &self.nodes[dn]
    }

    fn node_mut(&mut self, dn: &str) -> &mut Node {
        self.nodes.get_mut(dn).expect("a node of the model")
    }

    /// Its token is cancelled: its own, or an ancestor's it derives from
    /// (an ordered-stop member's token is its own; the root's derives from
    /// the supervisor's).
    pub fn cancelled(&self, dn: &str) -> bool {
        let n = self.node(dn);
        if n.cancelled {
            return true;
        }
        match &n.parent {
            None => self.stopping,
            Some(p) => !self.node(p).groups[n.group].ordered_stop && self.cancelled(p),
        }
    }

    pub fn is_live(&self, dn: &str) -> bool {
        self.node(dn).state.is_live()
    }

    /// The node and its whole subtree have exited.
    pub fn subtree_exited(&self, dn: &str) -> bool {
        let n = self.node(dn);
        !n.state.is_live()
            && n.groups
                .iter()
                .flat_map(|g| &g.members)
                .all(|m| self.subtree_exited(m))
    }

    /// The state a snapshot reports.
    pub fn reported(&self, dn: &str) -> NodeState {
        let n = self.node(dn);
        n.waiting.map_or(n.state, |(was, _)| was)
    }

    /// Running, as the handle's requests mean it: live and not waiting.
    fn is_running(&self, dn: &str) -> bool {
        let n = self.node(dn);
        n.state.is_live() && n.waiting.is_none()
    }

    /// The DNs a command can go to: the world's runnables that run.
    pub fn commandable(&self) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.running && !n.dynamic)
            .map(|n| n.dn.clone())
            .collect()
    }

    // ---- starting ----

    /// `dn`'s incarnation begins now: its runnable is called.
    fn start(&mut self, dn: &str) {
        let now = self.now;
        let n = self.node_mut(dn);
        n.running = true;
        n.started_at = now;
        n.waiting = None;
        n.gated = false;
        n.start_due = None;
        n.phase = Phase::New;
        let dynamic = n.dynamic;
        if !dynamic {
            *self.started.entry(dn.to_string()).or_default() += 1;
        }
        if self.cancelled(dn) {
            // Acknowledged: it runs once, sees the cancellation, returns.
            if dynamic {
                self.signal_healthy(dn);
            } else {
                *self.saw_cancel.entry(dn.to_string()).or_default() += 1;
            }
            return self.exit(dn, Outcome::Ok);
        }
        if dynamic {
            return self.signal_healthy(dn);
        }
        let groups = self.shape.groups_of(dn).to_vec();
        for shape in groups {
            let index = self.node(dn).groups.len();
            let mut members = Vec::new();
            for m in &shape.members {
                let spec = self.shape.spec_of(m);
                let restarts = self.records.get(m).map_or(0, |r| r + 1);
                let mut child = fresh(m, Some(dn), index, spec, restarts);
                child.dynamic = shape.dynamic;
                self.nodes.insert(m.clone(), child);
                members.push(m.clone());
            }
            self.node_mut(dn).groups.push(Group {
                members: members.clone(),
                strategy: if shape.dynamic {
                    Strategy::OneForAll
                } else {
                    shape.strategy
                },
                ordered_start: shape.ordered_start,
                ordered_stop: shape.ordered_stop,
                stopping: Vec::new(),
                owner_stop_seen: false,
            });
            let launches = members.into_iter().map(|m| (m, 0)).collect();
            self.launch(dn, index, launches);
        }
    }

    /// Members of `owner`'s group `g` (re)started together: each after its
    /// delay, and with ordered start each after the one before it is
    /// Healthy.
    fn launch(&mut self, owner: &str, g: usize, members: Vec<(String, Ms)>) {
        let ordered = self.node(owner).groups[g].ordered_start;
        for (i, (m, delay)) in members.into_iter().enumerate() {
            let now = self.now;
            let gated = ordered && i > 0;
            let n = self.node_mut(&m);
            n.delay = delay;
            n.gated = gated;
            if gated {
                continue;
            }
            if delay == 0 {
                self.start(&m);
            } else {
                self.node_mut(&m).start_due = Some(now + delay);
            }
        }
    }

    /// `dn` is Healthy or DONE: in an ordered-start group the next member's
    /// gate opens.
    fn open_next(&mut self, dn: &str) {
        let Some(p) = self.node(dn).parent.clone() else {
            return;
        };
        let g = &self.node(&p).groups[self.node(dn).group];
        if !g.ordered_start {
            return;
        }
        let Some(i) = g.members.iter().position(|m| m == dn) else {
            return;
        };
        let Some(next) = g.members.get(i + 1).cloned() else {
            return;
        };
        if !self.node(&next).gated || self.cancelled(&next) {
            return;
        }
        let now = self.now;
        let n = self.node_mut(&next);
        n.gated = false;
        if n.delay == 0 {
            self.start(&next);
        } else {
            n.start_due = Some(now + n.delay);
        }
    }

    // ---- signals and ends ----

    fn signal_healthy(&mut self, dn: &str) {
        let n = self.node_mut(dn);
        n.phase = Phase::Healthy;
        n.backoff = None;
        if n.state == NodeState::New {
            n.state = NodeState::Healthy;
            self.open_next(dn);
        }
    }

    /// The incarnation of `dn` ends with `outcome`.
    fn exit(&mut self, dn: &str, outcome: Outcome) {
        let cancelled = outcome != Outcome::TaskPanic && self.cancelled(dn);
        let n = self.node(dn);
        let (state, kind) = if n.misuse {
            (NodeState::Dead, ExitKind::Misuse)
        } else if n.doom {
            (NodeState::Dead, ExitKind::GaveUp)
        } else if cancelled {
            let kind = match outcome {
                Outcome::Aborted => ExitKind::Aborted,
                Outcome::Ok | Outcome::NeverStarted if n.requested => ExitKind::Restarted,
                _ => ExitKind::Cancelled,
            };
            (NodeState::Cancelled, kind)
        } else {
            match outcome {
                Outcome::Ok if n.phase == Phase::Done || n.spec.restart != Restart::Permanent => {
                    (NodeState::Done, ExitKind::Done)
                }
                Outcome::Panic | Outcome::TaskPanic => (NodeState::Dead, ExitKind::Panic),
                Outcome::Ok | Outcome::Err | Outcome::StartTimedOut => {
                    (NodeState::Dead, ExitKind::Error)
                }
                Outcome::Aborted | Outcome::NeverStarted => {
                    unreachable!("only after a cancellation")
                }
            }
        };
        if kind == ExitKind::Aborted && self.stopping {
            self.stragglers += 1;
        }
        let n = self.node_mut(dn);
        n.running = false;
        n.waiting = None;
        n.gated = false;
        n.start_due = None;
        n.abort_at = None;
        n.state = state;
        n.last_kind = Some(kind);
        *self.exits.entry(dn.to_string()).or_default() += 1;
        match state {
            NodeState::Done => self.open_next(dn),
            NodeState::Dead => match &mut self.deferred {
                // Its host cancels what it can itself: the node's own
                // token, and its one-for-all group's shared token.
                Some(deaths) => {
                    deaths.push(dn.to_string());
                    self.host_take_down(dn);
                }
                None => self.take_down(dn),
            },
            _ => {}
        }
    }

    /// What a dying node's host cancels before the processor hears of the
    /// death: its token, and (unless it is temporary) the shared token of a
    /// one-for-all group without ordered stop of more than one member.
    fn host_take_down(&mut self, dn: &str) {
        self.node_mut(dn).cancelled = true;
        let n = self.node(dn);
        let Some(p) = n.parent.clone() else {
            return;
        };
        let g = &self.node(&p).groups[n.group];
        let shared = g.strategy == Strategy::OneForAll && !g.ordered_stop && g.members.len() > 1;
        if shared && n.spec.restart != Restart::Temporary {
            for m in g.members.clone() {
                self.node_mut(&m).cancelled = true;
            }
        }
    }

    /// Cancels `dn` (so its subtree) and the siblings its group's strategy
    /// takes down with it; a temporary node takes nobody down.
    fn take_down(&mut self, dn: &str) {
        self.node_mut(dn).cancelled = true;
        let n = self.node(dn);
        if n.spec.restart == Restart::Temporary {
            return;
        }
        let Some(p) = n.parent.clone() else {
            return;
        };
        let gi = n.group;
        let g = &self.node(&p).groups[gi];
        let from = match g.strategy {
            Strategy::OneForOne => return,
            Strategy::RestForOne => g.members.iter().position(|m| m == dn).unwrap_or(0),
            _ => 0,
        };
        let victims: Vec<String> = g.members[from..].to_vec();
        if g.ordered_stop {
            self.stop_in_order(&p, gi, &victims);
        } else {
            for v in victims {
                self.node_mut(&v).cancelled = true;
            }
        }
    }

    fn stop_in_order(&mut self, owner: &str, g: usize, victims: &[String]) {
        let group = &mut self.node_mut(owner).groups[g];
        let mut all: Vec<String> = group.stopping.iter().chain(victims).cloned().collect();
        let order = group.members.clone();
        all.sort_by_key(|m| order.iter().position(|o| o == m));
        all.dedup();
        group.stopping = all;
    }

    // ---- the fixed point of an instant ----

    /// Applies every consequence at `now` until nothing changes.
    pub fn settle(&mut self) {
        loop {
            let mut changed = self.watch_ordered_stops();
            changed |= self.advance_stops();
            changed |= self.react_to_cancellation();
            changed |= self.remove_finished();
            changed |= self.restart_units();
            if !changed {
                break;
            }
        }
    }

    /// An owner whose token is cancelled stops its ordered-stop groups.
    fn watch_ordered_stops(&mut self) -> bool {
        let mut starts = Vec::new();
        for n in self.nodes.values() {
            for (gi, g) in n.groups.iter().enumerate() {
                if g.ordered_stop && !g.owner_stop_seen && self.cancelled(&n.dn) {
                    starts.push((n.dn.clone(), gi));
                }
            }
        }
        for (owner, gi) in &starts {
            let members = self.node(owner).groups[*gi].members.clone();
            self.node_mut(owner).groups[*gi].owner_stop_seen = true;
            self.stop_in_order(owner, *gi, &members);
        }
        !starts.is_empty()
    }

    /// The last member still to stop is cancelled; once its subtree has
    /// exited, the one before it.
    fn advance_stops(&mut self) -> bool {
        let mut changed = false;
        let owners: Vec<String> = self.nodes.keys().cloned().collect();
        for owner in owners {
            let Some(n) = self.nodes.get(&owner) else {
                continue;
            };
            for gi in 0..n.groups.len() {
                while let Some(last) = self.node(&owner).groups[gi].stopping.last().cloned() {
                    if !self.nodes.contains_key(&last) {
                        self.node_mut(&owner).groups[gi].stopping.pop();
                        changed = true;
                        continue;
                    }
                    if !self.node(&last).cancelled {
                        self.node_mut(&last).cancelled = true;
                        changed = true;
                    }
                    if !self.subtree_exited(&last) {
                        break;
                    }
                    self.node_mut(&owner).groups[gi].stopping.pop();
                    changed = true;
                }
            }
        }
        changed
    }

    /// A cancelled runnable returns at once, unless it is deaf: then its
    /// stop mode decides. A cancelled start that has not begun never will.
    fn react_to_cancellation(&mut self) -> bool {
        let mut changed = false;
        let dns: Vec<String> = self.nodes.keys().cloned().collect();
        for dn in dns {
            let Some(n) = self.nodes.get(&dn) else {
                continue;
            };
            if !n.state.is_live() || !self.cancelled(&dn) {
                continue;
            }
            let n = self.node(&dn);
            if !n.running {
                // Waiting out a backoff or a gate: dropped, never started.
                self.exit(&dn, Outcome::NeverStarted);
                changed = true;
            } else if !n.deaf {
                if !n.dynamic {
                    *self.saw_cancel.entry(dn.clone()).or_default() += 1;
                }
                self.exit(&dn, Outcome::Ok);
                changed = true;
            } else if n.abort_at.is_none() {
                match n.spec.stop {
                    Stop::Brutal => self.exit(&dn, Outcome::Aborted),
                    Stop::Timeout(d) => {
                        let at = self.now + d;
                        self.node_mut(&dn).abort_at = Some(at);
                    }
                    Stop::Infinity => continue,
                }
                changed = true;
            }
        }
        changed
    }

    /// A dynamic node's child that ended for good (terminated, DONE, a
    /// temporary one's exit) leaves the tree once its subtree has exited.
    fn remove_finished(&mut self) -> bool {
        let gone: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.dyn_child && self.subtree_exited(&n.dn))
            .filter(|n| {
                n.removing
                    || n.state == NodeState::Done
                    || (n.spec.restart == Restart::Temporary
                        && matches!(n.state, NodeState::Dead | NodeState::Cancelled))
            })
            .map(|n| n.dn.clone())
            .collect();
        for dn in &gone {
            if self.node(dn).removing {
                self.terminated += 1;
            }
            self.remove_subtree(dn, false);
        }
        !gone.is_empty()
    }

    /// The units whose members (and subtrees) have all exited, under a live
    /// owner, restart or make their owner give up.
    fn restart_units(&mut self) -> bool {
        let mut units: Vec<(Option<String>, usize, Vec<String>)> = Vec::new();
        if !self.stopping && self.subtree_exited("root") && self.restartable("root") {
            units.push((None, 0, vec!["root".into()]));
        }
        for owner in self.nodes.values() {
            if self.cancelled(&owner.dn) {
                continue;
            }
            for (gi, g) in owner.groups.iter().enumerate() {
                if !g.stopping.is_empty() {
                    continue;
                }
                if g.strategy == Strategy::OneForOne || g.members.len() == 1 {
                    for m in &g.members {
                        if self.subtree_exited(m) && self.restartable(m) {
                            units.push((Some(owner.dn.clone()), gi, vec![m.clone()]));
                        }
                    }
                    continue;
                }
                let cancelled: Vec<&String> =
                    g.members.iter().filter(|m| self.cancelled(m)).collect();
                let ready = match g.strategy {
                    Strategy::OneForAll => g.members.iter().all(|m| self.subtree_exited(m)),
                    _ => cancelled.iter().all(|m| self.subtree_exited(m)),
                };
                let unit: Vec<String> = cancelled
                    .into_iter()
                    .filter(|m| self.node(m).spec.restart != Restart::Temporary)
                    .cloned()
                    .collect();
                if ready && !unit.is_empty() {
                    units.push((Some(owner.dn.clone()), gi, unit));
                }
            }
        }
        let found = !units.is_empty();
        for (owner, g, unit) in units {
            // An earlier unit's consequences may have changed this one.
            let still = unit.iter().all(|m| {
                self.nodes.contains_key(m) && self.subtree_exited(m) && self.restartable(m)
            });
            if still && owner.as_ref().is_none_or(|o| self.nodes.contains_key(o)) {
                self.plan(owner.as_deref(), g, unit);
            }
        }
        found
    }

    fn restartable(&self, dn: &str) -> bool {
        let n = self.node(dn);
        self.cancelled(dn) && !n.removing && n.spec.restart != Restart::Temporary
    }

    /// The planner's rules: intensity first, then DEAD members after their
    /// next backoff and the others at once.
    fn plan(&mut self, owner: Option<&str>, g: usize, unit: Vec<String>) {
        let now = self.now;
        let any_dead = unit.iter().any(|m| self.node(m).state == NodeState::Dead);
        let requested = unit.iter().any(|m| self.node(m).requested);
        let counted = !requested || any_dead;
        let intensity = self.shape.intensity_of(owner);
        if let (true, Some((max, within))) = (counted, intensity) {
            let window = match owner {
                Some(o) => &self.node(o).window,
                None => &self.top_window,
            };
            let recent = window.iter().filter(|t| now - **t < within).count();
            if recent + 1 > max as usize {
                return self.give_up(owner);
            }
        }
        let mut launches = Vec::new();
        for m in &unit {
            let n = self.node(m);
            let (delay, next) = if n.state == NodeState::Dead {
                let current = n
                    .backoff
                    .unwrap_or(BACKOFF_INITIAL)
                    .min(BACKOFF_MAX.max(BACKOFF_INITIAL));
                (current, (current * 2).min(BACKOFF_MAX))
            } else {
                (0, n.backoff.unwrap_or(u64::MAX))
            };
            launches.push((m.clone(), delay, next));
        }
        if let (true, Some((max, within))) = (counted, intensity) {
            let window = match owner {
                Some(o) => &mut self.node_mut(o).window,
                None => &mut self.top_window,
            };
            window.push_back(now);
            while window.len() > max as usize + 1
                || window.front().is_some_and(|t| now - *t >= within)
            {
                window.pop_front();
            }
        }
        for (m, delay, next) in &launches {
            self.reset(m, *delay);
            let n = self.node_mut(m);
            if *next != u64::MAX {
                n.backoff = Some(*next);
            }
        }
        let launches = launches.into_iter().map(|(m, d, _)| (m, d)).collect();
        match owner {
            Some(o) => self.launch(o, g, launches),
            None => {
                for (m, delay) in launches {
                    if delay == 0 {
                        self.start(&m);
                    } else {
                        self.node_mut(&m).start_due = Some(now + delay);
                    }
                }
            }
        }
    }

    /// The owner's intensity is exceeded: it dies (its own exit, if it
    /// still runs, is that death); the supervisor itself shuts down.
    fn give_up(&mut self, owner: Option<&str>) {
        let Some(o) = owner else {
            self.gave_up = true;
            self.stopping = true;
            return;
        };
        if self.is_live(o) {
            self.node_mut(o).doom = true;
            self.take_down(o);
        } else {
            let n = self.node_mut(o);
            n.state = NodeState::Dead;
            n.last_kind = Some(ExitKind::GaveUp);
            *self.exits.entry(o.to_string()).or_default() += 1;
            self.take_down(o);
        }
    }

    /// A new incarnation's record: subtree removed (records kept), NEW,
    /// fresh token, one more restart; it reports its exit state while it
    /// waits out `delay`.
    fn reset(&mut self, dn: &str, delay: Ms) {
        let children: Vec<String> = self
            .node(dn)
            .groups
            .iter()
            .flat_map(|g| g.members.clone())
            .collect();
        for c in children {
            let keep = !self.node(dn).dynamic;
            self.remove_subtree(&c, keep);
        }
        let now = self.now;
        let n = self.node_mut(dn);
        let was = n.state;
        n.restarts += 1;
        n.doom = false;
        n.requested = false;
        n.misuse = false;
        n.deaf = false;
        n.cancelled = false;
        n.window.clear();
        n.groups.clear();
        n.state = NodeState::New;
        n.phase = Phase::New;
        n.running = false;
        n.waiting = (delay > 0).then_some((was, now + delay));
    }

    fn remove_subtree(&mut self, dn: &str, keep_records: bool) {
        let Some(n) = self.nodes.remove(dn) else {
            return;
        };
        for c in n.groups.iter().flat_map(|g| &g.members) {
            self.remove_subtree(c, keep_records && !n.dynamic);
        }
        if keep_records && !n.dyn_child {
            self.records.insert(n.dn.clone(), n.restarts);
        }
        if let Some(p) = n.parent.and_then(|p| self.nodes.get_mut(&p)) {
            for g in &mut p.groups {
                g.members.retain(|m| m != dn);
            }
        }
    }

    // ---- time ----

    /// The next instant something is due: a start after its backoff, a
    /// deaf runnable's stop deadline, a start deadline.
    pub fn next_timer(&self) -> Option<Ms> {
        self.nodes
            .values()
            .flat_map(|n| {
                let deadline = n
                    .spec
                    .start_timeout
                    .filter(|_| n.running && n.phase == Phase::New)
                    .map(|d| n.started_at + d);
                [n.start_due.filter(|_| !n.gated), n.abort_at, deadline]
            })
            .flatten()
            .filter(|t| *t > self.now)
            .min()
    }

    /// Moves to `t` and applies what is due then. Every timer due fires
    /// first, as the hosts see them (stop deadlines before start deadlines,
    /// which they win a tie with, then starts after a backoff; each kind in
    /// DN order), a runnable whose token an earlier death's host cancelled
    /// seeing that before its own timer; then the processor draws the
    /// consequences of the deaths, all at once.
    pub fn advance_to(&mut self, t: Ms) {
        self.now = t;
        self.deferred = Some(Vec::new());
        for kind in 0..3 {
            let dns: Vec<String> = self.nodes.keys().cloned().collect();
            for dn in &dns {
                let Some(n) = self.nodes.get(dn) else {
                    continue;
                };
                let seen_first = n.running && !n.deaf && self.cancelled(dn);
                match kind {
                    0 if n.abort_at == Some(t) => self.exit(dn, Outcome::Aborted),
                    1 if n.running
                        && !seen_first
                        && n.phase == Phase::New
                        && n.spec.start_timeout.is_some_and(|d| n.started_at + d == t) =>
                    {
                        self.exit(dn, Outcome::StartTimedOut)
                    }
                    2 if n.start_due == Some(t) && !n.gated && n.state.is_live() => {
                        if self.cancelled(dn) {
                            self.exit(dn, Outcome::NeverStarted);
                        } else {
                            self.start(dn);
                        }
                    }
                    _ => {}
                }
            }
        }
        for dn in self.deferred.take().unwrap_or_default() {
            if self.nodes.contains_key(&dn) {
                self.take_down(&dn);
            }
        }
        self.settle();
    }

    // ---- what the driver does ----

    /// A command to the runnable of `dn`, which runs.
    pub fn command(&mut self, dn: &str, cmd: super::world::Cmd) {
        use super::world::Cmd;
        match cmd {
            Cmd::Healthy => self.signal_healthy(dn),
            Cmd::Done => {
                let n = self.node_mut(dn);
                n.phase = Phase::Done;
                n.backoff = None;
            }
            Cmd::ReturnOk => self.exit(dn, Outcome::Ok),
            Cmd::ReturnErr => self.exit(dn, Outcome::Err),
            Cmd::Panic => self.exit(dn, Outcome::Panic),
            Cmd::Misuse => {
                // Done twice: the first is accepted from HEALTHY.
                let n = self.node_mut(dn);
                if n.phase == Phase::Healthy {
                    n.phase = Phase::Done;
                    n.backoff = None;
                }
                n.misuse = true;
                self.exit(dn, Outcome::Ok);
            }
            Cmd::Hang => self.node_mut(dn).deaf = true,
            Cmd::TaskPanic => {
                // The task's panic cancels the node; the runnable sees it
                // and returns; the panic is its death.
                self.node_mut(dn).cancelled = true;
                *self.saw_cancel.entry(dn.to_string()).or_default() += 1;
                self.exit(dn, Outcome::TaskPanic);
            }
        }
        self.settle();
    }

    /// `Supervisor::restart(dn)`.
    pub fn restart(&mut self, dn: &str) -> Result<(), Refusal> {
        if !self.nodes.contains_key(dn) {
            return Err(Refusal::NotFound);
        }
        if self.stopping || !self.is_running(dn) || self.cancelled(dn) {
            return Err(Refusal::NotRunning);
        }
        self.node_mut(dn).requested = true;
        self.take_down(dn);
        self.settle();
        Ok(())
    }

    fn dynamic_node(&self) -> Option<(String, usize)> {
        let (dn, max, _) = self.shape.dynamic.as_ref()?;
        self.nodes.contains_key(dn).then(|| (dn.clone(), *max))
    }

    /// `Dynamic::start_child(name)`.
    pub fn start_child(&mut self, name: &str) -> Result<(), Refusal> {
        let Some((dn, max)) = self.dynamic_node() else {
            return Err(Refusal::NotFound);
        };
        if self.stopping || !self.is_running(&dn) || self.cancelled(&dn) {
            return Err(Refusal::NotRunning);
        }
        let count = self.node(&dn).groups.first().map_or(0, |g| g.members.len());
        if count >= max {
            return Err(Refusal::Full);
        }
        let child = format!("{dn}.{name}");
        if self.nodes.contains_key(&child) {
            return Err(Refusal::Duplicate);
        }
        let spec = self.shape.spec_of(&child);
        let mut n = fresh(&child, Some(&dn), 0, spec, 0);
        n.dyn_child = true;
        self.nodes.insert(child.clone(), n);
        let owner = self.node_mut(&dn);
        if owner.groups.is_empty() {
            owner.groups.push(Group {
                members: Vec::new(),
                strategy: Strategy::OneForOne,
                ordered_start: false,
                ordered_stop: false,
                stopping: Vec::new(),
                owner_stop_seen: false,
            });
        }
        owner.groups[0].members.push(child.clone());
        self.start(&child);
        self.settle();
        Ok(())
    }

    /// `Dynamic::terminate_child(name)`: refused at once, or answered once
    /// the child is gone.
    pub fn terminate_child(&mut self, name: &str) -> Result<(), Refusal> {
        let Some((dn, _)) = self.dynamic_node() else {
            return Err(Refusal::NotFound);
        };
        let child = format!("{dn}.{name}");
        if !self.nodes.contains_key(&child) {
            return Err(Refusal::NotFound);
        }
        let n = self.node_mut(&child);
        n.removing = true;
        n.cancelled = true;
        self.settle();
        Ok(())
    }

    /// `Dynamic::restart_child(name)`.
    pub fn restart_child(&mut self, name: &str) -> Result<(), Refusal> {
        let Some((dn, _)) = self.dynamic_node() else {
            return Err(Refusal::NotFound);
        };
        self.restart(&format!("{dn}.{name}"))
    }

    /// `Supervisor::shutdown()`.
    pub fn shutdown(&mut self) {
        self.stopping = true;
        self.settle();
    }

    /// Nothing is live any more.
    pub fn finished(&self) -> bool {
        self.stopping && self.subtree_exited("root")
    }
}

fn fresh(dn: &str, parent: Option<&str>, group: usize, spec: Spec, restarts: u64) -> Node {
    Node {
        dn: dn.to_string(),
        parent: parent.map(str::to_string),
        group,
        spec,
        dynamic: false,
        dyn_child: false,
        state: NodeState::New,
        waiting: None,
        delay: 0,
        gated: false,
        start_due: None,
        running: false,
        phase: Phase::New,
        cancelled: false,
        abort_at: None,
        deaf: false,
        misuse: false,
        doom: false,
        requested: false,
        removing: false,
        restarts,
        backoff: None,
        started_at: 0,
        groups: Vec::new(),
        window: VecDeque::new(),
        last_kind: None,
    }
}
