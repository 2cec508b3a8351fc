//! Harbor's permission model: five project roles, each a set of
//! `(resource, action)` policies, in one table ([`ROLE_POLICIES`]) that later
//! features extend with their rows.
//!
//! The table follows Harbor's `rolePoliciesMap` (src/common/rbac/project)
//! for the resources Berth has or will have; resources Berth has no use for
//! (Helm chart museum, preheat, scanners' registration) are left out.
//! Robot accounts carry explicit `(resource, action)` lists instead of a
//! role, checked with [`Access::allows`].

use serde::{Deserialize, Serialize};

/// Harbor's project roles, with Harbor's numeric ids (the API's `role_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    ProjectAdmin,
    Maintainer,
    Developer,
    Guest,
    LimitedGuest,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::ProjectAdmin,
        Role::Maintainer,
        Role::Developer,
        Role::Guest,
        Role::LimitedGuest,
    ];

    /// Harbor's `role_id`.
    pub fn id(self) -> i64 {
        match self {
            Role::ProjectAdmin => 1,
            Role::Developer => 2,
            Role::Guest => 3,
            Role::Maintainer => 4,
            Role::LimitedGuest => 5,
        }
    }

    pub fn from_id(id: i64) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.id() == id)
    }

    /// Harbor's `role_name`.
    pub fn name(self) -> &'static str {
        match self {
            Role::ProjectAdmin => "projectAdmin",
            Role::Maintainer => "maintainer",
            Role::Developer => "developer",
            Role::Guest => "guest",
            Role::LimitedGuest => "limitedGuest",
        }
    }

    /// Whether the role grants `action` on `resource`.
    pub fn allows(self, resource: Resource, action: Action) -> bool {
        ROLE_POLICIES
            .iter()
            .any(|(role, policies)| *role == self && policies.contains(&(resource, action)))
    }
}

/// What a policy is about (Harbor's `rbac.Resource*`, spelled as in robot
/// permissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resource {
    /// The project itself (`""` in Harbor).
    #[serde(rename = "project")]
    SelfProject,
    Member,
    Metadata,
    Log,
    Label,
    Quota,
    Repository,
    TagRetention,
    ImmutableTag,
    Configuration,
    Robot,
    NotificationPolicy,
    Scan,
    Scanner,
    Artifact,
    ArtifactAddition,
    Tag,
    Accessory,
    ArtifactLabel,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::SelfProject => "project",
            Resource::Member => "member",
            Resource::Metadata => "metadata",
            Resource::Log => "log",
            Resource::Label => "label",
            Resource::Quota => "quota",
            Resource::Repository => "repository",
            Resource::TagRetention => "tag-retention",
            Resource::ImmutableTag => "immutable-tag",
            Resource::Configuration => "configuration",
            Resource::Robot => "robot",
            Resource::NotificationPolicy => "notification-policy",
            Resource::Scan => "scan",
            Resource::Scanner => "scanner",
            Resource::Artifact => "artifact",
            Resource::ArtifactAddition => "artifact-addition",
            Resource::Tag => "tag",
            Resource::Accessory => "accessory",
            Resource::ArtifactLabel => "artifact-label",
        }
    }

    pub fn parse(s: &str) -> Option<Resource> {
        ALL_RESOURCES.into_iter().find(|r| r.as_str() == s)
    }
}

const ALL_RESOURCES: [Resource; 19] = [
    Resource::SelfProject,
    Resource::Member,
    Resource::Metadata,
    Resource::Log,
    Resource::Label,
    Resource::Quota,
    Resource::Repository,
    Resource::TagRetention,
    Resource::ImmutableTag,
    Resource::Configuration,
    Resource::Robot,
    Resource::NotificationPolicy,
    Resource::Scan,
    Resource::Scanner,
    Resource::Artifact,
    Resource::ArtifactAddition,
    Resource::Tag,
    Resource::Accessory,
    Resource::ArtifactLabel,
];

