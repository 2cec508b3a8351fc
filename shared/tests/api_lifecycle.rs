//! Harbor's garbage collection (`/api/v2.0/system/gc…`) and quota
//! (`/api/v2.0/quotas…`, `storage_limit`, the summary's `quota`) APIs,
//! driven with `oneshot` over the embedded stores, with an in-process job
//! queue whose jobs the tests run themselves (as the `gc` worker would).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use berth::http::api::{api_router, api_router_with};
use berth::jobs::Jobs;
use berth::oci::Digest;
use berth::registry::{Registry, RegistryOptions};
use berth::store::local_queue::LocalQueue;
use serde_json::{Value, json};

#[path = "support/api.rs"]
mod api_support;
mod common;

use api_support::{ADMIN, ANON, Client, DEV, OUTSIDER, PADMIN, Resp, Who};

const GC: &str = "/api/v2.0/system/gc";
const SCHEDULE: &str = "/api/v2.0/system/gc/schedule";

struct Api {
    router: Router,
    /// The same API without a job queue.
    no_queue: Router,
    registry: Registry,
    jobs: Jobs,
    _dir: tempfile::TempDir,
}

/// The GC run's JSON parameters (Harbor sends them as a string).
fn job_parameters(run: &Value) -> Value {
    serde_json::from_str(run["job_parameters"].as_str().unwrap()).unwrap()
}

impl Client for Api {
    fn router(&self) -> &Router {
        &self.router
    }
}

impl Api {
    async fn new() -> Api {
        // The shortest grace (4 s): a test can wait for garbage to age.
        let opts = RegistryOptions {
            gc_grace: Duration::ZERO,
            ..Default::default()
        };
        let p = api_support::parts("a lifecycle test seed that is long enough 01", opts).await;
        let queue = LocalQueue::new(p.kv.clone(), "gc", Duration::from_secs(30));
        let jobs = Jobs::new(p.registry.clone(), Arc::new(queue));
        let router = api_router_with(p.iam.clone(), p.registry.clone(), None, Some(jobs.clone()));
        let no_queue = api_router(p.iam, p.registry.clone(), None);
        Api {
            router,
            no_queue,
            registry: p.registry,
            jobs,
            _dir: p.dir,
        }
    }

    /// A request to the API without a job queue.
    async fn send(
        &self,
        router: &Router,
        method: Method,
        path: &str,
        who: Who<'_>,
        body: Option<Value>,
    ) -> Resp {
        let body = body.map(|v| axum::body::Body::from(v.to_string()));
        api_support::send(router, method, path, who, &[], body).await
    }

