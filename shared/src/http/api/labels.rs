//! `/api/v2.0/labels…`: global and project labels (Harbor's `Label`).
//!
//! Permissions follow Harbor's label handler: global labels are managed by
//! system admins; project labels by whoever holds `label` create, update
//! or delete in the project. Anyone may list global labels (as in Harbor);
//! reading one global label by id takes a signed-in caller (Harbor asks
//! for system access there, which its own UI never lacks; Berth lets any
//! user read what the list shows anyway). A project label in a project the
//! caller cannot see is "not found".

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Deserialize;
use serde_json::{Value, json};

use super::projects::{require, visible_project};
use super::query::{Params, QVal, cursor_page, cursor_page_response, paged};
use super::{ApiError, ApiResult, Caller, P, Shared, created, json_body, now_secs, rfc3339};
use crate::iam::labels::{Label, LabelScope, NAME_PREFIX};
use crate::iam::{Action, Project, Resource};

/// Labels read at most for one filtered or re-sorted listing (labels per
/// scope are few: filters and sorts other than by name run over the
/// scope's labels in memory, up to this many).
const MAX_SCOPE_LABELS: usize = 10_000;

/// The routes this module serves.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    vec![
        ("/api/v2.0/labels", get(list).post(create)),
        (
            "/api/v2.0/labels/{label_id}",
            get(get_one).put(update).delete(delete),
        ),
    ]
}

/// Harbor's `Label`.
pub(crate) fn label_json(l: &Label) -> Value {
    json!({
        "id": l.id,
        "name": l.name,
        "description": l.description,
        "color": l.color,
        "scope": l.scope,
        "project_id": l.project_id,
        "creation_time": rfc3339(l.created),
        "update_time": rfc3339(l.updated),
        "deleted": false,
    })
}

/// The project of a project label, if the caller can see it. A project
/// the caller cannot see (or that is gone) is `None`, except for system
/// admins, who may still manage the labels of a deleted project.
async fn label_project(
    ctx: &Shared,
    caller: &Caller,
    project_id: i64,
) -> ApiResult<Option<(Project, crate::iam::grant::ProjectAccess)>> {
    match visible_project(ctx, caller, &HeaderMap::new(), &project_id.to_string()).await {
        Ok(found) => Ok(Some(found)),
        Err(e) if e.status == StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks that the caller may do `action` to `label`; returns the name of
/// its project (for the audit log).
async fn authorize(
    ctx: &Shared,
    caller: &Caller,
    label: &Label,
    action: Action,
) -> ApiResult<Option<String>> {
    match label.scope() {
        LabelScope::Global => {
            if action == Action::Read {
                caller.require_auth()?;
            } else {
                caller.require_admin()?;
            }
            Ok(None)
        }
        LabelScope::Project(pid) => match label_project(ctx, caller, pid).await? {
            Some((p, pa)) => {
                require(caller, &pa, Resource::Label, action)?;
                Ok(Some(p.name))
            }
            None if caller.is_admin() => Ok(None),
            None => Err(ApiError::not_found(format!("label {} not found", label.id))),
        },
    }
}

async fn find(ctx: &Shared, id: i64) -> ApiResult<Label> {
    if id <= 0 {
        return Err(ApiError::bad_request("invalid label id"));
    }
    ctx.iam
        .directory
        .labels()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("label {id} not found")))
}

#[derive(Deserialize, Default)]
struct LabelReq {
    name: Option<String>,
    description: Option<String>,
    color: Option<String>,
    scope: Option<String>,
    project_id: Option<i64>,
}

pub(crate) async fn create(
    State(ctx): State<Shared>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_auth()?;
    let req: LabelReq = json_body(&body)?;
    let project_id = req.project_id.unwrap_or(0);
    // Harbor requires the scope; Berth infers a missing one from project_id.
    let scope = match req.scope.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s.to_owned(),
        None if project_id > 0 => "p".to_owned(),
        None => "g".to_owned(),
    };
    let mut project = None;
    let project_id = match scope.as_str() {
        "g" => {
            caller.require_admin()?;
            0
        }
        "p" => {
            if project_id <= 0 {
                return Err(ApiError::bad_request("a project label needs a project_id"));
            }
            let (p, pa) = label_project(&ctx, &caller, project_id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("project {project_id} not found")))?;
            require(&caller, &pa, Resource::Label, Action::Create)?;
            project = Some(p.name);
            project_id
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid label scope {other:?}: use g or p"
            )));
        }
    };
    let now = now_secs();
    let label = Label {
        id: 0,
        name: req.name.unwrap_or_default(),
        description: req.description.unwrap_or_default(),
        color: req.color.unwrap_or_default(),
        scope,
        project_id,
        created: now,
        updated: now,
    };
    let label = ctx.iam.directory.labels().create(label).await?;
    ctx.audit(&caller, &label.name, "label", "create", project.as_deref())
        .await;
    Ok(created(&format!("/api/v2.0/labels/{}", label.id)))
}

pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
) -> ApiResult<Response> {
    let label = find(&ctx, id).await?;
    authorize(&ctx, &caller, &label, Action::Read).await?;
    Ok(axum::Json(label_json(&label)).into_response())
}

/// Harbor replaces name, description and color; Berth keeps those the
/// body leaves out. Scope and project never change.
pub(crate) async fn update(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: LabelReq = json_body(&body)?;
    let prev = find(&ctx, id).await?;
    let project = authorize(&ctx, &caller, &prev, Action::Update).await?;
    let mut next = prev.clone();
    if let Some(n) = req.name {
        next.name = n;
    }
    if let Some(d) = req.description {
        next.description = d;
    }
    if let Some(c) = req.color {
        next.color = c;
    }
    next.updated = now_secs();
    ctx.iam.directory.labels().save(&prev, &next).await?;
    ctx.audit(&caller, &next.name, "label", "update", project.as_deref())
        .await;
    Ok(StatusCode::OK.into_response())
}

