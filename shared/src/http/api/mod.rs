//! Harbor's identity management API: `/api/v2.0` users, projects,
//! members, robot accounts and audit logs, with `/c/login` and
//! `/c/log_out` for cookie sessions.
//!
//! Every `/api/v2.0` request passes [`authenticate`] first: HTTP Basic
//! (users, and robots by full name) or the `sid` session cookie, whose
//! unsafe requests must carry the session's `X-Harbor-CSRF-Token`. The
//! caller ends up in the request's extensions as a [`Caller`]; handlers
//! check permissions with [`crate::iam::grant::allows`]. Errors take
//! Harbor's shape through [`ApiError`].

mod artifacts;
mod audit_logs;
mod configurations;
mod error;
mod gc;
mod immutable;
mod labels;
mod members;
mod openapi;
mod projects;
mod query;
mod quotas;
mod registries;
mod replication;
mod repositories;
mod retentions;
mod robots;
mod search;
mod session;
mod users;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, delete, get, post, put};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

pub use error::{ApiError, ApiResult};

use crate::iam::directory::SESSION_TTL_SECS;
use crate::iam::{AuditEntry, Iam, Principal, User};
use crate::registry::Registry;

/// What every handler of the management API shares.
pub(crate) struct Ctx {
    pub(crate) iam: Arc<Iam>,
    /// The registry service (repositories, artifacts, tags).
    pub(crate) registry: Registry,
    pub(crate) public_url: Option<String>,
    /// Starts background jobs (collections, retention runs).
    pub(crate) jobs: Option<crate::jobs::Jobs>,
}

type Shared = Arc<Ctx>;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sid";
/// The CSRF header of cookie sessions.
pub const CSRF_HEADER: &str = "x-harbor-csrf-token";

/// The management API router: `/api/v2.0/…`, `/c/login`, `/c/log_out`.
pub fn api_router(iam: Arc<Iam>, registry: Registry, public_url: Option<String>) -> Router {
    api_router_with(iam, registry, public_url, None)
}

/// The management API router with a job queue behind it.
pub fn api_router_with(
    iam: Arc<Iam>,
    registry: Registry,
    public_url: Option<String>,
    jobs: Option<crate::jobs::Jobs>,
) -> Router {
    let ctx: Shared = Arc::new(Ctx {
        iam,
        registry,
        public_url,
        jobs,
    });
    let mut api = Router::new();
    for (path, handler) in routes() {
        // Every known path answers other methods with Harbor's 405 body,
        // and is also served with a trailing slash (Harbor's clients call
        // some paths so).
        let handler = handler.fallback(method_not_allowed);
        api = api
            .route(&path, handler.clone())
            .route(&format!("{path}/"), handler);
    }
    // Unknown paths under the API: Harbor's 404 (a route, not a fallback,
    // so this router merges with others).
    let api = api
        .route("/api/v2.0", any(unknown_path))
        .route("/api/v2.0/{*rest}", any(unknown_path))
        .layer(middleware::from_fn_with_state(ctx.clone(), authenticate));
    let portal = Router::new()
        .route("/c/login", post(session::login))
        .route("/c/log_out", get(session::logout));
    api.merge(portal).with_state(ctx)
}

/// Entry points for the fuzz targets (`shared/fuzz`): the parsers of the
/// management API's untrusted input. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a whole query string as a listing does: paging, `q`, `sort`
    /// and `cursor`. Any input answers (a 400 is fine), never panics.
    pub fn listing_query(query: &str) -> bool {
        let Ok(uri) = format!("/x?{query}").parse::<axum::http::Uri>() else {
            return false;
        };
        let p = super::query::Params::of(&uri);
        let ok = p.paging().is_ok() & p.q().is_ok();
        let _ = p.sort(&["name", "-name"]);
        let _ = p.cursor("ART#");
        ok
    }

    /// Describes a manifest and reads a file from a chart archive, as the
    /// artifact API does with stored content.
    pub fn describe(manifest: &[u8], archive: &[u8]) -> String {
        super::artifacts::fuzz_describe(manifest, archive)
    }
}

