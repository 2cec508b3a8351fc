//! `/api/v2.0/replication/policies…` and `/replication/executions…`:
//! Harbor's replication policies (`ReplicationPolicy`), executions
//! (`ReplicationExecution`), their tasks (`ReplicationTask`) and task
//! logs, over [`crate::replication`] and [`crate::jobs::replication`].
//!
//! As Harbor's `replicationAPI`, every operation needs the system
//! `replication` permission: system admins only here. Reading needs only
//! the metadata store; starting an execution needs the replication queue
//! (`503` without one). Stopping an execution that already ended is a
//! no-op, as in Harbor.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Deserialize;
use serde_json::{Value, json};

use super::query::{Params, paged};
use super::registries::{self, registry_json};
use super::{ApiError, ApiResult, Caller, P, Shared, created, json_body, rfc3339};
use crate::jobs::runs::{self, Run, Runs};
use crate::replication::Policies;
use crate::replication::endpoints;
use crate::replication::policies::{self, Filter, Policy, Trigger};
use crate::replication::worker::{
    self, KIND, Replication, StartError, harbor_status, harbor_trigger, status, stored_of, task_id,
    total_of,
};

const POLICY_AUDIT: &str = "replication-policy";
const EXEC_AUDIT: &str = "replication";
/// Most executions a listing reads (newest first).
const MAX_LISTED: usize = 1000;

/// The routes this module serves.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    vec![
        (
            "/api/v2.0/replication/policies",
            get(list_policies).post(create_policy),
        ),
        (
            "/api/v2.0/replication/policies/{id}",
            get(get_policy).put(update_policy).delete(delete_policy),
        ),
        (
            "/api/v2.0/replication/executions",
            get(list_executions).post(start),
        ),
        (
            "/api/v2.0/replication/executions/{id}",
            get(get_execution).put(stop),
        ),
        (
            "/api/v2.0/replication/executions/{id}/tasks",
            get(list_tasks),
        ),
        (
            "/api/v2.0/replication/executions/{id}/tasks/{task_id}/log",
            get(task_log),
        ),
    ]
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::NotFound(id) => {
                ApiError::not_found(format!("replication policy {id} not found"))
            }
            StartError::Invalid(m) => ApiError::bad_request(m),
            StartError::Store(k) => k.into(),
            e @ StartError::Queue(_) => ApiError::internal(e.to_string()),
        }
    }
}

fn policies(ctx: &Shared) -> Policies {
    Policies::new(ctx.registry.kv().clone())
}

fn runs(ctx: &Shared) -> Runs {
    Runs::new(ctx.registry.kv().clone(), KIND)
}

/// The worker's handle (needs the replication queue).
fn replication(ctx: &Shared) -> Option<Replication> {
    Some(ctx.jobs.as_ref()?.replication.clone())
}

/// `503` with Harbor's error body: this process sends no jobs.
fn no_queue() -> Response {
    let body = json!({"errors": [{
        "code": "SERVICE_UNAVAILABLE",
        "message": "no job queue is configured: this server cannot start a replication",
    }]});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// Harbor's local registry as policies show it.
fn local_registry() -> Value {
    json!({
        "id": 0,
        "name": "Local",
        "description": "",
        "type": "harbor",
        "url": "",
        "credential": {"type": "basic", "access_key": "", "access_secret": ""},
        "insecure": true,
        "status": endpoints::HEALTHY,
        "creation_time": rfc3339(0),
        "update_time": rfc3339(0),
    })
}

async fn registry_of(ctx: &Shared, id: Option<i64>) -> Value {
    match id.filter(|i| *i > 0) {
        None => local_registry(),
        Some(id) => match endpoints::endpoint(ctx.registry.kv(), id).await {
            Some(e) => registry_json(&e),
            None => json!({"id": id}),
        },
    }
}

/// Harbor's `ReplicationPolicy`.
async fn policy_json(ctx: &Shared, p: &Policy) -> Value {
    let mut trigger = json!({"type": p.trigger.kind});
    if p.trigger.kind == policies::SCHEDULED {
        trigger["trigger_settings"] = json!({"cron": p.trigger.cron});
    } else {
        trigger["trigger_settings"] = json!({"cron": ""});
    }
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "src_registry": registry_of(ctx, p.src_registry).await,
        "dest_registry": registry_of(ctx, p.dest_registry).await,
        "dest_namespace": p.dest_namespace,
        "dest_namespace_replace_count": p.dest_namespace_replace_count,
        "trigger": trigger,
        "filters": p.filters,
        "replicate_deletion": p.replicate_deletion,
        "deletion": p.replicate_deletion,
        "override": p.override_,
        "enabled": p.enabled,
        "speed": p.speed,
        "copy_by_chunk": p.copy_by_chunk,
        "single_active_replication": p.single_active_replication,
        "creation_time": rfc3339(p.created),
        "update_time": rfc3339(p.updated),
    })
}

