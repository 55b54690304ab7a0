//! A seeded, randomized fault storm on a tree of 11,111 nodes.
//!
//! Faults: returned errors, panics, signal misuse, deaths during set-up
//! (before the children are started), runnables that ignore cancellation
//! past their stop deadline, and SIGKILLed OS processes. Afterwards every
//! node must be HEALTHY again, the restart counts must agree with what was
//! injected, `shutdown()` must finish, no process may be left, and the
//! thread count and live heap must be back at their baseline.
//!
//! `STORM_SEED=n` replays a run (the seed is printed first, and in every
//! failure message); `STORM_SECS=n` makes it longer (default 2 s; see
//! `docs/reliability.md` for the long run).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_supervisor::process::Command;
use actix_supervisor::{Context, Group, NodeState, RunResult, Signal, Supervisor};
use common::heap::{back_to, live_heap, Counting, SLACK};
use common::*;
use futures::future::LocalBoxFuture;
use tokio::sync::mpsc;

#[global_allocator]
static ALLOC: Counting = Counting;

/// What the storm does to a running incarnation.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Error,
    Panic,
    /// Signals Done twice, then returns `Ok(())`: DEAD for the misuse.
    Misuse,
    /// Dies now, and its next incarnation dies again during set-up.
    SetupDeath,
    /// Ignores its next cancellation: aborted after the stop deadline.
    Deaf,
}

impl Fault {
    fn kills(self) -> bool {
        !matches!(self, Fault::Deaf)
    }
}

/// The current incarnation of a DN: its number and its fault inbox.
struct Inbox {
    incarnation: u64,
    tx: mpsc::UnboundedSender<Fault>,
}

/// What the runnables share with the test.
#[derive(Default)]
struct Book {
    inboxes: HashMap<String, Inbox>,
    /// How many times each DN's runnable was started.
    starts: HashMap<String, u64>,
    /// DNs whose next incarnation dies during set-up.
    doomed: BTreeSet<String>,
}

type Shared = Arc<Mutex<Book>>;

/// Removes the incarnation's inbox however it ends (panics included).
struct Deregister {
    book: Shared,
    dn: String,
    incarnation: u64,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        let mut book = self.book.lock().unwrap_or_else(|e| e.into_inner());
        if book
            .inboxes
            .get(&self.dn)
            .is_some_and(|i| i.incarnation == self.incarnation)
        {
            book.inboxes.remove(&self.dn);
        }
    }
}

/// The shape: root → 10 `s` (one group) → 10 `w` each (two groups of 5) →
/// 10 `m` each (one group) → 10 leaves `l` each (one group). Under `s0.w0`
/// and `s0.w1` every `m`'s `l0` is an OS process: 20 process nodes.
fn node(
    book: Shared,
    cmd: Command,
    depth: u8,
) -> impl FnMut(Context) -> LocalBoxFuture<'static, RunResult> + Send {
    move |ctx: Context| {
        let (book, cmd) = (book.clone(), cmd.clone());
        Box::pin(async move { incarnation(ctx, book, cmd, depth).await })
    }
}

