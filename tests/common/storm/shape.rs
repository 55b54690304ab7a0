//! The storm's tree and its runnables: the shape (levels, groups, a
//! dynamic node, processes), the faults a runnable takes from its inbox, and
//! the book the storm keeps of what it injected.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use actix_supervisor::process::Command;
use actix_supervisor::{Context, DynamicGroup, Group, RunResult, Signal};
use futures::future::LocalBoxFuture;
use tokio::sync::mpsc;

/// What the storm does to a running incarnation.
#[derive(Clone, Copy, Debug)]
pub(super) enum Fault {
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
    pub(super) fn kills(self) -> bool {
        !matches!(self, Fault::Deaf)
    }

    /// A name to count by: static, so that counting allocates nothing per fault.
    pub(super) fn name(self) -> &'static str {
        match self {
            Fault::Error => "error",
            Fault::Panic => "panic",
            Fault::Misuse => "misuse",
            Fault::SetupDeath => "set-up death",
            Fault::Deaf => "deaf",
        }
    }
}

/// The current incarnation of a DN: its number and its fault inbox.
pub(super) struct Inbox {
    pub(super) incarnation: u64,
    pub(super) tx: mpsc::UnboundedSender<Fault>,
}

/// What the runnables share with the storm.
#[derive(Default)]
pub(super) struct Book {
    pub(super) inboxes: HashMap<String, Inbox>,
    /// How many times each DN's runnable was started.
    pub(super) starts: HashMap<String, u64>,
    /// DNs whose next incarnation dies during set-up.
    pub(super) doomed: BTreeSet<String>,
}

pub(super) type Shared = Arc<Mutex<Book>>;

pub(super) fn lock(book: &Shared) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the incarnation's inbox however it ends (panics included).
pub(super) struct Deregister {
    pub(super) book: Shared,
    pub(super) dn: String,
    pub(super) incarnation: u64,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        let mut book = lock(&self.book);
        if book
            .inboxes
            .get(&self.dn)
            .is_some_and(|i| i.incarnation == self.incarnation)
        {
            book.inboxes.remove(&self.dn);
        }
    }
}

/// The shape, for levels = 4 (11,111 nodes): root → 10 `s` (one group) →
/// 10 `w` each (two groups of 5) → 10 `m` each (one group) → 10 leaves `l`
/// each (one group); deeper trees add levels `n`, `o`, … above the leaves.
/// Under `s0.w0` and `s0.w1` every leaf parent's `l0` is an OS process (20
/// process nodes at 11,111 nodes, 200 at 111,111).
#[derive(Clone)]
pub(super) struct Shape {
    pub(super) book: Shared,
    pub(super) cmd: Command,
    pub(super) levels: u32,
}

impl Shape {
    pub(super) fn node(
        &self,
        depth: u32,
    ) -> impl FnMut(Context) -> LocalBoxFuture<'static, RunResult> + Send {
        let shape = self.clone();
        move |ctx: Context| {
            let shape = shape.clone();
            Box::pin(async move { shape.incarnation(ctx, depth).await })
        }
    }

    /// The name prefix of the nodes at `depth`.
    pub(super) fn prefix(&self, depth: u32) -> char {
        match depth {
            1 => 's',
            d if d == self.levels => 'l',
            2 => 'w',
            d => (b'm' + (d - 3) as u8) as char,
        }
    }

    pub(super) fn is_process_parent(&self, dn: &str, depth: u32) -> bool {
        depth + 1 == self.levels
            && ["root.s0.w0", "root.s0.w1"]
                .iter()
                .any(|p| dn == *p || dn.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
    }

    /// Every DN, and the process nodes'.
    pub(super) fn dns(&self) -> (Vec<String>, Vec<String>) {
        let (mut all, mut processes) = (Vec::new(), Vec::new());
        let mut level = vec!["root".to_string()];
        for depth in 0..=self.levels {
            let mut next = Vec::new();
            for dn in &level {
                if depth < self.levels {
                    let p = self.prefix(depth + 1);
                    next.extend((0..10).map(|i| format!("{dn}.{p}{i}")));
                    if self.is_process_parent(dn, depth) {
                        processes.push(format!("{dn}.l0"));
                    }
                }
            }
            all.append(&mut level);
            level = next;
        }
        (all, processes)
    }

    pub(super) async fn incarnation(self, ctx: Context, depth: u32) -> RunResult {
        let dn = ctx.dn().to_string();
        let (incarnation, doomed) = {
            let mut b = lock(&self.book);
            let n = b.starts.entry(dn.clone()).or_default();
            *n += 1;
            let n = *n;
            (n, b.doomed.remove(&dn))
        };
        if doomed {
            return Err("injected death during set-up".into());
        }
        if depth < self.levels {
            let p = self.prefix(depth + 1);
            // The `s` nodes start their children in two groups of five.
            let groups: &[(u32, u32)] = match depth {
                1 => &[(0, 5), (5, 10)],
                _ => &[(0, 10)],
            };
            for &(from, to) in groups {
                let mut g = Group::new();
                for i in from..to {
                    g = if i == 0 && self.is_process_parent(&dn, depth) {
                        g.with("l0", self.cmd.clone())
                    } else {
                        g.with(format!("{p}{i}"), self.node(depth + 1))
                    };
                }
                ctx.run_group(g).await?;
            }
        }
        if depth == 0 {
            // Its children come and go at random during the storm.
            ctx.run_dynamic(DYNAMIC, DynamicGroup::new()).await?;
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&self.book)
            .inboxes
            .insert(dn.clone(), Inbox { incarnation, tx });
        let _registered = Deregister {
            book: self.book,
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
}

/// The root's dynamic node, `root.dyn`: the storm starts and terminates its
/// children at random, and injects faults into them too.
pub(super) const DYNAMIC: &str = "dyn";

/// xorshift64*: deterministic, no dependency.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
