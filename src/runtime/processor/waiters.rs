//! Callers waiting for the tree to reach a state: the service ready
//! (`Supervisor::wait_ready`), a server node listening
//! (`Supervisor::wait_addrs`). Looked at after every change, at no cost
//! while nobody waits.

use std::net::SocketAddr;

use futures::channel::oneshot;

use super::{Life, Processor};
use crate::model::error::RunError;
use crate::model::records::NodeState;
use crate::model::tree::ROOT_NAME;

/// Where a caller waiting for a listener is answered.
type Listening = oneshot::Sender<Result<Vec<SocketAddr>, RunError>>;

/// Who waits, for what.
#[derive(Default)]
pub(super) struct Waiters {
    ready: Vec<oneshot::Sender<()>>,
    listening: Vec<(String, Listening)>,
}

/// Where a DN stands now, for a caller waiting for it to listen.
enum Found {
    Listening(Vec<SocketAddr>),
    /// Not there, and nothing will start it in this incarnation of the
    /// node that would own it (it is past its set-up).
    Never,
    /// Not yet.
    Wait,
}

impl Processor {
    /// Ready as `/readyz` means it, without grace: running, not draining,
    /// and nothing holding readiness up. O(1), from the tally.
    pub(super) fn ready_now(&self) -> bool {
        self.life == Life::Running
            && !self.draining
            && self.tree.tally().unready() == 0
            && self.beside.overload_unready == 0
    }

    /// Answers `reply` once the service is ready.
    pub(super) fn when_ready(&mut self, reply: oneshot::Sender<()>) {
        match self.ready_now() {
            true => {
                let _ = reply.send(());
            }
            false => self.waiters.ready.push(reply),
        }
    }

    /// Answers `reply` once the node at `dn` listens (with where), or when
    /// no such node will be started ([`RunError::NotFound`]).
    pub(super) fn when_listening(&mut self, dn: String, reply: Listening) {
        self.waiters.listening.push((dn, reply));
        self.answer_waiters();
    }

    /// Answers whoever waits for what is true now.
    pub(super) fn answer_waiters(&mut self) {
        if !self.waiters.ready.is_empty() && self.ready_now() {
            for reply in self.waiters.ready.drain(..) {
                let _ = reply.send(());
            }
        }
        if self.waiters.listening.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.waiters.listening);
        for (dn, reply) in waiting {
            let answer = match self.look_for(&dn) {
                _ if self.life != Life::Running => Some(Err(RunError::ShutDown { dn: dn.clone() })),
                Found::Listening(addrs) => Some(Ok(addrs)),
                Found::Never => Some(Err(RunError::NotFound { dn: dn.clone() })),
                Found::Wait => None,
            };
            match answer {
                Some(answer) => {
                    let _ = reply.send(answer);
                }
                None => self.waiters.listening.push((dn, reply)),
            }
        }
    }

    /// Walks down from the root by name. A name missing under a node that
    /// is past its set-up (not NEW, and not a dynamic node, whose children
    /// come at any time) will not appear before that node restarts.
    fn look_for(&self, dn: &str) -> Found {
        let mut parts = dn.split('.');
        if parts.next() != Some(ROOT_NAME) {
            return Found::Never;
        }
        let mut k = self.tree.root();
        for name in parts {
            let Some(node) = self.tree.node(k) else {
                return Found::Wait;
            };
            match node.children.get(name) {
                Some(c) => k = *c,
                None if node.state() == NodeState::New || self.tree.is_dynamic(k) => {
                    return Found::Wait
                }
                None => return Found::Never,
            }
        }
        match self.beside.addrs.get(k) {
            Some(addrs) => Found::Listening(addrs.clone()),
            None => Found::Wait,
        }
    }
}