async fn incarnation(ctx: Context, book: Shared, cmd: Command, depth: u8) -> RunResult {
    let dn = ctx.dn().to_string();
    let (incarnation, doomed) = {
        let mut b = book.lock().unwrap();
        let n = b.starts.entry(dn.clone()).or_default();
        *n += 1;
        let n = *n;
        (n, b.doomed.remove(&dn))
    };
    if doomed {
        return Err("injected death during set-up".into());
    }
    match depth {
        0 => {
            let mut g = Group::new();
            for i in 0..10 {
                g = g.with(format!("s{i}"), node(book.clone(), cmd.clone(), 1));
            }
            ctx.run_group(g).await?;
        }
        1 => {
            for half in [0..5, 5..10] {
                let mut g = Group::new();
                for i in half {
                    g = g.with(format!("w{i}"), node(book.clone(), cmd.clone(), 2));
                }
                ctx.run_group(g).await?;
            }
        }
        2 => {
            let mut g = Group::new();
            for i in 0..10 {
                g = g.with(format!("m{i}"), node(book.clone(), cmd.clone(), 3));
            }
            ctx.run_group(g).await?;
        }
        3 => {
            let mut g = Group::new();
            for i in 0..10 {
                g = if i == 0 && is_process_parent(&dn) {
                    g.with("l0", cmd.clone())
                } else {
                    g.with(format!("l{i}"), node(book.clone(), cmd.clone(), 4))
                };
            }
            ctx.run_group(g).await?;
        }
        _ => {}
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    book.lock()
        .unwrap()
        .inboxes
        .insert(dn.clone(), Inbox { incarnation, tx });
    let _registered = Deregister {
        book,
        dn,
        incarnation,
    };
    ctx.signal(Signal::Healthy)?;
    let mut deaf = false;
    loop {
        tokio::select! {
            _ = ctx.cancelled() => {
                if deaf {
                    futures::future::pending::<()>().await;
                }
                return Ok(());
            }
            fault = rx.recv() => match fault {
                Some(Fault::Error) => return Err("injected error".into()),
                Some(Fault::Panic) => panic!("injected panic"),
                Some(Fault::Misuse) => {
                    let _ = ctx.signal(Signal::Done);
                    let _ = ctx.signal(Signal::Done);
                    return Ok(());
                }
                Some(Fault::SetupDeath) => return Err("injected error before a set-up death".into()),
                Some(Fault::Deaf) => deaf = true,
                None => return Err("the storm's inbox closed".into()),
            }
        }
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn is_process_parent(dn: &str) -> bool {
    dn.starts_with("root.s0.w0.") || dn.starts_with("root.s0.w1.")
}

fn all_dns() -> Vec<String> {
    let mut dns = vec!["root".to_string()];
    for s in 0..10 {
        dns.push(format!("root.s{s}"));
        for w in 0..10 {
            dns.push(format!("root.s{s}.w{w}"));
            for m in 0..10 {
                let parent = format!("root.s{s}.w{w}.m{m}");
                for l in 0..10 {
                    dns.push(format!("{parent}.l{l}"));
                }
                dns.push(parent);
            }
        }
    }
    dns
}

const NODES: usize = 11_111;

#[actix_rt::test]
async fn a_fault_storm_leaves_every_node_healthy_and_nothing_behind() {
    // No logger: thousands of death reports would drown the output.
    let seed: u64 = std::env::var("STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let secs: u64 = std::env::var("STORM_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    eprintln!("fault storm: seed {seed} for {secs} s (replay: STORM_SEED={seed})");
    let ctx = |what: &str| format!("{what} (seed {seed}; replay with STORM_SEED={seed})");

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
    let mut rng = Rng(seed);
    let book: Shared = Arc::default();
    let cmd = Command::new("sleep")
        .arg("1000")
        .grace(Duration::from_millis(20));
    let signals = cmd.signals();
    let sup = Supervisor::builder()
        .backoff(backoff_ms(1))
        .workers(2)
        .shutdown_timeout(Duration::from_millis(50))
        .start(node(book.clone(), cmd, 0));

    let dns = all_dns();
    let processes: Vec<&String> = dns
        .iter()
        .filter(|d| is_process_parent(d) && d.ends_with(".l0"))
        .collect();
    assert_eq!(dns.len(), NODES);
    assert_eq!(processes.len(), 20);
    // DN → the incarnations (or pids) the storm killed.
    let mut killed: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut pids_seen: BTreeSet<u32> = BTreeSet::new();
    let mut injected: BTreeMap<&str, u64> = BTreeMap::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < end {
        for _ in 0..4 {
            let roll = rng.below(100);
            if roll < 5 {
                let dn = processes[rng.below(processes.len())];
                if let Some(pid) = signals.node(dn).pid() {
                    pids_seen.insert(pid);
                    if signals.node(dn).send(libc::SIGKILL).is_ok() {
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
            let dn = &dns[rng.below(dns.len())];
            let mut b = book.lock().unwrap();
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
            *injected.entry(format!("{fault:?}").leak()).or_default() += 1;
            if fault.kills() {
                killed.entry(dn.clone()).or_default().insert(incarnation);
            }
        }
        // Pacing, not synchronisation: the storm runs for `secs` seconds.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let total: u64 = injected.values().sum();
    eprintln!(
        "fault storm: injected {total} faults: {injected:?}; {} DNs killed",
        killed.len()
    );
    assert!(total > 100, "{}", ctx("the storm must inject faults"));

    // Everything comes back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let snapshot = loop {
        sup.wait_settled().await;
        let snap = sup.snapshot().await;
        assert!(
            snap.windows(2).all(|w| w[0].dn < w[1].dn),
            "the snapshot is sorted by DN"
        );
        if snap.len() == NODES && snap.iter().all(|n| n.state == NodeState::Healthy) {
            break snap;
        }
        let sick: Vec<_> = snap
            .iter()
            .filter(|n| n.state != NodeState::Healthy)
            .take(5)
            .collect();
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: {} nodes, not healthy: {sick:?}",
            ctx("not everything came back within 60 s"),
            snap.len()
        );
    };

    // The records agree with what was injected.
    let starts = book.lock().unwrap().starts.clone();
    let mut restarts = 0;
    for n in &snapshot {
        restarts += n.restarts;
        let kills = killed.get(&n.dn).map_or(0, |k| k.len() as u64);
        assert!(
            n.restarts >= kills,
            "{}: {} was killed {kills} times but shows {} restarts",
            ctx("lost restart history"),
            n.dn,
            n.restarts
        );
        if let Some(&s) = starts.get(&n.dn) {
            assert!(
                s <= n.restarts + 1,
                "{}: {} started {s} times with {} restarts",
                ctx("more starts than restarts"),
                n.dn,
                n.restarts
            );
        }
    }
    for dn in killed.keys() {
        assert!(snapshot.iter().any(|n| &n.dn == dn), "{}", ctx(dn));
    }
    eprintln!("fault storm: all {NODES} nodes healthy again after {restarts} restarts in total");

    // Shut down in bounded time; nothing is left.
    tokio::time::timeout(Duration::from_secs(60), sup.shutdown())
        .await
        .unwrap_or_else(|_| panic!("{}", ctx("shutdown did not finish within 60 s")));
    assert!(sup.live_runnables().await.is_empty());
    for pid in signals.pids().iter().map(|(_, p)| *p).chain(pids_seen) {
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        };
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while !gone() && std::time::Instant::now() < until {
            std::thread::yield_now();
        }
        assert!(gone(), "{}: process {pid} outlived the tree", ctx("orphan"));
    }
    assert!(signals.pids().is_empty());
    drop((sup, book, signals, snapshot, starts, killed, dns));
    let _ = std::panic::take_hook();
    back_to(threads, heap, SLACK, &ctx("after the storm")).await;
}
