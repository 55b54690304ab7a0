//! The log tree: every node's log lines, kept per DN in bounded rings, readable
//! as a backlog (one DN or a whole subtree) and as a live stream.
//!
//! Writers never wait for readers: the backlog rings drop their oldest entry
//! when full, and a live stream that falls behind is told how many entries it
//! missed ([`LogEvent::Missed`]) instead of slowing anybody down.
//!
//! Memory is bounded: each DN keeps at most `capacity` leveled entries and as
//! many raw lines, each message at most [`MAX_MESSAGE_LEN`] bytes, and at most
//! [`MAX_DNS`] DNs are kept (the least recently written go first). A DN keeps
//! its ring across restarts of its node, so the lines that led up to a death
//! are still there after the restart.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use futures::Stream;
use log::Level;
use tokio::sync::broadcast;

/// Messages longer than this many bytes are cut, with a marker saying how much was cut.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;

/// How many DNs keep a backlog at most.
pub const MAX_DNS: usize = 1 << 20;

/// How many entries a live stream may fall behind before it misses some.
const STREAM_BUFFER: usize = 4096;

/// One line of a node's log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// Increases by one for every entry of the tree: orders entries across DNs.
    pub seq: u64,
    /// When it was logged.
    pub time: SystemTime,
    /// The DN the entry was logged at (a node, a sub-logger, or `supervisor`).
    pub dn: Arc<str>,
    /// The level of a leveled entry; `None` for a raw line (a process's output, say).
    pub level: Option<Level>,
    /// The message, cut at [`MAX_MESSAGE_LEN`] bytes.
    pub message: String,
    /// `file:line` of the logging call, where known.
    pub location: Option<String>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            Some(level) => write!(f, "{:<5} {}: {}", level, self.dn, self.message),
            None => write!(f, "RAW   {}: {}", self.dn, self.message),
        }
    }
}

/// What to read: one DN or its subtree, leveled entries from a minimum level,
/// raw lines, or both.
///
/// ```
/// use actix_supervisor::LogQuery;
/// use log::Level;
///
/// let q = LogQuery::dn("root.http").subtree().min_level(Level::Info).with_raw();
/// assert!(q.matches_dn("root.http.listener"));
/// assert!(!q.matches_dn("root.httpd"));
/// ```
#[derive(Clone, Debug)]
pub struct LogQuery {
    dn: String,
    subtree: bool,
    min_level: Level,
    leveled: bool,
    raw: bool,
}

impl LogQuery {
    /// The leveled entries of exactly `dn`, at every level.
    pub fn dn(dn: impl Into<String>) -> Self {
        LogQuery {
            dn: dn.into(),
            subtree: false,
            min_level: Level::Trace,
            leveled: true,
            raw: false,
        }
    }

    /// Everything: every DN (the `supervisor` DN included), leveled and raw.
    pub fn everything() -> Self {
        LogQuery {
            dn: String::new(),
            subtree: true,
            min_level: Level::Trace,
            leveled: true,
            raw: true,
        }
    }

    /// Also the DNs below it.
    pub fn subtree(mut self) -> Self {
        self.subtree = true;
        self
    }

    /// Only leveled entries at `level` or more severe.
    pub fn min_level(mut self, level: Level) -> Self {
        self.min_level = level;
        self
    }

    /// Also raw lines.
    pub fn with_raw(mut self) -> Self {
        self.raw = true;
        self
    }

    /// Only raw lines.
    pub fn raw_only(mut self) -> Self {
        self.raw = true;
        self.leveled = false;
        self
    }

    /// Whether entries logged at `dn` are in scope.
    pub fn matches_dn(&self, dn: &str) -> bool {
        if self.dn.is_empty() && self.subtree {
            return true;
        }
        match dn.strip_prefix(self.dn.as_str()) {
            Some("") => true,
            Some(rest) => self.subtree && rest.starts_with('.'),
            None => false,
        }
    }

    /// Whether `entry` is selected.
    pub fn matches(&self, entry: &Entry) -> bool {
        self.matches_dn(&entry.dn)
            && match entry.level {
                Some(level) => self.leveled && level <= self.min_level,
                None => self.raw,
            }
    }
}

