//! The RBAC matrix of Harbor's garbage collection and quota API: every
//! principal of `support/rbac.rs` (anonymous, a non-member, the system
//! admin, Harbor's five project roles, a project robot, a system robot) ×
//! every endpoint of `/system/gc…` and `/quotas…`, and the quota in the
//! project summary of the public project `pub` and the private `priv`,
//! with Basic credentials through the real API (an in-process job queue
//! behind it).
//!
//! The expected answers are written out here from Harbor's model, not
//! derived from Berth's table: `gcAPI` and `quotaAPI` check the system
//! `garbage-collection` and `quota` permissions (`RequireSystemAccess`),
//! which only system admins hold here (the robots carry repository pull
//! and push); `GetProjectSummary` adds the quota when the caller has
//! project `quota` `read`, which every role has (`rbac_role.go`) and the
//! public-project policies (`rbac_util.go`) do not give. A refusal is 401
//! for an anonymous caller, 403 otherwise (system endpoints), and for the
//! summary as in `rbac_matrix_artifacts.rs`.
//!
//! Each cell checks its effect: a run started, stopped, a schedule or a
//! limit set by a success; nothing changed by a refusal.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/rbac.rs"]
mod rbac;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use berth::http::AppState;
use berth::jobs::Jobs;
use berth::jobs::runs;
use berth::jobs::schedule::Schedules;
use berth::store::local_queue::LocalQueue;
use common::{Resp, send_to};
use rbac::{EVERYONE, Who, World};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum Op {
    GcHistory,
    GcGet,
    GcLog,
    GcStop,
    GcScheduleGet,
    GcRunNow,
    GcScheduleSet,
    QuotaList,
    QuotaGet,
    QuotaSet,
    SummaryQuota,
}

const OPS: [Op; 11] = [
    Op::GcHistory,
    Op::GcGet,
    Op::GcLog,
    Op::GcStop,
    Op::GcScheduleGet,
    Op::GcRunNow,
    Op::GcScheduleSet,
    Op::QuotaList,
    Op::QuotaGet,
    Op::QuotaSet,
    Op::SummaryQuota,
];

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::GcHistory => "GET  gc",
            Op::GcGet => "GET  gc/{id}",
            Op::GcLog => "GET  gc/{id}/log",
            Op::GcStop => "PUT  gc/{id} (stop)",
            Op::GcScheduleGet => "GET  gc/schedule",
            Op::GcRunNow => "POST gc/schedule Manual",
            Op::GcScheduleSet => "PUT  gc/schedule Custom",
            Op::QuotaList => "GET  quotas",
            Op::QuotaGet => "GET  quotas/{id}",
            Op::QuotaSet => "PUT  quotas/{id}",
            Op::SummaryQuota => "GET  summary .quota",
        }
    }
}

/// A status, or for a 200 summary whether it shows the quota.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cell {
    Status(u16),
    Quota(bool),
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Status(s) => write!(f, "{s}"),
            Cell::Quota(true) => write!(f, "quota"),
            Cell::Quota(false) => write!(f, "-"),
        }
    }
}

// ---- Harbor's model, written out ------------------------------------------

/// Harbor's answer to `who` doing `op` (in `pub` or `priv` for the
/// summary; the other operations are system-wide and answer the same in
/// both).
fn expected(who: Who, public: bool, op: Op) -> Cell {
    let system = |ok: u16| {
        Cell::Status(match who {
            Who::SysAdmin => ok,
            Who::Anonymous => 401,
            _ => 403,
        })
    };
    match op {
        Op::GcRunNow => system(201),
        Op::GcHistory
        | Op::GcGet
        | Op::GcLog
        | Op::GcStop
        | Op::GcScheduleGet
        | Op::GcScheduleSet
        | Op::QuotaList
        | Op::QuotaGet
        | Op::QuotaSet => system(200),
        Op::SummaryQuota => {
            // GetProjectSummary: RequireProjectAccess(read) on the project:
            // the public-project policies, a role, or the admin. Robots
            // here hold repository pull/push only.
            let reads = who == Who::SysAdmin || who.is_member() || public;
            if reads {
                // The quota: project quota read (every role; not the
                // public-project policies).
                Cell::Quota(who == Who::SysAdmin || who.is_member())
            } else {
                Cell::Status(match who {
                    Who::Anonymous => 401,
                    // A non-member does not see `priv`.
                    Who::NonMember => 404,
                    _ => 403,
                })
            }
        }
    }
}

