//! `/api/v2.0/projects/{project_name_or_id}/webhook/…`: Harbor's webhook
//! policies (`WebhookPolicy`), their executions and tasks, the supported
//! event types and the last triggers, stored by [`crate::webhook`].
//!
//! As Harbor's `webhookAPI`: each operation needs `notification-policy`
//! `list` (policies, executions, tasks), `create`, `read` (one policy, a
//! task's log, the event types, the last triggers), `update` or `delete`
//! in the project — project admins; maintainers may list; system admins;
//! robots given it. A project the caller cannot see is "not found".
//!
//! Berth's additions (`x-berth` in the OpenAPI document):
//!
//! - the create response's body `{"id", "secret"}`: the policy's signing
//!   secret, shown this once (see [`crate::webhook`] on signatures);
//! - `POST …/webhook/policies/test`: sends the policy in the body (saved
//!   or not) one test `PUSH_ARTIFACT` event now, and answers `200` when
//!   the target took it, `400` with the reason otherwise; with the `id`
//!   of a saved policy the request is signed with its secret.
//!
//! A target's address is checked when a policy is saved (`400` with the
//! reason: only http and https; never link-local or instance-metadata
//! addresses; loopback and private ones only when the administrator
//! allows them) and again, after name resolution, at every delivery.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::projects::{require, visible_project};
use super::query::{Params, page_response, paged};
use super::{ApiError, ApiResult, Caller, P, Shared, json_body, rfc3339};
use crate::iam::directory::Project;
use crate::iam::{Action, Resource};
use crate::outbound::{ClientOptions, SafeClient};
use crate::webhook::history::{Execution, Executions};
use crate::webhook::policy::{HTTP, SLACK, Target, WebhookError, WebhookPolicies, WebhookPolicy};
use crate::webhook::{EVENT_TYPES, address_policy};

/// The audit log's resource type (Harbor's RBAC resource).
const AUDIT_TYPE: &str = "notification-policy";

const BASE: &str = "/api/v2.0/projects/{project_name_or_id}/webhook";
const POLICY: &str = "/api/v2.0/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}";

/// The routes this module serves.
pub(crate) fn routes() -> Vec<(String, MethodRouter<Shared>)> {
    vec![
        (format!("{BASE}/policies"), get(list).post(create)),
        (format!("{BASE}/policies/test"), post(test)),
        (POLICY.into(), get(get_one).put(update).delete(delete)),
        (format!("{POLICY}/executions"), get(executions)),
        (
            format!("{POLICY}/executions/{{execution_id}}/tasks"),
            get(tasks),
        ),
        (
            format!("{POLICY}/executions/{{execution_id}}/tasks/{{task_id}}/log"),
            get(task_log),
        ),
        (format!("{BASE}/events"), get(events)),
        (format!("{BASE}/lasttrigger"), get(last_trigger)),
    ]
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Invalid(m) => ApiError::bad_request(m),
            WebhookError::NotFound(m) => ApiError::not_found(m),
            WebhookError::Conflict(m) => ApiError::conflict(m),
            WebhookError::Kv(k) => k.into(),
            e @ WebhookError::Corrupt(_) => ApiError::internal(e.to_string()),
        }
    }
}

fn policies(ctx: &Shared) -> WebhookPolicies {
    WebhookPolicies::new(ctx.iam.directory.kv().clone())
}

fn history(ctx: &Shared) -> Executions {
    Executions::new(ctx.iam.directory.kv().clone())
}

/// Harbor's `WebhookPolicy`.
fn policy_json(p: &WebhookPolicy) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "project_id": p.project_id,
        "targets": p.targets,
        "event_types": p.event_types,
        "creator": p.creator,
        "creation_time": rfc3339(p.creation_time),
        "update_time": rfc3339(p.update_time),
        "enabled": p.enabled,
    })
}

/// Harbor's `WebhookPolicy` as a request carries it (any field may be
/// missing or null).
#[derive(Deserialize, Default)]
struct PolicyReq {
    id: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    targets: Option<Vec<Target>>,
    event_types: Option<Vec<String>>,
    enabled: Option<bool>,
}

