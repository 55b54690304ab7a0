//! The `web` feature: the status endpoints, and a supervised actix-web
//! server over a real socket on 127.0.0.1.

use crate::common;

use std::sync::{Arc, Mutex};

use actix_supervisor::prometheus::PrometheusMetrics;
use actix_supervisor::prometheus_client::registry::Registry;
use actix_supervisor::web::{server, Status};
use actix_supervisor::{Context, Group, NodeState, Signal};
use actix_web::{test, web, App, HttpResponse};
use common::*;

#[actix_rt::test]
async fn the_status_endpoints_tell_the_tree() {
    init_log();
    let mut registry = Registry::default();
    let metrics = PrometheusMetrics::new(&mut registry);
    let registry = Arc::new(Mutex::new(registry));
    let board = Switchboard::default();
    let b = board.clone();
    let (sink, mut feed) = transitions();
    let sup = builder()
        .backoff(backoff_ms(3_600_000))
        .metrics(metrics)
        .metrics(sink)
        .start(move |ctx: Context| {
            let b = b.clone();
            async move {
                ctx.run_group(Group::new().with("a", b.runnable()).with("b", b.runnable()))
                    .await?;
                serve(&ctx).await
            }
        });
    sup.wait_settled().await;
    let status = Status::new(sup.clone()).metrics(registry);
    let app =
        test::init_service(App::new().service(web::scope("/status").configure(status.config())))
            .await;
    let get = |path: &str| test::TestRequest::get().uri(path).to_request();

    let res = test::call_service(&app, get("/status/healthz")).await;
    assert_eq!(res.status(), 200);
    let res = test::call_service(&app, get("/status/readyz")).await;
    assert_eq!(res.status(), 200);

    // a dies and waits out an hour of backoff; b is cancelled and restarts.
    assert!(board.kill("root.a").await);
    await_state(&mut feed, "root.a", NodeState::Dead, 1).await;
    sup.wait_settled().await;
    let res = test::call_service(&app, get("/status/readyz")).await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(body["ready"], false);
    assert_eq!(body["not_ready"][0]["dn"], "root.a");
    assert_eq!(body["not_ready"][0]["waiting"], true);
    assert_eq!(body["not_ready"][0]["last_error"], "returned error: killed");

    let text = test::call_and_read_body(&app, get("/status/tree")).await;
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(
        text.contains("↻ a") && text.contains("restart in"),
        "{text}"
    );
    let json: serde_json::Value =
        test::call_and_read_body_json(&app, get("/status/tree.json")).await;
    assert_eq!(json.as_array().unwrap().len(), 3);
    let html = test::call_and_read_body(&app, get("/status/")).await;
    let html = String::from_utf8(html.to_vec()).unwrap();
    assert!(
        html.contains("<tr data-dn=\"root.a\" class=\"DEAD\">"),
        "{html}"
    );
    assert!(html.contains("returned error: killed"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    let logs: serde_json::Value =
        test::call_and_read_body_json(&app, get("/status/logs?dn=supervisor")).await;
    assert!(logs
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["message"].as_str().unwrap().contains("root.a died")));
    // Counters move when the restart is decided (a and b restarted, a's
    // death an error).
    let metrics = test::call_and_read_body(&app, get("/status/metrics")).await;
    let metrics = String::from_utf8(metrics.to_vec()).unwrap();
    assert!(
        metrics.contains("actix_supervisor_restarts_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("actix_supervisor_exits_total{kind=\"error\"} 1"),
        "{metrics}"
    );
    sup.shutdown().await;
}

fn hello_app() -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new().route(
        "/",
        web::get().to(|| async { HttpResponse::Ok().body("hello") }),
    )
}

/// The server serves, survives a sibling's death (restarted with its group,
/// the process and its System untouched), and lets go of its port on
/// shutdown.
#[actix_rt::test]
async fn a_supervised_server_serves_restarts_with_its_group_and_stops() {
    init_log();
    let http = server("127.0.0.1:0", hello_app);
    let addrs = http.addrs();
    let board = Switchboard::default();
    let b = board.clone();
    let (sink, mut feed) = transitions();
    let http = Arc::new(Mutex::new(Some(http)));
    let sup = builder().metrics(sink).start(move |ctx: Context| {
        let (b, http) = (b.clone(), http.lock().unwrap().take());
        async move {
            if let Some(http) = http {
                ctx.run_group(
                    Group::new()
                        .with("http", http)
                        .with("sibling", b.runnable()),
                )
                .await?;
            }
            serve(&ctx).await
        }
    });
    await_state(&mut feed, "root.http", NodeState::Healthy, 1).await;
    let first = addrs.get()[0];
    assert_eq!(
        fetch(first, "GET", "/").await.unwrap(),
        (200, "hello".to_string())
    );

    // The sibling dies: the server is cancelled, stops, and comes back.
    assert!(board.kill("root.sibling").await);
    await_state(&mut feed, "root.http", NodeState::Cancelled, 1).await;
    await_state(&mut feed, "root.http", NodeState::Healthy, 1).await;
    let second = addrs.get()[0];
    assert_eq!(
        fetch(second, "GET", "/").await.unwrap(),
        (200, "hello".to_string())
    );
    assert!(
        actix_rt::System::try_current().is_some(),
        "the System is still running"
    );
    let http = info(&sup, "root.http").await;
    assert_eq!((http.state, http.restarts), (NodeState::Healthy, 1));

    sup.shutdown().await;
    assert!(addrs.get().is_empty());
    assert!(
        fetch(second, "GET", "/").await.is_err(),
        "the port is let go"
    );
}

/// A server that cannot bind dies with the address and the OS error.
#[actix_rt::test]
async fn a_bind_error_is_a_death_naming_the_address() {
    init_log();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (sink, mut feed) = transitions();
    let sup = builder()
        .backoff(backoff_ms(3_600_000))
        .metrics(sink)
        .start(move |ctx: Context| async move {
            ctx.run("http", server(addr.to_string(), hello_app)).await?;
            ctx.signal(Signal::Healthy)?;
            ctx.cancelled().await;
            Ok(())
        });
    await_state(&mut feed, "root.http", NodeState::Dead, 1).await;
    let reason = info(&sup, "root.http").await.last_error.unwrap();
    assert!(
        reason.starts_with(&format!("returned error: cannot listen on {addr}: ")),
        "{reason}"
    );
    assert!(reason.to_lowercase().contains("in use"), "{reason}");
    sup.shutdown().await;
}
