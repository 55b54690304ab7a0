//! The checker of `examples/fleet.rs`'s contract: given every replica's
//! stdout lines and what was done to the replicas (kills, pauses), it says
//! whether the singleton ever ran twice at once, whether its fencing
//! tokens grew from tenure to tenure, and whether a replica worked under a
//! token older than one already granted. A real tool: the chaos tests feed
//! it, and its own tests plant each violation.

use std::collections::BTreeMap;
use std::fmt;

/// One line of a replica's stdout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub kind: Kind,
    pub token: u64,
    /// The replica that printed it.
    pub id: String,
    pub ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Acquired,
    Work,
    Stopped,
}

impl Line {
    /// `ACQUIRED billing 42 a 1700000000000`; `None` for other lines.
    pub fn parse(text: &str) -> Option<Line> {
        let mut f = text.split_whitespace();
        let kind = match f.next()? {
            "ACQUIRED" => Kind::Acquired,
            "WORK" => Kind::Work,
            "STOPPED" => Kind::Stopped,
            _ => return None,
        };
        if f.next()? != "billing" {
            return None;
        }
        Some(Line {
            kind,
            token: f.next()?.parse().ok()?,
            id: f.next()?.to_string(),
            ms: f.next()?.parse().ok()?,
        })
    }
}

/// What the chaos did to a replica, when (Unix ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    /// `kill -9`: whatever it held ends here.
    Killed {
        id: String,
        ms: u64,
    },
    /// SIGSTOP: it does nothing until resumed.
    Paused {
        id: String,
        ms: u64,
    },
    Resumed {
        id: String,
        ms: u64,
    },
}

/// One tenure: a replica ran the singleton with `token` from `from` to
/// `to` (as far as it could act: a kill ends it, and a pause after which
/// it never worked again ends it where the pause began).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenure {
    pub id: String,
    pub token: u64,
    pub from: u64,
    pub to: u64,
}

/// What a run showed.
#[derive(Debug, Default)]
pub struct Report {
    pub tenures: Vec<Tenure>,
    pub work_lines: usize,
    /// The longest stretch with nobody working, in ms (from the first WORK
    /// line to the last).
    pub longest_gap_ms: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} tenures, {} WORK lines, longest gap without work {} ms",
            self.tenures.len(),
            self.work_lines,
            self.longest_gap_ms
        )
    }
}

