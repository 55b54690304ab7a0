//! How a runnable's return becomes a node state: the rules of `processDied`,
//! as a pure function.

use crate::model::error::{RunResult, SignalError};
use crate::model::lease::Loss;
use crate::model::policy::Restart;
use crate::model::records::ExitKind;

/// How an incarnation ended, as its host saw it.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The runnable's future completed.
    Returned(RunResult),
    /// `run` or the future panicked; the panic message.
    Panicked(String),
    /// The runnable did not return within the shutdown timeout after its
    /// context was cancelled, and its future was dropped.
    Aborted,
    /// The context was cancelled while the start waited out its backoff.
    CancelledBeforeStart,
    /// Still NEW at its start deadline (`Child::start_timeout`): its future
    /// was dropped.
    StartTimedOut(std::time::Duration),
}

/// A node with a heartbeat that missed it (`Child::heartbeat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hung {
    /// Its heartbeat period.
    pub every: std::time::Duration,
    /// For an actor node: the message type it was handling.
    pub handling: Option<&'static str>,
}

impl Hung {
    /// The death's reason: "no heartbeat within 5s", with the message an
    /// actor node was handling.
    pub fn reason(&self) -> String {
        match self.handling {
            Some(m) => format!("no heartbeat within {:?} (handling {m})", self.every),
            None => format!("no heartbeat within {:?}", self.every),
        }
    }
}

/// Everything the host reports when an incarnation ends.
#[derive(Debug)]
pub(crate) struct ExitReport {
    pub outcome: Outcome,
    /// The runnable had signalled Done.
    pub done: bool,
    /// The first signal the runnable misused, if any.
    pub misuse: Option<SignalError>,
    /// The DNs of the sub-loggers the incarnation made (for the lead-up of
    /// its death report).
    pub sub_loggers: Vec<String>,
    /// The node's token was cancelled when the incarnation ended. Read by
    /// the host at that moment: the host itself cancels the token right
    /// after a death (see [`is_death`]), before the processor hears of it.
    pub cancelled: bool,
    /// Tasks of the incarnation still running at its stop deadline, and
    /// aborted then (its runnable had returned, or was aborted too).
    pub tasks_aborted: u32,
    /// A singleton's tenure fell while it ran: it was stopped for that.
    pub lease_lost: Option<Loss>,
    /// It missed its heartbeat: its host cancelled it for that. Boxed:
    /// every exit report carries the field, few have one.
    pub hung: Option<Box<Hung>>,
}

/// The state an exit leads to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Done,
    /// With what the runnable said on its way out, when that is worth a log line.
    Cancelled(Option<String>),
    Dead(String),
    /// A singleton lost its lease: stopped, to campaign again.
    LeaseLost(Loss),
}

/// The kind of an exit, for the record and the metrics.
pub(crate) fn kind_of(exit: &ExitReport, verdict: &Verdict, doomed: bool) -> ExitKind {
    match verdict {
        Verdict::Done => ExitKind::Done,
        Verdict::LeaseLost(_) => ExitKind::LeaseLost,
        Verdict::Cancelled(_) if matches!(exit.outcome, Outcome::Aborted) => ExitKind::Aborted,
        Verdict::Cancelled(_) if exit.tasks_aborted > 0 => ExitKind::Aborted,
        Verdict::Cancelled(_) => ExitKind::Cancelled,
        Verdict::Dead(_) if exit.misuse.is_some() => ExitKind::Misuse,
        Verdict::Dead(_) if doomed => ExitKind::GaveUp,
        Verdict::Dead(_) => match exit.outcome {
            Outcome::Panicked(_) => ExitKind::Panic,
            _ => ExitKind::Error,
        },
    }
}

