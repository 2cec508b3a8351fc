//! `/api/v2.0/audit-logs` and `/api/v2.0/projects/{project_name}/logs`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::projects::{require, visible_project};
use super::query::{Params, QVal};
use super::{ApiError, ApiResult, Caller, P, Shared, now_secs};
use crate::iam::{Action, AuditEntry, Resource};

/// Entries read per step through the log.
const READ_STEP: usize = 100;
/// At most this many entries are read to answer one request; beyond it
/// `X-Total-Count` is a lower bound.
const READ_CAP: usize = 20_000;

fn entry_json(e: &AuditEntry) -> Value {
    let mut v = json!({
        "id": e.id,
        "username": e.username,
        "resource": e.resource,
        "resource_type": e.resource_type,
        "operation": e.operation,
        "op_time": e.op_time(),
    });
    // Berth's extension: pulls gathered into one entry say how many.
    if e.count > 1 {
        v["count"] = e.count.into();
    }
    v
}

/// Epoch milliseconds of a time in a `q` range: RFC 3339,
/// `YYYY-MM-DD HH:MM:SS` (Harbor's portal), `YYYY-MM-DD`, or epoch seconds.
fn parse_time(s: &str) -> ApiResult<i64> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let s = s.trim();
    let t = time::OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .or_else(|| {
            time::PrimitiveDateTime::parse(
                s,
                format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
            )
            .ok()
            .map(time::PrimitiveDateTime::assume_utc)
        })
        .or_else(|| {
            time::Date::parse(s, format_description!("[year]-[month]-[day]"))
                .ok()
                .map(|d| d.midnight().assume_utc())
        })
        .or_else(|| {
            s.parse::<i64>()
                .ok()
                .and_then(|n| time::OffsetDateTime::from_unix_timestamp(n).ok())
        })
        .ok_or_else(|| ApiError::bad_request(format!("time {s:?} is not RFC 3339")))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ApiError::bad_request("time out of range"))
}

async fn logs(ctx: &Shared, project: Option<&str>, uri: &Uri) -> ApiResult<Response> {
    let params = Params::of(uri);
    let paging = params.paging()?;
    let mut filters = Vec::new();
    let (mut from_ms, mut to_ms) = (i64::MIN, i64::MAX);
    for (k, v) in params.q()? {
        match k.as_str() {
            "username" | "operation" | "resource" | "resource_type" => filters.push((k, v)),
            "op_time" => match v {
                QVal::Range(a, b) => {
                    if let Some(a) = a {
                        from_ms = parse_time(&a)?;
                    }
                    if let Some(b) = b {
                        to_ms = parse_time(&b)?;
                    }
                }
                QVal::Exact(t) => {
                    from_ms = parse_time(&t)?;
                    to_ms = from_ms;
                }
                _ => return Err(ApiError::bad_request("op_time takes [from~to]")),
            },
            _ => {}
        }
    }
    let now_ms = now_secs().saturating_mul(1000) + 999;
    let start_ms = to_ms.min(now_ms);
    let audit = &ctx.iam.audit;
    let mut cursor: Option<String> = None;
    let (mut matched, mut read) = (0usize, 0usize);
    let mut page = Vec::new();
    'walk: loop {
        let (entries, next) = audit
            .page(project, start_ms, cursor.as_deref(), READ_STEP)
            .await?;
        for e in &entries {
            read += 1;
            if e.op_time_ms > to_ms {
                continue;
            }
            if e.op_time_ms < from_ms {
                break 'walk;
            }
            let keep = filters.iter().all(|(k, v)| match k.as_str() {
                "username" => v.matches(&e.username),
                "operation" => v.matches(&e.operation),
                "resource" => v.matches(&e.resource),
                _ => v.matches(&e.resource_type),
            });
            if keep {
                if matched >= paging.skip() && page.len() < paging.size {
                    page.push(entry_json(e));
                }
                matched += 1;
            }
        }
        match next {
            Some(n) if read < READ_CAP => cursor = Some(n),
            _ => break,
        }
    }
    let mut resp = super::query::page_response(uri, paging, matched, &page);
    if read >= READ_CAP {
        resp.headers_mut()
            .insert("x-total-count-capped", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

pub(crate) async fn all_logs(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    caller.require_admin()?;
    logs(&ctx, None, &uri).await
}

pub(crate) async fn project_logs(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    P(project_name): P<String>,
) -> ApiResult<Response> {
    let mut by_name = HeaderMap::new();
    by_name.insert("x-is-resource-name", HeaderValue::from_static("true"));
    let (p, pa) = visible_project(&ctx, &caller, &by_name, &project_name).await?;
    require(&caller, &pa, Resource::Log, Action::List)?;
    logs(&ctx, Some(&p.name), &uri).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::audit::rfc3339_ms;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1970-01-02T00:00:00Z").expect("t"), 86_400_000);
        assert_eq!(parse_time("1970-01-02 00:00:00").expect("t"), 86_400_000);
        assert_eq!(parse_time("1970-01-02").expect("t"), 86_400_000);
        assert_eq!(parse_time("86400").expect("t"), 86_400_000);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
    }
}
