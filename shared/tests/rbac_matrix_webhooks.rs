//! The RBAC matrix of Harbor's webhook endpoints
//! (`/projects/{project_name_or_id}/webhook/…`): every principal of
//! `support/rbac.rs` (anonymous, a non-member, the system admin, Harbor's
//! five project roles, a project robot, a system robot) × list, create,
//! get, update and delete a policy, list its executions, the supported
//! event types and the last triggers, on the public project `pub` and the
//! private project `priv`, with Basic credentials through the real API.
//!
//! The expected answers are written out from Harbor's permission model,
//! not derived from Berth's table: `webhookAPI` checks
//! `RequireProjectAccess(action, notification-policy)` — `list` for the
//! policy and execution lists, `create`, `read` (one policy, the event
//! types, the last triggers), `update`, `delete`; `rolePoliciesMap` gives
//! `notification-policy` every action to project admins and `list` to
//! maintainers; the public-project policies give nothing on it; the
//! robots here hold repository pull and push only. A refusal is 401 for
//! an anonymous caller, 404 for a signed-in caller who cannot see the
//! project (Berth hides private projects), 403 otherwise.
//!
//! Each creating or destructive cell acts on its own policy and checks
//! its effect: a success changed the policies, a refusal left them alone.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/rbac.rs"]
mod rbac;

use std::collections::HashMap;

use axum::http::Method;
use berth::outbound::AddressPolicy;
use berth::webhook::policy::{HTTP, Target, WebhookPolicies, WebhookPolicy};
use rbac::{EVERYONE, Who, World};
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum Op {
    List,
    Create,
    Get,
    Update,
    Delete,
    Executions,
    Events,
    LastTrigger,
}

const OPS: [Op; 8] = [
    Op::List,
    Op::Create,
    Op::Get,
    Op::Update,
    Op::Delete,
    Op::Executions,
    Op::Events,
    Op::LastTrigger,
];

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::List => "GET  policies",
            Op::Create => "POST policies",
            Op::Get => "GET  policy",
            Op::Update => "PUT  policy",
            Op::Delete => "DEL  policy",
            Op::Executions => "GET  executions",
            Op::Events => "GET  events",
            Op::LastTrigger => "GET  lasttrigger",
        }
    }

    /// Harbor's action on `notification-policy` and the status of a success.
    fn needs(self) -> (&'static str, u16) {
        match self {
            Op::List | Op::Executions => ("list", 200),
            Op::Create => ("create", 201),
            Op::Get | Op::Events | Op::LastTrigger => ("read", 200),
            Op::Update => ("update", 200),
            Op::Delete => ("delete", 200),
        }
    }
}

/// Harbor's `rolePoliciesMap` rows for `notification-policy`.
fn role_allows(who: Who, action: &str) -> bool {
    match who {
        Who::ProjectAdmin => true,
        Who::Maintainer => action == "list",
        // Developers, guests and limited guests have no row.
        _ => false,
    }
}

/// Harbor's answer to `who` doing `op` in `pub` (public) or `priv`.
fn expected(who: Who, public: bool, op: Op) -> u16 {
    let (action, ok) = op.needs();
    if who == Who::SysAdmin || role_allows(who, action) {
        return ok;
    }
    match who {
        Who::Anonymous => 401,
        Who::NonMember if !public => 404,
        _ => 403,
    }
}

fn policy(name: &str) -> WebhookPolicy {
    WebhookPolicy {
        name: name.into(),
        targets: vec![Target {
            kind: HTTP.into(),
            address: format!("https://hooks.example.com/{name}"),
            ..Target::default()
        }],
        event_types: vec!["PUSH_ARTIFACT".into()],
        enabled: true,
        ..WebhookPolicy::default()
    }
}

/// What the cells of one project act on.
struct Seeded {
    id: i64,
    /// The policy every principal tries to change.
    update: i64,
    /// One policy per principal to delete.
    delete: HashMap<Who, i64>,
}

struct Matrix {
    w: World,
    policies: WebhookPolicies,
    seeded: HashMap<&'static str, Seeded>,
}

