//! The Lambda side of Berth: what the per-route functions in `functions/`
//! are made of, and a faithful local stand-in for the platform around them.
//!
//! # Layout
//!
//! - [`functions`]: the router each HTTP function serves (`manifest` and
//!   `blob` serve the `/v2` router; `token` and `admin` answer "not yet
//!   configured"), all behind [`limits::InvocationLimitLayer`].
//! - [`limits`]: the platform's size limits (API Gateway 10 MiB body, Lambda
//!   6 MiB invocation payload) and the layer that refuses, before reading,
//!   a request body that cannot fit in one invocation.
//! - [`apigw`]: the harness. [`apigw::Gateway`] turns an HTTP request into
//!   the API Gateway HTTP API (payload format 2.0) event JSON, enforces the
//!   limits on that JSON as AWS does, and hands it to a
//!   [`apigw::LambdaFunction`], which deserializes and runs it exactly as
//!   `lambda_http::run` does and serializes the response back.
//! - [`routes`]: `infra/routes.json` expanded into API Gateway routes and
//!   API Gateway's route selection.
//! - [`stack`]: every function router in one process behind an HTTP
//!   server that routes like API Gateway and passes every request through
//!   the harness (`berth stack`).
//! - [`runtime_api`]: a local Lambda Runtime API, to run the function
//!   binaries themselves as Lambda does (their tests use it).
//! - [`worker`]: SQS worker helpers: one handler call per message, partial
//!   batch responses, versioned job messages.
//!
//! Nothing here talks to AWS: the functions get their state from the
//! adapters in [`crate::store`].

pub mod apigw;
pub mod functions;
pub mod limits;
pub mod routes;
pub mod runtime_api;
pub mod stack;
pub mod worker;

use crate::config::{ConfigError, parse_public_url};

/// Settings every HTTP function reads from its environment.
#[derive(Debug, Clone, Default)]
pub struct FunctionConfig {
    /// `BERTH_PUBLIC_URL`: the URL clients see (a custom domain in front of
    /// the HTTP API). Without it, URLs are built from `Host` and
    /// `X-Forwarded-Proto`, which API Gateway sets.
    pub public_url: Option<String>,
}

impl FunctionConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let public_url = match std::env::var("BERTH_PUBLIC_URL") {
            Ok(v) if !v.is_empty() => Some(parse_public_url(&v)?),
            _ => None,
        };
        Ok(Self { public_url })
    }
}

/// JSON log lines on stdout, as CloudWatch Logs ingests them. The filter
/// comes from `BERTH_LOG` (default `info`).
pub fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| "info".into());
    // A second initialisation (tests) is harmless: keep the first.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_current_span(false)
        .with_target(false)
        .try_init();
}
