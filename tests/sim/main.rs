//! A deterministic simulation of the whole supervisor, checked against a
//! reference model of the policy.
//!
//! Each seed draws a tree (shape, strategies, restart types, intensities,
//! ordered start and stop, stop modes, start deadlines, maybe a dynamic
//! node), starts a supervisor on this test's one arbiter under tokio's
//! paused clock, and takes a thousand steps, each decided by the seeded
//! RNG: a command to a running runnable (signal Healthy or Done, return Ok
//! or an error, panic, misuse a signal, ignore its cancellation, spawn a
//! panicking task), a restart on request, a dynamic child started,
//! terminated or restarted, the clock moved on, or a shutdown. After every
//! step the supervisor's snapshot must equal the model's (`model.rs`), and
//! at the end the invariants must hold: no DN ran two incarnations at once,
//! every acknowledged start was polled, every cancelled runnable that
//! could see it saw it, every exit reached the sinks once, nothing is live
//! after the shutdown.
//!
//! Everything runs on one thread and the clock only moves when the driver
//! moves it, so a seed replays exactly: `SIM_SEED=<seed> cargo test --test
//! sim` runs one seed and prints its trace. `SIM_SEEDS=<n>` runs more
//! seeds than the default budget, `SIM_STEPS=<n>` more steps.

mod model;
mod shape;
mod world;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_supervisor::testing::InMemoryMetrics;
use actix_supervisor::{Backoff, Ended, NodeInfo, RunError, Supervisor};
use tokio::time::Instant;

use model::{Model, Phase, Refusal};
use shape::{Ms, Shape, BACKOFF_INITIAL, BACKOFF_MAX, DEFAULT_STOP};
use world::{Cmd, World, SIM_PANIC};

/// Seeds and steps `cargo test` runs (CI runs 500 seeds in release:
/// `SIM_SEEDS=500 cargo test --release --test sim`).
const SEEDS: u64 = 40;
const STEPS: usize = 1000;

/// Seeds that caught a mistake (a defect planted in the policy, see
/// `docs/reliability.md`, or a real one), run on every `cargo test`.
const CAUGHT: [u64; 4] = [1, 2, 3, 657];

/// Consecutive yields with nothing happening before the tree counts as
/// settled at this instant.
const QUIET_YIELDS: u32 = 8;

/// Names the driver gives dynamic children.
const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

/// One run's outcome: its trace, and the first disagreement if any.
pub struct Run {
    pub trace: Vec<String>,
    pub failure: Option<String>,
}

/// A request sent to the supervisor, answered later (a spawned task).
type Answer = Arc<Mutex<Option<Result<(), RunError>>>>;

struct Sim {
    rng: fastrand::Rng,
    world: Arc<World>,
    model: Model,
    sup: Supervisor,
    metrics: Arc<InMemoryMetrics>,
    t0: Instant,
    trace: Vec<String>,
    /// Terminations not answered yet, with the model's prediction.
    pending: Vec<(String, Answer)>,
    finished: bool,
}

fn refusal(e: &RunError) -> Refusal {
    match e {
        RunError::NotFound { .. } => Refusal::NotFound,
        RunError::Full { .. } => Refusal::Full,
        RunError::DuplicateName { .. } => Refusal::Duplicate,
        _ => Refusal::NotRunning,
    }
}

impl Sim {
    fn now(&self) -> Ms {
        Instant::now().duration_since(self.t0).as_millis() as Ms
    }

    fn note(&mut self, line: String) {
        self.trace.push(format!("{:>7}ms {line}", self.now()));
    }

    /// Lets everything runnable at this instant run to a stop: yields
    /// (which never lets the paused clock move) until nothing happened for
    /// [`QUIET_YIELDS`] in a row.
    async fn settle(&self) {
        let sign = || (self.world.book().polls, self.metrics.events());
        let (mut last, mut quiet) = (sign(), 0);
        while quiet < QUIET_YIELDS {
            tokio::task::yield_now().await;
            let now = sign();
            if now == last {
                quiet += 1;
            } else {
                (last, quiet) = (now, 0);
            }
        }
    }

