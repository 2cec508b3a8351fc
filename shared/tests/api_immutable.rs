//! Harbor's immutable tag rules
//! (`/api/v2.0/projects/{project_name_or_id}/immutabletagrules`), driven
//! with `oneshot` over the embedded stores: CRUD, Harbor's bodies and
//! status codes, validation, the 15-rule cap, paging, and the rules going
//! with their project.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode};
use berth::http::api::api_router;
use berth::policy::immutable::{decode, is_immutable, rules_key};
use berth::store::Kv;
use serde_json::{Value, json};

#[path = "support/api.rs"]
mod api_support;
mod common;

use api_support::{ADMIN, ANON, Client, DEV, MAINT, OUTSIDER, PADMIN, Who};

struct Api {
    router: Router,
    kv: Arc<dyn Kv>,
    _dir: tempfile::TempDir,
}

const TEAM: &str = "/api/v2.0/projects/team/immutabletagrules";

/// A rule as Harbor's portal writes it.
fn rule(repo: &str, tag: &str) -> Value {
    json!({
        "disabled": false,
        "action": "immutable",
        "template": "immutable_template",
        "priority": 0,
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tag}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": repo}]},
    })
}

impl Client for Api {
    fn router(&self) -> &Router {
        &self.router
    }
}

impl Api {
    async fn new() -> Api {
        let p = api_support::parts(
            "an immutable rule test seed, long enough 0123",
            Default::default(),
        )
        .await;
        let router = api_router(p.iam, p.registry, None);
        Api {
            router,
            kv: p.kv,
            _dir: p.dir,
        }
    }

    /// Users padmin (owner), maint (maintainer) and dev (developer) in
    /// the private project `team`, outsider in none; returns team's id.
    async fn team(&self) -> i64 {
        for u in ["padmin", "maint", "dev", "outsider"] {
            self.user(u).await;
        }
        let team = self.project("team", false, PADMIN).await;
        self.member("team", "maint", 4).await;
        self.member("team", "dev", 2).await;
        team
    }

    /// Creates a rule in `team`; returns its id.
    async fn create(&self, who: Who<'_>, body: Value) -> i64 {
        let r = self.post(TEAM, who, body).await;
        r.ok(StatusCode::CREATED);
        let id = r.location_id();
        assert_eq!(r.header("location"), format!("{TEAM}/{id}"));
        id
    }

    /// The rule `id` of `team`, as listed.
    async fn rule(&self, id: i64) -> Option<Value> {
        let r = self.get(&format!("{TEAM}?page_size=100"), ADMIN).await;
        r.ok(StatusCode::OK);
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == id)
            .cloned()
    }

    /// Whether the rules stored for `project` make `repo:tag` immutable
    /// (as the push path reads them: one item).
    async fn immutable(&self, project: &str, repo: &str, tag: &str) -> bool {
        let (pk, sk) = rules_key(project);
        let item = self.kv.get(&pk, &sk).await.unwrap();
        is_immutable(&decode(item.as_ref()), repo, tag)
    }

    async fn audited(&self, operation: &str) -> usize {
        self.audit_log()
            .await
            .iter()
            .filter(|e| e["resource_type"] == "immutable-tag" && e["operation"] == operation)
            .count()
    }
}

