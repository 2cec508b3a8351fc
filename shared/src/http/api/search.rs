//! `/api/v2.0/search`, `/statistics`, `/health` and
//! `/projects/{project_name_or_id}/summary`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde_json::{Value, json};

use super::projects::{project_json, visible, visible_project};
use super::query::Params;
use super::{ApiResult, Caller, P, Shared};
use crate::iam::directory::keys as dkeys;
use crate::iam::grant::{ProjectAccess, allows};
use crate::iam::{Action, Principal, Project, Resource, Role};
use crate::registry::keys as rkeys;
use crate::store::Query;

/// Catalog entries one search examines at most (over every project it
/// looks in): a search costs a bounded number of reads however large the
/// registry.
pub(crate) const SEARCH_MAX_EXAMINED: usize = 10_000;
/// Most projects, and most repositories, one search answers with.
pub(crate) const SEARCH_MAX_RESULTS: usize = 100;
/// How long a health check waits for one component.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Catalog entries read per query.
const CATALOG_PAGE: usize = 1000;
/// Keys per `batch_get` (DynamoDB's limit).
const BATCH_GET: usize = 100;

/// The routes this module serves.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    vec![
        ("/api/v2.0/search", get(search)),
        ("/api/v2.0/statistics", get(statistics)),
        ("/api/v2.0/health", get(health)),
        (
            "/api/v2.0/projects/{project_name_or_id}/summary",
            get(project_summary),
        ),
    ]
}

/// A project as its listing index holds it: enough to decide visibility.
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) id: i64,
    pub(crate) public: bool,
}

impl Entry {
    /// A project record with only what permission checks read.
    pub(crate) fn as_project(&self) -> Project {
        Project {
            id: self.id,
            name: self.name.clone(),
            public: self.public,
            owner_id: 0,
            owner_name: String::new(),
            created: 0,
            updated: 0,
        }
    }
}

/// Every project from the `PROJECTS` index, by name (no record read).
pub(crate) async fn project_index(ctx: &Shared) -> ApiResult<Vec<Entry>> {
    let items = ctx
        .iam
        .directory
        .scan_partition(dkeys::PROJECTS, "")
        .await?;
    Ok(items
        .into_iter()
        .map(|i| Entry {
            id: i.n("id").unwrap_or(0),
            public: i.n("public").unwrap_or(0) != 0,
            name: i.sk,
        })
        .collect())
}

/// The caller's role per project (users only).
pub(crate) async fn roles_of(ctx: &Shared, caller: &Caller) -> ApiResult<HashMap<String, Role>> {
    Ok(match &caller.principal {
        Principal::User(u) => ctx
            .iam
            .directory
            .memberships(&u.username)
            .await?
            .into_iter()
            .filter_map(|(p, r)| Some((p, Role::from_id(r)?)))
            .collect(),
        _ => HashMap::new(),
    })
}

/// The projects the caller can see, by name, with the caller's role.
async fn visible_projects(ctx: &Shared, caller: &Caller) -> ApiResult<Vec<(Entry, Option<Role>)>> {
    let roles = roles_of(ctx, caller).await?;
    Ok(project_index(ctx)
        .await?
        .into_iter()
        .filter_map(|e| {
            let role = roles.get(&e.name).copied();
            let pa = ProjectAccess {
                project: Some(e.as_project()),
                role,
            };
            // Robots search public projects only, as Harbor has it (its
            // search shows private projects to signed-in users alone).
            let shown = match caller.principal {
                Principal::Robot(_) => e.public,
                _ => visible(caller, &pa),
            };
            shown.then_some((e, role))
        })
        .collect())
}

/// Project records by name, one batch read per 100.
async fn project_records(ctx: &Shared, names: &[String]) -> ApiResult<HashMap<String, Project>> {
    let kv = ctx.iam.directory.kv();
    let mut out = HashMap::new();
    for chunk in names.chunks(BATCH_GET) {
        let keys: Vec<(String, String)> = chunk
            .iter()
            .map(|n| (dkeys::project(n), "META".to_owned()))
            .collect();
        for item in kv.batch_get(&keys).await?.into_iter().flatten() {
            if let Some(p) = item
                .s("doc")
                .and_then(|d| serde_json::from_str::<Project>(d).ok())
            {
                out.insert(p.name.clone(), p);
            }
        }
    }
    Ok(out)
}

