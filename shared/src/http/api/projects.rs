//! `/api/v2.0/projects…`: projects and their visibility.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::query::{Params, QVal, parse_bool};
use super::{ApiError, ApiResult, Caller, P, Shared, created, json_body, now_secs, rfc3339};
use crate::iam::directory::ADMIN_USER;
use crate::iam::grant::{ProjectAccess, allows};
use crate::iam::{Action, Principal, Project, Resource, Role};

/// Harbor's `Project`.
pub(crate) fn project_json(p: &Project, role: Option<Role>, repo_count: usize) -> Value {
    let role_id = role.map_or(0, Role::id);
    let role_ids: Vec<i64> = role.map(Role::id).into_iter().collect();
    json!({
        "project_id": p.id,
        "name": p.name,
        "owner_id": p.owner_id,
        "owner_name": p.owner_name,
        "registry_id": 0,
        "creation_time": rfc3339(p.created),
        "update_time": rfc3339(p.updated),
        "deleted": false,
        "togglable": true,
        "repo_count": repo_count,
        "current_user_role_id": role_id,
        "current_user_role_ids": role_ids,
        "metadata": { "public": p.public.to_string() },
    })
}

/// The role shown as the caller's: a member's role; system admins count
/// as project admins (as Harbor shows them).
fn shown_role(caller: &Caller, pa: &ProjectAccess) -> Option<Role> {
    pa.role
        .or_else(|| caller.is_admin().then_some(Role::ProjectAdmin))
}

/// Whether `X-Is-Resource-Name` says the parameter is a name.
fn is_resource_name(headers: &HeaderMap) -> ApiResult<bool> {
    match headers.get("x-is-resource-name").map(|v| v.to_str()) {
        None => Ok(false),
        Some(Ok(v)) => parse_bool("X-Is-Resource-Name", v),
        Some(Err(_)) => Err(ApiError::bad_request("X-Is-Resource-Name is not text")),
    }
}

/// The project a `{project_name_or_id}` names, if it exists.
pub(crate) async fn find(
    ctx: &Shared,
    headers: &HeaderMap,
    name_or_id: &str,
) -> ApiResult<Option<Project>> {
    let dir = &ctx.iam.directory;
    let by_name = is_resource_name(headers)?;
    match name_or_id.parse::<i64>() {
        Ok(id) if !by_name => Ok(dir.project_by_id(id).await?),
        _ => Ok(dir.project(name_or_id).await?),
    }
}

/// Whether the caller may see a project at all (a robot with any
/// permission in it does).
pub(crate) fn visible(caller: &Caller, pa: &ProjectAccess) -> bool {
    if allows(&caller.principal, pa, Resource::SelfProject, Action::Read) {
        return true;
    }
    match (&caller.principal, &pa.project) {
        (Principal::Robot(r), Some(p)) => r.permissions.iter().any(|perm| {
            perm.kind == "project" && (perm.namespace == "*" || perm.namespace == p.name)
        }),
        _ => false,
    }
}

/// A project the caller can see, with the caller's standing there; a
/// project it cannot see is "not found", as Harbor answers.
pub(crate) async fn visible_project(
    ctx: &Shared,
    caller: &Caller,
    headers: &HeaderMap,
    name_or_id: &str,
) -> ApiResult<(Project, ProjectAccess)> {
    let found = find(ctx, headers, name_or_id).await?;
    seen_by(ctx, caller, found, name_or_id).await
}

/// The project named `name` (a name, never an id), if the caller can see it.
pub(crate) async fn visible_by_name(
    ctx: &Shared,
    caller: &Caller,
    name: &str,
) -> ApiResult<(Project, ProjectAccess)> {
    let found = ctx.iam.directory.project(name).await?;
    seen_by(ctx, caller, found, name).await
}

/// The project with the caller's standing there, or "not found" (asked
/// `shown` for) when it does not exist or the caller cannot see it;
/// anonymous callers are asked to sign in instead, as Harbor does.
async fn seen_by(
    ctx: &Shared,
    caller: &Caller,
    found: Option<Project>,
    shown: &str,
) -> ApiResult<(Project, ProjectAccess)> {
    let not_found = || ApiError::not_found(format!("project {shown} not found"));
    let p = found.ok_or_else(not_found)?;
    let pa = ctx
        .iam
        .directory
        .project_access(&caller.principal, &p.name)
        .await?;
    if !visible(caller, &pa) {
        caller.require_auth()?;
        return Err(not_found());
    }
    Ok((p, pa))
}

