//! The bottom layer: the supervision tree as plain data, and the pure
//! decisions over it.
//!
//! Nothing here is an actor, spawns a future or reads a runtime: the tree
//! ([`tree`]) is the one source of truth the processor owns, and the
//! decisions over it are functions of that data, unit-tested without actors:
//! which units restart ([`sweep`]), how (the [`plan`]: delays, or giving
//! up), how an exit becomes a state ([`exit`]), and what an operator reads
//! of it ([`read`]). The supervisor's own words are here too ([`voice`]):
//! what it says, and the log tree ([`logtree`]) it says it into.
//!
//! Modules here name only each other (a test checks it: `tests/layers.rs`).

pub(crate) mod error;
pub(crate) mod exit;
pub(crate) mod health;
pub(crate) mod lease;
pub(crate) mod logtree;
pub(crate) mod metrics;
pub(crate) mod name;
pub(crate) mod phase;
pub(crate) mod plan;
pub(crate) mod policy;
pub(crate) mod queues;
pub(crate) mod read;
pub(crate) mod records;
pub(crate) mod repairs;
#[cfg(feature = "serde")]
pub(crate) mod serde_time;
pub(crate) mod significant;
pub(crate) mod sweep;
pub(crate) mod tree;
pub(crate) mod voice;
