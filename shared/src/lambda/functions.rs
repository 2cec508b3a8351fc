//! The router each HTTP function serves. The same routers run in Lambda
//! (`lambda_http::run`), in the local stack ([`super::stack`]) and in tests.
//!
//! | function | serves |
//! | --- | --- |
//! | `manifest`, `blob` | the `/v2` router ([`crate::http::v2_router`]); API Gateway's routes pick which of the two runs a request |
//! | `token` | `/service/token` ([`crate::http::token`]): the only function holding the signing key |
//! | `admin` | `/api/v2.0/…`, `/c/login`, `/c/log_out` ([`crate::http::api`]) |
//!
//! Every router refuses bodies that cannot fit in one invocation
//! ([`InvocationLimitLayer`]) and logs one line per request.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
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

/// The whole life of the `manifest` and `blob` functions: configuration
/// and one set of AWS clients built once per execution environment, then
/// the registry router under `lambda_http::run`.
#[cfg(all(feature = "aws-dynamodb", feature = "aws-s3"))]
pub async fn run_registry_function() -> Result<(), lambda_http::Error> {
    use crate::wiring;
    super::init_tracing();
    let config = super::FunctionConfig::from_env()?;
    let aws = wiring::Aws::from_env().await?;
    let registry = wiring::aws_registry(&aws, Default::default());
    // Verification only: the public keys come from the table, where the
    // token function publishes them; no private key here.
    let iam = wiring::verifying_iam(registry.kv().clone())?;
    let state = Arc::new(AppState {
        registry,
        public_url: config.public_url,
        uploads: wiring::upload_routing_from_env(Some(&aws))?,
        iam: Some(iam),
        jobs: None,
        portal: None,
    });
    lambda_http::run(registry_router(state)).await
}

/// The `token` and `admin` functions: the directory over DynamoDB, the
/// bootstrap (admin user, `library`, published public keys) once per
/// execution environment, then the function's router. Only the `token`
/// function reads the signing key's secret.
#[cfg(all(feature = "aws-dynamodb", feature = "aws-s3"))]
pub async fn run_identity_function(function: &str) -> Result<(), lambda_http::Error> {
    use crate::wiring;
    super::init_tracing();
    let config = super::FunctionConfig::from_env()?;
    let aws = wiring::Aws::from_env().await?;
    let registry = wiring::aws_registry(&aws, Default::default());
    let keys = match function {
        "token" => Some(Arc::new(wiring::token_keys_from_env(Some(&aws)).await?)),
        _ => None,
    };
    let iam = wiring::iam(registry.kv().clone(), keys);
    let admin_password = wiring::admin_password_from_env(Some(&aws)).await?;
    if wiring::bootstrap_identity(&iam, admin_password.as_deref())
        .await?
        .is_some()
    {
        tracing::warn!(
            "the admin password was generated: set BERTH_ADMIN_PASSWORD_SECRET_ARN to choose it"
        );
    }
    let jobs = wiring::aws_jobs(&aws, &registry);
    let state = Arc::new(AppState {
        registry,
        public_url: config.public_url,
        uploads: Default::default(),
        iam: Some(iam),
        jobs,
        portal: None,
    });
    let router = router_for(function, &state).ok_or("not an identity function")?;
    lambda_http::run(router).await
}

/// The router of the `token` function: `/service/token`, when this
/// process holds the signing keys.
pub fn token_router(state: &AppState) -> Router {
    let token = state.iam.as_ref().and_then(|iam| {
        let keys = iam.keys.clone()?;
        Some(crate::http::token::token_router(Arc::new(
            crate::http::token::TokenState {
                iam: iam.clone(),
                keys,
            },
        )))
    });
    match token {
        Some(r) => finish(r),
        None => finish(Router::new().route("/service/token", any(token_not_configured))),
    }
}

/// The router of the `admin` function: Harbor's `/api/v2.0/` and the
/// portal's `/c/login`.
pub fn admin_router(state: &AppState) -> Router {
    match &state.iam {
        Some(iam) => finish(crate::http::api::api_router_with(
            Arc::new(iam.clone()),
            state.registry.clone(),
            state.public_url.clone(),
            state.jobs.clone(),
        )),
        None => finish(
            Router::new()
                .route("/api/v2.0", any(admin_not_configured))
                .route("/api/v2.0/", any(admin_not_configured))
                .route("/api/v2.0/{*rest}", any(admin_not_configured)),
        ),
    }
}

/// The router for a function name, or `None` for a name that is not an
/// HTTP function.
pub fn router_for(function: &str, state: &Arc<AppState>) -> Option<Router> {
    match function {
        "manifest" | "blob" => Some(registry_router(state.clone())),
        "token" => Some(token_router(state)),
        "admin" => Some(admin_router(state)),
        _ => None,
    }
}

fn finish(router: Router) -> Router {
    router
        .fallback(unknown_path)
        .layer(InvocationLimitLayer::default())
        .layer(middleware::from_fn(crate::http::log_request))
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
        "the token service is not configured on this process (it holds no signing key)",
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
            message: "the administration API (/api/v2.0) is not configured on this process",
        }],
    };
    (StatusCode::NOT_IMPLEMENTED, axum::Json(body)).into_response()
}
