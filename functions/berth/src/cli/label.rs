//! `berth label …`: `/api/v2.0/labels`, global ones (scope `g`) and one
//! project's (scope `p`).

use clap::Subcommand;
use serde_json::{Value, json};

use super::table::Table;
use super::{CliError, Ctx, Output, as_id, field, project};

#[derive(Subcommand, Debug)]
pub(crate) enum LabelCommand {
    /// List the global labels, or one project's.
    List {
        /// This project's labels (instead of the global ones).
        #[arg(long)]
        project: Option<String>,
    },
    /// Create a label (global, or a project's with --project).
    Create {
        name: String,
        /// Its color, as #RRGGBB or #RGB (the # may be left out).
        #[arg(long, value_parser = parse_color)]
        color: Option<String>,
        /// A description.
        #[arg(long)]
        description: Option<String>,
        /// Make it a label of this project (default: a global label).
        #[arg(long)]
        project: Option<String>,
    },
    /// Change a label's name, color or description.
    Update {
        /// The label's id (`berth label list` shows it).
        #[arg(value_parser = parse_id)]
        id: i64,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new color, as #RRGGBB or #RGB.
        #[arg(long, value_parser = parse_color)]
        color: Option<String>,
        /// A new description ("" clears it).
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a label (it comes off every artifact).
    Delete {
        /// The label's id.
        #[arg(value_parser = parse_id)]
        id: i64,
    },
}

fn parse_id(s: &str) -> Result<i64, String> {
    as_id(s).ok_or_else(|| "give the label's id, a positive number (`berth label list`)".to_owned())
}

/// `#RRGGBB` or `#RGB` (with or without the `#`, which a shell would take
/// for a comment unless quoted), always sent as `#rrggbb` (Harbor takes
/// only that).
fn parse_color(s: &str) -> Result<String, String> {
    let hex = s.strip_prefix('#').unwrap_or(s).to_ascii_lowercase();
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_color());
    }
    match hex.len() {
        6 => Ok(format!("#{hex}")),
        3 => Ok(hex.chars().fold("#".to_owned(), |mut out, c| {
            out.push(c);
            out.push(c);
            out
        })),
        _ => Err(bad_color()),
    }
}

fn bad_color() -> String {
    "expected a color as #RRGGBB or #RGB, as in #ff8800".to_owned()
}

const HEADERS: &[&str] = &["ID", "NAME", "SCOPE", "COLOR", "DESCRIPTION", "CREATED"];

fn table<'a>(labels: impl IntoIterator<Item = &'a Value>) -> Table {
    let mut t = Table::new(HEADERS);
    for l in labels {
        let scope = match l.get("scope").and_then(Value::as_str) {
            Some("g") => "global".to_owned(),
            Some("p") => format!("project {}", field(l, "project_id")),
            _ => field(l, "scope"),
        };
        t.row(vec![
            field(l, "id"),
            field(l, "name"),
            scope,
            field(l, "color"),
            field(l, "description"),
            field(l, "creation_time"),
        ]);
    }
    t
}

/// The body of `POST /labels`.
pub(crate) fn creation_body(
    name: &str,
    color: Option<&str>,
    description: Option<&str>,
    project_id: Option<i64>,
) -> Value {
    let mut body = json!({
        "name": name,
        "color": color.unwrap_or_default(),
        "description": description.unwrap_or_default(),
        "scope": if project_id.is_some() { "p" } else { "g" },
    });
    if let Some(id) = project_id {
        body["project_id"] = id.into();
    }
    body
}