/// What a live stream yields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogEvent {
    /// The next selected entry.
    Entry(Arc<Entry>),
    /// The stream fell behind and this many entries of the tree (of any DN)
    /// went by unseen.
    Missed(u64),
}

impl fmt::Display for LogEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogEvent::Entry(e) => e.fmt(f),
            LogEvent::Missed(n) => write!(f, "... {n} log entries missed ..."),
        }
    }
}

/// The supervisor's log tree. Cheap to clone; see
/// [`Supervisor::logs`](crate::Supervisor::logs).
#[derive(Clone)]
pub struct LogTree {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    state: Mutex<State>,
    live: broadcast::Sender<Arc<Entry>>,
    /// `State::seq`, readable without the lock (written under it).
    seq: AtomicU64,
    #[cfg(feature = "tracing")]
    id: u64,
}

/// The live trees by number: what the tracing layer, which sees only a
/// span's fields, finds a node's tree with. A process has a few.
#[cfg(feature = "tracing")]
mod by_id {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, PoisonError, Weak};

    use super::{Inner, LogTree};

    static TREES: Mutex<Vec<(u64, Weak<Inner>)>> = Mutex::new(Vec::new());

    pub fn next() -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    pub fn register(tree: &LogTree) {
        let mut trees = TREES.lock().unwrap_or_else(PoisonError::into_inner);
        trees.retain(|(_, t)| t.strong_count() > 0);
        trees.push((tree.inner.id, Arc::downgrade(&tree.inner)));
    }

    pub fn find(id: u64) -> Option<LogTree> {
        let trees = TREES.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = trees.iter().find(|(i, _)| *i == id)?.1.upgrade()?;
        Some(LogTree { inner })
    }
}

#[derive(Default)]
struct State {
    seq: u64,
    dns: HashMap<Arc<str>, Rings>,
}

#[derive(Default)]
struct Rings {
    leveled: VecDeque<Arc<Entry>>,
    raw: VecDeque<Arc<Entry>>,
    last_write: u64,
}

impl LogTree {
    /// A tree keeping `capacity` (at least 1) leveled entries and as many raw
    /// lines per DN.
    pub fn new(capacity: usize) -> LogTree {
        let (live, _) = broadcast::channel(STREAM_BUFFER);
        let tree = LogTree {
            inner: Arc::new(Inner {
                capacity: capacity.max(1),
                state: Mutex::new(State::default()),
                live,
                seq: AtomicU64::new(0),
                #[cfg(feature = "tracing")]
                id: by_id::next(),
            }),
        };
        #[cfg(feature = "tracing")]
        by_id::register(&tree);
        tree
    }

    /// The number that names this tree (and its supervisor) in the
    /// incarnations' spans, for the tracing layer to find it.
    #[cfg(feature = "tracing")]
    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    /// The live tree numbered `id`.
    #[cfg(feature = "tracing")]
    pub(crate) fn by_id(id: u64) -> Option<LogTree> {
        by_id::find(id)
    }

    /// Appends an entry at `dn`; `level: None` makes it a raw line.
    pub fn push(
        &self,
        dn: &Arc<str>,
        level: Option<Level>,
        message: String,
        location: Option<String>,
    ) {
        let message = truncate(message);
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.seq += 1;
        self.inner.seq.store(state.seq, Ordering::Release);
        let entry = Arc::new(Entry {
            seq: state.seq,
            time: SystemTime::now(),
            dn: dn.clone(),
            level,
            message,
            location,
        });
        if !state.dns.contains_key(dn) && state.dns.len() >= MAX_DNS {
            evict_oldest(&mut state.dns);
        }
        let seq = state.seq;
        let rings = state.dns.entry(dn.clone()).or_default();
        rings.last_write = seq;
        let ring = if level.is_some() {
            &mut rings.leveled
        } else {
            &mut rings.raw
        };
        if ring.len() == self.inner.capacity {
            ring.pop_front();
        }
        ring.push_back(entry.clone());
        drop(state);
        // No receivers is fine: nobody is streaming.
        let _ = self.inner.live.send(entry);
    }

    /// The stored entries `query` selects, oldest first.
    pub fn backlog(&self, query: &LogQuery) -> Vec<Arc<Entry>> {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<Arc<Entry>> = state
            .dns
            .iter()
            .filter(|(dn, _)| query.matches_dn(dn))
            .flat_map(|(_, r)| r.leveled.iter().chain(r.raw.iter()))
            .filter(|e| query.matches(e))
            .cloned()
            .collect();
        out.sort_by_key(|e| e.seq);
        out
    }

