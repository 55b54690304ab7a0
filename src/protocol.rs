//! The messages between the parts of a supervisor, and [`Link`], the
//! handle through which node hosts and contexts reach the processor without
//! naming it.
//!
//! Into the processor: the reports [`Exited`], [`Began`], [`SignalMsg`] and
//! [`Pid`] from the tree's side, through its [`Inbox`]; the requests
//! [`StartGroup`] from the tree's side and [`WaitSettled`], [`Snapshot`],
//! [`LiveRunnables`], [`Stop`] and [`Join`] from the [`Supervisor`] handle,
//! through its mailbox. Into a node host: [`Start`].
//!
//! [`Supervisor`]: crate::Supervisor

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Addr, MailboxError, Message};
use futures::channel::oneshot;
use tokio_util::sync::CancellationToken;

use crate::error::RunError;
use crate::exit::Exit;
use crate::inbox::{Inbox, Report};
use crate::logtree::LogTree;
use crate::policy::{Restart, Shutdown};
use crate::processor::Processor;
use crate::runnable::Group;
use crate::state::{Counts, Ended, NodeInfo, Signal};
use crate::supervisor::Supervisor;
use crate::tree::NodeKey;

/// The processor as the tree's side sees it: its address for requests, its
/// inbox for reports (and the slot of a propagated panic, to make
/// [`Supervisor`] handles). Shared rather than cloned: every clone of an
/// actix address allocates.
#[derive(Clone)]
pub(crate) struct Link(Arc<Shared>);

struct Shared {
    addr: Addr<Processor>,
    panic: PanicSlot,
    inbox: Arc<Inbox>,
}

/// Where a propagated panic waits for a handle to re-raise it.
pub(crate) type PanicSlot = Arc<Mutex<Option<String>>>;

impl Link {
    pub fn new(addr: Addr<Processor>, panic: PanicSlot, inbox: Arc<Inbox>) -> Link {
        Link(Arc::new(Shared { addr, panic, inbox }))
    }

    /// A handle on the supervisor, as [`Supervisor::start`] returns.
    pub fn supervisor(&self, logs: LogTree) -> Supervisor {
        Supervisor::from_parts(self.0.addr.clone(), self.0.panic.clone(), logs)
    }

    /// Reports an incarnation's end.
    pub fn exited(&self, msg: Exited) {
        self.0.inbox.send(Report::Exited(msg));
    }

    /// Reports that a delayed start has begun.
    pub fn began(&self, msg: Began) {
        self.0.inbox.send(Report::Began(msg));
    }

    /// Reports an accepted signal.
    pub fn signal(&self, msg: SignalMsg) {
        self.0.inbox.send(Report::Signal(msg));
    }

    /// Reports a process node's pid.
    pub fn pid(&self, msg: Pid) {
        self.0.inbox.send(Report::Pid(msg));
    }

    /// Asks for children.
    pub async fn start_group(
        &self,
        msg: StartGroup,
    ) -> Result<Result<Starting, RunError>, MailboxError> {
        // After what this thread holds: the processor must see a delayed
        // start's `Began` before the children it starts.
        crate::inbox::release_held();
        self.0.addr.send(msg).await
    }
}

/// Run one incarnation.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Start {
    /// Which incarnation; the host makes its `Context` (on the worker,
    /// where the context is used and dropped).
    pub ctx: Incarnation,
    /// The backoff to wait out first; cancelled waits end the incarnation.
    pub delay: Duration,
    /// With ordered start: opened (with a settle guard) once the member
    /// before this one is healthy. Waited for before the delay.
    pub gate: Option<oneshot::Receiver<Starting>>,
    /// How the node is stopped, before the runnable's own say.
    pub shutdown: Shutdown,
    /// Its restart type, for the host to tell a death (see [`is_death`]).
    ///
    /// [`is_death`]: crate::exit::is_death
    pub restart: Restart,
    /// What a death takes down besides the node's own subtree: its
    /// one-for-all group's shared token. The host cancels both at once.
    pub takes_down: Option<CancellationToken>,
    /// Held until the runnable has been polled once (see [`Starting`]).
    pub starting: Option<Starting>,
}

/// One incarnation of one node, as the processor hands it to the host.
pub(crate) struct Incarnation {
    pub dn: Arc<str>,
    pub node: NodeKey,
    pub incarnation: u64,
    pub token: CancellationToken,
}

/// Counts starts whose runnable has not been polled yet, and `run_group`
/// callers that have not resumed after the processor's answer.
/// `wait_settled` does not resolve while any is outstanding: that is where a
/// runnable usually signals and starts its children, and a busy worker must
/// not make the tree look settled before it has happened.
pub(crate) struct Starting(Arc<AtomicUsize>);

impl Starting {
    pub fn new(counter: &Arc<AtomicUsize>) -> Starting {
        counter.fetch_add(1, Ordering::AcqRel);
        Starting(counter.clone())
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A node's incarnation ended. From its host.
pub(crate) struct Exited {
    pub node: NodeKey,
    pub incarnation: u64,
    pub exit: Exit,
}

/// A delayed start's backoff is over and its host is starting the runnable.
pub(crate) struct Began {
    pub node: NodeKey,
    pub incarnation: u64,
}

/// A signal the context accepted.
pub(crate) struct SignalMsg {
    pub node: NodeKey,
    pub incarnation: u64,
    pub signal: Signal,
}

/// `Context::run_group`.
#[derive(Message)]
#[rtype(result = "Result<Starting, RunError>")]
pub(crate) struct StartGroup {
    pub node: NodeKey,
    pub dn: Arc<str>,
    pub incarnation: u64,
    pub group: Group,
}

/// Resolves once the tree has been quiet for the settle window.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct WaitSettled;

/// The nodes of the subtree at `of` (the whole tree when `None`); `None`
/// back when no node has that DN. With `unready_only`, only the nodes that
/// keep the service from being ready (see `View::is_unready`): a readiness
/// probe then builds no record for the nodes that are fine.
#[derive(Message)]
#[rtype(result = "Option<Vec<NodeInfo>>")]
pub(crate) struct Snapshot {
    pub of: Option<String>,
    pub unready_only: bool,
}

/// Whether the supervisor is draining (`start`: begin draining now).
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct Drain {
    pub start: bool,
}

/// The tree's summary.
#[derive(Message)]
#[rtype(result = "Counts")]
pub(crate) struct CountsMsg;

/// A process node's pid (`None`: its process ended).
pub(crate) struct Pid {
    pub node: NodeKey,
    pub incarnation: u64,
    pub pid: Option<u32>,
}

#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub(crate) struct LiveRunnables;

/// Resolves once the supervisor has shut down, with why.
#[derive(Message)]
#[rtype(result = "Ended")]
pub(crate) struct Join;

/// Cancels the tree; resolves once nothing is live.
#[derive(Message)]
#[rtype(result = "Ended")]
pub(crate) struct Stop;
