//! The RBAC matrix of Harbor's artifact API: every principal of
//! `support/rbac.rs` (anonymous, a non-member, the system admin, Harbor's
//! five project roles, a project robot, a system robot) × every endpoint
//! of repositories, artifacts, tags, accessories, additions, artifact
//! labels, labels, search, statistics and the project summary, on the
//! public project `pub` and the private project `priv`, with Basic
//! credentials through the real API.
//!
//! The expected answers are written out here from Harbor's permission
//! model — its role policies (`src/common/rbac/project/rbac_role.go`), its
//! public-project policies (`rbac_util.go`), the robot evaluator
//! (`src/common/security/robot/context.go`) and the handlers' checks
//! (`src/server/v2.0/handler/*.go`) — not derived from Berth's table. A
//! refusal is 401 for an anonymous caller, 404 for a signed-in caller
//! who cannot see the project (Berth hides private projects; a robot
//! whose permissions name the project sees it), 403 otherwise.
//!
//! Every destructive or creating cell acts on its own object (one
//! repository, artifact, tag, label per principal and project), and each
//! cell checks its effect: a success changed the object, a refusal left it
//! alone. The matrix is printed, one table per project.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/rbac.rs"]
mod rbac;

use std::collections::HashMap;
use std::fmt;

use axum::http::{Method, StatusCode};
use berth::iam::labels::{Label, LabelScope};
use berth::oci::RepoName;
use berth::oci::digest::parse_digest;
use common::Resp;
use rbac::{EVERYONE, Who, World};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum Op {
    ListRepos,
    GlobalRepos,
    GetRepo,
    UpdateRepo,
    DeleteRepo,
    ListArtifacts,
    GetArtifact,
    DeleteArtifact,
    CopyArtifact,
    ListTags,
    CreateTag,
    DeleteTag,
    ListAccessories,
    BuildHistory,
    AttachLabel,
    DetachLabel,
    CreateProjectLabel,
    UpdateProjectLabel,
    DeleteProjectLabel,
    CreateGlobalLabel,
    UpdateGlobalLabel,
    DeleteGlobalLabel,
    Search,
    Statistics,
    Summary,
}

