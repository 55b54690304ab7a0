//! An actix-web service inside the tree (the `web` feature): a supervised
//! HTTP server ([`server`]) and the supervisor's status endpoints and page
//! ([`Status`]) to mount in an application.
//!
//! ```no_run
//! use actix_supervisor::web::{server, Status};
//! use actix_supervisor::{Context, RunResult, Signal};
//! use actix_web::{web, App, HttpResponse};
//!
//! async fn root(ctx: Context) -> RunResult {
//!     let status = Status::new(ctx.supervisor());
//!     ctx.run("http", server("127.0.0.1:8080", move || {
//!         App::new()
//!             .service(web::scope("/status").configure(status.config()))
//!             .route("/", web::get().to(|| async { HttpResponse::Ok().body("hello") }))
//!     }))
//!     .await?;
//!     ctx.signal(Signal::Healthy)?;
//!     ctx.cancelled().await;
//!     Ok(())
//! }
//! ```
//!
//! Do not wire actix-web's own shutdown to the node by hand
//! (`HttpServer::shutdown_signal(ctx.cancelled())`): actix-server then stops
//! the whole actix `System` when the node is cancelled, so one sibling's
//! death ends the process. [`server`] stops only its own server.

use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::{Request, Response};
use actix_service::IntoServiceFactory;
use actix_web::dev::{AppConfig, Service, ServiceFactory};
use actix_web::error::{InternalError, QueryPayloadError};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures::future::LocalBoxFuture;
use prometheus_client::registry::Registry;

use crate::api::context::Context;
use crate::api::runnable::Runnable;
use crate::api::supervisor::Supervisor;
use crate::model::error::RunError;
use crate::model::error::RunResult;
use crate::model::policy::Shutdown;
use crate::model::read::query::{Query, Selection};
use crate::model::read::render::TextTree;
use crate::model::records::{NodeState, Signal};

mod page;

/// How much longer than the server's graceful period its node's stop
/// deadline is at least.
const STOP_MARGIN: Duration = Duration::from_secs(1);

/// A runnable that serves `factory`'s application on `addr`. See [`Server`].
pub fn server<F, I, S, B>(addr: impl Into<String>, factory: F) -> Server<F, I, S, B>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request> + 'static,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    Server {
        factory,
        addr: addr.into(),
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        grace: Duration::from_secs(3),
        bound: Arc::default(),
        app: PhantomData,
    }
}

/// A supervised actix-web server, made by [`server`].
///
/// On every (re)start it binds its address and signals Healthy once it
/// listens; a bind error (address in use, permission) is a death naming the
/// address and the OS error, retried with backoff. On cancellation it stops
/// accepting, lets requests in flight finish within its grace period, and
/// returns. Its HTTP workers are actix-web's own arbiters; a handler's panic
/// stays actix-web's business (a 500), while the server stopping by itself
/// is the node's death. actix-web's signal handling is off: the supervisor
/// owns the process's signals.
pub struct Server<F, I, S, B> {
    factory: F,
    addr: String,
    workers: usize,
    grace: Duration,
    bound: Arc<Mutex<Vec<SocketAddr>>>,
    app: AppTypes<I, S, B>,
}

impl<F, I, S, B> Server<F, I, S, B> {
    /// How many HTTP worker threads actix-web runs. Default: as actix-web,
    /// one per core.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// How long requests in flight may take to finish once the node is
    /// cancelled. Default 3 s. The node's stop deadline is widened to fit.
    pub fn grace(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }

    /// A handle to the addresses the current incarnation listens on (useful
    /// with port 0); empty while it does not listen.
    pub fn addrs(&self) -> BoundAddrs {
        BoundAddrs(self.bound.clone())
    }
}

impl<F, I, S, B> fmt::Debug for Server<F, I, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("workers", &self.workers)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

/// The application's types, as `HttpServer` has them (a function pointer:
/// `Send` and `Sync` whatever they are).
type AppTypes<I, S, B> = PhantomData<fn() -> (I, S, B)>;

/// The addresses a [`Server`] listens on, whichever incarnation runs.
#[derive(Clone, Debug)]
pub struct BoundAddrs(Arc<Mutex<Vec<SocketAddr>>>);

impl BoundAddrs {
    /// The addresses, empty while the server does not listen.
    pub fn get(&self) -> Vec<SocketAddr> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Clears the bound addresses when the incarnation ends, however it ends.
struct Unbind(Arc<Mutex<Vec<SocketAddr>>>);

impl Drop for Unbind {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl<F, I, S, B> Runnable for Server<F, I, S, B>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request> + 'static,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    fn run(&mut self, ctx: Context) -> LocalBoxFuture<'static, RunResult> {
        let factory = self.factory.clone();
        let (addr, workers, grace) = (self.addr.clone(), self.workers, self.grace);
        let bound = self.bound.clone();
        // Every request is served inside the node's span (handlers run on
        // actix-web's own threads): its events are the node's, and a request
        // span made inside (tracing-actix-web's) is the node span's child.
        #[cfg(feature = "tracing")]
        let factory = {
            // `run` is called inside the incarnation's span.
            let span = ::tracing::Span::current();
            move || {
                use ::tracing::Instrument;
                let span = span.clone();
                actix_service::apply_fn_factory(factory(), move |req, srv: &S::Service| {
                    srv.call(req).instrument(span.clone())
                })
            }
        };
        Box::pin(async move {
            let server = HttpServer::new(factory)
                .workers(workers)
                .disable_signals()
                .shutdown_timeout(grace.as_secs().max(1))
                .bind(addr.as_str())
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            *bound.lock().unwrap_or_else(PoisonError::into_inner) = server.addrs();
            ctx.report_addrs(server.addrs());
            let _unbind = Unbind(bound);
            let server = server.run();
            let handle = server.handle();
            let mut running = actix_rt::spawn(server);
            ctx.signal(Signal::Healthy)?;
            tokio::select! {
                ended = &mut running => {
                    let why = match ended {
                        Ok(Ok(())) => "stopped by itself".to_string(),
                        Ok(Err(e)) => e.to_string(),
                        Err(e) => e.to_string(),
                    };
                    Err(format!("the server on {addr} ended: {why}").into())
                }
                _ = ctx.cancelled() => {
                    handle.stop(true).await;
                    let _ = running.await;
                    Ok(())
                }
            }
        })
    }

