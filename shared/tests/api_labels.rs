//! Harbor's labels (`/api/v2.0/labels`), label attachments, search,
//! statistics, health and project summaries, driven with `oneshot` over
//! the embedded stores.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use berth::http::api::api_router;
use berth::iam::Iam;
use berth::iam::directory::DirectoryError;
use berth::iam::labels::{Label, LabelScope};
use berth::oci::{Digest, RepoName};
use berth::registry::Registry;
use berth::store::blob::{BlobError, BlobStore, CompletedPart, ObjectBody};
use berth::store::{Kv, Query};
use serde_json::{Value, json};

#[path = "support/api.rs"]
mod api_support;
mod common;

use api_support::{ADMIN, ANON, Client, DEV, GUEST, LIMITED, OUTSIDER, PADMIN, Resp, Who};

struct Api {
    router: Router,
    iam: Arc<Iam>,
    registry: Registry,
    kv: Arc<dyn Kv>,
    _dir: tempfile::TempDir,
}

impl Client for Api {
    fn router(&self) -> &Router {
        &self.router
    }
}

impl Api {
    async fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let (kv, blobs) = berth::store::open_local(dir.path()).await.unwrap();
        Self::with(dir, kv, blobs).await
    }

    async fn with(dir: tempfile::TempDir, kv: Arc<dyn Kv>, blobs: Arc<dyn BlobStore>) -> Api {
        let seed = "a label test seed that is long enough 0123";
        let p = api_support::parts_on(dir, kv, blobs, seed, Default::default()).await;
        let router = api_router(p.iam.clone(), p.registry.clone(), None);
        Api {
            router,
            iam: p.iam,
            registry: p.registry,
            kv: p.kv,
            _dir: p.dir,
        }
    }

    /// Deletes with an empty JSON body.
    async fn delete(&self, path: &str, who: Who<'_>) -> Resp {
        self.call(Method::DELETE, path, who, Some(json!({}))).await
    }

    /// Users padmin (project admin, owner), dev, guest and limited in the
    /// private project `team`, and outsider in none; returns team's id.
    async fn team(&self) -> i64 {
        for u in ["padmin", "dev", "guest", "limited", "outsider"] {
            self.user(u).await;
        }
        let team = self.project("team", false, PADMIN).await;
        self.member("team", "dev", 2).await;
        self.member("team", "guest", 3).await;
        self.member("team", "limited", 5).await;
        team
    }

    /// Creates a label; returns its id.
    async fn label(&self, who: Who<'_>, body: Value) -> i64 {
        let r = self.post("/api/v2.0/labels", who, body).await;
        r.ok(StatusCode::CREATED);
        let id = r.location_id();
        assert_eq!(r.header("location"), format!("/api/v2.0/labels/{id}"));
        id
    }

    /// Pushes a one-layer image to `repo:tag`; returns its digest.
    async fn push(&self, repo: &str, tag: &str) -> Digest {
        let config =
            format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"repo\":\"{repo}:{tag}\"}}");
        let layer = format!("layer of {repo}:{tag}");
        api_support::push_image(&self.registry, repo, tag, &config, &layer)
            .await
            .0
    }

    async fn audited(&self, operation: &str, resource: &str) -> bool {
        self.audit_log().await.iter().any(|e| {
            e["resource_type"] == "label"
                && e["operation"] == operation
                && e["resource"] == resource
        })
    }
}