impl PolicyReq {
    /// Sets on `p` what the request gives.
    fn apply(self, p: &mut WebhookPolicy) {
        if let Some(v) = self.name {
            p.name = v;
        }
        if let Some(v) = self.description {
            p.description = v;
        }
        if let Some(v) = self.targets {
            p.targets = v;
        }
        if let Some(v) = self.event_types {
            p.event_types = v;
        }
        if let Some(v) = self.enabled {
            p.enabled = v;
        }
    }
}

/// The audit log's name of a policy.
fn audit_name(p: &WebhookPolicy) -> String {
    format!("webhook policy {} ({})", p.name, p.id)
}

/// The project and the caller's right to `action` on its policies.
async fn project_for(
    ctx: &Shared,
    caller: &Caller,
    headers: &HeaderMap,
    name_or_id: &str,
    action: Action,
) -> ApiResult<Project> {
    let (p, pa) = visible_project(ctx, caller, headers, name_or_id).await?;
    require(caller, &pa, Resource::NotificationPolicy, action)?;
    Ok(p)
}

async fn policy_of(ctx: &Shared, p: &Project, id: i64) -> ApiResult<WebhookPolicy> {
    policies(ctx)
        .get(&p.name, p.id, id)
        .await?
        .map(|s| s.policy)
        .ok_or_else(|| ApiError::not_found(format!("webhook policy {id} not found")))
}

/// `GET …/webhook/policies`: the project's policies by id, paged.
pub(crate) async fn list(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    P(name_or_id): P<String>,
) -> ApiResult<Response> {
    let paging = Params::of(&uri).paging()?;
    let p = project_for(&ctx, &caller, &headers, &name_or_id, Action::List).await?;
    let all = policies(&ctx).list(&p.name, p.id).await?;
    let out: Vec<Value> = all.iter().map(|s| policy_json(&s.policy)).collect();
    Ok(paged(&uri, paging, out))
}

/// `POST …/webhook/policies`: `201` with the new policy's `Location`, and
/// its signing secret in the body (shown once). A policy without
/// `enabled` is created enabled.
pub(crate) async fn create(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    P(name_or_id): P<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: PolicyReq = json_body(&body)?;
    let p = project_for(&ctx, &caller, &headers, &name_or_id, Action::Create).await?;
    let mut policy = WebhookPolicy {
        enabled: true,
        ..WebhookPolicy::default()
    };
    req.apply(&mut policy);
    let addresses = address_policy(&ctx.iam.directory).await;
    let stored = policies(&ctx)
        .create(&p.name, p.id, policy, caller.name(), addresses)
        .await?;
    ctx.audit(
        &caller,
        &audit_name(&stored.policy),
        AUDIT_TYPE,
        "create",
        Some(&p.name),
    )
    .await;
    let id = stored.policy.id;
    let mut resp = (
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "secret": stored.secret})),
    )
        .into_response();
    let location = format!("{}/{id}", uri.path().trim_end_matches('/'));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `GET …/webhook/policies/{id}`.
pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P((name_or_id, id)): P<(String, i64)>,
) -> ApiResult<Response> {
    let p = project_for(&ctx, &caller, &headers, &name_or_id, Action::Read).await?;
    let policy = policy_of(&ctx, &p, id).await?;
    Ok(axum::Json(policy_json(&policy)).into_response())
}

