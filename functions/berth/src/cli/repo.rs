//! `berth repo …`: `/api/v2.0/repositories` and
//! `/projects/{project}/repositories/{repository}`; and what the artifact
//! commands share with them: repository names and artifact references as
//! the user writes them (`project/repo`, `project/repo:tag`,
//! `project/repo@sha256:…`), their API paths, and paged listing.
//!
//! Harbor wants the repository name in a path without its project and with
//! its slashes encoded twice (`team/a/b` → `projects/team/repositories/a%252Fb`).

use std::io::{BufRead as _, IsTerminal as _};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::{PAGE_SIZE, enc, with_query};
use super::table::Table;
use super::{CliError, Ctx, field};

#[derive(Subcommand, Debug)]
pub(crate) enum RepoCommand {
    /// List repositories: one project's, or every one you can see.
    List {
        /// Only this project's repositories.
        project: Option<String>,
        /// Only repositories whose name contains this.
        #[arg(long, value_name = "NAME")]
        query: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one repository (PROJECT/REPO).
    Show { repository: String },
    /// Set a repository's description.
    Describe {
        /// PROJECT/REPO.
        repository: String,
        /// The new description ("" clears it).
        description: String,
    },
    /// Delete a repository and every artifact in it.
    Delete {
        /// PROJECT/REPO.
        repository: String,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Which part of a list to fetch. Without options: the first page of
/// [`PAGE_SIZE`] items.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Paging {
    /// The page to show, from 1.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "all")]
    page: Option<u64>,
    /// Items per page, 1 to 100 (default 100).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100), conflicts_with = "all")]
    page_size: Option<u64>,
    /// Every item: follow the server's `Link: <…>; rel="next"` to the end.
    #[arg(long)]
    all: bool,
}

/// The items `paging` asks for from the list at `target` with `query`.
/// A full page (when not `--all`) adds a hint on stderr that there may be
/// more.
pub(crate) async fn list_paged(
    ctx: &Ctx,
    target: &str,
    query: &[(&str, &str)],
    paging: &Paging,
) -> Result<Vec<Value>, CliError> {
    if paging.all {
        return ctx.api.list(target, query).await;
    }
    let page = paging.page.unwrap_or(1);
    let size = paging.page_size.unwrap_or(PAGE_SIZE as u64);
    let (page_s, size_s) = (page.to_string(), size.to_string());
    let mut q = query.to_vec();
    q.push(("page", &page_s));
    q.push(("page_size", &size_s));
    let t = with_query(target, &q);
    let items = match ctx.api.get(&t).await? {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        _ => {
            return Err(CliError::Local(format!(
                "the server's answer to GET {t} is not a list"
            )));
        }
    };
    if items.len() as u64 >= size {
        eprintln!(
            "berth: page {page} is full ({size} items); there may be more: --page {}, or --all",
            page + 1
        );
    }
    Ok(items)
}

/// A repository as the user names it: `project/name` (the name may hold
/// more slashes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RepoName {
    pub(crate) project: String,
    /// Without the project.
    pub(crate) name: String,
}

impl RepoName {
    pub(crate) fn parse(s: &str) -> Result<Self, CliError> {
        match s.split_once('/') {
            Some((project, name))
                if !project.is_empty()
                    && !name.is_empty()
                    && !name.split('/').any(str::is_empty)
                    && !s.contains(['@', ':']) =>
            {
                Ok(Self {
                    project: project.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(CliError::Local(format!(
                "{s:?} is not a repository: expected PROJECT/REPO, as in library/nginx"
            ))),
        }
    }

    /// `/api/v2.0/projects/{project}/repositories/{name, encoded twice}`.
    pub(crate) fn path(&self, ctx: &Ctx) -> String {
        ctx.api
            .path(&["projects", &self.project, "repositories", &enc(&self.name)])
    }
}

impl std::fmt::Display for RepoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.project, self.name)
    }
}

/// One artifact as the user names it: `project/repo:tag` or
/// `project/repo@digest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArtifactRef {
    pub(crate) repo: RepoName,
    /// The tag or the digest.
    pub(crate) reference: String,
    pub(crate) by_digest: bool,
}

