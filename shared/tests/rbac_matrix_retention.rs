//! The RBAC matrix of Harbor's tag retention API: every principal of
//! `support/rbac.rs` (anonymous, a non-member, the system admin, Harbor's
//! five project roles, a project robot, a system robot) × every retention
//! endpoint, on the public project `pub` and the private project `priv`,
//! with Basic credentials through the real API and the job queue run
//! in-process.
//!
//! The expected answers are written out here from Harbor: its
//! `retentionAPI` (`src/server/v2.0/handler/retention.go`: `Prepare`
//! requires a signed-in caller; each operation asks `RequireProjectAccess`
//! for `tag-retention` read, create, update, delete or list in the
//! policy's project) and its role policies
//! (`src/common/rbac/project/rbac_role.go`: project admins, maintainers
//! and developers hold every `tag-retention` action, guests and limited
//! guests none; the public-project policies in `rbac_util.go` hold none).
//! A refusal is 401 for an anonymous caller and 403 for everyone else,
//! members or not, public project or private. The robots here hold only
//! repository pull and push, so they are refused.
//!
//! Every cell that changes something checks its effect: a success changed
//! the policy or its executions, a refusal left them alone.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/rbac.rs"]
mod rbac;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Method;
use berth::http::AppState;
use berth::iam::KeyRing;
use berth::jobs::Jobs;
use berth::jobs::runs;
use berth::policy::retention::{
    RetentionPolicies, RetentionPolicy, RetentionRule, SCOPE_REPOSITORY,
};
use berth::policy::selector::Selector;
use berth::store::Queue;
use berth::store::local_queue::LocalQueue;
use common::{Resp, send_to};
use rbac::{EVERYONE, Who, World};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum Op {
    Metadatas,
    Create,
    Get,
    Update,
    Delete,
    Trigger,
    ListExecutions,
    Stop,
    ListTasks,
    TaskLog,
}

const OPS: [Op; 10] = [
    Op::Metadatas,
    Op::Create,
    Op::Get,
    Op::Update,
    Op::Delete,
    Op::Trigger,
    Op::ListExecutions,
    Op::Stop,
    Op::ListTasks,
    Op::TaskLog,
];

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Metadatas => "GET   metadatas",
            Op::Create => "POST  retentions",
            Op::Get => "GET   retention",
            Op::Update => "PUT   retention",
            Op::Delete => "DEL   retention",
            Op::Trigger => "POST  executions",
            Op::ListExecutions => "GET   executions",
            Op::Stop => "PATCH execution",
            Op::ListTasks => "GET   tasks",
            Op::TaskLog => "GET   task log",
        }
    }

    /// The `tag-retention` action Harbor's handler asks (None: only a
    /// signed-in caller) and the status of a success.
    fn needs(self) -> (Option<&'static str>, u16) {
        match self {
            Op::Metadatas => (None, 200),
            Op::Create => (Some("create"), 201),
            Op::Get | Op::TaskLog => (Some("read"), 200),
            Op::Update | Op::Stop => (Some("update"), 200),
            Op::Trigger => (Some("update"), 201),
            Op::Delete => (Some("delete"), 200),
            Op::ListExecutions | Op::ListTasks => (Some("list"), 200),
        }
    }
}

// ---- Harbor's model, written out ------------------------------------------

/// Harbor's `rolePoliciesMap` rows for `tag-retention`.
fn retention_actions(who: Who) -> &'static [&'static str] {
    match who {
        Who::ProjectAdmin | Who::Maintainer | Who::Developer => {
            &["create", "read", "update", "delete", "list", "operate"]
        }
        _ => &[],
    }
}

/// Harbor's answer to `who` doing `op` (the same in `pub` and `priv`:
/// no public-project policy names `tag-retention`).
fn expected(who: Who, op: Op) -> u16 {
    let (needs, ok) = op.needs();
    if who == Who::Anonymous {
        return 401;
    }
    match needs {
        None => ok,
        Some(_) if who == Who::SysAdmin => ok,
        Some(action) if retention_actions(who).contains(&action) => ok,
        Some(_) => 403,
    }
}

// ---- the world ------------------------------------------------------------

/// A project's policy and a finished execution of it (with one task).
#[derive(Clone, Copy)]
struct Seeded {
    policy: i64,
    done: i64,
    task: i64,
}

struct Matrix {
    w: World,
    router: Router,
    jobs: Jobs,
    queue: Arc<LocalQueue>,
    seeded: HashMap<&'static str, Seeded>,
    project_ids: HashMap<&'static str, i64>,
}

fn always(project_id: i64) -> RetentionPolicy {
    RetentionPolicy::new(
        project_id,
        vec![RetentionRule {
            id: 1,
            priority: 0,
            disabled: false,
            action: "retain".to_owned(),
            template: "always".to_owned(),
            params: Default::default(),
            tag_selectors: vec![Selector {
                extras: "{\"untagged\":true}".to_owned(),
                ..Selector::doublestar("matches", "**")
            }],
            scope_selectors: [(
                SCOPE_REPOSITORY.to_owned(),
                vec![Selector::doublestar("repoMatches", "**")],
            )]
            .into(),
        }],
    )
}