// ---- the world --------------------------------------------------------------

struct Matrix {
    w: World,
    /// The API with a job queue behind it.
    router: Router,
    jobs: Jobs,
    ids: HashMap<&'static str, i64>,
}

async fn matrix() -> Matrix {
    let w = rbac::world().await;
    let kv = w.app.registry.kv().clone();
    let queue = LocalQueue::new(kv, "gc", Duration::from_secs(30));
    let jobs = Jobs::new(w.app.registry.clone(), Arc::new(queue));
    let (iam, with_jobs) = (w.iam.clone(), jobs.clone());
    let router = w.app.sibling(move |s| AppState {
        iam: Some(iam),
        jobs: Some(with_jobs),
        ..s
    });
    let mut ids = HashMap::new();
    for project in ["pub", "priv"] {
        w.push_image(&format!("{project}/base"), "v1", project)
            .await;
        let id = w.iam.directory.project(project).await.unwrap().unwrap().id;
        ids.insert(project, id);
    }
    Matrix {
        w,
        router,
        jobs,
        ids,
    }
}

/// A cron and a limit of the principal's own, to see whose change landed.
fn own_minute(who: Who) -> usize {
    EVERYONE.iter().position(|w| *w == who).unwrap() + 1
}

impl Matrix {
    async fn api(&self, who: Who, method: Method, uri: &str, body: Value) -> Resp {
        self.w.api_on(&self.router, who, method, uri, body).await
    }

    /// The newest run, started (and left running) if there is none or it
    /// finished.
    async fn running(&self) -> i64 {
        let (page, _) = self.jobs.gc.runs().page(None, 1).await.unwrap();
        match page.first() {
            Some(r) if !r.finished() => r.id,
            _ => {
                self.jobs
                    .gc
                    .start("Manual", Default::default())
                    .await
                    .unwrap()
                    .id
            }
        }
    }

    /// No run in progress.
    async fn idle(&self) {
        let runs = self.jobs.gc.runs();
        if let Some(r) = runs.page(None, 1).await.unwrap().0.first() {
            runs.set_status(r.id, &[runs::PENDING, runs::RUNNING], runs::STOPPED)
                .await
                .unwrap();
        }
    }