/// `PUT …/webhook/policies/{id}`: changes what the body gives.
pub(crate) async fn update(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P((name_or_id, id)): P<(String, i64)>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: PolicyReq = json_body(&body)?;
    if req.id.is_some_and(|b| b != 0 && b != id) {
        return Err(ApiError::bad_request(
            "the webhook_policy_id doesn't match the id in the payload body",
        ));
    }
    let p = project_for(&ctx, &caller, &headers, &name_or_id, Action::Update).await?;
    let mut policy = policy_of(&ctx, &p, id).await?;
    req.apply(&mut policy);
    let addresses = address_policy(&ctx.iam.directory).await;
    let policy = policies(&ctx)
        .update(&p.name, p.id, id, policy, addresses)
        .await?;
    ctx.audit(
        &caller,
        &audit_name(&policy),
        AUDIT_TYPE,
        "update",
        Some(&p.name),
    )
    .await;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE …/webhook/policies/{id}`.
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P((name_or_id, id)): P<(String, i64)>,
    _body: Bytes,
) -> ApiResult<Response> {
    let p = project_for(&ctx, &caller, &headers, &name_or_id, Action::Delete).await?;
    let policy = policy_of(&ctx, &p, id).await?;
    policies(&ctx).delete(&p.name, p.id, id).await?;
    ctx.audit(
        &caller,
        &audit_name(&policy),
        AUDIT_TYPE,
        "delete",
        Some(&p.name),
    )
    .await;
    Ok(StatusCode::OK.into_response())
}

/// The status counts of an execution's one task (Harbor's `Metrics`).
fn metrics(e: &Execution) -> Value {
    let one = |s: &str| i64::from(e.status == s);
    json!({
        "task_count": 1,
        "success_task_count": one("Success"),
        "error_task_count": one("Error"),
        "pending_task_count": one("Pending"),
        "running_task_count": one("Running"),
        "scheduled_task_count": 0,
        "stopped_task_count": 0,
    })
}

/// Harbor's `Execution` of a webhook delivery.
fn execution_json(e: &Execution) -> Value {
    let mut v = json!({
        "id": e.id,
        "vendor_type": "WEBHOOK",
        "vendor_id": e.policy_id,
        "status": e.status,
        "status_message": e.message,
        "metrics": metrics(e),
        "trigger": "EVENT",
        "extra_attrs": {
            "event_type": e.event_type,
            "event_id": e.event_id,
            "payload": String::from_utf8_lossy(&e.body),
        },
        "start_time": rfc3339(e.created),
    });
    if e.ended > 0 {
        v["end_time"] = rfc3339(e.ended).into();
    }
    v
}

/// Harbor's `Task`: an execution's one delivery, with its attempts.
fn task_json(e: &Execution, attempts: &[crate::webhook::Attempt]) -> Value {
    let mut v = json!({
        "id": e.id,
        "execution_id": e.id,
        "status": e.status,
        "status_message": e.message,
        "run_count": e.attempts,
        "extra_attrs": {
            "event_type": e.event_type,
            "payload_format": e.format,
            "attempts": attempts,
        },
        "creation_time": rfc3339(e.created),
        "update_time": rfc3339(e.updated),
        "start_time": rfc3339(e.created),
    });
    if e.ended > 0 {
        v["end_time"] = rfc3339(e.ended).into();
    }
    v
}

/// `GET …/{id}/executions`: newest first, paged.
pub(crate) async fn executions(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    P((name_or_id, id)): P<(String, i64)>,
) -> ApiResult<Response> {
    let paging = Params::of(&uri).paging()?;
    let p = project_for(&ctx, &caller, &headers, &name_or_id, Action::List).await?;
    policy_of(&ctx, &p, id).await?;
    let (page, total) = history(&ctx).page(id, paging.skip(), paging.size).await?;
    let out: Vec<Value> = page.iter().map(execution_json).collect();
    Ok(page_response(
        &uri,
        paging,
        usize::try_from(total).unwrap_or(0),
        &out,
    ))
}

async fn execution_of(ctx: &Shared, policy: i64, eid: i64) -> ApiResult<Execution> {
    history(ctx)
        .get(policy, eid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("webhook execution {eid} not found")))
}

/// `GET …/executions/{eid}/tasks`: the execution's one task.
pub(crate) async fn tasks(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    P((name_or_id, id, eid)): P<(String, i64, i64)>,
) -> ApiResult<Response> {
    let paging = Params::of(&uri).paging()?;
    let p = project_for(&ctx, &caller, &headers, &name_or_id, Action::List).await?;
    policy_of(&ctx, &p, id).await?;
    let e = execution_of(&ctx, id, eid).await?;
    let attempts = history(&ctx).attempts(e.id).await?;
    Ok(paged(&uri, paging, vec![task_json(&e, &attempts)]))
}

/// `GET …/tasks/{tid}/log` (`text/plain`): one line per attempt.
pub(crate) async fn task_log(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P((name_or_id, id, eid, tid)): P<(String, i64, i64, i64)>,
) -> ApiResult<Response> {
    let p = project_for(&ctx, &caller, &headers, &name_or_id, Action::Read).await?;
    policy_of(&ctx, &p, id).await?;
    let e = execution_of(&ctx, id, eid).await?;
    if tid != e.id {
        return Err(ApiError::not_found(format!(
            "task {tid} of webhook execution {eid} not found"
        )));
    }
    let mut text = format!(
        "Event: {} ({})\nStatus: {}\n",
        e.event_type, e.event_id, e.status
    );
    for a in history(&ctx).attempts(e.id).await? {
        let what = if a.error.is_empty() {
            "delivered".to_owned()
        } else {
            a.error.clone()
        };
        text.push_str(&format!(
            "{} attempt {}: status {}: {what}\n",
            rfc3339(a.at / 1000),
            a.attempt,
            a.status_code
        ));
    }
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

/// `GET …/webhook/events`: Harbor's `SupportedWebhookEventTypes`.
pub(crate) async fn events(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P(name_or_id): P<String>,
) -> ApiResult<Response> {
    project_for(&ctx, &caller, &headers, &name_or_id, Action::Read).await?;
    Ok(axum::Json(json!({
        "event_type": EVENT_TYPES,
        "notify_type": [HTTP, SLACK],
        "payload_formats": [
            {"notify_type": HTTP, "formats": ["Default", "CloudEvents"]},
            {"notify_type": SLACK, "formats": ["Default"]},
        ],
    }))
    .into_response())
}

/// `GET …/webhook/lasttrigger`: for each policy and each of its event
/// types, when it last fired (Harbor's `WebhookLastTrigger`).
pub(crate) async fn last_trigger(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P(name_or_id): P<String>,
) -> ApiResult<Response> {
    let p = project_for(&ctx, &caller, &headers, &name_or_id, Action::Read).await?;
    let store = policies(&ctx);
    let fired = store.last_triggers(&p.name).await?;
    let mut out = Vec::new();
    for s in store.list(&p.name, p.id).await? {
        for e in &s.policy.event_types {
            let mut v = json!({
                "policy_name": s.policy.name,
                "event_type": e,
                "enabled": s.policy.enabled,
                "creation_time": rfc3339(s.policy.creation_time),
            });
            if let Some((_, _, at)) = fired
                .iter()
                .find(|(id, kind, _)| *id == s.policy.id && kind == e)
            {
                v["last_trigger_time"] = rfc3339(*at).into();
            }
            out.push(v);
        }
    }
    Ok(axum::Json(out).into_response())
}

/// `POST …/webhook/policies/test` (Berth): one test delivery now.
pub(crate) async fn test(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P(name_or_id): P<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: PolicyReq = json_body(&body)?;
    let p = project_for(&ctx, &caller, &headers, &name_or_id, Action::Create).await?;
    let store = policies(&ctx);
    let saved = match req.id.filter(|id| *id > 0) {
        Some(id) => Some(
            store
                .get(&p.name, p.id, id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("webhook policy {id} not found")))?,
        ),
        None => None,
    };
    let mut policy = saved
        .as_ref()
        .map(|s| s.policy.clone())
        .unwrap_or_else(|| WebhookPolicy {
            name: "test".into(),
            enabled: true,
            event_types: vec!["PUSH_ARTIFACT".into()],
            ..WebhookPolicy::default()
        });
    req.apply(&mut policy);
    let addresses = address_policy(&ctx.iam.directory).await;
    policy.normalize(addresses)?;
    let client = SafeClient::new(ClientOptions {
        policy: addresses,
        timeout: std::time::Duration::from_secs(10),
        connect_timeout: std::time::Duration::from_secs(10),
        ..ClientOptions::default()
    })
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let secret = saved.as_ref().map_or("", |s| s.secret.as_str());
    let outcome = crate::webhook::test_delivery(
        &client,
        &policy,
        (&p.name, p.id, p.public),
        ctx.public_url.as_deref(),
        secret,
        caller.name(),
    )
    .await;
    if outcome.ok() {
        Ok(StatusCode::OK.into_response())
    } else {
        Err(ApiError::bad_request(format!(
            "test delivery to {} failed: {}",
            policy.target().map_or("", |t| t.address.as_str()),
            outcome.error
        )))
    }
}