    /// Creates a project as `who` with `extra` fields; returns its id.
    async fn project_with(&self, name: &str, who: Who<'_>, extra: Value) -> i64 {
        let mut body = json!({"project_name": name, "metadata": {"public": "false"}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post("/api/v2.0/projects", who, body)
            .await
            .ok(StatusCode::CREATED)
            .location_id()
    }

    /// padmin (owner and project admin of `team`), dev (developer there),
    /// outsider (in no project); returns team's id.
    async fn team(&self) -> i64 {
        for u in ["padmin", "dev", "outsider"] {
            self.user(u).await;
        }
        let team = self.project_with("team", PADMIN, json!({})).await;
        self.member("team", "dev", 2).await;
        team
    }

    /// Starts a manual collection; returns its id.
    async fn start(&self, params: Value) -> i64 {
        let r = self
            .post(
                SCHEDULE,
                ADMIN,
                json!({"schedule": {"type": "Manual"}, "parameters": params}),
            )
            .await;
        r.ok(StatusCode::CREATED);
        let id = r.location_id();
        assert_eq!(r.header("location"), format!("{GC}/{id}"));
        id
    }

    /// Runs every queued job, as the `gc` worker does, until none is left.
    async fn drain(&self) -> usize {
        let mut ran = 0;
        loop {
            let batch = self.jobs.queue.receive(10).await.unwrap();
            if batch.is_empty() {
                return ran;
            }
            for r in batch {
                self.jobs.gc.run(&r.job).await.unwrap();
                self.jobs.queue.ack(&r.receipt).await.unwrap();
                ran += 1;
            }
        }
    }

    async fn run_of(&self, id: i64) -> Value {
        let r = self.get(&format!("{GC}/{id}"), ADMIN).await;
        r.ok(StatusCode::OK);
        r.json()
    }

    async fn log(&self, id: i64) -> String {
        let r = self.get(&format!("{GC}/{id}/log"), ADMIN).await;
        r.ok(StatusCode::OK);
        assert!(
            r.header("content-type").starts_with("text/plain"),
            "{}",
            r.header("content-type")
        );
        r.text()
    }

    async fn blob(&self, repo: &str, data: &str) -> Digest {
        api_support::upload(&self.registry, repo, data).await
    }

    /// Pushes a one-layer image to `repo:tag`; returns the bytes it added.
    async fn push(&self, repo: &str, tag: &str) -> i64 {
        let config =
            format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"repo\":\"{repo}:{tag}\"}}");
        let layer = format!("layer of {repo}:{tag}");
        let (_, manifest) =
            api_support::push_image(&self.registry, repo, tag, &config, &layer).await;
        (manifest + config.len() + layer.len()) as i64
    }

    async fn audited(&self, resource_type: &str, operation: &str) -> Vec<Value> {
        self.audit_log()
            .await
            .into_iter()
            .filter(|e| e["resource_type"] == resource_type && e["operation"] == operation)
            .collect()
    }

    async fn hard(&self, id: i64) -> i64 {
        self.quota(id).await["hard"]["storage"].as_i64().unwrap()
    }

    async fn quota(&self, id: i64) -> Value {
        let r = self.get(&format!("/api/v2.0/quotas/{id}"), ADMIN).await;
        r.ok(StatusCode::OK);
        r.json()
    }
}

// ---- garbage collection ---------------------------------------------------

#[tokio::test]
async fn a_manual_collection_runs_to_success_with_history_and_log() {
    let api = Api::new().await;
    api.push("library/app", "v1").await;
    let id = api.start(json!({"delete_untagged": true})).await;
    assert_eq!(id, 1);

    let run = api.run_of(id).await;
    assert_eq!(run["id"], id);
    assert_eq!(run["job_name"], "GARBAGE_COLLECTION");
    assert_eq!(run["job_kind"], "MANUAL");
    assert_eq!(run["schedule"]["type"], "Manual");
    assert_eq!(run["job_status"], "Running");
    assert_eq!(run["deleted"], false);
    assert!(run["creation_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        job_parameters(&run),
        json!({"delete_untagged": true, "dry_run": false})
    );
    let tasks = run["progress"]["tasks"].as_i64().unwrap();
    assert!(tasks > 0, "{run}");
    assert_eq!(run["progress"]["done"], 0);
    assert_eq!(run["progress"]["phase"], "repos");

    assert!(api.drain().await > 0);
    let run = api.run_of(id).await;
    assert_eq!(run["job_status"], "Success", "{run}");
    assert_eq!(run["progress"]["done"], run["progress"]["tasks"]);
    assert_eq!(run["progress"]["phase"], "blobs");

    let r = api.get(GC, ADMIN).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.header("x-total-count"), "1");
    assert_eq!(r.ids(), [id]);
    assert_eq!(r.json()[0], run);

    let log = api.log(id).await;
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 3, "{log}");
    assert!(
        lines[0].contains("[INFO] collection started (Manual)"),
        "{log}"
    );
    assert!(lines[0].split(' ').next().unwrap().ends_with('Z'), "{log}");
    let last = lines.last().unwrap();
    assert!(last.contains("summary: status Success;"), "{log}");
    assert!(last.contains("removed 0 untagged artifacts"), "{log}");
    assert!(last.contains("examined 1 repositories"), "{log}");
    let done = run["progress"]["done"].as_i64().unwrap();
    assert!(done >= tasks, "{run}");
    assert!(last.contains(&format!("tasks {done}/{done}")), "{log}");