/// Deleting a label detaches it from every artifact first.
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    _body: Bytes,
) -> ApiResult<Response> {
    let label = find(&ctx, id).await?;
    let project = authorize(&ctx, &caller, &label, Action::Delete).await?;
    ctx.iam.directory.labels().delete(&label).await?;
    ctx.audit(&caller, &label.name, "label", "delete", project.as_deref())
        .await;
    Ok(StatusCode::OK.into_response())
}

/// Sort keys `GET /labels` takes (Harbor's `sort`: comma-separated, `-`
/// for descending).
fn parse_sort(sort: Option<&str>) -> ApiResult<Vec<(String, bool)>> {
    let Some(sort) = sort else {
        return Ok(Vec::new());
    };
    sort.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (key, desc) = match s.strip_prefix('-') {
                Some(k) => (k, true),
                None => (s, false),
            };
            match key {
                "name" | "id" | "creation_time" | "update_time" => Ok((key.to_owned(), desc)),
                _ => Err(ApiError::bad_request(format!(
                    "labels cannot be sorted by {key:?}: use name, id, creation_time or update_time"
                ))),
            }
        })
        .collect()
}

fn compare(a: &Label, b: &Label, keys: &[(String, bool)]) -> std::cmp::Ordering {
    for (key, desc) in keys {
        let o = match key.as_str() {
            "id" => a.id.cmp(&b.id),
            "creation_time" => a.created.cmp(&b.created),
            "update_time" => a.updated.cmp(&b.updated),
            _ => a.name.cmp(&b.name),
        };
        let o = if *desc { o.reverse() } else { o };
        if o.is_ne() {
            return o;
        }
    }
    a.name.cmp(&b.name)
}

fn keep(l: &Label, filters: &[(String, QVal)]) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "name" => v.matches(&l.name),
        "id" => v.matches(&l.id.to_string()),
        "description" => v.matches(&l.description),
        "color" => v.matches(&l.color),
        _ => true,
    })
}

/// `GET /labels`: `scope` (`g` by default, or `p` with `project_id`),
/// `name` (fuzzy), `q` (`name`, `id`, `description`, `color`; `scope` and
/// `project_id` stand in for the parameters), `sort`, paging.
///
/// By name without filters, the page is read from the scope's index in
/// name order (continuing after the `cursor` of a `Link` URL, or walking
/// over the pages before it) and the total is the scope's counter (one
/// read). With a
/// filter or another sort, the scope's labels (at most
/// [`MAX_SCOPE_LABELS`]) are filtered in memory: labels per scope are few.
pub(crate) async fn list(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let mut scope = params.get("scope").map(str::to_owned);
    let mut project_id = params.get("project_id").map(str::to_owned);
    let mut filters = Vec::new();
    for (k, v) in params.q()? {
        let key = k.to_ascii_lowercase();
        match (key.as_str(), v) {
            ("name" | "id" | "description" | "color", v) => filters.push((key, v)),
            ("scope", QVal::Exact(s)) => {
                scope.get_or_insert(s);
            }
            ("project_id" | "projectid", QVal::Exact(p)) => {
                project_id.get_or_insert(p);
            }
            // Harbor's own keyword: every API label is a user label.
            ("level", _) => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "labels cannot be queried by {k:?}"
                )));
            }
        }
    }
    if let Some(n) = params.get("name") {
        filters.push(("name".to_owned(), QVal::Fuzzy(n.to_owned())));
    }
    let sort = parse_sort(params.get("sort"))?;
    let scope = match scope.as_deref().unwrap_or("g") {
        "g" => LabelScope::Global,
        "p" => {
            let pid = project_id
                .as_deref()
                .map(|p| {
                    p.parse::<i64>()
                        .map_err(|_| ApiError::bad_request("project_id must be a number"))
                })
                .transpose()?
                .unwrap_or(0);
            if pid <= 0 {
                return Err(ApiError::bad_request(
                    "project_id is required to list project labels",
                ));
            }
            let (_, pa) = label_project(&ctx, &caller, pid)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("project {pid} not found")))?;
            require(&caller, &pa, Resource::Label, Action::List)?;
            LabelScope::Project(pid)
        }
        other => {
            return Err(ApiError::bad_request(format!("invalid scope: {other}")));
        }
    };
    let labels = ctx.iam.directory.labels();
    let by_name = sort.iter().all(|(k, desc)| k == "name" && !desc);
    if filters.is_empty() && by_name {
        let total = labels.count(scope).await?;
        let cursor = params.cursor(NAME_PREFIX)?;
        let (items, next, before) = cursor_page(paging, cursor, |after, n| {
            let labels = labels.clone();
            async move { Ok(labels.page(scope, after, n).await?) }
        })
        .await?;
        let out: Vec<Value> = items.iter().map(label_json).collect();
        return Ok(cursor_page_response(
            &uri,
            paging,
            Some(total),
            before,
            &out,
            next.as_deref(),
        ));
    }
    let mut all: Vec<Label> = labels
        .list(scope, MAX_SCOPE_LABELS)
        .await?
        .into_iter()
        .filter(|l| keep(l, &filters))
        .collect();
    all.sort_by(|a, b| compare(a, b, &sort));
    let out: Vec<Value> = all.iter().map(label_json).collect();
    Ok(paged(&uri, paging, out))
}
