//! The operator CLI (`berth user|project|robot …`) against a running Berth:
//! the binary under test talks to the server's `/api/v2.0` the way an
//! operator would, in both output modes, and reports errors as
//! `berth: <message> (<code>, HTTP <status>)` with exit status 1.

use berth_e2e::registry::berth_binary;
use berth_e2e::{Cmd, Output, Registry, Target, skip_requested};
use serde_json::Value;

/// `berth <args>` against `reg` as `user` with `password`, with nothing
/// from the test's own environment (`BERTH_*`) leaking in.
fn berth_as(reg: &Registry, user: &str, password: &str) -> Cmd {
    let bin = berth_binary().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Cmd::new(bin);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BERTH_") {
            cmd = cmd.env_remove(key);
        }
    }
    cmd.env("BERTH_URL", reg.url(""))
        .env("BERTH_USERNAME", user)
        .env("BERTH_PASSWORD", password)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
}

fn admin(reg: &Registry) -> Cmd {
    berth_as(reg, reg.admin_user(), reg.admin_password())
}

fn start(test: &str) -> Option<Registry> {
    if skip_requested(test) {
        return None;
    }
    if Target::from_env() == Target::Distribution {
        eprintln!("SKIPPED {test}: Distribution has no /api/v2.0");
        return None;
    }
    Some(Registry::start())
}

/// The items of a JSON list whose `key` is `value`.
fn find<'a>(list: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a JSON list: {list}"))
        .iter()
        .find(|item| item.get(key).and_then(Value::as_str) == Some(value))
}

