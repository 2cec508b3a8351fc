//! The operator CLI: `berth user|project|robot|repo|artifact|label|gc|quota …` over the Harbor-compatible
//! REST API (`/api/v2.0`) of a running Berth (or Harbor) server.
//!
//! Every command authenticates with HTTP Basic auth as `--username`
//! (`BERTH_USERNAME`, default `admin`). The password comes from
//! `BERTH_PASSWORD` or, when that is unset and stdin is a terminal, from a
//! prompt; never from a flag, since command lines are visible to every user
//! of the machine. Passwords for new users and password changes come the
//! same way from `BERTH_NEW_PASSWORD` (see [`prompt`]).

mod artifact;
mod client;
mod error;
mod gc;
mod label;
mod project;
mod prompt;
mod quota;
mod repo;
mod robot;
mod table;
mod user;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

pub(crate) use client::Api;
pub(crate) use error::CliError;

/// Where the API is, when neither `--url` nor `BERTH_URL` says.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:5000";

/// The API commands, flattened into `berth`'s own subcommands.
#[derive(Subcommand)]
pub(crate) enum ApiCommand {
    /// Manage users (through the server's Harbor API).
    User(UserArgs),
    /// Manage projects and their members (through the server's Harbor API).
    Project(ProjectArgs),
    /// Manage robot accounts (through the server's Harbor API).
    Robot(RobotArgs),
    /// Manage repositories (through the server's Harbor API).
    Repo(RepoArgs),
    /// Manage artifacts, their tags and labels (through the server's Harbor API).
    Artifact(ArtifactArgs),
    /// Manage labels (through the server's Harbor API).
    Label(LabelArgs),
    /// Run and schedule garbage collection (through the server's Harbor API).
    Gc(GcArgs),
    /// Show and set projects' storage quotas (through the server's Harbor API).
    Quota(QuotaArgs),
}

#[derive(Args)]
pub(crate) struct UserArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: user::UserCommand,
}

#[derive(Args)]
pub(crate) struct ProjectArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: project::ProjectCommand,
}

#[derive(Args)]
pub(crate) struct RobotArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: robot::RobotCommand,
}

#[derive(Args)]
pub(crate) struct RepoArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: repo::RepoCommand,
}

#[derive(Args)]
pub(crate) struct ArtifactArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: artifact::ArtifactCommand,
}

#[derive(Args)]
pub(crate) struct LabelArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: label::LabelCommand,
}

#[derive(Args)]
pub(crate) struct GcArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: gc::GcCommand,
}

#[derive(Args)]
pub(crate) struct QuotaArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: quota::QuotaCommand,
}

/// Where the server is and who is asking. There is deliberately no
/// password flag: set `BERTH_PASSWORD`, or answer the prompt.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Connection")]
pub(crate) struct Connection {
    /// Base URL of the server (http:// or https://).
    #[arg(long, env = "BERTH_URL", default_value = DEFAULT_URL, global = true)]
    url: String,
    /// User to authenticate as (password: BERTH_PASSWORD, or prompted).
    #[arg(long, env = "BERTH_USERNAME", default_value = "admin", global = true)]
    username: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Aligned columns with a header row.
    Table,
    /// The API's JSON, pretty-printed.
    Json,
}

/// What a command needs: the API client and the output format.
pub(crate) struct Ctx {
    pub(crate) api: Api,
    pub(crate) output: Output,
    /// Who is logged in (`--username`).
    pub(crate) username: String,
    /// Their password (for `user passwd` on oneself, which needs the old one).
    pub(crate) password: String,
}

impl Ctx {
    fn connect(conn: &Connection) -> Result<Self, CliError> {
        // Check the URL before asking for a password.
        let base = client::BaseUrl::parse(&conn.url)?;
        let password = prompt::login_password(&conn.username, &conn.url)?;
        let api = Api::new(base, &conn.username, &password)?;
        Ok(Self {
            api,
            output: conn.output,
            username: conn.username.clone(),
            password,
        })
    }

    /// Prints `value` pretty-printed (JSON mode).
    pub(crate) fn print_json(&self, value: &Value) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::Local(format!("cannot print JSON: {e}")))?;
        emit(&format!("{text}\n"))
    }

    /// Prints `table` in table mode, `json` in JSON mode.
    pub(crate) fn print(&self, table: &table::Table, json: &Value) -> Result<(), CliError> {
        match self.output {
            Output::Table => emit(&table.render()),
            Output::Json => self.print_json(json),
        }
    }

    /// Prints a one-line confirmation in table mode; nothing in JSON mode
    /// (the exit status says it worked, and the API answered no body).
    pub(crate) fn done(&self, message: &str) -> Result<(), CliError> {
        match self.output {
            Output::Table => emit(&format!("{message}\n")),
            Output::Json => Ok(()),
        }
    }
}

/// Writes to stdout; a closed pipe (`berth user list | head -1`) is not an
/// error.
pub(crate) fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Local(format!("cannot write to stdout: {e}"))),
    }
}

