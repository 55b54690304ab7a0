#![warn(missing_docs)]
#![warn(missing_debug_implementations)]
//! Erlang/OTP-style supervision trees for [actix] services.
//!
//! Every unit of long-lived work is a [`Runnable`], a node in a tree with a
//! dotted name (`root.http.listener`). A runnable starts its children (alone
//! or as a [`Group`]) while it is NEW, signals [`Signal::Healthy`] when it is
//! serving and [`Signal::Done`] when its work is finished. When one dies:
//! - its subtree and its group siblings are cancelled;
//! - once all of them have exited, the group is restarted, the dead member
//!   after an exponential backoff and the others at once;
//! - each restarted runnable starts its children anew.
//!
//! ```
//! use actix_supervisor::{Context, Group, RunResult, Signal, Supervisor};
//!
//! async fn worker(ctx: Context) -> RunResult {
//!     ctx.signal(Signal::Healthy)?;
//!     ctx.cancelled().await;
//!     Ok(())
//! }
//!
//! async fn root(ctx: Context) -> RunResult {
//!     ctx.run_group(Group::new().with("reader", worker).with("writer", worker)).await?;
//!     ctx.signal(Signal::Healthy)?;
//!     ctx.cancelled().await;
//!     Ok(())
//! }
//!
//! actix_rt::System::new().block_on(async {
//!     let sup = Supervisor::start(root);
//!     sup.wait_settled().await;
//!     assert_eq!(sup.live_runnables().await, ["root", "root.reader", "root.writer"]);
//!     sup.shutdown().await;
//! });
//! ```
//!
//! # Where to start
//!
//! 1. [`Runnable`] and [`Context`]: what a unit of work is, and what it sees
//!    of the tree (its cancellation, its signals, its children, its logger).
//! 2. [`Child`] and [`Group`], with [`Restart`], [`Strategy`], [`Shutdown`],
//!    [`Intensity`] and [`Backoff`]: the restart policy, in OTP's words.
//! 3. [`Supervisor`] and [`SupervisorBuilder`]: starting a tree, watching it
//!    ([`snapshot`](Supervisor::snapshot), [`query`](Supervisor::query),
//!    [`readiness`](Supervisor::readiness)), restarting a node on request,
//!    shutting down.
//! 4. The features: [`web::Status`](crate::web) (probes, metrics and a status page),
//!    [`SupervisedAddr`] (actix actors as nodes), [`process::Command`] (OS
//!    processes as nodes), [`Dynamic`] (children started at run time), and
//!    the log tree ([`LogTree`], [`Logger`], the `node_*!` macros).
//! 5. Across replicas: [`fleet`], singleton nodes that run on exactly one
//!    replica at a time, fenced by etcd or PostgreSQL.
//!
//! # The layers
//!
//! The source is in three layer folders and a top, each naming only its own
//! layer and those below (`tests/layers.rs` checks it):
//!
//! ```text
//!  top        builder · actor · process · fleet · web · prometheus · systemd · tracing · testing
//!  ─────────────────────────────────────────────────────────────────────────────────────────
//!  runtime/   the actors: processor (owns the tree) · host (one per node) · outbox
//!             (batches to the workers) · workers · stall watch · sinks
//!  ─────────────────────────────────────────────────────────────────────────────────────────
//!  api/       what runnables and users hold: Runnable ↔ Context · Supervisor · Dynamic ·
//!             logger · capture · tasks · wire (requests, the report inbox, settling)
//!  ─────────────────────────────────────────────────────────────────────────────────────────
//!  model/     plain data and pure decisions: tree · sweep (what restarts) · plan (how) ·
//!             exit · records · policy · voice · logtree · read (query, walk, view, render)
//! ```
//!
//! The processor owns the tree, the one source of truth; every decision
//! over it is a pure function in `model/`, tested without actors; the actors
//! of `runtime/` move messages and run futures. `docs/design.md` in the
//! repository has the whole picture, `docs/performance.md` the figures.

mod actor;
mod api;
mod builder;
pub mod fleet;
mod model;
#[cfg(unix)]
pub mod process;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod runtime;
#[cfg(feature = "systemd")]
pub mod systemd;
#[cfg(feature = "test-util")]
pub mod testing;
#[cfg(feature = "tracing")]
pub mod tracing;
#[cfg(feature = "web")]
pub mod web;

pub use actor::{
    actor, actor_with, ActorRunnable, DeliveryError, SupervisedAddr, SupervisedRecipient,
    DEFAULT_SEND_TIMEOUT,
};
pub use api::capture::{current_logger, CaptureLogger};
pub use api::context::Context;
pub use api::dynamic::{Dynamic, DynamicGroup};
pub use api::logger::{AsLogger, Logger, RawWriter};
pub use api::panics::install_panic_hook;
pub use api::runnable::{Child, Group, Runnable};
#[cfg(unix)]
pub use api::signals::TerminationSignals;
pub use api::supervisor::Supervisor;
pub use api::tasks::{TaskError, TaskHandle};
pub use builder::SupervisorBuilder;
pub use model::error::{BoxError, NotReady, RunError, RunResult, SignalError};
pub use model::health::{Liveness, Readiness};
pub use model::logtree::{Entry, LogEvent, LogQuery, LogTree, MAX_DNS, MAX_MESSAGE_LEN};
pub use model::metrics::Metrics;
pub use model::name::{is_valid_name, MAX_NAME_LEN};
pub use model::policy::{
    AutoShutdown, Backoff, Exceeded, Intensity, Park, Restart, Shutdown, Strategy,
};
pub use model::queues::{QueueDepths, DEPTH_BOUNDS};
pub use model::read::query::{Query, Selection};
pub use model::read::render;
pub use model::records::{
    Breaker, Counts, Ended, ExitKind, FinishedChild, GroupInfo, LastExit, LeaseInfo, NodeInfo,
    NodeKind, NodeState, Signal,
};
/// The Prometheus client the [`prometheus`] sink records with, re-exported:
/// a registry given to [`prometheus::PrometheusMetrics::new`] must be of
/// this very version (0.26). Build your registry with
/// `actix_supervisor::prometheus_client`, or depend on the same version;
/// a minor release of this crate that moves to a newer prometheus-client
/// says so in the CHANGELOG.
#[cfg(feature = "prometheus")]
pub use prometheus_client;

#[doc(hidden)]
pub use log as __log;

/// The README's Rust examples, compiled (and those not marked `no_run`,
/// run) as doctests, so that they cannot rot.
#[cfg(all(doctest, feature = "web"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The deployment guide's Rust examples, compiled as doctests.
#[cfg(all(doctest, unix, feature = "systemd"))]
#[doc = include_str!("../docs/deploy.md")]
pub struct DeployDoctests;
