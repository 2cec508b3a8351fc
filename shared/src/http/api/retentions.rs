//! `/api/v2.0/retentions…`: Harbor's tag retention API — the rule
//! templates (`metadatas`), a project's policy (one per project), its
//! executions (runs of [`crate::jobs::retention`]), their tasks (one per
//! repository) and each task's log.
//!
//! As Harbor's `retentionAPI`: every operation needs a signed-in caller
//! (401 otherwise); the policy's project decides the rest through
//! `tag-retention` permissions — read (a policy, a task's log), create,
//! update (a policy, starting and stopping executions), delete, list
//! (executions, tasks): project admins, maintainers and developers, system
//! admins, and robots given them. Harbor answers a caller without them
//! `403`, a member or not. A missing policy, execution or task is `404`,
//! and so is an execution of another policy.
//!
//! Reading and stopping read and write the job store only; starting an
//! execution needs the job queue (`503` without one).
//!
//! A task's `id` is its repository's id (the one `/repositories` shows:
//! derived from the name, so stable across the run), and its
//! `repository` the repository's path without the project, as Harbor's
//! launcher records it. Harbor's project metadata `retention_id` is not
//! stored on the project (Berth's projects hold no metadata but
//! `public`): `GET /projects/{id}` looks the policy up and shows it
//! there, as Harbor does.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, patch, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::projects::require;
use super::query::{Params, page_response, paged};
use super::repositories::stable_id;
use super::{ApiError, ApiResult, Caller, P, Shared, created, json_body, rfc3339};
use crate::iam::{Action, Project, Resource};
use crate::jobs::retention::{self as job, History, StartError, TaskInfo};
use crate::jobs::runs::{self, Run};
use crate::policy::retention::{Owner, RetentionPolicies, RetentionPolicy, SCOPE_PROJECT};

/// The audit log's resource type (Harbor's RBAC resource).
const AUDIT_TYPE: &str = "tag-retention";

/// The routes this module serves.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    vec![
        ("/api/v2.0/retentions/metadatas", get(metadatas)),
        ("/api/v2.0/retentions", post(create)),
        (
            "/api/v2.0/retentions/{id}",
            get(get_one).put(update).delete(delete),
        ),
        (
            "/api/v2.0/retentions/{id}/executions",
            get(executions).post(trigger),
        ),
        ("/api/v2.0/retentions/{id}/executions/{eid}", patch(operate)),
        (
            "/api/v2.0/retentions/{id}/executions/{eid}/tasks",
            get(tasks),
        ),
        (
            "/api/v2.0/retentions/{id}/executions/{eid}/tasks/{tid}",
            get(task_log),
        ),
    ]
}

pub(super) fn policies(ctx: &Shared) -> RetentionPolicies {
    RetentionPolicies::new(ctx.registry.kv().clone())
}

fn history(ctx: &Shared) -> History {
    History::new(ctx.registry.kv().clone())
}

/// `503` with Harbor's error body: this process sends no jobs. (Built
/// here because [`ApiError`] hides the message of every 5xx.)
fn no_queue() -> Response {
    let body = json!({"errors": [{
        "code": "SERVICE_UNAVAILABLE",
        "message": "no job queue is configured: this server cannot start a retention execution",
    }]});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// Harbor's `RetentionMetadata` (its handler's fixed payload).
fn metadata_json() -> Value {
    let template = |id: &str, text: &str, unit: Option<&str>| {
        let params: Vec<Value> = unit
            .map(|u| json!({"type": "int", "unit": u, "required": true}))
            .into_iter()
            .collect();
        json!({"rule_template": id, "display_text": text, "action": "retain", "params": params})
    };
    json!({
        "templates": [
            template("latestPushedK", "the most recently pushed # artifacts", Some("COUNT")),
            template("latestPulledN", "the most recently pulled # artifacts", Some("COUNT")),
            template("nDaysSinceLastPush", "pushed within the last # days", Some("DAYS")),
            template("nDaysSinceLastPull", "pulled within the last # days", Some("DAYS")),
            template("always", "always", None),
        ],
        "scope_selectors": [
            {"display_text": "Repositories", "kind": "doublestar", "decorations": ["repoMatches", "repoExcludes"]},
        ],
        "tag_selectors": [
            {"display_text": "Tags", "kind": "doublestar", "decorations": ["matches", "excludes"]},
        ],
    })
}

/// `GET /retentions/metadatas`.
pub(crate) async fn metadatas(caller: Caller) -> ApiResult<Response> {
    caller.require_auth()?;
    Ok(axum::Json(metadata_json()).into_response())
}

fn policy_json(p: &RetentionPolicy) -> Value {
    serde_json::to_value(p).unwrap_or(Value::Null)
}

/// The project `name` with the caller holding `tag-retention` `action`
/// there (401 anonymous, 403 without it).
async fn authorize(
    ctx: &Shared,
    caller: &Caller,
    project: &str,
    action: Action,
) -> ApiResult<Project> {
    caller.require_auth()?;
    let dir = &ctx.iam.directory;
    let p = dir
        .project(project)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project {project} not found")))?;
    let pa = dir.project_access(&caller.principal, &p.name).await?;
    require(caller, &pa, Resource::TagRetention, action)?;
    Ok(p)
}

/// Policy `id`, if the caller may do `action` on it.
async fn policy_for(
    ctx: &Shared,
    caller: &Caller,
    id: i64,
    action: Action,
) -> ApiResult<(Owner, RetentionPolicy)> {
    caller.require_auth()?;
    let (owner, policy) = policies(ctx)
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("retention policy {id} not found")))?;
    let project = authorize(ctx, caller, &owner.project, action).await?;
    // A project of the same name created since is another project.
    if project.id != owner.project_id {
        return Err(ApiError::not_found(format!(
            "retention policy {id} not found"
        )));
    }
    Ok((owner, policy))
}

