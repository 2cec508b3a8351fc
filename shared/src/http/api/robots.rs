//! `/api/v2.0/robots…`: Harbor's v2 robot accounts, system- and
//! project-level.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::projects::{require, visible_project};
use super::query::{Params, QVal};
use super::{ApiError, ApiResult, Caller, P, Shared, json_body, now_secs, rfc3339};
use crate::iam::directory::{ROBOT_PREFIX, initial_cred};
use crate::iam::rbac::RobotPermission;
use crate::iam::{Action, Principal, Project, Resource, Robot, password};

/// Days a robot lives when the request names no duration (Harbor's
/// default `robot_token_duration`).
const DEFAULT_DURATION_DAYS: i64 = 30;

/// Harbor's `Robot` (never the secret).
fn robot_json(r: &Robot) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "level": r.level,
        "duration": r.duration,
        "editable": true,
        "disable": r.disable,
        "expires_at": r.expires_at,
        "permissions": r.permissions,
        "creation_time": rfc3339(r.created),
        "update_time": rfc3339(r.updated),
    })
}

/// Robot names: lowercase letters, digits and `._-` between them.
fn check_robot_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "robot name {name:?} is invalid: lowercase letters, digits and . _ - between them"
        )))
    }
}

/// `expires_at` of a robot created at `created` living `duration` days.
fn expiry(created: i64, duration: i64) -> ApiResult<i64> {
    if duration == -1 {
        return Ok(-1);
    }
    if duration <= 0 {
        return Err(ApiError::bad_request(
            "duration is a number of days, or -1 for never expiring",
        ));
    }
    duration
        .checked_mul(86_400)
        .and_then(|d| d.checked_add(created))
        .ok_or_else(|| ApiError::bad_request("duration is too long"))
}