/// 401 for anonymous callers, 403 for others without the permission.
pub(crate) fn require(
    caller: &Caller,
    pa: &ProjectAccess,
    resource: Resource,
    action: Action,
) -> ApiResult<()> {
    if allows(&caller.principal, pa, resource, action) {
        return Ok(());
    }
    caller.require_auth()?;
    Err(ApiError::forbidden(format!(
        "no permission to {} {} in this project",
        action.as_str(),
        resource.as_str()
    )))
}

#[derive(Deserialize, Default)]
struct ProjectReq {
    project_name: Option<String>,
    public: Option<bool>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, Value>>,
    registry_id: Option<i64>,
    /// Bytes, or -1 for unlimited (Harbor's quota, system admins only).
    storage_limit: Option<i64>,
}

impl ProjectReq {
    /// `public` from the request: `metadata.public` ("true"/"false" or a
    /// boolean) wins over the top-level flag.
    fn public(&self) -> ApiResult<Option<bool>> {
        if let Some(v) = self.metadata.as_ref().and_then(|m| m.get("public")) {
            return match v {
                Value::Bool(b) => Ok(Some(*b)),
                Value::String(s) => parse_bool("metadata.public", s).map(Some),
                Value::Null => Ok(self.public),
                _ => Err(ApiError::bad_request(
                    "metadata.public must be \"true\" or \"false\"",
                )),
            };
        }
        Ok(self.public)
    }
}

/// Whether a robot holds a system permission to create projects.
fn robot_may_create_projects(p: &Principal) -> bool {
    matches!(p, Principal::Robot(r) if r.permissions.iter().any(|perm| {
        perm.kind == "system"
            && perm
                .access
                .iter()
                .any(|a| a.allows(Resource::SelfProject, Action::Create))
    }))
}

pub(crate) async fn create(
    State(ctx): State<Shared>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_auth()?;
    let dir = &ctx.iam.directory;
    let req: ProjectReq = json_body(&body)?;
    let name = req
        .project_name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("project_name is required"))?;
    let public = req.public()?.unwrap_or(false);
    // A proxy-cache project (Harbor: system admins only) names an
    // existing registry endpoint.
    let registry_id = req.registry_id.filter(|r| *r != 0);
    if let Some(id) = registry_id {
        if !caller.is_admin() {
            return Err(ApiError::forbidden(
                "only system admins may create proxy cache projects",
            ));
        }
        if crate::replication::endpoints::endpoint(ctx.registry.kv(), id)
            .await
            .is_none()
        {
            return Err(ApiError::bad_request(format!("registry {id} not found")));
        }
    }
    let (owner_id, owner_name) = match &caller.principal {
        Principal::User(u) => {
            if !u.admin {
                let settings = dir.settings().await?;
                if settings.project_creation_restriction == "adminonly" {
                    return Err(ApiError::forbidden(
                        "only system admins may create projects",
                    ));
                }
            }
            (u.id, u.username.clone())
        }
        p if robot_may_create_projects(p) => (1, ADMIN_USER.to_owned()),
        _ => return Err(ApiError::forbidden("no permission to create projects")),
    };
    let now = now_secs();
    let project = Project {
        id: 0,
        name,
        public,
        owner_id,
        owner_name,
        created: now,
        updated: now,
    };
    // Harbor: only system admins set a limit; anyone else's project (and
    // 0, "the default") gets the default, which is unlimited here.
    let limit = match req.storage_limit {
        Some(l) if l != 0 && caller.is_admin() => super::quotas::storage_limit(l)?,
        _ => None,
    };
    let p = dir.create_project(project).await?;
    if registry_id.is_some() {
        ctx.registry.set_proxy_binding(&p.name, registry_id).await?;
    }
    if limit.is_some() {
        ctx.registry.set_quota_limit(&p.name, limit).await?;
    }
    ctx.audit(&caller, &p.name, "project", "create", Some(&p.name))
        .await;
    Ok(created(&format!("/api/v2.0/projects/{}", p.id)))
}