const OPS: [Op; 25] = [
    Op::ListRepos,
    Op::GlobalRepos,
    Op::GetRepo,
    Op::UpdateRepo,
    Op::DeleteRepo,
    Op::ListArtifacts,
    Op::GetArtifact,
    Op::DeleteArtifact,
    Op::CopyArtifact,
    Op::ListTags,
    Op::CreateTag,
    Op::DeleteTag,
    Op::ListAccessories,
    Op::BuildHistory,
    Op::AttachLabel,
    Op::DetachLabel,
    Op::CreateProjectLabel,
    Op::UpdateProjectLabel,
    Op::DeleteProjectLabel,
    Op::CreateGlobalLabel,
    Op::UpdateGlobalLabel,
    Op::DeleteGlobalLabel,
    Op::Search,
    Op::Statistics,
    Op::Summary,
];

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::ListRepos => "GET  repos",
            Op::GlobalRepos => "GET  /repositories",
            Op::GetRepo => "GET  repo",
            Op::UpdateRepo => "PUT  repo",
            Op::DeleteRepo => "DEL  repo",
            Op::ListArtifacts => "GET  artifacts",
            Op::GetArtifact => "GET  artifact",
            Op::DeleteArtifact => "DEL  artifact",
            Op::CopyArtifact => "POST artifacts?from",
            Op::ListTags => "GET  tags",
            Op::CreateTag => "POST tags",
            Op::DeleteTag => "DEL  tag",
            Op::ListAccessories => "GET  accessories",
            Op::BuildHistory => "GET  build_history",
            Op::AttachLabel => "POST artifact label",
            Op::DetachLabel => "DEL  artifact label",
            Op::CreateProjectLabel => "POST project label",
            Op::UpdateProjectLabel => "PUT  project label",
            Op::DeleteProjectLabel => "DEL  project label",
            Op::CreateGlobalLabel => "POST global label",
            Op::UpdateGlobalLabel => "PUT  global label",
            Op::DeleteGlobalLabel => "DEL  global label",
            Op::Search => "GET  search",
            Op::Statistics => "GET  statistics",
            Op::Summary => "GET  summary",
        }
    }

    /// What Harbor's handler checks in the project (all must hold) and
    /// the status of a success.
    fn needs(self) -> (&'static [(&'static str, &'static str)], u16) {
        match self {
            Op::ListRepos => (&[("repository", "list")], 200),
            // GetRepository: RequireProjectAccess(list, repository).
            Op::GetRepo => (&[("repository", "list")], 200),
            Op::UpdateRepo => (&[("repository", "update")], 200),
            Op::DeleteRepo => (&[("repository", "delete")], 200),
            Op::ListArtifacts => (&[("artifact", "list")], 200),
            Op::GetArtifact => (&[("artifact", "read")], 200),
            Op::DeleteArtifact => (&[("artifact", "delete")], 200),
            // The destination needs artifact create, the source (here the
            // same project) artifact read.
            Op::CopyArtifact => (&[("artifact", "create"), ("artifact", "read")], 201),
            Op::ListTags => (&[("tag", "list")], 200),
            Op::CreateTag => (&[("tag", "create")], 201),
            Op::DeleteTag => (&[("tag", "delete")], 200),
            Op::ListAccessories => (&[("accessory", "list")], 200),
            Op::BuildHistory => (&[("artifact-addition", "read")], 200),
            Op::AttachLabel => (&[("artifact-label", "create")], 200),
            Op::DetachLabel => (&[("artifact-label", "delete")], 200),
            Op::CreateProjectLabel => (&[("label", "create")], 201),
            Op::UpdateProjectLabel => (&[("label", "update")], 200),
            Op::DeleteProjectLabel => (&[("label", "delete")], 200),
            // GetProjectSummary: RequireProjectAccess(read) on the project.
            Op::Summary => (&[("project", "read")], 200),
            Op::CreateGlobalLabel => (&[], 201),
            Op::UpdateGlobalLabel | Op::DeleteGlobalLabel => (&[], 200),
            Op::GlobalRepos | Op::Search | Op::Statistics => (&[], 200),
        }
    }
}

/// One cell: a status, or (for the listings across projects) whether the
/// project's content shows in a 200 answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cell {
    Status(u16),
    Sees(bool),
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Status(s) => write!(f, "{s}"),
            Cell::Sees(true) => write!(f, "sees"),
            Cell::Sees(false) => write!(f, "-"),
        }
    }
}

// ---- Harbor's model, written out ------------------------------------------

/// Harbor's `rolePoliciesMap` (src/common/rbac/project/rbac_role.go), the
/// rows of the resources these endpoints check.
fn role_policies(who: Who) -> &'static [(&'static str, &'static [&'static str])] {
    match who {
        Who::ProjectAdmin => &[
            ("project", &["read", "update", "delete"]),
            ("member", &["create", "read", "update", "delete", "list"]),
            ("label", &["create", "read", "update", "delete", "list"]),
            (
                "repository",
                &["create", "read", "update", "delete", "list", "pull", "push"],
            ),
            ("artifact", &["create", "read", "delete", "list"]),
            ("artifact-addition", &["read"]),
            ("tag", &["list", "create", "delete"]),
            ("accessory", &["list"]),
            ("artifact-label", &["create", "delete"]),
        ],
        Who::Maintainer => &[
            ("project", &["read"]),
            ("member", &["read", "list"]),
            ("label", &["create", "read", "update", "delete", "list"]),
            (
                "repository",
                &["create", "read", "update", "delete", "list", "push", "pull"],
            ),
            ("accessory", &["list"]),
            ("artifact", &["create", "read", "delete", "list"]),
            ("artifact-addition", &["read"]),
            ("tag", &["list", "create", "delete"]),
            ("artifact-label", &["create", "delete"]),
        ],
        Who::Developer => &[
            ("project", &["read"]),
            ("member", &["read", "list"]),
            ("label", &["read", "list"]),
            (
                "repository",
                &["create", "read", "update", "list", "push", "pull"],
            ),
            ("artifact", &["create", "read", "list"]),
            ("artifact-addition", &["read"]),
            ("tag", &["list", "create"]),
            ("accessory", &["list"]),
            ("artifact-label", &["create", "delete"]),
        ],
        Who::Guest => &[
            ("project", &["read"]),
            ("member", &["read", "list"]),
            ("label", &["read", "list"]),
            ("repository", &["read", "list", "pull"]),
            ("tag", &["list"]),
            ("accessory", &["list"]),
            ("artifact", &["read", "list"]),
            ("artifact-addition", &["read"]),
        ],
        Who::LimitedGuest => &[
            ("project", &["read"]),
            ("repository", &["list", "read", "pull"]),
            ("tag", &["list"]),
            ("accessory", &["list"]),
            ("artifact", &["read", "list"]),
            ("artifact-addition", &["read"]),
        ],
        _ => &[],
    }
}

