//! [`RunError`] as an HTTP answer, for the handlers of a job service that
//! start, stop and restart dynamic children on request: `?` in a handler
//! returning `Result<_, RunError>` answers the right status with the
//! error's message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::model::error::RunError;

/// 400 for a request that can never succeed as written (a bad name, an
/// empty group), 409 for one that conflicts with the tree as it is (a name
/// taken, a node past its set-up), 404 for no such node, 503 for what may
/// succeed later (the dynamic node full, restarting, or shutting down).
///
/// ```
/// use actix_supervisor::{Child, Context, Dynamic, RunError, RunResult, Signal};
/// use actix_web::{web, HttpResponse};
///
/// async fn job(ctx: Context) -> RunResult {
///     ctx.signal(Signal::Healthy)?;
///     ctx.cancelled().await;
///     Ok(())
/// }
///
/// // POST /jobs/{name}: 201, or 400 / 409 / 503 with the reason.
/// async fn start(jobs: web::Data<Dynamic>, name: web::Path<String>) -> Result<HttpResponse, RunError> {
///     let dn = jobs.start_child(Child::new(name.into_inner(), job)).await?;
///     Ok(HttpResponse::Created().body(dn))
/// }
/// ```
impl ResponseError for RunError {
    fn status_code(&self) -> StatusCode {
        match self {
            RunError::InvalidName { .. }
            | RunError::ReservedName { .. }
            | RunError::EmptyGroup { .. }
            | RunError::PermanentSignificant { .. }
            | RunError::InvalidQueueAlarm { .. } => StatusCode::BAD_REQUEST,
            RunError::DuplicateName { .. } | RunError::NotNew { .. } => StatusCode::CONFLICT,
            RunError::NotFound { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(format!("{self}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status() {
        let dn = || "root.jobs".to_string();
        let name = || "x".to_string();
        for (e, code) in [
            (
                RunError::InvalidName {
                    dn: dn(),
                    name: name(),
                },
                400,
            ),
            (
                RunError::DuplicateName {
                    dn: dn(),
                    name: name(),
                },
                409,
            ),
            (RunError::NotFound { dn: dn() }, 404),
            (RunError::PermanentSignificant { dn: dn() }, 400),
            (
                RunError::InvalidQueueAlarm {
                    dn: dn(),
                    high: 1,
                    low: 1,
                },
                400,
            ),
            (RunError::NotRunning { dn: dn() }, 503),
            (RunError::Full { dn: dn(), max: 3 }, 503),
            (RunError::ShutDown { dn: dn() }, 503),
        ] {
            assert_eq!(e.status_code().as_u16(), code, "{e}");
            assert_eq!(e.error_response().status().as_u16(), code);
        }
    }
}
