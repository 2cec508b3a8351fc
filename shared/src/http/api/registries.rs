//! `/api/v2.0/registries…` and `/replication/adapters…`: Harbor's
//! registry endpoints (`Registry`), their health check (`/registries/ping`)
//! and capabilities (`/registries/{id}/info`), stored by
//! [`crate::replication::endpoints`].
//!
//! As Harbor's `registryAPI`, every operation needs the system `registry`
//! permission: system admins only here. A credential's secret is never
//! answered: it reads `*****` (and a `PUT` that sends `*****` back keeps
//! the stored one).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::query::{Params, paged};
use super::{ApiError, ApiResult, Caller, P, Shared, created, json_body, rfc3339};
use crate::replication::adapter::Adapter;
use crate::replication::endpoints::{self, Credential, Endpoint, Endpoints};
use crate::replication::worker::peer_client;
use crate::replication::{ADAPTERS, Policies, ReplicationError};

/// The audit log's resource type (Harbor's RBAC resource).
const AUDIT_TYPE: &str = "registry";
/// What a secret reads as.
pub(crate) const MASK: &str = "*****";

/// The routes this module serves.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    vec![
        ("/api/v2.0/registries", get(list).post(create)),
        ("/api/v2.0/registries/ping", post(ping)),
        (
            "/api/v2.0/registries/{id}",
            get(get_one).put(update).delete(delete),
        ),
        ("/api/v2.0/registries/{id}/info", get(info)),
        ("/api/v2.0/replication/adapters", get(adapters)),
        ("/api/v2.0/replication/adapterinfos", get(adapter_infos)),
    ]
}

impl From<ReplicationError> for ApiError {
    fn from(e: ReplicationError) -> Self {
        match e {
            ReplicationError::Invalid(m) | ReplicationError::Remote(m) => ApiError::bad_request(m),
            ReplicationError::NotFound(m) => ApiError::not_found(m),
            ReplicationError::Conflict(m) => ApiError::conflict(m),
            ReplicationError::Precondition(m) => ApiError::precondition(m),
            ReplicationError::Kv(k) => k.into(),
        }
    }
}

fn store(ctx: &Shared) -> Endpoints {
    Endpoints::new(ctx.registry.kv().clone())
}

/// Harbor's `Registry` of an endpoint (the secret masked).
pub(crate) fn registry_json(e: &Endpoint) -> Value {
    let credential = match &e.credential {
        Some(c) => json!({
            "type": c.kind,
            "access_key": c.access_key,
            "access_secret": if c.access_secret.is_empty() { "" } else { MASK },
        }),
        None => json!({"type": "basic", "access_key": "", "access_secret": ""}),
    };
    json!({
        "id": e.id,
        "name": e.name,
        "description": e.description,
        "type": e.kind,
        "url": e.url,
        "credential": credential,
        "insecure": e.insecure,
        "status": e.status,
        "creation_time": rfc3339(e.created),
        "update_time": rfc3339(e.updated),
    })
}

/// The endpoint `id`, or Harbor's 404.
async fn found(ctx: &Shared, id: i64) -> ApiResult<Endpoint> {
    store(ctx)
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("registry {id} not found")))
}

/// The orders (`sort=`) of a list of named things read by id: by id (the
/// creation order) or by name, either way up.
pub(super) const BY_ID_OR_NAME: [&str; 6] = [
    "id",
    "-id",
    "name",
    "-name",
    "creation_time",
    "-creation_time",
];

/// Puts `all`, read by id, in the order `sort` (one of [`BY_ID_OR_NAME`])
/// asks for; `name` reads an item's name.
pub(super) fn order<T>(all: &mut [T], sort: &str, name: impl Fn(&T) -> &str) {
    match sort {
        "name" => all.sort_by(|a, b| name(a).cmp(name(b))),
        "-name" => all.sort_by(|a, b| name(b).cmp(name(a))),
        "-id" | "-creation_time" => all.reverse(),
        _ => {}
    }
}

