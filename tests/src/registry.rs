//! Starting and stopping the registry under test.
//!
//! A registry is one or more processes (see [`Target`]); they are started in
//! order, each waited for over HTTP while the ones before it must stay up,
//! and killed by PID in reverse order when the [`Registry`] is dropped.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::auth::Credentials;
use crate::aws::{self, AwsEnv};
use crate::http::{self, Response};
use crate::process::{self, Process};

pub use crate::process::free_port;

/// How long a registry process may take to answer `GET /v2/` after it was
/// started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The system admin's user name on Berth's targets.
pub const ADMIN_USER: &str = "admin";

/// The admin password every Berth process of the tests is started with
/// (`BERTH_ADMIN_PASSWORD`).
pub const ADMIN_PASSWORD: &str = "Harbor12345";

/// How many times a start is retried (another process may grab a port
/// between picking it and binding it).
const START_ATTEMPTS: usize = 3;

/// Which registry implementation the tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Berth's own server with embedded storage: `berth serve` (the default).
    Berth,
    /// The reference registry, Distribution (`/usr/bin/docker-registry`).
    Distribution,
    /// `berth serve --backend aws` over a private moto (DynamoDB, S3, SQS).
    /// Blob `GET`s are `307` redirects to presigned URLs on moto.
    BerthAws,
    /// The serverless stack on a private moto: `berth stack --backend aws`
    /// (API Gateway + Lambda emulation, which clients talk to) and the
    /// upload gateway `berth serve --backend aws --gateway`, where upload
    /// `Location`s send clients with a signed `_state` token.
    BerthStack,
}

impl Target {
    /// Reads `BERTH_E2E_TARGET` (`berth`, the default, `distribution`,
    /// `berth-aws` or `berth-stack`).
    pub fn from_env() -> Self {
        match std::env::var("BERTH_E2E_TARGET").as_deref() {
            Err(_) | Ok("" | "berth") => Self::Berth,
            Ok("distribution") => Self::Distribution,
            Ok("berth-aws") => Self::BerthAws,
            Ok("berth-stack") => Self::BerthStack,
            Ok(other) => panic!(
                "BERTH_E2E_TARGET={other:?} is not understood; use `berth` (default), \
                 `distribution`, `berth-aws` or `berth-stack`"
            ),
        }
    }

