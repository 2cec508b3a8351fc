//! `berth gc …`: garbage collection through `/api/v2.0/system/gc`
//! (system admins only).
//!
//! `berth gc run --wait` polls the run and, when stderr is a terminal,
//! draws a progress bar there from the run's `progress` (Berth's
//! extension of Harbor's `GCHistory`: tasks created so far and those
//! done; the total grows while repositories are listed). Against a server
//! without it (Harbor), the bar shows the status alone.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::error::sanitize;
use super::table::Table;
use super::{CliError, Ctx, Output, emit, field, int_field};

/// How often `--wait` asks how the run is doing.
const POLL: Duration = Duration::from_secs(1);
/// Width of the bar, in cells.
const BAR_WIDTH: usize = 30;

#[derive(Subcommand, Debug)]
pub(crate) enum GcCommand {
    /// Start a garbage collection now.
    Run {
        /// Also delete artifacts no tag points to.
        #[arg(long)]
        delete_untagged: bool,
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Wait for it to finish, showing its progress on stderr; the exit
        /// status says whether it succeeded.
        #[arg(long)]
        wait: bool,
    },
    /// List past and running collections, newest first.
    History,
    /// Print a collection's log.
    Log {
        /// The collection's id (`berth gc history` shows it).
        #[arg(value_parser = parse_id)]
        id: i64,
    },
    /// Stop a running collection.
    Stop {
        #[arg(value_parser = parse_id)]
        id: i64,
    },
    /// Show the schedule, or set it with --type (or --cron).
    Schedule {
        /// When to collect (None: never on a schedule).
        #[arg(long = "type", value_enum)]
        kind: Option<ScheduleType>,
        /// A 6-field cron, seconds first, in UTC (`0 0 3 * * *`: 03:00
        /// daily); implies --type custom.
        #[arg(long)]
        cron: Option<String>,
        /// Scheduled runs also delete untagged artifacts.
        #[arg(long)]
        delete_untagged: bool,
        /// Scheduled runs only report.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Harbor's schedule types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScheduleType {
    None,
    Hourly,
    Daily,
    Weekly,
    Custom,
}

impl ScheduleType {
    fn harbor_name(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Hourly => "Hourly",
            Self::Daily => "Daily",
            Self::Weekly => "Weekly",
            Self::Custom => "Custom",
        }
    }
}

fn parse_id(s: &str) -> Result<i64, String> {
    super::as_id(s).ok_or_else(|| {
        "give the collection's id, a positive number (`berth gc history`)".to_owned()
    })
}

/// The body of `POST`/`PUT /system/gc/schedule`.
pub(crate) fn schedule_body(kind: &str, cron: &str, delete_untagged: bool, dry_run: bool) -> Value {
    json!({
        "schedule": {"type": kind, "cron": cron},
        "parameters": {"delete_untagged": delete_untagged, "dry_run": dry_run},
    })
}

/// `job_parameters` (a JSON string) as an object.
fn parameters(h: &Value) -> Value {
    h.get("job_parameters")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

fn flag(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_bool) {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => "-".to_owned(),
    }
}

/// `done/tasks` of Berth's `progress`, if the server says.
fn progress(h: &Value) -> Option<(i64, i64)> {
    let p = h.get("progress")?;
    Some((int_field(p, "done")?, int_field(p, "tasks")?))
}

fn history_table(runs: &[Value]) -> Table {
    let mut t = Table::new(&[
        "ID",
        "STATUS",
        "TRIGGER",
        "DRY RUN",
        "DELETE UNTAGGED",
        "TASKS",
        "CREATED",
        "UPDATED",
    ]);
    for r in runs {
        let p = parameters(r);
        let tasks = progress(r).map_or_else(|| "-".to_owned(), |(d, n)| format!("{d}/{n}"));
        t.row(vec![
            field(r, "id"),
            field(r, "job_status"),
            field(r, "job_kind"),
            flag(&p, "dry_run"),
            flag(&p, "delete_untagged"),
            tasks,
            field(r, "creation_time"),
            field(r, "update_time"),
        ]);
    }
    t
}

fn schedule_table(s: &Value) -> Table {
    let mut t = Table::new(&["TYPE", "CRON", "NEXT", "DRY RUN", "DELETE UNTAGGED"]);
    let sched = s.get("schedule").cloned().unwrap_or(Value::Null);
    let p = parameters(s);
    t.row(vec![
        field(&sched, "type"),
        field(&sched, "cron"),
        field(&sched, "next_scheduled_time"),
        flag(&p, "dry_run"),
        flag(&p, "delete_untagged"),
    ]);
    t
}