/// Execution `eid`, if it is one of policy `id`'s.
async fn execution_of(ctx: &Shared, id: i64, eid: i64) -> ApiResult<Run> {
    history(ctx)
        .runs()
        .get(eid)
        .await?
        .filter(|r| job::policy_of(r) == Some(id))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "execution {eid} of retention policy {id} not found"
            ))
        })
}

fn audit_name(id: i64) -> String {
    format!("retention policy {id}")
}

fn parse_policy(body: &[u8]) -> ApiResult<RetentionPolicy> {
    let v: Value = json_body(body)?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the body must be a RetentionPolicy object",
        ));
    }
    serde_json::from_value(v)
        .map_err(|e| ApiError::bad_request(format!("invalid retention policy: {e}")))
}

/// `POST /retentions`: `201` with the new policy's `Location`. The
/// scope names the project (by id); a project has at most one policy.
pub(crate) async fn create(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_auth()?;
    let policy = parse_policy(&body)?;
    let scope = policy.scope.clone().ok_or_else(|| {
        ApiError::bad_request("scope is required: {\"level\": \"project\", \"ref\": <project id>}")
    })?;
    if scope.level != SCOPE_PROJECT {
        return Err(ApiError::bad_request(format!(
            "scope {} is not support",
            scope.level
        )));
    }
    let invalid = || ApiError::bad_request(format!("invalid Project id {}", scope.reference));
    if scope.reference <= 0 {
        return Err(invalid());
    }
    let project = ctx
        .iam
        .directory
        .project_by_id(scope.reference)
        .await?
        .ok_or_else(invalid)?;
    authorize(&ctx, &caller, &project.name, Action::Create).await?;
    let id = policies(&ctx)
        .create(&project.name, policy)
        .await
        .map_err(|e| match e {
            crate::policy::PolicyError::NotFound(_) => invalid(),
            e => e.into(),
        })?;
    ctx.audit(
        &caller,
        &audit_name(id),
        AUDIT_TYPE,
        "create",
        Some(&project.name),
    )
    .await;
    Ok(created(&format!(
        "{}/{id}",
        uri.path().trim_end_matches('/')
    )))
}

/// `GET /retentions/{id}`.
pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
) -> ApiResult<Response> {
    let (_, policy) = policy_for(&ctx, &caller, id, Action::Read).await?;
    Ok(axum::Json(policy_json(&policy)).into_response())
}