    /// The `BERTH_E2E_TARGET` spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Berth => "berth",
            Self::Distribution => "distribution",
            Self::BerthAws => "berth-aws",
            Self::BerthStack => "berth-stack",
        }
    }

    /// Whether this is one of Berth's own configurations.
    pub fn is_berth(self) -> bool {
        self != Self::Distribution
    }

    /// Whether the registry stores into the AWS emulator (blob `GET`s are
    /// then redirects to presigned URLs).
    pub fn uses_aws(self) -> bool {
        matches!(self, Self::BerthAws | Self::BerthStack)
    }

    /// Whether upload sessions continue on a separate upload gateway.
    pub fn has_upload_gateway(self) -> bool {
        self == Self::BerthStack
    }

    /// Whether the target implements the OCI 1.1 referrers API.
    /// Distribution 2.8 predates it.
    pub fn supports_referrers(self) -> bool {
        self.is_berth()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Process names within a [`Registry`], for [`Registry::log`] and
/// [`Registry::requests`].
pub mod names {
    /// The process clients talk to (`berth serve`, `docker-registry`, or
    /// `berth stack`).
    pub const REGISTRY: &str = "registry";
    /// The upload gateway (`berth-stack` only).
    pub const GATEWAY: &str = "gateway";
    /// The AWS emulator (`berth-aws`, `berth-stack`).
    pub const MOTO: &str = "moto";
}

/// The registry under test, serving plain HTTP on `127.0.0.1:<port>`, with
/// every process it is made of and its own temporary directory. Dropping it
/// kills the processes (by PID, in reverse start order) and removes the
/// directory; if the test is failing, every process's log tail is printed
/// first.
pub struct Registry {
    target: Target,
    port: u16,
    gateway_port: Option<u16>,
    aws: Option<AwsEnv>,
    processes: Vec<Process>,
    dir: TempDir,
    /// How many times [`Registry::restart`] started the server again.
    restarts: u32,
}

/// What one successful start produced.
struct Started {
    port: u16,
    gateway_port: Option<u16>,
    aws: Option<AwsEnv>,
}

impl Registry {
    /// Starts the registry chosen by `BERTH_E2E_TARGET`.
    pub fn start() -> Self {
        Self::start_target(Target::from_env())
    }

    pub fn start_target(target: Target) -> Self {
        let dir = crate::tempdir("berth-e2e-registry.");
        let mut last_error = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let mut processes = Vec::new();
            let t = std::time::Instant::now();
            match start_processes(target, dir.path(), &mut processes) {
                Ok(started) => {
                    eprintln!(
                        "{target} registry on 127.0.0.1:{} ready after {:?}",
                        started.port,
                        t.elapsed()
                    );
                    let reg = Self {
                        target,
                        port: started.port,
                        gateway_port: started.gateway_port,
                        aws: started.aws,
                        processes,
                        dir,
                        restarts: 0,
                    };
                    reg.register_credentials();
                    return reg;
                }
                Err(e) => {
                    for p in processes.iter_mut().rev() {
                        p.stop();
                    }
                    let logs: Vec<String> = processes.iter().map(Process::describe_log).collect();
                    last_error = format!("attempt {attempt}: {e}\n{}", logs.join("\n"));
                    eprintln!("the {target} registry did not start; {last_error}");
                }
            }
        }
        panic!("the {target} registry did not start: {last_error}");
    }

    pub fn target(&self) -> Target {
        self.target
    }

    /// The port clients talk to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, the registry host as clients spell it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.host(), path)
    }

    /// A full image reference `127.0.0.1:<port>/<repo_and_ref>`.
    pub fn image(&self, repo_and_ref: &str) -> String {
        format!("{}/{}", self.host(), repo_and_ref)
    }

    /// The upload gateway's port (`berth-stack` only).
    pub fn gateway_port(&self) -> Option<u16> {
        self.gateway_port
    }

    /// `http://127.0.0.1:<gateway port><path>` (`berth-stack` only).
    pub fn gateway_url(&self, path: &str) -> Option<String> {
        self.gateway_port
            .map(|port| format!("http://127.0.0.1:{port}{path}"))
    }

    /// The AWS emulator's environment (`berth-aws`, `berth-stack`).
    pub fn aws(&self) -> Option<&AwsEnv> {
        self.aws.as_ref()
    }

    /// The tail of the log of the process clients talk to.
    pub fn log_tail(&self) -> String {
        self.process(names::REGISTRY)
            .map_or_else(String::new, Process::log_tail)
    }

    /// The whole log of one of the registry's processes ([`names`]), or
    /// `None` if this target has no such process.
    pub fn log(&self, name: &str) -> Option<String> {
        self.process(name).map(Process::log)
    }

    /// The request lines Berth logged in process `name` ([`names`]); Berth's
    /// AWS targets log JSON, which this parses. Empty for other targets.
    pub fn requests(&self, name: &str) -> Vec<LoggedRequest> {
        self.log(name)
            .map(|log| log.lines().filter_map(LoggedRequest::parse).collect())
            .unwrap_or_default()
    }

    /// The registry's own data directory (inside its temporary directory).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The PID of the process clients talk to, while it runs.
    pub fn server_pid(&self) -> Option<u32> {
        self.process(names::REGISTRY).and_then(Process::pid)
    }

    /// Kills the process clients talk to with SIGKILL (`kill -9`, by its
    /// PID) and reaps it. Nothing is flushed or shut down: the data
    /// directory stays exactly as the kill left it, for
    /// [`Registry::restart`]. Idempotent.
    pub fn kill_server(&mut self) {
        for p in self
            .processes
            .iter_mut()
            .filter(|p| p.name() == names::REGISTRY)
        {
            p.stop();
        }
    }

    /// Starts the server again on the same data directory, after
    /// [`Registry::kill_server`] (which this calls first): `berth serve` on
    /// a fresh port (another process may have taken the old one), ready
    /// when `GET /v2/` answers; [`Registry::port`] and the URL helpers then
    /// point at it. Each start logs to `registry.<n>.log` in the registry's
    /// directory. Only the `berth` target (one process, embedded storage)
    /// can be restarted this way.
    pub fn restart(&mut self) -> Result<(), String> {
        if self.target != Target::Berth {
            return Err(format!(
                "only the berth target can be restarted on its data directory, not {}",
                self.target
            ));
        }
        self.kill_server();
        let data = self.data_dir();
        let mut last_error = String::new();
        for attempt in 1..=START_ATTEMPTS {
            self.restarts += 1;
            let port = free_port();
            let command = berth_command("serve", port, &data, None)?;
            let log = self
                .dir
                .path()
                .join(format!("{}.{}.log", names::REGISTRY, self.restarts));
            let mut group = vec![Process::spawn(names::REGISTRY, port, command, &log)?];
            match process::wait_http(&mut group, port, "/v2/", &[200, 401], READY_TIMEOUT) {
                Ok(()) => {
                    self.processes.retain(|p| p.name() != names::REGISTRY);
                    self.processes.append(&mut group);
                    self.forget_credentials();
                    self.port = port;
                    self.register_credentials();
                    return Ok(());
                }
                Err(e) => {
                    for p in &mut group {
                        p.stop();
                    }
                    let logs: Vec<String> = group.iter().map(Process::describe_log).collect();
                    last_error = format!("attempt {attempt}: {e}\n{}", logs.join("\n"));
                }
            }
        }
        Err(format!("the berth server did not restart: {last_error}"))
    }

    fn process(&self, name: &str) -> Option<&Process> {
        self.processes.iter().find(|p| p.name() == name)
    }

    // ------------------------------------------------------ identity ----

    /// Whether clients must log in (Berth's targets; Distribution runs
    /// without auth).
    pub fn requires_auth(&self) -> bool {
        self.target.is_berth()
    }

    /// The system admin's user name (`admin`).
    pub fn admin_user(&self) -> &'static str {
        ADMIN_USER
    }

    /// The system admin's password (the `BERTH_ADMIN_PASSWORD` every Berth
    /// process is started with).
    pub fn admin_password(&self) -> &'static str {
        ADMIN_PASSWORD
    }

    /// The admin's credentials.
    pub fn admin(&self) -> Credentials {
        Credentials::new(ADMIN_USER, ADMIN_PASSWORD)
    }

    /// `admin:<password>` for `--creds`, or `None` where no login is needed.
    pub fn admin_creds(&self) -> Option<String> {
        self.requires_auth()
            .then(|| format!("{ADMIN_USER}:{ADMIN_PASSWORD}"))
    }

    /// Raw HTTP requests ([`crate::http`]) to this registry (and its
    /// gateway) authenticate as the admin by default.
    fn register_credentials(&self) {
        if !self.requires_auth() {
            return;
        }
        crate::auth::register_credentials(&self.host(), self.admin());
        if let Some(port) = self.gateway_port {
            crate::auth::register_credentials(&format!("127.0.0.1:{port}"), self.admin());
        }
    }

    fn forget_credentials(&self) {
        crate::auth::forget_credentials(&self.host());
        if let Some(port) = self.gateway_port {
            crate::auth::forget_credentials(&format!("127.0.0.1:{port}"));
        }
    }

    /// A request to the management API (`/api/v2.0<path>`) as the admin
    /// (Basic auth, as Harbor's API takes it), with a JSON body if given.
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        self.api_as(&self.admin(), method, path, body)
    }

    /// [`Registry::api`] as someone else.
    pub fn api_as(
        &self,
        who: &Credentials,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut req = http::Request::new(method, &self.url(&format!("/api/v2.0{path}")))
            .raw()
            .header("Authorization", &who.basic_header())
            .header("Accept", "application/json");
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(body).expect("JSON serializes"));
        }
        req.send()
    }

    /// Creates project `name` (`POST /api/v2.0/projects`, expecting 201).
    /// Nothing on Distribution, which has no projects.
    pub fn create_project(&self, name: &str, public: bool) {
        if !self.requires_auth() {
            return;
        }
        let body = json!({
            "project_name": name,
            "metadata": { "public": if public { "true" } else { "false" } },
        });
        self.api("POST", "/projects", Some(&body))
            .expect_status(201);
    }

    /// Makes sure project `name` exists (private if created here): a 201,
    /// or a 409 for one that already does (`library` always does). Nothing
    /// on Distribution.
    pub fn ensure_project(&self, name: &str) {
        if !self.requires_auth() {
            return;
        }
        let body = json!({ "project_name": name, "metadata": { "public": "false" } });
        let resp = self.api("POST", "/projects", Some(&body));
        assert!(
            matches!(resp.status, 201 | 409),
            "creating project {name} should answer 201 (or 409 if it exists):\n{resp}"
        );
    }

    /// Creates user `username` with `password` (`POST /api/v2.0/users`,
    /// expecting 201); returns the credentials.
    pub fn create_user(&self, username: &str, password: &str) -> Credentials {
        let body = json!({
            "username": username,
            "password": password,
            "email": format!("{username}@berth-e2e.example"),
            "realname": format!("e2e {username}"),
        });
        self.api("POST", "/users", Some(&body)).expect_status(201);
        crate::record_secret(password);
        Credentials::new(username, password)
    }

    /// Makes `username` a member of `project` with `role`
    /// (`POST /api/v2.0/projects/{project}/members`, expecting 201).
    pub fn add_member(&self, project: &str, username: &str, role: Role) {
        let body = json!({ "role_id": role as u8, "member_user": { "username": username } });
        self.api("POST", &format!("/projects/{project}/members"), Some(&body))
            .expect_status(201);
    }

    /// Creates a project robot with `actions` on repositories of `project`
    /// that lives `duration` days (`-1`: forever) (`POST /api/v2.0/robots`,
    /// expecting 201).
    pub fn create_robot(
        &self,
        project: &str,
        name: &str,
        actions: &[&str],
        duration: i64,
    ) -> Robot {
        let body = robot_body(project, name, actions, duration);
        let resp = self.api("POST", "/robots", Some(&body));
        resp.expect_status(201);
        let json = resp.json();
        let robot = Robot {
            id: json["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("no numeric `id` in the robot answer:\n{resp}")),
            name: json["name"]
                .as_str()
                .unwrap_or_else(|| panic!("no `name` in the robot answer:\n{resp}"))
                .to_owned(),
            secret: json["secret"]
                .as_str()
                .unwrap_or_else(|| panic!("no `secret` in the robot answer:\n{resp}"))
                .to_owned(),
            body,
        };
        crate::record_secret(&robot.secret);
        assert_eq!(
            robot.name,
            format!("robot${project}+{name}"),
            "a project robot's full name is robot$<project>+<name>:\n{resp}"
        );
        robot
    }

    /// `PUT /api/v2.0/robots/{id}` with the robot's body and `"disable":
    /// true` (expecting 200).
    pub fn disable_robot(&self, robot: &Robot) {
        let mut body = robot.body.clone();
        body["disable"] = json!(true);
        let resp = self.api("PUT", &format!("/robots/{}", robot.id), Some(&body));
        assert!(
            resp.status == 200,
            "disabling a robot should answer 200:\n{resp}"
        );
    }
}