/// Harbor's `publicProjectPolicies` (src/common/rbac/project/rbac_util.go):
/// what everyone, robots included, may do in a public project.
const PUBLIC_PROJECT: &[(&str, &str)] = &[
    ("project", "read"),
    ("label", "read"),
    ("label", "list"),
    ("repository", "list"),
    ("repository", "pull"),
    ("scan", "read"),
    ("scanner", "read"),
    ("tag", "list"),
    ("artifact", "read"),
    ("artifact", "list"),
    ("artifact-addition", "read"),
    ("accessory", "list"),
];

/// Whether Harbor lets `who` do `action` on `resource` in `pub` (public)
/// or `priv`.
fn harbor_allows(who: Who, public: bool, resource: &str, action: &str) -> bool {
    if who == Who::SysAdmin {
        return true;
    }
    if public && PUBLIC_PROJECT.contains(&(resource, action)) {
        return true;
    }
    let robot_pull_push = resource == "repository" && matches!(action, "pull" | "push");
    match who {
        // repository pull and push in `priv` (filterRobotPolicies keeps
        // the policies of the robot's own project).
        Who::ProjectRobot => !public && robot_pull_push,
        // repository pull and push in every project (`/project/*`).
        Who::SystemRobot => robot_pull_push,
        _ => role_policies(who)
            .iter()
            .any(|(r, actions)| *r == resource && actions.contains(&action)),
    }
}

/// Whether `who` sees the project at all (else a signed-in caller's
/// refusal is 404): a public project, or a member, the admin, or a robot
/// with permissions in it.
fn sees_project(who: Who, public: bool) -> bool {
    public || !matches!(who, Who::Anonymous | Who::NonMember)
}

/// Harbor's answer to `who` doing `op` in `pub` or `priv`.
fn expected(who: Who, public: bool, op: Op) -> Cell {
    let (needs, ok) = op.needs();
    let refused = || {
        Cell::Status(match who {
            Who::Anonymous => 401,
            _ if !sees_project(who, public) => 404,
            _ => 403,
        })
    };
    match op {
        // ListAllRepositories: anyone; admins and robots covering every
        // project see everything, users their projects and the public
        // ones, project robots their namespaces and the public ones.
        Op::GlobalRepos => Cell::Sees(
            public
                || who.is_member()
                || matches!(who, Who::SysAdmin | Who::ProjectRobot | Who::SystemRobot),
        ),
        // Search: anyone; admins see every project, signed-in *users*
        // their projects and the public ones, everyone else (anonymous,
        // robots) the public ones.
        Op::Search => Cell::Sees(public || who.is_member() || who == Who::SysAdmin),
        // GetStatistic: RequireAuthenticated; private counts are every
        // project for admins, the user's private projects for users, none
        // for robots.
        Op::Statistics if who == Who::Anonymous => Cell::Status(401),
        Op::Statistics => Cell::Sees(public || who.is_member() || who == Who::SysAdmin),
        // Global labels: RequireSystemAccess(label).
        Op::CreateGlobalLabel | Op::UpdateGlobalLabel | Op::DeleteGlobalLabel => match who {
            Who::SysAdmin => Cell::Status(ok),
            Who::Anonymous => Cell::Status(401),
            _ => Cell::Status(403),
        },
        _ => {
            if needs.iter().all(|(r, a)| harbor_allows(who, public, r, a)) {
                Cell::Status(ok)
            } else {
                refused()
            }
        }
    }
}

