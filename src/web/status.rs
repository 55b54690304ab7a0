//! [`Status`]: the supervisor's status endpoints and page, to mount in an
//! application or serve on a private listener of their own.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::error::{InternalError, QueryPayloadError};
use actix_web::{web, App, HttpRequest, HttpResponse};
use prometheus_client::registry::Registry;

use super::server::{server, BoundAddrs};
use super::{actions, page};
use crate::api::context::Context;
use crate::api::runnable::Runnable;
use crate::api::supervisor::Supervisor;
use crate::fleet::Fleet;
use crate::model::error::RunError;
use crate::model::error::RunResult;
use crate::model::health::Liveness;
use crate::model::policy::Shutdown;
use crate::model::read::query::{Query, Selection};
use crate::model::read::render::TextTree;
use crate::model::records::NodeState;
use futures::future::LocalBoxFuture;

/// The supervisor's status, to mount in an application: `/healthz`,
/// `/readyz`, `/metrics`, `/tree`, `/tree.json`, `/logs`, `/fleet.json`
/// (with [`fleet`](Self::fleet)) and an HTML page at `/`. Read-only unless
/// the service turns on the operator's actions
/// ([`allow_actions`](Self::allow_actions)).
///
/// ```no_run
/// # use actix_supervisor::{web::Status, Supervisor};
/// # fn f(sup: Supervisor) {
/// let status = Status::new(sup);
/// let app = actix_web::App::new().service(actix_web::web::scope("/status").configure(status.config()));
/// # }
/// ```
#[derive(Clone)]
pub struct Status {
    pub(super) sup: Supervisor,
    registry: Option<Arc<Mutex<Registry>>>,
    grace: Duration,
    logs: bool,
    pub(super) fleet: Option<Fleet>,
    pub(super) actions: bool,
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Status")
            .field("metrics", &self.registry.is_some())
            .field("readiness_grace", &self.grace)
            .field("logs", &self.logs)
            .field("fleet", &self.fleet.as_ref().map(Fleet::id))
            .field("actions", &self.actions)
            .finish_non_exhaustive()
    }
}

/// How many records `/tree.json` returns without `?limit=`.
pub const TREE_JSON_LIMIT: usize = 10_000;

/// The most `/tree.json`'s `?limit=` may ask for.
pub const TREE_JSON_MAX_LIMIT: usize = 100_000;

/// How long `/healthz` waits for the processor to answer.
const HEALTH_BOUND: Duration = Duration::from_millis(500);

impl Status {
    /// The status of `sup`. With the supervisor built with
    /// [`prometheus()`](crate::SupervisorBuilder::prometheus), `/metrics`
    /// serves its registry.
    pub fn new(sup: Supervisor) -> Status {
        let registry = sup.registry();
        Status {
            sup,
            registry,
            grace: Duration::ZERO,
            logs: true,
            fleet: None,
            actions: false,
        }
    }

    /// Shows `fleet` on the page (this replica, the members, the leases
    /// held here) and at `/fleet.json`. Singleton nodes show their lease's
    /// holder and fencing token in the tree either way.
    pub fn fleet(mut self, fleet: &Fleet) -> Self {
        self.fleet = Some(fleet.clone());
        self
    }

