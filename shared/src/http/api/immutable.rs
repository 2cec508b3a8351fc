//! `/api/v2.0/projects/{project_name_or_id}/immutabletagrules…`: Harbor's
//! tag immutability rules (`ImmutableRule`), stored by
//! [`crate::policy::immutable`].
//!
//! As Harbor's `immutableAPI`: each operation needs `immutable-tag`
//! `list`, `create`, `update` or `delete` in the project (project admins
//! and maintainers; system admins; robots given it), a project the caller
//! cannot see is "not found", a rule of another project is "not found".
//! A `PUT` replaces the fields its body gives and keeps the others, so a
//! body of `{"id": 1, "disabled": true}` just switches the rule off
//! (Harbor's portal sends the whole rule with `disabled` flipped).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, put};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::projects::{require, visible_project};
use super::query::{Params, QVal, paged, parse_bool};
use super::{ApiError, ApiResult, Caller, P, Shared, created, json_body};
use crate::iam::{Action, Resource};
use crate::policy::immutable::{ImmutableRule, ImmutableRules, PolicyError};
use crate::policy::selector::Selector;

/// The audit log's resource type (Harbor's RBAC resource).
const AUDIT_TYPE: &str = "immutable-tag";

/// The routes this module serves.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    vec![
        (
            "/api/v2.0/projects/{project_name_or_id}/immutabletagrules",
            get(list).post(create),
        ),
        (
            "/api/v2.0/projects/{project_name_or_id}/immutabletagrules/{immutable_rule_id}",
            put(update).delete(delete),
        ),
    ]
}

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Invalid(m) => ApiError::bad_request(m),
            PolicyError::NotFound(m) => ApiError::not_found(m),
            PolicyError::Conflict(m) => ApiError::conflict(m),
            PolicyError::Kv(k) => k.into(),
            e @ PolicyError::Corrupt(_) => ApiError::internal(e.to_string()),
        }
    }
}

fn rules(ctx: &Shared) -> ImmutableRules {
    ImmutableRules::new(ctx.iam.directory.kv().clone())
}

/// Harbor's `ImmutableSelector` as its API shows it (no extras).
fn selector_json(s: &Selector) -> Value {
    json!({"kind": s.kind, "decoration": s.decoration, "pattern": s.pattern})
}

/// Harbor's `ImmutableRule` (its `ToSwagger`: no project id; `params`
/// only when the rule has some).
fn rule_json(r: &ImmutableRule) -> Value {
    let scopes: Map<String, Value> = r
        .scope_selectors
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().map(selector_json).collect()))
        .collect();
    let mut v = json!({
        "id": r.id,
        "priority": r.priority,
        "disabled": r.disabled,
        "action": r.action,
        "template": r.template,
        "tag_selectors": r.tag_selectors.iter().map(selector_json).collect::<Vec<_>>(),
        "scope_selectors": scopes,
    });
    if !r.params.is_empty() {
        v["params"] = Value::Object(r.params.clone());
    }
    v
}

/// A selector as a request carries it (any field may be missing or null).
#[derive(Deserialize)]
struct SelectorReq {
    kind: Option<String>,
    decoration: Option<String>,
    pattern: Option<String>,
    extras: Option<String>,
}

impl From<SelectorReq> for Selector {
    fn from(s: SelectorReq) -> Self {
        Selector {
            kind: s.kind.unwrap_or_default(),
            decoration: s.decoration.unwrap_or_default(),
            pattern: s.pattern.unwrap_or_default(),
            extras: s.extras.unwrap_or_default(),
        }
    }
}

fn selectors(list: Option<Vec<SelectorReq>>) -> Vec<Selector> {
    list.unwrap_or_default()
        .into_iter()
        .map(Selector::from)
        .collect()
}

/// Harbor's `ImmutableRule` as a request carries it.
#[derive(Deserialize, Default)]
struct RuleReq {
    id: Option<i64>,
    priority: Option<i64>,
    disabled: Option<bool>,
    action: Option<String>,
    template: Option<String>,
    params: Option<Map<String, Value>>,
    tag_selectors: Option<Vec<SelectorReq>>,
    scope_selectors: Option<BTreeMap<String, Option<Vec<SelectorReq>>>>,
}

