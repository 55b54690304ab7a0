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
//! The modules sit in four layers, each naming only its own and those below
//! (a test checks it): pure data and decisions (`tree`, `sweep`, `restart`,
//! `view`, the policy and the records), the handles runnables and users hold
//! ([`Runnable`] and [`Context`], the domain's one pair that name each other,
//! as actix's `Actor` and `Context` do; [`Supervisor`]; the messages), the
//! actors (the processor, one actor owning the tree; the node hosts, one
//! actor per node on a worker arbiter), and on top the builder and the
//! features. Around them:
//! the log tree ([`LogTree`], [`Logger`], the `node_*!` macros,
//! [`CaptureLogger`]), [actors as nodes](mod@actor) with [`SupervisedAddr`]
//! addresses, [OS processes as nodes](process) (Unix), and a
//! [test harness](testing). See `docs/design.md` in the repository for the
//! whole picture and `docs/performance.md` for the measured figures.

mod actor;
mod api;
mod builder;
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
pub use api::supervisor::Supervisor;
#[cfg(unix)]
pub use api::supervisor::TerminationSignals;
pub use api::tasks::{TaskError, TaskHandle};
pub use builder::SupervisorBuilder;
pub use model::error::{BoxError, RunError, RunResult, SignalError};
pub use model::logtree::{Entry, LogEvent, LogQuery, LogTree, MAX_DNS, MAX_MESSAGE_LEN};
pub use model::metrics::Metrics;
pub use model::name::{is_valid_name, MAX_NAME_LEN};
pub use model::policy::{Backoff, Intensity, Restart, Shutdown, Strategy};
pub use model::read::query::{Query, Selection};
pub use model::read::render;
pub use model::records::{
    Counts, Ended, ExitKind, GroupInfo, LastExit, Liveness, NodeInfo, NodeKind, NodeState,
    Readiness, Signal,
};
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
