//! OS processes as tree nodes (Unix).
//!
//! A [`Command`] is a runnable that starts a process on every (re)start:
//! - it is HEALTHY once spawned, or once a stdout line passes the readiness
//!   check you give ([`Command::ready_when`]);
//! - stdout and stderr go line by line, as raw lines, into the node's log at
//!   its DN (invalid UTF-8 is replaced);
//! - the process's exit is the runnable's exit: a non-zero or signal exit is a
//!   death whose reason holds the exit status and the last lines of stderr. A
//!   zero exit is a death too ("exited while it should run"), unless the
//!   command was marked [`Command::done_on_success`], which makes it DONE;
//! - cancellation sends the stop signal (SIGTERM by default), waits the grace
//!   period (5 s by default), then sends SIGKILL; the process is reaped
//!   before the node counts as CANCELLED. The grace period is honoured even
//!   when it exceeds the node's stop deadline (the supervisor's
//!   `shutdown_timeout`): the node's deadline is widened to the grace plus
//!   [`GRACE_MARGIN`]. With [`Shutdown::Brutal`] the
//!   process is killed with SIGKILL at once;
//! - the process never outlives its node: if the node's future is dropped
//!   (aborted after the shutdown timeout, or the supervisor's System stops),
//!   it is killed with SIGKILL, and with [`Command::kill_process_group`] its
//!   whole process group is.
//!
//! [`Shutdown::Brutal`]: crate::Shutdown::Brutal
//!
//! A command that cannot be started (missing, not executable) is a death
//! with the OS error as its reason, retried with backoff like any other.
//!
//! ```no_run
//! use actix_supervisor::process::Command;
//! use actix_supervisor::{Context, RunResult, Signal};
//!
//! async fn root(ctx: Context) -> RunResult {
//!     let server = Command::new("python3")
//!         .args(["-m", "http.server", "8000"])
//!         .ready_when(|line| line.contains("Serving HTTP"));
//!     let signals = server.signals();
//!     ctx.run("http", server).await?;
//!     ctx.signal(Signal::Healthy)?;
//!     // Later: ask it to reload.
//!     let _ = signals.send(libc::SIGHUP);
//!     ctx.cancelled().await;
//!     Ok(())
//! }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::LocalBoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use crate::api::context::Context;
use crate::api::logger::Logger;
use crate::api::runnable::Runnable;
use crate::model::error::RunResult;
use crate::model::policy::Shutdown;
use crate::model::records::{NodeKind, Signal};

/// How long output is still read after the process exited.
const PIPE_DRAIN: Duration = Duration::from_millis(200);

/// How much longer than its grace period a process node's stop deadline is
/// at least: time to reap the process after SIGKILL and report.
pub const GRACE_MARGIN: Duration = Duration::from_secs(1);

/// How many of the last stderr lines a death reason carries.
const STDERR_TAIL: usize = 10;

type ReadyCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A supervised OS process. See the [module docs](crate::process).
#[derive(Clone)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    stop_signal: i32,
    grace: Duration,
    group: bool,
    done_on_success: bool,
    ready: Option<ReadyCheck>,
    /// The running processes of this command and its clones, by the DN of
    /// the node that runs each: clones may run under several nodes.
    pids: Pids,
}