pub(crate) async fn head_by_name(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    caller.require_auth()?;
    let params = Params::of(&uri);
    let Some(name) = params.get("project_name") else {
        return Err(ApiError::bad_request("project_name is required"));
    };
    match ctx.iam.directory.project(name).await? {
        Some(_) => Ok(StatusCode::OK.into_response()),
        None => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}

pub(crate) async fn list(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    let dir = &ctx.iam.directory;
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let mut filters = params.q()?;
    if let Some(n) = params.get("name") {
        filters.push(("name".to_owned(), QVal::Fuzzy(n.to_owned())));
    }
    if let Some(p) = params.bool("public")? {
        filters.push(("public".to_owned(), QVal::Exact(p.to_string())));
    }
    if let Some(o) = params.get("owner") {
        filters.push(("owner".to_owned(), QVal::Exact(o.to_owned())));
    }
    let roles: std::collections::HashMap<String, i64> = match &caller.principal {
        Principal::User(u) => dir.memberships(&u.username).await?.into_iter().collect(),
        _ => Default::default(),
    };
    let mut shown = Vec::new();
    for p in dir.list_projects().await? {
        let role = roles.get(&p.name).and_then(|r| Role::from_id(*r));
        let pa = ProjectAccess {
            project: Some(p.clone()),
            role,
        };
        if !(visible(&caller, &pa)) {
            continue;
        }
        let keep = filters
            .iter()
            .all(|(k, v)| match k.to_ascii_lowercase().as_str() {
                "name" => v.matches(&p.name),
                "public" => v.matches(&p.public.to_string()),
                "owner" => v.matches(&p.owner_name),
                "project_id" => v.matches(&p.id.to_string()),
                _ => true,
            });
        if keep {
            shown.push((p, shown_role(&caller, &pa)));
        }
    }
    let total = shown.len();
    let mut out = Vec::new();
    for (p, role) in paging.slice(shown) {
        let repos = dir.project_repo_count(&p.name).await?;
        let mut json = project_json(&p, role, repos);
        json["registry_id"] = json!(ctx.registry.proxy_binding(&p.name).await?.unwrap_or(0));
        out.push(json);
    }
    Ok(super::query::page_response(&uri, paging, total, &out))
}

pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P(name_or_id): P<String>,
) -> ApiResult<Response> {
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    let repos = ctx.iam.directory.project_repo_count(&p.name).await?;
    let mut json = project_json(&p, shown_role(&caller, &pa), repos);
    json["registry_id"] = json!(ctx.registry.proxy_binding(&p.name).await?.unwrap_or(0));
    // Harbor's metadata `retention_id`, which the portal's policy page
    // follows to the project's retention policy (one read, this GET only).
    if let Some(id) = super::retentions::policies(&ctx)
        .id_of_project(&p.name)
        .await?
    {
        json["metadata"]["retention_id"] = json!(id.to_string());
    }
    Ok(axum::Json(json).into_response())
}

pub(crate) async fn update(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P(name_or_id): P<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: ProjectReq = json_body(&body)?;
    let (prev, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    require(&caller, &pa, Resource::SelfProject, Action::Update)?;
    if req.project_name.as_ref().is_some_and(|n| n != &prev.name) {
        return Err(ApiError::bad_request("a project cannot be renamed"));
    }
    // Berth also takes `storage_limit` here (Harbor only on creation and
    // through `/quotas`), from system admins alone.
    let limit = match req.storage_limit {
        Some(_) if !caller.is_admin() => {
            return Err(ApiError::forbidden(
                "only system admins may set a project's storage limit",
            ));
        }
        Some(l) => Some(super::quotas::storage_limit(l)?),
        None => None,
    };
    let mut next = prev.clone();
    if let Some(public) = req.public()? {
        next.public = public;
    }
    next.updated = now_secs();
    ctx.iam.directory.save_project(&prev, &next).await?;
    if let Some(limit) = limit {
        ctx.registry.set_quota_limit(&next.name, limit).await?;
    }
    ctx.audit(&caller, &next.name, "project", "update", Some(&next.name))
        .await;
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn delete(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P(name_or_id): P<String>,
    _body: Bytes,
) -> ApiResult<Response> {
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    require(&caller, &pa, Resource::SelfProject, Action::Delete)?;
    let dir = &ctx.iam.directory;
    if dir.project_repo_count(&p.name).await? > 0 {
        return Err(ApiError::precondition(format!(
            "project {} still holds repositories; delete them first",
            p.name
        )));
    }
    dir.delete_project(&p).await?;
    // Its usage and limit (a project of the same name later starts anew).
    ctx.registry.delete_quota(&p.name).await?;
    // And its upstream, if it was a proxy cache.
    ctx.registry.set_proxy_binding(&p.name, None).await?;
    // Its labels go with it (a project of the same name later is another
    // project, with another id).
    dir.labels().delete_project_labels(p.id).await?;
    // And its immutable tag rules (kept by name: a project of the same
    // name later starts with none).
    crate::policy::ImmutableRules::new(dir.kv().clone())
        .delete_all(&p.name)
        .await?;
    // And its retention policy with its schedule (Harbor's
    // DeleteRetentionByProject).
    crate::policy::retention::RetentionPolicies::new(dir.kv().clone())
        .delete_project(&p.name)
        .await?;
    ctx.audit(&caller, &p.name, "project", "delete", Some(&p.name))
        .await;
    Ok(StatusCode::OK.into_response())
}
