//! [`Context`]: what a runnable sees of the tree during one incarnation.
//!
//! A context belongs to one incarnation of one node. Its signal phase (the
//! rules in `model/phase.rs`) is an atomic it holds, so that
//! [`Context::signal`] can answer synchronously and exactly; the processor
//! is told of every accepted signal by message and reads the final phase
//! from the exit report.
//!
//! The context reaches the processor through a [`Link`]: its inbox for
//! reports, and a request of the context's own, [`StartGroup`], for
//! children. Neither names the processor.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use actix::{MailboxError, Message, Recipient};
use tokio_util::sync::CancellationToken;

use crate::api::heart::Heart;
use crate::api::lease::Tenure;
use crate::api::logger::{AsLogger, Logger};
use crate::api::panics::PanicSlot;
use crate::api::runnable::{Child, DynamicRequest, Group, Runnable};
use crate::api::tasks::{TaskHandle, Tasks};
use crate::api::wire::inbox::{
    Addrs, Began, Exited, HungMsg, Inbox, LeaseMsg, Pid, QueueMsg, Report, SignalMsg,
};
use crate::api::wire::protocol::{Extras, Request};
use crate::api::wire::settle::Starting;
use crate::model::error::{RunError, SignalError};
use crate::model::exit::{ExitReport, Hung, Outcome};
use crate::model::logtree::LogTree;
use crate::model::name::is_valid_name;
use crate::model::phase::{Phase, Seen};
use crate::model::queues::{Depths, QueueAlarm};
use crate::model::records::{NodeState, Signal};
use crate::model::tree::NodeKey;

/// The processor as the tree's side sees it: where reports go (its inbox)
/// and where requests for children go, plus what makes a
/// [`Supervisor`](crate::Supervisor) handle. Shared rather than cloned:
/// every clone of an actix address allocates.
#[derive(Clone)]
pub(crate) struct Link(Arc<Shared>);

/// What a [`Supervisor`](crate::Supervisor) handle is made of.
pub(crate) struct HandleParts {
    pub requests: Recipient<Request>,
    pub dynamic: Recipient<DynamicRequest>,
    pub panic: PanicSlot,
    pub extras: Arc<Extras>,
}

struct Shared {
    groups: Recipient<StartGroup>,
    requests: Recipient<Request>,
    dynamic: Recipient<DynamicRequest>,
    panic: PanicSlot,
    inbox: Arc<Inbox>,
    extras: Arc<Extras>,
}

impl Link {
    pub fn new(
        groups: Recipient<StartGroup>,
        requests: Recipient<Request>,
        dynamic: Recipient<DynamicRequest>,
        panic: PanicSlot,
        inbox: Arc<Inbox>,
        extras: Arc<Extras>,
    ) -> Link {
        Link(Arc::new(Shared {
            groups,
            requests,
            dynamic,
            panic,
            inbox,
            extras,
        }))
    }

    /// What a [`Supervisor`](crate::Supervisor) handle is made of.
    pub fn handle_parts(&self) -> HandleParts {
        let s = &self.0;
        HandleParts {
            requests: s.requests.clone(),
            dynamic: s.dynamic.clone(),
            panic: s.panic.clone(),
            extras: s.extras.clone(),
        }
    }

    /// Reports an incarnation's end.
    pub fn exited(&self, msg: Exited) {
        self.0.inbox.send(Report::Exited(msg));
    }

    /// Reports a singleton's lease change.
    pub fn lease(&self, msg: LeaseMsg) {
        self.0.inbox.send(Report::Lease(msg));
    }

    /// Reports a missed heartbeat, as it is found.
    pub fn hung(&self, msg: HungMsg) {
        self.0.inbox.send(Report::Hung(msg));
    }

    /// Reports news of an actor node's backlog.
    pub fn queue(&self, msg: QueueMsg) {
        self.0.inbox.send(Report::Queue(msg));
    }

    /// Where actor nodes keep the spread of their backlogs.
    pub fn depths(&self) -> &Arc<Depths> {
        &self.0.extras.depths
    }

    /// Reports where a server node listens.
    pub fn addrs(&self, msg: Addrs) {
        self.0.inbox.send(Report::Addrs(msg));
    }

    /// Reports that a delayed start has begun.
    pub fn began(&self, msg: Began) {
        self.0.inbox.send(Report::Began(msg));
    }

