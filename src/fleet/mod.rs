//! Singleton nodes across replicas: a node that runs on exactly one
//! replica of a service at a time (a scheduler, a compactor, a queue
//! poller that must not double-consume), fenced by a coordination store
//! the service runs already: etcd (feature `etcd`) or PostgreSQL (feature
//! `postgres`). No protocol of our own: the store's linearizable
//! compare-and-set, its lease expiry and its ever-growing revisions (or a
//! sequence) do all the agreeing.
//!
//! Every replica joins the [`Fleet`] (a member record and a session that
//! lives for a TTL unless renewed) and runs the same tree. A child marked
//! [`singleton`](crate::Child::singleton) exists in every replica's tree,
//! but its runnable runs only on the replica that holds the lease named by
//! its DN; elsewhere it is STANDBY, campaigning. The runnable sees the
//! lease's fencing token ([`Context::fencing_token`](crate::Context::fencing_token)).
//!
//! ```no_run
//! # #[cfg(feature = "etcd")]
//! # async fn main_() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use actix_supervisor::fleet::{EtcdStore, Fleet, FleetOptions};
//! use actix_supervisor::{Child, Context, RunResult, Signal};
//!
//! async fn billing(ctx: Context) -> RunResult {
//!     let token = ctx.fencing_token(); // pass it with every write
//!     ctx.signal(Signal::Healthy)?;
//!     ctx.cancelled().await;
//!     Ok(())
//! }
//!
//! let store = EtcdStore::new("http://127.0.0.1:2379")?;
//! let fleet = Fleet::join(store, FleetOptions::new("replica-a").ttl(Duration::from_secs(10))).await?;
//! let child = Child::new("billing", billing).singleton(&fleet);
//! // ... ctx.run(child) in the root, as any child.
//! # let _ = child;
//! # Ok(()) }
//! ```
//!
//! # What is guaranteed, and what is assumed
//!
//! Losing the lease stops the work before anyone else can start it:
//! renewals run every `ttl / 3`; when one is refused, or none has been
//! confirmed for `ttl − margin` (counted on this replica's monotonic clock
//! from when the renewal was *sent*), the incarnation is cancelled, and at
//! the fence (`ttl − margin / 2` after that send) it is dropped, whatever
//! its stop mode; past the fence it is never polled again, even by a
//! replica that was paused and resumes. This assumes the replica's clock
//! and the store's lease timer run at rates within `margin / 2` over a
//! TTL of each other, and that the store keeps its promises (see
//! [`LeaseStore`]). It cannot stop a write already in flight when the lease
//! fell: that is what the fencing token is for. `docs/fleet.md` has the
//! whole argument and the measured failover times.

mod error;
mod keeper;
mod lessor;
#[cfg(feature = "prometheus")]
mod metrics;
mod options;
mod store;

#[cfg(feature = "etcd")]
mod etcd;
#[cfg(feature = "postgres")]
mod postgres;

pub use error::FleetError;
#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;
pub use options::{is_valid_lease_name, FleetOptions, DEFAULT_TTL};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use store::{Claim, Holder, LeaseStore, Member, Session, StoreError};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::model::lease::{Loss, Standing};

/// This replica's membership of a fleet: a session in the store, renewed
/// in the background, and the leases its singleton nodes hold. Cheap to
/// clone; the session ends (its leases are released at once) with
/// [`leave`](Self::leave), or once every clone is dropped and the nodes
/// that use it are gone.
#[derive(Clone)]
pub struct Fleet {
    shared: Arc<Shared>,
    _keeper: Arc<KeeperGuard>,
}

/// What the handle, the keeper and the hosts share.
pub(crate) struct Shared {
    store: Arc<dyn LeaseStore>,
    endpoint: String,
    member: Member,
    ttl: Duration,
    margin: Duration,
    /// The live session and its standing, or `None` while rejoining.
    current: Mutex<Option<Current>>,
    /// The leases this replica holds: name → token.
    held: Mutex<BTreeMap<String, u64>>,
    /// The members as the keeper last read them.
    members: Mutex<Vec<Member>>,
    #[cfg(feature = "prometheus")]
    metrics: metrics::FleetMetrics,
}

#[derive(Clone)]
struct Current {
    session: Arc<Session>,
    standing: watch::Receiver<Standing>,
}

/// Ends the keeper when the last handle goes.
struct KeeperGuard(CancellationToken);

impl Drop for KeeperGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("id", &self.shared.member.id)
            .field("store", &self.shared.endpoint)
            .field("ttl", &self.shared.ttl)
            .field("held", &*self.shared.held())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self) -> Option<Current> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_current(&self, current: Option<Current>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = current;
    }

    /// The session fell: every lease it held is lost.
    fn lost_all(&self, why: Loss) {
        let names: Vec<String> = std::mem::take(&mut *self.held()).into_keys().collect();
        #[cfg(feature = "prometheus")]
        for name in &names {
            self.metrics.lost(name, why);
        }
        if !names.is_empty() {
            log::warn!(
                target: "actix_supervisor::fleet",
                "{}: the session fell ({why}): the leases of {} are lost",
                self.member.id,
                names.join(", ")
            );
        }
    }

    /// A request to the store, bounded: a third of the TTL.
    fn budget(&self) -> Duration {
        self.ttl / 3
    }
}

