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
//! page's second poll of `page.json` until it has killed the node and seen
//! it restarted, so the page's update is ordered without any sleep.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_supervisor::web::{server, Status};
use actix_supervisor::{Context, Group, NodeState, Strategy};
use actix_web::dev::Service;
use actix_web::{web, App};
use common::*;
use tokio::sync::Notify;

/// Where `root.http` listens, once it does.
async fn listening(sup: &actix_supervisor::Supervisor) -> std::net::SocketAddr {
    sup.wait_addrs("root.http")
        .await
        .expect("root.http listens")[0]
}

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

/// Headless Chromium dumping the DOM of `url` once its virtual-time
/// budget is spent, with a fresh profile of its own (removed with it).
struct Chromium {
    child: tokio::process::Child,
    profile: std::path::PathBuf,
}

impl Chromium {
    /// Starts it on `url`; `name` tells the profiles of the tests apart.
    fn open(url: &str, name: &str, budget_ms: u32) -> Chromium {
        let profile = std::env::temp_dir().join(format!(
            "actix-supervisor-chromium-{name}-{}",
            std::process::id()
        ));
        let child = tokio::process::Command::new("chromium")
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--virtual-time-budget={budget_ms}"))
            .arg("--dump-dom")
            .arg(url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("Debian's chromium must be installed (.ci/run installs it)");
        Chromium { child, profile }
    }

    /// The page's DOM, once Chromium has finished (within `within`).
    async fn dom(self, within: Duration) -> String {
        let out = tokio::time::timeout(within, self.child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("chromium finished within {within:?}"))
            .expect("chromium's output");
        let _ = std::fs::remove_dir_all(&self.profile);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
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
    let (b, g) = (board.clone(), gate.clone());
    let sup = builder().metrics(sink).start(move |ctx: Context| {
        let (b, g) = (b.clone(), g.clone());
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
                            if path == "/status/page.json"
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
            ctx.run("http", http).await?;
            ctx.run("worker", b.runnable()).await?;
            serve(&ctx).await
        }
    });
    await_state(&mut feed, "root.http", NodeState::Healthy, 1).await;
    sup.wait_settled().await;
    let addr = listening(&sup).await;
    assert_eq!(info(&sup, "root.worker").await.restarts, 0);

    let chromium = Chromium::open(&format!("http://{addr}/status/"), "follow", 5000);

    // The page is up and polling: its second poll waits for us.
    tokio::time::timeout(Duration::from_secs(60), gate.held.notified())
        .await
        .expect("the page polled page.json twice within 60 s");
    assert!(board.kill("root.worker").await);
    await_state(&mut feed, "root.worker", NodeState::Dead, 1).await;
    await_state(&mut feed, "root.worker", NodeState::Healthy, 1).await;
    gate.release.notify_one();

    let dom = chromium.dom(Duration::from_secs(60)).await;
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
    assert!(
        !dom.contains("<button"),
        "a page served without actions shows no buttons: {dom}"
    );
    sup.shutdown().await;
}

/// 10 groups of 100 members of 100 leaves each: 101,011 nodes. One leaf
/// fails at once and waits out an hour's backoff.
fn big_tree(ctx: Context) -> futures::future::LocalBoxFuture<'static, actix_supervisor::RunResult> {
    fn level(
        names: &'static str,
        n: usize,
        next: Option<
            fn(Context) -> futures::future::LocalBoxFuture<'static, actix_supervisor::RunResult>,
        >,
    ) -> Group {
        let mut g = Group::new().strategy(Strategy::OneForOne);
        for i in 0..n {
            g =
                g.with(
                    format!("{names}{i}"),
                    move |ctx: Context| -> futures::future::LocalBoxFuture<
                        'static,
                        actix_supervisor::RunResult,
                    > {
                        match next {
                            Some(next) => next(ctx),
                            None => Box::pin(async move {
                                if ctx.dn() == "root.tree.g3.m7.l42" {
                                    return Err("the disk is full".into());
                                }
                                serve(&ctx).await
                            }),
                        }
                    },
                );
        }
        g
    }
    fn member(
        ctx: Context,
    ) -> futures::future::LocalBoxFuture<'static, actix_supervisor::RunResult> {
        Box::pin(async move {
            ctx.run_group(level("l", 100, None)).await?;
            serve(&ctx).await
        })
    }
    fn group(
        ctx: Context,
    ) -> futures::future::LocalBoxFuture<'static, actix_supervisor::RunResult> {
        Box::pin(async move {
            ctx.run_group(level("m", 100, Some(member))).await?;
            serve(&ctx).await
        })
    }
    Box::pin(async move {
        ctx.run_group(level("g", 10, Some(group))).await?;
        serve(&ctx).await
    })
}

