//! `template.yaml` is what `infra/gen-template` makes of `infra/`'s JSON
//! definitions, agrees with the route table the Rust side uses, and passes
//! `cfn-lint` (installed by `infra/install-tools`).
#![cfg(feature = "lambda")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use berth::lambda::routes::RouteTable;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> String {
    std::env::var("BERTH_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn run(cmd: &mut Command) -> Output {
    cmd.current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn template_yaml_is_up_to_date() {
    let out = run(Command::new(python()).args(["infra/gen-template", "--check"]));
    assert!(
        out.status.success(),
        "template.yaml is not what infra/gen-template generates:\n{}",
        text(&out)
    );
}

#[test]
fn template_routes_are_the_route_table() {
    let out = run(Command::new(python()).args(["infra/gen-template", "--routes"]));
    assert!(out.status.success(), "{}", text(&out));
    let generated: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let table = RouteTable::builtin().unwrap();
    let rust: BTreeSet<String> = table
        .routes()
        .map(|r| format!("{}\t{}", r.key(), r.function))
        .collect();
    assert_eq!(generated, rust);
}

#[test]
fn template_passes_cfn_lint() {
    // `cfn-lint` as installed by infra/install-tools, or its module.
    let out = match Command::new("cfn-lint").arg("--version").output() {
        Ok(_) => {
            run(Command::new("cfn-lint").args(["--include-checks", "I", "--", "template.yaml"]))
        }
        Err(_) => run(Command::new(python()).args([
            "-m",
            "cfnlint",
            "--include-checks",
            "I",
            "--",
            "template.yaml",
        ])),
    };
    assert!(
        out.status.success(),
        "cfn-lint found problems in template.yaml (install it with infra/install-tools):\n{}",
        text(&out)
    );
}

#[test]
fn every_function_has_a_crate_a_workspace_entry_and_a_definition() {
    let resources: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("infra/resources.json")).unwrap(),
    )
    .unwrap();
    let workspace = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let functions: Vec<&String> = resources["functions"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !k.starts_with('_'))
        .collect();
    for name in &functions {
        let manifest = std::fs::read_to_string(root().join(format!("functions/{name}/Cargo.toml")))
            .unwrap_or_else(|e| panic!("functions/{name}/Cargo.toml: {e}"));
        assert!(
            manifest.contains(&format!("name = \"berth-{name}\"")),
            "functions/{name} must be the package berth-{name}"
        );
        assert!(
            workspace.contains(&format!("\"functions/{name}\"")),
            "functions/{name} is not a workspace member"
        );
    }
    let table = RouteTable::builtin().unwrap();
    for routed in table.functions() {
        assert_eq!(
            resources["functions"][routed]["trigger"], "http",
            "routes.json sends requests to {routed}, not an HTTP function"
        );
    }
    for q in resources["queues"].as_array().unwrap() {
        let f = q["function"].as_str().unwrap();
        assert_eq!(
            resources["functions"][f]["trigger"], "queue",
            "queue {} feeds {f}, not a queue function",
            q["name"]
        );
    }
}
