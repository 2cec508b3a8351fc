//! The RBAC matrix: every principal (anonymous, a non-member, a system
#![allow(clippy::unwrap_used)]
//! admin, each of Harbor's five project roles, a project robot, a system
//! robot) × every action Berth has, on a public and a private project,
//! through the real token flow (`/service/token` with Basic credentials,
//! then `/v2/` with the bearer token) and the management API. The expected
//! answers are written out here from Harbor's permission model, not derived
//! from Berth's table; the matrix is printed.

mod common;
#[path = "support/rbac.rs"]
mod rbac;

use axum::http::{Method, StatusCode};
use common::send_to;
use rbac::{EVERYONE, PASSWORD, Who, World};

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

/// The world with what the registry actions act on: `<project>/base:v1`
/// to pull, and one `<project>/del-<principal>:v1` per principal to delete.
async fn world() -> World {
    let w = rbac::world().await;
    for project in ["pub", "priv"] {
        w.push_image(&format!("{project}/base"), "v1", project)
            .await;
        for who in EVERYONE {
            w.push_image(
                &format!("{project}/del-{}", who.slug()),
                "v1",
                &format!("{project}-{}", who.name()),
            )
            .await;
        }
    }
    w
}

impl World {
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
