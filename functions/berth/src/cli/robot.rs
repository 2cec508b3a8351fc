//! `berth robot …`: `/api/v2.0/robots` (Harbor's v2 robot accounts).

use clap::Subcommand;
use serde_json::{Value, json};

use super::table::Table;
use super::{CliError, Ctx, Output, as_id, field, int_field, project};

/// Printed (on stderr) after a robot's secret, in table mode.
const SECRET_NOTE: &str =
    "note: save the secret now, it will not be shown again (`berth robot refresh` makes a new one)";

#[derive(Subcommand, Debug)]
pub(crate) enum RobotCommand {
    /// List robot accounts (all, one project's, or the system-level ones).
    List {
        /// Only this project's robots.
        #[arg(long, conflicts_with = "system")]
        project: Option<String>,
        /// Only system-level robots.
        #[arg(long)]
        system: bool,
    },
    /// Create a robot account and print its secret (once).
    Create {
        /// The robot's name (the server prefixes it: robot$<project>+<name>).
        #[arg(long)]
        name: String,
        /// The project it works on; with --system, repeat it for more
        /// projects (`*`: every project).
        #[arg(long = "project", value_name = "PROJECT")]
        projects: Vec<String>,
        /// A system-level robot (needs system administrator rights).
        #[arg(long)]
        system: bool,
        /// May pull (repository:pull).
        #[arg(long)]
        pull: bool,
        /// May push (repository:push; usually with --pull).
        #[arg(long)]
        push: bool,
        /// Any other permission on the project(s), as RESOURCE:ACTION
        /// (for example repository:delete, artifact:read); repeatable.
        #[arg(long = "access", value_name = "RESOURCE:ACTION", value_parser = parse_access)]
        access: Vec<Access>,
        /// Days until it expires (-1: never).
        #[arg(long, default_value_t = 30, allow_negative_numbers = true,
              value_parser = parse_days)]
        days: i64,
        /// A description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Show one robot account (by id, or by name).
    Show { robot: String },
    /// Delete a robot account.
    Delete { robot: String },
    /// Give a robot account a new secret and print it (once).
    Refresh { robot: String },
    /// Disable a robot account (its secret stops working).
    Disable { robot: String },
    /// Enable a disabled robot account.
    Enable { robot: String },
}

/// One permission: an action on a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    resource: String,
    action: String,
}

impl Access {
    fn new(resource: &str, action: &str) -> Self {
        Self {
            resource: resource.to_owned(),
            action: action.to_owned(),
        }
    }
}

fn parse_access(s: &str) -> Result<Access, String> {
    match s.split_once(':') {
        Some((r, a)) if !r.is_empty() && !a.is_empty() && !a.contains(':') => Ok(Access::new(r, a)),
        _ => Err("expected RESOURCE:ACTION, as in repository:delete".to_owned()),
    }
}

fn parse_days(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(d) if d == -1 || d > 0 => Ok(d),
        _ => Err("days must be a positive number, or -1 for never".to_owned()),
    }
}

/// What `robot create` asks for.
#[derive(Debug)]
pub(crate) struct Spec<'a> {
    pub(crate) name: &'a str,
    pub(crate) projects: &'a [String],
    pub(crate) system: bool,
    pub(crate) pull: bool,
    pub(crate) push: bool,
    pub(crate) access: &'a [Access],
    pub(crate) days: i64,
    pub(crate) description: Option<&'a str>,
}

/// The body of `POST /robots` (Harbor's `RobotCreate`).
pub(crate) fn creation_body(spec: &Spec<'_>) -> Result<Value, CliError> {
    let usage = |m: &str| Err(CliError::Local(m.to_owned()));
    if spec.projects.is_empty() {
        return usage(if spec.system {
            "a system robot needs --project (repeatable; `*` for every project)"
        } else {
            "give the robot's --project (or --system for a system-level robot)"
        });
    }
    if !spec.system && spec.projects.len() > 1 {
        return usage("a project robot works on one project (use --system for several)");
    }
    let mut access: Vec<Access> = Vec::new();
    if spec.pull {
        access.push(Access::new("repository", "pull"));
    }
    if spec.push {
        access.push(Access::new("repository", "push"));
    }
    for a in spec.access {
        if !access.contains(a) {
            access.push(a.clone());
        }
    }
    if access.is_empty() {
        return usage("give the robot something to do: --pull, --push or --access");
    }
    let access: Vec<Value> = access
        .iter()
        .map(|a| json!({"resource": a.resource, "action": a.action}))
        .collect();
    let permissions: Vec<Value> = spec
        .projects
        .iter()
        .map(|p| json!({"kind": "project", "namespace": p, "access": access}))
        .collect();
    Ok(json!({
        "name": spec.name,
        "description": spec.description.unwrap_or_default(),
        "duration": spec.days,
        "level": if spec.system { "system" } else { "project" },
        "disable": false,
        "permissions": permissions,
    }))
}