impl ArtifactRef {
    pub(crate) fn parse(s: &str) -> Result<Self, CliError> {
        let (name, reference, by_digest) = if let Some((name, digest)) = s.split_once('@') {
            if !is_digest(digest) {
                return Err(CliError::Local(format!(
                    "{s:?}: {digest:?} is not a digest (algorithm:hex, as in sha256:…)"
                )));
            }
            (name, digest, true)
        } else {
            match s.rsplit_once(':') {
                Some((name, tag)) if !tag.contains('/') => {
                    if !is_tag(tag) {
                        return Err(CliError::Local(format!("{s:?}: {tag:?} is not a tag")));
                    }
                    (name, tag, false)
                }
                _ => {
                    return Err(CliError::Local(format!(
                        "{s:?} names no artifact: give a tag (PROJECT/REPO:TAG) \
                         or a digest (PROJECT/REPO@sha256:…)"
                    )));
                }
            }
        };
        Ok(Self {
            repo: RepoName::parse(name)?,
            reference: reference.to_owned(),
            by_digest,
        })
    }

    /// `…/artifacts/{reference}[/more…]` (the reference is a tag or a digest,
    /// whose characters are all allowed in a path as they are).
    pub(crate) fn path(&self, ctx: &Ctx, more: &[&str]) -> String {
        let mut p = format!("{}/artifacts/{}", self.repo.path(ctx), self.reference);
        for segment in more {
            p.push('/');
            p.push_str(&enc(segment));
        }
        p
    }
}

impl std::fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sep = if self.by_digest { '@' } else { ':' };
        write!(f, "{}{sep}{}", self.repo, self.reference)
    }
}

/// A tag as the distribution spec allows it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn is_tag(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `algorithm:encoded` as the OCI image spec writes digests.
pub(crate) fn is_digest(s: &str) -> bool {
    let Some((algorithm, encoded)) = s.split_once(':') else {
        return false;
    };
    !algorithm.is_empty()
        && !encoded.is_empty()
        && algorithm.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'.' | b'_' | b'-')
        })
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

/// Asks `question` on the terminal; `Err` when there is none to ask on.
fn confirm(question: &str, without: &str) -> Result<bool, CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Local(format!(
            "{without}: confirm with --yes (stdin is not a terminal to ask on)"
        )));
    }
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Local(format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

const HEADERS: &[&str] = &[
    "NAME",
    "ARTIFACTS",
    "PULLS",
    "CREATED",
    "UPDATED",
    "DESCRIPTION",
];

fn table<'a>(repos: impl IntoIterator<Item = &'a Value>) -> Table {
    let mut t = Table::new(HEADERS);
    for r in repos {
        t.row(vec![
            field(r, "name"),
            field(r, "artifact_count"),
            field(r, "pull_count"),
            field(r, "creation_time"),
            field(r, "update_time"),
            field(r, "description"),
        ]);
    }
    t
}

