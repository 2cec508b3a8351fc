//! `/api/v2.0/users…`: accounts, profiles, passwords, the sysadmin flag.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::query::{Params, QVal};
use super::{ApiError, ApiResult, Caller, P, Shared, created, json_body, now_secs, rfc3339};
use crate::iam::directory::initial_cred;
use crate::iam::{User, password};

/// Harbor's `UserResp`.
pub(crate) fn user_json(u: &User) -> Value {
    json!({
        "user_id": u.id,
        "username": u.username,
        "email": u.email,
        "realname": u.realname,
        "comment": u.comment,
        "sysadmin_flag": u.admin,
        "admin_role_in_auth": false,
        "creation_time": rfc3339(u.created),
        "update_time": rfc3339(u.updated),
    })
}

#[derive(Deserialize)]
struct CreateReq {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    realname: String,
    #[serde(default)]
    comment: String,
}

fn check_email(email: &str) -> ApiResult<()> {
    let ok = email.is_empty()
        || (email.len() <= 255
            && email
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
            && !email.chars().any(char::is_whitespace));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("email {email:?} is invalid")))
    }
}

pub(crate) async fn create(
    State(ctx): State<Shared>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    if !caller.is_admin() {
        let settings = ctx.iam.directory.settings().await?;
        if !settings.self_registration {
            caller.require_auth()?;
            return Err(ApiError::forbidden("only system admins may create users"));
        }
    }
    let req: CreateReq = json_body(&body)?;
    if req.username.is_empty() {
        return Err(ApiError::bad_request("username is required"));
    }
    password::check_password_rules(&req.password).map_err(ApiError::bad_request)?;
    check_email(&req.email)?;
    let now = now_secs();
    let user = User {
        id: 0,
        username: req.username,
        email: req.email,
        realname: req.realname,
        comment: req.comment,
        admin: false,
        hash: String::new(),
        cred: initial_cred(),
        created: now,
        updated: now,
    };
    let user = ctx.iam.directory.create_user(user, &req.password).await?;
    ctx.audit(&caller, &user.username, "user", "create", None)
        .await;
    Ok(created(&format!("/api/v2.0/users/{}", user.id)))
}

pub(crate) async fn list(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let mut filters = params.q()?;
    if let Some(u) = params.get("username") {
        filters.push(("username".to_owned(), QVal::Fuzzy(u.to_owned())));
    }
    if let Some(e) = params.get("email") {
        filters.push(("email".to_owned(), QVal::Fuzzy(e.to_owned())));
    }
    let users: Vec<Value> = ctx
        .iam
        .directory
        .list_users()
        .await?
        .into_iter()
        // Harbor leaves the built-in admin out of the list.
        .filter(|u| u.id != 1)
        .filter(|u| {
            filters.iter().all(|(k, v)| match k.as_str() {
                "username" => v.matches(&u.username),
                "email" => v.matches(&u.email),
                "user_id" => v.matches(&u.id.to_string()),
                _ => true,
            })
        })
        .map(|u| user_json(&u))
        .collect();
    Ok(super::query::paged(&uri, paging, users))
}

pub(crate) async fn current(caller: Caller) -> ApiResult<Response> {
    // Harbor answers a robot here with 412 (the only refusal its
    // definition lists for this call besides 401).
    if matches!(caller.principal, crate::iam::Principal::Robot(_)) {
        return Err(ApiError::precondition(
            "the current user is not available to a robot account",
        ));
    }
    let u = caller.user()?;
    Ok(axum::Json(user_json(u)).into_response())
}

pub(crate) async fn search(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    caller.require_auth()?;
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let Some(name) = params.get("username") else {
        return Err(ApiError::bad_request("username is required"));
    };
    let found: Vec<Value> = ctx
        .iam
        .directory
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.username.contains(name))
        .map(|u| json!({"user_id": u.id, "username": u.username}))
        .collect();
    Ok(super::query::paged(&uri, paging, found))
}

