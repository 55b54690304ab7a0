//! The seeded fault storm, shared by `tests/fault_storm.rs` (2 s in
//! `cargo test`) and `examples/storm.rs` (any length, any tree size).
//!
//! Faults: returned errors, panics, signal misuse, deaths during set-up
//! (before the children are started), runnables that ignore cancellation
//! past their stop deadline, and SIGKILLed OS processes. Afterwards every
//! node must be HEALTHY again, the restart counts must agree with what was
//! injected, `shutdown()` must finish, no process the supervisor spawned may
//! be left, and the thread count and live heap must be back at their
//! baseline. The binary that runs it installs a counting global
//! allocator (`heap::Counting`); nothing the storm keeps for itself outlives [`run`], so the
//! heap check holds at any length.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix_supervisor::process::Command;
use actix_supervisor::{Child, NodeState, RunError, Supervisor};
use tokio::time::Instant;

use super::heap::{live_heap, settle_to, SLACK};
use super::{backoff_ms, thread_count};

mod orphans;
mod shape;

pub use orphans::orphans;
use shape::*;

/// What to run: the seed, how long faults are injected, how deep the tree is.
#[derive(Clone, Copy, Debug)]
pub struct Storm {
    pub seed: u64,
    pub secs: u64,
    /// Levels of ten below the root: 4 is 11,111 nodes, 5 is 111,111.
    pub levels: u32,
}

impl Storm {
    /// From `STORM_SEED`, `STORM_SECS` (default 2) and `STORM_NODES`
    /// (default 11,111).
    pub fn from_env() -> Result<Storm, String> {
        let var = |name: &str| std::env::var(name).ok();
        Storm::new(
            var("STORM_SEED").as_deref(),
            var("STORM_SECS").as_deref(),
            var("STORM_NODES").as_deref(),
        )
    }

    /// From the given texts (each optional): a fresh seed from the clock,
    /// 2 s and 11,111 nodes when absent.
    pub fn new(
        seed: Option<&str>,
        secs: Option<&str>,
        nodes: Option<&str>,
    ) -> Result<Storm, String> {
        let number = |what: &str, text: &str| {
            text.replace([',', '_'], "")
                .parse::<u64>()
                .map_err(|e| format!("{what} {text:?}: {e}"))
        };
        let seed = match seed {
            Some(s) => number("seed", s)?,
            None => {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            }
        };
        let secs = secs.map(|s| number("seconds", s)).transpose()?.unwrap_or(2);
        let nodes = nodes
            .map(|n| number("nodes", n))
            .transpose()?
            .unwrap_or(11_111);
        let levels = (3..=6)
            .find(|&l| tree_size(l) == nodes)
            .ok_or_else(|| format!("nodes {nodes}: the storm's tree has 1,111, 11,111, 111,111, 1,111,111 or 11,111,111 nodes"))?;
        if seed == 0 {
            return Err("seed 0: the generator needs a non-zero seed".into());
        }
        Ok(Storm { seed, secs, levels })
    }

    pub fn nodes(&self) -> usize {
        tree_size(self.levels) as usize
    }

    /// `what`, with how to replay it.
    pub fn context(&self, what: &str) -> String {
        format!(
            "{what} (seed {s}; replay with STORM_SEED={s} STORM_SECS={} STORM_NODES={})",
            self.secs,
            self.nodes(),
            s = self.seed
        )
    }
}

/// The root and `levels` levels of ten below it.
fn tree_size(levels: u32) -> u64 {
    (10u64.pow(levels + 1) - 1) / 9
}

/// What a storm did and what it left.
#[derive(Debug)]
pub struct Report {
    pub nodes: usize,
    /// Faults injected, by kind.
    pub injected: BTreeMap<&'static str, u64>,
    /// Distinct DNs killed at least once.
    pub dns_killed: usize,
    /// The restarts the snapshot shows, summed over every DN.
    pub restarts: u64,
    /// From the end of the storm until every node was HEALTHY again.
    pub recovery: Duration,
    /// How long `shutdown()` took.
    pub shutdown: Duration,
    /// Threads and live heap before the supervisor started and after it was
    /// dropped (once back within the slack, or at the bounded wait's end).
    pub threads: (usize, usize),
    pub heap: (isize, isize),
    /// Processes the supervisor spawned that were still alive after shutdown.
    pub orphans: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total: u64 = self.injected.values().sum();
        writeln!(f, "faults injected: {total}")?;
        for (kind, n) in &self.injected {
            writeln!(f, "  {kind:<13} {n}")?;
        }
        writeln!(
            f,
            "DNs killed at least once: {} of {}",
            self.dns_killed, self.nodes
        )?;
        writeln!(f, "restarts: {}", self.restarts)?;
        writeln!(
            f,
            "recovery (all {} healthy again): {:.3} s",
            self.nodes,
            self.recovery.as_secs_f64()
        )?;
        writeln!(f, "shutdown: {:.3} s", self.shutdown.as_secs_f64())?;
        writeln!(
            f,
            "threads: {} before, {} after",
            self.threads.0, self.threads.1
        )?;
        writeln!(
            f,
            "live heap: {} B before, {} B after ({:+} B; slack {SLACK} B)",
            self.heap.0,
            self.heap.1,
            self.heap.1 - self.heap.0
        )?;
        write!(f, "orphan processes: {}", self.orphans.len())
    }
}

