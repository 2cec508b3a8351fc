//! Berth's `/api/v2.0` against Harbor's own API definition: users, projects,
//! members, robots and audit logs, driven by `tests/harbor_api/check_identity.py`,
//! which validates every answer against the swagger in
//! `../shared/reference/` (read there at test time, never copied).

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

fn script() -> Cmd {
    Cmd::new(berth_e2e::python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("harbor_api/check_identity.py"))
        .arg("--swagger")
        .arg(swagger())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .timeout(Duration::from_secs(300))
}

#[test]
fn identity_api_matches_harbors_definition() {
    if skip_requested("identity_api_matches_harbors_definition") {
        return;
    }
    if Target::from_env() == Target::Distribution {
        eprintln!("SKIPPED identity_api_matches_harbors_definition: Distribution has no /api/v2.0");
        return;
    }
    require_tools(&[&berth_e2e::python()]);

    // The checker checks itself first (this also fails loudly when jsonschema
    // or PyYAML is missing: `tests/install-deps` installs them).
    let own = script().arg("--self-test").run();
    assert!(
        own.status.success(),
        "check_identity.py --self-test failed (run `tests/install-deps` as root if a module is missing):\n{}\n{}",
        own.stdout_str(),
        own.stderr_str()
    );

    let reg = Registry::start();
    let out = script()
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
