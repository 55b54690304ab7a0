//! The probes tell the truth (`/healthz` when the processor is stopped,
//! shutting down or wedged; readiness by `affects_readiness` and the grace),
//! and what embedding the status in a real service needs: metrics in one
//! line, a private admin listener, `/logs` off, 400 on malformed queries,
//! the server's addresses, `wait_ready`, and shutting down from inside.

use crate::common;

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_supervisor::testing::TestHarness;
use actix_supervisor::web::{server, Status};
use actix_supervisor::{Child, Context, Ended, Group, Metrics, NodeState, Restart, RunResult};
use actix_web::{test, web, App, HttpResponse};
use common::*;

/// `status` mounted at `/status`, as a test service.
pub(crate) async fn status_app(
    status: Status,
) -> impl actix_web::dev::Service<
    actix_http::Request,
    Response = actix_web::dev::ServiceResponse,
    Error = actix_web::Error,
> {
    test::init_service(App::new().service(web::scope("/status").configure(status.config()))).await
}

/// A supervisor whose root serves, settled.
async fn serving() -> actix_supervisor::Supervisor {
    let sup = builder().start(|ctx: Context| async move { serve(&ctx).await });
    sup.wait_settled().await;
    sup
}

/// `/status/healthz`'s status code.
async fn healthz<S>(app: &S) -> u16
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    test::call_service(app, get("/status/healthz"))
        .await
        .status()
        .as_u16()
}

fn get(path: &str) -> actix_http::Request {
    test::TestRequest::get().uri(path).to_request()
}

#[actix_rt::test]
async fn healthz_is_503_once_the_supervisor_is_shut_down() {
    let sup = serving().await;
    let app = status_app(Status::new(sup.clone())).await;
    assert_eq!(healthz(&app).await, 200);
    sup.shutdown().await;
    let res = test::call_service(&app, get("/status/healthz")).await;
    assert_eq!(res.status(), 503);
    let body = test::read_body(res).await;
    assert!(String::from_utf8_lossy(&body).contains("shut"), "{body:?}");
}

#[test]
fn healthz_is_503_once_the_processor_has_stopped() {
    // A status outliving its supervisor's System: the System's end stops
    // every arbiter, the processor's too.
    let sys = actix_rt::System::new();
    let sup = sys.block_on(async {
        let sup = builder().start(|ctx: Context| async move { serve(&ctx).await });
        sup.wait_settled().await;
        actix_rt::System::current().stop();
        sup
    });
    sys.run().unwrap();
    actix_rt::System::new().block_on(async move {
        // The old System's end stops the processor's arbiter on its own
        // thread: `join` resolves once the processor is gone.
        sup.join().await;
        let app = status_app(Status::new(sup)).await;
        let res = test::call_service(&app, get("/status/healthz")).await;
        assert_eq!(res.status(), 503);
        let body = test::read_body(res).await;
        assert!(
            String::from_utf8_lossy(&body).contains("stopped"),
            "{body:?}"
        );
    });
}

/// Blocks the processor's thread in a sink call until released: a wedge.
struct Wedge(Mutex<Option<std_mpsc::Receiver<()>>>, std_mpsc::Sender<()>);

impl Metrics for Wedge {
    fn node_state(&self, dn: &str, state: NodeState) {
        if dn == "root.wedge" && state == NodeState::Healthy {
            let _ = self.1.send(());
            if let Some(rx) = self.0.lock().unwrap().take() {
                let _ = rx.recv();
            }
        }
    }
}

#[actix_rt::test]
async fn healthz_is_503_while_the_processor_is_wedged() {
    let (release, held) = std_mpsc::channel();
    let (entered_tx, entered) = std_mpsc::channel();
    let go = Arc::new(tokio::sync::Notify::new());
    let g = go.clone();
    let sup = builder()
        .metrics(Wedge(Mutex::new(Some(held)), entered_tx))
        .start(move |ctx: Context| {
            let g = g.clone();
            async move {
                let wedge = move |ctx: Context| {
                    let g = g.clone();
                    async move {
                        g.notified().await;
                        serve(&ctx).await
                    }
                };
                ctx.run("wedge", wedge).await?;
                serve(&ctx).await
            }
        });
    sup.wait_settled().await;
    let app = status_app(Status::new(sup.clone())).await;
    assert_eq!(healthz(&app).await, 200);
    go.notify_one();
    // The sink holds the processor's thread now.
    entered.recv().unwrap();
    let res = test::call_service(&app, get("/status/healthz")).await;
    assert_eq!(res.status(), 503);
    let body = test::read_body(res).await;
    assert!(
        String::from_utf8_lossy(&body).contains("wedged"),
        "{body:?}"
    );
    release.send(()).unwrap();
    sup.wait_settled().await;
    assert_eq!(healthz(&app).await, 200);
    sup.shutdown().await;
}

