//! Starting and stopping the registry under test.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a registry may take to answer `GET /v2/` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Which registry implementation the tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Berth's own server: `berth serve` (the default).
    Berth,
    /// The reference registry, Distribution (`/usr/bin/docker-registry`).
    Distribution,
}

impl Target {
    /// Reads `BERTH_E2E_TARGET` (`berth`, the default, or `distribution`).
    pub fn from_env() -> Self {
        match std::env::var("BERTH_E2E_TARGET").as_deref() {
            Err(_) | Ok("" | "berth") => Self::Berth,
            Ok("distribution") => Self::Distribution,
            Ok(other) => panic!(
                "BERTH_E2E_TARGET={other:?} is not understood; use `berth` (default) or `distribution`"
            ),
        }
    }

    /// Whether the target implements the OCI 1.1 referrers API.
    /// Distribution 2.8 predates it.
    pub fn supports_referrers(self) -> bool {
        self == Self::Berth
    }
}

/// A registry process serving plain HTTP on `127.0.0.1:<port>` with its own
/// temporary data directory. Dropping it kills the process (by its PID) and
/// removes the data; if the test is failing, the registry's log tail is
/// printed first.
pub struct Registry {
    target: Target,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
    dir: TempDir,
}

impl Registry {
    /// Starts the registry chosen by `BERTH_E2E_TARGET`.
    pub fn start() -> Self {
        Self::start_target(Target::from_env())
    }

    pub fn start_target(target: Target) -> Self {
        let dir = crate::tempdir("berth-e2e-registry.");
        let log = dir.path().join("registry.log");
        let mut last_error = String::new();
        // The port is picked by binding to port 0 and releasing it; another
        // process could grab it in between, so retry a few times.
        for _ in 0..3 {
            let port = free_port();
            let mut child = match spawn(target, dir.path(), port, &log) {
                Ok(child) => child,
                Err(e) => panic!("{e}"),
            };
            match wait_ready(&mut child, port) {
                Ok(()) => {
                    return Self {
                        target,
                        port,
                        child: Some(child),
                        log,
                        dir,
                    };
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = format!(
                        "{e}\n--- registry log ({}) ---\n{}",
                        log.display(),
                        read_tail(&log)
                    );
                }
            }
        }
        panic!("the {target:?} registry did not start: {last_error}");
    }

    pub fn target(&self) -> Target {
        self.target
    }

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

    /// The tail of the registry's log.
    pub fn log_tail(&self) -> String {
        read_tail(&self.log)
    }

    /// The registry's own data directory (inside its temporary directory).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- {:?} registry log on 127.0.0.1:{} ({}) ---\n{}",
                self.target,
                self.port,
                self.log.display(),
                self.log_tail()
            );
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a free port on 127.0.0.1")
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

fn spawn(target: Target, dir: &Path, port: u16, log: &Path) -> Result<Child, String> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let addr = format!("127.0.0.1:{port}");
    let mut command = match target {
        Target::Berth => {
            let bin = berth_binary()?;
            let mut c = Command::new(bin);
            c.arg("serve")
                .arg("--addr")
                .arg(&addr)
                .arg("--data-dir")
                .arg(&data)
                // Flags win over their environment twins, but keep the
                // environment from pointing anywhere else either.
                .env("BERTH_ADDR", &addr)
                .env("BERTH_DATA_DIR", &data)
                .env_remove("BERTH_BACKEND")
                .env_remove("BERTH_PUBLIC_URL");
            c
        }
        Target::Distribution => {
            let config = dir.join("config.yml");
            std::fs::write(&config, distribution_config(&data, &addr))
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
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("REGISTRY_") {
                    c.env_remove(key);
                }
            }
            c
        }
    };
    let log_file =
        File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| format!("cannot clone the log file handle: {e}"))?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_err));
    command
        .spawn()
        .map_err(|e| format!("cannot start the {target:?} registry: {e}"))
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

fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the registry exited with {status} before it was ready"
            ));
        }
        let last = match probe_v2(port) {
            Ok(200 | 401) => return Ok(()),
            Ok(code) => format!("GET /v2/ answered {code}"),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "GET http://127.0.0.1:{port}/v2/ did not answer 200 within {READY_TIMEOUT:?} ({last})"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Minimal HTTP/1.1 `GET /v2/`, returning the status code.
fn probe_v2(port: u16) -> Result<u16, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

fn read_tail(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => crate::cmd::tail(&bytes),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