/// Checks `lines` (all replicas', any order) against what was done
/// (`acts`); `end` is when the run ended (a tenure never stopped ends there).
pub fn check(lines: &[Line], acts: &[Act], end: u64) -> Result<Report, Vec<String>> {
    let mut problems = Vec::new();
    let mut lines = lines.to_vec();
    lines.sort_by_key(|l| l.ms);

    // Tenures, per replica, in the order printed.
    let mut open: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut tenures = Vec::new();
    let mut last_work: BTreeMap<(String, u64), u64> = BTreeMap::new();
    let mut kills: Vec<(u64, &str)> = acts
        .iter()
        .filter_map(|a| match a {
            Act::Killed { id, ms } => Some((*ms, id.as_str())),
            _ => None,
        })
        .collect();
    kills.sort_unstable();
    let mut kills = kills.into_iter().peekable();
    for l in &lines {
        // A kill before this line ends its replica's open tenure there. A
        // line of the kill's own millisecond came before it: the kill's
        // time is read after the signal is sent, and a killed process
        // prints nothing more.
        while let Some((ms, id)) = kills.next_if(|(ms, _)| *ms < l.ms) {
            if let Some((token, from)) = open.remove(id) {
                tenures.push(Tenure {
                    id: id.to_string(),
                    token,
                    from,
                    to: ms,
                });
            }
        }
        match l.kind {
            Kind::Acquired => {
                if let Some((token, _)) = open.get(&l.id) {
                    problems.push(format!(
                        "{} acquired token {} at {} while its tenure {token} was still open",
                        l.id, l.token, l.ms
                    ));
                }
                open.insert(l.id.clone(), (l.token, l.ms));
            }
            Kind::Work => {
                last_work.insert((l.id.clone(), l.token), l.ms);
            }
            Kind::Stopped => match open.remove(&l.id) {
                Some((token, from)) if token == l.token => tenures.push(Tenure {
                    id: l.id.clone(),
                    token,
                    from,
                    to: l.ms,
                }),
                other => problems.push(format!(
                    "{} stopped token {} at {} but its open tenure was {other:?}",
                    l.id, l.token, l.ms
                )),
            },
        }
    }
    // A tenure still open ended with its replica's kill, or the run.
    for (id, (token, from)) in open {
        let killed = acts.iter().find_map(|a| match a {
            Act::Killed { id: k, ms } if *k == id && *ms >= from => Some(*ms),
            _ => None,
        });
        tenures.push(Tenure {
            id,
            token,
            from,
            to: killed.unwrap_or(end),
        });
    }
    // A kill ends a tenure even if a STOPPED line came later (it cannot).
    for t in &mut tenures {
        for a in acts {
            if let Act::Killed { id, ms } = a {
                if *id == t.id && *ms >= t.from && *ms < t.to {
                    t.to = *ms;
                }
            }
        }
    }
    // A pause inside a tenure after which the tenure never worked again:
    // the replica could act no more from the pause on.
    for t in &mut tenures {
        let last = last_work.get(&(t.id.clone(), t.token)).copied();
        for (p, r) in pauses(acts, &t.id, end) {
            let inside = p >= t.from && p < t.to;
            let worked_after = last.is_some_and(|w| w >= r);
            if inside && !worked_after {
                t.to = p;
            }
        }
    }
    tenures.sort_by_key(|t| (t.from, t.to));

    // 1. No two replicas at once.
    for (i, a) in tenures.iter().enumerate() {
        for b in &tenures[i + 1..] {
            if a.id != b.id && a.from < b.to && b.from < a.to {
                problems.push(format!(
                    "two at once: {} (token {}) ran {}..{} and {} (token {}) ran {}..{}",
                    a.id, a.token, a.from, a.to, b.id, b.token, b.from, b.to
                ));
            }
        }
    }
    // 2. Tokens grow from one tenure to the next.
    let mut acquired: Vec<&Line> = lines.iter().filter(|l| l.kind == Kind::Acquired).collect();
    acquired.sort_by_key(|l| l.ms);
    for w in acquired.windows(2) {
        if w[1].token <= w[0].token {
            problems.push(format!(
                "tokens did not grow: {} acquired {} at {}, then {} acquired {} at {}",
                w[0].id, w[0].token, w[0].ms, w[1].id, w[1].token, w[1].ms
            ));
        }
    }
    // 3. Nobody works under a token older than one granted before.
    let mut newest = 0u64;
    let mut works = 0usize;
    let (mut first, mut last_ms, mut gap) = (None::<u64>, 0u64, 0u64);
    for l in &lines {
        match l.kind {
            Kind::Acquired => newest = newest.max(l.token),
            Kind::Work => {
                works += 1;
                if l.token < newest {
                    problems.push(format!(
                        "stale work: {} worked under token {} at {} after token {newest} was granted",
                        l.id, l.token, l.ms
                    ));
                }
                if first.is_some() {
                    gap = gap.max(l.ms.saturating_sub(last_ms));
                }
                first.get_or_insert(l.ms);
                last_ms = l.ms;
            }
            Kind::Stopped => {}
        }
    }
    if problems.is_empty() {
        Ok(Report {
            tenures,
            work_lines: works,
            longest_gap_ms: gap,
        })
    } else {
        Err(problems)
    }
}