/// `GET /registries`: by id, paged; `q` filters by `name` (exact or
/// `~fuzzy`), `type` or `url`; `name=` is a fuzzy name filter.
pub(crate) async fn list(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let filters = params.q_of(&["name", "type", "url"])?;
    let sort = params.sort(&BY_ID_OR_NAME)?;
    let fuzzy = params.get("name").map(str::to_owned);
    let mut all = store(&ctx).list().await?;
    all.retain(|e| {
        fuzzy.as_ref().is_none_or(|n| e.name.contains(n.as_str()))
            && filters.iter().all(|(k, v)| match k.as_str() {
                "name" => v.matches(&e.name),
                "type" => v.matches(&e.kind),
                _ => v.matches(&e.url),
            })
    });
    order(&mut all, sort, |e| e.name.as_str());
    let out: Vec<Value> = all.iter().map(registry_json).collect();
    Ok(paged(&uri, paging, out))
}

/// Harbor's `RegistryCredential` as a request carries it.
#[derive(Deserialize, Default)]
struct CredentialReq {
    #[serde(rename = "type")]
    kind: Option<String>,
    access_key: Option<String>,
    access_secret: Option<String>,
}

/// Harbor's `Registry` as a create request carries it.
#[derive(Deserialize, Default)]
struct CreateReq {
    name: Option<String>,
    description: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    url: Option<String>,
    credential: Option<CredentialReq>,
    insecure: Option<bool>,
}

/// `POST /registries`: `201` with the new endpoint's `Location`.
pub(crate) async fn create(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req: CreateReq = json_body(&body)?;
    let mut e = Endpoint::new(
        req.name.as_deref().unwrap_or_default(),
        req.kind.as_deref().unwrap_or_default(),
        req.url.as_deref().unwrap_or_default(),
    );
    e.description = req.description.unwrap_or_default();
    e.insecure = req.insecure.unwrap_or(false);
    e.credential = req.credential.map(|c| Credential {
        kind: c.kind.unwrap_or_default(),
        access_key: c.access_key.unwrap_or_default(),
        access_secret: c.access_secret.unwrap_or_default(),
    });
    let name = e.name.clone();
    let id = store(&ctx).create(e).await?;
    ctx.audit(&caller, &name, AUDIT_TYPE, "create", None).await;
    Ok(created(&format!(
        "{}/{id}",
        uri.path().trim_end_matches('/')
    )))
}

/// `GET /registries/{id}`.
pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let e = found(&ctx, id).await?;
    Ok(axum::Json(registry_json(&e)).into_response())
}

/// Harbor's `RegistryUpdate` (and `RegistryPing`, which adds `id` and
/// `type`): every field optional.
#[derive(Deserialize, Default)]
struct UpdateReq {
    id: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    description: Option<String>,
    url: Option<String>,
    credential_type: Option<String>,
    access_key: Option<String>,
    access_secret: Option<String>,
    insecure: Option<bool>,
}

impl UpdateReq {
    /// Sets on `e` what the request gives.
    fn apply(self, e: &mut Endpoint) {
        if let Some(n) = self.name {
            e.name = n;
        }
        if let Some(d) = self.description {
            e.description = d;
        }
        if let Some(u) = self.url {
            e.url = u;
        }
        if let Some(k) = self.kind {
            e.kind = k;
        }
        if let Some(i) = self.insecure {
            e.insecure = i;
        }
        if self.credential_type.is_some()
            || self.access_key.is_some()
            || self.access_secret.is_some()
        {
            let mut c = e.credential.clone().unwrap_or(Credential {
                kind: "basic".to_owned(),
                access_key: String::new(),
                access_secret: String::new(),
            });
            if let Some(t) = self.credential_type {
                c.kind = t;
            }
            if let Some(k) = self.access_key {
                c.access_key = k;
            }
            if let Some(s) = self.access_secret.filter(|s| s != MASK) {
                c.access_secret = s;
            }
            e.credential = Some(c);
        }
    }
}

