//! Tasks tied to an incarnation: [`Context::spawn`](crate::Context::spawn).
//!
//! A task runs on the arbiter that spawns it (the node's worker, when the
//! runnable spawns it), with the node's logger marked for `log` capture.
//! When the incarnation ends its tasks end too: if the node was cancelled
//! they get until the node's stop deadline to finish (they see
//! `ctx.cancelled()`), and are aborted then; otherwise (the runnable returned
//! by itself, or died) they are aborted at once. A task's panic is the
//! node's death: the node is cancelled, and its exit is reported as that
//! panic, naming the task.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};

use futures::channel::oneshot;
use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::capture::Scoped;
use crate::api::lease::{Fenced, Tenure};
use crate::api::logger::Logger;
use crate::model::exit::panic_message;

/// An incarnation's tasks. Made on its first `spawn`.
#[derive(Default)]
pub(crate) struct Tasks {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// How many were spawned: tasks are named by their number.
    spawned: u32,
    /// The tasks not known to have ended, by number. They stay here while
    /// they are awaited, so that an abort at the deadline still reaches them.
    running: Vec<(u32, JoinHandle<()>)>,
    /// The first task panic, and whether the node was not cancelled yet
    /// then (so the panic is its death, not a late complaint).
    failure: Option<(String, bool)>,
    /// Tasks still running at the node's stop deadline, aborted then.
    aborted_at_deadline: u32,
}

impl Tasks {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns `task` on the current arbiter; see the module docs.
    pub fn spawn<F>(
        self: &std::sync::Arc<Self>,
        task: F,
        logger: Logger,
        node: &CancellationToken,
        fence: Option<Tenure>,
    ) -> TaskHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (tx, rx) = oneshot::channel();
        if actix_rt::Arbiter::try_current().is_none() {
            // Not on an arbiter (a plain thread): nothing to run it on.
            let _ = tx.send(Err(TaskError::NotOnArbiter));
            return TaskHandle { rx };
        }
        let number = {
            let mut state = self.state();
            state.spawned += 1;
            state.spawned
        };
        let (tasks, node) = (self.clone(), node.clone());
        // The task runs in the incarnation's span, like the runnable.
        #[cfg(feature = "tracing")]
        let span = ::tracing::Span::current();
        let run = async move {
            let scoped = Scoped {
                inner: Box::pin(task),
                logger,
                #[cfg(feature = "tracing")]
                span,
            };
            let caught = AssertUnwindSafe(scoped).catch_unwind();
            // A singleton's task is not polled past its tenure's fence.
            let caught = match fence {
                Some(tenure) => match (Fenced {
                    inner: caught,
                    tenure,
                })
                .await
                {
                    Ok(caught) => caught,
                    Err(_) => {
                        let _ = tx.send(Err(TaskError::Stopped));
                        return;
                    }
                },
                None => caught.await,
            };
            match caught {
                Ok(value) => {
                    let _ = tx.send(Ok(value));
                }
                Err(payload) => {
                    let message = panic_message(&*payload);
                    let why = format!("task {number} panicked: {message}");
                    tasks.fail(why, &node);
                    let _ = tx.send(Err(TaskError::Panicked(message)));
                }
            }
        };
        let handle = actix_rt::spawn(run);
        let mut state = self.state();
        state.running.retain(|(_, h)| !h.is_finished());
        state.running.push((number, handle));
        TaskHandle { rx }
    }

    /// Records the first failure and cancels the node, which ends the
    /// incarnation.
    fn fail(&self, why: String, node: &CancellationToken) {
        let stopping_already = node.is_cancelled();
        self.state().failure.get_or_insert((why, !stopping_already));
        node.cancel();
    }

    /// The panic that killed the node, if a task's panic came before any
    /// other cancellation.
    pub fn death(&self) -> Option<String> {
        match &self.state().failure {
            Some((why, true)) => Some(why.clone()),
            _ => None,
        }
    }

    /// The numbers of the tasks still running (`task 2`).
    pub fn running(&self) -> Vec<u32> {
        let mut state = self.state();
        state.running.retain(|(_, h)| !h.is_finished());
        state.running.iter().map(|(n, _)| *n).collect()
    }

    /// Resolves once every task spawned so far has ended. The handles stay
    /// in place while awaited (a dropped join handle detaches its task: the
    /// abort at the deadline must still find it).
    pub async fn join(&self) {
        std::future::poll_fn(|cx| {
            let mut state = self.state();
            state
                .running
                .retain_mut(|(_, h)| Pin::new(h).poll(cx).is_pending());
            match state.running.is_empty() {
                true => Poll::Ready(()),
                false => Poll::Pending,
            }
        })
        .await
    }

    /// Aborts the tasks still running: at once when the incarnation ended
    /// by itself, or (`at_deadline`) once the stop deadline has passed,
    /// which counts them as aborted at the deadline.
    pub fn abort(&self, at_deadline: bool) {
        let mut state = self.state();
        let running = state
            .running
            .iter()
            .filter(|(_, h)| !h.is_finished())
            .count();
        for (_, task) in state.running.drain(..) {
            task.abort();
        }
        if at_deadline {
            state.aborted_at_deadline += running as u32;
        }
    }

    /// How many tasks were still running at the stop deadline.
    pub fn aborted_at_deadline(&self) -> u32 {
        self.state().aborted_at_deadline
    }
}

/// A task spawned with [`Context::spawn`](crate::Context::spawn): awaits its
/// output. Dropping the handle does not stop the task (the incarnation's end
/// does).
#[derive(Debug)]
pub struct TaskHandle<T> {
    rx: oneshot::Receiver<Result<T, TaskError>>,
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.rx
            .poll_unpin(cx)
            .map(|r| r.unwrap_or(Err(TaskError::Stopped)))
    }
}

/// Why a [`TaskHandle`] has no output.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked (which is also its node's death); the message.
    Panicked(String),
    /// The incarnation ended first and the task was stopped.
    Stopped,
    /// `spawn` was called off an actix arbiter (a plain thread), where there
    /// is nothing to run the task on: it was not started.
    NotOnArbiter,
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskError::Panicked(message) => write!(f, "the task panicked: {message}"),
            TaskError::Stopped => write!(f, "the task was stopped with its incarnation"),
            TaskError::NotOnArbiter => write!(
                f,
                "the task was not started: spawn was called off an actix arbiter"
            ),
        }
    }
}

impl std::error::Error for TaskError {}