/// Runs one API command; errors go to stderr as `berth: …`, exit status 1.
pub(crate) async fn run(command: &ApiCommand) -> ExitCode {
    let result = match command {
        ApiCommand::User(a) => match Ctx::connect(&a.conn) {
            Ok(ctx) => user::run(&ctx, &a.command).await,
            Err(e) => Err(e),
        },
        ApiCommand::Project(a) => match Ctx::connect(&a.conn) {
            Ok(ctx) => project::run(&ctx, &a.command).await,
            Err(e) => Err(e),
        },
        ApiCommand::Robot(a) => match Ctx::connect(&a.conn) {
            Ok(ctx) => robot::run(&ctx, &a.command).await,
            Err(e) => Err(e),
        },
        ApiCommand::Repo(a) => match Ctx::connect(&a.conn) {
            Ok(ctx) => repo::run(&ctx, &a.command).await,
            Err(e) => Err(e),
        },
        ApiCommand::Artifact(a) => match Ctx::connect(&a.conn) {
            Ok(ctx) => artifact::run(&ctx, &a.command).await,
            Err(e) => Err(e),
        },
        ApiCommand::Label(a) => match Ctx::connect(&a.conn) {
            Ok(ctx) => label::run(&ctx, &a.command).await,
            Err(e) => Err(e),
        },
        ApiCommand::Gc(a) => match Ctx::connect(&a.conn) {
            Ok(ctx) => gc::run(&ctx, &a.command).await,
            Err(e) => Err(e),
        },
        ApiCommand::Quota(a) => match Ctx::connect(&a.conn) {
            Ok(ctx) => quota::run(&ctx, &a.command).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            for line in e.lines() {
                eprintln!("berth: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `value[key]` as display text: strings as they are, numbers and booleans
/// printed, anything missing or null as `-`.
pub(crate) fn field(value: &Value, key: &str) -> String {
    match value.get(key) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) if s.is_empty() => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `value[key]` as an integer, if it is one.
pub(crate) fn int_field(value: &Value, key: &str) -> Option<i64> {
    value.get(key).and_then(Value::as_i64)
}

/// Whether the string is a decimal id (`42`), as opposed to a name.
pub(crate) fn as_id(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    #[derive(Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: ApiCommand,
    }

    fn parse(args: &[&str]) -> Result<TestCli, clap::Error> {
        TestCli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let cli = parse(&[
            "user",
            "--url",
            "http://reg:8080",
            "list",
            "--output",
            "json",
            "--username",
            "ops",
        ])
        .expect("parses");
        let ApiCommand::User(a) = cli.command else {
            panic!("not a user command")
        };
        assert_eq!(a.conn.url, "http://reg:8080");
        assert_eq!(a.conn.username, "ops");
        assert_eq!(a.conn.output, Output::Json);
        assert!(matches!(a.command, user::UserCommand::List));
    }

    #[test]
    fn the_login_user_and_the_new_user_stay_apart() {
        let cli = parse(&["user", "--username", "ops", "create", "alice"]).expect("parses");
        let ApiCommand::User(a) = cli.command else {
            panic!("not a user command")
        };
        assert_eq!(a.conn.username, "ops");
        assert!(matches!(a.command, user::UserCommand::Create { name, .. } if name == "alice"));
        let cli = parse(&["user", "create", "alice"]).expect("parses");
        let ApiCommand::User(a) = cli.command else {
            panic!("not a user command")
        };
        assert_ne!(a.conn.username, "alice");
    }

    #[test]
    fn there_is_no_password_flag() {
        assert!(parse(&["user", "list", "--password", "x"]).is_err());
        assert!(parse(&["user", "--password", "x", "list"]).is_err());
    }

    #[test]
    fn output_defaults_to_table() {
        let cli = parse(&["project", "list"]).expect("parses");
        let ApiCommand::Project(a) = cli.command else {
            panic!("not a project command")
        };
        assert_eq!(a.conn.output, Output::Table);
        assert!(parse(&["project", "list", "-o", "yaml"]).is_err());
    }

    #[test]
    fn fields_print_plainly() {
        let v = json!({"s": "x", "n": 3, "b": true, "e": "", "z": null});
        assert_eq!(field(&v, "s"), "x");
        assert_eq!(field(&v, "n"), "3");
        assert_eq!(field(&v, "b"), "true");
        assert_eq!(field(&v, "e"), "-");
        assert_eq!(field(&v, "z"), "-");
        assert_eq!(field(&v, "missing"), "-");
    }

    #[test]
    fn ids_are_positive_decimal_numbers() {
        assert_eq!(as_id("42"), Some(42));
        assert_eq!(as_id("0"), None);
        assert_eq!(as_id("-3"), None);
        assert_eq!(as_id("+3"), None);
        assert_eq!(as_id("alice"), None);
        assert_eq!(as_id(""), None);
        assert_eq!(as_id("99999999999999999999999"), None);
    }
}
