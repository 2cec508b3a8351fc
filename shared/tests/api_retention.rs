//! Harbor's tag retention (`/api/v2.0/retentions…`) driven with `oneshot`
//! over the embedded stores, with the job queue run in-process: policies
//! and their validation, dry runs and the real runs that follow them
//! (deleting exactly what the dry run said), immutable tags, untagged
//! artifacts, pull times, redelivered task messages, stopping, schedules
//! and project deletion.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use berth::http::api::api_router_with;
use berth::jobs::Jobs;
use berth::jobs::retention::{TaskReport, outcome};
use berth::oci::{Digest, RepoName};
use berth::policy::ImmutableRule;
use berth::policy::immutable::ImmutableRules;
use berth::policy::retention::RetentionPolicies;
use berth::policy::selector::Selector;
use berth::registry::Registry;
use berth::registry::catalog::PullCount;
use berth::store::local_queue::LocalQueue;
use berth::store::{Job, Kv, Queue};
use serde_json::{Value, json};

#[path = "support/api.rs"]
mod api_support;
mod common;

use api_support::{ADMIN, ANON, Client, DEV, GUEST, now};

const DAY: i64 = 86_400;

struct Api {
    router: Router,
    registry: Registry,
    kv: Arc<dyn Kv>,
    jobs: Jobs,
    queue: Arc<LocalQueue>,
    _dir: tempfile::TempDir,
}

/// A rule in Harbor's JSON: `template` with `param`, tags `pattern`
/// (`matches`, the untagged box as given), repositories `repos`.
fn rule(template: &str, param: Option<i64>, pattern: &str, untagged: bool, repos: &str) -> Value {
    let params = match param {
        Some(p) => json!({ template: p }),
        None => json!({}),
    };
    json!({
        "disabled": false,
        "action": "retain",
        "template": template,
        "params": params,
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": pattern,
                           "extras": format!("{{\"untagged\":{untagged}}}")}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": repos}]},
    })
}

fn policy(project_id: i64, rules: Vec<Value>, cron: &str) -> Value {
    json!({
        "algorithm": "or",
        "rules": rules,
        "trigger": {"kind": "Schedule", "settings": {"cron": cron}},
        "scope": {"level": "project", "ref": project_id},
    })
}

impl Client for Api {
    fn router(&self) -> &Router {
        &self.router
    }
}

impl Api {
    async fn new() -> Api {
        Self::build(true).await
    }

    async fn build(with_jobs: bool) -> Api {
        let p = api_support::parts(
            "a retention test seed that is long enough 0123",
            Default::default(),
        )
        .await;
        let queue = Arc::new(LocalQueue::new(p.kv.clone(), "gc", Duration::from_secs(30)));
        let jobs = Jobs::new(p.registry.clone(), queue.clone());
        let router = api_router_with(
            p.iam.clone(),
            p.registry.clone(),
            None,
            with_jobs.then(|| jobs.clone()),
        );
        Api {
            router,
            registry: p.registry,
            kv: p.kv,
            jobs,
            queue,
            _dir: p.dir,
        }
    }

    /// Creates a policy; returns its id.
    async fn create_policy(&self, body: Value) -> i64 {
        let r = self.post("/api/v2.0/retentions", ADMIN, body).await;
        r.ok(StatusCode::CREATED);
        let id = r.location_id();
        assert_eq!(r.header("location"), format!("/api/v2.0/retentions/{id}"));
        id
    }

    /// Starts an execution; returns its id.
    async fn execute(&self, policy: i64, dry_run: bool) -> i64 {
        let path = format!("/api/v2.0/retentions/{policy}/executions");
        let r = self.post(&path, ADMIN, json!({"dry_run": dry_run})).await;
        r.ok(StatusCode::CREATED);
        let id = r.location_id();
        assert_eq!(r.header("location"), format!("{path}/{id}"));
        id
    }

    /// Runs every queued job (and the jobs they queue) to the end; the
    /// jobs run, in order.
    async fn drain(&self) -> Vec<Job> {
        let mut done = Vec::new();
        loop {
            let got = self.queue.receive(10).await.unwrap();
            if got.is_empty() {
                return done;
            }
            for r in got {
                self.jobs.run(&r.job).await.unwrap();
                self.queue.ack(&r.receipt).await.unwrap();
                done.push(r.job);
            }
        }
    }

    /// Pushes a one-layer image to `repo` under `reference` (a tag, or
    /// `@` for no tag); returns its digest.
    async fn push(&self, repo: &str, reference: &str, seed: &str) -> Digest {
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
        let layer = format!("layer of {seed}");
        api_support::push_image(&self.registry, repo, reference, &config, &layer)
            .await
            .0
    }

    /// Whether `repo` still holds the manifest `digest`.
    async fn holds(&self, repo: &str, digest: &Digest) -> bool {
        let name: RepoName = repo.parse().unwrap();
        self.registry
            .artifact_records(&name, std::slice::from_ref(digest))
            .await
            .unwrap()[0]
            .is_some()
    }

