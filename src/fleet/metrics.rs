//! A fleet's Prometheus families (see
//! [`Fleet::register_metrics`](super::Fleet::register_metrics)): made with
//! the fleet, registered on request, and updated by the keeper and the
//! attempts whether or not anyone registered them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::model::lease::Loss;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabel {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LossLabel {
    name: String,
    why: &'static str,
}

#[derive(Debug)]
pub(super) struct FleetMetrics {
    members: Gauge,
    held: Family<NameLabel, Gauge>,
    acquisitions: Family<NameLabel, Counter>,
    losses: Family<LossLabel, Counter>,
    renewal: Histogram,
}

impl Default for FleetMetrics {
    fn default() -> Self {
        FleetMetrics {
            members: Gauge::default(),
            held: Family::default(),
            acquisitions: Family::default(),
            losses: Family::default(),
            // 1 ms to about 4 s.
            renewal: Histogram::new(exponential_buckets(0.001, 2.0, 13)),
        }
    }
}

fn label(name: &str) -> NameLabel {
    NameLabel {
        name: name.to_string(),
    }
}

impl FleetMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("actix_supervisor");
        r.register(
            "fleet_members",
            "Live members of the fleet, as this replica last read them",
            self.members.clone(),
        );
        r.register(
            "singleton_held",
            "Whether this replica holds the singleton's lease (0 or 1)",
            self.held.clone(),
        );
        r.register(
            "singleton_acquisitions",
            "Leases this replica acquired, by singleton",
            self.acquisitions.clone(),
        );
        r.register(
            "singleton_losses",
            "Leases this replica lost without releasing them, by singleton and why",
            self.losses.clone(),
        );
        r.register(
            "fleet_renewal_seconds",
            "How long the store took to confirm a session renewal",
            self.renewal.clone(),
        );
    }

    pub fn members(&self, n: usize) {
        self.members.set(n as i64);
    }

    pub fn acquired(&self, name: &str) {
        self.held.get_or_create(&label(name)).set(1);
        self.acquisitions.get_or_create(&label(name)).inc();
    }

    pub fn released(&self, name: &str) {
        self.held.get_or_create(&label(name)).set(0);
    }

    pub fn lost(&self, name: &str, why: Loss) {
        self.held.get_or_create(&label(name)).set(0);
        let l = LossLabel {
            name: name.to_string(),
            why: why.as_str(),
        };
        self.losses.get_or_create(&l).inc();
    }

    pub fn renewed(&self, took: std::time::Duration) {
        self.renewal.observe(took.as_secs_f64());
    }
}
