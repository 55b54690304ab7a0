//! An incarnation's signal phase: NEW, then HEALTHY, then DONE, then ended,
//! kept in one atomic so that [`Context::signal`](crate::Context::signal)
//! answers at once and exactly from any thread, with the first misuse kept
//! for the exit report. The rules of which signal may follow which live
//! here, as data; the context only holds a [`Phase`].

use std::sync::atomic::{AtomicU8, Ordering};

use crate::model::error::SignalError;
use crate::model::records::{NodeState, Signal};

const NEW: u8 = 0;
const HEALTHY: u8 = 1;
const DONE: u8 = 2;
const ENDED: u8 = 3;

const MISUSE_HEALTHY: u8 = 1;
const MISUSE_DONE_EARLY: u8 = 2;
const MISUSE_DONE_TWICE: u8 = 3;

/// Where an incarnation is, as its runnable signalled it.
#[derive(Debug)]
pub(crate) struct Phase {
    now: AtomicU8,
    /// The first misused signal, as a code (0: none): a code rather than
    /// the error keeps every context small.
    misuse: AtomicU8,
}

/// The phase, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    New,
    Healthy,
    Done,
    Ended,
}

impl Phase {
    pub fn new() -> Phase {
        Phase {
            now: AtomicU8::new(NEW),
            misuse: AtomicU8::new(0),
        }
    }

    pub fn get(&self) -> Seen {
        match self.now.load(Ordering::Acquire) {
            NEW => Seen::New,
            HEALTHY => Seen::Healthy,
            DONE => Seen::Done,
            _ => Seen::Ended,
        }
    }

    /// Applies `signal` for node `dn`: Healthy only from NEW, Done only
    /// from HEALTHY, nothing once ended. A refused signal is returned, and
    /// the first one is kept for [`end`](Self::end) (it makes the exit a
    /// death), except after the end (stale, nothing to report to).
    pub fn signal(&self, signal: Signal, dn: &str) -> Result<(), SignalError> {
        let (from, to) = match signal {
            Signal::Healthy => (NEW, HEALTHY),
            Signal::Done => (HEALTHY, DONE),
        };
        let Err(actual) = self
            .now
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
        else {
            return Ok(());
        };
        let dn = dn.to_string();
        let (err, code) = match (signal, actual) {
            (_, ENDED) => return Err(SignalError::Stale { dn }),
            (Signal::Healthy, _) => (
                SignalError::HealthyNotNew {
                    dn,
                    state: NodeState::Healthy,
                },
                MISUSE_HEALTHY,
            ),
            (Signal::Done, NEW) => (SignalError::DoneNotHealthy { dn }, MISUSE_DONE_EARLY),
            (Signal::Done, _) => (SignalError::DoneTwice { dn }, MISUSE_DONE_TWICE),
        };
        // Keep the first misuse only.
        let _ = self
            .misuse
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        Err(err)
    }

    /// Ends the incarnation: later signals are stale. Returns whether Done
    /// had been signalled, and the first misuse (for node `dn`).
    pub fn end(&self, dn: &str) -> (bool, Option<SignalError>) {
        let done = self.now.swap(ENDED, Ordering::AcqRel) == DONE;
        let dn = dn.to_string();
        let misuse = match self.misuse.load(Ordering::Acquire) {
            0 => None,
            MISUSE_HEALTHY => Some(SignalError::HealthyNotNew {
                dn,
                state: NodeState::Healthy,
            }),
            MISUSE_DONE_EARLY => Some(SignalError::DoneNotHealthy { dn }),
            _ => Some(SignalError::DoneTwice { dn }),
        };
        (done, misuse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_then_done_then_ended() {
        let p = Phase::new();
        assert_eq!(p.get(), Seen::New);
        p.signal(Signal::Healthy, "root.a").expect("from NEW");
        assert_eq!(p.get(), Seen::Healthy);
        p.signal(Signal::Done, "root.a").expect("from HEALTHY");
        assert_eq!(p.get(), Seen::Done);
        assert_eq!(p.end("root.a"), (true, None));
        assert_eq!(p.get(), Seen::Ended);
        assert!(matches!(
            p.signal(Signal::Healthy, "root.a"),
            Err(SignalError::Stale { .. })
        ));
    }

    #[test]
    fn the_first_misuse_is_kept_and_named() {
        let p = Phase::new();
        let early = p.signal(Signal::Done, "root.a").unwrap_err();
        assert_eq!(
            early,
            SignalError::DoneNotHealthy {
                dn: "root.a".into()
            }
        );
        p.signal(Signal::Healthy, "root.a").expect("still NEW");
        assert!(p.signal(Signal::Healthy, "root.a").is_err());
        let (done, misuse) = p.end("root.a");
        assert!(!done);
        assert_eq!(
            misuse,
            Some(SignalError::DoneNotHealthy {
                dn: "root.a".into()
            })
        );
    }

    #[test]
    fn done_twice_is_a_misuse() {
        let p = Phase::new();
        p.signal(Signal::Healthy, "x").expect("NEW");
        p.signal(Signal::Done, "x").expect("HEALTHY");
        assert_eq!(
            p.signal(Signal::Done, "x"),
            Err(SignalError::DoneTwice { dn: "x".into() })
        );
        assert_eq!(
            p.end("x"),
            (true, Some(SignalError::DoneTwice { dn: "x".into() }))
        );
    }
}
