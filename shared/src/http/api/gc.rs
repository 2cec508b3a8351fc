//! `/api/v2.0/system/gc…`: Harbor's garbage collection API over
//! [`crate::jobs::gc`] — the history of runs (`GCHistory`), one run, its
//! log, stopping it, and the schedule (`POST`/`PUT /system/gc/schedule`
//! with type `Manual` starts a run now).
//!
//! As Harbor's `gcAPI`, every operation needs the system
//! `garbage-collection` permission: system admins only here (Berth's robot
//! permissions have no system `garbage-collection` resource).
//!
//! Reading runs, logs and the schedule, stopping a run and setting the
//! schedule read and write the job store only; starting a run needs the
//! job queue, and a process without one answers that with `503`.
//!
//! A run's object is Harbor's `GCHistory` plus one Berth extension,
//! `progress` (`{phase, tasks, done}`): a run is fanned out over queue
//! tasks whose number grows as repositories are listed, and a client
//! polling a run (`berth gc run --wait`) shows `done` of `tasks`. What the
//! run removed (and, dry, would remove) is in its log's last line.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde_json::{Map, Value, json};

use super::query::Params;
use super::{ApiError, ApiResult, Caller, P, Shared, created, json_body, now_secs, rfc3339};
use crate::jobs::gc::{self as jobs_gc, GcParams, StartError};
use crate::jobs::runs::{self, Run, Runs};
use crate::jobs::schedule::{Schedule, ScheduleError, Schedules};

/// Harbor's `job_name` of a collection (`gc.GCVendorType`).
const JOB_NAME: &str = "GARBAGE_COLLECTION";
/// The audit log's resource type (Harbor's RBAC resource).
const AUDIT_TYPE: &str = "garbage-collection";
/// Log lines answered at most for one run.
const MAX_LOG_LINES: usize = 100_000;

/// The routes this module serves.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    vec![
        ("/api/v2.0/system/gc", get(history)),
        (
            "/api/v2.0/system/gc/schedule",
            get(get_schedule).post(create_schedule).put(update_schedule),
        ),
        ("/api/v2.0/system/gc/{gc_id}", get(get_one).put(stop)),
        ("/api/v2.0/system/gc/{gc_id}/log", get(log)),
    ]
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Invalid(m) => ApiError::bad_request(m),
            ScheduleError::Store(k) => k.into(),
        }
    }
}

/// The runs of collections (read from the job store; no queue needed).
fn runs(ctx: &Shared) -> Runs {
    Runs::new(ctx.registry.kv().clone(), jobs_gc::KIND)
}

fn schedules(ctx: &Shared) -> Schedules {
    Schedules::new(ctx.registry.kv().clone())
}

