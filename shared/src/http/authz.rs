//! Authorization of `/v2/`: every request is checked against the scopes
//! its bearer token grants, statelessly (DESIGN §4) — the token is
//! verified with the token service's public keys, and no user, project or
//! membership record is read.
//!
//! | route | needs |
//! | --- | --- |
//! | `GET /v2/` | any valid token |
//! | catalog | `registry:catalog:*` (system admins) |
//! | manifest, blob `GET`/`HEAD`, tags, referrers | `repository:<name>:pull` |
//! | manifest `PUT`, uploads | `repository:<name>:push` |
//! | manifest, blob `DELETE` | `repository:<name>:delete` |
//! | mount `from=<src>` | also `repository:<src>:pull`, else a plain upload |
//!
//! No token (or a bad one): `401` with the `WWW-Authenticate: Bearer`
//! challenge naming the scope to ask for. A valid token without the scope:
//! `403 DENIED`, with the challenge too (clients such as oras re-ask after
//! a 403).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::route::V2Route;
use super::{ApiError, AppState, OciCode};
use crate::iam::token::Claims;
use crate::iam::{AuditEntry, Iam};

/// What a route needs from the token: `action` on `type:name`, and the
/// actions a client should ask for (the challenge's scope). `None` (the
/// base endpoint) needs only a valid token.
struct Need<'a> {
    kind: &'static str,
    name: &'a str,
    action: &'static str,
    ask: &'static str,
}

impl Need<'_> {
    fn scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.ask)
    }
}

fn need<'a>(route: &'a V2Route, method: &Method) -> Option<Need<'a>> {
    let read = matches!(*method, Method::GET | Method::HEAD);
    let repo = |name: &'a str, action: &'static str, ask: &'static str| {
        Some(Need {
            kind: "repository",
            name,
            action,
            ask,
        })
    };
    match route {
        V2Route::Base => None,
        V2Route::Catalog => Some(Need {
            kind: "registry",
            name: "catalog",
            action: "*",
            ask: "*",
        }),
        V2Route::Manifest { name, .. } | V2Route::Blob { name, .. }
            if *method == Method::DELETE =>
        {
            repo(name.as_str(), "delete", "delete")
        }
        V2Route::Manifest { name, .. } | V2Route::Blob { name, .. } if read => {
            repo(name.as_str(), "pull", "pull")
        }
        V2Route::Tags { name } | V2Route::Referrers { name, .. } => {
            repo(name.as_str(), "pull", "pull")
        }
        V2Route::Manifest { name, .. }
        | V2Route::Blob { name, .. }
        | V2Route::UploadStart { name, .. }
        | V2Route::Upload { name, .. } => repo(name.as_str(), "push", "pull,push"),
    }
}

/// The realm: the token endpoint on the host the client used (or the
/// configured public URL).
fn challenge(
    state: &AppState,
    headers: &HeaderMap,
    iam: &Iam,
    scope: Option<&str>,
    error: Option<&str>,
) -> HeaderValue {
    let base = super::public_base(state.public_url.as_deref(), headers);
    let mut v = format!(
        "Bearer realm=\"{base}/service/token\",service=\"{}\"",
        iam.service
    );
    if let Some(s) = scope {
        v.push_str(&format!(",scope=\"{s}\""));
    }
    if let Some(e) = error {
        v.push_str(&format!(",error=\"{e}\""));
    }
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn refuse(status: StatusCode, code: OciCode, message: String, www: HeaderValue) -> Response {
    let mut resp = ApiError::new(status, code, message).into_response();
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, www);
    resp
}