    /// Sends a request as a task of its own (awaiting it here could let the
    /// runtime go idle, and the paused clock with it), settles, and gives
    /// its answer if it came.
    async fn ask<F>(&self, request: F) -> Option<Result<(), RunError>>
    where
        F: std::future::Future<Output = Result<(), RunError>> + 'static,
    {
        let answer: Answer = Arc::default();
        let slot = answer.clone();
        actix_rt::spawn(async move {
            let r = request.await;
            *slot.lock().unwrap() = Some(r);
        });
        self.settle().await;
        let r = answer.lock().unwrap().take();
        r
    }

    /// The supervisor's snapshot against the model.
    async fn compare(&mut self) -> Result<(), String> {
        let snapshot: Vec<NodeInfo> = self.sup.snapshot().await;
        let mut digest = String::new();
        let mut problems = Vec::new();
        let mut seen = 0;
        for info in &snapshot {
            let Some(m) = self.model.nodes.get(&info.dn) else {
                problems.push(format!("{} is in the tree, not in the model", info.dn));
                continue;
            };
            seen += 1;
            let want_state = self.model.reported(&info.dn);
            let want_at = m.waiting.map(|(_, at)| at);
            let got_at = info
                .restart_at
                .map(|t| t.duration_since(self.t0).as_millis() as Ms);
            let got_kind = info.last_exit.as_ref().map(|e| e.kind);
            if info.state != want_state
                || info.restarts != m.restarts
                || got_at != want_at
                || got_kind != m.last_kind
            {
                problems.push(format!(
                    "{}: supervisor {} restarts {} restart_at {got_at:?} last {got_kind:?}; model {want_state} restarts {} restart_at {want_at:?} last {:?}",
                    info.dn, info.state, info.restarts, m.restarts, m.last_kind
                ));
            }
            let _ = write!(
                digest,
                " {}:{}{}{}",
                info.dn.trim_start_matches("root").trim_start_matches('.'),
                &info.state.to_string()[..2],
                info.restarts,
                got_at.map(|t| format!("@{t}")).unwrap_or_default()
            );
        }
        if seen != self.model.nodes.len() {
            let tree: Vec<&str> = snapshot.iter().map(|n| n.dn.as_str()).collect();
            for dn in self.model.nodes.keys() {
                if !tree.contains(&dn.as_str()) {
                    problems.push(format!("{dn} is in the model, not in the tree"));
                }
            }
        }
        self.trace.push(format!("          tree{digest}"));
        if let Err(e) = self.books() {
            problems.push(e);
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(problems.join("\n")),
        }
    }

    /// Moves the clock on by `d`, stopping at every instant the model has
    /// something due, so that each happens at its own time.
    async fn advance(&mut self, d: Ms) -> Result<(), String> {
        let target = self.model.now + d;
        loop {
            let next = self.model.next_timer().filter(|t| *t <= target);
            let to = next.unwrap_or(target);
            let step = to - self.model.now;
            if step > 0 {
                tokio::time::advance(Duration::from_millis(step)).await;
            }
            self.settle().await;
            self.model.advance_to(to);
            self.compare().await?;
            if next.is_none() {
                return Ok(());
            }
        }
    }