/// `503` with Harbor's error body: this process sends no jobs. (Built
/// here because [`ApiError`] hides the message of every 5xx.)
fn no_queue() -> Response {
    let body = json!({"errors": [{
        "code": "SERVICE_UNAVAILABLE",
        "message": "no job queue is configured: this server cannot start a garbage collection",
    }]});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// What a run was asked (Harbor's `job_parameters`, a JSON string).
fn parameters_string(params: &Value) -> String {
    let asked: GcParams = serde_json::from_value(params.clone()).unwrap_or_default();
    serde_json::to_string(&asked).unwrap_or_else(|_| "{}".to_owned())
}

/// Harbor's `GCHistory` of a run, with Berth's `progress`.
fn run_json(run: &Run) -> Value {
    // Harbor: `job_kind` is the execution's trigger (MANUAL, SCHEDULE),
    // the schedule's type the same word capitalised.
    let kind = run.trigger.to_ascii_uppercase();
    json!({
        "id": run.id,
        "job_name": JOB_NAME,
        "job_kind": kind,
        "job_parameters": parameters_string(&run.params),
        "schedule": {"type": capitalised(&run.trigger), "cron": ""},
        "job_status": run.status,
        "deleted": false,
        "creation_time": rfc3339(run.created),
        "update_time": rfc3339(run.updated),
        "progress": {
            "phase": run.phase,
            "tasks": run.tasks,
            "done": (run.tasks - run.pending).max(0),
        },
    })
}

/// `Manual` from `MANUAL` or `manual`.
fn capitalised(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Harbor's `GCHistory` of the schedule (`model.GCSchedule`: the cron as
/// `job_kind`, the parameters as a JSON string); no schedule reads as
/// type `None`.
fn schedule_json(s: Option<&Schedule>) -> Value {
    let Some(s) = s else {
        return json!({
            "job_name": "",
            "job_kind": "",
            "job_parameters": parameters_string(&Value::Null),
            "schedule": {"type": "None", "cron": ""},
            "deleted": false,
        });
    };
    let mut schedule = json!({"type": s.kind, "cron": s.cron});
    if let Some(next) = s.next {
        schedule["next_scheduled_time"] = rfc3339(next).into();
    }
    json!({
        "job_name": "",
        "job_kind": s.cron,
        "job_parameters": parameters_string(&s.params),
        "schedule": schedule,
        "deleted": false,
        "creation_time": rfc3339(s.created),
        "update_time": rfc3339(s.updated),
    })
}

/// `GET /system/gc`: runs, newest first, paged as Harbor's lists.
pub(crate) async fn history(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let params = Params::of(&uri);
    let paging = params.paging()?;
    if let Some((k, _)) = params.q()?.first() {
        return Err(ApiError::bad_request(format!(
            "cannot filter the garbage collection history by {k:?}"
        )));
    }
    // Run ids are consecutive and runs are never removed: newest first,
    // page n starts after id `count - skip + 1`.
    params.sort(&["-creation_time", "-id", "-update_time"])?;
    let runs = runs(&ctx);
    let count = usize::try_from(runs.count().await?).unwrap_or(0);
    let skip = paging.skip();
    let items: Vec<Value> = if skip >= count {
        Vec::new()
    } else {
        let after = i64::try_from(count - skip + 1).unwrap_or(i64::MAX);
        let (page, _) = runs.page(Some(after), paging.size).await?;
        page.iter().map(run_json).collect()
    };
    Ok(super::query::page_response(&uri, paging, count, &items))
}

async fn run_of(ctx: &Shared, id: i64) -> ApiResult<Run> {
    runs(ctx)
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("garbage collection {id} not found")))
}

/// `GET /system/gc/{gc_id}`.
pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let run = run_of(&ctx, id).await?;
    Ok(axum::Json(run_json(&run)).into_response())
}

