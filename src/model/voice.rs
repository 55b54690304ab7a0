//! The supervisor's voice, its one home: what it says about itself
//! ([`Said`], one record per event: the text of its log line and its fields
//! `dn`, `reason`, `exit_kind`, `restarts`, `backoff_ms`, `incarnation`),
//! and to whom ([`Voice::say`]: the `log` facade under the target
//! `actix_supervisor`, the log tree at the DN `supervisor`, and with the
//! `tracing` feature a structured tracing event, its kind in the `event`
//! field). A death's report, with the dying node's last lines, is made here
//! too ([`death_report`]). Each call site says its event once.
//!
//! The metrics sinks are told, not said to: that is `runtime/sinks.rs`.

use std::sync::Arc;

use log::Level;

use crate::model::logtree::{Entry, LogTree};
use crate::model::records::ExitKind;

/// One event the supervisor reports.
#[derive(Clone, Debug)]
// Without the `tracing` feature only the text is read.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) struct Said {
    pub level: Level,
    /// What happened: `died`, `restarting`, `restarting_siblings`,
    /// `escalated`, `gave_up`, `stalled`, `unstalled`, `restart_requested`,
    /// `draining`, `shutting_down`, `shut_down`, a singleton's `standby`,
    /// `acquired`, `lost`, `released` and `handing_over`, `auto_shutdown`,
    /// `operator_action`, `hung`, `breaker_opened` and `breaker_closed`,
    /// `overloaded` and `overload_cleared`, or `note`.
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
    /// A singleton's fencing token, for its lease's events.
    pub fencing_token: Option<u64>,
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
            fencing_token: None,
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

    pub fn fencing_token(mut self, token: Option<u64>) -> Said {
        self.fencing_token = token;
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
                    fencing_token = self.fencing_token,
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

/// The supervisor's own voice: the `log` facade under the target
/// `actix_supervisor`, and the log tree at the DN `supervisor`.
pub(crate) struct Voice {
    dn: Arc<str>,
    logs: LogTree,
}

impl Voice {
    pub fn new(logs: LogTree) -> Voice {
        Voice {
            dn: "supervisor".into(),
            logs,
        }
    }

    /// Says `said`: its line to the log facade and the log tree (where
    /// `in_tree` replaces it if set) and, with the `tracing` feature, its
    /// structured event.
    pub fn say(&self, said: Said) {
        log::log!(target: "actix_supervisor", said.level, "{}", said.message);
        // Only to a subscriber: with none set, tracing would hand the
        // event to the log facade (its `log` feature, which a dependency
        // such as actix-web's may turn on) and the line would show twice.
        #[cfg(feature = "tracing")]
        if ::tracing::dispatcher::has_been_set() {
            said.emit();
        }
        let text = said.in_tree.unwrap_or(said.message);
        self.logs.push(&self.dn, Some(said.level), text, None);
    }
}

/// The report of `dn`'s death: the reason, then its last `lines` log
/// lines (and its sub-loggers'), marking those from incarnations before
/// `mark`, the sequence number when the dying one started. The lines
/// `shown` accepts are only counted: the reader has seen them already.
pub(crate) fn death_report(
    logs: &LogTree,
    dn: &str,
    reason: &str,
    sub_loggers: &[String],
    lines: usize,
    mark: u64,
    shown: impl Fn(&Entry) -> bool,
) -> String {
    let mut report = format!("{dn} died: {reason}");
    let mut dns: Vec<&str> = vec![dn];
    dns.extend(sub_loggers.iter().map(String::as_str));
    let mut lead_up = logs.tail_of(&dns, lines);
    let total = lead_up.len();
    lead_up.retain(|e| !shown(e));
    let above = total - lead_up.len();
    if lead_up.is_empty() {
        if above > 0 {
            report.push_str(&format!(" (its last {above} log lines are above)"));
        }
        return report;
    }
    match above {
        0 => report.push_str(&format!("\n  its last {total} log lines:")),
        _ => report.push_str(&format!(
            "\n  its last {total} log lines, {above} of them above:"
        )),
    }
    let mut earlier = lead_up.first().is_some_and(|e| e.seq <= mark);
    if earlier {
        report.push_str("\n    -- from earlier incarnations:");
    }
    for e in lead_up {
        if earlier && e.seq > mark {
            earlier = false;
            report.push_str("\n    -- from the incarnation that died:");
        }
        report.push_str(&format!("\n    {e}"));
    }
    report
}