/// The same as the API's JSON body, with `latestPushedK` `k`.
fn latest_body(project_id: i64, k: i64) -> Value {
    json!({
        "algorithm": "or",
        "rules": [{
            "action": "retain", "template": "latestPushedK", "params": {"latestPushedK": k},
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**", "extras": "{\"untagged\":true}"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
        }],
        "trigger": {"kind": "Schedule", "settings": {"cron": ""}},
        "scope": {"level": "project", "ref": project_id},
    })
}

async fn matrix() -> Matrix {
    let w = rbac::world().await;
    let kv = w.app.registry.kv().clone();
    let keys = Arc::new(KeyRing::from_seeds(&[rbac::SEED]).unwrap());
    let iam = berth::wiring::iam(kv.clone(), Some(keys));
    let queue = Arc::new(LocalQueue::new(kv, "gc", Duration::from_secs(30)));
    let jobs = Jobs::new(w.app.registry.clone(), queue.clone());
    let router = w.app.sibling(|s| AppState {
        iam: Some(iam),
        jobs: Some(jobs.clone()),
        ..s
    });
    let mut project_ids = HashMap::new();
    for project in ["pub", "priv"] {
        w.push_image(&format!("{project}/app"), "v1", project).await;
        let id = w.iam.directory.project(project).await.unwrap().unwrap().id;
        project_ids.insert(project, id);
    }
    let mut m = Matrix {
        w,
        router,
        jobs,
        queue,
        seeded: HashMap::new(),
        project_ids,
    };
    for project in ["pub", "priv"] {
        m.ensure(project).await;
    }
    m
}

impl Matrix {
    fn policies(&self) -> RetentionPolicies {
        self.jobs.retention.policies()
    }

    async fn drain(&self) {
        loop {
            let got = self.queue.receive(10).await.unwrap();
            if got.is_empty() {
                return;
            }
            for r in got {
                self.jobs.gc.run(&r.job).await.unwrap();
                self.queue.ack(&r.receipt).await.unwrap();
            }
        }
    }

    /// `project` has a policy and a finished execution of it.
    async fn ensure(&mut self, project: &'static str) -> Seeded {
        let policies = self.policies();
        let policy = match policies.id_of_project(project).await.unwrap() {
            Some(id) => id,
            None => policies
                .create(project, always(self.project_ids[project]))
                .await
                .unwrap(),
        };
        if let Some(s) = self.seeded.get(project)
            && s.policy == policy
        {
            return *s;
        }
        let run = self
            .jobs
            .retention
            .start(policy, true, "Manual")
            .await
            .unwrap();
        self.drain().await;
        let h = self.jobs.retention.history();
        let run = h.runs().get(run.id).await.unwrap().unwrap();
        assert_eq!(run.status, runs::SUCCESS);
        let tasks = h.tasks(&run).await.unwrap();
        assert_eq!(tasks.len(), 1);
        // The task's id is its repository's id, as `/repositories` shows it.
        let listed = send_to(
            &self.router,
            Method::GET,
            &format!("/api/v2.0/retentions/{policy}/executions/{}/tasks", run.id),
            &[(
                "authorization",
                self.w.basic(Who::SysAdmin).unwrap().as_str(),
            )],
            Vec::new(),
        )
        .await;
        let s = Seeded {
            policy,
            done: run.id,
            task: listed.json()[0]["id"].as_i64().unwrap(),
        };
        self.seeded.insert(project, s);
        s
    }

    async fn call(&self, who: Who, method: Method, uri: &str, body: Value) -> Resp {
        self.w.api_on(&self.router, who, method, uri, body).await
    }

    /// Does `op` as `who` in `project`: the status, and what is wrong
    /// with the answer or its effect.
    async fn attempt(
        &mut self,
        who: Who,
        project: &'static str,
        op: Op,
        n: i64,
    ) -> (u16, Vec<String>) {
        let mut problems = Vec::new();
        let project_id = self.project_ids[project];
        if op == Op::Create {
            self.policies().delete_project(project).await.unwrap();
        }
        let s = if op == Op::Create {
            None
        } else {
            Some(self.ensure(project).await)
        };
        let base = s.map(|s| format!("/api/v2.0/retentions/{}", s.policy));
        let h = self.jobs.retention.history();
        let executions = |policy: i64| {
            let h = h.clone();
            async move { h.executions(policy, 0, 1).await.unwrap().1 }
        };
        let mut running = None;
        let before = match (op, s) {
            (Op::Trigger, Some(s)) => executions(s.policy).await,
            (Op::Stop, Some(s)) => {
                let run = self
                    .jobs
                    .retention
                    .start(s.policy, true, "Manual")
                    .await
                    .unwrap();
                running = Some(run.id);
                0
            }
            _ => 0,
        };
        let r = match op {
            Op::Metadatas => {
                self.call(
                    who,
                    Method::GET,
                    "/api/v2.0/retentions/metadatas",
                    json!({}),
                )
                .await
            }
            Op::Create => {
                let body = serde_json::to_value(always(project_id)).unwrap();
                let r = self
                    .call(who, Method::POST, "/api/v2.0/retentions", body)
                    .await;
                if r.status.as_u16() == 201
                    && !r.header("location").starts_with("/api/v2.0/retentions/")
                {
                    problems.push(format!("Location {:?}", r.header("location")));
                }
                r
            }
            Op::Get => {
                self.call(who, Method::GET, base.as_deref().unwrap(), json!({}))
                    .await
            }
            Op::Update => {
                self.call(
                    who,
                    Method::PUT,
                    base.as_deref().unwrap(),
                    latest_body(project_id, n),
                )
                .await
            }
            Op::Delete => {
                self.call(who, Method::DELETE, base.as_deref().unwrap(), json!({}))
                    .await
            }
            Op::Trigger => {
                let uri = format!("{}/executions", base.as_deref().unwrap());
                self.call(who, Method::POST, &uri, json!({"dry_run": true}))
                    .await
            }
            Op::ListExecutions => {
                let uri = format!("{}/executions", base.as_deref().unwrap());
                self.call(who, Method::GET, &uri, json!({})).await
            }
            Op::Stop => {
                let uri = format!(
                    "{}/executions/{}",
                    base.as_deref().unwrap(),
                    running.unwrap()
                );
                self.call(who, Method::PATCH, &uri, json!({"action": "stop"}))
                    .await
            }
            Op::ListTasks => {
                let s = s.unwrap();
                let uri = format!("{}/executions/{}/tasks", base.as_deref().unwrap(), s.done);
                self.call(who, Method::GET, &uri, json!({})).await
            }
            Op::TaskLog => {
                let s = s.unwrap();
                let uri = format!(
                    "{}/executions/{}/tasks/{}",
                    base.as_deref().unwrap(),
                    s.done,
                    s.task
                );
                self.call(who, Method::GET, &uri, json!({})).await
            }
        };
        let status = r.status.as_u16();
        let ok = status < 300;
        if !ok
            && r.json()["errors"][0]["code"]
                .as_str()
                .unwrap_or("")
                .is_empty()
        {
            problems.push(format!("refusal without Harbor's error body: {}", r.text()));
        }
        if ok {
            let shape_ok = match op {
                Op::Metadatas => r.json()["templates"]
                    .as_array()
                    .is_some_and(|t| t.len() == 5),
                Op::Get => r.json()["scope"]["ref"] == project_id,
                Op::ListExecutions => r.json().as_array().is_some_and(|a| !a.is_empty()),
                Op::ListTasks => r.json()[0]["repository"] == "app",
                Op::TaskLog => r.text().contains(&format!("Repository: {project}/app")),
                _ => true,
            };
            if !shape_ok {
                problems.push(format!("unexpected answer: {}", r.text()));
            }
        }
        let policies = self.policies();
        let changed = match op {
            Op::Create | Op::Delete => {
                let has = policies.id_of_project(project).await.unwrap().is_some();
                Some(if op == Op::Create { has } else { !has })
            }
            Op::Update => {
                let p = policies.of_project(project).await.unwrap().unwrap();
                Some(p.rules[0].params.get("latestPushedK") == Some(&json!(n)))
            }
            Op::Trigger => Some(executions(s.unwrap().policy).await > before),
            Op::Stop => {
                let run = h.runs().get(running.unwrap()).await.unwrap().unwrap();
                Some(run.status == runs::STOPPED)
            }
            _ => None,
        };
        problems.extend(rbac::effect_problem(status, ok, changed, "the policy was"));
        // Whatever a cell started runs to its end (a policy with a
        // running execution cannot be deleted).
        self.drain().await;
        (status, problems)
    }
}

#[tokio::test]
async fn every_principal_times_every_retention_endpoint_on_public_and_private_projects() {
    let mut m = matrix().await;
    let mut wrong = Vec::new();
    let mut tables = String::new();
    let mut counts: HashMap<u16, usize> = HashMap::new();
    let mut cells = 0;
    let mut n = 0;
    for project in ["pub", "priv"] {
        let mut got_table: HashMap<(Who, Op), u16> = HashMap::new();
        for who in EVERYONE {
            for op in OPS {
                n += 1;
                let (got, problems) = m.attempt(who, project, op, n).await;
                let want = expected(who, op);
                cells += 1;
                *counts.entry(want).or_default() += 1;
                if got != want {
                    wrong.push(format!(
                        "{who:?} {} in {project}: Berth {got}, Harbor {want}",
                        op.label()
                    ));
                }
                for p in problems {
                    wrong.push(format!("{who:?} {} in {project}: {p}", op.label()));
                }
                got_table.insert((who, op), got);
            }
        }
        let table = rbac::table(
            project,
            18,
            &OPS,
            Op::label,
            |who, op| got_table[&(who, op)],
            expected,
        );
        tables.push_str(&table);
        tables.push('\n');
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort();
    println!(
        "Retention API RBAC matrix ({cells} cells; expected: {counts:?}; \
         \"!\" = Berth differs from Harbor):\n\n{tables}"
    );
    assert!(wrong.is_empty(), "{}\n\n{tables}", wrong.join("\n"));
}
