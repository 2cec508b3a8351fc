//! The RBAC matrix of Harbor's project policy endpoints — the immutable
//! tag rules (`/projects/{project_name_or_id}/immutabletagrules…`): every
//! principal of `support/rbac.rs` (anonymous, a non-member, the system
//! admin, Harbor's five project roles, a project robot, a system robot) ×
//! list, create, update and delete, on the public project `pub` and the
//! private project `priv`, with Basic credentials through the real API.
//!
//! The expected answers are written out from Harbor's permission model,
//! not derived from Berth's table: `immutableAPI` checks
//! `RequireProjectAccess(action, immutable-tag)`; `rolePoliciesMap`
//! (`src/common/rbac/project/rbac_role.go`) gives `immutable-tag` create,
//! update, delete and list to project admins and maintainers only; the
//! public-project policies (`rbac_util.go`) give nothing on it; the
//! robots here hold repository pull and push only. A refusal is 401 for
//! an anonymous caller, 404 for a signed-in caller who cannot see the
//! project (Berth hides private projects), 403 otherwise.
//!
//! Each creating or destructive cell acts on its own rule and checks its
//! effect: a success changed the rules, a refusal left them alone.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/rbac.rs"]
mod rbac;

use std::collections::HashMap;

use axum::http::Method;
use axum::http::StatusCode;
use berth::policy::selector::{MATCHES, REPO_MATCHES};
use berth::policy::{ImmutableRule, ImmutableRules, Selector};
use rbac::{EVERYONE, Who, World};
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum Op {
    List,
    Create,
    Update,
    Delete,
}

const OPS: [Op; 4] = [Op::List, Op::Create, Op::Update, Op::Delete];

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::List => "GET  immutabletagrules",
            Op::Create => "POST immutabletagrules",
            Op::Update => "PUT  immutabletagrule",
            Op::Delete => "DEL  immutabletagrule",
        }
    }

    /// Harbor's action on `immutable-tag` and the status of a success.
    fn needs(self) -> (&'static str, u16) {
        match self {
            Op::List => ("list", 200),
            Op::Create => ("create", 201),
            Op::Update => ("update", 200),
            Op::Delete => ("delete", 200),
        }
    }
}

/// Harbor's `rolePoliciesMap` rows for `immutable-tag`.
fn role_allows(who: Who, action: &str) -> bool {
    match who {
        Who::ProjectAdmin | Who::Maintainer => {
            ["create", "update", "delete", "list"].contains(&action)
        }
        // Developers, guests and limited guests have no immutable-tag row.
        _ => false,
    }
}

/// Harbor's answer to `who` doing `op` in `pub` (public) or `priv`.
fn expected(who: Who, public: bool, op: Op) -> u16 {
    let (action, ok) = op.needs();
    // The public-project policies hold nothing on immutable-tag, and the
    // robots' permissions here are repository pull and push.
    if who == Who::SysAdmin || role_allows(who, action) {
        return ok;
    }
    match who {
        Who::Anonymous => 401,
        Who::NonMember if !public => 404,
        _ => 403,
    }
}

fn rule(tag: &str) -> ImmutableRule {
    ImmutableRule::new(
        Selector::doublestar(REPO_MATCHES, "**"),
        Selector::doublestar(MATCHES, tag),
    )
}

/// What the cells of one project act on.
struct Seeded {
    /// The rule every principal tries to change.
    update: i64,
    /// One rule per principal to delete.
    delete: HashMap<Who, i64>,
}

struct Matrix {
    w: World,
    rules: ImmutableRules,
    seeded: HashMap<&'static str, Seeded>,
}

async fn matrix() -> Matrix {
    let w = rbac::world().await;
    let rules = ImmutableRules::new(w.iam.directory.kv().clone());
    let mut seeded = HashMap::new();
    for project in ["pub", "priv"] {
        let pid = w.iam.directory.project(project).await.unwrap().unwrap().id;
        let update = rules.create(project, pid, rule("update")).await.unwrap();
        let mut delete = HashMap::new();
        for who in EVERYONE {
            let id = rules
                .create(project, pid, rule(&format!("del-{}", who.slug())))
                .await
                .unwrap();
            delete.insert(who, id);
        }
        seeded.insert(project, Seeded { update, delete });
    }
    Matrix { w, rules, seeded }
}

