//! What an operator reads of the tree: a [`query`] selects nodes, a [`walk`]
//! visits them a bounded slice at a time, the [`view`] builds their records
//! and answers who is not ready, and [`render`] draws them as text or DOT.
//! Pure: the processor runs the walks (`runtime/processor/walks.rs`).

pub(crate) mod query;
pub mod render;
pub(crate) mod view;
pub(crate) mod walk;