/// Bytes as people read them (`1.5 MiB`).
fn human(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v.abs() >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The last line of a run's log: its status, counts and freed bytes.
fn summary(run: &Run) -> String {
    let dry = run.dry_run;
    // A dry run's link bytes are bytes the repositories would stop
    // holding; as the collector's own final line, they count as freed.
    let freed = run.count("freed") + if dry { run.count("link_bytes") } else { 0 };
    let (removed, freed_verb) = if dry {
        ("would remove", "would free")
    } else {
        ("removed", "freed")
    };
    format!(
        "summary: status {status}{dry}; {removed} {artifacts} untagged artifacts, {links} blob links, \
         {blobs} blobs and {uploads} expired uploads; examined {repos} repositories, \
         {links_examined} blob links, {blobs_examined} blobs; {freed_verb} {freed} bytes ({human}); \
         tasks {done}/{tasks}",
        status = run.status,
        dry = if dry { " (dry run)" } else { "" },
        artifacts = run.count("artifacts"),
        links = run.count("links"),
        blobs = run.count("blobs"),
        uploads = run.count("uploads"),
        repos = run.count("repositories"),
        links_examined = run.count("links_examined"),
        blobs_examined = run.count("blobs_examined"),
        human = human(freed),
        done = (run.tasks - run.pending).max(0),
        tasks = run.tasks,
    )
}

/// `GET /system/gc/{gc_id}/log`: `text/plain`, one line per entry
/// (`<RFC 3339 time> [INFO] <text>`), then the summary line.
pub(crate) async fn log(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let run = run_of(&ctx, id).await?;
    let lines = runs(&ctx).logs(id, MAX_LOG_LINES).await?;
    let mut text = String::new();
    // The summary is as of the run's last change, or of its last line.
    let mut last_ms = run.updated.saturating_mul(1000);
    for (at, line) in &lines {
        last_ms = last_ms.max(*at);
        // One entry, one line, whatever a repository name held.
        let line = line.replace(['\r', '\n'], " ");
        text.push_str(&format!(
            "{} [INFO] {line}\n",
            crate::iam::audit::rfc3339_ms(*at)
        ));
    }
    text.push_str(&format!(
        "{} [INFO] {}\n",
        crate::iam::audit::rfc3339_ms(last_ms),
        summary(&run)
    ));
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

/// `PUT /system/gc/{gc_id}` (Harbor 2.8+): stops a run that is pending
/// or running; a finished run stays as it is. Tasks already taken finish;
/// no further task starts.
pub(crate) async fn stop(
    State(ctx): State<Shared>,
    caller: Caller,
    P(id): P<i64>,
    _body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let runs = runs(&ctx);
    run_of(&ctx, id).await?;
    if runs
        .set_status(id, &[runs::PENDING, runs::RUNNING], runs::STOPPED)
        .await?
    {
        runs.log(id, &format!("stopped by {}", caller.name())).await;
        ctx.audit(&caller, &format!("gc/{id}"), AUDIT_TYPE, "stop", None)
            .await;
    }
    Ok(StatusCode::OK.into_response())
}

/// `GET /system/gc/schedule`.
pub(crate) async fn get_schedule(State(ctx): State<Shared>, caller: Caller) -> ApiResult<Response> {
    caller.require_admin()?;
    let s = schedules(&ctx).get(jobs_gc::KIND).await?;
    Ok(axum::Json(schedule_json(s.as_ref())).into_response())
}

/// Harbor's `Schedule` as a request carries it.
struct ScheduleReq {
    kind: String,
    cron: String,
    params: GcParams,
}

/// Reads `{schedule: {type, cron}, parameters: {delete_untagged, dry_run,
/// workers}}`; other parameters are ignored, as Harbor keeps them unused.
fn schedule_req(body: &[u8]) -> ApiResult<ScheduleReq> {
    let v: Value = json_body(body)?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("the body must be a Schedule object"))?;
    let schedule = obj
        .get("schedule")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad_request("schedule is required: {\"type\": …, \"cron\": …}"))?;
    let text = |m: &Map<String, Value>, k: &str| -> ApiResult<String> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ApiError::bad_request(format!(
                "schedule.{k} must be a string"
            ))),
        }
    };
    let kind = text(schedule, "type")?;
    if kind.is_empty() {
        return Err(ApiError::bad_request(
            "schedule.type is required: Manual, None, Hourly, Daily, Weekly or Custom",
        ));
    }
    let cron = text(schedule, "cron")?;
    let mut params = GcParams::default();
    match obj.get("parameters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => {
            let flag = |k: &str| -> ApiResult<bool> {
                match p.get(k) {
                    None | Some(Value::Null) => Ok(false),
                    Some(Value::Bool(b)) => Ok(*b),
                    Some(_) => Err(ApiError::bad_request(format!(
                        "parameters.{k} must be true or false"
                    ))),
                }
            };
            params.delete_untagged = flag("delete_untagged")?;
            params.dry_run = flag("dry_run")?;
            params.workers = match p.get("workers") {
                None | Some(Value::Null) => None,
                Some(w) => Some(w.as_i64().filter(|w| *w >= 1).ok_or_else(|| {
                    ApiError::bad_request("parameters.workers must be a positive number")
                })?),
            };
        }
        Some(_) => return Err(ApiError::bad_request("parameters must be an object")),
    }
    Ok(ScheduleReq { kind, cron, params })
}

/// What a schedule request did.
enum Kicked {
    Started(Run),
    Scheduled,
}

/// Harbor's `kick`: `Manual` starts a run now; the other types set the
/// schedule (`None` clears it).
async fn kick(ctx: &Shared, caller: &Caller, req: ScheduleReq) -> Result<Kicked, Response> {
    if req.kind == "Manual" {
        let Some(jobs) = &ctx.jobs else {
            return Err(no_queue());
        };
        let run = match jobs.gc.start("Manual", req.params).await {
            Ok(run) => run,
            Err(StartError::Running(id)) => {
                return Err(ApiError::conflict(format!(
                    "a garbage collection is already running (id {id}); stop it or wait"
                ))
                .into_response());
            }
            Err(StartError::Store(e)) => return Err(ApiError::from(e).into_response()),
            Err(e @ StartError::Queue(_)) => {
                return Err(ApiError::internal(e.to_string()).into_response());
            }
        };
        ctx.audit(
            caller,
            &format!("gc/{}", run.id),
            AUDIT_TYPE,
            "create",
            None,
        )
        .await;
        return Ok(Kicked::Started(run));
    }
    if req.kind == "Custom" && req.cron.trim().is_empty() {
        // (Harbor's words.)
        return Err(ApiError::bad_request("empty cron string for gc schedule").into_response());
    }
    let params = serde_json::to_value(req.params).unwrap_or_default();
    schedules(ctx)
        .set(jobs_gc::KIND, &req.kind, &req.cron, params, now_secs())
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    ctx.audit(caller, "gc-schedule", AUDIT_TYPE, "update", None)
        .await;
    Ok(Kicked::Scheduled)
}

