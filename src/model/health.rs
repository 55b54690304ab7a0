//! What an orchestrator asks of the supervisor: is the process alive
//! ([`Liveness`], `/healthz`), and is it ready for traffic ([`Readiness`],
//! `/readyz`).

use std::fmt;

use crate::model::records::NodeInfo;

/// Whether the supervisor is alive, as [`Supervisor::liveness`](crate::Supervisor::liveness)
/// (and `/healthz`) tells: what an orchestrator's liveness probe should ask.
/// A node being down is not a liveness failure; a wedged processor is.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Liveness {
    /// The processor answered in time and runs.
    Alive,
    /// It answered: it is shutting down or has shut down.
    ShuttingDown,
    /// It is gone (its arbiter stopped): nothing answers.
    Stopped,
    /// It did not answer in time: something holds its thread (a sink that
    /// blocks, say). An orchestrator should restart the process.
    Wedged,
    /// A node marked
    /// [`heartbeat_affects_liveness`](crate::Child::heartbeat_affects_liveness)
    /// missed its heartbeat and has not been HEALTHY since: the process is
    /// useless without it, and an orchestrator should restart it.
    Hung,
}

impl Liveness {
    /// Only [`Alive`](Self::Alive) passes a liveness probe.
    pub fn is_alive(self) -> bool {
        self == Liveness::Alive
    }
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Liveness::Alive => "ok",
            Liveness::ShuttingDown => "the supervisor is shutting down or shut down",
            Liveness::Stopped => "the supervisor's processor has stopped",
            Liveness::Wedged => "the supervisor's processor did not answer in time (wedged)",
            Liveness::Hung => "a node whose heartbeat affects liveness missed it and is not back",
        })
    }
}

/// Whether the service is ready for traffic, as
/// [`Supervisor::readiness`](crate::Supervisor::readiness) (and `/readyz`)
/// tells: not while draining or shutting down, and not while a node that
/// affects readiness is not up (see [`Child::affects_readiness`](crate::Child::affects_readiness)).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Readiness {
    /// Ready for traffic.
    pub ready: bool,
    /// Not ready because a shutdown is coming or under way.
    pub draining: bool,
    /// The nodes keeping it from being ready, sorted by DN (empty while
    /// draining: those are not asked for).
    pub not_ready: Vec<NodeInfo>,
}