/// A project role (Harbor's `role_id`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    ProjectAdmin = 1,
    Developer = 2,
    Guest = 3,
    Maintainer = 4,
    LimitedGuest = 5,
}

/// A robot account as created.
#[derive(Clone, Debug)]
pub struct Robot {
    pub id: i64,
    /// `robot$<project>+<name>`.
    pub name: String,
    pub secret: String,
    /// The body it was created with.
    pub body: Value,
}

impl Robot {
    pub fn credentials(&self) -> Credentials {
        Credentials::new(&self.name, &self.secret)
    }
}

/// The body of `POST /api/v2.0/robots` for a project robot.
pub fn robot_body(project: &str, name: &str, actions: &[&str], duration: i64) -> Value {
    let access: Vec<Value> = actions
        .iter()
        .map(|a| json!({ "resource": "repository", "action": a }))
        .collect();
    json!({
        "name": name,
        "description": "berth e2e",
        "level": "project",
        "duration": duration,
        "disable": false,
        "permissions": [{ "kind": "project", "namespace": project, "access": access }],
    })
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.forget_credentials();
        for p in self.processes.iter_mut().rev() {
            p.stop();
        }
        let label = format!(
            "{}-{}",
            self.target,
            std::thread::current()
                .name()
                .unwrap_or("t")
                .replace("::", "-")
        );
        // Every log of Berth's own processes in the registry's directory
        // (restarted servers' too); not the emulator's, which logs the
        // presigned URLs clients fetch from it, nor Distribution's.
        if self.target.is_berth()
            && let Ok(entries) = std::fs::read_dir(self.dir.path())
        {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".log") && !name.starts_with(names::MOTO) {
                    crate::archive_log(&e.path(), &label);
                }
            }
        }
        if std::thread::panicking() {
            for p in &self.processes {
                eprintln!("[{} registry] {}", self.target, p.describe_log());
            }
        }
    }
}

