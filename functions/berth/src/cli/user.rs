//! `berth user …`: `/api/v2.0/users`.

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::table::Table;
use super::{CliError, Ctx, Output, as_id, field, prompt};

#[derive(Subcommand, Debug)]
pub(crate) enum UserCommand {
    /// List users (like Harbor, the built-in admin is not listed).
    List,
    /// Create a user. The password comes from BERTH_NEW_PASSWORD, or is
    /// typed twice at a terminal, or is the first line of stdin.
    Create {
        /// The new user's name. (Not `username`: that is the global
        /// --username, which clap would merge with it.)
        #[arg(value_name = "USERNAME")]
        name: String,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Full name (default: the username).
        #[arg(long)]
        realname: Option<String>,
        /// Free-text comment.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Show one user (by name, or by id).
    Show { user: String },
    /// Delete a user (by name, or by id).
    Delete { user: String },
    /// Change a user's password (new password as for `create`; changing
    /// your own sends BERTH_PASSWORD as the old one).
    Passwd { user: String },
    /// Make a user a system administrator (or, with --revoke, not).
    SetAdmin {
        user: String,
        /// Take the administrator flag away instead.
        #[arg(long)]
        revoke: bool,
    },
}

const HEADERS: &[&str] = &["ID", "USERNAME", "ADMIN", "EMAIL", "REALNAME", "CREATED"];

fn row(u: &Value) -> Vec<String> {
    vec![
        field(u, "user_id"),
        field(u, "username"),
        field(u, "sysadmin_flag"),
        field(u, "email"),
        field(u, "realname"),
        field(u, "creation_time"),
    ]
}

fn table<'a>(users: impl IntoIterator<Item = &'a Value>) -> Table {
    let mut t = Table::new(HEADERS);
    for u in users {
        t.row(row(u));
    }
    t
}

/// The body of `POST /users`.
pub(crate) fn creation_body(
    username: &str,
    password: &str,
    email: Option<&str>,
    realname: Option<&str>,
    comment: Option<&str>,
) -> Value {
    let mut body = Map::new();
    body.insert("username".into(), username.into());
    body.insert("password".into(), password.into());
    body.insert("realname".into(), realname.unwrap_or(username).into());
    if let Some(e) = email {
        body.insert("email".into(), e.into());
    }
    if let Some(c) = comment {
        body.insert("comment".into(), c.into());
    }
    Value::Object(body)
}

/// A user's id: the user of that exact name (`GET /users/search`), else
/// the argument itself if it is a number.
pub(crate) async fn resolve(ctx: &Ctx, user: &str) -> Result<i64, CliError> {
    let found = ctx
        .api
        .list(&ctx.api.path(&["users", "search"]), &[("username", user)])
        .await?;
    if let Some(id) = found
        .iter()
        .find(|u| u.get("username").and_then(Value::as_str) == Some(user))
        .and_then(|u| u.get("user_id").and_then(Value::as_i64))
    {
        return Ok(id);
    }
    as_id(user).ok_or_else(|| CliError::Local(format!("there is no user named {user:?}")))
}

pub(crate) async fn run(ctx: &Ctx, command: &UserCommand) -> Result<(), CliError> {
    let api = &ctx.api;
    match command {
        UserCommand::List => {
            let users = api.list(&api.path(&["users"]), &[]).await?;
            ctx.print(&table(&users), &Value::Array(users))
        }
        UserCommand::Create {
            name: username,
            email,
            realname,
            comment,
        } => {
            let password = prompt::new_password(username)?;
            let body = creation_body(
                username,
                &password,
                email.as_deref(),
                realname.as_deref(),
                comment.as_deref(),
            );
            let created = api.create(&api.path(&["users"]), &body).await?;
            let id = created.id.ok_or_else(|| {
                CliError::Local(format!(
                    "user {username} was created, but the answer has no id (Location: {})",
                    created.location.as_deref().unwrap_or("none")
                ))
            })?;
            match ctx.output {
                Output::Table => ctx.done(&format!("created user {username} (id {id})")),
                Output::Json => ctx.print_json(&json!({"user_id": id, "username": username})),
            }
        }
        UserCommand::Show { user } => {
            let id = resolve(ctx, user).await?;
            let u = api.get(&api.path(&["users", &id.to_string()])).await?;
            ctx.print(&table([&u]), &u)
        }
        UserCommand::Delete { user } => {
            let id = resolve(ctx, user).await?;
            api.delete(&api.path(&["users", &id.to_string()])).await?;
            ctx.done(&format!("deleted user {user} (id {id})"))
        }
        UserCommand::Passwd { user } => {
            let id = resolve(ctx, user).await?;
            let new = prompt::new_password(user)?;
            let mut body = json!({"new_password": new});
            // Harbor wants the old password when users change their own.
            if *user == ctx.username {
                body["old_password"] = ctx.password.clone().into();
            }
            api.put(&api.path(&["users", &id.to_string(), "password"]), &body)
                .await?;
            ctx.done(&format!("changed the password of {user}"))
        }
        UserCommand::SetAdmin { user, revoke } => {
            let id = resolve(ctx, user).await?;
            let body = json!({"sysadmin_flag": !revoke});
            api.put(&api.path(&["users", &id.to_string(), "sysadmin"]), &body)
                .await?;
            if *revoke {
                ctx.done(&format!("{user} is no longer a system administrator"))
            } else {
                ctx.done(&format!("{user} is now a system administrator"))
            }
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
        c: UserCommand,
    }

    fn parse(args: &[&str]) -> Result<UserCommand, clap::Error> {
        T::try_parse_from(std::iter::once("user").chain(args.iter().copied())).map(|t| t.c)
    }

    #[test]
    fn subcommands_parse() {
        assert!(matches!(
            parse(&["create", "alice", "--email", "a@example.com"]).expect("parses"),
            UserCommand::Create { name, email: Some(_), realname: None, .. } if name == "alice"
        ));
        assert!(matches!(
            parse(&["set-admin", "alice", "--revoke"]).expect("parses"),
            UserCommand::SetAdmin { revoke: true, .. }
        ));
        assert!(matches!(
            parse(&["passwd", "bob"]).expect("parses"),
            UserCommand::Passwd { user } if user == "bob"
        ));
        assert!(parse(&["create"]).is_err());
        assert!(parse(&["create", "alice", "--password", "x"]).is_err());
    }

    #[test]
    fn creation_body_defaults_the_realname() {
        assert_eq!(
            creation_body("alice", "Pw123456", None, None, None),
            json!({"username": "alice", "password": "Pw123456", "realname": "alice"})
        );
        assert_eq!(
            creation_body("a", "p", Some("a@x"), Some("A"), Some("c")),
            json!({"username": "a", "password": "p", "realname": "A", "email": "a@x", "comment": "c"})
        );
    }

    #[test]
    fn users_render_as_a_table() {
        let users = [
            json!({"user_id": 3, "username": "alice", "sysadmin_flag": false,
                            "email": "a@x", "realname": "Alice", "creation_time": "2025-01-01T00:00:00Z"}),
        ];
        assert_eq!(
            table(&users).render(),
            "ID   USERNAME   ADMIN   EMAIL   REALNAME   CREATED\n\
             3    alice      false   a@x     Alice      2025-01-01T00:00:00Z\n"
        );
    }
}
