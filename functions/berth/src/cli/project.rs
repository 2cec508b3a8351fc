//! `berth project …`: `/api/v2.0/projects` and their members. Projects are
//! always named (the client sends `X-Is-Resource-Name: true`).

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::table::Table;
use super::{CliError, Ctx, Output, as_id, field, int_field};

#[derive(Subcommand, Debug)]
pub(crate) enum ProjectCommand {
    /// List projects.
    List {
        /// Only projects whose name contains this.
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a project.
    Create {
        name: String,
        /// Anyone may pull from it, without logging in.
        #[arg(long)]
        public: bool,
        /// Storage quota in bytes (-1: unlimited; default: the server's).
        #[arg(long, allow_negative_numbers = true)]
        storage_limit: Option<i64>,
    },
    /// Show one project.
    Show { name: String },
    /// Delete a project (it must hold no repositories).
    Delete { name: String },
    /// List a project's members.
    Members { project: String },
    /// Give a user a role in a project.
    AddMember {
        project: String,
        /// The user's name.
        user: String,
        /// The role.
        #[arg(long, value_enum, default_value_t = Role::Developer)]
        role: Role,
    },
    /// Take a user out of a project (by user name, or by member id).
    RemoveMember { project: String, user: String },
}

/// Harbor's project roles and their ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
    /// Project administrator (Harbor's `projectAdmin`).
    #[value(alias = "project-admin", alias = "projectAdmin")]
    Admin,
    Maintainer,
    Developer,
    Guest,
    #[value(alias = "limitedGuest")]
    LimitedGuest,
}

impl Role {
    pub(crate) fn id(self) -> i64 {
        match self {
            Self::Admin => 1,
            Self::Developer => 2,
            Self::Guest => 3,
            Self::Maintainer => 4,
            Self::LimitedGuest => 5,
        }
    }

    pub(crate) fn from_id(id: i64) -> Option<Self> {
        [
            Self::Admin,
            Self::Developer,
            Self::Guest,
            Self::Maintainer,
            Self::LimitedGuest,
        ]
        .into_iter()
        .find(|r| r.id() == id)
    }

    /// Harbor's name for the role.
    pub(crate) fn harbor_name(self) -> &'static str {
        match self {
            Self::Admin => "projectAdmin",
            Self::Developer => "developer",
            Self::Guest => "guest",
            Self::Maintainer => "maintainer",
            Self::LimitedGuest => "limitedGuest",
        }
    }
}

const HEADERS: &[&str] = &["ID", "NAME", "PUBLIC", "OWNER", "REPOS", "CREATED"];

fn row(p: &Value) -> Vec<String> {
    let public = p
        .get("metadata")
        .map_or_else(|| "-".to_owned(), |m| field(m, "public"));
    vec![
        field(p, "project_id"),
        field(p, "name"),
        public,
        field(p, "owner_name"),
        field(p, "repo_count"),
        field(p, "creation_time"),
    ]
}

fn table<'a>(projects: impl IntoIterator<Item = &'a Value>) -> Table {
    let mut t = Table::new(HEADERS);
    for p in projects {
        t.row(row(p));
    }
    t
}

fn members_table(members: &[Value]) -> Table {
    let mut t = Table::new(&["ID", "NAME", "TYPE", "ROLE"]);
    for m in members {
        let kind = match m.get("entity_type").and_then(Value::as_str) {
            Some("u") => "user".to_owned(),
            Some("g") => "group".to_owned(),
            _ => field(m, "entity_type"),
        };
        let role = match m.get("role_name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => int_field(m, "role_id")
                .and_then(Role::from_id)
                .map_or_else(|| field(m, "role_id"), |r| r.harbor_name().to_owned()),
        };
        t.row(vec![field(m, "id"), field(m, "entity_name"), kind, role]);
    }
    t
}

/// The body of `POST /projects`.
pub(crate) fn creation_body(name: &str, public: bool, storage_limit: Option<i64>) -> Value {
    let mut body = json!({
        "project_name": name,
        // Harbor's project metadata values are strings.
        "metadata": {"public": public.to_string()},
    });
    if let Some(limit) = storage_limit {
        body["storage_limit"] = limit.into();
    }
    body
}

/// The body of `POST /projects/{name}/members`.
pub(crate) fn member_body(user: &str, role: Role) -> Value {
    json!({"role_id": role.id(), "member_user": {"username": user}})
}

/// A project's id (for queries that want it), from its name.
pub(crate) async fn project_id(ctx: &Ctx, name: &str) -> Result<i64, CliError> {
    let p = ctx.api.get(&ctx.api.path(&["projects", name])).await?;
    int_field(&p, "project_id").ok_or_else(|| {
        CliError::Local(format!(
            "the server's answer for project {name} has no project_id"
        ))
    })
}