/// Prefix of a repository's paths.
const REPO: &str = "/api/v2.0/projects/{project_name}/repositories/{repository_name}";
/// Prefix of an artifact's paths.
const ART: &str =
    "/api/v2.0/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}";

/// Every `/api/v2.0` route with its handlers.
fn routes() -> Vec<(String, MethodRouter<Shared>)> {
    let mut routes: Vec<(String, MethodRouter<Shared>)> = vec![
        ("/api/v2.0/ping".into(), get(ping)),
        ("/api/v2.0/openapi.json".into(), get(openapi::document)),
        ("/api/v2.0/swagger.json".into(), get(openapi::document)),
        (
            "/api/v2.0/configurations".into(),
            get(configurations::get).put(configurations::put),
        ),
        ("/api/v2.0/systeminfo".into(), get(systeminfo)),
        (
            "/api/v2.0/users".into(),
            post(users::create).get(users::list),
        ),
        ("/api/v2.0/users/current".into(), get(users::current)),
        ("/api/v2.0/users/search".into(), get(users::search)),
        (
            "/api/v2.0/users/{user_id}".into(),
            get(users::get_one).put(users::update).delete(users::delete),
        ),
        (
            "/api/v2.0/users/{user_id}/password".into(),
            put(users::password),
        ),
        (
            "/api/v2.0/users/{user_id}/sysadmin".into(),
            put(users::sysadmin),
        ),
        (
            "/api/v2.0/projects".into(),
            post(projects::create)
                .get(projects::list)
                .head(projects::head_by_name),
        ),
        (
            "/api/v2.0/projects/{project_name_or_id}".into(),
            get(projects::get_one)
                .put(projects::update)
                .delete(projects::delete),
        ),
        (
            "/api/v2.0/projects/{project_name_or_id}/members".into(),
            get(members::list).post(members::create),
        ),
        (
            "/api/v2.0/projects/{project_name_or_id}/members/{mid}".into(),
            get(members::get_one)
                .put(members::update)
                .delete(members::delete),
        ),
        (
            "/api/v2.0/projects/{project_name}/logs".into(),
            get(audit_logs::project_logs),
        ),
        ("/api/v2.0/audit-logs".into(), get(audit_logs::all_logs)),
        (
            "/api/v2.0/robots".into(),
            post(robots::create).get(robots::list),
        ),
        (
            "/api/v2.0/robots/{robot_id}".into(),
            get(robots::get_one)
                .put(robots::update)
                .delete(robots::delete)
                .patch(robots::refresh),
        ),
        ("/api/v2.0/repositories".into(), get(repositories::list_all)),
        (
            "/api/v2.0/projects/{project_name}/repositories".into(),
            get(repositories::list_in_project),
        ),
        (
            REPO.into(),
            get(repositories::get_one)
                .put(repositories::update)
                .delete(repositories::delete),
        ),
        (
            format!("{REPO}/artifacts"),
            get(artifacts::list).post(artifacts::copy),
        ),
        (
            ART.into(),
            get(artifacts::get_one).delete(artifacts::delete),
        ),
        (
            format!("{ART}/tags"),
            get(artifacts::list_tags).post(artifacts::create_tag),
        ),
        (
            format!("{ART}/tags/{{tag_name}}"),
            delete(artifacts::delete_tag),
        ),
        (
            format!("{ART}/accessories"),
            get(artifacts::list_accessories),
        ),
        (
            format!("{ART}/additions/{{addition}}"),
            get(artifacts::addition),
        ),
        (format!("{ART}/labels"), post(artifacts::add_label)),
        (
            format!("{ART}/labels/{{label_id}}"),
            delete(artifacts::remove_label),
        ),
    ];
    for (path, handler) in labels::routes()
        .into_iter()
        .chain(search::routes())
        .chain(immutable::routes())
        .chain(gc::routes())
        .chain(quotas::routes())
        .chain(retentions::routes())
        .chain(registries::routes())
        .chain(replication::routes())
    {
        routes.push((path.to_owned(), handler));
    }
    routes.extend(webhooks::routes());
    routes
}