/// Whether a `job_status` is final.
fn finished(status: &str) -> bool {
    matches!(
        status.to_ascii_lowercase().as_str(),
        "success" | "error" | "stopped"
    )
}

/// One frame of the bar: `[#####-----]  12/40 tasks  Running (repos)`.
pub(crate) fn bar(run: &Value) -> String {
    let status = field(run, "job_status");
    let phase = run
        .get("progress")
        .map(|p| field(p, "phase"))
        .filter(|p| p != "-");
    let label = match phase {
        Some(p) => format!("{status} ({p})"),
        None => status,
    };
    match progress(run) {
        Some((done, tasks)) if tasks > 0 => {
            let done = done.clamp(0, tasks);
            let filled = usize::try_from(done * BAR_WIDTH as i64 / tasks).unwrap_or(0);
            format!(
                "[{}{}] {done}/{tasks} tasks  {label}",
                "#".repeat(filled),
                "-".repeat(BAR_WIDTH - filled)
            )
        }
        _ => label,
    }
}

/// Redraws the bar on stderr (a terminal).
fn draw(line: &str) {
    let mut err = std::io::stderr().lock();
    // Carriage return, the line, then clear what a longer frame left.
    let _ = write!(err, "\r{}\x1b[K", sanitize(line));
    let _ = err.flush();
}