pub(crate) async fn run(ctx: &Ctx, command: &ProjectCommand) -> Result<(), CliError> {
    let api = &ctx.api;
    match command {
        ProjectCommand::List { name } => {
            let query: Vec<(&str, &str)> = name.iter().map(|n| ("name", n.as_str())).collect();
            let projects = api.list(&api.path(&["projects"]), &query).await?;
            ctx.print(&table(&projects), &Value::Array(projects))
        }
        ProjectCommand::Create {
            name,
            public,
            storage_limit,
        } => {
            let body = creation_body(name, *public, *storage_limit);
            let created = api.create(&api.path(&["projects"]), &body).await?;
            let id = created.id;
            match ctx.output {
                Output::Table => ctx.done(&match id {
                    Some(id) => format!("created project {name} (id {id})"),
                    None => format!("created project {name}"),
                }),
                Output::Json => ctx.print_json(&json!({"project_id": id, "name": name})),
            }
        }
        ProjectCommand::Show { name } => {
            let p = api.get(&api.path(&["projects", name])).await?;
            ctx.print(&table([&p]), &p)
        }
        ProjectCommand::Delete { name } => {
            api.delete(&api.path(&["projects", name])).await?;
            ctx.done(&format!("deleted project {name}"))
        }
        ProjectCommand::Members { project } => {
            let members = api
                .list(&api.path(&["projects", project, "members"]), &[])
                .await?;
            ctx.print(&members_table(&members), &Value::Array(members))
        }
        ProjectCommand::AddMember {
            project,
            user,
            role,
        } => {
            let created = api
                .create(
                    &api.path(&["projects", project, "members"]),
                    &member_body(user, *role),
                )
                .await?;
            match ctx.output {
                Output::Table => ctx.done(&match created.id {
                    Some(id) => format!(
                        "{user} is {} of {project} (member id {id})",
                        role.harbor_name()
                    ),
                    None => format!("{user} is {} of {project}", role.harbor_name()),
                }),
                Output::Json => ctx.print_json(&json!({
                    "id": created.id,
                    "entity_name": user,
                    "role_id": role.id(),
                })),
            }
        }
        ProjectCommand::RemoveMember { project, user } => {
            let members = api
                .list(&api.path(&["projects", project, "members"]), &[])
                .await?;
            let mid = members
                .iter()
                .find(|m| {
                    m.get("entity_name").and_then(Value::as_str) == Some(user.as_str())
                        && m.get("entity_type").and_then(Value::as_str) != Some("g")
                })
                .and_then(|m| int_field(m, "id"))
                .or_else(|| {
                    as_id(user).filter(|id| members.iter().any(|m| int_field(m, "id") == Some(*id)))
                })
                .ok_or_else(|| {
                    CliError::Local(format!("{user} is not a member of project {project}"))
                })?;
            api.delete(&api.path(&["projects", project, "members", &mid.to_string()]))
                .await?;
            ctx.done(&format!("removed {user} from {project}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        c: ProjectCommand,
    }

    fn parse(args: &[&str]) -> Result<ProjectCommand, clap::Error> {
        T::try_parse_from(std::iter::once("project").chain(args.iter().copied())).map(|t| t.c)
    }

    #[test]
    fn roles_parse_by_cli_and_harbor_names() {
        for (arg, id) in [
            ("admin", 1),
            ("project-admin", 1),
            ("projectAdmin", 1),
            ("developer", 2),
            ("guest", 3),
            ("maintainer", 4),
            ("limited-guest", 5),
            ("limitedGuest", 5),
        ] {
            let c = parse(&["add-member", "p", "alice", "--role", arg]).expect("parses");
            let ProjectCommand::AddMember { role, .. } = c else {
                panic!("not add-member")
            };
            assert_eq!(role.id(), id, "{arg}");
            assert_eq!(Role::from_id(id), Some(role));
        }
        assert!(parse(&["add-member", "p", "alice", "--role", "owner"]).is_err());
        let ProjectCommand::AddMember { role, .. } =
            parse(&["add-member", "p", "alice"]).expect("parses")
        else {
            panic!("not add-member")
        };
        assert_eq!(role, Role::Developer);
    }

    #[test]
    fn create_parses_a_negative_storage_limit() {
        let c = parse(&["create", "p", "--public", "--storage-limit", "-1"]).expect("parses");
        assert!(matches!(
            c,
            ProjectCommand::Create {
                public: true,
                storage_limit: Some(-1),
                ..
            }
        ));
    }

    #[test]
    fn bodies_follow_the_harbor_models() {
        assert_eq!(
            creation_body("p", false, None),
            json!({"project_name": "p", "metadata": {"public": "false"}})
        );
        assert_eq!(
            creation_body("p", true, Some(1024)),
            json!({"project_name": "p", "metadata": {"public": "true"}, "storage_limit": 1024})
        );
        assert_eq!(
            member_body("alice", Role::Maintainer),
            json!({"role_id": 4, "member_user": {"username": "alice"}})
        );
    }

    #[test]
    fn projects_and_members_render() {
        let p = json!({"project_id": 2, "name": "p", "metadata": {"public": "true"},
                       "owner_name": "admin", "repo_count": 0, "creation_time": "t"});
        assert_eq!(
            table([&p]).render(),
            "ID   NAME   PUBLIC   OWNER   REPOS   CREATED\n\
             2    p      true     admin   0       t\n"
        );
        let members = [
            json!({"id": 1, "entity_name": "admin", "entity_type": "u", "role_name": "projectAdmin", "role_id": 1}),
            json!({"id": 5, "entity_name": "alice", "entity_type": "u", "role_id": 5}),
        ];
        assert_eq!(
            members_table(&members).render(),
            "ID   NAME    TYPE   ROLE\n\
             1    admin   user   projectAdmin\n\
             5    alice   user   limitedGuest\n"
        );
    }
}
