//! `/api/v2.0/projects/{project_name_or_id}/members…`: who has which role.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::projects::{require, visible_project};
use super::query::Params;
use super::{ApiError, ApiResult, Caller, P, Shared, created, json_body};
use crate::iam::{Action, Member, Resource, Role};

/// Harbor's `ProjectMemberEntity`.
fn member_json(m: &Member) -> Value {
    json!({
        "id": m.id,
        "project_id": m.project_id,
        "entity_name": m.entity_name,
        "entity_id": m.entity_id,
        "entity_type": "u",
        "role_id": m.role,
        "role_name": m.role().map_or("", Role::name),
    })
}

fn role_of(id: Option<i64>) -> ApiResult<Role> {
    let id = id.ok_or_else(|| ApiError::bad_request("role_id is required"))?;
    Role::from_id(id).ok_or_else(|| ApiError::bad_request(format!("role_id {id} is not a role")))
}

pub(crate) async fn list(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    P(name_or_id): P<String>,
) -> ApiResult<Response> {
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    require(&caller, &pa, Resource::Member, Action::List)?;
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let name = params.get("entityname");
    let members: Vec<Value> = ctx
        .iam
        .directory
        .project_members(&p.name)
        .await?
        .iter()
        .filter(|m| name.is_none_or(|n| m.entity_name.contains(n)))
        .map(member_json)
        .collect();
    Ok(super::query::paged(&uri, paging, members))
}

#[derive(Deserialize)]
struct UserRef {
    user_id: Option<i64>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct CreateReq {
    role_id: Option<i64>,
    member_user: Option<UserRef>,
    member_group: Option<Value>,
}

pub(crate) async fn create(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    P(name_or_id): P<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: CreateReq = json_body(&body)?;
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    require(&caller, &pa, Resource::Member, Action::Create)?;
    let role = role_of(req.role_id)?;
    if req.member_group.as_ref().is_some_and(|g| !g.is_null()) {
        return Err(ApiError::bad_request("group members are not supported"));
    }
    let who = req
        .member_user
        .ok_or_else(|| ApiError::bad_request("member_user is required"))?;
    let dir = &ctx.iam.directory;
    let user = match (
        who.user_id.filter(|i| *i > 0),
        who.username.filter(|n| !n.is_empty()),
    ) {
        (Some(id), _) => dir.user_by_id(id).await?,
        (None, Some(name)) => dir.user(&name).await?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "member_user needs user_id or username",
            ));
        }
    }
    .ok_or_else(|| ApiError::not_found("user not found"))?;
    let member = Member {
        id: dir.next_id("member").await?,
        project: p.name.clone(),
        project_id: p.id,
        entity_id: user.id,
        entity_name: user.username.clone(),
        role: role.id(),
    };
    dir.create_member(&member).await?;
    ctx.audit(&caller, &user.username, "member", "create", Some(&p.name))
        .await;
    Ok(created(&format!("{}/{}", uri.path(), member.id)))
}

async fn find_member(ctx: &Shared, project: &str, mid: i64) -> ApiResult<Member> {
    ctx.iam
        .directory
        .project_members(project)
        .await?
        .into_iter()
        .find(|m| m.id == mid)
        .ok_or_else(|| ApiError::not_found(format!("member {mid} not found")))
}

pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P((name_or_id, mid)): P<(String, i64)>,
) -> ApiResult<Response> {
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    require(&caller, &pa, Resource::Member, Action::Read)?;
    let m = find_member(&ctx, &p.name, mid).await?;
    Ok(axum::Json(member_json(&m)).into_response())
}

#[derive(Deserialize)]
struct RoleReq {
    role_id: Option<i64>,
}

pub(crate) async fn update(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P((name_or_id, mid)): P<(String, i64)>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: RoleReq = json_body(&body)?;
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    require(&caller, &pa, Resource::Member, Action::Update)?;
    let role = role_of(req.role_id)?;
    let prev = find_member(&ctx, &p.name, mid).await?;
    let mut next = prev.clone();
    next.role = role.id();
    ctx.iam.directory.update_member(&prev, &next).await?;
    ctx.audit(
        &caller,
        &next.entity_name,
        "member",
        "update",
        Some(&p.name),
    )
    .await;
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn delete(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P((name_or_id, mid)): P<(String, i64)>,
    _body: Bytes,
) -> ApiResult<Response> {
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    require(&caller, &pa, Resource::Member, Action::Delete)?;
    let m = find_member(&ctx, &p.name, mid).await?;
    ctx.iam.directory.delete_member(&m).await?;
    ctx.audit(&caller, &m.entity_name, "member", "delete", Some(&p.name))
        .await;
    Ok(StatusCode::OK.into_response())
}
