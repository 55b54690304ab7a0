//! [`Logger`]: a node's logger, and the `node_*!` macros that use it.
//!
//! Every entry goes to the `log` facade, with the DN as its target (so
//! `env_logger` and friends still see everything), and into the supervisor's
//! [`LogTree`].

use std::fmt;
use std::io;
use std::sync::Arc;

use log::Level;

use crate::model::logtree::LogTree;

/// A logger for one DN: a node's ([`Context::logger`](crate::Context::logger))
/// or a sub-logger's ([`Context::sub_logger`](crate::Context::sub_logger)).
/// Cheap to clone, `Send + Sync`.
///
/// ```no_run
/// use actix_supervisor::{node_info, Context, RunResult, Signal};
///
/// async fn listener(ctx: Context) -> RunResult {
///     let addr = "127.0.0.1:8080";
///     node_info!(ctx, "listening on {addr}");
///     ctx.logger().debug(format_args!("set-up took {} ms", 3));
///     ctx.signal(Signal::Healthy)?;
///     ctx.cancelled().await;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Logger {
    dn: Arc<str>,
    logs: LogTree,
}

impl Logger {
    pub(crate) fn new(dn: Arc<str>, logs: LogTree) -> Logger {
        Logger { dn, logs }
    }

    /// The DN entries are logged at.
    pub fn dn(&self) -> &str {
        &self.dn
    }

    /// Logs at `level`.
    pub fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        self.log_at(level, args, None)
    }

    /// Logs at `level` with the caller's source location (what the macros use).
    #[doc(hidden)]
    pub fn log_at(
        &self,
        level: Level,
        args: fmt::Arguments<'_>,
        location: Option<(&'static str, u32)>,
    ) {
        if level <= log::max_level() {
            // The capturing wrapper must not file this entry a second time.
            without_capture(|| {
                log::logger().log(
                    &log::Record::builder()
                        .args(args)
                        .level(level)
                        .target(&self.dn)
                        .file_static(location.map(|l| l.0))
                        .line(location.map(|l| l.1))
                        .build(),
                )
            });
        }
        let location = location.map(|(file, line)| format!("{file}:{line}"));
        self.store(Some(level), args.to_string(), location);
    }

    /// Logs at error level.
    pub fn error(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Error, args)
    }

    /// Logs at warn level.
    pub fn warn(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Warn, args)
    }

    /// Logs at info level.
    pub fn info(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Info, args)
    }

    /// Logs at debug level.
    pub fn debug(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Debug, args)
    }

    /// Logs at trace level.
    pub fn trace(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Trace, args)
    }

    /// Stores one raw line (a child process's output, say), kept apart from
    /// leveled entries. Invalid UTF-8 is replaced, never refused; a trailing
    /// newline is dropped.
    pub fn raw_line(&self, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.store(None, String::from_utf8_lossy(line).into_owned(), None);
    }

    /// A writer that turns whatever is written to it into raw lines.
    pub fn raw(&self) -> RawWriter {
        RawWriter {
            logger: self.clone(),
            partial: Vec::new(),
        }
    }

    /// Files an entry in the log tree only (not through the facade).
    pub(crate) fn store(&self, level: Option<Level>, message: String, location: Option<String>) {
        self.logs.push(&self.dn, level, message, location);
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger").field("dn", &self.dn).finish()
    }
}

/// Splits bytes into raw lines of a [`Logger`]. A last line without a newline
/// is stored on [`flush`](io::Write::flush) or drop.
///
/// ```no_run
/// # fn f(ctx: actix_supervisor::Context) -> std::io::Result<()> {
/// use std::io::Write;
/// let mut out = ctx.logger().raw();
/// out.write_all(b"first line\nsecond ")?;
/// out.write_all(b"line\n")?; // two raw lines stored
/// # Ok(()) }
/// ```
pub struct RawWriter {
    logger: Logger,
    partial: Vec<u8>,
}

impl fmt::Debug for RawWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawWriter")
            .field("dn", &self.logger.dn())
            .field("partial", &self.partial.len())
            .finish()
    }
}

/// A line longer than this is stored in pieces.
const MAX_RAW_LINE: usize = 64 * 1024;

impl io::Write for RawWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&rest[..i]);
            self.logger.raw_line(&self.partial);
            self.partial.clear();
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        while self.partial.len() >= MAX_RAW_LINE {
            let tail = self.partial.split_off(MAX_RAW_LINE);
            self.logger.raw_line(&self.partial);
            self.partial = tail;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.partial.is_empty() {
            self.logger.raw_line(&self.partial);
            self.partial.clear();
        }
        Ok(())
    }
}

impl Drop for RawWriter {
    fn drop(&mut self) {
        let _ = io::Write::flush(self);
    }
}

/// Logs at a level through a [`Context`](crate::Context) or [`Logger`],
/// with the caller's source location: `node_log!(ctx, Level::Info, "x = {}", x)`.
#[macro_export]
macro_rules! node_log {
    ($ctx:expr, $level:expr, $($arg:tt)+) => {
        $crate::AsLogger::as_logger(&$ctx).log_at($level, format_args!($($arg)+), Some((file!(), line!())))
    };
}

/// `node_error!(ctx, "...", args)`: an error entry at the node's DN.
#[macro_export]
macro_rules! node_error {
    ($ctx:expr, $($arg:tt)+) => { $crate::node_log!($ctx, $crate::__log::Level::Error, $($arg)+) };
}

/// `node_warn!(ctx, "...", args)`: a warning entry at the node's DN.
#[macro_export]
macro_rules! node_warn {
    ($ctx:expr, $($arg:tt)+) => { $crate::node_log!($ctx, $crate::__log::Level::Warn, $($arg)+) };
}

/// `node_info!(ctx, "...", args)`: an info entry at the node's DN.
#[macro_export]
macro_rules! node_info {
    ($ctx:expr, $($arg:tt)+) => { $crate::node_log!($ctx, $crate::__log::Level::Info, $($arg)+) };
}

/// `node_debug!(ctx, "...", args)`: a debug entry at the node's DN.
#[macro_export]
macro_rules! node_debug {
    ($ctx:expr, $($arg:tt)+) => { $crate::node_log!($ctx, $crate::__log::Level::Debug, $($arg)+) };
}

/// `node_trace!(ctx, "...", args)`: a trace entry at the node's DN.
#[macro_export]
macro_rules! node_trace {
    ($ctx:expr, $($arg:tt)+) => { $crate::node_log!($ctx, $crate::__log::Level::Trace, $($arg)+) };
}

/// What the `node_*!` macros accept: a [`Context`](crate::Context) or a [`Logger`].
pub trait AsLogger {
    /// The logger to write through.
    fn as_logger(&self) -> Logger;
}

impl AsLogger for Logger {
    fn as_logger(&self) -> Logger {
        self.clone()
    }
}

thread_local! {
    /// Set while a node logger makes its own `log` facade call.
    static FILING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (the node logger's own facade call) marked so that
/// [`CaptureLogger`](crate::CaptureLogger) does not file the record a second
/// time: the node logger has filed it already.
pub(crate) fn without_capture<R>(f: impl FnOnce() -> R) -> R {
    let before = FILING.with(|s| s.replace(true));
    let r = f();
    FILING.with(|s| s.set(before));
    r
}

/// Whether this thread is inside a node logger's own facade call.
pub(crate) fn filing_itself() -> bool {
    FILING.with(std::cell::Cell::get)
}