#[tokio::test]
async fn rules_crud_with_harbors_shapes() {
    let api = Api::new().await;
    let team = api.team().await;

    let r = api.get(TEAM, PADMIN).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json(), json!([]));
    assert_eq!(r.header("x-total-count"), "0");

    let a = api.create(PADMIN, rule("**", "v*")).await;
    let b = api.create(MAINT, rule("web/**", "{latest,stable}")).await;
    assert!(b > a);
    let r = api.get(TEAM, DEV).await;
    r.err(StatusCode::FORBIDDEN, "FORBIDDEN");
    let r = api.get(TEAM, MAINT).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.ids(), [a, b]);
    assert_eq!(r.header("x-total-count"), "2");
    // Harbor's ToSwagger: no project id, selectors without extras.
    assert_eq!(
        r.json()[0],
        json!({
            "id": a,
            "priority": 0,
            "disabled": false,
            "action": "immutable",
            "template": "immutable_template",
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v*"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
        })
    );
    assert!(api.immutable("team", "app", "v1").await);
    assert!(api.immutable("team", "web/site", "stable").await);
    assert!(!api.immutable("team", "app", "latest").await);

    // By id, and by name with X-Is-Resource-Name.
    let by_id = format!("/api/v2.0/projects/{team}/immutabletagrules");
    let r = api.get(&by_id, PADMIN).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.ids(), [a, b]);
    let c = api
        .post(&format!("{by_id}/"), PADMIN, rule("db/*", "1.*"))
        .await;
    c.ok(StatusCode::CREATED);
    let c_id = c.location_id();
    assert_eq!(c.header("location"), format!("{by_id}/{c_id}"));
    api.delete(&format!("{by_id}/{c_id}"), PADMIN)
        .await
        .ok(StatusCode::OK);
    let r = api
        .raw(
            Method::GET,
            TEAM,
            PADMIN,
            &[("x-is-resource-name", "true")],
            None,
        )
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(r.ids(), [a, b]);

    // PUT replaces the rule (Harbor's portal sends it whole)…
    let mut next = rule("**", "release-*");
    next["id"] = json!(a);
    next["priority"] = json!(3);
    api.put(&format!("{TEAM}/{a}"), MAINT, next)
        .await
        .ok(StatusCode::OK);
    let got = api.rule(a).await.unwrap();
    assert_eq!(got["tag_selectors"][0]["pattern"], "release-*");
    assert_eq!(got["priority"], 3);
    assert!(api.immutable("team", "app", "release-1").await);
    assert!(!api.immutable("team", "app", "v1").await);
    // …or just switches it off and on.
    api.put(
        &format!("{TEAM}/{a}"),
        PADMIN,
        json!({"id": a, "disabled": true}),
    )
    .await
    .ok(StatusCode::OK);
    let got = api.rule(a).await.unwrap();
    assert_eq!(got["disabled"], true);
    assert_eq!(got["tag_selectors"][0]["pattern"], "release-*", "kept");
    assert!(!api.immutable("team", "app", "release-1").await);
    api.put(&format!("{TEAM}/{a}"), PADMIN, json!({"disabled": false}))
        .await
        .ok(StatusCode::OK);
    assert!(api.immutable("team", "app", "release-1").await);

    api.delete(&format!("{TEAM}/{a}"), PADMIN)
        .await
        .ok(StatusCode::OK);
    assert!(api.rule(a).await.is_none());
    api.delete(&format!("{TEAM}/{a}"), PADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.put(&format!("{TEAM}/{a}"), PADMIN, json!({"disabled": true}))
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    assert!(!api.immutable("team", "app", "release-1").await);

    assert_eq!(api.audited("create").await, 3);
    assert_eq!(api.audited("update").await, 3);
    assert_eq!(api.audited("delete").await, 2);
}

#[tokio::test]
async fn harbor_creates_rules_enabled() {
    let api = Api::new().await;
    api.team().await;
    let mut body = rule("**", "**");
    body["disabled"] = json!(true);
    // Harbor's portal leaves these two out at times; they have one value.
    body.as_object_mut().unwrap().remove("action");
    body.as_object_mut().unwrap().remove("template");
    let id = api.create(PADMIN, body).await;
    let got = api.rule(id).await.unwrap();
    assert_eq!(got["disabled"], false);
    assert_eq!(got["action"], "immutable");
    assert_eq!(got["template"], "immutable_template");
}