#[tokio::test]
async fn label_crud_and_permissions() {
    let api = Api::new().await;
    let team = api.team().await;
    let other = api.project("other", false, ADMIN).await;

    // Global labels: system admins only.
    let g = api
        .label(
            ADMIN,
            json!({"name": "prod", "description": "production", "color": "#FF0000", "scope": "g"}),
        )
        .await;
    api.post(
        "/api/v2.0/labels",
        PADMIN,
        json!({"name": "x", "scope": "g"}),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.post("/api/v2.0/labels", ANON, json!({"name": "x", "scope": "g"}))
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let r = api.get(&format!("/api/v2.0/labels/{g}"), OUTSIDER).await;
    r.ok(StatusCode::OK);
    let j = r.json();
    assert_eq!(j["id"], g);
    assert_eq!(j["name"], "prod");
    assert_eq!(j["description"], "production");
    assert_eq!(j["color"], "#FF0000");
    assert_eq!(j["scope"], "g");
    assert_eq!(j["project_id"], 0);
    assert!(j["creation_time"].as_str().unwrap().ends_with('Z'));
    api.get(&format!("/api/v2.0/labels/{g}"), ANON)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    // Anyone lists global labels (as Harbor).
    let r = api.get("/api/v2.0/labels", ANON).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.names("name"), ["prod"]);
    assert_eq!(r.header("x-total-count"), "1");
    api.put(
        &format!("/api/v2.0/labels/{g}"),
        PADMIN,
        json!({"name": "p"}),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.delete(&format!("/api/v2.0/labels/{g}"), DEV)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");

    // Project labels: label create/update/delete in the project.
    let body = |name: &str| json!({"name": name, "scope": "p", "project_id": team});
    let p = api.label(PADMIN, body("team-only")).await;
    for (who, status, code) in [
        (DEV, StatusCode::FORBIDDEN, "FORBIDDEN"),
        (GUEST, StatusCode::FORBIDDEN, "FORBIDDEN"),
        (OUTSIDER, StatusCode::NOT_FOUND, "NOT_FOUND"),
        (ANON, StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
    ] {
        api.post("/api/v2.0/labels", who, body("nope"))
            .await
            .err(status, code);
    }
    // The project label's scope is inferred from project_id when absent.
    let inferred = api
        .label(ADMIN, json!({"name": "inferred", "project_id": team}))
        .await;
    let path = format!("/api/v2.0/labels/{p}");
    for who in [PADMIN, DEV, GUEST, ADMIN] {
        let r = api.get(&path, who).await;
        r.ok(StatusCode::OK);
        assert_eq!(r.json()["scope"], "p");
        assert_eq!(r.json()["project_id"], team);
    }
    // A limited guest may not read labels; outsiders do not see the project;
    // anonymous callers are asked to sign in.
    api.get(&path, LIMITED)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.get(&path, OUTSIDER)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get(&path, ANON)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.put(&path, DEV, json!({"color": "#00ff00"}))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.put(
        &path,
        PADMIN,
        json!({"name": "team-renamed", "color": "#00ff00"}),
    )
    .await
    .ok(StatusCode::OK);
    let j = api.get(&path, DEV).await.json();
    assert_eq!(j["name"], "team-renamed");
    assert_eq!(j["color"], "#00ff00");
    assert_eq!(j["scope"], "p", "the scope never changes");
    api.put(&path, PADMIN, json!({"scope": "g", "project_id": 0}))
        .await
        .ok(StatusCode::OK);
    assert_eq!(api.get(&path, DEV).await.json()["scope"], "p");

    // Listing a project's labels.
    let list = format!("/api/v2.0/labels?scope=p&project_id={team}");
    let r = api.get(&list, GUEST).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.names("name"), ["inferred", "team-renamed"]);
    assert_eq!(r.header("x-total-count"), "2");
    api.get(&list, OUTSIDER)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get(&list, LIMITED)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.get("/api/v2.0/labels?scope=p", ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.get("/api/v2.0/labels?scope=x", ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.get("/api/v2.0/labels?q=owner%3Dx", ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.get("/api/v2.0/labels?sort=color", ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    // Global labels are not in a project's list, nor project labels in the global one.
    assert_eq!(
        api.get("/api/v2.0/labels?scope=g", ADMIN)
            .await
            .names("name"),
        ["prod"]
    );
    // q can name the scope too.
    let r = api
        .get(
            &format!("/api/v2.0/labels?q=scope%3Dp,project_id%3D{team}"),
            DEV,
        )
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(r.names("name"), ["inferred", "team-renamed"]);

    // Validation.
    for bad in [
        json!({"scope": "g"}),
        json!({"name": "", "scope": "g"}),
        json!({"name": "x".repeat(129), "scope": "g"}),
        json!({"name": "c", "color": "red", "scope": "g"}),
        json!({"name": "c", "color": "#12345", "scope": "g"}),
        json!({"name": "c", "scope": "z"}),
        json!({"name": "c", "scope": "p"}),
        json!({"name": "c", "description": "d".repeat(1025), "scope": "g"}),
    ] {
        api.post("/api/v2.0/labels", ADMIN, bad)
            .await
            .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    api.post(
        "/api/v2.0/labels",
        ADMIN,
        json!({"name": "c", "scope": "p", "project_id": 9999}),
    )
    .await
    .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.put(&path, PADMIN, json!({"name": ""}))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.put(&path, PADMIN, json!({"color": "blue"}))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.get("/api/v2.0/labels/abc", ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.get("/api/v2.0/labels/0", ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.get("/api/v2.0/labels/424242", ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");

    // Names are unique per scope.
    api.post(
        "/api/v2.0/labels",
        ADMIN,
        json!({"name": "prod", "scope": "g"}),
    )
    .await
    .err(StatusCode::CONFLICT, "CONFLICT");
    api.post("/api/v2.0/labels", PADMIN, body("team-renamed"))
        .await
        .err(StatusCode::CONFLICT, "CONFLICT");
    let same_in_team = api.label(PADMIN, body("prod")).await;
    let same_in_other = api
        .label(
            ADMIN,
            json!({"name": "prod", "scope": "p", "project_id": other}),
        )
        .await;
    assert_ne!(same_in_team, same_in_other);
    api.put(&path, PADMIN, json!({"name": "prod"}))
        .await
        .err(StatusCode::CONFLICT, "CONFLICT");
    // The failed rename changed nothing; the old name is free after a rename.
    assert_eq!(api.get(&path, DEV).await.json()["name"], "team-renamed");
    api.label(PADMIN, body("team-only")).await;

    // Deletes.
    api.delete(&path, GUEST)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.delete(&path, PADMIN).await.ok(StatusCode::OK);
    api.get(&path, PADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.delete(&path, PADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    // Its name is free again.
    api.label(PADMIN, body("team-renamed")).await;
    api.delete(&format!("/api/v2.0/labels/{inferred}"), ADMIN)
        .await
        .ok(StatusCode::OK);
    let r = api.get(&list, DEV).await;
    assert_eq!(r.names("name"), ["prod", "team-only", "team-renamed"]);
    assert_eq!(r.header("x-total-count"), "3");

    // Audit.
    assert!(api.audited("create", "prod").await);
    assert!(api.audited("update", "team-renamed").await);
    assert!(api.audited("delete", "team-renamed").await);
}

#[tokio::test]
async fn public_project_labels_are_listed_to_anyone() {
    let api = Api::new().await;
    // The bootstrap project `library` is public.
    let lib = api.get("/api/v2.0/projects/library", ADMIN).await.json()["project_id"]
        .as_i64()
        .unwrap();
    let id = api
        .label(
            ADMIN,
            json!({"name": "shared", "scope": "p", "project_id": lib}),
        )
        .await;
    let r = api
        .get(&format!("/api/v2.0/labels?scope=p&project_id={lib}"), ANON)
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(r.names("name"), ["shared"]);
    api.get(&format!("/api/v2.0/labels/{id}"), ANON)
        .await
        .ok(StatusCode::OK);
    api.delete(&format!("/api/v2.0/labels/{id}"), ANON)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn label_lists_page_filter_and_sort() {
    let api = Api::new().await;
    let kv = api.kv.clone();
    // 25 global labels straight through the store (the API path is the
    // same call), created in reverse name order.
    let labels = api.iam.directory.labels();
    for i in (0..25).rev() {
        labels
            .create(Label {
                id: 0,
                name: format!("l{i:02}"),
                description: if i % 2 == 0 { "even" } else { "odd" }.to_owned(),
                color: String::new(),
                scope: "g".to_owned(),
                project_id: 0,
                created: 1_000 + i,
                updated: 1_000 + i,
            })
            .await
            .unwrap();
    }
    assert_eq!(labels.count(LabelScope::Global).await.unwrap(), 25);
    let mut seen = Vec::new();
    for page in 1..=3 {
        let r = api
            .get(&format!("/api/v2.0/labels?page={page}&page_size=10"), ANON)
            .await;
        r.ok(StatusCode::OK);
        assert_eq!(r.header("x-total-count"), "25");
        let link = r.header("link").to_owned();
        assert_eq!(link.contains("rel=\"next\""), page < 3, "{link}");
        assert_eq!(link.contains("rel=\"prev\""), page > 1, "{link}");
        let names = r.names("name");
        assert_eq!(names.len(), if page < 3 { 10 } else { 5 });
        seen.extend(names);
    }
    let expected: Vec<String> = (0..25).map(|i| format!("l{i:02}")).collect();
    assert_eq!(seen, expected);
    // Following the Link headers (which carry a cursor) gives the same pages.
    let mut url = "/api/v2.0/labels?page_size=10".to_owned();
    let mut followed = Vec::new();
    loop {
        let r = api.get(&url, ANON).await;
        r.ok(StatusCode::OK);
        assert_eq!(r.header("x-total-count"), "25");
        followed.extend(r.names("name"));
        let link = r.header("link").to_owned();
        let Some(next) = link
            .split(" , ")
            .find(|l| l.ends_with("rel=\"next\""))
            .and_then(|l| l.split_once('<'))
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(u, _)| u.to_owned())
        else {
            break;
        };
        assert!(next.contains("cursor="), "{next}");
        url = next;
    }
    assert_eq!(followed, expected);
    api.get("/api/v2.0/labels?cursor=not-a-cursor!", ANON)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let r = api.get("/api/v2.0/labels?page=4&page_size=10", ANON).await;
    r.ok(StatusCode::OK);
    assert!(r.names("name").is_empty());
    assert_eq!(r.header("x-total-count"), "25");
    api.get("/api/v2.0/labels?page_size=101", ANON)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    // Store-level cursor paging crosses page boundaries without repeats.
    let (first, next) = labels.page(LabelScope::Global, None, 7).await.unwrap();
    let (second, _) = labels.page(LabelScope::Global, next, 7).await.unwrap();
    assert_eq!(first.last().unwrap().name, "l06");
    assert_eq!(second.first().unwrap().name, "l07");

    // Fuzzy name filter (in the scope's pages), paged with its own total.
    let r = api
        .get("/api/v2.0/labels?name=l1&page_size=4&page=2", ANON)
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(r.header("x-total-count"), "10");
    assert_eq!(r.names("name"), ["l14", "l15", "l16", "l17"]);
    let r = api.get("/api/v2.0/labels?q=name%3D~l2", ANON).await;
    assert_eq!(r.names("name"), ["l20", "l21", "l22", "l23", "l24"]);
    let r = api
        .get("/api/v2.0/labels?q=description%3Dodd,name%3D~l0", ANON)
        .await;
    assert_eq!(r.names("name"), ["l01", "l03", "l05", "l07", "l09"]);
    let r = api
        .get("/api/v2.0/labels?q=name%3D%7Bl03%20l11%7D", ANON)
        .await;
    assert_eq!(r.names("name"), ["l03", "l11"]);

    // Sorts.
    let r = api
        .get("/api/v2.0/labels?sort=-name&page_size=3", ANON)
        .await;
    assert_eq!(r.names("name"), ["l24", "l23", "l22"]);
    assert_eq!(r.header("x-total-count"), "25");
    let r = api.get("/api/v2.0/labels?sort=id&page_size=2", ANON).await;
    assert_eq!(r.names("name"), ["l24", "l23"], "created in reverse order");
    let r = api
        .get("/api/v2.0/labels?sort=-creation_time&page_size=2", ANON)
        .await;
    assert_eq!(r.names("name"), ["l24", "l23"]);

    // The count follows deletes.
    let l05 = labels
        .page(LabelScope::Global, None, 100)
        .await
        .unwrap()
        .0
        .into_iter()
        .find(|l| l.name == "l05")
        .unwrap();
    api.delete(&format!("/api/v2.0/labels/{}", l05.id), ADMIN)
        .await
        .ok(StatusCode::OK);
    let r = api.get("/api/v2.0/labels?page_size=100", ANON).await;
    assert_eq!(r.header("x-total-count"), "24");
    assert_eq!(r.names("name").len(), 24);
    let count = kv.get("LABELS#g", "COUNT").await.unwrap().unwrap();
    assert_eq!(count.n("n"), Some(24));
}

#[tokio::test]
async fn attachments_and_label_delete_detaches() {
    let api = Api::new().await;
    let team = api.team().await;
    let other = api.project("other", false, ADMIN).await;
    let app: RepoName = "team/app".parse().unwrap();
    let tool: RepoName = "other/tool".parse().unwrap();
    let d1 = api.push("team/app", "v1").await;
    let d2 = api.push("team/app", "v2").await;
    let d3 = api.push("other/tool", "v1").await;
    let global = api
        .label(ADMIN, json!({"name": "gold", "scope": "g"}))
        .await;
    let local = api
        .label(
            PADMIN,
            json!({"name": "qa", "scope": "p", "project_id": team}),
        )
        .await;
    let foreign = api
        .label(
            ADMIN,
            json!({"name": "qa", "scope": "p", "project_id": other}),
        )
        .await;
    let labels = api.iam.directory.labels();

    labels.attach(&app, &d1, global).await.unwrap();
    labels.attach(&app, &d1, local).await.unwrap();
    labels.attach(&app, &d2, global).await.unwrap();
    labels.attach(&tool, &d3, global).await.unwrap();
    labels.attach(&tool, &d3, foreign).await.unwrap();
    let names = |ls: Vec<Label>| ls.into_iter().map(|l| l.name).collect::<Vec<_>>();
    assert_eq!(
        names(labels.labels_of(&app, &d1).await.unwrap()),
        ["gold", "qa"]
    );
    // Twice is a conflict; a project label stays in its project; the label
    // and the artifact must exist.
    assert!(matches!(
        labels.attach(&app, &d1, global).await,
        Err(DirectoryError::Conflict(_))
    ));
    assert!(matches!(
        labels.attach(&tool, &d3, local).await,
        Err(DirectoryError::Invalid(_))
    ));
    assert!(matches!(
        labels.attach(&app, &d3, global).await,
        Err(DirectoryError::NotFound(_))
    ));
    assert!(matches!(
        labels.attach(&app, &d1, 987_654).await,
        Err(DirectoryError::NotFound(_))
    ));

    // Detach.
    labels.detach(&app, &d1, local).await.unwrap();
    assert!(matches!(
        labels.detach(&app, &d1, local).await,
        Err(DirectoryError::NotFound(_))
    ));
    assert_eq!(names(labels.labels_of(&app, &d1).await.unwrap()), ["gold"]);
    labels.attach(&app, &d1, local).await.unwrap();

    // Deleting a label removes it from every artifact, both sides.
    api.delete(&format!("/api/v2.0/labels/{global}"), ADMIN)
        .await
        .ok(StatusCode::OK);
    assert_eq!(names(labels.labels_of(&app, &d1).await.unwrap()), ["qa"]);
    assert!(labels.labels_of(&app, &d2).await.unwrap().is_empty());
    assert_eq!(names(labels.labels_of(&tool, &d3).await.unwrap()), ["qa"]);
    let refs = api
        .kv
        .query(&Query::prefix(format!("LABELREF#{global}"), "", 100))
        .await
        .unwrap();
    assert!(refs.items.is_empty());
    let attached = api
        .kv
        .query(&Query::prefix("REPO#team/app", "LABEL#", 100))
        .await
        .unwrap();
    assert_eq!(attached.items.len(), 1, "only qa on d1 is left");

    // Deleting the artifact takes its labels off in the same transaction
    // and keeps the label's count right, so the label can go.
    api.registry
        .delete_manifest(&app, &berth::oci::Reference::Digest(d1.clone()))
        .await
        .unwrap();
    assert!(labels.labels_of(&app, &d1).await.unwrap().is_empty());
    let refs = api
        .kv
        .query(&Query::prefix(format!("LABELREF#{local}"), "", 100))
        .await
        .unwrap();
    assert!(refs.items.is_empty(), "the reverse entry goes with it");
    api.delete(&format!("/api/v2.0/labels/{local}"), PADMIN)
        .await
        .ok(StatusCode::OK);
    let label_item = api
        .kv
        .get(&format!("LABEL#{foreign}"), "META")
        .await
        .unwrap();
    assert_eq!(label_item.unwrap().n("refs"), Some(1));

    // Many attachments: deleting crosses the delete's batches.
    let many: Vec<Digest> = {
        let mut v = Vec::new();
        for i in 0..70 {
            v.push(api.push("other/tool", &format!("t{i}")).await);
        }
        v
    };
    for d in &many {
        labels.attach(&tool, d, foreign).await.unwrap();
    }
    api.delete(&format!("/api/v2.0/labels/{foreign}"), ADMIN)
        .await
        .ok(StatusCode::OK);
    let attached = api
        .kv
        .query(&Query::prefix("REPO#other/tool", "LABEL#", 1000))
        .await
        .unwrap();
    assert!(attached.items.is_empty());
    assert!(labels.labels_of(&tool, &d3).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_renames_never_duplicate_a_name() {
    let api = Api::new().await;
    let labels = api.iam.directory.labels();
    let mk = |name: &str| Label {
        id: 0,
        name: name.to_owned(),
        description: String::new(),
        color: String::new(),
        scope: "g".to_owned(),
        project_id: 0,
        created: 1,
        updated: 1,
    };
    for round in 0..10 {
        let a = labels.create(mk(&format!("a{round}"))).await.unwrap();
        let b = labels.create(mk(&format!("b{round}"))).await.unwrap();
        let target = format!("same{round}");
        let (na, nb) = (
            Label {
                name: target.clone(),
                ..a.clone()
            },
            Label {
                name: target.clone(),
                ..b.clone()
            },
        );
        let (la, lb) = (labels.clone(), labels.clone());
        let ta = tokio::spawn(async move { la.save(&a, &na).await });
        let tb = tokio::spawn(async move { lb.save(&b, &nb).await });
        let (ra, rb) = (ta.await.unwrap(), tb.await.unwrap());
        assert!(
            ra.is_ok() != rb.is_ok(),
            "exactly one rename wins: {ra:?} {rb:?}"
        );
        let all = labels.list(LabelScope::Global, 1000).await.unwrap();
        assert_eq!(all.iter().filter(|l| l.name == target).count(), 1);
    }
    // Concurrent creates of one name: one wins.
    let (lx, ly) = (labels.clone(), labels.clone());
    let (dx, dy) = (mk("dup"), mk("dup"));
    let tx = tokio::spawn(async move { lx.create(dx).await });
    let ty = tokio::spawn(async move { ly.create(dy).await });
    let (x, y) = (tx.await.unwrap(), ty.await.unwrap());
    assert!(x.is_ok() != y.is_ok());
    assert_eq!(labels.count(LabelScope::Global).await.unwrap(), 21);
}

#[tokio::test]
async fn search_statistics_and_summary() {
    let api = Api::new().await;
    let team = api.team().await;
    api.project("pub2", true, ADMIN).await;
    api.push("library/nginx", "1").await;
    api.push("library/nginx", "2").await;
    api.push("team/app", "1").await;
    api.push("team/nginx-proxy", "1").await;
    api.push("pub2/tool", "1").await;

    let repos = |r: &Resp| -> Vec<String> {
        r.json()["repository"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["repository_name"].as_str().unwrap().to_owned())
            .collect()
    };
    let projects = |r: &Resp| -> Vec<String> {
        r.json()["project"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect()
    };

    // Search: anonymous callers see public projects only.
    let r = api.get("/api/v2.0/search?q=nginx", ANON).await;
    r.ok(StatusCode::OK);
    assert_eq!(repos(&r), ["library/nginx"]);
    assert!(projects(&r).is_empty());
    let hit = &r.json()["repository"][0];
    assert_eq!(hit["project_name"], "library");
    assert_eq!(hit["project_public"], true);
    assert_eq!(hit["artifact_count"], 2);
    assert_eq!(hit["pull_count"], 0);
    assert!(hit["project_id"].as_i64().unwrap() > 0);
    let r = api.get("/api/v2.0/search?q=nginx", DEV).await;
    assert_eq!(repos(&r), ["library/nginx", "team/nginx-proxy"]);
    assert_eq!(
        repos(&api.get("/api/v2.0/search?q=nginx", OUTSIDER).await),
        ["library/nginx"]
    );
    assert_eq!(
        repos(&api.get("/api/v2.0/search?q=NGINX", ADMIN).await),
        ["library/nginx", "team/nginx-proxy"]
    );
    // Projects by name, with the caller's role and repository count.
    let r = api.get("/api/v2.0/search?q=team", DEV).await;
    assert_eq!(projects(&r), ["team"]);
    let p = &r.json()["project"][0];
    assert_eq!(p["project_id"], team);
    assert_eq!(p["repo_count"], 2);
    assert_eq!(p["current_user_role_id"], 2);
    assert_eq!(p["metadata"]["public"], "false");
    // A project name matches its repositories too.
    assert_eq!(repos(&r), ["team/app", "team/nginx-proxy"]);
    let r = api.get("/api/v2.0/search?q=team", OUTSIDER).await;
    assert!(projects(&r).is_empty() && repos(&r).is_empty());
    let r = api.get("/api/v2.0/search?q=", ADMIN).await;
    assert_eq!(projects(&r), ["library", "pub2", "team"]);
    assert_eq!(repos(&r).len(), 4);
    let r = api.get("/api/v2.0/search", ANON).await;
    assert_eq!(projects(&r), ["library", "pub2"]);

    // Statistics.
    api.get("/api/v2.0/statistics", ANON)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let s = api.get("/api/v2.0/statistics", ADMIN).await.json();
    // Storage: what the projects' usage records say, counted exactly.
    let mut storage = 0;
    for p in ["library", "pub2", "team"] {
        let used = api.registry.usage(p).await.unwrap().used;
        assert_eq!(used, api.registry.recount_usage(p).await.unwrap());
        storage += used;
    }
    assert!(storage > 0);
    assert_eq!(
        s,
        json!({"private_project_count": 1, "private_repo_count": 2, "public_project_count": 2,
            "public_repo_count": 2, "total_project_count": 3, "total_repo_count": 4,
            "total_storage_consumption": storage})
    );
    let s = api.get("/api/v2.0/statistics", DEV).await.json();
    assert_eq!(
        s,
        json!({"private_project_count": 1, "private_repo_count": 2, "public_project_count": 2,
            "public_repo_count": 2, "total_project_count": 0, "total_repo_count": 0,
            "total_storage_consumption": 0})
    );
    let s = api.get("/api/v2.0/statistics", OUTSIDER).await.json();
    assert_eq!(s["private_project_count"], 0);
    assert_eq!(s["private_repo_count"], 0);
    assert_eq!(s["public_repo_count"], 2);

    // Project summaries (every role may read the quota).
    let used = api.registry.usage("team").await.unwrap().used;
    let quota = json!({"hard": {"storage": -1}, "used": {"storage": used}});
    let r = api.get("/api/v2.0/projects/team/summary", GUEST).await;
    r.ok(StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"repo_count": 2, "project_admin_count": 1, "maintainer_count": 0,
            "developer_count": 1, "guest_count": 1, "limited_guest_count": 1,
            "quota": quota})
    );
    let r = api
        .get(&format!("/api/v2.0/projects/{team}/summary"), ADMIN)
        .await;
    assert_eq!(r.json()["repo_count"], 2);
    assert_eq!(r.json()["project_admin_count"], 1);
    // Limited guests see no member counts (they may not list members).
    let r = api.get("/api/v2.0/projects/team/summary", LIMITED).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json(), json!({"repo_count": 2, "quota": quota}));
    api.get("/api/v2.0/projects/team/summary", OUTSIDER)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get("/api/v2.0/projects/team/summary", ANON)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let r = api.get("/api/v2.0/projects/library/summary", ANON).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json(), json!({"repo_count": 1}));
    api.get("/api/v2.0/projects/nope/summary", ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = api
        .call_with(
            Method::GET,
            "/api/v2.0/projects/pub2/summary",
            ADMIN,
            &[("X-Is-Resource-Name", "True")],
            None,
        )
        .await;
    assert_eq!(r.json()["repo_count"], 1);
}

#[tokio::test]
async fn health_reports_components() {
    let api = Api::new().await;
    let r = api.get("/api/v2.0/health", ANON).await;
    r.ok(StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"status": "healthy", "components": [
            {"name": "core", "status": "healthy"},
            {"name": "database", "status": "healthy"},
            {"name": "storage", "status": "healthy"},
        ]})
    );

    // A blob store that fails: storage (and so the whole) is unhealthy,
    // without the backend's message.
    let dir = tempfile::tempdir().unwrap();
    let (kv, _) = berth::store::open_local(dir.path()).await.unwrap();
    let broken = Api::with(dir, kv, Arc::new(BrokenBlobs)).await;
    let r = broken.get("/api/v2.0/health", ANON).await;
    r.ok(StatusCode::OK);
    let j = r.json();
    assert_eq!(j["status"], "unhealthy");
    assert_eq!(j["components"][1]["status"], "healthy");
    assert_eq!(j["components"][2]["name"], "storage");
    assert_eq!(j["components"][2]["status"], "unhealthy");
    let e = j["components"][2]["error"].as_str().unwrap();
    assert!(!e.is_empty() && !e.contains("secret-bucket"), "{e}");
}

/// A blob store whose every call fails.
struct BrokenBlobs;

fn broken<T>() -> Result<T, BlobError> {
    Err(BlobError::Backend(
        "secret-bucket is unreachable".to_owned(),
    ))
}

#[async_trait]
impl BlobStore for BrokenBlobs {
    async fn put(&self, _: &str, _: Bytes) -> Result<(), BlobError> {
        broken()
    }
    async fn get(&self, _: &str, _: Option<(u64, u64)>) -> Result<ObjectBody, BlobError> {
        broken()
    }
    async fn head(&self, _: &str) -> Result<Option<u64>, BlobError> {
        broken()
    }
    async fn delete(&self, _: &str) -> Result<(), BlobError> {
        broken()
    }
    async fn list(&self, _: &str, _: Option<&str>, _: usize) -> Result<Vec<String>, BlobError> {
        broken()
    }
    async fn create_multipart(&self, _: &str) -> Result<String, BlobError> {
        broken()
    }
    async fn upload_part(&self, _: &str, _: &str, _: u32, _: Bytes) -> Result<String, BlobError> {
        broken()
    }
    async fn complete_multipart(
        &self,
        _: &str,
        _: &str,
        _: &[CompletedPart],
    ) -> Result<(), BlobError> {
        broken()
    }
    async fn abort_multipart(&self, _: &str, _: &str) -> Result<(), BlobError> {
        broken()
    }
    async fn presign_get(&self, _: &str, _: Duration) -> Result<Option<String>, BlobError> {
        broken()
    }
    fn min_part_size(&self) -> u64 {
        5 * 1024 * 1024
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_racing_a_label_delete_leave_nothing_behind() {
    let api = Api::new().await;
    let repo: RepoName = "library/race".parse().unwrap();
    let mut digests = Vec::new();
    for i in 0..40 {
        digests.push(api.push("library/race", &format!("t{i}")).await);
    }
    let labels = api.iam.directory.labels();
    let label = labels
        .create(Label {
            id: 0,
            name: "racy".to_owned(),
            description: String::new(),
            color: String::new(),
            scope: "g".to_owned(),
            project_id: 0,
            created: 1,
            updated: 1,
        })
        .await
        .unwrap();
    for d in &digests[..10] {
        labels.attach(&repo, d, label.id).await.unwrap();
    }
    let mut tasks = Vec::new();
    for d in digests.drain(10..) {
        let (l, r, id) = (labels.clone(), repo.clone(), label.id);
        tasks.push(tokio::spawn(async move {
            match l.attach(&r, &d, id).await {
                Ok(_) | Err(DirectoryError::NotFound(_)) => {}
                Err(e) => panic!("attach: {e}"),
            }
        }));
    }
    let (l, doomed) = (labels.clone(), label.clone());
    let deleting = tokio::spawn(async move { l.delete(&doomed).await });
    for t in tasks {
        t.await.unwrap();
    }
    deleting.await.unwrap().unwrap();
    assert!(labels.get(label.id).await.unwrap().is_none());
    let refs = api
        .kv
        .query(&Query::prefix(format!("LABELREF#{}", label.id), "", 100))
        .await
        .unwrap();
    assert!(refs.items.is_empty(), "{:?}", refs.items);
    let attached = api
        .kv
        .query(&Query::prefix("REPO#library/race", "LABEL#", 100))
        .await
        .unwrap();
    assert!(attached.items.is_empty(), "{:?}", attached.items);
    assert_eq!(labels.count(LabelScope::Global).await.unwrap(), 0);
}

#[tokio::test]
async fn a_projects_labels_go_with_it() {
    let api = Api::new().await;
    let pid = api.project("doomed", false, ADMIN).await;
    let d = api.push("doomed/app", "1").await;
    let repo: RepoName = "doomed/app".parse().unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            api.label(
                ADMIN,
                json!({"name": format!("n{i}"), "scope": "p", "project_id": pid}),
            )
            .await,
        );
    }
    let labels = api.iam.directory.labels();
    labels.attach(&repo, &d, ids[1]).await.unwrap();
    labels.delete_project_labels(pid).await.unwrap();
    assert_eq!(labels.count(LabelScope::Project(pid)).await.unwrap(), 0);
    assert!(labels.labels_of(&repo, &d).await.unwrap().is_empty());
    for id in ids {
        assert!(labels.get(id).await.unwrap().is_none());
    }
    let r = api
        .get(&format!("/api/v2.0/labels?scope=p&project_id={pid}"), ADMIN)
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(r.header("x-total-count"), "0");
    assert!(r.names("name").is_empty());
}
