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