pub(crate) async fn run(ctx: &Ctx, command: &LabelCommand) -> Result<(), CliError> {
    let api = &ctx.api;
    match command {
        LabelCommand::List { project } => {
            let pid = match project {
                Some(p) => Some(project::project_id(ctx, p).await?.to_string()),
                None => None,
            };
            let query: Vec<(&str, &str)> = match &pid {
                Some(id) => vec![("scope", "p"), ("project_id", id)],
                None => vec![("scope", "g")],
            };
            let labels = api.list(&api.path(&["labels"]), &query).await?;
            ctx.print(&table(&labels), &Value::Array(labels))
        }
        LabelCommand::Create {
            name,
            color,
            description,
            project,
        } => {
            let pid = match project {
                Some(p) => Some(project::project_id(ctx, p).await?),
                None => None,
            };
            let body = creation_body(name, color.as_deref(), description.as_deref(), pid);
            let created = api.create(&api.path(&["labels"]), &body).await?;
            match ctx.output {
                Output::Table => ctx.done(&match created.id {
                    Some(id) => format!("created label {name} (id {id})"),
                    None => format!("created label {name}"),
                }),
                Output::Json => ctx.print_json(&json!({"id": created.id, "name": name})),
            }
        }
        LabelCommand::Update {
            id,
            name,
            color,
            description,
        } => {
            if name.is_none() && color.is_none() && description.is_none() {
                return Err(CliError::Local(
                    "nothing to change: give --name, --color or --description".to_owned(),
                ));
            }
            let path = api.path(&["labels", &id.to_string()]);
            // PUT takes the whole label: send back what GET gave, changed.
            let mut label = api.get(&path).await?;
            let Some(obj) = label.as_object_mut() else {
                return Err(CliError::Local(format!(
                    "the server's answer for label {id} is not an object"
                )));
            };
            for (key, value) in [
                ("name", name),
                ("color", color),
                ("description", description),
            ] {
                if let Some(v) = value {
                    obj.insert(key.to_owned(), v.clone().into());
                }
            }
            api.put(&path, &label).await?;
            ctx.done(&format!("updated label {id}"))
        }
        LabelCommand::Delete { id } => {
            api.delete(&api.path(&["labels", &id.to_string()])).await?;
            ctx.done(&format!("deleted label {id}"))
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
        c: LabelCommand,
    }

    fn parse(args: &[&str]) -> Result<LabelCommand, clap::Error> {
        T::try_parse_from(std::iter::once("label").chain(args.iter().copied())).map(|t| t.c)
    }

    #[test]
    fn colors_are_hex_with_a_hash() {
        assert_eq!(parse_color("#FF8800").as_deref(), Ok("#ff8800"));
        assert_eq!(parse_color("ff8800").as_deref(), Ok("#ff8800"));
        assert_eq!(parse_color("#F80").as_deref(), Ok("#ff8800"));
        for bad in ["", "#", "#ff88", "red", "#gg0000", "##ff8800"] {
            assert!(parse_color(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn ids_are_required_for_update_and_delete() {
        assert!(matches!(
            parse(&["update", "7", "--name", "x"]).expect("parses"),
            LabelCommand::Update { id: 7, .. }
        ));
        assert!(parse(&["delete", "prod"]).is_err());
        assert!(parse(&["delete", "0"]).is_err());
        assert!(parse(&["update", "7", "--color", "blue"]).is_err());
    }

    #[test]
    fn bodies_follow_the_harbor_model() {
        assert_eq!(
            creation_body("prod", Some("#ff0000"), None, None),
            json!({"name": "prod", "color": "#ff0000", "description": "", "scope": "g"})
        );
        assert_eq!(
            creation_body("qa", None, Some("d"), Some(4)),
            json!({"name": "qa", "color": "", "description": "d", "scope": "p", "project_id": 4})
        );
    }

    #[test]
    fn labels_render() {
        let g = json!({"id": 1, "name": "prod", "scope": "g", "color": "#f00", "description": "", "creation_time": "t"});
        let p = json!({"id": 2, "name": "qa", "scope": "p", "project_id": 4, "color": "", "description": "x"});
        assert_eq!(
            table([&g, &p]).render(),
            "ID   NAME   SCOPE       COLOR   DESCRIPTION   CREATED\n\
             1    prod   global      #f00    -             t\n\
             2    qa     project 4   -       x             -\n"
        );
    }
}