#[actix_rt::test]
async fn the_status_page_of_a_large_tree_shows_the_top_the_trouble_and_what_is_opened() {
    if !chromium_present() {
        return;
    }
    init_log();
    let sup = builder()
        .backoff(backoff_ms(3_600_000))
        .start(|ctx: Context| async move {
            let status = Status::new(ctx.supervisor());
            ctx.run("tree", big_tree).await?;
            ctx.run("admin", status.server("127.0.0.1:0")).await?;
            serve(&ctx).await
        });
    sup.wait_settled().await;
    let counts = sup.counts().await;
    assert!(counts.nodes > 100_000, "{counts:?}");
    assert_eq!((counts.dead, counts.waiting), (1, 1), "{counts:?}");
    let addr = sup.addrs("root.admin").await[0];

    let chromium = Chromium::open(&format!("http://{addr}/#open=root.tree.g3.m7"), "big", 3000);
    let dom = chromium.dom(Duration::from_secs(120)).await;
    let rows: Vec<&str> = dom.split("<tr ").skip(1).collect();
    let row = |dn: &str| {
        rows.iter()
            .find(|r| r.contains(&format!("data-dn=\"{dn}\"")))
            .copied()
            .unwrap_or_else(|| panic!("no row for {dn}"))
    };
    // The troubled leaf, with its whole DN, first (the troubled table).
    let bad = row("root.tree.g3.m7.l42");
    assert!(
        bad.contains("DEAD") && bad.contains("root.tree.g3.m7.l42"),
        "{bad}"
    );
    assert!(bad.contains("the disk is full"), "{bad}");
    // The top levels, a collapsed node's count of children.
    let m0 = row("root.tree.g0");
    assert!(m0.contains("100 children, 100 live"), "{m0}");
    // The opened node's children (the script ran and expanded it).
    let leaf = row("root.tree.g3.m7.l99");
    assert!(leaf.contains("HEALTHY"), "{leaf}");
    assert!(
        !rows
            .iter()
            .any(|r| r.contains("data-dn=\"root.tree.g3.m6.l0\"")),
        "an unopened node's children are not on the page"
    );
    // Bounded: the root, its two levels, the opened node's children, the
    // troubled row, whatever the size of the tree.
    assert!(rows.len() < 1_300, "{} rows", rows.len());
    assert!(
        dom.contains("nodes, ") && dom.contains("updated"),
        "the script ran"
    );
    sup.shutdown().await;
}

/// An action POST: its path, its `Origin` and its `Sec-Fetch-Site`.
type Post = (String, Option<String>, Option<String>);

/// What the actions test saw of the page's requests.
#[derive(Default)]
struct Clicks {
    posts: Mutex<Vec<Post>>,
    held: Notify,
    release: Notify,
    holding: std::sync::atomic::AtomicBool,
}