impl Fleet {
    /// Joins the fleet in `store` as the replica `options` names: records
    /// the member, opens its session and starts renewing it (every
    /// `ttl / 3`, on the current tokio runtime; an actix system is one).
    ///
    /// Errors: the store unreachable (naming its endpoint), another live
    /// replica with the same id, an invalid id or TTL. Once joined, a
    /// session that falls (the store unreachable for longer than the TTL)
    /// is re-established in the background, with backoff, while the
    /// singletons wait in STANDBY.
    pub async fn join(store: impl LeaseStore, options: FleetOptions) -> Result<Fleet, FleetError> {
        options.check()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        let store: Arc<dyn LeaseStore> = Arc::new(store);
        let endpoint = store.endpoint();
        let member = Member::new(
            options.id.clone(),
            options.address.clone(),
            SystemTime::now(),
        );
        let (ttl, margin) = (options.ttl, options.margin_of());
        let sent = Instant::now();
        let joined = tokio::time::timeout(ttl, store.join(&member, ttl, None)).await;
        let session = match joined {
            Ok(Ok(session)) => session,
            Ok(Err(e)) => return Err(FleetError::from_store(e, endpoint, &options.id)),
            Err(_) => {
                return Err(FleetError::Unreachable {
                    endpoint,
                    why: format!("no answer within {ttl:?}"),
                })
            }
        };
        let (tx, rx) = watch::channel(Standing::confirmed(sent, ttl, margin));
        let shared = Arc::new(Shared {
            store,
            endpoint,
            member,
            ttl,
            margin,
            current: Mutex::new(Some(Current {
                session: Arc::new(session),
                standing: rx,
            })),
            held: Mutex::new(BTreeMap::new()),
            members: Mutex::new(Vec::new()),
            #[cfg(feature = "prometheus")]
            metrics: metrics::FleetMetrics::default(),
        });
        let stop = CancellationToken::new();
        runtime.spawn(keeper::keep(shared.clone(), tx, stop.clone()));
        Ok(Fleet {
            shared,
            _keeper: Arc::new(KeeperGuard(stop)),
        })
    }

    /// This replica's member id.
    pub fn id(&self) -> &str {
        &self.shared.member.id
    }

    /// The store, as its endpoint names it.
    pub fn store(&self) -> &str {
        &self.shared.endpoint
    }

    /// The session's TTL.
    pub fn ttl(&self) -> Duration {
        self.shared.ttl
    }

    /// The live members, asked of the store now.
    pub async fn members(&self) -> Result<Vec<Member>, FleetError> {
        let s = &self.shared;
        match tokio::time::timeout(s.budget(), s.store.members()).await {
            Ok(Ok(members)) => Ok(members),
            Ok(Err(e)) => Err(FleetError::from_store(e, s.endpoint.clone(), &s.member.id)),
            Err(_) => Err(self.no_answer()),
        }
    }

    /// The members as the session's keeper last read them (at most a third
    /// of the TTL ago, while the store answers): for pages that must not
    /// wait on the store.
    pub fn last_members(&self) -> Vec<Member> {
        self.shared
            .members
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Who holds the lease `name` (a node's DN), asked of the store now.
    pub async fn holder(&self, name: &str) -> Result<Option<Holder>, FleetError> {
        if !is_valid_lease_name(name) {
            return Err(FleetError::InvalidLeaseName {
                name: name.to_string(),
            });
        }
        let s = &self.shared;
        match tokio::time::timeout(s.budget(), s.store.holder(name)).await {
            Ok(Ok(holder)) => Ok(holder),
            Ok(Err(e)) => Err(FleetError::from_store(e, s.endpoint.clone(), &s.member.id)),
            Err(_) => Err(self.no_answer()),
        }
    }

    /// The leases this replica holds, with their fencing tokens.
    pub fn held(&self) -> Vec<(String, u64)> {
        self.shared
            .held()
            .iter()
            .map(|(n, t)| (n.clone(), *t))
            .collect()
    }

    /// Whether this replica's session stands now (renewed in time).
    pub fn is_connected(&self) -> bool {
        self.shared
            .current()
            .is_some_and(|c| c.standing.borrow().doomed(Instant::now()).is_none())
    }

    /// Leaves the fleet: stops renewing and ends the session in the store
    /// at once, which frees every lease it holds (stop the supervisor
    /// first: its singletons release theirs as they stop). Other handles
    /// see the fleet as left.
    pub async fn leave(&self) -> Result<(), FleetError> {
        self._keeper.0.cancel();
        let s = &self.shared;
        let Some(current) = s.current() else {
            return Ok(());
        };
        s.set_current(None);
        s.held().clear();
        match tokio::time::timeout(s.budget(), s.store.leave(&current.session)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(FleetError::from_store(e, s.endpoint.clone(), &s.member.id)),
            Err(_) => Err(self.no_answer()),
        }
    }

    fn no_answer(&self) -> FleetError {
        FleetError::Unreachable {
            endpoint: self.shared.endpoint.clone(),
            why: format!("no answer within {:?}", self.shared.budget()),
        }
    }

    /// Registers the fleet's metrics: `actix_supervisor_fleet_members`,
    /// `actix_supervisor_singleton_held{name}` (0 or 1 on this replica),
    /// `actix_supervisor_singleton_acquisitions_total{name}`,
    /// `actix_supervisor_singleton_losses_total{name,why}` and
    /// `actix_supervisor_fleet_renewal_seconds` (a histogram).
    #[cfg(feature = "prometheus")]
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.shared.metrics.register(registry);
    }
}