/// What is done to a resource (Harbor's `rbac.Action*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Create,
    Read,
    Update,
    Delete,
    List,
    Operate,
    Stop,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::List => "list",
            Action::Operate => "operate",
            Action::Stop => "stop",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        [
            Action::Pull,
            Action::Push,
            Action::Create,
            Action::Read,
            Action::Update,
            Action::Delete,
            Action::List,
            Action::Operate,
            Action::Stop,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

use Action as A;
use Resource as R;

/// Everything every role with read access to a project may do.
const READ_COMMON: &[(Resource, Action)] = &[
    (R::SelfProject, A::Read),
    (R::Quota, A::Read),
    (R::Configuration, A::Read),
    (R::Scan, A::Read),
    (R::Scanner, A::Read),
    (R::Tag, A::List),
    (R::Accessory, A::List),
    (R::Artifact, A::Read),
    (R::Artifact, A::List),
    (R::ArtifactAddition, A::Read),
    (R::Repository, A::List),
    (R::Repository, A::Pull),
];

const PROJECT_ADMIN: &[(Resource, Action)] = &[
    (R::SelfProject, A::Update),
    (R::SelfProject, A::Delete),
    (R::Member, A::Create),
    (R::Member, A::Read),
    (R::Member, A::Update),
    (R::Member, A::Delete),
    (R::Member, A::List),
    (R::Metadata, A::Create),
    (R::Metadata, A::Read),
    (R::Metadata, A::Update),
    (R::Metadata, A::Delete),
    (R::Log, A::List),
    (R::Label, A::Create),
    (R::Label, A::Read),
    (R::Label, A::Update),
    (R::Label, A::Delete),
    (R::Label, A::List),
    (R::Repository, A::Create),
    (R::Repository, A::Read),
    (R::Repository, A::Update),
    (R::Repository, A::Delete),
    (R::Repository, A::Push),
    (R::TagRetention, A::Create),
    (R::TagRetention, A::Read),
    (R::TagRetention, A::Update),
    (R::TagRetention, A::Delete),
    (R::TagRetention, A::List),
    (R::TagRetention, A::Operate),
    (R::ImmutableTag, A::Create),
    (R::ImmutableTag, A::Update),
    (R::ImmutableTag, A::Delete),
    (R::ImmutableTag, A::List),
    (R::Configuration, A::Update),
    (R::Robot, A::Create),
    (R::Robot, A::Read),
    (R::Robot, A::Update),
    (R::Robot, A::Delete),
    (R::Robot, A::List),
    (R::NotificationPolicy, A::Create),
    (R::NotificationPolicy, A::Update),
    (R::NotificationPolicy, A::Delete),
    (R::NotificationPolicy, A::List),
    (R::NotificationPolicy, A::Read),
    (R::Scan, A::Create),
    (R::Scan, A::Stop),
    (R::Scanner, A::Create),
    (R::Artifact, A::Create),
    (R::Artifact, A::Delete),
    (R::Tag, A::Create),
    (R::Tag, A::Delete),
    (R::ArtifactLabel, A::Create),
    (R::ArtifactLabel, A::Delete),
];

const MAINTAINER: &[(Resource, Action)] = &[
    (R::Member, A::Read),
    (R::Member, A::List),
    (R::Metadata, A::Create),
    (R::Metadata, A::Read),
    (R::Metadata, A::Update),
    (R::Metadata, A::Delete),
    (R::Log, A::List),
    (R::Label, A::Create),
    (R::Label, A::Read),
    (R::Label, A::Update),
    (R::Label, A::Delete),
    (R::Label, A::List),
    (R::Repository, A::Create),
    (R::Repository, A::Read),
    (R::Repository, A::Update),
    (R::Repository, A::Delete),
    (R::Repository, A::Push),
    (R::TagRetention, A::Create),
    (R::TagRetention, A::Read),
    (R::TagRetention, A::Update),
    (R::TagRetention, A::Delete),
    (R::TagRetention, A::List),
    (R::TagRetention, A::Operate),
    (R::ImmutableTag, A::Create),
    (R::ImmutableTag, A::Update),
    (R::ImmutableTag, A::Delete),
    (R::ImmutableTag, A::List),
    (R::Robot, A::Read),
    (R::Robot, A::List),
    (R::NotificationPolicy, A::List),
    (R::Scan, A::Create),
    (R::Scan, A::Stop),
    (R::Artifact, A::Create),
    (R::Artifact, A::Delete),
    (R::Tag, A::Create),
    (R::Tag, A::Delete),
    (R::ArtifactLabel, A::Create),
    (R::ArtifactLabel, A::Delete),
];

const DEVELOPER: &[(Resource, Action)] = &[
    (R::Member, A::Read),
    (R::Member, A::List),
    (R::Log, A::List),
    (R::Label, A::Read),
    (R::Label, A::List),
    (R::Repository, A::Create),
    (R::Repository, A::Read),
    (R::Repository, A::Update),
    (R::Repository, A::Push),
    (R::TagRetention, A::Create),
    (R::TagRetention, A::Read),
    (R::TagRetention, A::Update),
    (R::TagRetention, A::Delete),
    (R::TagRetention, A::List),
    (R::TagRetention, A::Operate),
    (R::Robot, A::Read),
    (R::Robot, A::List),
    (R::Artifact, A::Create),
    (R::Tag, A::Create),
    (R::ArtifactLabel, A::Create),
    (R::ArtifactLabel, A::Delete),
];

const GUEST: &[(Resource, Action)] = &[
    (R::Member, A::Read),
    (R::Member, A::List),
    (R::Log, A::List),
    (R::Label, A::Read),
    (R::Label, A::List),
    (R::Repository, A::Read),
    (R::Robot, A::Read),
    (R::Robot, A::List),
];

/// The permission matrix: each role's policies beyond [`READ_COMMON`]
/// (which every role has). One table; features add rows here.
pub const ROLE_POLICIES: &[(Role, &[(Resource, Action)])] = &[
    (Role::ProjectAdmin, READ_COMMON),
    (Role::ProjectAdmin, PROJECT_ADMIN),
    (Role::Maintainer, READ_COMMON),
    (Role::Maintainer, MAINTAINER),
    (Role::Developer, READ_COMMON),
    (Role::Developer, DEVELOPER),
    (Role::Guest, READ_COMMON),
    (Role::Guest, GUEST),
    (Role::LimitedGuest, READ_COMMON),
];

/// What an anonymous caller (or a signed-in non-member) may do in a
/// public project: pull and read, as Harbor's public-project visitor.
pub fn public_visitor_allows(resource: Resource, action: Action) -> bool {
    matches!(
        (resource, action),
        (R::Repository, A::Pull)
            | (R::Repository, A::List)
            | (R::Repository, A::Read)
            | (R::Artifact, A::Read)
            | (R::Artifact, A::List)
            | (R::ArtifactAddition, A::Read)
            | (R::Tag, A::List)
            | (R::Accessory, A::List)
            | (R::SelfProject, A::Read)
            | (R::Label, A::List)
            | (R::Label, A::Read)
            | (R::Scan, A::Read)
    )
}

/// One robot permission entry (`{resource, action, effect}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub resource: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

impl Access {
    /// Whether this entry allows `action` on `resource` (`deny` effects
    /// never allow; `*` matches everything, as Harbor's robot v2).
    pub fn allows(&self, resource: Resource, action: Action) -> bool {
        if self.effect.as_deref() == Some("deny") {
            return false;
        }
        (self.resource == "*" || self.resource == resource.as_str())
            && (self.action == "*" || self.action == action.as_str())
    }
}

/// A robot's permissions on one namespace (Harbor's `RobotPermission`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotPermission {
    /// `project` or `system`.
    pub kind: String,
    /// A project name, or `*` (every project; system robots only).
    pub namespace: String,
    #[serde(default)]
    pub access: Vec<Access>,
}