impl Matrix {
    /// Does `op` as `who` in `project`: the status, and what is wrong with
    /// the answer or its effect.
    async fn attempt(&self, who: Who, project: &str, op: Op) -> (u16, Vec<String>) {
        let s = &self.seeded[project];
        let slug = who.slug();
        let base = format!("/api/v2.0/projects/{project}/immutabletagrules");
        let body = |tag: &str| {
            json!({
                "action": "immutable",
                "template": "immutable_template",
                "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tag}],
                "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
            })
        };
        let r = match op {
            Op::List => {
                let uri = format!("{base}?page_size=100");
                self.w.api(who, Method::GET, &uri, json!({})).await
            }
            Op::Create => {
                self.w
                    .api(who, Method::POST, &base, body(&format!("new-{slug}")))
                    .await
            }
            Op::Update => {
                let mut b = body(&format!("upd-{slug}"));
                b["id"] = json!(s.update);
                self.w
                    .api(who, Method::PUT, &format!("{base}/{}", s.update), b)
                    .await
            }
            Op::Delete => {
                self.w
                    .api(
                        who,
                        Method::DELETE,
                        &format!("{base}/{}", s.delete[&who]),
                        json!({}),
                    )
                    .await
            }
        };
        let status = r.status.as_u16();
        let ok = r.status.is_success();
        let mut problems = Vec::new();
        problems.extend(rbac::status_problem(&r));
        let stored = self.rules.list(project).await.unwrap();
        let changed = match op {
            Op::List => {
                let listed = r.json().as_array().map(Vec::len);
                let total = r.headers.get("x-total-count").and_then(|v| v.to_str().ok());
                if ok && (listed != Some(stored.len()) || total != Some(&stored.len().to_string()))
                {
                    problems.push(format!(
                        "listed {listed:?} (total {total:?}) of {} rules",
                        stored.len()
                    ));
                }
                None
            }
            Op::Create => Some(
                stored
                    .iter()
                    .any(|x| x.tag_selectors[0].pattern == format!("new-{slug}")),
            ),
            Op::Update => {
                Some(stored.iter().any(|x| {
                    x.id == s.update && x.tag_selectors[0].pattern == format!("upd-{slug}")
                }))
            }
            Op::Delete => Some(!stored.iter().any(|x| x.id == s.delete[&who])),
        };
        problems.extend(rbac::effect_problem(status, ok, changed, "the rules were"));
        (status, problems)
    }
}

#[tokio::test]
async fn every_principal_times_every_immutable_rule_endpoint() {
    let m = matrix().await;
    let mut wrong = Vec::new();
    let mut tables = String::new();
    let mut cells = 0;
    for (project, public) in [("pub", true), ("priv", false)] {
        let mut got: HashMap<(Who, Op), u16> = HashMap::new();
        for who in EVERYONE {
            for op in OPS {
                let (status, problems) = m.attempt(who, project, op).await;
                let want = expected(who, public, op);
                cells += 1;
                if status != want {
                    wrong.push(format!(
                        "{who:?} {} in {project}: Berth {status}, Harbor {want}",
                        op.label()
                    ));
                }
                for p in problems {
                    wrong.push(format!("{who:?} {} in {project}: {p}", op.label()));
                }
                got.insert((who, op), status);
            }
        }
        let title = format!("{project} ({})", if public { "public" } else { "private" });
        let table = rbac::table(
            &title,
            24,
            &OPS,
            Op::label,
            |who, op| got[&(who, op)],
            |who, op| expected(who, public, op),
        );
        tables.push_str(&table);
        tables.push('\n');
    }
    println!(
        "Immutable tag rule RBAC matrix ({cells} cells; \"!\" = Berth differs from Harbor):\n\n{tables}"
    );
    assert!(wrong.is_empty(), "{}\n\n{tables}", wrong.join("\n"));
    // Every status the matrix expects occurs.
    let mut seen: Vec<u16> = EVERYONE
        .iter()
        .flat_map(|w| OPS.iter().map(move |o| (*w, *o)))
        .flat_map(|(w, o)| [expected(w, true, o), expected(w, false, o)])
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, [200, 201, 401, 403, 404]);
}

#[tokio::test]
async fn a_robot_given_immutable_tag_permissions_may_manage_rules() {
    use berth::iam::Robot;
    use berth::iam::rbac::{Access, RobotPermission};
    let w = rbac::world().await;
    let access = |action: &str| Access {
        resource: "immutable-tag".to_owned(),
        action: action.to_owned(),
        effect: None,
    };
    let (robot, secret) = w
        .iam
        .directory
        .create_robot(Robot {
            id: 0,
            name: "robot$priv+rules".to_owned(),
            level: "project".to_owned(),
            project: Some("priv".to_owned()),
            project_id: 3,
            description: String::new(),
            secret_digest: String::new(),
            disable: false,
            duration: -1,
            expires_at: -1,
            permissions: vec![RobotPermission {
                kind: "project".to_owned(),
                namespace: "priv".to_owned(),
                access: vec![access("list"), access("create")],
            }],
            cred: 1,
            created: 0,
            updated: 0,
        })
        .await
        .unwrap();
    use base64::Engine as _;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", robot.name))
    );
    let call = |method: Method, uri: &str, body: serde_json::Value| {
        let auth = auth.clone();
        let uri = uri.to_owned();
        let router = w.app.router.clone();
        async move {
            common::send_to(
                &router,
                method,
                &uri,
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                ],
                serde_json::to_vec(&body).unwrap(),
            )
            .await
        }
    };
    let base = "/api/v2.0/projects/priv/immutabletagrules";
    let rule = json!({
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
    });
    let r = call(Method::POST, base, rule).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let r = call(Method::GET, base, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Not given delete; not given anything in `pub`.
    let r = call(Method::DELETE, &format!("{base}/{id}"), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = call(
        Method::GET,
        "/api/v2.0/projects/pub/immutabletagrules",
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}