#[tokio::test]
async fn invalid_rules_are_400() {
    let api = Api::new().await;
    api.team().await;
    let sel = |kind: &str, decoration: &str, pattern: &str| json!([{"kind": kind, "decoration": decoration, "pattern": pattern}]);
    let with = |key: &str, v: Value| {
        let mut r = rule("**", "**");
        r[key] = v;
        r
    };
    let cases = [
        (
            "tag kind",
            with("tag_selectors", sel("regex", "matches", "x")),
        ),
        (
            "tag decoration",
            with("tag_selectors", sel("doublestar", "repoMatches", "x")),
        ),
        (
            "empty pattern",
            with("tag_selectors", sel("doublestar", "matches", "")),
        ),
        (
            "malformed pattern",
            with("tag_selectors", sel("doublestar", "matches", "v[1")),
        ),
        (
            "long pattern",
            with(
                "tag_selectors",
                sel("doublestar", "matches", &"v".repeat(257)),
            ),
        ),
        ("no tag selector", with("tag_selectors", json!([]))),
        ("null tag selectors", with("tag_selectors", Value::Null)),
        ("no scope", with("scope_selectors", json!({}))),
        (
            "repository decoration",
            with(
                "scope_selectors",
                json!({"repository": sel("doublestar", "matches", "**")}),
            ),
        ),
        (
            "unknown scope",
            with(
                "scope_selectors",
                json!({"repository": sel("doublestar", "repoMatches", "**"), "namespace": sel("doublestar", "nsMatches", "x")}),
            ),
        ),
        ("action", with("action", json!("retain"))),
        ("template", with("template", json!("latestPushedK"))),
        ("type", with("priority", json!("high"))),
        ("extras", {
            let mut r = rule("**", "**");
            r["tag_selectors"][0]["extras"] = json!("not json");
            r
        }),
    ];
    for (what, body) in cases {
        let r = api.post(TEAM, PADMIN, body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["errors"][0]["code"], "BAD_REQUEST", "{what}");
    }
    let r = api
        .raw(Method::POST, TEAM, PADMIN, &[], Some("{not json"))
        .await;
    r.err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert_eq!(api.get(TEAM, PADMIN).await.header("x-total-count"), "0");

    let id = api.create(PADMIN, rule("**", "v*")).await;
    // Harbor: the path's id must be the body's.
    let msg = api
        .put(
            &format!("{TEAM}/{id}"),
            PADMIN,
            json!({"id": id + 1, "disabled": true}),
        )
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST")
        .message();
    assert!(msg.contains("doesn't match"), "{msg}");
    api.put(
        &format!("{TEAM}/{id}"),
        PADMIN,
        json!({"tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "["}]}),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.put(&format!("{TEAM}/abc"), PADMIN, json!({}))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert_eq!(
        api.rule(id).await.unwrap()["tag_selectors"][0]["pattern"],
        "v*",
        "a refused change changes nothing"
    );
    for q in [
        "page_size=0",
        "page_size=101",
        "page=0",
        "q=name%3Dx",
        "sort=name",
    ] {
        api.get(&format!("{TEAM}?{q}"), PADMIN)
            .await
            .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn missing_projects_and_rules_are_404() {
    let api = Api::new().await;
    api.team().await;
    api.project("other", false, ADMIN).await;
    let id = api.create(PADMIN, rule("**", "v*")).await;
    let theirs = api
        .post(
            "/api/v2.0/projects/other/immutabletagrules",
            ADMIN,
            rule("**", "x"),
        )
        .await
        .ok(StatusCode::CREATED)
        .location_id();

    for path in [
        "/api/v2.0/projects/nowhere/immutabletagrules",
        "/api/v2.0/projects/999/immutabletagrules",
    ] {
        api.get(path, ADMIN)
            .await
            .err(StatusCode::NOT_FOUND, "NOT_FOUND");
        api.post(path, ADMIN, rule("**", "**"))
            .await
            .err(StatusCode::NOT_FOUND, "NOT_FOUND");
        api.put(&format!("{path}/{id}"), ADMIN, json!({"disabled": true}))
            .await
            .err(StatusCode::NOT_FOUND, "NOT_FOUND");
        api.delete(&format!("{path}/{id}"), ADMIN)
            .await
            .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    // A rule of another project is not found through this one.
    api.put(
        &format!("{TEAM}/{theirs}"),
        ADMIN,
        json!({"disabled": true}),
    )
    .await
    .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.delete(&format!("{TEAM}/{theirs}"), ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.delete(&format!("{TEAM}/424242"), ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    // A private project the caller cannot see is not found; anonymous
    // callers are asked to sign in.
    api.get(TEAM, OUTSIDER)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.post(TEAM, OUTSIDER, rule("**", "**"))
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get(TEAM, ANON)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.delete(&format!("{TEAM}/{id}"), ANON)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert!(api.rule(id).await.is_some());
}

#[tokio::test]
async fn at_most_fifteen_rules_and_no_duplicates() {
    let api = Api::new().await;
    api.team().await;
    let first = api.create(PADMIN, rule("**", "t0")).await;
    let msg = api
        .post(TEAM, PADMIN, rule("**", "t0"))
        .await
        .err(StatusCode::CONFLICT, "CONFLICT")
        .message();
    assert_eq!(msg, "immutable rule already exists");
    for i in 1..15 {
        api.create(PADMIN, rule("**", &format!("t{i}"))).await;
    }
    let msg = api
        .post(TEAM, PADMIN, rule("**", "t15"))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST")
        .message();
    assert!(msg.contains("15"), "{msg}");
    assert_eq!(api.get(TEAM, PADMIN).await.header("x-total-count"), "15");
    // Room again after a delete.
    api.delete(&format!("{TEAM}/{first}"), PADMIN)
        .await
        .ok(StatusCode::OK);
    api.create(PADMIN, rule("**", "t15")).await;
}

#[tokio::test]
async fn rule_lists_page_filter_and_sort() {
    let api = Api::new().await;
    api.team().await;
    let mut ids = Vec::new();
    for i in 0..11 {
        ids.push(api.create(PADMIN, rule("**", &format!("v{i}"))).await);
    }
    for id in &ids[..3] {
        api.put(&format!("{TEAM}/{id}"), PADMIN, json!({"disabled": true}))
            .await
            .ok(StatusCode::OK);
    }
    let r = api.get(&format!("{TEAM}?page=2&page_size=4"), PADMIN).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.ids(), ids[4..8]);
    assert_eq!(r.header("x-total-count"), "11");
    let link = r.header("link");
    assert!(
        link.contains("rel=\"prev\"") && link.contains("rel=\"next\""),
        "{link}"
    );
    assert!(link.contains("page=3"), "{link}");
    let r = api.get(&format!("{TEAM}?page=3&page_size=4"), PADMIN).await;
    assert_eq!(r.ids(), ids[8..]);
    assert!(!r.header("link").contains("rel=\"next\""));
    let r = api.get(&format!("{TEAM}?page=9&page_size=4"), PADMIN).await;
    r.ok(StatusCode::OK);
    assert!(r.ids().is_empty());
    assert_eq!(r.header("x-total-count"), "11");
    // Sorted by id, either way.
    let r = api
        .get(&format!("{TEAM}?sort=-id&page_size=2"), PADMIN)
        .await;
    assert_eq!(r.ids(), [ids[10], ids[9]]);
    // Filtered by the switch, or by id.
    let r = api.get(&format!("{TEAM}?q=disabled%3Dtrue"), PADMIN).await;
    assert_eq!(r.ids(), ids[..3]);
    assert_eq!(r.header("x-total-count"), "3");
    let r = api
        .get(&format!("{TEAM}?q=disabled%3DFalse&page_size=100"), PADMIN)
        .await;
    assert_eq!(r.ids(), ids[3..]);
    let r = api.get(&format!("{TEAM}?q=id%3D{}", ids[5]), PADMIN).await;
    assert_eq!(r.ids(), [ids[5]]);
}

#[tokio::test]
async fn a_projects_rules_go_with_it() {
    let api = Api::new().await;
    api.project("doomed", false, ADMIN).await;
    let path = "/api/v2.0/projects/doomed/immutabletagrules";
    for t in ["a", "b"] {
        api.post(path, ADMIN, rule("**", t))
            .await
            .ok(StatusCode::CREATED);
    }
    assert!(api.immutable("doomed", "x", "a").await);
    api.delete("/api/v2.0/projects/doomed", ADMIN)
        .await
        .ok(StatusCode::OK);
    assert!(!api.immutable("doomed", "x", "a").await);
    // A project of the same name starts with none.
    api.project("doomed", false, ADMIN).await;
    let r = api.get(path, ADMIN).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.header("x-total-count"), "0");
    api.post(path, ADMIN, rule("**", "a"))
        .await
        .ok(StatusCode::CREATED);
    assert!(api.immutable("doomed", "x", "a").await);
}