    // The trigger is in the audit log.
    let audited = api.audited("garbage-collection", "create").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["resource"], format!("gc/{id}"));
    assert_eq!(audited[0]["username"], "admin");

    // Unknown runs; ids that are not numbers.
    api.get(&format!("{GC}/99"), ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get(&format!("{GC}/99/log"), ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get(&format!("{GC}/x"), ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
}

#[tokio::test]
async fn a_collection_frees_what_nothing_references_and_says_so() {
    let api = Api::new().await;
    let kept = api.push("library/app", "v1").await;
    api.blob("library/app", "a blob no manifest references")
        .await;
    let usage = api.registry.usage("library").await.unwrap().used;
    assert_eq!(usage, kept + 29);
    // Older than the grace (4 s) before the collection starts.
    tokio::time::sleep(Duration::from_millis(5_200)).await;

    // A dry run says what it would do and does nothing.
    let dry = api.start(json!({"dry_run": true})).await;
    api.drain().await;
    let run = api.run_of(dry).await;
    assert_eq!(run["job_status"], "Success");
    assert_eq!(job_parameters(&run)["dry_run"], true);
    let log = api.log(dry).await;
    let last = log.lines().last().unwrap();
    assert!(last.contains("status Success (dry run)"), "{log}");
    // (Its links stay, so no blob loses its last one.)
    assert!(
        last.contains("would remove 0 untagged artifacts, 1 blob links, 0 blobs"),
        "{log}"
    );
    assert!(last.contains("would free 29 bytes"), "{log}");
    assert_eq!(api.registry.usage("library").await.unwrap().used, usage);

    let id = api.start(json!({})).await;
    api.drain().await;
    let log = api.log(id).await;
    let last = log.lines().last().unwrap();
    assert!(
        last.contains("removed 0 untagged artifacts, 1 blob links, 1 blobs"),
        "{log}"
    );
    assert!(last.contains("freed 29 bytes (29 B)"), "{log}");
    assert_eq!(api.registry.usage("library").await.unwrap().used, kept);
    // The history, newest first.
    let r = api.get(GC, ADMIN).await;
    assert_eq!(r.ids(), [id, dry]);
}

#[tokio::test]
async fn one_collection_runs_at_a_time() {
    let api = Api::new().await;
    let first = api.start(json!({})).await;
    let body = json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": true}});
    api.post(SCHEDULE, ADMIN, body.clone())
        .await
        .err(StatusCode::CONFLICT, "CONFLICT");
    api.put(SCHEDULE, ADMIN, body.clone())
        .await
        .err(StatusCode::CONFLICT, "CONFLICT");
    api.drain().await;
    // PUT with type Manual starts one too (as Harbor), answered 200.
    api.put(SCHEDULE, ADMIN, body).await.ok(StatusCode::OK);
    let r = api.get(GC, ADMIN).await;
    assert_eq!(r.ids(), [first + 1, first]);
    assert_eq!(r.json()[0]["job_status"], "Running");
    assert_eq!(job_parameters(&r.json()[0])["dry_run"], true);
}

#[tokio::test]
async fn a_stopped_collection_stays_stopped() {
    let api = Api::new().await;
    api.push("library/app", "v1").await;
    let id = api.start(json!({})).await;
    api.put(&format!("{GC}/{id}"), ADMIN, json!({}))
        .await
        .ok(StatusCode::OK);
    assert_eq!(api.run_of(id).await["job_status"], "Stopped");
    // Its queued tasks do nothing.
    api.drain().await;
    let run = api.run_of(id).await;
    assert_eq!(run["job_status"], "Stopped");
    assert_eq!(run["progress"]["done"], 0);
    assert!(api.log(id).await.contains("stopped by admin"));
    // Stopping a finished run changes nothing; an unknown one is 404.
    api.put(&format!("{GC}/{id}"), ADMIN, json!({}))
        .await
        .ok(StatusCode::OK);
    api.put(&format!("{GC}/42"), ADMIN, json!({}))
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    // And the next collection may start.
    api.start(json!({})).await;
}

#[tokio::test]
async fn the_history_pages_as_harbor_lists_do() {
    let api = Api::new().await;
    for _ in 0..3 {
        api.start(json!({})).await;
        api.drain().await;
    }
    let r = api.get(&format!("{GC}?page=1&page_size=2"), ADMIN).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.ids(), [3, 2]);
    assert_eq!(r.header("x-total-count"), "3");
    assert!(r.header("link").contains("page=2"), "{}", r.header("link"));
    assert!(r.header("link").contains("rel=\"next\""));
    let r = api.get(&format!("{GC}?page=2&page_size=2"), ADMIN).await;
    assert_eq!(r.ids(), [1]);
    assert!(r.header("link").contains("rel=\"prev\""));
    let r = api.get(&format!("{GC}?page=3&page_size=2"), ADMIN).await;
    assert!(r.ids().is_empty());
    assert_eq!(r.header("x-total-count"), "3");
    let r = api.get(&format!("{GC}?sort=-creation_time"), ADMIN).await;
    assert_eq!(r.ids(), [3, 2, 1]);
    for bad in [
        "page_size=0",
        "page_size=101",
        "sort=name",
        "q=job_status%3DSuccess",
    ] {
        api.get(&format!("{GC}?{bad}"), ADMIN)
            .await
            .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn the_schedule_is_set_read_and_cleared() {
    let api = Api::new().await;
    let r = api.get(SCHEDULE, ADMIN).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json()["schedule"]["type"], "None");

    api.put(
        SCHEDULE,
        ADMIN,
        json!({"schedule": {"type": "Daily"}, "parameters": {"delete_untagged": true, "workers": 2}}),
    )
    .await
    .ok(StatusCode::OK);
    let s = api.get(SCHEDULE, ADMIN).await.json();
    assert_eq!(s["schedule"]["type"], "Daily");
    assert_eq!(s["schedule"]["cron"], "0 0 0 * * *");
    assert!(
        s["schedule"]["next_scheduled_time"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00Z"),
        "{s}"
    );
    assert_eq!(
        job_parameters(&s),
        json!({"delete_untagged": true, "dry_run": false, "workers": 2})
    );
    assert!(api.audited("garbage-collection", "update").await.len() == 1);

    let r = api
        .post(
            SCHEDULE,
            ADMIN,
            json!({"schedule": {"type": "Custom", "cron": "0 30 2 * * *"}, "parameters": {"dry_run": true}}),
        )
        .await;
    r.ok(StatusCode::CREATED);
    assert_eq!(r.header("location"), SCHEDULE);
    let s = api.get(SCHEDULE, ADMIN).await.json();
    assert_eq!(s["schedule"]["type"], "Custom");
    assert_eq!(s["job_kind"], "0 30 2 * * *");
    assert!(
        s["schedule"]["next_scheduled_time"]
            .as_str()
            .unwrap()
            .ends_with("T02:30:00Z")
    );
    // Setting a schedule starts nothing.
    assert_eq!(api.get(GC, ADMIN).await.header("x-total-count"), "0");

    for bad in [
        json!({"schedule": {"type": "Custom", "cron": "* * *"}}),
        json!({"schedule": {"type": "Custom", "cron": "61 * * * * *"}}),
        json!({"schedule": {"type": "Custom"}}),
        json!({"schedule": {"type": "Monthly"}}),
        json!({"schedule": {}}),
        json!({"parameters": {"dry_run": true}}),
        json!({"schedule": {"type": "Daily"}, "parameters": {"dry_run": "yes"}}),
    ] {
        api.put(SCHEDULE, ADMIN, bad.clone())
            .await
            .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        api.post(SCHEDULE, ADMIN, bad)
            .await
            .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    // A refused change leaves the schedule alone.
    assert_eq!(
        api.get(SCHEDULE, ADMIN).await.json()["schedule"]["type"],
        "Custom"
    );

    api.put(SCHEDULE, ADMIN, json!({"schedule": {"type": "None"}}))
        .await
        .ok(StatusCode::OK);
    let s = api.get(SCHEDULE, ADMIN).await.json();
    assert_eq!(s["schedule"]["type"], "None");
    assert!(s["schedule"].get("next_scheduled_time").is_none(), "{s}");
}

#[tokio::test]
async fn without_a_job_queue_only_starting_a_run_is_refused() {
    let api = Api::new().await;
    let q = &api.no_queue;
    let manual = json!({"schedule": {"type": "Manual"}});
    for method in [Method::POST, Method::PUT] {
        let r = api
            .send(q, method, SCHEDULE, ADMIN, Some(manual.clone()))
            .await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
        assert!(
            r.json()["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("no job queue is configured"),
            "{}",
            r.text()
        );
    }
    let r = api.send(q, Method::GET, GC, ADMIN, None).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.header("x-total-count"), "0");
    api.send(
        q,
        Method::PUT,
        SCHEDULE,
        ADMIN,
        Some(json!({"schedule": {"type": "Weekly"}})),
    )
    .await
    .ok(StatusCode::OK);
    assert_eq!(
        api.get(SCHEDULE, ADMIN).await.json()["schedule"]["type"],
        "Weekly"
    );
    // Permissions come first.
    api.send(q, Method::POST, SCHEDULE, ANON, Some(manual))
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn garbage_collection_is_for_system_admins() {
    let api = Api::new().await;
    api.team().await;
    let id = api.start(json!({})).await;
    let manual = json!({"schedule": {"type": "Manual"}});
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, GC.to_owned(), None),
        (Method::GET, format!("{GC}/{id}"), None),
        (Method::GET, format!("{GC}/{id}/log"), None),
        (Method::PUT, format!("{GC}/{id}"), Some(json!({}))),
        (Method::GET, SCHEDULE.to_owned(), None),
        (Method::POST, SCHEDULE.to_owned(), Some(manual.clone())),
        (Method::PUT, SCHEDULE.to_owned(), Some(manual)),
    ];
    for (method, path, body) in cases {
        for (who, status, code) in [
            (ANON, StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            (PADMIN, StatusCode::FORBIDDEN, "FORBIDDEN"),
            (DEV, StatusCode::FORBIDDEN, "FORBIDDEN"),
            (OUTSIDER, StatusCode::FORBIDDEN, "FORBIDDEN"),
        ] {
            api.call(method.clone(), &path, who, body.clone())
                .await
                .err(status, code);
        }
    }
    // Nothing was stopped or started by the refused calls.
    assert_eq!(api.run_of(id).await["job_status"], "Running");
    assert_eq!(api.get(GC, ADMIN).await.ids(), [id]);
}

// ---- quotas -----------------------------------------------------------------

#[tokio::test]
async fn quotas_are_listed_read_and_set() {
    let api = Api::new().await;
    let team = api.team().await;
    let big = api
        .project_with("big", ADMIN, json!({"storage_limit": 1_048_576}))
        .await;
    let pushed = api.push("team/app", "v1").await;

    let q = api.quota(team).await;
    assert_eq!(q["id"], team);
    assert_eq!(
        q["ref"],
        json!({"id": team, "name": "team", "owner_name": "padmin"})
    );
    assert_eq!(q["hard"], json!({"storage": -1}));
    assert_eq!(q["used"], json!({"storage": pushed}));
    assert!(q["creation_time"].as_str().unwrap().ends_with('Z'));
    assert!(q["update_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(api.quota(big).await["hard"]["storage"], 1_048_576);

    // Every project (library is 1), by id.
    let r = api.get("/api/v2.0/quotas", ADMIN).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.ids(), [1, team, big]);
    assert_eq!(r.header("x-total-count"), "3");
    let r = api.get("/api/v2.0/quotas?page=2&page_size=2", ADMIN).await;
    assert_eq!(r.ids(), [big]);
    assert_eq!(r.header("x-total-count"), "3");
    let r = api.get("/api/v2.0/quotas?sort=-used.storage", ADMIN).await;
    assert_eq!(r.ids()[0], team);
    let r = api.get("/api/v2.0/quotas?sort=-hard.storage", ADMIN).await;
    assert_eq!(r.ids(), [big, 1, team]);
    let r = api.get("/api/v2.0/quotas?sort=hard.storage", ADMIN).await;
    assert_eq!(r.ids(), [1, team, big]);
    let r = api
        .get(
            &format!("/api/v2.0/quotas?reference=project&reference_id={big}"),
            ADMIN,
        )
        .await;
    assert_eq!(r.ids(), [big]);
    let r = api.get("/api/v2.0/quotas?reference=other", ADMIN).await;
    assert!(r.ids().is_empty());
    api.get("/api/v2.0/quotas?sort=name", ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    // Setting a limit; below usage is allowed (nothing more fits).
    let path = format!("/api/v2.0/quotas/{team}");
    api.put(&path, ADMIN, json!({"hard": {"storage": 10}}))
        .await
        .ok(StatusCode::OK);
    assert_eq!(api.quota(team).await["hard"]["storage"], 10);
    assert_eq!(api.registry.usage("team").await.unwrap().limit, Some(10));
    api.put(&path, ADMIN, json!({"hard": {"storage": -1}}))
        .await
        .ok(StatusCode::OK);
    assert_eq!(api.quota(team).await["hard"]["storage"], -1);
    assert_eq!(api.registry.usage("team").await.unwrap().limit, None);
    assert_eq!(api.audited("quota", "update").await.len(), 2);
    for bad in [
        json!({"hard": {"storage": 0}}),
        json!({"hard": {"storage": -2}}),
        json!({"hard": {"storage": "1GiB"}}),
        json!({"hard": {"count": 1}}),
        json!({"hard": {}}),
        json!({}),
    ] {
        api.put(&path, ADMIN, bad)
            .await
            .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    api.put(
        "/api/v2.0/quotas/999",
        ADMIN,
        json!({"hard": {"storage": 5}}),
    )
    .await
    .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get("/api/v2.0/quotas/999", ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn quotas_are_for_system_admins() {
    let api = Api::new().await;
    let team = api.team().await;
    let path = format!("/api/v2.0/quotas/{team}");
    let cases = [
        (Method::GET, "/api/v2.0/quotas".to_owned(), None),
        (Method::GET, path.clone(), None),
        (
            Method::PUT,
            path.clone(),
            Some(json!({"hard": {"storage": 5}})),
        ),
    ];
    for (method, path, body) in cases {
        for (who, status, code) in [
            (ANON, StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            (PADMIN, StatusCode::FORBIDDEN, "FORBIDDEN"),
            (DEV, StatusCode::FORBIDDEN, "FORBIDDEN"),
            (OUTSIDER, StatusCode::FORBIDDEN, "FORBIDDEN"),
        ] {
            api.call(method.clone(), &path, who, body.clone())
                .await
                .err(status, code);
        }
    }
    assert_eq!(api.quota(team).await["hard"]["storage"], -1);
}

#[tokio::test]
async fn projects_take_a_storage_limit_from_system_admins() {
    let api = Api::new().await;
    api.user("padmin").await;

    let a = api
        .project_with("a", ADMIN, json!({"storage_limit": 2048}))
        .await;
    assert_eq!(api.hard(a).await, 2048);
    let b = api
        .project_with("b", ADMIN, json!({"storage_limit": -1}))
        .await;
    assert_eq!(api.hard(b).await, -1);
    // 0 is Harbor's "the default": unlimited here.
    let c = api
        .project_with("c", ADMIN, json!({"storage_limit": 0}))
        .await;
    assert_eq!(api.hard(c).await, -1);
    api.post(
        "/api/v2.0/projects",
        ADMIN,
        json!({"project_name": "d", "storage_limit": -5}),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(api.get("/api/v2.0/projects/d", ADMIN).await.status == StatusCode::NOT_FOUND);
    // Anyone else's limit is ignored (Harbor gives them the default).
    let e = api
        .project_with("e", PADMIN, json!({"storage_limit": 100}))
        .await;
    assert_eq!(api.hard(e).await, -1);

    // PUT /projects: system admins only.
    api.put(
        "/api/v2.0/projects/e",
        ADMIN,
        json!({"storage_limit": 4096}),
    )
    .await
    .ok(StatusCode::OK);
    assert_eq!(api.hard(e).await, 4096);
    api.put("/api/v2.0/projects/e", PADMIN, json!({"storage_limit": 1}))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.put("/api/v2.0/projects/e", ADMIN, json!({"storage_limit": 0}))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert_eq!(api.hard(e).await, 4096);
    // Other changes by the project admin still go through.
    api.put(
        "/api/v2.0/projects/e",
        PADMIN,
        json!({"metadata": {"public": "true"}}),
    )
    .await
    .ok(StatusCode::OK);
    api.put("/api/v2.0/projects/e", ADMIN, json!({"storage_limit": -1}))
        .await
        .ok(StatusCode::OK);
    assert_eq!(api.hard(e).await, -1);

    // Deleting a project deletes its quota; a new project of the same
    // name starts without a limit.
    let r = api
        .call(Method::DELETE, "/api/v2.0/projects/a", ADMIN, None)
        .await;
    r.ok(StatusCode::OK);
    api.get(&format!("/api/v2.0/quotas/{a}"), ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    let a2 = api.project_with("a", ADMIN, json!({})).await;
    assert_eq!(api.hard(a2).await, -1);
    assert_eq!(api.quota(a2).await["used"]["storage"], 0);
}

#[tokio::test]
async fn the_project_summary_shows_the_quota_to_members() {
    let api = Api::new().await;
    api.team().await;
    let pushed = api.push("team/app", "v1").await;
    api.put(
        "/api/v2.0/projects/team",
        ADMIN,
        json!({"storage_limit": 1_000_000}),
    )
    .await
    .ok(StatusCode::OK);
    for who in [ADMIN, PADMIN, DEV] {
        let r = api.get("/api/v2.0/projects/team/summary", who).await;
        r.ok(StatusCode::OK);
        assert_eq!(
            r.json()["quota"],
            json!({"hard": {"storage": 1_000_000}, "used": {"storage": pushed}})
        );
    }
    // A public project's visitors see no quota (Harbor's public-project
    // policies do not include quota read).
    api.put(
        "/api/v2.0/projects/team",
        ADMIN,
        json!({"metadata": {"public": "true"}}),
    )
    .await
    .ok(StatusCode::OK);
    for who in [ANON, OUTSIDER] {
        let r = api.get("/api/v2.0/projects/team/summary", who).await;
        r.ok(StatusCode::OK);
        assert!(r.json().get("quota").is_none(), "{}", r.text());
    }
}
