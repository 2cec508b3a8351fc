//! Attacks on registry tokens, each refused with 401 or 403 and an OCI
#![allow(clippy::unwrap_used)]
//! error body: tampered payloads, foreign keys, `alg: none`, HS256 keyed
//! with the public key, expiry, not-before, the wrong audience, a token for
//! one repository used on another, scope escalation, refresh tokens used
//! as access tokens or after a password change.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64URL};
use berth::http::AppState;
use berth::iam::token::{ResourceActions, TokenUse, new_claims};
use berth::iam::{KeyRing, Member, Project, User};
use common::{Resp, TestApp};

const SEED: &str = "token-attack-test-seed-0123456789abcdef";
const PASSWORD: &str = "Harbor12345";

struct World {
    app: TestApp,
    keys: Arc<KeyRing>,
    iam: berth::iam::Iam,
}

async fn world() -> World {
    let keys = Arc::new(KeyRing::from_seeds(&[SEED]).unwrap());
    let app = TestApp::build(Default::default(), None, |s: AppState| {
        let iam = berth::wiring::iam(s.registry.kv().clone(), Some(keys.clone()));
        AppState {
            iam: Some(iam),
            ..s
        }
    })
    .await;
    let iam = berth::wiring::iam(app.registry.kv().clone(), Some(keys.clone()));
    berth::wiring::bootstrap_identity(&iam, Some(PASSWORD))
        .await
        .unwrap();
    let dir = &iam.directory;
    dir.create_project(Project {
        id: 0,
        name: "team".to_owned(),
        public: false,
        owner_id: 1,
        owner_name: "admin".to_owned(),
        created: 0,
        updated: 0,
    })
    .await
    .unwrap();
    let guest = dir
        .create_user(
            User {
                id: 0,
                username: "guest".to_owned(),
                email: String::new(),
                realname: String::new(),
                comment: String::new(),
                admin: false,
                hash: String::new(),
                cred: 1,
                created: 0,
                updated: 0,
            },
            PASSWORD,
        )
        .await
        .unwrap();
    dir.put_member(&Member {
        id: 100,
        project: "team".to_owned(),
        project_id: 2,
        entity_id: guest.id,
        entity_name: "guest".to_owned(),
        role: 3,
    })
    .await
    .unwrap();
    let open = TestApp::over(app.registry.clone());
    open.push_image("team/app", "v1", "a").await;
    open.push_image("team/other", "v1", "b").await;
    World { app, keys, iam }
}

fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}

fn now() -> i64 {
    berth::store::now_secs()
}

fn pull_access(repo: &str) -> Vec<ResourceActions> {
    vec![ResourceActions {
        kind: "repository".to_owned(),
        name: repo.to_owned(),
        actions: vec!["pull".to_owned(), "push".to_owned()],
    }]
}

impl World {
    async fn get_manifest(&self, repo: &str, token: &str) -> Resp {
        let auth = format!("Bearer {token}");
        self.app
            .send(
                Method::GET,
                &format!("/v2/{repo}/manifests/v1"),
                &[("authorization", &auth)],
                Body::empty(),
            )
            .await
    }