// ---- the world ------------------------------------------------------------

/// What the cells of one project act on.
struct Seeded {
    project_id: i64,
    /// `<project>/adel`: one artifact per principal, by digest.
    adel: HashMap<Who, String>,
    /// `<project>/tdel`'s artifact: tags `t-<principal>` to delete.
    tdel: String,
    /// `<project>/per`: one artifact per principal (tag `<principal>`),
    /// with `detach` attached.
    per: HashMap<Who, String>,
    /// Project labels: attached by the cells, attached to detach, updated.
    attach: i64,
    detach: i64,
    update: i64,
    /// One project label per principal to delete.
    pdel: HashMap<Who, i64>,
    /// One global label per principal to delete (this column's).
    gdel: HashMap<Who, i64>,
}

struct Matrix {
    w: World,
    seeded: HashMap<&'static str, Seeded>,
    /// A global label every cell may update.
    gupdate: i64,
}

fn label(name: &str, scope: &str, project_id: i64) -> Label {
    Label {
        id: 0,
        name: name.to_owned(),
        description: String::new(),
        color: String::new(),
        scope: scope.to_owned(),
        project_id,
        created: 1,
        updated: 1,
    }
}

fn repo_name(s: &str) -> RepoName {
    s.parse().unwrap()
}

async fn matrix() -> Matrix {
    let w = rbac::world().await;
    let labels = w.iam.directory.labels();
    let mut seeded = HashMap::new();
    for project in ["pub", "priv"] {
        let project_id = w.iam.directory.project(project).await.unwrap().unwrap().id;
        w.push_image(&format!("{project}/base"), "v1", project)
            .await;
        let (tdel_manifest, tdel) = w
            .push_image(&format!("{project}/tdel"), "v1", &format!("{project}-tdel"))
            .await;
        let attach = labels
            .create(label(&format!("attach-{project}"), "p", project_id))
            .await
            .unwrap()
            .id;
        let detach = labels
            .create(label(&format!("detach-{project}"), "p", project_id))
            .await
            .unwrap()
            .id;
        let update = labels
            .create(label(&format!("update-{project}"), "p", project_id))
            .await
            .unwrap()
            .id;
        let mut s = Seeded {
            project_id,
            adel: HashMap::new(),
            tdel,
            per: HashMap::new(),
            attach,
            detach,
            update,
            pdel: HashMap::new(),
            gdel: HashMap::new(),
        };
        for who in EVERYONE {
            let slug = who.slug();
            w.push_image(
                &format!("{project}/rdel-{slug}"),
                "v1",
                &format!("{project}-rdel-{slug}"),
            )
            .await;
            let (_, d) = w
                .push_image(
                    &format!("{project}/adel"),
                    &slug,
                    &format!("{project}-adel-{slug}"),
                )
                .await;
            s.adel.insert(who, d);
            w.tag_manifest(
                &format!("{project}/tdel"),
                &format!("t-{slug}"),
                &tdel_manifest,
            )
            .await;
            let (_, d) = w
                .push_image(
                    &format!("{project}/per"),
                    &slug,
                    &format!("{project}-per-{slug}"),
                )
                .await;
            labels
                .attach(
                    &repo_name(&format!("{project}/per")),
                    &parse_digest(&d).unwrap(),
                    detach,
                )
                .await
                .unwrap();
            s.per.insert(who, d);
            let id = labels
                .create(label(&format!("pdel-{slug}"), "p", project_id))
                .await
                .unwrap()
                .id;
            s.pdel.insert(who, id);
            let id = labels
                .create(label(&format!("gdel-{project}-{slug}"), "g", 0))
                .await
                .unwrap()
                .id;
            s.gdel.insert(who, id);
        }
        seeded.insert(project, s);
    }
    let gupdate = labels.create(label("gupdate", "g", 0)).await.unwrap().id;
    Matrix { w, seeded, gupdate }
}