/// The table's header row and the rows that contain `needle` as a cell.
fn table_rows(out: &Output, needle: &str) -> (String, Vec<Vec<String>>) {
    let stdout = out.stdout_str();
    let mut lines = stdout.lines();
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no table:\n{out}"))
        .to_owned();
    let rows = lines
        .map(|l| {
            l.split("   ")
                .map(|c| c.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|cells| cells.iter().any(|c| c == needle))
        .collect();
    (header, rows)
}

fn assert_api_error(out: &Output, code: &str, status: u16) {
    let stderr = out.stderr_str();
    assert_eq!(out.status.code(), Some(1), "exit status 1 expected:\n{out}");
    assert!(
        stderr.starts_with("berth: ") && stderr.contains(&format!("({code}, HTTP {status})")),
        "expected `berth: … ({code}, HTTP {status})` on stderr:\n{out}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout on error:\n{out}");
}

#[test]
fn operator_cli_manages_users_projects_members_and_robots() {
    let Some(reg) = start("operator_cli_manages_users_projects_members_and_robots") else {
        return;
    };

    // A user: created with the password from BERTH_NEW_PASSWORD.
    let out = admin(&reg)
        .args(["user", "create", "alice", "--email", "alice@example.com"])
        .args(["--realname", "Alice Liddell"])
        .env("BERTH_NEW_PASSWORD", "Alice12345")
        .ok();
    assert!(
        out.stdout_str().starts_with("created user alice (id "),
        "{out}"
    );
    let users = admin(&reg).args(["user", "list", "-o", "json"]).ok().json();
    let alice = find(&users, "username", "alice").unwrap_or_else(|| panic!("no alice: {users}"));
    let alice_id = alice["user_id"].as_i64().expect("user_id");
    assert_eq!(alice["email"], "alice@example.com");
    let out = admin(&reg).args(["user", "list"]).ok();
    let (header, rows) = table_rows(&out, "alice");
    assert!(header.starts_with("ID   USERNAME"), "{out}");
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0][0], alice_id.to_string(), "{out}");
    let shown = admin(&reg)
        .args(["user", "show", "alice", "--output", "json"])
        .ok()
        .json();
    assert_eq!(shown["user_id"], alice_id);

    // A project, and alice in it as a developer.
    admin(&reg).args(["project", "create", "cli-e2e"]).ok();
    let projects = admin(&reg)
        .args(["project", "list", "-o", "json"])
        .ok()
        .json();
    let project = find(&projects, "name", "cli-e2e").unwrap_or_else(|| panic!("{projects}"));
    assert_eq!(project["metadata"]["public"], "false");
    let out = admin(&reg)
        .args([
            "project",
            "add-member",
            "cli-e2e",
            "alice",
            "--role",
            "developer",
        ])
        .ok();
    assert!(out.stdout_str().contains("member id"), "{out}");
    let members = admin(&reg)
        .args(["project", "members", "cli-e2e", "-o", "json"])
        .ok()
        .json();
    let member = find(&members, "entity_name", "alice").unwrap_or_else(|| panic!("{members}"));
    assert_eq!(member["role_id"], 2);
    let out = admin(&reg).args(["project", "members", "cli-e2e"]).ok();
    let (header, rows) = table_rows(&out, "alice");
    assert_eq!(header, "ID   NAME    TYPE   ROLE", "{out}");
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0][3], "developer", "{out}");

    // A pull robot: its secret is printed once, in both modes.
    let created = admin(&reg)
        .args([
            "robot",
            "create",
            "--project",
            "cli-e2e",
            "--name",
            "puller",
        ])
        .args(["--pull", "--days", "-1", "-o", "json"])
        .ok()
        .json();
    let robot_id = created["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{created}"));
    assert!(
        created["secret"].as_str().is_some_and(|s| !s.is_empty()),
        "{created}"
    );
    let out = admin(&reg)
        .args([
            "robot",
            "create",
            "--project",
            "cli-e2e",
            "--name",
            "pusher",
        ])
        .args(["--pull", "--push", "--days", "30"])
        .ok();
    assert!(
        out.stdout_str().starts_with("ID   NAME") && out.stdout_str().contains("SECRET"),
        "{out}"
    );
    assert!(
        out.stderr_str().contains("will not be shown again"),
        "{out}"
    );
    let robots = admin(&reg)
        .args(["robot", "list", "--project", "cli-e2e", "-o", "json"])
        .ok()
        .json();
    let listed = robots.as_array().unwrap_or_else(|| panic!("{robots}"));
    assert_eq!(listed.len(), 2, "{robots}");
    let puller = listed
        .iter()
        .find(|r| r["id"] == robot_id)
        .unwrap_or_else(|| panic!("robot {robot_id} not listed: {robots}"));
    assert!(
        puller["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("puller")),
        "{robots}"
    );
    assert!(
        puller
            .get("secret")
            .is_none_or(|s| s.as_str().unwrap_or_default().is_empty())
    );
    let out = admin(&reg)
        .args(["robot", "list", "--project", "cli-e2e"])
        .ok();
    let (header, rows) = table_rows(&out, &robot_id.to_string());
    assert!(header.starts_with("ID   NAME"), "{out}");
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].iter().any(|c| c == "never"), "{out}");
    assert!(rows[0].iter().any(|c| c == "cli-e2e: pull"), "{out}");

    // The robot's secret can be refreshed, and it can be disabled again.
    let refreshed = admin(&reg)
        .args(["robot", "refresh", &robot_id.to_string(), "-o", "json"])
        .ok()
        .json();
    assert!(
        refreshed["secret"]
            .as_str()
            .is_some_and(|s| !s.is_empty() && Some(s) != created["secret"].as_str())
    );
    admin(&reg)
        .args(["robot", "disable", &robot_id.to_string()])
        .ok();
    let shown = admin(&reg)
        .args(["robot", "show", &robot_id.to_string(), "-o", "json"])
        .ok()
        .json();
    assert_eq!(shown["disable"], true, "{shown}");

    // Passwords: the admin sets alice's; alice then changes her own.
    admin(&reg)
        .args(["user", "passwd", "alice"])
        .env("BERTH_NEW_PASSWORD", "Alice54321")
        .ok();
    let out = berth_as(&reg, "alice", "Alice12345")
        .args(["project", "show", "cli-e2e"])
        .fails();
    assert_api_error(&out, "UNAUTHORIZED", 401);
    berth_as(&reg, "alice", "Alice54321")
        .args(["project", "show", "cli-e2e"])
        .ok();
    berth_as(&reg, "alice", "Alice54321")
        .args(["user", "passwd", "alice"])
        .env("BERTH_NEW_PASSWORD", "Alice99999")
        .ok();
    berth_as(&reg, "alice", "Alice99999")
        .args(["project", "members", "cli-e2e", "-o", "json"])
        .ok();

    // A developer cannot manage users.
    let out = berth_as(&reg, "alice", "Alice99999")
        .args(["user", "create", "mallory"])
        .env("BERTH_NEW_PASSWORD", "Mallory123")
        .fails();
    assert_api_error(&out, "FORBIDDEN", 403);

    // Cleaning up through the CLI too.
    admin(&reg)
        .args(["project", "remove-member", "cli-e2e", "alice"])
        .ok();
    let members = admin(&reg)
        .args(["project", "members", "cli-e2e", "-o", "json"])
        .ok()
        .json();
    assert!(
        find(&members, "entity_name", "alice").is_none(),
        "{members}"
    );
    admin(&reg)
        .args(["robot", "delete", &robot_id.to_string()])
        .ok();
    admin(&reg).args(["user", "delete", "alice"]).ok();
    let users = admin(&reg).args(["user", "list", "-o", "json"]).ok().json();
    assert!(find(&users, "username", "alice").is_none(), "{users}");
}

