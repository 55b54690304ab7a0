//! How the processor's decisions start runnables: a host per new node, and
//! each incarnation's [`Start`] to its host, gated behind its predecessor in
//! an ordered-start group.

use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;

use actix::fut::ActorFutureExt;
use actix::AsyncContext;

use super::{Life, Processor};
use crate::api::context::StartGroup;
use crate::api::lease::Lessor;
use crate::api::runnable::{Runnable, Sealed};
use crate::api::wire::protocol::{Incarnation, Start};
use crate::model::error::RunError;
use crate::model::records::NodeState;
use crate::model::tree::{GroupKey, NodeKey};
use crate::runtime::host::Host;
use crate::runtime::seat::Seat;

impl Processor {
    /// Starts a host for `node` on worker `worker`; `lease`: a singleton's
    /// fleet.
    pub(super) fn host(
        &mut self,
        node: NodeKey,
        runnable: Box<dyn Runnable>,
        lease: Option<Arc<dyn Lessor>>,
        worker: usize,
    ) {
        let Some(me) = self.me.clone() else { return };
        if let Some(n) = self.tree.node_mut(node) {
            n.kind = runnable.kind(Sealed(()));
        }
        let seat = lease.map(|lessor| {
            Box::new(Seat {
                lessor,
                top: self.tree.top().clone(),
                tenure: None,
            })
        });
        let host = Host::new(runnable, me, self.config.logs.clone(), seat);
        self.outbox.create(node, host, worker);
    }

    /// Sends the node's current incarnation to its host, to start after
    /// `delay`; `gated`: only once its predecessor in an ordered-start group
    /// has signalled Healthy (see [`open_next`](Self::open_next));
    /// `polled`: told once its runnable has been polled for the first time.
    pub(super) fn schedule(
        &mut self,
        k: NodeKey,
        delay: Duration,
        gated: bool,
        polled: Option<oneshot::Sender<()>>,
    ) {
        // Finished: nothing is started any more.
        if self.me.is_none() || !self.outbox.contains(k) {
            return;
        }
        #[cfg(feature = "tracing")]
        let span = self.span_for(k);
        let handover = self
            .tree
            .node_mut(k)
            .is_some_and(|n| std::mem::take(&mut n.handover));
        let Some(node) = self.tree.node(k) else {
            return;
        };
        let ctx = Incarnation {
            dn: node.dn.clone(),
            node: k,
            incarnation: node.incarnation,
            token: node.token.clone(),
            #[cfg(feature = "tracing")]
            span,
        };
        // A delayed start is reported NEW when the host begins it (`Began`).
        if delay.is_zero() {
            self.sinks.state(&node.dn, NodeState::New);
        }

        let gate = gated.then(|| {
            let (tx, rx) = oneshot::channel();
            self.beside.gates.insert(k, tx);
            rx
        });
        let start = Start {
            ctx,
            delay,
            gate,
            shutdown: self.tree.shutdown_of(k),
            restart: self.tree.restart_of(k),
            takes_down: self.tree.takes_down(k),
            start_timeout: self.tree.start_timeout_of(k),
            heartbeat: self.tree.heartbeat_of(k),
            queue_alarm: self.tree.queue_alarm_of(k),
            handover,
            // Pending backoff timers and closed gates must not hold
            // `wait_settled`; an opened gate brings its own guard.
            starting: (delay.is_zero() && !gated).then(|| self.settle.guard()),
            polled,
        };
        self.outbox.start(k, start);
        // The previous incarnation has exited and this one has not run yet:
        // the log lines after this mark are the new incarnation's.
        let mark = self.config.logs.seq();
        if let Some(n) = self.tree.node_mut(k) {
            n.log_mark = mark;
        }
        if delay.is_zero() && !gated {
            self.mark_started(k);
        }
    }