    async fn attempt(&self, who: Who, project: &str, op: Op) -> (Cell, Vec<String>) {
        let gc = "/api/v2.0/system/gc";
        let schedule = "/api/v2.0/system/gc/schedule";
        let quota = format!("/api/v2.0/quotas/{}", self.ids["priv"]);
        let minute = own_minute(who);
        let cron = format!("0 {minute} 3 * * *");
        let limit = 1_000_000 + minute as i64;
        let mut problems = Vec::new();
        let runs = self.jobs.gc.runs();
        let before = runs.count().await.unwrap();
        let get = |uri: String| async move { self.api(who, Method::GET, &uri, json!({})).await };
        let mut target = 0;
        let r = match op {
            Op::GcHistory => get(gc.to_owned()).await,
            Op::GcGet => get(format!("{gc}/{}", self.running().await)).await,
            Op::GcLog => get(format!("{gc}/{}/log", self.running().await)).await,
            Op::GcStop => {
                target = self.running().await;
                self.api(who, Method::PUT, &format!("{gc}/{target}"), json!({}))
                    .await
            }
            Op::GcScheduleGet => get(schedule.to_owned()).await,
            Op::GcRunNow => {
                self.idle().await;
                let body = json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": true}});
                self.api(who, Method::POST, schedule, body).await
            }
            Op::GcScheduleSet => {
                let body = json!({"schedule": {"type": "Custom", "cron": cron}});
                self.api(who, Method::PUT, schedule, body).await
            }
            Op::QuotaList => get("/api/v2.0/quotas".to_owned()).await,
            Op::QuotaGet => get(quota.clone()).await,
            Op::QuotaSet => {
                let body = json!({"hard": {"storage": limit}});
                self.api(who, Method::PUT, &quota, body).await
            }
            Op::SummaryQuota => get(format!("/api/v2.0/projects/{project}/summary")).await,
        };
        let status = r.status.as_u16();
        let ok = r.status.is_success();
        problems.extend(rbac::status_problem(&r));
        let cell = match op {
            Op::SummaryQuota if ok => {
                let q = &r.json()["quota"];
                let whole = q["hard"]["storage"].is_i64() && q["used"]["storage"].is_i64();
                if !q.is_null() && !whole {
                    problems.push(format!("a quota without hard and used storage: {q}"));
                }
                Cell::Quota(!q.is_null())
            }
            _ => Cell::Status(status),
        };
        // The effect, or its absence.
        let after = runs.count().await.unwrap();
        let changed: Option<bool> = match op {
            Op::GcRunNow => Some(after == before + 1),
            Op::GcStop => {
                let run = runs.get(target).await.unwrap().unwrap();
                Some(run.status == runs::STOPPED)
            }
            Op::GcScheduleSet => {
                let s = Schedules::new(self.w.app.registry.kv().clone())
                    .get(berth::jobs::gc::KIND)
                    .await
                    .unwrap();
                Some(s.is_some_and(|s| s.cron == cron))
            }
            Op::QuotaSet => {
                let u = self.w.app.registry.usage("priv").await.unwrap();
                Some(u.limit == Some(limit))
            }
            _ => {
                if after != before && !matches!(op, Op::GcGet | Op::GcLog) {
                    problems.push("a run started".to_owned());
                }
                None
            }
        };
        problems.extend(rbac::effect_problem(status, ok, changed, "the object was"));
        (cell, problems)
    }
}

#[tokio::test]
async fn every_principal_times_every_gc_and_quota_endpoint() {
    let m = matrix().await;
    let mut wrong = Vec::new();
    let mut tables = String::new();
    let mut cells = 0;
    for (project, public) in [("pub", true), ("priv", false)] {
        let mut got_table: HashMap<(Who, Op), Cell> = HashMap::new();
        for who in EVERYONE {
            for op in OPS {
                let (got, problems) = m.attempt(who, project, op).await;
                let want = expected(who, public, op);
                cells += 1;
                if got != want {
                    wrong.push(format!(
                        "{who:?} {} ({project}): Berth {got}, Harbor {want}",
                        op.label()
                    ));
                }
                for p in problems {
                    wrong.push(format!("{who:?} {} ({project}): {p}", op.label()));
                }
                got_table.insert((who, op), got);
            }
        }
        let title = format!("{project} ({})", if public { "public" } else { "private" });
        let table = rbac::table(
            &title,
            26,
            &OPS,
            Op::label,
            |who, op| got_table[&(who, op)],
            |who, op| expected(who, public, op),
        );
        tables.push_str(&table);
        tables.push('\n');
    }
    println!(
        "GC and quota API RBAC matrix ({cells} cells; \"!\" = Berth differs from Harbor):\n\n{tables}"
    );
    assert!(wrong.is_empty(), "{}\n\n{tables}", wrong.join("\n"));
}

/// The matrix's world serves these endpoints only with its job queue: the
/// plain app (no queue) refuses to start a run, with Harbor's error body.
#[tokio::test]
async fn the_app_without_a_queue_answers_503_to_admins_only() {
    let m = matrix().await;
    let body = serde_json::to_vec(&json!({"schedule": {"type": "Manual"}})).unwrap();
    let admin = m.w.basic(Who::SysAdmin).unwrap();
    let r = send_to(
        &m.w.app.router,
        Method::POST,
        "/api/v2.0/system/gc/schedule",
        &[
            ("authorization", admin.as_str()),
            ("content-type", "application/json"),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "SERVICE_UNAVAILABLE");
    let dev = m.w.basic(Who::Developer).unwrap();
    let r = send_to(
        &m.w.app.router,
        Method::POST,
        "/api/v2.0/system/gc/schedule",
        &[
            ("authorization", dev.as_str()),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}
