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

mod actions;
mod errors;
mod page;
mod server;
mod status;

pub use server::{server, BoundAddrs, Server};
pub use status::{AdminServer, Status, TREE_JSON_LIMIT, TREE_JSON_MAX_LIMIT};
