//! Repairs under way, for the repair-latency metric: from a group's first
//! death to its last restarted member's Healthy, less the backoff waited.
//! Plain data: the processor records the events, a sink gets the latency.

use std::time::Duration;

use slotmap::SecondaryMap;
use tokio::time::Instant;

use crate::model::tree::GroupKey;

/// The repairs under way, by group.
#[derive(Default)]
pub(crate) struct Repairs(SecondaryMap<GroupKey, Repair>);

/// A group's repair: since its first death, the longest backoff its
/// restarts waited, and how many restarted members are not healthy yet.
#[derive(Debug)]
struct Repair {
    since: Instant,
    backoff: Duration,
    pending: u32,
}

impl Repairs {
    /// A member of `g` died at `at`: a repair begins, unless one is under way.
    pub fn death(&mut self, g: GroupKey, at: Instant) {
        if let Some(entry) = self.0.entry(g) {
            entry.or_insert(Repair {
                since: at,
                backoff: Duration::ZERO,
                pending: 0,
            });
        }
    }

    /// `members` of `g` restart, the longest after `backoff`.
    pub fn restarting(&mut self, g: GroupKey, members: usize, backoff: Duration) {
        if let Some(r) = self.0.get_mut(g) {
            r.backoff = r.backoff.max(backoff);
            r.pending += members as u32;
        }
    }

    /// A member of `g` is healthy (or done): the repair's latency once it
    /// was the last one.
    pub fn progress(&mut self, g: GroupKey) -> Option<Duration> {
        let r = self.0.get_mut(g)?;
        if r.pending == 0 {
            return None; // not restarted yet
        }
        r.pending -= 1;
        if r.pending > 0 {
            return None;
        }
        let latency = r.since.elapsed().saturating_sub(r.backoff);
        self.0.remove(g);
        Some(latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotmap::SlotMap;

    #[test]
    fn a_repair_ends_with_its_last_restarted_member() {
        let mut keys: SlotMap<GroupKey, ()> = SlotMap::with_key();
        let g = keys.insert(());
        let mut repairs = Repairs::default();
        assert_eq!(repairs.progress(g), None, "no repair under way");
        repairs.death(g, Instant::now());
        assert_eq!(repairs.progress(g), None, "not restarted yet");
        repairs.restarting(g, 2, Duration::from_secs(3600));
        assert_eq!(repairs.progress(g), None, "one of two");
        let latency = repairs.progress(g).expect("the last one ends it");
        assert_eq!(latency, Duration::ZERO, "less the backoff waited");
        assert_eq!(repairs.progress(g), None, "over");
    }
}
