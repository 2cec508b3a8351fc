//! `/c/login` and `/c/log_out`: the portal's cookie sessions.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::query::parse_urlencoded;
use super::{ApiError, ApiResult, CSRF_HEADER, SESSION_COOKIE, Shared, cookie, now_secs};
use crate::iam::AuditEntry;
use crate::iam::directory::ROBOT_PREFIX;

fn secure(ctx: &Shared) -> &'static str {
    if ctx
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
    {
        "; Secure"
    } else {
        ""
    }
}

/// `POST /c/login` (form `principal`, `password`): users only.
pub(crate) async fn login(
    State(ctx): State<Shared>,
    peer: Option<axum::Extension<crate::http::server::PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let form = parse_urlencoded(&String::from_utf8_lossy(&body));
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (principal, password) = (field("principal"), field("password"));
    let dir = &ctx.iam.directory;
    let user = if principal.is_empty() || principal.starts_with(ROBOT_PREFIX) {
        None
    } else {
        dir.authenticate_user(&principal, &password).await?
    };
    let source_ip = crate::http::client_ip_of(&headers, peer.as_deref());
    let audit_name: String = principal.chars().take(255).collect();
    let Some(user) = user else {
        let e = AuditEntry::new(
            &audit_name,
            &audit_name,
            "user",
            "login_failed",
            &source_ip,
            None,
        );
        ctx.iam.audit.record_quietly(e).await;
        return Err(ApiError::unauthorized("invalid user name or password"));
    };
    let (sid, session) = dir.create_session(&user, now_secs()).await?;
    let e = AuditEntry::new(
        &user.username,
        &user.username,
        "user",
        "login",
        &source_ip,
        None,
    );
    ctx.iam.audit.record_quietly(e).await;
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    let cookie = format!(
        "{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax{}",
        secure(&ctx)
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(header::SET_COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&session.csrf) {
        h.insert(CSRF_HEADER, v);
    }
    Ok(resp)
}

/// `GET /c/log_out`: ends the session and expires the cookie.
pub(crate) async fn logout(State(ctx): State<Shared>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(sid) = cookie(&headers, SESSION_COOKIE) {
        ctx.iam.directory.delete_session(&sid).await?;
    }
    let mut resp = StatusCode::OK.into_response();
    let expired = format!(
        "{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        secure(&ctx)
    );
    if let Ok(v) = HeaderValue::from_str(&expired) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}