/// The environment variable every process of the storm carries: how the
/// orphan check recognises them whatever their pid (pids wrap, so a pid
/// remembered from early in a long run may belong to another program).
pub const MARK: &str = "ACTIX_SUPERVISOR_STORM";

/// Runs the storm and checks what it leaves. `Err` says what failed, with
/// the seed to replay it; `progress` is told of each phase.
pub async fn run(storm: Storm, progress: impl Fn(&str)) -> Result<Report, String> {
    let fail = |what: String| Err(storm.context(&what));
    // The injected panics are expected: keep them out of the output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let injected = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.starts_with("injected"));
        if !injected {
            default_hook(info);
        }
    }));

    let threads = thread_count();
    let heap = live_heap();
    let mut rng = Rng(storm.seed);
    let mark = format!("{}-{}", std::process::id(), storm.seed);
    let shape = Shape {
        book: Arc::default(),
        cmd: Command::new("sleep")
            .arg("1000")
            .env(MARK, &mark)
            .grace(Duration::from_millis(20)),
        levels: storm.levels,
    };
    let signals = shape.cmd.signals();
    let (dns, processes) = shape.dns();
    if dns.len() != storm.nodes() {
        return fail(format!(
            "the shape has {} DNs, not {}",
            dns.len(),
            storm.nodes()
        ));
    }
    let sup = Supervisor::builder()
        .backoff(backoff_ms(1))
        .workers(2)
        .shutdown_timeout(Duration::from_millis(50))
        .start(shape.node(0));

    // DN → the incarnations (or pids) the storm killed.
    let mut killed: HashMap<String, BTreeSet<u64>> = HashMap::new();
    // Dynamic children started and not terminated (a restart of root.dyn
    // or the root empties it, so some may be gone), and the next name.
    let dynamic = sup.dynamic(&format!("root.{DYNAMIC}"));
    let mut started: Vec<String> = Vec::new();
    let mut next_child = 0u64;
    let mut injected: BTreeMap<&'static str, u64> = BTreeMap::new();
    progress("injecting faults");
    let end = Instant::now() + Duration::from_secs(storm.secs);
    while Instant::now() < end {
        // A child comes or goes, unless root.dyn is restarting right now.
        if started.len() < 20 || rng.below(2) == 0 {
            let name = format!("d{next_child}");
            next_child += 1;
            match dynamic
                .start_child(Child::new(&name, shape.node(storm.levels)))
                .await
            {
                Ok(dn) => started.push(dn),
                Err(RunError::NotRunning { .. } | RunError::NotFound { .. }) => {}
                Err(e) => return fail(format!("start_child: {e}")),
            }
            *injected.entry("dynamic start").or_default() += 1;
        } else {
            let dn = started.swap_remove(rng.below(started.len()));
            let name = dn.rsplit('.').next().unwrap_or_default();
            match dynamic.terminate_child(name).await {
                Ok(()) | Err(RunError::NotFound { .. }) => {}
                Err(e) => return fail(format!("terminate_child({dn}): {e}")),
            }
            *injected.entry("dynamic stop").or_default() += 1;
        }
        for _ in 0..4 {
            let roll = rng.below(100);
            if roll < 5 {
                let dn = &processes[rng.below(processes.len())];
                let node = signals.node(dn);
                if let Some(pid) = node.pid() {
                    if node.send(libc::SIGKILL).is_ok() {
                        killed.entry(dn.clone()).or_default().insert(u64::from(pid));
                        *injected.entry("process kill").or_default() += 1;
                    }
                }
                continue;
            }
            let fault = match roll {
                5..=44 => Fault::Error,
                45..=64 => Fault::Panic,
                65..=79 => Fault::Misuse,
                80..=89 => Fault::SetupDeath,
                _ => Fault::Deaf,
            };
            // One fault in twenty goes to a dynamic child; its record is not
            // kept across its parent's restarts, so it is not counted below.
            let to_dynamic = !started.is_empty() && rng.below(20) == 0;
            let dn = match to_dynamic {
                true => &started[rng.below(started.len())],
                false => &dns[rng.below(dns.len())],
            };
            let mut b = lock(&shape.book);
            let Some(inbox) = b.inboxes.get(dn) else {
                continue; // not running right now
            };
            let incarnation = inbox.incarnation;
            if inbox.tx.send(fault).is_err() {
                continue;
            }
            if let Fault::SetupDeath = fault {
                b.doomed.insert(dn.clone());
            }
            drop(b);
            *injected.entry(fault.name()).or_default() += 1;
            if fault.kills() && !to_dynamic {
                killed.entry(dn.clone()).or_default().insert(incarnation);
            }
        }
        // Pacing, not synchronisation: the storm runs for `secs` seconds.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let total: u64 = injected.values().sum();
    if total <= 100 {
        return fail(format!("the storm injected only {total} faults"));
    }

    // Everything comes back.
    progress("waiting for every node to be healthy again");
    let recovering = Instant::now();
    let bound = Duration::from_secs(60).max(Duration::from_millis(storm.nodes() as u64 * 3));
    let snapshot = loop {
        sup.wait_settled().await;
        let snap = sup.snapshot().await;
        if !snap.windows(2).all(|w| w[0].dn < w[1].dn) {
            return fail("the snapshot is not sorted by DN".into());
        }
        let dyn_prefix = format!("root.{DYNAMIC}.");
        let static_nodes = snap
            .iter()
            .filter(|n| !n.dn.starts_with(&dyn_prefix))
            .count();
        if static_nodes == dns.len() + 1 && snap.iter().all(|n| n.state == NodeState::Healthy) {
            // Every dynamic child there was started and not terminated.
            let live: std::collections::HashSet<&str> =
                started.iter().map(String::as_str).collect();
            if let Some(n) = snap
                .iter()
                .find(|n| n.dn.starts_with(&dyn_prefix) && !live.contains(n.dn.as_str()))
            {
                return fail(format!(
                    "{} is there but was terminated or never started",
                    n.dn
                ));
            }
            break snap;
        }
        if recovering.elapsed() > bound {
            let sick: Vec<_> = snap
                .iter()
                .filter(|n| n.state != NodeState::Healthy)
                .take(5)
                .collect();
            return fail(format!(
                "not everything came back within {bound:?}: {} nodes, not healthy: {sick:?}",
                snap.len()
            ));
        }
    };
    let recovery = recovering.elapsed();

    // The records agree with what was injected.
    let starts = std::mem::take(&mut lock(&shape.book).starts);
    let mut restarts = 0;
    for n in &snapshot {
        restarts += n.restarts;
        let kills = killed.get(&n.dn).map_or(0, |k| k.len() as u64);
        if n.restarts < kills {
            return fail(format!(
                "lost restart history: {} was killed {kills} times but shows {} restarts",
                n.dn, n.restarts
            ));
        }
        if let Some(&s) = starts.get(&n.dn) {
            if s > n.restarts + 1 {
                return fail(format!(
                    "more starts than restarts: {} started {s} times with {} restarts",
                    n.dn, n.restarts
                ));
            }
        }
    }
    let present: std::collections::HashSet<&str> = snapshot.iter().map(|n| n.dn.as_str()).collect();
    if let Some(dn) = killed.keys().find(|dn| !present.contains(dn.as_str())) {
        return fail(format!("{dn} was killed and is not in the snapshot"));
    }
    let dns_killed = killed.len();
    drop(present);
    drop((snapshot, starts, killed));

    // Shut down in bounded time; nothing is left.
    progress("shutting down");
    let stopping = Instant::now();
    if tokio::time::timeout(Duration::from_secs(60), sup.shutdown())
        .await
        .is_err()
    {
        return fail("shutdown did not finish within 60 s".into());
    }
    let shutdown = stopping.elapsed();
    if !sup.live_runnables().await.is_empty() {
        return fail("runnables live after shutdown".into());
    }
    let orphans = orphans(&mark, Duration::from_secs(5));
    if !signals.pids().is_empty() {
        return fail(format!(
            "pids still recorded after shutdown: {:?}",
            signals.pids()
        ));
    }
    drop((sup, dynamic, started, shape, signals, dns, processes));
    let _ = std::panic::take_hook();
    progress("waiting for threads and heap to return to their baseline");
    let back = settle_to(threads, heap, SLACK, &storm.context("after the storm")).await;
    let report = Report {
        nodes: storm.nodes(),
        injected,
        dns_killed,
        restarts,
        recovery,
        shutdown,
        threads: (threads, back.0),
        heap: (heap, back.1),
        orphans,
    };
    if !report.orphans.is_empty() {
        return fail(format!("processes outlived the tree: {:?}", report.orphans));
    }
    if let Err(e) = back.2 {
        return fail(e);
    }
    Ok(report)
}
