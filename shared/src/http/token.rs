//! The token service: `GET /service/token` (the Docker token protocol:
//! Basic auth or anonymous, `service`, repeated `scope`, `offline_token`)
//! and `POST /service/token` (the OAuth2 form containerd and others use:
//! `grant_type=password|refresh_token`).
//!
//! The grant is requested ∩ allowed: asking for more than one may have is
//! never an error, the token simply carries less. Refresh tokens are
//! tokens of their own kind, bound to the principal's credential
//! generation: a password change or a robot secret refresh ends them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::{ApiError, OciCode};
use crate::iam::directory::{Principal, ROBOT_PREFIX};
use crate::iam::token::{
    ACCESS_TOKEN_TTL_SECS, REFRESH_TOKEN_TTL_SECS, Scope, TokenUse, new_claims,
};
use crate::iam::{AuditEntry, Iam, KeyRing};

/// What the token endpoint needs.
pub struct TokenState {
    pub iam: Iam,
    pub keys: Arc<KeyRing>,
}

/// `/service/token`.
pub fn token_router(state: Arc<TokenState>) -> Router {
    Router::new()
        .route("/service/token", get(get_token).post(post_token))
        .with_state(state)
}

#[derive(Serialize)]
struct TokenResponse {
    token: String,
    access_token: String,
    expires_in: i64,
    issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// The pairs of a query string or form; malformed input is a 400.
fn params(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    super::form_pairs(query).ok_or_else(|| bad_request("malformed query string or form"))
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, OciCode::Unauthorized, message)
}

fn bad_request(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, OciCode::Unsupported, message)
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    super::basic_credentials(headers.get(header::AUTHORIZATION)?)
}

impl TokenState {
    fn check_service(&self, service: Option<&str>) -> Result<(), ApiError> {
        match service {
            Some(s) if s != self.iam.service => Err(bad_request(&format!(
                "unknown service {s:?}: this token service issues tokens for {:?}",
                self.iam.service
            ))),
            _ => Ok(()),
        }
    }

    async fn login(&self, user: &str, secret: &str, ip: &str) -> Result<Principal, ApiError> {
        let now = crate::store::now_secs();
        let who = self
            .iam
            .directory
            .authenticate(user, secret, now)
            .await
            .map_err(internal)?;
        match who {
            Some(p) => Ok(p),
            None => {
                let kind = if user.starts_with(ROBOT_PREFIX) {
                    "robot"
                } else {
                    "user"
                };
                let e = AuditEntry::new(user, user, kind, "login_failed", ip, None);
                self.iam.audit.record_quietly(e).await;
                Err(unauthorized("invalid username or password"))
            }
        }
    }

    /// Records a login (`docker login`, an OAuth2 password grant).
    async fn audit_login(&self, who: &Principal, ip: &str) {
        let kind = match who {
            Principal::Robot(_) => "robot",
            _ => "user",
        };
        let e = AuditEntry::new(who.name(), who.name(), kind, "login", ip, None);
        self.iam.audit.record_quietly(e).await;
    }

    async fn issue(
        &self,
        who: &Principal,
        scopes: &[Scope],
        offline: bool,
    ) -> Result<TokenResponse, ApiError> {
        let now = crate::store::now_secs();
        let grant = crate::iam::grant::grant(&self.iam.directory, who, scopes)
            .await
            .map_err(internal)?;
        let mut claims = new_claims(
            &self.iam.service,
            who.name(),
            grant.access,
            TokenUse::Access,
            now,
            ACCESS_TOKEN_TTL_SECS,
        );
        claims.missing = grant.missing_projects;
        let token = self.keys.sign(&claims).map_err(internal)?;
        let refresh_token = if offline && !matches!(who, Principal::Anonymous) {
            let mut r = new_claims(
                &self.iam.service,
                who.name(),
                Vec::new(),
                TokenUse::Refresh,
                now,
                REFRESH_TOKEN_TTL_SECS,
            );
            r.cred = Some(who.cred());
            Some(self.keys.sign(&r).map_err(internal)?)
        } else {
            None
        };
        Ok(TokenResponse {
            access_token: token.clone(),
            token,
            expires_in: ACCESS_TOKEN_TTL_SECS,
            issued_at: crate::iam::audit::rfc3339(now),
            refresh_token,
            scope: None,
        })
    }