    /// One step, drawn from the RNG.
    async fn step(&mut self) -> Result<(), String> {
        let dynamic = self.model.shape.dynamic.is_some();
        let roll = self.rng.u32(0..100);
        let targets = self.model.commandable();
        if roll < 50 && !targets.is_empty() {
            let dn = targets[self.rng.usize(0..targets.len())].clone();
            let cmd = self.command_for(&dn);
            self.note(format!("{dn} <- {cmd:?}"));
            if !self.world.send(&dn, cmd) {
                return Err(format!(
                    "{dn} runs by the model, but has no inbox in the world"
                ));
            }
            self.settle().await;
            self.model.command(&dn, cmd);
        } else if roll < 70 {
            let d = [1, 10, 50, 100, 250, 700, 2000][self.rng.usize(0..7)];
            self.note(format!("advance {d}ms"));
            return self.advance(d).await;
        } else if roll < 78 {
            let mut dns: Vec<String> = self.model.nodes.keys().cloned().collect();
            dns.push("root.nowhere".into());
            let dn = dns[self.rng.usize(0..dns.len())].clone();
            let sup = self.sup.clone();
            let target = dn.clone();
            let got = self.ask(async move { sup.restart(&target).await }).await;
            let want = self.model.restart(&dn);
            self.note(format!("restart {dn} -> {got:?}"));
            self.check_answer(got, want)?;
        } else if dynamic && roll < 96 {
            self.dynamic_step(roll).await?;
        } else if roll >= 99 && self.rng.u32(0..20) == 0 {
            // Now and then a shutdown in the middle of things.
            return self.shut_down().await;
        } else {
            self.note("nothing".into());
        }
        self.compare().await
    }

    fn check_answer(
        &self,
        got: Option<Result<(), RunError>>,
        want: Result<(), Refusal>,
    ) -> Result<(), String> {
        let got = got.map(|r| r.map_err(|e| refusal(&e)));
        match got {
            Some(g) if g == want => Ok(()),
            other => Err(format!(
                "the supervisor answered {other:?}, the model {want:?}"
            )),
        }
    }

    async fn dynamic_step(&mut self, roll: u32) -> Result<(), String> {
        let (dn, _, _) = self.model.shape.dynamic.clone().expect("a dynamic node");
        let name = NAMES[self.rng.usize(0..NAMES.len())].to_string();
        let handle = self.sup.dynamic(&dn);
        if roll < 86 {
            let child = self.world.child(&format!("{dn}.{name}"));
            let got = self
                .ask(async move { handle.start_child(child).await.map(drop) })
                .await;
            let want = self.model.start_child(&name);
            self.note(format!("start_child {name} -> {got:?}"));
            self.check_answer(got, want)
        } else if roll < 92 {
            let answer: Answer = Arc::default();
            let slot = answer.clone();
            let n = name.clone();
            actix_rt::spawn(async move {
                let r = handle.terminate_child(&n).await;
                *slot.lock().unwrap() = Some(r);
            });
            self.settle().await;
            let want = self.model.terminate_child(&name);
            let got = answer.lock().unwrap().clone();
            self.note(format!("terminate_child {name} -> {got:?}"));
            match (want, got) {
                (Err(w), Some(Err(e))) if refusal(&e) == w => Ok(()),
                (Ok(()), None | Some(Ok(()))) => {
                    self.pending.push((name, answer));
                    Ok(())
                }
                (want, got) => Err(format!(
                    "terminate_child {name}: the supervisor answered {got:?}, the model {want:?}"
                )),
            }
        } else {
            let n = name.clone();
            let got = self
                .ask(async move { handle.restart_child(&n).await })
                .await;
            let want = self.model.restart_child(&name);
            self.note(format!("restart_child {name} -> {got:?}"));
            self.check_answer(got, want)
        }
    }

    /// A command that makes sense for `dn` now.
    fn command_for(&mut self, dn: &str) -> Cmd {
        let n = &self.model.nodes[dn];
        let cancelled = self.model.cancelled(dn);
        if n.phase == Phase::New && !cancelled && self.rng.u8(0..3) > 0 {
            return Cmd::Healthy;
        }
        let mut options = vec![Cmd::ReturnErr, Cmd::Panic, Cmd::Misuse, Cmd::ReturnOk];
        if n.phase == Phase::Healthy {
            options.extend([Cmd::Done, Cmd::Done]);
        }
        if !cancelled && !n.deaf {
            options.push(Cmd::TaskPanic);
            if n.spec.stop != shape::Stop::Infinity {
                options.extend([Cmd::Hang, Cmd::Hang]);
            }
        }
        options[self.rng.usize(0..options.len())]
    }