impl RuleReq {
    /// Sets on `rule` what the request gives.
    fn apply(self, rule: &mut ImmutableRule) {
        if let Some(p) = self.priority {
            rule.priority = p;
        }
        if let Some(d) = self.disabled {
            rule.disabled = d;
        }
        if let Some(a) = self.action {
            rule.action = a;
        }
        if let Some(t) = self.template {
            rule.template = t;
        }
        if let Some(p) = self.params {
            rule.params = p;
        }
        if self.tag_selectors.is_some() {
            rule.tag_selectors = selectors(self.tag_selectors);
        }
        if let Some(scopes) = self.scope_selectors {
            rule.scope_selectors = scopes.into_iter().map(|(k, v)| (k, selectors(v))).collect();
        }
    }
}

fn empty_rule() -> ImmutableRule {
    ImmutableRule {
        id: 0,
        project_id: 0,
        priority: 0,
        disabled: false,
        action: String::new(),
        template: String::new(),
        params: Map::new(),
        tag_selectors: Vec::new(),
        scope_selectors: BTreeMap::new(),
    }
}

/// The audit log's name of a rule.
fn audit_name(id: i64) -> String {
    format!("immutable tag rule {id}")
}

/// `GET …/immutabletagrules`: the project's rules by id, paged (`page`,
/// `page_size`, `X-Total-Count`, `Link`); `q` filters by `id` or
/// `disabled`, `sort` is `id` or `-id`.
pub(crate) async fn list(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    P(name_or_id): P<String>,
) -> ApiResult<Response> {
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let filters = params.q_of(&["id", "disabled"])?;
    let descending = params.sort(&["id", "-id"])? == "-id";
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    require(&caller, &pa, Resource::ImmutableTag, Action::List)?;
    let mut all = rules(&ctx).list(&p.name).await?;
    for (k, v) in &filters {
        let v = match (k.as_str(), v) {
            ("disabled", QVal::Exact(b)) => QVal::Exact(parse_bool("disabled", b)?.to_string()),
            (_, v) => v.clone(),
        };
        all.retain(|r| match k.as_str() {
            "id" => v.matches(&r.id.to_string()),
            _ => v.matches(&r.disabled.to_string()),
        });
    }
    all.sort_by_key(|r| r.id);
    if descending {
        all.reverse();
    }
    let out: Vec<Value> = all.iter().map(rule_json).collect();
    Ok(paged(&uri, paging, out))
}

/// `POST …/immutabletagrules`: `201` with the new rule's `Location`.
pub(crate) async fn create(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    P(name_or_id): P<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: RuleReq = json_body(&body)?;
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    require(&caller, &pa, Resource::ImmutableTag, Action::Create)?;
    let mut rule = empty_rule();
    req.apply(&mut rule);
    let id = rules(&ctx).create(&p.name, p.id, rule).await?;
    ctx.audit(
        &caller,
        &audit_name(id),
        AUDIT_TYPE,
        "create",
        Some(&p.name),
    )
    .await;
    Ok(created(&format!(
        "{}/{id}",
        uri.path().trim_end_matches('/')
    )))
}

/// `PUT …/immutabletagrules/{id}`: changes what the body gives.
pub(crate) async fn update(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P((name_or_id, id)): P<(String, i64)>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: RuleReq = json_body(&body)?;
    if req.id.is_some_and(|b| b != id) {
        return Err(ApiError::bad_request(
            "the immutable_rule_id doesn't match the id in the payload body of ImmutableRule",
        ));
    }
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    require(&caller, &pa, Resource::ImmutableTag, Action::Update)?;
    let store = rules(&ctx);
    let mut rule = store
        .get(&p.name, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("immutable rule {id} not found")))?;
    req.apply(&mut rule);
    store.update(&p.name, id, rule).await?;
    ctx.audit(
        &caller,
        &audit_name(id),
        AUDIT_TYPE,
        "update",
        Some(&p.name),
    )
    .await;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE …/immutabletagrules/{id}`.
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    P((name_or_id, id)): P<(String, i64)>,
    _body: Bytes,
) -> ApiResult<Response> {
    let (p, pa) = visible_project(&ctx, &caller, &headers, &name_or_id).await?;
    require(&caller, &pa, Resource::ImmutableTag, Action::Delete)?;
    rules(&ctx).delete(&p.name, id).await?;
    ctx.audit(
        &caller,
        &audit_name(id),
        AUDIT_TYPE,
        "delete",
        Some(&p.name),
    )
    .await;
    Ok(StatusCode::OK.into_response())
}