/// The middleware: checks the token, narrows a mount the caller may not
/// read from, records pushes, deletes and pulls in the audit log.
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(iam) = state.iam.as_ref() else {
        return next.run(req).await;
    };
    // The upload gateway is guarded by the signed `_state` of each session.
    if state.uploads.is_gateway {
        return next.run(req).await;
    }
    let Some(route) = req.extensions().get::<V2Route>().cloned() else {
        return next.run(req).await;
    };
    let method = req.method().clone();
    let need = need(&route, &method);
    let scope = || need.as_ref().map(Need::scope);
    let headers = req.headers();
    let Some(token) = bearer(headers) else {
        let www = challenge(&state, headers, iam, scope().as_deref(), None);
        return refuse(
            StatusCode::UNAUTHORIZED,
            OciCode::Unauthorized,
            "authentication required".to_owned(),
            www,
        );
    };
    let claims = match iam
        .verifier
        .verify_access(token, crate::store::now_secs())
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "bearer token refused");
            let www = challenge(
                &state,
                headers,
                iam,
                scope().as_deref(),
                Some("invalid_token"),
            );
            return refuse(
                StatusCode::UNAUTHORIZED,
                OciCode::Unauthorized,
                "the bearer token is invalid or expired".to_owned(),
                www,
            );
        }
    };
    if let Some(Need {
        kind, name, action, ..
    }) = need
        .as_ref()
        .filter(|n| !claims.grants(n.kind, n.name, n.action))
    {
        if let Some(project) = crate::iam::grant::project_of(name)
            && claims.missing.iter().any(|m| m == project)
        {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                OciCode::NameUnknown,
                format!(
                    "project {project:?} not found: create it first \
                     (POST /api/v2.0/projects, or `berth project create {project}`)"
                ),
            )
            .into_response();
        }
        let www = challenge(
            &state,
            headers,
            iam,
            scope().as_deref(),
            Some("insufficient_scope"),
        );
        return refuse(
            StatusCode::FORBIDDEN,
            OciCode::Denied,
            denial(kind, name, action),
            www,
        );
    }
    if let V2Route::UploadStart {
        name,
        mount: Some(m),
    } = &route
    {
        let may_read = match &m.from {
            Some(src) => claims.grants("repository", src.as_str(), "pull"),
            // A mount without a source finds the blob anywhere: only for
            // those who may read everything.
            None => claims.grants("registry", "catalog", "*"),
        };
        if !may_read {
            req.extensions_mut().insert(V2Route::UploadStart {
                name: name.clone(),
                mount: None,
            });
        }
    }
    // Only manifest reads and writes are audited.
    let source_ip = matches!(route, V2Route::Manifest { .. }).then(|| super::client_ip(&req));
    // The events this request raises name its operator and host.
    let actor = crate::registry::events::Actor {
        operator: if claims.sub.is_empty() {
            "anonymous".to_owned()
        } else {
            claims.sub.clone()
        },
        host: request_host(req.headers()),
    };
    let resp = crate::registry::events::ACTOR
        .scope(actor, next.run(req))
        .await;
    if let Some(ip) = source_ip
        && resp.status().is_success()
    {
        audit(iam, &route, &method, &claims, &ip);
    }
    resp
}

/// The `Host` a request was sent to (empty if none or not text).
pub(crate) fn request_host(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn denial(kind: &str, name: &str, action: &str) -> String {
    if kind == "registry" {
        return "requested access to the resource is denied: the catalog is for system administrators"
            .to_owned();
    }
    match crate::iam::grant::project_of(name) {
        None => format!(
            "requested access to the resource is denied: repository names have the form \
             <project>/<repository>, and {name:?} names no project"
        ),
        Some(project) => format!(
            "requested access to the resource is denied: {action} on {name} needs the project \
             {project:?} to exist and a role (or robot permission) in it that allows {action}"
        ),
    }
}

/// Audit entries for registry operations: pushes and deletes as they
/// happen, pulls buffered (see [`crate::iam::audit`]). Written off the
/// request's path.
fn audit(iam: &Iam, route: &V2Route, method: &Method, claims: &Claims, ip: &str) {
    let V2Route::Manifest { name, reference } = route else {
        return;
    };
    if *method == Method::GET && !iam.audit.records_pulls() {
        return;
    }
    let operation = match *method {
        Method::PUT => "create",
        Method::DELETE => "delete",
        Method::GET => "pull",
        _ => return,
    };
    let resource = match reference {
        crate::oci::Reference::Tag(t) => format!("{name}:{}", t.as_str()),
        crate::oci::Reference::Digest(d) => format!("{name}@{d}"),
    };
    let user = if claims.sub.is_empty() {
        "anonymous"
    } else {
        claims.sub.as_str()
    };
    let project = crate::iam::grant::project_of(name.as_str());
    let log = iam.audit.clone();
    if operation == "pull" {
        let now_ms = crate::store::now_secs().saturating_mul(1000);
        if let Some(batch) = log.gather_pull(user, &resource, ip, project, now_ms) {
            tokio::spawn(async move { log.write_batch(batch).await });
        }
    } else {
        let entry = AuditEntry::new(user, &resource, "artifact", operation, ip, project);
        tokio::spawn(async move { log.record_quietly(entry).await });
    }
}