type Pids = Arc<Mutex<BTreeMap<Arc<str>, u32>>>;

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("stop_signal", &self.stop_signal)
            .field("grace", &self.grace)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl Command {
    /// `program`, looked up in `PATH` as `std::process::Command` does.
    pub fn new(program: impl Into<OsString>) -> Command {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stop_signal: libc::SIGTERM,
            grace: Duration::from_secs(5),
            group: false,
            done_on_success: false,
            ready: None,
            pids: Pids::default(),
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the process.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the process's working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// The signal sent first on cancellation. Default SIGTERM.
    pub fn stop_signal(mut self, signal: i32) -> Self {
        self.stop_signal = signal;
        self
    }

    /// How long after the stop signal SIGKILL follows. Default 5 s. When it
    /// does not fit in the node's stop deadline, the deadline is widened to
    /// the grace plus [`GRACE_MARGIN`], so the grace is always honoured.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Starts the process in a process group of its own and signals the whole
    /// group, so that its children are stopped (and killed) with it.
    pub fn kill_process_group(mut self, on: bool) -> Self {
        self.group = on;
        self
    }

    /// A zero exit makes the node DONE instead of DEAD.
    pub fn done_on_success(mut self, on: bool) -> Self {
        self.done_on_success = on;
        self
    }

    /// The node becomes HEALTHY on the first stdout line for which `check`
    /// is true, instead of as soon as the process is spawned.
    pub fn ready_when(mut self, check: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.ready = Some(Arc::new(check));
        self
    }

    /// A handle to signal the running processes of this command, whichever
    /// incarnation runs. Clones of a command share it: a root that clones
    /// the command on every incarnation keeps reaching its child. When
    /// clones run under several nodes, [`ProcessSignals::node`] picks one.
    pub fn signals(&self) -> ProcessSignals {
        ProcessSignals {
            pids: self.pids.clone(),
            group: self.group,
            dn: None,
        }
    }
}

/// Sends signals to the processes a [`Command`] (and its clones) runs, each
/// to its process group with [`Command::kill_process_group`].
#[derive(Clone, Debug)]
pub struct ProcessSignals {
    pids: Pids,
    group: bool,
    /// Only the process of this node, when set.
    dn: Option<Arc<str>>,
}

impl ProcessSignals {
    /// The same handle, narrowed to the process run by the node `dn`
    /// (e.g. `root.workers.a`).
    pub fn node(&self, dn: &str) -> ProcessSignals {
        ProcessSignals {
            dn: Some(dn.into()),
            ..self.clone()
        }
    }

    /// The running process's pid: the node's with [`node`](Self::node);
    /// otherwise the only one, `None` when none or several run.
    pub fn pid(&self) -> Option<u32> {
        let pids = self.pids.lock().unwrap_or_else(PoisonError::into_inner);
        match &self.dn {
            Some(dn) => pids.get(dn).copied(),
            None if pids.len() == 1 => pids.values().next().copied(),
            None => None,
        }
    }

    /// Every running process of this command and its clones, by node DN.
    pub fn pids(&self) -> Vec<(String, u32)> {
        let pids = self.pids.lock().unwrap_or_else(PoisonError::into_inner);
        pids.iter()
            .filter(|(dn, _)| self.dn.as_ref().is_none_or(|d| d == *dn))
            .map(|(dn, pid)| (dn.to_string(), *pid))
            .collect()
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`) to the node's process with
    /// [`node`](Self::node), otherwise to every running process of the
    /// command. Fails when no process runs or the OS refuses one.
    pub fn send(&self, signal: i32) -> std::io::Result<()> {
        let pids = self.pids();
        if pids.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no process is running",
            ));
        }
        pids.into_iter()
            .try_for_each(|(_, pid)| send_signal(pid, self.group, signal))
    }
}

fn send_signal(pid: u32, group: bool, signal: i32) -> std::io::Result<()> {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "pid out of range",
        ));
    };
    let target = if group { -pid } else { pid };
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(target, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Kills the process (or its group) with SIGKILL if it is dropped while the
/// process may still run: the process never outlives its node.
struct KillOnDrop {
    pid: u32,
    group: bool,
    reaped: bool,
    pids: Pids,
    dn: Arc<str>,
}

impl KillOnDrop {
    /// The process was waited for (`reaped`: successfully): signal what may
    /// be left and forget the pid.
    fn release(mut self, reaped: bool) {
        self.reaped = reaped;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !self.reaped || self.group {
            // For a group, children of the leader may remain after it exited.
            let _ = send_signal(self.pid, self.group, libc::SIGKILL);
        }
        let mut pids = self.pids.lock().unwrap_or_else(PoisonError::into_inner);
        // Only our own entry: a later incarnation may already have its own.
        if pids.get(&self.dn) == Some(&self.pid) {
            pids.remove(&self.dn);
        }
    }
}

impl Runnable for Command {
    fn run(&mut self, ctx: Context) -> LocalBoxFuture<'static, RunResult> {
        let cmd = self.clone();
        Box::pin(async move { cmd.supervise(ctx).await })
    }

    fn kind(&self, _: crate::api::runnable::Sealed) -> NodeKind {
        NodeKind::Process
    }

    /// Widens a timeout that leaves no room for the grace period.
    fn shutdown(&self, configured: Shutdown) -> Shutdown {
        match configured {
            Shutdown::Timeout(d) => Shutdown::Timeout(d.max(self.grace + GRACE_MARGIN)),
            other => other,
        }
    }
}

impl Command {
    async fn supervise(self, ctx: Context) -> RunResult {
        let program = self.program.to_string_lossy().into_owned();
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        if self.group {
            command.process_group(0);
        }
        // SAFETY: runs in the forked child before exec, and only calls
        // async-signal-safe functions (sigemptyset, sigprocmask, signal).
        unsafe {
            command.pre_exec(default_signals);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {program:?}: {e}"))?;
        let Some(pid) = child.id() else {
            return Err(format!("{program:?} exited before it could be supervised").into());
        };
        ctx.report_pid(pid);
        let dn: Arc<str> = ctx.dn().into();
        self.pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(dn.clone(), pid);
        let guard = KillOnDrop {
            pid,
            group: self.group,
            reaped: false,
            pids: self.pids.clone(),
            dn,
        };
        let logger = ctx.logger();
        let (line_tx, lines) = mpsc::unbounded_channel::<String>();
        // Only read while waiting for readiness; dropped after, so that a
        // chatty process does not fill the channel.
        let mut lines = self.ready.is_some().then_some(lines);
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            let forward = lines.is_some().then_some(line_tx);
            pumps.push(tokio::task::spawn_local(pump(
                out,
                logger.clone(),
                forward,
                None,
            )));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::task::spawn_local(pump(
                err,
                logger,
                None,
                Some(stderr_tail.clone()),
            )));
        }

        let mut healthy = self.ready.is_none();
        if healthy {
            ctx.signal(Signal::Healthy)?;
        }
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                line = async { lines.as_mut()?.recv().await }, if lines.is_some() => {
                    match line {
                        Some(line) if self.ready.as_ref().is_some_and(|ready| ready(&line)) => {
                            healthy = true;
                            lines = None;
                            ctx.signal(Signal::Healthy)?;
                        }
                        Some(_) => {}
                        // stdout closed: no line will ever make it ready.
                        None => lines = None,
                    }
                }
                _ = ctx.cancelled() => {
                    let _ = send_signal(pid, self.group, self.stop_signal);
                    let status = match tokio::time::timeout(self.grace, child.wait()).await {
                        Ok(status) => status,
                        Err(_) => {
                            let _ = send_signal(pid, self.group, libc::SIGKILL);
                            child.wait().await
                        }
                    };
                    guard.release(status.is_ok());
                    for p in pumps {
                        p.abort();
                    }
                    return Ok(());
                }
            }
        };
        guard.release(status.is_ok());
        // Let the pumps drain what the process wrote before it exited, but
        // not forever: a grandchild may still hold the pipes open.
        let drain = futures::future::join_all(pumps.iter_mut());
        if tokio::time::timeout(PIPE_DRAIN, drain).await.is_err() {
            for p in &pumps {
                p.abort();
            }
        }
        let status = status.map_err(|e| format!("waiting for {program:?}: {e}"))?;
        if status.success() && self.done_on_success {
            if !healthy {
                ctx.signal(Signal::Healthy)?;
            }
            ctx.signal(Signal::Done)?;
            return Ok(());
        }
        let tail: Vec<String> = stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        let mut reason = format!("{program:?} exited: {status}");
        if !tail.is_empty() {
            reason.push_str(&format!("; last stderr lines: {}", tail.join(" | ")));
        }
        Err(reason.into())
    }
}

/// Copies a pipe into the node's log line by line; optionally forwards
/// stdout lines for the readiness check and keeps the stderr tail.
async fn pump(
    pipe: impl AsyncRead + Unpin,
    logger: Logger,
    forward: Option<mpsc::UnboundedSender<String>>,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        logger.raw_line(&buf);
        let line = String::from_utf8_lossy(buf.strip_suffix(b"\n").unwrap_or(&buf)).into_owned();
        if let Some(tail) = &tail {
            let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(line.clone());
        }
        if let Some(tx) = &forward {
            let _ = tx.send(line);
        }
    }
}

/// In the forked child, before exec: every signal back to its default
/// disposition and none blocked. A signal ignored by the supervisor's own
/// process (SIGHUP under `nohup`, say) would otherwise stay ignored in the
/// child, and a stop or reload signal sent to it would do nothing.
fn default_signals() -> std::io::Result<()> {
    // SAFETY: plain libc calls on a local set; no allocation, no lock.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        for signal in 1..32 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
    }
    Ok(())
}