    /// Serves `registry` at `/metrics` (for example the one a
    /// [`PrometheusMetrics`](crate::prometheus::PrometheusMetrics) records in),
    /// instead of the supervisor's own.
    pub fn metrics(mut self, registry: Arc<Mutex<Registry>>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// How long a node that was ready may be unready before `/readyz` says
    /// so. Default zero: a death makes the service unready at once. A node
    /// that has never been up (HEALTHY or DONE) since the supervisor
    /// started is never covered, however often it restarts: the service is
    /// not ready before every node that counts has come up once. Set it a little above the backoff
    /// a flapping dependency usually needs (and below the time the load
    /// balancer may keep sending to a broken pod), so that one quick restart
    /// does not take the pod out of the load balancer; see `docs/deploy.md`.
    pub fn readiness_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Whether the page offers an operator's actions (default: no): a
    /// restart button on every node ([`Supervisor::restart`]) and a
    /// terminate button on every dynamic child
    /// ([`Dynamic::terminate_child`](crate::Dynamic::terminate_child)).
    /// They are POSTs to `actions/restart?dn=…` and
    /// `actions/terminate?dn=…`, taken only from the page's own origin (a
    /// cross-site form or script is refused with 403, a GET does nothing),
    /// and each is said by the supervisor (`operator_action`, naming the
    /// action, the DN and the caller's address). Off, the page shows no
    /// buttons and the endpoints answer 403. Turn it on only where the
    /// status is on a private listener ([`server`](Self::server)) or behind
    /// the service's own authentication.
    ///
    /// ```no_run
    /// # use actix_supervisor::{web::Status, Context, RunResult};
    /// # async fn root(ctx: Context) -> RunResult {
    /// let admin = Status::new(ctx.supervisor()).allow_actions(true).server("127.0.0.1:9090");
    /// ctx.run("admin", admin).await?;
    /// # Ok(()) }
    /// ```
    pub fn allow_actions(mut self, on: bool) -> Self {
        self.actions = on;
        self
    }

    /// Whether `/logs` is served (default: yes). Log lines may hold what the
    /// public should not read: turn it off where the status is not on a
    /// private listener (see [`server`](Self::server)).
    pub fn logs(mut self, on: bool) -> Self {
        self.logs = on;
        self
    }

    /// A runnable serving this status alone at `/` on `addr`, meant for a
    /// private (loopback or cluster-internal) admin listener apart from the
    /// application's public one:
    ///
    /// ```no_run
    /// # use actix_supervisor::{web::Status, Context, RunResult};
    /// # async fn root(ctx: Context) -> RunResult {
    /// ctx.run("admin", Status::new(ctx.supervisor()).server("127.0.0.1:9090")).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// The runnable knows where it listens ([`AdminServer::addrs`]): with
    /// port 0, `admin.addrs().wait().await` gives the port it got.
    pub fn server(&self, addr: impl Into<String>) -> AdminServer {
        let config = self.config();
        let server = server(addr, move || App::new().configure(config.clone())).workers(1);
        AdminServer {
            addrs: server.addrs(),
            server: Box::new(server),
        }
    }

    /// The routes, for `App::configure` or `Scope::configure`.
    pub fn config(&self) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
        let status = self.clone();
        move |cfg: &mut web::ServiceConfig| {
            let s = status.clone();
            let logs_on = s.logs;
            cfg.app_data(web::Data::new(s))
                .app_data(web::QueryConfig::default().error_handler(bad_query))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(metrics))
                .route("/tree", web::get().to(tree_text))
                .route("/tree.json", web::get().to(tree_json))
                .route("/page.json", web::get().to(page::page_json))
                .route("/fleet.json", web::get().to(fleet_json))
                .route("/actions/restart", web::post().to(actions::restart))
                .route("/actions/terminate", web::post().to(actions::terminate))
                .route("/", web::get().to(page::page))
                .route("", web::get().to(page::page));
            if logs_on {
                cfg.route("/logs", web::get().to(logs));
            }
        }
    }
}

/// The status on a listener of its own, from [`Status::server`]: a
/// runnable, and a handle to where it listens.
pub struct AdminServer {
    server: Box<dyn Runnable>,
    addrs: BoundAddrs,
}

impl AdminServer {
    /// Where it listens, whichever incarnation runs (see [`BoundAddrs`]).
    pub fn addrs(&self) -> BoundAddrs {
        self.addrs.clone()
    }
}

impl fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminServer")
            .field("listening", &self.addrs.get())
            .finish_non_exhaustive()
    }
}

impl Runnable for AdminServer {
    fn run(&mut self, ctx: Context) -> LocalBoxFuture<'static, RunResult> {
        self.server.run(ctx)
    }

    fn shutdown(&self, configured: Shutdown) -> Shutdown {
        self.server.shutdown(configured)
    }
}

/// Alive: the processor answers within [`HEALTH_BOUND`] and is not shutting
/// down (see [`Supervisor::liveness`]).
async fn healthz(s: web::Data<Status>) -> HttpResponse {
    match s.sup.liveness(HEALTH_BOUND).await {
        Liveness::Alive => HttpResponse::Ok().body("ok\n"),
        Liveness::Wedged => HttpResponse::ServiceUnavailable().body(format!(
            "the supervisor's processor did not answer within {HEALTH_BOUND:?} (wedged)\n"
        )),
        other => HttpResponse::ServiceUnavailable().body(format!("{other}\n")),
    }
}

