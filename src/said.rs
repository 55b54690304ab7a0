//! What the supervisor says about itself, one [`Said`] per event: the text
//! of its log line and its fields (`dn`, `reason`, `exit_kind`, `restarts`,
//! `backoff_ms`, `incarnation`). The log facade and the log tree get the
//! text; with the `tracing` feature the same record is also a structured
//! tracing event (target `actix_supervisor`, its kind in the `event` field).
//! Each call site writes its event once.

use std::sync::Arc;

use log::Level;

use crate::state::ExitKind;

/// One event the supervisor reports.
#[derive(Clone, Debug)]
// Without the `tracing` feature only the text is read.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) struct Said {
    pub level: Level,
    /// What happened: `died`, `restarting`, `restarting_siblings`,
    /// `escalated`, `gave_up`, `stalled`, `unstalled`, `restart_requested`,
    /// `draining`, `shutting_down`, `shut_down`, or `note`.
    pub event: &'static str,
    /// The log line.
    pub message: String,
    /// For the log tree only, when it keeps more than the facade shows (a
    /// death report's whole lead-up).
    pub in_tree: Option<String>,
    pub dn: Option<Arc<str>>,
    pub reason: Option<String>,
    pub exit_kind: Option<ExitKind>,
    pub restarts: Option<u64>,
    pub backoff_ms: Option<u64>,
    pub incarnation: Option<u64>,
}

impl Said {
    pub fn new(level: Level, event: &'static str, message: String) -> Said {
        Said {
            level,
            event,
            message,
            in_tree: None,
            dn: None,
            reason: None,
            exit_kind: None,
            restarts: None,
            backoff_ms: None,
            incarnation: None,
        }
    }

    /// A line with no fields.
    pub fn note(level: Level, message: String) -> Said {
        Said::new(level, "note", message)
    }

    pub fn dn(mut self, dn: &Arc<str>) -> Said {
        self.dn = Some(dn.clone());
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Said {
        self.reason = Some(reason.into());
        self
    }

    pub fn exit_kind(mut self, kind: ExitKind) -> Said {
        self.exit_kind = Some(kind);
        self
    }

    pub fn restarts(mut self, n: u64) -> Said {
        self.restarts = Some(n);
        self
    }

    pub fn backoff(mut self, d: std::time::Duration) -> Said {
        self.backoff_ms = Some(d.as_millis() as u64);
        self
    }

    pub fn incarnation(mut self, n: u64) -> Said {
        self.incarnation = Some(n);
        self
    }

    pub fn in_tree(mut self, text: String) -> Said {
        self.in_tree = Some(text);
        self
    }

    /// The structured tracing event.
    #[cfg(feature = "tracing")]
    pub fn emit(&self) {
        use ::tracing::Level as T;
        // The first line: a death report's lead-up is in the log tree, and
        // the node's lines were events of their own already.
        let headline = self.message.lines().next().unwrap_or_default();
        macro_rules! event_at {
            ($level:expr) => {
                ::tracing::event!(
                    target: "actix_supervisor",
                    $level,
                    event = self.event,
                    dn = self.dn.as_deref(),
                    reason = self.reason.as_deref(),
                    exit_kind = self.exit_kind.map(ExitKind::as_str),
                    restarts = self.restarts,
                    backoff_ms = self.backoff_ms,
                    incarnation = self.incarnation,
                    "{}",
                    headline
                )
            };
        }
        match self.level {
            Level::Error => event_at!(T::ERROR),
            Level::Warn => event_at!(T::WARN),
            Level::Info => event_at!(T::INFO),
            Level::Debug => event_at!(T::DEBUG),
            Level::Trace => event_at!(T::TRACE),
        }
    }
}
