//! The router each HTTP function serves. The same routers run in Lambda
//! (`lambda_http::run`), in the local stack ([`super::stack`]) and in tests.
//!
//! | function | serves |
//! | --- | --- |
//! | `manifest`, `blob` | the `/v2` router ([`crate::http::v2_router`]); API Gateway's routes pick which of the two runs a request |
//! | `token` | `/service/token`: not yet configured (`501 UNSUPPORTED`) |
//! | `admin` | `/api/v2.0/…`: not yet configured (Harbor's `501 NOT_IMPLEMENTED`) |
//!
//! Every router refuses bodies that cannot fit in one invocation
//! ([`InvocationLimitLayer`]) and logs one line per request.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Serialize;

use super::limits::InvocationLimitLayer;
use crate::http::{ApiError, AppState, OciCode, v2_router};

/// The HTTP functions, by the names `infra/routes.json` uses.
pub const HTTP_FUNCTIONS: [&str; 4] = ["token", "manifest", "blob", "admin"];

/// The SQS worker functions.
pub const WORKER_FUNCTIONS: [&str; 3] = ["webhook", "replication", "gc"];

/// The router of the `manifest` and `blob` functions: the registry API.
pub fn registry_router(state: Arc<AppState>) -> Router {
    finish(v2_router(state))
}

/// The router of the `token` function. The token service arrives with
/// authentication; until then it answers that it is not configured.
pub fn token_router() -> Router {
    finish(Router::new().route("/service/token", any(token_not_configured)))
}

/// The router of the `admin` function (Harbor's `/api/v2.0/`), not yet
/// configured.
pub fn admin_router() -> Router {
    finish(
        Router::new()
            .route("/api/v2.0", any(admin_not_configured))
            .route("/api/v2.0/", any(admin_not_configured))
            .route("/api/v2.0/{*rest}", any(admin_not_configured)),
    )
}

/// The router for a function name, or `None` for a name that is not an
/// HTTP function.
pub fn router_for(function: &str, state: &Arc<AppState>) -> Option<Router> {
    match function {
        "manifest" | "blob" => Some(registry_router(state.clone())),
        "token" => Some(token_router()),
        "admin" => Some(admin_router()),
        _ => None,
    }
}

fn finish(router: Router) -> Router {
    router
        .fallback(unknown_path)
        .layer(InvocationLimitLayer::default())
        .layer(middleware::from_fn(log_request))
}

async fn unknown_path() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        OciCode::Unsupported,
        "no such endpoint",
    )
}

async fn token_not_configured() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        OciCode::Unsupported,
        "the token service is not yet configured on this registry",
    )
}

/// Harbor's error body: `{"errors":[{"code","message"}]}`.
#[derive(Serialize)]
struct HarborErrors<'a> {
    errors: [HarborError<'a>; 1],
}

#[derive(Serialize)]
struct HarborError<'a> {
    code: &'a str,
    message: &'a str,
}

async fn admin_not_configured() -> Response {
    let body = HarborErrors {
        errors: [HarborError {
            code: "NOT_IMPLEMENTED",
            message: "the administration API (/api/v2.0) is not yet configured on this registry",
        }],
    };
    (StatusCode::NOT_IMPLEMENTED, axum::Json(body)).into_response()
}

/// Method, path, status and latency; never headers or query strings, which
/// may carry credentials or signatures.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let len = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    if status >= 500 {
        tracing::warn!(%method, %path, status, ms, len, "request");
    } else {
        tracing::info!(%method, %path, status, ms, len, "request");
    }
    resp
}