#[test]
fn operator_cli_reports_errors() {
    let Some(reg) = start("operator_cli_reports_errors") else {
        return;
    };

    // The API's error, as `berth: <message> (<code>, HTTP <status>)`.
    let out = admin(&reg)
        .args(["project", "show", "no-such-project"])
        .fails();
    assert_api_error(&out, "NOT_FOUND", 404);
    let out = admin(&reg)
        .args(["project", "show", "no-such-project", "-o", "json"])
        .fails();
    assert_api_error(&out, "NOT_FOUND", 404);

    // Creating what exists is a conflict.
    admin(&reg).args(["project", "create", "twice"]).ok();
    let out = admin(&reg).args(["project", "create", "twice"]).fails();
    assert_api_error(&out, "CONFLICT", 409);

    // Wrong credentials.
    let out = berth_as(&reg, "admin", "not-the-password")
        .args(["user", "list"])
        .fails();
    assert_api_error(&out, "UNAUTHORIZED", 401);

    // No password at all, and no terminal to ask on.
    let out = admin(&reg)
        .env_remove("BERTH_PASSWORD")
        .args(["user", "list"])
        .fails();
    assert!(out.stderr_str().contains("BERTH_PASSWORD"), "{out}");

    // Nobody listening.
    let port = berth_e2e::registry::free_port();
    let out = admin(&reg)
        .env("BERTH_URL", format!("http://127.0.0.1:{port}"))
        .args(["user", "list"])
        .fails();
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr_str()
            .starts_with("berth: cannot connect to http://127.0.0.1:"),
        "{out}"
    );
}

/// Pushes `blob` into `repo` (`POST …/blobs/uploads/?digest=` with the whole
/// blob), as the admin.
fn push_blob(reg: &Registry, repo: &str, blob: &berth_e2e::oci::Blob) {
    berth_e2e::http::post(&reg.url(&format!("/v2/{repo}/blobs/uploads/?digest={}", blob.digest)))
        .header("Content-Type", "application/octet-stream")
        .body(blob.bytes.clone())
        .send()
        .expect_status(201);
}