/// Applies the exit rules:
/// - a misused signal, or a death decided for the node (`doom`), is DEAD;
/// - a singleton stopped because its lease fell is LEASE LOST (it comes
///   back at once, campaigning: not a failure of its own);
/// - after cancellation anything is CANCELLED (of kind aborted when its
///   runnable or its tasks were still running at the stop deadline);
/// - otherwise `Ok(())` after Done is DONE, and so is any `Ok(())` of a
///   transient or temporary node (a normal exit); everything else is DEAD.
pub(crate) fn classify(
    exit: &ExitReport,
    cancelled: bool,
    doom: Option<&str>,
    restart: Restart,
) -> Verdict {
    if let Some(misuse) = &exit.misuse {
        return Verdict::Dead(format!("misused a signal: {misuse}"));
    }
    if let Some(doom) = doom {
        return Verdict::Dead(doom.to_string());
    }
    if let Some(why) = exit.lease_lost {
        return Verdict::LeaseLost(why);
    }
    // Cancelled by its host for the missed heartbeat: still a death.
    if let Some(hung) = &exit.hung {
        return Verdict::Dead(hung.reason());
    }
    if cancelled && exit.tasks_aborted > 0 && !matches!(exit.outcome, Outcome::Aborted) {
        let n = exit.tasks_aborted;
        let tasks = if n == 1 { "task" } else { "tasks" };
        return Verdict::Cancelled(Some(format!(
            "returned after cancellation, but {n} {tasks} did not end within the stop deadline; aborted"
        )));
    }
    if cancelled {
        return Verdict::Cancelled(match &exit.outcome {
            Outcome::Returned(Ok(())) | Outcome::CancelledBeforeStart => None,
            Outcome::Returned(Err(e)) => Some(format!(
                "returned error after cancellation: {}",
                chain(&**e)
            )),
            Outcome::Panicked(p) => Some(format!("panicked after cancellation: {p}")),
            Outcome::Aborted => Some("did not return in time after cancellation; aborted".into()),
            Outcome::StartTimedOut(d) => Some(format!("did not become Healthy within {d:?}")),
        });
    }
    match &exit.outcome {
        Outcome::Returned(Ok(())) if exit.done || restart != Restart::Permanent => Verdict::Done,
        Outcome::Returned(Ok(())) => {
            Verdict::Dead("returned Ok(()) without signalling Done".into())
        }
        Outcome::Returned(Err(e)) => Verdict::Dead(format!("returned error: {}", chain(&**e))),
        Outcome::Panicked(p) => Verdict::Dead(format!("panicked: {p}")),
        Outcome::StartTimedOut(d) => Verdict::Dead(format!("did not become Healthy within {d:?}")),
        // Only reachable after cancellation, which is handled above.
        Outcome::Aborted | Outcome::CancelledBeforeStart => Verdict::Cancelled(None),
    }
}

/// Whether [`classify`] will call this exit of a node that was not
/// cancelled and is not doomed a death, without building its reason: the
/// host asks, to take down at once what the death takes down.
pub(crate) fn is_death(exit: &ExitReport, restart: Restart) -> bool {
    if exit.misuse.is_some() {
        return true;
    }
    if exit.lease_lost.is_some() {
        return false;
    }
    if exit.hung.is_some() {
        return true;
    }
    match &exit.outcome {
        Outcome::Returned(Ok(())) => !(exit.done || restart != Restart::Permanent),
        Outcome::Returned(Err(_)) | Outcome::Panicked(_) | Outcome::StartTimedOut(_) => true,
        Outcome::Aborted | Outcome::CancelledBeforeStart => false,
    }
}

/// `error: source: source…`, so that wrapped causes are not lost.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        s.push_str(": ");
        s.push_str(&src.to_string());
        cur = src.source();
    }
    s
}