    fn signal(&self, msg: SignalMsg) {
        self.0.inbox.send(Report::Signal(msg));
    }

    fn pid(&self, msg: Pid) {
        self.0.inbox.send(Report::Pid(msg));
    }

    async fn start_group(
        &self,
        msg: StartGroup,
    ) -> Result<Result<Starting, RunError>, MailboxError> {
        // After what this thread holds: the processor must see a delayed
        // start's `Began` before the children it starts.
        crate::api::wire::inbox::release_held();
        self.0.groups.send(msg).await
    }
}

/// [`Context::run_group`]'s request. The answer carries a settle guard that
/// the caller drops once it has resumed (see `api/wire/settle.rs`).
pub(crate) struct StartGroup {
    pub node: NodeKey,
    pub dn: Arc<str>,
    pub incarnation: u64,
    pub group: Group,
}

impl Message for StartGroup {
    type Result = Result<Starting, RunError>;
}

/// What an incarnation is held to beyond its node's policy: a singleton's
/// tenure, a heartbeat.
pub(crate) struct Duties {
    pub lease: Option<Tenure>,
    pub heartbeat: Option<std::time::Duration>,
    /// For an actor node: its queue alarm.
    pub queue_alarm: Option<QueueAlarm>,
}

/// A runnable's handle on its node: its name, its cancellation, its signals
/// and its children. Cheap to clone; `Send + Sync`, so it can be moved into
/// tasks the runnable spawns.
///
/// ```no_run
/// use actix_supervisor::{Context, RunResult, Signal};
///
/// async fn listener(ctx: Context) -> RunResult {
///     // Children may only be started before Healthy.
///     ctx.run("acceptor", |ctx: Context| async move {
///         ctx.signal(Signal::Healthy)?;
///         ctx.cancelled().await;
///         Ok(())
///     })
///     .await?;
///     ctx.signal(Signal::Healthy)?;
///     ctx.cancelled().await;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    dn: Arc<str>,
    node: NodeKey,
    incarnation: u64,
    token: CancellationToken,
    phase: Phase,
    processor: Link,
    logs: LogTree,
    /// The child and sub-logger names this incarnation has used: they share
    /// one namespace (both extend the DN), and `sub_logger` must answer
    /// synchronously.
    names: Mutex<BTreeMap<String, NameUse>>,
    /// The tasks it spawned, from the first `spawn` on. One pointer: every
    /// incarnation carries it, few use it.
    tasks: once_cell::race::OnceBox<Arc<Tasks>>,
    /// A singleton's tenure, for the incarnation it runs in.
    lease: Option<Tenure>,
    /// Its heartbeat, for a node with one (`Child::heartbeat`).
    heart: Option<Box<Heart>>,
    /// Its queue alarm, for an actor node with one.
    queue_alarm: Option<QueueAlarm>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NameUse {
    /// Asked for by `run_group`, started or being started.
    Child,
    SubLogger,
}

impl Context {
    pub(crate) fn new(
        logs: LogTree,
        dn: Arc<str>,
        node: NodeKey,
        incarnation: u64,
        token: CancellationToken,
        processor: Link,
        duties: Duties,
    ) -> Context {
        let Duties {
            lease,
            heartbeat,
            queue_alarm,
        } = duties;
        Context {
            inner: Arc::new(Inner {
                dn,
                node,
                incarnation,
                token,
                phase: Phase::new(),
                processor,
                logs,
                names: Mutex::new(BTreeMap::new()),
                tasks: once_cell::race::OnceBox::new(),
                lease,
                heart: heartbeat.map(|every| Box::new(Heart::new(every))),
                queue_alarm,
            }),
        }
    }

    /// The node's distinguished name, e.g. `root.http.listener`.
    pub fn dn(&self) -> &str {
        &self.inner.dn
    }

    /// For a singleton node ([`Child::singleton`]): the fencing token of
    /// the lease this incarnation runs under. It grows with every new
    /// tenure of the lease across the whole fleet; pass it with every write
    /// the work makes to a store that can refuse a write carrying a lower
    /// token than one it has seen (a conditional `UPDATE ... WHERE
    /// token <= $1`, an etcd transaction, an object version). That, and
    /// only that, stops a write already in flight when the lease was lost:
    /// see `docs/fleet.md`. `None` for a node that is not a singleton.
    ///
    /// ```
    /// use actix_supervisor::{Context, RunResult};
    ///
    /// async fn billing(ctx: Context) -> RunResult {
    ///     let token = ctx.fencing_token();
    ///     // e.g. UPDATE invoices SET ..., fence = $token WHERE fence <= $token
    ///     # let _ = token;
    ///     ctx.cancelled().await;
    ///     Ok(())
    /// }
    /// # let _ = billing;
    /// ```
    pub fn fencing_token(&self) -> Option<u64> {
        self.inner.lease.as_ref().map(Tenure::token)
    }

