//! Real stores for the fleet's tests: Debian's `etcd` and PostgreSQL's
//! server, each started on free ports in a temporary directory, stopped
//! and removed when dropped. Where a binary is missing the test prints one
//! line and passes, unless `ACTIX_SUPERVISOR_FLEET_TEST=1` (CI) requires it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether the run must have the stores (CI sets it).
pub fn required() -> bool {
    std::env::var("ACTIX_SUPERVISOR_FLEET_TEST").is_ok_and(|v| v == "1")
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A fresh directory under the system's temporary one.
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "actix-supervisor-{what}-{}-{}",
        std::process::id(),
        free_port()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("make a temp dir");
    dir
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Etcd,
    Postgres,
}

/// A running (or stopped) store.
pub struct Server {
    pub backend: Backend,
    dir: PathBuf,
    port: u16,
    peer_port: u16,
    /// Where else it listens besides 127.0.0.1 (a partition's veth).
    also: Option<String>,
    child: Option<Child>,
    bin: PathBuf,
    /// PostgreSQL refuses root: its uid and gid then.
    as_user: Option<(u32, u32)>,
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// The newest PostgreSQL's `bin` directory.
fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn postgres_user() -> Option<(u32, u32)> {
    // SAFETY: getpwnam with a NUL-terminated name; the record is copied
    // out at once.
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: not null, per getpwnam's contract.
    let pw = unsafe { &*pw };
    Some((pw.pw_uid, pw.pw_gid))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `None` (with one printed line) where the store's binary is missing and
/// the run does not require it.
fn missing(what: &str) -> Option<Server> {
    if required() {
        panic!("{what} is required (ACTIX_SUPERVISOR_FLEET_TEST=1) but missing");
    }
    println!("skipped: {what} is not installed (apt-get install {what}; CI installs it)");
    None
}

impl Server {
    /// A one-member etcd cluster.
    pub fn etcd(also: Option<&str>) -> Option<Server> {
        let Some(bin) = which("etcd") else {
            return missing("etcd-server");
        };
        let mut s = Server {
            backend: Backend::Etcd,
            dir: temp_dir("etcd"),
            port: free_port(),
            peer_port: free_port(),
            also: also.map(str::to_string),
            child: None,
            bin,
            as_user: None,
        };
        s.start();
        Some(s)
    }

    /// A PostgreSQL server with trust authentication for `postgres`.
    pub fn postgres(also: Option<&str>) -> Option<Server> {
        let Some(bin) = pg_bin() else {
            return missing("postgresql");
        };
        let as_user = if is_root() {
            match postgres_user() {
                Some(u) => Some(u),
                None => return missing("postgresql (its postgres user)"),
            }
        } else {
            None
        };
        let dir = temp_dir("postgres");
        if let Some((uid, gid)) = as_user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the data dir");
        }
        let data = dir.join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args(["-D", data.to_str().expect("utf-8 path"), "-U", "postgres"])
            .args(["--auth=trust", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = as_user {
            initdb.uid(uid).gid(gid);
        }
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(also) = also {
            // The partition's side of the veth connects from its /24.
            let hba = data.join("pg_hba.conf");
            let mut text = std::fs::read_to_string(&hba).expect("pg_hba.conf");
            text.push_str(&format!("host all all {also}/24 trust\n"));
            std::fs::write(&hba, text).expect("pg_hba.conf");
        }
        let mut s = Server {
            backend: Backend::Postgres,
            dir,
            port: free_port(),
            peer_port: 0,
            also: also.map(str::to_string),
            child: None,
            bin: bin.join("postgres"),
            as_user,
        };
        s.start();
        Some(s)
    }

    /// The URL replicas on this host use.
    pub fn url(&self) -> String {
        self.url_at("127.0.0.1")
    }

    /// The URL from `host` (a partition's address of this host).
    pub fn url_at(&self, host: &str) -> String {
        match self.backend {
            Backend::Etcd => format!("etcd://{host}:{}", self.port),
            Backend::Postgres => format!("postgres://postgres@{host}:{}/postgres", self.port),
        }
    }

    /// Starts it (again, on the same data and ports) and waits until it
    /// serves.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.join("server.log")).expect("log file");
        let mut cmd = Command::new(&self.bin);
        match self.backend {
            Backend::Etcd => {
                let mut client = format!("http://127.0.0.1:{}", self.port);
                if let Some(also) = &self.also {
                    client.push_str(&format!(",http://{also}:{}", self.port));
                }
                let peer = format!("http://127.0.0.1:{}", self.peer_port);
                cmd.arg("--data-dir")
                    .arg(self.dir.join("data"))
                    .args(["--name", "default"])
                    .args(["--listen-client-urls", &client])
                    .args(["--advertise-client-urls", &client])
                    .args(["--listen-peer-urls", &peer])
                    .args(["--initial-advertise-peer-urls", &peer])
                    .args(["--initial-cluster", &format!("default={peer}")]);
            }
            Backend::Postgres => {
                let mut listen = "127.0.0.1".to_string();
                if let Some(also) = &self.also {
                    listen.push_str(&format!(",{also}"));
                }
                cmd.arg("-D")
                    .arg(self.dir.join("data"))
                    .args(["-p", &self.port.to_string()])
                    .arg("-k")
                    .arg(&self.dir)
                    .args(["-c", &format!("listen_addresses={listen}")])
                    .args(["-c", "fsync=off"]);
                if let Some((uid, gid)) = self.as_user {
                    cmd.uid(uid).gid(gid);
                }
            }
        }
        let err = log.try_clone().expect("log file");
        cmd.stdout(log).stderr(err).stdin(Stdio::null());
        // Its own process group: a test's signals never reach it.
        cmd.process_group(0);
        self.child = Some(cmd.spawn().expect("start the store"));
        self.wait_serving();
    }

    /// Stops it at once (SIGKILL): the store vanishes mid-request.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // PostgreSQL's children go with the postmaster's group.
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("the store exited at start ({status}): {}", self.log_tail());
                }
            }
            if self.serving() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the store never served: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn serving(&self) -> bool {
        match self.backend {
            Backend::Etcd => http_get(self.port, "/health").is_some_and(|b| b.contains("true")),
            Backend::Postgres => {
                let ready = Path::new(&self.bin).with_file_name("pg_isready");
                Command::new(ready)
                    .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                    .status()
                    .is_ok_and(|s| s.success())
            }
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A GET on 127.0.0.1:`port`, its body; `None` if nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().ok()?,
        Duration::from_millis(500),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}