/// The text of a panic payload (`&str` and `String` payloads; others are opaque).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::error::BoxError;

    fn exit(outcome: Outcome, done: bool) -> ExitReport {
        ExitReport {
            outcome,
            done,
            misuse: None,
            sub_loggers: Vec::new(),
            cancelled: false,
            tasks_aborted: 0,
            lease_lost: None,
            hung: None,
        }
    }

    fn err(msg: &str) -> RunResult {
        Err(BoxError::from(msg.to_string()))
    }

    #[test]
    fn done_only_after_done_signal_and_ok() {
        assert_eq!(
            classify(
                &exit(Outcome::Returned(Ok(())), true),
                false,
                None,
                Restart::Permanent
            ),
            Verdict::Done
        );
        assert!(matches!(
            classify(&exit(Outcome::Returned(Ok(())), false), false, None, Restart::Permanent),
            Verdict::Dead(r) if r.contains("without signalling Done")
        ));
        assert!(matches!(
            classify(&exit(Outcome::Returned(err("boom")), true), false, None, Restart::Permanent),
            Verdict::Dead(r) if r.contains("boom")
        ));
    }

    #[test]
    fn a_normal_exit_of_a_transient_or_temporary_node_is_done() {
        for r in [Restart::Transient, Restart::Temporary] {
            assert_eq!(
                classify(&exit(Outcome::Returned(Ok(())), false), false, None, r),
                Verdict::Done
            );
            assert!(matches!(
                classify(&exit(Outcome::Returned(err("x")), false), false, None, r),
                Verdict::Dead(_)
            ));
        }
    }

    #[test]
    fn anything_after_cancellation_is_cancelled() {
        assert_eq!(
            classify(
                &exit(Outcome::Returned(Ok(())), false),
                true,
                None,
                Restart::Permanent
            ),
            Verdict::Cancelled(None)
        );
        assert!(matches!(
            classify(&exit(Outcome::Returned(err("late")), false), true, None, Restart::Permanent),
            Verdict::Cancelled(Some(r)) if r.contains("late")
        ));
        assert!(matches!(
            classify(
                &exit(Outcome::Aborted, false),
                true,
                None,
                Restart::Permanent
            ),
            Verdict::Cancelled(Some(_))
        ));
        assert_eq!(
            classify(
                &exit(Outcome::CancelledBeforeStart, false),
                true,
                None,
                Restart::Permanent
            ),
            Verdict::Cancelled(None)
        );
    }

    #[test]
    fn misuse_and_doom_are_deaths_even_when_cancelled() {
        let e = ExitReport {
            outcome: Outcome::Returned(Ok(())),
            done: true,
            misuse: Some(SignalError::DoneTwice {
                dn: "root.x".into(),
            }),
            sub_loggers: Vec::new(),
            cancelled: true,
            tasks_aborted: 0,
            lease_lost: None,
            hung: None,
        };
        assert!(
            matches!(classify(&e, true, None, Restart::Permanent), Verdict::Dead(r) if r.contains("root.x"))
        );
        assert!(matches!(
            classify(&exit(Outcome::Returned(Ok(())), false), true, Some("child gave up"), Restart::Permanent),
            Verdict::Dead(r) if r == "child gave up"
        ));
    }

    #[test]
    fn panics_are_deaths_with_their_message() {
        assert!(matches!(
            classify(&exit(Outcome::Panicked("kaput".into()), false), false, None, Restart::Permanent),
            Verdict::Dead(r) if r.contains("kaput")
        ));
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from("owned"));
        assert_eq!(panic_message(&*payload), "owned");
        let payload: Box<dyn std::any::Any + Send> = Box::new(7u8);
        assert_eq!(panic_message(&*payload), "non-string panic payload");
    }

    #[test]
    fn error_sources_are_kept() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e: BoxError = Box::new(Outer(std::io::Error::other("inner")));
        assert!(matches!(
            classify(&exit(Outcome::Returned(Err(e)), false), false, None, Restart::Permanent),
            Verdict::Dead(r) if r == "returned error: outer: inner"
        ));
    }

    /// The host's cheap test and the processor's verdict agree on every
    /// outcome, Done flag, misuse and restart type.
    #[test]
    fn is_death_agrees_with_classify() {
        for restart in [Restart::Permanent, Restart::Transient, Restart::Temporary] {
            for done in [false, true] {
                for misuse in [false, true] {
                    let outcomes = [
                        Outcome::Returned(Ok(())),
                        Outcome::Returned(err("e")),
                        Outcome::Panicked("p".into()),
                        Outcome::Aborted,
                        Outcome::CancelledBeforeStart,
                        Outcome::StartTimedOut(std::time::Duration::from_secs(1)),
                    ];
                    for outcome in outcomes {
                        let mut e = exit(outcome, done);
                        if misuse {
                            e.misuse = Some(SignalError::DoneTwice { dn: "root".into() });
                        }
                        let dead = matches!(classify(&e, false, None, restart), Verdict::Dead(_));
                        assert_eq!(is_death(&e, restart), dead, "{e:?} {restart:?}");
                    }
                }
            }
        }
    }
}