/// With `Status::allow_actions(true)`, a click on a node's restart button
/// in Chromium restarts it: its incarnation goes up, the page shows the
/// restart without a reload, the POST came from the page's own origin, and
/// the supervisor said who asked. (The click is the page's own button,
/// clicked by a script the test appends to the served page.)
#[actix_rt::test]
async fn a_click_on_restart_restarts_the_node() {
    if !chromium_present() {
        return;
    }
    init_log();
    let clicks = Arc::new(Clicks::default());
    let board = Switchboard::default();
    let (sink, mut feed) = transitions();
    let (b, c) = (board.clone(), clicks.clone());
    let sup = builder().metrics(sink).start(move |ctx: Context| {
        let (b, c) = (b.clone(), c.clone());
        async move {
            let status = Status::new(ctx.supervisor()).allow_actions(true);
            let http = server("127.0.0.1:0", move || {
                let c = c.clone();
                App::new()
                    .wrap_fn(move |req, srv| {
                        let c = c.clone();
                        let path = req.path().to_string();
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string)
                        };
                        if path.starts_with("/status/actions/") {
                            c.posts.lock().unwrap().push((
                                path.clone(),
                                header("origin"),
                                header("sec-fetch-site"),
                            ));
                        }
                        let hold = path == "/status/page.json"
                            && !c.posts.lock().unwrap().is_empty()
                            && !c.holding.swap(true, Ordering::SeqCst);
                        let response = srv.call(req);
                        async move {
                            if hold {
                                c.held.notify_one();
                                c.release.notified().await;
                            }
                            let res = response.await?;
                            if path != "/status/" {
                                return Ok(res.map_into_boxed_body());
                            }
                            // The page, with a script after its own that
                            // clicks root.worker's restart button.
                            let (req, res) = res.into_parts();
                            let html = actix_web::body::to_bytes(res.into_body())
                                .await
                                .unwrap_or_default();
                            let click = "<script>document.querySelector('button[data-action=\"restart\"][data-dn=\"root.worker\"]').click();</script></body>";
                            let html = String::from_utf8_lossy(&html).replace("</body>", click);
                            let res = actix_web::HttpResponse::Ok()
                                .content_type("text/html; charset=utf-8")
                                .body(html);
                            Ok(actix_web::dev::ServiceResponse::new(req, res))
                        }
                    })
                    .service(web::scope("/status").configure(status.config()))
            });
            ctx.run("http", http).await?;
            ctx.run("worker", b.runnable()).await?;
            serve(&ctx).await
        }
    });
    await_state(&mut feed, "root.http", NodeState::Healthy, 1).await;
    sup.wait_settled().await;
    let addr = listening(&sup).await;
    assert_eq!(info(&sup, "root.worker").await.incarnation, 1);

    let chromium = Chromium::open(&format!("http://{addr}/status/"), "actions", 5000);

    // The click's POST restarted the worker; the page's next poll waits
    // until the restart is through.
    tokio::time::timeout(Duration::from_secs(60), clicks.held.notified())
        .await
        .expect("the page posted an action and polled within 60 s");
    await_state(&mut feed, "root.worker", NodeState::Healthy, 1).await;
    clicks.release.notify_one();

    let dom = chromium.dom(Duration::from_secs(60)).await;
    assert_eq!(
        info(&sup, "root.worker").await.incarnation,
        2,
        "restarted once"
    );
    let posts = clicks.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let (path, origin, site) = &posts[0];
    assert_eq!(path, "/status/actions/restart");
    assert_eq!(origin.as_deref(), Some(format!("http://{addr}").as_str()));
    assert_eq!(site.as_deref(), Some("same-origin"));
    let row = dom
        .split("<tr ")
        .find(|r| r.contains("data-dn=\"root.worker\""))
        .unwrap_or_else(|| panic!("no row for root.worker in the page:\n{dom}"));
    assert!(row.contains("<td class=\"restarts\">1</td>"), "{row}");
    assert!(row.contains("class=\"HEALTHY"), "{row}");
    assert!(
        dom.contains("restart root.worker: done"),
        "the page shows the answer: {dom}"
    );
    let said = messages(&sup, actix_supervisor::LogQuery::dn("supervisor"));
    assert!(
        said.iter().any(|l| l.contains("operator at 127.0.0.1:")
            && l.contains("restart root.worker from the status page: done")),
        "{said:?}"
    );
    sup.shutdown().await;
}

