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
//! [`CaptureLogger`]), [actors as nodes](mod@actor) with [`Supervised`]
//! addresses, [OS processes as nodes](process) (Unix), and a
//! [test harness](testing). See `docs/design.md` in the repository for the
//! whole picture and `docs/performance.md` for the measured figures.

pub mod actor;
mod builder;
mod capture;
mod context;
pub mod dynamic;
mod error;
mod exit;
mod hosts;
mod inbox;
mod logger;
mod logtree;
mod metrics;
mod name;
mod node;
mod panics;
mod policy;
#[cfg(unix)]
pub mod process;
mod processor;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod protocol;
mod query;
pub mod render;
mod repairs;
mod restart;
mod runnable;
mod said;
#[cfg(feature = "serde")]
mod serde_time;
mod settle;
mod sinks;
mod stall;
mod state;
mod supervisor;
mod sweep;
#[cfg(feature = "systemd")]
pub mod systemd;
mod tasks;
pub mod testing;
#[cfg(feature = "tracing")]
pub mod tracing;
mod tree;
mod view;
mod walk;
#[cfg(feature = "web")]
pub mod web;
mod workers;

pub use actor::{
    actor, actor_with, ActorRunnable, DeliveryError, Supervised, SupervisedRecipient,
    DEFAULT_SEND_TIMEOUT,
};
pub use builder::SupervisorBuilder;
pub use capture::{current_logger, CaptureLogger};
pub use context::Context;
pub use dynamic::{Dynamic, DynamicGroup};
pub use error::{BoxError, RunError, RunResult, SignalError};
pub use logger::{AsLogger, Logger, RawWriter};
pub use logtree::{Entry, LogEvent, LogQuery, LogTree, MAX_DNS, MAX_MESSAGE_LEN};
pub use metrics::{DnState, InMemoryMetrics, Metrics};
pub use name::{is_valid_name, MAX_NAME_LEN};
pub use panics::install_panic_hook;
pub use policy::{Backoff, Intensity, Restart, Shutdown, Strategy};
#[cfg(feature = "prometheus")]
pub use prometheus_client;
pub use query::{Query, Selection};
pub use runnable::{Child, Group, Runnable};
pub use state::{
    Counts, Ended, ExitKind, GroupInfo, LastExit, NodeInfo, NodeKind, NodeState, Signal,
};
pub use supervisor::Supervisor;
#[cfg(unix)]
pub use supervisor::TerminationSignals;
pub use tasks::{TaskError, TaskHandle};

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
