//! The operator's hands on the status page: a node restarted on request,
//! a dynamic child terminated. Off unless the service says
//! [`Status::allow_actions(true)`](super::Status::allow_actions); each is a
//! POST that must come from the page's own origin (a cross-site form or
//! fetch is refused, as is any GET), and each is said by the supervisor,
//! naming the action, the DN and the caller's address.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use log::Level;

use super::status::{bad_request, check_dn, Status};
use crate::model::voice::Said;

/// `?dn=root.jobs.j1`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Target {
    dn: String,
}

/// What an operator may do.
#[derive(Clone, Copy)]
enum Action {
    Restart,
    Terminate,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Restart => "restart",
            Action::Terminate => "terminate",
        }
    }
}

pub(super) async fn restart(
    s: web::Data<Status>,
    req: HttpRequest,
    q: web::Query<Target>,
) -> HttpResponse {
    act(&s, &req, &q.dn, Action::Restart).await
}

pub(super) async fn terminate(
    s: web::Data<Status>,
    req: HttpRequest,
    q: web::Query<Target>,
) -> HttpResponse {
    act(&s, &req, &q.dn, Action::Terminate).await
}

async fn act(s: &Status, req: &HttpRequest, dn: &str, action: Action) -> HttpResponse {
    if !s.actions {
        return HttpResponse::Forbidden().body(
            "actions are off on this status page: the service turns them on with \
             Status::allow_actions(true)\n",
        );
    }
    if let Err(why) = same_origin(req) {
        return HttpResponse::Forbidden().body(format!("refused: {why}\n"));
    }
    if let Err(why) = check_dn(dn) {
        return bad_request(why);
    }
    let from = req
        .peer_addr()
        .map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
    let done = match action {
        Action::Restart => s.sup.restart(dn).await,
        Action::Terminate => match dn.rsplit_once('.') {
            Some((parent, name)) => s.sup.dynamic(parent).terminate_child(name).await,
            None => return bad_request(format!("{dn} is the root: not a dynamic child")),
        },
    };
    let verb = action.name();
    let outcome = match &done {
        Ok(()) => "done".to_string(),
        Err(e) => format!("refused: {e}"),
    };
    let message = format!("operator at {from}: {verb} {dn} from the status page: {outcome}");
    let at: std::sync::Arc<str> = dn.into();
    s.sup
        .say(Said::new(Level::Warn, "operator_action", message).dn(&at));
    match done {
        Ok(()) => HttpResponse::Ok().body(format!("{verb} {dn}: done\n")),
        Err(e) => e.error_response(),
    }
}

/// Whether the request comes from the page's own origin: a browser says
/// where a request comes from (`Sec-Fetch-Site`, `Origin`), and a
/// cross-site form or script cannot hide it. A client that says neither
/// (curl, a script on the admin network) is no browser a page could
/// drive, and is let through.
fn same_origin(req: &HttpRequest) -> Result<(), String> {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("?");
        if site != "same-origin" && site != "none" {
            return Err(format!(
                "a {site} request (Sec-Fetch-Site); only the page itself may act"
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("?");
        let info = req.connection_info();
        let here = info.host();
        let host = origin.split_once("://").map_or("", |(_, h)| h);
        if host != here {
            return Err(format!(
                "a request from origin {origin:?}, not this page's ({here}); only the page itself may act"
            ));
        }
    }
    Ok(())
}
