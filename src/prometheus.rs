//! A [`Metrics`] sink for Prometheus, on the official `prometheus-client`
//! crate. The application owns the registry (no global state) and serves it
//! however it likes (`prometheus_client::encoding::text::encode`).
//!
//! ```
//! use actix_supervisor::prometheus::PrometheusMetrics;
//! use actix_supervisor::prometheus_client::{self, registry::Registry};
//!
//! let mut registry = Registry::default();
//! let metrics = PrometheusMetrics::new(&mut registry);
//! # let _ = actix_supervisor::Supervisor::builder().metrics(metrics);
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
//! assert!(text.contains("actix_supervisor_restarts_total"));
//! ```
//!
//! The families, and how many series each has (its cardinality):
//!
//! | family | type | series |
//! | --- | --- | --- |
//! | `actix_supervisor_nodes{state}` | gauge, every second | 6 (NEW, HEALTHY, DEAD, DONE, CANCELLED, STANDBY) |
//! | `actix_supervisor_nodes_waiting` | gauge: waiting out a backoff | 1 |
//! | `actix_supervisor_nodes_stalled` | gauge: flagged by the stall watch | 1 |
//! | `actix_supervisor_restarts_total` | counter: nodes restarted | 1 |
//! | `actix_supervisor_exits_total{kind}` | counter: incarnations ended, by [`ExitKind`] | 9 |
//! | `actix_supervisor_escalations_total` | counter: parents (or the supervisor) giving up | 1 |
//! | `actix_supervisor_repair_seconds` | histogram: death to group back, less the backoff | 12 buckets |
//! | `actix_supervisor_backoff_seconds` | histogram: the delays dead nodes waited | 12 buckets |
//! | `actix_supervisor_processor_lag_seconds` | gauge: how late the processor's tick ran | 1 |
//! | `actix_supervisor_node_restarts_total{dn}` | counter, only with [`PrometheusMetrics::with_per_dn`] | at most the cap + 1 (`dn="_other"`) |
//! | `actix_supervisor_queue_depth` | histogram: actor nodes by messages waiting, every second | 11 buckets ([`DEPTH_BOUNDS`](crate::DEPTH_BOUNDS)) |
//! | `actix_supervisor_queues_overloaded` | gauge: actor nodes whose queue alarm is on | 1 |
//! | `actix_supervisor_overloaded_queue_depth{dn}` | gauge: messages waiting, only for nodes in alarm | at most [`queue_top`](PrometheusMetrics::queue_top) (default 100), the deepest |
//!
//! So a tree of 100,000 nodes exports about 70 series by default; per-DN
//! series are opt-in and capped. A [`Fleet`](crate::fleet::Fleet) registers
//! its own families ([`register_metrics`](crate::fleet::Fleet::register_metrics)):
//! a few series per singleton.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::model::metrics::Metrics;
use crate::model::queues::QueueDepths;
use crate::model::records::{Counts, ExitKind, NodeState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DnLabel {
    dn: String,
}

/// The per-DN label value for DNs past the cap.
const OTHER: &str = "_other";

/// Records the supervisor's metrics in a `prometheus-client` registry. Cheap
/// to clone; see the [module docs](self) for the families.
#[derive(Clone, Debug)]
pub struct PrometheusMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    nodes: Family<StateLabel, Gauge>,
    waiting: Gauge,
    stalled: Gauge,
    restarts: Counter,
    exits: Family<KindLabel, Counter>,
    escalations: Counter,
    repair: Histogram,
    backoff: Histogram,
    lag: Gauge<f64, AtomicU64>,
    per_dn: Option<PerDn>,
    overloaded: Gauge,
    queues: Arc<Queues>,
}

/// The actor nodes' backlogs as last told (every second), encoded at
/// scrape time: the spread of depths, and the deepest nodes in alarm.
#[derive(Debug)]
struct Queues {
    top: AtomicUsize,
    told: Mutex<(QueueDepths, Vec<(String, usize)>)>,
}

/// The default of [`PrometheusMetrics::queue_top`].
pub const DEFAULT_QUEUE_TOP: usize = 100;