    /// The last `n` entries of exactly `dn`, leveled and raw, oldest first.
    pub fn tail(&self, dn: &str, n: usize) -> Vec<Arc<Entry>> {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(r) = state.dns.get(dn) else {
            return Vec::new();
        };
        let mut out: Vec<Arc<Entry>> = r
            .leveled
            .iter()
            .rev()
            .take(n)
            .chain(r.raw.iter().rev().take(n))
            .cloned()
            .collect();
        out.sort_by_key(|e| e.seq);
        let skip = out.len().saturating_sub(n);
        out.split_off(skip)
    }

    /// The last `n` entries (leveled and raw) of any of `dns`, oldest first.
    pub(crate) fn tail_of(&self, dns: &[&str], n: usize) -> Vec<Arc<Entry>> {
        let mut out: Vec<Arc<Entry>> = dns.iter().flat_map(|dn| self.tail(dn, n)).collect();
        out.sort_by_key(|e| e.seq);
        let skip = out.len().saturating_sub(n);
        out.split_off(skip)
    }

    /// The sequence number of the newest entry (0 before any), without
    /// taking the lock: the processor reads it on every start.
    pub(crate) fn seq(&self) -> u64 {
        self.inner.seq.load(Ordering::Acquire)
    }

    /// A live stream of the entries `query` selects, from now on. It never
    /// slows writers: when it falls more than a few thousand entries behind it
    /// yields [`LogEvent::Missed`] and carries on from the oldest it still has.
    pub fn subscribe(&self, query: LogQuery) -> Pin<Box<dyn Stream<Item = LogEvent> + Send>> {
        let rx = self.inner.live.subscribe();
        Box::pin(futures::stream::unfold(
            (rx, query),
            |(mut rx, query)| async move {
                loop {
                    match rx.recv().await {
                        Ok(e) if query.matches(&e) => {
                            return Some((LogEvent::Entry(e), (rx, query)))
                        }
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            return Some((LogEvent::Missed(n), (rx, query)))
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }

    /// Drops `dn`'s rings (and those of its sub-loggers, `dn.*`): for a
    /// node that has left the tree for good.
    pub(crate) fn release(&self, dn: &str) {
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.dns.retain(|k, _| {
            !(k.as_ref() == dn || k.strip_prefix(dn).is_some_and(|r| r.starts_with('.')))
        });
    }

    /// How many DNs have a backlog.
    pub fn dn_count(&self) -> usize {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dns
            .len()
    }

    /// How many entries (leveled and raw) are stored for all DNs together.
    pub fn stored(&self) -> usize {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state
            .dns
            .values()
            .map(|r| r.leveled.len() + r.raw.len())
            .sum()
    }
}

impl fmt::Debug for LogTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogTree")
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

/// Drops the least recently written eighth of the DNs (amortises the scan).
fn evict_oldest(dns: &mut HashMap<Arc<str>, Rings>) {
    let mut ages: Vec<u64> = dns.values().map(|r| r.last_write).collect();
    let cut = ages.len() / 8;
    let (_, threshold, _) = ages.select_nth_unstable(cut);
    let threshold = *threshold;
    dns.retain(|_, r| r.last_write > threshold);
}

/// Cuts `message` to [`MAX_MESSAGE_LEN`] bytes at a character boundary.
fn truncate(mut message: String) -> String {
    if message.len() <= MAX_MESSAGE_LEN {
        return message;
    }
    let mut cut = MAX_MESSAGE_LEN;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let dropped = message.len() - cut;
    message.truncate(cut);
    message.push_str(&format!("… [truncated {dropped} bytes]"));
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn dn(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn backlog_by_dn_subtree_and_level() {
        let t = LogTree::new(100);
        t.push(&dn("root"), Some(Level::Info), "r".into(), None);
        t.push(&dn("root.a"), Some(Level::Debug), "a-debug".into(), None);
        t.push(&dn("root.a.b"), Some(Level::Error), "b-error".into(), None);
        t.push(
            &dn("root.ab"),
            Some(Level::Error),
            "not below root.a".into(),
            None,
        );
        t.push(&dn("root.a"), None, "raw".into(), None);
        let msgs = |q: LogQuery| -> Vec<String> {
            t.backlog(&q).iter().map(|e| e.message.clone()).collect()
        };
        assert_eq!(msgs(LogQuery::dn("root.a")), ["a-debug"]);
        assert_eq!(
            msgs(LogQuery::dn("root.a").subtree()),
            ["a-debug", "b-error"]
        );
        assert_eq!(
            msgs(LogQuery::dn("root.a").subtree().min_level(Level::Warn)),
            ["b-error"]
        );
        assert_eq!(msgs(LogQuery::dn("root.a").with_raw()), ["a-debug", "raw"]);
        assert_eq!(msgs(LogQuery::dn("root.a").raw_only()), ["raw"]);
        assert_eq!(t.backlog(&LogQuery::everything()).len(), 5);
    }

    #[test]
    fn rings_are_bounded() {
        let t = LogTree::new(8);
        let d = dn("root.chatty");
        for i in 0..10_000 {
            t.push(&d, Some(Level::Info), format!("line {i}"), None);
            t.push(&d, None, format!("raw {i}"), None);
        }
        assert_eq!(t.stored(), 16);
        let kept = t.backlog(&LogQuery::dn("root.chatty"));
        assert_eq!(kept.first().unwrap().message, "line 9992");
        assert_eq!(kept.last().unwrap().message, "line 9999");
    }

    #[test]
    fn long_messages_are_cut_with_a_marker() {
        let t = LogTree::new(4);
        t.push(
            &dn("root"),
            Some(Level::Info),
            "é".repeat(MAX_MESSAGE_LEN),
            None,
        );
        let e = &t.backlog(&LogQuery::dn("root"))[0];
        assert!(e.message.len() < MAX_MESSAGE_LEN + 64);
        assert!(
            e.message
                .ends_with(&format!("[truncated {} bytes]", MAX_MESSAGE_LEN)),
            "{}",
            &e.message[e.message.len() - 40..]
        );
    }

    #[test]
    fn tail_merges_leveled_and_raw() {
        let t = LogTree::new(100);
        let d = dn("root.x");
        for i in 0..5 {
            t.push(&d, Some(Level::Info), format!("l{i}"), None);
            t.push(&d, None, format!("r{i}"), None);
        }
        let tail: Vec<String> = t
            .tail("root.x", 3)
            .iter()
            .map(|e| e.message.clone())
            .collect();
        assert_eq!(tail, ["r3", "l4", "r4"]);
        assert!(t.tail("root.none", 3).is_empty());
    }

    #[test]
    fn a_lagging_stream_reports_misses() {
        let t = LogTree::new(10);
        let mut s = t.subscribe(LogQuery::everything());
        let d = dn("root");
        for i in 0..(STREAM_BUFFER + 10) {
            t.push(&d, Some(Level::Info), format!("{i}"), None);
        }
        futures::executor::block_on(async {
            assert_eq!(s.next().await, Some(LogEvent::Missed(10)));
            match s.next().await {
                Some(LogEvent::Entry(e)) => assert_eq!(e.message, "10"),
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn a_stream_sees_only_what_it_asked_for() {
        let t = LogTree::new(10);
        let mut s = t.subscribe(LogQuery::dn("root.a").min_level(Level::Warn));
        t.push(&dn("root.b"), Some(Level::Error), "other dn".into(), None);
        t.push(&dn("root.a"), Some(Level::Info), "too low".into(), None);
        t.push(&dn("root.a"), Some(Level::Warn), "this".into(), None);
        futures::executor::block_on(async {
            match s.next().await {
                Some(LogEvent::Entry(e)) => assert_eq!(e.message, "this"),
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn eviction_keeps_the_number_of_dns_bounded() {
        let mut dns: HashMap<Arc<str>, Rings> = HashMap::new();
        for i in 0..80u64 {
            dns.insert(
                format!("d{i}").into(),
                Rings {
                    last_write: i,
                    ..Rings::default()
                },
            );
        }
        evict_oldest(&mut dns);
        assert_eq!(dns.len(), 80 - 11);
        assert!(!dns.contains_key("d0") && dns.contains_key("d79"));
    }
}