    /// A span for `k`'s new incarnation, named `node` with the fields `dn`,
    /// `incarnation` (1 for the first start) and `kind`; its parent is the
    /// parent node's current incarnation's span (the root's: the span
    /// current where the supervisor was started), so that a subscriber sees
    /// the tree. Kept as the parent of `k`'s children until `k` exits.
    #[cfg(feature = "tracing")]
    fn span_for(&mut self, k: NodeKey) -> ::tracing::Span {
        let Some(node) = self.tree.node(k) else {
            return ::tracing::Span::none();
        };
        let parent = node
            .parent
            .and_then(|p| self.beside.spans.get(p))
            .unwrap_or(&self.config.span);
        let span = ::tracing::info_span!(
            target: "actix_supervisor",
            parent: parent,
            "node",
            dn = &*node.dn,
            incarnation = node.restarts + 1,
            kind = node.kind.as_str(),
            supervisor = self.config.logs.id(),
        );
        self.beside.spans.insert(k, span.clone());
        span
    }

    /// Schedules members started together, in order: with ordered start,
    /// each after the one before it has signalled Healthy.
    pub(super) fn launch(
        &mut self,
        group: GroupKey,
        members: impl IntoIterator<Item = (NodeKey, Duration)>,
    ) {
        let ordered = self
            .tree
            .group(group)
            .is_some_and(|g| g.options.ordered_start);
        for (i, (k, delay)) in members.into_iter().enumerate() {
            self.schedule(k, delay, ordered && i > 0, None);
        }
    }

    /// `k` has signalled Healthy or is DONE: in an ordered-start group, the
    /// member after it may start now.
    pub(super) fn open_next(&mut self, k: NodeKey) {
        let Some(group) = self.tree.node(k).and_then(|n| self.tree.group(n.group)) else {
            return;
        };
        if !group.options.ordered_start {
            return;
        }
        let next = group
            .members
            .iter()
            .position(|m| *m == k)
            .and_then(|i| group.members.get(i + 1).copied());
        if let Some((n, gate)) = next.and_then(|n| Some((n, self.beside.gates.remove(n)?))) {
            let _ = gate.send(self.settle.guard());
            self.mark_started(n);
        }
    }

    pub(super) fn on_start_group(
        &mut self,
        msg: StartGroup,
        ctx: &mut actix::Context<Self>,
    ) -> Result<(), RunError> {
        let StartGroup {
            node: k,
            dn,
            incarnation,
            group,
        } = msg;
        let dn = || dn.to_string();
        let Some(node) = self.tree.node(k) else {
            return Err(RunError::Stale { dn: dn() });
        };
        if self.life != Life::Running {
            return Err(RunError::ShutDown { dn: dn() });
        }
        if node.incarnation != incarnation || node.state().is_exited() {
            return Err(RunError::Stale { dn: dn() });
        }
        if node.state() != NodeState::New {
            return Err(RunError::NotNew {
                dn: dn(),
                state: node.state(),
            });
        }
        if node.token.is_cancelled() {
            return Err(RunError::Cancelled { dn: dn() });
        }
        for c in &group.members {
            self.tree
                .check_spec(&c.spec, || format!("{}.{}", dn(), c.name))?;
        }
        let names = group.members.iter().map(|c| c.name.as_str());
        let owner_token = node.token.clone();
        let keys = self.tree.add_group(k, names, group.options)?;
        let Some(g) = keys
            .first()
            .and_then(|m| self.tree.node(*m))
            .map(|n| n.group)
        else {
            return Ok(());
        };
        let workers = self.workers.place(keys.len());
        for ((key, child), worker) in keys.iter().zip(group.members).zip(workers) {
            self.tree.set_spec(*key, child.spec);
            self.host(*key, child.runnable, child.lease, worker);
        }
        self.launch(g, keys.into_iter().map(|k| (k, Duration::ZERO)));
        if group.options.ordered_stop {
            // The members' tokens do not follow the owner's: when it is
            // cancelled, stop them one by one, last first.
            let watch = actix::fut::wrap_future::<_, Self>(owner_token.cancelled_owned());
            ctx.spawn(watch.map(move |(), act, ctx| {
                let members = act.tree.group(g).map(|g| g.members.clone());
                if let Some(members) = members {
                    act.tree.stop_in_order(g, &members);
                    act.after_change(ctx);
                }
            }));
        }
        Ok(())
    }
}