/// Ready (see [`Supervisor::readiness`]): 200, or 503 with what is not.
async fn readyz(s: web::Data<Status>) -> HttpResponse {
    let r = s.sup.readiness(s.grace).await;
    if r.draining {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "ready": false, "draining": true }));
    }
    if r.ready {
        return HttpResponse::Ok().json(serde_json::json!({ "ready": true }));
    }
    let list: Vec<_> = r
        .not_ready
        .iter()
        .map(|n| {
            serde_json::json!({
                "dn": n.dn,
                "state": n.state,
                "waiting": n.restart_at.is_some(),
                "overloaded": n.overloaded,
                "queued": n.queued,
                "last_error": n.last_error,
            })
        })
        .collect();
    HttpResponse::ServiceUnavailable()
        .json(serde_json::json!({ "ready": false, "not_ready": list }))
}

async fn metrics(s: web::Data<Status>) -> HttpResponse {
    let Some(registry) = &s.registry else {
        return HttpResponse::NotFound().body("no metrics registry was given to the status\n");
    };
    let mut text = String::new();
    let encoded = {
        let r = registry.lock().unwrap_or_else(PoisonError::into_inner);
        prometheus_client::encoding::text::encode(&mut text, &r)
    };
    match encoded {
        Ok(()) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text),
        Err(e) => HttpResponse::InternalServerError().body(format!("encoding failed: {e}\n")),
    }
}

/// A malformed query string: 400, saying what was wrong.
fn bad_query(err: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let body = format!("bad query: {err}\n");
    InternalError::from_response(err, HttpResponse::BadRequest().body(body)).into()
}

pub(super) fn bad_request(why: String) -> HttpResponse {
    HttpResponse::BadRequest().body(why + "\n")
}

/// `dn` if it is a DN (`root`, or `root.` and names), else why not.
pub(super) fn check_dn(dn: &str) -> Result<(), String> {
    let mut parts = dn.split('.');
    let rooted = parts.next() == Some(crate::model::tree::ROOT_NAME);
    if rooted && parts.all(crate::model::name::is_valid_name) {
        Ok(())
    } else {
        Err(format!(
            "bad dn {:?}: a DN is root, then names of a-z, 0-9 and _ after dots (root.http.listener)",
            dn.chars().take(200).collect::<String>()
        ))
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeQuery {
    dn: Option<String>,
    depth: Option<String>,
    state: Option<String>,
    limit: Option<String>,
    finished: Option<String>,
    queued: Option<String>,
}

/// `value` of the parameter `name` as a number, or why not.
fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| {
        format!(
            "bad {name} {:?}: a whole number, 0 or more, that fits in {} bits",
            value.chars().take(50).collect::<String>(),
            8 * std::mem::size_of::<T>()
        )
    })
}

impl TreeQuery {
    /// The query, or why it is not one.
    fn to_query(&self, default_limit: Option<usize>) -> Result<Query, String> {
        let mut q = Query::new();
        if let Some(dn) = &self.dn {
            check_dn(dn)?;
            q = q.dn(dn.as_str());
        }
        if let Some(depth) = &self.depth {
            q = q.depth(number("depth", depth)?);
        }
        if let Some(state) = &self.state {
            q = match state.as_str() {
                "not_healthy" | "unhealthy" => q.not_healthy(),
                "overloaded" => q.overloaded(),
                list => q.states(&parse_states(list)?),
            };
        }
        if let Some(queued) = &self.queued {
            q = q.queued(number("queued", queued)?);
        }
        if let Some(finished) = &self.finished {
            q = q.finished(match finished.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(format!(
                        "bad finished {:?}: true or false",
                        other.chars().take(50).collect::<String>()
                    ))
                }
            });
        }
        let limit: Option<usize> = self
            .limit
            .as_deref()
            .map(|n| number("limit", n))
            .transpose()?;
        match limit {
            Some(n) if n > TREE_JSON_MAX_LIMIT => {
                return Err(format!(
                    "limit {n} is over {TREE_JSON_MAX_LIMIT}: narrow the query with dn= and depth= instead"
                ))
            }
            Some(n) => q = q.limit(n),
            None => {
                if let Some(n) = default_limit {
                    q = q.limit(n);
                }
            }
        }
        Ok(q)
    }
}

