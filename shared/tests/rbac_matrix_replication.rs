//! The RBAC matrix of Harbor's registry and replication endpoints
//! (`/registries…`, `/replication/…`): every principal of
//! `support/rbac.rs` (anonymous, a non-member, the system admin, Harbor's
//! five project roles, a project robot, a system robot) × the registry
//! and policy operations and the execution listing, with Basic
//! credentials through the real API.
//!
//! The expected answers are written out from Harbor's permission model:
//! `registryAPI` and `replicationAPI` check `RequireSystemAccess` on the
//! system resources `registry` and `replication`, which only system admins
//! hold (project roles have no system permissions; the robots here hold
//! repository pull and push only). A refusal is 401 for an anonymous
//! caller and 403 for everyone else.
//!
//! Each creating or destructive cell acts on its own object and checks its
//! effect: a success changed the store, a refusal left it alone.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/rbac.rs"]
mod rbac;

use std::collections::HashMap;

use axum::http::Method;
use berth::replication::{Endpoint, Endpoints, Policies, Policy};
use rbac::{EVERYONE, Who, World};
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum Op {
    ListRegistries,
    CreateRegistry,
    GetRegistry,
    UpdateRegistry,
    DeleteRegistry,
    RegistryInfo,
    Adapters,
    ListPolicies,
    CreatePolicy,
    GetPolicy,
    UpdatePolicy,
    DeletePolicy,
    ListExecutions,
}

const OPS: [Op; 13] = [
    Op::ListRegistries,
    Op::CreateRegistry,
    Op::GetRegistry,
    Op::UpdateRegistry,
    Op::DeleteRegistry,
    Op::RegistryInfo,
    Op::Adapters,
    Op::ListPolicies,
    Op::CreatePolicy,
    Op::GetPolicy,
    Op::UpdatePolicy,
    Op::DeletePolicy,
    Op::ListExecutions,
];

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::ListRegistries => "GET  registries",
            Op::CreateRegistry => "POST registries",
            Op::GetRegistry => "GET  registry",
            Op::UpdateRegistry => "PUT  registry",
            Op::DeleteRegistry => "DEL  registry",
            Op::RegistryInfo => "GET  registry info",
            Op::Adapters => "GET  adapters",
            Op::ListPolicies => "GET  policies",
            Op::CreatePolicy => "POST policies",
            Op::GetPolicy => "GET  policy",
            Op::UpdatePolicy => "PUT  policy",
            Op::DeletePolicy => "DEL  policy",
            Op::ListExecutions => "GET  executions",
        }
    }

    fn success(self) -> u16 {
        match self {
            Op::CreateRegistry | Op::CreatePolicy => 201,
            _ => 200,
        }
    }
}

/// Harbor's answer to `who` doing `op`.
fn expected(who: Who, op: Op) -> u16 {
    match who {
        Who::SysAdmin => op.success(),
        Who::Anonymous => 401,
        _ => 403,
    }
}

/// What the cells act on.
struct Matrix {
    w: World,
    endpoints: Endpoints,
    policies: Policies,
    /// The registry and policy every principal tries to change.
    registry: i64,
    policy: i64,
    /// One registry and one policy per principal to delete.
    del_registry: HashMap<Who, i64>,
    del_policy: HashMap<Who, i64>,
}

async fn matrix() -> Matrix {
    let w = rbac::world().await;
    let kv = w.iam.directory.kv().clone();
    let endpoints = Endpoints::new(kv.clone());
    let policies = Policies::new(kv);
    let endpoint = |name: &str| Endpoint::new(name, "docker-registry", "https://r.example.com");
    let registry = endpoints.create(endpoint("shared")).await.unwrap();
    let policy_of = |name: &str| {
        let mut p = Policy::new(name);
        p.dest_registry = Some(registry);
        p
    };
    let policy = policies.create(policy_of("shared")).await.unwrap();
    let mut del_registry = HashMap::new();
    let mut del_policy = HashMap::new();
    for who in EVERYONE {
        let slug = who.slug();
        del_registry.insert(
            who,
            endpoints
                .create(endpoint(&format!("del-{slug}")))
                .await
                .unwrap(),
        );
        del_policy.insert(
            who,
            policies
                .create(policy_of(&format!("del-{slug}")))
                .await
                .unwrap(),
        );
    }
    Matrix {
        w,
        endpoints,
        policies,
        registry,
        policy,
        del_registry,
        del_policy,
    }
}