/// `a%2Fb` for a query parameter.
fn query_escape(s: &str) -> String {
    s.replace('/', "%2F")
        .replace(':', "%3A")
        .replace('@', "%40")
}

impl Matrix {
    /// Does `op` as `who` in `project`: the cell, and what is wrong with
    /// the answer or its effect (a success must have changed the object,
    /// a refusal must have left it alone; refusals carry an error body).
    async fn attempt(&self, who: Who, project: &str, op: Op) -> (Cell, Vec<String>) {
        let w = &self.w;
        let s = &self.seeded[project];
        let slug = who.slug();
        let repos = format!("/api/v2.0/projects/{project}/repositories");
        let base = format!("{repos}/base/artifacts/v1");
        let labels = w.iam.directory.labels();
        let mut problems = Vec::new();
        let get = |uri: String| async move { w.api(who, Method::GET, &uri, json!({})).await };
        let r: Resp = match op {
            Op::ListRepos => get(format!("{repos}?page_size=100")).await,
            Op::GlobalRepos => get("/api/v2.0/repositories?page_size=100".to_owned()).await,
            Op::GetRepo => get(format!("{repos}/base")).await,
            Op::UpdateRepo => {
                w.api(
                    who,
                    Method::PUT,
                    &format!("{repos}/base"),
                    json!({"description": format!("by {slug}")}),
                )
                .await
            }
            Op::DeleteRepo => {
                w.api(
                    who,
                    Method::DELETE,
                    &format!("{repos}/rdel-{slug}"),
                    json!({}),
                )
                .await
            }
            Op::ListArtifacts => get(format!("{repos}/base/artifacts")).await,
            Op::GetArtifact => get(base.clone()).await,
            Op::DeleteArtifact => {
                w.api(
                    who,
                    Method::DELETE,
                    &format!("{repos}/adel/artifacts/{}", s.adel[&who]),
                    json!({}),
                )
                .await
            }
            Op::CopyArtifact => {
                let from = query_escape(&format!("{project}/base:v1"));
                w.api(
                    who,
                    Method::POST,
                    &format!("{repos}/copy-{slug}/artifacts?from={from}"),
                    json!({}),
                )
                .await
            }
            Op::ListTags => get(format!("{base}/tags")).await,
            Op::CreateTag => {
                w.api(
                    who,
                    Method::POST,
                    &format!("{base}/tags"),
                    json!({"name": format!("n-{slug}")}),
                )
                .await
            }
            Op::DeleteTag => {
                w.api(
                    who,
                    Method::DELETE,
                    &format!("{repos}/tdel/artifacts/{}/tags/t-{slug}", s.tdel),
                    json!({}),
                )
                .await
            }
            Op::ListAccessories => get(format!("{base}/accessories")).await,
            Op::BuildHistory => get(format!("{base}/additions/build_history")).await,
            Op::AttachLabel => {
                w.api(
                    who,
                    Method::POST,
                    &format!("{repos}/per/artifacts/{slug}/labels"),
                    json!({"id": s.attach}),
                )
                .await
            }
            Op::DetachLabel => {
                w.api(
                    who,
                    Method::DELETE,
                    &format!("{repos}/per/artifacts/{slug}/labels/{}", s.detach),
                    json!({}),
                )
                .await
            }
            Op::CreateProjectLabel => {
                w.api(
                    who,
                    Method::POST,
                    "/api/v2.0/labels",
                    json!({"name": format!("new-{slug}"), "scope": "p", "project_id": s.project_id}),
                )
                .await
            }
            Op::UpdateProjectLabel => {
                w.api(
                    who,
                    Method::PUT,
                    &format!("/api/v2.0/labels/{}", s.update),
                    json!({"description": format!("by {slug}")}),
                )
                .await
            }
            Op::DeleteProjectLabel => {
                w.api(
                    who,
                    Method::DELETE,
                    &format!("/api/v2.0/labels/{}", s.pdel[&who]),
                    json!({}),
                )
                .await
            }
            Op::CreateGlobalLabel => {
                w.api(
                    who,
                    Method::POST,
                    "/api/v2.0/labels",
                    json!({"name": format!("gnew-{project}-{slug}"), "scope": "g"}),
                )
                .await
            }
            Op::UpdateGlobalLabel => {
                w.api(
                    who,
                    Method::PUT,
                    &format!("/api/v2.0/labels/{}", self.gupdate),
                    json!({"description": format!("by {project} {slug}")}),
                )
                .await
            }
            Op::DeleteGlobalLabel => {
                w.api(
                    who,
                    Method::DELETE,
                    &format!("/api/v2.0/labels/{}", s.gdel[&who]),
                    json!({}),
                )
                .await
            }
            Op::Search => get(format!("/api/v2.0/search?q={project}")).await,
            Op::Statistics => get("/api/v2.0/statistics".to_owned()).await,
            Op::Summary => get(format!("/api/v2.0/projects/{project}/summary")).await,
        };
        let status = r.status.as_u16();
        let ok = r.status.is_success();
        problems.extend(rbac::status_problem(&r));
        let cell = match op {
            Op::GlobalRepos | Op::Search | Op::Statistics if ok => {
                Cell::Sees(self.shows(project, op, &r.json(), &mut problems).await)
            }
            _ => Cell::Status(status),
        };
        // The effect, or its absence.
        let changed: Option<bool> = match op {
            Op::UpdateRepo => {
                let rec = w
                    .app
                    .registry
                    .repository(&repo_name(&format!("{project}/base")))
                    .await
                    .unwrap()
                    .unwrap();
                Some(rec.description == format!("by {slug}"))
            }
            Op::DeleteRepo => Some(
                w.app
                    .registry
                    .repository(&repo_name(&format!("{project}/rdel-{slug}")))
                    .await
                    .unwrap()
                    .is_none(),
            ),
            Op::DeleteArtifact => Some(
                w.manifest_status(&format!("{project}/adel"), &s.adel[&who])
                    .await
                    == StatusCode::NOT_FOUND,
            ),
            Op::CopyArtifact => Some(
                w.manifest_status(&format!("{project}/copy-{slug}"), "v1")
                    .await
                    == StatusCode::OK,
            ),
            Op::CreateTag => Some(
                w.manifest_status(&format!("{project}/base"), &format!("n-{slug}"))
                    .await
                    == StatusCode::OK,
            ),
            Op::DeleteTag => {
                let tdel = format!("{project}/tdel");
                if w.manifest_status(&tdel, &s.tdel).await != StatusCode::OK {
                    problems.push("deleting a tag deleted its artifact".to_owned());
                }
                Some(w.manifest_status(&tdel, &format!("t-{slug}")).await == StatusCode::NOT_FOUND)
            }
            Op::AttachLabel | Op::DetachLabel => {
                let ids = labels
                    .label_ids_of(
                        &repo_name(&format!("{project}/per")),
                        &parse_digest(&s.per[&who]).unwrap(),
                    )
                    .await
                    .unwrap();
                Some(if op == Op::AttachLabel {
                    ids.contains(&s.attach)
                } else {
                    !ids.contains(&s.detach)
                })
            }
            Op::CreateProjectLabel | Op::CreateGlobalLabel => {
                let (scope, name) = if op == Op::CreateProjectLabel {
                    (LabelScope::Project(s.project_id), format!("new-{slug}"))
                } else {
                    (LabelScope::Global, format!("gnew-{project}-{slug}"))
                };
                let all = labels.list(scope, 10_000).await.unwrap();
                Some(all.iter().any(|l| l.name == name))
            }
            Op::UpdateProjectLabel | Op::UpdateGlobalLabel => {
                let (id, text) = if op == Op::UpdateProjectLabel {
                    (s.update, format!("by {slug}"))
                } else {
                    (self.gupdate, format!("by {project} {slug}"))
                };
                Some(labels.get(id).await.unwrap().unwrap().description == text)
            }
            Op::DeleteProjectLabel | Op::DeleteGlobalLabel => {
                let id = if op == Op::DeleteProjectLabel {
                    s.pdel[&who]
                } else {
                    s.gdel[&who]
                };
                Some(labels.get(id).await.unwrap().is_none())
            }
            _ => None,
        };
        problems.extend(rbac::effect_problem(status, ok, changed, "the object was"));
        (cell, problems)
    }