/// Checks a robot's permissions for its level (and project).
async fn check_permissions(
    ctx: &Shared,
    level: &str,
    project: Option<&Project>,
    perms: &[RobotPermission],
) -> ApiResult<()> {
    if perms.is_empty() {
        return Err(ApiError::bad_request("permissions are required"));
    }
    for perm in perms {
        if perm.access.is_empty() {
            return Err(ApiError::bad_request(
                "every permission needs at least one access",
            ));
        }
        for a in &perm.access {
            if a.resource != "*" && Resource::parse(&a.resource).is_none() {
                return Err(ApiError::bad_request(format!(
                    "unknown resource {:?}",
                    a.resource
                )));
            }
            if a.action != "*" && Action::parse(&a.action).is_none() {
                return Err(ApiError::bad_request(format!(
                    "unknown action {:?}",
                    a.action
                )));
            }
            if !matches!(a.effect.as_deref(), None | Some("" | "allow" | "deny")) {
                return Err(ApiError::bad_request("effect is allow or deny"));
            }
        }
        match (level, project) {
            ("project", Some(p)) => {
                if perm.kind != "project" || perm.namespace != p.name {
                    return Err(ApiError::bad_request(
                        "a project robot's permissions are of kind project, in its own project",
                    ));
                }
            }
            _ => match perm.kind.as_str() {
                "system" => {}
                "project" if perm.namespace == "*" => {}
                "project" => {
                    if ctx.iam.directory.project(&perm.namespace).await?.is_none() {
                        return Err(ApiError::bad_request(format!(
                            "project {} not found",
                            perm.namespace
                        )));
                    }
                }
                k => {
                    return Err(ApiError::bad_request(format!(
                        "unknown permission kind {k:?}"
                    )));
                }
            },
        }
    }
    if level == "project" && perms.len() != 1 {
        return Err(ApiError::bad_request(
            "a project robot has exactly one permission entry",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct CreateReq {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    disable: bool,
    duration: Option<i64>,
    #[serde(default)]
    permissions: Vec<RobotPermission>,
}

fn refuse_robots(caller: &Caller) -> ApiResult<()> {
    if matches!(caller.principal, Principal::Robot(_)) {
        return Err(ApiError::forbidden(
            "robot accounts may not manage robot accounts",
        ));
    }
    Ok(())
}

pub(crate) async fn create(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_auth()?;
    refuse_robots(&caller)?;
    let req: CreateReq = json_body(&body)?;
    check_robot_name(&req.name)?;
    let (full_name, project) = match req.level.as_str() {
        "system" => {
            caller.require_admin()?;
            (format!("{ROBOT_PREFIX}{}", req.name), None)
        }
        "project" => {
            let ns = req
                .permissions
                .first()
                .map(|p| p.namespace.clone())
                .ok_or_else(|| {
                    ApiError::bad_request("a project robot needs its project's permission")
                })?;
            // The namespace is a name, whatever the header says.
            let mut by_name = headers.clone();
            by_name.insert(
                "x-is-resource-name",
                header::HeaderValue::from_static("true"),
            );
            let (p, pa) = visible_project(&ctx, &caller, &by_name, &ns).await?;
            require(&caller, &pa, Resource::Robot, Action::Create)?;
            (format!("{ROBOT_PREFIX}{}+{}", p.name, req.name), Some(p))
        }
        l => {
            return Err(ApiError::bad_request(format!(
                "level must be system or project, not {l:?}"
            )));
        }
    };
    check_permissions(&ctx, &req.level, project.as_ref(), &req.permissions).await?;
    let now = now_secs();
    let duration = req
        .duration
        .filter(|d| *d != 0)
        .unwrap_or(DEFAULT_DURATION_DAYS);
    let robot = Robot {
        id: 0,
        name: full_name,
        level: req.level.clone(),
        project: project.as_ref().map(|p| p.name.clone()),
        project_id: project.as_ref().map_or(0, |p| p.id),
        description: req.description,
        secret_digest: String::new(),
        disable: req.disable,
        duration,
        expires_at: expiry(now, duration)?,
        permissions: req.permissions,
        cred: initial_cred(),
        created: now,
        updated: now,
    };
    let (robot, secret) = ctx.iam.directory.create_robot(robot).await?;
    ctx.audit(
        &caller,
        &robot.name,
        "robot",
        "create",
        robot.project.as_deref(),
    )
    .await;
    let body = json!({
        "id": robot.id,
        "name": robot.name,
        "secret": secret,
        "creation_time": rfc3339(robot.created),
        "expires_at": robot.expires_at,
    });
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!("/api/v2.0/robots/{}", robot.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

pub(crate) async fn list(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let filters = params.q()?;
    let exact = |key: &str| {
        filters.iter().find_map(|(k, v)| match v {
            QVal::Exact(s) if k.eq_ignore_ascii_case(key) => Some(s.clone()),
            _ => None,
        })
    };
    let level = exact("level");
    let robots = match exact("projectid") {
        Some(pid) => {
            if pid.parse::<i64>().is_err() {
                return Err(ApiError::bad_request("ProjectID must be a number"));
            }
            let mut by_id = headers.clone();
            by_id.remove("x-is-resource-name");
            let (p, pa) = visible_project(&ctx, &caller, &by_id, &pid).await?;
            require(&caller, &pa, Resource::Robot, Action::List)?;
            ctx.iam.directory.list_robots(Some(p.id)).await?
        }
        None => {
            caller.require_admin()?;
            ctx.iam.directory.list_robots(None).await?
        }
    };
    let shown: Vec<Value> = robots
        .iter()
        .filter(|r| level.as_deref().is_none_or(|l| r.level == l))
        .filter(|r| {
            filters
                .iter()
                .all(|(k, v)| match k.to_ascii_lowercase().as_str() {
                    "name" => v.matches(&r.name),
                    "description" => v.matches(&r.description),
                    _ => true,
                })
        })
        .map(robot_json)
        .collect();
    Ok(super::query::paged(&uri, paging, shown))
}

/// The robot `id` names, when the caller may do `action` to it: system
/// admins to any, project robots to those with the robot permission in
/// the project. A project the caller cannot see hides its robots.
async fn robot_for(ctx: &Shared, caller: &Caller, id: i64, action: Action) -> ApiResult<Robot> {
    caller.require_auth()?;
    let not_found = || ApiError::not_found(format!("robot {id} not found"));
    let r = ctx
        .iam
        .directory
        .robot_by_id(id)
        .await?
        .ok_or_else(not_found)?;
    if caller.is_admin() {
        return Ok(r);
    }
    let self_refresh = action == Action::Update
        && matches!(&caller.principal, Principal::Robot(me) if me.id == r.id);
    if self_refresh {
        return Ok(r);
    }
    match (r.level.as_str(), &r.project) {
        ("project", Some(project)) => {
            let mut by_name = HeaderMap::new();
            by_name.insert(
                "x-is-resource-name",
                header::HeaderValue::from_static("true"),
            );
            let (_, pa) = visible_project(ctx, caller, &by_name, project)
                .await
                .map_err(|_| not_found())?;
            require(caller, &pa, Resource::Robot, action)?;
            if action != Action::Read {
                refuse_robots(caller)?;
            }
            Ok(r)
        }
        _ => Err(ApiError::forbidden(
            "only system admins may manage system robots",
        )),
    }
}

pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
) -> ApiResult<Response> {
    let r = robot_for(&ctx, &caller, id, Action::Read).await?;
    Ok(axum::Json(robot_json(&r)).into_response())
}

#[derive(Deserialize)]
struct UpdateReq {
    name: Option<String>,
    level: Option<String>,
    description: Option<String>,
    disable: Option<bool>,
    duration: Option<i64>,
    permissions: Option<Vec<RobotPermission>>,
}

pub(crate) async fn update(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: UpdateReq = json_body(&body)?;
    let prev = robot_for(&ctx, &caller, id, Action::Update).await?;
    refuse_robots(&caller)?;
    if let Some(n) = req.name.as_deref().filter(|n| !n.is_empty()) {
        let short = prev.name.rsplit(['+', '$']).next().unwrap_or_default();
        if n != prev.name && n != short {
            return Err(ApiError::bad_request("a robot cannot be renamed"));
        }
    }
    if req
        .level
        .as_deref()
        .is_some_and(|l| !l.is_empty() && l != prev.level)
    {
        return Err(ApiError::bad_request("a robot's level cannot change"));
    }
    let mut next = prev.clone();
    if let Some(d) = req.description {
        next.description = d;
    }
    if let Some(d) = req.disable {
        next.disable = d;
    }
    if let Some(d) = req.duration.filter(|d| *d != prev.duration) {
        next.expires_at = expiry(prev.created, d)?;
        next.duration = d;
    }
    if let Some(perms) = req.permissions {
        let project = match &prev.project {
            Some(p) => ctx.iam.directory.project(p).await?,
            None => None,
        };
        check_permissions(&ctx, &prev.level, project.as_ref(), &perms).await?;
        next.permissions = perms;
    }
    // Refresh tokens issued with more than the robot now has stop working.
    if next.permissions != prev.permissions || (next.disable && !prev.disable) {
        next.cred = prev.cred.wrapping_add(1);
    }
    next.updated = now_secs();
    ctx.iam.directory.save_robot(&prev, &next).await?;
    ctx.audit(
        &caller,
        &next.name,
        "robot",
        "update",
        next.project.as_deref(),
    )
    .await;
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn delete(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    _body: Bytes,
) -> ApiResult<Response> {
    let r = robot_for(&ctx, &caller, id, Action::Delete).await?;
    refuse_robots(&caller)?;
    ctx.iam.directory.delete_robot(&r).await?;
    ctx.audit(&caller, &r.name, "robot", "delete", r.project.as_deref())
        .await;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
struct SecretReq {
    secret: Option<String>,
}

/// `PATCH /robots/{id}`: a new secret (generated, or the caller's own if
/// it passes the password rules); the old one and refresh tokens die.
pub(crate) async fn refresh(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: SecretReq = json_body(&body)?;
    let prev = robot_for(&ctx, &caller, id, Action::Update).await?;
    let secret = match req.secret.filter(|s| !s.is_empty()) {
        Some(s) => {
            password::check_password_rules(&s).map_err(ApiError::bad_request)?;
            s
        }
        None => password::new_robot_secret(),
    };
    let mut next = prev.clone();
    next.secret_digest = password::secret_digest(&secret);
    next.cred = prev.cred.wrapping_add(1);
    next.updated = now_secs();
    ctx.iam.directory.save_robot(&prev, &next).await?;
    ctx.audit(
        &caller,
        &next.name,
        "robot",
        "update",
        next.project.as_deref(),
    )
    .await;
    Ok(axum::Json(json!({ "secret": secret })).into_response())
}
