//! The one seam between a fleet and its coordination store: the
//! [`LeaseStore`] trait, and the records it trades in.
//!
//! A store keeps, per replica, a *session* that lives for a TTL unless
//! renewed, and per lease name at most one holder, whose lease lives
//! exactly as long as its session. Everything the fleet promises rests on
//! four properties of a store, which an implementation must give:
//!
//! 1. **Exclusive**: while a session holds a lease, no other session can
//!    acquire it (a linearizable compare-and-set).
//! 2. **Expiring**: a session not renewed for its TTL, counted by the store
//!    from no earlier than the renewal's arrival, expires with its leases;
//!    never earlier.
//! 3. **Renewal fails once expired**: a renewal of an expired session is
//!    refused ([`StoreError::Expired`]), never silently granted.
//! 4. **Fencing tokens grow**: every acquisition gets a token greater than
//!    every token granted before for that name.
//!
//! The crate has two: `EtcdStore` (feature `etcd`) and `PostgresStore`
//! (feature `postgres`). A Kubernetes Lease, Consul or Redis backend is
//! one more implementation of this trait, and nothing else changes.

use std::fmt;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

/// A coordination store that keeps sessions and leases (see the module
/// docs for what an implementation must guarantee). Every method is one
/// request, or a few, to the store: the fleet bounds each with a timeout
/// and retries.
pub trait LeaseStore: Send + Sync + fmt::Debug + 'static {
    /// Where the store is, for errors and the status page
    /// (`etcd http://127.0.0.1:2379`).
    fn endpoint(&self) -> String;

    /// Opens a session for `member` that lives `ttl` unless renewed, and
    /// records the member. Refused with [`StoreError::Duplicate`] when a
    /// live session of another replica has the same id. `previous`: this
    /// replica's earlier session, lost (a renewal failed or came too late):
    /// it is ended first, with its leases, and its member record is taken
    /// over.
    fn join<'a>(
        &'a self,
        member: &'a Member,
        ttl: Duration,
        previous: Option<&'a Session>,
    ) -> BoxFuture<'a, Result<Session, StoreError>>;

    /// Renews the session, its member record and every lease it holds,
    /// for another TTL. [`StoreError::Expired`] once the session has
    /// expired.
    fn renew<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Takes the lease `name` for the session, if nobody holds it; it lives
    /// as long as the session. A lease the same session held already is
    /// taken anew, with a new token.
    fn acquire<'a>(
        &'a self,
        session: &'a Session,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Claim, StoreError>>;

    /// Gives the lease `name` up if the session still holds it with
    /// `token`; otherwise does nothing.
    fn release<'a>(
        &'a self,
        session: &'a Session,
        name: &'a str,
        token: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Ends the session at once, with its member record and its leases.
    fn leave<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The members whose sessions are live, sorted by id.
    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, StoreError>>;

    /// Who holds the lease `name`, if anyone.
    fn holder<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Holder>, StoreError>>;

    /// Resolves once the lease `name`, seen held with `token`, may be free
    /// (its holder released it or expired), or after `within`, whichever
    /// comes first: what a standby replica waits on between attempts. The
    /// default waits `within`; a store that can tell (etcd's watch) ends
    /// the wait early, so a handover does not wait for the next poll.
    fn wait_released<'a>(
        &'a self,
        name: &'a str,
        token: u64,
        within: Duration,
    ) -> BoxFuture<'a, ()> {
        let _ = (name, token);
        Box::pin(tokio::time::sleep(within))
    }
}

/// A replica's session, as its store opened it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The member it belongs to.
    pub member: String,
    /// The store's number for it (etcd: the lease id; PostgreSQL: a
    /// sequence value).
    pub id: u64,
    /// Its TTL, as the store keeps it (at least the one asked for).
    pub ttl: Duration,
}

/// A replica in the fleet, as its member record says.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// Its id (`FleetOptions::new(id)`).
    pub id: String,
    /// The address it gave (`FleetOptions::address`), if any.
    pub address: Option<String>,
    /// When it joined, by its own clock.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::model::serde_time::unix_ms")
    )]
    pub joined_at: SystemTime,
    /// When it last renewed its session, by its own clock.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::model::serde_time::opt_unix_ms")
    )]
    pub renewed_at: Option<SystemTime>,
}

impl Member {
    /// A member record.
    pub fn new(id: impl Into<String>, address: Option<String>, joined_at: SystemTime) -> Member {
        Member {
            id: id.into(),
            address,
            joined_at,
            renewed_at: None,
        }
    }

    /// The record, renewed at `at`.
    pub fn renewed(mut self, at: SystemTime) -> Member {
        self.renewed_at = Some(at);
        self
    }
}

/// Who holds a lease.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The holder's member id.
    pub member: String,
    /// The fencing token it acquired the lease with.
    pub token: u64,
}

/// How an acquisition went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The session holds the lease now, with this fencing token.
    Acquired {
        /// The fencing token: greater than any granted before for the name.
        token: u64,
    },
    /// Someone holds it.
    HeldBy(Holder),
}

/// What went wrong with a store request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached, or did not answer; why.
    Unreachable(String),
    /// The session has expired: its leases may belong to others already.
    Expired,
    /// A live session of another replica has this member id.
    Duplicate {
        /// The id asked for.
        id: String,
    },
    /// The store answered with an error; what it said.
    Refused(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unreachable(why) => write!(f, "unreachable: {why}"),
            StoreError::Expired => f.write_str("the session has expired"),
            StoreError::Duplicate { id } => {
                write!(f, "a live replica has the member id {id:?} already")
            }
            StoreError::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}
