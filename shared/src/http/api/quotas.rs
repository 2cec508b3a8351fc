//! `/api/v2.0/quotas…`: Harbor's project quotas over the registry's exact
//! usage ([`crate::registry::Usage`]). One quota per project; its id is
//! the project's id. Storage is the only resource: `hard.storage` is a
//! number of bytes or `-1` (unlimited), `used.storage` what the project's
//! repositories hold, each distinct blob once.
//!
//! As Harbor's `quotaAPI`, every operation needs the system `quota`
//! permission: system admins only here. Project members read their
//! project's quota in the project summary.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};

use super::query::{Params, paged};
use super::{ApiError, ApiResult, Caller, P, Shared, json_body, rfc3339};
use crate::iam::Project;
use crate::registry::Usage;

/// Usage items read at once when listing.
const READ_AHEAD: usize = 16;

/// The routes this module serves.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    vec![
        ("/api/v2.0/quotas", get(list)),
        ("/api/v2.0/quotas/{id}", get(get_one).put(update)),
    ]
}

/// Harbor's storage limit of a usage: bytes, or `-1` for none.
pub(crate) fn hard_storage(u: &Usage) -> i64 {
    u.limit.unwrap_or(-1)
}

/// A requested storage limit as the registry takes it: `-1` is unlimited
/// (`None`), a positive number is bytes; anything else is Harbor's 400.
pub(crate) fn storage_limit(value: i64) -> ApiResult<Option<i64>> {
    match value {
        -1 => Ok(None),
        v if v > 0 => Ok(Some(v)),
        v => Err(ApiError::bad_request(format!(
            "invalid value for resource storage: {v} (a number of bytes above 0, or -1 for unlimited)"
        ))),
    }
}

/// Harbor's `ProjectSummaryQuota`.
pub(crate) fn summary_json(u: &Usage) -> Value {
    json!({
        "hard": {"storage": hard_storage(u)},
        "used": {"storage": u.used},
    })
}

/// Harbor's `Quota` of a project.
fn quota_json(p: &Project, u: &Usage) -> Value {
    json!({
        "id": p.id,
        "ref": {"id": p.id, "name": p.name, "owner_name": p.owner_name},
        "hard": {"storage": hard_storage(u)},
        "used": {"storage": u.used},
        "creation_time": rfc3339(u.created),
        "update_time": rfc3339(u.updated),
    })
}

/// The usage of each project, `READ_AHEAD` reads at a time.
async fn usages(ctx: &Shared, projects: Vec<Project>) -> ApiResult<Vec<(Project, Usage)>> {
    futures_util::stream::iter(projects)
        .map(|p| async move {
            let u = ctx.registry.usage(&p.name).await?;
            Ok::<_, ApiError>((p, u))
        })
        .buffered(READ_AHEAD)
        .try_collect()
        .await
}

/// `GET /quotas`: every project's quota, by project id unless sorted by
/// `hard.storage` or `used.storage` (`-` for descending; unlimited sorts
/// as `-1`, as in Harbor). `reference` (only `project` exists) and
/// `reference_id` (a project id) filter.
pub(crate) async fn list(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let sort = params.sort(&[
        "id",
        "-id",
        "hard.storage",
        "-hard.storage",
        "used.storage",
        "-used.storage",
    ])?;
    let mut projects = ctx.iam.directory.list_projects().await?;
    if params.get("reference").is_some_and(|r| r != "project") {
        projects.clear();
    }
    if let Some(id) = params.get("reference_id") {
        projects.retain(|p| p.id.to_string() == id);
    }
    projects.sort_by_key(|p| p.id);
    if sort == "-id" {
        projects.reverse();
    }
    if matches!(sort, "id" | "-id") {
        // Only the page's usage is read.
        let total = projects.len();
        let page = usages(&ctx, paging.slice(projects)).await?;
        let items: Vec<Value> = page.iter().map(|(p, u)| quota_json(p, u)).collect();
        return Ok(super::query::page_response(&uri, paging, total, &items));
    }
    let mut all = usages(&ctx, projects).await?;
    let key = |u: &Usage| {
        if sort.ends_with("hard.storage") {
            hard_storage(u)
        } else {
            u.used
        }
    };
    // Stable: equal values stay in project id order.
    if sort.starts_with('-') {
        all.sort_by_key(|(_, u)| std::cmp::Reverse(key(u)));
    } else {
        all.sort_by_key(|(_, u)| key(u));
    }
    let items: Vec<Value> = all.iter().map(|(p, u)| quota_json(p, u)).collect();
    Ok(paged(&uri, paging, items))
}

async fn project_of(ctx: &Shared, id: i64) -> ApiResult<Project> {
    ctx.iam
        .directory
        .project_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("quota {id} not found")))
}

/// `GET /quotas/{id}`.
pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let p = project_of(&ctx, id).await?;
    let u = ctx.registry.usage(&p.name).await?;
    Ok(axum::Json(quota_json(&p, &u)).into_response())
}

/// `PUT /quotas/{id}` with `{"hard": {"storage": bytes | -1}}`. A limit
/// below what is used is allowed (as Harbor): nothing more fits until
/// usage drops.
pub(crate) async fn update(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req: Value = json_body(&body)?;
    let hard = match req.get("hard") {
        Some(Value::Object(h)) if !h.is_empty() => h,
        None | Some(Value::Null | Value::Object(_)) => {
            return Err(ApiError::bad_request("hard required in body"));
        }
        Some(_) => return Err(ApiError::bad_request("hard must be an object")),
    };
    if let Some(other) = hard.keys().find(|k| *k != "storage") {
        return Err(ApiError::bad_request(format!(
            "resource {other} not support"
        )));
    }
    let storage = hard
        .get("storage")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::bad_request("hard.storage must be a number of bytes or -1"))?;
    let limit = storage_limit(storage)?;
    let p = project_of(&ctx, id).await?;
    ctx.registry.set_quota_limit(&p.name, limit).await?;
    ctx.audit(&caller, &p.name, "quota", "update", Some(&p.name))
        .await;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bytes_or_unlimited() {
        assert_eq!(storage_limit(-1).expect("unlimited"), None);
        assert_eq!(storage_limit(1).expect("bytes"), Some(1));
        assert!(storage_limit(0).is_err());
        assert!(storage_limit(-2).is_err());
    }

    #[test]
    fn quotas_show_as_harbor_shows_them() {
        let p = Project {
            id: 7,
            name: "p".into(),
            public: false,
            owner_id: 1,
            owner_name: "admin".into(),
            created: 0,
            updated: 0,
        };
        let u = Usage {
            project: "p".into(),
            used: 10,
            limit: None,
            created: 0,
            updated: 60,
        };
        let v = quota_json(&p, &u);
        assert_eq!(v["hard"], json!({"storage": -1}));
        assert_eq!(v["used"], json!({"storage": 10}));
        assert_eq!(
            v["ref"],
            json!({"id": 7, "name": "p", "owner_name": "admin"})
        );
        assert_eq!(v["update_time"], "1970-01-01T00:01:00Z");
        assert_eq!(
            summary_json(&Usage {
                limit: Some(5),
                ..u
            }),
            json!({"hard": {"storage": 5}, "used": {"storage": 10}})
        );
    }
}