/// The `not_ready` DNs `/readyz` names (empty when it answers 200).
async fn not_ready<S>(app: &S) -> Vec<String>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let res = test::call_service(app, get("/status/readyz")).await;
    let ok = res.status() == 200;
    let body: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(body["ready"], ok, "{body}");
    body["not_ready"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| n["dn"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[actix_rt::test]
async fn readiness_follows_affects_readiness_and_the_grace() {
    tokio::time::pause();
    let board = Switchboard::default();
    let group = Group::new()
        .child(Child::new("db", board.runnable()))
        .child(Child::new("poller", board.runnable()).affects_readiness(false))
        .child(
            Child::new("cache", board.runnable())
                .restart(Restart::Transient)
                .affects_readiness(true),
        )
        .strategy(actix_supervisor::Strategy::OneForOne);
    let sup = root_with(
        builder().current_arbiter().backoff(backoff_ms(60_000)),
        group,
    );
    sup.wait_settled().await;
    let strict = status_app(Status::new(sup.clone())).await;
    let graced =
        status_app(Status::new(sup.clone()).readiness_grace(Duration::from_secs(10))).await;
    assert!(not_ready(&strict).await.is_empty());

    // The poller does not count: its death leaves the service ready.
    assert!(board.kill("root.poller").await);
    sup.wait_settled().await;
    assert!(not_ready(&strict).await.is_empty());

    // The transient cache counts, as asked; the grace covers it for 10 s.
    assert!(board.kill("root.cache").await);
    sup.wait_settled().await;
    assert_eq!(not_ready(&strict).await, ["root.cache"]);
    assert!(not_ready(&graced).await.is_empty());
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(not_ready(&graced).await, ["root.cache"]);
    // Back after its backoff (a minute): ready again, with or without grace.
    tokio::time::advance(Duration::from_secs(60)).await;
    sup.wait_settled().await;
    assert!(not_ready(&strict).await.is_empty());
    assert!(not_ready(&graced).await.is_empty());
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_first_start_is_never_graced() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rx = Arc::new(Mutex::new(Some(rx)));
    let (seen, mut states) = transitions();
    let sup = builder().metrics(seen).start(move |ctx: Context| {
        let rx = rx.lock().unwrap().take();
        async move {
            if let Some(rx) = rx {
                let _ = rx.await;
            }
            serve(&ctx).await
        }
    });
    sup.wait_settled().await;
    let graced =
        status_app(Status::new(sup.clone()).readiness_grace(Duration::from_secs(3600))).await;
    assert_eq!(not_ready(&graced).await, ["root"]);
    tx.send(()).unwrap();
    // The root resumes on its worker: settling does not wait for that.
    await_state(&mut states, "root", NodeState::Healthy, 1).await;
    assert!(not_ready(&graced).await.is_empty());
    sup.shutdown().await;
}

#[actix_rt::test]
async fn malformed_queries_get_400_with_a_message_never_a_500() {
    let sup = serving().await;
    let app = status_app(Status::new(sup.clone())).await;
    let bad_values = [
        "",
        "x",
        "-1",
        "1e9",
        "99999999999999999999999",
        "%00",
        "%ff%fe",
        "root..a",
        ".root",
        "root.",
        "ROOT",
        "root.A",
        "root.a b",
        "root.%2e",
        "🦀",
        "root.a-b",
        "NaN",
        "true",
        "[]",
        "{}",
        "0x10",
        " 1",
        "1 ",
        "+1",
        "18446744073709551616",
        "4294967296",
    ];
    // Percent-encoded, except the `%` sequences meant as they are.
    let enc = |v: &str| -> String {
        v.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'%' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let mut sent = 0;
    for v in bad_values.map(enc) {
        for path in [
            format!("/status/tree.json?dn={v}"),
            format!("/status/tree.json?depth={v}"),
            format!("/status/tree.json?state={v}"),
            format!("/status/tree.json?limit={v}"),
            format!("/status/tree?depth={v}"),
            format!("/status/logs?dn={v}"),
            format!("/status/logs?dn=root&after={v}"),
            format!("/status/tree.json?dn=root&nope={v}"),
        ] {
            let req = test::TestRequest::get().uri(&path).to_request();
            let res = test::call_service(&app, req).await;
            let code = res.status().as_u16();
            let body = String::from_utf8_lossy(&test::read_body(res).await).into_owned();
            assert!(code < 500, "{path}: {code} {body}");
            if code == 400 {
                assert!(!body.trim().is_empty(), "{path}: 400 without a message");
            }
            sent += 1;
        }
    }
    assert!(sent >= 200, "{sent}");
    // Some are well-formed; the clearly wrong ones are 400 and say why.
    for (path, says) in [
        ("/status/tree.json?dn=root..a", "bad dn"),
        ("/status/tree.json?depth=x", "depth"),
        ("/status/tree.json?limit=99999999", "limit"),
        ("/status/tree.json?state=SLEEPY", "bad state"),
        ("/status/logs?dn=root&after=soon", "after"),
        ("/status/logs", "dn"),
    ] {
        let res = test::call_service(&app, get(path)).await;
        assert_eq!(res.status(), 400, "{path}");
        let body = String::from_utf8_lossy(&test::read_body(res).await).into_owned();
        assert!(body.contains(says), "{path}: {body}");
    }
    let res = test::call_service(&app, get("/status/tree.json?dn=root.nope")).await;
    assert_eq!(res.status(), 404);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn tree_json_selects_by_dn_depth_state_and_limit() {
    let board = Switchboard::default();
    let group = Group::new()
        .with("a", board.runnable())
        .with("b", board.runnable())
        .with("c", board.runnable())
        .strategy(actix_supervisor::Strategy::OneForOne);
    let sup = root_with(builder().backoff(backoff_ms(3_600_000)), group);
    sup.wait_settled().await;
    assert!(board.kill("root.b").await);
    sup.wait_settled().await;
    let app = status_app(Status::new(sup.clone())).await;
    let dns = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n["dn"].as_str().unwrap().to_string())
            .collect()
    };
    let all = test::call_and_read_body_json(&app, get("/status/tree.json")).await;
    assert_eq!(dns(&all), ["root", "root.a", "root.b", "root.c"]);
    let top = test::call_and_read_body_json(&app, get("/status/tree.json?depth=0")).await;
    assert_eq!(dns(&top), ["root"]);
    assert_eq!(top[0]["children_total"], 3);
    let sick =
        test::call_and_read_body_json(&app, get("/status/tree.json?state=not_healthy")).await;
    assert_eq!(dns(&sick), ["root.b"]);
    let sub = test::call_and_read_body_json(&app, get("/status/tree.json?dn=root.c")).await;
    assert_eq!(dns(&sub), ["root.c"]);
    let res = test::call_service(&app, get("/status/tree.json?limit=2")).await;
    assert_eq!(res.headers().get("x-truncated").unwrap(), "true");
    let two: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(dns(&two), ["root", "root.a"]);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn logs_can_be_turned_off() {
    let sup = serving().await;
    let on = status_app(Status::new(sup.clone())).await;
    let off = status_app(Status::new(sup.clone()).logs(false)).await;
    let path = "/status/logs?dn=supervisor";
    assert_eq!(test::call_service(&on, get(path)).await.status(), 200);
    assert_eq!(test::call_service(&off, get(path)).await.status(), 404);
    assert_eq!(
        test::call_service(&off, get("/status/healthz"))
            .await
            .status(),
        200
    );
    sup.shutdown().await;
}

/// The README's recommended setup: the application on its listener, the
/// status on a private one, metrics in one line; ports 0, learned from the
/// tree; `wait_ready`; and an admin `POST /shutdown` that stops the whole
/// service from inside, promptly and clean.
#[actix_rt::test]
async fn an_admin_listener_metrics_in_one_line_and_shutdown_from_inside() {
    let h = TestHarness::start_with(
        actix_supervisor::Supervisor::builder()
            .prometheus()
            .shutdown_timeout(Duration::from_secs(5)),
        |ctx: Context| async move {
            let status = Status::new(ctx.supervisor());
            ctx.run("admin", status.server("127.0.0.1:0")).await?;
            let sup = ctx.supervisor();
            ctx.run(
                "http",
                server("127.0.0.1:0", move || {
                    let sup = sup.clone();
                    App::new()
                        .route(
                            "/",
                            web::get().to(|| async { HttpResponse::Ok().body("hello") }),
                        )
                        .route(
                            "/shutdown",
                            web::post().to(move || {
                                let sup = sup.clone();
                                async move {
                                    sup.shutdown().await;
                                    HttpResponse::Accepted().body("shutting down\n")
                                }
                            }),
                        )
                })
                .workers(1),
            )
            .await?;
            serve(&ctx).await
        },
    );
    h.wait_ready().await;
    let sup = h.supervisor().clone();
    let admin = sup.addrs("root.admin").await;
    let public = sup.addrs("root.http").await;
    assert_eq!((admin.len(), public.len()), (1, 1), "{admin:?} {public:?}");
    assert_ne!(admin[0].port(), 0);
    assert_ne!(admin[0], public[0]);
    let snapshot = sup.snapshot().await;
    let node = snapshot.iter().find(|n| n.dn == "root.http").unwrap();
    assert_eq!(node.addrs, public);

    let (code, body) = fetch(public[0], "GET", "/").await.unwrap();
    assert_eq!((code, body.as_str()), (200, "hello"));
    // The status is on the admin listener only.
    assert_eq!(fetch(public[0], "GET", "/healthz").await.unwrap().0, 404);
    assert_eq!(fetch(admin[0], "GET", "/healthz").await.unwrap().0, 200);
    let (code, metrics) = fetch(admin[0], "GET", "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("actix_supervisor_nodes"), "{metrics}");

    let (code, _) = fetch(public[0], "POST", "/shutdown").await.unwrap();
    assert_eq!(code, 202);
    // Clean: before, the caller waited for itself until its stop deadline,
    // was aborted, and the supervisor ended as Stragglers naming it.
    assert_eq!(sup.join().await, Ended::ShutDown);
    assert!(sup.addrs("root.http").await.is_empty());
    h.finish().await;
}

/// A runnable that stops the whole service and waits to be cancelled: it
/// is not waited for by its own request (it used to be aborted at its stop
/// deadline, and the supervisor ended as Stragglers naming it).
#[actix_rt::test]
async fn a_runnable_shutting_the_service_down_ends_it_clean() {
    let sup = builder().start(|ctx: Context| async move {
        ctx.run("stopper", |ctx: Context| async move {
            ctx.signal(actix_supervisor::Signal::Healthy)?;
            ctx.supervisor().shutdown().await;
            ctx.cancelled().await;
            Ok(())
        })
        .await?;
        serve(&ctx).await
    });
    assert_eq!(sup.join().await, Ended::ShutDown);
}

/// A server whose port is taken dies at every start; a readiness grace
/// must not cover it, since it has never been up: `/readyz` says 503 at
/// every poll (here every 250 ms for 10 s, twice the grace) until it has
/// listened once. Then it is ready, and a death of it is graced.
#[actix_rt::test]
async fn a_node_that_never_came_up_is_never_graced() {
    tokio::time::pause();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (seen, mut states) = transitions();
    let sup = builder()
        .current_arbiter()
        .backoff(backoff_ms(100))
        .metrics(seen)
        .start(move |ctx: Context| {
            let addr = addr.clone();
            async move {
                ctx.run("http", server(addr, App::new).workers(1)).await?;
                serve(&ctx).await
            }
        });
    let graced = status_app(Status::new(sup.clone()).readiness_grace(Duration::from_secs(5))).await;
    await_state(&mut states, "root.http", NodeState::Dead, 3).await;
    for poll in 0..40 {
        let missing = not_ready(&graced).await;
        assert_eq!(
            missing,
            ["root.http"],
            "poll {poll}: ready while the port is taken"
        );
        tokio::time::advance(Duration::from_millis(250)).await;
    }
    let restarts = info(&sup, "root.http").await.restarts;
    assert!(restarts >= 10, "it kept dying: {restarts}");
    drop(taken);
    await_state(&mut states, "root.http", NodeState::Healthy, 1).await;
    assert!(not_ready(&graced).await.is_empty());
    sup.shutdown().await;
}

/// `wait_ready` resolves when the service becomes ready, without polling,
/// and after its time names what is not ready and why.
#[actix_rt::test]
async fn wait_ready_resolves_when_ready_and_names_what_is_not() {
    tokio::time::pause();
    let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
    let go = Arc::new(Mutex::new(Some(go)));
    let sup = builder().current_arbiter().start(move |ctx: Context| {
        let go = go.lock().unwrap().take();
        async move {
            if let Some(go) = go {
                let _ = go.await;
            }
            serve(&ctx).await
        }
    });
    let waiting = actix_rt::spawn({
        let sup = sup.clone();
        async move { sup.wait_ready(Duration::from_secs(3600)).await }
    });
    let early = sup.wait_ready(Duration::from_secs(2)).await.unwrap_err();
    assert!(early.to_string().contains("root (NEW)"), "{early}");
    assert!(!waiting.is_finished());
    go_tx.send(()).unwrap();
    assert_eq!(waiting.await.unwrap(), Ok(()));
    sup.shutdown().await;

    // A node that keeps dying: named with its last error.
    let sup =
        builder()
            .current_arbiter()
            .backoff(backoff_ms(100))
            .start(|ctx: Context| async move {
                ctx.run("db", |_: Context| async {
                    RunResult::Err("connection refused".into())
                })
                .await?;
                serve(&ctx).await
            });
    let err = sup.wait_ready(Duration::from_secs(5)).await.unwrap_err();
    let said = err.to_string();
    assert!(
        said.starts_with("not ready within 5s: root.db (DEAD"),
        "{said}"
    );
    assert!(
        said.contains("last error: returned error: connection refused"),
        "{said}"
    );
    assert_eq!(err.readiness.not_ready.len(), 1);
    sup.shutdown().await;
}

/// `wait_addrs` gives where a server listens once it does; a DN that will
/// not be started is `NotFound`, a shut-down supervisor `ShutDown`; the
/// admin listener's runnable knows its own address.
#[actix_rt::test]
async fn wait_addrs_gives_where_a_server_listens() {
    let status = Arc::new(Mutex::new(None::<actix_supervisor::web::BoundAddrs>));
    let admin_addrs = status.clone();
    let sup = builder().start(move |ctx: Context| {
        let admin_addrs = admin_addrs.clone();
        async move {
            let admin = Status::new(ctx.supervisor()).server("127.0.0.1:0");
            *admin_addrs.lock().unwrap() = Some(admin.addrs());
            ctx.run("admin", admin).await?;
            ctx.run(
                "http",
                server("127.0.0.1:0", || {
                    App::new().route(
                        "/",
                        web::get().to(|| async { HttpResponse::Ok().body("hi") }),
                    )
                })
                .workers(1),
            )
            .await?;
            serve(&ctx).await
        }
    });
    let public = sup.wait_addrs("root.http").await.unwrap();
    assert_eq!(public.len(), 1);
    assert_eq!(
        fetch(public[0], "GET", "/").await.unwrap(),
        (200, "hi".to_string())
    );
    let bound = status.lock().unwrap().clone().unwrap();
    let admin = bound.wait().await;
    assert_eq!(sup.wait_addrs("root.admin").await.unwrap(), admin);
    assert_eq!(fetch(admin[0], "GET", "/healthz").await.unwrap().0, 200);
    // The root is past its set-up: a typo is not waited for.
    sup.wait_ready(Duration::from_secs(10)).await.unwrap();
    let typo = sup.wait_addrs("root.htpp").await;
    assert!(
        matches!(typo, Err(actix_supervisor::RunError::NotFound { ref dn }) if dn == "root.htpp"),
        "{typo:?}"
    );
    assert!(matches!(
        sup.wait_addrs("nope").await,
        Err(actix_supervisor::RunError::NotFound { .. })
    ));
    sup.shutdown().await;
    assert!(matches!(
        sup.wait_addrs("root.http").await,
        Err(actix_supervisor::RunError::ShutDown { .. })
    ));
}
