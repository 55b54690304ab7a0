//! A node's heartbeat (`Child::heartbeat`): when its runnable last beat,
//! and, for an actor node, which message it is handling. Only a node with
//! a heartbeat has one (a box in its context), so every other context
//! stays small.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::exit::Hung;

/// One incarnation's heartbeat.
pub(crate) struct Heart {
    /// When the incarnation began: beats are counted from it, in ms.
    base: Instant,
    /// The period it must beat within.
    every: Duration,
    last_ms: AtomicU64,
    /// The missed beat its host found, for the exit report.
    missed: Mutex<Option<Box<Hung>>>,
    /// For an actor node: where its progress is read (see [`Probe`]).
    probe: Mutex<Option<Probe>>,
}

/// Tells when a node last made progress and what it is handling: an actor
/// node's address knows, so its heart asks it instead of waiting for beats.
pub(crate) type Probe = Box<dyn Fn() -> (Instant, Option<&'static str>) + Send + Sync>;

impl std::fmt::Debug for Heart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heart")
            .field("every", &self.every)
            .field("since_beat", &self.since_beat().0)
            .finish_non_exhaustive()
    }
}

impl Heart {
    pub fn new(every: Duration) -> Heart {
        Heart {
            base: Instant::now(),
            every,
            last_ms: AtomicU64::new(0),
            missed: Mutex::new(None),
            probe: Mutex::new(None),
        }
    }

    /// A beat, now.
    pub fn beat(&self) {
        self.beat_at(Instant::now());
    }

    fn beat_at(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.base).as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// Reads the node's progress where a probe tells it (an actor node),
    /// as beats.
    pub fn set_probe(&self, probe: Probe) {
        *self.probe.lock().unwrap_or_else(PoisonError::into_inner) = Some(probe);
    }

    /// How long since the last beat (or since the incarnation began), and,
    /// for an actor node, the message type it is handling as far as its
    /// address knows (the oldest waiting).
    pub fn since_beat(&self) -> (Duration, Option<&'static str>) {
        let mut handling = None;
        if let Some(probe) = &*self.probe.lock().unwrap_or_else(PoisonError::into_inner) {
            let (at, what) = probe();
            self.beat_at(at);
            handling = what;
        }
        let now = Instant::now().saturating_duration_since(self.base);
        let since = now.saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Acquire)));
        (since, handling)
    }

    pub fn set_missed(&self, hung: Hung) {
        *self.missed.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(hung));
    }

    pub fn take_missed(&self) -> Option<Box<Hung>> {
        self.missed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}