    /// Widens a timeout that leaves no room for the graceful stop.
    fn shutdown(&self, configured: Shutdown) -> Shutdown {
        match configured {
            Shutdown::Timeout(d) => Shutdown::Timeout(d.max(self.grace + STOP_MARGIN)),
            other => other,
        }
    }
}

/// The supervisor's status, to mount in an application: `/healthz`,
/// `/readyz`, `/metrics`, `/tree`, `/tree.json`, `/logs` and an HTML page at
/// `/`. Read-only: nothing here changes the tree.
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
    sup: Supervisor,
    registry: Option<Arc<Mutex<Registry>>>,
    grace: Duration,
    logs: bool,
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Status")
            .field("metrics", &self.registry.is_some())
            .field("readiness_grace", &self.grace)
            .field("logs", &self.logs)
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
        }
    }

    /// Serves `registry` at `/metrics` (for example the one a
    /// [`PrometheusMetrics`](crate::prometheus::PrometheusMetrics) records in),
    /// instead of the supervisor's own.
    pub fn metrics(mut self, registry: Arc<Mutex<Registry>>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// How long a node that was ready may be unready before `/readyz` says
    /// so. Default zero: a death makes the service unready at once. A node's
    /// first start is never covered: the service is not ready before every
    /// node that counts has come up once. Set it a little above the backoff
    /// a flapping dependency usually needs (and below the time the load
    /// balancer may keep sending to a broken pod), so that one quick restart
    /// does not take the pod out of the load balancer; see `docs/deploy.md`.
    pub fn readiness_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
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
    pub fn server(&self, addr: impl Into<String>) -> impl Runnable {
        let config = self.config();
        server(addr, move || App::new().configure(config.clone())).workers(1)
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
                .route("/", web::get().to(page::page))
                .route("", web::get().to(page::page));
            if logs_on {
                cfg.route("/logs", web::get().to(logs));
            }
        }
    }
}

/// Alive: the processor answers within [`HEALTH_BOUND`] and is not shutting
/// down. It answers from its mailbox in O(1), so a slow answer means it is
/// wedged (a sink or a long turn holding its thread).
async fn healthz(s: web::Data<Status>) -> HttpResponse {
    let unavailable = |why: String| HttpResponse::ServiceUnavailable().body(why + "\n");
    match tokio::time::timeout(HEALTH_BOUND, s.sup.running()).await {
        Ok(Some(true)) => HttpResponse::Ok().body("ok\n"),
        Ok(Some(false)) => unavailable("the supervisor is shutting down or shut down".into()),
        Ok(None) => unavailable("the supervisor's processor has stopped".into()),
        Err(_) => unavailable(format!(
            "the supervisor's processor did not answer within {HEALTH_BOUND:?} (wedged)"
        )),
    }
}

async fn readyz(s: web::Data<Status>) -> HttpResponse {
    if s.sup.is_draining().await {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "ready": false, "draining": true }));
    }
    // The processor picks the nodes that are not ready; the others cost no
    // record (a probe of a large tree stays cheap).
    let missing = s.sup.unready(s.grace).await;
    if missing.as_ref().is_some_and(Vec::is_empty) {
        return HttpResponse::Ok().json(serde_json::json!({ "ready": true }));
    }
    let missing = missing.unwrap_or_default();
    let list: Vec<_> = missing
        .iter()
        .map(|n| {
            serde_json::json!({
                "dn": n.dn,
                "state": n.state,
                "waiting": n.restart_at.is_some(),
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

fn bad_request(why: String) -> HttpResponse {
    HttpResponse::BadRequest().body(why + "\n")
}

/// `dn` if it is a DN (`root`, or `root.` and names), else why not.
fn check_dn(dn: &str) -> Result<(), String> {
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
                list => q.states(&parse_states(list)?),
            };
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
            "CANCELED" => Ok(NodeState::Canceled),
            _ => Err(format!(
                "bad state {:?}: one of NEW, HEALTHY, DEAD, DONE, CANCELED (comma-separated), or not_healthy",
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

/// The records `?dn=`, `?depth=`, `?state=` and `?limit=` select, at most
/// [`TREE_JSON_LIMIT`] by default; `X-Truncated: true` when more matched.
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
