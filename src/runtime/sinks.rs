//! The [`Metrics`] sinks the processor tells what happens, behind one type
//! that guards against a panicking sink. (What the supervisor *says* is
//! `model/voice.rs`; a sink is *told*.)
//!
//! A sink is the user's code, called on the processor's thread. A panic in
//! one is caught, and said once per sink per minute (naming the sink, the
//! call and the panic's message) rather than once per call: a broken sink
//! on a busy tree would otherwise flood the log it is meant to spare.

use std::cell::Cell;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use log::Level;
use tokio::time::Instant;

use crate::model::exit::panic_message;
use crate::model::metrics::Metrics;
use crate::model::records::NodeState;
use crate::model::voice::{Said, Voice};

/// How often a panicking sink is said at most.
const COMPLAIN_EVERY: Duration = Duration::from_secs(60);

pub(crate) struct Sinks {
    sinks: Vec<Box<dyn Metrics>>,
    /// Per sink: when its last panic was said, and how many were not said since.
    complaints: Vec<Cell<(Option<Instant>, u64)>>,
    voice: Voice,
}

impl Sinks {
    pub fn new(sinks: Vec<Box<dyn Metrics>>, voice: Voice) -> Sinks {
        let complaints = sinks.iter().map(|_| Cell::new((None, 0))).collect();
        Sinks {
            sinks,
            complaints,
            voice,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Tells every sink that `dn` moved to `state`.
    pub fn state(&self, dn: &str, state: NodeState) {
        self.tell(format_args!("node_state({dn}, {state})"), |m| {
            m.node_state(dn, state)
        });
    }

    /// Calls every sink; `what` names the call in the report of a panic.
    pub fn tell(&self, what: fmt::Arguments<'_>, call: impl Fn(&dyn Metrics)) {
        for (i, sink) in self.sinks.iter().enumerate() {
            let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(|| call(&**sink))) else {
                continue;
            };
            let (said, quiet) = self.complaints[i].get();
            let now = Instant::now();
            if said.is_some_and(|t| now.saturating_duration_since(t) < COMPLAIN_EVERY) {
                self.complaints[i].set((said, quiet + 1));
                continue;
            }
            self.complaints[i].set((Some(now), 0));
            let more = match quiet {
                0 => String::new(),
                n => format!(" ({n} more panics of it since it was last said)"),
            };
            self.voice.say(Said::note(
                Level::Error,
                format!(
                    "metrics sink #{i} panicked on {what}: {}; ignored{more}, said at most once a minute",
                    panic_message(&*payload)
                ),
            ));
        }
    }
}
