//! The RBAC matrix: every principal (anonymous, a non-member, a system
#![allow(clippy::unwrap_used)]
//! admin, each of Harbor's five project roles, a project robot, a system
//! robot) × every action Berth has, on a public and a private project,
//! through the real token flow (`/service/token` with Basic credentials,
//! then `/v2/` with the bearer token) and the management API. The expected
//! answers are written out here from Harbor's permission model, not derived
//! from Berth's table; the matrix is printed.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine;
use berth::http::AppState;
use berth::iam::rbac::{Access, RobotPermission};
use berth::iam::{KeyRing, Member, Project, Robot, User};
use common::{Resp, TestApp, send_to};

const SEED: &str = "rbac-matrix-test-seed-0123456789abcdef";
const PASSWORD: &str = "Harbor12345";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Anonymous,
    NonMember,
    SysAdmin,
    ProjectAdmin,
    Maintainer,
    Developer,
    Guest,
    LimitedGuest,
    ProjectRobot,
    SystemRobot,
}

const EVERYONE: [Who; 10] = [
    Who::Anonymous,
    Who::NonMember,
    Who::SysAdmin,
    Who::ProjectAdmin,
    Who::Maintainer,
    Who::Developer,
    Who::Guest,
    Who::LimitedGuest,
    Who::ProjectRobot,
    Who::SystemRobot,
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Act {
    Pull,
    ListTags,
    Push,
    Delete,
    Catalog,
    ListMembers,
    AddMember,
    CreateRobot,
}

const ACTIONS: [Act; 8] = [
    Act::Pull,
    Act::ListTags,
    Act::Push,
    Act::Delete,
    Act::Catalog,
    Act::ListMembers,
    Act::AddMember,
    Act::CreateRobot,
];

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Anonymous => "anonymous",
            Who::NonMember => "outsider",
            Who::SysAdmin => "admin",
            Who::ProjectAdmin => "padmin",
            Who::Maintainer => "maint",
            Who::Developer => "dev",
            Who::Guest => "guest",
            Who::LimitedGuest => "lguest",
            Who::ProjectRobot => "robot$priv+ci",
            Who::SystemRobot => "robot$sys",
        }
    }

    fn role_id(self) -> Option<i64> {
        match self {
            Who::ProjectAdmin => Some(1),
            Who::Developer => Some(2),
            Who::Guest => Some(3),
            Who::Maintainer => Some(4),
            Who::LimitedGuest => Some(5),
            _ => None,
        }
    }
}

/// Harbor's answer, written out by hand.
fn expected(who: Who, public: bool, act: Act) -> bool {
    use Act::*;
    let reads = matches!(act, Pull | ListTags);
    match who {
        Who::SysAdmin | Who::ProjectAdmin if act == Catalog => who == Who::SysAdmin,
        Who::SysAdmin | Who::ProjectAdmin => true,
        Who::Maintainer => matches!(act, Pull | ListTags | Push | Delete | ListMembers),
        Who::Developer => matches!(act, Pull | ListTags | Push | ListMembers),
        Who::Guest => matches!(act, Pull | ListTags | ListMembers),
        Who::LimitedGuest => reads,
        Who::NonMember | Who::Anonymous => public && reads,
        // Pull and push in `priv` only; public projects are readable by all.
        Who::ProjectRobot => reads || (!public && act == Push),
        // Pull and push in every project.
        Who::SystemRobot => reads || act == Push,
    }
}

