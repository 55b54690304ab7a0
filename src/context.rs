//! [`Context`]: what a runnable sees of the tree during one incarnation.
//!
//! A context belongs to one incarnation of one node. Its signal phase lives
//! here, in an atomic, so that [`Context::signal`] can answer synchronously and
//! exactly; the processor is told of every accepted signal by message and
//! reads the final phase from the exit report.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actix::Addr;
use tokio_util::sync::CancellationToken;

use crate::error::{RunError, SignalError};
use crate::processor::{Processor, SignalMsg, StartGroup};
use crate::runnable::{Group, Runnable};
use crate::state::{NodeState, Signal};
use crate::tree::NodeKey;

const NEW: u8 = 0;
const HEALTHY: u8 = 1;
const DONE: u8 = 2;
const EXITED: u8 = 3;

/// A runnable's handle on its node: its name, its cancellation, its signals
/// and its children. Cheap to clone; `Send + Sync`, so it can be moved into
/// tasks the runnable spawns.
///
/// ```no_run
/// use actix_supervisor::{Context, RunResult, Signal};
///
/// async fn listener(ctx: Context) -> RunResult {
///     // Children may only be started before Healthy.
///     ctx.run("acceptor", |ctx: Context| async move {
///         ctx.signal(Signal::Healthy)?;
///         ctx.cancelled().await;
///         Ok(())
///     })
///     .await?;
///     ctx.signal(Signal::Healthy)?;
///     ctx.cancelled().await;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    dn: Arc<str>,
    node: NodeKey,
    incarnation: u64,
    token: CancellationToken,
    phase: AtomicU8,
    misuse: Mutex<Option<SignalError>>,
    processor: Addr<Processor>,
}

impl Context {
    pub(crate) fn new(
        dn: Arc<str>,
        node: NodeKey,
        incarnation: u64,
        token: CancellationToken,
        processor: Addr<Processor>,
    ) -> Context {
        Context {
            inner: Arc::new(Inner {
                dn,
                node,
                incarnation,
                token,
                phase: AtomicU8::new(NEW),
                misuse: Mutex::new(None),
                processor,
            }),
        }
    }

    /// The node's distinguished name, e.g. `root.http.listener`.
    pub fn dn(&self) -> &str {
        &self.inner.dn
    }

    /// Resolves when this node must stop: it died, a group sibling died, an
    /// ancestor is restarting, or the supervisor is shutting down. Whatever the
    /// runnable returns afterwards counts as CANCELED.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.token.clone().cancelled_owned()
    }

    /// `true` once [`cancelled`](Self::cancelled) has resolved or would resolve at once.
    pub fn is_cancelled(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Starts one child named `name`: a group of one.
    pub async fn run(&self, name: &str, r: impl Runnable) -> Result<(), RunError> {
        self.run_group(Group::new().with(name, r)).await
    }

    /// Starts a group of children, in the order they were added. Only allowed
    /// while this node is NEW, i.e. before it signals Healthy. The group
    /// starts whole or not at all.
    pub async fn run_group(&self, group: Group) -> Result<(), RunError> {
        let dn = || self.inner.dn.to_string();
        match self.inner.phase.load(Ordering::Acquire) {
            NEW => {}
            EXITED => return Err(RunError::Stale { dn: dn() }),
            _ => {
                return Err(RunError::NotNew {
                    dn: dn(),
                    state: NodeState::Healthy,
                })
            }
        }
        if self.is_cancelled() {
            return Err(RunError::Cancelled { dn: dn() });
        }
        let msg = StartGroup {
            node: self.inner.node,
            dn: self.inner.dn.clone(),
            incarnation: self.inner.incarnation,
            group,
        };
        match self.inner.processor.send(msg).await {
            Ok(res) => res,
            Err(_) => Err(RunError::ShutDown { dn: dn() }),
        }
    }

    /// Tells the supervisor about this runnable: see [`Signal`].
    ///
    /// A refused signal is returned *and* makes this incarnation's exit a death
    /// (DEAD) whose reason is the returned error.
    pub fn signal(&self, signal: Signal) -> Result<(), SignalError> {
        let (from, to) = match signal {
            Signal::Healthy => (NEW, HEALTHY),
            Signal::Done => (HEALTHY, DONE),
        };
        let phase = &self.inner.phase;
        if let Err(actual) = phase.compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire) {
            let dn = self.inner.dn.to_string();
            let err = match (signal, actual) {
                (_, EXITED) => return Err(SignalError::Stale { dn }),
                (Signal::Healthy, _) => SignalError::HealthyNotNew {
                    dn,
                    state: NodeState::Healthy,
                },
                (Signal::Done, NEW) => SignalError::DoneNotHealthy { dn },
                (Signal::Done, _) => SignalError::DoneTwice { dn },
            };
            self.inner
                .misuse
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(|| err.clone());
            return Err(err);
        }
        self.inner.processor.do_send(SignalMsg {
            node: self.inner.node,
            incarnation: self.inner.incarnation,
            signal,
        });
        Ok(())
    }

    pub(crate) fn node(&self) -> NodeKey {
        self.inner.node
    }

    pub(crate) fn incarnation(&self) -> u64 {
        self.inner.incarnation
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.inner.token
    }

    /// Ends the incarnation: later signals and `run` calls are refused as stale.
    /// Returns whether Done was signalled, and the first misuse.
    pub(crate) fn finish(&self) -> (bool, Option<SignalError>) {
        let done = self.inner.phase.swap(EXITED, Ordering::AcqRel) == DONE;
        let misuse = self
            .inner
            .misuse
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        (done, misuse)
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("dn", &self.inner.dn)
            .field("incarnation", &self.inner.incarnation)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
