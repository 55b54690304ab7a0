//! The backlog of actor nodes as data: when a queue is in alarm
//! ([`QueueAlarm`], two thresholds so that it does not flap), and how the
//! depths of all actor nodes spread ([`Depths`], read as [`QueueDepths`]),
//! which costs the same at 10 actors as at 100,000: a fixed set of buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::time::Instant;

/// Where the processor reads an actor node's backlog: how many messages
/// wait, and when the oldest was sent.
pub(crate) type QueueProbe = Arc<dyn Fn() -> (usize, Option<Instant>) + Send + Sync>;

/// An actor node's queue alarm: on when its backlog reaches `high`, off
/// only once it is below `low` again (`0 < low < high`), so that a queue
/// hovering around one threshold does not raise an event per message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueueAlarm {
    pub high: usize,
    pub low: usize,
}

impl QueueAlarm {
    /// The alarm, if the thresholds make one: `0 < low < high`.
    pub fn new(high: usize, low: usize) -> Option<QueueAlarm> {
        (0 < low && low < high).then_some(QueueAlarm { high, low })
    }

    /// Whether the alarm is on at `depth`, given whether it `was` on.
    pub fn next(self, was: bool, depth: usize) -> bool {
        match was {
            false => depth >= self.high,
            true => depth >= self.low,
        }
    }
}

/// The buckets' upper bounds (inclusive), in messages; a last bucket
/// takes the rest.
pub const DEPTH_BOUNDS: [u64; 10] = [0, 1, 4, 16, 64, 256, 1024, 4096, 16_384, 65_536];

/// Which bucket a depth falls in.
pub(crate) fn bucket(depth: usize) -> usize {
    let d = depth as u64;
    DEPTH_BOUNDS
        .iter()
        .position(|b| d <= *b)
        .unwrap_or(DEPTH_BOUNDS.len())
}

/// How many actor nodes have how deep a backlog, kept as it changes (each
/// actor node moves itself between buckets), so that reading it is a few
/// loads however many actors there are.
#[derive(Debug, Default)]
pub(crate) struct Depths {
    nodes: [AtomicU64; DEPTH_BOUNDS.len() + 1],
    /// The messages waiting in all, in parts: every message sent changes
    /// it, so actors on different threads add to different cache lines.
    sum: [Part; SUM_PARTS],
    /// Which part the next actor node to join adds to.
    next: AtomicU64,
}

const SUM_PARTS: usize = 16;

#[derive(Debug, Default)]
#[repr(align(64))]
struct Part(AtomicU64);

impl Depths {
    /// An actor node joins, in `bucket` with `depth` messages; returns the
    /// part of the sum it adds to.
    pub fn enter(&self, bucket: usize, depth: usize) -> usize {
        let part = (self.next.fetch_add(1, Ordering::Relaxed) % SUM_PARTS as u64) as usize;
        self.nodes[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum[part].0.fetch_add(depth as u64, Ordering::Relaxed);
        part
    }

    /// An actor node leaves (its node left the tree).
    pub fn leave(&self, part: usize, bucket: usize, depth: usize) {
        self.nodes[bucket].fetch_sub(1, Ordering::Relaxed);
        self.sum[part].0.fetch_sub(depth as u64, Ordering::Relaxed);
    }

    /// One actor node's backlog grew (`true`) or shrank by one message.
    pub fn step(&self, part: usize, grew: bool) {
        let part = &self.sum[part % SUM_PARTS].0;
        match grew {
            true => part.fetch_add(1, Ordering::Relaxed),
            false => part.fetch_sub(1, Ordering::Relaxed),
        };
    }

    /// One actor node moved between buckets.
    pub fn moved(&self, from: usize, to: usize) {
        self.nodes[to].fetch_add(1, Ordering::Relaxed);
        self.nodes[from].fetch_sub(1, Ordering::Relaxed);
    }

    pub fn read(&self) -> QueueDepths {
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(DEPTH_BOUNDS.len());
        for (i, le) in DEPTH_BOUNDS.iter().enumerate() {
            cumulative = cumulative.wrapping_add(self.nodes[i].load(Ordering::Relaxed));
            buckets.push((*le, cumulative));
        }
        let rest = self.nodes[DEPTH_BOUNDS.len()].load(Ordering::Relaxed);
        QueueDepths {
            buckets,
            nodes: cumulative.wrapping_add(rest),
            queued: self
                .sum
                .iter()
                .fold(0u64, |s, p| s.wrapping_add(p.0.load(Ordering::Relaxed))),
        }
    }
}

/// How the backlogs of all actor nodes spread: a histogram with one
/// observation per actor node (its messages waiting), as
/// [`Metrics::queue_depths`](crate::Metrics::queue_depths) is told it every
/// second. Read between the actors' own updates, so it may be a message
/// or two behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueDepths {
    /// `(le, nodes)`: how many actor nodes have at most `le` messages
    /// waiting (cumulative, as Prometheus buckets are), for each of
    /// [`DEPTH_BOUNDS`].
    pub buckets: Vec<(u64, u64)>,
    /// How many actor nodes there are (the `+Inf` bucket).
    pub nodes: u64,
    /// How many messages wait for them in all.
    pub queued: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alarm_goes_on_at_high_and_off_only_below_low() {
        let a = QueueAlarm::new(100, 20).expect("valid");
        assert!(!a.next(false, 99));
        assert!(a.next(false, 100));
        assert!(a.next(true, 99) && a.next(true, 20));
        assert!(!a.next(true, 19));
        // Oscillating around `high` flips it once.
        let (mut on, mut flips) = (false, 0);
        for i in 0..10_000usize {
            let next = a.next(on, 99 + i % 3);
            flips += usize::from(next != on);
            on = next;
        }
        assert_eq!((on, flips), (true, 1));
    }

    #[test]
    fn thresholds_that_make_no_hysteresis_are_refused() {
        assert_eq!(QueueAlarm::new(10, 10), None);
        assert_eq!(QueueAlarm::new(10, 11), None);
        assert_eq!(QueueAlarm::new(10, 0), None);
        assert!(QueueAlarm::new(2, 1).is_some());
    }

    #[test]
    fn depths_are_bucketed_and_read_cumulatively() {
        assert_eq!((bucket(0), bucket(1), bucket(2), bucket(4)), (0, 1, 2, 2));
        assert_eq!(bucket(65_536), 9);
        assert_eq!(bucket(65_537), 10);
        let d = Depths::default();
        d.enter(0, 0);
        let b = d.enter(0, 0);
        let c = d.enter(bucket(3), 3);
        d.moved(0, bucket(70_000));
        d.step(b, true);
        d.step(b, false);
        let q = d.read();
        assert_eq!(q.buckets[0], (0, 1));
        assert_eq!(q.buckets[2], (4, 2));
        assert_eq!(q.buckets[9], (65_536, 2));
        assert_eq!((q.nodes, q.queued), (3, 3));
        d.leave(c, bucket(3), 3);
        assert_eq!((d.read().nodes, d.read().queued), (2, 0));
    }
}