    /// Whether a 200 listing across projects shows `project`; checks
    /// that what it shows is consistent.
    async fn shows(&self, project: &str, op: Op, body: &Value, problems: &mut Vec<String>) -> bool {
        let names = |v: &Value, key: &str| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x[key].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        match op {
            Op::GlobalRepos => {
                let repos = names(body, "name");
                let base = format!("{project}/base");
                repos.contains(&base)
            }
            Op::Search => {
                let in_projects = names(&body["project"], "name").contains(&project.to_owned());
                let base = format!("{project}/base");
                let in_repos = names(&body["repository"], "repository_name").contains(&base);
                if in_projects != in_repos {
                    problems.push(format!(
                        "search shows the project {in_projects} but its repository {in_repos}"
                    ));
                }
                in_projects || in_repos
            }
            Op::Statistics => {
                let public = project == "pub";
                let (count, repos) = if public {
                    ("public_project_count", "public_repo_count")
                } else {
                    ("private_project_count", "private_repo_count")
                };
                // `library` is public too.
                let expected = if public { 2 } else { 1 };
                let n = body[count].as_i64().unwrap_or(-1);
                if n != 0 && n != expected {
                    problems.push(format!("{count} is {n}: {body}"));
                }
                if (n > 0) != (body[repos].as_i64().unwrap_or(0) > 0) {
                    problems.push(format!("{count} and {repos} disagree: {body}"));
                }
                n > 0
            }
            _ => unreachable!(),
        }
    }
}

