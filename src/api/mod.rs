//! The middle layer below the actors: what runnables and users hold, and the
//! messages those handles send.
//!
//! A [`runnable`] is run with a [`context`] (the domain's one pair that name
//! each other, as actix's `Actor` and `Context` do); the [`supervisor`]
//! handle and the [`dynamic`] nodes' handle ask the processor; a node's
//! [`logger`] and the [`capture`] of `log` calls file lines at its DN;
//! [`tasks`] are tied to an incarnation; a singleton's host holds a
//! [`lease`] while its runnable runs. How they reach the processor
//! without naming it is the [`wire`]. Nothing here names an actor type.

pub(crate) mod capture;
pub(crate) mod context;
pub(crate) mod dynamic;
pub(crate) mod heart;
pub(crate) mod lease;
pub(crate) mod logger;
pub(crate) mod panics;
pub(crate) mod runnable;
#[cfg(unix)]
pub(crate) mod signals;
pub(crate) mod supervisor;
pub(crate) mod tasks;
pub(crate) mod wire;