/// The pause spans of replica `id` (a pause never resumed lasts to `end`).
fn pauses(acts: &[Act], id: &str, end: u64) -> Vec<(u64, u64)> {
    let mut spans = Vec::new();
    let mut since = None;
    for a in acts {
        match a {
            Act::Paused { id: p, ms } if p == id => since = Some(*ms),
            Act::Resumed { id: p, ms } if p == id => {
                if let Some(s) = since.take() {
                    spans.push((s, *ms));
                }
            }
            Act::Killed { id: p, ms } if p == id => {
                if let Some(s) = since.take() {
                    spans.push((s, *ms));
                }
            }
            _ => {}
        }
    }
    if let Some(s) = since {
        spans.push((s, end));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(kind: Kind, token: u64, id: &str, ms: u64) -> Line {
        Line {
            kind,
            token,
            id: id.into(),
            ms,
        }
    }
    use Kind::*;

    #[test]
    fn parses_the_contract_and_nothing_else() {
        assert_eq!(
            Line::parse("WORK billing 7 b 1700000000123"),
            Some(l(Work, 7, "b", 1_700_000_000_123))
        );
        assert_eq!(Line::parse("LISTENING 127.0.0.1:1"), None);
        assert_eq!(Line::parse("WORK other 7 b 1"), None);
        assert_eq!(Line::parse("WORK billing x b 1"), None);
    }

    #[test]
    fn a_clean_handover_passes() {
        let lines = [
            l(Acquired, 5, "a", 100),
            l(Work, 5, "a", 150),
            l(Stopped, 5, "a", 200),
            l(Acquired, 9, "b", 400),
            l(Work, 9, "b", 450),
        ];
        let r = check(&lines, &[], 1000).expect("clean");
        assert_eq!(r.tenures.len(), 2);
        assert_eq!(r.longest_gap_ms, 300);
    }

    #[test]
    fn an_overlap_is_found() {
        let lines = [
            l(Acquired, 5, "a", 100),
            l(Acquired, 9, "b", 150),
            l(Stopped, 5, "a", 200),
        ];
        let e = check(&lines, &[], 1000).unwrap_err();
        assert!(e.iter().any(|p| p.contains("two at once")), "{e:?}");
    }

    #[test]
    fn a_kill_ends_a_tenure_but_work_after_it_is_stale() {
        let lines = [
            l(Acquired, 5, "a", 100),
            l(Acquired, 9, "b", 300),
            l(Work, 9, "b", 350),
        ];
        let killed = [Act::Killed {
            id: "a".into(),
            ms: 120,
        }];
        check(&lines, &killed, 1000).expect("a's tenure ended at its kill");
        assert!(check(&lines, &[], 1000).is_err(), "not killed: overlap");
    }

    #[test]
    fn a_kill_in_the_millisecond_of_the_acquisition_ends_that_tenure() {
        // Seen in CI: the holder was killed in the millisecond it printed
        // ACQUIRED; its next run acquired again later.
        let lines = [
            l(Acquired, 1, "c", 904),
            l(Acquired, 17, "b", 2040),
            l(Stopped, 17, "b", 3000),
            l(Acquired, 48, "c", 4000),
        ];
        let killed = [Act::Killed {
            id: "c".into(),
            ms: 904,
        }];
        let r = check(&lines, &killed, 5000).expect("c's first tenure ended at its kill");
        assert_eq!(r.tenures.len(), 3);
        assert_eq!((r.tenures[0].from, r.tenures[0].to), (904, 904));
    }

    #[test]
    fn a_paused_holder_that_stops_without_working_again_passes() {
        let lines = [
            l(Acquired, 5, "a", 100),
            l(Work, 5, "a", 150),
            l(Acquired, 9, "b", 2600),
            l(Stopped, 5, "a", 3001),
        ];
        let acts = [
            Act::Paused {
                id: "a".into(),
                ms: 160,
            },
            Act::Resumed {
                id: "a".into(),
                ms: 3000,
            },
        ];
        check(&lines, &acts, 4000).expect("no work after the resume");
        // Working on after the resume under the old token: caught.
        let mut stale = lines.to_vec();
        stale.push(l(Work, 5, "a", 3000));
        let e = check(&stale, &acts, 4000).unwrap_err();
        assert!(e.iter().any(|p| p.contains("stale work")), "{e:?}");
        assert!(e.iter().any(|p| p.contains("two at once")), "{e:?}");
    }

    #[test]
    fn tokens_must_grow() {
        let lines = [
            l(Acquired, 9, "a", 100),
            l(Stopped, 9, "a", 200),
            l(Acquired, 9, "b", 300),
        ];
        let e = check(&lines, &[], 1000).unwrap_err();
        assert!(e.iter().any(|p| p.contains("did not grow")), "{e:?}");
    }
}