impl RobotPermission {
    /// Whether the entry covers `project` and allows the action there.
    pub fn allows(&self, project: &str, resource: Resource, action: Action) -> bool {
        self.kind == "project"
            && (self.namespace == "*" || self.namespace == project)
            && self.access.iter().any(|a| a.allows(resource, action))
    }
}

/// The registry actions of the Docker token protocol (`repository:<name>:<actions>`)
/// and what each needs in Harbor's terms.
pub fn registry_action_needs(action: &str) -> Option<(Resource, Action)> {
    match action {
        "pull" => Some((R::Repository, A::Pull)),
        "push" => Some((R::Repository, A::Push)),
        // Deleting manifests, tags and blobs through /v2/: Harbor maps the
        // `delete` scope to deleting artifacts.
        "delete" | "*" => Some((R::Artifact, A::Delete)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harbor_role_ids_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::from_id(r.id()), Some(r));
        }
        assert_eq!(Role::from_id(0), None);
        assert_eq!(Role::Maintainer.id(), 4);
    }

    #[test]
    fn registry_actions_follow_harbor() {
        let push = registry_action_needs("push").expect("push");
        let delete = registry_action_needs("delete").expect("delete");
        let pull = registry_action_needs("pull").expect("pull");
        let can = |r: Role, (res, act): (Resource, Action)| r.allows(res, act);
        assert!(Role::ALL.iter().all(|r| can(*r, pull)));
        assert!(can(Role::Developer, push) && !can(Role::Guest, push));
        assert!(!can(Role::LimitedGuest, push));
        assert!(can(Role::Maintainer, delete) && !can(Role::Developer, delete));
        assert!(can(Role::ProjectAdmin, (R::Member, A::Create)));
        assert!(!can(Role::Maintainer, (R::Member, A::Create)));
        assert!(!can(Role::LimitedGuest, (R::Member, A::List)));
        assert!(can(Role::Guest, (R::Member, A::List)));
        assert!(can(Role::ProjectAdmin, (R::Robot, A::Create)));
        assert!(!can(Role::Maintainer, (R::Robot, A::Create)));
    }

    #[test]
    fn names_parse_back() {
        for r in ALL_RESOURCES {
            assert_eq!(Resource::parse(r.as_str()), Some(r));
        }
        assert_eq!(Action::parse("push"), Some(Action::Push));
        assert_eq!(Action::parse("fly"), None);
    }

    #[test]
    fn robot_access_honours_namespace_and_deny() {
        let p = RobotPermission {
            kind: "project".into(),
            namespace: "team".into(),
            access: vec![
                Access {
                    resource: "repository".into(),
                    action: "pull".into(),
                    effect: None,
                },
                Access {
                    resource: "repository".into(),
                    action: "push".into(),
                    effect: Some("deny".into()),
                },
            ],
        };
        assert!(p.allows("team", R::Repository, A::Pull));
        assert!(!p.allows("team", R::Repository, A::Push));
        assert!(!p.allows("other", R::Repository, A::Pull));
    }
}