pub(crate) async fn run(ctx: &Ctx, command: &RepoCommand) -> Result<(), CliError> {
    let api = &ctx.api;
    match command {
        RepoCommand::List {
            project,
            query,
            paging,
        } => {
            let target = match project {
                Some(p) => api.path(&["projects", p, "repositories"]),
                None => api.path(&["repositories"]),
            };
            let q = query.as_ref().map(|n| format!("name=~{n}"));
            let pairs: Vec<(&str, &str)> = q.iter().map(|q| ("q", q.as_str())).collect();
            let repos = list_paged(ctx, &target, &pairs, paging).await?;
            ctx.print(&table(&repos), &Value::Array(repos))
        }
        RepoCommand::Show { repository } => {
            let repo = RepoName::parse(repository)?;
            let r = api.get(&repo.path(ctx)).await?;
            ctx.print(&table([&r]), &r)
        }
        RepoCommand::Describe {
            repository,
            description,
        } => {
            let repo = RepoName::parse(repository)?;
            api.put(&repo.path(ctx), &json!({"description": description}))
                .await?;
            ctx.done(&format!("updated the description of {repo}"))
        }
        RepoCommand::Delete { repository, yes } => {
            let repo = RepoName::parse(repository)?;
            let path = repo.path(ctx);
            if !yes {
                // Ask with what is at stake (this also checks it exists).
                let r = api.get(&path).await?;
                let question = match super::int_field(&r, "artifact_count") {
                    Some(1) => format!("Delete repository {repo} and its artifact?"),
                    Some(n) => format!("Delete repository {repo} and its {n} artifacts?"),
                    None => format!("Delete repository {repo} and every artifact in it?"),
                };
                if !confirm(&question, &format!("not deleting {repo}"))? {
                    return Err(CliError::Local(format!(
                        "cancelled: {repo} was not deleted"
                    )));
                }
            }
            api.delete(&path).await?;
            ctx.done(&format!("deleted repository {repo}"))
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
        c: RepoCommand,
    }

    fn parse(args: &[&str]) -> Result<RepoCommand, clap::Error> {
        T::try_parse_from(std::iter::once("repo").chain(args.iter().copied())).map(|t| t.c)
    }

    #[test]
    fn repository_names_split_off_the_project() {
        let r = RepoName::parse("team/a/b").expect("valid");
        assert_eq!(r.project, "team");
        assert_eq!(r.name, "a/b");
        assert_eq!(r.to_string(), "team/a/b");
        for bad in [
            "nginx",
            "/nginx",
            "team/",
            "team//x",
            "team/x:v1",
            "team/x@sha256:ab",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn repository_paths_encode_the_name_twice() {
        let base = super::super::client::BaseUrl::parse("http://h").expect("valid");
        let name = RepoName::parse("team/a/b").expect("valid");
        assert_eq!(
            base.path(&["projects", &name.project, "repositories", &enc(&name.name)]),
            "/api/v2.0/projects/team/repositories/a%252Fb"
        );
    }

    #[test]
    fn artifact_references_are_tags_or_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ArtifactRef::parse(&format!("team/a/b@{d}")).expect("valid");
        assert_eq!(r.repo.name, "a/b");
        assert_eq!(r.reference, d);
        assert!(r.by_digest);
        assert_eq!(r.to_string(), format!("team/a/b@{d}"));
        let r = ArtifactRef::parse("team/app:v1.2-rc_1").expect("valid");
        assert_eq!(r.repo.name, "app");
        assert_eq!(r.reference, "v1.2-rc_1");
        assert!(!r.by_digest);
        assert_eq!(r.to_string(), "team/app:v1.2-rc_1");
        for bad in [
            "team/app",
            "team/app:",
            "team/app:-x",
            "team/app:a/b",
            "team/app@latest",
            "team/app@sha256:",
            "team/app@SHA256:aa",
            "app:v1",
            "team/app:v1:v2",
        ] {
            assert!(ArtifactRef::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn tags_and_digests_follow_the_specs() {
        assert!(is_tag("latest"));
        assert!(is_tag("_x"));
        assert!(is_tag(&"a".repeat(128)));
        assert!(!is_tag(&"a".repeat(129)));
        assert!(!is_tag(".x"));
        assert!(!is_tag(""));
        assert!(is_digest("sha256:abc"));
        assert!(is_digest("sha512+b64u:ab_c-="));
        assert!(!is_digest("sha256"));
        assert!(!is_digest(":abc"));
        assert!(!is_digest("sha256:a/b"));
    }

    #[test]
    fn paging_options() {
        let RepoCommand::List { paging, .. } = parse(&["list"]).expect("parses") else {
            panic!("not list")
        };
        assert_eq!(paging, Paging::default());
        let RepoCommand::List {
            project, paging, ..
        } = parse(&["list", "p", "--page", "2", "--page-size", "5"]).expect("parses")
        else {
            panic!("not list")
        };
        assert_eq!(project.as_deref(), Some("p"));
        assert_eq!(paging.page, Some(2));
        assert_eq!(paging.page_size, Some(5));
        assert!(parse(&["list", "--all"]).is_ok());
        assert!(parse(&["list", "--all", "--page", "2"]).is_err());
        assert!(parse(&["list", "--all", "--page-size", "2"]).is_err());
        assert!(parse(&["list", "--page", "0"]).is_err());
        assert!(parse(&["list", "--page-size", "0"]).is_err());
        assert!(parse(&["list", "--page-size", "101"]).is_err());
    }

    #[test]
    fn repositories_render() {
        let r = json!({"name": "team/app", "artifact_count": 2, "pull_count": 0,
                       "creation_time": "t0", "update_time": "t1", "description": ""});
        assert_eq!(
            table([&r]).render(),
            "NAME       ARTIFACTS   PULLS   CREATED   UPDATED   DESCRIPTION\n\
             team/app   2           0       t0        t1        -\n"
        );
    }
}
