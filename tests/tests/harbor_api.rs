//! Berth's `/api/v2.0` against Harbor's own API definition, read from
//! `../shared/reference/` at test time (never copied):
//!
//! - users, projects, members, robots and audit logs
//!   (`tests/harbor_api/check_identity.py`), and repositories, artifacts,
//!   tags, accessories, additions, labels, search, statistics, health and
//!   summaries (`check_artifacts.py`): every answer validated against the
//!   schema of its operation in Harbor's definition;
//! - Berth's own OpenAPI document is a subset of Harbor's
//!   (`check_openapi_subset.py`);
//! - schemathesis against Berth's document on a running Berth: no 5xx, no
//!   answer breaking the document (`run-schemathesis`, bounded).

use std::path::PathBuf;
use std::time::Duration;

use berth_e2e::{Cmd, Registry, Target, require_tools, skip_requested};

/// Harbor's API definition, beside the checkout (`<repo>/../shared/reference`).
fn swagger() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/harbor-api-v2.0.swagger.yaml");
    assert!(
        path.is_file(),
        "Harbor's API definition is not at {} (the shared/ folder must sit beside the checkout)",
        path.display()
    );
    path
}

fn harbor_api_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("harbor_api")
}

fn script(name: &str) -> Cmd {
    Cmd::new(berth_e2e::python())
        .arg(harbor_api_dir().join(name))
        .arg("--swagger")
        .arg(swagger())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .timeout(Duration::from_secs(600))
}

/// Whether this target serves `/api/v2.0` (and the test was not skipped).
fn runs(test: &str) -> bool {
    if skip_requested(test) {
        return false;
    }
    if Target::from_env() == Target::Distribution {
        eprintln!("SKIPPED {test}: Distribution has no /api/v2.0");
        return false;
    }
    require_tools(&[&berth_e2e::python()]);
    true
}

#[test]
fn identity_api_matches_harbors_definition() {
    if runs("identity_api_matches_harbors_definition") {
        check_live("check_identity.py");
    }
}

#[test]
fn artifact_api_matches_harbors_definition() {
    if runs("artifact_api_matches_harbors_definition") {
        check_live("check_artifacts.py");
    }
}

#[test]
fn lifecycle_api_matches_harbors_definition() {
    if runs("lifecycle_api_matches_harbors_definition") {
        check_live("check_lifecycle.py");
    }
}

#[test]
fn openapi_document_is_a_subset_of_harbors() {
    if !runs("openapi_document_is_a_subset_of_harbors") {
        return;
    }
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/src/http/api/openapi.json");
    let out = script("check_openapi_subset.py")
        .arg("--berth")
        .arg(doc)
        .run();
    println!("{}", out.stdout_str());
    assert!(
        out.status.success(),
        "Berth's OpenAPI document is not a subset of Harbor's:\n{}\n{}",
        out.stdout_str(),
        out.stderr_str()
    );
}

#[test]
fn schemathesis_finds_no_server_error_or_schema_break() {
    if !runs("schemathesis_finds_no_server_error_or_schema_break") {
        return;
    }
    let reg = Registry::start();
    let out = Cmd::new("bash")
        .arg(harbor_api_dir().join("run-schemathesis"))
        .env("BERTH_URL", reg.url(""))
        .env("BERTH_ADMIN_PASSWORD", reg.admin_password())
        .env("BERTH_E2E_PYTHON", berth_e2e::python())
        .env("SCHEMATHESIS_MAX_EXAMPLES", "5")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .timeout(Duration::from_secs(900))
        .run();
    let text = out.stdout_str();
    println!("{text}");
    eprint!("{}", out.stderr_str());
    assert!(
        out.status.success(),
        "schemathesis found a server error or an answer breaking the document ({}); see above",
        out.status
    );
}

/// Runs a checker on itself, then against a fresh Berth; fails with the
/// lines that did not pass.
fn check_live(name: &str) {
    // The checker checks itself first (this also fails loudly when jsonschema
    // or PyYAML is missing: `tests/install-deps` installs them).
    let own = script(name).arg("--self-test").run();
    assert!(
        own.status.success(),
        "{name} --self-test failed (run `tests/install-deps` as root if a module is missing):\n{}\n{}",
        own.stdout_str(),
        own.stderr_str()
    );

    let reg = Registry::start();
    let out = script(name)
        .arg("--url")
        .arg(reg.url(""))
        .arg("--password")
        .arg(reg.admin_password())
        .run();
    let table = out.stdout_str();
    println!("{table}");
    eprint!("{}", out.stderr_str());
    let failed: Vec<&str> = table
        .lines()
        .filter(|line| line.contains(" -> ") && !line.ends_with(" -> ok"))
        .collect();
    assert!(
        out.status.success(),
        "Berth's /api/v2.0 does not match Harbor's definition ({}; whole table above):\n{}",
        out.status,
        failed.join("\n")
    );
}