impl Collector for Queues {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (depths, deepest) = &*self.told.lock().unwrap_or_else(PoisonError::into_inner);
        // The encoder adds the buckets up itself: each bucket's own count.
        let mut below = 0;
        let buckets: Vec<(f64, u64)> = depths
            .buckets
            .iter()
            .map(|(le, n)| (*le as f64, *n))
            .chain([(f64::INFINITY, depths.nodes)])
            .map(|(le, n)| (le, n.saturating_sub(std::mem::replace(&mut below, n))))
            .collect();
        encoder
            .encode_descriptor(
                "queue_depth",
                "Actor nodes by the messages waiting for them.",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(depths.queued as f64, depths.nodes, &buckets, None)?;
        let mut gauge = encoder.encode_descriptor(
            "overloaded_queue_depth",
            "Messages waiting for an actor node whose queue alarm is on (the deepest).",
            None,
            MetricType::Gauge,
        )?;
        for (dn, depth) in deepest {
            let label = DnLabel { dn: dn.clone() };
            ConstGauge::new(*depth as i64).encode(gauge.encode_family(&label)?)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct PerDn {
    cap: usize,
    restarts: Family<DnLabel, Counter>,
    seen: Mutex<HashSet<String>>,
}

impl PrometheusMetrics {
    /// Registers the families in `registry`, without per-DN series.
    pub fn new(registry: &mut Registry) -> PrometheusMetrics {
        Self::build(registry, None)
    }

    /// Also counts restarts per DN, for the first `cap` DNs that restart;
    /// later ones are counted under `dn="_other"`.
    pub fn with_per_dn(registry: &mut Registry, cap: usize) -> PrometheusMetrics {
        Self::build(registry, Some(cap))
    }

    fn build(registry: &mut Registry, cap: Option<usize>) -> PrometheusMetrics {
        let r = registry.sub_registry_with_prefix("actix_supervisor");
        let inner = Inner {
            nodes: Family::default(),
            waiting: Gauge::default(),
            stalled: Gauge::default(),
            restarts: Counter::default(),
            exits: Family::default(),
            escalations: Counter::default(),
            // 1 ms to about 2 s.
            repair: Histogram::new(exponential_buckets(0.001, 2.0, 12)),
            // 10 ms to about 20 s.
            backoff: Histogram::new(exponential_buckets(0.01, 2.0, 12)),
            lag: Gauge::default(),
            per_dn: cap.map(|cap| PerDn {
                cap,
                restarts: Family::default(),
                seen: Mutex::new(HashSet::new()),
            }),
            overloaded: Gauge::default(),
            queues: Arc::new(Queues {
                top: AtomicUsize::new(DEFAULT_QUEUE_TOP),
                told: Mutex::default(),
            }),
        };
        // Every label set made now, at zero: each series exists from the
        // first scrape, and the families (hash maps) never grow, so their
        // series keep one order from scrape to scrape.
        for state in [
            NodeState::New,
            NodeState::Healthy,
            NodeState::Dead,
            NodeState::Done,
            NodeState::Cancelled,
            NodeState::Standby,
        ] {
            drop(inner.nodes.get_or_create(&StateLabel {
                state: state_label(state),
            }));
        }
        for kind in [
            ExitKind::Done,
            ExitKind::Error,
            ExitKind::Panic,
            ExitKind::Misuse,
            ExitKind::GaveUp,
            ExitKind::Cancelled,
            ExitKind::Aborted,
            ExitKind::Restarted,
            ExitKind::LeaseLost,
        ] {
            drop(inner.exits.get_or_create(&KindLabel {
                kind: kind.as_str(),
            }));
        }
        r.register("nodes", "Nodes by state", inner.nodes.clone());
        r.register(
            "nodes_waiting",
            "Nodes waiting out a backoff before a restart",
            inner.waiting.clone(),
        );
        r.register(
            "nodes_stalled",
            "Nodes that keep their worker thread from running anything else",
            inner.stalled.clone(),
        );
        r.register("restarts", "Nodes restarted", inner.restarts.clone());
        r.register("exits", "Incarnations ended, by kind", inner.exits.clone());
        r.register(
            "escalations",
            "Parents, or the supervisor, that gave up after exceeding their restart intensity",
            inner.escalations.clone(),
        );
        r.register(
            "repair_seconds",
            "From a death to its group being back, less the backoff waited",
            inner.repair.clone(),
        );
        r.register(
            "backoff_seconds",
            "The backoff delays dead nodes waited before their restart",
            inner.backoff.clone(),
        );
        r.register(
            "processor_lag_seconds",
            "How late the processor ran its one-second tick",
            inner.lag.clone(),
        );
        r.register(
            "queues_overloaded",
            "Actor nodes whose queue alarm is on",
            inner.overloaded.clone(),
        );
        r.register_collector(Box::new(inner.queues.clone()));
        if let Some(p) = &inner.per_dn {
            r.register(
                "node_restarts",
                "Restarts by DN (capped; the rest under dn=\"_other\")",
                p.restarts.clone(),
            );
        }
        PrometheusMetrics {
            inner: Arc::new(inner),
        }
    }

    /// How many nodes in alarm get an `overloaded_queue_depth{dn}` series
    /// at most: the deepest (default [`DEFAULT_QUEUE_TOP`]). The series of
    /// a node leave once its alarm clears, so the family's cardinality is
    /// bounded by this however many actors there are.
    pub fn queue_top(self, k: usize) -> Self {
        self.inner.queues.top.store(k, Ordering::Relaxed);
        self
    }
}

fn state_label(s: NodeState) -> &'static str {
    match s {
        NodeState::New => "NEW",
        NodeState::Healthy => "HEALTHY",
        NodeState::Dead => "DEAD",
        NodeState::Done => "DONE",
        NodeState::Cancelled => "CANCELLED",
        NodeState::Standby => "STANDBY",
    }
}

impl Metrics for PrometheusMetrics {
    /// States are counted from the summary every second (exact, and cheap
    /// per transition): see [`tick`](Self::tick).
    fn node_state(&self, _dn: &str, _state: NodeState) {}

    fn node_exited(&self, _dn: &str, kind: ExitKind) {
        self.inner
            .exits
            .get_or_create(&KindLabel {
                kind: kind.as_str(),
            })
            .inc();
    }

    fn node_restarted(&self, dn: &str, delay: Duration) {
        let inner = &self.inner;
        inner.restarts.inc();
        if !delay.is_zero() {
            inner.backoff.observe(delay.as_secs_f64());
        }
        if let Some(p) = &inner.per_dn {
            let mut seen = p.seen.lock().unwrap_or_else(PoisonError::into_inner);
            let label = if seen.contains(dn) || (seen.len() < p.cap && seen.insert(dn.to_string()))
            {
                dn.to_string()
            } else {
                OTHER.to_string()
            };
            p.restarts.get_or_create(&DnLabel { dn: label }).inc();
        }
    }

    fn escalated(&self, _dn: Option<&str>) {
        self.inner.escalations.inc();
    }

    fn repaired(&self, latency: Duration) {
        self.inner.repair.observe(latency.as_secs_f64());
    }

    fn tick(&self, c: &Counts, lag: Duration) {
        let inner = &self.inner;
        for (state, n) in [
            (NodeState::New, c.new),
            (NodeState::Healthy, c.healthy),
            (NodeState::Dead, c.dead),
            (NodeState::Done, c.done),
            (NodeState::Cancelled, c.cancelled),
            (NodeState::Standby, c.standby),
        ] {
            inner
                .nodes
                .get_or_create(&StateLabel {
                    state: state_label(state),
                })
                .set(n as i64);
        }
        inner.waiting.set(c.waiting as i64);
        inner.stalled.set(c.stalled as i64);
        inner.lag.set(lag.as_secs_f64());
        inner.overloaded.set(c.overloaded as i64);
    }

    fn queue_depths(&self, depths: &QueueDepths, overloaded: &[(&str, usize)]) {
        let queues = &self.inner.queues;
        let top = queues.top.load(Ordering::Relaxed);
        let mut deepest = overloaded.to_vec();
        deepest.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        deepest.truncate(top);
        let deepest = deepest
            .into_iter()
            .map(|(dn, d)| (dn.to_string(), d))
            .collect();
        *queues.told.lock().unwrap_or_else(PoisonError::into_inner) = (depths.clone(), deepest);
    }
}
