//! The status page in a real browser: headless Chromium (Debian's
//! `chromium`; `.ci/run` installs it) loads the page, a node is killed while
//! the page is open, and the page shows the new state and restart count
//! without a reload.
//!
//! Where no `chromium` is installed the test says so in one line and passes,
//! so that `cargo test` passes on a fresh machine; with
//! `ACTIX_SUPERVISOR_BROWSER_TEST=1` (as `.ci/run` sets it) a missing
//! browser fails it.
//!
//! Chromium runs with a virtual-time budget: the page's timers run in
//! virtual time, which waits while a fetch is pending. The test holds the
//! page's second poll of `tree.json` until it has killed the node and seen
//! it restarted, so the page's update is ordered without any sleep.
#![cfg(feature = "web")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_supervisor::web::{server, Status};
use actix_supervisor::{Context, NodeState};
use actix_web::dev::Service;
use actix_web::{web, App};
use common::*;
use tokio::sync::Notify;

/// Counts the page's loads and holds its second poll of the tree.
#[derive(Default)]
struct Gate {
    pages: AtomicUsize,
    polls: AtomicUsize,
    held: Notify,
    release: Notify,
}

const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Set to `1` to require the browser test to run (CI does).
const REQUIRE: &str = "ACTIX_SUPERVISOR_BROWSER_TEST";

/// Whether Chromium is there to run the test; if not and not required, one
/// line on the terminal says the test did not run (written past the test
/// harness's capture, which would hide it) and how to run it.
fn chromium_present() -> bool {
    use std::io::Write;
    let found = std::process::Command::new("chromium")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let required = std::env::var(REQUIRE).is_ok_and(|v| v == "1");
    assert!(
        found || !required,
        "{REQUIRE}=1 but Debian's chromium is not installed (apt-get install chromium)"
    );
    if !found {
        let _ = writeln!(
            std::io::stderr(),
            "browser test NOT RUN: no `chromium` here; install Debian's chromium (or set {REQUIRE}=1 to require it, as .ci/run does)"
        );
    }
    found
}

#[actix_rt::test]
async fn the_status_page_follows_a_restart_without_a_reload() {
    if !chromium_present() {
        return;
    }
    init_log();
    let gate = Arc::new(Gate::default());
    let board = Switchboard::default();
    let (sink, mut feed) = transitions();
    let addrs = Arc::new(Mutex::new(None));
    let (b, g, a) = (board.clone(), gate.clone(), addrs.clone());
    let sup = builder().metrics(sink).start(move |ctx: Context| {
        let (b, g, a) = (b.clone(), g.clone(), a.clone());
        async move {
            let status = Status::new(ctx.supervisor());
            let http = server("127.0.0.1:0", move || {
                let g = g.clone();
                App::new()
                    .wrap_fn(move |req, srv| {
                        let g = g.clone();
                        let path = req.path().to_string();
                        let response = srv.call(req);
                        async move {
                            if path == "/status/" {
                                g.pages.fetch_add(1, Ordering::SeqCst);
                            }
                            if path == "/status/tree.json"
                                && g.polls.fetch_add(1, Ordering::SeqCst) == 1
                            {
                                g.held.notify_one();
                                g.release.notified().await;
                            }
                            response.await
                        }
                    })
                    .service(web::scope("/status").configure(status.config()))
            });
            *a.lock().unwrap() = Some(http.addrs());
            ctx.run("http", http).await?;
            ctx.run("worker", b.runnable()).await?;
            serve(&ctx).await
        }
    });
    await_state(&mut feed, "root.http", NodeState::Healthy, 1).await;
    sup.wait_settled().await;
    let addr = addrs.lock().unwrap().clone().unwrap().get()[0];
    assert_eq!(info(&sup, "root.worker").await.restarts, 0);

    let profile =
        std::env::temp_dir().join(format!("actix-supervisor-chromium-{}", std::process::id()));
    let chromium = tokio::process::Command::new("chromium")
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--virtual-time-budget=5000")
        .arg("--dump-dom")
        .arg(format!("http://{addr}/status/"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("Debian's chromium must be installed (.ci/run installs it)");

    // The page is up and polling: its second poll waits for us.
    tokio::time::timeout(Duration::from_secs(60), gate.held.notified())
        .await
        .expect("the page polled tree.json twice within 60 s");
    assert!(board.kill("root.worker"));
    await_state(&mut feed, "root.worker", NodeState::Dead, 1).await;
    await_state(&mut feed, "root.worker", NodeState::Healthy, 1).await;
    gate.release.notify_one();

    let out = tokio::time::timeout(Duration::from_secs(60), chromium.wait_with_output())
        .await
        .expect("chromium finished within 60 s")
        .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout);
    let row = dom
        .split("<tr ")
        .find(|r| r.contains("data-dn=\"root.worker\""))
        .unwrap_or_else(|| panic!("no row for root.worker in the page:\n{dom}"));
    assert!(row.contains("class=\"HEALTHY"), "{row}");
    assert!(row.contains("<td class=\"restarts\">1</td>"), "{row}");
    assert!(
        row.contains("returned error: killed"),
        "the page shows the last error: {row}"
    );
    assert_eq!(
        gate.pages.load(Ordering::SeqCst),
        1,
        "the page was not reloaded"
    );
    assert!(gate.polls.load(Ordering::SeqCst) >= 2);
    assert!(
        dom.contains("nodes, ") && dom.contains("healthy"),
        "the script ran: {dom}"
    );
    sup.shutdown().await;
}