    async fn token(&self, user: &str, scope: &str) -> serde_json::Value {
        let auth = basic(user, PASSWORD);
        let r = self
            .app
            .send(
                Method::GET,
                &format!("/service/token?service=berth-registry&scope={scope}&offline_token=true"),
                &[("authorization", &auth)],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()
    }
}

#[track_caller]
fn assert_unauthorized(r: &Resp) {
    r.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert!(
        r.header("www-authenticate")
            .starts_with("Bearer realm=\"http://localhost/service/token\"")
    );
}

#[tokio::test]
async fn a_genuine_token_works_and_its_forgeries_do_not() {
    let w = world().await;
    let good = w
        .keys
        .sign(&new_claims(
            "berth-registry",
            "admin",
            pull_access("team/app"),
            TokenUse::Access,
            now(),
            60,
        ))
        .unwrap();
    assert_eq!(
        w.get_manifest("team/app", &good).await.status,
        StatusCode::OK
    );

    // Tampered payload: the access widened to another repository, the
    // signature kept.
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    payload["access"][0]["name"] = "team/other".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64URL.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    assert_unauthorized(&w.get_manifest("team/other", &tampered).await);

    // Signed by a key the registry does not know, under its own kid and
    // under the registry's kid.
    let stranger = KeyRing::from_seeds(&["a stranger's seed, long enough to use"]).unwrap();
    let claims = new_claims(
        "berth-registry",
        "admin",
        pull_access("team/app"),
        TokenUse::Access,
        now(),
        60,
    );
    let foreign = stranger.sign(&claims).unwrap();
    assert_unauthorized(&w.get_manifest("team/app", &foreign).await);
    let fparts: Vec<&str> = foreign.split('.').collect();
    let spoofed = format!("{}.{}.{}", parts[0], fparts[1], fparts[2]);
    assert_unauthorized(&w.get_manifest("team/app", &spoofed).await);

    // alg: none.
    let header = B64URL.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let none = format!("{header}.{}.", parts[1]);
    assert_unauthorized(&w.get_manifest("team/app", &none).await);

    // HS256 keyed with the public key (the classic algorithm confusion).
    let jwk = &w.keys.jwks()[0];
    let mut point = vec![4u8];
    point.extend(B64URL.decode(&jwk.x).unwrap());
    point.extend(B64URL.decode(&jwk.y).unwrap());
    for secret in [point.clone(), serde_json::to_vec(jwk).unwrap()] {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(jwk.kid.clone());
        let hs = jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret).unwrap(),
        )
        .unwrap();
        assert_unauthorized(&w.get_manifest("team/app", &hs).await);
    }

    // Expired, and not yet valid.
    let mut c = new_claims(
        "berth-registry",
        "admin",
        pull_access("team/app"),
        TokenUse::Access,
        now() - 120,
        60,
    );
    assert_unauthorized(&w.get_manifest("team/app", &w.keys.sign(&c).unwrap()).await);
    c = new_claims(
        "berth-registry",
        "admin",
        pull_access("team/app"),
        TokenUse::Access,
        now(),
        600,
    );
    c.nbf = now() + 300;
    assert_unauthorized(&w.get_manifest("team/app", &w.keys.sign(&c).unwrap()).await);

    // Another service's token (audience).
    let c = new_claims(
        "another-registry",
        "admin",
        pull_access("team/app"),
        TokenUse::Access,
        now(),
        60,
    );
    assert_unauthorized(&w.get_manifest("team/app", &w.keys.sign(&c).unwrap()).await);

    // Garbage.
    assert_unauthorized(&w.get_manifest("team/app", "not.a.token").await);
    assert_unauthorized(&w.get_manifest("team/app", "").await);
}