/// `expires_at` (seconds since the epoch; -1: never) as text.
fn expires(robot: &Value) -> String {
    match int_field(robot, "expires_at") {
        Some(-1) => "never".to_owned(),
        Some(t) => time::OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| t.to_string()),
        None => "-".to_owned(),
    }
}

/// `permissions` as `<namespace>: pull push artifact:delete; …`
/// (repository actions by their action alone).
fn permissions(robot: &Value) -> String {
    let Some(perms) = robot.get("permissions").and_then(Value::as_array) else {
        return "-".to_owned();
    };
    let text: Vec<String> = perms
        .iter()
        .map(|p| {
            let ns = match p.get("kind").and_then(Value::as_str) {
                Some("project") | None => field(p, "namespace"),
                Some(kind) => kind.to_owned(),
            };
            let actions: Vec<String> = p
                .get("access")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|a| match field(a, "resource").as_str() {
                            "repository" => field(a, "action"),
                            r => format!("{r}:{}", field(a, "action")),
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!("{ns}: {}", actions.join(" "))
        })
        .collect();
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.join("; ")
    }
}

const HEADERS: &[&str] = &[
    "ID",
    "NAME",
    "LEVEL",
    "DISABLED",
    "EXPIRES",
    "PERMISSIONS",
    "DESCRIPTION",
];

fn table<'a>(robots: impl IntoIterator<Item = &'a Value>) -> Table {
    let mut t = Table::new(HEADERS);
    for r in robots {
        t.row(vec![
            field(r, "id"),
            field(r, "name"),
            field(r, "level"),
            field(r, "disable"),
            expires(r),
            permissions(r),
            field(r, "description"),
        ]);
    }
    t
}

/// A robot's id: the argument if it is a number, else the robot with that
/// exact name (`robot$p+ci`), else the one robot whose short name it is.
async fn resolve(ctx: &Ctx, robot: &str) -> Result<i64, CliError> {
    if let Some(id) = as_id(robot) {
        return Ok(id);
    }
    let robots = ctx.api.list(&ctx.api.path(&["robots"]), &[]).await?;
    let name = |r: &Value| r.get("name").and_then(Value::as_str).map(str::to_owned);
    if let Some(r) = robots.iter().find(|r| name(r).as_deref() == Some(robot)) {
        return int_field(r, "id").ok_or_else(|| no_id(robot));
    }
    let short: Vec<&Value> = robots
        .iter()
        .filter(|r| name(r).is_some_and(|n| short_name(&n) == robot))
        .collect();
    match short.as_slice() {
        [r] => int_field(r, "id").ok_or_else(|| no_id(robot)),
        [] => Err(CliError::Local(format!(
            "there is no robot named {robot:?}"
        ))),
        _ => Err(CliError::Local(format!(
            "{} robots are named {robot:?}: give the full name or the id",
            short.len()
        ))),
    }
}

fn no_id(robot: &str) -> CliError {
    CliError::Local(format!("the server's answer for robot {robot} has no id"))
}

/// `robot$p+ci` → `ci`; `robot$ci` → `ci`.
fn short_name(full: &str) -> &str {
    let after_dollar = full.rsplit_once('$').map_or(full, |(_, n)| n);
    after_dollar
        .rsplit_once('+')
        .map_or(after_dollar, |(_, n)| n)
}

/// Prints a new secret: a table and the note in table mode, `json` in JSON
/// mode.
fn print_secret(ctx: &Ctx, table: &Table, json: &Value) -> Result<(), CliError> {
    ctx.print(table, json)?;
    if ctx.output == Output::Table {
        eprintln!("{SECRET_NOTE}");
    }
    Ok(())
}

