//! For the tests of code that uses the crate (the `test-util` feature): a
//! harness for unit tests of runnables, and [`InMemoryMetrics`], a sink that
//! keeps the last state of every DN. The settle knobs
//! ([`Supervisor::wait_settled`], [`SupervisorBuilder::settle_window`]) are
//! behind the same feature.
//!
//! ```toml
//! [dev-dependencies]
//! actix-supervisor = { version = "0.1", features = ["test-util"] }
//! ```
//!
//! A harness for unit tests of runnables:
//!
//! [`TestHarness::start`] runs one runnable as the root of a fresh supervisor
//! with panics propagated and every log entry of the tree printed with
//! `eprintln!` (so `cargo test` shows them for failing tests only).
//! [`TestHarness::finish`] cancels the tree and waits until nothing is live,
//! naming what is still live every 3 s (on stderr and at the DN
//! [`HARNESS_DN`] of the log tree); it fails the test (panics)
//! if the runnable returned an error that was not a reaction to cancellation,
//! or panicked.
//!
//! ```
//! use actix_supervisor::testing::TestHarness;
//! use actix_supervisor::{node_info, Context, RunResult, Signal};
//!
//! async fn under_test(ctx: Context) -> RunResult {
//!     node_info!(ctx, "up");
//!     ctx.signal(Signal::Healthy)?;
//!     ctx.cancelled().await;
//!     Ok(())
//! }
//!
//! actix_rt::System::new().block_on(async {
//!     let h = TestHarness::start(under_test);
//!     h.supervisor().wait_settled().await;
//!     h.finish().await;
//! });
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::api::context::Context;
use crate::api::runnable::Runnable;
use crate::api::supervisor::Supervisor;
use crate::builder::SupervisorBuilder;
use crate::model::error::RunResult;
use crate::model::logtree::LogQuery;
use crate::model::metrics::Metrics;
use crate::model::records::{ExitKind, NodeState};
use tokio::sync::mpsc;

/// The DN the harness's own messages are logged at.
pub const HARNESS_DN: &str = "testing";

/// How often `finish` names the runnables that are still live.
const STRAGGLER_REPORT: Duration = Duration::from_secs(3);

/// One runnable under a fresh supervisor, for a test. See the module docs.
pub struct TestHarness {
    sup: Supervisor,
    printer: tokio::task::JoinHandle<()>,
    /// Deaths seen, with [`start_expecting_deaths`](Self::start_expecting_deaths).
    deaths: Option<tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>>,
}

impl std::fmt::Debug for TestHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHarness")
            .field("supervisor", &self.sup)
            .finish_non_exhaustive()
    }
}

impl TestHarness {
    /// Starts `r` as the root of a new supervisor on the current arbiter's
    /// System. Must be called inside a running actix System (as in
    /// `#[actix_rt::test]`).
    pub fn start(r: impl Runnable) -> TestHarness {
        Self::start_with(Supervisor::builder(), r)
    }

    /// Like [`start`](Self::start), with a builder of your own (a backoff,
    /// `current_arbiter()` for virtual time, ...). Panics are propagated
    /// whatever the builder says.
    pub fn start_with(builder: SupervisorBuilder, r: impl Runnable) -> TestHarness {
        let sup = builder
            .propagate_panics(true)
            .start(FailOnError(Box::new(r)));
        Self::around(sup, None)
    }

    /// For a runnable meant to fail: errors and panics anywhere in the tree
    /// are deaths, restarted as usual, not test failures. The test checks
    /// them with [`await_death`](Self::await_death).
    pub fn start_expecting_deaths(builder: SupervisorBuilder, r: impl Runnable) -> TestHarness {
        let (tx, rx) = mpsc::unbounded_channel();
        let sup = builder.metrics(Deaths(tx)).start(r);
        Self::around(sup, Some(tokio::sync::Mutex::new(rx)))
    }

    fn around(
        sup: Supervisor,
        deaths: Option<tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>>,
    ) -> TestHarness {
        let mut stream = sup.logs().subscribe(LogQuery::everything());
        let printer = actix_rt::spawn(async move {
            while let Some(event) = stream.next().await {
                eprintln!("{event}");
            }
        });
        TestHarness {
            sup,
            printer,
            deaths,
        }
    }

    /// Waits for the next death of `dn` (other deaths are passed over) and
    /// returns its reason.
    ///
    /// # Panics
    /// When the harness was not started with
    /// [`start_expecting_deaths`](Self::start_expecting_deaths), or after
    /// 10 s without that death: both fail the test.
    pub async fn await_death(&self, dn: &str) -> String {
        let Some(deaths) = &self.deaths else {
            panic!("await_death needs TestHarness::start_expecting_deaths");
        };
        let mut deaths = deaths.lock().await;
        let wait = async {
            while let Some(died) = deaths.recv().await {
                if died == dn {
                    return self
                        .sup
                        .snapshot_of(dn)
                        .await
                        .and_then(|n| n.into_iter().next().and_then(|n| n.last_error));
                }
            }
            None
        };
        match tokio::time::timeout(DEATH_WAIT, wait).await {
            Ok(Some(reason)) => reason,
            _ => panic!("{dn} did not die within {DEATH_WAIT:?}"),
        }
    }