/// A field that is present, `null` included (`null` clears a registry).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The id of a registry as a policy request names it (`{"id": …}`; `null`
/// or id 0: this registry).
fn registry_id(v: &Value) -> Option<i64> {
    v.get("id").and_then(Value::as_i64).filter(|id| *id > 0)
}

#[derive(Deserialize, Default)]
struct TriggerSettingsReq {
    cron: Option<String>,
}

#[derive(Deserialize, Default)]
struct TriggerReq {
    #[serde(rename = "type")]
    kind: Option<String>,
    trigger_settings: Option<TriggerSettingsReq>,
}

/// Harbor's `ReplicationPolicy` as a request carries it.
#[derive(Deserialize, Default)]
struct PolicyReq {
    id: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    src_registry: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    dest_registry: Option<Value>,
    dest_namespace: Option<String>,
    dest_namespace_replace_count: Option<i8>,
    trigger: Option<TriggerReq>,
    filters: Option<Vec<Filter>>,
    replicate_deletion: Option<bool>,
    deletion: Option<bool>,
    #[serde(rename = "override")]
    override_: Option<bool>,
    enabled: Option<bool>,
    speed: Option<i32>,
    copy_by_chunk: Option<bool>,
    single_active_replication: Option<bool>,
}

impl PolicyReq {
    /// Sets on `p` what the request gives.
    fn apply(self, p: &mut Policy) {
        if let Some(n) = self.name {
            p.name = n;
        }
        if let Some(d) = self.description {
            p.description = d;
        }
        if let Some(r) = self.src_registry {
            p.src_registry = registry_id(&r);
        }
        if let Some(r) = self.dest_registry {
            p.dest_registry = registry_id(&r);
        }
        if let Some(n) = self.dest_namespace {
            p.dest_namespace = n;
        }
        if let Some(c) = self.dest_namespace_replace_count {
            p.dest_namespace_replace_count = c;
        }
        if let Some(t) = self.trigger {
            p.trigger = Trigger {
                kind: t.kind.unwrap_or_default(),
                cron: t.trigger_settings.and_then(|s| s.cron).unwrap_or_default(),
            };
        }
        if let Some(f) = self.filters {
            p.filters = f;
        }
        if let Some(d) = self.replicate_deletion.or(self.deletion) {
            p.replicate_deletion = d;
        }
        if let Some(o) = self.override_ {
            p.override_ = o;
        }
        if let Some(e) = self.enabled {
            p.enabled = e;
        }
        if let Some(s) = self.speed {
            p.speed = s;
        }
        if let Some(c) = self.copy_by_chunk {
            p.copy_by_chunk = c;
        }
        if let Some(s) = self.single_active_replication {
            p.single_active_replication = s;
        }
    }
}

/// The registries a policy names must exist.
async fn check_registries(ctx: &Shared, p: &Policy) -> ApiResult<()> {
    for id in [p.src_registry, p.dest_registry].into_iter().flatten() {
        if id > 0 && endpoints::endpoint(ctx.registry.kv(), id).await.is_none() {
            return Err(ApiError::bad_request(format!("registry {id} not found")));
        }
    }
    Ok(())
}