impl Matrix {
    /// Does `op` as `who`: the status, and what is wrong with the answer
    /// or its effect.
    async fn attempt(&self, who: Who, op: Op) -> (u16, Vec<String>) {
        let slug = who.slug();
        let (r, p) = (self.registry, self.policy);
        let (method, uri, body) = match op {
            Op::ListRegistries => (Method::GET, "/api/v2.0/registries".to_owned(), json!({})),
            Op::CreateRegistry => (
                Method::POST,
                "/api/v2.0/registries".to_owned(),
                json!({"name": format!("new-{slug}"), "type": "harbor", "url": "https://h.example.com"}),
            ),
            Op::GetRegistry => (Method::GET, format!("/api/v2.0/registries/{r}"), json!({})),
            Op::UpdateRegistry => (
                Method::PUT,
                format!("/api/v2.0/registries/{r}"),
                json!({"description": format!("upd-{slug}")}),
            ),
            Op::DeleteRegistry => (
                Method::DELETE,
                format!("/api/v2.0/registries/{}", self.del_registry[&who]),
                json!({}),
            ),
            Op::RegistryInfo => (
                Method::GET,
                format!("/api/v2.0/registries/{r}/info"),
                json!({}),
            ),
            Op::Adapters => (
                Method::GET,
                "/api/v2.0/replication/adapters".to_owned(),
                json!({}),
            ),
            Op::ListPolicies => (
                Method::GET,
                "/api/v2.0/replication/policies".to_owned(),
                json!({}),
            ),
            Op::CreatePolicy => (
                Method::POST,
                "/api/v2.0/replication/policies".to_owned(),
                json!({"name": format!("new-{slug}"), "dest_registry": {"id": r}}),
            ),
            Op::GetPolicy => (
                Method::GET,
                format!("/api/v2.0/replication/policies/{p}"),
                json!({}),
            ),
            Op::UpdatePolicy => (
                Method::PUT,
                format!("/api/v2.0/replication/policies/{p}"),
                json!({"description": format!("upd-{slug}")}),
            ),
            Op::DeletePolicy => (
                Method::DELETE,
                format!("/api/v2.0/replication/policies/{}", self.del_policy[&who]),
                json!({}),
            ),
            Op::ListExecutions => (
                Method::GET,
                "/api/v2.0/replication/executions".to_owned(),
                json!({}),
            ),
        };
        let resp = self.w.api(who, method, &uri, body).await;
        let status = resp.status.as_u16();
        let ok = resp.status.is_success();
        let mut problems = Vec::new();
        problems.extend(rbac::status_problem(&resp));
        let registries = self.endpoints.list().await.unwrap();
        let policies = self.policies.list().await.unwrap();
        let changed = match op {
            Op::CreateRegistry => Some(registries.iter().any(|e| e.name == format!("new-{slug}"))),
            Op::UpdateRegistry => Some(
                registries
                    .iter()
                    .any(|e| e.id == r && e.description == format!("upd-{slug}")),
            ),
            Op::DeleteRegistry => Some(!registries.iter().any(|e| e.id == self.del_registry[&who])),
            Op::CreatePolicy => Some(policies.iter().any(|x| x.name == format!("new-{slug}"))),
            Op::UpdatePolicy => Some(
                policies
                    .iter()
                    .any(|x| x.id == p && x.description == format!("upd-{slug}")),
            ),
            Op::DeletePolicy => Some(!policies.iter().any(|x| x.id == self.del_policy[&who])),
            _ => None,
        };
        problems.extend(rbac::effect_problem(status, ok, changed, "the store was"));
        (status, problems)
    }
}

#[tokio::test]
async fn every_principal_times_every_replication_endpoint() {
    let m = matrix().await;
    let mut wrong = Vec::new();
    let mut got: HashMap<(Who, Op), u16> = HashMap::new();
    for who in EVERYONE {
        for op in OPS {
            let (status, problems) = m.attempt(who, op).await;
            let want = expected(who, op);
            if status != want {
                wrong.push(format!(
                    "{who:?} {}: Berth {status}, Harbor {want}",
                    op.label()
                ));
            }
            for p in problems {
                wrong.push(format!("{who:?} {}: {p}", op.label()));
            }
            got.insert((who, op), status);
        }
    }
    let table = rbac::table(
        "system resources registry and replication",
        20,
        &OPS,
        Op::label,
        |who, op| got[&(who, op)],
        expected,
    );
    println!(
        "Replication RBAC matrix ({} cells; \"!\" = Berth differs from Harbor):\n\n{table}",
        got.len()
    );
    assert!(wrong.is_empty(), "{}\n\n{table}", wrong.join("\n"));
}