/// `GET /search?q=`: Harbor's `Search`, for anyone. Projects the caller
/// can see whose name contains `q`, and repositories in every project the
/// caller can see whose full name (`project/…`) contains `q`. Matching is
/// case-insensitive (names are lowercase); an empty `q` matches everything.
///
/// Bounded: repositories are read from the catalog project by project
/// (`CATALOG` / `REPO#<project>/…`, with a cursor), at most
/// [`SEARCH_MAX_EXAMINED`] entries in all; at most
/// [`SEARCH_MAX_RESULTS`] projects and as many repositories are returned.
/// Counts come from batch reads (project stats, repository records).
pub(crate) async fn search(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    let params = Params::of(&uri);
    let needle = params.get("q").unwrap_or("").trim().to_lowercase();
    let visible = visible_projects(&ctx, &caller).await?;
    let dir = &ctx.iam.directory;

    // Projects.
    let matched: Vec<&(Entry, Option<Role>)> = visible
        .iter()
        .filter(|(e, _)| e.name.contains(&needle))
        .take(SEARCH_MAX_RESULTS)
        .collect();
    let names: Vec<String> = matched.iter().map(|(e, _)| e.name.clone()).collect();
    let records = project_records(&ctx, &names).await?;
    let counts = dir.project_repo_counts(&names).await?;
    let mut projects = Vec::with_capacity(matched.len());
    for ((e, role), count) in matched.iter().zip(counts) {
        let Some(p) = records.get(&e.name) else {
            continue;
        };
        let shown = role.or_else(|| caller.is_admin().then_some(Role::ProjectAdmin));
        projects.push(project_json(p, shown, count));
    }

    // Repositories.
    let kv = ctx.registry.kv();
    let mut examined = 0;
    let mut found: Vec<(String, &Entry)> = Vec::new();
    'projects: for (e, _) in &visible {
        let mut q = Query::prefix(
            rkeys::CATALOG,
            format!("{}{}/", rkeys::REPO_PREFIX, e.name),
            CATALOG_PAGE,
        );
        loop {
            if examined >= SEARCH_MAX_EXAMINED || found.len() >= SEARCH_MAX_RESULTS {
                break 'projects;
            }
            q.limit = CATALOG_PAGE.min(SEARCH_MAX_EXAMINED - examined);
            let page = kv.query(&q).await?;
            for item in &page.items {
                examined += 1;
                let Some(name) = item.sk.strip_prefix(rkeys::REPO_PREFIX) else {
                    continue;
                };
                if name.contains(&needle) && found.len() < SEARCH_MAX_RESULTS {
                    found.push((name.to_owned(), e));
                }
            }
            match page.next {
                Some(n) => q.after = Some(n),
                None => break,
            }
        }
    }
    let mut repositories = Vec::with_capacity(found.len());
    for chunk in found.chunks(BATCH_GET) {
        let keys: Vec<(String, String)> = chunk
            .iter()
            .map(|(name, _)| {
                (
                    format!("{}{name}", rkeys::REPO_PREFIX),
                    rkeys::META.to_owned(),
                )
            })
            .collect();
        let metas = kv.batch_get(&keys).await?;
        for ((name, e), meta) in chunk.iter().zip(metas) {
            let n = |a: &str| meta.as_ref().and_then(|m| m.n(a)).unwrap_or(0);
            repositories.push(json!({
                "project_id": e.id,
                "project_name": e.name,
                "project_public": e.public,
                "repository_name": name,
                "pull_count": n(rkeys::attr::PULLS),
                "artifact_count": n(rkeys::attr::ARTIFACTS),
            }));
        }
    }
    Ok(axum::Json(json!({ "project": projects, "repository": repositories })).into_response())
}