    /// Shuts down, moves the clock until the model has nothing live, and
    /// checks how the supervisor ended and what it left.
    async fn shut_down(&mut self) -> Result<(), String> {
        self.note("shutdown".into());
        let sup = self.sup.clone();
        let ended: Arc<Mutex<Option<Ended>>> = Arc::default();
        let slot = ended.clone();
        actix_rt::spawn(async move {
            sup.shutdown().await;
            *slot.lock().unwrap() = Some(sup.join().await);
        });
        self.settle().await;
        self.model.shutdown();
        self.compare().await?;
        while !self.model.finished() {
            let Some(next) = self.model.next_timer() else {
                return Err("the model never finishes: something waits forever".into());
            };
            let d = next - self.model.now;
            self.advance(d).await?;
        }
        self.settle().await;
        self.finished = true;
        let got = ended.lock().unwrap().clone();
        let want = if self.model.gave_up {
            "GaveUp"
        } else if self.model.stragglers > 0 {
            "Stragglers"
        } else {
            "ShutDown"
        };
        let got_name = match &got {
            Some(Ended::ShutDown) => "ShutDown",
            Some(Ended::GaveUp { .. }) => "GaveUp",
            Some(Ended::Stragglers { .. }) => "Stragglers",
            _ => "something else",
        };
        self.note(format!("ended {got:?}"));
        if got_name != want {
            return Err(format!("ended {got:?}, the model {want}"));
        }
        Ok(())
    }

    /// The world's and the sinks' books against the model's: checked after
    /// every step, so that a difference is found where it starts.
    fn books(&self) -> Result<(), String> {
        let book = self.world.book();
        if let Some(v) = book.violations.first() {
            return Err(v.clone());
        }
        if book.started != self.model.started {
            return Err(format!(
                "incarnations polled {:?}, the model started {:?}",
                book.started, self.model.started
            ));
        }
        if book.saw_cancel != self.model.saw_cancel {
            return Err(format!(
                "cancellations seen {:?}, the model {:?}",
                book.saw_cancel, self.model.saw_cancel
            ));
        }
        let mut exits: BTreeMap<String, u64> = BTreeMap::new();
        for (dn, _) in self.metrics.exits() {
            *exits.entry(dn).or_default() += 1;
        }
        if exits != self.model.exits {
            return Err(format!(
                "exits told to the sinks {exits:?}, the model {:?}",
                self.model.exits
            ));
        }
        Ok(())
    }

    /// The invariants over the whole run.
    fn invariants(&self) -> Result<(), String> {
        self.books()?;
        if self.finished && self.world.running() != 0 {
            return Err(format!(
                "{} runnables still run after the shutdown",
                self.world.running()
            ));
        }
        for (name, answer) in &self.pending {
            if self.finished && !matches!(*answer.lock().unwrap(), Some(Ok(()))) {
                return Err(format!("terminate_child {name} never answered Ok"));
            }
        }
        Ok(())
    }
}

