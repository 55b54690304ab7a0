//! The messages between the parts of a supervisor that are not reports:
//! [`Request`], what a [`Supervisor`] handle asks the processor (each
//! variant carries its reply channel, so the handle holds only a
//! `Recipient<Request>` and never names the processor), and [`Start`], what
//! the processor sends a node host.
//!
//! The tree's reports (exits, begun starts, signals, pids) go through the
//! processor's inbox (`wire/inbox.rs`); a runnable's request for children is the
//! context's own (`context::StartGroup`).
//!
//! [`Supervisor`]: crate::Supervisor

use std::sync::Arc;
use std::time::Duration;

use actix::Message;
use futures::channel::oneshot;
use tokio_util::sync::CancellationToken;

#[cfg(unix)]
use crate::api::signals::TerminationSignals;
use crate::api::wire::settle::Starting;
use crate::model::error::RunError;
use crate::model::health::Liveness;
use crate::model::policy::{Restart, Shutdown};
use crate::model::read::query::Query;
use crate::model::records::{Counts, Ended, NodeInfo};
use crate::model::tree::NodeKey;
use crate::model::voice::Said;

/// What a [`Supervisor`](crate::Supervisor) handle asks the processor.
/// The processor drains its inbox before it answers, so that an answer
/// reflects every report made before the request.
pub(crate) enum Request {
    /// Answered once the tree has been quiet for the settle window
    /// (see `wire/settle.rs`).
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    WaitSettled(oneshot::Sender<()>),
    /// The records a [`Query`] selects (see `model/read/walk.rs`: taken in
    /// slices); [`RunError::NotFound`] when no node has its DN.
    Query {
        query: Query,
        reply: oneshot::Sender<Result<Chunks, RunError>>,
    },
    /// Whether the processor runs (not shutting down nor shut down), and
    /// whether a node whose heartbeat affects liveness is hung.
    Running(oneshot::Sender<Liveness>),
    /// The tree's summary.
    Counts(oneshot::Sender<Counts>),
    /// The DNs of the running nodes, sorted.
    LiveRunnables(oneshot::Sender<Vec<String>>),
    /// Whether the supervisor is draining (`start`: begin draining now).
    Drain {
        start: bool,
        reply: oneshot::Sender<bool>,
    },
    /// Stops the node at `dn` (with the siblings its group's strategy takes
    /// down) to start it again at once; answered once it is stopping.
    Restart {
        dn: String,
        reply: oneshot::Sender<Result<(), RunError>>,
    },
    /// Cancels the tree; answered once nothing is live.
    Stop(oneshot::Sender<Ended>),
    /// Cancels the tree; answered at once (a caller inside the tree cannot
    /// wait for the tree to drain: it is part of it).
    BeginStop(oneshot::Sender<()>),
    /// Answered once the supervisor has ended, with why.
    Join(oneshot::Sender<Ended>),
    /// Answered once the service is ready (`/readyz`'s rule, no grace).
    WhenReady(oneshot::Sender<()>),
    /// Answered once the node at `dn` listens, with where; `NotFound` once
    /// no such node will be started.
    WhenListening {
        dn: String,
        reply: oneshot::Sender<Result<Vec<std::net::SocketAddr>, RunError>>,
    },
    /// Something the supervisor is to say (an operator's action, from the
    /// status page), through its voice: the log, the log tree, tracing.
    Say(Said),
}

impl Message for Request {
    type Result = ();
}

/// What every handle on one supervisor shares besides its channels (the
/// builder fills it; contexts and handles carry it).
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// The registry the builder's `prometheus()` made, for the status.
    #[cfg(feature = "prometheus")]
    pub registry: Option<Arc<std::sync::Mutex<prometheus_client::registry::Registry>>>,
    /// The termination signals' handlers the builder installed at start
    /// (`termination_signals()`), until `run_until_signal` takes them.
    #[cfg(unix)]
    pub signals: std::sync::Mutex<Option<TerminationSignals>>,
    /// How the backlogs of actor nodes spread, kept by the actors.
    pub depths: Arc<crate::model::queues::Depths>,
}

/// A [`Selection`](crate::Selection) as the processor collects it: one
/// chunk per slice (the handle joins them, off the processor).
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    pub chunks: Vec<Vec<NodeInfo>>,
    /// More nodes matched than the limit allowed.
    pub truncated: bool,
}

/// Run one incarnation. From the processor to the node's host.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Start {
    /// Which incarnation; the host makes its `Context` (on the worker,
    /// where the context is used and dropped).
    pub ctx: Incarnation,
    /// The backoff to wait out first; cancelled waits end the incarnation.
    pub delay: Duration,
    /// With ordered start: opened (with a settle guard) once the member
    /// before this one is healthy. Waited for before the delay.
    pub gate: Option<oneshot::Receiver<Starting>>,
    /// How the node is stopped, before the runnable's own say.
    pub shutdown: Shutdown,
    /// Its restart type, for the host to tell a death (see [`is_death`]).
    ///
    /// [`is_death`]: crate::model::exit::is_death
    pub restart: Restart,
    /// What a death takes down besides the node's own subtree: its
    /// one-for-all group's shared token. The host cancels both at once.
    pub takes_down: Option<CancellationToken>,
    /// How long it may stay NEW once its runnable runs (`None`: forever).
    pub start_timeout: Option<Duration>,
    /// How often it must beat once HEALTHY (`None`: no heartbeat).
    pub heartbeat: Option<Duration>,
    /// For an actor node: its queue alarm.
    pub queue_alarm: Option<crate::model::queues::QueueAlarm>,
    /// A singleton that exceeded its owner's intensity: give its lease up
    /// before waiting out `delay`, and campaign again after it.
    pub handover: bool,
    /// Held until the runnable has been polled once (see [`Starting`]).
    pub starting: Option<Starting>,
    /// Answered once the runnable has been polled for the first time (or
    /// its `run` panicked): what a `start_child` caller waits for.
    pub polled: Option<oneshot::Sender<()>>,
}

/// One incarnation of one node, as the processor hands it to the host.
pub(crate) struct Incarnation {
    pub dn: Arc<str>,
    pub node: NodeKey,
    pub incarnation: u64,
    pub token: CancellationToken,
    /// The span the incarnation runs in (see `runtime/processor/launch.rs`).
    #[cfg(feature = "tracing")]
    pub span: ::tracing::Span,
}