async fn matrix() -> Matrix {
    let w = rbac::world().await;
    let policies = WebhookPolicies::new(w.iam.directory.kv().clone());
    let strict = AddressPolicy::new(false);
    let mut seeded = HashMap::new();
    for project in ["pub", "priv"] {
        let pid = w.iam.directory.project(project).await.unwrap().unwrap().id;
        let update = policies
            .create(project, pid, policy("update"), "admin", strict)
            .await
            .unwrap()
            .policy
            .id;
        let mut delete = HashMap::new();
        for who in EVERYONE {
            let p = policy(&format!("del-{}", who.slug()));
            let id = policies
                .create(project, pid, p, "admin", strict)
                .await
                .unwrap()
                .policy
                .id;
            delete.insert(who, id);
        }
        seeded.insert(
            project,
            Seeded {
                id: pid,
                update,
                delete,
            },
        );
    }
    Matrix {
        w,
        policies,
        seeded,
    }
}

impl Matrix {
    /// Does `op` as `who` in `project`: the status, and what is wrong with
    /// the answer or its effect.
    async fn attempt(&self, who: Who, project: &str, op: Op) -> (u16, Vec<String>) {
        let s = &self.seeded[project];
        let slug = who.slug();
        let webhook = format!("/api/v2.0/projects/{project}/webhook");
        let base = format!("{webhook}/policies");
        let body = |name: &str| {
            json!({
                "name": name,
                "enabled": true,
                "event_types": ["PUSH_ARTIFACT"],
                "targets": [{"type": "http", "address": "https://hooks.example.com/x"}],
            })
        };
        let (method, uri, b) = match op {
            Op::List => (Method::GET, format!("{base}?page_size=100"), json!({})),
            Op::Create => (Method::POST, base.clone(), body(&format!("new-{slug}"))),
            Op::Get => (Method::GET, format!("{base}/{}", s.update), json!({})),
            Op::Update => (
                Method::PUT,
                format!("{base}/{}", s.update),
                json!({"description": format!("upd-{slug}")}),
            ),
            Op::Delete => (
                Method::DELETE,
                format!("{base}/{}", s.delete[&who]),
                json!({}),
            ),
            Op::Executions => (
                Method::GET,
                format!("{base}/{}/executions", s.update),
                json!({}),
            ),
            Op::Events => (Method::GET, format!("{webhook}/events"), json!({})),
            Op::LastTrigger => (Method::GET, format!("{webhook}/lasttrigger"), json!({})),
        };
        let r = self.w.api(who, method, &uri, b).await;
        let status = r.status.as_u16();
        let ok = r.status.is_success();
        let mut problems = Vec::new();
        problems.extend(rbac::status_problem(&r));
        let stored: Vec<WebhookPolicy> = self
            .policies
            .list(project, s.id)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.policy)
            .collect();
        let changed = match op {
            Op::List => {
                let listed = r.json().as_array().map(Vec::len);
                if ok && listed != Some(stored.len()) {
                    problems.push(format!("listed {listed:?} of {} policies", stored.len()));
                }
                None
            }
            Op::Create => Some(stored.iter().any(|p| p.name == format!("new-{slug}"))),
            Op::Update => Some(
                stored
                    .iter()
                    .any(|p| p.id == s.update && p.description == format!("upd-{slug}")),
            ),
            Op::Delete => Some(!stored.iter().any(|p| p.id == s.delete[&who])),
            Op::Get | Op::Executions | Op::Events | Op::LastTrigger => None,
        };
        problems.extend(rbac::effect_problem(
            status,
            ok,
            changed,
            "the policies were",
        ));
        (status, problems)
    }
}

#[tokio::test]
async fn every_principal_times_every_webhook_endpoint() {
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
            20,
            &OPS,
            Op::label,
            |who, op| got[&(who, op)],
            |who, op| expected(who, public, op),
        );
        tables.push_str(&table);
        tables.push('\n');
    }
    println!("Webhook RBAC matrix ({cells} cells; \"!\" = Berth differs from Harbor):\n\n{tables}");
    assert!(wrong.is_empty(), "{}\n\n{tables}", wrong.join("\n"));
    let mut seen: Vec<u16> = EVERYONE
        .iter()
        .flat_map(|w| OPS.iter().map(move |o| (*w, *o)))
        .flat_map(|(w, o)| [expected(w, true, o), expected(w, false, o)])
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, [200, 201, 401, 403, 404]);
}
