//! The principals of the RBAC matrix tests and the world they act in: a
//! registry with the identity service, a public project `pub` and a
//! private project `priv`, a user for each of Harbor's five project roles
//! (a member of both projects), a signed-in non-member, the system admin,
//! a project robot (pull and push in `priv`) and a system robot (pull and
//! push everywhere). Callers use the real flows: `/service/token` with
//! Basic credentials then `/v2/` with the bearer token, and the
//! management API with Basic credentials.
//!
//! Included by the matrix test files with `#[path = "support/rbac.rs"]`,
//! next to `mod common;`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine;
use berth::http::AppState;
use berth::iam::rbac::{Access, RobotPermission};
use berth::iam::{Iam, KeyRing, Member, Project, Robot, User};

use crate::common::{self, Resp, TestApp, send_to};

pub const SEED: &str = "rbac-matrix-test-seed-0123456789abcdef";
pub const PASSWORD: &str = "Harbor12345";

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Who {
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

pub const EVERYONE: [Who; 10] = [
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

impl Who {
    /// The account's name (robots: their full name).
    pub fn name(self) -> &'static str {
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

    /// The name as a path segment, tag or label name.
    pub fn slug(self) -> String {
        self.name().replace(['$', '+'], "-")
    }

    /// Harbor's `role_id` of the principal's membership in both projects.
    pub fn role_id(self) -> Option<i64> {
        match self {
            Who::ProjectAdmin => Some(1),
            Who::Developer => Some(2),
            Who::Guest => Some(3),
            Who::Maintainer => Some(4),
            Who::LimitedGuest => Some(5),
            _ => None,
        }
    }

    /// A user member of both projects (any role).
    pub fn is_member(self) -> bool {
        self.role_id().is_some()
    }
}

pub struct World {
    pub app: TestApp,
    /// The same storage without authorization, to seed content.
    pub seeder: TestApp,
    /// `seeder`'s router.
    pub open: axum::Router,
    /// The identity service over the same storage, to seed and inspect.
    pub iam: Iam,
    pub robot_secrets: HashMap<&'static str, String>,
}

/// The principals and the two projects, with nothing pushed yet.
pub async fn world() -> World {
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
        if matches!(who, Who::NonMember) || who.is_member() {
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
    let mut robot_secrets = HashMap::new();
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
    let seeder = TestApp::over(app.registry.clone());
    World {
        open: seeder.router.clone(),
        seeder,
        app,
        iam,
        robot_secrets,
    }
}

impl World {
    pub fn basic(&self, who: Who) -> Option<String> {
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
    pub async fn token(&self, who: Who, scope: &str) -> String {
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

    pub async fn v2(
        &self,
        who: Who,
        scope: &str,
        method: Method,
        uri: &str,
        body: Vec<u8>,
    ) -> Resp {
        let bearer = format!("Bearer {}", self.token(who, scope).await);
        let headers = [
            ("authorization", bearer.as_str()),
            ("content-type", common::OCI_MANIFEST),
        ];
        self.app.send(method, uri, &headers, body).await
    }

    /// A management API call with Basic credentials (none for anonymous).
    pub async fn api(&self, who: Who, method: Method, uri: &str, body: serde_json::Value) -> Resp {
        self.api_on(&self.app.router, who, method, uri, body).await
    }

    /// As [`World::api`], to another router over the same world.
    pub async fn api_on(
        &self,
        router: &axum::Router,
        who: Who,
        method: Method,
        uri: &str,
        body: serde_json::Value,
    ) -> Resp {
        let auth = self.basic(who);
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = auth.as_deref() {
            headers.push(("authorization", a));
        }
        let body = serde_json::to_vec(&body).unwrap();
        send_to(router, method, uri, &headers, body).await
    }

    /// Seeds through `/v2/` without authorization: pushes an image.
    pub async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (Vec<u8>, String) {
        self.seeder.push_image(repo, tag, seed).await
    }

    /// Seeds a further tag on a manifest already pushed to `repo`.
    pub async fn tag_manifest(&self, repo: &str, tag: &str, manifest: &[u8]) {
        let r = send_to(
            &self.open,
            Method::PUT,
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("content-type", common::OCI_MANIFEST)],
            manifest.to_vec(),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }

    /// The status of a `HEAD /v2/<repo>/manifests/<reference>` without
    /// authorization (to see what a cell did).
    pub async fn manifest_status(&self, repo: &str, reference: &str) -> StatusCode {
        send_to(
            &self.open,
            Method::HEAD,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[],
            Body::empty(),
        )
        .await
        .status
    }
}

/// What is wrong with the status of a cell's answer: a server error or
/// a status other than a success, 401, 403 and 404, or a refusal without
/// Harbor's error body.
pub fn status_problem(r: &Resp) -> Option<String> {
    let status = r.status.as_u16();
    let ok = r.status.is_success();
    if status >= 500 || !(ok || matches!(status, 401 | 403 | 404)) {
        Some(format!("unexpected {status}: {}", r.text()))
    } else if !ok && !r.json()["errors"][0]["code"].is_string() {
        Some(format!("a refusal without an error body: {}", r.text()))
    } else {
        None
    }
}

/// What is wrong where a cell's effect (`changed`, where it is known)
/// disagrees with its answer: `what` is, say, "the object was".
pub fn effect_problem(status: u16, ok: bool, changed: Option<bool>, what: &str) -> Option<String> {
    match changed {
        Some(changed) if changed != ok => Some(format!(
            "answered {status} but {what} {}changed",
            if changed { "" } else { "not " }
        )),
        _ => None,
    }
}

/// A matrix as a table: the principals across, `ops` down (labelled in
/// a column `width` wide), each cell what `got` says, marked `!` where it
/// is not what `want` says; `title` above.
pub fn table<Op: Copy, C: std::fmt::Display + PartialEq>(
    title: &str,
    width: usize,
    ops: &[Op],
    label: impl Fn(Op) -> &'static str,
    got: impl Fn(Who, Op) -> C,
    want: impl Fn(Who, Op) -> C,
) -> String {
    let mut table = format!("{title}:\n{:<width$}", "");
    for who in EVERYONE {
        let short: String = who.slug().chars().take(7).collect();
        table.push_str(&format!(" {short:>7}"));
    }
    table.push('\n');
    for op in ops.iter().copied() {
        table.push_str(&format!("{:<width$}", label(op)));
        for who in EVERYONE {
            let got = got(who, op);
            let mark = if got == want(who, op) {
                got.to_string()
            } else {
                format!("{got}!")
            };
            table.push_str(&format!(" {mark:>7}"));
        }
        table.push('\n');
    }
    table
}