async fn found_policy(ctx: &Shared, id: i64) -> ApiResult<Policy> {
    policies(ctx)
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("replication policy {id} not found")))
}

/// `GET /replication/policies`: by id, paged; `q` filters by `name`
/// (`~fuzzy` too), `name=` is a fuzzy name filter.
pub(crate) async fn list_policies(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let filters = params.q_of(&["name"])?;
    let sort = params.sort(&registries::BY_ID_OR_NAME)?;
    let fuzzy = params.get("name").map(str::to_owned);
    let mut all = policies(&ctx).list().await?;
    all.retain(|p| {
        fuzzy.as_ref().is_none_or(|n| p.name.contains(n.as_str()))
            && filters.iter().all(|(_, v)| v.matches(&p.name))
    });
    registries::order(&mut all, sort, |p| p.name.as_str());
    let total = all.len();
    let page = paging.slice(all);
    let mut out = Vec::with_capacity(page.len());
    for p in &page {
        out.push(policy_json(&ctx, p).await);
    }
    Ok(super::query::page_response(&uri, paging, total, &out))
}

/// `POST /replication/policies`: `201` with the new policy's `Location`.
pub(crate) async fn create_policy(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req: PolicyReq = json_body(&body)?;
    let mut p = Policy::new("");
    req.apply(&mut p);
    check_registries(&ctx, &p).await?;
    let name = p.name.clone();
    let id = policies(&ctx).create(p).await?;
    ctx.audit(&caller, &name, POLICY_AUDIT, "create", None)
        .await;
    Ok(created(&format!(
        "{}/{id}",
        uri.path().trim_end_matches('/')
    )))
}

/// `GET /replication/policies/{id}`.
pub(crate) async fn get_policy(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let p = found_policy(&ctx, id).await?;
    Ok(axum::Json(policy_json(&ctx, &p).await).into_response())
}