/// `PUT /retentions/{id}`: replaces the policy (its id and project stay;
/// the schedule follows its cron).
pub(crate) async fn update(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    let (owner, _) = policy_for(&ctx, &caller, id, Action::Update).await?;
    let policy = parse_policy(&body)?;
    policies(&ctx).update(id, policy).await?;
    ctx.audit(
        &caller,
        &audit_name(id),
        AUDIT_TYPE,
        "update",
        Some(&owner.project),
    )
    .await;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /retentions/{id}`: the policy and its schedule; refused
/// (`412`, as Harbor's execution manager) while one of its executions
/// runs.
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    _body: Bytes,
) -> ApiResult<Response> {
    let (owner, _) = policy_for(&ctx, &caller, id, Action::Delete).await?;
    if let Some(eid) = history(&ctx).unfinished(id).await? {
        return Err(ApiError::precondition(format!(
            "retention policy {id} has an execution that is not finished ({eid}): stop it first"
        )));
    }
    policies(&ctx).delete(id).await?;
    ctx.audit(
        &caller,
        &audit_name(id),
        AUDIT_TYPE,
        "delete",
        Some(&owner.project),
    )
    .await;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize, Default)]
struct TriggerReq {
    dry_run: Option<bool>,
}

/// `POST /retentions/{id}/executions` (`{"dry_run": true}`): `201` with
/// the new execution's `Location`.
pub(crate) async fn trigger(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    P(id): P<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: TriggerReq = json_body(&body)?;
    let (owner, _) = policy_for(&ctx, &caller, id, Action::Update).await?;
    let Some(jobs) = &ctx.jobs else {
        return Ok(no_queue());
    };
    let run = match jobs
        .retention
        .start(id, req.dry_run.unwrap_or(false), "Manual")
        .await
    {
        Ok(run) => run,
        Err(StartError::NotFound(_)) => {
            return Err(ApiError::not_found(format!(
                "retention policy {id} not found"
            )));
        }
        Err(StartError::Store(e)) => return Err(e.into()),
        Err(StartError::Policy(e)) => return Err(e.into()),
        Err(e @ StartError::Queue(_)) => return Err(ApiError::internal(e.to_string())),
    };
    ctx.audit(
        &caller,
        &format!("retention execution {}", run.id),
        AUDIT_TYPE,
        "create",
        Some(&owner.project),
    )
    .await;
    Ok(created(&format!(
        "{}/{}",
        uri.path().trim_end_matches('/'),
        run.id
    )))
}

/// Harbor's `RetentionExecution`.
fn execution_json(policy_id: i64, run: &Run) -> Value {
    let mut v = json!({
        "id": run.id,
        "policy_id": policy_id,
        "start_time": rfc3339(run.created),
        "status": run.status,
        "trigger": run.trigger,
        "dry_run": run.dry_run,
    });
    if run.finished() {
        v["end_time"] = rfc3339(run.updated).into();
    }
    v
}

/// `GET /retentions/{id}/executions`: newest first, paged.
pub(crate) async fn executions(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    P(id): P<i64>,
) -> ApiResult<Response> {
    let paging = Params::of(&uri).paging()?;
    policy_for(&ctx, &caller, id, Action::List).await?;
    let (runs, total) = history(&ctx)
        .executions(id, paging.skip(), paging.size)
        .await?;
    let items: Vec<Value> = runs.iter().map(|r| execution_json(id, r)).collect();
    Ok(page_response(&uri, paging, total, &items))
}

#[derive(Deserialize, Default)]
struct OperateReq {
    action: Option<String>,
}

/// `PATCH /retentions/{id}/executions/{eid}` (`{"action": "stop"}`):
/// stops a pending or running execution; a finished one stays as it is.
pub(crate) async fn operate(
    State(ctx): State<Shared>,
    caller: Caller,
    P((id, eid)): P<(i64, i64)>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: OperateReq = json_body(&body)?;
    if req.action.as_deref() != Some("stop") {
        return Err(ApiError::bad_request("action should be 'stop'"));
    }
    let (owner, _) = policy_for(&ctx, &caller, id, Action::Update).await?;
    execution_of(&ctx, id, eid).await?;
    if history(&ctx).stop(eid, caller.name()).await? {
        ctx.audit(
            &caller,
            &format!("retention execution {eid}"),
            AUDIT_TYPE,
            "stop",
            Some(&owner.project),
        )
        .await;
    }
    Ok(StatusCode::OK.into_response())
}

/// Harbor's `status_code` of a job status.
fn status_code(status: &str) -> i64 {
    match status {
        runs::PENDING => 0,
        "Scheduled" => 1,
        runs::RUNNING => 2,
        runs::STOPPED | runs::ERROR | runs::SUCCESS => 3,
        _ => -1,
    }
}

/// Harbor's `RetentionExecutionTask`.
fn task_json(eid: i64, t: &TaskInfo) -> Value {
    let path = t
        .repository
        .split_once('/')
        .map_or(t.repository.as_str(), |(_, r)| r);
    let mut v = json!({
        "id": stable_id("repository", &t.repository),
        "execution_id": eid,
        "repository": path,
        "job_id": t.key,
        "status": t.status,
        "status_code": status_code(&t.status),
        "status_revision": t.finished.max(t.started),
        "total": t.total,
        "retained": t.retained,
    });
    if t.started > 0 {
        v["start_time"] = rfc3339(t.started).into();
    }
    if t.finished > 0 {
        v["end_time"] = rfc3339(t.finished).into();
    }
    v
}

/// `GET /retentions/{id}/executions/{eid}/tasks`: one per repository,
/// by repository name, paged.
pub(crate) async fn tasks(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    P((id, eid)): P<(i64, i64)>,
) -> ApiResult<Response> {
    let paging = Params::of(&uri).paging()?;
    policy_for(&ctx, &caller, id, Action::List).await?;
    let run = execution_of(&ctx, id, eid).await?;
    let all: Vec<Value> = history(&ctx)
        .tasks(&run)
        .await?
        .iter()
        .map(|t| task_json(eid, t))
        .collect();
    Ok(paged(&uri, paging, all))
}

/// `GET /retentions/{id}/executions/{eid}/tasks/{tid}`: the task's log
/// (`text/plain`): a summary, then one line per artifact with what became
/// of it.
pub(crate) async fn task_log(
    State(ctx): State<Shared>,
    caller: Caller,
    P((id, eid, tid)): P<(i64, i64, i64)>,
) -> ApiResult<Response> {
    policy_for(&ctx, &caller, id, Action::Read).await?;
    let run = execution_of(&ctx, id, eid).await?;
    let h = history(&ctx);
    let task = h
        .tasks(&run)
        .await?
        .into_iter()
        .find(|t| stable_id("repository", &t.repository) == tid)
        .ok_or_else(|| {
            ApiError::not_found(format!("task {tid} of retention execution {eid} not found"))
        })?;
    let text = match h.report(eid, &task.repository).await? {
        Some(r) => job::render_log(&run, &r),
        None => format!(
            "Repository: {}\nExecution: {eid}\nStatus: {}\n",
            task.repository, task.status
        ),
    };
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn metadata_is_harbors() {
        let m = metadata_json();
        let ids: Vec<&str> = m["templates"]
            .as_array()
            .expect("templates")
            .iter()
            .filter_map(|t| t["rule_template"].as_str())
            .collect();
        assert_eq!(
            ids,
            [
                "latestPushedK",
                "latestPulledN",
                "nDaysSinceLastPush",
                "nDaysSinceLastPull",
                "always"
            ]
        );
        assert_eq!(
            m["templates"][0]["params"][0],
            json!({"type": "int", "unit": "COUNT", "required": true})
        );
        assert_eq!(m["templates"][4]["params"], json!([]));
        assert_eq!(
            m["tag_selectors"][0]["decorations"],
            json!(["matches", "excludes"])
        );
    }

    #[test]
    fn executions_and_tasks_show_as_harbor() {
        let mut run = Run {
            id: 7,
            kind: job::KIND.into(),
            status: runs::RUNNING.into(),
            trigger: "Manual".into(),
            params: json!({"policy_id": 2}),
            dry_run: true,
            created: 0,
            updated: 60,
            tasks: 1,
            pending: 1,
            phase: "repos".into(),
            counts: BTreeMap::new(),
        };
        let v = execution_json(2, &run);
        assert_eq!(v["policy_id"], 2);
        assert_eq!(v["dry_run"], true);
        assert!(v.get("end_time").is_none());
        run.status = runs::SUCCESS.into();
        assert_eq!(execution_json(2, &run)["end_time"], "1970-01-01T00:01:00Z");
        let t = TaskInfo {
            key: "repo#team/app".into(),
            repository: "team/app".into(),
            status: runs::SUCCESS.into(),
            started: 1,
            finished: 2,
            total: 5,
            retained: 3,
        };
        let v = task_json(7, &t);
        assert_eq!(v["repository"], "app");
        assert_eq!(v["id"], stable_id("repository", "team/app"));
        assert_eq!(v["status_code"], 3);
        assert_eq!(
            (v["total"].as_i64(), v["retained"].as_i64()),
            (Some(5), Some(3))
        );
        assert_eq!(status_code(runs::PENDING), 0);
        assert_eq!(status_code(runs::RUNNING), 2);
    }
}