#[tokio::test]
async fn every_principal_times_every_artifact_endpoint_on_public_and_private_projects() {
    let m = matrix().await;
    let mut wrong = Vec::new();
    let mut tables = String::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut cells = 0;
    for (project, public) in [("pub", true), ("priv", false)] {
        let mut got_table: HashMap<(Who, Op), Cell> = HashMap::new();
        // Principal by principal, as a client would go.
        for who in EVERYONE {
            for op in OPS {
                let (got, problems) = m.attempt(who, project, op).await;
                let want = expected(who, public, op);
                cells += 1;
                *counts.entry(want.to_string()).or_default() += 1;
                if got != want {
                    wrong.push(format!(
                        "{who:?} {} in {project}: Berth {got}, Harbor {want}",
                        op.label()
                    ));
                }
                for p in problems {
                    wrong.push(format!("{who:?} {} in {project}: {p}", op.label()));
                }
                got_table.insert((who, op), got);
            }
        }
        let title = format!("{project} ({})", if public { "public" } else { "private" });
        let table = rbac::table(
            &title,
            20,
            &OPS,
            Op::label,
            |who, op| got_table[&(who, op)],
            |who, op| expected(who, public, op),
        );
        tables.push_str(&table);
        tables.push('\n');
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort();
    println!(
        "Artifact API RBAC matrix ({cells} cells; expected: {counts:?}; \
         \"!\" = Berth differs from Harbor):\n\n{tables}"
    );
    assert!(wrong.is_empty(), "{}\n\n{tables}", wrong.join("\n"));
}