/// `PUT /registries/{id}`: changes what the body gives.
pub(crate) async fn update(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req: UpdateReq = json_body(&body)?;
    let old = found(&ctx, id).await?;
    let mut new = old.clone();
    req.apply(&mut new);
    store(&ctx).update(&old, new).await?;
    ctx.audit(&caller, &old.name, AUDIT_TYPE, "update", None)
        .await;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /registries/{id}`: refused (412) while a policy uses it.
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    _body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let e = found(&ctx, id).await?;
    if Policies::new(ctx.registry.kv().clone())
        .uses_registry(id)
        .await?
    {
        return Err(ApiError::precondition(format!(
            "the registry {id} is referenced by replication policies, cannot delete it"
        )));
    }
    store(&ctx).delete(&e).await?;
    ctx.audit(&caller, &e.name, AUDIT_TYPE, "delete", None)
        .await;
    Ok(StatusCode::OK.into_response())
}

/// Checks an endpoint's health: whether it answers `/v2/` and accepts its
/// credential.
pub(crate) async fn check(ctx: &Shared, e: &Endpoint) -> Result<(), String> {
    let http = peer_client(crate::outbound::policy_for(&ctx.iam.directory).await)?;
    let remote =
        crate::replication::adapter::Remote::new(http, e.clone()).map_err(|e| e.to_string())?;
    remote.ping().await.map_err(|e| e.to_string())
}

/// `POST /registries/ping`: `200` when the registry (stored, `id`, with
/// the body's changes; or the body's own) answers and accepts the
/// credential; `400` otherwise.
pub(crate) async fn ping(
    State(ctx): State<Shared>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req: UpdateReq = json_body(&body)?;
    let stored = match req.id.filter(|id| *id > 0) {
        Some(id) => Some(found(&ctx, id).await?),
        None => None,
    };
    let mut e = stored
        .clone()
        .unwrap_or_else(|| Endpoint::new("ping", "docker-registry", ""));
    req.apply(&mut e);
    e.normalize()?;
    let outcome = check(&ctx, &e).await;
    if let Some(s) = &stored {
        let status = if outcome.is_ok() {
            endpoints::HEALTHY
        } else {
            endpoints::UNHEALTHY
        };
        store(&ctx).set_status(s.id, status).await;
    }
    match outcome {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(why) => Err(ApiError::bad_request(format!(
            "the registry is unhealthy: {why}"
        ))),
    }
}

/// Harbor's `FilterStyle`s and triggers an endpoint type supports (as a
/// replication source; this registry also supports label and resource
/// filters and event-based triggers as the source of push-based policies).
fn info_json(kind: &str) -> Value {
    json!({
        "type": kind,
        "description": match kind {
            "berth" => "another Berth registry",
            "harbor" => "a Harbor registry (v2 API)",
            _ => "an OCI Distribution registry",
        },
        "supported_resource_filters": [
            {"type": "name", "style": "input"},
            {"type": "tag", "style": "input"},
        ],
        "supported_triggers": ["manual", "scheduled"],
    })
}

/// `GET /registries/{id}/info`.
pub(crate) async fn info(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let e = found(&ctx, id).await?;
    Ok(axum::Json(info_json(&e.kind)).into_response())
}

/// `GET /replication/adapters`: the endpoint types.
pub(crate) async fn adapters(caller: Caller) -> ApiResult<Response> {
    caller.require_admin()?;
    Ok(axum::Json(ADAPTERS).into_response())
}

/// `GET /replication/adapterinfos`: every type takes any URL and a user
/// name and password.
pub(crate) async fn adapter_infos(caller: Caller) -> ApiResult<Response> {
    caller.require_admin()?;
    let infos: serde_json::Map<String, Value> = ADAPTERS
        .iter()
        .map(|k| {
            (
                (*k).to_owned(),
                json!({
                    "endpoint_pattern": {"endpoint_type": "EndpointPatternTypeFree"},
                    "credential_pattern": {
                        "access_key_type": "AccessKeyTypeStandard",
                        "access_secret_type": "AccessSecretTypeStandard",
                    },
                }),
            )
        })
        .collect();
    Ok(axum::Json(Value::Object(infos)).into_response())
}