/// `NEW,DEAD` (any case) as states.
fn parse_states(list: &str) -> Result<Vec<NodeState>, String> {
    list.split(',')
        .map(|s| match s.to_ascii_uppercase().as_str() {
            "NEW" => Ok(NodeState::New),
            "HEALTHY" => Ok(NodeState::Healthy),
            "DEAD" => Ok(NodeState::Dead),
            "DONE" => Ok(NodeState::Done),
            "CANCELLED" => Ok(NodeState::Cancelled),
            _ => Err(format!(
                "bad state {:?}: one of NEW, HEALTHY, DEAD, DONE, CANCELLED (comma-separated), not_healthy, or overloaded",
                s.chars().take(50).collect::<String>()
            )),
        })
        .collect()
}

/// Runs `q`, answering 404 for an unknown DN and 503 when the supervisor
/// is gone.
async fn run_query(s: &Status, q: &Query) -> Result<Selection, HttpResponse> {
    s.sup.query(q).await.map_err(|e| match e {
        RunError::NotFound { dn } => {
            HttpResponse::NotFound().body(format!("no node {dn} in the tree\n"))
        }
        other => HttpResponse::ServiceUnavailable().body(format!("{other}\n")),
    })
}

/// The text render of the (sub)tree `?dn=`, `?depth=` levels deep.
async fn tree_text(s: web::Data<Status>, q: web::Query<TreeQuery>) -> HttpResponse {
    let query = match q.to_query(Some(TREE_JSON_LIMIT)) {
        Ok(query) => query,
        Err(why) => return bad_request(why),
    };
    match run_query(&s, &query).await {
        Ok(sel) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .insert_header(("X-Truncated", sel.truncated.to_string()))
            .body(TextTree::new(&sel.nodes).to_string()),
        Err(res) => res,
    }
}

/// The records `?dn=`, `?depth=`, `?state=` (`overloaded`: actor nodes in
/// queue alarm), `?queued=` (at least that many messages waiting) and
/// `?limit=` select, at most [`TREE_JSON_LIMIT`] by default;
/// `X-Truncated: true` when more matched.
async fn tree_json(s: web::Data<Status>, q: web::Query<TreeQuery>) -> HttpResponse {
    let query = match q.to_query(Some(TREE_JSON_LIMIT)) {
        Ok(query) => query,
        Err(why) => return bad_request(why),
    };
    match run_query(&s, &query).await {
        Ok(sel) => HttpResponse::Ok()
            .insert_header(("X-Truncated", sel.truncated.to_string()))
            .json(sel.nodes),
        Err(res) => res,
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    dn: String,
    after: Option<String>,
}

/// The node's last 200 log lines (its sub-loggers' too), or those after
/// sequence number `after`, as JSON.
async fn logs(s: web::Data<Status>, q: web::Query<LogsQuery>) -> HttpResponse {
    if q.dn != "supervisor" {
        if let Err(why) = check_dn(&q.dn) {
            return bad_request(why);
        }
    }
    let after: u64 = match q.after.as_deref().map(|a| number("after", a)).transpose() {
        Ok(after) => after.unwrap_or(0),
        Err(why) => return bad_request(why),
    };
    let query = crate::LogQuery::dn(&q.dn);
    let entries = s.sup.logs().backlog(&query);
    let fresh: Vec<_> = entries.iter().filter(|e| e.seq > after).collect();
    let lines: Vec<_> = fresh[fresh.len().saturating_sub(200)..]
        .iter()
        .map(|e| {
            serde_json::json!({
                "seq": e.seq,
                "dn": &*e.dn,
                "level": e.level.map(|l| l.to_string()),
                "message": e.message,
            })
        })
        .collect();
    HttpResponse::Ok().json(lines)
}

/// `/fleet.json`: this replica's fleet (its id, the store, whether its
/// session stands, the leases it holds, the members); 404 without one.
async fn fleet_json(s: web::Data<Status>) -> HttpResponse {
    match &s.fleet {
        Some(f) => HttpResponse::Ok().json(page::fleet_json(f)),
        None => {
            HttpResponse::NotFound().body("no fleet: this status was made without Status::fleet\n")
        }
    }
}