/// Puts `manifest` into `repo` under each of `tags`, as the admin.
fn push_manifest(reg: &Registry, repo: &str, manifest: &berth_e2e::oci::Blob, tags: &[&str]) {
    for tag in tags {
        berth_e2e::http::put(&reg.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header("Content-Type", &manifest.media_type)
            .body(manifest.bytes.clone())
            .send()
            .expect_status(201);
    }
}

/// Pushes `image` (its blobs, then its manifest under each of `tags`).
fn push_image(reg: &Registry, repo: &str, image: &berth_e2e::oci::Image, tags: &[&str]) {
    for blob in image.blobs() {
        push_blob(reg, repo, blob);
    }
    push_manifest(reg, repo, &image.manifest, tags);
}

/// The `name`s of a JSON list's items (or of `value[key]`'s), sorted.
fn names_of(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a JSON list: {list}"))
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[test]
fn operator_cli_manages_repositories_artifacts_and_labels() {
    let Some(reg) = start("operator_cli_manages_repositories_artifacts_and_labels") else {
        return;
    };
    admin(&reg).args(["project", "create", "cli-art"]).ok();
    admin(&reg).args(["project", "create", "cli-copy"]).ok();

    // An image with two tags in a nested repository (its name goes into
    // the API's paths encoded twice), and a two-platform index beside it.
    let mut rng = berth_e2e::rng::Rng::with_seed(10);
    let image = berth_e2e::oci::Image::random("amd64", &mut rng);
    push_image(&reg, "cli-art/team/app", &image, &["v1", "latest"]);
    let digest = image.manifest.digest.clone();
    let short = format!("sha256:{}", &image.manifest.hex()[..12]);
    let index = berth_e2e::oci::Index::random(&["amd64", "arm64"], &mut rng);
    for img in &index.images {
        push_image(&reg, "cli-art/multi", img, &[]);
        push_manifest(
            &reg,
            "cli-art/multi",
            &img.manifest,
            &[&img.manifest.digest],
        );
    }
    push_manifest(&reg, "cli-art/multi", &index.manifest, &["v1"]);

    // Repositories: every one, one project's, filtered, paged, one.
    let out = admin(&reg).args(["repo", "list"]).ok();
    let (header, rows) = table_rows(&out, "cli-art/team/app");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "NAME",
            "ARTIFACTS",
            "PULLS",
            "CREATED",
            "UPDATED",
            "DESCRIPTION"
        ],
        "{out}"
    );
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0][1], "1", "{out}");
    let repos = admin(&reg)
        .args(["repo", "list", "cli-art", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        names_of(&repos),
        ["cli-art/multi", "cli-art/team/app"],
        "{repos}"
    );
    let app = find(&repos, "name", "cli-art/team/app").unwrap_or_else(|| panic!("{repos}"));
    assert_eq!(app["artifact_count"], 1, "{repos}");
    let found = admin(&reg)
        .args(["repo", "list", "cli-art", "--query", "team", "-o", "json"])
        .ok()
        .json();
    assert_eq!(names_of(&found), ["cli-art/team/app"], "{found}");
    let page = |n: &str| {
        admin(&reg)
            .args(["repo", "list", "cli-art", "--page", n, "--page-size", "1"])
            .args(["-o", "json"])
            .ok()
    };
    let (first, second) = (page("1"), page("2"));
    assert!(first.stderr_str().contains("--page 2, or --all"), "{first}");
    let mut paged = [names_of(&first.json()), names_of(&second.json())].concat();
    paged.sort();
    assert_eq!(
        paged,
        ["cli-art/multi", "cli-art/team/app"],
        "{first}\n{second}"
    );
    let all = admin(&reg)
        .args(["repo", "list", "cli-art", "--all", "-o", "json"])
        .ok()
        .json();
    assert_eq!(names_of(&all), paged, "{all}");
    let shown = admin(&reg)
        .args(["repo", "show", "cli-art/team/app", "-o", "json"])
        .ok()
        .json();
    assert_eq!(shown["name"], "cli-art/team/app", "{shown}");

    // Artifacts: listed with their (short) digest and tags, and shown.
    let out = admin(&reg)
        .args(["artifact", "list", "cli-art/team/app"])
        .ok();
    let (header, rows) = table_rows(&out, &short);
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "DIGEST",
            "TYPE",
            "TAGS",
            "SIZE",
            "PUSHED",
            "PLATFORMS",
            "ACCESSORIES"
        ],
        "{out}"
    );
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0][1], "IMAGE", "{out}");
    let mut tags: Vec<&str> = rows[0][2].split(", ").collect();
    tags.sort_unstable();
    assert_eq!(tags, ["latest", "v1"], "{out}");
    let listed = admin(&reg)
        .args(["artifact", "list", "cli-art/team/app", "-o", "json"])
        .ok()
        .json();
    assert_eq!(listed[0]["digest"], digest.as_str(), "{listed}");
    assert_eq!(names_of(&listed[0]["tags"]), ["latest", "v1"], "{listed}");
    let out = admin(&reg)
        .args(["artifact", "show", "cli-art/team/app:v1"])
        .ok();
    let text = out.stdout_str();
    assert!(
        text.contains(&format!("Digest:        {digest}\n")),
        "{out}"
    );
    assert!(text.contains("Type:          IMAGE\n"), "{out}");
    assert!(
        text.contains("Tags:          latest, v1\n")
            || text.contains("Tags:          v1, latest\n"),
        "{out}"
    );
    let by_digest = admin(&reg)
        .args([
            "artifact",
            "show",
            &format!("cli-art/team/app@{digest}"),
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(by_digest["digest"], digest.as_str(), "{by_digest}");
    assert_eq!(
        by_digest["extra_attrs"]["architecture"], "amd64",
        "{by_digest}"
    );
    let out = admin(&reg)
        .args(["artifact", "list", "cli-art/multi", "--tag-filter", "v1"])
        .ok();
    let index_short = format!("sha256:{}", &index.manifest.hex()[..12]);
    let (_, rows) = table_rows(&out, &index_short);
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0][5], "2", "two platforms:\n{out}");
    let out = admin(&reg)
        .args(["artifact", "show", "cli-art/multi:v1"])
        .ok();
    assert!(out.stdout_str().contains("Platforms (2):"), "{out}");
    assert!(out.stdout_str().contains("linux/amd64"), "{out}");
    assert!(out.stdout_str().contains("linux/arm64"), "{out}");

    // The build history is the config's.
    let out = admin(&reg)
        .args(["artifact", "history", "cli-art/team/app:v1"])
        .ok();
    assert!(out.stdout_str().starts_with("CREATED"), "{out}");
    assert!(out.stdout_str().contains("berth-e2e layer 1"), "{out}");

    // Tags: added, listed (by digest), filtered on, deleted.
    let at_digest = format!("cli-art/team/app@{digest}");
    admin(&reg)
        .args(["artifact", "tag", "add", "cli-art/team/app:v1", "v2"])
        .ok();
    let tags = admin(&reg)
        .args(["artifact", "tag", "list", &at_digest, "-o", "json"])
        .ok()
        .json();
    assert_eq!(names_of(&tags), ["latest", "v1", "v2"], "{tags}");
    let out = admin(&reg)
        .args(["artifact", "tag", "list", &at_digest])
        .ok();
    let (header, rows) = table_rows(&out, "v2");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "PUSHED", "PULLED", "IMMUTABLE"],
        "{out}"
    );
    assert_eq!(rows.len(), 1, "{out}");
    let filtered = admin(&reg)
        .args([
            "artifact",
            "list",
            "cli-art/team/app",
            "--tag-filter",
            "v2",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(filtered.as_array().map(Vec::len), Some(1), "{filtered}");
    admin(&reg)
        .args(["artifact", "tag", "delete", &at_digest, "v2"])
        .ok();
    let tags = admin(&reg)
        .args(["artifact", "tag", "list", &at_digest, "-o", "json"])
        .ok()
        .json();
    assert_eq!(names_of(&tags), ["latest", "v1"], "{tags}");

    // Labels: a global one and a project one, put on the artifact by name
    // and by id, shown with it, one taken off again.
    let prod = admin(&reg)
        .args(["label", "create", "prod", "--color", "#F00"])
        .args(["--description", "in production", "-o", "json"])
        .ok()
        .json();
    let prod_id = prod["id"].as_i64().unwrap_or_else(|| panic!("{prod}"));
    let out = admin(&reg)
        .args(["label", "create", "qa", "--project", "cli-art"])
        .ok();
    assert!(
        out.stdout_str().starts_with("created label qa (id "),
        "{out}"
    );
    let global = admin(&reg)
        .args(["label", "list", "-o", "json"])
        .ok()
        .json();
    let listed = find(&global, "name", "prod").unwrap_or_else(|| panic!("{global}"));
    assert_eq!(listed["color"], "#ff0000", "{global}");
    assert!(find(&global, "name", "qa").is_none(), "{global}");
    let local = admin(&reg)
        .args(["label", "list", "--project", "cli-art", "-o", "json"])
        .ok()
        .json();
    let qa_id = find(&local, "name", "qa")
        .and_then(|l| l["id"].as_i64())
        .unwrap_or_else(|| panic!("{local}"));
    admin(&reg)
        .args(["artifact", "label", "add", "cli-art/team/app:v1", "prod"])
        .ok();
    admin(&reg)
        .args([
            "artifact",
            "label",
            "add",
            "cli-art/team/app:v1",
            &qa_id.to_string(),
        ])
        .ok();
    let out = admin(&reg)
        .args(["artifact", "show", "cli-art/team/app:latest"])
        .ok();
    assert!(
        out.stdout_str().contains(&format!("prod (id {prod_id})")),
        "{out}"
    );
    assert!(
        out.stdout_str().contains(&format!("qa (id {qa_id})")),
        "{out}"
    );
    admin(&reg)
        .args(["artifact", "label", "remove", "cli-art/team/app:v1", "qa"])
        .ok();
    let shown = admin(&reg)
        .args(["artifact", "show", "cli-art/team/app:v1", "-o", "json"])
        .ok()
        .json();
    assert_eq!(names_of(&shown["labels"]), ["prod"], "{shown}");
    admin(&reg)
        .args([
            "label",
            "update",
            &prod_id.to_string(),
            "--description",
            "live",
        ])
        .ok();
    let global = admin(&reg)
        .args(["label", "list", "-o", "json"])
        .ok()
        .json();
    let listed = find(&global, "name", "prod").unwrap_or_else(|| panic!("{global}"));
    assert_eq!(listed["description"], "live", "{global}");

    // A copy into another project: the same digest there.
    let out = admin(&reg)
        .args(["artifact", "copy", "cli-art/team/app:v1", "cli-copy/app"])
        .ok();
    assert!(
        out.stdout_str()
            .starts_with("copied cli-art/team/app:v1 to cli-copy/app"),
        "{out}"
    );
    let copied = admin(&reg)
        .args(["artifact", "list", "cli-copy/app", "-o", "json"])
        .ok()
        .json();
    assert_eq!(copied[0]["digest"], digest.as_str(), "{copied}");

    // A description.
    admin(&reg)
        .args(["repo", "describe", "cli-art/team/app", "the app, nested"])
        .ok();
    let shown = admin(&reg)
        .args(["repo", "show", "cli-art/team/app", "-o", "json"])
        .ok()
        .json();
    assert_eq!(shown["description"], "the app, nested", "{shown}");

    // Deleting the copy: gone from its repository, still in the original.
    let out = admin(&reg)
        .args(["artifact", "delete", &format!("cli-copy/app@{digest}")])
        .ok();
    assert!(
        out.stdout_str()
            .starts_with("deleted artifact cli-copy/app@"),
        "{out}"
    );
    let out = admin(&reg)
        .args(["artifact", "show", &format!("cli-copy/app@{digest}")])
        .fails();
    assert_api_error(&out, "NOT_FOUND", 404);
    admin(&reg)
        .args(["artifact", "show", "cli-art/team/app:v1", "-o", "json"])
        .ok();

    // Deleting a repository wants --yes when there is no terminal to ask on.
    let out = admin(&reg)
        .args(["repo", "delete", "cli-art/team/app"])
        .fails();
    assert!(out.stderr_str().contains("--yes"), "{out}");
    admin(&reg)
        .args(["repo", "show", "cli-art/team/app", "-o", "json"])
        .ok();
    let out = admin(&reg)
        .args(["repo", "delete", "cli-art/team/app", "--yes"])
        .ok();
    assert_eq!(
        out.stdout_str(),
        "deleted repository cli-art/team/app\n",
        "{out}"
    );
    let out = admin(&reg)
        .args(["repo", "show", "cli-art/team/app"])
        .fails();
    assert_api_error(&out, "NOT_FOUND", 404);
    let repos = admin(&reg)
        .args(["repo", "list", "cli-art", "-o", "json"])
        .ok()
        .json();
    assert_eq!(names_of(&repos), ["cli-art/multi"], "{repos}");

    admin(&reg)
        .args(["label", "delete", &prod_id.to_string()])
        .ok();
    let global = admin(&reg)
        .args(["label", "list", "-o", "json"])
        .ok()
        .json();
    assert!(find(&global, "name", "prod").is_none(), "{global}");
}

#[test]
fn operator_cli_reports_artifact_errors() {
    let Some(reg) = start("operator_cli_reports_artifact_errors") else {
        return;
    };
    admin(&reg).args(["project", "create", "cli-err"]).ok();

    // Unknown repositories and artifacts: the server's message, status 1.
    for args in [
        &["repo", "show", "cli-err/nope"][..],
        &["artifact", "list", "cli-err/nope"],
        &["artifact", "show", "cli-err/nope:v1"],
        &["artifact", "show", "cli-err/nope:v1", "-o", "json"],
        &["artifact", "tag", "add", "cli-err/nope:v1", "v2"],
        &["repo", "delete", "cli-err/nope", "--yes"],
    ] {
        let out = admin(&reg).args(args).fails();
        assert_api_error(&out, "NOT_FOUND", 404);
        assert!(out.stderr_str().contains("not found"), "{out}");
    }
    let out = admin(&reg)
        .args(["artifact", "list", "no-such-project/app"])
        .fails();
    assert_api_error(&out, "NOT_FOUND", 404);

    // Names the CLI cannot send: said before asking the server.
    for (args, says) in [
        (&["repo", "show", "nope"][..], "expected PROJECT/REPO"),
        (&["artifact", "show", "cli-err/app"], "give a tag"),
        (&["artifact", "show", "cli-err/app@latest"], "not a digest"),
        (
            &["artifact", "copy", "cli-err/app:v1", "cli-err/b:v1"],
            "the destination is PROJECT/REPO",
        ),
        (
            &["artifact", "tag", "add", "cli-err/app:v1", "a/b"],
            "is not a tag",
        ),
    ] {
        let out = admin(&reg).args(args).fails();
        assert_eq!(out.status.code(), Some(1), "{out}");
        assert!(
            out.stderr_str().starts_with("berth: ") && out.stderr_str().contains(says),
            "expected {says:?}:\n{out}"
        );
    }

    // A label that does not exist, by name.
    let out = admin(&reg)
        .args(["artifact", "label", "add", "cli-err/app:v1", "nosuchlabel"])
        .fails();
    assert!(
        out.stderr_str().contains("no label named \"nosuchlabel\""),
        "{out}"
    );
    // Label ids are numbers.
    let out = admin(&reg).args(["label", "delete", "prod"]).fails();
    assert!(out.stderr_str().contains("label's id"), "{out}");
}
