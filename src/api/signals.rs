//! [`TerminationSignals`]: SIGTERM and SIGINT, the signals that ask a
//! service to drain and stop (Unix).

/// SIGTERM and SIGINT, listened for from [`new`](Self::new) on (Unix).
#[cfg(unix)]
#[derive(Debug)]
pub struct TerminationSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl TerminationSignals {
    /// Installs the handlers: from now on these signals no longer end the
    /// process by themselves. Needs a running tokio (actix) runtime.
    pub fn new() -> std::io::Result<TerminationSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(TerminationSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal's name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
