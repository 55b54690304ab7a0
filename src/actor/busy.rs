//! What an actor node is busy with, as its address sees it: the messages
//! sent through [`SupervisedAddr::send`](super::SupervisedAddr::send) not
//! answered yet, and when one last was. Kept only for a node with a
//! heartbeat (`Child::heartbeat`): its runnable beats while the actor is
//! idle or makes progress, so that a handler stuck on an await with
//! messages waiting is a missed beat, named by its message type.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

#[derive(Debug, Default)]
pub(super) struct Busy {
    /// Whether the current incarnation has a heartbeat: otherwise sends
    /// pay one atomic load and nothing else.
    on: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    /// Unanswered sends, oldest first: when sent, of which message type.
    pending: BTreeMap<u64, (Instant, &'static str)>,
    last_answer: Option<Instant>,
}

impl Busy {
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Release);
    }

    /// A send of an `M` begins; the returned guard ends it (answered, lost
    /// or abandoned), however the send ends.
    pub fn begin<M>(self: &Arc<Self>) -> Option<Sending> {
        if !self.on.load(Ordering::Acquire) {
            return None;
        }
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let id = s.next;
        s.next += 1;
        s.pending
            .insert(id, (Instant::now(), std::any::type_name::<M>()));
        Some(Sending {
            busy: self.clone(),
            id,
        })
    }

    /// When the actor last showed progress, and what it is handling: idle
    /// (nothing unanswered) is progress now; otherwise the later of the
    /// oldest unanswered message's send and the last answer, and that
    /// message's type (the mailbox is first in, first out).
    pub fn progress(&self) -> (Instant, Option<&'static str>) {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match s.pending.first_key_value() {
            None => (Instant::now(), None),
            Some((_, &(sent, what))) => (s.last_answer.map_or(sent, |a| a.max(sent)), Some(what)),
        }
    }
}

/// One send under way.
pub(super) struct Sending {
    busy: Arc<Busy>,
    id: u64,
}

impl Drop for Sending {
    fn drop(&mut self) {
        let mut s = self
            .busy
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.pending.remove(&self.id);
        s.last_answer = Some(Instant::now());
    }
}