/// Every `/api/v2.0` route and the methods it answers (what the OpenAPI
/// document's drift test compares with): each path is probed with each
/// method, anonymously, over throwaway storage; a method the route lacks
/// answers 405.
#[cfg(test)]
pub(crate) fn route_table() -> Vec<(String, Vec<&'static str>)> {
    use tower::ServiceExt as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (kv, blobs) = crate::store::open_local(dir.path()).await.expect("store");
        let registry = Registry::new(kv.clone(), blobs, Default::default());
        let iam = Arc::new(Iam::new(kv, None, "berth-registry"));
        let router = api_router(iam, registry, None);
        let mut out = Vec::new();
        for (path, _) in routes() {
            let uri = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let mut methods = Vec::new();
            for m in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] {
                let req = axum::http::Request::builder()
                    .method(m)
                    .uri(&uri)
                    .body(axum::body::Body::empty())
                    .expect("request");
                let status = router
                    .clone()
                    .oneshot(req)
                    .await
                    .map_or(StatusCode::METHOD_NOT_ALLOWED, |r| r.status());
                if status != StatusCode::METHOD_NOT_ALLOWED {
                    methods.push(m);
                }
            }
            out.push((path, methods));
        }
        out
    })
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

async fn unknown_path() -> ApiError {
    ApiError::not_found("no such endpoint")
}

// ---- the caller -----------------------------------------------------------

/// Who is calling, as [`authenticate`] found out.
#[derive(Clone)]
pub(crate) struct Caller {
    pub(crate) principal: Principal,
    pub(crate) source_ip: String,
}

impl Caller {
    pub(crate) fn name(&self) -> &str {
        self.principal.name()
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.principal.is_admin()
    }

    pub(crate) fn is_anonymous(&self) -> bool {
        matches!(self.principal, Principal::Anonymous)
    }

    /// 401 for anonymous callers.
    pub(crate) fn require_auth(&self) -> ApiResult<()> {
        if self.is_anonymous() {
            Err(ApiError::unauthorized("authentication required"))
        } else {
            Ok(())
        }
    }

    /// 401 for anonymous callers, 403 for everyone but system admins.
    pub(crate) fn require_admin(&self) -> ApiResult<()> {
        self.require_auth()?;
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("only system admins may do this"))
        }
    }

    /// The calling user (401 anonymous, 403 robots).
    pub(crate) fn user(&self) -> ApiResult<&User> {
        match &self.principal {
            Principal::User(u) => Ok(u),
            Principal::Anonymous => Err(ApiError::unauthorized("authentication required")),
            Principal::Robot(_) => Err(ApiError::forbidden("robot accounts may not call this API")),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("no caller on a management API request"))
    }
}

/// Path parameters, with Harbor's error body when they do not parse.
pub(crate) struct P<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(P(t)),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

pub(crate) fn now_secs() -> i64 {
    crate::store::now_secs()
}

/// The value of one cookie.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Authenticates every `/api/v2.0` request (never logging credentials).
async fn authenticate(State(ctx): State<Shared>, mut req: Request, next: Next) -> Response {
    let source_ip = crate::http::client_ip(&req);
    let (principal, csrf) = match identify(&ctx, req.headers()).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let Some(token) = &csrf
        && unsafe_method
    {
        let presented = req
            .headers()
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let ok: bool = presented.ct_eq(token.as_bytes()).into();
        if !ok {
            let mut resp = ApiError::forbidden("CSRF token invalid").into_response();
            set_csrf_header(&mut resp, token);
            return resp;
        }
    }
    let actor = crate::registry::events::Actor {
        operator: principal.name().to_owned(),
        host: crate::http::authz::request_host(req.headers()),
    };
    req.extensions_mut().insert(Caller {
        principal,
        source_ip,
    });
    // The events this request raises (artifact deletes, …) name its caller.
    let mut resp = crate::registry::events::ACTOR
        .scope(actor, next.run(req))
        .await;
    if let Some(token) = &csrf {
        set_csrf_header(&mut resp, token);
    }
    resp
}

fn set_csrf_header(resp: &mut Response, token: &str) {
    if let Ok(v) = HeaderValue::from_str(token) {
        resp.headers_mut().insert(CSRF_HEADER, v);
    }
}