/// One `request` line of Berth's JSON log: method, path (never the query)
/// and status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub status: u16,
}

impl LoggedRequest {
    fn parse(line: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let fields = value.get("fields")?;
        if fields.get("message")?.as_str()? != "request" {
            return None;
        }
        Some(Self {
            method: fields.get("method")?.as_str()?.to_owned(),
            path: fields.get("path")?.as_str()?.to_owned(),
            status: u16::try_from(fields.get("status")?.as_u64()?).ok()?,
        })
    }

    /// Whether the path is an upload session or the start of one.
    pub fn is_upload(&self) -> bool {
        self.path.contains("/blobs/uploads/")
    }
}

impl fmt::Display for LoggedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.method, self.path, self.status)
    }
}

/// Where the `berth` binary is: `$BERTH_BIN`, else next to the running test
/// executable's target directory (`target/<profile>/berth`), else
/// `<workspace root>/target/debug/berth`.
pub fn berth_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("BERTH_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("BERTH_BIN={} does not exist", bin.display()))
        };
    }
    let mut candidates = Vec::new();
    // target/<profile>/deps/<test-binary> -> target/<profile>/berth
    if let Ok(exe) = std::env::current_exe()
        && let Some(profile_dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(profile_dir.join("berth"));
    }
    candidates.push(crate::workspace_root().join("target/debug/berth"));
    candidates.dedup();
    candidates.iter().find(|c| c.is_file()).cloned().ok_or_else(|| {
        format!(
            "the berth binary was not found (looked at {}); build it with `cargo build --workspace`, \
             point BERTH_BIN at it, or run the suite against the reference registry with \
             BERTH_E2E_TARGET=distribution",
            candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Starts every process of `target`, pushing each onto `group` as soon as it
/// runs (so the caller can stop them all, whatever happens).
fn start_processes(
    target: Target,
    dir: &Path,
    group: &mut Vec<Process>,
) -> Result<Started, String> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    match target {
        Target::Berth => {
            let port = free_port();
            let command = berth_command("serve", port, &data, None)?;
            start_and_wait(group, names::REGISTRY, port, command, dir)?;
            Ok(Started {
                port,
                gateway_port: None,
                aws: None,
            })
        }
        Target::Distribution => {
            let port = free_port();
            let command = distribution_command(dir, &data, port)?;
            start_and_wait(group, names::REGISTRY, port, command, dir)?;
            Ok(Started {
                port,
                gateway_port: None,
                aws: None,
            })
        }
        Target::BerthAws => {
            let env = aws::start_moto(group, dir)?;
            let port = free_port();
            let command = berth_command("serve", port, &data, Some(&env))?;
            start_and_wait(group, names::REGISTRY, port, command, dir)?;
            Ok(Started {
                port,
                gateway_port: None,
                aws: Some(env),
            })
        }
        Target::BerthStack => {
            let env = aws::start_moto(group, dir)?;
            let [gateway_port, port] = process::free_ports::<2>();
            let secret = crate::rng::Rng::new().hex(48);
            let mut gateway = berth_command("serve", gateway_port, &data, Some(&env))?;
            // The key goes through the environment, never the command line;
            // the gateway's public URL is the registry's (finished blobs
            // are found there).
            gateway
                .arg("--gateway")
                .env("BERTH_UPLOAD_SECRET", &secret)
                .env("BERTH_PUBLIC_URL", format!("http://127.0.0.1:{port}"));
            start_and_wait(group, names::GATEWAY, gateway_port, gateway, dir)?;
            let mut stack = berth_command("stack", port, &data, Some(&env))?;
            stack.env("BERTH_UPLOAD_SECRET", &secret).env(
                "BERTH_UPLOAD_GATEWAY_URL",
                format!("http://127.0.0.1:{gateway_port}"),
            );
            start_and_wait(group, names::REGISTRY, port, stack, dir)?;
            Ok(Started {
                port,
                gateway_port: Some(gateway_port),
                aws: Some(env),
            })
        }
    }
}

/// Spawns `command` as process `name` on `port` and waits until its
/// `GET /v2/` answers, while every process started before stays up.
fn start_and_wait(
    group: &mut Vec<Process>,
    name: &str,
    port: u16,
    command: Command,
    dir: &Path,
) -> Result<(), String> {
    group.push(Process::spawn(
        name,
        port,
        command,
        &dir.join(format!("{name}.log")),
    )?);
    process::wait_http(group, port, "/v2/", &[200, 401], READY_TIMEOUT)
}

/// `berth <subcommand> --addr 127.0.0.1:<port> --data-dir <data>`, with no
/// inherited `BERTH_*` setting; with `aws`, over the emulator
/// (`--backend aws`, JSON logs that [`Registry::requests`] reads).
fn berth_command(
    subcommand: &str,
    port: u16,
    data: &Path,
    aws: Option<&AwsEnv>,
) -> Result<Command, String> {
    let addr = format!("127.0.0.1:{port}");
    let mut c = Command::new(berth_binary()?);
    c.arg(subcommand)
        .arg("--addr")
        .arg(&addr)
        .arg("--data-dir")
        .arg(data);
    // Flags win over their environment twins, but keep the environment from
    // pointing anywhere else either (public URL, gateway, secret, backend).
    process::env_remove_prefixed(&mut c, &["BERTH_"]);
    // The shortest collection grace, so tests can collect what they just
    // deleted (collections run only when a test asks).
    // Webhook receivers and peer registries in tests live on loopback,
    // which Berth refuses by default; workers tick every 5 s so a crash's
    // leftovers (outbox events, stalled tasks) are picked up quickly.
    c.env("BERTH_LOG", "info")
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("BERTH_GC_GRACE", "0")
        .env("BERTH_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("BERTH_SWEEP_INTERVAL", "5");
    if let Some(env) = aws {
        c.args(["--backend", "aws", "--log-format", "json"]);
        env.apply(&mut c);
        c.env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
    }
    Ok(c)
}

fn distribution_command(dir: &Path, data: &Path, port: u16) -> Result<Command, String> {
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        distribution_config(data, &format!("127.0.0.1:{port}")),
    )
    .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let bin = std::env::var_os("BERTH_E2E_DISTRIBUTION_BIN")
        .map_or_else(|| PathBuf::from("/usr/bin/docker-registry"), PathBuf::from);
    if !bin.is_file() {
        return Err(format!(
            "{} not found; run `tests/install-deps` (as root) to install the e2e test dependencies",
            bin.display()
        ));
    }
    let mut c = Command::new(bin);
    c.arg("serve").arg(&config);
    // Distribution lets REGISTRY_* variables override its config file.
    process::env_remove_prefixed(&mut c, &["REGISTRY_"]);
    Ok(c)
}

fn distribution_config(data: &Path, addr: &str) -> String {
    let data = data.display();
    format!(
        "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: {addr}
  secret: berth-e2e-not-a-secret
"
    )
}