/// `POST /system/gc/schedule`: `201`, with the new run's `Location` when
/// it started one.
pub(crate) async fn create_schedule(
    State(ctx): State<Shared>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req = schedule_req(&body)?;
    Ok(match kick(&ctx, &caller, req).await {
        Ok(Kicked::Started(run)) => created(&format!("/api/v2.0/system/gc/{}", run.id)),
        Ok(Kicked::Scheduled) => created("/api/v2.0/system/gc/schedule"),
        Err(resp) => resp,
    })
}

/// `PUT /system/gc/schedule`: as `POST`, answered `200`.
pub(crate) async fn update_schedule(
    State(ctx): State<Shared>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req = schedule_req(&body)?;
    Ok(match kick(&ctx, &caller, req).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(resp) => resp,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn run(status: &str, dry: bool) -> Run {
        Run {
            id: 3,
            kind: "gc".into(),
            status: status.into(),
            trigger: "Manual".into(),
            params: json!({"delete_untagged": true, "dry_run": dry, "started": 5}),
            dry_run: dry,
            created: 0,
            updated: 60,
            tasks: 40,
            pending: 28,
            phase: "repos".into(),
            counts: BTreeMap::from([
                ("artifacts".to_owned(), 2),
                ("blobs".to_owned(), 3),
                ("freed".to_owned(), 3 * 1024 * 1024),
                ("link_bytes".to_owned(), 1024),
            ]),
        }
    }

    #[test]
    fn runs_show_as_harbor_history() {
        let v = run_json(&run("Running", false));
        assert_eq!(v["job_name"], "GARBAGE_COLLECTION");
        assert_eq!(v["job_kind"], "MANUAL");
        assert_eq!(v["schedule"]["type"], "Manual");
        assert_eq!(v["job_status"], "Running");
        assert_eq!(v["update_time"], "1970-01-01T00:01:00Z");
        // A JSON string without the run's clock.
        let p: Value = serde_json::from_str(v["job_parameters"].as_str().unwrap_or_default())
            .expect("parameters are JSON");
        assert_eq!(p, json!({"delete_untagged": true, "dry_run": false}));
        assert_eq!(
            v["progress"],
            json!({"phase": "repos", "tasks": 40, "done": 12})
        );
    }

    #[test]
    fn summaries_say_what_was_freed() {
        let s = summary(&run("Success", false));
        assert!(s.contains("removed 2 untagged artifacts"), "{s}");
        assert!(s.contains("freed 3145728 bytes (3.0 MiB)"), "{s}");
        let s = summary(&run("Success", true));
        assert!(
            s.contains("(dry run)") && s.contains("would free 3146752 bytes"),
            "{s}"
        );
        assert_eq!(human(10), "10 B");
    }

    #[test]
    fn schedule_bodies_parse_as_harbor_sends_them() {
        let r = schedule_req(
            br#"{"schedule":{"type":"Custom","cron":"0 0 1 * * *"},"parameters":{"delete_untagged":true,"workers":3,"extra":"x"}}"#,
        )
        .expect("valid");
        assert_eq!(
            (r.kind.as_str(), r.cron.as_str()),
            ("Custom", "0 0 1 * * *")
        );
        assert!(r.params.delete_untagged && !r.params.dry_run);
        assert_eq!(r.params.workers, Some(3));
        for bad in [
            &br#"{}"#[..],
            br#"{"schedule":{}}"#,
            br#"{"schedule":{"type":1}}"#,
            br#"{"schedule":{"type":"Manual"},"parameters":{"dry_run":"yes"}}"#,
            br#"{"schedule":{"type":"Manual"},"parameters":{"workers":0}}"#,
            br#"[]"#,
        ] {
            assert!(
                schedule_req(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn an_unset_schedule_reads_as_none() {
        let v = schedule_json(None);
        assert_eq!(v["schedule"]["type"], "None");
        let s = Schedule {
            kind: "Daily".into(),
            cron: "0 0 0 * * *".into(),
            params: json!({"dry_run": true}),
            next: Some(86_400),
            created: 0,
            updated: 0,
        };
        let v = schedule_json(Some(&s));
        assert_eq!(v["schedule"]["next_scheduled_time"], "1970-01-02T00:00:00Z");
        assert_eq!(v["job_kind"], "0 0 0 * * *");
        assert_eq!(
            v["job_parameters"],
            r#"{"delete_untagged":false,"dry_run":true}"#
        );
    }
}
