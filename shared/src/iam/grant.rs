//! What a principal may do: the token service's `access` = requested ∩
//! allowed (never an error for asking too much: a smaller grant, as the
//! Docker token specification says), and the management API's checks.

use std::collections::HashMap;

use super::directory::{Directory, Principal, Project, Result};
use super::rbac::{self, Action, Resource, Role};
use super::token::{ResourceActions, Scope};

/// The project of a repository: its first path segment (`None` for a
/// one-segment name, which belongs to no project).
pub fn project_of(repository: &str) -> Option<&str> {
    repository.split_once('/').map(|(p, _)| p)
}

/// A principal's standing in one project.
#[derive(Debug, Clone)]
pub struct ProjectAccess {
    pub project: Option<Project>,
    pub role: Option<Role>,
}

impl Directory {
    /// The principal's role in a project (users: membership; robots and
    /// anonymous callers have none).
    pub async fn project_access(&self, who: &Principal, project: &str) -> Result<ProjectAccess> {
        let p = self.project(project).await?;
        let role = match (who, &p) {
            (Principal::User(u), Some(_)) => self.role(project, &u.username).await?,
            _ => None,
        };
        Ok(ProjectAccess { project: p, role })
    }
}

/// Whether `who` may do `action` on `resource` in a project, given its
/// standing there.
pub fn allows(who: &Principal, pa: &ProjectAccess, resource: Resource, action: Action) -> bool {
    let Some(project) = &pa.project else {
        return false;
    };
    if who.is_admin() {
        return true;
    }
    let by_role = pa.role.is_some_and(|r| r.allows(resource, action));
    let by_public = project.public && rbac::public_visitor_allows(resource, action);
    match who {
        Principal::Robot(r) => {
            by_public
                || r.permissions
                    .iter()
                    .any(|p| p.allows(&project.name, resource, action))
        }
        Principal::User(_) => by_role || by_public,
        Principal::Anonymous => by_public,
    }
}

/// What the token service grants: the access, and the projects named in
/// the request that do not exist (told to signed-in callers only, so the
/// registry can say so plainly instead of a bare denial).
#[derive(Debug, Default)]
pub struct Grant {
    pub access: Vec<ResourceActions>,
    pub missing_projects: Vec<String>,
}

/// Grants what may be granted of the requested scopes.
pub async fn grant(dir: &Directory, who: &Principal, scopes: &[Scope]) -> Result<Grant> {
    let mut missing_projects = Vec::new();
    let mut projects: HashMap<String, ProjectAccess> = HashMap::new();
    let mut out: Vec<ResourceActions> = Vec::new();
    for scope in scopes {
        let granted: Vec<String> = match scope.kind.as_str() {
            "registry" if scope.name == "catalog" => {
                // The catalog is for system admins only: it names every
                // repository, and listing per caller would mean reading
                // every project's membership on each call.
                if who.is_admin() {
                    scope
                        .actions
                        .iter()
                        .filter(|a| *a == "*")
                        .cloned()
                        .collect()
                } else {
                    Vec::new()
                }
            }
            "repository" => {
                let Some(project) = project_of(&scope.name) else {
                    continue;
                };
                if !projects.contains_key(project) {
                    let pa = dir.project_access(who, project).await?;
                    if pa.project.is_none() && !matches!(who, Principal::Anonymous) {
                        missing_projects.push(project.to_owned());
                    }
                    projects.insert(project.to_owned(), pa);
                }
                let pa = &projects[project];
                scope
                    .actions
                    .iter()
                    .filter(|a| {
                        if a.as_str() == "*" {
                            ["pull", "push", "delete"].iter().all(|x| {
                                rbac::registry_action_needs(x)
                                    .is_some_and(|(r, act)| allows(who, pa, r, act))
                            })
                        } else {
                            rbac::registry_action_needs(a)
                                .is_some_and(|(r, act)| allows(who, pa, r, act))
                        }
                    })
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        };
        if granted.is_empty() {
            continue;
        }
        // Merge repeated scopes for one resource.
        if let Some(e) = out
            .iter_mut()
            .find(|e| e.kind == scope.kind && e.name == scope.name)
        {
            for a in granted {
                if !e.actions.contains(&a) {
                    e.actions.push(a);
                }
            }
        } else {
            out.push(ResourceActions {
                kind: scope.kind.clone(),
                name: scope.name.clone(),
                actions: granted,
            });
        }
    }
    Ok(Grant {
        access: out,
        missing_projects,
    })
}