    /// Resolves once the tree is ready by `/readyz`'s rule: the root is
    /// HEALTHY, and every node that affects readiness (by default, every
    /// permanent one; see [`Child::affects_readiness`]) is HEALTHY or DONE
    /// and not waiting out a backoff.
    ///
    /// # Panics
    /// When it is not ready within [`READY_WAIT`], naming each node that is
    /// not, with its state and last error.
    ///
    /// [`Child::affects_readiness`]: crate::Child::affects_readiness
    pub async fn wait_ready(&self) {
        if let Err(not_ready) = self.sup.wait_ready(READY_WAIT).await {
            panic!("{not_ready}");
        }
    }

    /// The supervisor running the test.
    pub fn supervisor(&self) -> &Supervisor {
        &self.sup
    }

    /// Cancels the tree and waits until nothing is live.
    ///
    /// # Panics
    /// When the runnable under test failed (returned an error before it was
    /// cancelled, or panicked anywhere in the tree): that is the test failing.
    pub async fn finish(self) {
        let shutdown = self.sup.shutdown();
        futures::pin_mut!(shutdown);
        loop {
            match tokio::time::timeout(STRAGGLER_REPORT, &mut shutdown).await {
                Ok(()) => break,
                Err(_) => {
                    let live = self.sup.live_runnables().await;
                    let msg = format!(
                        "still waiting for {} live runnables: {}",
                        live.len(),
                        live.join(", ")
                    );
                    eprintln!("test harness: {msg}");
                    // Also in the log tree, where a test can read it back.
                    self.sup
                        .logs()
                        .push(&HARNESS_DN.into(), Some(log::Level::Warn), msg, None);
                }
            }
        }
        self.printer.abort();
    }
}

/// How long [`TestHarness::wait_ready`] waits.
pub const READY_WAIT: Duration = Duration::from_secs(10);

/// How long [`TestHarness::await_death`] waits.
const DEATH_WAIT: Duration = Duration::from_secs(10);

/// Tells the harness of every death.
struct Deaths(mpsc::UnboundedSender<String>);

impl Metrics for Deaths {
    fn node_state(&self, dn: &str, state: NodeState) {
        if state == NodeState::Dead {
            let _ = self.0.send(dn.to_string());
        }
    }
}

/// Turns an error of the runnable under test into a panic, which the
/// supervisor propagates to the harness.
struct FailOnError(Box<dyn Runnable>);

impl Runnable for FailOnError {
    fn run(&mut self, ctx: Context) -> futures::future::LocalBoxFuture<'static, RunResult> {
        let fut = self.0.run(ctx.clone());
        Box::pin(async move {
            let res = fut.await;
            if let Err(e) = &res {
                if !ctx.is_cancelled() {
                    panic!("the runnable under test ({}) failed: {e}", ctx.dn());
                }
            }
            res
        })
    }
}

/// The last state of a DN and when it was entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnState {
    /// The state entered last.
    pub state: NodeState,
    /// When it was entered.
    pub transition: Instant,
}

/// Keeps what the sinks are told: the last state and transition time of
/// every DN ever seen ([`dns`](Self::dns)), every transition in order
/// ([`transitions`](Self::transitions)) and every exit with its kind
/// ([`exits`](Self::exits)). Unbounded: for tests.
///
/// ```
/// use std::sync::Arc;
/// use actix_supervisor::testing::InMemoryMetrics;
/// use actix_supervisor::{ExitKind, Metrics, NodeState};
///
/// let m = Arc::new(InMemoryMetrics::default());
/// m.node_state("root", NodeState::Healthy);
/// m.node_exited("root", ExitKind::Cancelled);
/// assert_eq!(m.dns()["root"].state, NodeState::Healthy);
/// assert_eq!(m.transitions(), [("root".to_string(), NodeState::Healthy)]);
/// assert_eq!(m.exits(), [("root".to_string(), ExitKind::Cancelled)]);
/// ```
#[derive(Default, Debug)]
pub struct InMemoryMetrics {
    seen: Mutex<Seen>,
}

#[derive(Default, Debug)]
struct Seen {
    dns: HashMap<String, DnState>,
    transitions: Vec<(String, NodeState)>,
    exits: Vec<(String, ExitKind)>,
}

impl InMemoryMetrics {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the current table: each DN's last state.
    pub fn dns(&self) -> HashMap<String, DnState> {
        self.seen().dns.clone()
    }

    /// Every transition so far, in the order the sinks were told.
    pub fn transitions(&self) -> Vec<(String, NodeState)> {
        self.seen().transitions.clone()
    }

    /// Every exit so far, with its kind, in order.
    pub fn exits(&self) -> Vec<(String, ExitKind)> {
        self.seen().exits.clone()
    }

    /// How many transitions and exits it has been told of so far: a cheap
    /// sign that something happened (without copying the lists).
    pub fn events(&self) -> usize {
        let seen = self.seen();
        seen.transitions.len() + seen.exits.len()
    }
}

impl Metrics for InMemoryMetrics {
    fn node_state(&self, dn: &str, state: NodeState) {
        let entry = DnState {
            state,
            transition: Instant::now(),
        };
        let mut seen = self.seen();
        seen.transitions.push((dn.to_string(), state));
        match seen.dns.get_mut(dn) {
            Some(e) => *e = entry,
            None => {
                seen.dns.insert(dn.to_string(), entry);
            }
        }
    }

    fn node_exited(&self, dn: &str, kind: ExitKind) {
        self.seen().exits.push((dn.to_string(), kind));
    }
}