/// Polls run `id` until it is finished; returns its last state.
async fn wait(ctx: &Ctx, id: i64) -> Result<Value, CliError> {
    let path = ctx.api.path(&["system", "gc", &id.to_string()]);
    let tty = std::io::stderr().is_terminal();
    loop {
        let run = ctx.api.get(&path).await?;
        let status = field(&run, "job_status");
        if tty {
            draw(&bar(&run));
        }
        if finished(&status) {
            if tty {
                eprintln!();
            }
            return Ok(run);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The log's last non-empty line (Berth's summary), if any.
fn last_line(log: &str) -> Option<&str> {
    log.lines().rev().find(|l| !l.trim().is_empty())
}

pub(crate) async fn run(ctx: &Ctx, command: &GcCommand) -> Result<(), CliError> {
    let api = &ctx.api;
    match command {
        GcCommand::Run {
            delete_untagged,
            dry_run,
            wait: and_wait,
        } => {
            let body = schedule_body("Manual", "", *delete_untagged, *dry_run);
            let created = api
                .create(&api.path(&["system", "gc", "schedule"]), &body)
                .await?;
            let Some(id) = created.id else {
                return Err(CliError::Local(
                    "the server started a collection but did not say which (no Location)"
                        .to_owned(),
                ));
            };
            if !and_wait {
                return match ctx.output {
                    Output::Table => ctx.done(&format!(
                        "started garbage collection {id} (`berth gc log {id}` to follow it)"
                    )),
                    Output::Json => ctx.print_json(&json!({"id": id})),
                };
            }
            let run = wait(ctx, id).await?;
            let status = field(&run, "job_status");
            match ctx.output {
                Output::Table => {
                    let log = api
                        .get_text(&api.path(&["system", "gc", &id.to_string(), "log"]))
                        .await?;
                    let summary = last_line(&log).map(sanitize).unwrap_or_default();
                    emit(&format!("garbage collection {id}: {status}\n{summary}\n"))?;
                }
                Output::Json => ctx.print_json(&run)?,
            }
            if status.eq_ignore_ascii_case("success") {
                Ok(())
            } else {
                Err(CliError::Local(format!(
                    "garbage collection {id} ended {status} (`berth gc log {id}` says why)"
                )))
            }
        }
        GcCommand::History => {
            let runs = api.list(&api.path(&["system", "gc"]), &[]).await?;
            ctx.print(&history_table(&runs), &Value::Array(runs))
        }
        GcCommand::Log { id } => {
            let log = api
                .get_text(&api.path(&["system", "gc", &id.to_string(), "log"]))
                .await?;
            let text: String = log.lines().map(|l| sanitize(l) + "\n").collect();
            emit(&text)
        }
        GcCommand::Stop { id } => {
            api.put(&api.path(&["system", "gc", &id.to_string()]), &json!({}))
                .await?;
            ctx.done(&format!("asked garbage collection {id} to stop"))
        }
        GcCommand::Schedule {
            kind,
            cron,
            delete_untagged,
            dry_run,
        } => {
            let path = api.path(&["system", "gc", "schedule"]);
            let kind = match (kind, cron) {
                (None, None) => {
                    if *delete_untagged || *dry_run {
                        return Err(CliError::Local(
                            "give --type (or --cron) to change the schedule".to_owned(),
                        ));
                    }
                    let s = api.get(&path).await?;
                    return ctx.print(&schedule_table(&s), &s);
                }
                (None | Some(ScheduleType::Custom), Some(_)) => ScheduleType::Custom,
                (Some(ScheduleType::Custom), None) => {
                    return Err(CliError::Local(
                        "--type custom needs --cron (6 fields, seconds first)".to_owned(),
                    ));
                }
                (Some(k), Some(_)) => {
                    return Err(CliError::Local(format!(
                        "--cron goes with --type custom, not {}",
                        k.harbor_name()
                    )));
                }
                (Some(k), None) => *k,
            };
            let body = schedule_body(
                kind.harbor_name(),
                cron.as_deref().unwrap_or_default(),
                *delete_untagged,
                *dry_run,
            );
            api.put(&path, &body).await?;
            let s = api.get(&path).await?;
            match ctx.output {
                Output::Table => emit(&schedule_table(&s).render()),
                Output::Json => ctx.print_json(&s),
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
        c: GcCommand,
    }

    fn parse(args: &[&str]) -> Result<GcCommand, clap::Error> {
        T::try_parse_from(std::iter::once("gc").chain(args.iter().copied())).map(|t| t.c)
    }

    #[test]
    fn commands_parse() {
        assert!(matches!(
            parse(&["run", "--dry-run", "--wait"]).expect("parses"),
            GcCommand::Run {
                dry_run: true,
                wait: true,
                delete_untagged: false
            }
        ));
        assert!(matches!(
            parse(&["schedule", "--type", "daily", "--delete-untagged"]).expect("parses"),
            GcCommand::Schedule {
                kind: Some(ScheduleType::Daily),
                delete_untagged: true,
                ..
            }
        ));
        assert!(parse(&["schedule", "--type", "monthly"]).is_err());
        assert!(parse(&["log", "x"]).is_err());
        assert!(matches!(
            parse(&["log", "4"]).expect("parses"),
            GcCommand::Log { id: 4 }
        ));
    }

    #[test]
    fn bodies_follow_the_harbor_model() {
        assert_eq!(
            schedule_body("Manual", "", true, false),
            json!({"schedule": {"type": "Manual", "cron": ""},
                   "parameters": {"delete_untagged": true, "dry_run": false}})
        );
    }

    #[test]
    fn the_bar_shows_done_of_tasks() {
        let run = json!({"job_status": "Running", "progress": {"phase": "repos", "tasks": 40, "done": 10}});
        assert_eq!(
            bar(&run),
            format!(
                "[{}{}] 10/40 tasks  Running (repos)",
                "#".repeat(7),
                "-".repeat(23)
            )
        );
        // A server without Berth's progress: the status alone.
        assert_eq!(bar(&json!({"job_status": "Pending"})), "Pending");
        let done =
            json!({"job_status": "Success", "progress": {"phase": "blobs", "tasks": 5, "done": 5}});
        assert!(bar(&done).starts_with(&format!("[{}]", "#".repeat(BAR_WIDTH))));
        assert!(finished("Success") && finished("Error") && finished("Stopped"));
        assert!(!finished("Running") && !finished("Pending"));
    }

    #[test]
    fn history_renders() {
        let r = json!({"id": 2, "job_status": "Success", "job_kind": "MANUAL",
            "job_parameters": "{\"delete_untagged\":true,\"dry_run\":false}",
            "progress": {"tasks": 3, "done": 3}, "creation_time": "c", "update_time": "u"});
        assert_eq!(
            history_table(&[r]).render(),
            "ID   STATUS    TRIGGER   DRY RUN   DELETE UNTAGGED   TASKS   CREATED   UPDATED\n\
             2    Success   MANUAL    no        yes               3/3     c         u\n"
        );
        assert_eq!(last_line("a\nsummary: x\n\n"), Some("summary: x"));
    }
}