pub(crate) async fn run(ctx: &Ctx, command: &RobotCommand) -> Result<(), CliError> {
    let api = &ctx.api;
    match command {
        RobotCommand::List { project, system } => {
            let q = match (project, system) {
                (Some(p), _) => Some(format!(
                    "Level=project,ProjectID={}",
                    project::project_id(ctx, p).await?
                )),
                (None, true) => Some("Level=system".to_owned()),
                (None, false) => None,
            };
            let query: Vec<(&str, &str)> = q.iter().map(|q| ("q", q.as_str())).collect();
            let robots = api.list(&api.path(&["robots"]), &query).await?;
            ctx.print(&table(&robots), &Value::Array(robots))
        }
        RobotCommand::Create {
            name,
            projects,
            system,
            pull,
            push,
            access,
            days,
            description,
        } => {
            let body = creation_body(&Spec {
                name,
                projects,
                system: *system,
                pull: *pull,
                push: *push,
                access,
                days: *days,
                description: description.as_deref(),
            })?;
            let created = api.create(&api.path(&["robots"]), &body).await?;
            let mut answer = match created.body {
                Value::Object(_) => created.body,
                _ => json!({}),
            };
            if answer.get("id").is_none()
                && let Some(id) = created.id
            {
                answer["id"] = id.into();
            }
            if answer.get("secret").and_then(Value::as_str).is_none() {
                return Err(CliError::Local(format!(
                    "robot {name} was created (id {}), but the server sent no secret; \
                     `berth robot refresh` makes one",
                    created
                        .id
                        .map_or_else(|| "unknown".to_owned(), |id| id.to_string())
                )));
            }
            let mut t = Table::new(&["ID", "NAME", "EXPIRES", "SECRET"]);
            t.row(vec![
                field(&answer, "id"),
                field(&answer, "name"),
                expires(&answer),
                field(&answer, "secret"),
            ]);
            print_secret(ctx, &t, &answer)
        }
        RobotCommand::Show { robot } => {
            let id = resolve(ctx, robot).await?;
            let r = api.get(&api.path(&["robots", &id.to_string()])).await?;
            ctx.print(&table([&r]), &r)
        }
        RobotCommand::Delete { robot } => {
            let id = resolve(ctx, robot).await?;
            api.delete(&api.path(&["robots", &id.to_string()])).await?;
            ctx.done(&format!("deleted robot {robot} (id {id})"))
        }
        RobotCommand::Refresh { robot } => {
            let id = resolve(ctx, robot).await?;
            let answer = api
                .patch(&api.path(&["robots", &id.to_string()]), &json!({}))
                .await?;
            if answer.get("secret").and_then(Value::as_str).is_none() {
                return Err(CliError::Local(
                    "the server's answer has no secret".to_owned(),
                ));
            }
            let mut t = Table::new(&["ID", "SECRET"]);
            t.row(vec![id.to_string(), field(&answer, "secret")]);
            print_secret(ctx, &t, &answer)
        }
        RobotCommand::Disable { robot } | RobotCommand::Enable { robot } => {
            let disable = matches!(command, RobotCommand::Disable { .. });
            let id = resolve(ctx, robot).await?;
            let path = api.path(&["robots", &id.to_string()]);
            // PUT takes the whole robot: send back what GET gave, flag changed.
            let mut r = api.get(&path).await?;
            let Some(obj) = r.as_object_mut() else {
                return Err(CliError::Local(format!(
                    "the server's answer for robot {id} is not an object"
                )));
            };
            obj.remove("secret");
            obj.insert("disable".to_owned(), disable.into());
            api.put(&path, &r).await?;
            ctx.done(&format!(
                "{} robot {robot} (id {id})",
                if disable { "disabled" } else { "enabled" }
            ))
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
        c: RobotCommand,
    }

    fn parse(args: &[&str]) -> Result<RobotCommand, clap::Error> {
        T::try_parse_from(std::iter::once("robot").chain(args.iter().copied())).map(|t| t.c)
    }

    fn body(args: &[&str]) -> Result<Value, CliError> {
        let c = parse(args).map_err(|e| CliError::Local(e.to_string()))?;
        let RobotCommand::Create {
            name,
            projects,
            system,
            pull,
            push,
            access,
            days,
            description,
        } = c
        else {
            panic!("not create")
        };
        creation_body(&Spec {
            name: &name,
            projects: &projects,
            system,
            pull,
            push,
            access: &access,
            days,
            description: description.as_deref(),
        })
    }

    #[test]
    fn a_project_robot_body() {
        let b = body(&[
            "create",
            "--project",
            "p",
            "--name",
            "ci",
            "--pull",
            "--push",
            "--days",
            "7",
        ])
        .expect("valid");
        assert_eq!(
            b,
            json!({
                "name": "ci", "description": "", "duration": 7, "level": "project", "disable": false,
                "permissions": [{"kind": "project", "namespace": "p", "access": [
                    {"resource": "repository", "action": "pull"},
                    {"resource": "repository", "action": "push"},
                ]}],
            })
        );
    }

    #[test]
    fn a_system_robot_body_covers_each_project() {
        let b = body(&[
            "create",
            "--system",
            "--name",
            "sync",
            "--project",
            "a",
            "--project",
            "*",
            "--access",
            "artifact:delete",
            "--access",
            "repository:pull",
            "--pull",
            "--days",
            "-1",
            "--description",
            "nightly",
        ])
        .expect("valid");
        assert_eq!(b["level"], "system");
        assert_eq!(b["duration"], -1);
        assert_eq!(b["description"], "nightly");
        let perms = b["permissions"].as_array().expect("array");
        assert_eq!(perms.len(), 2);
        assert_eq!(perms[1]["namespace"], "*");
        assert_eq!(
            perms[0]["access"],
            json!([{"resource": "repository", "action": "pull"},
                   {"resource": "artifact", "action": "delete"}])
        );
    }

    #[test]
    fn days_default_to_30() {
        let b = body(&["create", "--project", "p", "--name", "ci", "--pull"]).expect("valid");
        assert_eq!(b["duration"], 30);
    }

    #[test]
    fn bad_robot_requests_are_refused_before_sending() {
        for args in [
            &["create", "--name", "ci", "--pull"][..],
            &["create", "--name", "ci", "--project", "p"],
            &[
                "create",
                "--name",
                "ci",
                "--project",
                "p",
                "--project",
                "q",
                "--pull",
            ],
            &["create", "--name", "ci", "--system", "--pull"],
            &[
                "create",
                "--name",
                "ci",
                "--project",
                "p",
                "--pull",
                "--days",
                "0",
            ],
            &[
                "create",
                "--name",
                "ci",
                "--project",
                "p",
                "--pull",
                "--days",
                "-2",
            ],
            &[
                "create",
                "--name",
                "ci",
                "--project",
                "p",
                "--access",
                "pull",
            ],
            &["create", "--project", "p", "--pull"],
        ] {
            assert!(body(args).is_err(), "{args:?} should be refused");
        }
        assert!(parse(&["list", "--project", "p", "--system"]).is_err());
    }

    #[test]
    fn robots_render() {
        let r = json!({
            "id": 4, "name": "robot$p+ci", "level": "project", "disable": false, "expires_at": -1,
            "description": "",
            "permissions": [{"kind": "project", "namespace": "p", "access": [
                {"resource": "repository", "action": "pull"},
                {"resource": "artifact", "action": "delete"}]}],
        });
        assert_eq!(
            table([&r]).render(),
            "ID   NAME         LEVEL     DISABLED   EXPIRES   PERMISSIONS               DESCRIPTION\n\
             4    robot$p+ci   project   false      never     p: pull artifact:delete   -\n"
        );
        assert_eq!(expires(&json!({"expires_at": 0})), "1970-01-01T00:00:00Z");
        assert_eq!(expires(&json!({})), "-");
        assert_eq!(permissions(&json!({"permissions": []})), "-");
    }

    #[test]
    fn short_names_drop_the_prefixes() {
        assert_eq!(short_name("robot$p+ci"), "ci");
        assert_eq!(short_name("robot$sync"), "sync");
        assert_eq!(short_name("plain"), "plain");
    }
}
