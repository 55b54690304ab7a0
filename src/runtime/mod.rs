//! The actors: the [`processor`] (one actor owning the tree, on an arbiter
//! of its own), the node [`host`]s (an actor per node, on worker arbiters, with a
//! singleton's [`seat`] in its lease),
//! and what runs them: the [`workers`] and their placement, the [`outbox`]
//! that carries the processor's decisions to them in batches, the [`stall`]
//! watch, and the [`sinks`] the processor tells what happens.
//!
//! These are the thin shell: they move messages and run futures, and every
//! decision they apply is a function of `model`.

pub(crate) mod host;
pub(crate) mod outbox;
pub(crate) mod processor;
pub(crate) mod seat;
pub(crate) mod sinks;
pub(crate) mod stall;
pub(crate) mod workers;
