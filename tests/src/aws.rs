//! The AWS emulator behind the `berth-aws` and `berth-stack` targets: a
//! private moto server (`localstack/moto-serve`) per registry, with Berth's
//! table, bucket and queues created by `localstack/create_resources.py`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::Cmd;
use crate::process::{self, Process};

/// How long moto may take to answer after it was started.
const MOTO_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `create_resources.py` may take.
const RESOURCES_TIMEOUT: Duration = Duration::from_secs(60);

/// Variables `create_resources.py` must print for Berth's AWS backend.
const REQUIRED: [&str; 6] = [
    "METADATA_TABLE",
    "BLOB_BUCKET",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
];

/// The environment that points Berth at the emulator (`KEY=value` as
/// `create_resources.py` printed it).
#[derive(Clone, Debug)]
pub struct AwsEnv {
    pub endpoint: String,
    pub vars: Vec<(String, String)>,
}

impl AwsEnv {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Clears every inherited `AWS_*` variable of `command` (a developer's
    /// profile or real credentials must not leak in) and sets this
    /// environment, with instance metadata lookups disabled.
    pub fn apply(&self, command: &mut Command) {
        process::env_remove_prefixed(command, &["AWS_"]);
        command.envs(self.vars.iter().map(|(k, v)| (k, v)));
        command.env("AWS_EC2_METADATA_DISABLED", "true");
    }
}

/// Starts moto on a free port (pushing it onto `group`, which owns it from
/// then on), waits for it, creates Berth's resources in it and returns their
/// environment.
pub fn start_moto(group: &mut Vec<Process>, dir: &Path) -> Result<AwsEnv, String> {
    let python = interpreter();
    let t = std::time::Instant::now();
    let port = process::free_port();
    let mut command = Command::new(&python);
    // moto with one request at a time: its DynamoDB transactions are not
    // isolated from concurrent requests otherwise (see the script).
    command.arg(crate::workspace_root().join("localstack/moto-serve"));
    command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    process::env_remove_prefixed(&mut command, &["AWS_"]);
    command.env("PYTHONDONTWRITEBYTECODE", "1");
    group.push(Process::spawn(
        "moto",
        port,
        command,
        &dir.join("moto.log"),
    )?);
    process::wait_http(group, port, "/moto-api/", &[200], MOTO_READY_TIMEOUT).map_err(|e| {
        format!(
            "{e}\n(moto[server] must be installed for {python}; `tests/install-deps` installs it)"
        )
    })?;
    let ready = t.elapsed();
    let endpoint = format!("http://127.0.0.1:{port}");
    let vars = create_resources(&python, &endpoint)?;
    eprintln!(
        "moto on {endpoint} ready after {ready:?}, resources created after {:?}",
        t.elapsed()
    );
    let env = AwsEnv { endpoint, vars };
    if let Some(missing) = REQUIRED.iter().find(|k| env.get(k).is_none()) {
        return Err(format!(
            "create_resources.py printed no {missing}: {:?}",
            env.vars
        ));
    }
    Ok(env)
}

/// The interpreter's own path (`sys.executable`), resolved once per test
/// binary: starting Python through a version manager's shim (pyenv) costs a
/// few hundred milliseconds per call. Falls back to [`crate::python`].
fn interpreter() -> String {
    static RESOLVED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RESOLVED
        .get_or_init(|| {
            let python = crate::python();
            Command::new(&python)
                .args(["-c", "import sys; print(sys.executable)"])
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|p| !p.is_empty() && Path::new(p).is_file())
                .unwrap_or(python)
        })
        .clone()
}

/// Runs `localstack/create_resources.py --endpoint-url <endpoint>` and parses
/// its `KEY=value` lines.
fn create_resources(python: &str, endpoint: &str) -> Result<Vec<(String, String)>, String> {
    let script = crate::workspace_root().join("localstack/create_resources.py");
    let mut cmd = Cmd::new(python)
        .arg(&script)
        .args(["--endpoint-url", endpoint, "--region", "us-east-1"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .timeout(RESOURCES_TIMEOUT);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            cmd = cmd.env_remove(key);
        }
    }
    let out = cmd.run();
    if !out.status.success() {
        return Err(format!("create_resources.py failed:\n{out}"));
    }
    Ok(out
        .stdout_str()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect())
}