/// Runs one seed for `steps` steps (then shuts down).
pub fn run(seed: u64, steps: usize) -> Run {
    // Paused from the runtime's start, so that the clock and the timer
    // wheel share their origin: a deadline in whole ms from now is a whole
    // tick, never rounded up.
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a paused tokio runtime")
    });
    system.block_on(async move {
        let mut rng = fastrand::Rng::with_seed(seed);
        let shape = Shape::random(&mut rng);
        let world = World::new(shape.clone());
        let metrics = Arc::new(InMemoryMetrics::default());
        let mut builder = Supervisor::builder()
            .current_arbiter()
            .stall_watch(None)
            .metrics(metrics.clone())
            .shutdown_timeout(Duration::from_millis(DEFAULT_STOP))
            .backoff(
                Backoff::default()
                    .initial(Duration::from_millis(BACKOFF_INITIAL))
                    .multiplier(2.0)
                    .max(Duration::from_millis(BACKOFF_MAX))
                    .jitter(0.0),
            );
        if let Some((n, within)) = shape.default_intensity {
            builder = builder.max_restarts(n, Duration::from_millis(within));
        }
        let t0 = Instant::now();
        let sup = builder.start(world.runnable("root"));
        let mut sim = Sim {
            rng,
            world,
            model: Model::new(shape.clone()),
            sup,
            metrics,
            t0,
            trace: vec![format!("seed {seed}: {shape:?}")],
            pending: Vec::new(),
            finished: false,
        };
        sim.settle().await;
        let mut failure = sim
            .compare()
            .await
            .err()
            .map(|e| format!("at the start: {e}"));
        let mut step = 0;
        while failure.is_none() && step < steps && !sim.finished {
            sim.trace.push(format!("step {step}"));
            if let Err(e) = sim.step().await {
                failure = Some(format!("at step {step}: {e}"));
            }
            step += 1;
        }
        if failure.is_none() && !sim.finished {
            if let Err(e) = sim.shut_down().await {
                failure = Some(format!("at the shutdown: {e}"));
            }
        }
        if failure.is_none() {
            failure = sim.invariants().err().map(|e| format!("at the end: {e}"));
        }
        Run {
            trace: sim.trace,
            failure,
        }
    })
}

/// Keeps the simulation's own panics (the runnables told to panic) off the
/// output; anything else still reaches the default hook.
fn quiet_sim_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied());
        if message != Some(SIM_PANIC) {
            default(info);
        }
    }));
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The report of a failed seed: the seed, the step, the last events.
fn report(seed: u64, run: &Run) -> String {
    let tail = run.trace.len().saturating_sub(60);
    format!(
        "seed {seed} failed {}\nreplay: SIM_SEED={seed} cargo test --test sim\nlast events:\n{}",
        run.failure.as_deref().unwrap_or(""),
        run.trace[tail..].join("\n")
    )
}

#[test]
fn the_supervisor_agrees_with_the_model() {
    quiet_sim_panics();
    let steps = env("SIM_STEPS").map_or(STEPS, |s| s as usize);
    if let Some(seed) = env("SIM_SEED") {
        let run = run(seed, steps);
        println!("{}", run.trace.join("\n"));
        assert!(run.failure.is_none(), "{}", report(seed, &run));
        return;
    }
    let seeds = env("SIM_SEEDS").unwrap_or(SEEDS);
    let first = env("SIM_FIRST_SEED").unwrap_or(1);
    let mut steps_run = 0;
    for seed in first..first + seeds {
        let run = run(seed, steps);
        steps_run += run.trace.iter().filter(|l| l.starts_with("step ")).count();
        assert!(run.failure.is_none(), "{}", report(seed, &run));
    }
    println!("sim: {seeds} seeds from {first}, {steps_run} steps, all agreed with the model");
}

/// The seeds that caught the mistakes planted in the policy (and the
/// acknowledged-start defect, put back) stay clean.
#[test]
fn the_seeds_that_caught_mistakes_agree() {
    quiet_sim_panics();
    for seed in CAUGHT {
        let run = run(seed, STEPS);
        assert!(run.failure.is_none(), "{}", report(seed, &run));
    }
}

/// The same seed replays the same trace, byte for byte.
#[test]
fn a_seed_replays_byte_for_byte() {
    quiet_sim_panics();
    let seed = env("SIM_SEED").unwrap_or(7);
    let once = run(seed, 300).trace.join("\n");
    let again = run(seed, 300).trace.join("\n");
    assert!(once.len() > 1000, "a trace worth comparing");
    assert_eq!(once, again, "seed {seed} did not replay");
}
