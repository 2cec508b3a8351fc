//! `/api/v2.0/repositories` and `/projects/{p}/repositories…`.
//!
//! A repository's name in a path is the part after the project, with its
//! slashes encoded twice (`a%252Fb`, as Harbor's clients send it); one
//! encoding (`a%2Fb`) is accepted too.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::projects::{require, visible_by_name};
use super::query::{Params, QVal, cursor_page, cursor_page_response};
use super::{ApiError, ApiResult, Caller, P, Shared, json_body, rfc3339};
use crate::iam::grant::ProjectAccess;
use crate::iam::{Action, Principal, Project, Resource};
use crate::oci::RepoName;
use crate::registry::catalog::{Order, RepoRecord};
use crate::registry::keys;

/// A stable numeric id for things Berth names by strings (repositories,
/// artifacts, tags): 48 bits of a SHA-256, safe in JavaScript numbers.
pub(crate) fn stable_id(kind: &str, name: &str) -> i64 {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(format!("{kind}\0{name}").as_bytes());
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&h[..6]);
    i64::from_be_bytes(b)
}

/// Harbor's `Repository`.
pub(crate) fn repo_json(project_id: i64, r: &RepoRecord) -> Value {
    json!({
        "id": stable_id("repository", &r.name),
        "project_id": project_id,
        "name": r.name,
        "description": r.description,
        "artifact_count": r.artifacts,
        "pull_count": r.pulls,
        "creation_time": rfc3339(r.created),
        "update_time": rfc3339(r.updated),
    })
}

/// The repository a `{project_name}` / `{repository_name}` pair names,
/// in a project the caller can see (else 404), with the caller's access.
pub(crate) async fn repo_in(
    ctx: &Shared,
    caller: &Caller,
    project: &str,
    repository: &str,
) -> ApiResult<(Project, ProjectAccess, RepoName)> {
    let (p, pa) = visible_by_name(ctx, caller, project).await?;
    // Axum decoded the path once; Harbor's clients encode twice.
    let once = percent_encoding::percent_decode_str(repository).decode_utf8_lossy();
    let full = format!("{}/{once}", p.name);
    let name: RepoName = full
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid repository name {full:?}")))?;
    Ok((p, pa, name))
}

/// 404 unless the repository exists.
pub(crate) async fn existing(ctx: &Shared, name: &RepoName) -> ApiResult<RepoRecord> {
    ctx.registry
        .repository(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("repository {name} not found")))
}

/// The name filter of a repository listing (`q=name=~x`, `name=x`, …).
fn name_filter(params: &Params) -> ApiResult<Option<QVal>> {
    let q = params.q_of(&["name"])?;
    Ok(q.into_iter().map(|(_, v)| v).next())
}

/// Lists repositories under `prefix` (`"<project>/"` or `""`) with
/// `visible` deciding per name (for the global list of a non-admin).
async fn list(
    ctx: &Shared,
    uri: &Uri,
    prefix: String,
    total: Option<usize>,
    visible: impl Fn(&str) -> bool + Sync + Clone,
    project_ids: impl Fn(&str) -> i64,
) -> ApiResult<Response> {
    let params = Params::of(uri);
    let paging = params.paging()?;
    let reverse = params.sort(&["name", "-name"])? == "-name";
    let filter = name_filter(&params)?;
    let cursor = params.cursor(keys::REPO_PREFIX)?;
    let filtered = filter.is_some();
    let (items, next, before) = cursor_page(paging, cursor, |after, n| {
        let prefix = prefix.clone();
        let filter = filter.clone();
        let visible = visible.clone();
        async move {
            let keep = move |name: &str| {
                visible(name)
                    && filter.as_ref().is_none_or(|f| {
                        // Harbor matches the name with or without its project.
                        let short = name.split_once('/').map_or(name, |(_, r)| r);
                        f.matches(name) || f.matches(short)
                    })
            };
            let page = ctx
                .registry
                .repositories(&prefix, Order { after, reverse }, n, &keep)
                .await?;
            Ok((page.items, page.next))
        }
    })
    .await?;
    let out: Vec<Value> = items
        .iter()
        .map(|r| repo_json(project_ids(&r.name), r))
        .collect();
    let total = if filtered { None } else { total };
    Ok(cursor_page_response(
        uri,
        paging,
        total,
        before,
        &out,
        next.as_deref(),
    ))
}

