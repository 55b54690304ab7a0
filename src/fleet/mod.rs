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

mod keeper;
#[cfg(feature = "prometheus")]
mod metrics;
mod store;

#[cfg(feature = "etcd")]
mod etcd;
#[cfg(feature = "postgres")]
mod postgres;

#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use store::{Claim, Holder, LeaseStore, Member, Session, StoreError};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::lease::{Attempt, Lessor, Tenure};
use crate::api::runnable::Child;
use crate::model::lease::{check_ttl, Loss, Standing};
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
    id: String,
    ttl: Duration,
    margin: Option<Duration>,
    address: Option<String>,
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

    fn margin_of(&self) -> Duration {
        self.margin.unwrap_or(self.ttl / 4)
    }

    fn check(&self) -> Result<(), FleetError> {
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

/// Why a fleet could not be joined, or asked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetError {
    /// The store could not be reached.
    Unreachable {
        /// Where it was looked for.
        endpoint: String,
        /// What failed.
        why: String,
    },
    /// A live replica has this member id already.
    DuplicateId {
        /// The id.
        id: String,
        /// The store that said so.
        endpoint: String,
    },
    /// The member id is empty, too long, or has characters other than
    /// ASCII letters, digits, `-`, `_` and `.`.
    InvalidId {
        /// The id.
        id: String,
    },
    /// The TTL or the safety margin cannot work; why.
    InvalidTtl {
        /// What is wrong.
        why: String,
    },
    /// A lease name that is not a node's DN (valid names joined by dots).
    InvalidLeaseName {
        /// The name.
        name: String,
    },
    /// The store answered with an error.
    Store {
        /// The store.
        endpoint: String,
        /// What it said.
        why: String,
    },
    /// `join` was called outside a tokio runtime (an actix system is one):
    /// the session's keeper has nowhere to run.
    NoRuntime,
    /// A store URL that cannot be used.
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        why: String,
    },
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Unreachable { endpoint, why } => {
                write!(f, "the fleet's store at {endpoint} is unreachable: {why}")
            }
            FleetError::DuplicateId { id, endpoint } => write!(
                f,
                "a live replica has the member id {id:?} already (store {endpoint}); \
                 give each replica its own id, or wait for the other one's session to expire"
            ),
            FleetError::InvalidId { id } => write!(
                f,
                "invalid member id {id:?}: 1 to 128 ASCII letters, digits, '-', '_' or '.'"
            ),
            FleetError::InvalidTtl { why } => write!(f, "invalid fleet options: {why}"),
            FleetError::InvalidLeaseName { name } => write!(
                f,
                "invalid lease name {name:?}: a node's DN, names of [a-z0-9_] joined by '.'"
            ),
            FleetError::Store { endpoint, why } => {
                write!(f, "the fleet's store at {endpoint} refused: {why}")
            }
            FleetError::NoRuntime => f.write_str(
                "Fleet::join was called outside a tokio runtime (run it in an actix system)",
            ),
            FleetError::InvalidUrl { url, why } => write!(f, "invalid store URL {url:?}: {why}"),
        }
    }
}

impl std::error::Error for FleetError {}

impl FleetError {
    fn from_store(e: StoreError, endpoint: String, id: &str) -> FleetError {
        match e {
            StoreError::Unreachable(why) => FleetError::Unreachable { endpoint, why },
            StoreError::Duplicate { .. } => FleetError::DuplicateId {
                id: id.to_string(),
                endpoint,
            },
            StoreError::Expired => FleetError::Store {
                endpoint,
                why: e.to_string(),
            },
            StoreError::Refused(why) => FleetError::Store { endpoint, why },
        }
    }
}

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

impl Lessor for Fleet {
    fn member(&self) -> &str {
        &self.shared.member.id
    }

    fn attempt(&self, name: Arc<str>) -> BoxFuture<'static, Attempt> {
        let shared = self.shared.clone();
        Box::pin(async move {
            if !is_valid_lease_name(&name) {
                return Attempt::Failed(format!("invalid lease name {name:?}"));
            }
            let Some(current) = shared.current() else {
                return Attempt::Failed("this replica is rejoining the fleet".into());
            };
            if let Some(why) = current.standing.borrow().doomed(Instant::now()) {
                return Attempt::Failed(format!("this replica's session is falling: {why}"));
            }
            let asked = shared.store.acquire(&current.session, &name);
            match tokio::time::timeout(shared.budget(), asked).await {
                Ok(Ok(Claim::Acquired { token })) => {
                    shared.held().insert(name.to_string(), token);
                    #[cfg(feature = "prometheus")]
                    shared.metrics.acquired(&name);
                    Attempt::Won(Tenure::new(token, current.standing))
                }
                Ok(Ok(Claim::HeldBy(h))) => Attempt::HeldBy {
                    holder: h.member,
                    token: h.token,
                },
                Ok(Err(e)) => Attempt::Failed(format!("the store at {}: {e}", shared.endpoint)),
                Err(_) => Attempt::Failed(format!(
                    "the store at {} did not answer within {:?}",
                    shared.endpoint,
                    shared.budget()
                )),
            }
        })
    }

    fn retry_every(&self) -> Duration {
        (self.shared.ttl / 10).max(Duration::from_millis(50))
    }

    fn wait_turn(&self, name: Arc<str>, token: u64) -> BoxFuture<'static, ()> {
        let (shared, within) = (self.shared.clone(), self.retry_every());
        Box::pin(async move { shared.store.wait_released(&name, token, within).await })
    }

    fn release(&self, name: Arc<str>, token: u64) -> BoxFuture<'static, ()> {
        let shared = self.shared.clone();
        Box::pin(async move {
            let ours = shared.held().get(&*name) == Some(&token);
            if !ours {
                return; // lost with its session already
            }
            shared.held().remove(&*name);
            #[cfg(feature = "prometheus")]
            shared.metrics.released(&name);
            let Some(current) = shared.current() else {
                return;
            };
            let asked = shared.store.release(&current.session, &name, token);
            match tokio::time::timeout(shared.budget(), asked).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::warn!(
                    target: "actix_supervisor::fleet",
                    "{}: releasing {name} (token {token}): {e}; it expires on its own",
                    shared.member.id
                ),
                Err(_) => log::warn!(
                    target: "actix_supervisor::fleet",
                    "{}: releasing {name} (token {token}): no answer; it expires on its own",
                    shared.member.id
                ),
            }
        })
    }
}

impl Child {
    /// Makes this child a singleton across the replicas of `fleet`: every
    /// replica has the node in its tree, but its runnable runs only on the
    /// replica holding the lease named by its DN (`root.billing`);
    /// elsewhere it is STANDBY, campaigning, which does not make the
    /// replica unready.
    ///
    /// Its policy applies within a tenure: restarts, backoff and
    /// intensity. When its restarts exceed its owner's intensity it does
    /// not take the owner down: this replica releases the lease and backs
    /// off (at least the intensity's window) before campaigning again, so
    /// that a replica that cannot run the job hands it over. When the lease
    /// is lost (see the [module docs](crate::fleet)) its incarnation is
    /// cancelled and dropped at the fence, and it comes back at once,
    /// STANDBY, without counting as a restart against anyone. A stopping
    /// supervisor releases its leases once their runnables have stopped.
    pub fn singleton(mut self, fleet: &Fleet) -> Child {
        self.spec.singleton = true;
        self.lease = Some(Arc::new(fleet.clone()));
        self
    }
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
