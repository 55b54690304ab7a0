//! `tracing` (the `tracing` feature): every incarnation runs in a span, and
//! [`LogTreeLayer`] files the tracing events made inside a node's span into
//! that node's ring of the supervisor's log tree.
//!
//! **Spans.** Each incarnation's future (its `run` call, and every poll, on
//! its worker) runs inside a span named `node` (target `actix_supervisor`,
//! level INFO) with the fields `dn`, `incarnation` (1 for the first start),
//! `kind` (`runnable`, `actor`, `process`, `dynamic`) and `supervisor` (a
//! number naming the supervisor, which the layer finds its log tree by). Its parent is the
//! parent node's current incarnation's span; the root's is the span that was
//! current where [`SupervisorBuilder::start`](crate::SupervisorBuilder::start)
//! was called. So a subscriber sees the supervision tree as a span tree. A
//! span closes when its incarnation ends, however it ends (returned,
//! panicked, aborted at its stop deadline, dropped at shutdown), once its
//! children's spans have closed. Tasks started with
//! [`Context::spawn`](crate::Context::spawn) run in it too; a task spawned
//! another way carries it with `.in_current_span()`
//! (`tracing::Instrument`).
//!
//! **Events.** With [`LogTreeLayer`] in the subscriber, an event recorded
//! inside a node's span (in the runnable, or in a task carrying the span)
//! is filed at the node's DN like a node logger's entry: level, message and
//! fields (`message key=value ...`), with its source location. So the
//! node's backlog, live streams, `/logs` and the death report's lead-up
//! hold it. Unlike [`CaptureLogger`](crate::CaptureLogger), which only sees
//! the thread a runnable is polled on, the span follows spawned tasks.
//!
//! **Requests.** [`web::server`](crate::web::server) serves every request
//! inside its node's span, so a handler's events are the server node's, and
//! a request span made inside (`tracing-actix-web`'s `TracingLogger`) is
//! that span's child.
//!
//! **The supervisor's own events** (deaths, restarts, escalations, stalls,
//! draining, shutdown) are tracing events of target `actix_supervisor` with
//! the fields `event` (what happened: `died`, `restarting`, `escalated`,
//! `stalled`, `shut_down`, ...), `dn`, `reason`, `exit_kind`, `restarts`,
//! `backoff_ms` and `incarnation`, besides their line on the `log` facade.
//! The layer does not file them (the log tree has them at `supervisor`).
//!
//! **Nothing twice.** A node logger's lines (`node_info!`) are filed by the
//! logger; when they reach tracing through `tracing-log`'s bridge, the
//! layer skips them, and [`CaptureLogger`](crate::CaptureLogger) marks what
//! it files the same way. With the bridge, have it ignore this crate's own
//! lines, which the structured events already carry:
//! `tracing_log::LogTracer::builder().ignore_crate("actix_supervisor").init()`.
//!
//! ```
//! use actix_supervisor::tracing::LogTreeLayer;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let subscriber = tracing_subscriber::registry().with(LogTreeLayer::new());
//! # let _ = subscriber;
//! // tracing::subscriber::set_global_default(subscriber)?;
//! ```
//!
//! **Lines that name the node once.** A subscriber's default format prints
//! every span of an event's scope, so a line deep in the tree is mostly its
//! ancestry (`node{dn="root" ...}:node{dn="root.jobs" ...}:node{dn=...}:`).
//! [`NodeFormat`] names the innermost node once instead:
//!
//! ```
//! use actix_supervisor::tracing::{LogTreeLayer, NodeFormat};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let subscriber = tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer().event_format(NodeFormat::new()))
//!     .with(LogTreeLayer::new());
//! # let _ = subscriber;
//! // 2026-12-03T21:07:44.412Z  INFO root.jobs.beta: connected pool=4
//! ```

mod format;
mod layer;

pub use format::NodeFormat;
pub use layer::LogTreeLayer;