struct World {
    app: TestApp,
    /// The same storage without authorization, to seed content.
    open: axum::Router,
    robot_secrets: std::collections::HashMap<&'static str, String>,
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
    let iam = berth::wiring::iam(app.registry.kv().clone(), Some(keys));
    berth::wiring::bootstrap_identity(&iam, Some(PASSWORD))
        .await
        .unwrap();
    let dir = &iam.directory;
    let admin = dir.user("admin").await.unwrap().unwrap();
    for (name, public) in [("pub", true), ("priv", false)] {
        dir.create_project(Project {
            id: 0,
            name: name.to_owned(),
            public,
            owner_id: admin.id,
            owner_name: "admin".to_owned(),
            created: 0,
            updated: 0,
        })
        .await
        .unwrap();
    }
    for who in EVERYONE {
        if matches!(who, Who::NonMember) || who.role_id().is_some() {
            let u = dir
                .create_user(
                    User {
                        id: 0,
                        username: who.name().to_owned(),
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
            if let Some(role) = who.role_id() {
                for (project, project_id) in [("pub", 2), ("priv", 3)] {
                    let m = Member {
                        id: dir.next_id("member").await.unwrap(),
                        project: project.to_owned(),
                        project_id,
                        entity_id: u.id,
                        entity_name: u.username.clone(),
                        role,
                    };
                    dir.put_member(&m).await.unwrap();
                }
            }
        }
    }
    let mut robot_secrets = std::collections::HashMap::new();
    let pull_push = |namespace: &str| RobotPermission {
        kind: "project".to_owned(),
        namespace: namespace.to_owned(),
        access: ["pull", "push"]
            .iter()
            .map(|a| Access {
                resource: "repository".to_owned(),
                action: (*a).to_owned(),
                effect: None,
            })
            .collect(),
    };
    for (who, level, project, ns) in [
        (Who::ProjectRobot, "project", Some("priv"), "priv"),
        (Who::SystemRobot, "system", None, "*"),
    ] {
        let (_, secret) = dir
            .create_robot(Robot {
                id: 0,
                name: who.name().to_owned(),
                level: level.to_owned(),
                project: project.map(str::to_owned),
                project_id: if project.is_some() { 3 } else { 0 },
                description: String::new(),
                secret_digest: String::new(),
                disable: false,
                duration: -1,
                expires_at: -1,
                permissions: vec![pull_push(ns)],
                cred: 1,
                created: 0,
                updated: 0,
            })
            .await
            .unwrap();
        robot_secrets.insert(who.name(), secret);
    }
    let open = TestApp::over(app.registry.clone());
    for project in ["pub", "priv"] {
        open.push_image(&format!("{project}/base"), "v1", project)
            .await;
        for who in EVERYONE {
            open.push_image(
                &format!("{project}/del-{}", who.name().replace(['$', '+'], "-")),
                "v1",
                &format!("{project}-{}", who.name()),
            )
            .await;
        }
    }
    World {
        open: open.router.clone(),
        app,
        robot_secrets,
    }
}

impl World {
    fn basic(&self, who: Who) -> Option<String> {
        let secret = match who {
            Who::Anonymous => return None,
            Who::ProjectRobot | Who::SystemRobot => self.robot_secrets[who.name()].clone(),
            _ => PASSWORD.to_owned(),
        };
        let raw = format!("{}:{secret}", who.name());
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }

    /// A token from the token service for `scope`.
    async fn token(&self, who: Who, scope: &str) -> String {
        let uri = format!(
            "/service/token?service=berth-registry&scope={}",
            scope.replace('$', "%24")
        );
        let auth = self.basic(who);
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let r = self
            .app
            .send(Method::GET, &uri, &headers, Body::empty())
            .await;
        assert_eq!(r.status, StatusCode::OK, "token for {who:?}: {}", r.text());
        r.json()["token"].as_str().unwrap().to_owned()
    }

    async fn v2(&self, who: Who, scope: &str, method: Method, uri: &str, body: Vec<u8>) -> Resp {
        let bearer = format!("Bearer {}", self.token(who, scope).await);
        let headers = [
            ("authorization", bearer.as_str()),
            ("content-type", common::OCI_MANIFEST),
        ];
        self.app.send(method, uri, &headers, body).await
    }

    async fn api(&self, who: Who, method: Method, uri: &str, body: serde_json::Value) -> Resp {
        let auth = self.basic(who);
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = auth.as_deref() {
            headers.push(("authorization", a));
        }
        let body = serde_json::to_vec(&body).unwrap();
        send_to(&self.app.router, method, uri, &headers, body).await
    }

    /// Does `who` get to do `act` in `project`? Checks that a refusal is
    /// the right one (401/403 with an error body, 404 for an invisible
    /// project on the API), never a 5xx.
    async fn attempt(&self, who: Who, project: &str, act: Act) -> bool {
        let repo = format!("{project}/base");
        let r = match act {
            Act::Pull => {
                let scope = format!("repository:{repo}:pull");
                self.v2(
                    who,
                    &scope,
                    Method::GET,
                    &format!("/v2/{repo}/manifests/v1"),
                    vec![],
                )
                .await
            }
            Act::ListTags => {
                let scope = format!("repository:{repo}:pull");
                self.v2(
                    who,
                    &scope,
                    Method::GET,
                    &format!("/v2/{repo}/tags/list"),
                    vec![],
                )
                .await
            }
            Act::Push => {
                let target = format!("{project}/pushed-{}", who.name().replace(['$', '+'], "-"));
                let scope = format!("repository:{target}:pull,push");
                let data = format!("blob pushed by {}", who.name()).into_bytes();
                let d = common::digest(&data);
                self.v2(
                    who,
                    &scope,
                    Method::POST,
                    &format!("/v2/{target}/blobs/uploads/?digest={d}"),
                    data,
                )
                .await
            }
            Act::Delete => {
                let target = format!("{project}/del-{}", who.name().replace(['$', '+'], "-"));
                let scope = format!("repository:{target}:delete");
                self.v2(
                    who,
                    &scope,
                    Method::DELETE,
                    &format!("/v2/{target}/manifests/v1"),
                    vec![],
                )
                .await
            }
            Act::Catalog => {
                self.v2(
                    who,
                    "registry:catalog:*",
                    Method::GET,
                    "/v2/_catalog",
                    vec![],
                )
                .await
            }
            Act::ListMembers => {
                self.api(
                    who,
                    Method::GET,
                    &format!("/api/v2.0/projects/{project}/members"),
                    serde_json::json!({}),
                )
                .await
            }
            Act::AddMember => {
                let user = format!("new-{project}-{}", who.name().replace(['$', '+'], "-"));
                // The member must exist as a user first: the admin creates it.
                let created = self
                    .api(
                        Who::SysAdmin,
                        Method::POST,
                        "/api/v2.0/users",
                        serde_json::json!({"username": user, "password": PASSWORD, "email": format!("{user}@example.com"), "realname": user}),
                    )
                    .await;
                assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
                self.api(
                    who,
                    Method::POST,
                    &format!("/api/v2.0/projects/{project}/members"),
                    serde_json::json!({"role_id": 3, "member_user": {"username": user}}),
                )
                .await
            }
            Act::CreateRobot => {
                let name = format!("r-{}", who.name().replace(['$', '+'], "-"));
                self.api(
                    who,
                    Method::POST,
                    "/api/v2.0/robots",
                    serde_json::json!({
                        "name": name, "level": "project", "duration": -1, "disable": false,
                        "permissions": [{"kind": "project", "namespace": project,
                            "access": [{"resource": "repository", "action": "pull"}]}]
                    }),
                )
                .await
            }
        };
        assert!(
            r.status.as_u16() < 500,
            "{who:?} {act:?} in {project}: {} {}",
            r.status,
            r.text()
        );
        if r.status.is_success() {
            return true;
        }
        assert!(
            matches!(
                r.status,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
            ),
            "{who:?} {act:?} in {project}: unexpected {} {}",
            r.status,
            r.text()
        );
        assert!(
            r.json()["errors"][0]["code"].is_string(),
            "refusals carry an error body: {}",
            r.text()
        );
        if act.is_registry() && r.status == StatusCode::FORBIDDEN {
            assert_eq!(r.code(), "DENIED");
            assert!(r.header("www-authenticate").contains("insufficient_scope"));
        }
        false
    }
}

impl Act {
    fn is_registry(self) -> bool {
        matches!(
            self,
            Act::Pull | Act::ListTags | Act::Push | Act::Delete | Act::Catalog
        )
    }

    fn label(self) -> &'static str {
        match self {
            Act::Pull => "pull",
            Act::ListTags => "tags",
            Act::Push => "push",
            Act::Delete => "delete",
            Act::Catalog => "catalog",
            Act::ListMembers => "members",
            Act::AddMember => "+member",
            Act::CreateRobot => "+robot",
        }
    }
}

#[tokio::test]
async fn every_principal_times_every_action_on_public_and_private_projects() {
    let w = world().await;
    let mut table = String::new();
    let mut header = format!("{:<16}", "principal");
    for project in ["pub", "priv"] {
        for act in ACTIONS {
            header.push_str(&format!(
                " {:>8}",
                format!("{project}:{}", &act.label()[..act.label().len().min(4)])
            ));
        }
    }
    table.push_str(&header);
    table.push('\n');
    let mut wrong = Vec::new();
    let mut cells = 0;
    for who in EVERYONE {
        let mut line = format!("{:<16}", who.name());
        for (project, public) in [("pub", true), ("priv", false)] {
            for act in ACTIONS {
                let got = w.attempt(who, project, act).await;
                let want = expected(who, public, act);
                cells += 1;
                let mark = match (got, want == got) {
                    (true, true) => "yes",
                    (false, true) => "-",
                    (true, false) => "YES!",
                    (false, false) => "NO!",
                };
                line.push_str(&format!(" {mark:>8}"));
                if got != want {
                    wrong.push(format!(
                        "{who:?} {act:?} in {project}: got {got}, Harbor says {want}"
                    ));
                }
            }
        }
        table.push_str(&line);
        table.push('\n');
    }
    println!("RBAC matrix ({cells} cells; yes = allowed, - = refused):\n{table}");
    assert!(wrong.is_empty(), "{}\n{table}", wrong.join("\n"));
}

#[tokio::test]
async fn a_mount_from_a_repository_the_caller_cannot_read_becomes_a_plain_upload() {
    let w = world().await;
    // The developer may push to `pub` but the outsider project `priv`'s
    // blobs are not theirs to read: make a user who is only in `pub`.
    let secret_blob = b"only readable in priv".to_vec();
    let d = common::digest(&secret_blob);
    let r = send_to(
        &w.open,
        Method::POST,
        &format!("/v2/priv/base/blobs/uploads/?digest={d}"),
        &[],
        secret_blob,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The system robot may push anywhere and pull anywhere: it mounts.
    let scope = "repository:pub/m1:pull,push&scope=repository:priv/base:pull";
    let r = w
        .v2(
            Who::SystemRobot,
            scope,
            Method::POST,
            &format!("/v2/pub/m1/blobs/uploads/?mount={d}&from=priv/base"),
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // A token without pull on the source: the mount is ignored (202, a
    // new upload), and the blob stays unreadable from the target.
    let scope = "repository:pub/m2:pull,push";
    let r = w
        .v2(
            Who::SystemRobot,
            scope,
            Method::POST,
            &format!("/v2/pub/m2/blobs/uploads/?mount={d}&from=priv/base"),
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let r = w
        .v2(
            Who::SystemRobot,
            "repository:pub/m2:pull",
            Method::HEAD,
            &format!("/v2/pub/m2/blobs/{d}"),
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A mount with no source at all is a plain upload for anyone but an admin.
    let r = w
        .v2(
            Who::SystemRobot,
            "repository:pub/m3:pull,push",
            Method::POST,
            &format!("/v2/pub/m3/blobs/uploads/?mount={d}"),
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
}