/// `PUT /replication/policies/{id}`: changes what the body gives.
pub(crate) async fn update_policy(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req: PolicyReq = json_body(&body)?;
    if req.id.is_some_and(|b| b != id && b != 0) {
        return Err(ApiError::bad_request(
            "the id in the path and the id of the policy differ",
        ));
    }
    let old = found_policy(&ctx, id).await?;
    let mut new = old.clone();
    req.apply(&mut new);
    check_registries(&ctx, &new).await?;
    policies(&ctx).update(&old, new).await?;
    ctx.audit(&caller, &old.name, POLICY_AUDIT, "update", None)
        .await;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /replication/policies/{id}`: refused (412) while one of its
/// executions runs.
pub(crate) async fn delete_policy(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    _body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let p = found_policy(&ctx, id).await?;
    let r = runs(&ctx);
    for run_id in worker::policy_run_ids(ctx.registry.kv(), id, 100).await? {
        if r.get(run_id).await?.is_some_and(|run| !run.finished()) {
            return Err(ApiError::precondition(format!(
                "the replication policy {id} has running executions: stop them first"
            )));
        }
    }
    policies(&ctx).delete(&p).await?;
    ctx.audit(&caller, &p.name, POLICY_AUDIT, "delete", None)
        .await;
    Ok(StatusCode::OK.into_response())
}

// ---- executions ---------------------------------------------------------

/// Harbor's `ReplicationExecution`.
fn execution_json(run: &Run) -> Value {
    let total = total_of(run);
    let succeed = run.count("succeed");
    let failed = run.count("failed");
    let stopped = if run.status == runs::STOPPED {
        (total - succeed - failed).max(0)
    } else {
        run.count("stopped")
    };
    let in_progress = (total - succeed - failed - stopped).max(0);
    let status_text = if run.count("listing_failed") > 0 {
        "listing the source failed: see the execution's log".to_owned()
    } else if failed > 0 {
        format!("{failed} of {total} tasks failed")
    } else {
        String::new()
    };
    let mut v = json!({
        "id": run.id,
        "policy_id": stored_of(run).map_or(0, |s| s.policy.id),
        "status": harbor_status(run),
        "trigger": harbor_trigger(run),
        "start_time": rfc3339(run.created),
        "status_text": status_text,
        "total": total,
        "failed": failed,
        "succeed": succeed,
        "in_progress": in_progress,
        "stopped": stopped,
    });
    if run.finished() {
        v["end_time"] = rfc3339(run.updated).into();
    }
    v
}

async fn found_run(ctx: &Shared, id: i64) -> ApiResult<Run> {
    runs(ctx)
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("replication execution {id} not found")))
}

/// `GET /replication/executions`: newest first, paged; filtered by
/// `policy_id`, `status` and `trigger`.
pub(crate) async fn list_executions(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let sort = params.sort(&["-start_time", "start_time", "-id", "id"])?;
    let policy_id = match params.get("policy_id") {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| ApiError::bad_request("policy_id must be a number"))?,
        ),
        None => None,
    };
    let status_filter = params.get("status").map(str::to_owned);
    let trigger_filter = params.get("trigger").map(str::to_owned);
    let r = runs(&ctx);
    let mut all = match policy_id {
        Some(pid) => {
            let mut out = Vec::new();
            for id in worker::policy_run_ids(ctx.registry.kv(), pid, MAX_LISTED).await? {
                if let Some(run) = r.get(id).await? {
                    out.push(run);
                }
            }
            out
        }
        None => r.page(None, MAX_LISTED).await?.0,
    };
    all.retain(|run| {
        status_filter
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(harbor_status(run)))
            && trigger_filter
                .as_deref()
                .is_none_or(|t| t == harbor_trigger(run))
    });
    if sort == "start_time" || sort == "id" {
        all.reverse();
    }
    let out: Vec<Value> = all.iter().map(execution_json).collect();
    Ok(paged(&uri, paging, out))
}

/// Harbor's `StartReplicationExecution`.
#[derive(Deserialize, Default)]
struct StartReq {
    policy_id: Option<i64>,
}

/// `POST /replication/executions`: starts an execution of `policy_id`;
/// `201` with its `Location`.
pub(crate) async fn start(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req: StartReq = json_body(&body)?;
    let policy_id = req
        .policy_id
        .ok_or_else(|| ApiError::bad_request("policy_id is required"))?;
    let Some(rep) = replication(&ctx) else {
        return Ok(no_queue());
    };
    let run = rep.start(policy_id, worker::MANUAL).await?;
    ctx.audit(
        &caller,
        &format!("replication policy {policy_id}"),
        EXEC_AUDIT,
        "create",
        None,
    )
    .await;
    Ok(created(&format!(
        "{}/{}",
        uri.path().trim_end_matches('/'),
        run.id
    )))
}

/// `GET /replication/executions/{id}`.
pub(crate) async fn get_execution(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let run = found_run(&ctx, id).await?;
    Ok(axum::Json(execution_json(&run)).into_response())
}

/// `PUT /replication/executions/{id}`: stops it (an execution that ended
/// stays as it ended).
pub(crate) async fn stop(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    _body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let run = found_run(&ctx, id).await?;
    if !run.finished() {
        match replication(&ctx) {
            // Stopped by the worker's handle, which also raises the
            // execution's REPLICATION event.
            Some(rep) => {
                rep.stop(id, caller.name()).await?;
            }
            // Stopping needs no queue: it is a conditional write.
            None => {
                let r = runs(&ctx);
                if r.set_status(id, &[runs::PENDING, runs::RUNNING], runs::STOPPED)
                    .await?
                {
                    r.log(id, &format!("stopped by {}", caller.name())).await;
                }
            }
        }
        ctx.audit(
            &caller,
            &format!("replication execution {id}"),
            EXEC_AUDIT,
            "stop",
            None,
        )
        .await;
    }
    Ok(StatusCode::OK.into_response())
}

// ---- tasks ------------------------------------------------------------------

/// One copy or deletion task as the API shows it.
struct TaskView {
    id: i64,
    key: String,
    status: String,
    operation: &'static str,
    resource_type: &'static str,
    src: String,
    dst: String,
    started: i64,
    finished: i64,
    log: String,
}

/// The copy and deletion tasks of a run, in key order.
async fn task_views(ctx: &Shared, run: &Run) -> ApiResult<Vec<TaskView>> {
    let stored = stored_of(run);
    let reports = worker::reports(ctx.registry.kv(), run.id).await?;
    let mut out = Vec::new();
    for (key, st, counts) in runs(ctx).tasks(run.id).await? {
        let (operation, rest) = match key.split_once('#') {
            Some(("copy", rest)) => ("copy", rest),
            Some(("delete", rest)) => ("deletion", rest),
            _ => continue,
        };
        let (repo, digest) = rest.rsplit_once('@').unwrap_or((rest, ""));
        let dst_repo = stored
            .as_ref()
            .and_then(|s| {
                policies::dest_repository(
                    repo,
                    &s.policy.dest_namespace,
                    s.policy.dest_namespace_replace_count,
                )
                .ok()
            })
            .unwrap_or_else(|| repo.to_owned());
        let report = reports.get(&key);
        let status = match (report.map(|r| r.status.as_str()), st.as_str()) {
            (Some(s @ (status::SUCCEED | status::FAILED | status::STOPPED)), _) => s.to_owned(),
            (_, "done") if counts.get("failed").copied().unwrap_or(0) > 0 => {
                status::FAILED.to_owned()
            }
            (_, "done") => status::SUCCEED.to_owned(),
            _ if run.status == runs::STOPPED => status::STOPPED.to_owned(),
            (_, "running") | (Some(_), _) => status::IN_PROGRESS.to_owned(),
            _ => status::PENDING.to_owned(),
        };
        out.push(TaskView {
            id: task_id(&key),
            status,
            operation,
            resource_type: "artifact",
            src: format!("{repo}@{digest}"),
            dst: format!("{dst_repo}@{digest}"),
            started: report.map_or(0, |r| r.started),
            finished: report.map_or(0, |r| r.finished),
            log: report.map(|r| r.log.clone()).unwrap_or_default(),
            key,
        });
    }
    Ok(out)
}

/// `GET /replication/executions/{id}/tasks`: paged; filtered by `status`
/// and `resource_type`.
pub(crate) async fn list_tasks(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    P(id): P<i64>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let sort = params.sort(&["id", "-id", "start_time", "-start_time"])?;
    let status_filter = params.get("status").map(str::to_owned);
    let type_filter = params.get("resource_type").map(str::to_owned);
    let run = found_run(&ctx, id).await?;
    let mut all = task_views(&ctx, &run).await?;
    all.retain(|t| {
        status_filter
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(&t.status))
            && type_filter.as_deref().is_none_or(|r| r == t.resource_type)
    });
    match sort {
        "-id" => all.sort_by_key(|t| std::cmp::Reverse(t.id)),
        "start_time" => all.sort_by_key(|t| t.started),
        "-start_time" => all.sort_by_key(|t| std::cmp::Reverse(t.started)),
        _ => all.sort_by_key(|t| t.id),
    }
    let out: Vec<Value> = all
        .iter()
        .map(|t| {
            let mut v = json!({
                "id": t.id,
                "execution_id": run.id,
                "status": t.status,
                "job_id": t.key,
                "operation": t.operation,
                "resource_type": t.resource_type,
                "src_resource": t.src,
                "dst_resource": t.dst,
            });
            if t.started > 0 {
                v["start_time"] = rfc3339(t.started).into();
            }
            if t.finished > 0 {
                v["end_time"] = rfc3339(t.finished).into();
            }
            v
        })
        .collect();
    Ok(paged(&uri, paging, out))
}

/// `GET /replication/executions/{id}/tasks/{task_id}/log`: the task's
/// log, as text.
pub(crate) async fn task_log(
    State(ctx): State<Shared>,
    caller: Caller,
    P((id, tid)): P<(i64, i64)>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let run = found_run(&ctx, id).await?;
    let task = task_views(&ctx, &run)
        .await?
        .into_iter()
        .find(|t| t.id == tid)
        .ok_or_else(|| ApiError::not_found(format!("task {tid} of execution {id} not found")))?;
    let mut resp = task.log.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}