/// A parked node on the page: its breaker shows in its row, in Chromium.
#[actix_rt::test]
async fn the_page_shows_an_open_breaker() {
    if !chromium_present() {
        return;
    }
    init_log();
    let board = Switchboard::default();
    let b = board.clone();
    let park = actix_supervisor::Park::new(Duration::from_secs(3600));
    let (sink, mut feed) = transitions();
    let sup = builder().metrics(sink).start(move |ctx: Context| {
        let b = b.clone();
        async move {
            let status = Status::new(ctx.supervisor());
            let http = server("127.0.0.1:0", move || {
                App::new().service(web::scope("/status").configure(status.config()))
            });
            ctx.run("http", http).await?;
            // Over its intensity, the parent parks its child for an hour.
            let b2 = b.clone();
            let parent = actix_supervisor::Child::new("clients", move |ctx: Context| {
                let g = Group::new().with("client", b2.runnable());
                async move {
                    ctx.run_group(g).await?;
                    serve(&ctx).await
                }
            })
            .max_restarts(1, Duration::from_secs(60))
            .on_intensity_exceeded(actix_supervisor::Exceeded::Park(park));
            ctx.run_child(parent).await?;
            serve(&ctx).await
        }
    });
    sup.wait_settled().await;
    let addr = listening(&sup).await;
    // The kills travel to a worker thread: wait for their effect.
    assert!(board.kill("root.clients.client").await);
    await_state(&mut feed, "root.clients.client", NodeState::Dead, 1).await;
    until_back(&sup, "root.clients.client", 1).await;
    assert!(board.kill("root.clients.client").await);
    await_state(&mut feed, "root.clients.client", NodeState::Dead, 1).await;
    sup.wait_settled().await;
    let parked = info(&sup, "root.clients.client").await;
    assert!(
        matches!(
            parked.breaker,
            actix_supervisor::Breaker::Open { trips: 1, .. }
        ),
        "{parked:?}"
    );

    let chromium = Chromium::open(
        &format!("http://{addr}/status/#open=root.clients"),
        "breaker",
        3000,
    );
    let dom = chromium.dom(Duration::from_secs(60)).await;
    let rows: Vec<&str> = dom
        .split("<tr ")
        .filter(|r| r.contains("data-dn=\"root.clients.client\""))
        .collect();
    assert!(!rows.is_empty(), "no row for the parked node:\n{dom}");
    assert!(
        rows.iter()
            .all(|r| r.contains("breaker open (trip 1)") && r.contains("class=\"DEAD")),
        "{rows:?}"
    );
    sup.shutdown().await;
}

/// An overloaded actor on the page: listed first among the troubled, its
/// backlog in its row, the summary counting it, in Chromium.
#[actix_rt::test]
async fn the_page_shows_an_overloaded_actor() {
    if !chromium_present() {
        return;
    }
    init_log();
    let (desk, desk_addr) = actix_supervisor::actor(|| crate::overload::Desk {
        ticks: Arc::default(),
    });
    let desk = Arc::new(Mutex::new(Some(desk)));
    let sup = builder().start(move |ctx: Context| {
        let desk = desk.lock().unwrap().take();
        async move {
            let status = Status::new(ctx.supervisor());
            let http = server("127.0.0.1:0", move || {
                App::new().service(web::scope("/status").configure(status.config()))
            });
            ctx.run("http", http).await?;
            if let Some(desk) = desk {
                let child = actix_supervisor::Child::new("desk", desk).queue_alarm(4, 2);
                ctx.run_child(child).await?;
            }
            serve(&ctx).await
        }
    });
    sup.wait_settled().await;
    let addr = listening(&sup).await;
    let gates: Vec<_> = (0..5).map(|_| crate::overload::hold(&desk_addr)).collect();
    sup.wait_settled().await;
    let n = info(&sup, "root.desk").await;
    assert!(n.overloaded && n.queued == Some(5), "{n:?}");

    let chromium = Chromium::open(&format!("http://{addr}/status/"), "overload", 3000);
    let dom = chromium.dom(Duration::from_secs(60)).await;
    let troubled = dom
        .split("id=\"troubled\"")
        .nth(1)
        .and_then(|t| t.split("</tbody>").next())
        .unwrap_or_default();
    let first = troubled.split("<tr ").nth(1).unwrap_or_default();
    assert!(
        first.contains("data-dn=\"root.desk\"")
            && first.contains("class=\"queue overloaded\"")
            && first.contains("OVERLOADED · 5 queued, oldest"),
        "the overloaded actor is not the first troubled row:\n{dom}"
    );
    assert!(
        dom.contains("1 overloaded"),
        "the summary does not count it:\n{dom}"
    );
    drop(gates);
    sup.shutdown().await;
}
