//! Replicas of `examples/fleet.rs` as OS processes, their stdout lines
//! gathered in one [`Record`] with what was done to them.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::checker::{Act, Kind, Line};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The example's binary, built beside this test by `cargo test` (same
/// profile).
pub fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/fleet-<hash> → target/<profile>/examples/fleet
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let bin = profile.join("examples").join("fleet");
    assert!(
        bin.is_file(),
        "{} is missing: cargo test --features etcd,postgres,web builds it",
        bin.display()
    );
    bin
}

/// Every line the replicas printed, and every act of the chaos.
#[derive(Clone, Default)]
pub struct Record(Arc<(Mutex<Inner>, Condvar)>);

#[derive(Default)]
struct Inner {
    lines: Vec<Line>,
    acts: Vec<Act>,
    /// Replica → where it listens.
    listening: Vec<(String, String)>,
}

impl Record {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0 .0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, line: Line) {
        self.inner().lines.push(line);
        self.0 .1.notify_all();
    }

    pub fn act(&self, act: Act) {
        self.inner().acts.push(act);
    }

    pub fn lines(&self) -> Vec<Line> {
        self.inner().lines.clone()
    }

    pub fn acts(&self) -> Vec<Act> {
        self.inner().acts.clone()
    }

    /// Waits (up to `within`) for a line `pred` accepts among those printed
    /// from index `from` on; returns it.
    pub fn wait_for(
        &self,
        from: usize,
        within: Duration,
        pred: impl Fn(&Line) -> bool,
    ) -> Option<Line> {
        let deadline = Instant::now() + within;
        let mut inner = self.inner();
        loop {
            if let Some(l) = inner.lines.iter().skip(from).find(|l| pred(l)) {
                return Some(l.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            inner = self
                .0
                 .1
                .wait_timeout(inner, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub fn len(&self) -> usize {
        self.inner().lines.len()
    }

    /// Who holds the singleton by the lines: the last ACQUIRED not
    /// followed by its STOPPED (nor by its replica's kill).
    pub fn holder(&self) -> Option<Line> {
        let inner = self.inner();
        let mut holder: Option<Line> = None;
        for l in &inner.lines {
            match l.kind {
                Kind::Acquired => holder = Some(l.clone()),
                Kind::Stopped if holder.as_ref().is_some_and(|h| h.id == l.id) => holder = None,
                _ => {}
            }
        }
        let killed = |h: &Line| {
            inner
                .acts
                .iter()
                .any(|a| matches!(a, Act::Killed { id, ms } if *id == h.id && *ms >= h.ms))
        };
        holder.filter(|h| !killed(h))
    }

    /// How many times replica `id` said LISTENING (once per start).
    pub fn listening(&self, id: &str) -> usize {
        self.inner()
            .listening
            .iter()
            .filter(|(i, _)| i == id)
            .count()
    }

    /// Waits (up to `within`) until replica `id` has said LISTENING more
    /// than `seen` times.
    pub fn wait_listening(&self, id: &str, seen: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut inner = self.inner();
        loop {
            if inner.listening.iter().filter(|(i, _)| i == id).count() > seen {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            inner = self
                .0
                 .1
                .wait_timeout(inner, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// One replica process.
pub struct Replica {
    pub id: String,
    child: Option<Child>,
}

impl Replica {
    /// Starts replica `id` against `store`; with `netns`, inside that
    /// network namespace.
    pub fn start(
        id: &str,
        store: &str,
        ttl: Duration,
        record: &Record,
        netns: Option<&str>,
    ) -> Replica {
        let bin = example();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(["--store", store, "--id", id])
            .args(["--ttl-ms", &ttl.as_millis().to_string()])
            .args(["--http", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start a replica");
        let out = child.stdout.take().expect("piped stdout");
        let (record, who) = (record.clone(), id.to_string());
        std::thread::spawn(move || {
            for text in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(addr) = text.strip_prefix("LISTENING ") {
                    record
                        .inner()
                        .listening
                        .push((who.clone(), addr.to_string()));
                    record.0 .1.notify_all();
                } else if let Some(line) = Line::parse(&text) {
                    record.push(line);
                }
            }
        });
        Replica {
            id: id.to_string(),
            child: Some(child),
        }
    }

    fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    pub fn kill9(&mut self, record: &Record) {
        self.signal(libc::SIGKILL);
        record.act(Act::Killed {
            id: self.id.clone(),
            ms: now_ms(),
        });
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    pub fn pause(&self, record: &Record) {
        record.act(Act::Paused {
            id: self.id.clone(),
            ms: now_ms(),
        });
        self.signal(libc::SIGSTOP);
    }

    pub fn resume(&self, record: &Record) {
        self.signal(libc::SIGCONT);
        record.act(Act::Resumed {
            id: self.id.clone(),
            ms: now_ms(),
        });
    }

    /// SIGTERM, and waits (up to `within`) for it to exit; kills it then.
    pub fn terminate(&mut self, within: Duration) -> bool {
        self.signal(libc::SIGTERM);
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: our own child (SIGKILL ends a stopped one too).
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}