/// The principal of a request and, for a cookie session, its CSRF token.
async fn identify(ctx: &Ctx, headers: &HeaderMap) -> ApiResult<(Principal, Option<String>)> {
    let dir = &ctx.iam.directory;
    let now = now_secs();
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let (name, secret) = crate::http::basic_credentials(auth).ok_or_else(|| {
            ApiError::unauthorized("unsupported or malformed Authorization header")
        })?;
        return match dir.authenticate(&name, &secret, now).await? {
            Some(p) => Ok((p, None)),
            None => Err(ApiError::unauthorized("invalid user name or password")),
        };
    }
    let Some(sid) = cookie(headers, SESSION_COOKIE) else {
        return Ok((Principal::Anonymous, None));
    };
    // An unknown, expired or outdated session is no session: the caller
    // is anonymous (as Harbor treats an expired cookie).
    let Some((session, expires)) = dir.session_with_expiry(&sid).await? else {
        return Ok((Principal::Anonymous, None));
    };
    let user = match dir.user(&session.user).await? {
        Some(u) if u.cred == session.cred => u,
        _ => {
            dir.delete_session(&sid).await?;
            return Ok((Principal::Anonymous, None));
        }
    };
    if expires - now < SESSION_TTL_SECS / 2 {
        dir.renew_session(&sid, &session, now).await?;
    }
    Ok((Principal::User(user), Some(session.csrf)))
}

// ---- shared helpers -------------------------------------------------------

impl Ctx {
    /// Records a change in the audit log (never failing the request).
    pub(crate) async fn audit(
        &self,
        caller: &Caller,
        resource: &str,
        resource_type: &str,
        operation: &str,
        project: Option<&str>,
    ) {
        let e = AuditEntry::new(
            caller.name(),
            resource,
            resource_type,
            operation,
            &caller.source_ip,
            project,
        );
        self.iam.audit.record_quietly(e).await;
    }
}

/// Parses a JSON body; an empty body reads as `{}` (Harbor's clients send
/// `{}` or nothing on body-less calls). Malformed JSON is a 400.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// `201 Created` with only a `Location` (Harbor's create responses).
pub(crate) fn created(location: &str) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// An RFC 3339 time of epoch seconds.
pub(crate) fn rfc3339(secs: i64) -> String {
    crate::iam::audit::rfc3339(secs)
}

// ---- ping and systeminfo ----------------------------------------------------

async fn ping() -> &'static str {
    "Pong"
}

async fn systeminfo(State(ctx): State<Shared>, headers: HeaderMap) -> ApiResult<Response> {
    let settings = ctx.iam.directory.settings().await?;
    let (external, host) = match &ctx.public_url {
        Some(u) => {
            let u = u.trim_end_matches('/');
            let host = u
                .split_once("://")
                .map_or(u, |(_, rest)| rest)
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            (u.to_owned(), host)
        }
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost")
                .to_owned();
            let scheme = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .filter(|s| *s == "https")
                .unwrap_or("http");
            (format!("{scheme}://{host}"), host)
        }
    };
    let body = serde_json::json!({
        "auth_mode": "db_auth",
        "primary_auth_mode": false,
        "registry_url": host,
        "external_url": external,
        "self_registration": settings.self_registration,
        "project_creation_restriction": settings.project_creation_restriction,
        "harbor_version": concat!("berth-", env!("CARGO_PKG_VERSION")),
        "has_ca_root": false,
        "read_only": false,
        "with_chartmuseum": false,
        "notification_enable": false,
        "registry_storage_provider_name": "berth",
        "current_time": rfc3339(now_secs()),
        "banner_message": "",
    });
    Ok(axum::Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_parse() {
        use base64::Engine as _;
        let enc = base64::engine::general_purpose::STANDARD.encode("robot$p+x:a:b");
        let v = HeaderValue::from_str(&format!("Basic {enc}")).expect("header");
        assert_eq!(
            crate::http::basic_credentials(&v),
            Some(("robot$p+x".to_owned(), "a:b".to_owned()))
        );
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(crate::http::basic_credentials(&bearer), None);
    }

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sid=xyz; b=2"),
        );
        assert_eq!(cookie(&h, "sid").as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
