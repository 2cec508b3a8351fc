//! `/configurations`: the system settings identity uses (Harbor's names):
//! `self_registration` and `project_creation_restriction`
//! (`everyone`|`adminonly`), and Berth's `webhook_allow_private` (whether
//! webhook targets and registry endpoints may be loopback or private
//! addresses; its default is the process's `BERTH_WEBHOOK_ALLOW_PRIVATE`).
//! System admins only. (How long audit entries
//! live is `BERTH_AUDIT_RETENTION_DAYS`, a process setting: each entry's
//! expiry is fixed when it is written, by whichever function writes it.)

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiResult, Caller, Shared, json_body};

/// The subset of Harbor's `Configurations` Berth keeps.
#[derive(Deserialize)]
struct Update {
    self_registration: Option<bool>,
    project_creation_restriction: Option<String>,
    webhook_allow_private: Option<bool>,
}

pub(crate) async fn get(State(ctx): State<Shared>, caller: Caller) -> ApiResult<Response> {
    caller.require_admin()?;
    let s = ctx.iam.directory.settings().await?;
    Ok(axum::Json(json!({
        "auth_mode": {"value": "db_auth", "editable": false},
        "self_registration": {"value": s.self_registration, "editable": true},
        "project_creation_restriction": {"value": s.project_creation_restriction, "editable": true},
        "webhook_allow_private": {
            "value": s.webhook_allow_private.unwrap_or_else(crate::outbound::default_allow_private),
            "editable": true,
        },
    }))
    .into_response())
}

pub(crate) async fn put(
    State(ctx): State<Shared>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let u: Update = json_body(&body)?;
    let mut s = ctx.iam.directory.settings().await?;
    if let Some(v) = u.self_registration {
        s.self_registration = v;
    }
    if let Some(v) = u.project_creation_restriction {
        if v != "everyone" && v != "adminonly" {
            return Err(ApiError::bad_request(
                "project_creation_restriction is everyone or adminonly",
            ));
        }
        s.project_creation_restriction = v;
    }
    if let Some(v) = u.webhook_allow_private {
        s.webhook_allow_private = Some(v);
    }
    ctx.iam.directory.save_settings(&s).await?;
    ctx.audit(&caller, "configurations", "configuration", "update", None)
        .await;
    Ok(axum::http::StatusCode::OK.into_response())
}
