//! Why a fleet could not be joined, or asked.

use std::fmt;

use super::StoreError;

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
    pub(super) fn from_store(e: StoreError, endpoint: String, id: &str) -> FleetError {
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