    /// Resolves when this node must stop: it died, a group sibling died, an
    /// ancestor is restarting, or the supervisor is shutting down. Whatever the
    /// runnable returns afterwards counts as CANCELLED.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.token.clone().cancelled_owned()
    }

    /// `true` once [`cancelled`](Self::cancelled) has resolved or would resolve at once.
    pub fn is_cancelled(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Starts one child named `name`: a group of one.
    pub async fn run(&self, name: &str, r: impl Runnable) -> Result<(), RunError> {
        self.run_group(Group::new().with(name, r)).await
    }

    /// Starts one child with a policy of its own (its restart type, stop
    /// mode, intensity, ...): a group of one.
    ///
    /// ```
    /// use actix_supervisor::{Child, Context, Restart, RunResult, Signal};
    ///
    /// async fn migrate(ctx: Context) -> RunResult { Ok(()) }
    ///
    /// async fn root(ctx: Context) -> RunResult {
    ///     ctx.run_child(Child::new("migrate", migrate).restart(Restart::Transient)).await?;
    ///     ctx.signal(Signal::Healthy)?;
    ///     ctx.cancelled().await;
    ///     Ok(())
    /// }
    /// ```
    pub async fn run_child(&self, child: Child) -> Result<(), RunError> {
        self.run_group(Group::new().child(child)).await
    }

    /// Starts a group of children, in the order they were added. Only allowed
    /// while this node is NEW, i.e. before it signals Healthy. The group
    /// starts whole or not at all.
    pub async fn run_group(&self, group: Group) -> Result<(), RunError> {
        // Boxed for the call: a runnable's future is as large as the largest
        // future it awaits, for as long as the node lives, and the request
        // to the processor takes about 400 bytes while it is under way.
        Box::pin(self.start_group(group)).await
    }

    async fn start_group(&self, group: Group) -> Result<(), RunError> {
        let dn = || self.inner.dn.to_string();
        match self.inner.phase.get() {
            Seen::New => {}
            Seen::Ended => return Err(RunError::Stale { dn: dn() }),
            _ => {
                return Err(RunError::NotNew {
                    dn: dn(),
                    state: NodeState::Healthy,
                })
            }
        }
        if self.is_cancelled() {
            return Err(RunError::Cancelled { dn: dn() });
        }
        let claimed = self.claim_children(&group)?;
        let msg = StartGroup {
            node: self.inner.node,
            dn: self.inner.dn.clone(),
            incarnation: self.inner.incarnation,
            group,
        };
        // The reply holds a settle guard, dropped here, on the caller's
        // task, once it has resumed: `wait_settled` waits for that.
        let res = match self.inner.processor.start_group(msg).await {
            Ok(res) => res.map(drop),
            Err(_) => Err(RunError::ShutDown { dn: dn() }),
        };
        if res.is_err() {
            let mut names = self.names();
            for name in claimed {
                names.remove(&name);
            }
        }
        res
    }

    /// Marks the group's names as children, refusing sub-logger names.
    /// Returns the names it marked (not those already children: the
    /// processor refuses those as duplicates).
    fn claim_children(&self, group: &Group) -> Result<Vec<String>, RunError> {
        let mut names = self.names();
        if let Some(name) = group
            .names()
            .find(|n| names.get(*n) == Some(&NameUse::SubLogger))
        {
            return Err(RunError::ReservedName {
                dn: self.inner.dn.to_string(),
                name: name.to_string(),
            });
        }
        let fresh: Vec<String> = group
            .names()
            .filter(|n| !names.contains_key(*n))
            .map(str::to_string)
            .collect();
        for name in &fresh {
            names.insert(name.clone(), NameUse::Child);
        }
        Ok(fresh)
    }

    fn names(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, NameUse>> {
        self.inner
            .names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `task` on this arbiter as part of this incarnation: its `log`
    /// calls are filed at the node's DN (with
    /// [`CaptureLogger`](crate::CaptureLogger)), its panic is the node's
    /// death, naming the task ("task 2 panicked: ..."), and it ends with the
    /// incarnation. Await the handle for the task's output. Called off an
    /// actix arbiter (from a plain thread), it starts nothing and the handle
    /// answers [`TaskError::NotOnArbiter`](crate::TaskError::NotOnArbiter).
    ///
    /// **How a task ends.** When the incarnation ends by itself (its
    /// runnable returned, or died), its tasks are aborted at once. When the
    /// node is being stopped (it, an ancestor or a sibling died, a
    /// restart, a shutdown), its tasks see [`cancelled`](Self::cancelled)
    /// like the runnable and get what is left of the node's stop deadline
    /// to finish (a last write, a flush): the node counts as stopped only
    /// once they have ended. A task still running at the deadline is
    /// aborted, the supervisor says so naming the node and the task, the
    /// exit counts as aborted, and at shutdown the node is a straggler
    /// ([`Ended::Stragglers`](crate::Ended::Stragglers)). So a task must end
    /// when `cancelled()` resolves, as in the example; a loop that ignores
    /// it holds every stop of its node for the whole deadline.
    ///
    /// (Aborting the tasks as soon as the runnable returns, as kameo does
    /// for an actor's tasks, would cut short the cleanup a task does on
    /// cancellation; waiting with a deadline is tokio-graceful-shutdown's
    /// choice, and the one that keeps a graceful stop graceful.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_supervisor::{node_debug, Context, RunResult, Signal};
    ///
    /// async fn with_heartbeat(ctx: Context) -> RunResult {
    ///     let beat = ctx.clone();
    ///     ctx.spawn(async move {
    ///         let mut every = tokio::time::interval(Duration::from_secs(1));
    ///         loop {
    ///             tokio::select! {
    ///                 // Ends with its incarnation, at once.
    ///                 _ = beat.cancelled() => break,
    ///                 _ = every.tick() => node_debug!(beat, "beat"),
    ///             }
    ///         }
    ///     });
    ///     ctx.signal(Signal::Healthy)?;
    ///     ctx.cancelled().await;
    ///     Ok(())
    /// }
    /// ```
    pub fn spawn<F>(&self, task: F) -> TaskHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let tasks = self.inner.tasks.get_or_init(Box::default);
        tasks.spawn(
            task,
            self.logger(),
            &self.inner.token,
            self.inner.lease.clone(),
        )
    }

    /// The tasks this incarnation spawned, if any.
    pub(crate) fn tasks(&self) -> Option<&Tasks> {
        self.inner.tasks.get().map(|t| &**t)
    }

    /// The link to the processor, for the handles made from a context.
    pub(crate) fn link(&self) -> &Link {
        &self.inner.processor
    }

    /// The supervisor's log tree.
    pub(crate) fn logs(&self) -> &LogTree {
        &self.inner.logs
    }

    /// This node's logger: entries go to the `log` facade (target: the DN)
    /// and to the supervisor's log tree at the DN.
    pub fn logger(&self) -> Logger {
        Logger::new(self.inner.dn.clone(), self.inner.logs.clone())
    }

    /// A logger at `DN.name`. The name must be valid and not a child's; once
    /// made, it is reserved: `run`/`run_group` refuse it until the node
    /// restarts. Asking again for the same sub-logger returns it again.
    pub fn sub_logger(&self, name: &str) -> Result<Logger, RunError> {
        let dn = || self.inner.dn.to_string();
        if !is_valid_name(name) {
            return Err(RunError::InvalidName {
                dn: dn(),
                name: name.to_string(),
            });
        }
        if self.inner.phase.get() == Seen::Ended {
            return Err(RunError::Stale { dn: dn() });
        }
        let mut names = self.names();
        match names.get(name) {
            Some(NameUse::Child) => {
                return Err(RunError::DuplicateName {
                    dn: dn(),
                    name: name.to_string(),
                })
            }
            Some(NameUse::SubLogger) => {}
            None => {
                names.insert(name.to_string(), NameUse::SubLogger);
            }
        }
        let sub: Arc<str> = format!("{}.{}", self.inner.dn, name).into();
        Ok(Logger::new(sub, self.inner.logs.clone()))
    }

    /// Tells the supervisor about this runnable: see [`Signal`].
    ///
    /// A refused signal is returned *and* makes this incarnation's exit a death
    /// (DEAD) whose reason is the returned error.
    pub fn signal(&self, signal: Signal) -> Result<(), SignalError> {
        self.inner.phase.signal(signal, &self.inner.dn)?;
        if signal == Signal::Healthy {
            self.beat();
        }
        self.inner.processor.signal(SignalMsg {
            node: self.inner.node,
            incarnation: self.inner.incarnation,
            signal,
        });
        Ok(())
    }

    /// A heartbeat: this node is not hung. For a node with
    /// [`Child::heartbeat`](crate::Child::heartbeat), which dies when it has
    /// not beaten for that long once HEALTHY; for any other node, nothing.
    /// Cheap (an atomic store): call it wherever the runnable makes
    /// progress.
    pub fn beat(&self) {
        if let Some(heart) = &self.inner.heart {
            heart.beat();
        }
    }

    /// The heartbeat of a node that has one.
    pub(crate) fn heart(&self) -> Option<&Heart> {
        self.inner.heart.as_deref()
    }

    /// Tells the processor at once that this incarnation missed its
    /// heartbeat (its host is stopping it).
    pub(crate) fn report_hung(&self, hung: Hung) {
        self.inner.processor.hung(HungMsg {
            node: self.inner.node,
            incarnation: self.inner.incarnation,
            hung,
        });
    }

    /// Keeps the missed heartbeat for the exit report.
    pub(crate) fn set_hung(&self, hung: Hung) {
        if let Some(heart) = self.heart() {
            heart.set_missed(hung);
        }
    }

    /// A process node's pid, for snapshots.
    pub(crate) fn report_pid(&self, pid: u32) {
        self.inner.processor.pid(Pid {
            node: self.inner.node,
            incarnation: self.inner.incarnation,
            pid: Some(pid),
        });
    }

    /// Where a server node listens, for snapshots (empty: nowhere now).
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn report_addrs(&self, addrs: Vec<std::net::SocketAddr>) {
        self.inner.processor.addrs(Addrs {
            node: self.inner.node,
            incarnation: self.inner.incarnation,
            addrs,
        });
    }

    /// Its queue alarm, for an actor node with one.
    pub(crate) fn queue_alarm(&self) -> Option<QueueAlarm> {
        self.inner.queue_alarm
    }

    pub(crate) fn node(&self) -> NodeKey {
        self.inner.node
    }

    pub(crate) fn incarnation(&self) -> u64 {
        self.inner.incarnation
    }

    /// Still NEW: neither Healthy nor Done signalled, not ended.
    pub(crate) fn is_new(&self) -> bool {
        self.inner.phase.get() == Seen::New
    }

    /// Done was signalled (and the incarnation has not ended yet).
    pub(crate) fn done_signalled(&self) -> bool {
        self.inner.phase.get() == Seen::Done
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.inner.token
    }

    /// Ends the incarnation: later signals and `run` calls are refused as
    /// stale. Returns the exit report for `outcome`: whether Done was
    /// signalled, the first misuse, the sub-loggers it made, and whether its
    /// token was cancelled at this moment.
    pub(crate) fn finish(&self, outcome: Outcome) -> ExitReport {
        // A task's panic came first: that is how the incarnation ended.
        let task_death = self.tasks().and_then(Tasks::death);
        let tasks_aborted = self.tasks().map_or(0, Tasks::aborted_at_deadline);
        let cancelled = task_death.is_none() && self.inner.token.is_cancelled();
        let outcome = match task_death {
            Some(why) => Outcome::Panicked(why),
            None => outcome,
        };
        let (done, misuse) = self.inner.phase.end(&self.inner.dn);
        let sub_loggers = self
            .names()
            .iter()
            .filter(|(_, used)| **used == NameUse::SubLogger)
            .map(|(name, _)| format!("{}.{name}", self.inner.dn))
            .collect();
        ExitReport {
            tasks_aborted,
            lease_lost: None,
            hung: self.heart().and_then(Heart::take_missed),
            outcome,
            done,
            misuse,
            sub_loggers,
            cancelled,
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("dn", &self.inner.dn)
            .field("incarnation", &self.inner.incarnation)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The `node_*!` macros take a context as well as a [`Logger`].
impl AsLogger for Context {
    fn as_logger(&self) -> Logger {
        self.logger()
    }
}
