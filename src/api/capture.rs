//! Attributing plain `log` calls to the node that made them.
//!
//! While a node's runnable future is being polled, its host marks the thread
//! with the node's logger. [`CaptureLogger`], a `log::Log` wrapper installed
//! around the application's logger, files every record made on a marked
//! thread into the log tree at that node's DN, and passes every record on to
//! the wrapped logger unchanged.
//!
//! Captured: `log` calls made while the runnable's own future is polled, in
//! any function it calls or future it awaits, and in tasks it starts with
//! [`Context::spawn`](crate::Context::spawn). Not captured: tasks started
//! with `actix::spawn` or `tokio::spawn`, other threads, and `Runnable::run`
//! itself before the future is first polled. Those can log through
//! [`Context::logger`](crate::Context::logger) instead, which always works.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use log::{LevelFilter, Log, Metadata, Record, SetLoggerError};

use crate::api::logger::Logger;

thread_local! {
    static CURRENT: RefCell<Option<Logger>> = const { RefCell::new(None) };
}

/// The logger of the node whose runnable is being polled on this thread, if any.
///
/// ```
/// // Outside a runnable there is none.
/// assert!(actix_supervisor::current_logger().is_none());
/// ```
pub fn current_logger() -> Option<Logger> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Calls `f` with the thread marked as running `logger`'s node (and inside
/// `span`), as a poll of [`Scoped`] is: for the runnable's own `run` call.
pub(crate) fn scoped_call<R>(
    logger: &Logger,
    #[cfg(feature = "tracing")] span: &::tracing::Span,
    f: impl FnOnce() -> R,
) -> R {
    let previous = CURRENT.with(|c| c.replace(Some(logger.clone())));
    // Restored even if `f` panics (the host catches the panic).
    struct Restore(Option<Logger>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let _restore = Restore(previous);
    #[cfg(feature = "tracing")]
    let _entered = span.enter();
    f()
}

/// Polls the inner future with the thread marked as running `logger`'s node.
pub(crate) struct Scoped<F> {
    pub inner: F,
    pub logger: Logger,
    /// The incarnation's span, entered on every poll.
    #[cfg(feature = "tracing")]
    pub span: ::tracing::Span,
}

impl<F: Future + Unpin> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        scoped_call(
            &this.logger,
            #[cfg(feature = "tracing")]
            &this.span,
            || Pin::new(&mut this.inner).poll(cx),
        )
    }
}

/// A `log::Log` that files records made inside runnables into the log tree
/// and passes everything on to the wrapped logger.
///
/// ```no_run
/// let inner = env_logger::Builder::from_default_env().build();
/// let level = inner.filter();
/// actix_supervisor::CaptureLogger::install(Box::new(inner), level.max(log::LevelFilter::Info))
///     .expect("no other logger installed");
/// ```
pub struct CaptureLogger {
    inner: Box<dyn Log>,
}

impl std::fmt::Debug for CaptureLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureLogger").finish_non_exhaustive()
    }
}

impl CaptureLogger {
    /// Wraps `inner`; see [`install`](Self::install) to make it the global logger.
    pub fn new(inner: Box<dyn Log>) -> CaptureLogger {
        CaptureLogger { inner }
    }

    /// Installs the wrapper as the global logger, with `max_level` as the
    /// facade's level: records above it are neither printed nor captured.
    pub fn install(inner: Box<dyn Log>, max_level: LevelFilter) -> Result<(), SetLoggerError> {
        log::set_boxed_logger(Box::new(CaptureLogger::new(inner)))?;
        log::set_max_level(max_level);
        Ok(())
    }
}

impl Log for CaptureLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata) || CURRENT.with(|c| c.borrow().is_some())
    }

    fn log(&self, record: &Record<'_>) {
        // `tracing`'s own records of spans entered and exited (its `log`
        // feature, when no subscriber is set) are not a node's lines.
        let span_noise = record.target().starts_with("tracing::span");
        let filer =
            current_logger().filter(|_| !crate::api::logger::filing_itself() && !span_noise);
        if self.inner.enabled(record.metadata()) {
            match filer {
                // Marked: an inner logger that feeds tracing (the `log`
                // bridge) must not have the tracing layer file it again.
                Some(_) => crate::api::logger::without_capture(|| self.inner.log(record)),
                None => self.inner.log(record),
            }
        }
        if let Some(logger) = filer {
            let location = match (record.file(), record.line()) {
                (Some(f), Some(l)) => Some(format!("{f}:{l}")),
                _ => None,
            };
            logger.store(Some(record.level()), record.args().to_string(), location);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}
