//! The processor's side of dynamic nodes: starting, terminating and listing
//! their children, and removing a child that has ended for good once its
//! subtree has exited (before the sweep looks at it, so it is never restarted).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::Handler;
use futures::channel::oneshot;
use log::Level;
use tokio::time::Instant;

use super::Processor;
use crate::api::runnable::{Child, DynamicRequest};
use crate::model::error::RunError;
use crate::model::policy::Restart;
use crate::model::records::{FinishedChild, NodeState};
use crate::model::tree::NodeKey;
use crate::model::voice::Said;

/// How many removed dynamic children keep their log rings (for `/logs` and
/// a look at how a finished job ended); older ones are released, so that a
/// churn of unique names does not grow the log tree. Also how many finished
/// children each dynamic node remembers.
const KEEP_REMOVED: usize = 1024;

/// What is kept of the dynamic nodes' children that ended for good.
#[derive(Default)]
pub(super) struct Removed {
    /// Their DNs, oldest first, while their log rings are kept.
    logs: VecDeque<Arc<str>>,
    /// Their records, by dynamic node's DN (kept across the node's
    /// restarts), oldest first.
    finished: HashMap<Arc<str>, VecDeque<FinishedChild>>,
}

impl Removed {
    /// The finished children of the dynamic node at `dn`.
    pub(super) fn finished_under(&self, dn: &str) -> Vec<FinishedChild> {
        self.finished
            .get(dn)
            .map(|f| f.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Processor {
    /// The dynamic node at `dn`; [`RunError::NotFound`] when no node there
    /// is one.
    fn find_dynamic(&self, dn: &str) -> Result<NodeKey, RunError> {
        self.view()
            .find(dn)
            .filter(|k| self.tree.is_dynamic(*k))
            .ok_or_else(|| RunError::NotFound { dn: dn.to_string() })
    }

    /// The dynamic node at `dn`, live and accepting children.
    fn running_dynamic(&self, dn: &str) -> Result<NodeKey, RunError> {
        let k = self.find_dynamic(dn)?;
        self.running(k, dn)
    }

    /// Adds and schedules the child; answers its DN and a receiver told
    /// once its runnable has been polled for the first time.
    fn start_dynamic_child(
        &mut self,
        dn: &str,
        child: Child,
    ) -> Result<(String, oneshot::Receiver<()>), RunError> {
        let k = self.running_dynamic(dn)?;
        let count = self.tree.node(k).map_or(0, |n| n.children.len());
        if let Some(max) = self.tree.max_children_of(k).filter(|max| count >= *max) {
            return Err(RunError::Full {
                dn: dn.to_string(),
                max,
            });
        }
        self.tree
            .check_spec(&child.spec, || format!("{dn}.{}", child.name))?;
        let key = self.tree.add_dynamic_child(k, &child.name)?;
        self.tree.set_spec(key, child.spec);
        let Some(n) = self.tree.node(key) else {
            return Err(RunError::NotFound { dn: dn.to_string() });
        };
        let started = n.dn.to_string();
        let worker = self.workers.pick();
        self.host(key, child.runnable, child.lease, worker);
        let (polled, first_poll) = oneshot::channel();
        self.schedule(key, Duration::ZERO, false, Some(polled));
        Ok((started, first_poll))
    }

    fn terminate_dynamic_child(
        &mut self,
        dn: &str,
        name: &str,
        reply: oneshot::Sender<Result<(), RunError>>,
    ) {
        let child = self
            .find_dynamic(dn)
            .ok()
            .and_then(|k| self.tree.node(k))
            .and_then(|n| n.children.get(name).copied());
        let Some(c) = child.filter(|c| self.tree.node(*c).is_some()) else {
            let dn = format!("{dn}.{name}");
            let _ = reply.send(Err(RunError::NotFound { dn }));
            return;
        };
        if let Some(n) = self.tree.node_mut(c) {
            n.removing = true;
            n.token.cancel();
            let said = Said::new(
                Level::Info,
                "terminating",
                format!("terminating {} on request", n.dn),
            );
            let said = said.dn(&n.dn);
            self.voice.say(said);
        }
        if let Some(waiting) = self.beside.leaving.entry(c) {
            waiting.or_default().push(reply);
        }
        // Already exited (or never started): removed by the next change.
        self.tree.mark_dirty(c);
    }

    /// Removes the dynamic nodes' children among `dirty` that have ended for
    /// good and whose subtree has exited: terminated, DONE, or temporary and
    /// exited. A permanent or transient child that died is left to the sweep,
    /// which restarts it.
    pub(super) fn remove_finished(&mut self, dirty: &[NodeKey]) {
        for &k in dirty {
            let Some(n) = self.tree.node(k) else { continue };
            let under_dynamic = n.parent.is_some_and(|p| self.tree.is_dynamic(p));
            // A singleton that lost its lease comes back: not finished.
            if !under_dynamic || !n.is_ready() || n.relaunch {
                continue;
            }
            let for_good = n.removing
                || match n.state() {
                    NodeState::Done => true,
                    NodeState::Dead | NodeState::Cancelled => {
                        self.tree.restart_of(k) == Restart::Temporary
                    }
                    NodeState::New | NodeState::Healthy | NodeState::Standby => false,
                };
            if for_good {
                let dn = n.dn.clone();
                self.record_finished(k);
                for gone in self.tree.remove_subtree(k) {
                    self.forget(gone);
                }
                self.removed.logs.push_back(dn);
                if self.removed.logs.len() > KEEP_REMOVED {
                    self.release_oldest_logs();
                }
            }
        }
    }

    /// Keeps the record of `k`, a dynamic node's child that ended for good,
    /// and says it left.
    fn record_finished(&mut self, k: NodeKey) {
        let Some(n) = self.tree.node(k) else { return };
        let Some(parent) = n.parent.and_then(|p| self.tree.node(p)) else {
            return;
        };
        let (now, wall) = (Instant::now(), std::time::SystemTime::now());
        let info = self.view().info(k, n, None, now, wall);
        let how = match (&info.last_exit, n.removing) {
            (_, true) => "terminated on request".to_string(),
            (Some(e), false) => format!("ended for good ({}, {})", info.state, e.kind),
            (None, false) => format!("ended for good ({})", info.state),
        };
        let said = Said::new(Level::Info, "removed", format!("{}: {how}, removed", n.dn)).dn(&n.dn);
        let record = FinishedChild::new(info.dn, info.state, info.restarts, info.last_exit, wall);
        let list = self.removed.finished.entry(parent.dn.clone()).or_default();
        list.push_back(record);
        if list.len() > KEEP_REMOVED {
            list.pop_front();
        }
        self.voice.say(said);
    }

    /// Releases the log rings of the oldest removed child, unless a live
    /// node has taken its DN again.
    fn release_oldest_logs(&mut self) {
        let Some(dn) = self.removed.logs.pop_front() else {
            return;
        };
        if self.view().find(&dn).is_none() {
            self.config.logs.release(&dn);
        }
    }

    /// `k` has left the tree: its host goes (and with it its runnable), and
    /// whoever waited for it to be terminated is answered.
    pub(super) fn forget(&mut self, k: NodeKey) {
        self.outbox.remove(k);
        self.beside.forget(k);
    }
}

impl Handler<DynamicRequest> for Processor {
    type Result = ();
    fn handle(&mut self, request: DynamicRequest, ctx: &mut Self::Context) {
        self.take_reports(ctx);
        self.read_clock();
        match request {
            DynamicRequest::Start { at, child, reply } => {
                let _ = reply.send(self.start_dynamic_child(&at, child));
            }
            DynamicRequest::Terminate { at, name, reply } => {
                self.terminate_dynamic_child(&at, &name, reply);
            }
            DynamicRequest::Restart { at, name, reply } => {
                let restarted = self
                    .find_dynamic(&at)
                    .and_then(|_| self.restart_on_request(&format!("{at}.{name}")));
                let _ = reply.send(restarted);
            }
            DynamicRequest::Children { at, reply } => {
                let children = self.find_dynamic(&at).map(|k| self.view().children(k));
                let _ = reply.send(children);
            }
            DynamicRequest::Finished { at, reply } => {
                let finished = self
                    .find_dynamic(&at)
                    .map(|_| self.removed.finished_under(&at));
                let _ = reply.send(finished);
            }
            DynamicRequest::Count { at, reply } => {
                let count = self
                    .find_dynamic(&at)
                    .map(|k| self.tree.node(k).map_or(0, |n| n.children.len()));
                let _ = reply.send(count);
            }
        }
        self.propagate();
        self.flush_soon(ctx);
        self.check_drained(ctx);
    }
}