/// `GET /projects/{project_name}/repositories`
pub(crate) async fn list_in_project(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    P(project): P<String>,
) -> ApiResult<Response> {
    let (p, pa) = visible_by_name(&ctx, &caller, &project).await?;
    require(&caller, &pa, Resource::Repository, Action::List)?;
    let total = ctx.registry.repository_count(&p.name).await?;
    let id = p.id;
    list(
        &ctx,
        &uri,
        format!("{}/", p.name),
        Some(usize::try_from(total).unwrap_or(0)),
        |_| true,
        move |_| id,
    )
    .await
}

/// `GET /repositories`: every repository the caller may list. System
/// admins read the whole catalog; others the repositories of their
/// projects and of public ones.
pub(crate) async fn list_all(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    let dir = &ctx.iam.directory;
    // The project index and the caller's memberships: two queries, no
    // record read per project.
    let roles = super::search::roles_of(&ctx, &caller).await?;
    let mut readable = std::collections::HashMap::new();
    for e in super::search::project_index(&ctx).await? {
        let pa = ProjectAccess {
            project: Some(e.as_project()),
            role: roles.get(&e.name).copied(),
        };
        // Robots see the projects their permissions name, as in Harbor.
        let robot_sees = matches!(caller.principal, Principal::Robot(_))
            && super::projects::visible(&caller, &pa);
        if robot_sees
            || crate::iam::grant::allows(&caller.principal, &pa, Resource::Repository, Action::List)
        {
            readable.insert(e.name, e.id);
        }
    }
    let names: Vec<String> = readable.keys().cloned().collect();
    let total: usize = if caller.is_admin() {
        usize::try_from(ctx.registry.repository_count(keys::ALL_PROJECTS).await?).unwrap_or(0)
    } else {
        dir.project_repo_counts(&names).await?.into_iter().sum()
    };
    let ids = readable.clone();
    let visible = move |name: &str| readable.contains_key(keys::project_of(name));
    list(
        &ctx,
        &uri,
        String::new(),
        Some(total),
        visible,
        move |name| ids.get(keys::project_of(name)).copied().unwrap_or(0),
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct RepoPath {
    project_name: String,
    repository_name: String,
}

/// `GET /projects/{p}/repositories/{r}`
pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    P(path): P<RepoPath>,
) -> ApiResult<Response> {
    let (p, pa, name) = repo_in(&ctx, &caller, &path.project_name, &path.repository_name).await?;
    // Harbor asks for list permission here (every role and public visitors).
    require(&caller, &pa, Resource::Repository, Action::List)?;
    let r = existing(&ctx, &name).await?;
    Ok(axum::Json(repo_json(p.id, &r)).into_response())
}

#[derive(Deserialize)]
struct RepoUpdate {
    #[serde(default)]
    description: Option<String>,
}

/// `PUT /projects/{p}/repositories/{r}`: the description.
pub(crate) async fn update(
    State(ctx): State<Shared>,
    caller: Caller,
    P(path): P<RepoPath>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: RepoUpdate = json_body(&body)?;
    let (p, pa, name) = repo_in(&ctx, &caller, &path.project_name, &path.repository_name).await?;
    require(&caller, &pa, Resource::Repository, Action::Update)?;
    existing(&ctx, &name).await?;
    let text = req.description.unwrap_or_default();
    if text.len() > 64 * 1024 {
        return Err(ApiError::bad_request("description is longer than 64 KiB"));
    }
    ctx.registry.set_description(&name, &text).await?;
    ctx.audit(
        &caller,
        name.as_str(),
        "repository",
        "update",
        Some(&p.name),
    )
    .await;
    Ok(axum::http::StatusCode::OK.into_response())
}

/// `DELETE /projects/{p}/repositories/{r}`: the repository and every
/// artifact in it.
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    caller: Caller,
    P(path): P<RepoPath>,
) -> ApiResult<Response> {
    let (p, pa, name) = repo_in(&ctx, &caller, &path.project_name, &path.repository_name).await?;
    require(&caller, &pa, Resource::Repository, Action::Delete)?;
    existing(&ctx, &name).await?;
    ctx.registry.delete_repository(&name).await?;
    ctx.audit(
        &caller,
        name.as_str(),
        "repository",
        "delete",
        Some(&p.name),
    )
    .await;
    Ok(axum::http::StatusCode::OK.into_response())
}
