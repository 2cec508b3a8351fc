//! Harbor's identity management API (`/api/v2.0` users, projects,
//! members, robots, audit logs; `/c/login`, `/c/log_out`), driven with
//! `oneshot` over the embedded stores.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use berth::http::api::api_router;
use berth::iam::Iam;
use berth::iam::directory::Settings;
use berth::store::{Attr, Item, WriteOp};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

#[path = "support/api.rs"]
mod api_support;
mod common;

use api_support::{ADMIN, Client, PW, Resp, Who, now};

struct Api {
    router: Router,
    iam: Arc<Iam>,
    registry: berth::registry::Registry,
    _dir: tempfile::TempDir,
}

impl Client for Api {
    fn router(&self) -> &Router {
        &self.router
    }
}

impl Api {
    async fn new() -> Api {
        let p = api_support::parts(
            "an api test seed that is long enough 0123",
            Default::default(),
        )
        .await;
        let router = api_router(
            p.iam.clone(),
            p.registry.clone(),
            Some("https://registry.example.com:8443".to_owned()),
        );
        Api {
            router,
            iam: p.iam,
            registry: p.registry,
            _dir: p.dir,
        }
    }

    /// Logs in; returns the session id and the CSRF token.
    async fn login(&self, user: &str, pass: &str) -> (String, String) {
        let form = format!("principal={user}&password={}", pass.replace('+', "%2B"));
        let req = Request::builder()
            .method(Method::POST)
            .uri("/c/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert!(cookie.contains("Secure"), "https public URL: {cookie}");
        let sid = cookie
            .strip_prefix("sid=")
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_owned();
        let csrf = resp.headers()["x-harbor-csrf-token"]
            .to_str()
            .unwrap()
            .to_owned();
        (sid, csrf)
    }

    /// The global audit log's entries (newest first).
    async fn audit(&self, q: &str) -> Vec<Value> {
        let r = self
            .get(&format!("/api/v2.0/audit-logs?page_size=100&q={q}"), ADMIN)
            .await;
        r.ok(StatusCode::OK);
        r.json().as_array().unwrap().clone()
    }

    async fn has_audit(&self, resource_type: &str, operation: &str, resource: &str) -> bool {
        self.audit("").await.iter().any(|e| {
            e["resource_type"] == resource_type
                && e["operation"] == operation
                && e["resource"] == resource
        })
    }
}

const ALICE: Who<'static> = Who::Basic("alice", PW);
const BOB: Who<'static> = Who::Basic("bob", PW);
const CAROL: Who<'static> = Who::Basic("carol", PW);

#[tokio::test]
async fn ping_systeminfo_errors_and_paths() {
    let api = Api::new().await;
    let r = api.get("/api/v2.0/ping", Who::Anon).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.body, "Pong");
    // Trailing slashes are accepted.
    api.get("/api/v2.0/ping/", Who::Anon)
        .await
        .ok(StatusCode::OK);

    let info = api.get("/api/v2.0/systeminfo", Who::Anon).await;
    info.ok(StatusCode::OK);
    let j = info.json();
    assert_eq!(j["auth_mode"], "db_auth");
    assert_eq!(j["registry_url"], "registry.example.com:8443");
    assert_eq!(j["external_url"], "https://registry.example.com:8443");
    assert_eq!(j["self_registration"], false);
    assert_eq!(j["project_creation_restriction"], "everyone");
    assert!(j["harbor_version"].as_str().unwrap().starts_with("berth-"));
    assert_eq!(j["has_ca_root"], false);
    assert_eq!(j["read_only"], false);

