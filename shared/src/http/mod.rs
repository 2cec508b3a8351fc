//! HTTP routers. The same `Router` is mounted by the local server, wrapped
//! by the Lambda functions, and driven by tests with `oneshot`.
//!
//! Request flow on `/v2/`: [`parse_route`] turns the path into a
//! [`V2Route`] stored in the request's extensions (an authorization layer
//! reads it there to know the repository and action, without touching the
//! handlers), then [`v2::dispatch`] calls the registry service.

pub mod api;
pub mod authz;
pub mod error;
pub mod portal;
pub mod route;
pub mod server;
pub mod token;
mod v2;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

pub use error::{ApiError, OciCode};
pub use portal::{Portal, PortalAsset};
pub use route::{Mount, V2Route, parse_v2_path};
pub use server::{Limits, serve};

use crate::registry::Registry;

/// What every handler shares.
pub struct AppState {
    pub registry: Registry,
    /// Base of absolute URLs in `Location` headers; else built from `Host`.
    pub public_url: Option<String>,
    pub uploads: UploadRouting,
    /// Identity: when set, every `/v2/` request needs a token granting
    /// what it does ([`authz`]); `None` serves `/v2/` to anyone (router
    /// tests of the registry itself).
    pub iam: Option<crate::iam::Iam>,
    /// Where the API starts background jobs (collections, retention); the
    /// API answers 503 to those requests without it.
    pub jobs: Option<crate::jobs::Jobs>,
    /// The web portal, served at every path no API takes ([`portal`]);
    /// `None` (the Lambda functions, tests of the APIs) answers those
    /// paths with the API's 404.
    pub portal: Option<Portal>,
}

impl AppState {
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            public_url: None,
            uploads: UploadRouting::default(),
            iam: None,
            jobs: None,
            portal: None,
        }
    }
}

/// The scheme and host clients reach this service at: the configured
/// public URL, else the request's `Host` (and `X-Forwarded-Proto`), so a
/// client that used a host name is answered with that name.
pub fn public_base(public_url: Option<&str>, headers: &axum::http::HeaderMap) -> String {
    if let Some(u) = public_url {
        return u.to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// Decodes a query string or form body `a=b&c=d` (percent- and
/// plus-decoding) into its pairs, in order; `None` if a part is not UTF-8.
pub fn form_pairs(q: &str) -> Option<Vec<(String, String)>> {
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((dec(k)?, dec(v)?))
        })
        .collect()
}

/// The client's address: the connection's peer (the local server), else
/// the first `X-Forwarded-For` entry (API Gateway sets it), else empty.
pub fn client_ip(req: &Request) -> String {
    client_ip_of(req.headers(), req.extensions().get::<server::PeerAddr>())
}

/// [`client_ip`] from a request's parts.
pub fn client_ip_of(headers: &axum::http::HeaderMap, peer: Option<&server::PeerAddr>) -> String {
    if let Some(server::PeerAddr(a)) = peer {
        return a.ip().to_string();
    }
    headers
        .get("x-forwarded-for")
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// The user name and password of an HTTP Basic `Authorization` value.
pub fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    use base64::Engine as _;
    let v = value.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (name, secret) = text.split_once(':')?;
    Some((name.to_owned(), secret.to_owned()))
}

/// Where upload sessions continue, and how they are vouched for.
#[derive(Clone, Debug, Default)]
pub struct UploadRouting {
    /// Base URL of the upload gateway; `None` keeps uploads on this API.
    pub gateway_url: Option<String>,
    /// Signs and checks the `_state` token of upload `Location`s.
    pub key: Option<crate::auth::UploadKey>,
    /// This process is the upload gateway: it serves only upload sessions,
    /// and only with a valid token.
    pub is_gateway: bool,
}

/// Upload tokens live an hour and are renewed on every upload response.
pub const UPLOAD_TOKEN_TTL_SECS: i64 = 3600;

impl UploadRouting {
    /// Checks and assembles the upload settings: a gateway (either side)
    /// needs a key.
    pub fn configure(
        gateway_url: Option<String>,
        key: Option<crate::auth::UploadKey>,
        is_gateway: bool,
    ) -> Result<Self, String> {
        let gateway_url = gateway_url.filter(|u| !u.is_empty());
        if (is_gateway || gateway_url.is_some()) && key.is_none() {
            return Err(
                "an upload gateway needs BERTH_UPLOAD_SECRET or BERTH_UPLOAD_SECRET_ARN".to_owned(),
            );
        }
        let gateway_url = gateway_url
            .map(|u| crate::config::parse_public_url(&u))
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            gateway_url,
            key,
            is_gateway,
        })
    }
}

/// The registry API router (`/v2/...`).
pub fn v2_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2", any(v2::dispatch))
        .route("/v2/", any(v2::dispatch))
        .route("/v2/{*path}", any(v2::dispatch))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authz::authorize,
        ))
        .layer(middleware::from_fn(parse_route))
        .layer(middleware::map_response(api_version_header))
        .with_state(state)
}

/// The whole local application: every router, then the portal (if any)
/// for whatever they do not take, with request logging.
pub fn app(state: Arc<AppState>) -> Router {
    let mut router = v2_router(state.clone());
    if let Some(iam) = &state.iam {
        if let Some(keys) = &iam.keys {
            let token = token::TokenState {
                iam: iam.clone(),
                keys: keys.clone(),
            };
            router = router.merge(token::token_router(Arc::new(token)));
        }
        router = router.merge(api::api_router_with(
            Arc::new(iam.clone()),
            state.registry.clone(),
            state.public_url.clone(),
            state.jobs.clone(),
        ));
    }
    let router = match state.portal {
        Some(portal) => router.fallback(move |req: Request| async move { portal.respond(&req) }),
        None => router.fallback(not_found),
    };
    router.layer(middleware::from_fn(log_request))
}

async fn not_found() -> ApiError {
    no_such_endpoint()
}

/// The answer to a path no API serves.
pub(crate) fn no_such_endpoint() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        OciCode::Unsupported,
        "no such endpoint",
    )
}

async fn parse_route(mut req: Request, next: Next) -> Response {
    let parsed = parse_v2_path(req.uri().path()).and_then(|r| r.with_query(req.uri().query()));
    match parsed {
        Ok(route) => {
            req.extensions_mut().insert(route);
            next.run(req).await
        }
        // A reference that cannot name a manifest names none: reading it
        // is a 404, as the conformance suite and Distribution have it;
        // writing it stays 400 TAG_INVALID.
        Err(route::RouteError::Reference(_))
            if matches!(*req.method(), Method::GET | Method::HEAD | Method::DELETE) =>
        {
            ApiError::new(
                StatusCode::NOT_FOUND,
                OciCode::ManifestUnknown,
                "manifest unknown to registry",
            )
            .into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn api_version_header(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served (set by [`log_request`]).
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Logs method, path, status and latency, under a request id that the
/// response carries (`X-Request-Id`) and server-fault bodies quote. Never
/// headers or query strings: they may carry credentials or signatures.
pub async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let status = resp.status().as_u16();
    let ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1000.0;
    let len = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    if status >= 500 {
        tracing::warn!(%method, %path, status, ms, len, request_id = %id, "request");
    } else {
        tracing::info!(%method, %path, status, ms, len, request_id = %id, "request");
    }
    resp
}
