//! The operator's actions on the status page (`Status::allow_actions`):
//! off by default (403, no buttons), POST only, from the page's own origin
//! only, each said by the supervisor with the action, the DN and the
//! caller's address. The browser test (`browser.rs`) clicks one.

use crate::common;

use super::probes::status_app;
use actix_supervisor::web::Status;
use actix_supervisor::{Child, Context, DynamicGroup, LogQuery, NodeState};
use actix_web::test;
use common::*;

const HOST: &str = "admin.local:9090";
const PEER: &str = "10.1.2.3:45678";

/// root → {a (a switchboard runnable), jobs (dynamic, with j1)}.
async fn tree(board: &Switchboard) -> actix_supervisor::Supervisor {
    let b = board.clone();
    let sup = builder().backoff(backoff_ms(1)).start(move |ctx: Context| {
        let b = b.clone();
        async move {
            ctx.run("a", b.runnable()).await?;
            let jobs = ctx.run_dynamic("jobs", DynamicGroup::new()).await?;
            jobs.start_child(Child::new("j1", b.runnable())).await?;
            serve(&ctx).await
        }
    });
    sup.wait_settled().await;
    sup
}

fn post(path: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(path)
        .insert_header(("host", HOST))
        .peer_addr(PEER.parse().unwrap())
}

async fn body(res: actix_web::dev::ServiceResponse) -> (u16, String) {
    let code = res.status().as_u16();
    let bytes = test::read_body(res).await;
    (code, String::from_utf8_lossy(&bytes).into_owned())
}

#[actix_rt::test]
async fn actions_are_off_by_default_and_the_page_shows_no_buttons() {
    init_log();
    let board = Switchboard::default();
    let sup = tree(&board).await;
    let status = Status::new(sup.clone());
    let app = status_app(status).await;
    let res =
        test::call_service(&app, post("/status/actions/restart?dn=root.a").to_request()).await;
    let (code, text) = body(res).await;
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("Status::allow_actions(true)"), "{text}");
    sup.wait_settled().await;
    assert_eq!(
        info(&sup, "root.a").await.incarnation,
        1,
        "nothing restarted"
    );
    let page =
        test::call_service(&app, test::TestRequest::get().uri("/status/").to_request()).await;
    let (_, html) = body(page).await;
    assert!(!html.contains("<button"), "no buttons without actions");
    let json: serde_json::Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri("/status/page.json")
            .to_request(),
    )
    .await;
    assert_eq!(json["actions"], false);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn a_same_origin_post_restarts_and_terminates_and_is_said() {
    init_log();
    let board = Switchboard::default();
    let sup = tree(&board).await;
    let status = Status::new(sup.clone()).allow_actions(true);
    let app = status_app(status).await;

    // The page offers them: restart on every row, terminate on j1's.
    let page =
        test::call_service(&app, test::TestRequest::get().uri("/status/").to_request()).await;
    let (_, html) = body(page).await;
    assert!(
        html.contains("data-action=\"restart\" data-dn=\"root.a\""),
        "{html}"
    );
    let json: serde_json::Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri("/status/page.json?open=root.jobs")
            .to_request(),
    )
    .await;
    assert_eq!(json["actions"], true);
    let j1 = json["tree"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["dn"] == "root.jobs.j1");
    assert_eq!(j1.expect("j1 shown")["dynamic_child"], true);

    // Same origin, as the page's fetch sends it.
    let req = post("/status/actions/restart?dn=root.a")
        .insert_header(("origin", format!("http://{HOST}")))
        .insert_header(("sec-fetch-site", "same-origin"))
        .to_request();
    let (code, text) = body(test::call_service(&app, req).await).await;
    assert_eq!((code, text.as_str()), (200, "restart root.a: done\n"));
    sup.wait_settled().await;
    assert_eq!(info(&sup, "root.a").await.incarnation, 2);

    // No Origin at all (curl on the admin network): let through.
    let req = post("/status/actions/terminate?dn=root.jobs.j1").to_request();
    let (code, text) = body(test::call_service(&app, req).await).await;
    assert_eq!(code, 200, "{text}");
    sup.wait_settled().await;
    assert!(sup.snapshot().await.iter().all(|n| n.dn != "root.jobs.j1"));

    // Said, with the action, the DN and the caller.
    let said = messages(&sup, LogQuery::dn("supervisor"));
    for want in [
        format!("operator at {PEER}: restart root.a from the status page: done"),
        format!("operator at {PEER}: terminate root.jobs.j1 from the status page: done"),
    ] {
        assert!(said.iter().any(|l| l.contains(&want)), "{want} in {said:?}");
    }

    // A refused action is answered as its error, and said too.
    let req = post("/status/actions/restart?dn=root.nope").to_request();
    let (code, text) = body(test::call_service(&app, req).await).await;
    assert_eq!(code, 404, "{text}");
    let req = post("/status/actions/terminate?dn=root.a").to_request();
    let (code, _) = body(test::call_service(&app, req).await).await;
    assert_eq!(code, 404, "root.a is no dynamic child");
    let req = post("/status/actions/restart?dn=Root..x").to_request();
    let (code, _) = body(test::call_service(&app, req).await).await;
    assert_eq!(code, 400);
    let said = messages(&sup, LogQuery::dn("supervisor"));
    assert!(
        said.iter()
            .any(|l| l.contains("restart root.nope from the status page: refused")),
        "{said:?}"
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn no_action_from_a_get_or_another_site() {
    init_log();
    let board = Switchboard::default();
    let sup = tree(&board).await;
    let status = Status::new(sup.clone()).allow_actions(true);
    let app = status_app(status).await;
    let attempts = [
        // A link or an image: a GET.
        test::TestRequest::get()
            .uri("/status/actions/restart?dn=root.a")
            .insert_header(("host", HOST)),
        // A cross-site form POST: its Origin is the other site's.
        post("/status/actions/restart?dn=root.a").insert_header(("origin", "https://evil.example")),
        // A sandboxed frame's: Origin null.
        post("/status/actions/restart?dn=root.a").insert_header(("origin", "null")),
        // A browser that says it is cross-site, whatever the Origin.
        post("/status/actions/restart?dn=root.a")
            .insert_header(("origin", format!("http://{HOST}")))
            .insert_header(("sec-fetch-site", "cross-site")),
        post("/status/actions/restart?dn=root.a").insert_header(("sec-fetch-site", "same-site")),
    ];
    for req in attempts {
        let res = test::call_service(&app, req.to_request()).await;
        let (code, text) = body(res).await;
        assert!(code == 403 || code == 404 || code == 405, "{code}: {text}");
        if code == 403 {
            assert!(text.contains("only the page itself may act"), "{text}");
        }
    }
    sup.wait_settled().await;
    let a = info(&sup, "root.a").await;
    assert_eq!(
        (a.state, a.incarnation),
        (NodeState::Healthy, 1),
        "nothing restarted"
    );
    sup.shutdown().await;
}