    // The Host header gives the registry URL when no public URL is set.
    let plain = api_router(api.iam.clone(), api.registry.clone(), None);
    let req = Request::builder()
        .uri("/api/v2.0/systeminfo")
        .header("host", "reg.local:5000")
        .body(Body::empty())
        .unwrap();
    let resp = plain.oneshot(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let j: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(j["registry_url"], "reg.local:5000");

    api.get("/api/v2.0/no/such/thing", Who::Anon)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.call(Method::DELETE, "/api/v2.0/ping", Who::Anon, None)
        .await
        .err(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    // Wrong credentials are refused even where none are needed.
    api.get("/api/v2.0/ping", Who::Basic("admin", "Wrong12345"))
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.get(
        "/api/v2.0/users/current",
        Who::Basic("nobody", "Wrong12345"),
    )
    .await
    .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let r = api
        .raw(
            Method::GET,
            "/api/v2.0/users/current",
            Who::Anon,
            &[("authorization", "Bearer abc")],
            None,
        )
        .await;
    r.err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.get("/api/v2.0/users/current", Who::Anon)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn users_lifecycle_and_refusals() {
    let api = Api::new().await;
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    assert!(alice > 1 && bob > alice);

    // Duplicates, password rules, names, malformed bodies.
    let dup = json!({"username": "alice", "password": PW});
    api.call(Method::POST, "/api/v2.0/users", ADMIN, Some(dup))
        .await
        .err(StatusCode::CONFLICT, "CONFLICT");
    let weak = json!({"username": "dave", "password": "weak"});
    api.call(Method::POST, "/api/v2.0/users", ADMIN, Some(weak))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let bad_name = json!({"username": "robot$x", "password": PW});
    api.call(Method::POST, "/api/v2.0/users", ADMIN, Some(bad_name))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.raw(
        Method::POST,
        "/api/v2.0/users",
        ADMIN,
        &[],
        Some("{not json"),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.raw(Method::POST, "/api/v2.0/users", ADMIN, &[], Some("[1,2]"))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    // Creation: admin only while self-registration is off.
    let dave = json!({"username": "dave", "password": PW});
    api.call(
        Method::POST,
        "/api/v2.0/users",
        Who::Anon,
        Some(dave.clone()),
    )
    .await
    .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.call(Method::POST, "/api/v2.0/users", ALICE, Some(dave.clone()))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    let settings = Settings {
        self_registration: true,
        ..Settings::default()
    };
    api.iam.directory.save_settings(&settings).await.unwrap();
    api.call(Method::POST, "/api/v2.0/users", Who::Anon, Some(dave))
        .await
        .ok(StatusCode::CREATED);

    // Listing: admins only, without the built-in admin, paged.
    let list = api.get("/api/v2.0/users?page_size=2", ADMIN).await;
    list.ok(StatusCode::OK);
    assert_eq!(list.header("x-total-count"), "3");
    assert!(
        list.header("link").contains("rel=\"next\""),
        "{}",
        list.header("link")
    );
    let names: Vec<Value> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].clone())
        .collect();
    assert_eq!(names, vec![json!("alice"), json!("bob")]);
    let filtered = api.get("/api/v2.0/users?username=ob", ADMIN).await;
    assert_eq!(filtered.json().as_array().unwrap().len(), 1);
    api.get("/api/v2.0/users", ALICE)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.get("/api/v2.0/users", Who::Anon)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // Current user, search, one user.
    let me = api.get("/api/v2.0/users/current", ALICE).await;
    me.ok(StatusCode::OK);
    let j = me.json();
    assert_eq!(
        (j["username"].clone(), j["user_id"].clone()),
        (json!("alice"), json!(alice))
    );
    assert_eq!(j["sysadmin_flag"], false);
    assert!(j["creation_time"].as_str().unwrap().ends_with('Z'));
    assert!(j.get("hash").is_none() && j.get("password").is_none());
    let found = api.get("/api/v2.0/users/search?username=ali", BOB).await;
    found.ok(StatusCode::OK);
    assert_eq!(
        found.json(),
        json!([{"user_id": alice, "username": "alice"}])
    );
    api.get(&format!("/api/v2.0/users/{bob}"), ALICE)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.get(&format!("/api/v2.0/users/{bob}"), ADMIN)
        .await
        .ok(StatusCode::OK);
    api.get("/api/v2.0/users/999", ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get("/api/v2.0/users/abc", ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    // Profile update.
    let profile = json!({"email": "a@example.org", "realname": "Alice A", "comment": "hi"});
    api.call(
        Method::PUT,
        &format!("/api/v2.0/users/{alice}"),
        ALICE,
        Some(profile),
    )
    .await
    .ok(StatusCode::OK);
    let j = api
        .get(&format!("/api/v2.0/users/{alice}"), ALICE)
        .await
        .json();
    assert_eq!(
        (j["email"].clone(), j["realname"].clone()),
        (json!("a@example.org"), json!("Alice A"))
    );
    api.call(
        Method::PUT,
        &format!("/api/v2.0/users/{alice}"),
        BOB,
        Some(json!({"comment": "x"})),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");

    // Passwords: the old one for oneself, the rules, none for an admin.
    let pw = format!("/api/v2.0/users/{alice}/password");
    api.call(
        Method::PUT,
        &pw,
        ALICE,
        Some(json!({"old_password": "Wrong12345", "new_password": "Newpass123"})),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(
        Method::PUT,
        &pw,
        ALICE,
        Some(json!({"old_password": PW, "new_password": "short"})),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.call(
        Method::PUT,
        &pw,
        ALICE,
        Some(json!({"new_password": "Newpass123"})),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.call(
        Method::PUT,
        &pw,
        BOB,
        Some(json!({"new_password": "Newpass123"})),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(
        Method::PUT,
        &pw,
        ALICE,
        Some(json!({"old_password": PW, "new_password": "Newpass123"})),
    )
    .await
    .ok(StatusCode::OK);
    api.get("/api/v2.0/users/current", ALICE)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.get("/api/v2.0/users/current", Who::Basic("alice", "Newpass123"))
        .await
        .ok(StatusCode::OK);
    api.call(Method::PUT, &pw, ADMIN, Some(json!({"new_password": PW})))
        .await
        .ok(StatusCode::OK);
    api.get("/api/v2.0/users/current", ALICE)
        .await
        .ok(StatusCode::OK);

    // The sysadmin flag.
    let sa = format!("/api/v2.0/users/{bob}/sysadmin");
    api.call(
        Method::PUT,
        &sa,
        ALICE,
        Some(json!({"sysadmin_flag": true})),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(
        Method::PUT,
        &sa,
        ADMIN,
        Some(json!({"sysadmin_flag": true})),
    )
    .await
    .ok(StatusCode::OK);
    assert_eq!(
        api.get("/api/v2.0/users/current", BOB).await.json()["sysadmin_flag"],
        true
    );
    api.get("/api/v2.0/users", BOB).await.ok(StatusCode::OK);
    api.call(Method::PUT, &sa, BOB, Some(json!({"sysadmin_flag": false})))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(
        Method::PUT,
        &sa,
        ADMIN,
        Some(json!({"sysadmin_flag": false})),
    )
    .await
    .ok(StatusCode::OK);
    api.get("/api/v2.0/users", BOB)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");

    // Deletion: admins only, never oneself; `{}` bodies are fine.
    api.call(
        Method::DELETE,
        &format!("/api/v2.0/users/{bob}"),
        ALICE,
        Some(json!({})),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(Method::DELETE, "/api/v2.0/users/1", ADMIN, Some(json!({})))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(
        Method::DELETE,
        &format!("/api/v2.0/users/{bob}"),
        ADMIN,
        Some(json!({})),
    )
    .await
    .ok(StatusCode::OK);
    api.get(&format!("/api/v2.0/users/{bob}"), ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get("/api/v2.0/users/current", BOB)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // Every change is audited.
    assert!(api.has_audit("user", "create", "alice").await);
    assert!(api.has_audit("user", "create", "dave").await);
    assert!(api.has_audit("user", "update", "alice").await);
    assert!(api.has_audit("user", "change_password", "alice").await);
    assert!(api.has_audit("user", "update", "bob").await);
    assert!(api.has_audit("user", "delete", "bob").await);
}

#[tokio::test]
async fn cookie_sessions_csrf_and_password_change() {
    let api = Api::new().await;
    let alice = api.user("alice").await;

    // A failed login: 401, audited.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/c/login")
        .header("x-forwarded-for", "203.0.113.9, 10.0.0.1")
        .body(Body::from("principal=alice&password=Nope12345"))
        .unwrap();
    let resp = api.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(api.has_audit("user", "login_failed", "alice").await);

    let (sid, csrf) = api.login("alice", PW).await;
    assert!(api.has_audit("user", "login", "alice").await);
    let r = api
        .get("/api/v2.0/users/current", Who::Cookie(&sid, None))
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json()["username"], "alice");
    assert_eq!(r.header("x-harbor-csrf-token"), csrf);

    // Unsafe methods need the session's CSRF token.
    let body = Some(json!({"project_name": "web", "public": false}));
    api.call(
        Method::POST,
        "/api/v2.0/projects",
        Who::Cookie(&sid, None),
        body.clone(),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    let r = api
        .call(
            Method::POST,
            "/api/v2.0/projects",
            Who::Cookie(&sid, Some("wrong")),
            body.clone(),
        )
        .await;
    r.err(StatusCode::FORBIDDEN, "FORBIDDEN");
    assert!(
        r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("CSRF")
    );
    api.call(
        Method::POST,
        "/api/v2.0/projects",
        Who::Cookie(&sid, Some(&csrf)),
        body,
    )
    .await
    .ok(StatusCode::CREATED);
    // Basic authentication needs no CSRF token.
    api.project("web2", false, ALICE).await;

    // A password change ends the sessions issued before it.
    let pw = format!("/api/v2.0/users/{alice}/password");
    api.call(
        Method::PUT,
        &pw,
        ALICE,
        Some(json!({"old_password": PW, "new_password": "Newpass123"})),
    )
    .await
    .ok(StatusCode::OK);
    api.get("/api/v2.0/users/current", Who::Cookie(&sid, None))
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // Logging out ends a session and expires the cookie.
    let (sid2, _) = api.login("alice", "Newpass123").await;
    api.get("/api/v2.0/users/current", Who::Cookie(&sid2, None))
        .await
        .ok(StatusCode::OK);
    let r = api.get("/c/log_out", Who::Cookie(&sid2, None)).await;
    r.ok(StatusCode::OK);
    assert!(r.header("set-cookie").contains("Max-Age=0"));
    api.get("/api/v2.0/users/current", Who::Cookie(&sid2, None))
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // Robots cannot log in to the portal.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/c/login")
        .body(Body::from("principal=robot%24x&password=Secret123"))
        .unwrap();
    let resp = api.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn projects_visibility_updates_and_deletion() {
    let api = Api::new().await;
    api.user("alice").await;
    api.user("bob").await;
    let team = api.project("team", false, ALICE).await;

    // Creation refusals.
    let req = json!({"project_name": "team"});
    api.call(Method::POST, "/api/v2.0/projects", ALICE, Some(req))
        .await
        .err(StatusCode::CONFLICT, "CONFLICT");
    api.call(
        Method::POST,
        "/api/v2.0/projects",
        ALICE,
        Some(json!({"project_name": "Bad Name"})),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.call(
        Method::POST,
        "/api/v2.0/projects",
        ALICE,
        Some(json!({"project_name": "x", "metadata": {"public": "maybe"}})),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.call(
        Method::POST,
        "/api/v2.0/projects",
        Who::Anon,
        Some(json!({"project_name": "anon"})),
    )
    .await
    .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.raw(
        Method::POST,
        "/api/v2.0/projects",
        ALICE,
        &[],
        Some("{\"project_name\":"),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let adminonly = Settings {
        project_creation_restriction: "adminonly".to_owned(),
        ..Settings::default()
    };
    api.iam.directory.save_settings(&adminonly).await.unwrap();
    api.call(
        Method::POST,
        "/api/v2.0/projects",
        BOB,
        Some(json!({"project_name": "bobs"})),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    // A boolean `public` works too.
    let r = api
        .call(
            Method::POST,
            "/api/v2.0/projects",
            ADMIN,
            Some(json!({"project_name": "open", "public": true})),
        )
        .await;
    r.ok(StatusCode::CREATED);
    assert!(r.header("location").starts_with("/api/v2.0/projects/"));
    assert!(r.body.is_empty());
    api.iam
        .directory
        .save_settings(&Settings::default())
        .await
        .unwrap();

    // HEAD by name.
    let head = |name: &str| format!("/api/v2.0/projects?project_name={name}");
    api.call(Method::HEAD, &head("team"), BOB, None)
        .await
        .ok(StatusCode::OK);
    api.call(Method::HEAD, &head("nope"), BOB, None)
        .await
        .ok(StatusCode::NOT_FOUND);

    // One project: the owner sees it with its role; outsiders get 404.
    let r = api.get("/api/v2.0/projects/team", ALICE).await;
    r.ok(StatusCode::OK);
    let j = r.json();
    assert_eq!(j["project_id"], team);
    assert_eq!(j["owner_name"], "alice");
    assert_eq!(j["metadata"]["public"], "false");
    assert_eq!(j["current_user_role_id"], 1);
    assert_eq!(j["current_user_role_ids"], json!([1]));
    assert_eq!(j["repo_count"], 0);
    assert!(j["creation_time"].as_str().unwrap().contains('T'));
    api.get(&format!("/api/v2.0/projects/{team}"), ALICE)
        .await
        .ok(StatusCode::OK);
    api.get("/api/v2.0/projects/team", BOB)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get("/api/v2.0/projects/team", Who::Anon)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.call(
        Method::HEAD,
        &format!("/api/v2.0/projects/{team}"),
        ALICE,
        None,
    )
    .await
    .ok(StatusCode::OK);
    api.get("/api/v2.0/projects/library", Who::Anon)
        .await
        .ok(StatusCode::OK);
    // X-Is-Resource-Name: a numeric name is a name.
    api.project("123", false, ALICE).await;
    let r = api
        .raw(
            Method::GET,
            "/api/v2.0/projects/123",
            ALICE,
            &[("X-Is-Resource-Name", "True")],
            None,
        )
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json()["name"], "123");

    // Listing: public projects and one's own.
    let names = |r: &Resp| -> Vec<String> {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let anon = api.get("/api/v2.0/projects", Who::Anon).await;
    assert_eq!(names(&anon), vec!["library", "open"]);
    let mine = api.get("/api/v2.0/projects?page_size=100", ALICE).await;
    assert_eq!(names(&mine), vec!["123", "library", "open", "team"]);
    assert_eq!(mine.header("x-total-count"), "4");
    let all = api.get("/api/v2.0/projects?public=False", ADMIN).await;
    assert_eq!(names(&all), vec!["123", "team"]);
    let by_name = api.get("/api/v2.0/projects?name=ea", ALICE).await;
    assert_eq!(names(&by_name), vec!["team"]);
    let by_owner = api.get("/api/v2.0/projects?owner=admin", ALICE).await;
    assert_eq!(names(&by_owner), vec!["library", "open"]);
    let paged = api
        .get("/api/v2.0/projects?page=2&page_size=1", ALICE)
        .await;
    assert_eq!(names(&paged), vec!["library"]);
    assert!(paged.header("link").contains("rel=\"prev\""));
    assert!(paged.header("link").contains("page=3"));

    // Updates: only project admins; outsiders do not learn it exists.
    let public = Some(json!({"metadata": {"public": "true"}}));
    api.call(Method::PUT, "/api/v2.0/projects/team", BOB, public.clone())
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.call(Method::PUT, "/api/v2.0/projects/team", ALICE, public)
        .await
        .ok(StatusCode::OK);
    let r = api.get("/api/v2.0/projects/team", BOB).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json()["metadata"]["public"], "true");
    assert_eq!(r.json()["current_user_role_id"], 0);
    api.call(
        Method::PUT,
        "/api/v2.0/projects/team",
        BOB,
        Some(json!({"public": false})),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(
        Method::DELETE,
        "/api/v2.0/projects/team",
        BOB,
        Some(json!({})),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");

    // Deletion: refused while repositories exist; members go with it.
    let kv = api.iam.directory.kv().clone();
    // (the registry's per-project repository counter, as a push keeps it)
    kv.write(WriteOp::put(
        Item::new("PSTATS#team", "META").with("repos", Attr::N(1)),
    ))
    .await
    .unwrap();
    assert_eq!(
        api.get("/api/v2.0/projects/team", ALICE).await.json()["repo_count"],
        1
    );
    api.call(
        Method::DELETE,
        "/api/v2.0/projects/team",
        ALICE,
        Some(json!({})),
    )
    .await
    .err(StatusCode::PRECONDITION_FAILED, "PRECONDITION");
    kv.write(WriteOp::delete("PSTATS#team", "META"))
        .await
        .unwrap();
    api.call(
        Method::DELETE,
        "/api/v2.0/projects/team",
        ALICE,
        Some(json!({})),
    )
    .await
    .ok(StatusCode::OK);
    api.get("/api/v2.0/projects/team", ALICE)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    assert!(
        api.iam
            .directory
            .member("team", "alice")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        api.iam
            .directory
            .memberships("alice")
            .await
            .unwrap()
            .iter()
            .all(|(p, _)| p != "team")
    );

    assert!(api.has_audit("project", "create", "team").await);
    assert!(api.has_audit("project", "update", "team").await);
    assert!(api.has_audit("project", "delete", "team").await);
}

#[tokio::test]
async fn members_by_role() {
    let api = Api::new().await;
    api.user("alice").await;
    let bob = api.user("bob").await;
    let carol = api.user("carol").await;
    let team = api.project("team", false, ALICE).await;
    let members = "/api/v2.0/projects/team/members";

    // The project admin adds bob as a guest.
    let r = api
        .call(
            Method::POST,
            members,
            ALICE,
            Some(json!({"role_id": 3, "member_user": {"username": "bob"}})),
        )
        .await;
    r.ok(StatusCode::CREATED);
    assert!(
        r.header("location")
            .starts_with("/api/v2.0/projects/team/members/")
    );
    let mid = r.location_id();
    api.call(
        Method::POST,
        members,
        ALICE,
        Some(json!({"role_id": 2, "member_user": {"user_id": bob}})),
    )
    .await
    .err(StatusCode::CONFLICT, "CONFLICT");
    api.call(
        Method::POST,
        members,
        ALICE,
        Some(json!({"role_id": 9, "member_user": {"username": "carol"}})),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.call(
        Method::POST,
        members,
        ALICE,
        Some(json!({"role_id": 2, "member_user": {"username": "zed"}})),
    )
    .await
    .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.raw(
        Method::POST,
        members,
        ALICE,
        &[],
        Some("{\"role_id\": \"x\"}"),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    // A guest reads members but changes nothing.
    let list = api.get(members, BOB).await;
    list.ok(StatusCode::OK);
    let arr = list.json();
    assert_eq!(arr.as_array().unwrap().len(), 2);
    let bob_entry = arr
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["entity_name"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(bob_entry["entity_type"], "u");
    assert_eq!(bob_entry["role_name"], "guest");
    assert_eq!(bob_entry["project_id"], team);
    assert_eq!(bob_entry["entity_id"], bob);
    api.call(
        Method::POST,
        members,
        BOB,
        Some(json!({"role_id": 3, "member_user": {"username": "carol"}})),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    let one = format!("{members}/{mid}");
    api.call(Method::PUT, &one, BOB, Some(json!({"role_id": 1})))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(Method::DELETE, &one, BOB, Some(json!({})))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    // Outsiders do not see the project; anonymous callers are asked to sign in.
    api.get(members, CAROL)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get(members, Who::Anon)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // The project admin changes and reads the role, by project id too.
    api.call(Method::PUT, &one, ALICE, Some(json!({"role_id": 2})))
        .await
        .ok(StatusCode::OK);
    let r = api
        .get(&format!("/api/v2.0/projects/{team}/members/{mid}"), BOB)
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(
        (r.json()["role_id"].clone(), r.json()["role_name"].clone()),
        (json!(2), json!("developer"))
    );
    let filtered = api.get(&format!("{members}?entityname=ob"), ALICE).await;
    assert_eq!(filtered.json().as_array().unwrap().len(), 1);
    api.get(&format!("{members}/9999"), ALICE)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    // Bob, now a member, sees the private project.
    api.get("/api/v2.0/projects/team", BOB)
        .await
        .ok(StatusCode::OK);
    let r = api
        .call(
            Method::POST,
            members,
            ALICE,
            Some(json!({"role_id": 3, "member_user": {"user_id": carol}})),
        )
        .await;
    r.ok(StatusCode::CREATED);

    api.call(Method::DELETE, &one, ALICE, Some(json!({})))
        .await
        .ok(StatusCode::OK);
    api.get("/api/v2.0/projects/team", BOB)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");

    assert!(api.has_audit("member", "create", "bob").await);
    assert!(api.has_audit("member", "update", "bob").await);
    assert!(api.has_audit("member", "delete", "bob").await);
    // The project's log holds them; a guest may list it, outsiders not.
    let log = api.get("/api/v2.0/projects/team/logs", CAROL).await;
    log.ok(StatusCode::OK);
    assert!(
        log.json()
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource_type"] == "member")
    );
    api.get("/api/v2.0/projects/team/logs", BOB)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
}

fn robot_req(name: &str, project: &str, duration: i64) -> Value {
    json!({
        "name": name,
        "description": "ci pusher",
        "level": "project",
        "duration": duration,
        "disable": false,
        "permissions": [{
            "kind": "project",
            "namespace": project,
            "access": [
                {"resource": "repository", "action": "pull", "effect": "allow"},
                {"resource": "repository", "action": "push", "effect": "allow"}
            ]
        }]
    })
}

#[tokio::test]
async fn robots_lifecycle() {
    let api = Api::new().await;
    api.user("alice").await;
    api.user("bob").await;
    api.user("carol").await;
    let team = api.project("team", false, ALICE).await;
    api.call(
        Method::POST,
        "/api/v2.0/projects/team/members",
        ALICE,
        Some(json!({"role_id": 3, "member_user": {"username": "bob"}})),
    )
    .await
    .ok(StatusCode::CREATED);

    // A never-expiring project robot.
    let r = api
        .call(
            Method::POST,
            "/api/v2.0/robots",
            ALICE,
            Some(robot_req("ci", "team", -1)),
        )
        .await;
    r.ok(StatusCode::CREATED);
    let created = r.json();
    assert_eq!(created["name"], "robot$team+ci");
    assert_eq!(created["expires_at"], -1);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    let ci = created["id"].as_i64().unwrap();
    assert_eq!(r.location_id(), ci);
    // It authenticates and sees its project.
    let ci_who = Who::Basic("robot$team+ci", &secret);
    api.get("/api/v2.0/projects/team", ci_who)
        .await
        .ok(StatusCode::OK);
    api.get("/api/v2.0/users/current", ci_who)
        .await
        .err(StatusCode::PRECONDITION_FAILED, "PRECONDITION");

    // One living N days.
    let r = api
        .call(
            Method::POST,
            "/api/v2.0/robots",
            ALICE,
            Some(robot_req("week", "team", 7)),
        )
        .await;
    r.ok(StatusCode::CREATED);
    let exp = r.json()["expires_at"].as_i64().unwrap();
    assert!((exp - (now() + 7 * 86_400)).abs() < 60, "{exp}");

    // Refusals.
    api.call(
        Method::POST,
        "/api/v2.0/robots",
        ALICE,
        Some(robot_req("ci", "team", -1)),
    )
    .await
    .err(StatusCode::CONFLICT, "CONFLICT");
    api.call(
        Method::POST,
        "/api/v2.0/robots",
        BOB,
        Some(robot_req("bobs", "team", -1)),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(
        Method::POST,
        "/api/v2.0/robots",
        CAROL,
        Some(robot_req("carols", "team", -1)),
    )
    .await
    .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.call(
        Method::POST,
        "/api/v2.0/robots",
        Who::Anon,
        Some(robot_req("x", "team", -1)),
    )
    .await
    .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.call(
        Method::POST,
        "/api/v2.0/robots",
        ci_who,
        Some(robot_req("child", "team", -1)),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    let mut wrong_ns = robot_req("other", "team", -1);
    wrong_ns["permissions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kind": "project", "namespace": "library", "access": [{"resource": "repository", "action": "pull"}]}));
    api.call(Method::POST, "/api/v2.0/robots", ALICE, Some(wrong_ns))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let mut bad_action = robot_req("other", "team", -1);
    bad_action["permissions"][0]["access"][0]["action"] = json!("fly");
    api.call(Method::POST, "/api/v2.0/robots", ALICE, Some(bad_action))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.call(
        Method::POST,
        "/api/v2.0/robots",
        ALICE,
        Some(robot_req("Bad Name", "team", -1)),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.call(
        Method::POST,
        "/api/v2.0/robots",
        ALICE,
        Some(robot_req("zero", "team", -5)),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.raw(Method::POST, "/api/v2.0/robots", ALICE, &[], Some("nope"))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    // System robots: admins only.
    let sys = json!({
        "name": "sys", "level": "system", "duration": -1,
        "permissions": [{"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}]
    });
    api.call(Method::POST, "/api/v2.0/robots", ALICE, Some(sys.clone()))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    let r = api
        .call(Method::POST, "/api/v2.0/robots", ADMIN, Some(sys))
        .await;
    r.ok(StatusCode::CREATED);
    assert_eq!(r.json()["name"], "robot$sys");
    let sys_id = r.json()["id"].as_i64().unwrap();

    // Listing a project's robots: Harbor's q syntax.
    let q = format!("/api/v2.0/robots?q=Level%3Dproject%2CProjectID%3D{team}");
    let r = api.get(&q, ALICE).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.header("x-total-count"), "2");
    let first = &r.json()[0];
    assert_eq!(first["name"], "robot$team+ci");
    assert_eq!(first["level"], "project");
    assert!(first.get("secret").is_none());
    assert_eq!(first["permissions"][0]["namespace"], "team");
    api.get(&q, BOB).await.ok(StatusCode::OK);
    api.get(&q, CAROL)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get("/api/v2.0/robots", ALICE)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    let all = api.get("/api/v2.0/robots", ADMIN).await;
    assert_eq!(all.header("x-total-count"), "3");
    let sys_only = api.get("/api/v2.0/robots?q=Level=system", ADMIN).await;
    assert_eq!(sys_only.json().as_array().unwrap().len(), 1);

    // One robot.
    let one = format!("/api/v2.0/robots/{ci}");
    let r = api.get(&one, BOB).await;
    r.ok(StatusCode::OK);
    assert!(r.json().get("secret").is_none());
    api.get(&one, CAROL)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get(&format!("/api/v2.0/robots/{sys_id}"), ALICE)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");

    // Updates: a guest may not; the project admin may; disabled robots
    // cannot authenticate.
    api.call(Method::PUT, &one, BOB, Some(json!({"description": "x"})))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(Method::PUT, &one, ALICE, Some(json!({"name": "renamed"})))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.call(
        Method::PUT,
        &one,
        ALICE,
        Some(json!({"description": "disabled now", "disable": true, "duration": 10})),
    )
    .await
    .ok(StatusCode::OK);
    let j = api.get(&one, ALICE).await.json();
    assert_eq!(
        (
            j["description"].clone(),
            j["disable"].clone(),
            j["duration"].clone()
        ),
        (json!("disabled now"), json!(true), json!(10))
    );
    assert!(j["expires_at"].as_i64().unwrap() > now());
    api.get("/api/v2.0/projects/team", ci_who)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    api.call(
        Method::PUT,
        &one,
        ALICE,
        Some(json!({"disable": false, "duration": -1})),
    )
    .await
    .ok(StatusCode::OK);
    assert_eq!(api.get(&one, ALICE).await.json()["expires_at"], -1);
    api.get("/api/v2.0/projects/team", ci_who)
        .await
        .ok(StatusCode::OK);

    // Refreshing the secret: generated, or given if it passes the rules.
    let r = api.call(Method::PATCH, &one, ALICE, Some(json!({}))).await;
    r.ok(StatusCode::OK);
    let fresh = r.json()["secret"].as_str().unwrap().to_owned();
    assert_ne!(fresh, secret);
    api.get("/api/v2.0/projects/team", ci_who)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let fresh_who = Who::Basic("robot$team+ci", &fresh);
    api.get("/api/v2.0/projects/team", fresh_who)
        .await
        .ok(StatusCode::OK);
    api.call(Method::PATCH, &one, ALICE, Some(json!({"secret": "weak"})))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.call(Method::PATCH, &one, BOB, Some(json!({})))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    // A robot may refresh its own secret.
    let r = api
        .call(
            Method::PATCH,
            &one,
            fresh_who,
            Some(json!({"secret": "Chosen12345"})),
        )
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json()["secret"], "Chosen12345");
    api.get(
        "/api/v2.0/projects/team",
        Who::Basic("robot$team+ci", "Chosen12345"),
    )
    .await
    .ok(StatusCode::OK);
    let before = api
        .iam
        .directory
        .robot_by_id(ci)
        .await
        .unwrap()
        .unwrap()
        .cred;

    // Deletion.
    api.call(Method::DELETE, &one, BOB, Some(json!({})))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.call(Method::DELETE, &one, ALICE, Some(json!({})))
        .await
        .ok(StatusCode::OK);
    api.get(&one, ALICE)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get(
        "/api/v2.0/projects/team",
        Who::Basic("robot$team+ci", "Chosen12345"),
    )
    .await
    .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert!(before > 0);

    assert!(api.has_audit("robot", "create", "robot$team+ci").await);
    assert!(api.has_audit("robot", "create", "robot$sys").await);
    assert!(api.has_audit("robot", "update", "robot$team+ci").await);
    assert!(api.has_audit("robot", "delete", "robot$team+ci").await);

    // Deleting the project removes its robots.
    let week = api.iam.directory.robot("robot$team+week").await.unwrap();
    assert!(week.is_some());
    api.call(
        Method::DELETE,
        "/api/v2.0/projects/team",
        ALICE,
        Some(json!({})),
    )
    .await
    .ok(StatusCode::OK);
    assert!(
        api.iam
            .directory
            .robot("robot$team+week")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        api.iam
            .directory
            .robot("robot$sys")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn refresh_bumps_robot_cred() {
    let api = Api::new().await;
    let r = api
        .call(
            Method::POST,
            "/api/v2.0/robots",
            ADMIN,
            Some(robot_req("ci", "library", 30)),
        )
        .await;
    r.ok(StatusCode::CREATED);
    let id = r.json()["id"].as_i64().unwrap();
    let before = api
        .iam
        .directory
        .robot_by_id(id)
        .await
        .unwrap()
        .unwrap()
        .cred;
    api.call(
        Method::PATCH,
        &format!("/api/v2.0/robots/{id}"),
        ADMIN,
        None,
    )
    .await
    .ok(StatusCode::OK);
    let after = api
        .iam
        .directory
        .robot_by_id(id)
        .await
        .unwrap()
        .unwrap()
        .cred;
    assert_eq!(after, before + 1);
}

#[tokio::test]
async fn audit_log_queries_and_paging() {
    let api = Api::new().await;
    api.user("alice").await;
    api.project("team", false, ALICE).await;
    api.project("web", true, ALICE).await;

    api.get("/api/v2.0/audit-logs", ALICE)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.get("/api/v2.0/audit-logs", Who::Anon)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    let all = api.audit("").await;
    assert_eq!(all.len(), 3);
    // Newest first.
    assert_eq!(all[0]["resource"], "web");
    assert_eq!(all[2]["resource"], "alice");
    let e = &all[0];
    assert_eq!(e["username"], "alice");
    assert_eq!(e["operation"], "create");
    assert_eq!(e["resource_type"], "project");
    assert!(e["op_time"].as_str().unwrap().ends_with('Z'));
    assert!(e["id"].as_i64().is_some());

    assert_eq!(api.audit("resource_type=project").await.len(), 2);
    assert_eq!(api.audit("username=~ali").await.len(), 2);
    assert_eq!(api.audit("username=admin").await.len(), 1);
    assert_eq!(api.audit("resource=~te,operation=create").await.len(), 1);
    assert_eq!(api.audit("operation=%7Bcreate%20delete%7D").await.len(), 3);
    assert_eq!(
        api.audit("op_time=%5B2000-01-01%2000:00:00~2001-01-01%2000:00:00%5D")
            .await
            .len(),
        0
    );
    assert_eq!(
        api.audit("op_time=%5B2000-01-01T00:00:00Z~%5D").await.len(),
        3
    );
    api.get("/api/v2.0/audit-logs?q=op_time=%5Bsoon~later%5D", ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    let p1 = api
        .get("/api/v2.0/audit-logs?page=1&page_size=2", ADMIN)
        .await;
    p1.ok(StatusCode::OK);
    assert_eq!(p1.header("x-total-count"), "3");
    assert!(p1.header("link").contains("page=2"));
    assert_eq!(p1.json().as_array().unwrap().len(), 2);
    let p2 = api
        .get("/api/v2.0/audit-logs?page=2&page_size=2", ADMIN)
        .await;
    assert_eq!(p2.json().as_array().unwrap().len(), 1);
    assert_eq!(p2.json()[0]["resource"], "alice");
    api.get("/api/v2.0/audit-logs?page_size=1000", ADMIN)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    // A project's log: its members (and admins) only.
    let team = api.get("/api/v2.0/projects/team/logs", ALICE).await;
    team.ok(StatusCode::OK);
    assert_eq!(team.json().as_array().unwrap().len(), 1);
    api.get("/api/v2.0/projects/team/logs", ADMIN)
        .await
        .ok(StatusCode::OK);
    api.get("/api/v2.0/projects/team/logs", Who::Anon)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    // A public project's log needs membership too.
    api.get("/api/v2.0/projects/web/logs", Who::Anon)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn configurations_switch_self_registration_and_project_creation() {
    let api = Api::new().await;
    api.user("carol").await;
    let carol = Who::Basic("carol", PW);
    api.get("/api/v2.0/configurations", carol)
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    api.get("/api/v2.0/configurations", Who::Anon)
        .await
        .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let c = api.get("/api/v2.0/configurations", ADMIN).await;
    c.ok(StatusCode::OK);
    assert_eq!(c.json()["self_registration"]["value"], false);
    assert_eq!(
        c.json()["project_creation_restriction"]["value"],
        "everyone"
    );
    // Anyone may create a project until the admin says otherwise.
    api.project("carols", false, carol).await;
    let put = |v: Value| api.call(Method::PUT, "/api/v2.0/configurations", ADMIN, Some(v));
    put(json!({"project_creation_restriction": "adminonly"}))
        .await
        .ok(StatusCode::OK);
    let body = json!({"project_name": "carols2"});
    api.call(Method::POST, "/api/v2.0/projects", carol, Some(body))
        .await
        .err(StatusCode::FORBIDDEN, "FORBIDDEN");
    put(json!({"project_creation_restriction": "nobody"}))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    // Self-registration, off by default, switched on.
    let eve =
        json!({"username": "eve", "password": PW, "email": "eve@example.com", "realname": "eve"});
    api.call(
        Method::POST,
        "/api/v2.0/users",
        Who::Anon,
        Some(eve.clone()),
    )
    .await
    .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    put(json!({"self_registration": true}))
        .await
        .ok(StatusCode::OK);
    api.call(Method::POST, "/api/v2.0/users", Who::Anon, Some(eve))
        .await
        .ok(StatusCode::CREATED);
    let c = api.get("/api/v2.0/configurations", ADMIN).await;
    assert_eq!(c.json()["self_registration"]["value"], true);
    assert_eq!(
        c.json()["project_creation_restriction"]["value"],
        "adminonly"
    );
}