/// `GET /statistics`: Harbor's `Statistic`, for signed-in callers. Public
/// counts cover every public project; private counts cover every private
/// project for system admins, and the private projects the caller can see
/// (is a member of) for others; totals and storage are for system admins
/// only (0 for others, as Harbor); storage is the projects' recorded
/// usage (one batch read per 100 projects).
pub(crate) async fn statistics(State(ctx): State<Shared>, caller: Caller) -> ApiResult<Response> {
    caller.require_auth()?;
    let projects = project_index(&ctx).await?;
    let roles = roles_of(&ctx, &caller).await?;
    let admin = caller.is_admin();
    let mut public = Vec::new();
    let mut private = Vec::new();
    for e in &projects {
        if e.public {
            public.push(e.name.clone());
        } else {
            let pa = ProjectAccess {
                project: Some(e.as_project()),
                role: roles.get(&e.name).copied(),
            };
            // Private counts are for signed-in users (not robots), as Harbor.
            let user = matches!(caller.principal, Principal::User(_));
            if admin || user && visible(&caller, &pa) {
                private.push(e.name.clone());
            }
        }
    }
    let dir = &ctx.iam.directory;
    let public_repos: usize = dir.project_repo_counts(&public).await?.iter().sum();
    let private_repos: usize = dir.project_repo_counts(&private).await?.iter().sum();
    let (total_projects, total_repos, storage) = if admin {
        let all: Vec<String> = public.iter().chain(&private).cloned().collect();
        let storage = ctx.registry.total_usage(&all).await?;
        (
            public.len() + private.len(),
            public_repos + private_repos,
            storage,
        )
    } else {
        (0, 0, 0)
    };
    Ok(axum::Json(json!({
        "private_project_count": private.len(),
        "private_repo_count": private_repos,
        "public_project_count": public.len(),
        "public_repo_count": public_repos,
        "total_project_count": total_projects,
        "total_repo_count": total_repos,
        "total_storage_consumption": storage,
    }))
    .into_response())
}

fn component(name: &str, result: Result<(), String>) -> Value {
    match result {
        Ok(()) => json!({"name": name, "status": "healthy"}),
        Err(e) => json!({"name": name, "status": "unhealthy", "error": e}),
    }
}

/// `GET /health`: Harbor's `OverallHealthStatus`, for anyone. Components:
/// `core` (this process answers), `database` (a metadata read) and
/// `storage` (a blob store call), each checked within 5 seconds. Errors
/// are described without backend details (those go to the log).
pub(crate) async fn health(State(ctx): State<Shared>) -> Response {
    let database = async {
        match tokio::time::timeout(HEALTH_TIMEOUT, ctx.registry.kv().get("HEALTH", "META")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "health check: metadata store read failed");
                Err("the metadata store could not be read".to_owned())
            }
            Err(_) => Err("the metadata store did not answer in time".to_owned()),
        }
    };
    let storage = async {
        match tokio::time::timeout(
            HEALTH_TIMEOUT,
            ctx.registry.blob_store().head("health/probe"),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "health check: blob store call failed");
                Err("the blob store could not be reached".to_owned())
            }
            Err(_) => Err("the blob store did not answer in time".to_owned()),
        }
    };
    let (database, storage) = tokio::join!(database, storage);
    let healthy = database.is_ok() && storage.is_ok();
    let components = vec![
        component("core", Ok(())),
        component("database", database),
        component("storage", storage),
    ];
    axum::Json(json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "components": components,
    }))
    .into_response()
}

/// `GET /projects/{project_name_or_id}/summary`: Harbor's `ProjectSummary`
/// for a project the caller can see: its repository count, and member
/// counts by role for callers who may list members, and the quota
/// (`hard` and `used` storage) for callers who may read it (as Harbor).
/// Registry (proxy caches) is left out.
pub(crate) async fn project_summary(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P(name_or_id): P<String>,
) -> ApiResult<Response> {
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    super::projects::require(&caller, &pa, Resource::SelfProject, Action::Read)?;
    let dir = &ctx.iam.directory;
    let mut body = json!({ "repo_count": dir.project_repo_count(&p.name).await? });
    if allows(&caller.principal, &pa, Resource::Quota, Action::Read) {
        let usage = ctx.registry.usage(&p.name).await?;
        body["quota"] = super::quotas::summary_json(&usage);
    }
    if allows(&caller.principal, &pa, Resource::Member, Action::List) {
        let mut counts: HashMap<Role, usize> = HashMap::new();
        for m in dir.project_members(&p.name).await? {
            if let Some(r) = m.role() {
                *counts.entry(r).or_default() += 1;
            }
        }
        for (role, key) in [
            (Role::ProjectAdmin, "project_admin_count"),
            (Role::Maintainer, "maintainer_count"),
            (Role::Developer, "developer_count"),
            (Role::Guest, "guest_count"),
            (Role::LimitedGuest, "limited_guest_count"),
        ] {
            body[key] = json!(counts.get(&role).copied().unwrap_or(0));
        }
    }
    Ok(axum::Json(body).into_response())
}