#[tokio::test]
async fn a_token_for_one_repository_is_refused_on_another() {
    let w = world().await;
    let t = w.token("admin", "repository:team/app:pull").await;
    let token = t["token"].as_str().unwrap();
    assert_eq!(
        w.get_manifest("team/app", token).await.status,
        StatusCode::OK
    );
    let r = w.get_manifest("team/other", token).await;
    r.assert_error(StatusCode::FORBIDDEN, "DENIED");
    assert!(
        r.header("www-authenticate")
            .contains(r#"scope="repository:team/other:pull""#)
    );
    assert!(
        r.header("www-authenticate")
            .contains(r#"error="insufficient_scope""#)
    );
}

#[tokio::test]
async fn asking_for_more_than_the_role_allows_gets_less() {
    let w = world().await;
    let t = w
        .token("guest", "repository:team/app:pull,push,delete")
        .await;
    let token = t["token"].as_str().unwrap();
    let payload: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(payload["access"][0]["actions"], serde_json::json!(["pull"]));
    assert_eq!(
        w.get_manifest("team/app", token).await.status,
        StatusCode::OK
    );
    let auth = format!("Bearer {token}");
    let r = w
        .app
        .send(
            Method::POST,
            "/v2/team/app/blobs/uploads/",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "DENIED");
    let r = w
        .app
        .send(
            Method::DELETE,
            "/v2/team/app/manifests/v1",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "DENIED");
}

#[tokio::test]
async fn refresh_tokens_are_not_access_tokens_and_die_with_a_password_change() {
    let w = world().await;
    let t = w.token("guest", "repository:team/app:pull").await;
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    // Not usable on the registry.
    assert_unauthorized(&w.get_manifest("team/app", &refresh).await);
    // Usable at the token endpoint (OAuth2 form).
    let form = format!(
        "grant_type=refresh_token&service=berth-registry&scope=repository%3Ateam%2Fapp%3Apull&refresh_token={refresh}"
    );
    let post = |body: String| {
        w.app.send(
            Method::POST,
            "/service/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
    };
    let r = post(form.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let fresh = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        w.get_manifest("team/app", &fresh).await.status,
        StatusCode::OK
    );
    // The password changes: the refresh token is dead.
    let dir = &w.iam.directory;
    let before = dir.user("guest").await.unwrap().unwrap();
    let mut after = before.clone();
    after.hash = berth::iam::password::hash_password("Changed12345").unwrap();
    after.cred += 1;
    dir.save_user(&before, &after).await.unwrap();
    let r = post(form).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    // And the password grant needs the new password.
    let r = post(
        "grant_type=password&service=berth-registry&username=guest&password=Harbor12345".to_owned(),
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let r = post("grant_type=password&service=berth-registry&username=guest&password=Changed12345&scope=repository%3Ateam%2Fapp%3Apull".to_owned()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn the_token_endpoint_refuses_bad_credentials_and_foreign_services() {
    let w = world().await;
    let auth = basic("guest", "wrong");
    let r = w
        .app
        .send(
            Method::GET,
            "/service/token?service=berth-registry",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let r = w.app.get("/service/token?service=somebody-else").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Anonymous: a token, but nothing in a private project.
    let r = w
        .app
        .get("/service/token?service=berth-registry&scope=repository:team/app:pull")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    w.get_manifest("team/app", &token)
        .await
        .assert_error(StatusCode::FORBIDDEN, "DENIED");
    // No token at all: the challenge names the realm on the host used.
    let r = w
        .app
        .send(
            Method::GET,
            "/v2/team/app/manifests/v1",
            &[("host", "registry.example:5000")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let www = r.header("www-authenticate");
    assert!(www.contains(r#"service="berth-registry""#), "{www}");
    assert!(www.contains(r#"scope="repository:team/app:pull""#), "{www}");
}

#[tokio::test]
async fn an_upload_session_started_in_one_repository_cannot_finish_in_another() {
    let w = world().await;
    let push = |repo: &str| {
        let claims = new_claims(
            "berth-registry",
            "admin",
            pull_access(repo),
            TokenUse::Access,
            now(),
            600,
        );
        format!("Bearer {}", w.keys.sign(&claims).unwrap())
    };
    let app_token = push("team/app");
    let r = w
        .app
        .send(
            Method::POST,
            "/v2/team/app/blobs/uploads/",
            &[("authorization", &app_token)],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let id = r.header("docker-upload-uuid").to_owned();
    // With push rights on `team/other`, the session id from `team/app`
    // leads nowhere there.
    let other_token = push("team/other");
    let data = b"smuggled".to_vec();
    let d = common::digest(&data);
    let r = w
        .app
        .send(
            Method::PUT,
            &format!("/v2/team/other/blobs/uploads/{id}?digest={d}"),
            &[("authorization", &other_token)],
            data.clone(),
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN");
    // And the token for `team/other` cannot touch the session's own path.
    let r = w
        .app
        .send(
            Method::PUT,
            &format!("/v2/team/app/blobs/uploads/{id}?digest={d}"),
            &[("authorization", &other_token)],
            data,
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "DENIED");
}

#[tokio::test]
async fn a_push_into_a_missing_project_says_so_to_signed_in_callers_only() {
    let w = world().await;
    let t = w.token("guest", "repository:nosuch/app:pull,push").await;
    let auth = format!("Bearer {}", t["token"].as_str().unwrap());
    let r = w
        .app
        .send(
            Method::POST,
            "/v2/nosuch/app/blobs/uploads/",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN");
    assert!(
        r.text().contains("project \\\"nosuch\\\" not found"),
        "{}",
        r.text()
    );
    // Anonymous callers learn nothing about which projects exist.
    let r = w
        .app
        .get("/service/token?service=berth-registry&scope=repository:nosuch/app:pull,push")
        .await;
    let auth = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    let r = w
        .app
        .send(
            Method::POST,
            "/v2/nosuch/app/blobs/uploads/",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "DENIED");
}

#[tokio::test]
async fn an_expired_robot_gets_no_token() {
    let w = world().await;
    let (robot, secret) = w
        .iam
        .directory
        .create_robot(berth::iam::Robot {
            id: 0,
            name: "robot$team+old".to_owned(),
            level: "project".to_owned(),
            project: Some("team".to_owned()),
            project_id: 2,
            description: String::new(),
            secret_digest: String::new(),
            disable: false,
            duration: 1,
            expires_at: now() - 1,
            permissions: Vec::new(),
            cred: 1,
            created: 0,
            updated: 0,
        })
        .await
        .unwrap();
    let auth = basic(&robot.name, &secret);
    let r = w
        .app
        .send(
            Method::GET,
            "/service/token?service=berth-registry&scope=repository:team/app:pull",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn pushes_deletes_and_gathered_pulls_reach_the_audit_log() {
    let w = world().await;
    let t = w.token("admin", "repository:team/app:pull,delete").await;
    let token = t["token"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(
            w.get_manifest("team/app", token).await.status,
            StatusCode::OK
        );
    }
    // The app's own audit log (the router's Iam) gathers pulls; `w.iam`
    // shares the store, so read through it after the router's flush.
    let auth = format!("Bearer {token}");
    let r = w
        .app
        .send(
            Method::DELETE,
            "/v2/team/app/manifests/v1",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    // Changes are written as they happen (off the request path).
    let mut entries = Vec::new();
    for _ in 0..50 {
        let (page, _) = w
            .iam
            .audit
            .page(Some("team"), now() * 1000, None, 100)
            .await
            .unwrap();
        entries = page;
        if entries.iter().any(|e| e.operation == "delete") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let delete = entries
        .iter()
        .find(|e| e.operation == "delete")
        .expect("the delete is recorded");
    assert_eq!(
        (delete.username.as_str(), delete.resource.as_str()),
        ("admin", "team/app:v1")
    );
    assert!(
        !entries.iter().any(|e| e.operation == "pull"),
        "pulls wait for their window"
    );
}
