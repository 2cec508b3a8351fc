//! `berth artifact …`: `/projects/{p}/repositories/{r}/artifacts` — list,
//! show, delete, copy, tags, labels and the build history of artifacts,
//! named `PROJECT/REPO:TAG` or `PROJECT/REPO@DIGEST`.

use clap::Subcommand;
use serde_json::{Value, json};

use super::error::sanitize;
use super::repo::{ArtifactRef, Paging, RepoName, is_tag, list_paged};
use super::table::Table;
use super::{CliError, Ctx, Output, as_id, emit, field, int_field, project};

/// Longest nested attribute value shown in `artifact show` (the whole of
/// it is in `-o json`).
const MAX_ATTR_SHOWN: usize = 160;

#[derive(Subcommand, Debug)]
pub(crate) enum ArtifactCommand {
    /// List a repository's artifacts (newest push first).
    List {
        /// PROJECT/REPO.
        repository: String,
        /// Only artifacts with this tag; `~part`: a tag containing part;
        /// `*`: any tag; `nil`: untagged ones (Harbor's `q=tags=…`).
        #[arg(long, value_name = "TAG")]
        tag_filter: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one artifact: type, attributes, platforms, tags, labels,
    /// accessories.
    Show {
        /// PROJECT/REPO:TAG or PROJECT/REPO@DIGEST.
        artifact: String,
    },
    /// Delete an artifact (and so every tag on it).
    Delete {
        /// PROJECT/REPO:TAG or PROJECT/REPO@DIGEST.
        artifact: String,
    },
    /// Copy an artifact into another repository (its tags come along).
    Copy {
        /// PROJECT/REPO:TAG or PROJECT/REPO@DIGEST.
        source: String,
        /// PROJECT/REPO.
        destination: String,
    },
    /// Add, delete or list an artifact's tags.
    Tag {
        #[command(subcommand)]
        command: TagCommand,
    },
    /// Add labels to an artifact, or remove them.
    Label {
        #[command(subcommand)]
        command: LabelCommand,
    },
    /// Show an image's build history (the `history` of its config).
    History {
        /// PROJECT/REPO:TAG or PROJECT/REPO@DIGEST.
        artifact: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum TagCommand {
    /// Put a tag on an artifact.
    Add { artifact: String, tag: String },
    /// Take a tag off an artifact (the artifact stays).
    Delete { artifact: String, tag: String },
    /// List an artifact's tags.
    List { artifact: String },
}

#[derive(Subcommand, Debug)]
pub(crate) enum LabelCommand {
    /// Add a label (by name or id) to an artifact.
    Add { artifact: String, label: String },
    /// Remove a label (by name or id) from an artifact.
    Remove { artifact: String, label: String },
}

/// `1234` → `1.2 KiB`; bytes below 1 KiB as they are.
pub(crate) fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    #[allow(clippy::cast_precision_loss)]
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `sha256:` and the first 12 hex digits.
pub(crate) fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => {
            let end = hex.char_indices().nth(12).map_or(hex.len(), |(i, _)| i);
            format!("{algorithm}:{}", &hex[..end])
        }
        None => digest.to_owned(),
    }
}

/// A time field; Harbor's zero time (`0001-01-01T…`, never pulled) as
/// `never`.
fn time(v: &Value, key: &str) -> String {
    let t = field(v, key);
    if t.starts_with("0001-01-01") {
        "never".to_owned()
    } else {
        t
    }
}

fn size(v: &Value) -> String {
    int_field(v, "size").map_or_else(|| "-".to_owned(), human_size)
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The names of `key`'s items (`tags`, `labels`), `, `-separated.
fn names(v: &Value, key: &str) -> String {
    let names: Vec<String> = array(v, key)
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(", ")
    }
}

/// `os/architecture[/variant]` (and ` os.version`) of a platform.
fn platform(p: &Value) -> String {
    let get = |k: &str| {
        p.get(k)
            .or_else(|| p.get(format!("'{k}'")))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut s = [get("os"), get("architecture"), get("variant")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/");
    if let Some(version) = get("os.version") {
        s.push(' ');
        s.push_str(version);
    }
    if s.is_empty() { "-".to_owned() } else { s }
}

const LIST_HEADERS: &[&str] = &[
    "DIGEST",
    "TYPE",
    "TAGS",
    "SIZE",
    "PUSHED",
    "PLATFORMS",
    "ACCESSORIES",
];

fn list_table(artifacts: &[Value]) -> Table {
    let mut t = Table::new(LIST_HEADERS);
    for a in artifacts {
        t.row(vec![
            short_digest(&field(a, "digest")),
            field(a, "type"),
            names(a, "tags"),
            size(a),
            field(a, "push_time"),
            array(a, "references").len().to_string(),
            array(a, "accessories").len().to_string(),
        ]);
    }
    t
}

/// A value of `extra_attrs` or `annotations` as one line.
fn attr_value(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let s = sanitize(&s);
    match s.char_indices().nth(MAX_ATTR_SHOWN) {
        Some((i, _)) => format!("{}… (-o json shows all)", &s[..i]),
        None => s,
    }
}

/// Indents every line of `text` by two spaces.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// `artifact show` in table mode: the artifact's fields, then its
/// attributes, platforms and accessories.
fn describe(a: &Value) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: String| {
        out.push_str(&format!("{key:<15}{}\n", sanitize(&value)));
    };
    line("Repository:", field(a, "repository_name"));
    line("Digest:", field(a, "digest"));
    line("Type:", field(a, "type"));
    line("Media type:", field(a, "manifest_media_type"));
    if a.get("artifact_type")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        line("Artifact type:", field(a, "artifact_type"));
    }
    line(
        "Size:",
        int_field(a, "size").map_or_else(
            || "-".to_owned(),
            |n| format!("{} ({n} bytes)", human_size(n)),
        ),
    );
    line("Pushed:", field(a, "push_time"));
    line("Pulled:", time(a, "pull_time"));
    let tags: Vec<String> = array(a, "tags")
        .iter()
        .map(|t| {
            let name = field(t, "name");
            if t.get("immutable").and_then(Value::as_bool) == Some(true) {
                format!("{name} (immutable)")
            } else {
                name
            }
        })
        .collect();
    line(
        "Tags:",
        if tags.is_empty() {
            "-".to_owned()
        } else {
            tags.join(", ")
        },
    );
    let labels: Vec<String> = array(a, "labels")
        .iter()
        .map(|l| format!("{} (id {})", field(l, "name"), field(l, "id")))
        .collect();
    line(
        "Labels:",
        if labels.is_empty() {
            "-".to_owned()
        } else {
            labels.join(", ")
        },
    );
    for (title, key) in [
        ("Attributes:", "extra_attrs"),
        ("Annotations:", "annotations"),
    ] {
        if let Some(map) = a
            .get(key)
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
        {
            out.push_str(title);
            out.push('\n');
            for (k, v) in map {
                out.push_str(&format!("  {}: {}\n", sanitize(k), attr_value(v)));
            }
        }
    }
    let refs = array(a, "references");
    if !refs.is_empty() {
        out.push_str(&format!("Platforms ({}):\n", refs.len()));
        let mut t = Table::new(&["DIGEST", "PLATFORM"]);
        for r in refs {
            t.row(vec![
                field(r, "child_digest"),
                r.get("platform").map_or_else(|| "-".to_owned(), platform),
            ]);
        }
        out.push_str(&indent(&t.render()));
    }
    let accessories = array(a, "accessories");
    if !accessories.is_empty() {
        out.push_str(&format!("Accessories ({}):\n", accessories.len()));
        let mut t = Table::new(&["DIGEST", "TYPE", "SIZE", "CREATED"]);
        for x in accessories {
            t.row(vec![
                field(x, "digest"),
                field(x, "type"),
                size(x),
                field(x, "creation_time"),
            ]);
        }
        out.push_str(&indent(&t.render()));
    }
    out
}

fn tags_table(tags: &[Value]) -> Table {
    let mut t = Table::new(&["NAME", "PUSHED", "PULLED", "IMMUTABLE"]);
    for tag in tags {
        t.row(vec![
            field(tag, "name"),
            field(tag, "push_time"),
            time(tag, "pull_time"),
            field(tag, "immutable"),
        ]);
    }
    t
}

fn history_table(history: &[Value]) -> Table {
    let mut t = Table::new(&["CREATED", "EMPTY", "CREATED BY", "COMMENT"]);
    for h in history {
        let empty = h.get("empty_layer").and_then(Value::as_bool) == Some(true);
        t.row(vec![
            field(h, "created"),
            if empty { "yes" } else { "-" }.to_owned(),
            field(h, "created_by"),
            field(h, "comment"),
        ]);
    }
    t
}

/// The query of `artifact show`: everything Harbor can add.
const SHOW_QUERY: &[(&str, &str)] = &[
    ("with_tag", "true"),
    ("with_label", "true"),
    ("with_accessory", "true"),
    ("with_immutable_status", "true"),
];

/// The body of `POST …/tags`.
pub(crate) fn tag_body(tag: &str) -> Result<Value, CliError> {
    if !is_tag(tag) {
        return Err(CliError::Local(format!(
            "{tag:?} is not a tag (letters, digits, _ . -, at most 128, not starting with . or -)"
        )));
    }
    Ok(json!({"name": tag}))
}

/// The id of the label `label` (an id, or a name) that can go on an
/// artifact of `project`: a project label or a global one.
async fn resolve_label(ctx: &Ctx, project_name: &str, label: &str) -> Result<i64, CliError> {
    if let Some(id) = as_id(label) {
        return Ok(id);
    }
    let labels_path = ctx.api.path(&["labels"]);
    let pid = project::project_id(ctx, project_name).await?.to_string();
    let mut found: Vec<(i64, &str)> = Vec::new();
    for (scope, query) in [
        (
            "project",
            vec![
                ("scope", "p"),
                ("project_id", pid.as_str()),
                ("name", label),
            ],
        ),
        ("global", vec![("scope", "g"), ("name", label)]),
    ] {
        for l in ctx.api.list(&labels_path, &query).await? {
            if l.get("name").and_then(Value::as_str) == Some(label)
                && let Some(id) = int_field(&l, "id")
                && !found.iter().any(|(f, _)| *f == id)
            {
                found.push((id, scope));
            }
        }
    }
    match found.as_slice() {
        [(id, _)] => Ok(*id),
        [] => Err(CliError::Local(format!(
            "there is no label named {label:?} in project {project_name} or among the global ones \
             (`berth label list [--project {project_name}]`)"
        ))),
        _ => Err(CliError::Local(format!(
            "{} labels are named {label:?} ({}): give the id (`berth label list`)",
            found.len(),
            found
                .iter()
                .map(|(id, scope)| format!("{scope} {id}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub(crate) async fn run(ctx: &Ctx, command: &ArtifactCommand) -> Result<(), CliError> {
    let api = &ctx.api;
    match command {
        ArtifactCommand::List {
            repository,
            tag_filter,
            paging,
        } => {
            let repo = RepoName::parse(repository)?;
            let q = tag_filter.as_ref().map(|t| format!("tags={t}"));
            let mut query = vec![("with_tag", "true"), ("with_accessory", "true")];
            if let Some(q) = &q {
                query.push(("q", q));
            }
            let target = format!("{}/artifacts", repo.path(ctx));
            let artifacts = list_paged(ctx, &target, &query, paging).await?;
            ctx.print(&list_table(&artifacts), &Value::Array(artifacts))
        }
        ArtifactCommand::Show { artifact } => {
            let r = ArtifactRef::parse(artifact)?;
            let target = super::client::with_query(&r.path(ctx, &[]), SHOW_QUERY);
            let a = api.get(&target).await?;
            match ctx.output {
                Output::Table => emit(&describe(&a)),
                Output::Json => ctx.print_json(&a),
            }
        }
        ArtifactCommand::Delete { artifact } => {
            let r = ArtifactRef::parse(artifact)?;
            api.delete(&r.path(ctx, &[])).await?;
            ctx.done(&format!("deleted artifact {r}"))
        }
        ArtifactCommand::Copy {
            source,
            destination,
        } => {
            let src = ArtifactRef::parse(source)?;
            let dest = RepoName::parse(destination).map_err(|_| {
                CliError::Local(format!(
                    "{destination:?} is not a repository: the destination is PROJECT/REPO \
                     (the copy keeps the source's digest and tags)"
                ))
            })?;
            let from = src.to_string();
            let target = super::client::with_query(
                &format!("{}/artifacts", dest.path(ctx)),
                &[("from", &from)],
            );
            let created = api.create(&target, &json!({})).await?;
            let digest = created
                .location
                .as_deref()
                .and_then(|l| l.split(['?', '#']).next())
                .and_then(|l| l.rsplit('/').next())
                .map(|d| {
                    percent_encoding::percent_decode_str(d)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .filter(|d| super::repo::is_digest(d));
            match ctx.output {
                Output::Table => ctx.done(&match &digest {
                    Some(d) => format!("copied {src} to {dest}@{d}"),
                    None => format!("copied {src} to {dest}"),
                }),
                Output::Json => ctx.print_json(&json!({
                    "from": from,
                    "repository": dest.to_string(),
                    "digest": digest,
                    "location": created.location,
                })),
            }
        }
        ArtifactCommand::Tag { command } => match command {
            TagCommand::Add { artifact, tag } => {
                let r = ArtifactRef::parse(artifact)?;
                let body = tag_body(tag)?;
                api.create(&r.path(ctx, &["tags"]), &body).await?;
                ctx.done(&format!("tagged {r} as {}:{tag}", r.repo))
            }
            TagCommand::Delete { artifact, tag } => {
                let r = ArtifactRef::parse(artifact)?;
                tag_body(tag)?;
                api.delete(&r.path(ctx, &["tags", tag])).await?;
                ctx.done(&format!("deleted tag {}:{tag}", r.repo))
            }
            TagCommand::List { artifact } => {
                let r = ArtifactRef::parse(artifact)?;
                let tags = api
                    .list(
                        &r.path(ctx, &["tags"]),
                        &[("with_immutable_status", "true")],
                    )
                    .await?;
                ctx.print(&tags_table(&tags), &Value::Array(tags))
            }
        },
        ArtifactCommand::Label { command } => match command {
            LabelCommand::Add { artifact, label } => {
                let r = ArtifactRef::parse(artifact)?;
                let id = resolve_label(ctx, &r.repo.project, label).await?;
                api.create(&r.path(ctx, &["labels"]), &json!({"id": id}))
                    .await?;
                ctx.done(&format!("added label {label} (id {id}) to {r}"))
            }
            LabelCommand::Remove { artifact, label } => {
                let r = ArtifactRef::parse(artifact)?;
                let id = match as_id(label) {
                    Some(id) => id,
                    None => {
                        let target = super::client::with_query(
                            &r.path(ctx, &[]),
                            &[("with_tag", "false"), ("with_label", "true")],
                        );
                        let a = api.get(&target).await?;
                        array(&a, "labels")
                            .iter()
                            .find(|l| l.get("name").and_then(Value::as_str) == Some(label))
                            .and_then(|l| int_field(l, "id"))
                            .ok_or_else(|| {
                                CliError::Local(format!("{r} has no label named {label:?}"))
                            })?
                    }
                };
                api.delete(&r.path(ctx, &["labels", &id.to_string()]))
                    .await?;
                ctx.done(&format!("removed label {label} (id {id}) from {r}"))
            }
        },
        ArtifactCommand::History { artifact } => {
            let r = ArtifactRef::parse(artifact)?;
            let history = api
                .get(&r.path(ctx, &["additions", "build_history"]))
                .await?;
            let rows = match &history {
                Value::Array(rows) => rows.as_slice(),
                Value::Null => &[],
                _ => {
                    return Err(CliError::Local(format!(
                        "the server's build history of {r} is not a list"
                    )));
                }
            };
            ctx.print(&history_table(rows), &history)
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
        c: ArtifactCommand,
    }

    fn parse(args: &[&str]) -> Result<ArtifactCommand, clap::Error> {
        T::try_parse_from(std::iter::once("artifact").chain(args.iter().copied())).map(|t| t.c)
    }

    #[test]
    fn subcommands_parse() {
        assert!(matches!(
            parse(&["tag", "add", "p/r:v1", "v2"]).expect("parses"),
            ArtifactCommand::Tag { command: TagCommand::Add { artifact, tag } }
                if artifact == "p/r:v1" && tag == "v2"
        ));
        assert!(matches!(
            parse(&["label", "remove", "p/r:v1", "prod"]).expect("parses"),
            ArtifactCommand::Label {
                command: LabelCommand::Remove { .. }
            }
        ));
        assert!(matches!(
            parse(&["list", "p/r", "--tag-filter", "~v", "--all"]).expect("parses"),
            ArtifactCommand::List { tag_filter: Some(f), .. } if f == "~v"
        ));
        assert!(parse(&["copy", "p/r:v1"]).is_err());
    }

    #[test]
    fn sizes_and_digests_shorten() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
        let d = format!("sha256:{}", "0123456789abcdef".repeat(4));
        assert_eq!(short_digest(&d), "sha256:0123456789ab");
        assert_eq!(short_digest("sha256:abc"), "sha256:abc");
        assert_eq!(short_digest("-"), "-");
    }

    #[test]
    fn tags_are_checked_before_sending() {
        assert_eq!(tag_body("v2").expect("valid"), json!({"name": "v2"}));
        assert!(tag_body("a/b").is_err());
        assert!(tag_body("").is_err());
    }

    fn index() -> Value {
        json!({
            "digest": format!("sha256:{}", "a".repeat(64)),
            "type": "IMAGE",
            "repository_name": "team/app",
            "manifest_media_type": "application/vnd.oci.image.index.v1+json",
            "size": 2048,
            "push_time": "2024-01-01T00:00:00Z",
            "pull_time": "0001-01-01T00:00:00.000Z",
            "tags": [{"name": "v1"}, {"name": "latest", "immutable": true}],
            "labels": [{"id": 3, "name": "prod"}],
            "references": [
                {"child_digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"child_digest": "sha256:c", "platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0"}},
            ],
            "accessories": [{"digest": "sha256:d", "type": "signature.cosign", "size": 10}],
            "extra_attrs": {"config": {"Env": ["A=\u{1b}[2J"]}, "os": "linux"},
        })
    }

    #[test]
    fn artifacts_list_as_rows() {
        let text = list_table(&[index()]).render();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(
                "DIGEST                TYPE    TAGS         SIZE      PUSHED                 PLATFORMS   ACCESSORIES"
            )
        );
        assert_eq!(
            lines.next(),
            Some(
                "sha256:aaaaaaaaaaaa   IMAGE   v1, latest   2.0 KiB   2024-01-01T00:00:00Z   2           1"
            )
        );
    }

    #[test]
    fn an_artifact_is_described_with_its_parts() {
        let text = describe(&index());
        assert!(
            text.contains("Tags:          v1, latest (immutable)\n"),
            "{text}"
        );
        assert!(text.contains("Labels:        prod (id 3)\n"), "{text}");
        assert!(
            text.contains("Size:          2.0 KiB (2048 bytes)\n"),
            "{text}"
        );
        assert!(
            text.contains("Attributes:\n  config: {\"Env\":[\"A=\\u001b[2J\"]}\n  os: linux\n"),
            "{text}"
        );
        assert!(text.contains("Platforms (2):\n  DIGEST     PLATFORM\n  sha256:b   linux/arm64/v8\n  sha256:c   windows/amd64 10.0\n"), "{text}");
        assert!(text.contains("Accessories (1):\n"), "{text}");
        assert!(text.contains("signature.cosign"), "{text}");
        assert!(text.contains("Pulled:        never\n"), "{text}");
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn long_attributes_are_cut() {
        let v = Value::String("x".repeat(500));
        let s = attr_value(&v);
        assert!(s.starts_with(&"x".repeat(MAX_ATTR_SHOWN)));
        assert!(s.ends_with("(-o json shows all)"));
    }

    #[test]
    fn history_marks_empty_layers() {
        let h = [
            json!({"created": "t", "created_by": "RUN x", "empty_layer": false}),
            json!({"created": "t", "created_by": "ENV y", "empty_layer": true}),
        ];
        assert_eq!(
            history_table(&h).render(),
            "CREATED   EMPTY   CREATED BY   COMMENT\n\
             t         -       RUN x        -\n\
             t         yes     ENV y        -\n"
        );
    }
}
