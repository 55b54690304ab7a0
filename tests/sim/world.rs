//! The simulated world: the scripted runnables the supervisor runs, and the
//! book they keep of themselves (which incarnations began, which saw their
//! cancellation, whether two incarnations of one DN ever ran at once).
//!
//! A scripted runnable starts the groups its shape says on every
//! incarnation, then does what the driver tells it, one command at a time,
//! and returns as soon as it sees its cancellation (unless told to ignore
//! it).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use actix_supervisor::{Child, Context, DynamicGroup, Group, RunResult, Shutdown, Signal};
use futures::future::LocalBoxFuture;
use tokio::sync::mpsc;

use super::shape::{GroupShape, Shape, Stop};

/// What the driver tells a runnable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    Healthy,
    Done,
    ReturnOk,
    ReturnErr,
    Panic,
    /// Signals Done twice (a misuse at least once), then returns `Ok(())`.
    Misuse,
    /// Ignores its cancellation from now on: its stop mode decides.
    Hang,
    /// Spawns a task that panics.
    TaskPanic,
}

/// The world's book.
#[derive(Default)]
pub struct Book {
    /// The current incarnation's inbox, by DN.
    inboxes: HashMap<String, mpsc::UnboundedSender<Cmd>>,
    /// Incarnations running now, by DN.
    running: HashMap<String, u32>,
    pub started: BTreeMap<String, u64>,
    pub saw_cancel: BTreeMap<String, u64>,
    pub violations: Vec<String>,
    /// Every poll of every scripted future: the settle loop's sign of life.
    pub polls: u64,
}

pub struct World {
    pub shape: Shape,
    pub book: Mutex<Book>,
}

impl World {
    pub fn new(shape: Shape) -> Arc<World> {
        Arc::new(World {
            shape,
            book: Mutex::default(),
        })
    }

    pub fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends `cmd` to the running incarnation of `dn`.
    pub fn send(&self, dn: &str, cmd: Cmd) -> bool {
        self.book()
            .inboxes
            .get(dn)
            .is_some_and(|tx| tx.send(cmd).is_ok())
    }

    /// Incarnations running now, in all.
    pub fn running(&self) -> u32 {
        self.book().running.values().sum()
    }

    /// The runnable of the static node or dynamic child `dn`.
    pub fn runnable(
        self: &Arc<Self>,
        dn: &str,
    ) -> impl FnMut(Context) -> LocalBoxFuture<'static, RunResult> + Send + 'static {
        let (world, dn) = (self.clone(), dn.to_string());
        move |ctx: Context| {
            let counted = Counted {
                inner: Box::pin(script(world.clone(), dn.clone(), ctx)),
                world: world.clone(),
            };
            Box::pin(counted) as LocalBoxFuture<'static, RunResult>
        }
    }

    /// A group as the shape says, with each member's policy.
    fn group(self: &Arc<Self>, shape: &GroupShape) -> Group {
        let mut g = Group::new()
            .strategy(shape.strategy)
            .ordered_start(shape.ordered_start)
            .ordered_stop(shape.ordered_stop);
        for dn in &shape.members {
            g = g.child(self.child(dn));
        }
        g
    }

    /// A child spec for `dn` with its policy.
    pub fn child(self: &Arc<Self>, dn: &str) -> Child {
        let spec = self.shape.spec_of(dn);
        let name = dn.rsplit('.').next().unwrap_or(dn);
        let mut child = Child::new(name, self.runnable(dn))
            .restart(spec.restart)
            .shutdown(match spec.stop {
                Stop::Timeout(ms) => Shutdown::Timeout(std::time::Duration::from_millis(ms)),
                Stop::Brutal => Shutdown::Brutal,
                Stop::Infinity => Shutdown::Infinity,
            });
        if let Some(ms) = spec.start_timeout {
            child = child.start_timeout(std::time::Duration::from_millis(ms));
        }
        if let Some((n, within)) = spec.intensity {
            child = child.max_restarts(n, std::time::Duration::from_millis(within));
        }
        child
    }
}

/// One incarnation of a scripted runnable.
async fn script(world: Arc<World>, dn: String, ctx: Context) -> RunResult {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _running = Running::begin(&world, &dn, tx);
    let saw_cancel = || {
        *world.book().saw_cancel.entry(dn.clone()).or_default() += 1;
    };
    if ctx.is_cancelled() {
        saw_cancel();
        return Ok(());
    }
    for shape in world.shape.groups_of(&dn).to_vec() {
        let started = if shape.dynamic {
            let (_, max, _) = world.shape.dynamic.clone().expect("a dynamic node");
            let name = shape.members[0].rsplit('.').next().unwrap_or_default();
            let mut limits = DynamicGroup::new().max_children(max);
            if let Some((n, within)) = world.shape.spec_of(&shape.members[0]).intensity {
                limits = limits.max_restarts(n, std::time::Duration::from_millis(within));
            }
            ctx.run_dynamic(name, limits).await.map(drop)
        } else {
            ctx.run_group(world.group(&shape)).await
        };
        if let Err(e) = started {
            if ctx.is_cancelled() {
                saw_cancel();
                return Ok(());
            }
            return Err(e.into());
        }
    }
    let mut deaf = false;
    loop {
        tokio::select! {
            biased;
            _ = ctx.cancelled(), if !deaf => {
                saw_cancel();
                return Ok(());
            }
            cmd = rx.recv() => match cmd {
                Some(Cmd::Healthy) => {
                    let _ = ctx.signal(Signal::Healthy);
                }
                Some(Cmd::Done) => {
                    let _ = ctx.signal(Signal::Done);
                }
                Some(Cmd::ReturnOk) => return Ok(()),
                Some(Cmd::ReturnErr) => return Err("told to fail".into()),
                Some(Cmd::Panic) => panic!("{SIM_PANIC}"),
                Some(Cmd::Misuse) => {
                    let _ = ctx.signal(Signal::Done);
                    let _ = ctx.signal(Signal::Done);
                    return Ok(());
                }
                Some(Cmd::Hang) => deaf = true,
                Some(Cmd::TaskPanic) => {
                    ctx.spawn(async { panic!("{SIM_PANIC}") });
                }
                None => std::future::pending::<()>().await,
            }
        }
    }
}

/// The message of every panic the simulation causes (the test's panic
/// hook keeps them quiet).
pub const SIM_PANIC: &str = "a simulated panic";

/// Marks an incarnation running from its first poll until its future is
/// dropped, however that happens; two at once for one DN is a violation.
struct Running {
    world: Arc<World>,
    dn: String,
}

impl Running {
    fn begin(world: &Arc<World>, dn: &str, tx: mpsc::UnboundedSender<Cmd>) -> Running {
        let mut book = world.book();
        let running = book.running.entry(dn.to_string()).or_default();
        if *running > 0 {
            let v = format!("{dn}: a second incarnation began while one ran");
            book.violations.push(v);
        }
        *book.running.entry(dn.to_string()).or_default() += 1;
        *book.started.entry(dn.to_string()).or_default() += 1;
        book.inboxes.insert(dn.to_string(), tx);
        Running {
            world: world.clone(),
            dn: dn.to_string(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut book = self.world.book();
        if let Some(r) = book.running.get_mut(&self.dn) {
            *r -= 1;
        }
        book.inboxes.remove(&self.dn);
    }
}

/// Counts every poll of a scripted future.
struct Counted {
    inner: LocalBoxFuture<'static, RunResult>,
    world: Arc<World>,
}

impl Future for Counted {
    type Output = RunResult;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<RunResult> {
        self.world.book().polls += 1;
        self.inner.as_mut().poll(cx)
    }
}
