//! [`Server`]: a supervised actix-web server, a runnable that binds on every
//! (re)start, is Healthy once it listens, and stops only its own server.

use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::{Request, Response};
use actix_service::IntoServiceFactory;
use actix_web::dev::{AppConfig, Service, ServiceFactory};
use actix_web::HttpServer;
use futures::future::LocalBoxFuture;
use tokio::sync::watch;

use crate::api::context::Context;
use crate::api::runnable::Runnable;
use crate::model::error::RunResult;
use crate::model::policy::Shutdown;
use crate::model::records::Signal;

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
        bound: Arc::new(watch::Sender::new(Vec::new())),
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
    bound: Arc<watch::Sender<Vec<SocketAddr>>>,
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
pub struct BoundAddrs(Arc<watch::Sender<Vec<SocketAddr>>>);

impl BoundAddrs {
    /// The addresses, empty while the server does not listen.
    pub fn get(&self) -> Vec<SocketAddr> {
        self.0.borrow().clone()
    }

    /// Resolves once the server listens, with where (with port 0, the port
    /// it got); at once if it listens now.
    pub async fn wait(&self) -> Vec<SocketAddr> {
        let mut rx = self.0.subscribe();
        let addrs = match rx.wait_for(|addrs| !addrs.is_empty()).await {
            Ok(addrs) => addrs.clone(),
            // The sender is this handle's own: it never closes first.
            Err(_) => Vec::new(),
        };
        addrs
    }
}

/// Clears the bound addresses when the incarnation ends, however it ends.
struct Unbind(Arc<watch::Sender<Vec<SocketAddr>>>);

impl Drop for Unbind {
    fn drop(&mut self) {
        self.0.send_replace(Vec::new());
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
            bound.send_replace(server.addrs());
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