    /// The principal a refresh token stands for, if it is still good.
    async fn refreshed(&self, refresh: &str) -> Result<Principal, ApiError> {
        let now = crate::store::now_secs();
        let claims = self
            .iam
            .verifier
            .verify(refresh, now)
            .await
            .map_err(|_| unauthorized("the refresh token is invalid or expired"))?;
        if claims.token_use != TokenUse::Refresh {
            return Err(unauthorized("not a refresh token"));
        }
        let dir = &self.iam.directory;
        let who = if claims.sub.starts_with(ROBOT_PREFIX) {
            dir.robot(&claims.sub)
                .await
                .map_err(internal)?
                .filter(|r| !r.disable && !r.expired(now))
                .map(Principal::Robot)
        } else {
            dir.user(&claims.sub)
                .await
                .map_err(internal)?
                .map(Principal::User)
        };
        match who {
            Some(p) if Some(p.cred()) == claims.cred => Ok(p),
            _ => Err(unauthorized(
                "the refresh token is no longer valid (credentials changed)",
            )),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "token service failure");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        OciCode::Unknown,
        "internal server error",
    )
}

fn scopes_of<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Scope> {
    values
        .flat_map(|v| v.split(' '))
        .filter_map(Scope::parse)
        .take(64)
        .collect()
}

async fn get_token(State(state): State<Arc<TokenState>>, req: Request) -> Response {
    let ip = super::client_ip(&req);
    let q = params(req.uri().query().unwrap_or(""));
    let credentials = basic(req.headers());
    drop(req);
    let result = async {
        let q = q?;
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        state.check_service(get("service"))?;
        let scopes = scopes_of(
            q.iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.as_str()),
        );
        let offline = get("offline_token") == Some("true");
        let who = match credentials {
            Some((u, p)) => {
                let who = state.login(&u, &p, &ip).await?;
                if offline {
                    state.audit_login(&who, &ip).await;
                }
                who
            }
            None => Principal::Anonymous,
        };
        state.issue(&who, &scopes, offline).await
    }
    .await;
    match result {
        Ok(t) => axum::Json(t).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn post_token(State(state): State<Arc<TokenState>>, req: Request) -> Response {
    let ip = super::client_ip(&req);
    let body: Bytes = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(_) => return bad_request("the form is too large or unreadable").into_response(),
    };
    let form = params(&String::from_utf8_lossy(&body));
    let result = async {
        let form: HashMap<String, String> = form?.into_iter().collect();
        let get = |k: &str| form.get(k).map(String::as_str);
        state.check_service(get("service"))?;
        let scopes = scopes_of(get("scope").into_iter());
        let offline = get("access_type") == Some("offline");
        let who = match get("grant_type") {
            Some("password") => {
                let (Some(u), Some(p)) = (get("username"), get("password")) else {
                    return Err(bad_request(
                        "grant_type=password needs username and password",
                    ));
                };
                let who = state.login(u, p, &ip).await?;
                state.audit_login(&who, &ip).await;
                who
            }
            Some("refresh_token") => {
                let Some(t) = get("refresh_token") else {
                    return Err(bad_request("grant_type=refresh_token needs refresh_token"));
                };
                state.refreshed(t).await?
            }
            _ => return Err(bad_request("grant_type must be password or refresh_token")),
        };
        let mut t = state.issue(&who, &scopes, offline).await?;
        t.scope = Some(
            scopes
                .iter()
                .map(Scope::to_string_form)
                .collect::<Vec<_>>()
                .join(" "),
        );
        Ok::<_, ApiError>(t)
    }
    .await;
    match result {
        Ok(t) => axum::Json(t).into_response(),
        Err(e) => e.into_response(),
    }
}
