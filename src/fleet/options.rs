//! How a replica joins its fleet, and which names it accepts.

use std::time::Duration;

use super::FleetError;
use crate::model::lease::check_ttl;
use crate::model::name::is_valid_name;

/// The default TTL of a replica's session.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// How a replica joins its fleet.
///
/// ```
/// use std::time::Duration;
/// use actix_supervisor::fleet::FleetOptions;
///
/// let options = FleetOptions::new("replica-a")
///     .ttl(Duration::from_secs(10))
///     .address("10.0.0.7:8080");
/// assert_eq!(options.id(), "replica-a");
/// ```
#[derive(Clone, Debug)]
pub struct FleetOptions {
    pub(super) id: String,
    pub(super) ttl: Duration,
    margin: Option<Duration>,
    pub(super) address: Option<String>,
}

impl FleetOptions {
    /// A replica with member id `id`: unique in the fleet (a second replica
    /// joining with a live one's id is refused), up to 128 characters of
    /// ASCII letters, digits, `-`, `_` and `.` (a pod name fits).
    pub fn new(id: impl Into<String>) -> FleetOptions {
        FleetOptions {
            id: id.into(),
            ttl: DEFAULT_TTL,
            margin: None,
            address: None,
        }
    }

    /// The member id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How long this replica's session (and every lease it holds) lives
    /// without a renewal: at least 1 s, default [`DEFAULT_TTL`]. Longer
    /// means fewer renewals and a slower failover after a crash (a new
    /// holder starts about a TTL after the old one stopped renewing); a
    /// graceful stop hands over at once whatever the TTL. etcd keeps TTLs
    /// in whole seconds, rounded up, and has a minimum of its own (2 s by
    /// default).
    pub fn ttl(mut self, ttl: Duration) -> FleetOptions {
        self.ttl = ttl;
        self
    }

    /// The safety margin: the work is cancelled `ttl − margin` after the
    /// last confirmed renewal was sent, and dropped at `ttl − margin / 2`.
    /// Default `ttl / 4`; more than zero and under half the TTL. A larger
    /// margin tolerates more clock drift and a slower stop, and stops the
    /// work sooner when the store is unreachable.
    pub fn safety_margin(mut self, margin: Duration) -> FleetOptions {
        self.margin = Some(margin);
        self
    }

    /// The address this replica gives in its member record (where its
    /// status page is, say); shown in `members()` and on status pages.
    pub fn address(mut self, address: impl Into<String>) -> FleetOptions {
        self.address = Some(address.into());
        self
    }

    pub(super) fn margin_of(&self) -> Duration {
        self.margin.unwrap_or(self.ttl / 4)
    }

    pub(super) fn check(&self) -> Result<(), FleetError> {
        if !is_valid_member_id(&self.id) {
            return Err(FleetError::InvalidId {
                id: self.id.clone(),
            });
        }
        check_ttl(self.ttl, self.margin_of()).map_err(|why| FleetError::InvalidTtl { why })
    }
}

fn is_valid_member_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether `name` can name a lease: a node's DN (`root.billing`), valid
/// names joined by dots.
pub fn is_valid_lease_name(name: &str) -> bool {
    name.len() <= 1024 && name.split('.').all(is_valid_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_and_lease_names_are_checked() {
        for good in ["replica-a", "pod-7f9c.default", "a", "A_1"] {
            assert!(is_valid_member_id(good), "{good}");
        }
        for bad in ["", "a b", "é", "a/b", &"x".repeat(129)] {
            assert!(!is_valid_member_id(bad), "{bad}");
        }
        assert!(is_valid_lease_name("root.billing"));
        for bad in ["", "root..x", "Root", "root.bill ing", "root/x"] {
            assert!(!is_valid_lease_name(bad), "{bad}");
        }
    }

    #[test]
    fn options_are_checked_before_anything_is_sent() {
        let short = FleetOptions::new("a").ttl(Duration::from_millis(500));
        assert!(matches!(short.check(), Err(FleetError::InvalidTtl { why }) if why.contains("1s")));
        let margin = FleetOptions::new("a").safety_margin(Duration::from_secs(6));
        assert!(margin.check().is_err());
        assert!(matches!(
            FleetOptions::new("a b").check(),
            Err(FleetError::InvalidId { .. })
        ));
        assert!(FleetOptions::new("replica-a").check().is_ok());
    }
}