    /// The report of execution `eid`'s task on `repo`.
    async fn report(&self, eid: i64, repo: &str) -> TaskReport {
        self.jobs
            .retention
            .history()
            .report(eid, repo)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no report of {repo} in execution {eid}"))
    }

    async fn execution(&self, policy: i64, eid: i64) -> Value {
        let r = self
            .get(
                &format!("/api/v2.0/retentions/{policy}/executions?page_size=100"),
                ADMIN,
            )
            .await;
        r.ok(StatusCode::OK);
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == eid)
            .cloned()
            .unwrap_or_else(|| panic!("execution {eid} not listed: {}", r.text()))
    }
}

/// The digests of a report's entries whose outcome is `what`.
fn with_outcome(r: &TaskReport, what: &str) -> BTreeSet<String> {
    r.entries
        .iter()
        .filter(|e| e.outcome == what)
        .map(|e| e.digest.clone())
        .collect()
}

fn set(ds: &[&Digest]) -> BTreeSet<String> {
    ds.iter().map(|d| d.to_string()).collect()
}

#[tokio::test]
async fn policies_are_harbors_and_validated() {
    let api = Api::new().await;
    let team = api.project("team", false, ADMIN).await;
    let other = api.project("other", false, ADMIN).await;
    for u in ["dev", "guest"] {
        api.user(u).await;
    }
    api.member("team", "dev", 2).await;
    api.member("team", "guest", 3).await;

    // The templates.
    api.get("/api/v2.0/retentions/metadatas", ANON)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let r = api.get("/api/v2.0/retentions/metadatas", GUEST).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json()["templates"].as_array().unwrap().len(), 5);

    // A developer may create one (Harbor's developers hold tag-retention).
    let body = policy(
        team,
        vec![rule("latestPushedK", Some(3), "**", true, "**")],
        "0 0 0 * * *",
    );
    api.post("/api/v2.0/retentions", GUEST, body.clone())
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.post("/api/v2.0/retentions", ANON, body.clone())
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let r = api.post("/api/v2.0/retentions", DEV, body.clone()).await;
    r.ok(StatusCode::CREATED);
    let id = r.location_id();
    // The project shows it as Harbor's metadata `retention_id`.
    let shown = api.get("/api/v2.0/projects/team", DEV).await.json();
    assert_eq!(shown["metadata"]["retention_id"], id.to_string());
    let path = format!("/api/v2.0/retentions/{id}");
    let got = api.get(&path, DEV).await.json();
    assert_eq!(got["id"], id);
    assert_eq!(got["algorithm"], "or");
    assert_eq!(got["scope"], json!({"level": "project", "ref": team}));
    assert_eq!(got["trigger"]["settings"]["cron"], "0 0 0 * * *");
    assert_eq!(got["rules"][0]["params"], json!({"latestPushedK": 3}));
    assert_eq!(
        got["rules"][0]["tag_selectors"][0]["extras"],
        "{\"untagged\":true}"
    );
    // Its schedule is kept, and the tick will ask about it.
    let schedules = berth::jobs::schedule::Schedules::new(api.kv.clone());
    let s = schedules
        .get(&format!("retention#{id}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.kind.as_str(), s.cron.as_str()),
        ("Custom", "0 0 0 * * *")
    );
    assert!(s.next.is_some());
    let policies = RetentionPolicies::new(api.kv.clone());
    assert_eq!(policies.scheduled().await.unwrap(), [id]);
    assert_eq!(policies.id_of_project("team").await.unwrap(), Some(id));
    api.get(&path, GUEST)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.get(&path, ANON)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.get("/api/v2.0/retentions/999", ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get("/api/v2.0/retentions/x", ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    // One per project.
    api.post("/api/v2.0/retentions", ADMIN, body.clone())
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    // Refusals, on the other project.
    let bad = |rules: Vec<Value>| policy(other, rules, "");
    let good = rule("always", None, "**", true, "**");
    let mut sixteen = Vec::new();
    for i in 0..16 {
        sixteen.push(rule("latestPushedK", Some(i), "**", true, "**"));
    }
    let mut nothing = good.clone();
    nothing["template"] = "nothing".into();
    let mut string_param = rule("latestPushedK", None, "**", true, "**");
    string_param["params"] = json!({"latestPushedK": "3"});
    let mut no_tags = good.clone();
    no_tags["tag_selectors"] = json!([]);
    let mut bad_pattern = good.clone();
    bad_pattern["tag_selectors"][0]["pattern"] = "[a".into();
    for (what, body) in [
        ("16 rules", bad(sixteen)),
        ("template", bad(vec![nothing])),
        (
            "missing parameter",
            bad(vec![rule("latestPulledN", None, "**", true, "**")]),
        ),
        (
            "negative parameter",
            bad(vec![rule("nDaysSinceLastPush", Some(-1), "**", true, "**")]),
        ),
        ("parameter type", bad(vec![string_param])),
        ("no tag selector", bad(vec![no_tags])),
        ("bad pattern", bad(vec![bad_pattern])),
        ("bad cron", policy(other, vec![good.clone()], "every day")),
        ("algorithm", {
            let mut p = bad(vec![good.clone()]);
            p["algorithm"] = "and".into();
            p
        }),
        ("no scope", {
            let mut p = bad(vec![good.clone()]);
            p.as_object_mut().unwrap().remove("scope");
            p
        }),
        ("system scope", {
            let mut p = bad(vec![good.clone()]);
            p["scope"]["level"] = "system".into();
            p
        }),
        ("missing project", policy(4242, vec![good.clone()], "")),
        ("not JSON", json!("policy")),
    ] {
        api.post("/api/v2.0/retentions", ADMIN, body)
            .await
            .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let _ = what;
    }
    // Two identical rules: Harbor's conflict.
    api.post(
        "/api/v2.0/retentions",
        ADMIN,
        bad(vec![good.clone(), good.clone()]),
    )
    .await
    .err(StatusCode::CONFLICT, "CONFLICT");
    assert_eq!(policies.id_of_project("other").await.unwrap(), None);

    // Update: the whole policy; the schedule follows the cron.
    let changed = policy(
        team,
        vec![
            rule("latestPulledN", Some(2), "v*", false, "app"),
            rule("nDaysSinceLastPush", Some(7), "**", true, "**"),
        ],
        "",
    );
    api.put(&path, GUEST, changed.clone())
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.put(&path, DEV, changed.clone())
        .await
        .ok(StatusCode::OK);
    let got = api.get(&path, DEV).await.json();
    assert_eq!(got["id"], id);
    assert_eq!(got["rules"].as_array().unwrap().len(), 2);
    assert_eq!(got["rules"][0]["template"], "latestPulledN");
    let s = schedules
        .get(&format!("retention#{id}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.kind.as_str(), s.next), ("None", None));
    assert!(policies.scheduled().await.unwrap().is_empty());
    // Its project cannot change; invalid updates change nothing.
    let mut moved = changed.clone();
    moved["scope"]["ref"] = other.into();
    api.put(&path, ADMIN, moved)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.put(
        &path,
        ADMIN,
        policy(team, vec![json!({"template": "nothing"})], ""),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert_eq!(
        api.get(&path, DEV).await.json()["rules"][0]["template"],
        "latestPulledN"
    );
    api.put("/api/v2.0/retentions/999", ADMIN, changed)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");

    // Delete.
    api.call(Method::DELETE, &path, GUEST, None)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(Method::DELETE, &path, DEV, None)
        .await
        .ok(StatusCode::OK);
    api.get(&path, ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.call(Method::DELETE, &path, ADMIN, None)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(policies.id_of_project("team").await.unwrap(), None);
    // The project may have a new one, with a new id.
    let again = api.create_policy(body).await;
    assert!(again > id);
}

#[tokio::test]
async fn a_dry_run_reports_and_the_real_run_deletes_exactly_that() {
    let api = Api::new().await;
    let team = api.project("team", false, ADMIN).await;
    // Oldest first, one second apart (push times are seconds). `web`'s
    // artifacts interleave with `app`'s; `skip` matches no rule.
    let mut app = Vec::new();
    let mut web = Vec::new();
    let mut skip = Vec::new();
    for (i, tag) in ["frozen-1", "v1", "v2", "v3", "@", "v4"].iter().enumerate() {
        app.push(api.push("team/app", tag, &format!("app-{i}")).await);
        if i < 3 {
            web.push(
                api.push("team/web", &format!("w{i}"), &format!("web-{i}"))
                    .await,
            );
            skip.push(
                api.push("team/skip", &format!("s{i}"), &format!("skip-{i}"))
                    .await,
            );
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let [frozen, v1, v2, v3, untagged, v4] = <[Digest; 6]>::try_from(app.clone()).unwrap();
    // `frozen-*` is immutable in `team`.
    ImmutableRules::new(api.kv.clone())
        .create(
            "team",
            team,
            ImmutableRule::new(
                Selector::doublestar("repoMatches", "**"),
                Selector::doublestar("matches", "frozen-*"),
            ),
        )
        .await
        .unwrap();
    // The two newest tagged artifacts of app and web; untagged ones are
    // not selected (the box is not ticked), so they go.
    let id = api
        .create_policy(policy(
            team,
            vec![rule("latestPushedK", Some(2), "**", false, "{app,web}")],
            "",
        ))
        .await;

    // The dry run.
    let dry = api.execute(id, true).await;
    let e = api.execution(id, dry).await;
    assert_eq!(
        (e["status"].as_str(), e["dry_run"].as_bool()),
        (Some("Running"), Some(true))
    );
    assert_eq!(e["trigger"], "Manual");
    assert_eq!(e["policy_id"], id);
    api.drain().await;
    let e = api.execution(id, dry).await;
    assert_eq!(e["status"], "Success", "{e}");
    assert!(e["end_time"].as_str().unwrap().ends_with('Z'));
    let dry_app = api.report(dry, "team/app").await;
    assert_eq!(
        with_outcome(&dry_app, outcome::WOULD_DELETE),
        set(&[&v1, &v2, &untagged])
    );
    assert_eq!(with_outcome(&dry_app, outcome::IMMUTABLE), set(&[&frozen]));
    assert_eq!(with_outcome(&dry_app, outcome::RETAINED), set(&[&v3, &v4]));
    let dry_web = api.report(dry, "team/web").await;
    assert_eq!(
        with_outcome(&dry_web, outcome::WOULD_DELETE),
        set(&[&web[0]])
    );
    // Nothing went.
    for d in &app {
        assert!(api.holds("team/app", d).await);
    }
    assert!(api.holds("team/web", &web[0]).await);

    // Its tasks: one per repository a rule applies to.
    let tasks_path = format!("/api/v2.0/retentions/{id}/executions/{dry}/tasks");
    let r = api.get(&tasks_path, ADMIN).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.header("x-total-count"), "2");
    let tasks = r.json();
    let repos: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["repository"].as_str().unwrap())
        .collect();
    assert_eq!(repos, ["app", "web"]);
    let app_task = &tasks[0];
    assert_eq!(app_task["execution_id"], dry);
    assert_eq!(app_task["status"], "Success");
    assert_eq!(app_task["status_code"], 3);
    assert_eq!(
        (app_task["total"].as_i64(), app_task["retained"].as_i64()),
        (Some(6), Some(3))
    );
    assert_eq!(
        (tasks[1]["total"].as_i64(), tasks[1]["retained"].as_i64()),
        (Some(3), Some(2))
    );
    // Its log: one line per artifact.
    let tid = app_task["id"].as_i64().unwrap();
    let r = api.get(&format!("{tasks_path}/{tid}"), ADMIN).await;
    r.ok(StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/plain"));
    let log = r.text();
    assert!(
        log.contains("Candidates: 6, retained: 3, would delete: 3"),
        "{log}"
    );
    for (d, what) in [
        (&v1, "would delete"),
        (&v2, "would delete"),
        (&untagged, "would delete"),
        (&frozen, "immutable (retained)"),
        (&v3, "retained"),
        (&v4, "retained"),
    ] {
        let line = log
            .lines()
            .find(|l| l.starts_with(&d.to_string()))
            .unwrap_or_else(|| panic!("no line for {d}: {log}"));
        assert!(line.ends_with(&format!("| {what}")), "{line}");
    }
    assert!(log.lines().any(|l| l.contains("| v4 |")), "{log}");
    api.get(&format!("{tasks_path}/12345"), ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");

    // The real run deletes exactly what the dry run said.
    let real = api.execute(id, false).await;
    api.drain().await;
    assert_eq!(api.execution(id, real).await["status"], "Success");
    let real_app = api.report(real, "team/app").await;
    assert_eq!(
        with_outcome(&real_app, outcome::DELETED),
        with_outcome(&dry_app, outcome::WOULD_DELETE)
    );
    assert_eq!(
        with_outcome(&api.report(real, "team/web").await, outcome::DELETED),
        with_outcome(&dry_web, outcome::WOULD_DELETE)
    );
    for d in [&v1, &v2, &untagged] {
        assert!(!api.holds("team/app", d).await, "{d} should be gone");
    }
    for d in [&frozen, &v3, &v4] {
        assert!(api.holds("team/app", d).await, "{d} should stay");
    }
    assert!(!api.holds("team/web", &web[0]).await);
    assert!(api.holds("team/web", &web[1]).await && api.holds("team/web", &web[2]).await);
    for d in &skip {
        assert!(api.holds("team/skip", d).await, "skip is no rule's");
    }
    let log = api
        .get(
            &format!("/api/v2.0/retentions/{id}/executions/{real}/tasks/{tid}"),
            ADMIN,
        )
        .await
        .text();
    assert!(
        log.contains("Candidates: 6, retained: 3, deleted: 3"),
        "{log}"
    );

    // A third run finds nothing more to delete.
    let third = api.execute(id, false).await;
    api.drain().await;
    let r = api.report(third, "team/app").await;
    assert_eq!((r.total(), r.removed()), (3, 0));

    // The executions, newest first, paged.
    let r = api
        .get(
            &format!("/api/v2.0/retentions/{id}/executions?page_size=2"),
            ADMIN,
        )
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(r.header("x-total-count"), "3");
    let ids: Vec<i64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [third, real]);
    assert!(
        r.header("link").contains("rel=\"next\""),
        "{}",
        r.header("link")
    );
    let r = api
        .get(
            &format!("/api/v2.0/retentions/{id}/executions?page=2&page_size=2"),
            ADMIN,
        )
        .await;
    assert_eq!(r.json()[0]["id"], dry);
    assert_eq!(r.json()[0]["dry_run"], true);
    // An execution of another policy is not this one's.
    api.get(
        &format!("/api/v2.0/retentions/{}/executions/{dry}/tasks", id + 1000),
        ADMIN,
    )
    .await
    .err(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn untagged_artifacts_follow_the_box() {
    let api = Api::new().await;
    let team = api.project("team", false, ADMIN).await;
    let tagged = api.push("team/app", "t1", "tagged").await;
    let untagged = api.push("team/app", "@", "untagged").await;
    let always =
        |untagged: bool| policy(team, vec![rule("always", None, "**", untagged, "**")], "");
    let id = api.create_policy(always(true)).await;
    let e = api.execute(id, true).await;
    api.drain().await;
    let r = api.report(e, "team/app").await;
    assert_eq!(
        with_outcome(&r, outcome::RETAINED),
        set(&[&tagged, &untagged])
    );
    api.put(&format!("/api/v2.0/retentions/{id}"), ADMIN, always(false))
        .await
        .ok(StatusCode::OK);
    let e = api.execute(id, true).await;
    api.drain().await;
    let r = api.report(e, "team/app").await;
    assert_eq!(with_outcome(&r, outcome::WOULD_DELETE), set(&[&untagged]));
    // Excluding `**` without the box keeps only the untagged one (Harbor).
    let mut exclude = rule("always", None, "**", false, "**");
    exclude["tag_selectors"][0]["decoration"] = "excludes".into();
    api.put(
        &format!("/api/v2.0/retentions/{id}"),
        ADMIN,
        policy(team, vec![exclude], ""),
    )
    .await
    .ok(StatusCode::OK);
    let e = api.execute(id, false).await;
    api.drain().await;
    assert!(!api.holds("team/app", &tagged).await);
    assert!(api.holds("team/app", &untagged).await);
    assert_eq!(api.report(e, "team/app").await.removed(), 1);
}

#[tokio::test]
async fn label_selectors_keep_the_labelled_ones() {
    let api = &Api::new().await;
    let team = api.project("team", false, ADMIN).await;
    // A global label and a project one: candidates carry label names.
    let label = |body: Value| async move {
        api.post("/api/v2.0/labels", ADMIN, body)
            .await
            .ok(StatusCode::CREATED)
            .location_id()
    };
    let keep = label(json!({"name": "keep", "scope": "g"})).await;
    let prod = label(json!({"name": "prod", "scope": "p", "project_id": team})).await;
    let stale = label(json!({"name": "stale", "scope": "g"})).await;
    let both = api.push("team/app", "v1", "both").await;
    let kept = api.push("team/app", "v2", "kept").await;
    let prod_only = api.push("team/app", "v3", "prod-only").await;
    let bare = api.push("team/app", "v4", "bare").await;
    let untagged_kept = api.push("team/app", "@", "untagged-kept").await;
    let untagged_bare = api.push("team/app", "@", "untagged-bare").await;
    let stale_only = api.push("team/app", "v5", "stale-only").await;
    let attach = |d: &Digest, id: i64| {
        let path = format!("/api/v2.0/projects/team/repositories/app/artifacts/{d}/labels");
        async move {
            api.post(&path, ADMIN, json!({"id": id}))
                .await
                .ok(StatusCode::OK);
        }
    };
    attach(&both, keep).await;
    attach(&both, prod).await;
    attach(&kept, keep).await;
    attach(&prod_only, prod).await;
    attach(&untagged_kept, keep).await;
    // A label that once was: detached, it selects nothing.
    attach(&stale_only, stale).await;
    api.call(
        Method::DELETE,
        &format!("/api/v2.0/projects/team/repositories/app/artifacts/{stale_only}/labels/{stale}"),
        ADMIN,
        None,
    )
    .await
    .ok(StatusCode::OK);

    // Rule 1: always, only what carries `keep` (untagged ones alike).
    // Rule 2: the tagged ones (of any tag) carrying `prod` and not `keep`.
    let mut with_keep = rule("always", None, "**", true, "**");
    with_keep["tag_selectors"] =
        json!([{"kind": "label", "decoration": "withLabels", "pattern": "keep"}]);
    let mut prod_not_keep = rule("latestPushedK", Some(10), "**", false, "**");
    prod_not_keep["tag_selectors"]
        .as_array_mut()
        .unwrap()
        .extend([
            json!({"kind": "label", "decoration": "withLabels", "pattern": "prod"}),
            json!({"kind": "label", "decoration": "withoutLabels", "pattern": "keep"}),
        ]);
    // A label selector refuses doublestar's decorations and an empty list.
    for (decoration, pattern) in [
        ("matches", "keep"),
        ("withLabels", ""),
        ("withLabels", "keep,"),
    ] {
        let mut bad = with_keep.clone();
        bad["tag_selectors"][0]["decoration"] = decoration.into();
        bad["tag_selectors"][0]["pattern"] = pattern.into();
        api.post("/api/v2.0/retentions", ADMIN, policy(team, vec![bad], ""))
            .await
            .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    let id = api
        .create_policy(policy(team, vec![with_keep, prod_not_keep], ""))
        .await;
    let got = api
        .get(&format!("/api/v2.0/retentions/{id}"), ADMIN)
        .await
        .json();
    assert_eq!(
        got["rules"][1]["tag_selectors"][2],
        json!({"kind": "label", "decoration": "withoutLabels", "pattern": "keep"})
    );

    // Exactly the unlabelled ones would go.
    let dry = api.execute(id, true).await;
    api.drain().await;
    assert_eq!(api.execution(id, dry).await["status"], "Success");
    let dry_app = api.report(dry, "team/app").await;
    let unlabelled = set(&[&bare, &untagged_bare, &stale_only]);
    assert_eq!(with_outcome(&dry_app, outcome::WOULD_DELETE), unlabelled);
    assert_eq!(
        with_outcome(&dry_app, outcome::RETAINED),
        set(&[&both, &kept, &prod_only, &untagged_kept])
    );
    let labels_of = |d: &Digest| {
        dry_app
            .entries
            .iter()
            .find(|e| e.digest == d.to_string())
            .map(|e| e.labels.clone())
            .unwrap()
    };
    assert_eq!(labels_of(&both), ["keep", "prod"]);
    assert!(labels_of(&stale_only).is_empty());
    for d in [&bare, &untagged_bare, &stale_only] {
        assert!(api.holds("team/app", d).await, "a dry run deletes nothing");
    }

    // The real run deletes exactly that.
    let real = api.execute(id, false).await;
    api.drain().await;
    assert_eq!(api.execution(id, real).await["status"], "Success");
    let real_app = api.report(real, "team/app").await;
    assert_eq!(with_outcome(&real_app, outcome::DELETED), unlabelled);
    assert_eq!(
        with_outcome(&real_app, outcome::RETAINED),
        with_outcome(&dry_app, outcome::RETAINED)
    );
    for d in [&bare, &untagged_bare, &stale_only] {
        assert!(!api.holds("team/app", d).await, "{d} should be gone");
    }
    for d in [&both, &kept, &prod_only, &untagged_kept] {
        assert!(api.holds("team/app", d).await, "{d} should stay");
    }

    // withoutLabels alone: of what is left, only what lacks `keep` stays.
    let mut without_keep = rule("always", None, "**", true, "**");
    without_keep["tag_selectors"] =
        json!([{"kind": "label", "decoration": "withoutLabels", "pattern": "keep"}]);
    api.put(
        &format!("/api/v2.0/retentions/{id}"),
        ADMIN,
        policy(team, vec![without_keep], ""),
    )
    .await
    .ok(StatusCode::OK);
    let e = api.execute(id, true).await;
    api.drain().await;
    let r = api.report(e, "team/app").await;
    assert_eq!(with_outcome(&r, outcome::RETAINED), set(&[&prod_only]));
    assert_eq!(
        with_outcome(&r, outcome::WOULD_DELETE),
        set(&[&both, &kept, &untagged_kept])
    );
}

#[tokio::test]
async fn pull_times_decide_the_pull_rules() {
    let api = Api::new().await;
    let team = api.project("team", false, ADMIN).await;
    let a = api.push("team/app", "a", "a").await;
    let b = api.push("team/app", "b", "b").await;
    let c = api.push("team/app", "c", "c").await;
    let d = api.push("team/app", "d", "d").await;
    // a pulled 40 days ago, b 2 days ago, c 10 days ago, d never.
    let t = now();
    let pulls: Vec<PullCount> = [(&a, 40), (&b, 2), (&c, 10)]
        .iter()
        .map(|(dg, days)| PullCount {
            repo: "team/app".into(),
            digest: dg.to_string(),
            count: 1,
            last: t - days * DAY,
        })
        .collect();
    api.registry.write_pulls(pulls).await;
    let id = api
        .create_policy(policy(
            team,
            vec![rule("latestPulledN", Some(2), "**", true, "**")],
            "",
        ))
        .await;
    let e = api.execute(id, true).await;
    api.drain().await;
    assert_eq!(
        with_outcome(&api.report(e, "team/app").await, outcome::RETAINED),
        set(&[&b, &c])
    );
    api.put(
        &format!("/api/v2.0/retentions/{id}"),
        ADMIN,
        policy(
            team,
            vec![rule("nDaysSinceLastPull", Some(30), "**", true, "**")],
            "",
        ),
    )
    .await
    .ok(StatusCode::OK);
    let e = api.execute(id, true).await;
    api.drain().await;
    // Never pulled is never "pulled within 30 days".
    assert_eq!(
        with_outcome(&api.report(e, "team/app").await, outcome::WOULD_DELETE),
        set(&[&a, &d])
    );
    // Two rules: the union of what each keeps.
    api.put(
        &format!("/api/v2.0/retentions/{id}"),
        ADMIN,
        policy(
            team,
            vec![
                rule("nDaysSinceLastPull", Some(5), "**", true, "**"),
                rule("always", None, "d", false, "**"),
            ],
            "",
        ),
    )
    .await
    .ok(StatusCode::OK);
    let e = api.execute(id, false).await;
    api.drain().await;
    assert_eq!(
        with_outcome(&api.report(e, "team/app").await, outcome::DELETED),
        set(&[&a, &c])
    );
    assert!(api.holds("team/app", &b).await && api.holds("team/app", &d).await);
}

#[tokio::test]
async fn redelivered_task_messages_change_nothing() {
    let api = Api::new().await;
    let team = api.project("team", false, ADMIN).await;
    let mut ds = Vec::new();
    for i in 0..4 {
        ds.push(
            api.push("team/app", &format!("t{i}"), &format!("s{i}"))
                .await,
        );
    }
    let id = api
        .create_policy(policy(
            team,
            vec![rule("latestPushedK", Some(1), "t3", false, "**")],
            "",
        ))
        .await;
    let e = api.execute(id, false).await;
    let (jobs, events): (Vec<Job>, Vec<Job>) = api
        .drain()
        .await
        .into_iter()
        .partition(|j| j.kind.starts_with("retention."));
    assert_eq!(jobs.len(), 2, "a listing task and one repository task");
    // Three deletes and the run's end, each announced once.
    let mut kinds: Vec<String> = events
        .iter()
        .map(|j| j.payload["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "DELETE_ARTIFACT",
            "DELETE_ARTIFACT",
            "DELETE_ARTIFACT",
            "TAG_RETENTION"
        ]
    );
    let before = api.report(e, "team/app").await;
    assert_eq!(before.removed(), 3);
    let run_before = api.jobs.retention.runs().get(e).await.unwrap().unwrap();
    // Every message again, twice.
    for _ in 0..2 {
        for j in &jobs {
            api.queue.send(j).await.unwrap();
        }
    }
    // And a fresh push the first run never saw: a redelivery must not
    // touch it.
    let late = api.push("team/app", "late", "late").await;
    api.drain().await;
    assert_eq!(api.report(e, "team/app").await, before);
    let run_after = api.jobs.retention.runs().get(e).await.unwrap().unwrap();
    assert_eq!(run_after.counts, run_before.counts);
    assert_eq!(run_after.status, "Success");
    assert!(api.holds("team/app", &late).await);
    assert!(api.holds("team/app", &ds[3]).await);
    // Messages of unknown runs or kinds are acknowledged without effect.
    let mut stray = jobs[1].clone();
    stray.payload["run"] = 999.into();
    api.jobs.gc.run(&stray).await.unwrap();
    api.jobs
        .gc
        .run(&Job::new("retention.unknown", json!({})))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stopped_execution_deletes_nothing_more() {
    let api = Api::new().await;
    let team = api.project("team", false, ADMIN).await;
    let mut ds = Vec::new();
    for repo in ["a", "b"] {
        for i in 0..3 {
            ds.push(
                api.push(
                    &format!("team/{repo}"),
                    &format!("t{i}"),
                    &format!("{repo}{i}"),
                )
                .await,
            );
        }
    }
    let id = api
        .create_policy(policy(
            team,
            vec![rule("latestPushedK", Some(0), "**", true, "**")],
            "",
        ))
        .await;
    let e = api.execute(id, false).await;
    // The listing task only: the repository tasks are queued, not run.
    let got = api.queue.receive(1).await.unwrap();
    assert_eq!(got[0].job.kind, "retention.list");
    api.jobs.gc.run(&got[0].job).await.unwrap();
    api.queue.ack(&got[0].receipt).await.unwrap();
    let op = format!("/api/v2.0/retentions/{id}/executions/{e}");
    api.call(Method::PATCH, &op, ADMIN, Some(json!({"action": "start"})))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.call(Method::PATCH, &op, ANON, Some(json!({"action": "stop"})))
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.call(
        Method::PATCH,
        &format!("/api/v2.0/retentions/{id}/executions/999"),
        ADMIN,
        Some(json!({"action": "stop"})),
    )
    .await
    .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    // Deleting the policy waits for its executions.
    api.call(
        Method::DELETE,
        &format!("/api/v2.0/retentions/{id}"),
        ADMIN,
        None,
    )
    .await
    .err(StatusCode::PRECONDITION_FAILED, "PRECONDITION");
    api.call(Method::PATCH, &op, ADMIN, Some(json!({"action": "stop"})))
        .await
        .ok(StatusCode::OK);
    api.drain().await;
    for (i, d) in ds.iter().enumerate() {
        let repo = if i < 3 { "team/a" } else { "team/b" };
        assert!(
            api.holds(repo, d).await,
            "{repo} {d} was deleted after the stop"
        );
    }
    assert_eq!(api.execution(id, e).await["status"], "Stopped");
    let tasks = api.get(&format!("{op}/tasks"), ADMIN).await.json();
    let statuses: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Stopped", "Stopped"]);
    // Stopping again is fine; a stopped execution stays stopped.
    api.call(Method::PATCH, &op, ADMIN, Some(json!({"action": "stop"})))
        .await
        .ok(StatusCode::OK);
    api.call(
        Method::DELETE,
        &format!("/api/v2.0/retentions/{id}"),
        ADMIN,
        None,
    )
    .await
    .ok(StatusCode::OK);
    api.get(&format!("{op}/tasks"), ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn an_execution_stopped_through_the_job_store_runs_no_task() {
    let api = Api::new().await;
    let team = api.project("team", false, ADMIN).await;
    let d = api.push("team/app", "t", "t").await;
    let id = api
        .create_policy(policy(
            team,
            vec![rule("latestPushedK", Some(0), "**", true, "**")],
            "",
        ))
        .await;
    let e = api.execute(id, false).await;
    // Stopped between the listing and the repository task: the task's
    // message is still delivered, and does nothing.
    let list = api.queue.receive(1).await.unwrap();
    api.jobs.gc.run(&list[0].job).await.unwrap();
    api.queue.ack(&list[0].receipt).await.unwrap();
    assert!(api.jobs.retention.history().stop(e, "test").await.unwrap());
    api.drain().await;
    assert!(api.holds("team/app", &d).await);
    assert!(
        api.jobs
            .retention
            .history()
            .report(e, "team/app")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn scheduled_executions_start_on_the_tick() {
    let api = Api::new().await;
    let team = api.project("team", false, ADMIN).await;
    let d = api.push("team/app", "old", "old").await;
    let id = api
        .create_policy(policy(
            team,
            vec![rule("latestPushedK", Some(0), "**", true, "**")],
            "* * * * * *",
        ))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    api.jobs.gc.tick().await.unwrap();
    api.drain().await;
    let r = api
        .get(&format!("/api/v2.0/retentions/{id}/executions"), ADMIN)
        .await;
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["trigger"], "Schedule");
    assert_eq!(list[0]["dry_run"], false);
    assert_eq!(list[0]["status"], "Success");
    assert!(!api.holds("team/app", &d).await);
    // Without a schedule, the tick starts nothing.
    let mut p = api
        .get(&format!("/api/v2.0/retentions/{id}"), ADMIN)
        .await
        .json();
    p["trigger"]["settings"]["cron"] = "".into();
    api.put(&format!("/api/v2.0/retentions/{id}"), ADMIN, p)
        .await
        .ok(StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    api.jobs.gc.tick().await.unwrap();
    let r = api
        .get(&format!("/api/v2.0/retentions/{id}/executions"), ADMIN)
        .await;
    assert_eq!(r.header("x-total-count"), "1");
}

#[tokio::test]
async fn a_deleted_project_takes_its_policy_along() {
    let api = Api::new().await;
    let team = api.project("team", false, ADMIN).await;
    let id = api
        .create_policy(policy(
            team,
            vec![rule("always", None, "**", true, "**")],
            "0 0 0 * * *",
        ))
        .await;
    api.call(Method::DELETE, "/api/v2.0/projects/team", ADMIN, None)
        .await
        .ok(StatusCode::OK);
    api.get(&format!("/api/v2.0/retentions/{id}"), ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    let policies = RetentionPolicies::new(api.kv.clone());
    assert!(policies.scheduled().await.unwrap().is_empty());
    assert_eq!(policies.of_project("team").await.unwrap(), None);
    let s = berth::jobs::schedule::Schedules::new(api.kv.clone())
        .get(&format!("retention#{id}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.next, None);
    // A new project of the same name starts without one.
    let again = api.project("team", false, ADMIN).await;
    let id2 = api
        .create_policy(policy(
            again,
            vec![rule("always", None, "**", true, "**")],
            "",
        ))
        .await;
    assert!(id2 > id);
}

#[tokio::test]
async fn without_a_queue_executions_cannot_start() {
    let api = Api::build(false).await;
    let team = api.project("team", false, ADMIN).await;
    let id = api
        .create_policy(policy(
            team,
            vec![rule("always", None, "**", true, "**")],
            "",
        ))
        .await;
    let r = api
        .post(
            &format!("/api/v2.0/retentions/{id}/executions"),
            ADMIN,
            json!({"dry_run": true}),
        )
        .await;
    r.err(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    let r = api
        .get(&format!("/api/v2.0/retentions/{id}/executions"), ADMIN)
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json(), json!([]));
    assert_eq!(r.header("x-total-count"), "0");
}