/// The user `id` names, when the caller is that user or a system admin
/// (others learn nothing: 403 before any lookup).
async fn self_or_admin(ctx: &Shared, caller: &Caller, id: i64) -> ApiResult<User> {
    let me = caller.user()?;
    if me.id != id && !me.admin {
        return Err(ApiError::forbidden(
            "only the user or a system admin may do this",
        ));
    }
    ctx.iam
        .directory
        .user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id} not found")))
}

pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
) -> ApiResult<Response> {
    let u = self_or_admin(&ctx, &caller, id).await?;
    Ok(axum::Json(user_json(&u)).into_response())
}

#[derive(Deserialize)]
struct ProfileReq {
    email: Option<String>,
    realname: Option<String>,
    comment: Option<String>,
}

pub(crate) async fn update(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: ProfileReq = json_body(&body)?;
    let prev = self_or_admin(&ctx, &caller, id).await?;
    let mut next = prev.clone();
    if let Some(e) = req.email {
        check_email(&e)?;
        next.email = e;
    }
    if let Some(r) = req.realname {
        next.realname = r;
    }
    if let Some(c) = req.comment {
        next.comment = c;
    }
    next.updated = now_secs();
    ctx.iam.directory.save_user(&prev, &next).await?;
    ctx.audit(&caller, &next.username, "user", "update", None)
        .await;
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn delete(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    _body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let me = caller.user()?;
    if me.id == id {
        return Err(ApiError::forbidden("you cannot delete yourself"));
    }
    if id == 1 {
        return Err(ApiError::forbidden("the built-in admin cannot be deleted"));
    }
    let u = ctx
        .iam
        .directory
        .user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id} not found")))?;
    ctx.iam.directory.delete_user(&u).await?;
    ctx.audit(&caller, &u.username, "user", "delete", None)
        .await;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
struct PasswordReq {
    #[serde(default)]
    old_password: String,
    #[serde(default)]
    new_password: String,
}

pub(crate) async fn password(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: PasswordReq = json_body(&body)?;
    let prev = self_or_admin(&ctx, &caller, id).await?;
    let is_self = caller.user()?.id == id;
    if is_self {
        if req.old_password.is_empty() {
            return Err(ApiError::bad_request("old_password is required"));
        }
        if !password::verify_password(&req.old_password, &prev.hash) {
            return Err(ApiError::forbidden("the current password is incorrect"));
        }
    }
    password::check_password_rules(&req.new_password).map_err(ApiError::bad_request)?;
    if password::verify_password(&req.new_password, &prev.hash) {
        return Err(ApiError::bad_request(
            "the new password must differ from the old one",
        ));
    }
    let mut next = prev.clone();
    next.hash = password::hash_password(&req.new_password).map_err(ApiError::internal)?;
    // Refresh tokens and cookie sessions issued before stop working.
    next.cred = prev.cred.wrapping_add(1);
    next.updated = now_secs();
    ctx.iam.directory.save_user(&prev, &next).await?;
    ctx.audit(&caller, &next.username, "user", "change_password", None)
        .await;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
struct SysadminReq {
    sysadmin_flag: Option<bool>,
}

pub(crate) async fn sysadmin(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req: SysadminReq = json_body(&body)?;
    let Some(flag) = req.sysadmin_flag else {
        return Err(ApiError::bad_request("sysadmin_flag is required"));
    };
    if caller.user()?.id == id {
        return Err(ApiError::forbidden(
            "you cannot change your own sysadmin flag",
        ));
    }
    let prev = ctx
        .iam
        .directory
        .user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id} not found")))?;
    let mut next = prev.clone();
    next.admin = flag;
    if prev.admin && !flag {
        // Tokens issued to the admin stop refreshing.
        next.cred = prev.cred.wrapping_add(1);
    }
    next.updated = now_secs();
    ctx.iam.directory.save_user(&prev, &next).await?;
    ctx.audit(&caller, &next.username, "user", "update", None)
        .await;
    Ok(StatusCode::OK.into_response())
}
